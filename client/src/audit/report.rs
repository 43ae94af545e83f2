//! The information-governance (IG) report over a transfer log that the audit
//! has already verified: who sent how much to whom under which agreement, how
//! long recipients took to acknowledge, which drops expired or were deleted
//! because their agreement ended before every recipient acknowledged (each
//! such recipient shown as NOT DELIVERED), which were recalled (when, and by
//! which member of the sender), which drops are still waiting, and how the
//! directory (keys, key revocations, witnesses, agreements) changed.
//!
//! [`build`] streams the entries once and keeps one compact summary per drop
//! (party and agreement ids interned, no manifests or receipts kept), so a
//! log of a million entries fits comfortably in memory. Documents inside the
//! entries are read with [`peek_doc`]: checking their signatures is the
//! audit's job, done before the report is built.
//!
//! [`write_csv`] writes one row per (drop, recipient) for spreadsheets;
//! [`write_html`] writes one self-contained page (inline CSS and SVG, no
//! scripts, no external assets) that prints cleanly.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt::Write as _;
use std::io::Write as _;
use std::path::Path;

use jiff::Timestamp;
use sealdrop_log::entry::{DeletionReason, HubStatement, LogEntry};
use sealdrop_proto::directory::{Directory, SignedDirectory};
use sealdrop_proto::drop::{Manifest, Receipt};
use sealdrop_proto::ids::{PartyId, key_name};
use sealdrop_proto::note::peek_doc;

use crate::audit::signers::{KeyIx, KeyUse, SignerKey, Signers, key_uses};

use crate::error::{Error, Result};
use crate::fsutil::{human_bytes, write_atomic};

/// What a report is built from.
pub struct ReportInput<'a> {
    /// The log's entries with their indexes, in log order, already verified.
    pub entries: Box<dyn Iterator<Item = (u64, LogEntry)> + 'a>,
    /// Every directory version (any order; sorted by serial here).
    pub directories: Vec<SignedDirectory>,
    /// The log's origin (the hub's name in its checkpoints).
    pub origin: String,
    /// The size of the checkpoint the entries were verified against.
    pub checkpoint_size: u64,
    /// Only drops under this agreement, when given.
    pub agreement: Option<String>,
    /// Only drops committed at or after this time, when given.
    pub since: Option<Timestamp>,
    /// Only drops committed before this time (exclusive), when given.
    pub until: Option<Timestamp>,
    /// When the report is made (shown, and used to flag overdue drops).
    pub generated_at: Timestamp,
}

/// Drops and ciphertext bytes from one sender to one recipient.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Flow {
    /// Drops the sender addressed to the recipient.
    pub drops: u64,
    /// Their ciphertext bytes (a drop to several recipients counts for each).
    pub bytes: u64,
}

/// Counts over a set of drops.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Totals {
    /// Drops committed.
    pub drops: u64,
    /// Their ciphertext bytes (each drop once).
    pub bytes: u64,
    /// Distinct parties that sent or received.
    pub parties: u64,
    /// Distinct sending parties.
    pub senders: u64,
    /// Distinct recipient parties.
    pub recipients: u64,
    /// (drop, recipient party) pairs.
    pub deliveries: u64,
    /// Of those, the ones the recipient acknowledged.
    pub acknowledged_deliveries: u64,
    /// Drops every recipient acknowledged.
    pub acknowledged: u64,
    /// Drops that expired before every recipient acknowledged.
    pub expired_undelivered: u64,
    /// Drops deleted because their agreement ended (or a new directory
    /// version ended or dropped it) before every recipient acknowledged.
    pub agreement_ended_undelivered: u64,
    /// Drops the sender recalled.
    pub recalled: u64,
    /// Drops neither fully acknowledged nor deleted at the end of the log.
    pub waiting: u64,
}

/// The totals of one agreement.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AgreementTotals {
    /// The agreement id.
    pub id: String,
    /// Its title in the newest directory that lists it.
    pub title: Option<String>,
    /// The counts.
    pub totals: Totals,
    /// When it ended, if it has (its end date passed, or a directory dropped it).
    pub ended: Option<crate::audit::ended::AgreementEnd>,
}

/// Time from commit to acknowledgement, over a set of acknowledgements.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct AckTimes {
    /// Acknowledgements counted.
    pub count: u64,
    /// Median, in hours.
    pub median_hours: f64,
    /// 90th percentile (linear interpolation), in hours.
    pub p90_hours: f64,
    /// Longest, in hours.
    pub max_hours: f64,
}

/// One bar of the time-to-acknowledge histogram: `[lower, upper)` hours.
#[derive(Clone, Debug, PartialEq)]
pub struct HistogramBin {
    /// Short label, e.g. `4–12 h`.
    pub label: &'static str,
    /// Lower bound, in hours (inclusive).
    pub lower_hours: f64,
    /// Upper bound, in hours (exclusive); `None` for the last bin.
    pub upper_hours: Option<f64>,
    /// Acknowledgements in the bin.
    pub count: u64,
}

/// A sender's recall of a drop, as the log records it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Recall {
    /// When the hub recalled it.
    pub at: Timestamp,
    /// The member key whose signed request recalled it (`<party>/<member>`).
    pub by: String,
}

/// A drop deleted before every recipient acknowledged it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UndeliveredDrop {
    /// The drop id.
    pub drop: String,
    /// The log index of its commit entry.
    pub log_index: u64,
    /// Its agreement.
    pub agreement: String,
    /// Its sender.
    pub sender: PartyId,
    /// The recipients that never acknowledged it.
    pub unacknowledged: Vec<PartyId>,
    /// Its ciphertext bytes.
    pub bytes: u64,
    /// When it was committed.
    pub committed: Timestamp,
    /// When it was due to expire.
    pub expires: Timestamp,
    /// When the hub deleted it.
    pub deleted: Timestamp,
    /// For a recalled drop, its recall (`None` when the log holds no
    /// `drop_recalled` entry for it, as in logs older than recall entries).
    pub recall: Option<Recall>,
    /// The key that signed its manifest ([`crate::audit::signers`]).
    pub manifest_key: Option<SignerKey>,
}

/// A drop still on the hub at the end of the log.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WaitingDrop {
    /// The drop id.
    pub drop: String,
    /// The log index of its commit entry.
    pub log_index: u64,
    /// Its agreement.
    pub agreement: String,
    /// Its sender.
    pub sender: PartyId,
    /// The recipients that have not acknowledged it yet.
    pub waiting_for: Vec<PartyId>,
    /// Its ciphertext bytes.
    pub bytes: u64,
    /// When it was committed.
    pub committed: Timestamp,
    /// When it expires.
    pub expires: Timestamp,
    /// The key that signed its manifest ([`crate::audit::signers`]).
    pub manifest_key: Option<SignerKey>,
}

/// Whether something appeared or disappeared between directory versions.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Change {
    /// New in this version.
    Added,
    /// Gone in this version.
    Removed,
    /// Present in both, different.
    Changed,
}

impl Change {
    /// Lowercase word.
    pub fn as_str(self) -> &'static str {
        match self {
            Change::Added => "added",
            Change::Removed => "removed",
            Change::Changed => "changed",
        }
    }
}

/// Which kind of key changed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum KeyKind {
    /// A member key (signs manifests, receipts, requests; receives drops).
    Member,
    /// A witness key (cosigns the hub's checkpoints).
    Witness,
}

/// A member key the coordinator revoked, as a directory version lists it.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct KeyRevocation {
    /// The serial of the first directory version that lists the revocation.
    pub serial: u64,
    /// The party the key belonged to.
    pub party: PartyId,
    /// The member the key belonged to.
    pub member: String,
    /// The key's name (`<party>/<member>`).
    pub name: String,
    /// Its fingerprint (`SHA256:...`).
    pub fingerprint: String,
    /// From when the key is not to be trusted.
    pub revoked_at: Timestamp,
    /// Why, as the coordinator put it.
    pub reason: String,
}

/// A key added or removed between directory versions.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct KeyChange {
    /// The party the key belongs to.
    pub party: PartyId,
    /// Member or witness key.
    pub kind: KeyKind,
    /// Added or removed (a replaced key shows as one of each).
    pub change: Change,
    /// The key's name (`<party>/<member>` for member keys).
    pub name: String,
    /// Its fingerprint (`SHA256:...`).
    pub fingerprint: String,
    /// The age recipient, for member keys.
    pub age_recipient: Option<String>,
}

/// An agreement added, removed or changed between directory versions.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AgreementChange {
    /// The agreement id.
    pub id: String,
    /// What happened to it.
    pub change: Change,
    /// For changes: one line per changed field.
    pub details: Vec<String>,
}

/// What changed from the previous directory version.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DirectoryDiff {
    /// Parties new in this version.
    pub parties_added: Vec<PartyId>,
    /// Parties gone in this version.
    pub parties_removed: Vec<PartyId>,
    /// Member and witness keys added and removed.
    pub keys: Vec<KeyChange>,
    /// Agreements added, removed and changed.
    pub agreements: Vec<AgreementChange>,
    /// Member keys revoked in this version (not listed as revoked before).
    pub revocations: Vec<KeyRevocation>,
    /// Anything else people should notice (renamed parties, a new hub key).
    pub notes: Vec<String>,
}

impl DirectoryDiff {
    /// Whether nothing changed.
    pub fn is_empty(&self) -> bool {
        self.parties_added.is_empty()
            && self.parties_removed.is_empty()
            && self.keys.is_empty()
            && self.agreements.is_empty()
            && self.revocations.is_empty()
            && self.notes.is_empty()
    }
}

/// One directory version.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DirectoryVersion {
    /// Its serial.
    pub serial: u64,
    /// When the coordinator signed it.
    pub issued_at: Timestamp,
    /// When the hub logged that it started enforcing it, if it did.
    pub published: Option<Timestamp>,
    /// SHA-256 of the signed directory note, hex.
    pub sha256: String,
    /// Whether the log names a different hash for this serial.
    pub hash_mismatch: bool,
    /// Parties listed.
    pub parties: usize,
    /// Member keys listed.
    pub member_keys: usize,
    /// Witness keys listed.
    pub witness_keys: usize,
    /// Revoked member keys listed (each version keeps every earlier revocation).
    pub revoked_keys: usize,
    /// Agreements listed.
    pub agreements: usize,
    /// Changes from the previous version; `None` for the first one.
    pub changes: Option<DirectoryDiff>,
}

/// What became of one (drop, recipient) pair.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// The recipient acknowledged the drop.
    Acknowledged,
    /// Neither acknowledged nor deleted yet.
    Waiting,
    /// The drop expired before this recipient acknowledged it.
    ExpiredUndelivered,
    /// The drop's agreement ended before this recipient acknowledged it.
    AgreementEndedUndelivered,
    /// The sender recalled the drop before this recipient acknowledged it.
    Recalled,
    /// Deleted as delivered without this recipient's receipt: a log the
    /// audit accepts never has this.
    DeletedUnacknowledged,
}

impl Outcome {
    /// The CSV word.
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Acknowledged => "acknowledged",
            Outcome::Waiting => "waiting",
            Outcome::ExpiredUndelivered => "expired_undelivered",
            Outcome::AgreementEndedUndelivered => "agreement_ended_undelivered",
            Outcome::Recalled => "recalled",
            Outcome::DeletedUnacknowledged => "deleted_unacknowledged",
        }
    }

    /// Whether the data reached this recipient, in the words of the CSV's
    /// `delivery` column: `NOT DELIVERED` when the hub deleted the drop
    /// (expired, agreement ended) before this recipient acknowledged it.
    pub fn delivery(self) -> &'static str {
        match self {
            Outcome::Acknowledged => "delivered",
            Outcome::Waiting => "pending",
            Outcome::Recalled => "recalled",
            Outcome::ExpiredUndelivered | Outcome::AgreementEndedUndelivered | Outcome::DeletedUnacknowledged => {
                NOT_DELIVERED
            }
        }
    }
}

/// How the report marks a recipient the hub deleted a drop for before it acknowledged.
pub const NOT_DELIVERED: &str = "NOT DELIVERED";

/// A deletion reason as the CSV writes it.
pub fn reason_word(reason: DeletionReason) -> &'static str {
    match reason {
        DeletionReason::Delivered => "delivered",
        DeletionReason::Expired => "expired",
        DeletionReason::Recalled => "recalled",
        DeletionReason::AgreementEnded => "agreement_ended",
    }
}

/// One (drop, recipient) pair, as a CSV row.
#[derive(Clone, Debug, PartialEq)]
pub struct DeliveryRow<'a> {
    /// The drop id.
    pub drop: &'a str,
    /// Its agreement.
    pub agreement: &'a str,
    /// Its sender.
    pub sender: &'a PartyId,
    /// This recipient.
    pub recipient: &'a PartyId,
    /// The ciphertext bytes.
    pub ciphertext_bytes: u64,
    /// When the drop was committed.
    pub committed: Timestamp,
    /// When this recipient first downloaded it.
    pub fetched: Option<Timestamp>,
    /// When this recipient acknowledged it.
    pub acknowledged: Option<Timestamp>,
    /// Hours from commit to acknowledgement.
    pub hours_to_acknowledge: Option<f64>,
    /// What became of it.
    pub outcome: Outcome,
    /// When the hub deleted the drop, and why.
    pub deleted: Option<(Timestamp, DeletionReason)>,
    /// The member key that recalled the drop, if its sender recalled it.
    pub recalled_by: Option<&'a str>,
    /// The key the drop's manifest was signed with.
    pub manifest_key: Option<&'a SignerKey>,
    /// The key this recipient's receipt was signed with, if it acknowledged.
    pub receipt_key: Option<&'a SignerKey>,
}

/// The report: plain data, ready for [`write_csv`] and [`write_html`].
#[derive(Debug)]
pub struct Report {
    /// The log's origin.
    pub origin: String,
    /// The checkpoint size the entries were verified against.
    pub checkpoint_size: u64,
    /// Entries read.
    pub entries_read: u64,
    /// Entries whose document could not be read (none in an audited log).
    pub unreadable_entries: u64,
    /// The agreement filter, if any.
    pub agreement_filter: Option<String>,
    /// The time filter, if any.
    pub since: Option<Timestamp>,
    /// The end of the time filter (exclusive), if any.
    pub until: Option<Timestamp>,
    /// When the report was made.
    pub generated_at: Timestamp,
    /// The earliest and latest times found in the entries.
    pub log_span: Option<(Timestamp, Timestamp)>,
    /// Display names: from the newest directory listing each party.
    pub party_names: BTreeMap<PartyId, String>,
    /// Agreement titles: from the newest directory listing each agreement.
    pub agreement_titles: BTreeMap<String, String>,
    /// The matrix's parties (rows and columns), ordered by display name.
    pub parties: Vec<PartyId>,
    /// Sender × recipient matrix; pairs with no drops are absent.
    pub matrix: BTreeMap<(PartyId, PartyId), Flow>,
    /// Counts over all selected drops.
    pub totals: Totals,
    /// Counts per agreement, most drops first.
    pub agreements: Vec<AgreementTotals>,
    /// Time to acknowledge over all recipients.
    pub ack_overall: Option<AckTimes>,
    /// Time to acknowledge per recipient party, ordered by display name.
    pub ack_by_recipient: Vec<(PartyId, AckTimes)>,
    /// Histogram of hours to acknowledge.
    pub ack_histogram: Vec<HistogramBin>,
    /// Drops that expired before every recipient acknowledged, in log order.
    pub expired: Vec<UndeliveredDrop>,
    /// Drops deleted because their agreement ended before every recipient
    /// acknowledged, in log order.
    pub agreement_ended: Vec<UndeliveredDrop>,
    /// Recalled drops, in log order.
    pub recalled: Vec<UndeliveredDrop>,
    /// Drops still on the hub at the end of the log, in log order.
    pub waiting: Vec<WaitingDrop>,
    /// Directory versions published in the period (all of them without
    /// `since`), by serial, each compared with the version before it.
    pub directory_versions: Vec<DirectoryVersion>,
    /// The newest directory serial known.
    pub current_directory_serial: Option<u64>,
    /// Member keys revoked by the directory versions shown (the period's),
    /// each once, with the serial of the version that first lists it.
    pub revocations: Vec<KeyRevocation>,
    /// Entries signed with a key that a later directory revokes from before
    /// them, as the audit lists them (`AuditReport::used_after_revocation`):
    /// what a stolen key did before its revocation was published. Empty
    /// unless the caller fills it from the audit's verdict.
    pub used_after_revocation: Vec<String>,
    /// The keys that signed the selected drops' manifests and receipts,
    /// with how often and when ([`crate::audit::signers`]).
    pub signing_keys: Vec<KeyUse>,
    drops: Vec<DropSummary>,
    signer_keys: Vec<SignerKey>,
    party_ids: Vec<PartyId>,
    agreement_ids: Vec<String>,
    recall_keys: Vec<String>,
}

/// One drop, compactly: ids interned, times as timestamps, no documents.
#[derive(Debug)]
struct DropSummary {
    id: [u8; 28],
    log_index: u64,
    sender: u32,
    agreement: u32,
    bytes: u64,
    committed: Timestamp,
    expires: Timestamp,
    deleted: Option<(Timestamp, DeletionReason)>,
    /// When it was recalled, and by which member key (interned).
    recalled: Option<(Timestamp, u32)>,
    /// The key that signed its manifest.
    manifest_key: KeyIx,
    recipients: Box<[RecipientState]>,
}

#[derive(Debug)]
struct RecipientState {
    party: u32,
    fetched: Option<Timestamp>,
    acknowledged: Option<Timestamp>,
    /// The key that signed its receipt.
    receipt_key: KeyIx,
}

/// What a whole drop came to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum DropOutcome {
    Acknowledged,
    Waiting,
    ExpiredUndelivered,
    AgreementEndedUndelivered,
    Recalled,
    Other,
}

impl DropSummary {
    fn id(&self) -> &str {
        std::str::from_utf8(&self.id).unwrap_or("?")
    }

    fn all_acknowledged(&self) -> bool {
        self.recipients.iter().all(|r| r.acknowledged.is_some())
    }

    fn outcome(&self) -> DropOutcome {
        match (self.deleted.map(|d| d.1), self.all_acknowledged()) {
            (Some(DeletionReason::Recalled), _) => DropOutcome::Recalled,
            (_, true) => DropOutcome::Acknowledged,
            (None, false) => DropOutcome::Waiting,
            (Some(DeletionReason::Expired), false) => DropOutcome::ExpiredUndelivered,
            (Some(DeletionReason::AgreementEnded), false) => DropOutcome::AgreementEndedUndelivered,
            (Some(DeletionReason::Delivered), false) => DropOutcome::Other,
        }
    }

    fn recipient_outcome(&self, r: &RecipientState) -> Outcome {
        if r.acknowledged.is_some() {
            return Outcome::Acknowledged;
        }
        match self.deleted.map(|d| d.1) {
            None => Outcome::Waiting,
            Some(DeletionReason::Expired) => Outcome::ExpiredUndelivered,
            Some(DeletionReason::AgreementEnded) => Outcome::AgreementEndedUndelivered,
            Some(DeletionReason::Recalled) => Outcome::Recalled,
            Some(DeletionReason::Delivered) => Outcome::DeletedUnacknowledged,
        }
    }
}

fn drop_key(id: &str) -> Option<[u8; 28]> {
    id.as_bytes().try_into().ok()
}

fn hours_between(from: Timestamp, to: Timestamp) -> f64 {
    (to.duration_since(from).as_secs_f64() / 3600.0).max(0.0)
}

/// Interns ids so each drop holds 4-byte indexes instead of strings.
struct Interner<T: std::hash::Hash + Eq + Clone> {
    items: Vec<T>,
    index: HashMap<T, u32>,
}

impl<T: std::hash::Hash + Eq + Clone> Default for Interner<T> {
    fn default() -> Self {
        Self { items: Vec::new(), index: HashMap::new() }
    }
}

impl<T: std::hash::Hash + Eq + Clone> Interner<T> {
    fn get(&mut self, item: &T) -> u32 {
        if let Some(i) = self.index.get(item) {
            return *i;
        }
        let i = u32::try_from(self.items.len()).expect("fewer than 4 billion distinct ids");
        self.items.push(item.clone());
        self.index.insert(item.clone(), i);
        i
    }
}

#[derive(Default)]
struct Builder {
    parties: Interner<PartyId>,
    agreements: Interner<String>,
    /// Member keys that recalled drops.
    recall_keys: Interner<String>,
    drops: Vec<DropSummary>,
    /// Drops not yet deleted: deleted ones leave the index, so it only
    /// holds the drops on the hub at any one time.
    live: HashMap<[u8; 28], u32>,
    published: BTreeMap<u64, (Timestamp, String)>,
    signers: Signers,
    entries_read: u64,
    unreadable: u64,
    span: Option<(Timestamp, Timestamp)>,
}

impl Builder {
    fn saw_time(&mut self, t: Timestamp) {
        self.span = Some(match self.span {
            None => (t, t),
            Some((a, b)) => (a.min(t), b.max(t)),
        });
    }

    fn live_drop(&mut self, id: &str) -> Option<&mut DropSummary> {
        let ix = *self.live.get(&drop_key(id)?)?;
        self.drops.get_mut(ix as usize)
    }

    fn entry(&mut self, index: u64, entry: LogEntry, agreement: Option<&str>, period: Period) {
        let Period(since, until) = period;
        self.entries_read += 1;
        match entry {
            LogEntry::Hub { statement } => match peek_doc::<HubStatement>(&statement) {
                Ok(HubStatement::DirectoryPublished { time, serial, sha256 }) => {
                    self.saw_time(time);
                    self.published.entry(serial).or_insert((time, sha256));
                    self.signers.published(serial);
                }
                Ok(HubStatement::DropDeleted { time, drop, reason }) => {
                    self.saw_time(time);
                    if let Some(ix) = drop_key(drop.as_str()).and_then(|k| self.live.remove(&k))
                        && let Some(d) = self.drops.get_mut(ix as usize)
                    {
                        d.deleted = Some((time, reason));
                    }
                }
                Err(_) => self.unreadable += 1,
            },
            LogEntry::DropCommitted { committed, manifest } => {
                self.saw_time(committed);
                let Ok(m) = peek_doc::<Manifest>(&manifest) else {
                    self.unreadable += 1;
                    return;
                };
                if agreement.is_some_and(|a| a != m.agreement)
                    || since.is_some_and(|s| committed < s)
                    || until.is_some_and(|u| committed >= u)
                {
                    return;
                }
                let Some(id) = drop_key(m.drop.as_str()) else { return };
                let mut seen = BTreeSet::new();
                let recipients: Box<[RecipientState]> = m
                    .recipients
                    .iter()
                    .filter(|p| seen.insert(*p))
                    .map(|p| RecipientState {
                        party: self.parties.get(p),
                        fetched: None,
                        acknowledged: None,
                        receipt_key: KeyIx::NONE,
                    })
                    .collect();
                let manifest_key = KeyIx::of(self.signers.signer(&manifest, &key_name(&m.sender, &m.sender_member)));
                let summary = DropSummary {
                    id,
                    log_index: index,
                    sender: self.parties.get(&m.sender),
                    agreement: self.agreements.get(&m.agreement),
                    bytes: m.ciphertext_len,
                    committed,
                    expires: m.expires,
                    deleted: None,
                    recalled: None,
                    manifest_key,
                    recipients,
                };
                let ix = u32::try_from(self.drops.len()).expect("fewer than 4 billion drops");
                self.drops.push(summary);
                self.live.insert(id, ix);
            }
            LogEntry::DropFetched { drop, party, fetched, .. } => {
                self.saw_time(fetched);
                let Some(&p) = self.parties.index.get(&party) else { return };
                if let Some(d) = self.live_drop(drop.as_str())
                    && let Some(r) = d.recipients.iter_mut().find(|r| r.party == p)
                {
                    r.fetched.get_or_insert(fetched);
                }
            }
            LogEntry::DropAcknowledged { acknowledged, receipt } => {
                self.saw_time(acknowledged);
                let Ok(rc) = peek_doc::<Receipt>(&receipt) else {
                    self.unreadable += 1;
                    return;
                };
                let Some(&p) = self.parties.index.get(&rc.recipient) else { return };
                let key = self.signers.signer(&receipt, &key_name(&rc.recipient, &rc.member));
                if let Some(d) = self.live_drop(rc.drop.as_str())
                    && let Some(r) = d.recipients.iter_mut().find(|r| r.party == p)
                    && r.acknowledged.is_none()
                {
                    r.acknowledged = Some(acknowledged);
                    r.receipt_key = KeyIx::of(key);
                }
            }
            LogEntry::DropRecalled { drop, recalled, request, .. } => {
                self.saw_time(recalled);
                // Only drops the filters selected are live here.
                let Some(ix) = drop_key(drop.as_str()).and_then(|k| self.live.get(&k).copied()) else { return };
                let by = self.recall_keys.get(&request.key);
                if let Some(d) = self.drops.get_mut(ix as usize) {
                    d.recalled.get_or_insert((recalled, by));
                }
            }
        }
    }
}

/// Percentile `p` (0..=1) of sorted values, interpolating linearly.
fn percentile(sorted: &[f64], p: f64) -> f64 {
    match sorted.len() {
        0 => 0.0,
        1 => sorted[0],
        n => {
            let pos = p.clamp(0.0, 1.0) * (n - 1) as f64;
            let lo = pos.floor() as usize;
            let hi = pos.ceil() as usize;
            sorted[lo] + (sorted[hi] - sorted[lo]) * (pos - lo as f64)
        }
    }
}

fn ack_times(mut hours: Vec<f64>) -> Option<AckTimes> {
    if hours.is_empty() {
        return None;
    }
    hours.sort_by(f64::total_cmp);
    Some(AckTimes {
        count: hours.len() as u64,
        median_hours: percentile(&hours, 0.5),
        p90_hours: percentile(&hours, 0.9),
        max_hours: *hours.last().unwrap_or(&0.0),
    })
}

const BINS: [(&str, f64, Option<f64>); 9] = [
    ("< 1 h", 0.0, Some(1.0)),
    ("1–4 h", 1.0, Some(4.0)),
    ("4–12 h", 4.0, Some(12.0)),
    ("12–24 h", 12.0, Some(24.0)),
    ("1–2 d", 24.0, Some(48.0)),
    ("2–3 d", 48.0, Some(72.0)),
    ("3–7 d", 72.0, Some(168.0)),
    ("1–2 wk", 168.0, Some(336.0)),
    ("≥ 2 wk", 336.0, None),
];

fn bin_of(hours: f64) -> usize {
    BINS.iter().position(|(_, _, hi)| hi.is_some_and(|hi| hours < hi)).unwrap_or(BINS.len() - 1)
}

#[derive(Default)]
struct Tally {
    totals: Totals,
    senders: BTreeSet<u32>,
    recipients: BTreeSet<u32>,
}

impl Tally {
    fn add(&mut self, d: &DropSummary) {
        let t = &mut self.totals;
        t.drops += 1;
        t.bytes += d.bytes;
        t.deliveries += d.recipients.len() as u64;
        t.acknowledged_deliveries += d.recipients.iter().filter(|r| r.acknowledged.is_some()).count() as u64;
        match d.outcome() {
            DropOutcome::Acknowledged => t.acknowledged += 1,
            DropOutcome::Waiting => t.waiting += 1,
            DropOutcome::ExpiredUndelivered => t.expired_undelivered += 1,
            DropOutcome::AgreementEndedUndelivered => t.agreement_ended_undelivered += 1,
            DropOutcome::Recalled => t.recalled += 1,
            DropOutcome::Other => {}
        }
        self.senders.insert(d.sender);
        self.recipients.extend(d.recipients.iter().map(|r| r.party));
    }

    fn finish(mut self) -> Totals {
        self.totals.senders = self.senders.len() as u64;
        self.totals.recipients = self.recipients.len() as u64;
        self.totals.parties = self.senders.union(&self.recipients).count() as u64;
        self.totals
    }
}

/// The time filter: drops committed at or after the first time, before the second.
#[derive(Clone, Copy, Debug)]
struct Period(Option<Timestamp>, Option<Timestamp>);

/// Builds the report in one pass over the entries.
pub fn build(input: ReportInput) -> Report {
    let ReportInput { entries, mut directories, origin, checkpoint_size, agreement, since, until, generated_at } =
        input;
    directories.sort_by_key(|d| d.directory.serial);
    directories.dedup_by_key(|d| d.directory.serial);

    let mut b = Builder { signers: Signers::new(&directories), ..Builder::default() };
    for (index, entry) in entries {
        b.entry(index, entry, agreement.as_deref(), Period(since, until));
    }
    let Builder { parties, agreements, recall_keys, drops, published, signers, entries_read, unreadable, span, .. } = b;
    let signer_keys = signers.into_keys();
    let signer = |ix: Option<u32>| ix.map(|i| signer_keys[i as usize].clone());
    let party_ids = parties.items;
    let agreement_ids = agreements.items;
    let recall_keys = recall_keys.items;

    // Names and titles: the newest directory that lists each one wins.
    let mut party_names = BTreeMap::new();
    let mut agreement_titles = BTreeMap::new();
    for d in &directories {
        for p in &d.directory.parties {
            party_names.insert(p.id.clone(), p.name.clone());
        }
        for a in &d.directory.agreements {
            agreement_titles.insert(a.id.clone(), a.title.clone());
        }
    }
    for p in &party_ids {
        party_names.entry(p.clone()).or_insert_with(|| p.to_string());
    }

    // Totals, the matrix and acknowledgement times, in one pass over drops.
    let mut all = Tally::default();
    let mut per_agreement: Vec<Tally> = agreement_ids.iter().map(|_| Tally::default()).collect();
    let mut flows: HashMap<(u32, u32), Flow> = HashMap::new();
    let mut ack_hours: Vec<Vec<f64>> = vec![Vec::new(); party_ids.len()];
    let mut histogram = [0u64; BINS.len()];
    let (mut expired, mut agreement_ended, mut recalled, mut waiting) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let names = |ixs: Vec<u32>| -> Vec<PartyId> { ixs.into_iter().map(|i| party_ids[i as usize].clone()).collect() };
    for d in &drops {
        all.add(d);
        per_agreement[d.agreement as usize].add(d);
        for r in d.recipients.iter() {
            let f = flows.entry((d.sender, r.party)).or_default();
            f.drops += 1;
            f.bytes += d.bytes;
            if let Some(at) = r.acknowledged {
                let h = hours_between(d.committed, at);
                ack_hours[r.party as usize].push(h);
                histogram[bin_of(h)] += 1;
            }
        }
        let unacked = || d.recipients.iter().filter(|r| r.acknowledged.is_none()).map(|r| r.party).collect();
        let undelivered = |deleted| UndeliveredDrop {
            drop: d.id().to_owned(),
            log_index: d.log_index,
            agreement: agreement_ids[d.agreement as usize].clone(),
            sender: party_ids[d.sender as usize].clone(),
            unacknowledged: names(unacked()),
            bytes: d.bytes,
            committed: d.committed,
            expires: d.expires,
            deleted,
            recall: d.recalled.map(|(at, by)| Recall { at, by: recall_keys[by as usize].clone() }),
            manifest_key: signer(d.manifest_key.get()),
        };
        match (d.outcome(), d.deleted) {
            (DropOutcome::ExpiredUndelivered, Some((t, _))) => expired.push(undelivered(t)),
            (DropOutcome::AgreementEndedUndelivered, Some((t, _))) => agreement_ended.push(undelivered(t)),
            (DropOutcome::Recalled, Some((t, _))) => recalled.push(undelivered(t)),
            (DropOutcome::Waiting, _) => waiting.push(WaitingDrop {
                drop: d.id().to_owned(),
                log_index: d.log_index,
                agreement: agreement_ids[d.agreement as usize].clone(),
                sender: party_ids[d.sender as usize].clone(),
                waiting_for: names(unacked()),
                bytes: d.bytes,
                committed: d.committed,
                expires: d.expires,
                manifest_key: signer(d.manifest_key.get()),
            }),
            _ => {}
        }
    }

    let name_key = |p: &PartyId| (party_names.get(p).map(|n| n.to_lowercase()).unwrap_or_default(), p.clone());

    // The matrix's axes: every party with traffic, plus the parties that
    // could have taken part (the filtered agreement's, or the directory's).
    let mut axis: BTreeSet<PartyId> = BTreeSet::new();
    for (s, r) in flows.keys() {
        axis.insert(party_ids[*s as usize].clone());
        axis.insert(party_ids[*r as usize].clone());
    }
    if let Some(latest) = directories.last() {
        match &agreement {
            Some(a) => {
                if let Some(ag) = directories.iter().rev().find_map(|d| d.directory.agreement(a)) {
                    axis.extend(ag.parties.iter().cloned());
                }
            }
            None => axis.extend(latest.directory.parties.iter().map(|p| p.id.clone())),
        }
    }
    let mut parties: Vec<PartyId> = axis.into_iter().collect();
    parties.sort_by_key(|p| name_key(p));

    let matrix = flows
        .into_iter()
        .map(|((s, r), f)| ((party_ids[s as usize].clone(), party_ids[r as usize].clone()), f))
        .collect();

    let mut agreements: Vec<AgreementTotals> = per_agreement
        .into_iter()
        .zip(&agreement_ids)
        .map(|(t, id)| AgreementTotals {
            id: id.clone(),
            title: agreement_titles.get(id).cloned(),
            totals: t.finish(),
            ended: crate::audit::ended::ended(&directories, &published, id, generated_at),
        })
        .collect();
    agreements.sort_by(|a, b| b.totals.drops.cmp(&a.totals.drops).then_with(|| a.id.cmp(&b.id)));

    let ack_overall = ack_times(ack_hours.iter().flatten().copied().collect());
    let mut ack_by_recipient: Vec<(PartyId, AckTimes)> =
        ack_hours.into_iter().enumerate().filter_map(|(i, h)| Some((party_ids[i].clone(), ack_times(h)?))).collect();
    ack_by_recipient.sort_by_key(|(p, _)| name_key(p));
    let ack_histogram = BINS
        .iter()
        .zip(histogram)
        .map(|((label, lower_hours, upper_hours), count)| HistogramBin {
            label,
            lower_hours: *lower_hours,
            upper_hours: *upper_hours,
            count,
        })
        .collect();

    let directory_versions = directory_versions(&directories, &published, Period(since, until));
    let shown: BTreeSet<u64> = directory_versions.iter().map(|v| v.serial).collect();
    let revocations = revocations(&directories).into_iter().filter(|r| shown.contains(&r.serial)).collect();
    let uses = drops.iter().flat_map(|d| {
        let manifest = d.manifest_key.get().map(|k| (k, false, d.committed));
        let receipts = d.recipients.iter().filter_map(|r| Some((r.receipt_key.get()?, true, r.acknowledged?)));
        manifest.into_iter().chain(receipts)
    });
    let signing_keys = key_uses(&signer_keys, uses, &directories);

    Report {
        used_after_revocation: Vec::new(),
        signing_keys,
        signer_keys,
        origin,
        checkpoint_size,
        entries_read,
        unreadable_entries: unreadable,
        agreement_filter: agreement,
        since,
        until,
        generated_at,
        log_span: span,
        current_directory_serial: directories.last().map(|d| d.directory.serial),
        party_names,
        agreement_titles,
        parties,
        matrix,
        totals: all.finish(),
        agreements,
        ack_overall,
        ack_by_recipient,
        ack_histogram,
        expired,
        agreement_ended,
        recalled,
        waiting,
        directory_versions,
        revocations,
        drops,
        party_ids,
        agreement_ids,
        recall_keys,
    }
}

/// The revocations a directory lists, each once.
fn revoked_in(dir: &Directory) -> impl Iterator<Item = KeyRevocation> + '_ {
    dir.parties.iter().flat_map(move |p| {
        p.revoked.iter().map(move |r| KeyRevocation {
            serial: dir.serial,
            party: p.id.clone(),
            member: r.member.to_string(),
            name: r.signing_key.name().to_owned(),
            fingerprint: r.signing_key.fingerprint(),
            revoked_at: r.revoked_at,
            reason: r.reason.clone(),
        })
    })
}

/// Every revocation in the directories (sorted by serial), each with the
/// first serial that lists it, in that order.
fn revocations(directories: &[SignedDirectory]) -> Vec<KeyRevocation> {
    let mut seen = BTreeSet::new();
    let mut out = Vec::new();
    for d in directories {
        for r in revoked_in(&d.directory) {
            if seen.insert((r.party.clone(), r.fingerprint.clone())) {
                out.push(r);
            }
        }
    }
    out.sort();
    out
}

fn directory_versions(
    directories: &[SignedDirectory],
    published: &BTreeMap<u64, (Timestamp, String)>,
    Period(since, until): Period,
) -> Vec<DirectoryVersion> {
    let mut out = Vec::new();
    for (i, d) in directories.iter().enumerate() {
        let dir = &d.directory;
        let logged = published.get(&dir.serial);
        let when = logged.map_or(dir.issued_at, |(t, _)| *t);
        if since.is_some_and(|s| when < s) || until.is_some_and(|u| when >= u) {
            continue;
        }
        let sha256 = d.sha256_hex();
        out.push(DirectoryVersion {
            serial: dir.serial,
            issued_at: dir.issued_at,
            published: logged.map(|(t, _)| *t),
            hash_mismatch: logged.is_some_and(|(_, h)| *h != sha256),
            sha256,
            parties: dir.parties.len(),
            member_keys: dir.parties.iter().map(|p| p.members.len()).sum(),
            witness_keys: dir.parties.iter().map(|p| p.witness_keys.len()).sum(),
            revoked_keys: dir.parties.iter().map(|p| p.revoked.len()).sum(),
            agreements: dir.agreements.len(),
            changes: i.checked_sub(1).map(|p| diff(&directories[p].directory, dir)),
        });
    }
    out
}

/// What changed from `old` to `new`.
pub fn diff(old: &Directory, new: &Directory) -> DirectoryDiff {
    let mut out = DirectoryDiff::default();
    let ids = |d: &Directory| d.parties.iter().map(|p| p.id.clone()).collect::<BTreeSet<_>>();
    let (old_ids, new_ids) = (ids(old), ids(new));
    out.parties_added = new_ids.difference(&old_ids).cloned().collect();
    out.parties_removed = old_ids.difference(&new_ids).cloned().collect();
    for p in &new.parties {
        if let Some(o) = old.party(&p.id)
            && o.name != p.name
        {
            out.notes.push(format!("party `{}` renamed from {:?} to {:?}", p.id, o.name, p.name));
        }
    }

    let keys = |d: &Directory| {
        let mut set = BTreeSet::new();
        for p in &d.parties {
            for m in &p.members {
                set.insert((
                    p.id.clone(),
                    KeyKind::Member,
                    m.signing_key.name().to_owned(),
                    m.signing_key.to_string(),
                    m.signing_key.fingerprint(),
                    Some(m.age_recipient.clone()),
                ));
            }
            for w in &p.witness_keys {
                set.insert((p.id.clone(), KeyKind::Witness, w.name().to_owned(), w.to_string(), w.fingerprint(), None));
            }
        }
        set
    };
    let (old_keys, new_keys) = (keys(old), keys(new));
    let change = |change: Change| {
        move |(party, kind, name, _, fingerprint, age_recipient): &(
            PartyId,
            KeyKind,
            String,
            String,
            String,
            Option<String>,
        )| KeyChange {
            party: party.clone(),
            kind: *kind,
            change,
            name: name.clone(),
            fingerprint: fingerprint.clone(),
            age_recipient: age_recipient.clone(),
        }
    };
    out.keys.extend(old_keys.difference(&new_keys).map(change(Change::Removed)));
    out.keys.extend(new_keys.difference(&old_keys).map(change(Change::Added)));
    out.keys.sort_by(|a, b| (&a.party, a.kind, &a.name, a.change).cmp(&(&b.party, b.kind, &b.name, b.change)));

    let before: BTreeSet<(PartyId, String)> = revoked_in(old).map(|r| (r.party, r.fingerprint)).collect();
    out.revocations = revoked_in(new).filter(|r| !before.contains(&(r.party.clone(), r.fingerprint.clone()))).collect();
    out.revocations.sort();

    for a in &new.agreements {
        let Some(o) = old.agreement(&a.id) else {
            out.agreements.push(AgreementChange { id: a.id.clone(), change: Change::Added, details: vec![] });
            continue;
        };
        let mut details = Vec::new();
        if o.title != a.title {
            details.push(format!("title: {:?} → {:?}", o.title, a.title));
        }
        if o.purpose != a.purpose {
            details.push("purpose reworded".to_owned());
        }
        if o.lawful_basis != a.lawful_basis {
            details.push(format!("lawful basis: {:?} → {:?}", o.lawful_basis, a.lawful_basis));
        }
        let joined = |v: Vec<&PartyId>| v.iter().map(|p| p.as_str()).collect::<Vec<_>>().join(", ");
        let added: Vec<&PartyId> = a.parties.iter().filter(|p| !o.parties.contains(p)).collect();
        let removed: Vec<&PartyId> = o.parties.iter().filter(|p| !a.parties.contains(p)).collect();
        if !added.is_empty() {
            details.push(format!("parties added: {}", joined(added)));
        }
        if !removed.is_empty() {
            details.push(format!("parties removed: {}", joined(removed)));
        }
        if o.max_expiry_days != a.max_expiry_days {
            details.push(format!("longest expiry: {} → {} days", o.max_expiry_days, a.max_expiry_days));
        }
        if o.valid_from != a.valid_from {
            details.push(format!("valid from: {} → {}", day(o.valid_from), day(a.valid_from)));
        }
        if o.valid_until != a.valid_until {
            details.push(format!("valid until: {} → {}", day(o.valid_until), day(a.valid_until)));
        }
        if !details.is_empty() {
            out.agreements.push(AgreementChange { id: a.id.clone(), change: Change::Changed, details });
        }
    }
    for o in &old.agreements {
        if new.agreement(&o.id).is_none() {
            out.agreements.push(AgreementChange { id: o.id.clone(), change: Change::Removed, details: vec![] });
        }
    }
    out.agreements.sort_by(|a, b| a.id.cmp(&b.id));

    match (&old.hub, &new.hub) {
        (None, Some(h)) => out.notes.push(format!("hub listed: {} with log key {}", h.origin, h.log_key.fingerprint())),
        (Some(h), None) => out.notes.push(format!("hub {} no longer listed", h.origin)),
        (Some(a), Some(b)) if a != b => out.notes.push(format!(
            "hub changed: {} ({}) → {} ({})",
            a.origin,
            a.log_key.fingerprint(),
            b.origin,
            b.log_key.fingerprint()
        )),
        _ => {}
    }
    out
}

impl Report {
    /// A party's display name (its id when no directory names it).
    pub fn party_name<'a>(&'a self, id: &'a PartyId) -> &'a str {
        self.party_names.get(id).map_or(id.as_str(), String::as_str)
    }

    /// Every (drop, recipient) pair, in log order of the drops' commits.
    pub fn rows(&self) -> impl Iterator<Item = DeliveryRow<'_>> + '_ {
        self.drops.iter().flat_map(move |d| {
            d.recipients.iter().map(move |r| DeliveryRow {
                drop: d.id(),
                agreement: &self.agreement_ids[d.agreement as usize],
                sender: &self.party_ids[d.sender as usize],
                recipient: &self.party_ids[r.party as usize],
                ciphertext_bytes: d.bytes,
                committed: d.committed,
                fetched: r.fetched,
                acknowledged: r.acknowledged,
                hours_to_acknowledge: r.acknowledged.map(|a| hours_between(d.committed, a)),
                outcome: d.recipient_outcome(r),
                deleted: d.deleted,
                recalled_by: d.recalled.map(|(_, by)| self.recall_keys[by as usize].as_str()),
                manifest_key: d.manifest_key.get().map(|k| &self.signer_keys[k as usize]),
                receipt_key: r.receipt_key.get().map(|k| &self.signer_keys[k as usize]),
            })
        })
    }
}

/// Writes `path` through a temporary file in the same folder, renamed into
/// place only once everything is written.
fn write_atomic_with(path: &Path, write: impl FnOnce(&mut dyn std::io::Write) -> std::io::Result<()>) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    std::fs::create_dir_all(dir).map_err(|e| Error::io(format!("cannot create folder {}", dir.display()), e))?;
    let mut tmp = tempfile::Builder::new()
        .prefix(".sealdrop-tmp-")
        .permissions(std::fs::Permissions::from_mode(0o644))
        .tempfile_in(dir)
        .map_err(|e| Error::io(format!("cannot write in {}", dir.display()), e))?;
    let written = (|| {
        let mut out = std::io::BufWriter::new(tmp.as_file_mut());
        write(&mut out)?;
        out.flush()?;
        drop(out);
        tmp.as_file().sync_all()
    })();
    written.map_err(|e| Error::io(format!("cannot write {}", path.display()), e))?;
    tmp.persist(path).map_err(|e| Error::io(format!("cannot write {}", path.display()), e.error))?;
    Ok(())
}

/// The CSV header. The last four columns came later, so older columns keep
/// their positions: `deleted` (when the hub deleted the drop; for a recall,
/// when it was recalled), `deletion_reason` (`delivered`, `expired`,
/// `recalled`, `agreement_ended`), `recalled_by` (the sender's member key
/// that recalled it) and `delivery` ([`Outcome::delivery`]: `delivered`,
/// `pending`, `recalled` or `NOT DELIVERED`). The four after them came
/// later still: which key signed the manifest and which the receipt, by
/// name (`manifest_signer`, `receipt_signer`: `<party>/<member>`) and by
/// fingerprint (`manifest_key_fingerprint`, `receipt_key_fingerprint`:
/// `SHA256:...`), since a member name is reused when a lost key is replaced.
pub const CSV_HEADER: [&str; 18] = [
    "drop_id",
    "agreement",
    "sender",
    "recipient",
    "ciphertext_bytes",
    "committed",
    "fetched",
    "acknowledged",
    "hours_to_acknowledge",
    "outcome",
    "deleted",
    "deletion_reason",
    "recalled_by",
    "delivery",
    "manifest_signer",
    "manifest_key_fingerprint",
    "receipt_signer",
    "receipt_key_fingerprint",
];

/// Writes one row per (drop, recipient), atomically.
pub fn write_csv(report: &Report, path: &Path) -> Result<()> {
    write_atomic_with(path, |out| {
        let mut w = csv::Writer::from_writer(out);
        w.write_record(CSV_HEADER)?;
        let opt = |t: Option<Timestamp>| t.map(|t| t.to_string()).unwrap_or_default();
        for r in report.rows() {
            w.write_record([
                r.drop,
                r.agreement,
                r.sender.as_str(),
                r.recipient.as_str(),
                &r.ciphertext_bytes.to_string(),
                &r.committed.to_string(),
                &opt(r.fetched),
                &opt(r.acknowledged),
                &r.hours_to_acknowledge.map(|h| format!("{h:.2}")).unwrap_or_default(),
                r.outcome.as_str(),
                &opt(r.deleted.map(|d| d.0)),
                r.deleted.map_or("", |d| reason_word(d.1)),
                r.recalled_by.unwrap_or_default(),
                r.outcome.delivery(),
                r.manifest_key.map_or("", |k| k.name.as_str()),
                r.manifest_key.map_or("", |k| k.fingerprint.as_str()),
                r.receipt_key.map_or("", |k| k.name.as_str()),
                r.receipt_key.map_or("", |k| k.fingerprint.as_str()),
            ])?;
        }
        w.flush()
    })
}

/// One (drop, recipient) row as a JSON object for `audit report --json`:
/// the CSV's columns ([`CSV_HEADER`]) by the same names and with the same
/// values, numbers as numbers and empty cells as `null`.
pub fn row_json(r: &DeliveryRow<'_>) -> serde_json::Value {
    let time = |t: Option<Timestamp>| t.map(|t| t.to_string());
    let values = [
        serde_json::json!(r.drop),
        serde_json::json!(r.agreement),
        serde_json::json!(r.sender.as_str()),
        serde_json::json!(r.recipient.as_str()),
        serde_json::json!(r.ciphertext_bytes),
        serde_json::json!(r.committed.to_string()),
        serde_json::json!(time(r.fetched)),
        serde_json::json!(time(r.acknowledged)),
        // Two decimals, as in the CSV.
        serde_json::json!(r.hours_to_acknowledge.map(|h| (h * 100.0).round() / 100.0)),
        serde_json::json!(r.outcome.as_str()),
        serde_json::json!(time(r.deleted.map(|d| d.0))),
        serde_json::json!(r.deleted.map(|d| reason_word(d.1))),
        serde_json::json!(r.recalled_by),
        serde_json::json!(r.outcome.delivery()),
        serde_json::json!(r.manifest_key.map(|k| &k.name)),
        serde_json::json!(r.manifest_key.map(|k| &k.fingerprint)),
        serde_json::json!(r.receipt_key.map(|k| &k.name)),
        serde_json::json!(r.receipt_key.map(|k| &k.fingerprint)),
    ];
    serde_json::Value::Object(CSV_HEADER.iter().map(|k| (*k).to_owned()).zip(values).collect())
}

/// Writes every row as JSON Lines ([`row_json`], one object per line): a
/// large log makes many rows, which a reader can then take one at a time.
pub fn write_json_lines(report: &Report, out: &mut dyn std::io::Write) -> std::io::Result<()> {
    let mut out = std::io::BufWriter::new(out);
    for r in report.rows() {
        serde_json::to_writer(&mut out, &row_json(&r))?;
        out.write_all(b"\n")?;
    }
    out.flush()
}

/// Writes the report as one self-contained HTML page, atomically.
pub fn write_html(report: &Report, path: &Path) -> Result<()> {
    write_atomic(path, render_html(report).as_bytes(), false)
}

// ---------------------------------------------------------------------------
// HTML

/// At most this many rows in each HTML table of drops; the CSV has them all.
const MAX_TABLE_ROWS: usize = 200;

/// Rows in the "busiest pairs" table beside the matrix.
const BUSIEST_PAIRS: usize = 10;

/// Escapes text for HTML and SVG, in content and in quoted attributes.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

fn when(t: Timestamp) -> String {
    t.strftime("%Y-%m-%d %H:%M UTC").to_string()
}

pub(crate) fn short(t: Timestamp) -> String {
    t.strftime("%Y-%m-%d %H:%M").to_string()
}

fn day(t: Timestamp) -> String {
    t.strftime("%Y-%m-%d").to_string()
}

fn duration_text(hours: f64) -> String {
    if hours < 1.0 {
        format!("{:.0} min", hours * 60.0)
    } else if hours < 48.0 {
        format!("{hours:.1} h")
    } else {
        format!("{:.1} days", hours / 24.0)
    }
}

pub(crate) fn count_text(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

fn compact_count(n: u64) -> String {
    match n {
        0..=999 => n.to_string(),
        1_000..=9_999 => format!("{:.1}k", n as f64 / 1000.0),
        10_000..=999_999 => format!("{}k", n / 1000),
        _ => format!("{:.1}M", n as f64 / 1e6),
    }
}

fn truncate(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        s.to_owned()
    } else {
        let mut t: String = s.chars().take(max.saturating_sub(1)).collect();
        t.push('…');
        t
    }
}

fn percent(part: u64, whole: u64) -> String {
    if whole == 0 {
        "–".to_owned()
    } else {
        let p = part as f64 * 100.0 / whole as f64;
        if p > 99.9 && part < whole { "99.9%".to_owned() } else { format!("{p:.1}%").replace(".0%", "%") }
    }
}

/// ColorBrewer "Blues", light to dark.
const BLUES: [(u8, u8, u8); 9] = [
    (0xf7, 0xfb, 0xff),
    (0xde, 0xeb, 0xf7),
    (0xc6, 0xdb, 0xef),
    (0x9e, 0xca, 0xe1),
    (0x6b, 0xae, 0xd6),
    (0x42, 0x92, 0xc6),
    (0x21, 0x71, 0xb5),
    (0x08, 0x51, 0x9c),
    (0x08, 0x30, 0x6b),
];

fn blue(t: f64) -> String {
    let x = t.clamp(0.0, 1.0) * (BLUES.len() - 1) as f64;
    let i = (x.floor() as usize).min(BLUES.len() - 2);
    let f = x - i as f64;
    let (a, b) = (BLUES[i], BLUES[i + 1]);
    let mix = |p: u8, q: u8| (p as f64 + (q as f64 - p as f64) * f).round() as u8;
    format!("#{:02x}{:02x}{:02x}", mix(a.0, b.0), mix(a.1, b.1), mix(a.2, b.2))
}

const C_ACK: &str = "#2e7d4f";
const C_WAIT: &str = "#d08a1c";
const C_EXPIRED: &str = "#c0392b";
const C_RECALLED: &str = "#7b5ea7";
const C_ENDED: &str = "#a3560f";
const C_OTHER: &str = "#9aa3b2";

const CSS: &str = r#"
:root{--ink:#1b2433;--muted:#5d6778;--line:#dde2ea;--bg:#eef1f5;--card:#fff;--navy:#17233b;--accent:#2166ac;
--ack:#2e7d4f;--wait:#d08a1c;--bad:#c0392b;--recall:#7b5ea7;--ended:#a3560f}
*{box-sizing:border-box}
html{font:15px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,"Noto Sans","Liberation Sans",Arial,sans-serif;color:var(--ink);background:var(--bg)}
body{margin:0}
.wrap{max-width:1140px;margin:0 auto;padding:0 28px}
header.top{background:var(--navy);color:#fff;padding:26px 0 64px}
.eyebrow{text-transform:uppercase;letter-spacing:.12em;font-size:12px;color:#9fb3d6;margin:0 0 6px;font-weight:600}
h1{font-size:28px;line-height:1.2;margin:0;font-weight:700;letter-spacing:-.01em}
h1 .origin{color:#b9cdf0;font-weight:600}
.meta{display:grid;grid-template-columns:repeat(auto-fit,minmax(300px,1fr));gap:8px 28px;margin:18px 0 0;font-size:13.5px}
.meta div{color:#aebbd3}.meta dt{display:inline}.meta dd{display:inline;margin:0;color:#fff;font-weight:600}
.verified{display:flex;align-items:center;gap:10px;margin-top:18px;padding:9px 14px;border-radius:8px;background:rgba(76,175,120,.16);border:1px solid rgba(120,210,160,.45);font-size:13.5px;color:#e6f5ec}
.verified svg{flex:none}
.warn{background:#fff4e0;border:1px solid #f0c27a;color:#6b4600;border-radius:8px;padding:10px 14px;margin:14px 0;font-size:13.5px}
main{margin-top:-44px}
.tiles{display:grid;grid-template-columns:repeat(6,1fr);gap:12px}
.tile{background:var(--card);border-radius:10px;padding:14px 16px 13px;box-shadow:0 1px 2px rgba(20,30,50,.08),0 4px 14px rgba(20,30,50,.06);border-top:4px solid var(--accent)}
.tile .v{font-size:28px;line-height:1.15;font-weight:700;font-variant-numeric:tabular-nums;white-space:nowrap}
.tile .l{font-size:11.5px;text-transform:uppercase;letter-spacing:.06em;color:#37415a;font-weight:650;margin-top:4px}
.tile .n{font-size:12.5px;color:var(--muted)}
.tile.ok{border-top-color:var(--ack)}.tile.bad{border-top-color:var(--bad)}.tile.wait{border-top-color:var(--wait)}.tile.recall{border-top-color:var(--recall)}
.tile.bad.zero,.tile.wait.zero{border-top-color:#b8c0cc}
section{background:var(--card);border-radius:10px;padding:22px 26px 24px;margin:18px 0;box-shadow:0 1px 2px rgba(20,30,50,.08)}
h2{font-size:19px;margin:0 0 4px;letter-spacing:-.005em}
h3{font-size:15px;margin:22px 0 8px}
.lead{color:var(--muted);margin:0 0 16px;font-size:13.5px;max-width:78ch}
.chart{display:block;width:100%;height:auto;max-width:100%}
.chartbox{overflow-x:auto}
table{border-collapse:collapse;width:100%;font-size:13px;margin-top:6px}
.tablebox{overflow-x:auto}
caption{text-align:left;color:var(--muted);font-size:12.5px;padding:0 0 6px}
th,td{text-align:left;padding:6px 9px;border-bottom:1px solid var(--line);vertical-align:top}
thead th{background:#f3f5f9;font-size:11.5px;text-transform:uppercase;letter-spacing:.05em;color:#47516a;font-weight:650;border-bottom:1px solid #cfd6e1}
tbody tr:nth-child(even)>*{background:#f8f9fc}
tfoot th,tfoot td{border-top:2px solid #cfd6e1;font-weight:650}
tbody th{font-weight:600}
.num{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
thead th.num{white-space:normal}
.mono,code{font-family:ui-monospace,"SF Mono",Menlo,Consolas,"Liberation Mono",monospace;font-size:12.5px}
.id{color:var(--muted);font-size:12px}
.nowrap{white-space:nowrap}
.pill{display:inline-block;padding:1px 9px;border-radius:999px;font-size:12px;font-weight:650;white-space:nowrap}
.pill.ok{background:#e3f3ea;color:#1f6b40}.pill.bad{background:#fbe6e3;color:#a12b1f}.pill.wait{background:#fdf0da;color:#8a5a0b}
.pill.recall{background:#eee8f6;color:#5e4391}.pill.info{background:#e6eef8;color:#1d4f8a}
.pill.ended{background:#f8ebdd;color:#80410a}
ul.nd{list-style:none;margin:0;padding:0}ul.nd li{margin:0 0 2px}
.empty{color:var(--muted);font-style:italic;margin:6px 0}
.more{color:var(--muted);font-size:12.5px;margin:8px 0 0}
.dirv{border:1px solid var(--line);border-radius:8px;padding:12px 16px;margin:12px 0}
.dirv h3{margin:0 0 2px;font-size:15px}
.dirv .sub{color:var(--muted);font-size:12.5px;margin-bottom:6px;overflow-wrap:anywhere}
ul.changes{margin:6px 0 0;padding-left:20px;font-size:13.5px}ul.changes li{margin:2px 0}
.add{color:#1f6b40;font-weight:650}.rem{color:#a12b1f;font-weight:650}.chg{color:#1d4f8a;font-weight:650}
.matrix{display:flex;flex-wrap:wrap;gap:18px 34px;align-items:flex-start}
.matrix .chartbox{flex:0 1 auto;max-width:100%}
.matrix .side{flex:1 1 320px;min-width:300px}
.cols{display:grid;grid-template-columns:minmax(0,560px) minmax(0,1fr);gap:34px;align-items:center;margin-bottom:14px}
dl.stats{display:grid;grid-template-columns:1fr 1fr;gap:12px;margin:0}
dl.stats div{background:#f5f7fa;border-radius:8px;padding:10px 14px}
dl.stats dt{font-size:11.5px;text-transform:uppercase;letter-spacing:.06em;color:var(--muted);font-weight:650}
dl.stats dd{margin:2px 0 0;font-size:22px;font-weight:700;font-variant-numeric:tabular-nums}
.within{font-size:13.5px;color:#37415a;margin:12px 2px 0}
.barcell{width:34%;vertical-align:middle}
.rng{position:relative;height:10px;background:#eef1f5;border-radius:5px;min-width:140px}
.rng span{position:absolute;left:0;top:0;bottom:0;border-radius:5px}
.rng .p90{background:#9ecae1}.rng .med{background:#2166ac}
.sr{position:absolute;width:1px;height:1px;overflow:hidden;clip:rect(0 0 0 0);white-space:nowrap}
footer{color:var(--muted);font-size:12.5px;padding:6px 0 40px}
svg text{font-family:system-ui,-apple-system,"Segoe UI",Roboto,"Noto Sans","Liberation Sans",Arial,sans-serif}
@media (max-width:900px){.tiles{grid-template-columns:repeat(3,1fr)}.cols{grid-template-columns:1fr}}
@media print{
 @page{size:A4;margin:12mm}
 html{background:#fff;font-size:10.5pt}
 .wrap{max-width:none;padding:0}
 header.top{padding:14px 18px 16px;border-radius:6px}
 header.top,.tile,.pill,svg,.verified,.rng span,dl.stats div{-webkit-print-color-adjust:exact;print-color-adjust:exact}
 main{margin-top:12px}
 .tiles{grid-template-columns:repeat(3,1fr);gap:6px}
 table{font-size:9pt}th,td{padding:4px 6px}
 thead th{text-transform:none;letter-spacing:0;font-size:8.5pt}
 .tile{box-shadow:none;border:1px solid #ccd;padding:8px 10px}.tile .v{font-size:19px}
 section{box-shadow:none;border:1px solid #ccd;padding:12px 14px;break-inside:avoid}
 section.long{break-inside:auto}
 tr,.dirv{break-inside:avoid}thead{display:table-header-group}
 .chartbox{overflow:visible}
 .cols{grid-template-columns:1fr}
 dl.stats{grid-template-columns:repeat(4,1fr)}
}
"#;

fn party_cell(r: &Report, p: &PartyId) -> String {
    let name = r.party_name(p);
    if name == p.as_str() {
        escape(name)
    } else {
        format!("{} <span class=\"id\">{}</span>", escape(name), escape(p.as_str()))
    }
}

/// A party's display name, with its id as a tooltip.
pub(crate) fn party_name_html(r: &Report, p: &PartyId) -> String {
    format!("<span title=\"{}\">{}</span>", escape(p.as_str()), escape(r.party_name(p)))
}

fn party_list(r: &Report, ps: &[PartyId]) -> String {
    if ps.is_empty() {
        return "–".to_owned();
    }
    ps.iter().map(|p| party_name_html(r, p)).collect::<Vec<_>>().join(", ")
}

fn agreement_label(r: &Report, id: &str) -> String {
    match r.agreement_titles.get(id) {
        Some(t) if t != id => format!("{t} ({id})"),
        _ => id.to_owned(),
    }
}

/// The whole page.
pub fn render_html(r: &Report) -> String {
    let mut h = String::with_capacity(64 * 1024);
    let title = format!("Transfer log report — {}", r.origin);
    let _ = write!(
        h,
        "<!DOCTYPE html>\n<html lang=\"en-GB\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <meta name=\"generator\" content=\"sealdrop\">\n<title>{}</title>\n<style>{CSS}</style>\n</head>\n<body>\n",
        escape(&title)
    );
    header(&mut h, r);
    h.push_str("<main class=\"wrap\">\n");
    tiles(&mut h, r);
    matrix_section(&mut h, r);
    agreements_section(&mut h, r);
    ack_section(&mut h, r);
    undelivered_section(&mut h, r);
    waiting_section(&mut h, r);
    crate::audit::signers::html_section(&mut h, r);
    directory_section(&mut h, r);
    let _ = write!(
        h,
        "<footer>Made by sealdrop from the hub's signed transfer log. The log holds party ids, key names, \
         agreement ids, hashes, sizes and times; never file names or content. One row per drop and recipient \
         is in the CSV export.</footer>\n</main>\n</body>\n</html>\n"
    );
    h
}

fn header(h: &mut String, r: &Report) {
    let filter_agreement = match &r.agreement_filter {
        Some(a) => escape(&agreement_label(r, a)),
        None => "all agreements".to_owned(),
    };
    let filter_since = crate::audit::period::describe(r.since, r.until, |t| escape(&when(t)));
    let span = match r.log_span {
        Some((a, b)) => format!("{} → {}", day(a), day(b)),
        None => "empty".to_owned(),
    };
    let _ = write!(
        h,
        "<header class=\"top\"><div class=\"wrap\">\n<p class=\"eyebrow\">Information governance · transfer log report</p>\n\
         <h1>Sensitive file exchange <span class=\"origin\">{origin}</span></h1>\n<dl class=\"meta\">\
         <div><dt>Log size: </dt><dd>{size} entries</dd></div>\
         <div><dt>Log covers: </dt><dd>{span}</dd></div>\
         <div><dt>Generated: </dt><dd>{generated}</dd></div>\
         <div><dt>Agreement: </dt><dd>{filter_agreement}</dd></div>\
         <div><dt>Period: </dt><dd>{filter_since}</dd></div>\
         <div><dt>Directory: </dt><dd>{serial}</dd></div></dl>\n",
        origin = escape(&r.origin),
        size = count_text(r.checkpoint_size),
        generated = escape(&when(r.generated_at)),
        serial = r.current_directory_serial.map_or("none".to_owned(), |s| format!("serial {s}")),
    );
    let _ = writeln!(
        h,
        "<div class=\"verified\" role=\"status\"><svg width=\"18\" height=\"18\" viewBox=\"0 0 18 18\" aria-hidden=\"true\">\
         <circle cx=\"9\" cy=\"9\" r=\"9\" fill=\"#3fae6d\"/><path d=\"M5 9.3l2.6 2.6L13 6.5\" fill=\"none\" stroke=\"#fff\" \
         stroke-width=\"2\" stroke-linecap=\"round\" stroke-linejoin=\"round\"/></svg>\
         <span>Verified against checkpoint <b>{origin}</b> at tree size <b>{size}</b>: every entry, signature and \
         directory version was checked before this report was made.</span></div>",
        origin = escape(&r.origin),
        size = count_text(r.checkpoint_size),
    );
    if r.entries_read != r.checkpoint_size || r.unreadable_entries > 0 {
        let _ = writeln!(
            h,
            "<div class=\"warn\">{} of {} entries were read; {} could not be read.</div>",
            count_text(r.entries_read),
            count_text(r.checkpoint_size),
            count_text(r.unreadable_entries)
        );
    }
    if !r.used_after_revocation.is_empty() {
        let _ = write!(
            h,
            "<div class=\"warn\" role=\"alert\"><b>{} {} signed with keys revoked from before {}</b> (a lost or \
             stolen key used before its revocation was published): {} for nothing, and whoever used the key may not \
             have been its owner.<ul>",
            count_text(r.used_after_revocation.len() as u64),
            if r.used_after_revocation.len() == 1 { "entry was" } else { "entries were" },
            if r.used_after_revocation.len() == 1 { "it" } else { "them" },
            if r.used_after_revocation.len() == 1 { "it counts" } else { "they count" },
        );
        for u in &r.used_after_revocation {
            let _ = write!(h, "<li>{}</li>", escape(u));
        }
        h.push_str("</ul></div>\n");
    }
    h.push_str("</div></header>\n");
}

fn tiles(h: &mut String, r: &Report) {
    let t = &r.totals;
    let tile = |h: &mut String, class: &str, label: &str, value: String, note: String| {
        let _ = write!(
            h,
            "<div class=\"tile {class}\" role=\"listitem\"><div class=\"v\">{value}</div><div class=\"l\">{label}</div><div class=\"n\">{note}</div></div>"
        );
    };
    h.push_str("<div class=\"tiles\" role=\"list\" aria-label=\"Summary\">");
    tile(h, "", "Drops", count_text(t.drops), format!("{} deliveries", count_text(t.deliveries)));
    tile(h, "", "Data sent", escape(&human_bytes(t.bytes)), "ciphertext".to_owned());
    tile(
        h,
        "",
        "Parties",
        count_text(t.parties),
        format!("{} sending · {} receiving", count_text(t.senders), count_text(t.recipients)),
    );
    tile(
        h,
        "ok",
        "Acknowledged",
        percent(t.acknowledged, t.drops),
        format!("{} of {} drops", count_text(t.acknowledged), count_text(t.drops)),
    );
    let zero = |n: u64| if n == 0 { " zero" } else { "" };
    tile(
        h,
        &format!("bad{}", zero(t.expired_undelivered)),
        "Expired undelivered",
        count_text(t.expired_undelivered),
        format!("{} agreement ended · {} recalled", count_text(t.agreement_ended_undelivered), count_text(t.recalled)),
    );
    tile(
        h,
        &format!("wait{}", zero(t.waiting)),
        "Still waiting",
        count_text(t.waiting),
        "at the end of the log".to_owned(),
    );
    h.push_str("</div>\n");
}

fn matrix_section(h: &mut String, r: &Report) {
    h.push_str(
        "<section aria-labelledby=\"m-h\"><h2 id=\"m-h\">Who sent to whom</h2>\n<p class=\"lead\">Drops per sender \
         (rows) and recipient (columns). A drop addressed to several parties counts once in each of their columns. \
         Darker cells carry more drops; hover a cell for its volume.</p>\n",
    );
    if r.matrix.is_empty() {
        h.push_str("<p class=\"empty\">No drops in the selected period.</p></section>\n");
        return;
    }
    h.push_str("<div class=\"matrix\"><div class=\"chartbox\">");
    h.push_str(&svg_heatmap(r));
    h.push_str("</div><div class=\"side\">");
    let mut pairs: Vec<(&(PartyId, PartyId), &Flow)> = r.matrix.iter().collect();
    pairs.sort_by(|a, b| b.1.drops.cmp(&a.1.drops).then(b.1.bytes.cmp(&a.1.bytes)).then(a.0.cmp(b.0)));
    let _ = write!(
        h,
        "<table><caption>Busiest pairs ({} of {} with traffic)</caption><thead><tr><th scope=\"col\">Sender</th>\
         <th scope=\"col\">Recipient</th><th scope=\"col\" class=\"num\">Drops</th><th scope=\"col\" class=\"num\">Volume</th>\
         </tr></thead><tbody>",
        pairs.len().min(BUSIEST_PAIRS),
        pairs.len()
    );
    for ((from, to), f) in pairs.iter().take(BUSIEST_PAIRS) {
        let _ = write!(
            h,
            "<tr><td>{}</td><td>{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td></tr>",
            party_name_html(r, from),
            party_name_html(r, to),
            count_text(f.drops),
            escape(&human_bytes(f.bytes))
        );
    }
    h.push_str("</tbody></table></div></div></section>\n");
}

/// The sender × recipient heatmap, legible up to a few dozen parties.
pub fn svg_heatmap(r: &Report) -> String {
    let ps = &r.parties;
    let n = ps.len().max(1);
    let cell = (760.0 / (n as f64 + 1.6)).clamp(18.0, 50.0).floor();
    let fs_label = if cell >= 24.0 { 12.5 } else { 11.0 };
    let fs_cell = (cell * 0.4).clamp(9.0, 13.5);
    let labels: Vec<String> = ps.iter().map(|p| truncate(r.party_name(p), 24)).collect();
    // At least wide enough for the corner caption and "Total received".
    let chars = labels.iter().map(|l| l.chars().count()).max().unwrap_or(0).max(18);
    let label_w = (chars as f64 * fs_label * 0.56 + 10.0).ceil();
    let sin = std::f64::consts::FRAC_1_SQRT_2;
    let left = label_w + 12.0;
    let top = (label_w * sin + 20.0).ceil();
    let grid = n as f64 * cell;
    let gap = 8.0;
    let tot_w = cell.max(46.0);
    let right = (label_w * sin - tot_w).max(0.0) + 14.0;
    let legend_h = 46.0;
    let width = (left + grid + gap + tot_w + right).ceil();
    let height = (top + grid + gap + cell + legend_h).ceil();

    let idx: HashMap<&PartyId, usize> = ps.iter().enumerate().map(|(i, p)| (p, i)).collect();
    let mut counts = vec![vec![Flow::default(); n]; n];
    for ((s, t), f) in &r.matrix {
        if let (Some(&i), Some(&j)) = (idx.get(s), idx.get(t)) {
            counts[i][j] = *f;
        }
    }
    let max = counts.iter().flatten().map(|f| f.drops).max().unwrap_or(0).max(1);
    let scale = |c: u64| (c as f64 + 1.0).ln() / (max as f64 + 1.0).ln();

    let mut s = String::with_capacity(4096 + n * n * 200);
    let _ = write!(
        s,
        "<svg class=\"chart\" id=\"matrix\" xmlns=\"http://www.w3.org/2000/svg\" role=\"img\" aria-labelledby=\"matrix-title matrix-desc\" \
         viewBox=\"0 0 {width} {height}\" width=\"{width}\" height=\"{height}\" style=\"max-width:{width}px\">\
         <title id=\"matrix-title\">Sender by recipient matrix of drops</title>\
         <desc id=\"matrix-desc\">{n} parties; rows are senders, columns are recipients; each cell gives the number of drops.</desc>\
         <defs><linearGradient id=\"blues\" x1=\"0\" x2=\"1\" y1=\"0\" y2=\"0\">"
    );
    for (i, _) in BLUES.iter().enumerate() {
        let t = i as f64 / (BLUES.len() - 1) as f64;
        let _ = write!(s, "<stop offset=\"{t:.3}\" stop-color=\"{}\"/>", blue(t));
    }
    s.push_str("</linearGradient></defs>");
    // Corner caption.
    let _ = write!(
        s,
        "<text x=\"{x}\" y=\"{y}\" text-anchor=\"end\" font-size=\"11\" fill=\"#5d6778\">sender ↓ · recipient →</text>",
        x = left - 8.0,
        y = top - 8.0
    );
    // Column labels.
    for (j, l) in labels.iter().enumerate() {
        let x = left + j as f64 * cell + cell / 2.0 + 3.0;
        let y = top - 6.0;
        let _ = write!(
            s,
            "<text x=\"{x:.1}\" y=\"{y:.1}\" font-size=\"{fs_label}\" fill=\"#1b2433\" transform=\"rotate(-45 {x:.1} {y:.1})\">\
             <title>{full}</title>{l}</text>",
            full = escape(r.party_name(&ps[j])),
            l = escape(l)
        );
    }
    let tx = left + grid + gap + tot_w / 2.0 + 3.0;
    let _ = write!(
        s,
        "<text x=\"{tx:.1}\" y=\"{y:.1}\" font-size=\"{fs_label}\" font-weight=\"600\" fill=\"#47516a\" \
         transform=\"rotate(-45 {tx:.1} {y:.1})\">Total sent</text>",
        y = top - 6.0
    );
    // Rows.
    for (i, l) in labels.iter().enumerate() {
        let y = top + i as f64 * cell;
        let sender = r.party_name(&ps[i]);
        let _ = write!(
            s,
            "<text x=\"{x}\" y=\"{ty:.1}\" text-anchor=\"end\" dominant-baseline=\"central\" font-size=\"{fs_label}\" fill=\"#1b2433\">\
             <title>{full}</title>{l}</text>",
            x = left - 8.0,
            ty = y + cell / 2.0,
            full = escape(sender),
            l = escape(l)
        );
        for (j, f) in counts[i].iter().enumerate() {
            let x = left + j as f64 * cell;
            let (fill, ink) = if f.drops == 0 {
                (if i == j { "#e4e8ee".to_owned() } else { "#f4f6f9".to_owned() }, "#1b2433")
            } else {
                let t = 0.12 + 0.88 * scale(f.drops);
                (blue(t), if t > 0.55 { "#ffffff" } else { "#10243f" })
            };
            let _ = write!(
                s,
                "<g><title>{from} → {to}: {d} drop{pl}, {b}</title>\
                 <rect x=\"{x:.1}\" y=\"{y:.1}\" width=\"{w:.1}\" height=\"{w:.1}\" rx=\"2\" fill=\"{fill}\" stroke=\"#ffffff\" stroke-width=\"1.5\"/>",
                from = escape(sender),
                to = escape(r.party_name(&ps[j])),
                d = count_text(f.drops),
                pl = if f.drops == 1 { "" } else { "s" },
                b = escape(&human_bytes(f.bytes)),
                w = cell
            );
            if f.drops > 0 {
                let _ = write!(
                    s,
                    "<text x=\"{cx:.1}\" y=\"{cy:.1}\" text-anchor=\"middle\" dominant-baseline=\"central\" font-size=\"{fs_cell:.1}\" \
                     font-weight=\"600\" fill=\"{ink}\">{c}</text>",
                    cx = x + cell / 2.0,
                    cy = y + cell / 2.0,
                    c = compact_count(f.drops)
                );
            }
            s.push_str("</g>");
        }
        // Row total.
        let row: Flow =
            counts[i].iter().fold(Flow::default(), |a, f| Flow { drops: a.drops + f.drops, bytes: a.bytes + f.bytes });
        total_cell(&mut s, left + grid + gap, y, tot_w, cell, row, &format!("{} sent", escape(sender)), fs_cell);
    }
    // Column totals.
    let ty = top + grid + gap;
    let _ = write!(
        s,
        "<text x=\"{x}\" y=\"{y:.1}\" text-anchor=\"end\" dominant-baseline=\"central\" font-size=\"{fs_label}\" font-weight=\"600\" fill=\"#47516a\">Total received</text>",
        x = left - 8.0,
        y = ty + cell / 2.0
    );
    for j in 0..ps.len() {
        let col = counts
            .iter()
            .fold(Flow::default(), |a, row| Flow { drops: a.drops + row[j].drops, bytes: a.bytes + row[j].bytes });
        let what = format!("{} received", escape(r.party_name(&ps[j])));
        total_cell(&mut s, left + j as f64 * cell, ty, cell, cell, col, &what, fs_cell);
    }
    // Legend.
    let ly = top + grid + gap + cell + 18.0;
    let lw = (grid * 0.5).clamp(160.0, 280.0);
    let _ = write!(
        s,
        "<g aria-hidden=\"true\"><text x=\"{left}\" y=\"{ty:.1}\" font-size=\"11\" fill=\"#5d6778\">Drops per pair</text>\
         <rect x=\"{lx:.1}\" y=\"{ly:.1}\" width=\"{lw:.1}\" height=\"10\" rx=\"2\" fill=\"url(#blues)\"/>\
         <text x=\"{lx:.1}\" y=\"{ny:.1}\" font-size=\"10.5\" fill=\"#5d6778\">1</text>\
         <text x=\"{rx:.1}\" y=\"{ny:.1}\" text-anchor=\"end\" font-size=\"10.5\" fill=\"#5d6778\">{max} (log scale)</text></g>",
        ty = ly + 9.0,
        lx = left + 92.0,
        rx = left + 92.0 + lw,
        ny = ly + 24.0,
        max = count_text(max)
    );
    s.push_str("</svg>");
    s
}

#[allow(clippy::too_many_arguments)]
fn total_cell(s: &mut String, x: f64, y: f64, w: f64, hgt: f64, f: Flow, what: &str, fs: f64) {
    let _ = write!(
        s,
        "<g><title>{what}: {d} drop{pl}, {b}</title><rect x=\"{x:.1}\" y=\"{y:.1}\" width=\"{w:.1}\" height=\"{hgt:.1}\" rx=\"2\" \
         fill=\"#eef1f5\" stroke=\"#ffffff\" stroke-width=\"1.5\"/><text x=\"{cx:.1}\" y=\"{cy:.1}\" text-anchor=\"middle\" \
         dominant-baseline=\"central\" font-size=\"{fs:.1}\" font-weight=\"650\" fill=\"#2d3850\">{c}</text></g>",
        d = count_text(f.drops),
        pl = if f.drops == 1 { "" } else { "s" },
        b = escape(&human_bytes(f.bytes)),
        cx = x + w / 2.0,
        cy = y + hgt / 2.0,
        c = compact_count(f.drops)
    );
}

fn agreements_section(h: &mut String, r: &Report) {
    h.push_str(
        "<section aria-labelledby=\"a-h\"><h2 id=\"a-h\">Drops per agreement</h2>\n<p class=\"lead\">Every drop travels \
         under one sharing agreement from the signed directory. Bars show what became of the drops.</p>\n",
    );
    if r.agreements.is_empty() {
        h.push_str("<p class=\"empty\">No drops in the selected period.</p></section>\n");
        return;
    }
    h.push_str("<div class=\"chartbox\">");
    h.push_str(&svg_agreements(r));
    h.push_str("</div>");
    h.push_str(
        "<table><caption>Totals per agreement</caption><thead><tr><th scope=\"col\">Agreement</th>\
         <th scope=\"col\" class=\"num\">Drops</th><th scope=\"col\" class=\"num\">Volume</th>\
         <th scope=\"col\" class=\"num\">Senders</th><th scope=\"col\" class=\"num\">Recipients</th>\
         <th scope=\"col\" class=\"num\">Acknowledged</th><th scope=\"col\" class=\"num\">Expired undelivered</th>\
         <th scope=\"col\" class=\"num\">Agreement ended</th><th scope=\"col\" class=\"num\">Recalled</th>\
         <th scope=\"col\" class=\"num\">Waiting</th></tr></thead><tbody>",
    );
    for a in &r.agreements {
        let t = &a.totals;
        let mut label = match &a.title {
            Some(title) => format!("{} <span class=\"id\">{}</span>", escape(title), escape(&a.id)),
            None => escape(&a.id),
        };
        if let Some(end) = &a.ended {
            let _ = write!(label, " <span class=\"pill ended\">{}</span>", escape(&end.describe()));
        }
        let _ = write!(
            h,
            "<tr><th scope=\"row\">{label}</th><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td>\
             <td class=\"num\">{}</td><td class=\"num\">{} <span class=\"id\">{}</span></td><td class=\"num\">{}</td>\
             <td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td></tr>",
            count_text(t.drops),
            escape(&human_bytes(t.bytes)),
            t.senders,
            t.recipients,
            count_text(t.acknowledged),
            percent(t.acknowledged, t.drops),
            count_text(t.expired_undelivered),
            count_text(t.agreement_ended_undelivered),
            count_text(t.recalled),
            count_text(t.waiting),
        );
    }
    h.push_str("</tbody></table></section>\n");
}

fn legend(s: &mut String, x: f64, y: f64, items: &[(&str, &str)]) {
    let mut x = x;
    for (color, label) in items {
        let _ = write!(
            s,
            "<rect x=\"{x:.1}\" y=\"{ry:.1}\" width=\"11\" height=\"11\" rx=\"2\" fill=\"{color}\"/>\
             <text x=\"{tx:.1}\" y=\"{y:.1}\" font-size=\"11.5\" fill=\"#47516a\">{label}</text>",
            ry = y - 9.5,
            tx = x + 16.0
        );
        x += 16.0 + label.chars().count() as f64 * 6.6 + 18.0;
    }
}

/// Stacked horizontal bars: drops per agreement by outcome.
pub fn svg_agreements(r: &Report) -> String {
    let rows = &r.agreements;
    let labels: Vec<String> = rows.iter().map(|a| truncate(a.title.as_deref().unwrap_or(&a.id), 34)).collect();
    let chars = labels.iter().chain(rows.iter().map(|a| &a.id)).map(|l| l.chars().count()).max().unwrap_or(8);
    let label_w = (chars as f64 * 7.6 + 18.0).clamp(100.0, 290.0);
    let bar_w = 560.0;
    let value_w = 170.0;
    let row_h = 40.0;
    let top = 34.0;
    let width = label_w + bar_w + value_w;
    let height = top + rows.len() as f64 * row_h + 8.0;
    let max = rows.iter().map(|a| a.totals.drops).max().unwrap_or(1).max(1) as f64;
    let mut s = String::new();
    let _ = write!(
        s,
        "<svg class=\"chart\" id=\"agreements\" xmlns=\"http://www.w3.org/2000/svg\" role=\"img\" aria-labelledby=\"ag-title\" \
         viewBox=\"0 0 {width} {height}\" width=\"{width}\" height=\"{height}\" style=\"max-width:{width}px\">\
         <title id=\"ag-title\">Drops per agreement, by outcome</title>"
    );
    legend(
        &mut s,
        label_w,
        14.0,
        &[
            (C_ACK, "Acknowledged"),
            (C_WAIT, "Waiting"),
            (C_EXPIRED, "Expired undelivered"),
            (C_ENDED, "Agreement ended"),
            (C_RECALLED, "Recalled"),
        ],
    );
    for (i, (a, label)) in rows.iter().zip(&labels).enumerate() {
        let t = &a.totals;
        let y = top + i as f64 * row_h;
        let _ = write!(
            s,
            "<text x=\"{x}\" y=\"{ly:.1}\" text-anchor=\"end\" font-size=\"12.5\" font-weight=\"600\" fill=\"#1b2433\">{l}</text>\
             <text x=\"{x}\" y=\"{iy:.1}\" text-anchor=\"end\" font-size=\"10.5\" fill=\"#5d6778\">{id}</text>",
            x = label_w - 12.0,
            ly = y + 14.0,
            iy = y + 27.0,
            l = escape(label),
            id = escape(&truncate(&a.id, 40))
        );
        let _ = write!(
            s,
            "<rect x=\"{label_w}\" y=\"{y:.1}\" width=\"{bar_w}\" height=\"24\" rx=\"3\" fill=\"#f1f3f7\"/>",
            y = y + 4.0
        );
        let other = t.drops.saturating_sub(
            t.acknowledged + t.waiting + t.expired_undelivered + t.agreement_ended_undelivered + t.recalled,
        );
        let mut x = label_w;
        for (n, color, what) in [
            (t.acknowledged, C_ACK, "acknowledged"),
            (t.waiting, C_WAIT, "waiting"),
            (t.expired_undelivered, C_EXPIRED, "expired undelivered"),
            (t.agreement_ended_undelivered, C_ENDED, "deleted undelivered as the agreement ended"),
            (t.recalled, C_RECALLED, "recalled"),
            (other, C_OTHER, "other"),
        ] {
            if n == 0 {
                continue;
            }
            let w = n as f64 / max * bar_w;
            let _ = write!(
                s,
                "<rect x=\"{x:.1}\" y=\"{y:.1}\" width=\"{w:.1}\" height=\"24\" fill=\"{color}\"><title>{id}: {n} {what}</title></rect>",
                y = y + 4.0,
                id = escape(&a.id),
                n = count_text(n)
            );
            x += w;
        }
        let _ = write!(
            s,
            "<text x=\"{vx:.1}\" y=\"{vy:.1}\" font-size=\"12.5\" fill=\"#1b2433\"><tspan font-weight=\"700\">{d}</tspan> drop{pl} · {b}</text>",
            vx = x + 8.0,
            vy = y + 20.5,
            d = count_text(t.drops),
            pl = if t.drops == 1 { "" } else { "s" },
            b = escape(&human_bytes(t.bytes))
        );
    }
    s.push_str("</svg>");
    s
}

fn nice_step(max: u64) -> u64 {
    let mut step = 1;
    loop {
        for m in [1, 2, 5] {
            if max.div_ceil(step * m) <= 5 {
                return step * m;
            }
        }
        step *= 10;
    }
}

/// Histogram of hours from commit to acknowledgement.
pub fn svg_histogram(r: &Report) -> String {
    let bins = &r.ack_histogram;
    let (width, height) = (560.0, 270.0);
    let (left, right, top, bottom) = (44.0, 10.0, 16.0, 46.0);
    let pw = width - left - right;
    let ph = height - top - bottom;
    let max = bins.iter().map(|b| b.count).max().unwrap_or(0).max(1);
    let step = nice_step(max);
    let ymax = max.div_ceil(step) * step;
    let mut s = String::new();
    let _ = write!(
        s,
        "<svg class=\"chart\" id=\"ack-histogram\" xmlns=\"http://www.w3.org/2000/svg\" role=\"img\" aria-labelledby=\"hist-title\" \
         viewBox=\"0 0 {width} {height}\" width=\"{width}\" height=\"{height}\" style=\"max-width:{width}px\">\
         <title id=\"hist-title\">Histogram of time from commit to acknowledgement</title>"
    );
    let mut v = 0;
    while v <= ymax {
        let y = top + ph - v as f64 / ymax as f64 * ph;
        let _ = write!(
            s,
            "<line x1=\"{left}\" x2=\"{x2}\" y1=\"{y:.1}\" y2=\"{y:.1}\" stroke=\"{c}\" stroke-width=\"1\"/>\
             <text x=\"{tx}\" y=\"{y:.1}\" text-anchor=\"end\" dominant-baseline=\"central\" font-size=\"10.5\" fill=\"#5d6778\">{v}</text>",
            x2 = width - right,
            c = if v == 0 { "#9aa3b2" } else { "#e4e8ee" },
            tx = left - 6.0,
            v = compact_count(v)
        );
        v += step;
    }
    let bw = pw / bins.len().max(1) as f64;
    for (i, b) in bins.iter().enumerate() {
        let x = left + i as f64 * bw;
        let bh = b.count as f64 / ymax as f64 * ph;
        let y = top + ph - bh;
        let _ = write!(
            s,
            "<g><title>{label}: {n} acknowledgement{pl}</title><rect x=\"{rx:.1}\" y=\"{y:.1}\" width=\"{w:.1}\" height=\"{bh:.1}\" rx=\"2\" fill=\"{c}\"/>",
            label = escape(b.label),
            n = count_text(b.count),
            pl = if b.count == 1 { "" } else { "s" },
            rx = x + bw * 0.12,
            w = bw * 0.76,
            c = if b.lower_hours >= 168.0 { C_WAIT } else { "#2166ac" }
        );
        if b.count > 0 {
            let _ = write!(
                s,
                "<text x=\"{cx:.1}\" y=\"{ty:.1}\" text-anchor=\"middle\" font-size=\"11\" font-weight=\"600\" fill=\"#1b2433\">{n}</text>",
                cx = x + bw / 2.0,
                ty = y - 5.0,
                n = compact_count(b.count)
            );
        }
        let _ = write!(
            s,
            "<text x=\"{cx:.1}\" y=\"{ty:.1}\" text-anchor=\"middle\" font-size=\"11\" fill=\"#47516a\">{l}</text></g>",
            cx = x + bw / 2.0,
            ty = top + ph + 17.0,
            l = escape(b.label)
        );
    }
    let _ = write!(
        s,
        "<text x=\"{x:.1}\" y=\"{y}\" text-anchor=\"middle\" font-size=\"11\" fill=\"#5d6778\">time from commit to acknowledgement</text>",
        x = left + pw / 2.0,
        y = height - 6.0
    );
    s.push_str("</svg>");
    s
}

fn ack_section(h: &mut String, r: &Report) {
    h.push_str(
        "<section aria-labelledby=\"t-h\"><h2 id=\"t-h\">Time to acknowledge</h2>\n<p class=\"lead\">From the hub \
         committing a drop to each recipient's signed receipt. Long waits mean sensitive files sat on the hub \
         (encrypted) for longer than needed.</p>\n",
    );
    let Some(all) = r.ack_overall else {
        h.push_str("<p class=\"empty\">No acknowledgements in the selected period.</p></section>\n");
        return;
    };
    let within_day: u64 =
        r.ack_histogram.iter().filter(|b| b.upper_hours.is_some_and(|u| u <= 24.0)).map(|b| b.count).sum();
    let within_week: u64 =
        r.ack_histogram.iter().filter(|b| b.upper_hours.is_some_and(|u| u <= 168.0)).map(|b| b.count).sum();
    h.push_str("<div class=\"cols\"><div class=\"chartbox\">");
    h.push_str(&svg_histogram(r));
    let _ = write!(
        h,
        "</div><div><dl class=\"stats\">\
         <div><dt>Median</dt><dd>{}</dd></div><div><dt>90th percentile</dt><dd>{}</dd></div>\
         <div><dt>Longest</dt><dd>{}</dd></div><div><dt>Receipts</dt><dd>{}</dd></div></dl>\
         <p class=\"within\"><b>{}</b> of receipts came within a day of the commit, <b>{}</b> within a week.</p></div></div>",
        duration_text(all.median_hours),
        duration_text(all.p90_hours),
        duration_text(all.max_hours),
        count_text(all.count),
        percent(within_day, all.count),
        percent(within_week, all.count),
    );
    let scale = r.ack_by_recipient.iter().map(|(_, a)| a.p90_hours).fold(1.0, f64::max);
    h.push_str(
        "<div class=\"tablebox\"><table class=\"ack\"><caption>Per recipient: the bar shows the median (dark) and the \
         90th percentile (light)</caption><thead><tr><th scope=\"col\">Recipient</th>\
         <th scope=\"col\" class=\"num\">Receipts</th><th scope=\"col\" class=\"num\">Median</th>\
         <th scope=\"col\" class=\"num\">90th pct.</th><th scope=\"col\" class=\"num\">Longest</th>\
         <th scope=\"col\"><span class=\"sr\">Median and 90th percentile, as bars</span></th></tr></thead><tbody>",
    );
    let row = |h: &mut String, who: String, a: &AckTimes, bar: bool| {
        let bar = if bar {
            format!(
                "<div class=\"rng\" aria-hidden=\"true\"><span class=\"p90\" style=\"width:{:.1}%\"></span>\
                 <span class=\"med\" style=\"width:{:.1}%\"></span></div>",
                (a.p90_hours / scale * 100.0).clamp(0.5, 100.0),
                (a.median_hours / scale * 100.0).clamp(0.5, 100.0)
            )
        } else {
            String::new()
        };
        let _ = write!(
            h,
            "<tr><th scope=\"row\">{who}</th><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td>\
             <td class=\"num\">{}</td><td class=\"barcell\">{bar}</td></tr>",
            count_text(a.count),
            duration_text(a.median_hours),
            duration_text(a.p90_hours),
            duration_text(a.max_hours)
        );
    };
    for (p, a) in &r.ack_by_recipient {
        row(h, party_name_html(r, p), a, true);
    }
    h.push_str("</tbody><tfoot>");
    row(h, "All recipients".to_owned(), &all, false);
    h.push_str("</tfoot></table></div></section>\n");
}

fn more_rows(h: &mut String, total: usize) {
    if total > MAX_TABLE_ROWS {
        let _ = write!(
            h,
            "<p class=\"more\">…and {} more; every one is in the CSV export.</p>",
            count_text((total - MAX_TABLE_ROWS) as u64)
        );
    }
}

fn drop_cell(id: &str, agreement: &str, log_index: u64) -> String {
    format!(
        "<span class=\"mono nowrap\">{}</span><br><span class=\"id\">{} · log entry {log_index}</span>",
        escape(id),
        escape(agreement)
    )
}

/// Which kind of undelivered drop a table lists.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Undelivered {
    Expired,
    AgreementEnded,
    Recalled,
}

/// Each recipient that had not acknowledged, marked NOT DELIVERED.
fn not_delivered_list(r: &Report, ps: &[PartyId]) -> String {
    if ps.is_empty() {
        return "–".to_owned();
    }
    let items: String = ps
        .iter()
        .map(|p| format!("<li>{} <span class=\"pill bad\">{NOT_DELIVERED}</span></li>", party_name_html(r, p)))
        .collect();
    format!("<ul class=\"nd\">{items}</ul>")
}

fn undelivered_table(h: &mut String, r: &Report, drops: &[UndeliveredDrop], caption: &str, kind: Undelivered) {
    let (who, extra) = match kind {
        Undelivered::Expired => ("Not delivered to", ""),
        Undelivered::AgreementEnded => ("Not delivered to", "<th scope=\"col\">Agreement ended</th>"),
        Undelivered::Recalled => ("Never acknowledged by", "<th scope=\"col\">Recalled (by)</th>"),
    };
    let _ = write!(
        h,
        "<div class=\"tablebox\"><table><caption>{caption} (times UTC)</caption><thead><tr><th scope=\"col\">Drop</th>\
         <th scope=\"col\">Sender</th><th scope=\"col\">{who}</th>\
         <th scope=\"col\" class=\"num\">Size</th><th scope=\"col\">Committed</th><th scope=\"col\">Expiry</th>{extra}</tr></thead><tbody>",
    );
    for d in drops.iter().take(MAX_TABLE_ROWS) {
        let (recipients, extra) = match kind {
            Undelivered::Expired => (not_delivered_list(r, &d.unacknowledged), String::new()),
            Undelivered::AgreementEnded => {
                (not_delivered_list(r, &d.unacknowledged), format!("<td class=\"nowrap\">{}</td>", short(d.deleted)))
            }
            Undelivered::Recalled => {
                // When, and by which of the sender's members (a log without
                // the recall entry only says when the hub deleted it).
                let cell = match &d.recall {
                    Some(rc) => format!(
                        "<span class=\"nowrap\">{}</span><br><span class=\"id\">by</span> \
                         <span class=\"mono nowrap\">{}</span>",
                        short(rc.at),
                        escape(&rc.by)
                    ),
                    None => format!("<span class=\"nowrap\">{}</span>", short(d.deleted)),
                };
                (party_list(r, &d.unacknowledged), format!("<td>{cell}</td>"))
            }
        };
        let _ = write!(
            h,
            "<tr><td>{drop}</td><td>{sender}{key}</td><td>{recipients}</td><td class=\"num\">{size}</td>\
             <td class=\"nowrap\">{c}</td><td class=\"nowrap\">{e}</td>{extra}</tr>",
            drop = drop_cell(&d.drop, &d.agreement, d.log_index),
            sender = party_name_html(r, &d.sender),
            key = crate::audit::signers::key_cell(d.manifest_key.as_ref()),
            size = escape(&human_bytes(d.bytes)),
            c = short(d.committed),
            e = short(d.expires),
        );
    }
    h.push_str("</tbody></table></div>");
    more_rows(h, drops.len());
}

fn undelivered_section(h: &mut String, r: &Report) {
    h.push_str(
        "<section class=\"long\" aria-labelledby=\"u-h\"><h2 id=\"u-h\">Expired, ended and recalled drops</h2>\n\
         <p class=\"lead\">Drops the hub deleted before every recipient acknowledged them. A recipient marked \
         NOT DELIVERED never collected data it was sent, because the drop expired or its sharing agreement ended \
         first: check whether it was needed and was sent again.</p>\n",
    );
    let _ = write!(
        h,
        "<h3><span class=\"pill bad\">{}</span> Expired undelivered</h3>",
        count_text(r.expired.len() as u64)
    );
    if r.expired.is_empty() {
        h.push_str("<p class=\"empty\">None: no drop expired before its recipients acknowledged it.</p>");
    } else {
        undelivered_table(
            h,
            r,
            &r.expired,
            "Drops that expired before every recipient acknowledged",
            Undelivered::Expired,
        );
    }
    let _ = write!(
        h,
        "<h3><span class=\"pill ended\">{}</span> Deleted as their agreement ended</h3>",
        count_text(r.agreement_ended.len() as u64)
    );
    if r.agreement_ended.is_empty() {
        h.push_str("<p class=\"empty\">None: no agreement ended while a drop under it waited.</p>");
    } else {
        undelivered_table(
            h,
            r,
            &r.agreement_ended,
            "Drops deleted because their agreement ended (its end date passed, or a new directory version \
             ended or removed it) first",
            Undelivered::AgreementEnded,
        );
    }
    let _ = write!(h, "<h3><span class=\"pill recall\">{}</span> Recalled</h3>", count_text(r.recalled.len() as u64));
    if r.recalled.is_empty() {
        h.push_str("<p class=\"empty\">No drop was recalled.</p>");
    } else {
        undelivered_table(
            h,
            r,
            &r.recalled,
            "Drops their senders recalled, with the member whose signed request recalled each",
            Undelivered::Recalled,
        );
    }
    h.push_str("</section>\n");
}

fn waiting_section(h: &mut String, r: &Report) {
    h.push_str(
        "<section class=\"long\" aria-labelledby=\"w-h\"><h2 id=\"w-h\">Still waiting</h2>\n<p class=\"lead\">Drops \
         committed but neither fully acknowledged nor deleted at the end of the log.</p>\n",
    );
    if r.waiting.is_empty() {
        h.push_str("<p class=\"empty\">Nothing is waiting on the hub.</p></section>\n");
        return;
    }
    h.push_str(
        "<div class=\"tablebox\"><table><caption>Drops on the hub at the end of the log (times UTC)</caption><thead><tr>\
         <th scope=\"col\">Drop</th><th scope=\"col\">Sender</th>\
         <th scope=\"col\">Waiting for</th><th scope=\"col\" class=\"num\">Size</th><th scope=\"col\">Committed</th>\
         <th scope=\"col\">Expires</th></tr></thead><tbody>",
    );
    for d in r.waiting.iter().take(MAX_TABLE_ROWS) {
        let overdue = if d.expires <= r.generated_at { " <span class=\"pill bad\">past expiry</span>" } else { "" };
        let _ = write!(
            h,
            "<tr><td>{drop}</td><td>{sender}{key}</td><td>{w}</td><td class=\"num\">{size}</td>\
             <td class=\"nowrap\">{c}</td><td class=\"nowrap\">{e}{overdue}</td></tr>",
            drop = drop_cell(&d.drop, &d.agreement, d.log_index),
            sender = party_name_html(r, &d.sender),
            key = crate::audit::signers::key_cell(d.manifest_key.as_ref()),
            w = party_list(r, &d.waiting_for),
            size = escape(&human_bytes(d.bytes)),
            c = short(d.committed),
            e = short(d.expires)
        );
    }
    h.push_str("</tbody></table></div>");
    more_rows(h, r.waiting.len());
    h.push_str("</section>\n");
}

/// Every revoked member key of the versions shown, once each.
fn revocations_table(h: &mut String, r: &Report) {
    let _ = write!(
        h,
        "<h3><span class=\"pill {}\">{}</span> Revoked keys</h3>",
        if r.revocations.is_empty() { "info" } else { "bad" },
        count_text(r.revocations.len() as u64)
    );
    if r.revocations.is_empty() {
        h.push_str("<p class=\"empty\">No directory version revokes a key.</p>");
        return;
    }
    h.push_str(
        "<div class=\"tablebox\"><table><caption>Member keys the coordinator revoked: the hub refuses them from the \
         version that revokes them on (times UTC)</caption><thead><tr><th scope=\"col\">Party</th>\
         <th scope=\"col\">Member</th><th scope=\"col\">Key</th><th scope=\"col\">Not trusted from</th>\
         <th scope=\"col\">Reason</th><th scope=\"col\" class=\"num\">Revoked in serial</th></tr></thead><tbody>",
    );
    for k in &r.revocations {
        let _ = write!(
            h,
            "<tr><td>{}</td><td>{}</td><td><span class=\"mono\">{}</span><br><span class=\"mono id\">{}</span></td>\
             <td class=\"nowrap\">{}</td><td>{}</td><td class=\"num\">{}</td></tr>",
            party_name_html(r, &k.party),
            escape(&k.member),
            escape(&k.name),
            escape(&k.fingerprint),
            short(k.revoked_at),
            if k.reason.is_empty() { "–".to_owned() } else { escape(&k.reason) },
            k.serial
        );
    }
    h.push_str("</tbody></table></div>");
}

fn directory_section(h: &mut String, r: &Report) {
    h.push_str(
        "<section class=\"long\" aria-labelledby=\"d-h\"><h2 id=\"d-h\">Directory and key changes</h2>\n<p class=\"lead\">\
         Each version of the coordinator-signed directory the hub enforced, with the keys and agreements that changed \
         from the version before, and the member keys the coordinator revoked. A key you do not recognise is worth a \
         phone call to the party.</p>\n",
    );
    if r.directory_versions.is_empty() {
        h.push_str("<p class=\"empty\">No directory version was published in the selected period.</p></section>\n");
        return;
    }
    h.push_str(
        "<table><caption>Directory versions</caption><thead><tr><th scope=\"col\" class=\"num\">Serial</th>\
         <th scope=\"col\">Published in log</th><th scope=\"col\">Signed</th><th scope=\"col\" class=\"num\">Parties</th>\
         <th scope=\"col\" class=\"num\">Member keys</th><th scope=\"col\" class=\"num\">Witness keys</th>\
         <th scope=\"col\" class=\"num\">Revoked keys</th><th scope=\"col\" class=\"num\">Agreements</th>\
         <th scope=\"col\">SHA-256</th></tr></thead><tbody>",
    );
    for v in &r.directory_versions {
        let published = match v.published {
            Some(t) => when(t),
            None => "<span class=\"pill wait\">not in log</span>".to_owned(),
        };
        let mismatch = if v.hash_mismatch { " <span class=\"pill bad\">hash differs from log</span>" } else { "" };
        let _ = write!(
            h,
            "<tr><th scope=\"row\" class=\"num\">{}</th><td class=\"nowrap\">{published}</td><td class=\"nowrap\">{}</td>\
             <td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td>\
             <td class=\"num\">{}</td><td><span class=\"mono\" title=\"{sha}\">{short}…</span>{mismatch}</td></tr>",
            v.serial,
            when(v.issued_at),
            v.parties,
            v.member_keys,
            v.witness_keys,
            v.revoked_keys,
            v.agreements,
            sha = escape(&v.sha256),
            short = escape(&v.sha256.chars().take(16).collect::<String>()),
        );
    }
    h.push_str("</tbody></table>");
    revocations_table(h, r);
    for v in &r.directory_versions {
        let _ = write!(
            h,
            "<div class=\"dirv\"><h3>Serial {}</h3><div class=\"sub\">{} · SHA-256 <span class=\"mono\">{}</span></div>",
            v.serial,
            v.published.map_or_else(|| format!("signed {}", when(v.issued_at)), |t| format!("published {}", when(t))),
            escape(&v.sha256)
        );
        let Some(d) = &v.changes else {
            h.push_str("<p class=\"empty\">The first directory version: the baseline for the changes below.</p></div>");
            continue;
        };
        if d.is_empty() {
            h.push_str("<p class=\"empty\">No change to parties, keys or agreements.</p></div>");
            continue;
        }
        h.push_str("<ul class=\"changes\">");
        for p in &d.parties_added {
            let _ = write!(h, "<li><span class=\"add\">+ party</span> {}</li>", party_cell(r, p));
        }
        for p in &d.parties_removed {
            let _ = write!(h, "<li><span class=\"rem\">− party</span> {}</li>", party_cell(r, p));
        }
        for n in &d.notes {
            let _ = write!(h, "<li><span class=\"chg\">~</span> {}</li>", escape(n));
        }
        for k in &d.revocations {
            let _ = write!(
                h,
                "<li><span class=\"rem\">✕ key revoked</span> <span class=\"mono\">{}</span> of {} \
                 (<span class=\"mono\">{}</span>), not to be trusted from {}{}</li>",
                escape(&k.name),
                party_name_html(r, &k.party),
                escape(&k.fingerprint),
                escape(&when(k.revoked_at)),
                if k.reason.is_empty() { String::new() } else { format!(": {}", escape(&k.reason)) }
            );
        }
        h.push_str("</ul>");
        if !d.keys.is_empty() {
            h.push_str(
                "<table><caption>Keys added and removed</caption><thead><tr><th scope=\"col\">Change</th>\
                 <th scope=\"col\">Party</th><th scope=\"col\">Kind</th><th scope=\"col\">Key name</th>\
                 <th scope=\"col\">Fingerprint</th></tr></thead><tbody>",
            );
            for k in &d.keys {
                let pill = match k.change {
                    Change::Added => "<span class=\"pill ok\">added</span>",
                    Change::Removed => "<span class=\"pill bad\">removed</span>",
                    Change::Changed => "<span class=\"pill info\">changed</span>",
                };
                let _ = write!(
                    h,
                    "<tr><td>{pill}</td><td>{}</td><td>{}</td><td class=\"mono\">{}</td><td class=\"mono\">{}</td></tr>",
                    party_name_html(r, &k.party),
                    match k.kind {
                        KeyKind::Member => "member",
                        KeyKind::Witness => "witness",
                    },
                    escape(&k.name),
                    escape(&k.fingerprint)
                );
            }
            h.push_str("</tbody></table>");
        }
        if !d.agreements.is_empty() {
            h.push_str("<ul class=\"changes\">");
            for a in &d.agreements {
                let (class, sign) = match a.change {
                    Change::Added => ("add", "+ agreement"),
                    Change::Removed => ("rem", "− agreement"),
                    Change::Changed => ("chg", "~ agreement"),
                };
                let details =
                    if a.details.is_empty() { String::new() } else { format!(": {}", escape(&a.details.join("; "))) };
                let _ = write!(
                    h,
                    "<li><span class=\"{class}\">{sign}</span> {}{details}</li>",
                    escape(&agreement_label(r, &a.id))
                );
            }
            h.push_str("</ul>");
        }
        h.push_str("</div>");
    }
    h.push_str("</section>\n");
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use sealdrop_log::entry::SignedRequest;
    use sealdrop_proto::directory::{Agreement, Party, RevokedKey};
    use sealdrop_proto::drop::EncryptedTo;
    use sealdrop_proto::ids::DropId;
    use sealdrop_proto::keys::{MemberSecretKey, NoteSigningKey};
    use sealdrop_proto::note::sign_doc;

    const SCRIPT_NAME: &str = "Hackney <script>alert(\"x\")</script>";

    fn ts(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    fn pid(s: &str) -> PartyId {
        s.parse().unwrap()
    }

    pub(crate) fn member(party: &str) -> MemberSecretKey {
        MemberSecretKey::generate(pid(party), "data-team".parse().unwrap())
    }

    fn party(key: &MemberSecretKey, name: &str, witness: Option<&NoteSigningKey>) -> Party {
        let card = key.public();
        Party {
            witness_keys: witness.map(|w| vec![w.cosigner_verifier()]).unwrap_or_default(),
            revoked: vec![],
            ..Party::with_member(name, card)
        }
    }

    fn agreement(id: &str, parties: &[&str], max_expiry_days: u32) -> Agreement {
        Agreement {
            id: id.into(),
            title: format!("Title of {id}"),
            purpose: "p".into(),
            lawful_basis: "UK GDPR 6(1)(e)".into(),
            parties: parties.iter().map(|p| pid(p)).collect(),
            max_expiry_days,
            valid_from: ts("2025-01-01T00:00:00Z"),
            valid_until: ts("2030-01-01T00:00:00Z"),
        }
    }

    /// A hand-built log: three parties, two directory versions, six drops.
    pub(crate) struct Fixture {
        hub: NoteSigningKey,
        pub(crate) keys: BTreeMap<&'static str, MemberSecretKey>,
        entries: Vec<LogEntry>,
        dirs: Vec<SignedDirectory>,
        pub(crate) old_islington_fp: String,
        pub(crate) new_islington_fp: String,
        hackney_witness_fp: String,
    }

    impl Fixture {
        fn commit(&mut self, sender: &str, to: &[&str], agreement: &str, len: u64, at: &str) -> DropId {
            let drop = DropId::random();
            let committed = ts(at);
            let m = Manifest {
                drop: drop.clone(),
                sender: pid(sender),
                sender_member: "data-team".parse().unwrap(),
                recipients: to.iter().map(|p| pid(p)).collect(),
                encrypted_to: to
                    .iter()
                    .map(|p| EncryptedTo {
                        key: format!("{p}/data-team"),
                        age_recipient: self.keys[p].public().age_recipient,
                    })
                    .collect(),
                agreement: agreement.into(),
                directory_serial: 1,
                ciphertext_sha256: "ab".repeat(32),
                ciphertext_len: len,
                created: committed,
                expires: committed.checked_add(jiff::SignedDuration::from_hours(14 * 24)).unwrap(),
            };
            let manifest = sign_doc(&m, &self.keys[sender].signing);
            self.entries.push(LogEntry::DropCommitted { committed, manifest });
            drop
        }

        fn fetch(&mut self, drop: &DropId, party: &str, at: &str) {
            let request = SignedRequest {
                method: "GET".into(),
                path: format!("/v1/drops/{drop}/content"),
                key: format!("{party}/data-team"),
                time: ts(at).as_second(),
                nonce: "n".into(),
                content: "UNSIGNED".into(),
                signature: "c2ln".into(),
            };
            self.entries.push(LogEntry::DropFetched {
                drop: drop.clone(),
                party: pid(party),
                fetched: ts(at),
                request,
            });
        }

        fn ack(&mut self, drop: &DropId, party: &str, at: &str) {
            let r = Receipt {
                drop: drop.clone(),
                recipient: pid(party),
                member: "data-team".parse().unwrap(),
                ciphertext_sha256: "ab".repeat(32),
                ciphertext_len: 1,
                received: ts(at),
            };
            let receipt = sign_doc(&r, &self.keys[party].signing);
            self.entries.push(LogEntry::DropAcknowledged { acknowledged: ts(at), receipt });
        }

        fn recall(&mut self, drop: &DropId, party: &str, at: &str) {
            let request = SignedRequest {
                method: "POST".into(),
                path: format!("/v1/drops/{drop}/recall"),
                key: format!("{party}/data-team"),
                time: ts(at).as_second(),
                nonce: "r".into(),
                content: sealdrop_proto::request::body_sha256(b"{}"),
                signature: "c2ln".into(),
            };
            self.entries.push(LogEntry::DropRecalled {
                drop: drop.clone(),
                party: pid(party),
                recalled: ts(at),
                request,
            });
        }

        fn hub(&mut self, st: HubStatement) {
            self.entries.push(LogEntry::Hub { statement: sign_doc(&st, &self.hub) });
        }

        fn delete(&mut self, drop: &DropId, reason: DeletionReason, at: &str) {
            self.hub(HubStatement::DropDeleted { time: ts(at), drop: drop.clone(), reason });
        }

        fn publish(&mut self, serial: u64, at: &str) {
            let d = self.dirs.iter().find(|d| d.directory.serial == serial).unwrap();
            let sha256 = d.sha256_hex();
            self.hub(HubStatement::DirectoryPublished { time: ts(at), serial, sha256 });
        }

        pub(crate) fn input(&self, agreement: Option<&str>, since: Option<&str>) -> ReportInput<'_> {
            ReportInput {
                entries: Box::new(self.entries.iter().cloned().enumerate().map(|(i, e)| (i as u64, e))),
                // Out of order on purpose: the report sorts by serial.
                directories: self.dirs.iter().rev().cloned().collect(),
                origin: "hub.example/log".into(),
                checkpoint_size: self.entries.len() as u64,
                agreement: agreement.map(str::to_owned),
                since: since.map(ts),
                until: None,
                generated_at: ts("2026-03-01T12:00:00Z"),
            }
        }
    }

    /// Drops D1 to D6 (in that order) over two directory versions, the
    /// second of which replaces islington/data-team's key.
    pub(crate) fn fixture() -> (Fixture, Vec<DropId>) {
        let authority = NoteSigningKey::generate("authority.example").unwrap();
        let mut keys = BTreeMap::new();
        for p in ["camden", "islington", "hackney"] {
            keys.insert(p, member(p));
        }
        let v1 = Directory {
            serial: 1,
            issued_at: ts("2026-01-01T08:00:00Z"),
            hub: None,
            parties: vec![
                party(&keys["camden"], "Camden", None),
                party(&keys["islington"], "Islington", None),
                party(&keys["hackney"], SCRIPT_NAME, None),
            ],
            agreements: vec![agreement("inner-fsm", &["camden", "islington", "hackney"], 30)],
        };
        // Version 2: Islington's key is replaced (the old one revoked),
        // Hackney gains a witness key, a new agreement appears and the old
        // one's expiry shortens.
        let old_islington = keys["islington"].public();
        let old_islington_fp = old_islington.signing_key.fingerprint();
        // The old key signs islington's documents until version 2 is published.
        let new_islington = member("islington");
        let new_islington_fp = new_islington.signing.verifier().fingerprint();
        let witness = NoteSigningKey::generate("witness.hackney").unwrap();
        let mut v2 = Directory {
            serial: 2,
            issued_at: ts("2026-02-01T08:00:00Z"),
            hub: None,
            parties: vec![
                party(&keys["camden"], "Camden", None),
                party(&new_islington, "Islington", None),
                party(&keys["hackney"], SCRIPT_NAME, Some(&witness)),
            ],
            agreements: vec![
                agreement("inner-fsm", &["camden", "islington", "hackney"], 14),
                agreement("sen-transfer", &["camden", "islington"], 30),
            ],
        };
        v2.parties[1].revoked = vec![RevokedKey {
            member: old_islington.member,
            signing_key: old_islington.signing_key,
            revoked_at: ts("2026-01-31T17:00:00Z"),
            reason: "laptop lost".into(),
        }];
        let dirs = vec![SignedDirectory::sign(v1, &authority).unwrap(), SignedDirectory::sign(v2, &authority).unwrap()];
        let mut f = Fixture {
            hub: NoteSigningKey::generate("hub.example/log").unwrap(),
            keys,
            entries: vec![],
            dirs,
            old_islington_fp,
            new_islington_fp,
            hackney_witness_fp: witness.cosigner_verifier().fingerprint(),
        };
        f.publish(1, "2026-01-01T09:00:00Z");
        // D1: to two recipients, both acknowledge (2 h and 28 h).
        let d1 = f.commit("camden", &["islington", "hackney"], "inner-fsm", 1000, "2026-01-05T10:00:00Z");
        f.fetch(&d1, "islington", "2026-01-05T11:00:00Z");
        f.ack(&d1, "islington", "2026-01-05T12:00:00Z");
        f.fetch(&d1, "hackney", "2026-01-06T10:00:00Z");
        f.fetch(&d1, "hackney", "2026-01-06T11:00:00Z");
        f.ack(&d1, "hackney", "2026-01-06T14:00:00Z");
        f.delete(&d1, DeletionReason::Delivered, "2026-01-06T14:00:00Z");
        // D2: expires undelivered.
        let d2 = f.commit("islington", &["camden"], "inner-fsm", 2000, "2026-01-10T08:00:00Z");
        // D3: recalled.
        let d3 = f.commit("hackney", &["camden"], "inner-fsm", 500, "2026-01-12T09:00:00Z");
        f.recall(&d3, "hackney", "2026-01-12T10:00:00Z");
        f.delete(&d3, DeletionReason::Recalled, "2026-01-12T10:00:00Z");
        // D6: acknowledged after 24 h.
        let d6 = f.commit("camden", &["islington"], "inner-fsm", 700, "2026-01-20T09:00:00Z");
        f.ack(&d6, "islington", "2026-01-21T09:00:00Z");
        f.delete(&d6, DeletionReason::Delivered, "2026-01-21T09:00:00Z");
        f.delete(&d2, DeletionReason::Expired, "2026-01-24T08:00:00Z");
        f.publish(2, "2026-02-01T09:00:00Z");
        f.keys.insert("islington", new_islington);
        // D4: under the new agreement, acknowledged after 6 h.
        let d4 = f.commit("camden", &["islington"], "sen-transfer", 4000, "2026-02-03T09:00:00Z");
        f.fetch(&d4, "islington", "2026-02-03T09:30:00Z");
        f.ack(&d4, "islington", "2026-02-03T15:00:00Z");
        f.delete(&d4, DeletionReason::Delivered, "2026-02-03T15:00:00Z");
        // D5: fetched, still waiting.
        let d5 = f.commit("islington", &["camden"], "inner-fsm", 300, "2026-02-10T09:00:00Z");
        f.fetch(&d5, "camden", "2026-02-10T10:00:00Z");
        (f, vec![d1, d2, d3, d4, d5, d6])
    }

    fn flow(r: &Report, s: &str, t: &str) -> Flow {
        r.matrix.get(&(pid(s), pid(t))).copied().unwrap_or_default()
    }

    fn agreement_totals<'a>(r: &'a Report, id: &str) -> &'a Totals {
        &r.agreements.iter().find(|a| a.id == id).unwrap().totals
    }

    #[test]
    fn matrix_totals_and_outcomes() {
        let (f, ids) = fixture();
        let r = build(f.input(None, None));
        assert_eq!(r.entries_read, f.entries.len() as u64);
        assert_eq!(r.unreadable_entries, 0);
        assert_eq!(flow(&r, "camden", "islington"), Flow { drops: 3, bytes: 5700 });
        assert_eq!(flow(&r, "camden", "hackney"), Flow { drops: 1, bytes: 1000 });
        assert_eq!(flow(&r, "islington", "camden"), Flow { drops: 2, bytes: 2300 });
        assert_eq!(flow(&r, "hackney", "camden"), Flow { drops: 1, bytes: 500 });
        assert_eq!(r.matrix.len(), 4);
        // Axes ordered by display name.
        assert_eq!(r.parties, vec![pid("camden"), pid("hackney"), pid("islington")]);

        let fsm = agreement_totals(&r, "inner-fsm");
        assert_eq!(
            *fsm,
            Totals {
                drops: 5,
                bytes: 4500,
                parties: 3,
                senders: 3,
                recipients: 3,
                deliveries: 6,
                acknowledged_deliveries: 3,
                acknowledged: 2,
                expired_undelivered: 1,
                agreement_ended_undelivered: 0,
                recalled: 1,
                waiting: 1,
            }
        );
        let sen = agreement_totals(&r, "sen-transfer");
        assert_eq!((sen.drops, sen.bytes, sen.senders, sen.recipients, sen.acknowledged), (1, 4000, 1, 1, 1));
        assert_eq!(r.agreements[0].id, "inner-fsm", "most drops first");
        assert_eq!(r.agreements[1].title.as_deref(), Some("Title of sen-transfer"));
        assert_eq!((r.totals.drops, r.totals.bytes, r.totals.acknowledged), (6, 8500, 3));

        // Expired and recalled lists.
        assert_eq!(r.expired.len(), 1);
        let e = &r.expired[0];
        assert_eq!(e.drop, ids[1].as_str());
        assert_eq!(e.sender, pid("islington"));
        assert_eq!(e.unacknowledged, vec![pid("camden")]);
        assert_eq!(e.committed, ts("2026-01-10T08:00:00Z"));
        assert_eq!(e.expires, ts("2026-01-24T08:00:00Z"));
        assert_eq!(e.deleted, ts("2026-01-24T08:00:00Z"));
        assert_eq!(e.recall, None);
        assert_eq!(r.recalled.len(), 1);
        assert_eq!((r.recalled[0].drop.as_str(), &r.recalled[0].sender), (ids[2].as_str(), &pid("hackney")));
        assert_eq!(r.recalled[0].unacknowledged, vec![pid("camden")]);
        // When, and by which of the sender's members.
        assert_eq!(
            r.recalled[0].recall,
            Some(Recall { at: ts("2026-01-12T10:00:00Z"), by: "hackney/data-team".into() })
        );
        assert!(r.agreement_ended.is_empty());
        // Waiting at the end.
        assert_eq!(r.waiting.len(), 1);
        assert_eq!(r.waiting[0].drop, ids[4].as_str());
        assert_eq!(r.waiting[0].waiting_for, vec![pid("camden")]);
        assert_eq!(r.log_span, Some((ts("2026-01-01T09:00:00Z"), ts("2026-02-10T10:00:00Z"))));
    }

    #[test]
    fn acknowledgement_times() {
        let (f, _) = fixture();
        let r = build(f.input(None, None));
        let by: BTreeMap<&str, AckTimes> = r.ack_by_recipient.iter().map(|(p, a)| (p.as_str(), *a)).collect();
        assert_eq!(by.len(), 2, "camden never acknowledged anything");
        let isl = by["islington"];
        // 2 h, 24 h and 6 h: median 6, p90 = 6 + 0.8 * 18.
        assert_eq!(isl.count, 3);
        assert!((isl.median_hours - 6.0).abs() < 1e-9, "{isl:?}");
        assert!((isl.p90_hours - 20.4).abs() < 1e-9, "{isl:?}");
        assert!((isl.max_hours - 24.0).abs() < 1e-9, "{isl:?}");
        let hk = by["hackney"];
        assert_eq!(hk.count, 1);
        assert!((hk.median_hours - 28.0).abs() < 1e-9);
        let all = r.ack_overall.unwrap();
        assert_eq!(all.count, 4);
        assert!((all.median_hours - 15.0).abs() < 1e-9, "{all:?}");
        let counts: Vec<u64> = r.ack_histogram.iter().map(|b| b.count).collect();
        assert_eq!(counts, vec![0, 1, 1, 0, 2, 0, 0, 0, 0]);
        assert_eq!(percentile(&[1.0, 2.0, 3.0, 4.0], 0.5), 2.5);
    }

    #[test]
    fn directory_key_changes() {
        let (f, _) = fixture();
        let r = build(f.input(None, None));
        assert_eq!(r.directory_versions.len(), 2);
        let v1 = &r.directory_versions[0];
        assert_eq!((v1.serial, v1.published), (1, Some(ts("2026-01-01T09:00:00Z"))));
        assert_eq!(v1.sha256, f.dirs[0].sha256_hex());
        assert!(!v1.hash_mismatch);
        assert!(v1.changes.is_none(), "the first version is the baseline");
        let v2 = &r.directory_versions[1];
        assert_eq!((v2.serial, v2.published), (2, Some(ts("2026-02-01T09:00:00Z"))));
        assert_eq!((v2.parties, v2.member_keys, v2.witness_keys, v2.agreements), (3, 3, 1, 2));
        assert_eq!((v1.revoked_keys, v2.revoked_keys), (0, 1));
        let d = v2.changes.as_ref().unwrap();
        assert!(d.parties_added.is_empty() && d.parties_removed.is_empty());
        let keys: Vec<(&str, KeyKind, Change, &str)> =
            d.keys.iter().map(|k| (k.party.as_str(), k.kind, k.change, k.fingerprint.as_str())).collect();
        assert_eq!(
            keys,
            vec![
                ("hackney", KeyKind::Witness, Change::Added, f.hackney_witness_fp.as_str()),
                ("islington", KeyKind::Member, Change::Added, f.new_islington_fp.as_str()),
                ("islington", KeyKind::Member, Change::Removed, f.old_islington_fp.as_str()),
            ]
        );
        assert_eq!(d.keys[1].name, "islington/data-team");
        assert_eq!(d.agreements.len(), 2);
        assert_eq!((d.agreements[0].id.as_str(), d.agreements[0].change), ("inner-fsm", Change::Changed));
        assert_eq!(d.agreements[0].details, vec!["longest expiry: 30 → 14 days".to_owned()]);
        assert_eq!((d.agreements[1].id.as_str(), d.agreements[1].change), ("sen-transfer", Change::Added));
        assert_eq!(r.current_directory_serial, Some(2));
        // The revocation, in the version that made it and in the report's list.
        let revoked = KeyRevocation {
            serial: 2,
            party: pid("islington"),
            member: "data-team".into(),
            name: "islington/data-team".into(),
            fingerprint: f.old_islington_fp.clone(),
            revoked_at: ts("2026-01-31T17:00:00Z"),
            reason: "laptop lost".into(),
        };
        assert_eq!(d.revocations, vec![revoked.clone()]);
        assert_eq!(r.revocations, vec![revoked]);
        // A later version that keeps the revocation does not make it again.
        let mut v3 = f.dirs[1].directory.clone();
        v3.serial = 3;
        let d = diff(&f.dirs[1].directory, &v3);
        assert!(d.revocations.is_empty() && d.is_empty(), "{d:?}");
        let mut dirs = f.dirs.clone();
        dirs.push(SignedDirectory::sign(v3, &NoteSigningKey::generate("authority.example").unwrap()).unwrap());
        assert_eq!(revocations(&dirs).iter().map(|r| r.serial).collect::<Vec<_>>(), vec![2]);
    }

    #[test]
    fn filters_select_drops() {
        let (f, ids) = fixture();
        let r = build(f.input(None, Some("2026-02-01T00:00:00Z")));
        assert_eq!(r.totals.drops, 2);
        assert_eq!(flow(&r, "camden", "islington"), Flow { drops: 1, bytes: 4000 });
        assert_eq!(flow(&r, "islington", "camden"), Flow { drops: 1, bytes: 300 });
        assert!(r.expired.is_empty() && r.recalled.is_empty());
        assert_eq!(r.waiting.len(), 1);
        assert_eq!(r.directory_versions.iter().map(|v| v.serial).collect::<Vec<_>>(), vec![2]);
        assert_eq!(r.revocations.len(), 1, "revoked by serial 2, in the period");
        assert!(r.directory_versions[0].changes.is_some(), "still compared with the version before the period");

        let r = build(f.input(Some("sen-transfer"), None));
        assert_eq!(r.totals.drops, 1);
        assert_eq!(r.matrix.len(), 1);
        assert_eq!(flow(&r, "camden", "islington"), Flow { drops: 1, bytes: 4000 });
        assert_eq!(r.agreements.len(), 1);
        // The agreement's parties only, even those without traffic.
        assert_eq!(r.parties, vec![pid("camden"), pid("islington")]);
        let rows: Vec<_> = r.rows().collect();
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0].drop, ids[3].as_str());

        let r = build(f.input(Some("inner-fsm"), Some("2026-01-10T08:00:00Z")));
        assert_eq!(r.totals.drops, 4, "D2 committed exactly at `since` counts");
        assert_eq!(flow(&r, "camden", "hackney"), Flow::default());

        let r = build(f.input(None, Some("2026-03-01T00:00:00Z")));
        assert!(r.directory_versions.is_empty() && r.revocations.is_empty());

        let r = build(f.input(Some("no-such-agreement"), None));
        assert_eq!(r.totals, Totals::default());
        assert!(r.matrix.is_empty() && r.ack_overall.is_none());
        let html = render_html(&r);
        assert!(html.contains("No drops in the selected period."));
    }

    #[test]
    fn json_rows_carry_the_csv_columns_and_values() {
        let (f, _) = fixture();
        let r = build(f.input(None, None));
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("report.csv");
        write_csv(&r, &path).unwrap();
        let csv_rows: Vec<csv::StringRecord> =
            csv::Reader::from_path(&path).unwrap().records().map(Result::unwrap).collect();
        let mut out = Vec::new();
        write_json_lines(&r, &mut out).unwrap();
        let text = String::from_utf8(out).unwrap();
        let json_rows: Vec<serde_json::Value> = text.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
        assert_eq!(json_rows.len(), 7, "one line per drop and recipient");
        assert_eq!(json_rows.len(), csv_rows.len());
        for (j, c) in json_rows.iter().zip(&csv_rows) {
            let obj = j.as_object().unwrap();
            assert_eq!(obj.len(), CSV_HEADER.len(), "{j}");
            for (i, column) in CSV_HEADER.iter().enumerate() {
                let cell = match &obj[*column] {
                    serde_json::Value::Null => String::new(),
                    serde_json::Value::String(s) => s.clone(),
                    serde_json::Value::Number(n) if *column == "hours_to_acknowledge" => {
                        format!("{:.2}", n.as_f64().unwrap())
                    }
                    other => other.to_string(),
                };
                assert_eq!(cell, c[i], "column {column} of {j}");
            }
        }
        assert!(json_rows.iter().any(|j| j["ciphertext_bytes"].is_u64() && j["hours_to_acknowledge"].is_f64()));
        assert!(json_rows.iter().any(|j| j["acknowledged"].is_null() && j["delivery"] == NOT_DELIVERED));
    }

    #[test]
    fn csv_rows_round_trip() {
        let (f, ids) = fixture();
        let r = build(f.input(None, None));
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out/report.csv");
        write_csv(&r, &path).unwrap();
        let mut rd = csv::Reader::from_path(&path).unwrap();
        assert_eq!(rd.headers().unwrap().iter().collect::<Vec<_>>(), CSV_HEADER.to_vec());
        let rows: Vec<csv::StringRecord> = rd.records().map(Result::unwrap).collect();
        assert_eq!(rows.len(), 7, "one row per drop and recipient");
        let find = |drop: &DropId, to: &str| {
            rows.iter().find(|r| &r[0] == drop.as_str() && &r[3] == to).unwrap_or_else(|| panic!("{drop} {to}"))
        };
        let row = find(&ids[0], "hackney");
        assert_eq!(
            row.iter().collect::<Vec<_>>(),
            vec![
                ids[0].as_str(),
                "inner-fsm",
                "camden",
                "hackney",
                "1000",
                "2026-01-05T10:00:00Z",
                "2026-01-06T10:00:00Z",
                "2026-01-06T14:00:00Z",
                "28.00",
                "acknowledged",
                "2026-01-06T14:00:00Z",
                "delivered",
                "",
                "delivered",
                "camden/data-team",
                &f.keys["camden"].signing.verifier().fingerprint(),
                "hackney/data-team",
                &f.keys["hackney"].signing.verifier().fingerprint(),
            ]
        );
        let row = find(&ids[1], "camden");
        assert_eq!((&row[6], &row[7], &row[8], &row[9]), ("", "", "", "expired_undelivered"));
        assert_eq!(
            row.iter().skip(10).collect::<Vec<_>>(),
            vec![
                "2026-01-24T08:00:00Z",
                "expired",
                "",
                "NOT DELIVERED",
                "islington/data-team",
                &f.old_islington_fp,
                "",
                ""
            ]
        );
        let row = find(&ids[2], "camden");
        assert_eq!(&row[9], "recalled");
        assert_eq!(
            row.iter().skip(10).take(4).collect::<Vec<_>>(),
            vec!["2026-01-12T10:00:00Z", "recalled", "hackney/data-team", "recalled"]
        );
        assert_eq!(
            row.iter().skip(14).collect::<Vec<_>>(),
            vec!["hackney/data-team", &f.keys["hackney"].signing.verifier().fingerprint(), "", ""]
        );
        assert_eq!(&find(&ids[3], "islington")[8], "6.00");
        let row = find(&ids[4], "camden");
        assert_eq!((&row[6], &row[9]), ("2026-02-10T10:00:00Z", "waiting"));
        assert_eq!(row.iter().skip(10).take(4).collect::<Vec<_>>(), vec!["", "", "", "pending"]);
        assert_eq!(&row[15], &f.new_islington_fp, "D5 is signed after the key was replaced");
        // No temporary files left behind.
        assert_eq!(std::fs::read_dir(path.parent().unwrap()).unwrap().count(), 1);
    }

    #[test]
    fn html_is_self_contained_and_escaped() {
        let (f, _) = fixture();
        let r = build(f.input(None, None));
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("report.html");
        write_html(&r, &path).unwrap();
        let html = std::fs::read_to_string(&path).unwrap();
        assert!(html.starts_with("<!DOCTYPE html>"));
        assert!(html.contains("<html lang=\"en-GB\">"));
        assert!(html.contains("<title>Transfer log report — hub.example/log</title>"));
        for name in ["Camden", "Islington", "Hackney &lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;"] {
            assert!(html.contains(name), "{name} missing");
        }
        assert!(!html.contains("<script"), "the party name must be escaped");
        assert!(!html.contains("alert(\"x\")"));
        // No external assets: only the SVG namespace URI, never a fetched URL.
        let without_ns = html.replace("xmlns=\"http://www.w3.org/2000/svg\"", "");
        assert!(!without_ns.contains("http://") && !without_ns.contains("https://"));
        assert!(!html.contains("src=") && !html.contains("href=") && !html.contains("@import"));
        assert!(!html.contains("url(http") && !html.contains("<link"));
        // The charts and tables are there, with accessible names.
        assert!(html.contains("id=\"matrix\"") && html.contains("<title id=\"matrix-title\">"));
        assert!(html.contains("id=\"agreements\"") && html.contains("id=\"ack-histogram\""));
        assert!(html.contains("Camden → Islington: 3 drops, 5.6 KiB"));
        assert!(html.contains("<th scope=\"col\">"));
        assert!(html.contains("Verified against checkpoint"));
        assert!(html.contains(&f.new_islington_fp) && html.contains(&f.old_islington_fp));
        // The expired drop's recipient is NOT DELIVERED; the recall names its member.
        assert!(html.contains("NOT DELIVERED</span>"));
        assert!(html.contains("<th scope=\"col\">Recalled (by)</th>"));
        assert!(html.contains(
            "2026-01-12 10:00</span><br><span class=\"id\">by</span> <span class=\"mono nowrap\">hackney/data-team</span>"
        ));
        assert!(html.contains("None: no agreement ended while a drop under it waited."));
        // The revocation, with the serial that made it.
        assert!(html.contains("Revoked keys</h3>") && html.contains("laptop lost"));
        assert!(html.contains("✕ key revoked</span> <span class=\"mono\">islington/data-team</span>"));
        assert!(html.contains("@media print"));
        // Balanced SVGs and one document.
        assert_eq!(html.matches("<svg").count(), html.matches("</svg>").count());
        assert_eq!(html.matches("<html").count(), 1);
    }

    /// A drop whose agreement ended before one of its two recipients
    /// acknowledged: that recipient is NOT DELIVERED, the other delivered.
    #[test]
    fn agreement_ended_drops_show_who_was_not_delivered() {
        let (mut f, _) = fixture();
        let d7 = f.commit("camden", &["islington", "hackney"], "inner-fsm", 900, "2026-02-12T09:00:00Z");
        f.fetch(&d7, "islington", "2026-02-12T10:00:00Z");
        f.ack(&d7, "islington", "2026-02-12T11:00:00Z");
        f.delete(&d7, DeletionReason::AgreementEnded, "2026-02-20T00:00:00Z");
        let r = build(f.input(None, None));
        assert_eq!((r.totals.agreement_ended_undelivered, r.totals.expired_undelivered), (1, 1));
        assert_eq!(agreement_totals(&r, "inner-fsm").agreement_ended_undelivered, 1);
        assert_eq!(r.agreement_ended.len(), 1);
        let e = &r.agreement_ended[0];
        assert_eq!((e.drop.as_str(), &e.sender, e.deleted), (d7.as_str(), &pid("camden"), ts("2026-02-20T00:00:00Z")));
        assert_eq!(e.unacknowledged, vec![pid("hackney")]);
        assert_eq!(e.recall, None);
        assert_eq!(r.waiting.len(), 1, "D5 only");

        let rows: Vec<DeliveryRow> = r.rows().filter(|row| row.drop == d7.as_str()).collect();
        let outcomes: Vec<(&str, &str, &str)> =
            rows.iter().map(|row| (row.recipient.as_str(), row.outcome.as_str(), row.outcome.delivery())).collect();
        assert_eq!(
            outcomes,
            vec![
                ("islington", "acknowledged", "delivered"),
                ("hackney", "agreement_ended_undelivered", "NOT DELIVERED"),
            ]
        );
        assert!(
            rows.iter().all(|row| row.deleted == Some((ts("2026-02-20T00:00:00Z"), DeletionReason::AgreementEnded)))
        );

        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("report.csv");
        write_csv(&r, &path).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        let hackney = text.lines().find(|l| l.starts_with(d7.as_str()) && l.contains(",hackney,")).unwrap();
        let camden_key = f.keys["camden"].signing.verifier().fingerprint();
        assert!(
            hackney.ends_with(&format!(
                ",agreement_ended_undelivered,2026-02-20T00:00:00Z,agreement_ended,,NOT DELIVERED,camden/data-team,{camden_key},,"
            )),
            "{hackney}"
        );

        let html = render_html(&r);
        assert!(html.contains("Deleted as their agreement ended</h3>"));
        let section = &html[html.find("Deleted as their agreement ended</h3>").unwrap()..];
        let table = &section[..section.find("</table>").unwrap()];
        assert!(table.contains(d7.as_str()));
        assert!(table.contains(
            "<li><span title=\"hackney\">Hackney &lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;</span> \
             <span class=\"pill bad\">NOT DELIVERED</span></li>"
        ));
        assert!(!table.contains("title=\"islington\""), "islington acknowledged: {table}");
        assert!(html.contains("<th scope=\"col\" class=\"num\">Agreement ended</th>"));
    }

    #[test]
    fn summaries_stay_compact() {
        // One summary per drop, not per entry: deleted drops leave the index.
        let (f, _) = fixture();
        let mut b = Builder::default();
        for (i, e) in f.entries.iter().cloned().enumerate() {
            b.entry(i as u64, e, None, Period(None, None));
        }
        assert_eq!(b.drops.len(), 6);
        assert_eq!(b.live.len(), 1, "only the waiting drop stays indexed");
        assert!(std::mem::size_of::<DropSummary>() <= 160, "{}", std::mem::size_of::<DropSummary>());
    }

    #[test]
    fn small_helpers() {
        assert_eq!(escape("a<b>&\"'"), "a&lt;b&gt;&amp;&quot;&#39;");
        assert_eq!(count_text(1234567), "1,234,567");
        assert_eq!(compact_count(12_345), "12k");
        assert_eq!(percent(1, 3), "33.3%");
        assert_eq!(percent(2, 2), "100%");
        assert_eq!(percent(999_999, 1_000_000), "99.9%");
        assert_eq!(nice_step(7), 2);
        assert_eq!(nice_step(1), 1);
        assert_eq!(nice_step(230), 50);
        assert_eq!(truncate("abcdef", 4), "abc…");
        assert_eq!(bin_of(0.5), 0);
        assert_eq!(bin_of(24.0), 4);
        assert_eq!(bin_of(1000.0), 8);
        assert_eq!(blue(0.0), "#f7fbff");
        assert_eq!(blue(1.0), "#08306b");
    }
}
