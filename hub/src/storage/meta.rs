//! The hub's metadata (settings, directory versions, drops, recipients'
//! progress, seen nonces) behind a narrow, synchronous interface, so a
//! PostgreSQL store can replace SQLite later without touching handlers.
//!
//! Methods are synchronous because SQLite is; async handlers call them
//! through `tokio::task::spawn_blocking`. Every method that changes more than
//! one row does so in one transaction, and conditional updates carry their
//! condition (`state = 'open'`, `acknowledged IS NULL`) in the statement
//! itself, so concurrent requests cannot both win.

use sealdrop_proto::api::DropState;
use sealdrop_proto::ids::{DropId, MemberName, PartyId};

/// Why a metadata operation failed.
#[derive(Debug, thiserror::Error)]
pub enum MetaError {
    #[error("{0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("cannot bring the database schema up to date: {0}")]
    Migration(#[from] rusqlite_migration::Error),
    #[error("a stored value is not valid: {0}")]
    Corrupt(String),
}

/// Keys of the `settings` table.
pub mod setting {
    /// The hub's origin name.
    pub const ORIGIN: &str = "origin";
    /// The authority's signed-note verifier key.
    pub const AUTHORITY: &str = "authority";
}

/// A directory version as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredDirectory {
    /// Its serial.
    pub serial: u64,
    /// The signed note exactly as accepted.
    pub note: String,
    /// Hex SHA-256 of the note.
    pub sha256: String,
    /// When the hub accepted it (Unix seconds).
    pub accepted_at: i64,
}

/// A drop as announced by its sender.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewDrop {
    /// The hub-chosen id.
    pub id: DropId,
    /// The sending party.
    pub sender: PartyId,
    /// The member that created it.
    pub sender_member: MemberName,
    /// The agreement it travels under.
    pub agreement: String,
    /// Creation time (Unix seconds).
    pub created: i64,
    /// Expiry (Unix seconds).
    pub expires: i64,
    /// The recipient parties, in the order the sender listed them.
    pub recipients: Vec<PartyId>,
}

/// What the hub received for a drop.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContentDigest {
    /// Hex SHA-256.
    pub sha256: String,
    /// Length in bytes.
    pub len: u64,
}

/// A drop and its recipients' progress.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DropRecord {
    /// The drop.
    pub id: DropId,
    /// The sending party.
    pub sender: PartyId,
    /// The member that created it, or after commit the member that signed the manifest.
    pub sender_member: MemberName,
    /// The agreement it travels under.
    pub agreement: String,
    /// Creation time (Unix seconds).
    pub created: i64,
    /// Expiry (Unix seconds).
    pub expires: i64,
    /// Where it is in its life.
    pub state: DropState,
    /// The finished upload, if any (before commit).
    pub upload: Option<ContentDigest>,
    /// The committed ciphertext (after commit).
    pub content: Option<ContentDigest>,
    /// When it was committed (Unix seconds).
    pub committed: Option<i64>,
    /// The sender's signed manifest (after commit).
    pub manifest: Option<String>,
    /// Per-recipient progress, in the order the sender listed them.
    pub recipients: Vec<RecipientRecord>,
}

impl DropRecord {
    /// The progress of `party`, if it is a recipient.
    pub fn recipient(&self, party: &PartyId) -> Option<&RecipientRecord> {
        self.recipients.iter().find(|r| &r.party == party)
    }
}

/// One recipient party's progress with a drop.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecipientRecord {
    /// The recipient party.
    pub party: PartyId,
    /// When it first downloaded the ciphertext (Unix seconds).
    pub fetched: Option<i64>,
    /// When it acknowledged (Unix seconds).
    pub acknowledged: Option<i64>,
    /// The member whose receipt acknowledged it.
    pub ack_member: Option<MemberName>,
    /// The signed receipt.
    pub receipt: Option<String>,
}

/// What the sender committed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommitRecord {
    /// The member that signed the manifest.
    pub sender_member: MemberName,
    /// The signed manifest.
    pub manifest: String,
    /// The ciphertext, which must equal the recorded upload.
    pub content: ContentDigest,
    /// Commit time (Unix seconds).
    pub committed: i64,
}

/// A recipient's acknowledgement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AckRecord {
    /// The acknowledging party.
    pub party: PartyId,
    /// The member that signed the receipt.
    pub member: MemberName,
    /// The signed receipt.
    pub receipt: String,
    /// When (Unix seconds).
    pub at: i64,
}

/// The result of [`MetaStore::acknowledge`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AckOutcome {
    /// Recorded; `delivered` when it was the last recipient to acknowledge,
    /// so the drop is now delivered and its ciphertext may be deleted.
    Recorded { delivered: bool },
    /// This party had already acknowledged; nothing changed.
    AlreadyAcknowledged,
    /// The drop is not committed (or the party is not a recipient); nothing changed.
    NotCommitted,
}

/// The hub's metadata store.
pub trait MetaStore: Send + Sync {
    /// Reads a setting.
    fn setting(&self, key: &str) -> Result<Option<String>, MetaError>;
    /// Writes a setting.
    fn set_setting(&self, key: &str, value: &str) -> Result<(), MetaError>;

    /// The directory version with the highest serial.
    fn current_directory(&self) -> Result<Option<StoredDirectory>, MetaError>;
    /// Stores a directory version; fails if the serial is already stored.
    fn insert_directory(&self, dir: &StoredDirectory) -> Result<(), MetaError>;

    /// Stores a new open drop and its recipients (one transaction).
    fn create_drop(&self, drop: &NewDrop) -> Result<(), MetaError>;
    /// A drop with its recipients.
    fn drop_record(&self, id: &DropId) -> Result<Option<DropRecord>, MetaError>;
    /// A drop's state, for start-up cleanup.
    fn drop_state(&self, id: &DropId) -> Result<Option<DropState>, MetaError>;
    /// Records (or clears, with `None`) the finished upload of an open drop.
    /// Returns `false` if the drop is not open.
    fn set_upload(&self, id: &DropId, upload: Option<&ContentDigest>) -> Result<bool, MetaError>;
    /// Commits an open drop whose recorded upload equals `commit.content`.
    /// Returns `false` (changing nothing) if the drop is not open or its
    /// upload changed.
    fn commit_drop(&self, id: &DropId, commit: &CommitRecord) -> Result<bool, MetaError>;
    /// Sets a recipient's first-fetch time if not yet set.
    fn mark_fetched(&self, id: &DropId, party: &PartyId, at: i64) -> Result<(), MetaError>;
    /// Records a recipient's receipt and, if it was the last one, marks the
    /// drop delivered (one transaction).
    fn acknowledge(&self, id: &DropId, ack: &AckRecord) -> Result<AckOutcome, MetaError>;
    /// Committed drops for `party` that it has not acknowledged and that
    /// expire after `now`, oldest commit first.
    fn inbox(&self, party: &PartyId, now: i64) -> Result<Vec<DropRecord>, MetaError>;
    /// Drops sent by `party` (optionally only `id`), newest first.
    fn sent(&self, party: &PartyId, id: Option<&DropId>) -> Result<Vec<DropRecord>, MetaError>;

    /// Records a request nonce; `false` if `(key, nonce)` was seen before.
    fn insert_nonce(&self, key: &str, nonce: &str, seen: i64) -> Result<bool, MetaError>;
    /// Forgets nonces seen before `before`; returns how many.
    fn purge_nonces(&self, before: i64) -> Result<usize, MetaError>;
}
