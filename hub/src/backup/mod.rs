//! Online backup and restore of a hub that keeps its data in the local
//! stores (the SQLite database and the ciphertext files of its data
//! directory). A hub on other stores (PostgreSQL, an object store) is backed
//! up with their own tools instead: `backup` refuses a hub whose larger
//! ciphertexts are in an object store ([`BackupError::BlobsElsewhere`])
//! rather than copy every object through the hub into a folder that restore
//! would then have to write back into a bucket; bucket versioning or
//! replication keeps them as operators already trust (docs/operations.md).
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

use std::path::{Path, PathBuf};
use std::sync::Arc;

use sealdrop_proto::clock::Clock;
use sealdrop_proto::ids::DropId;
use serde::{Deserialize, Serialize};

use crate::hub::{DB_FILE, Hub};
use crate::log_key::LOG_KEY_FILE;

mod files;
mod snapshot;

use files::*;
use snapshot::*;

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
    #[error(
        "the hub in {} keeps its larger ciphertexts in {location}, which a backup of its data directory cannot \
         hold: protect the bucket with the object store's own means (bucket versioning or replication) and back \
         up the database and log key as docs/operations.md says under \"Ciphertexts in an object store\"",
        .data_dir.display()
    )]
    BlobsElsewhere { data_dir: PathBuf, location: String },
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
    // Recorded by every open (`setting::BLOBS`); a hub never opened since
    // it was recorded keeps them in the data directory.
    if let Some(location) = blobs_location(&live_db)?.filter(|l| l.as_str() != "files") {
        return Err(BackupError::BlobsElsewhere { data_dir: data_dir.to_owned(), location });
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
