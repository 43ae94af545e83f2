//! Session set-up: the directory verified against the pinned authority key,
//! the hub's log key, and its checkpoint verified consistent with everything
//! this client saw before; in one round trip when nothing changed since the
//! last command.
//!
//! The first session of a state dir asks for the directory, the hub's
//! `/v1/info` and the checkpoint. A later one asks for the checkpoint first:
//! the hub names the serial of the directory it enforces with it
//! ([`sealdrop_proto::api::DIRECTORY_SERIAL_HEADER`]). When that is the
//! serial of the directory this client verified and keeps, and the
//! checkpoint verifies with the log key pinned for that directory, both are
//! used as they are (and an unchanged checkpoint needs no consistency
//! proof: [`crate::logcheck::check_served`]). Anything else (a new serial,
//! no header or a malformed one, a checkpoint the pinned key does not
//! verify, state an earlier command left half made) takes the full set-up,
//! with the checkpoint already fetched, so every refusal it can give is the
//! same as before.
//!
//! The header is a hint, never trusted. A hub naming the serial this client
//! holds while it enforces a newer one keeps the client on the newest
//! directory it verified, which is all a hub serving that older directory
//! achieves anyway; naming any other serial, or none, makes the client fetch
//! the directory, verified as always ([`crate::trust::accept`]: the pinned
//! authority's signature, never older than the newest seen, every revocation
//! seen kept).

use std::path::Path;

use sealdrop_log::checkpoint::{self, SignedCheckpoint};
use sealdrop_proto::directory::SignedDirectory;
use sealdrop_proto::keys::NoteVerifierKey;

use crate::error::Result;
use crate::transport::HubApi;

/// What a session verified before its first operation.
pub struct Verified {
    /// The directory verified against the pinned authority key, and not
    /// older than the newest this client saw.
    pub directory: SignedDirectory,
    /// The key that signs the hub's log checkpoints.
    pub log_key: NoteVerifierKey,
    /// The hub's current checkpoint, verified consistent with the newest
    /// one verified before.
    pub checkpoint: SignedCheckpoint,
}

/// Verifies the hub's directory, log key and checkpoint for a session;
/// `check_caller` refuses a directory that does not list whoever the
/// session acts as (run before the log is looked at, as it always was).
pub fn verify(
    hub: &HubApi,
    authority: &NoteVerifierKey,
    state_dir: &Path,
    now: jiff::Timestamp,
    check_caller: impl Fn(&SignedDirectory) -> Result<()>,
) -> Result<Verified> {
    let served = match kept(state_dir, authority) {
        Some(kept) => {
            let served = hub.checkpoint()?;
            let unchanged = served.directory_serial == Some(kept.directory.directory.serial)
                && checkpoint::open(&served.note, &kept.log_key).is_ok();
            if unchanged {
                check_caller(&kept.directory)?;
                let checkpoint = crate::logcheck::check_served(state_dir, hub, &kept.log_key, now, &served.note)?;
                return Ok(Verified { directory: kept.directory, log_key: kept.log_key, checkpoint });
            }
            Some(served.note)
        }
        None => None,
    };
    let directory = crate::trust::trusted_directory(hub, authority, state_dir)?;
    check_caller(&directory)?;
    let info = hub.info()?;
    let log_key = crate::logcheck::log_key(state_dir, &directory.directory, &info)?;
    let checkpoint = match served {
        Some(note) => crate::logcheck::check_served(state_dir, hub, &log_key, now, &note)?,
        None => crate::logcheck::check(state_dir, hub, &log_key, now)?,
    };
    Ok(Verified { directory, log_key, checkpoint })
}

/// What earlier sessions verified and kept.
struct Kept {
    /// The newest directory verified, verified again with the authority key
    /// pinned now: after a change of that key it is not used.
    directory: SignedDirectory,
    /// The log key pinned for this hub.
    log_key: NoteVerifierKey,
}

/// What earlier sessions kept, when it can stand in for asking the hub: a
/// verified directory and a pinned log key that agrees with the directory's
/// listing of the hub, if it has one (the full set-up checks the listed
/// origin against the hub's; a key named after that origin stands for it).
/// Unreadable or inconsistent state is left to the full set-up to report.
fn kept(state_dir: &Path, authority: &NoteVerifierKey) -> Option<Kept> {
    let directory = crate::trust::remembered(state_dir, authority).ok().flatten()?;
    let log_key = crate::logcheck::pinned_log_key(state_dir).ok().flatten()?;
    if let Some(listing) = &directory.directory.hub
        && (listing.log_key != log_key || listing.origin != log_key.name())
    {
        return None;
    }
    Some(Kept { directory, log_key })
}

#[cfg(test)]
mod tests {
    use sealdrop_proto::api::HubInfo;
    use sealdrop_proto::directory::{Directory, HubListing};
    use sealdrop_proto::keys::NoteSigningKey;

    use super::*;

    const ORIGIN: &str = "hub.example.test";

    /// A state dir in which a session verified a directory (listing the hub
    /// with `listed`, if given) signed by `authority`, and pinned `log_key`.
    fn state(
        authority: &NoteSigningKey,
        listed: Option<&NoteVerifierKey>,
        log_key: &NoteVerifierKey,
    ) -> tempfile::TempDir {
        let state = tempfile::tempdir().unwrap();
        let directory = Directory {
            serial: 3,
            issued_at: "2026-01-01T00:00:00Z".parse().unwrap(),
            hub: listed.map(|k| HubListing { origin: ORIGIN.into(), log_key: k.clone() }),
            parties: vec![],
            agreements: vec![],
        };
        let signed = SignedDirectory::sign(directory.clone(), authority).unwrap();
        crate::trust::accept(&signed.note, &authority.verifier(), state.path(), "the test").unwrap();
        let info =
            HubInfo { origin: ORIGIN.into(), directory_serial: 3, version: "0".into(), log_key: log_key.to_string() };
        let unlisted = Directory { hub: None, ..directory };
        crate::logcheck::log_key(state.path(), &unlisted, &info).unwrap();
        state
    }

    #[test]
    fn a_verified_directory_and_a_pinned_log_key_are_kept() {
        let authority = NoteSigningKey::generate("authority.example").unwrap();
        let log_key = NoteSigningKey::generate(ORIGIN).unwrap().verifier();
        for listed in [None, Some(&log_key)] {
            let state = state(&authority, listed, &log_key);
            let kept = kept(state.path(), &authority.verifier()).unwrap();
            assert_eq!((kept.directory.directory.serial, kept.log_key), (3, log_key.clone()));
        }
        assert!(kept(tempfile::tempdir().unwrap().path(), &authority.verifier()).is_none(), "nothing kept yet");
    }

    #[test]
    fn what_was_kept_is_not_used_under_another_authority_key_or_another_listed_log_key() {
        let authority = NoteSigningKey::generate("authority.example").unwrap();
        let log_key = NoteSigningKey::generate(ORIGIN).unwrap().verifier();
        let state_dir = state(&authority, None, &log_key);
        let other_authority = NoteSigningKey::generate("authority.example").unwrap();
        assert!(kept(state_dir.path(), &other_authority.verifier()).is_none());
        // The directory vouches for another key than the one pinned.
        let listed = NoteSigningKey::generate(ORIGIN).unwrap().verifier();
        assert!(kept(state(&authority, Some(&listed), &log_key).path(), &authority.verifier()).is_none());
    }
}
