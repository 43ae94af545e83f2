//! Trusting the directory: verify the hub's copy against the pinned
//! authority key, and never accept one older than, or different from, what
//! this client has already seen at the same serial.

use std::path::Path;

use sealdrop_proto::directory::{DirectoryError, SignedDirectory};
use sealdrop_proto::keys::NoteVerifierKey;
use sealdrop_proto::note::DocError;

use crate::error::{Error, ErrorCode, Result};
use crate::fsutil::write_atomic;
use crate::transport::HubApi;

/// The file in the state dir holding the newest verified directory.
pub const DIRECTORY_FILE: &str = "directory.note";

/// Turns a directory verification failure into the client's error.
pub fn directory_error(e: DirectoryError, source: &str) -> Error {
    match e {
        DirectoryError::Doc(DocError::BadSignature { .. } | DocError::NoTrustedSignature { .. }) => Error::new(
            ErrorCode::DirectoryBadSignature,
            format!(
                "the directory from {source} is not signed by the pinned authority key: {e}; do not use this hub until the coordinator confirms its key"
            ),
        ),
        DirectoryError::Rollback { offered, current } => Error::new(
            ErrorCode::DirectoryRollback,
            format!(
                "{source} offers directory serial {offered}, older than serial {current} this client already verified; the hub may be replaying old keys, report it to the coordinator"
            ),
        ),
        DirectoryError::Doc(_) | DirectoryError::Invalid(_) => Error::new(
            ErrorCode::DirectoryInvalid,
            format!("the directory from {source} is not valid: {e}; do not use it, and report it to the coordinator"),
        ),
    }
}

/// The newest directory this client verified before, if any.
pub fn remembered(state_dir: &Path, authority: &NoteVerifierKey) -> Result<Option<SignedDirectory>> {
    let path = state_dir.join(DIRECTORY_FILE);
    match std::fs::read_to_string(&path) {
        Ok(note) => SignedDirectory::verify(&note, authority)
            .map(Some)
            .map_err(|e| directory_error(e, &format!("the state file {}", path.display()))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(Error::io(format!("cannot read {}", path.display()), e)),
    }
}

/// Verifies `note` and records it when it is newer than what was seen before.
pub fn accept(note: &str, authority: &NoteVerifierKey, state_dir: &Path, source: &str) -> Result<SignedDirectory> {
    let offered = SignedDirectory::verify(note, authority).map_err(|e| directory_error(e, source))?;
    match remembered(state_dir, authority)? {
        Some(seen) if offered.directory.serial < seen.directory.serial => Err(directory_error(
            DirectoryError::Rollback { offered: offered.directory.serial, current: seen.directory.serial },
            source,
        )),
        Some(seen) if offered.directory.serial == seen.directory.serial => {
            if seen.note != offered.note {
                return Err(Error::new(
                    ErrorCode::DirectoryEquivocation,
                    format!(
                        "{source} shows a different directory under serial {} than this client verified before; keep both and report it to the coordinator",
                        seen.directory.serial
                    ),
                ));
            }
            Ok(offered)
        }
        seen => {
            if let Some(seen) = seen {
                // A newer version must keep every revocation this client has seen.
                seen.directory.check_successor(&offered.directory).map_err(|e| directory_error(e, source))?;
            }
            write_atomic(&state_dir.join(DIRECTORY_FILE), offered.note.as_bytes(), false)?;
            Ok(offered)
        }
    }
}

/// Fetches the hub's current directory (a signed request when `hub` has a
/// key: see [`HubApi::directory`]) and accepts it (see [`accept`]).
pub fn trusted_directory(hub: &HubApi, authority: &NoteVerifierKey, state_dir: &Path) -> Result<SignedDirectory> {
    let note = hub.directory()?;
    accept(&note, authority, state_dir, &format!("the hub at {}", hub.base()))
}
