//! The hidden folder a drop is unpacked into (`<output folder>/.sealdrop-incoming-<drop id>`,
//! 0700) before its files move into place, and the cleaning up of such
//! folders that a fetch killed half-way left behind, full of decrypted data.
//!
//! Each staging folder is registered in the state dir
//! (`<state>/incoming/<drop id>.<output folder's hash>`, holding the folder's
//! path) and that file is locked while the fetch runs. Any later fetch (or
//! `inbox`) takes every registration it can lock, which only one whose
//! fetch has ended can give, removes the folder it names and says so; so
//! nothing decrypted outlives a fetch that did not finish, whichever output
//! folder the next command uses, and a folder another running fetch is
//! filling is never touched. The same lock stops two fetches of one drop
//! into one folder from unpacking over each other.
//!
//! The staging folder itself is locked too (`flock` on the folder) while its
//! fetch runs: a fetch with another state dir into the same output folder
//! (another member's scheduled job) finds it unregistered in its own state
//! dir, and only that lock tells it a live process owns the folder, so it
//! leaves it alone.

use std::fs::File;
use std::io::{self, Read as _, Write as _};
use std::os::unix::ffi::OsStrExt as _;
use std::path::{Path, PathBuf};

use sha2::{Digest as _, Sha256};

use sealdrop_proto::ids::DropId;

use crate::error::{Error, ErrorCode, Result};
use crate::names::shown_path;

/// Prefix of the hidden folder a drop is unpacked into before it is moved into place.
pub const INCOMING_PREFIX: &str = ".sealdrop-incoming-";

/// Folder under the state dir holding one registration per staging folder in use.
const REGISTRY_DIR: &str = "incoming";

/// A staging folder left behind by a fetch that did not finish, removed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Cleaned {
    /// The drop it held.
    pub drop: String,
    /// Where it was.
    pub path: PathBuf,
}

impl Cleaned {
    /// The line a command prints about it.
    pub fn describe(&self) -> String {
        format!(
            "removed {}: drop {} was being unpacked there by a fetch that did not finish (it held decrypted files)",
            shown_path(&self.path),
            self.drop
        )
    }
}

/// A drop's staging folder, registered and locked for as long as this
/// value lives; dropping it removes the folder and its registration.
#[derive(Debug)]
pub struct Staging {
    path: PathBuf,
    registration: PathBuf,
    _lock: File,
    _folder_lock: File,
}

impl Staging {
    /// Creates the staging folder for drop `id` in `dest` (which exists),
    /// 0700. One left there by an earlier fetch that did not finish is
    /// removed first (reported in the returned list). Refused with
    /// `fetch_in_progress` while another fetch of the same drop into the
    /// same folder runs.
    pub fn create(state_dir: &Path, dest: &Path, id: &DropId) -> Result<(Staging, Vec<Cleaned>)> {
        let path = dest.join(format!("{INCOMING_PREFIX}{id}"));
        let canonical = dest.canonicalize().map_err(|e| Error::io(format!("cannot read {}", dest.display()), e))?;
        let registry = state_dir.join(REGISTRY_DIR);
        crate::fsutil::create_private_dir(&registry)?;
        let registration = registration_path(state_dir, &canonical, id);
        let lock = lock(&registration)
            .map_err(|e| Error::io(format!("cannot lock {}", registration.display()), e))?
            .ok_or_else(|| {
                Error::new(
                    ErrorCode::FetchInProgress,
                    format!(
                        "another sealdrop is fetching drop {id} into {}; wait for it to finish, and fetch again if it failed",
                        shown_path(dest)
                    ),
                )
            })?;
        let mut cleaned = Vec::new();
        if remove_folder(&path) {
            cleaned.push(Cleaned { drop: id.to_string(), path: path.clone() });
        }
        // Registered before the folder exists, so a kill at any moment leaves
        // a registration naming it.
        let staged = canonical.join(format!("{INCOMING_PREFIX}{id}"));
        lock.set_len(0)
            .and_then(|()| (&lock).write_all(staged.as_os_str().as_bytes()))
            .and_then(|()| lock.sync_data())
            .map_err(|e| Error::io(format!("cannot write {}", registration.display()), e))?;
        {
            use std::os::unix::fs::{DirBuilderExt as _, PermissionsExt as _};
            std::fs::DirBuilder::new()
                .mode(0o700)
                .create(&path)
                .and_then(|()| std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o700)))
                .map_err(|e| Error::io(format!("cannot create {}", shown_path(&path)), e))?;
        }
        let folder_lock = lock_folder(&path).map_err(|e| Error::io(format!("cannot lock {}", shown_path(&path)), e))?;
        Ok((Staging { path, registration, _lock: lock, _folder_lock: folder_lock }, cleaned))
    }

    /// The folder.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for Staging {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.path);
        // Still locked: nobody else removes or reuses it meanwhile.
        let _ = std::fs::remove_file(&self.registration);
    }
}

/// `<state>/incoming/<id>.<16 hex digits of SHA-256 of the canonical output folder>`.
fn registration_path(state_dir: &Path, canonical_dest: &Path, id: &DropId) -> PathBuf {
    let hash = hex::encode(&Sha256::digest(canonical_dest.as_os_str().as_bytes())[..8]);
    state_dir.join(REGISTRY_DIR).join(format!("{id}.{hash}"))
}

/// Opens (creating) and locks the registration at `path`. `None` while
/// another process holds it. The lock is on the file `path` names once
/// locked (it may have been removed and made again meanwhile).
fn lock(path: &Path) -> io::Result<Option<File>> {
    use std::os::unix::fs::{MetadataExt as _, OpenOptionsExt as _};
    loop {
        let file =
            std::fs::OpenOptions::new().read(true).write(true).create(true).truncate(false).mode(0o600).open(path)?;
        match file.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => return Ok(None),
            Err(std::fs::TryLockError::Error(e)) => return Err(e),
        }
        let held = file.metadata()?;
        match std::fs::metadata(path) {
            Ok(named) if named.ino() == held.ino() && named.dev() == held.dev() => return Ok(Some(file)),
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
    }
}

/// Locks the staging folder just created at `path` for its fetch. A sweep
/// that removed the empty folder in the instant before the lock leaves
/// another folder (or none) at `path`: that is an error, never a folder
/// shared with someone else.
fn lock_folder(path: &Path) -> io::Result<File> {
    use std::os::unix::fs::MetadataExt as _;
    let folder = File::open(path)?;
    match folder.try_lock() {
        Ok(()) => {}
        Err(std::fs::TryLockError::WouldBlock) => return Err(io::Error::from(io::ErrorKind::ResourceBusy)),
        Err(std::fs::TryLockError::Error(e)) => return Err(e),
    }
    let (held, named) = (folder.metadata()?, std::fs::symlink_metadata(path)?);
    if held.ino() != named.ino() || held.dev() != named.dev() {
        return Err(io::Error::other("it was replaced while it was being created"));
    }
    Ok(folder)
}

/// Removes the staging folder `path`, if it is one (its name has the
/// prefix) and no live fetch holds its lock; whether it was removed.
fn remove_folder(path: &Path) -> bool {
    let is_staging = path.file_name().is_some_and(|n| n.as_bytes().starts_with(INCOMING_PREFIX.as_bytes()));
    let Ok(meta) = path.symlink_metadata() else { return false };
    if !is_staging {
        return false;
    }
    // Held while this is open, so its owner cannot start over meanwhile
    // (it would fail to lock the folder it creates and stop).
    let _held = if meta.is_dir() {
        match File::open(path).map(|f| f.try_lock().map(|()| f)) {
            Ok(Ok(f)) => Some(f),
            Ok(Err(std::fs::TryLockError::WouldBlock)) => return false,
            Ok(Err(std::fs::TryLockError::Error(_))) | Err(_) => None,
        }
    } else {
        None
    };
    std::fs::remove_dir_all(path).is_ok()
}

/// Removes every staging folder whose fetch has ended: those registered in
/// `state_dir`, and those in `dest` (when given, e.g. left by an older
/// release). Folders a running fetch holds are left alone. Returns what
/// was removed, for the command to say.
pub fn sweep(state_dir: &Path, dest: Option<&Path>) -> Vec<Cleaned> {
    let mut cleaned = Vec::new();
    let registry = state_dir.join(REGISTRY_DIR);
    if let Ok(entries) = std::fs::read_dir(&registry) {
        for entry in entries.flatten() {
            let name = entry.file_name();
            let Some(drop) = name.to_str().and_then(|n| n.split_once('.')).map(|(id, _)| id.to_owned()) else {
                continue;
            };
            if drop.parse::<DropId>().is_err() {
                continue;
            }
            let registration = entry.path();
            let Ok(Some(mut held)) = lock(&registration) else { continue };
            let mut named = Vec::new();
            let _ = held.read_to_end(&mut named);
            let path = PathBuf::from(std::ffi::OsStr::from_bytes(&named));
            // Only ever a staging folder of this very drop.
            if path.file_name().is_some_and(|n| n.as_bytes() == format!("{INCOMING_PREFIX}{drop}").as_bytes())
                && remove_folder(&path)
            {
                cleaned.push(Cleaned { drop, path });
            }
            let _ = std::fs::remove_file(&registration);
        }
    }
    if let Some(dest) = dest
        && let (Ok(entries), Ok(canonical)) = (std::fs::read_dir(dest), dest.canonicalize())
    {
        for entry in entries.flatten() {
            let name = entry.file_name();
            let Some(id) = name.to_str().and_then(|n| n.strip_prefix(INCOMING_PREFIX)).and_then(|i| i.parse().ok())
            else {
                continue;
            };
            let registration = registration_path(state_dir, &canonical, &id);
            if crate::fsutil::create_private_dir(&registry).is_err() {
                break;
            }
            let Ok(Some(_held)) = lock(&registration) else { continue };
            if remove_folder(&entry.path()) {
                cleaned.push(Cleaned { drop: id.to_string(), path: dest.join(&name) });
            }
            let _ = std::fs::remove_file(&registration);
        }
    }
    cleaned
}

/// Sweeps ([`sweep`]) and prints a line on stderr for each folder removed.
pub fn sweep_and_say(state_dir: &Path, dest: Option<&Path>) {
    for c in sweep(state_dir, dest) {
        eprintln!("{}", c.describe());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mode(path: &Path) -> u32 {
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::metadata(path).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn staging_is_private_registered_locked_and_gone_when_dropped() {
        let (state, out) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let id = DropId::random();
        let (staging, cleaned) = Staging::create(state.path(), out.path(), &id).unwrap();
        assert!(cleaned.is_empty());
        assert_eq!(staging.path(), out.path().join(format!("{INCOMING_PREFIX}{id}")));
        assert_eq!(mode(staging.path()), 0o700);
        std::fs::write(staging.path().join("plain.csv"), b"secret").unwrap();
        // A second fetch of the same drop into the same folder waits its turn.
        assert_eq!(Staging::create(state.path(), out.path(), &id).unwrap_err().code, "fetch_in_progress");
        // A sweep leaves a folder in use alone.
        assert!(sweep(state.path(), Some(out.path())).is_empty());
        assert!(staging.path().join("plain.csv").exists());
        let path = staging.path().to_owned();
        drop(staging);
        assert!(!path.exists());
        assert_eq!(std::fs::read_dir(state.path().join(REGISTRY_DIR)).unwrap().count(), 0);
    }

    #[test]
    fn a_staging_folder_left_by_a_killed_fetch_is_removed_by_the_next_sweep_from_any_folder() {
        let (state, out, elsewhere) =
            (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let id = DropId::random();
        // What a fetch killed while unpacking leaves: its registration
        // (unlocked, as the kernel releases a dead process's locks) and the
        // folder with decrypted files in it.
        let canonical = out.path().canonicalize().unwrap();
        let path = canonical.join(format!("{INCOMING_PREFIX}{id}"));
        std::fs::create_dir_all(path.join("reports")).unwrap();
        std::fs::write(path.join("reports/plain.csv"), b"secret").unwrap();
        std::fs::create_dir_all(state.path().join(REGISTRY_DIR)).unwrap();
        std::fs::write(registration_path(state.path(), &canonical, &id), path.as_os_str().as_bytes()).unwrap();

        let cleaned = sweep(state.path(), Some(elsewhere.path()));
        assert_eq!(cleaned, [Cleaned { drop: id.to_string(), path: path.clone() }]);
        assert!(cleaned[0].describe().contains("did not finish"), "{}", cleaned[0].describe());
        assert!(!path.exists(), "the decrypted files outlived the fetch");
        assert_eq!(std::fs::read_dir(state.path().join(REGISTRY_DIR)).unwrap().count(), 0);
        assert!(sweep(state.path(), None).is_empty(), "cleaned once");
    }

    #[test]
    fn a_registration_naming_anything_but_its_staging_folder_removes_nothing() {
        let (state, out) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let id = DropId::random();
        let precious = out.path().join("precious");
        std::fs::create_dir(&precious).unwrap();
        std::fs::create_dir_all(state.path().join(REGISTRY_DIR)).unwrap();
        std::fs::write(registration_path(state.path(), out.path(), &id), precious.as_os_str().as_bytes()).unwrap();
        assert!(sweep(state.path(), None).is_empty());
        assert!(precious.exists());
    }

    #[test]
    fn an_unregistered_staging_folder_in_the_output_folder_is_removed_and_nothing_else() {
        let (state, out) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let id = DropId::random();
        let left = out.path().join(format!("{INCOMING_PREFIX}{id}"));
        std::fs::create_dir_all(left.join("sub")).unwrap();
        std::fs::write(left.join("sub/plain.csv"), b"secret").unwrap();
        for keep in [format!("{INCOMING_PREFIX}not-a-drop"), "mine.csv".to_owned()] {
            std::fs::write(out.path().join(keep), b"keep").unwrap();
        }
        let cleaned = sweep(state.path(), Some(out.path()));
        assert_eq!(cleaned, [Cleaned { drop: id.to_string(), path: left.clone() }]);
        assert!(!left.exists());
        assert_eq!(std::fs::read_dir(out.path()).unwrap().count(), 2);
    }

    #[test]
    fn a_staging_folder_another_state_dirs_fetch_is_filling_is_left_alone() {
        let (mine, theirs, out) =
            (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let id = DropId::random();
        {
            let (staging, _) = Staging::create(theirs.path(), out.path(), &id).unwrap();
            let probe = File::open(staging.path()).unwrap();
            assert!(matches!(probe.try_lock(), Err(std::fs::TryLockError::WouldBlock)), "not locked while in use");
            // A fetch with another state dir into the same output folder:
            // the folder is not in its registry, but its owner is alive.
            std::fs::write(staging.path().join("plain.csv"), b"secret").unwrap();
            assert!(sweep(mine.path(), Some(out.path())).is_empty());
            assert!(staging.path().join("plain.csv").exists(), "another fetch's files were removed");
        }
        // What a killed fetch leaves: the folder, unlocked (the kernel
        // drops a dead process's locks). Locked, it stays; then it goes.
        let path = out.path().join(format!("{INCOMING_PREFIX}{id}"));
        std::fs::create_dir(&path).unwrap();
        std::fs::write(path.join("plain.csv"), b"secret").unwrap();
        let held = lock_folder(&path).unwrap();
        assert!(sweep(mine.path(), Some(out.path())).is_empty());
        drop(held);
        assert_eq!(sweep(mine.path(), Some(out.path())), [Cleaned { drop: id.to_string(), path: path.clone() }]);
        assert!(!path.exists());
    }
}
