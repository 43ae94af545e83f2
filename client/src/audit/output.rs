//! Audit evidence files (`audit export -o`, `audit report --csv/--html`) are
//! never replaced by accident: an existing file is refused
//! (`error[output_exists]`) unless `--force`, and every file is written to a
//! temporary file beside it and renamed into place, so a reader never sees
//! half a file and a failed run leaves the old one whole.

use std::path::Path;

use crate::error::{Error, ErrorCode, Result};

/// The error for an existing evidence file `path` given as `flag`.
fn exists(flag: &str, path: &Path) -> Error {
    Error::new(
        ErrorCode::OutputExists,
        format!(
            "{flag} {} already exists; audit files are evidence and are not replaced: choose another name, or add --force to replace it",
            path.display()
        ),
    )
}

/// Refuses `path` if it exists and `force` is not set; checked before any
/// work so nothing is downloaded or verified for nothing.
pub fn check_free(flag: &str, path: &Path, force: bool) -> Result<()> {
    if !force && path.symlink_metadata().is_ok() {
        return Err(exists(flag, path));
    }
    Ok(())
}

/// Writes `path` through `write`, which is given a temporary path beside it
/// to fill; then moves it into place: replacing an existing file only with
/// `force`, else refusing it even if it appeared meanwhile.
pub fn write_via(flag: &str, path: &Path, force: bool, write: impl FnOnce(&Path) -> Result<()>) -> Result<()> {
    check_free(flag, path, force)?;
    let dir = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(|e| Error::io(format!("cannot create the folder {}", dir.display()), e))?;
    let tmp = tempfile::Builder::new()
        .prefix(".sealdrop-audit-")
        .tempfile_in(dir)
        .map_err(|e| Error::io(format!("cannot create a file in {}", dir.display()), e))?
        .into_temp_path();
    write(&tmp)?;
    if force {
        tmp.persist(path).map_err(|e| Error::io(format!("cannot write {}", path.display()), e.error))?;
    } else {
        tmp.persist_noclobber(path).map_err(|e| match e.error.kind() {
            std::io::ErrorKind::AlreadyExists => exists(flag, path),
            _ => Error::io(format!("cannot write {}", path.display()), e.error),
        })?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_existing_file_is_kept_unless_forced() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("flows.csv");
        std::fs::write(&path, "evidence").unwrap();
        let write = |p: &Path| std::fs::write(p, "new").map_err(|e| Error::io("test", e));
        let err = write_via("--csv", &path, false, write).unwrap_err();
        assert_eq!(err.code, "output_exists");
        assert!(err.message.contains("--force"), "{}", err.message);
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "evidence");
        write_via("--csv", &path, true, write).unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "new");
        // No temporary file is left behind.
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
        // A failed write leaves nothing either.
        let fail = |_: &Path| Err(Error::new(ErrorCode::Internal, "x"));
        assert!(write_via("--csv", &dir.path().join("other.csv"), false, fail).is_err());
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }
}
