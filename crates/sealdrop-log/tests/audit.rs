//! The offline audit against generated logs: a clean log passes, and each
//! kind of tampering is caught at the right entry.

use std::io::{Seek, SeekFrom};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;

use sealdrop_log::audit::{AuditReport, SignatureCheck, verify};
use sealdrop_log::bundle::BundleReader;
use sealdrop_log::checkpoint;
use sealdrop_log::cosign::{add_cosignatures, cosign};
use sealdrop_log::entry::{DeletionReason, HubStatement, LogEntry};
use sealdrop_log::testlog::{GeneratedLog, generate, time_of};
use sealdrop_log::tree::root_of_entries;
use sealdrop_proto::drop::{Manifest, Receipt};
use sealdrop_proto::keys::NoteSigningKey;
use sealdrop_proto::note::{peek_doc, sign_doc};

const PARTIES: usize = 3;

fn log() -> GeneratedLog {
    generate(PARTIES, 60)
}

fn audit(log: &GeneratedLog) -> AuditReport {
    verify(log.audit_input(PARTIES))
}

/// Asserts that entry `index` has a failure mentioning `needle`.
#[track_caller]
fn assert_caught(r: &AuditReport, index: u64, needle: &str) {
    assert!(
        r.failures_at(index).any(|f| f.reason.contains(needle)),
        "expected a failure at entry {index} mentioning {needle:?}; got:\n{r}"
    );
}

/// Asserts that the only failures are at `indexes` (and none about no entry).
#[track_caller]
fn assert_only_at(r: &AuditReport, indexes: &[u64]) {
    assert!(!r.ok());
    for f in &r.failures {
        assert!(f.index.is_some_and(|i| indexes.contains(&i)), "unexpected failure {f}; report:\n{r}");
    }
}

fn manifest_at(log: &GeneratedLog, i: usize) -> Option<Manifest> {
    match log.entry(i) {
        LogEntry::DropCommitted { manifest, .. } => Some(peek_doc(&manifest).unwrap()),
        _ => None,
    }
}

/// Entries of kinds matching `f`.
fn find(log: &GeneratedLog, f: impl Fn(&LogEntry) -> bool) -> Vec<usize> {
    (0..log.entries.len()).filter(|&i| f(&log.entry(i))).collect()
}

fn first_commit(log: &GeneratedLog) -> usize {
    find(log, |e| matches!(e, LogEntry::DropCommitted { .. }))[3]
}

#[test]
fn clean_log_passes() {
    let log = log();
    for mode in [SignatureCheck::Batch, SignatureCheck::Strict] {
        let mut input = log.audit_input(PARTIES);
        input.signatures = mode;
        let r = verify(input);
        assert!(r.ok(), "{r}");
        assert_eq!(r.entries, log.entries.len() as u64);
        assert_eq!(r.root, root_of_entries(&log.entries).1);
        assert_eq!(r.drops_committed, 60);
        assert_eq!(r.directory_versions, 2);
        assert_eq!(r.witnesses.len(), PARTIES);
        assert_eq!(r.deleted.expired, 1, "drop 49");
        assert_eq!(r.deleted.recalled, 1, "drop 33");
        assert_eq!(r.deleted.delivered, 58);
        assert_eq!(r.drops_fetched, 59);
        assert_eq!(r.drops_acknowledged, 58);
        assert_eq!(r.acknowledgements, r.fetches - 1);
        // Every entry carries one signature, plus directories, checkpoint and cosignatures.
        assert_eq!(r.signatures_checked, r.entries + 2 + 1 + PARTIES as u64);
        assert_eq!(r.signature_check, mode);
        assert!(r.to_string().contains("OK: no problems found"));
    }
}

#[test]
fn clean_log_from_a_bundle_file_passes() {
    let log = log();
    let mut file = tempfile::tempfile().unwrap();
    log.write_bundle(&mut file).unwrap();
    file.seek(SeekFrom::Start(0)).unwrap();
    let mut reader = BundleReader::open(file).unwrap();
    assert_eq!(reader.entry_count(), log.entries.len() as u64);
    assert_eq!(reader.directories(), &log.directories);
    let r = verify(reader.audit_input(PARTIES));
    assert!(r.ok(), "{r}");
    assert_eq!(r.entries, log.entries.len() as u64);
}

#[test]
fn altered_entry() {
    let mut log = log();
    let i = first_commit(&log);
    let LogEntry::DropCommitted { committed, manifest } = log.entry(i) else { unreachable!() };
    let m: Manifest = peek_doc(&manifest).unwrap();
    let altered = manifest.replace(&format!("\"ciphertext_len\": {}", m.ciphertext_len), "\"ciphertext_len\": 1");
    assert_ne!(altered, manifest);
    log.entries[i] = LogEntry::DropCommitted { committed, manifest: altered }.to_bytes().unwrap();
    let r = audit(&log);
    assert_caught(&r, i as u64, "manifest's signature by camden/data-team does not verify");
    assert!(r.failures.iter().any(|f| f.index.is_none() && f.reason.contains("Merkle root")), "{r}");
    // Logged by the hub itself (checkpoint re-signed): the signature is
    // wrong, and the receipt no longer matches the altered length.
    log.reseal();
    let r = audit(&log);
    assert_only_at(&r, &[i as u64, i as u64 + 2]);
    assert_caught(&r, i as u64, "does not verify");
    assert_caught(&r, i as u64 + 2, "the receipt is for ciphertext");
}

#[test]
fn removed_entry() {
    let mut log = log();
    let i = first_commit(&log);
    log.entries.remove(i);
    let r = audit(&log);
    // The drop's fetch now sits at i.
    assert_caught(&r, i as u64, "was never committed");
    assert!(r.failures.iter().any(|f| f.index.is_none() && f.reason.contains("entries but the log has")), "{r}");
}

#[test]
fn swapped_entries() {
    let mut log = log();
    let i = first_commit(&log);
    log.entries.swap(i, i + 1);
    let r = audit(&log);
    assert_caught(&r, i as u64, "was never committed");
    assert_caught(&r, i as u64 + 1, "before the previous entry's time");
    assert!(r.failures.iter().any(|f| f.index.is_none() && f.reason.contains("Merkle root")), "{r}");
}

#[test]
fn inserted_entry() {
    let mut log = log();
    let ack = find(&log, |e| matches!(e, LogEntry::DropAcknowledged { .. }))[2];
    let copy = log.entries[ack].clone();
    log.entries.insert(ack + 1, copy);
    let r = audit(&log);
    assert_caught(&r, ack as u64 + 1, "acknowledges it again");
    log.reseal();
    assert_only_at(&audit(&log), &[ack as u64 + 1]);
}

#[test]
fn replayed_fetch_request() {
    let mut log = log();
    let fetch = find(&log, |e| matches!(e, LogEntry::DropFetched { .. }))[4];
    let copy = log.entries[fetch].clone();
    log.entries.insert(fetch + 1, copy);
    log.reseal();
    let r = audit(&log);
    assert_only_at(&r, &[fetch as u64 + 1]);
    assert_caught(&r, fetch as u64 + 1, "a replay");
}

#[test]
fn forged_manifest_signature() {
    let mut log = log();
    let i = first_commit(&log);
    let LogEntry::DropCommitted { committed, manifest } = log.entry(i) else { unreachable!() };
    // The right key id, a wrong signature.
    let (head, b64) = manifest.trim_end().rsplit_once(' ').unwrap();
    let mut raw = B64.decode(b64).unwrap();
    raw[10] ^= 0x40;
    let forged = format!("{head} {}\n", B64.encode(raw));
    log.entries[i] = LogEntry::DropCommitted { committed, manifest: forged }.to_bytes().unwrap();
    log.reseal();
    let r = audit(&log);
    assert_only_at(&r, &[i as u64]);
    assert_caught(&r, i as u64, "manifest's signature by camden/data-team does not verify");
    // Strict checking finds the same.
    let mut input = log.audit_input(PARTIES);
    input.signatures = SignatureCheck::Strict;
    assert_eq!(verify(input).failures, r.failures);

    // Signed by an impostor key with the sender's name: not the directory's key.
    let mut log = self::log();
    let m = manifest_at(&log, i).unwrap();
    let impostor = NoteSigningKey::generate("camden/data-team").unwrap();
    let LogEntry::DropCommitted { committed, .. } = log.entry(i) else { unreachable!() };
    log.entries[i] = LogEntry::DropCommitted { committed, manifest: sign_doc(&m, &impostor) }.to_bytes().unwrap();
    log.reseal();
    let r = audit(&log);
    assert_only_at(&r, &[i as u64]);
    assert_caught(&r, i as u64, "is not signed by camden/data-team's key in directory 1");
}

#[test]
fn receipt_for_the_wrong_hash() {
    let mut log = log();
    let i = find(&log, |e| matches!(e, LogEntry::DropAcknowledged { .. }))[1];
    let LogEntry::DropAcknowledged { acknowledged, receipt } = log.entry(i) else { unreachable!() };
    let mut r: Receipt = peek_doc(&receipt).unwrap();
    r.ciphertext_sha256 = "ab".repeat(32);
    log.entries[i] = log.keys.ack_entry(acknowledged, &r);
    log.reseal();
    let report = audit(&log);
    assert_only_at(&report, &[i as u64]);
    assert_caught(&report, i as u64, "the receipt is for ciphertext abab");
}

#[test]
fn ack_by_a_non_recipient() {
    let mut log = log();
    let c = first_commit(&log);
    let m = manifest_at(&log, c).unwrap();
    assert_eq!(m.recipients.len(), 1);
    let outsider =
        (0..PARTIES).map(|p| log.keys.party(p).clone()).find(|p| *p != m.sender && *p != m.recipients[0]).unwrap();
    // After the real acknowledgement (c + 2), before the deletion (c + 3).
    let at = c + 3;
    let t = time_of(c as u64 + 2);
    let entry = log.keys.ack_entry(t, &log.keys.receipt(&m, &outsider, t));
    log.entries.insert(at, entry);
    log.reseal();
    let r = audit(&log);
    assert_only_at(&r, &[at as u64]);
    assert_caught(&r, at as u64, "which is not one of its recipients");
}

#[test]
fn fetch_after_deletion() {
    let mut log = log();
    let c = first_commit(&log);
    let m = manifest_at(&log, c).unwrap();
    let deleted = c + 3;
    assert!(matches!(log.entry(deleted), LogEntry::Hub { .. }));
    let entry = log.keys.fetch_entry(&m.drop, &m.recipients[0], time_of(deleted as u64));
    log.entries.insert(deleted + 1, entry);
    log.reseal();
    let r = audit(&log);
    assert_only_at(&r, &[deleted as u64 + 1]);
    assert_caught(&r, deleted as u64 + 1, &format!("is fetched after its deletion at entry {deleted}"));
}

#[test]
fn deleted_as_delivered_before_every_ack() {
    let mut log = log();
    let c = find(&log, |e| matches!(e, LogEntry::DropCommitted { .. }))
        .into_iter()
        .find(|&i| manifest_at(&log, i).unwrap().recipients.len() == 2)
        .unwrap();
    let m = manifest_at(&log, c).unwrap();
    // commit, fetch A, ack A, fetch B, ack B, delete: drop B's fetch and ack.
    assert!(matches!(log.entry(c + 5), LogEntry::Hub { .. }));
    log.entries.drain(c + 3..c + 5);
    log.reseal();
    let r = audit(&log);
    let deleted = c as u64 + 3;
    assert_only_at(&r, &[deleted]);
    assert_caught(&r, deleted, &format!("deleted as delivered, but {} has not acknowledged it", m.recipients[1]));
}

#[test]
fn deleted_as_expired_too_early() {
    let mut log = log();
    let c = first_commit(&log);
    let m = manifest_at(&log, c).unwrap();
    let st = HubStatement::DropDeleted { time: time_of(c as u64 + 3), drop: m.drop, reason: DeletionReason::Expired };
    log.entries[c + 3] = log.keys.hub_entry(&st);
    log.reseal();
    let r = audit(&log);
    assert_only_at(&r, &[c as u64 + 3]);
    assert_caught(&r, c as u64 + 3, "before its expiry");
}

#[test]
fn replaced_checkpoint() {
    let mut log = log();
    let size = log.entries.len() as u64;
    let note = checkpoint::sign(&log.keys.log, size, &sealdrop_log::Hash([9; 32]));
    let lines: Vec<String> = log.keys.witnesses.iter().map(|w| cosign(&note, w, 1)).collect();
    log.checkpoint = add_cosignatures(&note, &lines).unwrap();
    let r = audit(&log);
    assert_eq!(r.failures.len(), 1, "{r}");
    assert_eq!(r.failures[0].index, None);
    assert!(r.failures[0].reason.contains("is not the checkpoint's root"), "{r}");
    // A checkpoint not signed by the log key at all.
    let other = NoteSigningKey::generate(sealdrop_log::testlog::ORIGIN).unwrap();
    log.checkpoint = checkpoint::sign(&other, size, &root_of_entries(&log.entries).1);
    let r = audit(&log);
    assert!(r.failures.iter().any(|f| f.index.is_none() && f.reason.contains("not signed by the log key")), "{r}");
}

#[test]
fn forged_cosignature() {
    let mut log = log();
    let body_end = log.checkpoint.find("\n\n").unwrap() + 2;
    let (body, sigs) = log.checkpoint.split_at(body_end);
    let mut lines: Vec<String> = sigs.lines().map(str::to_owned).collect();
    let w = lines.iter().position(|l| l.contains("witness.islington")).unwrap();
    let (head, b64) = lines[w].rsplit_once(' ').unwrap();
    let mut raw = B64.decode(b64).unwrap();
    raw[30] ^= 1;
    lines[w] = format!("{head} {}", B64.encode(raw));
    log.checkpoint = format!("{body}{}\n", lines.join("\n"));
    let r = audit(&log);
    assert_eq!(r.failures.len(), 1, "{r}");
    assert!(r.failures[0].index.is_none());
    assert!(r.failures[0].reason.contains("witness.islington"), "{r}");
}

#[test]
fn too_few_witnesses() {
    let mut log = log();
    let note = checkpoint::sign(&log.keys.log, log.entries.len() as u64, &root_of_entries(&log.entries).1);
    log.checkpoint = add_cosignatures(&note, &[cosign(&note, &log.keys.witnesses[2], 5)]).unwrap();
    let r = verify(log.audit_input(2));
    assert_eq!(r.failures.len(), 1, "{r}");
    assert!(r.failures[0].reason.contains("only 1 witnessing parties cosigned the checkpoint (hackney)"), "{r}");
    assert_eq!(r.witnesses.len(), 1);
    assert!(verify(log.audit_input(1)).ok());
    // A witness key nobody listed does not count.
    let stranger = NoteSigningKey::generate("witness.stranger").unwrap();
    log.checkpoint = add_cosignatures(&note, &[cosign(&note, &stranger, 5)]).unwrap();
    assert!(!verify(log.audit_input(1)).ok());
}

#[test]
fn directory_note_not_matching_its_statement() {
    let mut log = log();
    let published = find(&log, |e| match e {
        LogEntry::Hub { statement } => {
            matches!(peek_doc::<HubStatement>(statement).unwrap(), HubStatement::DirectoryPublished { serial: 2, .. })
        }
        _ => false,
    });
    assert_eq!(published.len(), 1);
    // Another, validly signed, serial 2.
    let mut other = log.keys.directory(2);
    other.directory.agreements[0].title = "Something else".into();
    let other = sealdrop_proto::directory::SignedDirectory::sign(other.directory, &log.keys.authority).unwrap();
    log.directories.insert(2, other.note);
    let r = audit(&log);
    assert_only_at(&r, &[published[0] as u64]);
    assert_caught(&r, published[0] as u64, "but the directory note given for serial 2 hashes to");
}

#[test]
fn directory_problems_without_an_entry() {
    let mut log = log();
    // A directory the authority did not sign.
    let impostor = NoteSigningKey::generate("authority.sealdrop.test").unwrap();
    let d = sealdrop_proto::directory::SignedDirectory::sign(log.keys.directory(2).directory, &impostor).unwrap();
    let real = log.directories.insert(2, d.note).unwrap();
    let r = audit(&log);
    assert!(r.failures.iter().any(|f| f.index.is_none() && f.reason.starts_with("directory 2:")), "{r}");
    // A directory given but never published.
    log.directories.insert(2, real);
    let three = log.keys.directory(3);
    log.directories.insert(3, three.note);
    let r = audit(&log);
    assert_eq!(r.failures.len(), 1, "{r}");
    assert!(r.failures[0].reason.contains("directory 3 is given but no entry publishes it"));
}

#[test]
fn the_log_must_begin_with_a_directory() {
    let mut log = log();
    log.entries.remove(0);
    log.reseal();
    let r = audit(&log);
    assert_caught(&r, 0, "the log must begin with the hub publishing a directory");
    assert_caught(&r, 0, "no directory is in force yet");
}

#[test]
fn garbage_entries_are_named() {
    let mut log = log();
    log.entries[5] = b"{\"type\":\"drop_committed\"}".to_vec();
    log.entries[6] = vec![0xff, 0xfe];
    log.reseal();
    let r = audit(&log);
    assert_caught(&r, 5, "not valid");
    assert_caught(&r, 6, "not valid");
}

/// Signatures are checked against the directory in force at each entry: after
/// a directory rotating camden's key is published, camden's old key no longer
/// counts, and before it the new key would not have.
#[test]
fn keys_come_from_the_directory_in_force() {
    let mut log = log();
    let published = find(&log, |e| match e {
        LogEntry::Hub { statement } => {
            matches!(peek_doc::<HubStatement>(statement).unwrap(), HubStatement::DirectoryPublished { serial: 2, .. })
        }
        _ => false,
    })[0];
    let mut d2 = log.keys.directory(2).directory;
    let fresh = NoteSigningKey::generate("camden/data-team").unwrap();
    d2.parties[0].members[0].signing_key = fresh.verifier();
    let d2 = sealdrop_proto::directory::SignedDirectory::sign(d2, &log.keys.authority).unwrap();
    log.entries[published] = log.keys.hub_entry(&HubStatement::DirectoryPublished {
        time: time_of(published as u64),
        serial: 2,
        sha256: d2.sha256_hex(),
    });
    log.directories.insert(2, d2.note);
    log.reseal();
    let r = audit(&log);
    assert!(!r.ok());
    assert!(r.failures.iter().all(|f| f.index.is_some_and(|i| i > published as u64)), "{r}");
    // Every later manifest camden sent and every receipt or fetch it signed fails.
    let camden_sent = find(&log, |e| matches!(e, LogEntry::DropCommitted { .. }))
        .into_iter()
        .filter(|&i| i > published && manifest_at(&log, i).unwrap().sender.as_str() == "camden")
        .collect::<Vec<_>>();
    assert!(!camden_sent.is_empty());
    for i in camden_sent {
        assert_caught(&r, i as u64, "is not signed by camden/data-team's key in directory 2");
    }
    let camden_fetch = find(&log, |e| matches!(e, LogEntry::DropFetched { party, .. } if party.as_str() == "camden"))
        .into_iter()
        .find(|&i| i > published)
        .unwrap();
    assert_caught(&r, camden_fetch as u64, "the fetch request's signature by camden/data-team does not verify");
}

#[test]
fn report_display_lists_failures() {
    let mut log = log();
    log.entries.swap(7, 8);
    let text = audit(&log).to_string();
    assert!(text.contains("FAILED:"), "{text}");
    assert!(text.contains("\n  entry 7: "), "{text}");
}

#[test]
fn unreadable_entries_are_named() {
    let log = log();
    let mut input = log.audit_input(PARTIES);
    let entries = log.entries.clone();
    input.entries = Box::new(
        entries.into_iter().enumerate().map(
            |(i, e)| {
                if i == 10 { Err(std::io::Error::other("disk on fire")) } else { Ok(e) }
            },
        ),
    );
    let r = verify(input);
    assert_caught(&r, 10, "could not be read: disk on fire");
    assert_eq!(r.entries, 10);
    assert!(r.failures.iter().any(|f| f.index.is_none() && f.reason.contains("entries but the log has 10")), "{r}");
}

/// The index of the first `drop_fetched` entry followed by the
/// acknowledgement of the same drop by the same party.
fn fetch_then_ack(log: &GeneratedLog) -> usize {
    find(log, |e| matches!(e, LogEntry::DropFetched { .. }))
        .into_iter()
        .find(|&i| matches!(log.entry(i + 1), LogEntry::DropAcknowledged { .. }))
        .unwrap()
}

#[test]
fn an_acknowledgement_without_a_download_by_that_party_fails() {
    let mut log = log();
    let f = fetch_then_ack(&log);
    // The hub never logged the download: the acknowledgement moves up to `f`.
    log.entries.remove(f);
    log.reseal();
    let r = audit(&log);
    assert_only_at(&r, &[f as u64, f as u64 + 1]);
    assert_caught(&r, f as u64, "which never downloaded it (no drop_fetched entry of");
    // So it counts for nothing, and the deletion as delivered that followed it fails too.
    assert!(matches!(log.entry(f + 1), LogEntry::Hub { .. }));
    assert_caught(&r, f as u64 + 1, "is deleted as delivered, but");
}

#[test]
fn downloads_beyond_the_bound_fail_and_every_one_is_counted() {
    use sealdrop_log::policy::MAX_DOWNLOADS_PER_PARTY;
    let mut log = log();
    let clean_fetches = audit(&log).fetches;
    let f = fetch_then_ack(&log);
    let LogEntry::DropFetched { drop, party, fetched, .. } = log.entry(f) else { unreachable!() };
    // Downloads resumed again and again, all at the first one's time.
    for k in 1..MAX_DOWNLOADS_PER_PARTY {
        log.entries.insert(f + k as usize, log.keys.fetch_entry(&drop, &party, fetched));
    }
    log.reseal();
    let r = audit(&log);
    assert!(r.ok(), "{r}");
    assert_eq!(r.fetches, clean_fetches + MAX_DOWNLOADS_PER_PARTY - 1, "every download is counted");

    let extra = [f as u64 + MAX_DOWNLOADS_PER_PARTY, f as u64 + MAX_DOWNLOADS_PER_PARTY + 1];
    for at in extra {
        log.entries.insert(at as usize, log.keys.fetch_entry(&drop, &party, fetched));
    }
    log.reseal();
    let r = audit(&log);
    assert_only_at(&r, &extra);
    assert_caught(&r, extra[0], &format!("after {MAX_DOWNLOADS_PER_PARTY} logged downloads"));
    assert_caught(&r, extra[1], &format!("after {} logged downloads", MAX_DOWNLOADS_PER_PARTY + 1));
    assert_eq!(r.fetches, clean_fetches + MAX_DOWNLOADS_PER_PARTY + 1, "every download is still counted");
}

/// `log` with a directory version 3 published at its end that revokes the
/// sender's key of the last commit from `revoked_at` (and lists a new key).
fn revoke_last_sender(log: &mut GeneratedLog, revoked_at: sealdrop_proto::Timestamp) -> (usize, String) {
    use sealdrop_proto::directory::{RevokedKey, SignedDirectory};
    let last = *find(log, |e| matches!(e, LogEntry::DropCommitted { .. })).last().unwrap();
    let sender = manifest_at(log, last).unwrap().sender;
    let mut d3 = log.keys.directory(3).directory;
    let p = d3.parties.iter_mut().find(|p| p.id == sender).unwrap();
    let old = p.members[0].clone();
    let fresh = NoteSigningKey::generate(old.signing_key.name()).unwrap();
    p.members[0].signing_key = fresh.verifier();
    p.revoked.push(RevokedKey {
        member: old.member.clone(),
        signing_key: old.signing_key.clone(),
        revoked_at,
        reason: "laptop stolen".into(),
    });
    let d3 = SignedDirectory::sign(d3, &log.keys.authority).unwrap();
    let at = log.entries.len() as u64;
    let publish = HubStatement::DirectoryPublished { time: time_of(at), serial: 3, sha256: d3.sha256_hex() };
    log.entries.push(log.keys.hub_entry(&publish));
    log.directories.insert(3, d3.note);
    log.reseal();
    (last, old.signing_key.name().to_owned())
}

#[test]
fn a_manifest_signed_with_a_key_revoked_before_its_commit_entry_is_listed_not_failed() {
    let mut log = log();
    let last = *find(&log, |e| matches!(e, LogEntry::DropCommitted { .. })).last().unwrap();
    let LogEntry::DropCommitted { committed, .. } = log.entry(last) else { unreachable!() };
    // Revoked from one second after the commit entry: the drop still counts.
    revoke_last_sender(&mut log, committed + jiff::SignedDuration::from_secs(1));
    let r = audit(&log);
    assert!(r.ok(), "{r}");
    assert!(r.used_after_revocation.iter().all(|u| u.index as usize != last), "{r}");
    // Revoked from the commit entry's own time (the last time the laptop was
    // known safe), by a directory published after the commit: the hub was
    // right to accept the drop then, so the log still verifies, but the
    // manifest counts for nothing and the audit lists it, with the key, for
    // the IG officer (what did the key do after it stopped being trusted?).
    log.entries.pop();
    log.directories.remove(&3);
    let (at, signer) = revoke_last_sender(&mut log, committed);
    let r = audit(&log);
    assert!(r.ok(), "a log that recorded a key's use before its revocation was published is sound: {r}");
    let listed = r.used_after_revocation.iter().find(|u| u.index == at as u64).unwrap_or_else(|| panic!("{r}"));
    assert_eq!((listed.what.as_str(), listed.signer.as_str(), listed.serial), ("manifest", signer.as_str(), 3));
    assert_eq!((listed.at, listed.revoked_at), (committed, committed));
    assert!(r.used_after_revocation.iter().all(|u| u.at >= u.revoked_at && u.signer == signer), "{r}");
    let shown = r.to_string();
    assert!(shown.contains(&format!("AFTER REVOCATION entry {at}: a manifest signed at")), "{shown}");
    assert!(shown.contains("OK: no problems found"), "{shown}");
}
