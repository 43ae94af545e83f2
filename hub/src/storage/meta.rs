//! The hub's metadata (settings, directory versions, drops, recipients'
//! progress, seen nonces, the transfer log) behind one narrow trait per
//! area, so a PostgreSQL store can replace SQLite later without touching
//! services or handlers; [`crate::storage::Stores`] holds one handle per
//! trait, and each may come from a different back end.
//!
//! Every method is async, and a store runs it however it must (SQLite's on
//! the blocking pool), so callers just `.await`: no caller waits on a
//! database on an async worker thread. Every method that changes more than
//! one row does so in one transaction, and conditional updates carry their
//! condition (`state = 'open'`, `acknowledged IS NULL`) in the statement
//! itself, so concurrent requests cannot both win.
//!
//! The transfer log lives here too. Every state change that the log records
//! takes its entries (`LogEntry::to_bytes()`) and the sequencer's
//! [`AppendTurn`], and appends them, their Merkle tree hashes and a
//! checkpoint the turn signed in the same transaction as the change
//! itself: a crash can never leave a change without its entry, an entry without a checkpoint, or a checkpoint
//! ahead of the entries. Appends are serialised (one writer at a time), so
//! entry indexes are dense and every checkpoint extends the previous one.

use async_trait::async_trait;
use sealdrop_proto::api::DropState;
use sealdrop_proto::ids::{DropId, MemberName, PartyId};
use tlog_tiles::Hash;

/// The log's sequencer as a store sees it while appending (see
/// [`crate::sequencer`]): the store computes the new tree head inside the
/// append's transaction and has it signed here, so it holds no key, and
/// reports when that transaction has committed, which ends the turn the
/// entries were made in before the store waits for the disk.
pub trait AppendTurn: Send + Sync {
    /// The signed checkpoint note for the tree of `size` entries with root
    /// hash `root`.
    fn sign_checkpoint(&self, size: u64, root: &Hash) -> String;
    /// Called once the append's transaction has committed, before it is made
    /// durable.
    fn committed(&self);
}

/// Why a metadata operation failed.
#[derive(Debug, thiserror::Error)]
pub enum MetaError {
    #[error("{0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("cannot bring the database schema up to date: {0}")]
    Migration(#[from] rusqlite_migration::Error),
    #[error("{}", super::postgres::error_text::describe(.0))]
    Postgres(#[from] tokio_postgres::Error),
    #[error("cannot get a PostgreSQL connection: {}", super::postgres::error_text::describe(.0))]
    PostgresPool(#[from] deadpool_postgres::PoolError),
    #[error("the PostgreSQL database is not usable: {0}")]
    PostgresConfig(String),
    #[error("a stored value is not valid: {0}")]
    Corrupt(String),
    #[error("the transfer log is inconsistent: {0}")]
    LogInconsistent(String),
    #[error(
        "refusing to append an entry of {entry} after one of {last}: the log's times must not go back \
         (an instance appended without taking the log's turn, or its turn was lost)"
    )]
    LogTimeWentBack { last: jiff::Timestamp, entry: jiff::Timestamp },
    #[error("a log entry of {0} bytes is larger than the 65,535 bytes a log entry may have")]
    LogEntryTooLarge(usize),
    #[error("the database task stopped: {0}")]
    Task(#[from] tokio::task::JoinError),
    #[error("cannot create the database {}: {source}", path.display())]
    Create { path: std::path::PathBuf, source: std::io::Error },
}

impl MetaError {
    /// Whether the database could not grow because the disk is full.
    pub fn is_storage_full(&self) -> bool {
        match self {
            Self::Sqlite(rusqlite::Error::SqliteFailure(e, _)) => e.code == rusqlite::ErrorCode::DiskFull,
            Self::Postgres(e) => e.code() == Some(&tokio_postgres::error::SqlState::DISK_FULL),
            _ => false,
        }
    }
}

/// Keys of the `settings` table.
pub mod setting {
    /// The hub's origin name.
    pub const ORIGIN: &str = "origin";
    /// The authority's signed-note verifier key.
    pub const AUTHORITY: &str = "authority";
    /// Set (by the first append, in its transaction) once the hub has
    /// started its transfer log, so an emptied log is told apart from a
    /// database that predates the log.
    pub const LOG_STARTED: &str = "log_started";
    /// Where the hub last opened kept its larger ciphertexts (`files` or
    /// `s3://bucket/prefix`), written at every open, so tools that read the
    /// data directory alone (`backup`) know whether it holds them.
    pub const BLOBS: &str = "blobs";
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
    /// The sender's idempotency key (64 lowercase hex digits, checked by the
    /// caller), unique per sending party: see [`DropStore::create_drop`].
    pub idempotency_key: Option<String>,
    /// Whether the create must be on disk before it returns. True for a
    /// create the sender is answered about (the first of three steps).
    /// False inside a drop in one request: its commit, in a later
    /// transaction, waits for a sync that covers this one too (a sync of the
    /// database covers every earlier transaction), and a request cut off
    /// before that commit is answered with nothing, so a create lost with it
    /// is never missed. One sync a small drop instead of two.
    pub durable_now: bool,
}

/// What rests on the hub for a party, from the database: see
/// [`DropStore::party_holdings`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PartyHoldings {
    /// The ciphertext bytes of its committed drops not yet deleted.
    pub committed_bytes: u64,
    /// Its open drops.
    pub open: Vec<OpenDrop>,
}

/// An open drop of a party, as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpenDrop {
    /// The drop.
    pub id: DropId,
    /// The length of its finished upload, if one is recorded.
    pub upload_len: Option<u64>,
    /// Whether an upload of it was ever started and recorded (finished or
    /// cut off); if not, it holds no bytes unless one is arriving now.
    pub upload_started: bool,
}

/// The result of [`DropStore::create_drop`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CreateOutcome {
    /// The new drop was stored. `replaced` is the uncommitted drop of the
    /// same sender party and idempotency key that was deleted (rows only) in
    /// the same transaction: its upload and blob files are the caller's to
    /// discard.
    Created { replaced: Option<DropId> },
    /// The sender party's drop with this idempotency key is committed (or
    /// further along): nothing changed, and this is that drop.
    AlreadyCommitted(Box<DropRecord>),
}

/// A drop as listed to its sender (`GET /v1/sent`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SentRecord {
    /// The drop and its recipients' progress.
    pub drop: DropRecord,
    /// The idempotency key it was created with, if any.
    pub idempotency_key: Option<String>,
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
    /// When the ciphertext was deleted (delivered, expired or recalled; Unix seconds).
    pub deleted: Option<i64>,
    /// The index of its `drop_committed` log entry.
    pub commit_index: Option<u64>,
    /// The index of the hub's `drop_deleted` log statement about it.
    pub end_index: Option<u64>,
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
    /// How many downloads of the drop by this party are logged.
    pub downloads: u64,
    /// The index of its first `drop_fetched` log entry.
    pub fetch_index: Option<u64>,
    /// The index of its `drop_acknowledged` log entry.
    pub ack_index: Option<u64>,
}

impl RecipientRecord {
    /// A recipient party that has neither downloaded nor acknowledged yet,
    /// as every recipient of a drop starts.
    pub fn waiting(party: PartyId) -> Self {
        Self {
            party,
            fetched: None,
            acknowledged: None,
            ack_member: None,
            receipt: None,
            downloads: 0,
            fetch_index: None,
            ack_index: None,
        }
    }
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
    /// The `drop_committed` log entry.
    pub log_entry: Vec<u8>,
}

/// A recipient being served a drop's ciphertext.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FetchRecord {
    /// The downloading party.
    pub party: PartyId,
    /// When (Unix seconds).
    pub at: i64,
    /// The `drop_fetched` log entry.
    pub log_entry: Vec<u8>,
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
    /// The `drop_acknowledged` log entry.
    pub log_entry: Vec<u8>,
    /// The hub's `drop_deleted` log entry, appended after `log_entry` when
    /// this is the last acknowledgement.
    pub delivered_entry: Vec<u8>,
}

/// The result of [`DropStore::acknowledge`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AckOutcome {
    /// Recorded; `delivered` when it was the last recipient to acknowledge,
    /// so the drop is now delivered and its ciphertext may be deleted;
    /// `log_index` is the index of the acknowledgement's log entry.
    Recorded { delivered: bool, log_index: u64 },
    /// This party had already acknowledged; nothing changed.
    AlreadyAcknowledged,
    /// The log holds no download of the drop by this party
    /// ([`sealdrop_log::policy::may_acknowledge`]); nothing changed.
    NotDownloaded,
    /// The drop is not committed (or the party is not a recipient); nothing changed.
    NotCommitted,
}

/// The result of [`DropStore::record_fetch`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FetchOutcome {
    /// Logged at `log_index`: serve it.
    Recorded { log_index: u64 },
    /// The drop is no longer committed (it ended meanwhile); nothing changed.
    NotCommitted,
    /// The party already made `downloads` logged downloads, the most
    /// [`sealdrop_log::policy::may_download`] allows; nothing changed.
    LimitReached { downloads: u64 },
}

/// How a committed drop ends without being delivered: see [`DropStore::end_drop`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EndRecord {
    /// [`DropState::Expired`] or [`DropState::Recalled`].
    pub state: DropState,
    /// When (Unix seconds).
    pub at: i64,
    /// The entries to append: the hub's `drop_deleted` statement, after the
    /// sender's `drop_recalled` request for a recall.
    pub log_entries: Vec<Vec<u8>>,
    /// Refuse (changing nothing) when a recipient has acknowledged: a recall.
    pub unless_acknowledged: bool,
}

/// The result of [`DropStore::end_drop`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EndOutcome {
    /// Ended; `log_index` is the index of the first appended entry.
    Ended { log_index: u64 },
    /// The drop is not committed (its state, or `None` if unknown); nothing changed.
    NotCommitted(Option<DropState>),
    /// These recipients have acknowledged, so a recall is refused; nothing changed.
    Acknowledged(Vec<RecipientRecord>),
}

/// A drop the sweeper must end: see [`DropStore::due_for_sweep`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SweepItem {
    /// The drop.
    pub id: DropId,
    /// [`DropState::Open`] (never committed) or [`DropState::Committed`].
    pub state: DropState,
    /// Its expiry (Unix seconds).
    pub expires: i64,
    /// Its agreement.
    pub agreement: String,
}

/// A signed checkpoint as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredCheckpoint {
    /// The tree size it covers.
    pub size: u64,
    /// The signed note (log signature only; cosignatures are kept apart).
    pub note: String,
}

/// The hub's settings (origin, authority key, markers such as
/// [`setting::LOG_STARTED`]): a key-value table.
#[async_trait]
pub trait SettingsStore: Send + Sync {
    /// Reads a setting.
    async fn setting(&self, key: &str) -> Result<Option<String>, MetaError>;
    /// Writes a setting.
    async fn set_setting(&self, key: &str, value: &str) -> Result<(), MetaError>;
}

/// The directory versions the hub has accepted.
#[async_trait]
pub trait DirectoryStore: Send + Sync {
    /// The directory version with the highest serial.
    async fn current_directory(&self) -> Result<Option<StoredDirectory>, MetaError>;
    /// The highest serial stored: what an instance sharing the database
    /// checks, cheaply, to learn that another accepted a newer directory.
    async fn current_serial(&self) -> Result<Option<u64>, MetaError>;
    /// Stores a directory version and appends its log entry, with the
    /// new checkpoint `turn` signs (one transaction); fails if the serial
    /// is already stored. Returns the entry's index.
    async fn insert_directory(
        &self,
        dir: &StoredDirectory,
        log_entry: &[u8],
        turn: Box<dyn AppendTurn>,
    ) -> Result<u64, MetaError>;
    /// A stored directory version.
    async fn directory(&self, serial: u64) -> Result<Option<StoredDirectory>, MetaError>;
}

/// Drops and their recipients' progress: the drop state machine's
/// conditional steps, each in one transaction (with its log entries when the
/// log records the step).
#[async_trait]
pub trait DropStore: Send + Sync {
    /// Stores a new open drop and its recipients (one transaction).
    ///
    /// With an idempotency key, the store keeps at most one drop per sender
    /// party and key (a unique constraint, so two concurrent creates cannot
    /// both insert one), and in the same transaction: if that drop is
    /// committed or later, changes nothing and returns it
    /// ([`CreateOutcome::AlreadyCommitted`]); if it is still open, deletes it
    /// and its recipients before storing `drop`, so a sender re-running an
    /// interrupted send replaces its half-finished drop instead of leaving
    /// it behind.
    async fn create_drop(&self, drop: &NewDrop) -> Result<CreateOutcome, MetaError>;
    /// The drop `party` created with idempotency `key`, if any. Lets the
    /// create handler answer a re-run of an already committed send before
    /// checking the agreement and expiry again (the data has gone already);
    /// [`DropStore::create_drop`] decides again inside its transaction.
    async fn drop_by_idempotency_key(&self, party: &PartyId, key: &str) -> Result<Option<DropRecord>, MetaError>;
    /// A drop with its recipients.
    async fn drop_record(&self, id: &DropId) -> Result<Option<DropRecord>, MetaError>;
    /// A drop's state, for start-up cleanup.
    async fn drop_state(&self, id: &DropId) -> Result<Option<DropState>, MetaError>;
    /// Records (or clears, with `None`) the finished upload of an open drop,
    /// and `at` (Unix seconds) as the time its upload was last active.
    /// Returns `false` if the drop is not open.
    async fn set_upload(&self, id: &DropId, upload: Option<&ContentDigest>, at: i64) -> Result<bool, MetaError>;
    /// When the upload of open drop `id` was last active (see
    /// [`DropStore::set_upload`]), or the drop's creation time if no
    /// activity was recorded; `None` if the drop is not open (or unknown).
    /// The sweeper removes an upload inactive for longer than the resume window.
    async fn upload_activity(&self, id: &DropId) -> Result<Option<i64>, MetaError>;
    /// Commits an open drop whose recorded upload equals `commit.content`
    /// and appends `commit.log_entry` (one transaction). Returns the entry's
    /// index, or `None` (changing nothing) if the drop is not open or its
    /// upload changed.
    async fn commit_drop(
        &self,
        id: &DropId,
        commit: &CommitRecord,
        turn: Box<dyn AppendTurn>,
    ) -> Result<Option<u64>, MetaError>;
    /// Sets a recipient's first-fetch time if not yet set, counts the
    /// download and appends `fetch.log_entry` (every time; one
    /// transaction). Changes nothing if the drop is no longer committed, so
    /// a fetch racing the sweeper or a recall is never logged after the
    /// deletion, nor when the party has made the most downloads allowed.
    async fn record_fetch(
        &self,
        id: &DropId,
        fetch: &FetchRecord,
        turn: Box<dyn AppendTurn>,
    ) -> Result<FetchOutcome, MetaError>;
    /// Ends a committed drop (expired or recalled): sets its state and
    /// deletion time and appends `end.log_entries` (one transaction). The
    /// ciphertext file is the caller's to delete afterwards.
    async fn end_drop(&self, id: &DropId, end: &EndRecord, turn: Box<dyn AppendTurn>) -> Result<EndOutcome, MetaError>;
    /// Deletes the rows of a drop that was never committed (nobody but its
    /// sender ever knew of it, so the log has nothing to record); `false` if
    /// it is not open. Its files are the caller's to delete.
    async fn forget_open_drop(&self, id: &DropId) -> Result<bool, MetaError>;
    /// Up to `limit` drops the sweeper must end, soonest expiry first: open
    /// or committed drops whose expiry is at or before `now`, and committed
    /// drops whose agreement is not among `in_force` (the agreements of the
    /// current directory in force now).
    async fn due_for_sweep(&self, now: i64, in_force: &[String], limit: usize) -> Result<Vec<SweepItem>, MetaError>;
    /// Records a recipient's receipt and appends `ack.log_entry`; if it was
    /// the last one, also marks the drop delivered and appends
    /// `ack.delivered_entry` (one transaction). Refused (changing nothing)
    /// unless the log holds a download of the drop by that party.
    async fn acknowledge(
        &self,
        id: &DropId,
        ack: &AckRecord,
        turn: Box<dyn AppendTurn>,
    ) -> Result<AckOutcome, MetaError>;
    /// Committed drops for `party` that it has not acknowledged and that
    /// expire after `now`, oldest commit first.
    async fn inbox(&self, party: &PartyId, now: i64) -> Result<Vec<DropRecord>, MetaError>;
    /// Drops sent by `party` (optionally only `id`), newest first, with the
    /// idempotency keys they were created with (so a sender can match them
    /// to what it sent).
    async fn sent(&self, party: &PartyId, id: Option<&DropId>) -> Result<Vec<SentRecord>, MetaError>;
    /// What `party` has the hub hold as a sender, for its quotas: the bytes
    /// of its committed drops not yet deleted, and its open drops.
    async fn party_holdings(&self, party: &PartyId) -> Result<PartyHoldings, MetaError>;
}

/// The request nonces seen recently, so a signed request is served once.
#[async_trait]
pub trait NonceStore: Send + Sync {
    /// Records a request nonce; `false` if `(key, nonce)` was seen before.
    async fn insert_nonce(&self, key: &str, nonce: &str, seen: i64) -> Result<bool, MetaError>;
    /// Forgets nonces seen before `before`; returns how many.
    async fn purge_nonces(&self, before: i64) -> Result<usize, MetaError>;
}

/// The transfer log's entries, stored tree hashes and signed checkpoints.
#[async_trait]
pub trait LogStore: Send + Sync {
    /// Appends entries that go with no other change (one transaction, with
    /// the new checkpoint). Returns the first entry's index.
    async fn append_log(&self, entries: &[Vec<u8>], turn: Box<dyn AppendTurn>) -> Result<u64, MetaError>;
    /// The number of log entries.
    async fn log_size(&self) -> Result<u64, MetaError>;
    /// The checkpoint with the largest size.
    async fn latest_checkpoint(&self) -> Result<Option<StoredCheckpoint>, MetaError>;
    /// The checkpoint of exactly `size` entries, if one was signed.
    async fn checkpoint(&self, size: u64) -> Result<Option<String>, MetaError>;
    /// Up to `count` entries from index `start`, in order.
    async fn log_entries(&self, start: u64, count: u64) -> Result<Vec<Vec<u8>>, MetaError>;
    /// The stored tree hashes at the given stored-hash indexes
    /// (`tlog_tiles::stored_hash_index`); an error if one is missing.
    async fn log_hashes(&self, indexes: &[u64]) -> Result<Vec<Hash>, MetaError>;
    /// Recomputes every stored hash from the entries and checks it against
    /// the stored one; returns the number of entries and the tree hash.
    /// [`MetaError::LogInconsistent`] when they disagree.
    async fn recompute_log(&self) -> Result<(u64, Hash), MetaError>;
}

/// Witnesses' cosignatures of the log's checkpoints.
#[async_trait]
pub trait CosignatureStore: Send + Sync {
    /// The witness cosignature lines stored for the checkpoint of `size`.
    async fn cosignatures(&self, size: u64) -> Result<Vec<String>, MetaError>;
    /// Stores (or replaces) `witness`'s cosignature line for the checkpoint
    /// of `size`; `false` if there is no such checkpoint.
    async fn put_cosignature(&self, size: u64, witness: &str, line: &str) -> Result<bool, MetaError>;
}
