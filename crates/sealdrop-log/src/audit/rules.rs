//! The lifecycle rules (in log order, on the calling thread): what each entry may do given
//! the directory in force and what the log holds before it.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

use ed25519_dalek::{Signature, VerifyingKey};
use jiff::Timestamp;

use sealdrop_proto::directory::Agreement;
use sealdrop_proto::drop::{Manifest, Receipt, is_sha256_hex};
use sealdrop_proto::ids::{DropId, PartyId, key_name};
use sealdrop_proto::policy::{ExpiryRefusal, agreement_in_force, drop_expired, drop_expiry, outsiders};

use super::parse::{Parsed, Signed};
use super::report::{AuditReport, UseAfterRevocation};
use super::signatures::{DirVersion, Route, SigJob};
use crate::entry::{DeletionReason, HubStatement, SignedRequest};
use crate::policy;

// The lifecycle state machine (in order, on the calling thread).

pub(super) struct DropState {
    committed_at: u64,
    sender: PartyId,
    agreement: String,
    recipients: Vec<PartyId>,
    sha256: String,
    len: u64,
    expires: Timestamp,
    acked: Vec<(PartyId, u64)>,
    /// Logged downloads so far, by recipient party.
    downloads: Vec<(PartyId, u64)>,
    /// The entry of its (first) recall.
    recalled: Option<u64>,
}

/// What the audit remembers of a drop: all of it while it lives, only
/// where it was committed and deleted afterwards (a million-entry log keeps
/// a few hundred thousand of these).
pub(super) enum DropSlot {
    Live(Box<DropState>),
    /// `recalled`: deleted as recalled right after its recall, which is
    /// therefore entry `deleted_at - 1` (a bool fits in the tag's padding).
    Deleted {
        committed_at: u64,
        deleted_at: u64,
        recalled: bool,
    },
}

impl DropSlot {
    fn committed_at(&self) -> u64 {
        match self {
            DropSlot::Live(d) => d.committed_at,
            DropSlot::Deleted { committed_at, .. } => *committed_at,
        }
    }
}

/// A directory version the hub enforced, and until when a drop's creation
/// may have read it. Creation is not logged, and the hub swaps a new version
/// in after logging its publication, still holding the log turn: the old one
/// may be read until the entry after that publication.
pub(super) struct Enforced {
    version: Arc<DirVersion>,
    /// The time of the first entry after its successor's publication; `None`
    /// while a create may still read it.
    read_until: Option<Timestamp>,
}

pub(super) struct Auditor {
    pub(super) log_key: VerifyingKey,
    pub(super) log_key_name: Arc<str>,
    pub(super) log_key_id: u32,
    pub(super) log_key_weak: bool,
    pub(super) versions: BTreeMap<u64, Arc<DirVersion>>,
    pub(super) current: Option<Arc<DirVersion>>,
    pub(super) published: BTreeSet<u64>,
    /// Every version published so far, in log order: the manifest's expiry is
    /// checked against those its drop's creation may have read.
    pub(super) enforced: Vec<Enforced>,
    /// `enforced[i]` was just superseded: the next entry's time ends its reading.
    pub(super) superseded: Option<usize>,
    pub(super) last_time: Option<Timestamp>,
    pub(super) drops: HashMap<DropId, DropSlot>,
    /// SHA-256 of each logged fetch or recall request's key name and nonce.
    pub(super) nonces: HashMap<[u8; 32], u64>,
    /// Every revoked member key in any directory version, by its bytes:
    /// the earliest revocation time and the first serial to list it.
    pub(super) revocations: HashMap<[u8; 32], (Timestamp, u64)>,
    pub(super) jobs: Vec<SigJob>,
    pub(super) failures: Vec<(Option<u64>, String)>,
    /// Uses of keys revoked after the fact (not failures).
    pub(super) after_revocation: Vec<UseAfterRevocation>,
    pub(super) report: AuditReport,
}

impl Auditor {
    pub(super) fn fail(&mut self, index: Option<u64>, reason: String) {
        self.failures.push((index, reason));
    }

    fn time(&mut self, index: u64, t: Timestamp) {
        if let Some(last) = self.last_time
            && t < last
        {
            self.fail(Some(index), format!("its time {t} is before the previous entry's time {last}"));
        }
        self.last_time = Some(self.last_time.map_or(t, |l| l.max(t)));
        if let Some(old) = self.superseded.take() {
            self.enforced[old].read_until = Some(t);
        }
    }

    fn directory(&mut self, index: u64) -> Option<Arc<DirVersion>> {
        if self.current.is_none() {
            self.fail(Some(index), "no directory is in force yet: the log must begin by publishing one".into());
        }
        self.current.clone()
    }

    pub(super) fn apply(&mut self, index: u64, parsed: Parsed) {
        if index == 0 && !matches!(&parsed, Parsed::Hub { statement: HubStatement::DirectoryPublished { .. }, .. }) {
            self.fail(Some(0), "the log must begin with the hub publishing a directory".into());
        }
        match parsed {
            Parsed::Bad(reason) => self.fail(Some(index), reason),
            Parsed::Hub { statement, mut signed } => {
                match signed.find(&self.log_key_name, self.log_key_id).map(Signature::from_slice) {
                    None => self.fail(
                        Some(index),
                        format!("the hub statement is not signed by the log key (signed by: {})", signed.signers()),
                    ),
                    Some(sig) => {
                        signed.note.truncate(signed.text_len);
                        let (key, weak, name) = (self.log_key, self.log_key_weak, self.log_key_name.clone());
                        self.push_job(index, signed.note.into_bytes(), sig.ok(), key, weak, "hub statement", name);
                    }
                }
                match statement {
                    HubStatement::DirectoryPublished { time, serial, sha256 } => {
                        self.published(index, time, serial, &sha256)
                    }
                    HubStatement::DropDeleted { time, drop, reason } => self.deleted(index, time, &drop, reason),
                }
            }
            Parsed::Committed { committed, manifest, signed } => self.committed(index, committed, *manifest, signed),
            Parsed::Fetched { drop, party, fetched, request } => self.fetched(index, &drop, &party, fetched, &request),
            Parsed::Acknowledged { acknowledged, receipt, signed } => {
                self.acknowledged(index, acknowledged, *receipt, signed)
            }
            Parsed::Recalled { drop, party, recalled, request } => {
                self.recalled(index, &drop, &party, recalled, &request)
            }
        }
    }

    fn published(&mut self, index: u64, time: Timestamp, serial: u64, sha256: &str) {
        self.time(index, time);
        self.report.directory_versions += 1;
        if let Some(&last) = self.published.last()
            && serial <= last
        {
            self.fail(
                Some(index),
                format!("it publishes directory serial {serial}, not newer than serial {last} published before"),
            );
        }
        self.published.insert(serial);
        let Some(v) = self.versions.get(&serial).cloned() else {
            self.fail(
                Some(index),
                format!("it publishes directory serial {serial}, which is not among the directory versions given"),
            );
            return;
        };
        if v.sha256 != sha256 {
            self.fail(Some(index), format!(
                "it publishes directory serial {serial} with SHA-256 {sha256}, but the directory note given for serial {serial} hashes to {}",
                v.sha256
            ));
        }
        if !self.enforced.is_empty() {
            self.superseded = Some(self.enforced.len() - 1);
        }
        self.enforced.push(Enforced { version: v.clone(), read_until: None });
        self.current = Some(v);
    }

    fn drop_state(&mut self, index: u64, drop: &DropId, what: &str) -> Option<&mut DropState> {
        match live_slot(&mut self.drops, &mut self.failures, index, drop, what)? {
            DropSlot::Live(d) => Some(d),
            DropSlot::Deleted { .. } => None,
        }
    }

    fn deleted(&mut self, index: u64, time: Timestamp, drop: &DropId, reason: DeletionReason) {
        self.time(index, time);
        match reason {
            DeletionReason::Delivered => self.report.deleted.delivered += 1,
            DeletionReason::Expired => self.report.deleted.expired += 1,
            DeletionReason::Recalled => self.report.deleted.recalled += 1,
            DeletionReason::AgreementEnded => self.report.deleted.agreement_ended += 1,
        }
        // The directory in force decides whether an agreement ended.
        let dir = if reason == DeletionReason::AgreementEnded { self.directory(index) } else { None };
        let Some(slot) = live_slot(&mut self.drops, &mut self.failures, index, drop, "deleted") else { return };
        let DropSlot::Live(d) = &*slot else { return };
        let committed_at = d.committed_at;
        let mut problems = Vec::new();
        match reason {
            DeletionReason::Delivered => {
                let missing: Vec<&str> = d
                    .recipients
                    .iter()
                    .filter(|r| !d.acked.iter().any(|(p, _)| p == *r))
                    .map(PartyId::as_str)
                    .collect();
                if !missing.is_empty() {
                    problems.push(format!(
                        "drop {drop} is deleted as delivered, but {} has not acknowledged it",
                        missing.join(", ")
                    ));
                }
            }
            DeletionReason::Expired => {
                if !drop_expired(d.expires.as_second(), time.as_second()) {
                    problems
                        .push(format!("drop {drop} is deleted as expired at {time}, before its expiry {}", d.expires));
                }
            }
            DeletionReason::Recalled => {
                if d.recalled.is_none_or(|r| r + 1 != index) {
                    let was = match d.recalled {
                        None => "it was never recalled".to_owned(),
                        Some(r) => format!("it was recalled at entry {r}"),
                    };
                    problems.push(format!(
                        "drop {drop} is deleted as recalled, but the sender's recall is not the entry before ({was})"
                    ));
                }
            }
            DeletionReason::AgreementEnded => {
                if let Some(dir) = dir.as_deref()
                    && let Some(terms) = dir.agreements.get(&d.agreement)
                    && terms.in_force(time)
                {
                    problems.push(format!(
                        "drop {drop} is deleted as its agreement ended at {time}, but agreement `{}` is in force then \
                         in directory {} (from {} until {})",
                        d.agreement, dir.serial, terms.valid_from, terms.valid_until
                    ));
                }
            }
        }
        if let Some(r) = d.recalled
            && reason != DeletionReason::Recalled
        {
            problems.push(format!(
                "drop {drop} was recalled at entry {r}, so the hub must delete it as recalled, not as {}",
                reason_text(reason)
            ));
        }
        let recalled = reason == DeletionReason::Recalled && d.recalled.is_some_and(|r| r + 1 == index);
        *slot = DropSlot::Deleted { committed_at, deleted_at: index, recalled };
        for p in problems {
            self.fail(Some(index), p);
        }
    }

    fn committed(&mut self, index: u64, committed: Timestamp, m: Manifest, signed: Signed) {
        self.time(index, committed);
        let Some(dir) = self.directory(index) else { return };
        let signer = key_name(&m.sender, &m.sender_member);
        self.member_sig(index, &dir, &m.sender, &signer, committed, "manifest", signed);
        if let Some(first) = self.drops.get(&m.drop) {
            let at = first.committed_at();
            self.fail(Some(index), format!("drop {} is committed again (first at entry {at})", m.drop));
            return;
        }
        self.report.drops_committed += 1;
        let mut problems = Vec::new();
        match dir.agreements.get(&m.agreement) {
            None => problems.push(format!("its agreement `{}` is not in directory {}", m.agreement, dir.serial)),
            Some(a) => {
                if agreement_in_force(a, committed).is_err() {
                    problems.push(format!(
                        "it is committed at {committed}, when agreement `{}` was not in force \
                         (directory {}: from {} until {})",
                        m.agreement, dir.serial, a.valid_from, a.valid_until
                    ));
                }
                if outsiders(a, [&m.sender]).next().is_some() {
                    problems.push(format!("the sender {} is not a party to agreement `{}`", m.sender, m.agreement));
                }
                for r in outsiders(a, &m.recipients) {
                    problems.push(format!("the recipient {r} is not a party to agreement `{}`", m.agreement));
                }
                problems.extend(self.expiry_problem(&m, a));
            }
        }
        if m.recipients.is_empty() {
            problems.push("it has no recipients".into());
        }
        if m.directory_serial > dir.serial {
            problems.push(format!(
                "it cites directory serial {}, newer than serial {} in force",
                m.directory_serial, dir.serial
            ));
        }
        if !is_sha256_hex(&m.ciphertext_sha256) {
            problems.push("its ciphertext hash is not a lowercase hex SHA-256".into());
        }
        if drop_expired(m.expires.as_second(), committed.as_second()) {
            problems.push(format!("it is committed at {committed}, when it had expired at {}", m.expires));
        }
        for p in problems {
            self.fail(Some(index), format!("drop {}: {p}", m.drop));
        }
        let mut recipients = m.recipients;
        recipients.sort();
        recipients.dedup();
        self.drops.insert(
            m.drop,
            DropSlot::Live(Box::new(DropState {
                committed_at: index,
                sender: m.sender,
                agreement: m.agreement,
                recipients,
                sha256: m.ciphertext_sha256,
                len: m.ciphertext_len,
                expires: m.expires,
                acked: Vec::new(),
                downloads: Vec::new(),
                recalled: None,
            })),
        );
    }

    /// Why the hub could not have set the manifest's expiry, if it could not.
    /// The hub stores [`drop_expiry`] of the sender's request at creation,
    /// under the directory version it read then, so a stored expiry is one
    /// that rule gives back unchanged when asked for exactly it (a request
    /// trimmed within the clock skew is stored trimmed). Any version the
    /// creation may have read will do; the refusal named is that under `a`,
    /// the agreement in force at the commit.
    fn expiry_problem(&self, m: &Manifest, a: &Agreement) -> Option<String> {
        let (created, expires) = (m.created, m.expires);
        let stored_by_hub = |a: &Agreement| drop_expiry(a, created, expires) == Ok(expires.as_second());
        let readable = self.enforced.iter().filter(|e| e.read_until.is_none_or(|t| t >= created));
        if readable.filter_map(|e| e.version.agreements.get(&m.agreement)).any(stored_by_hub) {
            return None;
        }
        let days = a.max_expiry_days;
        Some(match drop_expiry(a, created, expires) {
            Err(ExpiryRefusal::NotInFuture) => format!("its expiry {expires} is not after its creation {created}"),
            Err(ExpiryRefusal::OutlivesAgreement) => {
                format!("its expiry {expires} is after agreement `{}` ends at {}", a.id, a.valid_until)
            }
            Ok(_) | Err(ExpiryRefusal::BeyondLongestWait) => format!(
                "its expiry {expires} is more than {days} days after its creation {created}: agreement `{}` lets a \
                 drop wait at most {days} days",
                a.id
            ),
        })
    }

    fn fetched(&mut self, index: u64, drop: &DropId, party: &PartyId, fetched: Timestamp, req: &SignedRequest) {
        self.time(index, fetched);
        self.report.fetches += 1;
        let Some(dir) = self.directory(index) else { return };
        self.request(index, &dir, drop, party, fetched, req, Route::FETCH);
        let Some(d) = self.drop_state(index, drop, "fetched") else { return };
        let first_fetch = d.downloads.is_empty();
        let mut problems = Vec::new();
        let logged = match d.downloads.iter_mut().find(|(p, _)| p == party) {
            Some((_, n)) => n,
            None => {
                d.downloads.push((party.clone(), 0));
                &mut d.downloads.last_mut().expect("just pushed").1
            }
        };
        if !policy::may_download(*logged) {
            problems.push(format!(
                "drop {drop} is downloaded by {party} after {} logged downloads, the most the hub may serve one party",
                *logged
            ));
        }
        *logged += 1;
        if let Some(r) = d.recalled {
            problems.push(format!("drop {drop} is fetched after it was recalled at entry {r}"));
        }
        if !d.recipients.contains(party) {
            problems.push(format!("drop {drop} is fetched by {party}, which is not one of its recipients"));
        }
        if drop_expired(d.expires.as_second(), fetched.as_second()) {
            problems.push(format!("drop {drop} is fetched at {fetched}, when it had expired at {}", d.expires));
        }
        // The agreement, as the directory in force has it now.
        let agreement = &d.agreement;
        match dir.agreements.get(agreement) {
            None => problems.push(format!(
                "drop {drop} is fetched at {fetched}, when agreement `{agreement}` was not in force \
                 (directory {} does not list it)",
                dir.serial
            )),
            Some(t) if !t.in_force(fetched) => problems.push(format!(
                "drop {drop} is fetched at {fetched}, when agreement `{agreement}` was not in force \
                 (directory {}: from {} until {})",
                dir.serial, t.valid_from, t.valid_until
            )),
            Some(t) => {
                let sender = (d.sender != *party).then_some(&d.sender);
                for p in outsiders(t, std::iter::once(party).chain(sender)) {
                    problems.push(format!(
                        "drop {drop} is fetched at {fetched}, when agreement `{agreement}` did not include {p} \
                         (directory {})",
                        dir.serial
                    ));
                }
            }
        }
        if first_fetch {
            self.report.drops_fetched += 1;
        }
        for p in problems {
            self.fail(Some(index), p);
        }
    }

    fn recalled(&mut self, index: u64, drop: &DropId, party: &PartyId, recalled: Timestamp, req: &SignedRequest) {
        self.time(index, recalled);
        self.report.recalls += 1;
        let Some(dir) = self.directory(index) else { return };
        self.request(index, &dir, drop, party, recalled, req, Route::RECALL);
        let Some(d) = self.drop_state(index, drop, "recalled") else { return };
        let mut problems = Vec::new();
        if d.sender != *party {
            problems.push(format!("drop {drop} is recalled by {party}, which is not its sender {}", d.sender));
        }
        if let Some((p, at)) = d.acked.first() {
            problems.push(format!("drop {drop} is recalled after {p} acknowledged it at entry {at}"));
        }
        match d.recalled {
            Some(first) => problems.push(format!("drop {drop} is recalled again (first at entry {first})")),
            None => d.recalled = Some(index),
        }
        for p in problems {
            self.fail(Some(index), p);
        }
    }

    fn acknowledged(&mut self, index: u64, at: Timestamp, r: Receipt, signed: Signed) {
        self.time(index, at);
        self.report.acknowledgements += 1;
        let Some(dir) = self.directory(index) else { return };
        let signer = key_name(&r.recipient, &r.member);
        self.member_sig(index, &dir, &r.recipient, &signer, at, "receipt", signed);
        let drop = &r.drop;
        let Some(d) = self.drop_state(index, drop, "acknowledged") else { return };
        let recalled = d.recalled;
        let mut problems = Vec::new();
        let mut first_ack = false;
        let downloads = d.downloads.iter().find(|(p, _)| *p == r.recipient).map_or(0, |(_, n)| *n);
        if !d.recipients.contains(&r.recipient) {
            problems.push(format!("it is acknowledged by {}, which is not one of its recipients", r.recipient));
        } else if !policy::may_acknowledge(downloads) {
            problems.push(format!(
                "it is acknowledged by {}, which never downloaded it (no drop_fetched entry of {} before)",
                r.recipient, r.recipient
            ));
        } else if let Some((_, first)) = d.acked.iter().find(|(p, _)| *p == r.recipient) {
            problems.push(format!("{} acknowledges it again (first at entry {first})", r.recipient));
        } else {
            d.acked.push((r.recipient.clone(), index));
            first_ack = d.acked.len() == 1;
        }
        if r.ciphertext_sha256 != d.sha256 || r.ciphertext_len != d.len {
            problems.push(format!(
                "the receipt is for ciphertext {} ({} bytes), but the manifest says {} ({} bytes)",
                r.ciphertext_sha256, r.ciphertext_len, d.sha256, d.len
            ));
        }
        if drop_expired(d.expires.as_second(), at.as_second()) {
            problems.push(format!("it is acknowledged at {at}, when it had expired at {}", d.expires));
        }
        if first_ack {
            self.report.drops_acknowledged += 1;
        }
        if let Some(at) = recalled {
            self.fail(Some(index), format!("drop {drop} is acknowledged after it was recalled at entry {at}"));
        }
        for p in problems {
            self.fail(Some(index), format!("drop {drop}: {p}"));
        }
    }

    /// Recalled drops the log never deletes, by their recall entry.
    pub(super) fn recalled_not_deleted(&mut self) {
        let mut left: Vec<(u64, &DropId)> = self
            .drops
            .iter()
            .filter_map(|(id, slot)| match slot {
                DropSlot::Live(d) => d.recalled.map(|r| (r, id)),
                DropSlot::Deleted { .. } => None,
            })
            .collect();
        left.sort();
        let failures: Vec<(Option<u64>, String)> = left
            .into_iter()
            .map(|(r, drop)| {
                (Some(r), format!("drop {drop} is recalled, but the log ends without the hub deleting it as recalled"))
            })
            .collect();
        self.failures.extend(failures);
    }
}

/// The reason as the failures name it.
fn reason_text(reason: DeletionReason) -> &'static str {
    match reason {
        DeletionReason::Delivered => "delivered",
        DeletionReason::Expired => "expired",
        DeletionReason::Recalled => "recalled",
        DeletionReason::AgreementEnded => "agreement ended",
    }
}

/// The slot of `drop` when it is live; otherwise records why it is not
/// (a function of the fields it needs, so the slot can be changed in place).
fn live_slot<'m>(
    drops: &'m mut HashMap<DropId, DropSlot>,
    failures: &mut Vec<(Option<u64>, String)>,
    index: u64,
    drop: &DropId,
    what: &str,
) -> Option<&'m mut DropSlot> {
    let reason = match drops.get_mut(drop) {
        Some(slot @ DropSlot::Live(_)) => return Some(slot),
        None => format!("drop {drop} is {what} but was never committed"),
        Some(DropSlot::Deleted { deleted_at, recalled: true, .. }) => {
            let recall = *deleted_at - 1;
            format!("drop {drop} is {what} after it was recalled at entry {recall} (deleted at entry {deleted_at})")
        }
        Some(DropSlot::Deleted { deleted_at, .. }) => {
            format!("drop {drop} is {what} after its deletion at entry {deleted_at}")
        }
    };
    failures.push((Some(index), reason));
    None
}

#[cfg(test)]
mod tests {
    use base64::Engine as _;
    use base64::engine::general_purpose::STANDARD as B64;
    use sealdrop_proto::directory::SignedDirectory;
    use sealdrop_proto::request::{MAX_CLOCK_SKEW_SECS, signed_string};

    use super::super::verify;
    use super::*;
    use crate::entry::LogEntry;

    // -----------------------------------------------------------------------
    // Recalls and agreements, on a small generated log with entries appended.

    use crate::testlog::{AGREEMENT, GeneratedLog, time_of};
    use jiff::SignedDuration;
    use sealdrop_proto::directory::Directory;

    /// A clean generated log (4 delivered drops among 3 parties, directory 2
    /// in force at its end) to which a test appends entries, entry `i`
    /// logged at `time_of(i)`.
    struct Scenario {
        log: GeneratedLog,
    }

    impl Scenario {
        fn new() -> Self {
            let s = Self { log: crate::testlog::generate(3, 4) };
            assert!(verify(s.log.audit_input(3)).ok());
            s
        }

        fn party(&self, i: usize) -> PartyId {
            self.log.keys.party(i).clone()
        }

        fn next(&self) -> u64 {
            self.log.entries.len() as u64
        }

        fn now(&self) -> Timestamp {
            time_of(self.next())
        }

        fn push(&mut self, entry: Vec<u8>) -> u64 {
            let i = self.next();
            self.log.entries.push(entry);
            i
        }

        /// A drop from party `sender` to parties `to`, under directory 2.
        fn commit(&mut self, sender: usize, to: &[usize]) -> (u64, DropId) {
            let t = self.now();
            self.commit_made(sender, to, t - SignedDuration::from_secs(60), t + SignedDuration::from_hours(24 * 7))
        }

        /// Like [`Scenario::commit`], with the manifest's `created` and `expires` given.
        fn commit_made(
            &mut self,
            sender: usize,
            to: &[usize],
            created: Timestamp,
            expires: Timestamp,
        ) -> (u64, DropId) {
            let t = self.now();
            let to: Vec<PartyId> = to.iter().map(|&p| self.party(p)).collect();
            let m = self.log.keys.manifest(DropId::random(), &self.party(sender), &to, 2, created, expires);
            let i = self.push(self.log.keys.commit_entry(t, &m));
            (i, m.drop)
        }

        fn manifest(&self, index: u64) -> Manifest {
            let LogEntry::DropCommitted { manifest, .. } = self.log.entry(index as usize) else { panic!("a commit") };
            sealdrop_proto::note::peek_doc(&manifest).unwrap()
        }

        fn fetch(&mut self, drop: &DropId, party: usize) -> u64 {
            let e = self.log.keys.fetch_entry(drop, &self.party(party), self.now());
            self.push(e)
        }

        fn ack(&mut self, commit: u64, party: usize) -> u64 {
            let (m, t) = (self.manifest(commit), self.now());
            let e = self.log.keys.ack_entry(t, &self.log.keys.receipt(&m, &self.party(party), t));
            self.push(e)
        }

        fn recall(&mut self, drop: &DropId, party: usize) -> u64 {
            let e = self.log.keys.recall_entry(drop, &self.party(party), self.now());
            self.push(e)
        }

        /// A recall entry with `request` as its signed request.
        fn recall_with(&mut self, drop: &DropId, party: usize, request: SignedRequest) -> u64 {
            let (party, recalled) = (self.party(party), self.now());
            self.push(LogEntry::DropRecalled { drop: drop.clone(), party, recalled, request }.to_bytes().unwrap())
        }

        fn delete_at(&mut self, drop: &DropId, reason: DeletionReason, time: Timestamp) -> u64 {
            let e = self.log.keys.hub_entry(&HubStatement::DropDeleted { time, drop: drop.clone(), reason });
            self.push(e)
        }

        fn delete(&mut self, drop: &DropId, reason: DeletionReason) -> u64 {
            self.delete_at(drop, reason, self.now())
        }

        /// Publishes directory 3: directory 2 changed by `change`.
        fn publish(&mut self, change: impl FnOnce(&mut Directory)) -> u64 {
            let mut d = self.log.keys.directory(3).directory;
            change(&mut d);
            let d = SignedDirectory::sign(d, &self.log.keys.authority).unwrap();
            let st = HubStatement::DirectoryPublished { time: self.now(), serial: 3, sha256: d.sha256_hex() };
            self.log.directories.insert(3, d.note);
            let e = self.log.keys.hub_entry(&st);
            self.push(e)
        }

        fn audit(&mut self) -> AuditReport {
            self.log.reseal();
            verify(self.log.audit_input(3))
        }
    }

    /// Asserts that the report fails exactly at the indexes given, each
    /// with a failure containing its text.
    #[track_caller]
    fn assert_fails(r: &AuditReport, expected: &[(u64, &str)]) {
        for (i, needle) in expected {
            assert!(
                r.failures_at(*i).any(|f| f.reason.contains(needle)),
                "expected a failure at entry {i} containing {needle:?}; got:\n{r}"
            );
        }
        for f in &r.failures {
            assert!(
                f.index.is_some_and(|i| expected.iter().any(|(e, _)| *e == i)),
                "unexpected failure {f}; report:\n{r}"
            );
        }
    }

    /// `request` re-signed by `party`'s member key after a change.
    fn resigned(
        s: &Scenario,
        party: usize,
        mut request: SignedRequest,
        change: impl FnOnce(&mut SignedRequest),
    ) -> SignedRequest {
        change(&mut request);
        let msg =
            signed_string(&request.method, &request.path, request.time, &request.nonce, &request.content, &request.key);
        let key = &s.log.keys.member(&s.party(party)).signing;
        request.signature = B64.encode(key.sign_bytes(msg.as_bytes()).to_bytes());
        request
    }

    #[test]
    fn drop_slots_stay_small() {
        assert!(std::mem::size_of::<DropSlot>() <= 24, "{}", std::mem::size_of::<DropSlot>());
    }

    #[test]
    fn a_recall_and_its_deletion_pass() {
        let mut s = Scenario::new();
        let (_, drop) = s.commit(0, &[1, 2]);
        s.fetch(&drop, 1);
        s.recall(&drop, 0);
        s.delete(&drop, DeletionReason::Recalled);
        let r = s.audit();
        assert!(r.ok(), "{r}");
        assert_eq!((r.recalls, r.deleted.recalled, r.deleted.agreement_ended), (1, 1, 0));
        assert!(r.to_string().contains("(4 acknowledgements), 1 recalled\n"), "{r}");
        assert!(r.to_string().contains("deleted: 4 delivered, 0 expired, 1 recalled, 0 agreement ended\n"), "{r}");
        // Every entry, the recall included, carries one signature.
        assert_eq!(r.signatures_checked, r.entries + 2 + 1 + 3);

        // The generated mix recalls drop 33 the same way.
        let log = crate::testlog::generate(3, 40);
        let r = verify(log.audit_input(3));
        assert!(r.ok(), "{r}");
        assert_eq!((r.recalls, r.deleted.recalled), (1, 1));
    }

    #[test]
    fn only_the_sender_recalls() {
        for by in [1, 2] {
            let mut s = Scenario::new();
            let (_, drop) = s.commit(0, &[1]);
            let recall = s.recall(&drop, by);
            s.delete(&drop, DeletionReason::Recalled);
            let who = s.party(by);
            let r = s.audit();
            assert_fails(&r, &[(recall, &format!("drop {drop} is recalled by {who}, which is not its sender camden"))]);
        }
    }

    #[test]
    fn no_recall_after_an_acknowledgement() {
        let mut s = Scenario::new();
        let (c, drop) = s.commit(0, &[1, 2]);
        s.fetch(&drop, 1);
        let ack = s.ack(c, 1);
        let recall = s.recall(&drop, 0);
        s.delete(&drop, DeletionReason::Recalled);
        let r = s.audit();
        assert_fails(
            &r,
            &[(recall, &format!("drop {drop} is recalled after islington acknowledged it at entry {ack}"))],
        );
    }

    #[test]
    fn a_recalled_deletion_needs_the_recall_just_before() {
        // No recall at all.
        let mut s = Scenario::new();
        let (_, drop) = s.commit(0, &[1]);
        let del = s.delete(&drop, DeletionReason::Recalled);
        let r = s.audit();
        assert_fails(
            &r,
            &[(
                del,
                &format!(
                    "drop {drop} is deleted as recalled, but the sender's recall is not the entry before (it was never recalled)"
                ),
            )],
        );

        // Another entry between the recall and the deletion.
        let mut s = Scenario::new();
        let (_, drop) = s.commit(0, &[1]);
        let recall = s.recall(&drop, 0);
        s.commit(1, &[2]);
        let del = s.delete(&drop, DeletionReason::Recalled);
        let r = s.audit();
        assert_fails(
            &r,
            &[(del, &format!("the sender's recall is not the entry before (it was recalled at entry {recall})"))],
        );

        // A recall the log never deletes.
        let mut s = Scenario::new();
        let (_, drop) = s.commit(0, &[1]);
        let recall = s.recall(&drop, 0);
        let r = s.audit();
        assert_fails(
            &r,
            &[(recall, &format!("drop {drop} is recalled, but the log ends without the hub deleting it as recalled"))],
        );

        // A recall deleted as something else.
        let mut s = Scenario::new();
        let (_, drop) = s.commit(0, &[1]);
        let recall = s.recall(&drop, 0);
        let del = s.delete_at(&drop, DeletionReason::Expired, s.now() + SignedDuration::from_hours(24 * 8));
        let r = s.audit();
        assert_fails(
            &r,
            &[(
                del,
                &format!(
                    "drop {drop} was recalled at entry {recall}, so the hub must delete it as recalled, not as expired"
                ),
            )],
        );

        // Recalled twice.
        let mut s = Scenario::new();
        let (_, drop) = s.commit(0, &[1]);
        let first = s.recall(&drop, 0);
        let again = s.recall(&drop, 0);
        let del = s.delete(&drop, DeletionReason::Recalled);
        let r = s.audit();
        assert_fails(
            &r,
            &[
                (again, &format!("drop {drop} is recalled again (first at entry {first})")),
                (del, &format!("the sender's recall is not the entry before (it was recalled at entry {first})")),
            ],
        );
        // After its deletion, a recall is refused as any other event.
        let late = s.recall(&drop, 0);
        let r = s.audit();
        assert_caught(&r, late, &format!("drop {drop} is recalled after its deletion at entry {}", late - 1));
    }

    #[track_caller]
    fn assert_caught(r: &AuditReport, index: u64, needle: &str) {
        assert!(r.failures_at(index).any(|f| f.reason.contains(needle)), "expected {needle:?} at entry {index}:\n{r}");
    }

    #[test]
    fn nothing_is_fetched_or_acknowledged_after_a_recall() {
        // After the recall and its deletion.
        let mut s = Scenario::new();
        let (c, drop) = s.commit(0, &[1, 2]);
        let recall = s.recall(&drop, 0);
        let del = s.delete(&drop, DeletionReason::Recalled);
        let fetch = s.fetch(&drop, 1);
        let ack = s.ack(c, 2);
        let r = s.audit();
        assert_fails(
            &r,
            &[
                (
                    fetch,
                    &format!("drop {drop} is fetched after it was recalled at entry {recall} (deleted at entry {del})"),
                ),
                (
                    ack,
                    &format!(
                        "drop {drop} is acknowledged after it was recalled at entry {recall} (deleted at entry {del})"
                    ),
                ),
            ],
        );

        // Between the recall and its deletion (which then does not follow it).
        let mut s = Scenario::new();
        let (c, drop) = s.commit(0, &[1]);
        let recall = s.recall(&drop, 0);
        let fetch = s.fetch(&drop, 1);
        let ack = s.ack(c, 1);
        let del = s.delete(&drop, DeletionReason::Recalled);
        let r = s.audit();
        assert_fails(
            &r,
            &[
                (fetch, &format!("drop {drop} is fetched after it was recalled at entry {recall}")),
                (ack, &format!("drop {drop} is acknowledged after it was recalled at entry {recall}")),
                (del, "the sender's recall is not the entry before"),
            ],
        );
    }

    #[test]
    fn a_recall_request_is_for_the_recall_route() {
        type Path = fn(&DropId) -> String;
        let cases: [(&str, Path); 4] = [
            ("GET", |d| format!("/v1/drops/{d}/recall")),
            ("POST", |d| format!("/v1/drops/{d}/content")),
            ("POST", |d| format!("/v1/drops/{d}/recall?now=1")),
            ("POST", |_| format!("/v1/drops/{}/recall", DropId::random())),
        ];
        for (method, path) in cases {
            let mut s = Scenario::new();
            let (_, drop) = s.commit(0, &[1]);
            let path = path(&drop);
            let req = s.log.keys.signed_request(&s.party(0), method, &path, s.now(), b"{}");
            let recall = s.recall_with(&drop, 0, req);
            s.delete(&drop, DeletionReason::Recalled);
            let r = s.audit();
            assert_fails(
                &r,
                &[(recall, &format!("the recall request is for {method} {path}, not POST /v1/drops/{drop}/recall"))],
            );
        }
    }

    #[test]
    fn a_recall_request_is_signed_by_the_sender_near_the_recall() {
        // Signed for another party's member.
        let mut s = Scenario::new();
        let (_, drop) = s.commit(0, &[1]);
        let req = s.log.keys.signed_request(&s.party(1), "POST", &format!("/v1/drops/{drop}/recall"), s.now(), b"{}");
        let recall = s.recall_with(&drop, 0, req);
        s.delete(&drop, DeletionReason::Recalled);
        let r = s.audit();
        assert_fails(
            &r,
            &[(
                recall,
                "the recall request is signed for islington/data-team, which directory 2 does not list as a member of camden",
            )],
        );

        // Altered after signing.
        let mut s = Scenario::new();
        let (_, drop) = s.commit(0, &[1]);
        let mut req =
            s.log.keys.signed_request(&s.party(0), "POST", &format!("/v1/drops/{drop}/recall"), s.now(), b"{}");
        req.content = sealdrop_proto::request::body_sha256(b"{\"x\":1}");
        let recall = s.recall_with(&drop, 0, req);
        s.delete(&drop, DeletionReason::Recalled);
        let r = s.audit();
        assert_fails(&r, &[(recall, "the recall request's signature by camden/data-team does not verify")]);

        // Signed too long before.
        let mut s = Scenario::new();
        let (_, drop) = s.commit(0, &[1]);
        let then = s.now() - SignedDuration::from_secs(MAX_CLOCK_SKEW_SECS + 1);
        let req = s.log.keys.signed_request(&s.party(0), "POST", &format!("/v1/drops/{drop}/recall"), then, b"{}");
        let recall = s.recall_with(&drop, 0, req);
        s.delete(&drop, DeletionReason::Recalled);
        let r = s.audit();
        assert_fails(&r, &[(recall, "but the recall is logged at")]);
    }

    #[test]
    fn a_request_time_far_from_the_entry_is_reported_not_overflowed() {
        // Found while writing the audit's fuzz target: `req.time - at` overflowed for a
        // request time near i64::MIN (a panic in debug builds, and in release
        // a wrapped difference whose `abs` could pass the skew check).
        for time in [i64::MIN, i64::MIN + 1, i64::MAX] {
            let mut s = Scenario::new();
            let (_, drop) = s.commit(0, &[1]);
            let mut req =
                s.log.keys.signed_request(&s.party(0), "POST", &format!("/v1/drops/{drop}/recall"), s.now(), b"{}");
            req.time = time;
            let recall = s.recall_with(&drop, 0, req);
            s.delete(&drop, DeletionReason::Recalled);
            let r = s.audit();
            assert_caught(&r, recall, "but the recall is logged at");
        }
    }

    #[test]
    fn a_recall_nonce_is_used_once() {
        // The same signed recall logged again, for the same drop.
        let mut s = Scenario::new();
        let (_, drop) = s.commit(0, &[1]);
        let recall = s.recall(&drop, 0);
        s.delete(&drop, DeletionReason::Recalled);
        let copy = s.log.entries[recall as usize].clone();
        let replay = s.push(copy);
        let r = s.audit();
        let LogEntry::DropRecalled { request, .. } = s.log.entry(recall as usize) else { unreachable!() };
        assert_caught(
            &r,
            replay,
            &format!("the recall request (nonce {}) was already logged at entry {recall}: a replay", request.nonce),
        );

        // A fetch's nonce, re-signed by the same member for a recall: fetches and recalls share one nonce space.
        let mut s = Scenario::new();
        let (_, theirs) = s.commit(1, &[0]);
        let fetch = s.fetch(&theirs, 0);
        let (_, mine) = s.commit(0, &[1]);
        let LogEntry::DropFetched { request: fetched, .. } = s.log.entry(fetch as usize) else { unreachable!() };
        let now = s.now().as_second();
        let req = resigned(&s, 0, fetched.clone(), |r| {
            r.method = "POST".into();
            r.path = format!("/v1/drops/{mine}/recall");
            r.time = now;
            r.content = sealdrop_proto::request::body_sha256(b"{}");
        });
        let recall = s.recall_with(&mine, 0, req);
        s.delete(&mine, DeletionReason::Recalled);
        let r = s.audit();
        assert_fails(
            &r,
            &[(
                recall,
                &format!("the recall request (nonce {}) was already logged at entry {fetch}: a replay", fetched.nonce),
            )],
        );
    }

    #[test]
    fn agreement_ended_deletions_need_the_agreement_ended() {
        // In force (directory 2: until 2030): refused.
        let mut s = Scenario::new();
        let (_, drop) = s.commit(0, &[1]);
        let t = s.now();
        let del = s.delete(&drop, DeletionReason::AgreementEnded);
        let r = s.audit();
        assert_fails(
            &r,
            &[(
                del,
                &format!(
                    "drop {drop} is deleted as its agreement ended at {t}, but agreement `{AGREEMENT}` is in force then in directory 2"
                ),
            )],
        );
        assert_eq!((r.deleted.agreement_ended, r.deleted.expired), (1, 0));

        // A new version ends it at `end`: a deletion a second before fails, one at `end` passes.
        for (early, ok) in [(1, false), (0, true)] {
            let mut s = Scenario::new();
            let (_, drop) = s.commit(0, &[1]);
            let end = time_of(s.next() + 2);
            s.publish(|d| d.agreements[0].valid_until = end);
            let at = end - SignedDuration::from_secs(early);
            let del = s.delete_at(&drop, DeletionReason::AgreementEnded, at);
            let r = s.audit();
            if ok {
                assert!(r.ok(), "{r}");
                assert_eq!(r.deleted.agreement_ended, 1);
                assert!(r.to_string().contains(", 1 agreement ended\n"), "{r}");
            } else {
                assert_fails(
                    &r,
                    &[(del, &format!("is in force then in directory 3 (from 2026-01-01T00:00:00Z until {end})"))],
                );
            }
        }

        // A new version without the agreement: passes.
        let mut s = Scenario::new();
        let (_, drop) = s.commit(0, &[1]);
        s.publish(|d| d.agreements.clear());
        s.delete(&drop, DeletionReason::AgreementEnded);
        let r = s.audit();
        assert!(r.ok(), "{r}");

        // Not yet in force (a new version moves its start later): passes.
        let mut s = Scenario::new();
        let (_, drop) = s.commit(0, &[1]);
        s.publish(|d| d.agreements[0].valid_from = "2029-01-01T00:00:00Z".parse().unwrap());
        s.delete(&drop, DeletionReason::AgreementEnded);
        assert!(s.audit().ok());
    }

    #[test]
    fn fetches_need_the_agreement_in_force_and_both_parties_in_it() {
        // The agreement ended: the fetch fails, the acknowledgement (no data moves) does not.
        let mut s = Scenario::new();
        let (c, drop) = s.commit(0, &[1]);
        let end = time_of(s.next() + 1);
        s.publish(|d| d.agreements[0].valid_until = end);
        let fetch = s.fetch(&drop, 1);
        assert_eq!(time_of(fetch), end);
        s.ack(c, 1);
        s.delete(&drop, DeletionReason::Delivered);
        let r = s.audit();
        assert_fails(
            &r,
            &[(
                fetch,
                &format!(
                    "drop {drop} is fetched at {end}, when agreement `{AGREEMENT}` was not in force (directory 3: from 2026-01-01T00:00:00Z until {end})"
                ),
            )],
        );

        // Gone from the directory.
        let mut s = Scenario::new();
        let (_, drop) = s.commit(0, &[1]);
        s.publish(|d| d.agreements.clear());
        let t = s.now();
        let fetch = s.fetch(&drop, 1);
        let r = s.audit();
        assert_fails(
            &r,
            &[(
                fetch,
                &format!(
                    "drop {drop} is fetched at {t}, when agreement `{AGREEMENT}` was not in force (directory 3 does not list it)"
                ),
            )],
        );

        // The recipient, or the sender, no longer a party to it.
        for (gone, who) in [(1, "islington"), (0, "camden")] {
            let mut s = Scenario::new();
            let (_, drop) = s.commit(0, &[1]);
            let id = s.party(gone);
            s.publish(|d| d.agreements[0].parties.retain(|p| *p != id));
            let t = s.now();
            let fetch = s.fetch(&drop, 1);
            let r = s.audit();
            assert_fails(
                &r,
                &[(
                    fetch,
                    &format!(
                        "drop {drop} is fetched at {t}, when agreement `{AGREEMENT}` did not include {who} (directory 3)"
                    ),
                )],
            );
        }

        // Still in force under the new version: fine.
        let mut s = Scenario::new();
        let (c, drop) = s.commit(0, &[1]);
        s.publish(|d| d.agreements[0].valid_until = "2029-01-01T00:00:00Z".parse().unwrap());
        s.fetch(&drop, 1);
        s.ack(c, 1);
        s.delete(&drop, DeletionReason::Delivered);
        assert!(s.audit().ok());
    }

    #[test]
    fn a_commit_while_the_agreement_is_not_in_force_fails() {
        // Directory 3 ends the agreement at the commit's second exactly: refused, as the hub does.
        let mut s = Scenario::new();
        let end = time_of(s.next() + 1);
        s.publish(|d| d.agreements[0].valid_until = end);
        let (commit, drop) = s.commit(0, &[1]);
        assert_eq!(time_of(commit), end);
        let r = s.audit();
        assert_fails(
            &r,
            &[(
                commit,
                &format!(
                    "drop {drop}: it is committed at {end}, when agreement `{AGREEMENT}` was not in force (directory 3: from 2026-01-01T00:00:00Z until {end})"
                ),
            )],
        );

        // Not yet in force.
        let mut s = Scenario::new();
        s.publish(|d| d.agreements[0].valid_from = "2029-01-01T00:00:00Z".parse().unwrap());
        let (commit, drop) = s.commit(0, &[1]);
        let r = s.audit();
        assert_fails(
            &r,
            &[(
                commit,
                &format!(
                    "drop {drop}: it is committed at {}, when agreement `{AGREEMENT}` was not in force (directory 3: from 2029-01-01T00:00:00Z until 2030-01-01T00:00:00Z)",
                    time_of(commit)
                ),
            )],
        );

        // A second before the end: in force.
        let mut s = Scenario::new();
        let end = time_of(s.next() + 2);
        s.publish(|d| d.agreements[0].valid_until = end);
        s.commit(0, &[1]);
        let r = s.audit();
        assert!(r.ok(), "{r}");
    }

    #[test]
    fn a_commit_or_fetch_at_the_second_of_expiry_fails() {
        // Fetched at exactly its expiry: the hub refuses from that second on.
        let mut s = Scenario::new();
        let t = s.now();
        let expires = time_of(s.next() + 1);
        let (_, drop) = s.commit_made(0, &[1], t - SignedDuration::from_secs(60), expires);
        let fetch = s.fetch(&drop, 1);
        let r = s.audit();
        assert_fails(&r, &[(fetch, &format!("drop {drop} is fetched at {expires}, when it had expired at {expires}"))]);

        // Committed at exactly its expiry.
        let mut s = Scenario::new();
        let t = s.now();
        let (commit, drop) = s.commit_made(0, &[1], t - SignedDuration::from_secs(60), t);
        let r = s.audit();
        assert_fails(&r, &[(commit, &format!("drop {drop}: it is committed at {t}, when it had expired at {t}"))]);

        // Committed and fetched a second before its expiry: fine.
        let mut s = Scenario::new();
        let t = s.now();
        let (_, drop) = s.commit_made(0, &[1], t - SignedDuration::from_secs(60), time_of(s.next() + 2));
        s.fetch(&drop, 1);
        let r = s.audit();
        assert!(r.ok(), "{r}");
    }

    #[test]
    fn a_manifest_expiry_beyond_the_agreements_longest_wait_fails() {
        let days30 = SignedDuration::from_hours(24 * 30);
        let second = SignedDuration::from_secs(1);
        // The hub trims a request up to the clock skew beyond the longest
        // wait to it, so it never stores an expiry past it; exactly the
        // longest wait is what such a request is trimmed to, and passes.
        for (beyond, ok) in
            [(SignedDuration::ZERO, true), (second, false), (SignedDuration::from_secs(MAX_CLOCK_SKEW_SECS), false)]
        {
            let mut s = Scenario::new();
            let created = s.now() - SignedDuration::from_secs(60);
            let expires = created + days30 + beyond;
            let (commit, drop) = s.commit_made(0, &[1], created, expires);
            let r = s.audit();
            if ok {
                assert!(r.ok(), "{r}");
            } else {
                assert_fails(
                    &r,
                    &[(
                        commit,
                        &format!(
                            "drop {drop}: its expiry {expires} is more than 30 days after its creation {created}: agreement `{AGREEMENT}` lets a drop wait at most 30 days"
                        ),
                    )],
                );
            }
        }

        // Beyond the agreement's end, under the only version the creation could read.
        let mut s = Scenario::new();
        let end = s.now() + SignedDuration::from_hours(24 * 10);
        s.publish(|d| d.agreements[0].valid_until = end);
        s.commit(1, &[0]);
        let created = s.now();
        let expires = end + second;
        let (commit, drop) = s.commit_made(0, &[1], created, expires);
        let r = s.audit();
        assert_fails(
            &r,
            &[(commit, &format!("drop {drop}: its expiry {expires} is after agreement `{AGREEMENT}` ends at {end}"))],
        );

        // Created under directory 2, committed after directory 3 shortened
        // the agreement's wait and end: the hub rightly stored it, and the
        // log passes.
        let mut s = Scenario::new();
        let created = s.now() - SignedDuration::from_secs(60);
        s.publish(|d| {
            d.agreements[0].max_expiry_days = 7;
            d.agreements[0].valid_until = created + SignedDuration::from_hours(24 * 20);
        });
        s.commit_made(0, &[1], created, created + days30);
        let r = s.audit();
        assert!(r.ok(), "{r}");
    }
}
