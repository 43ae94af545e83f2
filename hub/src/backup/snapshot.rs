//! The database side of a backup: the consistent snapshot (`VACUUM INTO`),
//! what it holds, and the uploads it forgets.

use std::collections::BTreeSet;
use std::path::Path;

use rusqlite::{Connection, OpenFlags, OptionalExtension as _};
use sealdrop_proto::ids::DropId;

use super::BackupError;
use super::files::write_synced;

/// `VACUUM INTO`: one read transaction, so a consistent copy however busy
/// the hub is; it waits for (at most 10 s of) a writer's lock like any reader.
pub(super) fn take_snapshot(live_db: &Path, snapshot: &Path) -> Result<(), BackupError> {
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
pub(super) fn committed_file_blobs(snapshot: &Path) -> Result<BTreeSet<DropId>, BackupError> {
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

/// What a database snapshot holds, for the backup's manifest and report.
pub(super) struct Summary {
    /// The log's origin: which hub this is a backup of.
    pub(super) origin: String,
    /// The log's size in the snapshot.
    pub(super) log_size: u64,
    /// The signed checkpoint of that size, which a restore is checked against.
    pub(super) checkpoint: String,
    /// Drops committed in the snapshot (what the report counts).
    pub(super) committed_drops: u64,
}

/// Open drops in the snapshot forget their uploads (which are not backed
/// up), so after a restore their senders upload again instead of
/// committing an upload that is not there. Returns what the snapshot holds.
pub(super) fn forget_unfinished_uploads(snapshot: &Path) -> Result<Summary, BackupError> {
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

pub(super) fn read_summary(db_path: &Path) -> Result<Summary, BackupError> {
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

/// Where the hub last opened on `db_path` kept its larger ciphertexts
/// (`setting::BLOBS`), if it recorded it.
pub(super) fn blobs_location(db_path: &Path) -> Result<Option<String>, BackupError> {
    let db = open_read(db_path)?;
    db.query_row("SELECT value FROM settings WHERE key = ?1", [crate::storage::meta::setting::BLOBS], |r| r.get(0))
        .optional()
        .map_err(BackupError::db("read", db_path))
}

pub(super) fn checkpoint_of_size(db_path: &Path, size: u64) -> Result<Option<String>, BackupError> {
    let db = open_read(db_path)?;
    let size = i64::try_from(size).unwrap_or(i64::MAX);
    db.query_row("SELECT note FROM checkpoints WHERE size = ?1", [size], |r| r.get(0))
        .optional()
        .map_err(BackupError::db("read", db_path))
}

pub(super) fn open_read(path: &Path) -> Result<Connection, BackupError> {
    let db = Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX)
        .map_err(BackupError::db("open", path))?;
    db.busy_timeout(std::time::Duration::from_secs(10)).map_err(BackupError::db("open", path))?;
    Ok(db)
}
