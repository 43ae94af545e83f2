//! The hub's metadata stores ([`super::meta`]) on SQLite: one connection behind a mutex, WAL journal,
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
//! Every call runs on one thread of the store's own ([`worker`]), which
//! leaves the syncs to the blocking pool so that concurrent commits still
//! share them.
//!
//! The connection's mutex is the hub's write lock: a transaction holds it
//! from `BEGIN IMMEDIATE` to `COMMIT`, so log appends are serialised and
//! each sees the previous one's checkpoint.
//!
//! The database file is created with mode 0600 (SQLite gives its `-wal` and
//! `-shm` files the database's mode), and deleted ciphertext rows leave no
//! bytes behind in any of them (`secure_delete` and a checkpoint; see
//! [`crate::storage::scrub`]).
//!
//! Each store trait is implemented in its own module (settings, directory,
//! drops, nonces, log); this one holds the connection, the transactions and
//! the durability they share.

/// The database file's name inside the data directory.
pub const DB_FILE: &str = "hub.db";

mod directory;
mod drops;
mod inline_blobs;
mod log;
mod log_index;
mod nonces;
pub(in crate::storage) mod rows;
mod schema;
mod settings;
#[cfg(test)]
mod tests;
mod whole;
mod worker;

use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard, Weak};

use rusqlite::{Connection, Transaction, TransactionBehavior};
use rusqlite_migration::Migrations;

pub use self::inline_blobs::{BlobStage, InlineBlobs};
use super::group_sync::GroupSync;
use super::meta::{AppendTurn, MetaError};
use super::scrub::Scrubber;
use crate::storage::convert::{parse, to_i64, to_u64};

/// The schema version (`PRAGMA user_version`) this hub's migrations bring
/// a database to, so a tool reading a database without opening it as a
/// store (`migrate`) can tell whether its tables are the ones it knows.
pub fn schema_version() -> usize {
    schema::MIGRATIONS.len()
}

/// Recomputes the transfer log held by `conn`, a connection of the tool's
/// own (`migrate` reads a stopped hub's database read-only, without the
/// store's migrations and clean-up): see [`super::LogStore::recompute_log`].
pub fn recompute_log_on(conn: &Connection) -> Result<(u64, tlog_tiles::Hash), MetaError> {
    log::recompute(conn)
}

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
    /// The thread every call of the stores runs on ([`worker`]).
    worker: worker::Worker,
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
        Migrations::from_slice(schema::MIGRATIONS).to_latest(&mut conn)?;
        log_index::fill_once(&mut conn)?;
        let on_disk = conn.path().is_some_and(|p| !p.is_empty());
        let wal_sync = conn.path().filter(|p| !p.is_empty()).map(|db| {
            let wal = std::path::PathBuf::from(format!("{db}-wal"));
            let flush: Box<dyn Fn() -> std::io::Result<()> + Send + Sync> =
                Box::new(move || std::fs::File::open(&wal)?.sync_data());
            GroupSync::new(flush)
        });
        let worker = worker::Worker::start()?;
        let db = Arc::new_cyclic(|db: &Weak<Db>| {
            let db = db.clone();
            let scrub = on_disk
                .then(|| Scrubber::new(Arc::new(move || db.upgrade().map_or(Ok(()), |db| db.checkpoint_truncate()))));
            Db { conn: Mutex::new(conn), wal_sync, scrub, worker }
        });
        let store = Self { db };
        // The migrations above are as durable as any later write.
        store.db.sync_wal()?;
        // A deletion whose scrub a crash cut short is scrubbed now.
        store.db.scrub()?;
        Ok(store)
    }

    /// How many scrubbing checkpoints have run (see [`crate::storage::scrub`]).
    pub fn scrubs(&self) -> u64 {
        self.db.scrub.as_ref().map_or(0, Scrubber::runs)
    }

    /// The table of small ciphertexts in this database, for the blob store
    /// (see [`InlineBlobs`]).
    pub fn inline_blobs(&self) -> InlineBlobs {
        InlineBlobs { db: self.db.clone() }
    }

    /// Runs `f` on the database thread ([`worker`]), where SQLite's calls
    /// belong: callers of the store traits are async tasks. Each trait
    /// method is one such trip, so a state change, its log entries and their checkpoint still
    /// commit in one transaction.
    async fn blocking<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Db) -> Result<T, MetaError> + Send + 'static,
    ) -> Result<T, MetaError> {
        worker::run(&self.db, f).await
    }

    /// How many WAL syncs have run: fewer than durable writes when
    /// concurrent writers shared them.
    pub fn wal_syncs(&self) -> u64 {
        self.db.wal_sync.as_ref().map_or(0, GroupSync::syncs)
    }
}

impl Db {
    /// Runs `f` in a write transaction and returns once it is durable.
    fn durably<T>(&self, f: impl FnOnce(&Transaction<'_>) -> Result<T, MetaError>) -> Result<T, MetaError> {
        let out = in_transaction(&mut self.conn(), f)?;
        self.sync_wal()?;
        Ok(out)
    }

    /// [`Db::durably`] for a change that appends to the log in `turn`: the
    /// turn ends once the transaction has committed, before the wait for
    /// the disk, which concurrent appends share.
    fn appending<T>(
        &self,
        turn: &dyn AppendTurn,
        f: impl FnOnce(&Transaction<'_>) -> Result<T, MetaError>,
    ) -> Result<T, MetaError> {
        let out = in_transaction(&mut self.conn(), f)?;
        turn.committed();
        self.sync_wal()?;
        Ok(out)
    }

    /// Makes every transaction committed so far durable (shared with
    /// concurrent callers).
    /// On the database thread the sync is left to the caller, which waits
    /// for it before it is answered ([`worker`]).
    fn sync_wal(&self) -> Result<(), MetaError> {
        if worker::defer_sync() {
            return Ok(());
        }
        self.sync_wal_now()
    }

    /// Makes every transaction committed so far durable, now.
    fn sync_wal_now(&self) -> Result<(), MetaError> {
        match &self.wal_sync {
            Some(g) => g.sync().map_err(|e| MetaError::Corrupt(format!("cannot sync the database to disk: {e}"))),
            None => Ok(()),
        }
    }

    fn conn(&self) -> MutexGuard<'_, Connection> {
        // A panic while holding the lock cannot leave SQLite inconsistent (an
        // unfinished transaction rolls back when dropped), so carry on.
        self.conn.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Resets the WAL after ciphertext was deleted (see [`crate::storage::scrub`]);
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
