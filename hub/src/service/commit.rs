//! Committing a drop: the sender's signed manifest makes the
//! uploaded ciphertext visible to the recipients.
//!
//! The hub cannot read the ciphertext, but it checks everything it can: the
//! manifest is signed by the calling member's key from the current directory,
//! repeats the drop's facts exactly, was encrypted only to current member keys
//! of the recipient parties (at least one per party), and names the exact
//! bytes the hub received, whose age header holds exactly one recipient
//! stanza per key the manifest lists (`sealdrop_proto::age_header`: the
//! header is not secret, and a drop readable by a key nobody listed must
//! never reach a recipient; under an agreement that requires post-quantum
//! keys, every key and so every stanza must be post-quantum). Only then is the blob promoted and the drop
//! committed, together with its `drop_committed` transfer-log entry (the
//! manifest verbatim), so recipients never see a drop whose manifest the hub
//! refused, and the log never misses a drop they can see.

use std::collections::BTreeSet;

use sealdrop_log::entry::LogEntry;
use sealdrop_proto::age_header;
use sealdrop_proto::api::{Commit, Committed, DropState};
use sealdrop_proto::directory::Directory;
use sealdrop_proto::drop::{EncryptedTo, Manifest};
use sealdrop_proto::error_code::ErrorCode;
use sealdrop_proto::ids::{DropId, PartyId};
use sealdrop_proto::note::{open_doc, peek_doc};
use sealdrop_proto::policy::agreement_admits_key;
use tokio::io::AsyncReadExt as _;

use super::agreement::agreement_allows;
use super::{Caller, DropError, Drops, entry_bytes, ts};
use crate::hub::Hub;
use crate::storage::BlobError;
use crate::storage::meta::{CommitRecord, ContentDigest, DropRecord};
use crate::transfer_log::prove_appended;

pub(super) fn bad_manifest(message: impl Into<String>) -> DropError {
    DropError::new(ErrorCode::BadManifest, message)
}

fn list(parties: &[PartyId]) -> String {
    parties.iter().map(PartyId::as_str).collect::<Vec<_>>().join(", ")
}

/// Verifies the manifest and checks it against the drop and the directory.
pub fn check_manifest(dir: &Directory, caller: &Caller, rec: &DropRecord, note: &str) -> Result<Manifest, DropError> {
    let m = open_doc::<Manifest>(note, std::slice::from_ref(&caller.key))
        .map_err(|e| bad_manifest(format!("{e} (only the key of `{}` is accepted)", caller.key.name())))?
        .doc;
    check_manifest_facts(dir, caller, rec, &m)?;
    Ok(m)
}

/// Checks manifest `m`, whose signature by the caller was verified, against
/// the drop and the directory.
fn check_manifest_facts(dir: &Directory, caller: &Caller, rec: &DropRecord, m: &Manifest) -> Result<(), DropError> {
    let field = |name: &str, found: &dyn std::fmt::Display, expected: &dyn std::fmt::Display| {
        bad_manifest(format!("manifest field `{name}` is {found} but the drop's is {expected}"))
    };
    if m.drop != rec.id {
        return Err(field("drop", &m.drop, &rec.id));
    }
    if m.sender != rec.sender {
        return Err(field("sender", &m.sender, &rec.sender));
    }
    if m.sender_member != caller.member {
        return Err(field("sender_member", &m.sender_member, &format!("{} (the signing member)", caller.member)));
    }
    let mut listed = m.recipients.clone();
    listed.sort();
    let mut expected: Vec<PartyId> = rec.recipients.iter().map(|r| r.party.clone()).collect();
    expected.sort();
    if listed != expected {
        return Err(field("recipients", &format!("[{}]", list(&m.recipients)), &format!("[{}]", list(&expected))));
    }
    if m.agreement != rec.agreement {
        return Err(field("agreement", &m.agreement, &rec.agreement));
    }
    let created = ts(rec.created)?;
    if m.created != created {
        return Err(field("created", &m.created, &created));
    }
    let expires = ts(rec.expires)?;
    if m.expires != expires {
        return Err(field("expires", &m.expires, &expires));
    }
    let mut covered = BTreeSet::new();
    for e in &m.encrypted_to {
        let Some((party, member)) = dir.member_by_key_name(&e.key) else {
            return Err(bad_manifest(format!(
                "encrypted_to key `{}` is not a member key in the hub's current directory (serial {})",
                e.key, dir.serial
            )));
        };
        if !expected.contains(&party.id) {
            return Err(bad_manifest(format!("encrypted_to key `{}` is not a member of a recipient party", e.key)));
        }
        if member.age_recipient != e.age_recipient {
            return Err(bad_manifest(format!(
                "encrypted_to key `{}` names age recipient {} but the directory lists {}",
                e.key, e.age_recipient, member.age_recipient
            )));
        }
        covered.insert(party.id.clone());
        if let Some(a) = dir.agreement(&m.agreement) {
            let kind = sealdrop_proto::age_keys::kind_of(&e.age_recipient);
            if !kind.is_some_and(|k| agreement_admits_key(a, k)) {
                return Err(DropError::new(
                    ErrorCode::NotPostQuantum,
                    format!(
                        "agreement `{}` requires post-quantum keys but encrypted_to key `{}` is {}: encrypt to post-quantum keys only",
                        a.id,
                        e.key,
                        kind.map_or("unreadable", |k| k.as_str())
                    ),
                ));
            }
        }
    }
    if let Some(missed) = expected.iter().find(|p| !covered.contains(p)) {
        return Err(bad_manifest(format!(
            "no encrypted_to entry for recipient party `{missed}`: nobody there could decrypt"
        )));
    }
    if m.directory_serial > dir.serial {
        return Err(bad_manifest(format!(
            "the manifest names directory serial {} but the hub's current directory is serial {}",
            m.directory_serial, dir.serial
        )));
    }
    Ok(())
}

/// Checks the manifest's ciphertext hash and length against what the hub received.
pub fn check_content(m: &Manifest, received: &ContentDigest) -> Result<(), DropError> {
    if m.ciphertext_sha256 != received.sha256 || m.ciphertext_len != received.len {
        return Err(DropError::new(
            ErrorCode::HashMismatch,
            format!(
                "the manifest states {} bytes with SHA-256 {} but the hub received {} bytes with SHA-256 {}: \
                 upload the content again or sign a manifest for what was uploaded",
                m.ciphertext_len, m.ciphertext_sha256, received.len, received.sha256
            ),
        ));
    }
    Ok(())
}

/// The one rule about recipient stanzas ([`age_header::check`]) on the
/// start of a ciphertext (`eof`: `prefix` is all of it): `Ok(true)` once
/// the header is complete and right, `Ok(false)` while more is needed.
/// Commit reads the prefix from the upload, a drop in one request has it in
/// memory; both call this.
pub fn header_verdict(prefix: &[u8], encrypted_to: &[EncryptedTo], eof: bool) -> Result<bool, DropError> {
    match age_header::check(prefix, encrypted_to, eof) {
        Ok(done) => Ok(done.is_some()),
        Err(e) => Err(DropError::new(
            ErrorCode::HeaderMismatch,
            format!(
                "{e}; encrypt the drop to exactly the keys its manifest lists in encrypted_to, upload it again and commit"
            ),
        )),
    }
}

/// Reads the start of drop `id`'s upload, at most as much as an age header
/// for `encrypted_to` may take, and applies [`header_verdict`].
pub async fn check_header(hub: &Hub, id: &DropId, encrypted_to: &[EncryptedTo]) -> Result<(), DropError> {
    let Some(mut upload) = hub.blobs().open_upload(id).await? else {
        return Err(DropError::conflict(format!("drop {id}'s upload is missing: upload the content first")));
    };
    let limit = age_header::max_header_len(encrypted_to.len());
    let mut prefix = Vec::new();
    let mut chunk = vec![0u8; 4096];
    loop {
        let want = chunk.len().min(limit.saturating_sub(prefix.len())).max(1);
        let n = upload.reader.read(&mut chunk[..want]).await.map_err(DropError::internal)?;
        prefix.extend_from_slice(&chunk[..n]);
        if header_verdict(&prefix, encrypted_to, n == 0)? {
            return Ok(());
        }
    }
}

/// Everything a commit checks at the time `now` its log entry takes, which
/// `POST /v1/drops/{id}/commit` and `PUT /v1/drops/{id}` both run (before
/// the blob is promoted and again in the log's turn): the drop has not
/// expired, the agreement is still in force with every party in it (it may
/// have ended, or a new directory version removed a party, since the drop
/// was created), the manifest `note` is the caller's and repeats the drop
/// `rec` ([`check_manifest`]), and names exactly `content`. Returns the
/// manifest and the `drop_committed` entry's bytes.
pub fn check_commit(
    dir: &Directory,
    caller: &Caller,
    rec: &DropRecord,
    note: &str,
    content: &ContentDigest,
    now: jiff::Timestamp,
) -> Result<(Manifest, Vec<u8>), DropError> {
    check_in_force(dir, rec, now)?;
    let manifest = check_manifest(dir, caller, rec, note)?;
    check_content(&manifest, content)?;
    Ok((manifest, committed_entry(note, now)?))
}

/// [`check_commit`] again at a later time `now` (the log's turn) for the
/// manifest it returned, `verified` (parsed from `note`): everything but the
/// signature, which is of the same text by the same key, so verifying it
/// again could only give the same answer (it was a third of the hub's
/// signature checks on a small drop). The directory and the time may have
/// changed since. Returns the `drop_committed` entry's bytes.
pub fn recheck_commit(
    dir: &Directory,
    caller: &Caller,
    rec: &DropRecord,
    verified: &Manifest,
    note: &str,
    content: &ContentDigest,
    now: jiff::Timestamp,
) -> Result<Vec<u8>, DropError> {
    check_in_force(dir, rec, now)?;
    check_manifest_facts(dir, caller, rec, verified)?;
    check_content(verified, content)?;
    committed_entry(note, now)
}

/// The drop has not expired at `now`, and its agreement is in force with
/// every party in it.
fn check_in_force(dir: &Directory, rec: &DropRecord, now: jiff::Timestamp) -> Result<(), DropError> {
    if sealdrop_proto::policy::drop_expired(rec.expires, now.as_second()) {
        return Err(DropError::new(
            ErrorCode::BadExpiry,
            format!("drop {} expired at {} before it was committed: create a new drop", rec.id, ts(rec.expires)?),
        ));
    }
    let mut parties = vec![("your party", &rec.sender)];
    parties.extend(rec.recipients.iter().map(|r| ("recipient", &r.party)));
    agreement_allows(dir, &rec.agreement, &parties, now).map(|_| ())
}

/// The `drop_committed` entry for manifest `note` committed at `now`.
fn committed_entry(note: &str, now: jiff::Timestamp) -> Result<Vec<u8>, DropError> {
    entry_bytes(&LogEntry::DropCommitted { committed: now, manifest: note.to_owned() }, |e| {
        bad_manifest(format!("{e}: the manifest is too large for the transfer log"))
    })
}

/// The resume window as an error message shows it: whole hours as hours.
fn resume_window_text(window: std::time::Duration) -> String {
    match window.as_secs() {
        s if s >= 3600 && s % 3600 == 0 => format!("{} h", s / 3600),
        s => format!("{s} s"),
    }
}

impl Drops<'_> {
    /// A member of the sending party commits drop `id` with its signed
    /// manifest; the answer carries the log entry's proof.
    pub async fn commit(&self, caller: &Caller, id: DropId, req: Commit) -> Result<Committed, DropError> {
        let hub = self.hub;
        let _lock = hub.lock_drop(&id).await?;
        let rec = self.load(&id).await?;
        if rec.sender != caller.party {
            return Err(DropError::forbidden(format!("only the sending party `{}` may commit drop {id}", rec.sender)));
        }
        if rec.state != DropState::Open {
            return Err(DropError::conflict(format!("drop {id} is already committed")));
        }
        let Some(upload) = rec.upload.clone() else {
            return Err(DropError::conflict(format!(
                "drop {id} has no content yet: upload the content first (an upload that is not committed is \
                 removed {} after its last activity)",
                resume_window_text(hub.config().upload_resume_window)
            )));
        };
        // The header check reads storage, so it runs before the log turn (other
        // commits do not wait on it); the keys it counts come from the same
        // manifest text `check_manifest` verifies below, and its verdict is
        // given after that one's, so a manifest that is wrong is named first.
        let header = match peek_doc::<Manifest>(&req.manifest) {
            Ok(claimed) => check_header(hub, &id, &claimed.encrypted_to).await,
            Err(e) => Err(bad_manifest(e.to_string())),
        };
        // Everything is checked before the blob is promoted, so a refused
        // commit keeps the upload for a corrected one; and the promotion (a
        // rename, or requests to the object store) runs before the log's
        // turn, which every commit of every instance takes in order.
        let (manifest, _) = check_commit(&hub.directory().directory, caller, &rec, &req.manifest, &upload, hub.now())?;
        header?;

        match hub.blobs().promote(&id).await {
            Ok(()) => crate::failpoint::hit(crate::failpoint::COMMIT_AFTER_PROMOTE),
            Err(BlobError::NoUpload(_)) => {
                hub.drops().set_upload(&id, None, hub.now().as_second()).await?;
                return Err(DropError::conflict(format!("drop {id}'s upload is missing: upload the content first")));
            }
            Err(e) => return Err(e.into()),
        }
        let turn = hub.log_turn().await?;
        let now = turn.now();
        // Checked again at the entry's time: the drop may have expired, or a
        // directory that ends the agreement been accepted, while the blob
        // was promoted (rarely; the upload is then gone, and the sender
        // uploads again).
        let log_entry =
            match recheck_commit(&hub.directory().directory, caller, &rec, &manifest, &req.manifest, &upload, now) {
                Ok(entry) => entry,
                Err(refused) => {
                    drop(turn);
                    if let Err(e) = hub.blobs().delete_blob(&id).await {
                        tracing::warn!(error = %e, "could not remove the blob of a refused commit");
                    }
                    hub.drops().set_upload(&id, None, now.as_second()).await?;
                    return Err(refused);
                }
            };
        let record = CommitRecord {
            sender_member: caller.member.clone(),
            manifest: req.manifest,
            content: upload,
            committed: now.as_second(),
            log_entry,
        };
        let known_size = req.known_size;
        let committed: Result<_, DropError> = async {
            let Some(index) = hub.drops().commit_drop(&id, &record, Box::new(turn)).await? else { return Ok(None) };
            Ok(Some((index, prove_appended(hub.log(), index, known_size).await?)))
        }
        .await;
        let Ok(Some((log_index, proof))) = committed else {
            // The drop stays open and invisible; take the blob back out so the
            // files agree with the database, and have the sender upload again.
            if let Err(e) = hub.blobs().delete_blob(&id).await {
                tracing::warn!(error = %e, "could not remove the blob of a failed commit");
            }
            hub.drops().set_upload(&id, None, now.as_second()).await?;
            committed?;
            return Err(DropError::conflict(format!("drop {id} changed during the commit: upload the content again")));
        };
        crate::failpoint::hit(crate::failpoint::COMMIT_AFTER_DB);
        // The commit is durable: wake the recipients' waiting inbox requests
        // (each reads only its own party's inbox).
        for r in &rec.recipients {
            hub.inbox_waits().committed(&r.party);
        }
        tracing::info!(size = manifest.ciphertext_len, log_index, "committed");
        Ok(Committed { id, committed: now, log_index, proof: Some(proof), already: false })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::test_support::{caller_of, sample};
    use crate::storage::meta::RecipientRecord;
    use sealdrop_proto::drop::EncryptedTo;
    use sealdrop_proto::ids::DropId;
    use sealdrop_proto::keys::MemberSecretKey;
    use sealdrop_proto::note::sign_doc;

    struct Case {
        keys: Vec<MemberSecretKey>,
        dir: Directory,
        rec: DropRecord,
        manifest: Manifest,
    }

    fn case() -> Case {
        let (_, keys, dir) = sample();
        let id = DropId::random();
        let parties: Vec<PartyId> = ["islington", "hackney"].iter().map(|p| p.parse().unwrap()).collect();
        let rec = DropRecord {
            id: id.clone(),
            sender: keys[0].party.clone(),
            sender_member: keys[0].member.clone(),
            agreement: "inner-fsm".into(),
            created: 1_780_000_000,
            expires: 1_780_086_400,
            state: DropState::Open,
            upload: Some(ContentDigest { sha256: "ab".repeat(32), len: 42 }),
            content: None,
            committed: None,
            manifest: None,
            deleted: None,
            commit_index: None,
            end_index: None,
            recipients: parties.iter().cloned().map(RecipientRecord::waiting).collect(),
        };
        let manifest = Manifest {
            drop: id,
            sender: keys[0].party.clone(),
            sender_member: keys[0].member.clone(),
            recipients: vec![parties[1].clone(), parties[0].clone()],
            encrypted_to: keys[1..3]
                .iter()
                .map(|k| EncryptedTo { key: k.signing.name().to_owned(), age_recipient: k.public().age_recipient })
                .collect(),
            agreement: "inner-fsm".into(),
            directory_serial: dir.serial,
            ciphertext_sha256: "ab".repeat(32),
            ciphertext_len: 42,
            created: ts(rec.created).unwrap(),
            expires: ts(rec.expires).unwrap(),
        };
        Case { keys, dir, rec, manifest }
    }

    fn check(c: &Case, m: &Manifest, signer: &MemberSecretKey) -> Result<Manifest, DropError> {
        let caller = caller_of(&c.dir, &c.keys[0]);
        check_manifest(&c.dir, &caller, &c.rec, &sign_doc(m, &signer.signing))
    }

    fn refused(c: &Case, edit: impl FnOnce(&mut Manifest), needle: &str) {
        let mut m = c.manifest.clone();
        edit(&mut m);
        let err = check(c, &m, &c.keys[0]).unwrap_err();
        assert_eq!(err.code(), ErrorCode::BadManifest);
        assert!(err.message().contains(needle), "{needle:?} not in {:?}", err.message());
    }

    #[test]
    fn a_matching_manifest_passes() {
        let c = case();
        let m = check(&c, &c.manifest, &c.keys[0]).unwrap();
        check_content(&m, c.rec.upload.as_ref().unwrap()).unwrap();
    }

    #[test]
    fn only_the_calling_members_signature_counts() {
        let c = case();
        let err = check(&c, &c.manifest, &c.keys[1]).unwrap_err();
        assert_eq!(err.code(), ErrorCode::BadManifest);
        assert!(err.message().contains("camden/data-team"), "{}", err.message());
    }

    #[test]
    fn each_field_is_checked() {
        let c = case();
        refused(&c, |m| m.drop = DropId::random(), "`drop`");
        refused(&c, |m| m.sender = "hackney".parse().unwrap(), "`sender`");
        refused(&c, |m| m.sender_member = "someone".parse().unwrap(), "`sender_member`");
        refused(&c, |m| m.recipients.truncate(1), "`recipients`");
        refused(&c, |m| m.recipients.push("islington".parse().unwrap()), "`recipients`");
        refused(&c, |m| m.agreement = "other".into(), "`agreement`");
        refused(&c, |m| m.created = ts(1).unwrap(), "`created`");
        refused(&c, |m| m.expires = ts(1).unwrap(), "`expires`");
        refused(&c, |m| m.directory_serial = 99, "serial 99");
        refused(&c, |m| m.encrypted_to.truncate(1), "recipient party `hackney`");
        refused(&c, |m| m.encrypted_to[0].key = "islington/nobody".into(), "not a member key");
        let barnet = c.keys[3].signing.name().to_owned();
        refused(&c, |m| m.encrypted_to[0].key = barnet, "not a member of a recipient party");
        let wrong_age = c.keys[2].public().age_recipient;
        refused(&c, |m| m.encrypted_to[0].age_recipient = wrong_age, "names age recipient");
    }

    /// The hub's own check, for a directory that reached it unchecked (a
    /// coordinator cannot sign one with a classic key under such an
    /// agreement): any other kind of key is refused before the header is read.
    #[test]
    fn under_an_agreement_requiring_post_quantum_keys_a_classic_key_is_refused() {
        let mut c = case();
        c.dir.agreements[0].require_pq = true;
        check(&c, &c.manifest, &c.keys[0]).expect("the sample's keys are post-quantum");
        let classic = MemberSecretKey::generate_classic("hackney".parse().unwrap(), "data-team".parse().unwrap());
        let hackney = c.dir.parties.iter_mut().find(|p| p.id.as_str() == "hackney").unwrap();
        hackney.members[0].age_recipient = classic.public().age_recipient.clone();
        let mut m = c.manifest.clone();
        m.encrypted_to.iter_mut().find(|e| e.key.starts_with("hackney/")).unwrap().age_recipient =
            classic.public().age_recipient;
        let err = check(&c, &m, &c.keys[0]).unwrap_err();
        assert_eq!(err.code(), ErrorCode::NotPostQuantum);
        assert!(err.message().contains("hackney/data-team` is classic"), "{}", err.message());
    }

    /// In the log's turn the signature is not verified again, but
    /// everything the directory or the time decides is.
    #[test]
    fn a_recheck_applies_the_directory_and_time_of_the_turn() {
        let c = case();
        let caller = caller_of(&c.dir, &c.keys[0]);
        let note = sign_doc(&c.manifest, &c.keys[0].signing);
        let content = c.rec.upload.clone().unwrap();
        let at = |s: i64| jiff::Timestamp::from_second(s).unwrap();
        let (verified, entry) = check_commit(&c.dir, &caller, &c.rec, &note, &content, at(c.rec.created)).unwrap();
        let again = recheck_commit(&c.dir, &caller, &c.rec, &verified, &note, &content, at(c.rec.created)).unwrap();
        assert_eq!(again, entry, "the same entry at the same time");

        let late = recheck_commit(&c.dir, &caller, &c.rec, &verified, &note, &content, at(c.rec.expires));
        assert_eq!(late.unwrap_err().code(), ErrorCode::BadExpiry);
        // A new directory version changed a recipient's key meanwhile.
        let mut dir = c.dir.clone();
        let hackney = dir.parties.iter_mut().find(|p| p.id.as_str() == "hackney").unwrap();
        hackney.members[0].age_recipient = c.keys[0].public().age_recipient;
        let changed = recheck_commit(&dir, &caller, &c.rec, &verified, &note, &content, at(c.rec.created));
        let err = changed.unwrap_err();
        assert_eq!(err.code(), ErrorCode::BadManifest);
        assert!(err.message().contains("the directory lists"), "{}", err.message());
        // Or the content differs from what the manifest names.
        let other = ContentDigest { len: 43, ..content };
        let wrong = recheck_commit(&c.dir, &caller, &c.rec, &verified, &note, &other, at(c.rec.created));
        assert_eq!(wrong.unwrap_err().code(), ErrorCode::HashMismatch);
    }

    #[test]
    fn content_must_match_what_was_received() {
        let c = case();
        let mut m = c.manifest.clone();
        m.ciphertext_len = 43;
        assert_eq!(check_content(&m, c.rec.upload.as_ref().unwrap()).unwrap_err().code(), ErrorCode::HashMismatch);
        m.ciphertext_len = 42;
        m.ciphertext_sha256 = "cd".repeat(32);
        assert_eq!(check_content(&m, c.rec.upload.as_ref().unwrap()).unwrap_err().code(), ErrorCode::HashMismatch);
    }

    #[test]
    fn the_resume_window_is_shown_in_hours_when_whole() {
        use std::time::Duration;
        assert_eq!(resume_window_text(Duration::from_secs(86_400)), "24 h");
        assert_eq!(resume_window_text(Duration::from_secs(7_200)), "2 h");
        assert_eq!(resume_window_text(Duration::from_secs(5_400)), "5400 s");
        assert_eq!(resume_window_text(Duration::from_secs(60)), "60 s");
    }
}
