//! File-system helpers that never leave a half-written file: write to a
//! temporary file in the same folder, then rename it into place.

use std::io::Write;
use std::path::Path;

use crate::error::{Error, ErrorCode, Result};

/// Writes `bytes` to `path` atomically. With `secret`, the file is created
/// with mode 0600 before any byte is written.
pub fn write_atomic(path: &Path, bytes: &[u8], secret: bool) -> Result<()> {
    let tmp = write_temp_beside(path, bytes, secret)?;
    tmp.persist(path).map_err(|e| Error::io(format!("cannot write {}", path.display()), e.error))?;
    Ok(())
}

/// Like [`write_atomic`] without waiting for the disk: for a record whose
/// loss in a power cut costs only a slower clean-up (the hub's own), where
/// an fsync per send was a tenth of the client's CPU on small drops. A
/// reader must take a missing, empty or cut-off file as no record.
pub fn write_atomic_unsynced(path: &Path, bytes: &[u8], secret: bool) -> Result<()> {
    let tmp = temp_beside(path, secret)?;
    let mut file = tmp.as_file();
    file.write_all(bytes).map_err(|e| Error::io(format!("cannot write {}", path.display()), e))?;
    tmp.persist(path).map_err(|e| Error::io(format!("cannot write {}", path.display()), e.error))?;
    Ok(())
}

/// Like [`write_atomic`] but refuses to replace an existing file.
pub fn write_new_atomic(path: &Path, bytes: &[u8], secret: bool) -> Result<()> {
    let exists = |p: &Path| {
        Error::new(
            ErrorCode::OutputExists,
            format!("{} already exists; choose another name or move it away first", p.display()),
        )
    };
    if path.exists() {
        return Err(exists(path));
    }
    let tmp = write_temp_beside(path, bytes, secret)?;
    tmp.persist_noclobber(path).map_err(|_| exists(path))?;
    Ok(())
}

/// Writes and syncs a temporary file in `path`'s folder, ready to be renamed into place.
fn write_temp_beside(path: &Path, bytes: &[u8], secret: bool) -> Result<tempfile::NamedTempFile> {
    let mut tmp = temp_beside(path, secret)?;
    tmp.write_all(bytes)
        .and_then(|()| tmp.as_file().sync_all())
        .map_err(|e| Error::io(format!("cannot write {}", path.display()), e))?;
    Ok(tmp)
}

/// An empty temporary file in `path`'s folder (made if needed).
fn temp_beside(path: &Path, secret: bool) -> Result<tempfile::NamedTempFile> {
    let dir = parent_dir(path);
    std::fs::create_dir_all(dir).map_err(|e| Error::io(format!("cannot create folder {}", dir.display()), e))?;
    tempfile::Builder::new()
        .prefix(".sealdrop-tmp-")
        .permissions(mode(secret))
        .tempfile_in(dir)
        .map_err(|e| Error::io(format!("cannot write in {}", dir.display()), e))
}

fn parent_dir(path: &Path) -> &Path {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}

fn mode(secret: bool) -> std::fs::Permissions {
    use std::os::unix::fs::PermissionsExt;
    std::fs::Permissions::from_mode(if secret { 0o600 } else { 0o644 })
}

/// Creates `dir` (and its parents) if needed, private to this user (0700).
pub fn create_private_dir(dir: &Path) -> Result<()> {
    use std::os::unix::fs::DirBuilderExt as _;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(|e| Error::io(format!("cannot create folder {}", dir.display()), e))
}

/// Creates (or empties) `path` for writing, private to this user (0600).
pub fn create_private_file(path: &Path) -> Result<std::fs::File> {
    use std::os::unix::fs::OpenOptionsExt as _;
    std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .map_err(|e| Error::io(format!("cannot create {}", path.display()), e))
}

/// Reads a secret file, refusing one that group or others can read.
pub fn read_secret_file(path: &Path, what: &str) -> Result<zeroize::Zeroizing<String>> {
    let bytes = read_secret_bytes(path, what)?;
    match std::str::from_utf8(&bytes) {
        Ok(text) => Ok(zeroize::Zeroizing::new(text.to_owned())),
        Err(e) => Err(Error::new(
            ErrorCode::KeyUnreadable,
            format!(
                "cannot read {what} {}: it is not UTF-8 text ({e}); check that it is the right file",
                path.display()
            ),
        )),
    }
}

/// Reads a secret file's bytes (a binary age file, say), refusing one that
/// group or others can read.
pub fn read_secret_bytes(path: &Path, what: &str) -> Result<zeroize::Zeroizing<Vec<u8>>> {
    use std::os::unix::fs::PermissionsExt;
    let meta = std::fs::metadata(path).map_err(|e| {
        Error::new(ErrorCode::KeyUnreadable, format!("cannot read {what} {}: {e}; check the path", path.display()))
    })?;
    let m = meta.permissions().mode();
    if m & 0o077 != 0 {
        return Err(Error::new(
            ErrorCode::KeyPermissions,
            format!(
                "{what} {} can be read by other users (mode {:04o}); run `chmod 600 {}` and try again",
                path.display(),
                m & 0o7777,
                path.display()
            ),
        ));
    }
    std::fs::read(path).map(zeroize::Zeroizing::new).map_err(|e| {
        Error::new(
            ErrorCode::KeyUnreadable,
            format!(
                "cannot read {what} {}: {e}; check that it is the right file and that you may read it",
                path.display()
            ),
        )
    })
}

/// Human-readable byte count.
pub fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = n as f64;
    let mut u = 0;
    while v >= 1024.0 && u < UNITS.len() - 1 {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 { format!("{n} B") } else { format!("{v:.1} {}", UNITS[u]) }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn secret_files_are_0600_and_checked() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("k");
        write_new_atomic(&p, b"secret", true).unwrap();
        assert_eq!(std::fs::metadata(&p).unwrap().permissions().mode() & 0o777, 0o600);
        assert_eq!(read_secret_file(&p, "key").unwrap().as_str(), "secret");
        assert_eq!(write_new_atomic(&p, b"other", true).unwrap_err().code, "output_exists");
        assert_eq!(std::fs::read(&p).unwrap(), b"secret");
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o644)).unwrap();
        let err = read_secret_file(&p, "key").unwrap_err();
        assert_eq!(err.code, "key_permissions");
        assert!(err.message.contains("chmod 600"));
    }

    #[test]
    fn an_unsynced_write_replaces_the_file_whole_with_the_mode_asked_for() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("sub").join("record.open");
        write_atomic_unsynced(&p, b"first", true).unwrap();
        assert_eq!(std::fs::metadata(&p).unwrap().permissions().mode() & 0o777, 0o600);
        write_atomic_unsynced(&p, b"second, longer", true).unwrap();
        assert_eq!(std::fs::read(&p).unwrap(), b"second, longer");
        write_atomic_unsynced(&dir.path().join("public"), b"x", false).unwrap();
        assert_eq!(std::fs::metadata(dir.path().join("public")).unwrap().permissions().mode() & 0o777, 0o644);
        // No temporary file is left beside it.
        assert_eq!(std::fs::read_dir(p.parent().unwrap()).unwrap().count(), 1);
    }

    #[test]
    fn human_sizes() {
        assert_eq!(human_bytes(12), "12 B");
        assert_eq!(human_bytes(1536), "1.5 KiB");
        assert_eq!(human_bytes(5 * 1024 * 1024), "5.0 MiB");
    }
}
