//! Partial downloads kept so an interrupted fetch resumes:
//! `<state>/downloads/<drop id>.age.part`.

use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};

use sealdrop_proto::ids::DropId;

use crate::error::{Error, ErrorCode, Result};

/// Folder under the state dir holding partial downloads.
pub const DOWNLOADS_DIR: &str = "downloads";
pub(super) const SPOOL_SUFFIX: &str = ".age.part";
pub(super) const SPOOL_WRITE_BUFFER: usize = 256 * 1024;

/// Where the ciphertext of drop `id` is spooled while it downloads, so an
/// interrupted fetch can resume: `<state>/downloads/<id>.age.part`.
pub fn spool_path(state_dir: &Path, id: &DropId) -> PathBuf {
    state_dir.join(DOWNLOADS_DIR).join(format!("{id}{SPOOL_SUFFIX}"))
}

/// A drop's partial download: a prefix of its ciphertext exactly as
/// received, opened for appending and locked so that two fetches of the same
/// drop never write into it at once.
pub(super) struct Spool {
    pub(super) path: PathBuf,
    pub(super) file: File,
    /// The bytes it holds that a download resumes after.
    pub(super) len: u64,
}

impl Spool {
    /// Opens drop `id`'s spool (`total`: the ciphertext's length) when one
    /// holds a prefix to resume from, or, creating it, when `wanted`. One
    /// that holds `total` bytes or more is emptied; one neither wanted nor
    /// useful is deleted.
    pub(super) fn open(state_dir: &Path, id: &DropId, total: u64, wanted: bool) -> Result<Option<Spool>> {
        let path = spool_path(state_dir, id);
        let existing = match std::fs::symlink_metadata(&path) {
            Ok(m) => Some(m.len()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => None,
            Err(e) => return Err(Error::io(format!("cannot read {}", path.display()), e)),
        };
        let resumable = existing.is_some_and(|n| n > 0 && n < total);
        if !wanted && !resumable {
            if existing.is_some() {
                let _ = std::fs::remove_file(&path);
            }
            return Ok(None);
        }
        let dir = state_dir.join(DOWNLOADS_DIR);
        create_private_dir(&dir).map_err(|e| Error::io(format!("cannot create folder {}", dir.display()), e))?;
        let file = {
            use std::os::unix::fs::OpenOptionsExt as _;
            std::fs::OpenOptions::new().read(true).append(true).create(true).mode(0o600).open(&path)
        }
        .map_err(|e| Error::io(format!("cannot open {}", path.display()), e))?;
        match file.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => {
                return Err(Error::new(
                    ErrorCode::FetchInProgress,
                    format!(
                        "another sealdrop is fetching drop {id} (it holds {}); wait for it to finish, and fetch again if it failed",
                        path.display()
                    ),
                ));
            }
            Err(std::fs::TryLockError::Error(e)) => {
                return Err(Error::io(format!("cannot lock {}", path.display()), e));
            }
        }
        let meta = file.metadata().map_err(|e| Error::io(format!("cannot read {}", path.display()), e))?;
        {
            use std::os::unix::fs::PermissionsExt as _;
            if meta.permissions().mode() & 0o077 != 0 {
                file.set_permissions(std::fs::Permissions::from_mode(0o600))
                    .map_err(|e| Error::io(format!("cannot make {} private", path.display()), e))?;
            }
        }
        let mut spool = Spool { path, file, len: meta.len() };
        if spool.len >= total {
            spool.reset()?;
        }
        Ok(Some(spool))
    }

    /// Empties it: the download starts from byte 0.
    pub(super) fn reset(&mut self) -> Result<()> {
        self.file.set_len(0).map_err(|e| Error::io(format!("cannot empty {}", self.path.display()), e))?;
        self.len = 0;
        Ok(())
    }

    /// Deletes it, emptying it first so that even a file that cannot be
    /// removed is never resumed from.
    pub(super) fn discard(spool: Option<Spool>) {
        if let Some(spool) = spool {
            let _ = spool.file.set_len(0);
            let _ = std::fs::remove_file(&spool.path);
        }
    }
}

pub(super) fn create_private_dir(dir: &Path) -> io::Result<()> {
    use std::os::unix::fs::DirBuilderExt as _;
    std::fs::DirBuilder::new().recursive(true).mode(0o700).create(dir)
}

/// Deletes the partial downloads of drops not in `inbox` (acknowledged,
/// expired, recalled or no longer this party's): they can never resume.
/// Spools another fetch holds are left alone.
pub(super) fn remove_stale_spools(state_dir: &Path, inbox: &[String]) {
    let Ok(entries) = std::fs::read_dir(state_dir.join(DOWNLOADS_DIR)) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(id) = name.to_str().and_then(|n| n.strip_suffix(SPOOL_SUFFIX)) else {
            continue;
        };
        if id.parse::<DropId>().is_err() || inbox.iter().any(|i| i == id) {
            continue;
        }
        let Ok(file) = std::fs::OpenOptions::new().append(true).open(entry.path()) else {
            continue;
        };
        if file.try_lock().is_ok() {
            let _ = std::fs::remove_file(entry.path());
        }
    }
}
