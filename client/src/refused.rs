//! Drops this client refused for what their sender signed, or found
//! undeliverable (encrypted only to keys its party no longer has: see
//! [`crate::undeliverable`]), recorded in the state dir (`<state>/refused/<drop id>.json`, 0600) so that `fetch --all`
//! does not download them again, and log another download, on every run.
//!
//! Only verdicts that the same bytes would give again are recorded: the
//! ciphertext matched its signed manifest, and then its header, decryption
//! or archive failed, or the drop is undeliverable ([`is_final`]). A drop the hub altered (`tampered`) or
//! that broke off is tried again as usual. Fetching a recorded drop by its
//! id tries it again; success removes the record, and `fetch --all` removes
//! those of drops that left the inbox.

use std::path::{Path, PathBuf};

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use sealdrop_proto::ids::{DropId, PartyId};

use crate::error::{Error, ErrorCode, Kind};

const REFUSED_DIR: &str = "refused";

/// The error code of a drop its recipient can never fetch.
pub const UNDELIVERABLE: &str = ErrorCode::Undeliverable.as_str();

/// Why a drop was refused, as recorded.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Refusal {
    /// The drop.
    pub drop: DropId,
    /// Its sender.
    pub from: PartyId,
    /// The error's code (`bad_archive`, ...).
    pub code: String,
    /// The error's message.
    pub message: String,
    /// When this client refused it.
    pub refused: Timestamp,
}

impl Refusal {
    /// The line `fetch --all` prints when it skips the drop.
    pub fn skip_note(&self) -> String {
        if self.code == UNDELIVERABLE {
            return format!(
                "skipped drop {} from {}: undeliverable, reported on {}: no key your party has can open it; ask {} to recall it and send it again (`sealdrop fetch {}` checks again)",
                self.drop, self.from, self.refused, self.from, self.drop
            );
        }
        format!(
            "skipped drop {} from {}: refused on {} ({}); it is not downloaded again, fetch it by its id to try again",
            self.drop, self.from, self.refused, self.code
        )
    }
}

/// Whether a fetch error of this code is a verdict on what the sender
/// signed, which downloading the same drop again would repeat.
pub fn is_final(code: &str) -> bool {
    matches!(
        ErrorCode::from_wire(code),
        Some(
            ErrorCode::BadArchive
                | ErrorCode::UnsafeArchive
                | ErrorCode::Undecryptable
                | ErrorCode::HeaderMismatch
                | ErrorCode::Undeliverable
        )
    )
}

fn path(state_dir: &Path, drop: &DropId) -> PathBuf {
    state_dir.join(REFUSED_DIR).join(format!("{drop}.json"))
}

/// Records that `drop` from `from` was refused with `err`, if that verdict
/// is final; a failure to record is a warning (the refusal itself stands).
pub fn record(state_dir: &Path, drop: &DropId, from: &PartyId, err: &Error, now: Timestamp) {
    if !is_final(&err.code) {
        return;
    }
    let refusal = Refusal {
        drop: drop.clone(),
        from: from.clone(),
        code: err.code.clone(),
        message: err.message.clone(),
        refused: sealdrop_proto::clock::whole_second(now),
    };
    let written = crate::fsutil::create_private_dir(&state_dir.join(REFUSED_DIR)).and_then(|()| {
        let text = serde_json::to_vec_pretty(&refusal)
            .map_err(|e| Error::with_kind(Kind::Input, ErrorCode::Internal, e.to_string()))?;
        crate::fsutil::write_atomic(&path(state_dir, drop), &text, true)
    });
    if let Err(e) = written {
        eprintln!("warning: could not record that drop {drop} was refused, so `fetch --all` will try it again: {e}");
    }
}

/// The recorded refusal of `drop`, if any (an unreadable record counts as none).
pub fn load(state_dir: &Path, drop: &DropId) -> Option<Refusal> {
    let bytes = std::fs::read(path(state_dir, drop)).ok()?;
    serde_json::from_slice::<Refusal>(&bytes).ok().filter(|r| &r.drop == drop)
}

/// Forgets the refusal of `drop` (it was fetched after all).
pub fn forget(state_dir: &Path, drop: &DropId) {
    let _ = std::fs::remove_file(path(state_dir, drop));
}

/// Forgets the refusals of drops not in `inbox`: they are gone from the hub.
pub fn forget_all_but(state_dir: &Path, inbox: &[String]) {
    let Ok(entries) = std::fs::read_dir(state_dir.join(REFUSED_DIR)) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(id) = name.to_str().and_then(|n| n.strip_suffix(".json")) else { continue };
        if id.parse::<DropId>().is_ok() && !inbox.iter().any(|i| i == id) {
            let _ = std::fs::remove_file(entry.path());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_final_verdicts_are_recorded_and_records_go_with_their_drops() {
        let state = tempfile::tempdir().unwrap();
        let (bad, tampered, gone) = (DropId::random(), DropId::random(), DropId::random());
        let camden: PartyId = "camden".parse().unwrap();
        let now: Timestamp = "2026-11-20T10:00:00.5Z".parse().unwrap();
        record(state.path(), &bad, &camden, &Error::new(ErrorCode::BadArchive, "short entry"), now);
        record(state.path(), &tampered, &camden, &Error::new(ErrorCode::Tampered, "hash"), now);
        record(state.path(), &gone, &camden, &Error::new(ErrorCode::UnsafeArchive, "a link"), now);
        let r = load(state.path(), &bad).unwrap();
        assert_eq!((r.code.as_str(), r.message.as_str(), r.from.as_str()), ("bad_archive", "short entry", "camden"));
        assert!(r.skip_note().contains("fetch it by its id"), "{}", r.skip_note());
        assert!(load(state.path(), &tampered).is_none(), "the hub's fault is tried again");
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = std::fs::metadata(path(state.path(), &bad)).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o600);
        }
        forget_all_but(state.path(), &[bad.to_string()]);
        assert!(load(state.path(), &bad).is_some());
        assert!(load(state.path(), &gone).is_none(), "a drop that left the inbox is forgotten");
        forget(state.path(), &bad);
        assert!(load(state.path(), &bad).is_none());
    }
}
