//! Log entries: one per state change, as compact JSON (at most 65,535 bytes,
//! so every entry fits a C2SP tlog-tiles entry bundle).
//!
//! Events a party causes carry that party's own signature (the sender's
//! manifest, the recipient's receipt, the recipient's signed download
//! request); events the hub causes carry a statement signed with the hub's
//! log key. Entries hold party ids, key names, agreement ids, hashes, sizes
//! and times, never file names or content (the hub never has them).

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use sealdrop_proto::ids::{DropId, PartyId};
use sealdrop_proto::note::SignedDoc;

/// The largest entry the tiles format can carry.
pub const MAX_ENTRY_BYTES: usize = 65_535;

/// One log entry.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum LogEntry {
    /// Something the hub did, in a statement signed with the hub's log key
    /// (signed-note text of a [`HubStatement`]).
    Hub {
        /// The signed statement.
        statement: String,
    },
    /// A drop became visible to its recipients.
    DropCommitted {
        /// When the hub committed it.
        committed: Timestamp,
        /// The sender's signed manifest (signed-note text).
        manifest: String,
    },
    /// A recipient downloaded a drop's ciphertext.
    DropFetched {
        /// The drop.
        drop: DropId,
        /// The downloading party.
        party: PartyId,
        /// When the hub served it.
        fetched: Timestamp,
        /// The recipient member's signed request for the content.
        request: SignedRequest,
    },
    /// A recipient acknowledged a drop with a signed receipt.
    DropAcknowledged {
        /// When the hub recorded it.
        acknowledged: Timestamp,
        /// The recipient's signed receipt (signed-note text).
        receipt: String,
    },
    /// The sender recalled a drop before any recipient acknowledged it. The
    /// hub's `drop_deleted` statement (reason `recalled`) follows at once.
    DropRecalled {
        /// The drop.
        drop: DropId,
        /// The sending party that recalled it.
        party: PartyId,
        /// When the hub recalled it.
        recalled: Timestamp,
        /// The sender member's signed request (`POST /v1/drops/<id>/recall`).
        request: SignedRequest,
    },
}

/// A party's signed HTTP request, kept as evidence that the party itself
/// asked for something (see `sealdrop_proto::request`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SignedRequest {
    /// HTTP method.
    pub method: String,
    /// Path and query as signed.
    pub path: String,
    /// Member key name.
    pub key: String,
    /// Unix seconds.
    pub time: i64,
    /// Single-use nonce.
    pub nonce: String,
    /// Body hash or `UNSIGNED`.
    pub content: String,
    /// Base64 signature.
    pub signature: String,
}

impl SignedRequest {
    /// The request's authentication headers, for verification.
    pub fn auth(&self) -> sealdrop_proto::request::RequestAuth {
        sealdrop_proto::request::RequestAuth {
            key: self.key.clone(),
            time: self.time,
            nonce: self.nonce.clone(),
            content: self.content.clone(),
            signature: self.signature.clone(),
        }
    }

    /// Wraps verified request headers with the method and path they covered.
    pub fn from_auth(auth: &sealdrop_proto::request::RequestAuth, method: &str, path: &str) -> Self {
        Self {
            method: method.to_owned(),
            path: path.to_owned(),
            key: auth.key.clone(),
            time: auth.time,
            nonce: auth.nonce.clone(),
            content: auth.content.clone(),
            signature: auth.signature.clone(),
        }
    }
}

/// Why the hub deleted a drop's ciphertext.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeletionReason {
    /// Every recipient party acknowledged.
    Delivered,
    /// The expiry passed first.
    Expired,
    /// The sender recalled it (a `drop_recalled` entry comes just before).
    Recalled,
    /// Its agreement ended (its end date passed or a new directory version
    /// ended it or dropped it) while the drop still waited.
    AgreementEnded,
}

/// What the hub states in its own name, signed with its log key.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case", deny_unknown_fields)]
pub enum HubStatement {
    /// The hub started enforcing a directory version (its signed-note text
    /// hashes to `sha256`; the authority's signature is checked on the
    /// directory itself, kept beside the log).
    DirectoryPublished {
        /// When.
        time: Timestamp,
        /// The directory's serial.
        serial: u64,
        /// SHA-256 of the signed directory note, hex.
        sha256: String,
    },
    /// The hub deleted a drop's ciphertext from disk.
    DropDeleted {
        /// When.
        time: Timestamp,
        /// The drop.
        drop: DropId,
        /// Why.
        reason: DeletionReason,
    },
}

impl SignedDoc for HubStatement {
    const TYPE: &'static str = "sealdrop/hub-statement/v1";
    const WHAT: &'static str = "hub statement";
}

/// Why an entry could not be read.
#[derive(Debug, thiserror::Error)]
pub enum EntryError {
    #[error("the log entry is {0} bytes, more than the {MAX_ENTRY_BYTES} a tile entry can hold")]
    TooLarge(usize),
    #[error("the log entry is not valid: {0}")]
    Invalid(String),
}

/// What an entry records about a drop, to find a drop's entries: the hub
/// keeps an index of them, and a client checks that an entry the hub
/// pointed it to is about the drop and party it claims.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DropEvent {
    /// The drop.
    pub drop: DropId,
    /// What happened to it.
    pub kind: DropEventKind,
    /// Who did it: the sender for a commit or recall, the recipient for a
    /// download or acknowledgement; `None` for the hub's deletion.
    pub party: Option<PartyId>,
}

/// The kinds of [`DropEvent`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DropEventKind {
    /// `drop_committed`.
    Committed,
    /// `drop_fetched`.
    Fetched,
    /// `drop_acknowledged`.
    Acknowledged,
    /// `drop_recalled`.
    Recalled,
    /// The hub's `drop_deleted` statement.
    Deleted,
}

impl DropEventKind {
    /// Every kind.
    pub const ALL: [DropEventKind; 5] = [
        DropEventKind::Committed,
        DropEventKind::Fetched,
        DropEventKind::Acknowledged,
        DropEventKind::Recalled,
        DropEventKind::Deleted,
    ];

    /// The kind's name (`committed`, `fetched`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            DropEventKind::Committed => "committed",
            DropEventKind::Fetched => "fetched",
            DropEventKind::Acknowledged => "acknowledged",
            DropEventKind::Recalled => "recalled",
            DropEventKind::Deleted => "deleted",
        }
    }

    /// The kind named `name`.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == name)
    }
}

impl LogEntry {
    /// What this entry records about a drop, if anything. Reads the signed
    /// documents it carries without checking their signatures (whoever
    /// relies on the entry checks them); `None` for a directory
    /// publication or a document that does not parse.
    pub fn drop_event(&self) -> Option<DropEvent> {
        use sealdrop_proto::drop::{Manifest, Receipt};
        use sealdrop_proto::note::peek_doc;
        let (drop, kind, party) = match self {
            LogEntry::DropCommitted { manifest, .. } => {
                let m = peek_doc::<Manifest>(manifest).ok()?;
                (m.drop, DropEventKind::Committed, Some(m.sender))
            }
            LogEntry::DropFetched { drop, party, .. } => (drop.clone(), DropEventKind::Fetched, Some(party.clone())),
            LogEntry::DropAcknowledged { receipt, .. } => {
                let r = peek_doc::<Receipt>(receipt).ok()?;
                (r.drop, DropEventKind::Acknowledged, Some(r.recipient))
            }
            LogEntry::DropRecalled { drop, party, .. } => (drop.clone(), DropEventKind::Recalled, Some(party.clone())),
            LogEntry::Hub { statement } => match peek_doc::<HubStatement>(statement).ok()? {
                HubStatement::DropDeleted { drop, .. } => (drop, DropEventKind::Deleted, None),
                HubStatement::DirectoryPublished { .. } => return None,
            },
        };
        Some(DropEvent { drop, kind, party })
    }

    /// When the entry says it happened: the time whose order `audit
    /// verify` checks (entries' times never go back). Reads a hub
    /// statement without checking its signature; `None` if it does not parse.
    pub fn time(&self) -> Option<Timestamp> {
        match self {
            LogEntry::DropCommitted { committed, .. } => Some(*committed),
            LogEntry::DropFetched { fetched, .. } => Some(*fetched),
            LogEntry::DropAcknowledged { acknowledged, .. } => Some(*acknowledged),
            LogEntry::DropRecalled { recalled, .. } => Some(*recalled),
            LogEntry::Hub { statement } => match sealdrop_proto::note::peek_doc::<HubStatement>(statement).ok()? {
                HubStatement::DirectoryPublished { time, .. } | HubStatement::DropDeleted { time, .. } => Some(time),
            },
        }
    }

    /// The entry's bytes as stored in the log.
    pub fn to_bytes(&self) -> Result<Vec<u8>, EntryError> {
        let bytes = serde_json::to_vec(self).map_err(|e| EntryError::Invalid(e.to_string()))?;
        if bytes.len() > MAX_ENTRY_BYTES {
            return Err(EntryError::TooLarge(bytes.len()));
        }
        Ok(bytes)
    }

    /// Parses an entry's bytes.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, EntryError> {
        if bytes.len() > MAX_ENTRY_BYTES {
            return Err(EntryError::TooLarge(bytes.len()));
        }
        serde_json::from_slice(bytes).map_err(|e| EntryError::Invalid(e.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sealdrop_proto::keys::NoteSigningKey;
    use sealdrop_proto::note::{open_doc, sign_doc};

    #[test]
    fn entries_round_trip_and_are_bounded() {
        let hub = NoteSigningKey::generate("hub.example").unwrap();
        let st = HubStatement::DropDeleted {
            time: Timestamp::UNIX_EPOCH,
            drop: DropId::random(),
            reason: DeletionReason::Delivered,
        };
        let e = LogEntry::Hub { statement: sign_doc(&st, &hub) };
        let bytes = e.to_bytes().unwrap();
        assert!(!bytes.contains(&b'\n'), "entries are one line");
        assert_eq!(LogEntry::from_bytes(&bytes).unwrap(), e);
        let LogEntry::Hub { statement } = e else { unreachable!() };
        assert_eq!(open_doc::<HubStatement>(&statement, &[hub.verifier()]).unwrap().doc, st);
        let huge = LogEntry::DropCommitted { committed: Timestamp::UNIX_EPOCH, manifest: "x".repeat(70_000) };
        assert!(matches!(huge.to_bytes(), Err(EntryError::TooLarge(_))));
        assert!(LogEntry::from_bytes(b"{\"type\":\"nope\"}").is_err());
    }

    #[test]
    fn every_entry_of_a_generated_log_has_a_time_that_never_goes_back() {
        let log = crate::testlog::generate(3, 34);
        let times: Vec<Timestamp> =
            (0..log.entries.len()).map(|i| log.entry(i).time().expect("every entry has a time")).collect();
        assert!(times.windows(2).all(|w| w[0] <= w[1]), "{times:?}");
        let at = Timestamp::from_second(1_800_000_000).unwrap();
        let hub = NoteSigningKey::generate("hub.example").unwrap();
        let st = HubStatement::DropDeleted { time: at, drop: DropId::random(), reason: DeletionReason::Expired };
        assert_eq!(LogEntry::Hub { statement: sign_doc(&st, &hub) }.time(), Some(at));
        assert_eq!(LogEntry::Hub { statement: "not a note".into() }.time(), None);
    }

    #[test]
    fn every_drop_entry_names_its_drop_kind_and_party() {
        let log = crate::testlog::generate(3, 34);
        let mut kinds = std::collections::HashSet::new();
        for i in 0..log.entries.len() {
            let entry = log.entry(i);
            let Some(event) = entry.drop_event() else {
                assert!(matches!(entry, LogEntry::Hub { .. }), "entry {i} names no drop: {entry:?}");
                continue;
            };
            kinds.insert(event.kind);
            assert_eq!(DropEventKind::from_name(event.kind.as_str()), Some(event.kind));
            match (&entry, &event.party) {
                (LogEntry::DropFetched { drop, party, .. }, Some(p)) => assert_eq!((drop, party), (&event.drop, p)),
                (LogEntry::Hub { .. }, None) => assert_eq!(event.kind, DropEventKind::Deleted),
                (_, Some(_)) => {}
                (_, None) => panic!("entry {i} has no party: {entry:?}"),
            }
        }
        assert_eq!(kinds.len(), DropEventKind::ALL.len(), "{kinds:?}");
        let unparsable = LogEntry::DropCommitted { committed: Timestamp::UNIX_EPOCH, manifest: "junk".into() };
        assert_eq!(unparsable.drop_event(), None);
    }
}
