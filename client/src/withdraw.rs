//! Withdrawing drops a send created on the hub but never committed
//! (`DELETE /v1/drops/{id}`), and the local record that lets the same send
//! run again replace one that could not be withdrawn.
//!
//! A plain `sealdrop send` creates its drop without an idempotency key (two
//! sends of the same file are two drops, on purpose), so the hub cannot
//! tell a re-run from a new send. Instead the client keeps
//! `<state>/outgoing/<drop id>.open` from the moment the hub creates the
//! drop until it is committed or withdrawn; a later run of the same send
//! (same files, recipients, agreement and expiry: the same
//! [`crate::upload::fingerprint`]) withdraws the drops such records name
//! before it creates its own. A `send --split-by` needs no record: its
//! parts carry idempotency keys, and the hub replaces an open part itself.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use sealdrop_proto::api::code;
use sealdrop_proto::ids::DropId;

use crate::error::{ErrorCode, Kind, Result};
use crate::transport::HubApi;

/// How long a withdrawal may take: it runs while the analyst waits for the
/// prompt after Ctrl-C, and a hub that does not answer within this is
/// treated as unreachable (the local record then lets a re-run replace it).
pub const WITHDRAW_WITHIN: Duration = Duration::from_secs(10);

/// What withdrawing a drop did.
#[derive(Clone, Debug)]
pub enum Withdrawal {
    /// The hub removed it; nothing of it remains.
    Withdrawn,
    /// The hub no longer had it (withdrawn, expired or replaced before).
    AlreadyGone,
    /// It was committed first: it was sent, and stays.
    Committed,
    /// The hub could not be asked or refused; the error says why.
    Failed(crate::error::Error),
}

/// Asks the hub to withdraw drop `id`, which this member's party created and,
/// as far as this client knows, never committed.
pub fn withdraw(hub: &HubApi, id: &DropId) -> Withdrawal {
    match hub.withdraw(id, WITHDRAW_WITHIN) {
        Ok(_) => Withdrawal::Withdrawn,
        Err(e) if e.kind == Kind::Refused && (e.code == code::NOT_FOUND || e.code == code::GONE) => {
            Withdrawal::AlreadyGone
        }
        // The hub answers `conflict` for a committed drop (and, in a race
        // with its own commit, for one it found still open: asking again
        // settles which).
        Err(e) if e.kind == Kind::Refused && e.code == code::CONFLICT => match hub.withdraw(id, WITHDRAW_WITHIN) {
            Ok(_) => Withdrawal::Withdrawn,
            Err(again) if again.code == code::CONFLICT => Withdrawal::Committed,
            Err(again) if again.code == code::NOT_FOUND || again.code == code::GONE => Withdrawal::AlreadyGone,
            Err(again) => Withdrawal::Failed(again),
        },
        Err(e) => Withdrawal::Failed(e),
    }
}

/// The record of an open drop: which send made it.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
struct OpenRecord {
    drop: DropId,
    fingerprint: String,
}

fn record_path(state_dir: &Path, id: &DropId) -> PathBuf {
    state_dir.join("outgoing").join(format!("{id}.open"))
}

/// Notes that the send `fingerprint` names has drop `id` open on the hub.
pub fn remember(state_dir: &Path, id: &DropId, fingerprint: &str) -> Result<()> {
    let bytes = record_bytes(state_dir, id, fingerprint)?;
    crate::fsutil::write_atomic(&record_path(state_dir, id), &bytes, true)
}

/// As [`remember`], without waiting for the disk, for a drop sent in one
/// request: it can be left open only if the hub stops during that request,
/// and a record lost with a power cut of this machine only leaves that
/// drop to the hub, which removes uploads left uncommitted after its
/// resume window. An unreadable record is skipped ([`left_open`]).
pub fn remember_unsynced(state_dir: &Path, id: &DropId, fingerprint: &str) -> Result<()> {
    let bytes = record_bytes(state_dir, id, fingerprint)?;
    crate::fsutil::write_atomic_unsynced(&record_path(state_dir, id), &bytes, true)
}

fn record_bytes(state_dir: &Path, id: &DropId, fingerprint: &str) -> Result<Vec<u8>> {
    crate::fsutil::create_private_dir(&state_dir.join("outgoing"))?;
    let record = OpenRecord { drop: id.clone(), fingerprint: fingerprint.to_owned() };
    serde_json::to_vec_pretty(&record).map_err(|e| crate::error::Error::new(ErrorCode::Internal, e.to_string()))
}

/// Forgets drop `id`'s record (committed or withdrawn). A record that cannot
/// be removed only makes a later run of the same send ask the hub again.
pub fn forget(state_dir: &Path, id: &DropId) {
    let _ = std::fs::remove_file(record_path(state_dir, id));
}

/// Whether drop `id` has a record (it is open, as far as this client knows).
pub fn remembered(state_dir: &Path, id: &DropId) -> bool {
    record_path(state_dir, id).exists()
}

/// The drops that earlier runs of the send `fingerprint` names left open.
fn left_open(state_dir: &Path, fingerprint: &str) -> Vec<DropId> {
    let Ok(entries) = std::fs::read_dir(state_dir.join("outgoing")) else { return Vec::new() };
    let mut found: Vec<DropId> = entries
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().and_then(|e| e.to_str()) == Some("open"))
        .filter_map(|p| std::fs::read(p).ok())
        .filter_map(|b| serde_json::from_slice::<OpenRecord>(&b).ok())
        .filter(|r| r.fingerprint == fingerprint)
        .map(|r| r.drop)
        .collect();
    found.sort();
    found
}

/// Before the send `fingerprint` names creates its drop: withdraws the
/// drops earlier runs of it left open on the hub (an interrupted run whose
/// hub was unreachable, or one that failed before its commit), except
/// `keep` (the one this run continues). Says so on stderr unless `quiet`.
/// Fails only when the hub cannot be reached (the send could not go either).
pub fn replace_earlier(
    hub: &HubApi,
    state_dir: &Path,
    fingerprint: &str,
    keep: Option<&DropId>,
    quiet: bool,
) -> Result<()> {
    for id in left_open(state_dir, fingerprint) {
        if Some(&id) == keep {
            continue;
        }
        match withdraw(hub, &id) {
            Withdrawal::Withdrawn => {
                if !quiet {
                    eprintln!("withdrew drop {id}, left open by an earlier run of this send; sending it again");
                }
                forget(state_dir, &id);
            }
            Withdrawal::AlreadyGone | Withdrawal::Committed => forget(state_dir, &id),
            Withdrawal::Failed(e) if e.kind == Kind::Unreachable => return Err(e),
            Withdrawal::Failed(e) => {
                // Not this client's to remove any more (e.g. the key
                // changed); the hub removes it at its expiry.
                if !quiet {
                    eprintln!("note: could not withdraw drop {id}, left open by an earlier run of this send: {e}");
                }
                forget(state_dir, &id);
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_are_found_by_fingerprint_and_forgotten() {
        let state = tempfile::tempdir().unwrap();
        let (a, b, c) = (DropId::random(), DropId::random(), DropId::random());
        remember(state.path(), &a, "same").unwrap();
        remember(state.path(), &b, "same").unwrap();
        remember(state.path(), &c, "other").unwrap();
        let mut want = vec![a.clone(), b.clone()];
        want.sort();
        assert_eq!(left_open(state.path(), "same"), want);
        assert!(remembered(state.path(), &c));
        forget(state.path(), &a);
        assert_eq!(left_open(state.path(), "same"), vec![b]);
        assert!(!remembered(state.path(), &a));
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(record_path(state.path(), &c)).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        // The spool's bookkeeping ignores these records, and they ignore spools.
        std::fs::write(state.path().join("outgoing").join(format!("{c}.json")), b"{}").unwrap();
        assert_eq!(left_open(state.path(), "other"), vec![c]);
    }
}
