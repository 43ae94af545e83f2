//! Warnings of `audit verify`: what a log that verifies may still hold for
//! an IG officer to act on. Today: entries signed with a member key that a
//! later directory revokes from a time before them (a stolen laptop, revoked
//! after the fact with `directory revoke --at`): manifests, receipts
//! (acknowledgements), fetch and recall requests. The hub rightly accepted
//! them, so they do not fail the log; they count for nothing, and whoever
//! used the key may not have been its owner. `--strict` makes them an error
//! (`audit_warnings`, exit 7) for scripts that must stop on them.

use crate::error::{Error, ErrorCode};

/// The line above the warnings in `audit verify`'s output.
pub fn heading(n: usize) -> String {
    let entries = if n == 1 { "1 entry was".to_owned() } else { format!("{n} entries were") };
    format!(
        "  WARNINGS: {entries} signed with a key revoked from before it (not failures: the key was listed when the hub \
         accepted them; they count for nothing, and whoever used the key may not have been its owner):"
    )
}

/// The error `audit verify --strict` ends with when the log of `origin`
/// verified with warnings (`used_after_revocation`, one line each).
pub fn strict_error(origin: &str, used_after_revocation: &[String]) -> Error {
    Error::new(
        ErrorCode::AuditWarnings,
        format!(
            "the log of {} verified, but with {} warning(s) (--strict); the first: {}. Ask the key's owner and the coordinator what happened, and keep the output as evidence",
            origin,
            used_after_revocation.len(),
            used_after_revocation.first().map(String::as_str).unwrap_or("?")
        ),
    )
}
