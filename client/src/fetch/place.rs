//! Moving a drop's unpacked files from its staging folder into the output
//! folder, never replacing anything.

use std::collections::HashSet;
use std::io;
use std::path::{Path, PathBuf};

use sealdrop_proto::ids::DropId;

use crate::error::{Error, ErrorCode, Result};
use crate::names::{shown, shown_path};

/// `path` made absolute, with the part that exists resolved (links and
/// `..`), so it compares with where a drop's files would go.
pub(super) fn resolve(path: &Path) -> PathBuf {
    let absolute = std::path::absolute(path).unwrap_or_else(|_| path.to_owned());
    let mut existing = absolute.as_path();
    let mut rest = Vec::new();
    loop {
        if let Ok(real) = existing.canonicalize() {
            return rest.iter().rev().fold(real, |p, c| p.join(c));
        }
        match (existing.parent(), existing.file_name()) {
            (Some(parent), Some(name)) => {
                rest.push(name.to_owned());
                existing = parent;
            }
            _ => return absolute,
        }
    }
}

/// Moves the unpacked top-level entries `names` from `staging` into `dir`,
/// or into a new folder `dir/<id>` when one of them is already in `dir` or in
/// `taken`; returns the folder they went into. Never replaces or merges into
/// anything, and on failure leaves nothing behind (the entries go back to
/// `staging`, and the drop's own folder is removed). A drop that would put
/// `reserved` (a resolved path: the `--merge-csv` output) in place, or a
/// folder holding it, is refused before anything moves.
pub(super) fn place(
    staging: &Path,
    dir: &Path,
    id: &DropId,
    names: &[String],
    taken: &HashSet<String>,
    reserved: Option<&Path>,
) -> Result<PathBuf> {
    let clash = names.iter().find(|n| taken.contains(*n) || dir.join(n).symlink_metadata().is_ok());
    if let Some(reserved) = reserved {
        let target = if clash.is_some() { resolve(dir).join(id.as_str()) } else { resolve(dir) };
        if let Some(n) = names.iter().find(|n| reserved.starts_with(target.join(n))) {
            return Err(Error::new(
                ErrorCode::MergeOutputInDrop,
                format!(
                    "drop {id} would write {} ({} in the drop), the file --merge-csv is to create; it was not placed or acknowledged: choose a --merge-csv path outside the output folder, or another name",
                    shown_path(reserved),
                    shown(n)
                ),
            ));
        }
    }
    let Some(clash) = clash else {
        move_all(staging, dir, names)?;
        return Ok(dir.to_owned());
    };
    let own = dir.join(id.as_str());
    // Creating the folder claims it: this fails if anything of that name exists.
    let created = {
        use std::os::unix::fs::DirBuilderExt as _;
        std::fs::DirBuilder::new().mode(0o700).create(&own)
    };
    if let Err(e) = created {
        return Err(if e.kind() == io::ErrorKind::AlreadyExists {
            Error::new(
                ErrorCode::OutputExists,
                format!(
                    "{} already exists, and so does {}, where the drop would have gone instead; move one away or fetch into another folder with -o DIR (the drop was not acknowledged)",
                    shown_path(&dir.join(clash)),
                    shown_path(&own)
                ),
            )
        } else {
            Error::io(format!("cannot create {}", shown_path(&own)), e)
        });
    }
    move_all(staging, &own, names).inspect_err(|_| {
        // Empty again after the undo; fails (keeping it) if anything else appeared in it.
        let _ = std::fs::remove_dir(&own);
    })?;
    Ok(own)
}

/// Moves the entries `names` from `staging` into `dest`, never replacing
/// anything; if one cannot be moved, moves the others back first.
pub(super) fn move_all(staging: &Path, dest: &Path, names: &[String]) -> Result<()> {
    let mut moved: Vec<(&String, bool)> = Vec::new();
    for n in names {
        let from = staging.join(n);
        let to = dest.join(n);
        let is_dir = from.symlink_metadata().map(|m| m.is_dir()).unwrap_or(false);
        let result = if to.symlink_metadata().is_ok() {
            Err(io::Error::from(io::ErrorKind::AlreadyExists))
        } else if is_dir {
            std::fs::rename(&from, &to)
        } else {
            // A hard link fails if the target appeared meanwhile, so nothing is
            // ever replaced; the staging copy goes with the staging folder.
            std::fs::hard_link(&from, &to)
        };
        if let Err(e) = result {
            for (n, is_dir) in moved.into_iter().rev() {
                let _ = if is_dir {
                    std::fs::rename(dest.join(n), staging.join(n))
                } else {
                    std::fs::remove_file(dest.join(n))
                };
            }
            return Err(if e.kind() == io::ErrorKind::AlreadyExists {
                Error::new(
                    ErrorCode::OutputExists,
                    format!(
                        "{} already exists; move it away or fetch into another folder with -o DIR (the drop was not acknowledged)",
                        shown_path(&to)
                    ),
                )
            } else {
                Error::io(format!("cannot move {} into place", shown_path(&to)), e)
            });
        }
        moved.push((n, is_dir));
    }
    Ok(())
}
