//! [`MetaStore`] on SQLite: one connection behind a mutex, WAL journal,
//! foreign keys on, and the schema managed by `rusqlite_migration` so later
//! versions add migrations instead of editing this one.
//!
//! Durability with group commit: the connection runs `synchronous=NORMAL`
//! (a commit writes the WAL but does not wait for the disk), and every write
//! transaction that matters returns only after the WAL file has been synced
//! by a [`GroupSync`] shared by all callers. So a drop committed, fetched or
//! acknowledged survives a power cut once the hub has answered, exactly as
//! with `synchronous=FULL`, but 32 senders committing together wait for one
//! or two fsyncs instead of 32 in a row. Writes that need no promise (an
//! upload's digest, a request nonce) are made durable by the next sync.
//!
//! The connection's mutex is the hub's write lock: a transaction holds it
//! from `BEGIN IMMEDIATE` to `COMMIT`, so log appends are serialised and
//! each sees the previous one's checkpoint.
//!
//! The database file is created with mode 0600 (SQLite gives its `-wal` and
//! `-shm` files the database's mode), and deleted ciphertext rows leave no
//! bytes behind in any of them (`secure_delete` and a checkpoint; see
//! [`super::scrub`]).

use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard, Weak};

use rusqlite::{Connection, OptionalExtension as _, Row, Transaction, TransactionBehavior, params};
use rusqlite_migration::{M, Migrations};
use sealdrop_proto::api::DropState;
use sealdrop_proto::ids::{DropId, PartyId};
use sealdrop_proto::keys::NoteSigningKey;
use tlog_tiles::Hash;

use super::group_sync::GroupSync;
use super::meta::{
    AckOutcome, AckRecord, CommitRecord, ContentDigest, CreateOutcome, DropRecord, EndOutcome, EndRecord, FetchOutcome,
    FetchRecord, MetaError, MetaStore, NewDrop, RecipientRecord, SentRecord, StoredCheckpoint, StoredDirectory,
    SweepItem,
};
use super::scrub::Scrubber;
use super::{log_index, sqlite_log};

/// The schema, one migration per released change. Never edit a released
/// migration: append a new one.
const MIGRATIONS: &[M<'static>] = &[
    M::up(
        "CREATE TABLE settings (
        key TEXT PRIMARY KEY,
        value TEXT NOT NULL
    ) STRICT;
    CREATE TABLE directories (
        serial INTEGER PRIMARY KEY,
        note TEXT NOT NULL,
        sha256 TEXT NOT NULL,
        accepted_at INTEGER NOT NULL
    ) STRICT;
    CREATE TABLE drops (
        id TEXT PRIMARY KEY,
        sender TEXT NOT NULL,
        sender_member TEXT NOT NULL,
        agreement TEXT NOT NULL,
        created INTEGER NOT NULL,
        expires INTEGER NOT NULL,
        state TEXT NOT NULL,
        upload_sha256 TEXT,
        upload_len INTEGER,
        sha256 TEXT,
        size INTEGER,
        committed INTEGER,
        manifest TEXT
    ) STRICT;
    CREATE INDEX drops_by_sender ON drops (sender, created);
    CREATE TABLE drop_recipients (
        drop_id TEXT NOT NULL REFERENCES drops (id) ON DELETE CASCADE,
        party TEXT NOT NULL,
        fetched INTEGER,
        acknowledged INTEGER,
        ack_member TEXT,
        receipt TEXT,
        PRIMARY KEY (drop_id, party)
    ) STRICT;
    CREATE INDEX drop_recipients_by_party ON drop_recipients (party);
    CREATE TABLE nonces (
        key TEXT NOT NULL,
        nonce TEXT NOT NULL,
        seen INTEGER NOT NULL,
        PRIMARY KEY (key, nonce)
    ) STRICT;
    CREATE INDEX nonces_by_seen ON nonces (seen);",
    ),
    // The transfer log.
    M::up(sqlite_log::MIGRATION),
    // Idempotent creation: at most one drop per sender party and key. Drops
    // from before have no key, and the partial index leaves them out.
    M::up(
        "ALTER TABLE drops ADD COLUMN idempotency_key TEXT;
    CREATE UNIQUE INDEX drops_by_idempotency_key ON drops (sender, idempotency_key)
        WHERE idempotency_key IS NOT NULL;",
    ),
    // Lifecycle: when the ciphertext was deleted (delivered, expired,
    // recalled), and an index the sweeper finds due drops by.
    M::up(
        "ALTER TABLE drops ADD COLUMN deleted INTEGER;
    CREATE INDEX drops_by_state_expiry ON drops (state, expires);",
    ),
    // Small ciphertexts kept in the database instead of a file each (see
    // `InlineBlobs`): an upload being written or a committed drop's blob.
    M::up(
        "CREATE TABLE inline_blobs (
        drop_id TEXT PRIMARY KEY,
        stage TEXT NOT NULL CHECK (stage IN ('upload', 'blob')),
        data BLOB NOT NULL
    ) STRICT;",
    ),
    // When an open drop's upload was last active (started again, continued,
    // cut off or finished), so the sweeper can remove an upload nobody came
    // back to within the resume window. NULL: no activity recorded since the
    // drop was created (a first upload writes nothing until it ends), so the
    // creation time stands for it.
    M::up("ALTER TABLE drops ADD COLUMN upload_active INTEGER;"),
    // Where the transfer log records each drop's life (see `log_index`);
    // filled from the log for older databases when the store opens.
    M::up(log_index::MIGRATION),
    // A party's drops by state, for its quotas (what it holds as a sender),
    // read each time it starts an upload.
    M::up("CREATE INDEX drops_by_sender_state ON drops (sender, state);"),
];

const DROP_COLUMNS: &str = "id, sender, sender_member, agreement, created, expires, state, \
     upload_sha256, upload_len, sha256, size, committed, manifest, deleted, commit_index, end_index";

/// Prepared statements kept for reuse: more than the distinct statements the store runs.
const STATEMENT_CACHE: usize = 128;

/// Makes the WAL durable; see the module docs.
type WalSync = GroupSync<Box<dyn Fn() -> std::io::Result<()> + Send + Sync>>;

/// The SQLite metadata store.
pub struct SqliteMetaStore {
    /// The database, shared with [`InlineBlobs`].
    db: Arc<Db>,
}

/// The hub's database: one connection and the WAL's group sync.
struct Db {
    /// The one connection; its mutex is the write lock.
    conn: Mutex<Connection>,
    /// Syncs the WAL for committed transactions; `None` in memory.
    wal_sync: Option<WalSync>,
    /// Resets the WAL after ciphertext rows are deleted; `None` in memory.
    scrub: Option<Scrubber>,
}

/// How long the connection waits for other connections' locks.
const BUSY_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);
/// How long a scrub waits for a reader of an older snapshot to finish
/// before it gives up and retries later (it holds the write lock meanwhile).
const SCRUB_BUSY_TIMEOUT: std::time::Duration = std::time::Duration::from_millis(250);

impl std::fmt::Debug for SqliteMetaStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SqliteMetaStore")
    }
}

impl SqliteMetaStore {
    /// Opens (creating if needed, with mode 0600) the database at `path`
    /// and brings its schema up to date.
    pub fn open(path: &Path) -> Result<Self, MetaError> {
        create_private(path)?;
        Self::setup(Connection::open(path)?)
    }

    /// An in-memory store, for tests.
    pub fn open_in_memory() -> Result<Self, MetaError> {
        Self::setup(Connection::open_in_memory()?)
    }

    fn setup(mut conn: Connection) -> Result<Self, MetaError> {
        conn.busy_timeout(BUSY_TIMEOUT)?;
        // Every statement is prepared once and reused (`prepare_cached`):
        // parsing SQL was 5% of the hub's CPU per small drop.
        conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
        let mode: String = conn.pragma_update_and_check(None, "journal_mode", "WAL", |r| r.get(0))?;
        if !mode.eq_ignore_ascii_case("wal") && !mode.eq_ignore_ascii_case("memory") {
            return Err(MetaError::Corrupt(format!("the database refused WAL mode (journal mode {mode:?})")));
        }
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        conn.pragma_update(None, "foreign_keys", true)?;
        // Deleted content and freed pages are overwritten with zeros.
        conn.pragma_update(None, "secure_delete", "ON")?;
        Migrations::from_slice(MIGRATIONS).to_latest(&mut conn)?;
        log_index::fill_once(&mut conn)?;
        let on_disk = conn.path().is_some_and(|p| !p.is_empty());
        let wal_sync = conn.path().filter(|p| !p.is_empty()).map(|db| {
            let wal = std::path::PathBuf::from(format!("{db}-wal"));
            let flush: Box<dyn Fn() -> std::io::Result<()> + Send + Sync> =
                Box::new(move || std::fs::File::open(&wal)?.sync_data());
            GroupSync::new(flush)
        });
        let db = Arc::new_cyclic(|db: &Weak<Db>| {
            let db = db.clone();
            let scrub = on_disk
                .then(|| Scrubber::new(Arc::new(move || db.upgrade().map_or(Ok(()), |db| db.checkpoint_truncate()))));
            Db { conn: Mutex::new(conn), wal_sync, scrub }
        });
        let store = Self { db };
        // The migrations above are as durable as any later write.
        store.sync_wal()?;
        // A deletion whose scrub a crash cut short is scrubbed now.
        store.db.scrub()?;
        Ok(store)
    }

    /// How many scrubbing checkpoints have run (see [`super::scrub`]).
    pub fn scrubs(&self) -> u64 {
        self.db.scrub.as_ref().map_or(0, Scrubber::runs)
    }

    /// The table of small ciphertexts in this database, for the blob store
    /// (see [`InlineBlobs`]).
    pub fn inline_blobs(&self) -> InlineBlobs {
        InlineBlobs { db: self.db.clone() }
    }

    /// Runs `f` in a write transaction and returns once it is durable.
    fn durably<T>(&self, f: impl FnOnce(&Transaction<'_>) -> Result<T, MetaError>) -> Result<T, MetaError> {
        let out = in_transaction(&mut self.conn(), f)?;
        super::meta::transaction_committed();
        self.sync_wal()?;
        Ok(out)
    }

    /// Makes every transaction committed so far durable (shared with
    /// concurrent callers).
    fn sync_wal(&self) -> Result<(), MetaError> {
        match &self.db.wal_sync {
            Some(g) => g.sync().map_err(|e| MetaError::Corrupt(format!("cannot sync the database to disk: {e}"))),
            None => Ok(()),
        }
    }

    /// How many WAL syncs have run: fewer than durable writes when
    /// concurrent writers shared them.
    pub fn wal_syncs(&self) -> u64 {
        self.db.wal_sync.as_ref().map_or(0, GroupSync::syncs)
    }

    fn conn(&self) -> MutexGuard<'_, Connection> {
        self.db.conn()
    }
}

impl Db {
    fn conn(&self) -> MutexGuard<'_, Connection> {
        // A panic while holding the lock cannot leave SQLite inconsistent (an
        // unfinished transaction rolls back when dropped), so carry on.
        self.conn.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Resets the WAL after ciphertext was deleted (see [`super::scrub`]);
    /// a failure is logged and retried in the background, as the deletion
    /// itself stands.
    fn scrub(&self) -> Result<(), MetaError> {
        if let Some(scrub) = &self.scrub
            && let Err(e) = scrub.scrub()
        {
            tracing::warn!(
                error = %e,
                "could not yet empty the database's write-ahead log after deleting ciphertext; retrying in the background"
            );
        }
        Ok(())
    }

    /// Copies every page of the WAL into the database and empties the WAL
    /// (`PRAGMA wal_checkpoint(TRUNCATE)`), waiting at most
    /// [`SCRUB_BUSY_TIMEOUT`] for readers of older snapshots.
    fn checkpoint_truncate(&self) -> std::io::Result<()> {
        let conn = self.conn();
        let io = |e: rusqlite::Error| std::io::Error::other(format!("checkpoint: {e}"));
        conn.busy_timeout(SCRUB_BUSY_TIMEOUT).map_err(io)?;
        let result = conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |r| {
            Ok((r.get::<_, i64>(0)?, r.get::<_, i64>(1)?, r.get::<_, i64>(2)?))
        });
        conn.busy_timeout(BUSY_TIMEOUT).map_err(io)?;
        match result.map_err(io)? {
            (0, _, _) => Ok(()),
            (_, log, copied) => Err(std::io::Error::other(format!(
                "another reader holds the write-ahead log ({copied} of {log} pages copied)"
            ))),
        }
    }
}

/// Creates the database file, empty, with mode 0600 if it does not exist,
/// so SQLite opens it as it is (and gives its `-wal` and `-shm` files the
/// same mode) instead of creating it with the umask's.
fn create_private(path: &Path) -> Result<(), MetaError> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        options.mode(0o600);
    }
    match options.open(path) {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(source) => Err(MetaError::Create { path: path.to_owned(), source }),
    }
}

/// Where a drop's ciphertext is in its life, as the blob store sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BlobStage {
    /// Being uploaded (finished or cut off), not yet committed.
    Upload,
    /// Committed: what recipients download.
    Blob,
}

impl BlobStage {
    fn as_str(self) -> &'static str {
        match self {
            Self::Upload => "upload",
            Self::Blob => "blob",
        }
    }
}

/// Small ciphertexts in a table of the hub's database, one row per drop.
///
/// Why: a file per small drop cost a file creation, an fsync of it and of
/// its folder, and a rename, for a few KiB; a row costs a few pages of the
/// WAL, made durable by the group sync the drop's commit waits for anyway
/// (rows are written with `synchronous=NORMAL` and no sync of their own: a
/// later sync of the same WAL covers every earlier transaction, and the
/// commit that makes a drop visible always comes after its row's writes).
/// Calls block; the blob store runs them on the blocking pool.
#[derive(Clone)]
pub struct InlineBlobs {
    db: Arc<Db>,
}

impl std::fmt::Debug for InlineBlobs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("InlineBlobs")
    }
}

impl InlineBlobs {
    /// Stores `data` as the drop's upload, replacing any row it had.
    pub fn put_upload(&self, id: &DropId, data: &[u8]) -> Result<(), MetaError> {
        self.db
            .conn()
            .prepare_cached(
                "INSERT INTO inline_blobs (drop_id, stage, data) VALUES (?1, 'upload', ?2)
                 ON CONFLICT (drop_id) DO UPDATE SET stage = 'upload', data = excluded.data",
            )?
            .execute(params![id.as_str(), data])?;
        Ok(())
    }

    /// The drop's bytes at `stage`, if it has a row at that stage.
    pub fn get(&self, id: &DropId, stage: BlobStage) -> Result<Option<Vec<u8>>, MetaError> {
        Ok(self
            .db
            .conn()
            .prepare_cached("SELECT data FROM inline_blobs WHERE drop_id = ?1 AND stage = ?2")?
            .query_row(params![id.as_str(), stage.as_str()], |r| r.get(0))
            .optional()?)
    }

    /// The length of the drop's bytes at `stage`, if it has a row at that stage.
    pub fn len(&self, id: &DropId, stage: BlobStage) -> Result<Option<u64>, MetaError> {
        let len: Option<i64> = self
            .db
            .conn()
            .prepare_cached("SELECT length(data) FROM inline_blobs WHERE drop_id = ?1 AND stage = ?2")?
            .query_row(params![id.as_str(), stage.as_str()], |r| r.get(0))
            .optional()?;
        len.map(|n| to_u64(n, "inline blob length")).transpose()
    }

    /// Turns the drop's upload into its blob; `false` if it has no upload row.
    pub fn promote(&self, id: &DropId) -> Result<bool, MetaError> {
        let n = self
            .db
            .conn()
            .prepare_cached("UPDATE inline_blobs SET stage = 'blob' WHERE drop_id = ?1 AND stage = 'upload'")?
            .execute([id.as_str()])?;
        Ok(n == 1)
    }

    /// Deletes the drop's row at `stage`; `false` if there was none. Returns
    /// once no byte of it is left in the database's files (see
    /// [`super::scrub`]).
    pub fn delete(&self, id: &DropId, stage: BlobStage) -> Result<bool, MetaError> {
        let n = self
            .db
            .conn()
            .prepare_cached("DELETE FROM inline_blobs WHERE drop_id = ?1 AND stage = ?2")?
            .execute(params![id.as_str(), stage.as_str()])?;
        if n == 1 {
            self.db.scrub()?;
        }
        Ok(n == 1)
    }

    /// The drops with a row at `stage`.
    pub fn list(&self, stage: BlobStage) -> Result<Vec<DropId>, MetaError> {
        let conn = self.db.conn();
        let mut statement =
            conn.prepare_cached("SELECT drop_id FROM inline_blobs WHERE stage = ?1 ORDER BY drop_id")?;
        let ids: Vec<String> = statement.query_map([stage.as_str()], |r| r.get(0))?.collect::<Result<_, _>>()?;
        ids.into_iter().map(|id| parse(id, "inline blob id")).collect()
    }
}

fn to_i64(n: u64, what: &str) -> Result<i64, MetaError> {
    i64::try_from(n).map_err(|_| MetaError::Corrupt(format!("{what} {n} is too large to store")))
}

fn to_u64(n: i64, what: &str) -> Result<u64, MetaError> {
    u64::try_from(n).map_err(|_| MetaError::Corrupt(format!("stored {what} {n} is negative")))
}

fn parse<T: std::str::FromStr>(s: String, what: &str) -> Result<T, MetaError>
where
    T::Err: std::fmt::Display,
{
    s.parse().map_err(|e| MetaError::Corrupt(format!("stored {what}: {e}")))
}

fn state_from_str(s: &str) -> Result<DropState, MetaError> {
    match s {
        "open" => Ok(DropState::Open),
        "committed" => Ok(DropState::Committed),
        "delivered" => Ok(DropState::Delivered),
        "expired" => Ok(DropState::Expired),
        "recalled" => Ok(DropState::Recalled),
        other => Err(MetaError::Corrupt(format!("unknown drop state {other:?}"))),
    }
}

fn digest(sha256: Option<String>, len: Option<i64>, what: &str) -> Result<Option<ContentDigest>, MetaError> {
    match (sha256, len) {
        (Some(sha256), Some(len)) => Ok(Some(ContentDigest { sha256, len: to_u64(len, what)? })),
        (None, None) => Ok(None),
        _ => Err(MetaError::Corrupt(format!("{what} has a hash without a length or the reverse"))),
    }
}

/// The columns of [`DROP_COLUMNS`] as raw values, converted outside the
/// row callback so conversion errors keep their message.
type RawDrop = (
    String,
    String,
    String,
    String,
    i64,
    i64,
    String,
    Option<String>,
    Option<i64>,
    Option<String>,
    Option<i64>,
    Option<i64>,
    Option<String>,
    Option<i64>,
    Option<i64>,
    Option<i64>,
);

fn raw_drop(r: &Row<'_>) -> rusqlite::Result<RawDrop> {
    Ok((
        r.get(0)?,
        r.get(1)?,
        r.get(2)?,
        r.get(3)?,
        r.get(4)?,
        r.get(5)?,
        r.get(6)?,
        r.get(7)?,
        r.get(8)?,
        r.get(9)?,
        r.get(10)?,
        r.get(11)?,
        r.get(12)?,
        r.get(13)?,
        r.get(14)?,
        r.get(15)?,
    ))
}

fn drop_from_raw(raw: RawDrop, recipients: Vec<RecipientRecord>) -> Result<DropRecord, MetaError> {
    let (
        id,
        sender,
        member,
        agreement,
        created,
        expires,
        state,
        up_sha,
        up_len,
        sha,
        size,
        committed,
        manifest,
        deleted,
        commit_index,
        end_index,
    ) = raw;
    Ok(DropRecord {
        id: parse(id, "drop id")?,
        sender: parse(sender, "sender")?,
        sender_member: parse(member, "sender member")?,
        agreement,
        created,
        expires,
        state: state_from_str(&state)?,
        upload: digest(up_sha, up_len, "upload")?,
        content: digest(sha, size, "content")?,
        committed,
        manifest,
        deleted,
        commit_index: commit_index.map(|i| to_u64(i, "log index")).transpose()?,
        end_index: end_index.map(|i| to_u64(i, "log index")).transpose()?,
        recipients,
    })
}

type RawRecipient = (String, Option<i64>, Option<i64>, Option<String>, Option<String>, i64, Option<i64>, Option<i64>);

fn recipients_of(conn: &Connection, id: &str) -> Result<Vec<RecipientRecord>, MetaError> {
    let mut stmt = conn.prepare_cached(
        "SELECT party, fetched, acknowledged, ack_member, receipt, downloads, fetch_index, ack_index
         FROM drop_recipients WHERE drop_id = ?1 ORDER BY rowid",
    )?;
    let raws = stmt
        .query_map([id], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?, r.get(6)?, r.get(7)?))
        })?
        .collect::<Result<Vec<RawRecipient>, _>>()?;
    let index = |i: Option<i64>| i.map(|i| to_u64(i, "log index")).transpose();
    raws.into_iter()
        .map(|(party, fetched, acknowledged, member, receipt, downloads, fetch_index, ack_index)| {
            Ok(RecipientRecord {
                party: parse(party, "recipient party")?,
                fetched,
                acknowledged,
                ack_member: member.map(|m| parse(m, "acknowledging member")).transpose()?,
                receipt,
                downloads: to_u64(downloads, "download count")?,
                fetch_index: index(fetch_index)?,
                ack_index: index(ack_index)?,
            })
        })
        .collect()
}

fn load_drops(conn: &Connection, sql: &str, params: impl rusqlite::Params) -> Result<Vec<DropRecord>, MetaError> {
    Ok(load_drops_with(conn, sql, params, |_| Ok(()))?.into_iter().map(|(d, ())| d).collect())
}

/// [`load_drops`] for a query that selects more columns after
/// [`DROP_COLUMNS`], which `extra` reads from each row.
fn load_drops_with<T>(
    conn: &Connection,
    sql: &str,
    params: impl rusqlite::Params,
    extra: impl Fn(&Row<'_>) -> rusqlite::Result<T>,
) -> Result<Vec<(DropRecord, T)>, MetaError> {
    let raws = conn
        .prepare_cached(sql)?
        .query_map(params, |r| Ok((raw_drop(r)?, extra(r)?)))?
        .collect::<Result<Vec<_>, _>>()?;
    raws.into_iter()
        .map(|(raw, more)| {
            let recipients = recipients_of(conn, &raw.0)?;
            Ok((drop_from_raw(raw, recipients)?, more))
        })
        .collect()
}

/// A drop's state as stored (`open`, `committed`, ...), or `None` if there is no such drop.
fn stored_state(conn: &Connection, id: &DropId) -> Result<Option<String>, MetaError> {
    Ok(conn
        .prepare_cached("SELECT state FROM drops WHERE id = ?1")?
        .query_row([id.as_str()], |r| r.get(0))
        .optional()?)
}

/// Runs `f` in a write transaction (`BEGIN IMMEDIATE`: the write lock is
/// taken first, so what `f` reads cannot change before it writes).
fn in_transaction<T>(
    conn: &mut Connection,
    f: impl FnOnce(&Transaction<'_>) -> Result<T, MetaError>,
) -> Result<T, MetaError> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let out = f(&tx)?;
    tx.commit()?;
    Ok(out)
}

impl MetaStore for SqliteMetaStore {
    fn setting(&self, key: &str) -> Result<Option<String>, MetaError> {
        Ok(self
            .conn()
            .prepare_cached("SELECT value FROM settings WHERE key = ?1")?
            .query_row([key], |r| r.get(0))
            .optional()?)
    }

    fn set_setting(&self, key: &str, value: &str) -> Result<(), MetaError> {
        self.durably(|tx| {
            tx.prepare_cached(
                "INSERT INTO settings (key, value) VALUES (?1, ?2)
                 ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            )?
            .execute([key, value])?;
            Ok(())
        })
    }

    fn current_directory(&self) -> Result<Option<StoredDirectory>, MetaError> {
        let row = self
            .conn()
            .prepare_cached("SELECT serial, note, sha256, accepted_at FROM directories ORDER BY serial DESC LIMIT 1")?
            .query_row([], |r| Ok((r.get::<_, i64>(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
            .optional()?;
        row.map(|(serial, note, sha256, accepted_at)| {
            Ok(StoredDirectory { serial: to_u64(serial, "directory serial")?, note, sha256, accepted_at })
        })
        .transpose()
    }

    fn insert_directory(
        &self,
        dir: &StoredDirectory,
        log_entry: &[u8],
        log_key: &NoteSigningKey,
    ) -> Result<u64, MetaError> {
        self.durably(|tx| {
            tx.prepare_cached("INSERT INTO directories (serial, note, sha256, accepted_at) VALUES (?1, ?2, ?3, ?4)")?
                .execute(params![to_i64(dir.serial, "directory serial")?, dir.note, dir.sha256, dir.accepted_at])?;
            sqlite_log::append(tx, &[log_entry.to_vec()], log_key)
        })
    }

    fn directory(&self, serial: u64) -> Result<Option<StoredDirectory>, MetaError> {
        let row = self
            .conn()
            .prepare_cached("SELECT note, sha256, accepted_at FROM directories WHERE serial = ?1")?
            .query_row([to_i64(serial, "directory serial")?], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
            .optional()?;
        Ok(row.map(|(note, sha256, accepted_at)| StoredDirectory { serial, note, sha256, accepted_at }))
    }

    fn create_drop(&self, drop: &NewDrop) -> Result<CreateOutcome, MetaError> {
        self.durably(|tx| {
            // BEGIN IMMEDIATE holds the write lock, so the drop found here
            // cannot change before the insert; the unique index on
            // (sender, idempotency_key) would refuse a second drop anyway.
            let mut replaced = None;
            if let Some(key) = &drop.idempotency_key {
                let existing: Option<(String, String)> = tx
                    .prepare_cached("SELECT id, state FROM drops WHERE sender = ?1 AND idempotency_key = ?2")?
                    .query_row([drop.sender.as_str(), key], |r| Ok((r.get(0)?, r.get(1)?)))
                    .optional()?;
                if let Some((id, state)) = existing {
                    if state_from_str(&state)? != DropState::Open {
                        let sql = format!("SELECT {DROP_COLUMNS} FROM drops WHERE id = ?1");
                        let rec = load_drops(tx, &sql, [&id])?
                            .pop()
                            .ok_or_else(|| MetaError::Corrupt(format!("drop {id} vanished inside a transaction")))?;
                        return Ok(CreateOutcome::AlreadyCommitted(Box::new(rec)));
                    }
                    // Explicitly rather than by the foreign key's cascade, so
                    // this does not depend on foreign keys being enforced.
                    tx.prepare_cached("DELETE FROM drop_recipients WHERE drop_id = ?1")?.execute([&id])?;
                    tx.prepare_cached("DELETE FROM drops WHERE id = ?1 AND state = 'open'")?.execute([&id])?;
                    replaced = Some(parse::<DropId>(id, "drop id")?);
                }
            }
            tx.prepare_cached(
                "INSERT INTO drops (id, sender, sender_member, agreement, created, expires, state, idempotency_key)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, 'open', ?7)",
            )?
            .execute(params![
                drop.id.as_str(),
                drop.sender.as_str(),
                drop.sender_member.as_str(),
                drop.agreement,
                drop.created,
                drop.expires,
                drop.idempotency_key
            ])?;
            let mut stmt = tx.prepare_cached("INSERT INTO drop_recipients (drop_id, party) VALUES (?1, ?2)")?;
            for party in &drop.recipients {
                stmt.execute([drop.id.as_str(), party.as_str()])?;
            }
            Ok(CreateOutcome::Created { replaced })
        })
    }

    fn drop_by_idempotency_key(&self, party: &PartyId, key: &str) -> Result<Option<DropRecord>, MetaError> {
        let conn = self.conn();
        let sql = format!("SELECT {DROP_COLUMNS} FROM drops WHERE sender = ?1 AND idempotency_key = ?2");
        Ok(load_drops(&conn, &sql, [party.as_str(), key])?.pop())
    }

    fn drop_record(&self, id: &DropId) -> Result<Option<DropRecord>, MetaError> {
        let conn = self.conn();
        let sql = format!("SELECT {DROP_COLUMNS} FROM drops WHERE id = ?1");
        Ok(load_drops(&conn, &sql, [id.as_str()])?.pop())
    }

    fn drop_state(&self, id: &DropId) -> Result<Option<DropState>, MetaError> {
        let state = stored_state(&self.conn(), id)?;
        state.map(|s| state_from_str(&s)).transpose()
    }

    fn set_upload(&self, id: &DropId, upload: Option<&ContentDigest>, at: i64) -> Result<bool, MetaError> {
        let (sha, len) = match upload {
            Some(d) => (Some(d.sha256.as_str()), Some(to_i64(d.len, "upload length")?)),
            None => (None, None),
        };
        let n = self
            .conn()
            .prepare_cached(
                "UPDATE drops SET upload_sha256 = ?2, upload_len = ?3, upload_active = ?4 WHERE id = ?1 AND state = 'open'",
            )?
            .execute(params![id.as_str(), sha, len, at])?;
        Ok(n == 1)
    }

    fn upload_activity(&self, id: &DropId) -> Result<Option<i64>, MetaError> {
        Ok(self
            .conn()
            .prepare_cached("SELECT COALESCE(upload_active, created) FROM drops WHERE id = ?1 AND state = 'open'")?
            .query_row([id.as_str()], |r| r.get(0))
            .optional()?)
    }

    fn commit_drop(
        &self,
        id: &DropId,
        commit: &CommitRecord,
        log_key: &NoteSigningKey,
    ) -> Result<Option<u64>, MetaError> {
        let len = to_i64(commit.content.len, "content length")?;
        self.durably(|tx| {
            let n = tx
                .prepare_cached(
                    "UPDATE drops SET state = 'committed', committed = ?2, manifest = ?3, sha256 = ?4, size = ?5,
                     sender_member = ?6, upload_sha256 = NULL, upload_len = NULL
                 WHERE id = ?1 AND state = 'open' AND upload_sha256 = ?4 AND upload_len = ?5",
                )?
                .execute(params![
                    id.as_str(),
                    commit.committed,
                    commit.manifest,
                    commit.content.sha256,
                    len,
                    commit.sender_member.as_str()
                ])?;
            if n != 1 {
                return Ok(None);
            }
            let index = sqlite_log::append(tx, std::slice::from_ref(&commit.log_entry), log_key)?;
            log_index::committed(tx, id.as_str(), sqlite_log::to_i64(index)?)?;
            Ok(Some(index))
        })
    }

    fn record_fetch(
        &self,
        id: &DropId,
        fetch: &FetchRecord,
        log_key: &NoteSigningKey,
    ) -> Result<FetchOutcome, MetaError> {
        self.durably(|tx| {
            let state = stored_state(tx, id)?;
            if state.as_deref() != Some("committed") {
                return Ok(FetchOutcome::NotCommitted);
            }
            let downloads = log_index::downloads(tx, id.as_str(), fetch.party.as_str())?;
            if !sealdrop_log::policy::may_download(downloads) {
                return Ok(FetchOutcome::LimitReached { downloads });
            }
            tx.prepare_cached(
                "UPDATE drop_recipients SET fetched = ?3 WHERE drop_id = ?1 AND party = ?2 AND fetched IS NULL",
            )?
            .execute(params![id.as_str(), fetch.party.as_str(), fetch.at])?;
            let index = sqlite_log::append(tx, std::slice::from_ref(&fetch.log_entry), log_key)?;
            log_index::fetched(tx, id.as_str(), fetch.party.as_str(), sqlite_log::to_i64(index)?)?;
            Ok(FetchOutcome::Recorded { log_index: index })
        })
    }

    fn end_drop(&self, id: &DropId, end: &EndRecord, log_key: &NoteSigningKey) -> Result<EndOutcome, MetaError> {
        let state = match end.state {
            DropState::Expired => "expired",
            DropState::Recalled => "recalled",
            other => return Err(MetaError::Corrupt(format!("a drop cannot be ended as {other:?}"))),
        };
        self.durably(|tx| {
            let current = stored_state(tx, id)?;
            match current.as_deref() {
                Some("committed") => {}
                Some(other) => return Ok(EndOutcome::NotCommitted(Some(state_from_str(other)?))),
                None => return Ok(EndOutcome::NotCommitted(None)),
            }
            if end.unless_acknowledged {
                let acked: Vec<RecipientRecord> =
                    recipients_of(tx, id.as_str())?.into_iter().filter(|r| r.acknowledged.is_some()).collect();
                if !acked.is_empty() {
                    return Ok(EndOutcome::Acknowledged(acked));
                }
            }
            tx.prepare_cached("UPDATE drops SET state = ?2, deleted = ?3 WHERE id = ?1 AND state = 'committed'")?
                .execute(params![id.as_str(), state, end.at])?;
            let log_index = sqlite_log::append(tx, &end.log_entries, log_key)?;
            // The hub's deletion statement is the last entry appended.
            let deleted_at = log_index + (end.log_entries.len() as u64).saturating_sub(1);
            log_index::ended(tx, id.as_str(), sqlite_log::to_i64(deleted_at)?)?;
            Ok(EndOutcome::Ended { log_index })
        })
    }

    fn forget_open_drop(&self, id: &DropId) -> Result<bool, MetaError> {
        self.durably(|tx| {
            let n = tx.prepare_cached("DELETE FROM drops WHERE id = ?1 AND state = 'open'")?.execute([id.as_str()])?;
            if n == 1 {
                tx.prepare_cached("DELETE FROM drop_recipients WHERE drop_id = ?1")?.execute([id.as_str()])?;
            }
            Ok(n == 1)
        })
    }

    fn due_for_sweep(&self, now: i64, in_force: &[String], limit: usize) -> Result<Vec<SweepItem>, MetaError> {
        let agreements = serde_json::to_string(in_force).map_err(|e| MetaError::Corrupt(e.to_string()))?;
        let conn = self.conn();
        let mut stmt = conn.prepare_cached(
            "SELECT id, state, expires, agreement FROM drops
             WHERE (state IN ('open', 'committed') AND expires <= ?1)
                OR (state = 'committed' AND agreement NOT IN (SELECT value FROM json_each(?2)))
             ORDER BY expires, id LIMIT ?3",
        )?;
        let rows = stmt
            .query_map(params![now, agreements, to_i64(limit as u64, "limit")?], |r| {
                Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?, r.get::<_, i64>(2)?, r.get::<_, String>(3)?))
            })?
            .collect::<Result<Vec<_>, _>>()?;
        rows.into_iter()
            .map(|(id, state, expires, agreement)| {
                Ok(SweepItem { id: parse(id, "drop id")?, state: state_from_str(&state)?, expires, agreement })
            })
            .collect()
    }

    fn acknowledge(&self, id: &DropId, ack: &AckRecord, log_key: &NoteSigningKey) -> Result<AckOutcome, MetaError> {
        self.durably(|tx| {
            let state = stored_state(tx, id)?;
            if state.as_deref() != Some("committed") {
                return Ok(AckOutcome::NotCommitted);
            }
            let acked: Option<(Option<i64>, i64)> = tx
                .prepare_cached(
                    "SELECT acknowledged, downloads FROM drop_recipients WHERE drop_id = ?1 AND party = ?2",
                )?
                .query_row([id.as_str(), ack.party.as_str()], |r| Ok((r.get(0)?, r.get(1)?)))
                .optional()?;
            match acked {
                None => return Ok(AckOutcome::NotCommitted),
                Some((Some(_), _)) => return Ok(AckOutcome::AlreadyAcknowledged),
                Some((None, downloads)) if !sealdrop_log::policy::may_acknowledge(downloads.max(0).unsigned_abs()) => {
                    return Ok(AckOutcome::NotDownloaded);
                }
                Some((None, _)) => {}
            }
            tx.prepare_cached(
                "UPDATE drop_recipients SET acknowledged = ?3, ack_member = ?4, receipt = ?5
                 WHERE drop_id = ?1 AND party = ?2 AND acknowledged IS NULL",
            )?
            .execute(params![
                id.as_str(),
                ack.party.as_str(),
                ack.at,
                ack.member.as_str(),
                ack.receipt
            ])?;
            let waiting: i64 = tx
                .prepare_cached("SELECT count(*) FROM drop_recipients WHERE drop_id = ?1 AND acknowledged IS NULL")?
                .query_row([id.as_str()], |r| r.get(0))?;
            let delivered = waiting == 0;
            let mut entries = vec![ack.log_entry.clone()];
            if delivered {
                tx.prepare_cached("UPDATE drops SET state = 'delivered', deleted = ?2 WHERE id = ?1")?
                    .execute(params![id.as_str(), ack.at])?;
                entries.push(ack.delivered_entry.clone());
            }
            let log_index = sqlite_log::append(tx, &entries, log_key)?;
            log_index::acknowledged(tx, id.as_str(), ack.party.as_str(), sqlite_log::to_i64(log_index)?)?;
            if delivered {
                log_index::ended(tx, id.as_str(), sqlite_log::to_i64(log_index + 1)?)?;
            }
            Ok(AckOutcome::Recorded { delivered, log_index })
        })
    }

    fn inbox(&self, party: &PartyId, now: i64) -> Result<Vec<DropRecord>, MetaError> {
        let columns = DROP_COLUMNS.split(", ").map(|c| format!("d.{c}")).collect::<Vec<_>>().join(", ");
        let sql = format!(
            "SELECT {columns} FROM drops d JOIN drop_recipients r ON r.drop_id = d.id
             WHERE r.party = ?1 AND r.acknowledged IS NULL AND d.state = 'committed' AND d.expires > ?2
             ORDER BY d.committed, d.id"
        );
        load_drops(&self.conn(), &sql, params![party.as_str(), now])
    }

    fn sent(&self, party: &PartyId, id: Option<&DropId>) -> Result<Vec<SentRecord>, MetaError> {
        let sql = format!(
            "SELECT {DROP_COLUMNS}, idempotency_key FROM drops WHERE sender = ?1 AND (?2 IS NULL OR id = ?2)
             ORDER BY created DESC, rowid DESC"
        );
        let key_column = DROP_COLUMNS.split(", ").count();
        let rows = load_drops_with(&self.conn(), &sql, params![party.as_str(), id.map(DropId::as_str)], |r| {
            r.get(key_column)
        })?;
        Ok(rows.into_iter().map(|(drop, idempotency_key)| SentRecord { drop, idempotency_key }).collect())
    }

    fn party_holdings(&self, party: &PartyId) -> Result<crate::quota::PartyHoldings, MetaError> {
        let conn = self.conn();
        let committed: i64 = conn
            .prepare_cached("SELECT COALESCE(SUM(size), 0) FROM drops WHERE sender = ?1 AND state = 'committed'")?
            .query_row([party.as_str()], |r| r.get(0))?;
        let mut statement = conn.prepare_cached(
            "SELECT id, upload_len, upload_active IS NOT NULL FROM drops WHERE sender = ?1 AND state = 'open'",
        )?;
        let rows = statement
            .query_map([party.as_str()], |r| Ok((r.get::<_, String>(0)?, r.get::<_, Option<i64>>(1)?, r.get(2)?)))?
            .collect::<Result<Vec<(String, Option<i64>, bool)>, _>>()?;
        let open = rows
            .into_iter()
            .map(|(id, len, started)| {
                Ok(crate::quota::OpenDrop {
                    id: parse(id, "drop id")?,
                    upload_len: len.map(|n| to_u64(n, "upload length")).transpose()?,
                    upload_started: started,
                })
            })
            .collect::<Result<_, MetaError>>()?;
        Ok(crate::quota::PartyHoldings { committed_bytes: to_u64(committed, "held bytes")?, open })
    }

    fn insert_nonce(&self, key: &str, nonce: &str, seen: i64) -> Result<bool, MetaError> {
        let n = self
            .conn()
            .prepare_cached("INSERT INTO nonces (key, nonce, seen) VALUES (?1, ?2, ?3) ON CONFLICT DO NOTHING")?
            .execute(params![key, nonce, seen])?;
        Ok(n == 1)
    }

    fn purge_nonces(&self, before: i64) -> Result<usize, MetaError> {
        Ok(self.conn().prepare_cached("DELETE FROM nonces WHERE seen < ?1")?.execute([before])?)
    }

    fn append_log(&self, entries: &[Vec<u8>], log_key: &NoteSigningKey) -> Result<u64, MetaError> {
        self.durably(|tx| sqlite_log::append(tx, entries, log_key))
    }

    fn log_size(&self) -> Result<u64, MetaError> {
        sqlite_log::size(&self.conn())
    }

    fn latest_checkpoint(&self) -> Result<Option<StoredCheckpoint>, MetaError> {
        Ok(sqlite_log::latest_checkpoint(&self.conn())?.map(|(size, note)| StoredCheckpoint { size, note }))
    }

    fn checkpoint(&self, size: u64) -> Result<Option<String>, MetaError> {
        Ok(self
            .conn()
            .prepare_cached("SELECT note FROM checkpoints WHERE size = ?1")?
            .query_row([sqlite_log::to_i64(size)?], |r| r.get(0))
            .optional()?)
    }

    fn log_entries(&self, start: u64, count: u64) -> Result<Vec<Vec<u8>>, MetaError> {
        let conn = self.conn();
        let mut stmt = conn.prepare_cached("SELECT data FROM log_entries WHERE idx >= ?1 ORDER BY idx LIMIT ?2")?;
        let rows =
            stmt.query_map([sqlite_log::to_i64(start)?, sqlite_log::to_i64(count)?], |r| r.get::<_, Vec<u8>>(0))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    fn log_hashes(&self, indexes: &[u64]) -> Result<Vec<Hash>, MetaError> {
        sqlite_log::read_hashes(&self.conn(), indexes)
    }

    fn recompute_log(&self) -> Result<(u64, Hash), MetaError> {
        sqlite_log::recompute(&self.conn())
    }

    fn cosignatures(&self, size: u64) -> Result<Vec<String>, MetaError> {
        let conn = self.conn();
        let mut stmt = conn.prepare_cached("SELECT line FROM cosignatures WHERE size = ?1 ORDER BY witness")?;
        let rows = stmt.query_map([sqlite_log::to_i64(size)?], |r| r.get::<_, String>(0))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    fn put_cosignature(&self, size: u64, witness: &str, line: &str) -> Result<bool, MetaError> {
        let size = sqlite_log::to_i64(size)?;
        self.durably(|tx| {
            let known: Option<i64> = tx
                .prepare_cached("SELECT size FROM checkpoints WHERE size = ?1")?
                .query_row([size], |r| r.get(0))
                .optional()?;
            if known.is_none() {
                return Ok(false);
            }
            tx.prepare_cached(
                "INSERT INTO cosignatures (size, witness, line) VALUES (?1, ?2, ?3)
                 ON CONFLICT (size, witness) DO UPDATE SET line = excluded.line",
            )?
            .execute(params![size, witness, line])?;
            Ok(true)
        })
    }
}

#[cfg(test)]
mod tests {
    use std::sync::OnceLock;

    use super::*;

    fn store() -> SqliteMetaStore {
        SqliteMetaStore::open_in_memory().unwrap()
    }

    #[test]
    fn the_log_turn_is_given_up_when_the_append_commits_before_its_sync() {
        use std::cell::Cell;
        use std::rc::Rc;

        use crate::storage::meta::released_at_commit;

        let dir = tempfile::tempdir().unwrap();
        let s = Arc::new(SqliteMetaStore::open(&dir.path().join("hub.db")).unwrap());
        let before = s.wal_syncs();
        let seen = Rc::new(Cell::new(None));
        let (store, saw) = (Arc::clone(&s), Rc::clone(&seen));
        released_at_commit(move || saw.set(Some(store.wal_syncs())), || s.append_log(&[b"one".to_vec()], key()))
            .unwrap();
        assert_eq!(seen.get(), Some(before), "given up once the transaction committed, before the sync");
        assert!(s.wal_syncs() > before, "and the append was still made durable");
        assert_eq!(s.log_size().unwrap(), 1);

        // A change that fails before committing gives the turn up when it returns.
        let gone = Rc::new(Cell::new(false));
        let flag = Rc::clone(&gone);
        let failed: Result<(), MetaError> =
            released_at_commit(move || flag.set(true), || Err(MetaError::Corrupt("refused".into())));
        assert!(failed.is_err() && gone.get());
        // And nothing is left to run for the next change on this thread.
        let later = Rc::new(Cell::new(0));
        let count = Rc::clone(&later);
        released_at_commit(move || count.set(count.get() + 1), || s.append_log(&[b"two".to_vec()], key())).unwrap();
        assert_eq!(later.get(), 1, "run exactly once");
    }

    /// The log key every test store signs with.
    fn key() -> &'static NoteSigningKey {
        static KEY: OnceLock<NoteSigningKey> = OnceLock::new();
        KEY.get_or_init(|| NoteSigningKey::generate("hub.test").unwrap())
    }

    fn party(s: &str) -> PartyId {
        s.parse().unwrap()
    }

    fn new_drop(recipients: &[&str]) -> NewDrop {
        NewDrop {
            id: DropId::random(),
            sender: party("camden"),
            sender_member: "data-team".parse().unwrap(),
            agreement: "inner-fsm".into(),
            created: 1000,
            expires: 5000,
            recipients: recipients.iter().map(|p| party(p)).collect(),
            idempotency_key: None,
        }
    }

    fn keyed_drop(sender: &str, key: &str) -> NewDrop {
        NewDrop { sender: party(sender), idempotency_key: Some(key.repeat(64)), ..new_drop(&["islington"]) }
    }

    fn created(outcome: CreateOutcome) -> Option<DropId> {
        match outcome {
            CreateOutcome::Created { replaced } => replaced,
            CreateOutcome::AlreadyCommitted(rec) => panic!("expected a new drop, got committed {}", rec.id),
        }
    }

    fn digest(s: &str, len: u64) -> ContentDigest {
        ContentDigest { sha256: s.repeat(64), len }
    }

    fn commit_record(member: &str) -> CommitRecord {
        CommitRecord {
            sender_member: member.parse().unwrap(),
            manifest: "m".into(),
            content: digest("a", 10),
            committed: 2000,
            log_entry: b"{\"commit\":1}".to_vec(),
        }
    }

    fn commit(store: &SqliteMetaStore, d: &NewDrop) -> u64 {
        assert!(store.set_upload(&d.id, Some(&digest("a", 10)), 2000).unwrap());
        store.commit_drop(&d.id, &commit_record("data-team"), key()).unwrap().unwrap()
    }

    fn ack(p: &str) -> AckRecord {
        AckRecord {
            party: party(p),
            member: "data-team".parse().unwrap(),
            receipt: "r".into(),
            at: 3000,
            log_entry: format!("{{\"ack\":\"{p}\"}}").into_bytes(),
            delivered_entry: b"{\"deleted\":1}".to_vec(),
        }
    }

    fn fetch(p: &str, at: i64) -> FetchRecord {
        FetchRecord { party: party(p), at, log_entry: format!("{{\"fetch\":\"{p}\"}}").into_bytes() }
    }

    fn directory(serial: u64) -> StoredDirectory {
        StoredDirectory { serial, note: format!("n{serial}"), sha256: format!("h{serial}"), accepted_at: 5 }
    }

    fn entries(s: &SqliteMetaStore) -> Vec<String> {
        s.log_entries(0, u64::MAX >> 2).unwrap().into_iter().map(|e| String::from_utf8(e).unwrap()).collect()
    }

    /// The latest checkpoint verifies, covers every entry, and its root is
    /// the one recomputed from the entries.
    fn assert_checkpointed(s: &SqliteMetaStore) -> u64 {
        let size = s.log_size().unwrap();
        let latest = s.latest_checkpoint().unwrap().unwrap();
        let cp = sealdrop_log::checkpoint::open(&latest.note, &key().verifier()).unwrap();
        assert_eq!((latest.size, cp.size), (size, size));
        assert_eq!(s.recompute_log().unwrap(), (size, cp.root));
        assert_eq!(s.checkpoint(size).unwrap(), Some(latest.note));
        size
    }

    #[test]
    fn settings_and_directories() {
        let s = store();
        assert_eq!(s.setting("origin").unwrap(), None);
        s.set_setting("origin", "a").unwrap();
        s.set_setting("origin", "b").unwrap();
        assert_eq!(s.setting("origin").unwrap().as_deref(), Some("b"));
        assert_eq!(s.current_directory().unwrap(), None);
        let (d1, d2) = (directory(1), directory(2));
        assert_eq!(s.insert_directory(&d2, b"{\"d\":2}", key()).unwrap(), 0);
        assert_eq!(s.insert_directory(&d1, b"{\"d\":1}", key()).unwrap(), 1);
        assert_eq!(s.current_directory().unwrap(), Some(d2.clone()));
        assert_eq!(s.directory(1).unwrap(), Some(d1));
        assert_eq!(s.directory(3).unwrap(), None);
        assert!(s.insert_directory(&d2, b"{\"d\":3}", key()).is_err(), "a serial is stored once");
        assert_eq!(entries(&s), ["{\"d\":2}", "{\"d\":1}"], "the refused directory left no entry");
        assert_eq!(assert_checkpointed(&s), 2);
    }

    #[test]
    fn commit_requires_open_and_matching_upload() {
        let s = store();
        let d = new_drop(&["islington"]);
        s.create_drop(&d).unwrap();
        let rec = s.drop_record(&d.id).unwrap().unwrap();
        assert_eq!(rec.state, DropState::Open);
        assert_eq!(rec.recipients.len(), 1);
        let c = commit_record("other");
        assert_eq!(s.commit_drop(&d.id, &c, key()).unwrap(), None, "no upload yet");
        s.set_upload(&d.id, Some(&digest("b", 10)), 2000).unwrap();
        assert_eq!(s.commit_drop(&d.id, &c, key()).unwrap(), None, "upload changed");
        assert_eq!(s.log_size().unwrap(), 0, "refused commits are not logged");
        s.set_upload(&d.id, Some(&digest("a", 10)), 2000).unwrap();
        assert_eq!(s.commit_drop(&d.id, &c, key()).unwrap(), Some(0));
        let rec = s.drop_record(&d.id).unwrap().unwrap();
        assert_eq!(rec.state, DropState::Committed);
        assert_eq!(rec.content, Some(digest("a", 10)));
        assert_eq!(rec.upload, None);
        assert_eq!(rec.committed, Some(2000));
        assert_eq!(rec.sender_member.as_str(), "other");
        assert_eq!(s.commit_drop(&d.id, &c, key()).unwrap(), None, "already committed");
        assert!(!s.set_upload(&d.id, Some(&digest("c", 1)), 2000).unwrap(), "no upload after commit");
        assert_eq!(entries(&s), ["{\"commit\":1}"]);
        assert_checkpointed(&s);
    }

    #[test]
    fn ack_transaction_delivers_after_the_last_party() {
        let s = store();
        let d = new_drop(&["islington", "hackney"]);
        s.create_drop(&d).unwrap();
        assert_eq!(s.acknowledge(&d.id, &ack("islington"), key()).unwrap(), AckOutcome::NotCommitted);
        assert_eq!(commit(&s, &d), 0);
        let not_recipient = s.acknowledge(&d.id, &ack("barnet"), key()).unwrap();
        assert_eq!(not_recipient, AckOutcome::NotCommitted, "not a recipient");
        let not_downloaded = s.acknowledge(&d.id, &ack("islington"), key()).unwrap();
        assert_eq!(not_downloaded, AckOutcome::NotDownloaded, "no download of it by islington is logged");
        assert_eq!(s.log_size().unwrap(), 1, "nothing logged");
        assert_eq!(
            s.record_fetch(&d.id, &fetch("islington", 2500), key()).unwrap(),
            FetchOutcome::Recorded { log_index: 1 }
        );
        assert_eq!(
            s.record_fetch(&d.id, &fetch("hackney", 2600), key()).unwrap(),
            FetchOutcome::Recorded { log_index: 2 }
        );
        let first = s.acknowledge(&d.id, &ack("islington"), key()).unwrap();
        assert_eq!(first, AckOutcome::Recorded { delivered: false, log_index: 3 });
        let again = s.acknowledge(&d.id, &ack("islington"), key()).unwrap();
        assert_eq!(again, AckOutcome::AlreadyAcknowledged);
        assert_eq!(s.drop_state(&d.id).unwrap(), Some(DropState::Committed));
        let last = s.acknowledge(&d.id, &ack("hackney"), key()).unwrap();
        assert_eq!(last, AckOutcome::Recorded { delivered: true, log_index: 4 });
        let rec = s.drop_record(&d.id).unwrap().unwrap();
        assert_eq!(rec.state, DropState::Delivered);
        assert_eq!((rec.commit_index, rec.end_index), (Some(0), Some(5)), "where the log records it");
        let r = rec.recipient(&party("islington")).unwrap();
        assert_eq!(r.acknowledged, Some(3000));
        assert_eq!(r.receipt.as_deref(), Some("r"));
        assert_eq!(r.ack_member.as_ref().map(|m| m.as_str()), Some("data-team"));
        assert_eq!((r.downloads, r.fetch_index, r.ack_index), (1, Some(1), Some(3)));
        let h = rec.recipient(&party("hackney")).unwrap();
        assert_eq!((h.downloads, h.fetch_index, h.ack_index), (1, Some(2), Some(4)));
        // The last acknowledgement and the deletion share one checkpoint.
        assert_eq!(
            entries(&s),
            [
                "{\"commit\":1}",
                "{\"fetch\":\"islington\"}",
                "{\"fetch\":\"hackney\"}",
                "{\"ack\":\"islington\"}",
                "{\"ack\":\"hackney\"}",
                "{\"deleted\":1}"
            ]
        );
        assert_eq!(assert_checkpointed(&s), 6);
        assert!(s.checkpoint(5).unwrap().is_none(), "no checkpoint between the two entries of one change");
        assert!(s.checkpoint(4).unwrap().is_some());
    }

    #[test]
    fn downloads_are_counted_and_bounded_per_party() {
        use sealdrop_log::policy::MAX_DOWNLOADS_PER_PARTY;
        let s = store();
        let d = new_drop(&["islington", "hackney"]);
        created(s.create_drop(&d).unwrap());
        commit(&s, &d);
        for n in 0..MAX_DOWNLOADS_PER_PARTY {
            let recorded = s.record_fetch(&d.id, &fetch("islington", 2000 + n as i64), key()).unwrap();
            assert_eq!(recorded, FetchOutcome::Recorded { log_index: 1 + n });
        }
        let size = s.log_size().unwrap();
        let refused = s.record_fetch(&d.id, &fetch("islington", 2100), key()).unwrap();
        assert_eq!(refused, FetchOutcome::LimitReached { downloads: MAX_DOWNLOADS_PER_PARTY });
        assert_eq!(s.log_size().unwrap(), size, "nothing logged");
        let r = s.drop_record(&d.id).unwrap().unwrap();
        let islington = r.recipient(&party("islington")).unwrap();
        assert_eq!((islington.downloads, islington.fetch_index, islington.fetched), (10, Some(1), Some(2000)));
        // Another party has its own count.
        assert!(matches!(
            s.record_fetch(&d.id, &fetch("hackney", 2100), key()).unwrap(),
            FetchOutcome::Recorded { .. }
        ));
        assert_checkpointed(&s);
    }

    #[test]
    fn inbox_and_sent() {
        let s = store();
        let a = new_drop(&["islington"]);
        let mut b = new_drop(&["islington", "hackney"]);
        b.created = 1500;
        let open = new_drop(&["islington"]);
        let mut expired = new_drop(&["islington"]);
        expired.expires = 2500;
        for d in [&a, &b, &open, &expired] {
            s.create_drop(d).unwrap();
        }
        commit(&s, &b);
        commit(&s, &a);
        commit(&s, &expired);
        let inbox: Vec<DropId> = s.inbox(&party("islington"), 3000).unwrap().into_iter().map(|d| d.id).collect();
        assert_eq!(inbox.len(), 2);
        assert!(inbox.contains(&a.id) && inbox.contains(&b.id), "open and expired drops are not listed");
        assert_eq!(s.inbox(&party("hackney"), 3000).unwrap().len(), 1);
        assert_eq!(s.inbox(&party("barnet"), 3000).unwrap().len(), 0);
        s.record_fetch(&a.id, &fetch("islington", 2050), key()).unwrap();
        s.acknowledge(&a.id, &ack("islington"), key()).unwrap();
        assert_eq!(s.inbox(&party("islington"), 3000).unwrap().len(), 1, "acknowledged drops leave the inbox");

        let before = s.log_size().unwrap();
        assert_eq!(
            s.record_fetch(&b.id, &fetch("hackney", 2100), key()).unwrap(),
            FetchOutcome::Recorded { log_index: before }
        );
        assert_eq!(
            s.record_fetch(&b.id, &fetch("hackney", 2200), key()).unwrap(),
            FetchOutcome::Recorded { log_index: before + 1 },
            "every fetch is logged"
        );
        let sent = s.sent(&party("camden"), None).unwrap();
        assert_eq!(sent.len(), 4);
        assert_eq!(sent[0].drop.id, b.id, "newest first");
        assert_eq!(sent[0].idempotency_key, None);
        let one = s.sent(&party("camden"), Some(&b.id)).unwrap();
        assert_eq!(one.len(), 1);
        let one = &one[0].drop;
        assert_eq!(one.recipient(&party("hackney")).unwrap().fetched, Some(2100), "first fetch time kept");
        assert_eq!(one.recipients[0].party.as_str(), "islington", "recipients keep the sender's order");
        assert!(s.sent(&party("islington"), Some(&b.id)).unwrap().is_empty());
        assert_checkpointed(&s);
    }

    #[test]
    fn an_idempotency_key_keeps_one_drop_per_party() {
        let s = store();
        let first = keyed_drop("camden", "a");
        assert_eq!(created(s.create_drop(&first).unwrap()), None);
        assert_eq!(s.drop_by_idempotency_key(&party("camden"), &"a".repeat(64)).unwrap().unwrap().id, first.id);
        assert_eq!(s.drop_by_idempotency_key(&party("hackney"), &"a".repeat(64)).unwrap(), None, "per party");
        assert_eq!(s.drop_by_idempotency_key(&party("camden"), &"b".repeat(64)).unwrap(), None);

        // Open: replaced, rows and all.
        s.set_upload(&first.id, Some(&digest("a", 10)), 2000).unwrap();
        let second = keyed_drop("camden", "a");
        assert_eq!(created(s.create_drop(&second).unwrap()), Some(first.id.clone()));
        assert_eq!(s.drop_record(&first.id).unwrap(), None);
        let orphans: i64 = s
            .conn()
            .query_row("SELECT count(*) FROM drop_recipients WHERE drop_id = ?1", [first.id.as_str()], |r| r.get(0))
            .unwrap();
        assert_eq!(orphans, 0, "the replaced drop's recipients are gone too");
        let sent = s.sent(&party("camden"), None).unwrap();
        assert_eq!(sent.len(), 1);
        assert_eq!((&sent[0].drop.id, sent[0].idempotency_key.as_deref()), (&second.id, Some(&*"a".repeat(64))));

        // Another party, or no key, or another key: independent.
        assert_eq!(created(s.create_drop(&keyed_drop("hackney", "a")).unwrap()), None);
        assert_eq!(created(s.create_drop(&keyed_drop("camden", "b")).unwrap()), None);
        assert_eq!(created(s.create_drop(&new_drop(&["islington"])).unwrap()), None);
        assert_eq!(created(s.create_drop(&new_drop(&["islington"])).unwrap()), None);

        // Committed (and later): returned, nothing stored, nothing logged.
        commit(&s, &second);
        let size = s.log_size().unwrap();
        let third = keyed_drop("camden", "a");
        let CreateOutcome::AlreadyCommitted(rec) = s.create_drop(&third).unwrap() else { panic!("not returned") };
        assert_eq!((rec.id, rec.state, rec.committed), (second.id.clone(), DropState::Committed, Some(2000)));
        assert_eq!(s.drop_record(&third.id).unwrap(), None);
        assert_eq!(s.log_size().unwrap(), size);
        s.record_fetch(&second.id, &fetch("islington", 2500), key()).unwrap();
        s.acknowledge(&second.id, &ack("islington"), key()).unwrap();
        let CreateOutcome::AlreadyCommitted(rec) = s.create_drop(&third).unwrap() else { panic!("not returned") };
        assert_eq!((rec.id, rec.state), (second.id.clone(), DropState::Delivered));
        assert_eq!(s.sent(&party("camden"), None).unwrap().len(), 4);

        // The unique index holds even against a writer that skips the lookup.
        let dup = s.conn().execute(
            "INSERT INTO drops (id, sender, sender_member, agreement, created, expires, state, idempotency_key)
             VALUES (?1, 'camden', 'data-team', 'inner-fsm', 1, 2, 'open', ?2)",
            [DropId::random().as_str(), &"a".repeat(64)],
        );
        assert!(dup.is_err(), "{dup:?}");
    }

    #[test]
    fn a_failed_append_rolls_back_the_state_change() {
        let s = store();
        let d = new_drop(&["islington"]);
        s.create_drop(&d).unwrap();
        s.set_upload(&d.id, Some(&digest("a", 10)), 2000).unwrap();
        let huge = CommitRecord {
            log_entry: vec![b'x'; sealdrop_log::entry::MAX_ENTRY_BYTES + 1],
            ..commit_record("data-team")
        };
        let err = s.commit_drop(&d.id, &huge, key()).unwrap_err();
        assert!(matches!(err, MetaError::LogEntryTooLarge(_)), "{err}");
        assert_eq!(s.drop_state(&d.id).unwrap(), Some(DropState::Open), "the commit rolled back");
        assert_eq!((s.log_size().unwrap(), s.latest_checkpoint().unwrap()), (0, None));
        commit(&s, &d);

        // An ack whose deletion entry cannot be logged leaves the drop as it was.
        s.record_fetch(&d.id, &fetch("islington", 2500), key()).unwrap();
        let bad = AckRecord { delivered_entry: vec![b'x'; 70_000], ..ack("islington") };
        assert!(s.acknowledge(&d.id, &bad, key()).is_err());
        let rec = s.drop_record(&d.id).unwrap().unwrap();
        assert_eq!((rec.state, rec.recipients[0].acknowledged), (DropState::Committed, None));
        assert_eq!((rec.end_index, rec.recipients[0].ack_index), (None, None));
        assert_eq!(assert_checkpointed(&s), 2);

        // A failed state change appends nothing.
        assert!(s.insert_directory(&directory(1), b"{}", key()).is_ok());
        assert!(s.insert_directory(&directory(1), b"{}", key()).is_err());
        assert_eq!(assert_checkpointed(&s), 3);
    }

    #[test]
    fn cosignatures_are_per_checkpoint_and_witness() {
        let s = store();
        s.append_log(&[b"a".to_vec()], key()).unwrap();
        s.append_log(&[b"b".to_vec(), b"c".to_vec()], key()).unwrap();
        assert!(!s.put_cosignature(2, "w1", "line").unwrap(), "no checkpoint of size 2");
        assert!(s.put_cosignature(3, "w2", "second\n").unwrap());
        assert!(s.put_cosignature(3, "w1", "old\n").unwrap());
        assert!(s.put_cosignature(3, "w1", "new\n").unwrap());
        assert!(s.put_cosignature(1, "w1", "one\n").unwrap());
        assert_eq!(s.cosignatures(3).unwrap(), ["new\n", "second\n"]);
        assert_eq!(s.cosignatures(1).unwrap(), ["one\n"]);
        assert!(s.cosignatures(2).unwrap().is_empty());
    }

    #[test]
    fn log_reads() {
        let s = store();
        assert_eq!(s.recompute_log().unwrap(), (0, tlog_tiles::EMPTY_HASH));
        let all: Vec<Vec<u8>> = (0..10).map(|i| vec![i]).collect();
        assert_eq!(s.append_log(&all[..4], key()).unwrap(), 0);
        assert_eq!(s.append_log(&all[4..], key()).unwrap(), 4);
        assert_eq!(s.log_entries(0, 100).unwrap(), all);
        assert_eq!(s.log_entries(8, 100).unwrap(), &all[8..]);
        assert_eq!(s.log_entries(3, 2).unwrap(), &all[3..5]);
        assert!(s.log_entries(10, 1).unwrap().is_empty());
        let leaf = tlog_tiles::stored_hash_index(0, 9);
        assert_eq!(s.log_hashes(&[leaf]).unwrap(), [tlog_tiles::record_hash(&all[9])]);
        assert!(matches!(s.log_hashes(&[leaf + 100]), Err(MetaError::LogInconsistent(_))));
        assert_eq!(assert_checkpointed(&s), 10);
        assert!(s.checkpoint(4).unwrap().is_some() && s.checkpoint(5).unwrap().is_none());
    }

    #[test]
    fn nonces_are_single_use_and_purged() {
        let s = store();
        assert!(s.insert_nonce("camden/a", "n1", 100).unwrap());
        assert!(!s.insert_nonce("camden/a", "n1", 101).unwrap());
        assert!(s.insert_nonce("camden/b", "n1", 101).unwrap(), "nonces are per key");
        assert_eq!(s.purge_nonces(101).unwrap(), 1);
        assert!(s.insert_nonce("camden/a", "n1", 102).unwrap());
    }

    #[test]
    fn reopening_a_file_keeps_data_and_the_log() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("hub.db");
        let d = new_drop(&["islington"]);
        {
            let s = SqliteMetaStore::open(&path).unwrap();
            s.create_drop(&d).unwrap();
            s.append_log(&[b"one".to_vec(), b"two".to_vec(), b"three".to_vec()], key()).unwrap();
        }
        let s = SqliteMetaStore::open(&path).unwrap();
        assert_eq!(s.drop_state(&d.id).unwrap(), Some(DropState::Open));
        assert_eq!(assert_checkpointed(&s), 3);
    }

    #[test]
    fn a_database_from_before_the_log_is_migrated() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("hub.db");
        {
            let mut conn = Connection::open(&path).unwrap();
            Migrations::from_slice(&MIGRATIONS[..1]).to_latest(&mut conn).unwrap();
            conn.execute("INSERT INTO settings (key, value) VALUES ('origin', 'old')", []).unwrap();
        }
        let s = SqliteMetaStore::open(&path).unwrap();
        assert_eq!(s.setting("origin").unwrap().as_deref(), Some("old"));
        assert_eq!((s.log_size().unwrap(), s.latest_checkpoint().unwrap()), (0, None));
    }

    #[test]
    fn a_database_from_before_idempotency_keys_is_migrated() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("hub.db");
        let old = DropId::random();
        {
            let mut conn = Connection::open(&path).unwrap();
            Migrations::from_slice(&MIGRATIONS[..2]).to_latest(&mut conn).unwrap();
            conn.execute(
                "INSERT INTO drops (id, sender, sender_member, agreement, created, expires, state)
                 VALUES (?1, 'camden', 'data-team', 'inner-fsm', 1000, 5000, 'open')",
                [old.as_str()],
            )
            .unwrap();
            conn.execute("INSERT INTO drop_recipients (drop_id, party) VALUES (?1, 'islington')", [old.as_str()])
                .unwrap();
        }
        let s = SqliteMetaStore::open(&path).unwrap();
        let rec = s.drop_record(&old).unwrap().unwrap();
        assert_eq!((rec.state, rec.sender.as_str(), rec.recipients.len()), (DropState::Open, "camden", 1));
        let sent = s.sent(&party("camden"), None).unwrap();
        assert_eq!((&sent[0].drop.id, &sent[0].idempotency_key), (&old, &None));
        // The old drop can still be committed, and keyed drops work beside it.
        commit(&s, &NewDrop { id: old.clone(), ..new_drop(&["islington"]) });
        assert_eq!(s.drop_state(&old).unwrap(), Some(DropState::Committed));
        let keyed = keyed_drop("camden", "c");
        assert_eq!(created(s.create_drop(&keyed).unwrap()), None);
        assert_eq!(created(s.create_drop(&keyed_drop("camden", "c")).unwrap()), Some(keyed.id.clone()));
        assert_eq!(s.sent(&party("camden"), None).unwrap().len(), 2);
        drop(s);
        // Reopening an up-to-date database changes nothing.
        let s = SqliteMetaStore::open(&path).unwrap();
        assert_eq!(s.sent(&party("camden"), None).unwrap().len(), 2);
    }

    #[test]
    fn upload_activity_is_recorded_for_open_drops_and_falls_back_to_creation() {
        let s = store();
        let d = new_drop(&["islington"]);
        created(s.create_drop(&d).unwrap());
        assert_eq!(s.upload_activity(&d.id).unwrap(), Some(1000), "no activity yet: the creation time");
        assert!(s.set_upload(&d.id, None, 1500).unwrap());
        assert_eq!(s.upload_activity(&d.id).unwrap(), Some(1500));
        assert!(s.set_upload(&d.id, Some(&digest("a", 10)), 1800).unwrap());
        assert_eq!(s.upload_activity(&d.id).unwrap(), Some(1800));
        assert_eq!(s.drop_record(&d.id).unwrap().unwrap().upload, Some(digest("a", 10)));
        commit(&s, &d);
        assert_eq!(s.upload_activity(&d.id).unwrap(), None, "a committed drop has no upload to keep");
        assert_eq!(s.upload_activity(&DropId::random()).unwrap(), None);
    }

    #[test]
    fn a_database_from_before_upload_activity_is_migrated() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("hub.db");
        let old = DropId::random();
        {
            let mut conn = Connection::open(&path).unwrap();
            Migrations::from_slice(&MIGRATIONS[..5]).to_latest(&mut conn).unwrap();
            conn.execute(
                "INSERT INTO drops (id, sender, sender_member, agreement, created, expires, state, upload_sha256, upload_len)
                 VALUES (?1, 'camden', 'data-team', 'inner-fsm', 1000, 5000, 'open', ?2, 10)",
                params![old.as_str(), "a".repeat(64)],
            )
            .unwrap();
        }
        let s = SqliteMetaStore::open(&path).unwrap();
        // An upload from before counts from its drop's creation.
        assert_eq!(s.upload_activity(&old).unwrap(), Some(1000));
        assert_eq!(s.drop_record(&old).unwrap().unwrap().upload, Some(digest("a", 10)));
    }

    #[test]
    fn a_database_from_before_the_log_index_is_filled_from_the_log_once() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("hub.db");
        // A real log: drop 0 (camden to hackney) is committed, fetched,
        // acknowledged and deleted as delivered; drop 1 the same (hackney to
        // islington), after directory 2 is published at entry 5.
        let log = sealdrop_log::testlog::generate(3, 2);
        let m = |i: usize| match log.entry(i) {
            sealdrop_log::entry::LogEntry::DropCommitted { manifest, .. } => {
                sealdrop_proto::note::peek_doc::<sealdrop_proto::drop::Manifest>(&manifest).unwrap()
            }
            other => panic!("entry {i} is not a commit: {other:?}"),
        };
        let (first, second) = (m(1), m(6));
        {
            let mut conn = Connection::open(&path).unwrap();
            Migrations::from_slice(&MIGRATIONS[..6]).to_latest(&mut conn).unwrap();
            for (idx, data) in log.entries.iter().enumerate() {
                conn.execute("INSERT INTO log_entries (idx, data) VALUES (?1, ?2)", params![idx as i64, data]).unwrap();
            }
            for d in [&first, &second] {
                conn.execute(
                    "INSERT INTO drops (id, sender, sender_member, agreement, created, expires, state)
                     VALUES (?1, ?2, 'data-team', 'a', 1, 2, 'delivered')",
                    [d.drop.as_str(), d.sender.as_str()],
                )
                .unwrap();
                conn.execute(
                    "INSERT INTO drop_recipients (drop_id, party) VALUES (?1, ?2)",
                    [d.drop.as_str(), d.recipients[0].as_str()],
                )
                .unwrap();
            }
        }
        let s = SqliteMetaStore::open(&path).unwrap();
        let rec = s.drop_record(&first.drop).unwrap().unwrap();
        assert_eq!((rec.commit_index, rec.end_index), (Some(1), Some(4)));
        let r = &rec.recipients[0];
        assert_eq!((r.downloads, r.fetch_index, r.ack_index), (1, Some(2), Some(3)));
        let rec = s.drop_record(&second.drop).unwrap().unwrap();
        assert_eq!((rec.commit_index, rec.end_index), (Some(6), Some(9)));
        // Filled once: what the store records later is not recounted.
        s.conn().execute("UPDATE drop_recipients SET downloads = 7", []).unwrap();
        drop(s);
        let s = SqliteMetaStore::open(&path).unwrap();
        assert_eq!(s.drop_record(&first.drop).unwrap().unwrap().recipients[0].downloads, 7);
    }

    fn end(state: DropState, at: i64, unless_acknowledged: bool) -> EndRecord {
        EndRecord { state, at, log_entries: vec![b"{\"end\":1}".to_vec()], unless_acknowledged }
    }

    #[test]
    fn the_sweeper_finds_expired_and_out_of_agreement_drops() {
        let s = store();
        let in_force = ["inner-fsm".to_owned()];
        let open = new_drop(&["islington"]);
        let committed = new_drop(&["islington"]);
        let later = NewDrop { expires: 9000, ..new_drop(&["islington"]) };
        let other = NewDrop { agreement: "ended".into(), expires: 9000, ..new_drop(&["islington"]) };
        for d in [&open, &committed, &later, &other] {
            created(s.create_drop(d).unwrap());
        }
        for d in [&committed, &later, &other] {
            commit(&s, d);
        }
        let ids = |items: Vec<SweepItem>| items.into_iter().map(|i| (i.id, i.state)).collect::<Vec<_>>();
        // Before the expiry only the drop under an agreement not in force is due.
        assert_eq!(ids(s.due_for_sweep(4999, &in_force, 10).unwrap()), vec![(other.id.clone(), DropState::Committed)]);
        let due = ids(s.due_for_sweep(5000, &in_force, 10).unwrap());
        assert_eq!(due.len(), 3);
        assert!(
            due.contains(&(open.id.clone(), DropState::Open))
                && due.contains(&(committed.id.clone(), DropState::Committed))
        );
        assert_eq!(s.due_for_sweep(5000, &in_force, 1).unwrap().len(), 1, "the limit holds");

        // Ending a committed drop sets its state and deletion time and logs it.
        let before = s.log_size().unwrap();
        assert_eq!(
            s.end_drop(&committed.id, &end(DropState::Expired, 5000, false), key()).unwrap(),
            EndOutcome::Ended { log_index: before }
        );
        let rec = s.drop_record(&committed.id).unwrap().unwrap();
        assert_eq!((rec.state, rec.deleted), (DropState::Expired, Some(5000)));
        assert_eq!(s.log_size().unwrap(), before + 1);
        assert_checkpointed(&s);
        // Only once; and an open drop is not ended but forgotten.
        assert_eq!(
            s.end_drop(&committed.id, &end(DropState::Expired, 5001, false), key()).unwrap(),
            EndOutcome::NotCommitted(Some(DropState::Expired))
        );
        assert_eq!(
            s.end_drop(&open.id, &end(DropState::Expired, 5001, false), key()).unwrap(),
            EndOutcome::NotCommitted(Some(DropState::Open))
        );
        assert!(s.forget_open_drop(&open.id).unwrap());
        assert!(!s.forget_open_drop(&open.id).unwrap());
        assert!(!s.forget_open_drop(&later.id).unwrap(), "a committed drop is never forgotten");
        assert_eq!(s.drop_record(&open.id).unwrap(), None);
        // An ended drop is no longer fetched (and nothing is logged).
        assert_eq!(
            s.record_fetch(&committed.id, &fetch("islington", 5002), key()).unwrap(),
            FetchOutcome::NotCommitted
        );
        assert_eq!(s.log_size().unwrap(), before + 1);
        assert_eq!(ids(s.due_for_sweep(5000, &in_force, 10).unwrap()), vec![(other.id.clone(), DropState::Committed)]);
    }

    #[test]
    fn a_recall_is_refused_inside_the_transaction_once_acknowledged() {
        let s = store();
        let d = new_drop(&["islington", "hackney"]);
        created(s.create_drop(&d).unwrap());
        commit(&s, &d);
        s.record_fetch(&d.id, &fetch("hackney", 2500), key()).unwrap();
        assert!(matches!(s.acknowledge(&d.id, &ack("hackney"), key()).unwrap(), AckOutcome::Recorded { .. }));
        let size = s.log_size().unwrap();
        let EndOutcome::Acknowledged(acked) = s.end_drop(&d.id, &end(DropState::Recalled, 3500, true), key()).unwrap()
        else {
            panic!("a recall after an acknowledgement must be refused")
        };
        assert_eq!(acked.iter().map(|r| r.party.as_str()).collect::<Vec<_>>(), ["hackney"]);
        assert_eq!((s.drop_state(&d.id).unwrap(), s.log_size().unwrap()), (Some(DropState::Committed), size));
        // Without that condition (expiry) it ends all the same.
        assert!(matches!(
            s.end_drop(&d.id, &end(DropState::Expired, 5000, false), key()).unwrap(),
            EndOutcome::Ended { .. }
        ));
        assert!(s.end_drop(&d.id, &end(DropState::Delivered, 5000, false), key()).is_err(), "not a way to end");
    }
}
