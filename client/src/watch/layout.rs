//! The watch folder: what each sub-folder is for, which outbox path
//! means which recipient, and where a finished job's file goes.
//!
//! ```text
//! DIR/outbox/<party>/FILE               sent to <party>
//! DIR/outbox/<agreement>/<party>/FILE   sent to <party> under <agreement>
//! DIR/outbox/split/<column>/FILE        split by <column>, a drop per party
//! DIR/inbox/<sender>/<agreement>/...    what arrived (0600)
//! DIR/inbox/merged/<agreement>-<time>.csv   with --merge-csv
//! DIR/sent/<job>/FILE + sent.json       what was sent, with its drop ids
//! DIR/failed/<job>/FILE + reason.txt    what was refused, and why
//! DIR/status.json                       the service's state, for people
//! DIR/.sealdrop/                        the service's own (work in progress)
//! ```

use std::path::{Path, PathBuf};

use sealdrop_proto::directory::Directory;
use sealdrop_proto::ids::PartyId;

use crate::error::{Error, ErrorCode, Result};

/// The outbox's folder of splits: `outbox/split/<column>/`.
pub const SPLIT: &str = "split";

/// The folders of one watch folder.
#[derive(Clone, Debug)]
pub struct Layout {
    /// The watch folder itself.
    pub root: PathBuf,
}

impl Layout {
    /// The layout of `root` (nothing is created).
    pub fn new(root: &Path) -> Self {
        Self { root: std::path::absolute(root).unwrap_or_else(|_| root.to_owned()) }
    }
    /// Where staff put files to send.
    pub fn outbox(&self) -> PathBuf {
        self.root.join("outbox")
    }
    /// Where received drops are placed.
    pub fn inbox(&self) -> PathBuf {
        self.root.join("inbox")
    }
    /// Where merged CSV files go (`--merge-csv`).
    pub fn merged(&self) -> PathBuf {
        self.inbox().join("merged")
    }
    /// Where sent files go, each with its drop ids.
    pub fn sent(&self) -> PathBuf {
        self.root.join("sent")
    }
    /// Where refused files go, each with its reason.
    pub fn failed(&self) -> PathBuf {
        self.root.join("failed")
    }
    /// The service's own folder: jobs in progress. On the same file system
    /// as the outbox, so taking a file is one rename.
    pub fn private(&self) -> PathBuf {
        self.root.join(".sealdrop")
    }
    /// Jobs taken from the outbox and not yet finished.
    pub fn work(&self) -> PathBuf {
        self.private().join("work")
    }
    /// The status file people and monitoring read.
    pub fn status_file(&self) -> PathBuf {
        self.root.join("status.json")
    }

    /// Creates the folders (0700: what arrives and what is sent are
    /// records of vulnerable children; who else may read them is decided by
    /// the share in front of the folder, see docs/watch.md).
    pub fn create(&self) -> Result<()> {
        for dir in [self.outbox(), self.outbox().join(SPLIT), self.inbox(), self.sent(), self.failed(), self.work()] {
            crate::fsutil::create_private_dir(&dir)?;
        }
        Ok(())
    }

    /// Creates `outbox/<party>/` for every party `me` may send to, so staff
    /// see where to save a file. Never removes a folder.
    pub fn create_party_folders(&self, dir: &Directory, me: &PartyId) -> Result<()> {
        for a in &dir.agreements {
            if !a.includes(me) {
                continue;
            }
            for p in a.parties.iter().filter(|p| *p != me) {
                crate::fsutil::create_private_dir(&self.outbox().join(p.as_str()))?;
            }
        }
        Ok(())
    }
}

/// Where a file in the outbox goes, read from its folders.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Route {
    /// One drop to one party.
    Send {
        /// The folder's name: a party id, name or code.
        to: String,
        /// `outbox/<agreement>/<party>/`.
        agreement: Option<String>,
    },
    /// Split by a column.
    Split {
        /// The column, as the folder names it.
        column: String,
    },
    /// Nowhere: the file is not in a folder that names a recipient.
    Misplaced {
        /// Why, and where to save it instead.
        reason: String,
    },
}

/// The route of `rel`, a file's path below the outbox ([`Route::Misplaced`]
/// sends the file to `failed/`). The folder names are checked against the
/// directory when the file is sent, not here.
pub fn route(rel: &Path) -> Route {
    route_or_reason(rel).unwrap_or_else(|reason| Route::Misplaced { reason })
}

fn route_or_reason(rel: &Path) -> std::result::Result<Route, String> {
    let parts: Vec<String> = rel.iter().map(|c| c.to_string_lossy().into_owned()).collect();
    let expected = "save it in outbox/<party>/, outbox/<agreement>/<party>/ or outbox/split/<column>/";
    match parts.as_slice() {
        [_file] => Err(format!("a file directly in the outbox has no recipient: {expected}")),
        [split, column, _file] if split == SPLIT => Ok(Route::Split { column: column.clone() }),
        [to, _file] if to == SPLIT => Err(format!("a file in outbox/split/ needs the column to split by: {expected}")),
        [to, _file] => Ok(Route::Send { to: to.clone(), agreement: None }),
        [agreement, to, _file] => Ok(Route::Send { to: to.clone(), agreement: Some(agreement.clone()) }),
        _ => Err(format!("the outbox takes files, not folders nested this deep: {expected}")),
    }
}

/// Whether a name is one a writer uses while a file is incomplete (write
/// there, then rename), an editor's lock file, or a file Windows Explorer
/// leaves in a shared folder on its own: never taken. Explorer's files
/// matter most: staff open `outbox/islington/` over SMB, and a
/// `Thumbs.db` sent to Islington would be a misdirected file nobody chose.
pub fn is_temporary(name: &str) -> bool {
    const SUFFIXES: [&str; 6] = [".tmp", ".part", ".partial", ".crdownload", ".filepart", ".swp"];
    const EXPLORER: [&str; 3] = ["thumbs.db", "ehthumbs.db", "desktop.ini"];
    let lower = name.to_ascii_lowercase();
    name.starts_with('.')
        || name.starts_with("~$")
        || name.ends_with('~')
        || SUFFIXES.iter().any(|s| lower.ends_with(s))
        || EXPLORER.contains(&lower.as_str())
        || is_excel_save_name(name)
}

/// Excel saves a workbook by writing a new file under eight hex digits and
/// no extension (`3A4F21B0`), then renaming it over the workbook; over SMB
/// that name shows in the folder while the save runs.
fn is_excel_save_name(name: &str) -> bool {
    name.len() == 8 && name.bytes().all(|b| b.is_ascii_hexdigit())
}

/// A new job name for `file` taken at `at`: `YYYYMMDD-HHMMSS-<file>`, with
/// `-2`, `-3`, ... when that name is already used in any of `folders`.
pub fn job_name(file: &str, at: jiff::Timestamp, folders: &[PathBuf]) -> String {
    let stamp = at.strftime("%Y%m%d-%H%M%S").to_string();
    let base = format!("{stamp}-{file}");
    let free = |name: &str| folders.iter().all(|f| f.join(name).symlink_metadata().is_err());
    if free(&base) {
        return base;
    }
    (2u32..).map(|n| format!("{base}-{n}")).find(|n| free(n)).unwrap_or(base)
}

/// Moves a finished job's folder from `work/` to `sent/` or `failed/`,
/// under a name free there.
pub fn finish(job_dir: &Path, to: &Path) -> Result<PathBuf> {
    let name = job_dir.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let mut target = to.join(&name);
    let mut n = 2;
    while target.symlink_metadata().is_ok() {
        target = to.join(format!("{name}-{n}"));
        n += 1;
    }
    std::fs::rename(job_dir, &target)
        .map_err(|e| Error::io(format!("cannot move {} to {}", job_dir.display(), target.display()), e))?;
    Ok(target)
}

/// The error for a folder name in the outbox that names no party.
pub fn unknown_folder(dir: &Directory, folder: &str) -> Error {
    let e = crate::send::unknown_party(dir, folder);
    Error::new(ErrorCode::UnknownParty, format!("outbox folder {folder:?}: {}", e.message))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_files_folders_name_its_recipient() {
        assert_eq!(route(Path::new("islington/fsm.csv")), Route::Send { to: "islington".into(), agreement: None });
        assert_eq!(
            route(Path::new("london-fsm/islington/fsm.csv")),
            Route::Send { to: "islington".into(), agreement: Some("london-fsm".into()) }
        );
        assert_eq!(route(Path::new("split/home_la/all.csv")), Route::Split { column: "home_la".into() });
        for bad in ["fsm.csv", "split/all.csv", "a/b/c/fsm.csv"] {
            let Route::Misplaced { reason } = route(Path::new(bad)) else { panic!("{bad}") };
            assert!(reason.contains("outbox/<party>/"), "{bad}: {reason}");
        }
    }

    #[test]
    fn names_writers_use_while_writing_are_never_taken() {
        for t in [
            ".fsm.csv.swp",
            "~$fsm.xlsx",
            "fsm.csv.tmp",
            "fsm.csv.PART",
            "x.crdownload",
            "fsm.csv~",
            ".hidden",
            "3A4F21B0",
            "0b1c2d3e",
            "Thumbs.db",
            "desktop.ini",
            "~WRL0001.tmp",
        ] {
            assert!(is_temporary(t), "{t}");
        }
        for f in ["fsm.csv", "EHC plans.xlsx", "part.csv", "3A4F21B0.csv", "3A4F21BZ", "thumbs.db.csv"] {
            assert!(!is_temporary(f), "{f}");
        }
    }

    #[test]
    fn job_names_never_clash() {
        let dir = tempfile::tempdir().unwrap();
        let at: jiff::Timestamp = "2026-12-07T16:05:09Z".parse().unwrap();
        let first = job_name("fsm.csv", at, &[dir.path().to_owned()]);
        assert_eq!(first, "20261207-160509-fsm.csv");
        std::fs::create_dir(dir.path().join(&first)).unwrap();
        assert_eq!(job_name("fsm.csv", at, &[dir.path().to_owned()]), "20261207-160509-fsm.csv-2");
    }
}
