//! The rules that decide from the log alone, in one place so the hub that
//! enforces them, the client that relies on them and the offline audit that
//! checks them afterwards all decide exactly alike:
//!
//! - [`may_download`]: at most [`MAX_DOWNLOADS_PER_PARTY`] logged downloads
//!   of one drop by one recipient party, so no member can grow the
//!   permanent log without bound with ranged downloads;
//! - [`may_acknowledge`]: an acknowledgement only after the log holds a
//!   download of that drop by that party;
//! - [`manifest_keys`] / [`revoked_key_vouches`] (defined in
//!   [`sealdrop_proto::policy`] with the agreement rules): a manifest signed
//!   with a key revoked at T counts only for a drop whose `drop_committed`
//!   entry in the log is before T. The time is the entry's, in the
//!   append-only log the client verified; never an unsigned time from an API
//!   answer.

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

/// The revocation cut-off is a rule of the directory, decided in
/// `sealdrop-proto` with the agreement rules; named here too because the
/// log's entry times are what it is applied to.
pub use sealdrop_proto::policy::{manifest_keys, revoked_key_vouches};

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
}
