//! One `serve` per data directory: `serve` takes an exclusive lock on
//! [`LOCK_FILE`] in the data directory before it does anything else there
//! (start-up cleanup of abandoned uploads and stray files, the catch-up
//! sweep), so a second `serve` started on the same directory by mistake
//! stops at once and has touched nothing, instead of deleting what the
//! first one is receiving.
//!
//! The lock is an advisory lock (`flock(2)`, `File::try_lock`) on an empty file: the kernel
//! releases it when the process exits, however it exits, so a crashed hub
//! leaves nothing to clean up. `backup` reads a serving hub's directory
//! and takes no lock.

use std::fs::File;
use std::path::{Path, PathBuf};

use sealdrop_proto::error_code::ErrorCode;

use crate::hub::DB_FILE;
use crate::log_key::LOG_KEY_FILE;

/// The lock file inside the data directory (empty; mode 0600).
pub const LOCK_FILE: &str = "hub.lock";

/// Held while the process serves the data directory; dropping it (or the
/// process ending) releases the lock.
#[derive(Debug)]
pub struct DataDirLock {
    _file: File,
}

/// Why the data directory could not be locked.
#[derive(Debug, thiserror::Error)]
pub enum LockError {
    #[error(
        "the data directory {} is in use by another `sealdrop-hub serve` (it holds {}): stop that one first, \
         or give this one another --data",
        .dir.display(), .file.display()
    )]
    InUse { dir: PathBuf, file: PathBuf },
    #[error(transparent)]
    NotInitialised(#[from] crate::HubError),
    #[error("cannot lock {}: {source}; check the data directory's owner and permissions", .file.display())]
    Io {
        file: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

impl LockError {
    /// The stable code of the one-line error.
    pub fn code(&self) -> ErrorCode {
        match self {
            Self::InUse { .. } => ErrorCode::DataDirInUse,
            Self::NotInitialised(_) => ErrorCode::DataDir,
            Self::Io { .. } => ErrorCode::DataDirLock,
        }
    }
}

/// Takes the exclusive lock on `data_dir` without waiting: an error if
/// another process holds it, or if `data_dir` is not an initialised hub's.
pub fn lock(data_dir: &Path) -> Result<DataDirLock, LockError> {
    // A hub on SQLite has its database here; every instance of one on
    // PostgreSQL has (only) its log key.
    if !data_dir.join(DB_FILE).is_file() && !data_dir.join(LOG_KEY_FILE).is_file() {
        return Err(crate::HubError::NotInitialised(data_dir.to_owned()).into());
    }
    let path = data_dir.join(LOCK_FILE);
    let io = |source| LockError::Io { file: path.clone(), source };
    let mut options = std::fs::OpenOptions::new();
    options.read(true).write(true).create(true).truncate(false);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, crate::private_files::FILE_MODE);
    let file = options.open(&path).map_err(io)?;
    match file.try_lock() {
        Ok(()) => {}
        Err(std::fs::TryLockError::WouldBlock) => {
            return Err(LockError::InUse { dir: data_dir.to_owned(), file: path });
        }
        Err(std::fs::TryLockError::Error(e)) => return Err(io(e)),
    }
    Ok(DataDirLock { _file: file })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_lock_on_the_same_directory_is_refused_until_the_first_is_dropped() {
        let tmp = tempfile::tempdir().unwrap();
        let err = lock(tmp.path()).unwrap_err();
        assert_eq!(err.code().as_str(), "data_dir", "{err}");
        assert!(!tmp.path().join(LOCK_FILE).exists(), "nothing is made in a folder that is no hub's");
        std::fs::write(tmp.path().join(DB_FILE), b"").unwrap();
        let first = lock(tmp.path()).unwrap();
        let err = lock(tmp.path()).unwrap_err();
        assert_eq!(err.code().as_str(), "data_dir_in_use", "{err}");
        assert!(err.to_string().contains("in use by another `sealdrop-hub serve`"), "{err}");
        drop(first);
        let _again = lock(tmp.path()).unwrap();
    }
}
