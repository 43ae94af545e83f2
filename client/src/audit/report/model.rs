//! The IG report's model: plain data that [`super::build`] fills from a
//! verified log and the CSV, JSON and HTML writers read.

use std::collections::BTreeMap;

use jiff::Timestamp;
use sealdrop_log::entry::{DeletionReason, LogEntry};
use sealdrop_proto::age_keys::{self, KeyKind};
use sealdrop_proto::directory::SignedDirectory;
use sealdrop_proto::drop::EncryptedTo;
use sealdrop_proto::ids::PartyId;

use super::directory_diff::{DirectoryVersion, KeyRevocation};
use crate::audit::signers::{KeyIx, KeyUse, SignerKey};
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
    /// Drops whose every key was post-quantum ([`Encryption::PostQuantum`]):
    /// the share of drops safe from "harvest now, decrypt later".
    pub post_quantum: u64,
}

/// What a drop was encrypted to, by kind of key, from its manifest's
/// `encrypted_to` (the hub checked the ciphertext's header against it at
/// commit): whether it can be harvested now and decrypted later by a
/// quantum computer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Encryption {
    /// Every key is post-quantum (`age1pq1...`, ML-KEM-768 + X25519).
    PostQuantum,
    /// Every key is classic X25519 (`age1...`).
    Classic,
    /// Every key is held by an age plugin (a YubiKey, a TPM): the log does
    /// not say which algorithm it uses, so it does not count as post-quantum.
    Plugin,
    /// Keys of different kinds (classic and plugin keys: age never mixes
    /// post-quantum keys with others, and a drop is post-quantum only when
    /// every key is).
    Mixed,
    /// No key, or one the report cannot read (none in a log the hub kept).
    Unknown,
}

impl Encryption {
    /// The kind of the keys a manifest lists in `encrypted_to`.
    pub fn of(encrypted_to: &[EncryptedTo]) -> Encryption {
        let mut kinds = encrypted_to.iter().map(|e| key_kind(&e.age_recipient));
        let Some(first) = kinds.next() else { return Encryption::Unknown };
        kinds.fold(first, |all, next| match (all, next) {
            (Encryption::Unknown, _) | (_, Encryption::Unknown) => Encryption::Unknown,
            (a, b) if a == b => a,
            _ => Encryption::Mixed,
        })
    }

    /// The CSV word.
    pub fn as_str(self) -> &'static str {
        match self {
            Encryption::PostQuantum => "post_quantum",
            Encryption::Classic => "classic",
            Encryption::Plugin => "plugin",
            Encryption::Mixed => "mixed",
            Encryption::Unknown => "unknown",
        }
    }

    /// The words the HTML page shows beside the drop.
    pub fn label(self) -> &'static str {
        match self {
            Encryption::PostQuantum => "post-quantum",
            Encryption::Classic => "classic",
            Encryption::Plugin => "plugin key",
            Encryption::Mixed => "mixed keys",
            Encryption::Unknown => "keys unknown",
        }
    }
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
    /// What kind of keys it was encrypted to.
    pub encryption: Encryption,
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
    /// What kind of keys it was encrypted to.
    pub encryption: Encryption,
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

/// The kind of one age recipient ([`age_keys::kind_of`]).
fn key_kind(age_recipient: &str) -> Encryption {
    match age_keys::kind_of(age_recipient) {
        Some(KeyKind::PostQuantum) => Encryption::PostQuantum,
        Some(KeyKind::Classic) => Encryption::Classic,
        Some(KeyKind::Plugin) => Encryption::Plugin,
        None => Encryption::Unknown,
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
    /// What kind of keys the drop was encrypted to (the same on each of its rows).
    pub encryption: Encryption,
}

/// The report: plain data, ready for [`write_csv`](super::write_csv) and [`write_html`](super::write_html).
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
    /// One compact summary per selected drop, for [`Report::rows`].
    pub(super) drops: Vec<DropSummary>,
    /// The keys the summaries' key indexes point to.
    pub(super) signer_keys: Vec<SignerKey>,
    /// The party ids the summaries' party indexes point to.
    pub(super) party_ids: Vec<PartyId>,
    /// The agreement ids the summaries' agreement indexes point to.
    pub(super) agreement_ids: Vec<String>,
    /// The member keys the summaries' recall indexes point to.
    pub(super) recall_keys: Vec<String>,
}

/// One drop, compactly: ids interned, times as timestamps, no documents.
#[derive(Debug)]
pub(super) struct DropSummary {
    pub(super) id: [u8; 28],
    pub(super) log_index: u64,
    pub(super) sender: u32,
    pub(super) agreement: u32,
    pub(super) bytes: u64,
    pub(super) committed: Timestamp,
    pub(super) expires: Timestamp,
    pub(super) deleted: Option<(Timestamp, DeletionReason)>,
    /// When it was recalled, and by which member key (interned).
    pub(super) recalled: Option<(Timestamp, u32)>,
    /// The key that signed its manifest.
    pub(super) manifest_key: KeyIx,
    /// What kind of keys it was encrypted to.
    pub(super) encryption: Encryption,
    pub(super) recipients: Box<[RecipientState]>,
}

#[derive(Debug)]
pub(super) struct RecipientState {
    pub(super) party: u32,
    pub(super) fetched: Option<Timestamp>,
    pub(super) acknowledged: Option<Timestamp>,
    /// The key that signed its receipt.
    pub(super) receipt_key: KeyIx,
}

/// What a whole drop came to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum DropOutcome {
    Acknowledged,
    Waiting,
    ExpiredUndelivered,
    AgreementEndedUndelivered,
    Recalled,
    Other,
}

impl DropSummary {
    pub(super) fn id(&self) -> &str {
        std::str::from_utf8(&self.id).unwrap_or("?")
    }

    pub(super) fn all_acknowledged(&self) -> bool {
        self.recipients.iter().all(|r| r.acknowledged.is_some())
    }

    pub(super) fn outcome(&self) -> DropOutcome {
        match (self.deleted.map(|d| d.1), self.all_acknowledged()) {
            (Some(DeletionReason::Recalled), _) => DropOutcome::Recalled,
            (_, true) => DropOutcome::Acknowledged,
            (None, false) => DropOutcome::Waiting,
            (Some(DeletionReason::Expired), false) => DropOutcome::ExpiredUndelivered,
            (Some(DeletionReason::AgreementEnded), false) => DropOutcome::AgreementEndedUndelivered,
            (Some(DeletionReason::Delivered), false) => DropOutcome::Other,
        }
    }

    pub(super) fn recipient_outcome(&self, r: &RecipientState) -> Outcome {
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

pub(super) fn hours_between(from: Timestamp, to: Timestamp) -> f64 {
    (to.duration_since(from).as_secs_f64() / 3600.0).max(0.0)
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
                encryption: d.encryption,
            })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn to(recipients: &[&str]) -> Vec<EncryptedTo> {
        recipients
            .iter()
            .enumerate()
            .map(|(i, r)| EncryptedTo { key: format!("camden/m{i}"), age_recipient: (*r).to_owned() })
            .collect()
    }

    #[test]
    fn a_drop_is_post_quantum_only_when_every_key_is() {
        let pq = || age_keys::AgeIdentity::generate().to_public().unwrap().to_string();
        let classic = || age_keys::AgeIdentity::generate_classic().to_public().unwrap().to_string();
        // age-plugin-yubikey's example recipient (a P-256 key on a YubiKey).
        let plugin = "age1yubikey1q2w7u3vpya839jxxuq8g0sedh3d740d4xvn639sqhr95ejj8vu3hyfumptt";
        let (pq1, pq2, c1, c2) = (pq(), pq(), classic(), classic());

        assert_eq!(Encryption::of(&to(&[&pq1])), Encryption::PostQuantum);
        assert_eq!(Encryption::of(&to(&[&pq1, &pq2])), Encryption::PostQuantum);
        assert_eq!(Encryption::of(&to(&[&c1, &c2])), Encryption::Classic);
        assert_eq!(Encryption::of(&to(&[plugin])), Encryption::Plugin);
        assert_eq!(Encryption::of(&to(&[&c1, plugin])), Encryption::Mixed);
        // One classic key among post-quantum ones makes the drop harvestable.
        assert_eq!(Encryption::of(&to(&[&pq1, &c1])), Encryption::Mixed);
        assert_eq!(Encryption::of(&to(&[])), Encryption::Unknown);
        assert_eq!(Encryption::of(&to(&[&pq1, "age1notakey"])), Encryption::Unknown);
        assert_eq!(
            [Encryption::PostQuantum, Encryption::Classic, Encryption::Plugin, Encryption::Mixed, Encryption::Unknown]
                .map(Encryption::as_str),
            ["post_quantum", "classic", "plugin", "mixed", "unknown"]
        );
    }
}
