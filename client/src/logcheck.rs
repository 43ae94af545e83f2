//! Keeping the hub honest. At every interaction the client fetches the hub's
//! signed checkpoint, checks it with the pinned log key, and verifies a
//! consistency proof from the newest checkpoint it verified before, so the
//! hub cannot rewrite or drop history without this client noticing. When
//! something does not add up, both signed checkpoints are kept as evidence.
//! After a commit or an acknowledgement the client keeps an offline receipt
//! (c2sp.org/tlog-proof) proving the hub logged it.
//!
//! The log key comes from the signed directory when the coordinator lists
//! the hub there; otherwise it is pinned at first contact (trust on first
//! use, with its fingerprint shown) and a changed key is refused.

use std::path::{Path, PathBuf};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;

use sealdrop_log::checkpoint::{self, SignedCheckpoint};
use sealdrop_log::entry::LogEntry;
use sealdrop_log::proof::OfflineProof;
use sealdrop_log::{Hash, cosign, tree};
use sealdrop_proto::api::{ConsistencyProof, Cosign, HubInfo, InclusionProof, LogProof};
use sealdrop_proto::directory::Directory;
use sealdrop_proto::keys::{NoteSigningKey, NoteVerifierKey};

use crate::error::{Error, ErrorCode, Result};
use crate::fsutil::{read_secret_file, write_atomic};
use crate::transport::HubApi;

/// Folder in the state dir for everything about the log.
pub const LOG_DIR: &str = "log";
const KEY_FILE: &str = "log.vkey";
/// The newest verified checkpoint, before it was kept in two slots (read only).
const LEGACY_CHECKPOINT_FILE: &str = "checkpoint";
/// The two slots the newest verified checkpoint is written to in turn.
const CHECKPOINT_SLOTS: [&str; 2] = ["checkpoint.a", "checkpoint.b"];

fn log_dir(state_dir: &Path) -> PathBuf {
    state_dir.join(LOG_DIR)
}

fn decode_hashes(hashes: &[String]) -> Result<Vec<Hash>> {
    hashes
        .iter()
        .map(|h| {
            let raw = B64.decode(h).ok().and_then(|b| <[u8; 32]>::try_from(b).ok());
            raw.map(Hash).ok_or_else(|| Error::new(ErrorCode::LogBadProof, "the hub sent a malformed proof hash"))
        })
        .collect()
}

/// The log key pinned for this hub by an earlier [`log_key`], if any.
pub fn pinned_log_key(state_dir: &Path) -> Result<Option<NoteVerifierKey>> {
    let pin_path = log_dir(state_dir).join(KEY_FILE);
    match std::fs::read_to_string(&pin_path) {
        Ok(text) => Ok(Some(text.trim().parse::<NoteVerifierKey>().map_err(|e| {
            Error::new(
                ErrorCode::LogKeyInvalid,
                format!("the pinned log key in {} is not valid: {e}", pin_path.display()),
            )
        })?)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(Error::io(format!("cannot read {}", pin_path.display()), e)),
    }
}

/// The log key to trust for this hub.
pub fn log_key(state_dir: &Path, dir: &Directory, info: &HubInfo) -> Result<NoteVerifierKey> {
    let pin_path = log_dir(state_dir).join(KEY_FILE);
    let pinned = pinned_log_key(state_dir)?;
    if let Some(listing) = &dir.hub {
        if listing.origin != info.origin {
            return Err(Error::new(
                ErrorCode::LogOriginMismatch,
                format!(
                    "this hub calls itself {:?} but the signed directory lists the hub {:?}; check --hub",
                    info.origin, listing.origin
                ),
            ));
        }
        // The coordinator vouches for the key: it replaces any earlier pin.
        if pinned.as_ref() != Some(&listing.log_key) {
            write_atomic(&pin_path, format!("{}\n", listing.log_key).as_bytes(), false)?;
        }
        return Ok(listing.log_key.clone());
    }
    let offered: NoteVerifierKey = info.log_key.parse().map_err(|e| {
        Error::new(
            ErrorCode::LogKeyInvalid,
            format!("the hub's log key {:?} is not a valid verifier key: {e}", info.log_key),
        )
    })?;
    if offered.name() != info.origin {
        return Err(Error::new(
            ErrorCode::LogKeyInvalid,
            format!("the hub's log key is named {:?}, not after its origin {:?}", offered.name(), info.origin),
        ));
    }
    match pinned {
        Some(p) if p == offered => Ok(p),
        Some(p) => Err(Error::new(
            ErrorCode::LogKeyChanged,
            format!(
                "the hub's log key changed from {p} (fingerprint {}) to {offered} (fingerprint {}) and the signed directory does not vouch for it; do not use this hub until the coordinator confirms (then delete {})",
                p.fingerprint(),
                offered.fingerprint(),
                pin_path.display()
            ),
        )),
        None => {
            write_atomic(&pin_path, format!("{offered}\n").as_bytes(), false)?;
            eprintln!(
                "note: pinned the hub's log key {} (fingerprint {}) at first contact; compare the fingerprint with the coordinator",
                offered.name(),
                offered.fingerprint()
            );
            Ok(offered)
        }
    }
}

/// The newest checkpoint this client verified, if any.
///
/// It is kept in two slot files written in turn, in place: a new file per
/// update (temp file + rename) deleted an inode per drop, and on ext4
/// without a journal every file created later scans the inodes deleted in
/// the last 30 s one by one, which was the largest single cost of sending
/// many small drops. A slot cut short by a crash fails its signature check
/// and the other slot, one update older, is used.
pub fn last_verified(state_dir: &Path, key: &NoteVerifierKey) -> Result<Option<SignedCheckpoint>> {
    Ok(read_slots(state_dir, key)?.newest)
}

/// What the checkpoint slots hold.
struct Slots {
    /// The newest checkpoint that verifies, in any slot.
    newest: Option<SignedCheckpoint>,
    /// The slot to write next: one that does not hold `newest`.
    next: PathBuf,
}

fn read_slots(state_dir: &Path, key: &NoteVerifierKey) -> Result<Slots> {
    let dir = log_dir(state_dir);
    let mut newest: Option<(SignedCheckpoint, Option<usize>)> = None;
    let mut unreadable = Vec::new();
    let files = CHECKPOINT_SLOTS.iter().map(|n| (Some(n), dir.join(n)));
    let legacy = std::iter::once((None, dir.join(LEGACY_CHECKPOINT_FILE)));
    for (slot, path) in files.chain(legacy) {
        let slot = slot.map(|n| CHECKPOINT_SLOTS.iter().position(|s| s == n).unwrap_or(0));
        let note = match std::fs::read_to_string(&path) {
            Ok(note) => note,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) if e.kind() == std::io::ErrorKind::InvalidData => {
                unreadable.push(format!("{} is not text", path.display()));
                continue;
            }
            Err(e) => return Err(Error::io(format!("cannot read {}", path.display()), e)),
        };
        match open_verified(&note, key) {
            Ok(cp) => {
                if newest.as_ref().is_none_or(|(n, _)| cp.size > n.size) {
                    newest = Some((cp, slot));
                }
            }
            Err(e) => unreadable.push(format!("{} does not verify with the log key: {e}", path.display())),
        }
    }
    if newest.is_none() && !unreadable.is_empty() {
        return Err(Error::new(ErrorCode::LogStateInvalid, unreadable.join("; ")));
    }
    let next = match newest.as_ref().and_then(|(_, slot)| *slot) {
        Some(i) => CHECKPOINT_SLOTS[1 - i],
        None => CHECKPOINT_SLOTS[0],
    };
    Ok(Slots { newest: newest.map(|(cp, _)| cp), next: dir.join(next) })
}

/// Opens a checkpoint note read back from a slot, verifying it with `key`
/// unless this process verified the same note with the same key before:
/// the slots are read two or three times per drop, and a signature check
/// costs far more than the read.
fn open_verified(note: &str, key: &NoteVerifierKey) -> std::result::Result<SignedCheckpoint, String> {
    use std::sync::Mutex;
    /// Notes verified so far, with the key that verified them (a few at most).
    static VERIFIED: Mutex<Vec<(String, String, SignedCheckpoint)>> = Mutex::new(Vec::new());
    let key_text = key.to_string();
    let mut cache = VERIFIED.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    if let Some((_, _, cp)) = cache.iter().find(|(n, k, _)| n == note && *k == key_text) {
        return Ok(cp.clone());
    }
    let cp = checkpoint::open(note, key).map_err(|e| e.to_string())?;
    if cache.len() >= 8 {
        cache.remove(0);
    }
    cache.push((note.to_owned(), key_text, cp.clone()));
    Ok(cp)
}

/// Records `cp` as the newest verified checkpoint: overwrites `slot` (one
/// that does not hold the newest before it) in place. Not synced: a slot
/// the kernel had not written back when the power went is either the old
/// checkpoint (still verified, only older) or cut short (it fails its
/// signature check and the other slot is used), and the newest checkpoint
/// is in the journal and the receipts too. The block is overwritten in
/// place many times a second while many drops are sent and written back once.
fn keep_newest(state_dir: &Path, slot: &Path, cp: &SignedCheckpoint) -> Result<()> {
    use std::io::Write as _;
    crate::fsutil::create_private_dir(&log_dir(state_dir))?;
    let failed = |e| Error::io(format!("cannot write {}", slot.display()), e);
    let mut file = std::fs::OpenOptions::new().write(true).create(true).truncate(false).open(slot).map_err(failed)?;
    file.write_all(cp.note.as_bytes()).map_err(failed)?;
    file.set_len(cp.note.len() as u64).map_err(failed)
}

fn keep_evidence(
    state_dir: &Path,
    verified: &SignedCheckpoint,
    offered_note: &str,
    now: jiff::Timestamp,
) -> Result<PathBuf> {
    let dir = log_dir(state_dir).join("evidence").join(now.as_second().to_string());
    write_atomic(&dir.join("verified-before.checkpoint"), verified.note.as_bytes(), false)?;
    write_atomic(&dir.join("offered-now.checkpoint"), offered_note.as_bytes(), false)?;
    Ok(dir)
}

/// Verifies the hub's current checkpoint and its consistency with the newest
/// one verified before; records it as the newest.
pub fn check(state_dir: &Path, hub: &HubApi, key: &NoteVerifierKey, now: jiff::Timestamp) -> Result<SignedCheckpoint> {
    check_served(state_dir, hub, key, now, &hub.checkpoint()?.note)
}

/// [`check`] for the note `text` the hub served as its current checkpoint
/// (fetched before the log key was settled).
pub fn check_served(
    state_dir: &Path,
    hub: &HubApi,
    key: &NoteVerifierKey,
    now: jiff::Timestamp,
    text: &str,
) -> Result<SignedCheckpoint> {
    // Only a checkpoint sent with a change can be older than the newest verified.
    accept(state_dir, hub, key, now, text, Offered::Current)?
        .ok_or_else(|| Error::new(ErrorCode::Internal, "the hub's current checkpoint was taken for an older one"))
}

/// A checkpoint the hub offered, and how it came.
enum Offered<'a> {
    /// Asked for as the hub's current one: smaller than one verified before
    /// means the hub rolled its log back.
    Current,
    /// Sent with the answer to a change, with the consistency proof from the
    /// size the request named: it may be older than one this client verified
    /// meanwhile (another command of the same state dir), which proves nothing.
    WithChange(Option<&'a ConsistencyProof>),
}

/// Verifies the checkpoint note `text` with the log key and its consistency
/// with the newest checkpoint verified before (using the proof offered with
/// it when it fits, else asking the hub), and records it as the newest.
/// `None`: a checkpoint sent with a change is verified but older than the
/// newest verified one, so it is not the one to keep a receipt under.
fn accept(
    state_dir: &Path,
    hub: &HubApi,
    key: &NoteVerifierKey,
    now: jiff::Timestamp,
    text: &str,
    offered_as: Offered<'_>,
) -> Result<Option<SignedCheckpoint>> {
    let offered = checkpoint::open(text, key).map_err(|e| {
        Error::new(
            ErrorCode::LogBadCheckpoint,
            format!("the hub's checkpoint does not verify with its log key: {e}; do not trust this hub"),
        )
    })?;
    let slots = read_slots(state_dir, key)?;
    if let Some(old) = slots.newest {
        let broken = |why: String| -> Result<Option<SignedCheckpoint>> {
            let evidence = keep_evidence(state_dir, &old, text, now)?;
            Err(Error::new(
                ErrorCode::LogInconsistent,
                format!(
                    "the hub's log is not consistent with what this client verified before: {why}; both signed checkpoints are kept in {} as evidence, report it to the coordinator",
                    evidence.display()
                ),
            ))
        };
        if offered.size < old.size {
            return match offered_as {
                Offered::Current => broken(format!("it shrank from {} to {} entries", old.size, offered.size)),
                Offered::WithChange(_) => Ok(None),
            };
        }
        if offered.size == old.size && offered.root != old.root {
            return broken(format!("two different trees of {} entries (a fork)", old.size));
        }
        if offered.size == old.size {
            return Ok(Some(old));
        }
        let hashes = match offered_as {
            Offered::WithChange(Some(p)) if p.old == old.size && p.new == offered.size => p.hashes.clone(),
            _ => {
                let proof: ConsistencyProof = hub.consistency_proof(old.size, offered.size)?;
                proof.hashes
            }
        };
        let hashes = decode_hashes(&hashes)?;
        if let Err(e) = tree::verify_consistency(&hashes, old.size, old.root, offered.size, offered.root) {
            return broken(format!(
                "the tree of {} entries is not an extension of the one of {} entries ({e})",
                offered.size, old.size
            ));
        }
    }
    keep_newest(state_dir, &slots.next, &offered)?;
    crate::journal::record_checkpoint(state_dir, now, &offered);
    Ok(Some(offered))
}

/// The size of the newest checkpoint this client verified, for a change's
/// request to ask for the consistency proof from there ([`LogProof`]).
pub fn known_size(state_dir: &Path, key: &NoteVerifierKey) -> Option<u64> {
    last_verified(state_dir, key).ok().flatten().map(|cp| cp.size)
}

/// Proves that entry `index` is in the log under the newest verified
/// checkpoint, checks that `expected` says it is the right entry, and keeps
/// the offline receipt as `<state>/log/receipts/<name>.tlog-proof`.
///
/// `proof` is what the hub sent with the change (see [`LogProof`]): when it
/// verifies it saves asking for the checkpoint, entry and proofs; when its
/// checkpoint is older than one verified meanwhile, the receipt is taken
/// the long way, under the current checkpoint.
#[allow(clippy::too_many_arguments)]
pub fn keep_receipt(
    state_dir: &Path,
    hub: &HubApi,
    key: &NoteVerifierKey,
    now: jiff::Timestamp,
    index: u64,
    name: &str,
    expected: impl Fn(&LogEntry) -> bool,
    proof: Option<&LogProof>,
) -> Result<PathBuf> {
    if let Some(p) = proof {
        let entry = B64.decode(&p.entry).map_err(|_| {
            Error::new(ErrorCode::LogBadEntry, format!("the hub sent log entry {index} in a form that is not base64"))
        })?;
        if let Some(cp) = accept(state_dir, hub, key, now, &p.checkpoint, Offered::WithChange(p.consistency.as_ref()))?
        {
            return keep_verified_receipt(state_dir, key, index, name, &expected, &cp, &entry, &p.inclusion);
        }
    }
    let cp = check(state_dir, hub, key, now)?;
    let entry = hub.log_entry(index)?;
    let proof: InclusionProof = hub.inclusion_proof(index, cp.size)?;
    keep_verified_receipt(state_dir, key, index, name, &expected, &cp, &entry, &proof.hashes)
}

/// Checks that `entry` is what `expected` accepts and that `inclusion`
/// proves it is entry `index` under `cp`, then writes the receipt.
#[allow(clippy::too_many_arguments)]
fn keep_verified_receipt(
    state_dir: &Path,
    key: &NoteVerifierKey,
    index: u64,
    name: &str,
    expected: &impl Fn(&LogEntry) -> bool,
    cp: &SignedCheckpoint,
    entry: &[u8],
    inclusion: &[String],
) -> Result<PathBuf> {
    let parsed = LogEntry::from_bytes(entry)
        .map_err(|e| Error::new(ErrorCode::LogBadEntry, format!("log entry {index} is not valid: {e}")))?;
    if !expected(&parsed) {
        return Err(Error::new(
            ErrorCode::LogWrongEntry,
            format!("the hub says entry {index} records {name}, but it records something else"),
        ));
    }
    let receipt = OfflineProof {
        index,
        hashes: decode_hashes(inclusion)?,
        extra: Some(name.to_owned()),
        checkpoint: cp.note.clone(),
    };
    receipt.verify(entry, key).map_err(|e| {
        Error::new(ErrorCode::LogNotIncluded, format!("the hub did not prove that it logged {name}: {e}"))
    })?;
    let path = log_dir(state_dir).join("receipts").join(format!("{name}.tlog-proof"));
    write_atomic(&path, receipt.to_text().as_bytes(), false)?;
    Ok(path)
}

/// Fetches log entry `index` and proves it is in the log under `cp`, a
/// checkpoint this client verified (signature and consistency): the entry's
/// bytes, to be read only after this returns. A hub that points at an
/// entry beyond `cp`, serves other bytes than the tree holds, or no proof,
/// fails with a verification error (`log_not_included`).
pub fn prove_entry(hub: &HubApi, cp: &SignedCheckpoint, index: u64) -> Result<Vec<u8>> {
    if index >= cp.size {
        return Err(Error::new(
            ErrorCode::LogNotIncluded,
            format!("the hub points to log entry {index}, but the log it signed has {} entries", cp.size),
        ));
    }
    let entry = hub.log_entry(index)?;
    let proof: InclusionProof = hub.inclusion_proof(index, cp.size)?;
    let hashes = decode_hashes(&proof.hashes)?;
    tree::verify_inclusion(&hashes, index, cp.size, tree::leaf_hash(&entry), cp.root).map_err(|e| {
        Error::new(
            ErrorCode::LogNotIncluded,
            format!("the hub did not prove that log entry {index} is in its log of {} entries: {e}", cp.size),
        )
    })?;
    Ok(entry)
}

/// [`prove_entry`], first verifying the hub's current checkpoint (and its
/// consistency) in place of `cp` when entry `index` is beyond it: an entry
/// appended after the command verified `cp` (a recipient acknowledging
/// meanwhile) is not a lie.
pub fn prove_recent_entry(
    state_dir: &Path,
    hub: &HubApi,
    key: &NoteVerifierKey,
    now: jiff::Timestamp,
    cp: &mut SignedCheckpoint,
    index: u64,
) -> Result<Vec<u8>> {
    if index >= cp.size {
        *cp = check(state_dir, hub, key, now)?;
    }
    prove_entry(hub, cp, index)
}

/// Loads a witness key file (signed-note private key text).
pub fn load_witness_key(path: &Path) -> Result<NoteSigningKey> {
    let text = read_secret_file(path, "witness key file")?;
    NoteSigningKey::from_note_text(&text)
        .map_err(|e| Error::new(ErrorCode::KeyInvalid, format!("{} is not a witness key: {e}", path.display())))
}

/// Cosigns a checkpoint this client verified as consistent and hands the
/// cosignature to the hub.
pub fn witness(hub: &HubApi, witness: &NoteSigningKey, cp: &SignedCheckpoint, now: jiff::Timestamp) -> Result<String> {
    let time = u64::try_from(now.as_second()).map_err(|_| Error::new(ErrorCode::Clock, "the clock is before 1970"))?;
    let line = cosign::cosign(&cp.note, witness, time);
    hub.cosign(&Cosign { size: cp.size, line: line.clone() })?;
    Ok(line)
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use sealdrop_log::tree::MemoryTree;
    use sealdrop_proto::clock::SystemClock;

    use super::*;

    const ORIGIN: &str = "hub.example.test";

    /// A client's state dir, the hub's log key, and a hub address nothing
    /// listens on: a test passes only if it never needed to ask the hub.
    struct Client {
        state: tempfile::TempDir,
        log_key: NoteSigningKey,
        hub: HubApi,
    }

    fn client() -> Client {
        let hub = HubApi::new("http://127.0.0.1:9", None, Arc::new(SystemClock)).unwrap();
        Client { state: tempfile::tempdir().unwrap(), log_key: NoteSigningKey::generate(ORIGIN).unwrap(), hub }
    }

    fn tree(entries: &[&str]) -> MemoryTree {
        MemoryTree::from_entries(entries.iter().map(|e| e.as_bytes()))
    }

    fn b64(hashes: &[Hash]) -> Vec<String> {
        hashes.iter().map(|h| B64.encode(h.0)).collect()
    }

    /// The proof a hub sends with the change that appended the last entry of `t`.
    fn proof_of_last(c: &Client, t: &MemoryTree, known: u64) -> LogProof {
        let size = t.size();
        LogProof {
            checkpoint: checkpoint::sign(&c.log_key, size, &t.root()),
            entry: B64.encode(b"entry-last"),
            inclusion: b64(&t.inclusion_proof(size - 1, size).unwrap()),
            consistency: Some(ConsistencyProof {
                old: known,
                new: size,
                hashes: b64(&t.consistency_proof(known, size).unwrap()),
            }),
        }
    }

    /// Records the checkpoint of `t` as the newest this client verified.
    fn verified(c: &Client, t: &MemoryTree) {
        let note = checkpoint::sign(&c.log_key, t.size(), &t.root());
        let cp = checkpoint::open(&note, &c.log_key.verifier()).unwrap();
        let slot = read_slots(c.state.path(), &c.log_key.verifier()).unwrap().next;
        keep_newest(c.state.path(), &slot, &cp).unwrap();
    }

    fn keep(c: &Client, index: u64, proof: &LogProof) -> Result<PathBuf> {
        keep_receipt(
            c.state.path(),
            &c.hub,
            &c.log_key.verifier(),
            jiff::Timestamp::now(),
            index,
            "d-test.committed",
            |e| matches!(e, LogEntry::Hub { .. }),
            Some(proof),
        )
    }

    /// A log entry `expected` accepts (any hub statement).
    fn hub_statement(c: &Client) -> Vec<u8> {
        let statement = sealdrop_log::entry::HubStatement::DirectoryPublished {
            time: jiff::Timestamp::now(),
            serial: 1,
            sha256: "00".repeat(32),
        };
        LogEntry::Hub { statement: sealdrop_proto::note::sign_doc(&statement, &c.log_key) }.to_bytes().unwrap()
    }

    #[test]
    fn a_changes_proof_keeps_the_receipt_without_asking_the_hub() {
        let c = client();
        let entry = hub_statement(&c);
        let mut t = tree(&["a", "b"]);
        verified(&c, &t);
        t.append(&entry);
        let mut proof = proof_of_last(&c, &t, 2);
        proof.entry = B64.encode(&entry);
        let path = keep(&c, 2, &proof).unwrap();
        let receipt = OfflineProof::from_text(&std::fs::read_to_string(path).unwrap()).unwrap();
        receipt.verify(&entry, &c.log_key.verifier()).unwrap();
        assert_eq!(last_verified(c.state.path(), &c.log_key.verifier()).unwrap().unwrap().size, 3);
        assert_eq!(known_size(c.state.path(), &c.log_key.verifier()), Some(3));
    }

    #[test]
    fn a_changes_proof_from_a_forked_log_is_kept_as_evidence() {
        let c = client();
        let entry = hub_statement(&c);
        verified(&c, &tree(&["a", "b"]));
        // Another history, also signed with the log key, with a proof that is
        // consistent only within itself.
        let mut other = tree(&["a", "B"]);
        other.append(&entry);
        let mut proof = proof_of_last(&c, &other, 2);
        proof.entry = B64.encode(&entry);
        let e = keep(&c, 2, &proof).unwrap_err();
        assert_eq!(e.code, "log_inconsistent", "{}", e.message);
        let evidence = log_dir(c.state.path()).join("evidence");
        assert_eq!(std::fs::read_dir(evidence).unwrap().count(), 1);
        assert_eq!(last_verified(c.state.path(), &c.log_key.verifier()).unwrap().unwrap().size, 2);
    }

    #[test]
    fn a_changes_proof_must_prove_the_entry_it_names() {
        let c = client();
        let entry = hub_statement(&c);
        let mut t = tree(&["a", "b"]);
        verified(&c, &t);
        t.append(&entry);
        // An entry the caller does not expect.
        let wrong = keep(&c, 2, &proof_of_last(&c, &t, 2)).unwrap_err();
        assert_eq!(wrong.code, "log_bad_entry", "{}", wrong.message);
        // The expected entry, but not the one the tree holds at that index.
        let mut proof = proof_of_last(&c, &t, 2);
        proof.entry = B64.encode(hub_statement(&c));
        let e = keep(&c, 2, &proof).unwrap_err();
        assert_eq!(e.code, "log_not_included", "{}", e.message);
    }

    #[test]
    fn a_checkpoint_signed_by_another_key_is_refused() {
        let c = client();
        let mut t = tree(&["a"]);
        verified(&c, &t);
        t.append(&hub_statement(&c));
        let mut proof = proof_of_last(&c, &t, 1);
        let impostor = NoteSigningKey::generate(ORIGIN).unwrap();
        proof.checkpoint = checkpoint::sign(&impostor, t.size(), &t.root());
        assert_eq!(keep(&c, 1, &proof).unwrap_err().code, "log_bad_checkpoint");
    }

    #[test]
    fn an_older_checkpoint_with_a_change_is_not_evidence_and_the_receipt_is_taken_the_long_way() {
        let c = client();
        let entry = hub_statement(&c);
        let mut t = tree(&["a"]);
        t.append(&entry);
        let mut proof = proof_of_last(&c, &t, 1);
        proof.entry = B64.encode(&entry);
        // Another command of this state dir verified a newer checkpoint meanwhile.
        t.append(b"c");
        verified(&c, &t);
        // So the receipt is asked for under the current checkpoint: here the
        // hub is unreachable, which proves the client asked.
        let e = keep(&c, 1, &proof).unwrap_err();
        assert_eq!(e.code, "hub_unreachable", "{}", e.message);
        assert!(!log_dir(c.state.path()).join("evidence").exists());
        assert_eq!(last_verified(c.state.path(), &c.log_key.verifier()).unwrap().unwrap().size, 3);
    }

    #[test]
    fn an_entry_beyond_the_verified_checkpoint_is_proved_only_under_a_newer_one() {
        let c = client();
        let t = tree(&["a", "b"]);
        verified(&c, &t);
        let mut cp = last_verified(c.state.path(), &c.log_key.verifier()).unwrap().unwrap();
        // Not in the log this client verified, and the hub is not even asked.
        let e = prove_entry(&c.hub, &cp, 2).unwrap_err();
        assert_eq!(e.code, "log_not_included", "{}", e.message);
        // Unless the hub's newer checkpoint is asked for first (here the hub
        // is unreachable, which proves the client asked).
        let e = prove_recent_entry(c.state.path(), &c.hub, &c.log_key.verifier(), jiff::Timestamp::now(), &mut cp, 2)
            .unwrap_err();
        assert_eq!(e.code, "hub_unreachable", "{}", e.message);
    }

    fn slot(c: &Client, i: usize) -> PathBuf {
        log_dir(c.state.path()).join(CHECKPOINT_SLOTS[i])
    }

    #[test]
    fn the_newest_checkpoint_is_written_to_the_two_slots_in_turn_in_place() {
        use std::os::unix::fs::MetadataExt as _;
        let c = client();
        let key = c.log_key.verifier();
        let mut t = tree(&["a"]);
        verified(&c, &t);
        assert_eq!(last_verified(c.state.path(), &key).unwrap().unwrap().size, 1);
        assert!(slot(&c, 0).exists() && !slot(&c, 1).exists());
        let inodes = |c: &Client| [0, 1].map(|i| std::fs::metadata(slot(c, i)).map(|m| m.ino()).ok());
        t.append(b"b");
        verified(&c, &t);
        let first = inodes(&c);
        for n in 3..7u64 {
            t.append(b"c");
            verified(&c, &t);
            assert_eq!(last_verified(c.state.path(), &key).unwrap().unwrap().size, n);
        }
        assert_eq!(inodes(&c), first, "the slots are overwritten, never replaced");
        let sizes: Vec<u64> =
            [0, 1].map(|i| checkpoint::open(&std::fs::read_to_string(slot(&c, i)).unwrap(), &key).unwrap().size).into();
        assert_eq!(sizes, [5, 6], "the older slot is the one overwritten");
    }

    #[test]
    fn a_slot_cut_short_by_a_crash_falls_back_to_the_other() {
        let c = client();
        let key = c.log_key.verifier();
        let mut t = tree(&["a", "b"]);
        verified(&c, &t);
        t.append(b"c");
        verified(&c, &t);
        // The newer slot (the second) was being overwritten when the power went.
        let newer = slot(&c, 1);
        let note = std::fs::read(&newer).unwrap();
        std::fs::write(&newer, &note[..note.len() / 2]).unwrap();
        assert_eq!(last_verified(c.state.path(), &key).unwrap().unwrap().size, 2);
        // The next checkpoint goes into the damaged slot, not over the good one.
        t.append(b"d");
        verified(&c, &t);
        assert_eq!(last_verified(c.state.path(), &key).unwrap().unwrap().size, 4);
        assert_eq!(checkpoint::open(&std::fs::read_to_string(slot(&c, 0)).unwrap(), &key).unwrap().size, 2);
        // Both damaged: nothing can be trusted, and the client says so.
        for i in [0, 1] {
            std::fs::write(slot(&c, i), b"not a checkpoint").unwrap();
        }
        assert_eq!(last_verified(c.state.path(), &key).unwrap_err().code, "log_state_invalid");
    }

    #[test]
    fn a_checkpoint_kept_by_an_older_client_is_still_read() {
        let c = client();
        let key = c.log_key.verifier();
        let t = tree(&["a", "b", "c"]);
        let note = checkpoint::sign(&c.log_key, t.size(), &t.root());
        write_atomic(&log_dir(c.state.path()).join(LEGACY_CHECKPOINT_FILE), note.as_bytes(), false).unwrap();
        assert_eq!(last_verified(c.state.path(), &key).unwrap().unwrap().size, 3);
        assert_eq!(known_size(c.state.path(), &key), Some(3));
    }
}
