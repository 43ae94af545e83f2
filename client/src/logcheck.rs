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
use sealdrop_proto::api::{ConsistencyProof, Cosign, HubInfo, InclusionProof};
use sealdrop_proto::directory::Directory;
use sealdrop_proto::keys::{NoteSigningKey, NoteVerifierKey};

use crate::error::{Error, Kind, Result};
use crate::fsutil::{read_secret_file, write_atomic};
use crate::hub_client::HubClient;

/// Folder in the state dir for everything about the log.
pub const LOG_DIR: &str = "log";
const KEY_FILE: &str = "log.vkey";
const CHECKPOINT_FILE: &str = "checkpoint";

fn log_dir(state_dir: &Path) -> PathBuf {
    state_dir.join(LOG_DIR)
}

fn decode_hashes(hashes: &[String]) -> Result<Vec<Hash>> {
    hashes
        .iter()
        .map(|h| {
            let raw = B64.decode(h).ok().and_then(|b| <[u8; 32]>::try_from(b).ok());
            raw.map(Hash).ok_or_else(|| Error::verification("log_bad_proof", "the hub sent a malformed proof hash"))
        })
        .collect()
}

/// The log key to trust for this hub.
pub fn log_key(state_dir: &Path, dir: &Directory, info: &HubInfo) -> Result<NoteVerifierKey> {
    let pin_path = log_dir(state_dir).join(KEY_FILE);
    let pinned = match std::fs::read_to_string(&pin_path) {
        Ok(text) => Some(text.trim().parse::<NoteVerifierKey>().map_err(|e| {
            Error::verification(
                "log_key_invalid",
                format!("the pinned log key in {} is not valid: {e}", pin_path.display()),
            )
        })?),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => return Err(Error::io(format!("cannot read {}", pin_path.display()), e)),
    };
    if let Some(listing) = &dir.hub {
        if listing.origin != info.origin {
            return Err(Error::verification(
                "log_origin_mismatch",
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
        Error::verification(
            "log_key_invalid",
            format!("the hub's log key {:?} is not a valid verifier key: {e}", info.log_key),
        )
    })?;
    if offered.name() != info.origin {
        return Err(Error::verification(
            "log_key_invalid",
            format!("the hub's log key is named {:?}, not after its origin {:?}", offered.name(), info.origin),
        ));
    }
    match pinned {
        Some(p) if p == offered => Ok(p),
        Some(p) => Err(Error::verification(
            "log_key_changed",
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
pub fn last_verified(state_dir: &Path, key: &NoteVerifierKey) -> Result<Option<SignedCheckpoint>> {
    let path = log_dir(state_dir).join(CHECKPOINT_FILE);
    match std::fs::read_to_string(&path) {
        Ok(note) => checkpoint::open(&note, key).map(Some).map_err(|e| {
            Error::verification(
                "log_state_invalid",
                format!("{} does not verify with the log key: {e}", path.display()),
            )
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(Error::io(format!("cannot read {}", path.display()), e)),
    }
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
pub fn check(
    state_dir: &Path,
    hub: &HubClient,
    key: &NoteVerifierKey,
    now: jiff::Timestamp,
) -> Result<SignedCheckpoint> {
    let text = hub.get_text_unsigned("/v1/log/checkpoint")?;
    let offered = checkpoint::open(&text, key).map_err(|e| {
        Error::verification(
            "log_bad_checkpoint",
            format!("the hub's checkpoint does not verify with its log key: {e}; do not trust this hub"),
        )
    })?;
    if let Some(old) = last_verified(state_dir, key)? {
        let broken = |why: String| -> Result<SignedCheckpoint> {
            let evidence = keep_evidence(state_dir, &old, &text, now)?;
            Err(Error::verification(
                "log_inconsistent",
                format!(
                    "the hub's log is not consistent with what this client verified before: {why}; both signed checkpoints are kept in {} as evidence, report it to the coordinator",
                    evidence.display()
                ),
            ))
        };
        if offered.size < old.size {
            return broken(format!("it shrank from {} to {} entries", old.size, offered.size));
        }
        if offered.size == old.size && offered.root != old.root {
            return broken(format!("two different trees of {} entries (a fork)", old.size));
        }
        if offered.size > old.size {
            let proof: ConsistencyProof =
                hub.get_unsigned_json(&format!("/v1/log/proof/consistency?old={}&new={}", old.size, offered.size))?;
            let hashes = decode_hashes(&proof.hashes)?;
            if let Err(e) = tree::verify_consistency(&hashes, old.size, old.root, offered.size, offered.root) {
                return broken(format!(
                    "the tree of {} entries is not an extension of the one of {} entries ({e})",
                    offered.size, old.size
                ));
            }
        } else {
            return Ok(old);
        }
    }
    write_atomic(&log_dir(state_dir).join(CHECKPOINT_FILE), offered.note.as_bytes(), false)?;
    crate::journal::record_checkpoint(state_dir, now, &offered);
    Ok(offered)
}

/// Proves that entry `index` is in the log under the newest verified
/// checkpoint, checks that `expected` says it is the right entry, and keeps
/// the offline receipt as `<state>/log/receipts/<name>.tlog-proof`.
pub fn keep_receipt(
    state_dir: &Path,
    hub: &HubClient,
    key: &NoteVerifierKey,
    now: jiff::Timestamp,
    index: u64,
    name: &str,
    expected: impl Fn(&LogEntry) -> bool,
) -> Result<PathBuf> {
    let cp = check(state_dir, hub, key, now)?;
    let entry = hub.get_bytes_unsigned(&format!("/v1/log/entry/{index}"))?;
    let parsed = LogEntry::from_bytes(&entry)
        .map_err(|e| Error::verification("log_bad_entry", format!("log entry {index} is not valid: {e}")))?;
    if !expected(&parsed) {
        return Err(Error::verification(
            "log_wrong_entry",
            format!("the hub says entry {index} records {name}, but it records something else"),
        ));
    }
    let proof: InclusionProof =
        hub.get_unsigned_json(&format!("/v1/log/proof/inclusion?index={index}&size={}", cp.size))?;
    let receipt = OfflineProof {
        index,
        hashes: decode_hashes(&proof.hashes)?,
        extra: Some(name.to_owned()),
        checkpoint: cp.note.clone(),
    };
    receipt.verify(&entry, key).map_err(|e| {
        Error::verification("log_not_included", format!("the hub did not prove that it logged {name}: {e}"))
    })?;
    let path = log_dir(state_dir).join("receipts").join(format!("{name}.tlog-proof"));
    write_atomic(&path, receipt.to_text().as_bytes(), false)?;
    Ok(path)
}

/// Loads a witness key file (signed-note private key text).
pub fn load_witness_key(path: &Path) -> Result<NoteSigningKey> {
    let text = read_secret_file(path, "witness key file")?;
    NoteSigningKey::from_note_text(&text)
        .map_err(|e| Error::input("key_invalid", format!("{} is not a witness key: {e}", path.display())))
}

/// Cosigns a checkpoint this client verified as consistent and hands the
/// cosignature to the hub.
pub fn witness(
    hub: &HubClient,
    witness: &NoteSigningKey,
    cp: &SignedCheckpoint,
    now: jiff::Timestamp,
) -> Result<String> {
    let time =
        u64::try_from(now.as_second()).map_err(|_| Error::new(Kind::Other, "clock", "the clock is before 1970"))?;
    let line = cosign::cosign(&cp.note, witness, time);
    let _: serde_json::Value = hub.post("/v1/log/cosignature", &Cosign { size: cp.size, line: line.clone() })?;
    Ok(line)
}
