//! Online backup and restore of a hub that keeps its data in the local
//! stores (the SQLite database and the ciphertext files of its data
//! directory). A hub on other stores (PostgreSQL, an object store) is backed
//! up with their own tools instead.
//!
//! A backup is a directory holding a snapshot of the database (which also
//! holds the transfer log and the small ciphertexts), the large ciphertext
//! files of the drops committed in that snapshot, the log key, and
//! `sealdrop-hub-backup.json`: what was backed up, with every file's size
//! and SHA-256. It is taken while the hub serves:
//!
//! - The database snapshot is one read transaction (`VACUUM INTO`), so it is
//!   consistent whatever the hub writes meanwhile.
//! - The hub writes a ciphertext file before the database says the drop is
//!   committed, and deletes it only after the database says it is not, so
//!   every drop committed in the snapshot has its file when the snapshot is
//!   taken. A file can still vanish before it is copied (the drop was
//!   delivered, recalled or expired just after the snapshot); then the
//!   snapshot is taken again, and the copies it no longer needs are dropped.
//! - Uploads in progress are not backed up (their senders upload again): the
//!   snapshot's open drops forget their unfinished uploads.
//!
//! The backup is written beside its destination and renamed into place only
//! when complete, so an interrupted backup leaves no directory that looks
//! like one. `restore` checks every file against the manifest and every
//! committed ciphertext against the hash its drop was committed with, opens
//! the result as a hub (which verifies the directory's signature and
//! recomputes the transfer log against its newest signed checkpoint), and
//! only then renames it into place.
//!
//! Restoring takes the hub back to the time of the backup: drops committed
//! later are gone, and so are the log entries after the backup's
//! checkpoint. Clients that saw a later checkpoint report the shorter log as
//! a rollback, as they must; see docs/operations.md.

use std::collections::BTreeSet;
use std::io::{Read as _, Write as _};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rusqlite::{Connection, OpenFlags, OptionalExtension as _};
use sealdrop_proto::clock::Clock;
use sealdrop_proto::ids::DropId;
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

use crate::hub::{DB_FILE, Hub};
use crate::log_key::LOG_KEY_FILE;

/// The manifest's file name inside a backup.
pub const MANIFEST_FILE: &str = "sealdrop-hub-backup.json";
/// The manifest's `format`: changes when a backup's layout does.
const FORMAT: &str = "sealdrop-hub-backup/1";
/// Where large ciphertexts live, in a data directory and in a backup.
const BLOBS_DIR: &str = "blobs";
const BLOB_SUFFIX: &str = ".age";
/// Snapshots taken at most, when ciphertexts keep vanishing before they are
/// copied (each retry only copies what the newer snapshot added).
const ATTEMPTS: usize = 5;
const COPY_BUFFER: usize = 1 << 20;

/// Why a backup or a restore failed. Each message is one line that says
/// what is wrong and what to do.
#[derive(Debug, thiserror::Error)]
pub enum BackupError {
    #[error(
        "{} is not an initialised hub data directory: give the --data the hub serves",
        .0.display()
    )]
    NotAHub(PathBuf),
    #[error("{} already exists and is not empty: choose a new or empty directory", .0.display())]
    TargetNotEmpty(PathBuf),
    #[error("cannot {action} {}: {source}", .path.display())]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot {action} the database {}: {source} (is the path right, and the disk not full?)", .path.display())]
    Database {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: rusqlite::Error,
    },
    #[error("{} is not valid UTF-8, which SQLite needs for a snapshot's path: choose another directory", .0.display())]
    PathNotUtf8(PathBuf),
    #[error(
        "ciphertexts kept being deleted while they were copied ({ATTEMPTS} snapshots in a row): \
         run the backup again, at a quieter time"
    )]
    Unsettled,
    #[error(
        "{} is not a sealdrop hub backup (it has no {MANIFEST_FILE}): give the directory `sealdrop-hub backup --to` made",
        .0.display()
    )]
    NotABackup(PathBuf),
    #[error("the backup in {} is damaged: {reason}; restore from another backup", .dir.display())]
    Damaged { dir: PathBuf, reason: String },
    #[error("the restored hub does not open: {0}")]
    Hub(#[from] crate::HubError),
}

impl BackupError {
    fn io(action: &'static str, path: &Path, source: std::io::Error) -> Self {
        Self::Io { action, path: path.to_owned(), source }
    }

    fn db(action: &'static str, path: &Path) -> impl FnOnce(rusqlite::Error) -> Self {
        let path = path.to_owned();
        move |source| Self::Database { action, path, source }
    }

    fn damaged(dir: &Path, reason: impl Into<String>) -> Self {
        Self::Damaged { dir: dir.to_owned(), reason: reason.into() }
    }
}

/// `sealdrop-hub-backup.json`.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Manifest {
    /// [`FORMAT`].
    format: String,
    /// The hub's origin, so an operator can tell backups of two hubs apart.
    origin: String,
    /// When the backup was taken (RFC 3339).
    created: String,
    /// The transfer log's size in the snapshot.
    log_size: u64,
    /// The newest signed checkpoint in the snapshot: what the restored hub's
    /// log will be, and what an auditor can compare with witnesses' copies.
    checkpoint: String,
    /// How many drops were committed (fetchable) in the snapshot.
    committed_drops: u64,
    /// Every file of the backup but the manifest, sorted by path.
    files: Vec<FileEntry>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileEntry {
    /// Relative to the backup directory, with `/` separators.
    path: String,
    len: u64,
    /// Hex SHA-256 of the file.
    sha256: String,
}

/// What a backup holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackupReport {
    /// The hub's origin.
    pub origin: String,
    /// The transfer log's size in the snapshot.
    pub log_size: u64,
    /// Drops committed in the snapshot.
    pub committed_drops: u64,
    /// Files in the backup (database, log key, ciphertext files).
    pub files: usize,
    /// Their total size in bytes.
    pub bytes: u64,
    /// Database snapshots taken (more than one when ciphertexts were
    /// deleted while they were being copied).
    pub snapshots: usize,
}

/// What a restore put in place.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RestoreReport {
    /// The hub's origin.
    pub origin: String,
    /// The transfer log's size after the restore (its checkpoint was verified).
    pub log_size: u64,
    /// Drops committed in the backup, each ciphertext checked against the
    /// hash it was committed with.
    pub committed_drops: u64,
    /// When the backup was taken.
    pub created: String,
    /// The serial of the directory in the backup: clients that verified a
    /// newer one refuse the restored hub until the coordinator publishes it
    /// again, so the operator is told which serial the hub went back to.
    pub directory_serial: u64,
}

/// Backs up the hub in `data_dir` (which may be serving) into `to`, a new
/// or empty directory.
pub fn backup(data_dir: &Path, to: &Path, clock: &dyn Clock) -> Result<BackupReport, BackupError> {
    let live_db = data_dir.join(DB_FILE);
    if !live_db.is_file() {
        return Err(BackupError::NotAHub(data_dir.to_owned()));
    }
    ensure_new_or_empty(to)?;
    let staging = Staging::beside(to)?;
    let dir = staging.path();
    let mut files = vec![copy_file(&data_dir.join(LOG_KEY_FILE), &dir.join(LOG_KEY_FILE), LOG_KEY_FILE, 0o600)?];

    let blobs_dir = dir.join(BLOBS_DIR);
    create_private_dir(&blobs_dir)?;
    let snapshot = dir.join(DB_FILE);
    let mut copied: std::collections::BTreeMap<DropId, FileEntry> = Default::default();
    let mut snapshots = 0;
    let needed = loop {
        if snapshots == ATTEMPTS {
            return Err(BackupError::Unsettled);
        }
        snapshots += 1;
        take_snapshot(&live_db, &snapshot)?;
        let needed = committed_file_blobs(&snapshot)?;
        let mut vanished = false;
        for id in &needed {
            if copied.contains_key(id) {
                continue;
            }
            let name = format!("{id}{BLOB_SUFFIX}");
            let rel = format!("{BLOBS_DIR}/{name}");
            match copy_file(&data_dir.join(BLOBS_DIR).join(&name), &blobs_dir.join(&name), &rel, 0o600) {
                Ok(entry) => {
                    copied.insert(id.clone(), entry);
                }
                Err(BackupError::Io { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => {
                    vanished = true;
                }
                Err(e) => return Err(e),
            }
        }
        if !vanished {
            break needed;
        }
        tracing::info!(snapshot = snapshots, "a ciphertext was deleted before it was copied; taking a newer snapshot");
    };
    for (id, entry) in &copied {
        if !needed.contains(id) {
            let path = dir.join(&entry.path);
            std::fs::remove_file(&path).map_err(|e| BackupError::io("remove", &path, e))?;
        }
    }
    files.extend(copied.into_iter().filter(|(id, _)| needed.contains(id)).map(|(_, entry)| entry));

    let summary = forget_unfinished_uploads(&snapshot)?;
    files.push(hash_file(&snapshot, DB_FILE)?);
    files.sort_by(|a, b| a.path.cmp(&b.path));
    let manifest = Manifest {
        format: FORMAT.to_owned(),
        origin: summary.origin.clone(),
        created: crate::hub::whole_seconds(clock.now()).to_string(),
        log_size: summary.log_size,
        checkpoint: summary.checkpoint,
        committed_drops: summary.committed_drops,
        files,
    };
    let report = BackupReport {
        origin: summary.origin,
        log_size: summary.log_size,
        committed_drops: summary.committed_drops,
        files: manifest.files.len(),
        bytes: manifest.files.iter().map(|f| f.len).sum(),
        snapshots,
    };
    let text = serde_json::to_vec_pretty(&manifest).map_err(|e| BackupError::damaged(dir, e.to_string()))?;
    write_synced(&dir.join(MANIFEST_FILE), &text)?;
    sync_dir(&blobs_dir)?;
    staging.finish(to)?;
    Ok(report)
}

/// Restores the backup in `from` into `data_dir`, a new or empty directory,
/// after checking it (see the module docs). Nothing is written to
/// `data_dir` unless every check passes.
pub fn restore(from: &Path, data_dir: &Path, clock: Arc<dyn Clock>) -> Result<RestoreReport, BackupError> {
    let manifest_path = from.join(MANIFEST_FILE);
    let text = match std::fs::read(&manifest_path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Err(BackupError::NotABackup(from.to_owned())),
        Err(e) => return Err(BackupError::io("read", &manifest_path, e)),
    };
    let manifest: Manifest = serde_json::from_slice(&text)
        .map_err(|e| BackupError::damaged(from, format!("{MANIFEST_FILE} does not parse: {e}")))?;
    if manifest.format != FORMAT {
        return Err(BackupError::damaged(
            from,
            format!(
                "its format is {:?}, this hub reads {FORMAT:?} (use the hub version that made it)",
                manifest.format
            ),
        ));
    }
    check_listing(from, &manifest)?;
    ensure_new_or_empty(data_dir)?;
    let staging = Staging::beside(data_dir)?;
    let dir = staging.path();
    create_private_dir(&dir.join(BLOBS_DIR))?;
    for file in &manifest.files {
        let copied = copy_file(&from.join(&file.path), &dir.join(&file.path), &file.path, 0o600)?;
        if &copied != file {
            return Err(BackupError::damaged(
                from,
                format!(
                    "{} has {} bytes with SHA-256 {}, the manifest says {} bytes with {}",
                    file.path, copied.len, copied.sha256, file.len, file.sha256
                ),
            ));
        }
    }
    let committed_drops = check_ciphertexts(dir, from)?;
    // Opening verifies the directory's signature, the log key, and the
    // whole transfer log against its newest signed checkpoint.
    let hub = Hub::open(dir, clock)?;
    let origin = hub.origin().to_owned();
    let directory_serial = hub.directory().directory.serial;
    drop(hub);
    let log_size = read_summary(&dir.join(DB_FILE))?.log_size;
    let checkpoint = checkpoint_of_size(&dir.join(DB_FILE), manifest.log_size)?;
    if checkpoint.as_deref() != Some(manifest.checkpoint.as_str()) {
        return Err(BackupError::damaged(
            from,
            format!("the database's checkpoint of size {} is not the one in the manifest", manifest.log_size),
        ));
    }
    if origin != manifest.origin || log_size < manifest.log_size {
        return Err(BackupError::damaged(
            from,
            format!(
                "the manifest names hub {:?} with a log of {} entries, the database hub {origin:?} with {log_size}",
                manifest.origin, manifest.log_size
            ),
        ));
    }
    staging.finish(data_dir)?;
    Ok(RestoreReport { origin, log_size, committed_drops, created: manifest.created, directory_serial })
}

/// Refuses a backup whose files are not exactly the manifest's.
fn check_listing(from: &Path, manifest: &Manifest) -> Result<(), BackupError> {
    let listed: BTreeSet<&str> = manifest.files.iter().map(|f| f.path.as_str()).collect();
    if listed.len() != manifest.files.len() {
        return Err(BackupError::damaged(from, "its manifest lists a file twice"));
    }
    for required in [DB_FILE, LOG_KEY_FILE] {
        if !listed.contains(required) {
            return Err(BackupError::damaged(from, format!("its manifest does not list {required}")));
        }
    }
    for path in &listed {
        let safe = *path == DB_FILE
            || *path == LOG_KEY_FILE
            || path
                .strip_prefix("blobs/")
                .and_then(|n| n.strip_suffix(BLOB_SUFFIX))
                .is_some_and(|id| id.parse::<DropId>().is_ok());
        if !safe {
            return Err(BackupError::damaged(from, format!("its manifest lists {path:?}, which no backup holds")));
        }
    }
    let mut present = BTreeSet::new();
    for top in std::fs::read_dir(from).map_err(|e| BackupError::io("list", from, e))? {
        let top = top.map_err(|e| BackupError::io("list", from, e))?;
        let name = top.file_name().to_string_lossy().into_owned();
        if name == BLOBS_DIR {
            let blobs = from.join(BLOBS_DIR);
            for blob in std::fs::read_dir(&blobs).map_err(|e| BackupError::io("list", &blobs, e))? {
                let blob = blob.map_err(|e| BackupError::io("list", &blobs, e))?;
                present.insert(format!("{BLOBS_DIR}/{}", blob.file_name().to_string_lossy()));
            }
        } else if name != MANIFEST_FILE {
            present.insert(name);
        }
    }
    if let Some(missing) = listed.iter().find(|p| !present.contains(**p)) {
        return Err(BackupError::damaged(from, format!("{missing} is missing")));
    }
    if let Some(extra) = present.iter().find(|p| !listed.contains(p.as_str())) {
        return Err(BackupError::damaged(from, format!("{extra} is not in its manifest")));
    }
    Ok(())
}

/// Checks that every drop committed in the restored database has its
/// ciphertext (a database row or a file) with the length and SHA-256 it was
/// committed with. Returns how many there are.
fn check_ciphertexts(dir: &Path, from: &Path) -> Result<u64, BackupError> {
    let db_path = dir.join(DB_FILE);
    let db = open_read(&db_path)?;
    let mut stmt = db
        .prepare(
            "SELECT d.id, d.sha256, d.size, b.data FROM drops d
             LEFT JOIN inline_blobs b ON b.drop_id = d.id AND b.stage = 'blob'
             WHERE d.state = 'committed' ORDER BY d.id",
        )
        .map_err(BackupError::db("read", &db_path))?;
    let rows = stmt
        .query_map([], |r| {
            Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?, r.get::<_, i64>(2)?, r.get::<_, Option<Vec<u8>>>(3)?))
        })
        .map_err(BackupError::db("read", &db_path))?;
    let mut count = 0;
    for row in rows {
        let (id, sha256, size, inline) = row.map_err(BackupError::db("read", &db_path))?;
        let (len, actual) = match inline {
            Some(bytes) => (bytes.len() as u64, hex::encode(Sha256::digest(&bytes))),
            None => {
                let rel = format!("{BLOBS_DIR}/{id}{BLOB_SUFFIX}");
                let path = dir.join(&rel);
                if !path.is_file() {
                    return Err(BackupError::damaged(from, format!("committed drop {id} has no ciphertext ({rel})")));
                }
                let entry = hash_file(&path, &rel)?;
                (entry.len, entry.sha256)
            }
        };
        if u64::try_from(size).ok() != Some(len) || actual != sha256 {
            return Err(BackupError::damaged(
                from,
                format!("the ciphertext of drop {id} is not the one committed ({len} bytes, SHA-256 {actual})"),
            ));
        }
        count += 1;
    }
    Ok(count)
}

/// `VACUUM INTO`: one read transaction, so a consistent copy however busy
/// the hub is; it waits for (at most 10 s of) a writer's lock like any reader.
fn take_snapshot(live_db: &Path, snapshot: &Path) -> Result<(), BackupError> {
    match std::fs::remove_file(snapshot) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(BackupError::io("remove", snapshot, e)),
    }
    let target = snapshot.to_str().ok_or_else(|| BackupError::PathNotUtf8(snapshot.to_owned()))?;
    // Created empty and private first: SQLite would create it with the umask's mode.
    write_synced(snapshot, b"")?;
    // Read-write (not read-only) because a reader of a database in WAL mode
    // must be able to use its shared-memory file.
    let db = Connection::open_with_flags(live_db, OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX)
        .map_err(BackupError::db("open", live_db))?;
    db.busy_timeout(std::time::Duration::from_secs(10)).map_err(BackupError::db("open", live_db))?;
    db.execute("VACUUM INTO ?1", [target]).map_err(BackupError::db("snapshot", live_db))?;
    drop(db);
    let file = std::fs::File::open(snapshot).map_err(|e| BackupError::io("open", snapshot, e))?;
    file.sync_all().map_err(|e| BackupError::io("fsync", snapshot, e))
}

/// The drops committed in the snapshot whose ciphertext is a file (the
/// small ones are rows of the snapshot itself).
fn committed_file_blobs(snapshot: &Path) -> Result<BTreeSet<DropId>, BackupError> {
    let db = open_read(snapshot)?;
    let mut stmt = db
        .prepare(
            "SELECT id FROM drops WHERE state = 'committed'
             AND id NOT IN (SELECT drop_id FROM inline_blobs WHERE stage = 'blob')",
        )
        .map_err(BackupError::db("read", snapshot))?;
    let ids = stmt.query_map([], |r| r.get::<_, String>(0)).map_err(BackupError::db("read", snapshot))?;
    let mut out = BTreeSet::new();
    for id in ids {
        let id = id.map_err(BackupError::db("read", snapshot))?;
        let id = id.parse::<DropId>().map_err(|_| {
            BackupError::damaged(snapshot, format!("the database holds a drop id {id:?} that is not valid"))
        })?;
        out.insert(id);
    }
    Ok(out)
}

struct Summary {
    origin: String,
    log_size: u64,
    checkpoint: String,
    committed_drops: u64,
}

/// Open drops in the snapshot forget their uploads (which are not backed
/// up), so after a restore their senders upload again instead of
/// committing an upload that is not there. Returns what the snapshot holds.
fn forget_unfinished_uploads(snapshot: &Path) -> Result<Summary, BackupError> {
    let db = Connection::open(snapshot).map_err(BackupError::db("open", snapshot))?;
    db.execute_batch(
        "PRAGMA secure_delete = ON;
         BEGIN;
         UPDATE drops SET upload_sha256 = NULL, upload_len = NULL WHERE state = 'open';
         DELETE FROM inline_blobs WHERE stage = 'upload';
         COMMIT;",
    )
    .map_err(BackupError::db("update", snapshot))?;
    drop(db);
    let summary = read_summary(snapshot)?;
    let file = std::fs::File::open(snapshot).map_err(|e| BackupError::io("open", snapshot, e))?;
    file.sync_all().map_err(|e| BackupError::io("fsync", snapshot, e))?;
    Ok(summary)
}

fn read_summary(db_path: &Path) -> Result<Summary, BackupError> {
    let db = open_read(db_path)?;
    let read = BackupError::db("read", db_path);
    let summary = (|| {
        let origin: Option<String> =
            db.query_row("SELECT value FROM settings WHERE key = 'origin'", [], |r| r.get(0)).optional()?;
        let latest: Option<(i64, String)> = db
            .query_row("SELECT size, note FROM checkpoints ORDER BY size DESC LIMIT 1", [], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })
            .optional()?;
        let committed: i64 = db.query_row("SELECT count(*) FROM drops WHERE state = 'committed'", [], |r| r.get(0))?;
        Ok((origin, latest, committed))
    })()
    .map_err(read)?;
    let (origin, latest, committed) = summary;
    let origin = origin.ok_or_else(|| BackupError::damaged(db_path, "the database has no origin setting"))?;
    let (size, checkpoint) = latest.ok_or_else(|| BackupError::damaged(db_path, "the database has no checkpoint"))?;
    Ok(Summary {
        origin,
        log_size: u64::try_from(size).unwrap_or(0),
        checkpoint,
        committed_drops: u64::try_from(committed).unwrap_or(0),
    })
}

fn checkpoint_of_size(db_path: &Path, size: u64) -> Result<Option<String>, BackupError> {
    let db = open_read(db_path)?;
    let size = i64::try_from(size).unwrap_or(i64::MAX);
    db.query_row("SELECT note FROM checkpoints WHERE size = ?1", [size], |r| r.get(0))
        .optional()
        .map_err(BackupError::db("read", db_path))
}

fn open_read(path: &Path) -> Result<Connection, BackupError> {
    let db = Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX)
        .map_err(BackupError::db("open", path))?;
    db.busy_timeout(std::time::Duration::from_secs(10)).map_err(BackupError::db("open", path))?;
    Ok(db)
}

/// Copies `from` to `to` (created with `mode`, synced), hashing as it goes.
fn copy_file(from: &Path, to: &Path, rel: &str, mode: u32) -> Result<FileEntry, BackupError> {
    let mut src = std::fs::File::open(from).map_err(|e| BackupError::io("open", from, e))?;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        options.mode(mode);
    }
    #[cfg(not(unix))]
    let _ = mode;
    let mut dst = options.open(to).map_err(|e| BackupError::io("create", to, e))?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0; COPY_BUFFER];
    let mut len = 0u64;
    loop {
        let n = src.read(&mut buf).map_err(|e| BackupError::io("read", from, e))?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
        dst.write_all(&buf[..n]).map_err(|e| BackupError::io("write", to, e))?;
        len += n as u64;
    }
    dst.sync_all().map_err(|e| BackupError::io("fsync", to, e))?;
    Ok(FileEntry { path: rel.to_owned(), len, sha256: hex::encode(hasher.finalize()) })
}

fn hash_file(path: &Path, rel: &str) -> Result<FileEntry, BackupError> {
    let mut file = std::fs::File::open(path).map_err(|e| BackupError::io("open", path, e))?;
    let mut hasher = Sha256::new();
    let len = std::io::copy(&mut file, &mut hasher).map_err(|e| BackupError::io("read", path, e))?;
    Ok(FileEntry { path: rel.to_owned(), len, sha256: hex::encode(hasher.finalize()) })
}

/// Writes a new private (0600) file and syncs it.
fn write_synced(path: &Path, bytes: &[u8]) -> Result<(), BackupError> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        options.mode(0o600);
    }
    let mut file = options.open(path).map_err(|e| BackupError::io("create", path, e))?;
    file.write_all(bytes).map_err(|e| BackupError::io("write", path, e))?;
    file.sync_all().map_err(|e| BackupError::io("fsync", path, e))
}

fn sync_dir(dir: &Path) -> Result<(), BackupError> {
    std::fs::File::open(dir).and_then(|d| d.sync_all()).map_err(|e| BackupError::io("fsync", dir, e))
}

fn create_private_dir(dir: &Path) -> Result<(), BackupError> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt as _;
        builder.mode(0o700);
    }
    builder.create(dir).map_err(|e| BackupError::io("create", dir, e))
}

fn ensure_new_or_empty(dir: &Path) -> Result<(), BackupError> {
    match std::fs::read_dir(dir) {
        Ok(mut entries) => match entries.next() {
            None => Ok(()),
            Some(_) => Err(BackupError::TargetNotEmpty(dir.to_owned())),
        },
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(BackupError::io("read", dir, e)),
    }
}

/// A directory beside the destination that becomes it by a rename once
/// complete, and is removed if anything fails first.
struct Staging {
    path: PathBuf,
    done: bool,
}

impl Staging {
    fn beside(dest: &Path) -> Result<Self, BackupError> {
        let name = dest.file_name().ok_or_else(|| BackupError::TargetNotEmpty(dest.to_owned()))?;
        let parent = match dest.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_owned(),
            _ => PathBuf::from("."),
        };
        let mut staged = std::ffi::OsString::from(".");
        staged.push(name);
        staged.push(format!(".partial-{}", std::process::id()));
        let path = parent.join(staged);
        if path.exists() {
            std::fs::remove_dir_all(&path).map_err(|e| BackupError::io("remove", &path, e))?;
        }
        create_private_dir(&path)?;
        Ok(Self { path, done: false })
    }

    fn path(&self) -> &Path {
        &self.path
    }

    /// Renames the staging directory to `dest` (replacing it if it is an
    /// empty directory) and makes the rename durable.
    fn finish(mut self, dest: &Path) -> Result<(), BackupError> {
        sync_dir(&self.path)?;
        if dest.is_dir() {
            // Checked empty before: an empty directory may be replaced.
            std::fs::remove_dir(dest).map_err(|e| BackupError::io("replace the empty directory", dest, e))?;
        }
        std::fs::rename(&self.path, dest).map_err(|e| BackupError::io("rename the finished copy to", dest, e))?;
        self.done = true;
        if let Some(parent) = dest.parent().filter(|p| !p.as_os_str().is_empty()) {
            sync_dir(parent)?;
        }
        Ok(())
    }
}

impl Drop for Staging {
    fn drop(&mut self) {
        if !self.done {
            let _ = std::fs::remove_dir_all(&self.path);
        }
    }
}
