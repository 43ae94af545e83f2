//! `sealdrop-hub migrate`: moves a stopped embedded hub (the SQLite
//! database and the ciphertext files of its data directory) to PostgreSQL
//! and an S3-compatible object store, so that several instances can serve
//! it (docs/operations.md, "Moving a hub to PostgreSQL and an object store").
//!
//! - The hub must be stopped: migrate takes the data directory's lock
//!   ([`crate::data_lock`]), so a running `serve` makes it refuse, and reads
//!   the database in one read transaction, with `query_only` on: the source
//!   is never changed.
//! - It writes only into empty targets: a database holding no hub's rows
//!   (its schema is brought up to date first, as `serve` would) and a bucket
//!   prefix holding no object. A failed run leaves the source as it was; the
//!   targets are emptied by hand before running again.
//! - It copies the ciphertexts first ([`blobs`]; through [`BlobStore`], so
//!   the object store's layout is its own business) and then every row of
//!   every table in one PostgreSQL transaction ([`tables`]), so the database
//!   never shows a hub whose ciphertexts are missing.
//! - It verifies before it reports success: every table compared row by
//!   row with the source, the transfer log recomputed from the copied
//!   entries to the source's size and root and the latest signed checkpoint
//!   identical (and verified with the log key), every copied ciphertext
//!   read back from the bucket and hashed against its drop's record.
//!
//! Why the target blob store must be a bucket: the move is for a hub that
//! several instances serve, and files in one data directory serve one
//! instance; copying small ciphertexts out of the database into files would
//! also write into the source's data directory, which migrate never does.

mod blobs;
mod tables;
#[cfg(test)]
mod tests;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use base64::Engine as _;
use object_store::aws::AmazonS3Builder;
use rusqlite::{Connection, OpenFlags, OptionalExtension as _};
use sealdrop_proto::error_code::ErrorCode;

use self::blobs::Copied;
use crate::data_lock::{self, LockError};
use crate::log_key::{self, LOG_KEY_FILE};
use crate::storage::meta::{LogStore as _, SettingsStore as _, setting};
use crate::storage::postgres::PgMetaStore;
use crate::storage::sqlite::{self, BlobStage, DB_FILE};
use crate::storage::{BlobStore, BlobsLocation, FsBlobStore, ObjectBlobStore, PostgresUrl, S3Location};

/// What to move where.
#[derive(Debug, Clone)]
pub struct MigrateOptions {
    /// The stopped hub's data directory: the source, never changed.
    pub data_dir: PathBuf,
    /// The PostgreSQL database the rows go to; it must hold no hub.
    pub database: PostgresUrl,
    /// The bucket prefix the ciphertexts go to; it must hold no object.
    pub blobs: S3Location,
    /// How object stores are reached (endpoint, region, credentials): the
    /// target's, and the source's if its larger ciphertexts already are in
    /// a bucket. [`MigrateOptions::new`] takes them the standard AWS ways.
    pub s3: AmazonS3Builder,
}

impl MigrateOptions {
    /// Options reaching the object store as `serve` does (`AWS_ENDPOINT_URL`,
    /// `AWS_REGION`, `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, ...).
    pub fn new(data_dir: PathBuf, database: PostgresUrl, blobs: S3Location) -> Self {
        Self { data_dir, database, blobs, s3: AmazonS3Builder::from_env() }
    }
}

/// What was moved, once it verified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MigrateReport {
    /// The hub's origin (which hub this is).
    pub origin: String,
    /// Rows per table, equal in the source and the copy.
    pub rows: Vec<(&'static str, u64)>,
    /// Committed ciphertexts copied, and their bytes.
    pub blobs: u64,
    /// The bytes of those.
    pub blob_bytes: u64,
    /// Uploads of open drops copied (finished or cut off).
    pub uploads: u64,
    /// The bytes of those.
    pub upload_bytes: u64,
    /// The transfer log's size, equal in the source and the copy.
    pub log_size: u64,
    /// The log's root hash (base64, as in its checkpoints), recomputed from
    /// the copied entries.
    pub log_root: String,
}

/// Why a migration failed: one line each, saying what to do.
#[derive(Debug, thiserror::Error)]
pub enum MigrateError {
    /// The data directory is no hub's, or a `serve` holds it.
    #[error(transparent)]
    Lock(#[from] LockError),
    /// The source cannot be moved as it is.
    #[error("{0}")]
    Source(String),
    /// The database or the bucket prefix already holds something.
    #[error("{0}")]
    TargetNotEmpty(String),
    /// Reading the source or writing the targets failed.
    #[error("{0}; the source is unchanged: empty the database and the bucket prefix and run migrate again")]
    Failed(String),
    /// The copy differs from the source.
    #[error(
        "the copy does not verify: {0}; do not serve from it: empty the database and the bucket prefix and run \
         migrate again"
    )]
    Verify(String),
}

impl MigrateError {
    /// The stable code of the one-line error.
    pub fn code(&self) -> ErrorCode {
        match self {
            Self::Lock(e) => e.code(),
            Self::Source(_) => ErrorCode::MigrateSource,
            Self::TargetNotEmpty(_) => ErrorCode::MigrateTargetNotEmpty,
            Self::Failed(_) => ErrorCode::MigrateFailed,
            Self::Verify(_) => ErrorCode::MigrateVerifyFailed,
        }
    }
}

fn pg_failed(e: tokio_postgres::Error) -> MigrateError {
    MigrateError::Failed(format!("PostgreSQL: {e}"))
}

fn source_read(e: rusqlite::Error) -> MigrateError {
    MigrateError::Failed(format!("cannot read the hub's database: {e}"))
}

/// Moves the hub in `options.data_dir` into the targets, verifies the copy
/// and reports what it moved. Nothing in the data directory changes.
pub async fn migrate(options: MigrateOptions) -> Result<MigrateReport, MigrateError> {
    let _lock = data_lock::lock(&options.data_dir)?;
    if !options.data_dir.join(DB_FILE).is_file() {
        return Err(MigrateError::Source(format!(
            "{} holds no {DB_FILE}: it is an instance directory of a hub already on PostgreSQL; migrate moves a \
             hub from its SQLite database",
            options.data_dir.display()
        )));
    }
    // The object stores' spool: never under the source's data directory.
    let spool = tempfile::Builder::new()
        .prefix("sealdrop-migrate-")
        .tempdir()
        .map_err(|e| MigrateError::Failed(format!("cannot create a temporary folder: {e}")))?;
    let source = Source::open(&options.data_dir, &options.s3, spool.path())?;
    let mut target = Target::connect(&options, spool.path()).await?;
    target.check_empty().await?;
    let copied = copy(&source, &mut target).await?;
    verify(&source, &target, &copied).await
}

/// The stopped hub, read in one read transaction.
struct Source {
    /// Where its log key is.
    data_dir: PathBuf,
    /// Its database, inside a read transaction for the whole migration.
    conn: Connection,
    /// Where its larger ciphertexts are (files, or a bucket).
    large: Arc<dyn BlobStore>,
    /// Its origin.
    origin: String,
}

impl Source {
    fn open(data_dir: &Path, s3: &AmazonS3Builder, spool: &Path) -> Result<Self, MigrateError> {
        let path = data_dir.join(DB_FILE);
        // Read-write only so SQLite can use the WAL's shared-memory file;
        // `query_only` refuses any write. (Closing it checkpoints a WAL that
        // a hub killed mid-way left, as the hub's own next open would: the
        // database's content is unchanged.)
        let conn =
            Connection::open_with_flags(&path, OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX)
                .map_err(source_read)?;
        conn.execute_batch("PRAGMA query_only = ON; BEGIN").map_err(source_read)?;
        let version: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0)).map_err(source_read)?;
        let current = sqlite::schema_version();
        if usize::try_from(version).ok() != Some(current) {
            return Err(MigrateError::Source(format!(
                "the hub's database is schema version {version}, this sealdrop-hub's is {current}: run this \
                 version's `sealdrop-hub serve` on it once (it brings the schema up to date), stop it, then migrate"
            )));
        }
        let setting_of = |key: &str| -> Result<Option<String>, MigrateError> {
            conn.query_row("SELECT value FROM settings WHERE key = ?1", [key], |r| r.get(0))
                .optional()
                .map_err(source_read)
        };
        let origin = setting_of(setting::ORIGIN)?
            .ok_or_else(|| MigrateError::Source("the hub's database has no origin setting".into()))?;
        let location = match setting_of(setting::BLOBS)? {
            None => BlobsLocation::Files,
            Some(text) => BlobsLocation::parse(&text).map_err(|why| {
                MigrateError::Source(format!("the hub's database records its blobs location as {text:?}: {why}"))
            })?,
        };
        let large: Arc<dyn BlobStore> = match &location {
            BlobsLocation::Files => Arc::new(FsBlobStore::open(data_dir).map_err(|e| {
                MigrateError::Failed(format!("cannot open the data directory's ciphertext files: {e}"))
            })?),
            BlobsLocation::S3(location) => {
                Arc::new(ObjectBlobStore::with_builder(s3.clone(), location, spool).map_err(|e| {
                    MigrateError::Failed(format!("cannot open the source's object store {location}: {e}"))
                })?)
            }
        };
        Ok(Self { data_dir: data_dir.to_owned(), conn, large, origin })
    }
}

/// The new stores.
struct Target {
    /// The database through the hub's stores, as `serve` will use it.
    meta: PgMetaStore,
    /// A connection of the store's pool, for the `COPY` and the comparisons.
    client: deadpool_postgres::Client,
    /// The object store.
    blobs: ObjectBlobStore,
    /// Where it is, recorded as the hub's blobs location.
    location: S3Location,
}

impl Target {
    async fn connect(options: &MigrateOptions, spool: &Path) -> Result<Self, MigrateError> {
        let meta = PgMetaStore::connect(options.database.connect_string())
            .await
            .map_err(|e| MigrateError::Failed(format!("cannot use the target database: {e}")))?;
        let client =
            meta.client().await.map_err(|e| MigrateError::Failed(format!("cannot use the target database: {e}")))?;
        let blobs = ObjectBlobStore::with_builder(options.s3.clone(), &options.blobs, spool)
            .map_err(|e| MigrateError::Failed(format!("cannot open the object store {}: {e}", options.blobs)))?;
        Ok(Self { meta, client, blobs, location: options.blobs.clone() })
    }

    /// Refuses a database that holds any hub row or a prefix that holds any object.
    async fn check_empty(&mut self) -> Result<(), MigrateError> {
        let tx = self.client.transaction().await.map_err(pg_failed)?;
        if let Some(table) = tables::first_non_empty(&tx).await? {
            return Err(database_not_empty(&table));
        }
        drop(tx);
        let found = self
            .blobs
            .any_object()
            .await
            .map_err(|e| MigrateError::Failed(format!("cannot list the bucket prefix {}: {e}", self.location)))?;
        if let Some(key) = found {
            return Err(MigrateError::TargetNotEmpty(format!(
                "the bucket prefix {} already holds objects (e.g. {key}): migrate writes only into an empty prefix; \
                 give another prefix or empty this one",
                self.location
            )));
        }
        Ok(())
    }
}

fn database_not_empty(table: &str) -> MigrateError {
    MigrateError::TargetNotEmpty(format!(
        "the target database already holds a hub (its {table} table is not empty): migrate writes only into an \
         empty database; give a new one (createdb) or drop this one's tables"
    ))
}

/// Copies the ciphertexts, then every row in one transaction.
async fn copy(source: &Source, target: &mut Target) -> Result<Vec<Copied>, MigrateError> {
    let copied = blobs::copy(&source.conn, source.large.as_ref(), &target.blobs).await?;
    let tx = target.client.transaction().await.map_err(pg_failed)?;
    // Taken by every append too: a hub started on this database meanwhile
    // waits, and finds it full.
    tx.query_one("SELECT size FROM log_head FOR UPDATE", &[]).await.map_err(pg_failed)?;
    if let Some(table) = tables::first_non_empty(&tx).await? {
        return Err(database_not_empty(&table));
    }
    let mut log_size = 0u64;
    for table in tables::TABLES {
        let rows = tables::copy_table(&source.conn, &tx, table).await?;
        if table.name == "log_entries" {
            log_size = rows;
        }
    }
    let log_size = i64::try_from(log_size).map_err(|_| MigrateError::Source("the log is too large".into()))?;
    tx.execute("INSERT INTO settings (key, value) VALUES ($1, $2)", &[&setting::BLOBS, &target.location.to_string()])
        .await
        .map_err(pg_failed)?;
    tx.execute("UPDATE log_head SET size = $1", &[&log_size]).await.map_err(pg_failed)?;
    tx.commit().await.map_err(pg_failed)?;
    Ok(copied)
}

/// Checks the copy against the source (see the module docs) and reports it.
async fn verify(source: &Source, target: &Target, copied: &[Copied]) -> Result<MigrateReport, MigrateError> {
    let mut rows = Vec::new();
    for table in tables::TABLES {
        rows.push((table.name, tables::compare_table(&source.conn, &target.client, table).await?));
    }
    let recorded = target.meta.setting(setting::BLOBS).await.map_err(|e| MigrateError::Failed(e.to_string()))?;
    if recorded != Some(target.location.to_string()) {
        return Err(MigrateError::Verify(format!("the copy records its blobs location as {recorded:?}")));
    }

    let (size, root) = sqlite::recompute_log_on(&source.conn)
        .map_err(|e| MigrateError::Source(format!("the hub's transfer log does not verify: {e}")))?;
    let copied_log = target
        .meta
        .recompute_log()
        .await
        .map_err(|e| MigrateError::Verify(format!("the copied transfer log does not verify: {e}")))?;
    if copied_log != (size, root) {
        return Err(MigrateError::Verify(format!(
            "the copied transfer log recomputes to {} entries with another root than the source's {size}",
            copied_log.0
        )));
    }
    let source_latest: Option<(i64, String)> = source
        .conn
        .query_row("SELECT size, note FROM checkpoints ORDER BY size DESC LIMIT 1", [], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()
        .map_err(source_read)?;
    let target_latest = target.meta.latest_checkpoint().await.map_err(|e| MigrateError::Failed(e.to_string()))?;
    let Some((_, note)) = source_latest else {
        return Err(MigrateError::Source("the hub's transfer log has no signed checkpoint".into()));
    };
    if target_latest.as_ref().map(|c| &c.note) != Some(&note) {
        return Err(MigrateError::Verify("the copy's latest checkpoint is not the source's".into()));
    }
    let key = log_key::load(&source.data_dir.join(LOG_KEY_FILE), &source.origin)
        .map_err(|e| MigrateError::Source(format!("cannot read the hub's log key: {e}")))?;
    let checkpoint = sealdrop_log::checkpoint::open(&note, &key.verifier()).map_err(|e| {
        MigrateError::Source(format!("the hub's latest checkpoint does not verify with its log key: {e}"))
    })?;
    if checkpoint.size != size || checkpoint.root != root {
        return Err(MigrateError::Source(format!(
            "the hub's latest checkpoint (size {}) does not cover its {size} log entries",
            checkpoint.size
        )));
    }

    blobs::verify(copied, &target.meta, &target.blobs).await?;
    let total = |stage: BlobStage| {
        let of_stage = copied.iter().filter(|c| c.stage == stage);
        (of_stage.clone().count() as u64, of_stage.map(|c| c.digest.len).sum::<u64>())
    };
    let ((blobs, blob_bytes), (uploads, upload_bytes)) = (total(BlobStage::Blob), total(BlobStage::Upload));
    Ok(MigrateReport {
        origin: source.origin.clone(),
        rows,
        blobs,
        blob_bytes,
        uploads,
        upload_bytes,
        log_size: size,
        log_root: base64::engine::general_purpose::STANDARD.encode(root.0),
    })
}
