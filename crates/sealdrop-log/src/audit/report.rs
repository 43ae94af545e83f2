//! What the audit reports: the failures, uses of keys after their revocation and the counts.

use std::fmt;

use jiff::Timestamp;
use sealdrop_proto::ids::PartyId;

use super::input::SignatureCheck;
use crate::Hash;

/// One problem the audit found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuditFailure {
    /// The entry concerned, or `None` for the checkpoint, witnesses and directories.
    pub index: Option<u64>,
    /// What is wrong.
    pub reason: String,
}

impl fmt::Display for AuditFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.index {
            Some(i) => write!(f, "entry {i}: {}", self.reason),
            None => f.write_str(&self.reason),
        }
    }
}

/// An entry signed with a key that a directory version, published later,
/// revokes from a time at or before the entry's own: the hub accepted it
/// rightly (the key was a member of the directory then in force), but
/// whoever used the key then may not have been its owner (a stolen laptop is
/// revoked from the last time it was known safe). Not a failure of the log:
/// recipients refuse such a drop ([`crate::policy::revoked_key_vouches`]), and an
/// information-governance officer needs to see what the key did after it
/// stopped being trusted (what a thief sent, downloaded or acknowledged).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UseAfterRevocation {
    /// The entry.
    pub index: u64,
    /// What the key signed: `manifest`, `receipt`, `fetch request`, ...
    pub what: String,
    /// The key's name, `<party>/<member>`.
    pub signer: String,
    /// The entry's time.
    pub at: Timestamp,
    /// From when the key is revoked.
    pub revoked_at: Timestamp,
    /// The first directory version that revokes it.
    pub serial: u64,
}

impl fmt::Display for UseAfterRevocation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "entry {}: a {} signed at {} with {}'s key, which directory {} revokes from {}: it counts for nothing, \
             and whoever used the key may not have been its owner",
            self.index, self.what, self.at, self.signer, self.serial, self.revoked_at
        )
    }
}

/// Deletions by reason.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DeletionCounts {
    /// After every recipient party acknowledged.
    pub delivered: u64,
    /// At expiry.
    pub expired: u64,
    /// Recalled by the sender.
    pub recalled: u64,
    /// Its agreement ended (expired, or ended or dropped by a new directory
    /// version) while the drop waited.
    pub agreement_ended: u64,
}

/// What the audit found.
#[derive(Clone, Debug, Default)]
pub struct AuditReport {
    /// The log's origin (the log key's name).
    pub origin: String,
    /// Entries read.
    pub entries: u64,
    /// The Merkle root of the entries read.
    pub root: Hash,
    /// `DropCommitted` entries of distinct drops.
    pub drops_committed: u64,
    /// Drops fetched at least once.
    pub drops_fetched: u64,
    /// Drops acknowledged by at least one recipient party.
    pub drops_acknowledged: u64,
    /// `DropFetched` entries.
    pub fetches: u64,
    /// `DropAcknowledged` entries.
    pub acknowledgements: u64,
    /// `DropRecalled` entries.
    pub recalls: u64,
    /// `DropDeleted` statements by reason.
    pub deleted: DeletionCounts,
    /// Directory versions published in the log.
    pub directory_versions: u64,
    /// Signatures verified (entries, directories, checkpoint, cosignatures).
    pub signatures_checked: u64,
    /// The parties whose witnesses validly cosigned the checkpoint.
    pub witnesses: Vec<PartyId>,
    /// How signatures were checked.
    pub signature_check: SignatureCheck,
    /// The problems found, ordered by entry (checkpoint and directory ones first).
    pub failures: Vec<AuditFailure>,
    /// Failures beyond [`super::MAX_FAILURES`], counted but not listed.
    pub failures_omitted: u64,
    /// Entries signed with a key revoked, by a later directory version, from
    /// before them, in log order (at most [`super::MAX_FAILURES`]). Not failures.
    pub used_after_revocation: Vec<UseAfterRevocation>,
}

impl AuditReport {
    /// Whether the log passed every check.
    pub fn ok(&self) -> bool {
        self.failures.is_empty() && self.failures_omitted == 0
    }

    /// The failures about entry `index`.
    pub fn failures_at(&self, index: u64) -> impl Iterator<Item = &AuditFailure> {
        self.failures.iter().filter(move |f| f.index == Some(index))
    }
}

impl fmt::Display for AuditReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "log {}: {} entries, root {}", self.origin, self.entries, self.root)?;
        writeln!(
            f,
            "drops: {} committed, {} fetched ({} fetches), {} acknowledged ({} acknowledgements), {} recalled",
            self.drops_committed,
            self.drops_fetched,
            self.fetches,
            self.drops_acknowledged,
            self.acknowledgements,
            self.recalls
        )?;
        writeln!(
            f,
            "deleted: {} delivered, {} expired, {} recalled, {} agreement ended",
            self.deleted.delivered, self.deleted.expired, self.deleted.recalled, self.deleted.agreement_ended
        )?;
        let w: Vec<&str> = self.witnesses.iter().map(PartyId::as_str).collect();
        writeln!(
            f,
            "{} directory versions; {} signatures checked ({:?}); witnesses: {}",
            self.directory_versions,
            self.signatures_checked,
            self.signature_check,
            if w.is_empty() { "none".to_owned() } else { w.join(", ") }
        )?;
        for u in &self.used_after_revocation {
            writeln!(f, "AFTER REVOCATION {u}")?;
        }
        if self.ok() {
            return writeln!(f, "OK: no problems found");
        }
        writeln!(f, "FAILED: {} problems", self.failures.len() as u64 + self.failures_omitted)?;
        for fail in &self.failures {
            writeln!(f, "  {fail}")?;
        }
        if self.failures_omitted > 0 {
            writeln!(f, "  ... and {} more", self.failures_omitted)?;
        }
        Ok(())
    }
}
