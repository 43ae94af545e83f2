//! The rules that decide from the log alone, in one place so the hub that
//! enforces them, the client that relies on them and the offline audit that
//! checks them afterwards all decide exactly alike:
//!
//! - [`may_download`]: at most [`MAX_DOWNLOADS_PER_PARTY`] logged downloads
//!   of one drop by one recipient party, so no member can grow the
//!   permanent log without bound with ranged downloads;
//! - [`may_acknowledge`]: an acknowledgement only after the log holds a
//!   download of that drop by that party;
//! - [`manifest_keys`] / [`revoked_key_vouches`]: a manifest signed with a
//!   key revoked at T counts only for a drop whose `drop_committed` entry in
//!   the log is before T. The time is the entry's, in the append-only log
//!   the client verified; never an unsigned time from an API answer.

use jiff::Timestamp;
use sealdrop_proto::directory::Directory;
use sealdrop_proto::ids::PartyId;
use sealdrop_proto::keys::NoteVerifierKey;

/// The most downloads of one drop one recipient party may make (each one a
/// `drop_fetched` log entry, whether from byte 0 or a range resuming a
/// broken one). A normal fetch takes one; a resumed one two or three; ten
/// leaves room for a flaky line and a retry by another member.
pub const MAX_DOWNLOADS_PER_PARTY: u64 = 10;

/// Whether a party that has `logged` downloads of a drop in the log may
/// download it again.
pub fn may_download(logged: u64) -> bool {
    logged < MAX_DOWNLOADS_PER_PARTY
}

/// Whether a party with `logged` downloads of a drop in the log may
/// acknowledge it: a receipt says "we have the data", which only a party
/// that downloaded it can truthfully say.
pub fn may_acknowledge(logged: u64) -> bool {
    logged > 0
}

/// Whether a key revoked at `revoked_at` still vouches for a document of a
/// drop committed to the log at `committed` (the `drop_committed` entry's
/// time): only when the commit came strictly before the revocation.
pub fn revoked_key_vouches(revoked_at: Timestamp, committed: Timestamp) -> bool {
    committed < revoked_at
}

/// The keys that may have signed a document of `party` for a drop
/// committed to the log at `committed`: the party's member keys in `dir`,
/// and its revoked keys that still vouch for that time
/// ([`revoked_key_vouches`]). Without a commit time proved from the log,
/// member keys only.
pub fn manifest_keys(dir: &Directory, party: &PartyId, committed: Option<Timestamp>) -> Vec<NoteVerifierKey> {
    let mut keys = dir.signing_keys_of(party);
    if let (Some(p), Some(committed)) = (dir.party(party), committed) {
        keys.extend(
            p.revoked.iter().filter(|r| revoked_key_vouches(r.revoked_at, committed)).map(|r| r.signing_key.clone()),
        );
    }
    keys
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn downloads_are_bounded_and_an_acknowledgement_needs_one() {
        assert!(may_download(0));
        assert!(may_download(MAX_DOWNLOADS_PER_PARTY - 1));
        assert!(!may_download(MAX_DOWNLOADS_PER_PARTY));
        assert!(!may_acknowledge(0));
        assert!(may_acknowledge(1));
    }

    #[test]
    fn a_revoked_key_vouches_only_for_commits_strictly_before_its_revocation() {
        let t: Timestamp = "2026-11-20T09:00:00Z".parse().unwrap();
        assert!(revoked_key_vouches(t, t - jiff::SignedDuration::from_secs(1)));
        assert!(!revoked_key_vouches(t, t));
        assert!(!revoked_key_vouches(t, t + jiff::SignedDuration::from_secs(1)));
    }
}
