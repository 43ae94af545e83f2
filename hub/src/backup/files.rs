//! The files of a backup: copying and hashing them, checking a backup's
//! listing and ciphertexts against its manifest, and the folders they go in.

use std::collections::BTreeSet;
use std::io::{Read as _, Write as _};
use std::path::Path;

use sha2::{Digest as _, Sha256};

use sealdrop_proto::ids::DropId;

use super::snapshot::open_read;
use super::{BLOB_SUFFIX, BLOBS_DIR, BackupError, COPY_BUFFER, FileEntry, MANIFEST_FILE, Manifest};
use crate::hub::DB_FILE;
use crate::log_key::LOG_KEY_FILE;

/// Refuses a backup whose files are not exactly the manifest's.
pub(super) fn check_listing(from: &Path, manifest: &Manifest) -> Result<(), BackupError> {
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
pub(super) fn check_ciphertexts(dir: &Path, from: &Path) -> Result<u64, BackupError> {
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

/// Copies `from` to `to` (created with `mode`, synced), hashing as it goes.
pub(super) fn copy_file(from: &Path, to: &Path, rel: &str, mode: u32) -> Result<FileEntry, BackupError> {
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

pub(super) fn hash_file(path: &Path, rel: &str) -> Result<FileEntry, BackupError> {
    let mut file = std::fs::File::open(path).map_err(|e| BackupError::io("open", path, e))?;
    let mut hasher = Sha256::new();
    let len = std::io::copy(&mut file, &mut hasher).map_err(|e| BackupError::io("read", path, e))?;
    Ok(FileEntry { path: rel.to_owned(), len, sha256: hex::encode(hasher.finalize()) })
}

/// Writes a new private (0600) file and syncs it.
pub(super) fn write_synced(path: &Path, bytes: &[u8]) -> Result<(), BackupError> {
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

pub(super) fn sync_dir(dir: &Path) -> Result<(), BackupError> {
    std::fs::File::open(dir).and_then(|d| d.sync_all()).map_err(|e| BackupError::io("fsync", dir, e))
}

pub(super) fn create_private_dir(dir: &Path) -> Result<(), BackupError> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt as _;
        builder.mode(0o700);
    }
    builder.create(dir).map_err(|e| BackupError::io("create", dir, e))
}

pub(super) fn ensure_new_or_empty(dir: &Path) -> Result<(), BackupError> {
    match std::fs::read_dir(dir) {
        Ok(mut entries) => match entries.next() {
            None => Ok(()),
            Some(_) => Err(BackupError::TargetNotEmpty(dir.to_owned())),
        },
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(BackupError::io("read", dir, e)),
    }
}
