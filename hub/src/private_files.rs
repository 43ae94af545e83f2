//! Everything the hub keeps in its data directory is private to its user:
//! files 0600, folders 0700, whatever the umask it runs with. Each file is
//! created with that mode (the database first of all: SQLite gives its
//! `-wal` and `-shm` files the database file's mode), and a data directory
//! written by an older release, whose database followed the umask, is
//! tightened when the hub opens it.
//!
//! The log key is left alone here: a log key others could read may have
//! been copied, and the hub refuses to start with it (see [`crate::log_key`])
//! rather than quietly hiding that.

use std::path::Path;

use crate::error::HubError;
use crate::storage::sqlite::DB_FILE;

/// A private file's mode.
pub const FILE_MODE: u32 = 0o600;
/// A private folder's mode.
pub const DIR_MODE: u32 = 0o700;

/// The folders of ciphertext files inside the data directory.
const CIPHERTEXT_DIRS: [&str; 2] = ["uploads", "blobs"];

/// Makes `data_dir`, its database files and its ciphertext folders and
/// files private, changing only what is more open than it should be;
/// returns how many it changed.
pub fn tighten(data_dir: &Path) -> Result<usize, HubError> {
    let mut changed = usize::from(restrict(data_dir, DIR_MODE)?);
    for name in [DB_FILE.to_owned(), format!("{DB_FILE}-wal"), format!("{DB_FILE}-shm")] {
        changed += usize::from(restrict(&data_dir.join(name), FILE_MODE)?);
    }
    for dir in CIPHERTEXT_DIRS.map(|d| data_dir.join(d)) {
        changed += usize::from(restrict(&dir, DIR_MODE)?);
        let entries = match std::fs::read_dir(&dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(HubError::io("list", &dir, e)),
        };
        for entry in entries {
            let entry = entry.map_err(|e| HubError::io("list", &dir, e))?;
            changed += usize::from(restrict(&entry.path(), FILE_MODE)?);
        }
    }
    if changed > 0 {
        tracing::warn!(
            changed,
            data = %data_dir.display(),
            "made files and folders of the data directory private (0600 files, 0700 folders): others could \
             read them (an earlier release created the database with the umask's mode)"
        );
    }
    Ok(changed)
}

/// Takes the group's and others' permissions off `path` (a file or folder,
/// never a symbolic link, which is left as it is); `true` if it changed.
#[cfg(unix)]
fn restrict(path: &Path, mode: u32) -> Result<bool, HubError> {
    use std::os::unix::fs::PermissionsExt as _;
    let meta = match std::fs::symlink_metadata(path) {
        Ok(meta) => meta,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(false),
        Err(e) => return Err(HubError::io("read the permissions of", path, e)),
    };
    if meta.file_type().is_symlink() || meta.permissions().mode() & 0o777 & !mode == 0 {
        return Ok(false);
    }
    let tightened = meta.permissions().mode() & mode;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(tightened))
        .map_err(|e| HubError::io("make private", path, e))?;
    Ok(true)
}

#[cfg(not(unix))]
fn restrict(_path: &Path, _mode: u32) -> Result<bool, HubError> {
    Ok(false)
}

#[cfg(all(test, unix))]
mod tests {
    use std::os::unix::fs::PermissionsExt as _;

    use super::*;

    fn mode(path: &Path) -> u32 {
        std::fs::symlink_metadata(path).unwrap().permissions().mode() & 0o777
    }

    fn set(path: &Path, mode: u32) {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
    }

    #[test]
    fn an_older_data_directory_is_made_private_and_a_private_one_left_alone() {
        let tmp = tempfile::tempdir().unwrap();
        let data = tmp.path().join("data");
        std::fs::create_dir_all(data.join("blobs")).unwrap();
        for f in ["hub.db", "hub.db-wal", "blobs/d-1.age", "log.key", "operator-notes.txt"] {
            std::fs::write(data.join(f), "x").unwrap();
            set(&data.join(f), 0o644);
        }
        set(&data.join("blobs"), 0o755);
        set(&data, 0o755);
        std::os::unix::fs::symlink("/etc/passwd", data.join("blobs/link")).unwrap();
        assert_eq!(tighten(&data).unwrap(), 5);
        assert_eq!(mode(&data), 0o700);
        assert_eq!(mode(&data.join("blobs")), 0o700);
        for f in ["hub.db", "hub.db-wal", "blobs/d-1.age"] {
            assert_eq!(mode(&data.join(f)), 0o600, "{f}");
        }
        assert_eq!(mode(&data.join("log.key")), 0o644, "the log key is the hub's start-up check's to refuse");
        assert_eq!(mode(&data.join("operator-notes.txt")), 0o644, "not the hub's file");
        assert_eq!(mode(Path::new("/etc/passwd")) & 0o044, 0o044, "a link is never followed");
        assert_eq!(tighten(&data).unwrap(), 0, "nothing left to change");
        // Already stricter than needed: left as it is.
        set(&data.join("hub.db"), 0o400);
        assert_eq!(tighten(&data).unwrap(), 0);
        assert_eq!(mode(&data.join("hub.db")), 0o400);
    }
}
