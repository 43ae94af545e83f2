//! The tar archive inside every drop, so file names travel only inside the
//! ciphertext. Packing refuses links and special files; unpacking refuses
//! absolute paths, `..`, links and special files, and writes only inside the
//! folder it is given.

use std::fs::File;
use std::io::{self, Read, Write};
use std::path::{Component, Path, PathBuf};

use crate::error::{Error, Result};

/// Bytes per read of an input file and per write of an extracted one: few,
/// large system calls (a 1 GiB file in 4,096 rather than 131,072).
const IO_BUFFER: usize = 256 * 1024;

/// One thing to put in the archive.
#[derive(Clone, Debug)]
pub struct Item {
    /// Where it is on disk.
    pub source: PathBuf,
    /// Its name in the archive (relative, `/`-separated).
    pub name: String,
    /// A folder (no content) or a regular file.
    pub is_dir: bool,
    /// File size in bytes (0 for folders).
    pub size: u64,
}

/// What will be sent: every file and folder, in order.
#[derive(Clone, Debug, Default)]
pub struct Plan {
    /// Items in archive order (parents before children).
    pub items: Vec<Item>,
    /// Total bytes of file content.
    pub total_bytes: u64,
    /// Number of regular files.
    pub files: usize,
}

/// Lists what `paths` would put in the archive, checking every entry.
pub fn plan(paths: &[PathBuf]) -> Result<Plan> {
    if paths.is_empty() {
        return Err(Error::input("no_paths", "nothing to send: name at least one file or folder"));
    }
    let mut plan = Plan::default();
    let mut top = std::collections::BTreeSet::new();
    for p in paths {
        let meta = std::fs::symlink_metadata(p)
            .map_err(|e| Error::input("path_missing", format!("cannot read {}: {e}; check the path", p.display())))?;
        let name = top_level_name(p)?;
        if !top.insert(name.clone()) {
            return Err(Error::input(
                "duplicate_name",
                format!("two of the paths are both called {name:?}; rename one or put them in a folder"),
            ));
        }
        add(&mut plan, p, &name, &meta)?;
    }
    Ok(plan)
}

fn top_level_name(p: &Path) -> Result<String> {
    // `send .` or `send dir/..` has no file name of its own: use the real folder's name.
    let name = match p.file_name() {
        Some(n) => Some(n.to_owned()),
        None => std::fs::canonicalize(p).ok().and_then(|c| c.file_name().map(|n| n.to_owned())),
    };
    name.and_then(|n| n.to_str().map(str::to_owned))
        .filter(|n| !n.is_empty())
        .ok_or_else(|| Error::input("unsupported_file", format!("{} has no usable UTF-8 name; rename it", p.display())))
}

fn add(plan: &mut Plan, path: &Path, name: &str, meta: &std::fs::Metadata) -> Result<()> {
    let ft = meta.file_type();
    if ft.is_symlink() {
        return Err(Error::input(
            "unsupported_file",
            format!(
                "{} is a symbolic link; sealdrop sends only regular files and folders: give the file it points to instead",
                path.display()
            ),
        ));
    }
    if ft.is_file() {
        plan.items.push(Item { source: path.to_owned(), name: name.to_owned(), is_dir: false, size: meta.len() });
        plan.total_bytes += meta.len();
        plan.files += 1;
        return Ok(());
    }
    if !ft.is_dir() {
        return Err(Error::input(
            "unsupported_file",
            format!(
                "{} is a device, socket or pipe; sealdrop sends only regular files and folders: leave it out",
                path.display()
            ),
        ));
    }
    plan.items.push(Item { source: path.to_owned(), name: name.to_owned(), is_dir: true, size: 0 });
    let mut children: Vec<_> = std::fs::read_dir(path)
        .map_err(|e| Error::io(format!("cannot list {}", path.display()), e))?
        .collect::<io::Result<_>>()
        .map_err(|e| Error::io(format!("cannot list {}", path.display()), e))?;
    children.sort_by_key(|c| c.file_name());
    for child in children {
        let child_name = child.file_name();
        let child_name = child_name.to_str().ok_or_else(|| {
            Error::input(
                "unsupported_file",
                format!("{} has a name that is not UTF-8; rename it", child.path().display()),
            )
        })?;
        let meta = std::fs::symlink_metadata(child.path())
            .map_err(|e| Error::io(format!("cannot read {}", child.path().display()), e))?;
        add(plan, &child.path(), &format!("{name}/{child_name}"), &meta)?;
    }
    Ok(())
}

/// Writes the planned archive to `out`. A file that changed size while being
/// read fails the whole archive.
pub fn write<W: Write>(plan: &Plan, out: W, mut on_bytes: impl FnMut(u64)) -> io::Result<W> {
    let mut builder = tar::Builder::new(out);
    for item in &plan.items {
        let meta = std::fs::metadata(&item.source)?;
        let mut header = tar::Header::new_gnu();
        header.set_metadata_in_mode(&meta, tar::HeaderMode::Deterministic);
        if let Some(d) = meta.modified().ok().and_then(|m| m.duration_since(std::time::UNIX_EPOCH).ok()) {
            header.set_mtime(d.as_secs());
        }
        if item.is_dir {
            header.set_size(0);
            builder.append_data(&mut header, format!("{}/", item.name), io::empty())?;
        } else {
            header.set_size(item.size);
            let file = File::open(&item.source)?;
            // Read in large pieces: tar copies 8 KiB at a time.
            let file = io::BufReader::with_capacity(IO_BUFFER, file);
            let mut counted = Counted { inner: file.take(item.size), n: 0, on_bytes: &mut on_bytes };
            builder.append_data(&mut header, &item.name, &mut counted)?;
            if counted.n != item.size {
                return Err(io::Error::other(format!(
                    "{} changed size while it was being sent; send it again",
                    item.source.display()
                )));
            }
        }
    }
    builder.into_inner()
}

struct Counted<'a, R, F> {
    inner: R,
    n: u64,
    on_bytes: &'a mut F,
}

impl<R: Read, F: FnMut(u64)> Read for Counted<'_, R, F> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(out)?;
        self.n += n as u64;
        (self.on_bytes)(n as u64);
        Ok(n)
    }
}

/// What an extraction produced.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Extracted {
    /// Regular files written.
    pub files: usize,
    /// Bytes of file content written.
    pub bytes: u64,
    /// Top-level names, in archive order.
    pub top_level: Vec<String>,
}

/// Why an archive was refused.
#[derive(Debug, thiserror::Error)]
pub enum ExtractError {
    #[error("the drop's archive contains an unsafe entry {0:?} ({1}); nothing was written")]
    Unsafe(String, &'static str),
    #[error("{0}")]
    Io(#[from] io::Error),
}

/// Extracts a tar stream into `dest` (an empty folder), refusing anything but
/// regular files and folders with plain relative names.
pub fn extract(input: impl Read, dest: &Path) -> Result<Extracted, ExtractError> {
    let mut archive = tar::Archive::new(input);
    let mut out = Extracted::default();
    for entry in archive.entries()? {
        let mut entry = entry?;
        let raw = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
        let rel = safe_relative(&raw)?;
        let kind = entry.header().entry_type();
        let target = dest.join(&rel);
        if let Some(first) = rel.components().next() {
            let first = first.as_os_str().to_string_lossy().into_owned();
            if !out.top_level.contains(&first) {
                out.top_level.push(first);
            }
        }
        match kind {
            tar::EntryType::Directory => {
                std::fs::create_dir_all(&target)?;
            }
            tar::EntryType::Regular | tar::EntryType::Continuous => {
                if let Some(parent) = target.parent() {
                    std::fs::create_dir_all(parent)?;
                }
                let mut file = std::fs::OpenOptions::new().write(true).create_new(true).open(&target).map_err(|e| {
                    if e.kind() == io::ErrorKind::AlreadyExists {
                        ExtractError::Unsafe(raw.clone(), "the name appears twice")
                    } else {
                        ExtractError::Io(e)
                    }
                })?;
                // Large writes: io::copy reads straight into the BufWriter's
                // buffer, where a bare File would get 8 KiB at a time.
                let n = {
                    let mut out = io::BufWriter::with_capacity(IO_BUFFER, &mut file);
                    let n = io::copy(&mut entry, &mut out)?;
                    out.flush()?;
                    n
                };
                let exec = entry.header().mode().map(|m| m & 0o111 != 0).unwrap_or(false);
                {
                    use std::os::unix::fs::PermissionsExt;
                    file.set_permissions(std::fs::Permissions::from_mode(if exec { 0o755 } else { 0o644 }))?;
                }
                // The sender chooses the time: one past what the platform's
                // clock can hold (a GNU binary field holds any u64) is ignored,
                // not added with overflow.
                let mtime = entry.header().mtime().ok().map(std::time::Duration::from_secs);
                if let Some(t) = mtime.and_then(|d| std::time::UNIX_EPOCH.checked_add(d)) {
                    let _ = file.set_modified(t);
                }
                out.files += 1;
                out.bytes += n;
            }
            tar::EntryType::Symlink | tar::EntryType::Link => {
                return Err(ExtractError::Unsafe(raw, "a link"));
            }
            _ => return Err(ExtractError::Unsafe(raw, "not a regular file or folder")),
        }
    }
    Ok(out)
}

fn safe_relative(raw: &str) -> Result<PathBuf, ExtractError> {
    let path = Path::new(raw);
    let mut rel = PathBuf::new();
    for c in path.components() {
        match c {
            Component::Normal(part) => rel.push(part),
            Component::CurDir => {}
            Component::ParentDir => return Err(ExtractError::Unsafe(raw.to_owned(), "it climbs out with `..`")),
            Component::RootDir | Component::Prefix(_) => {
                return Err(ExtractError::Unsafe(raw.to_owned(), "it is an absolute path"));
            }
        }
    }
    if rel.as_os_str().is_empty() {
        return Err(ExtractError::Unsafe(raw.to_owned(), "it has an empty name"));
    }
    Ok(rel)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tree() -> tempfile::TempDir {
        let d = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(d.path().join("reports/sub")).unwrap();
        std::fs::write(d.path().join("reports/a.csv"), "x,y\n1,2\n").unwrap();
        std::fs::write(d.path().join("reports/sub/Zoë pupil list.csv"), "é\n").unwrap();
        std::fs::write(d.path().join("single.txt"), "hello").unwrap();
        d
    }

    #[test]
    fn round_trip_files_and_folders() {
        let src = tree();
        let plan = plan(&[src.path().join("reports"), src.path().join("single.txt")]).unwrap();
        assert_eq!(plan.files, 3);
        assert_eq!(plan.total_bytes, 8 + 3 + 5);
        let mut seen = 0;
        let bytes = write(&plan, Vec::new(), |n| seen += n).unwrap();
        assert_eq!(seen, plan.total_bytes);
        let dest = tempfile::tempdir().unwrap();
        let got = extract(&bytes[..], dest.path()).unwrap();
        assert_eq!(got.files, 3);
        assert_eq!(got.top_level, vec!["reports".to_string(), "single.txt".to_string()]);
        assert_eq!(std::fs::read_to_string(dest.path().join("reports/sub/Zoë pupil list.csv")).unwrap(), "é\n");
        assert_eq!(std::fs::read_to_string(dest.path().join("single.txt")).unwrap(), "hello");
    }

    #[test]
    fn packing_refuses_links_duplicates_and_missing_paths() {
        let src = tree();
        std::os::unix::fs::symlink("/etc/passwd", src.path().join("reports/link")).unwrap();
        assert_eq!(plan(&[src.path().join("reports")]).unwrap_err().code, "unsupported_file");
        assert_eq!(plan(&[src.path().join("nope")]).unwrap_err().code, "path_missing");
        let other = tempfile::tempdir().unwrap();
        std::fs::write(other.path().join("single.txt"), "x").unwrap();
        let err = plan(&[src.path().join("single.txt"), other.path().join("single.txt")]).unwrap_err();
        assert_eq!(err.code, "duplicate_name");
    }

    fn malicious(name: &str, kind: tar::EntryType, link: Option<&str>) -> Vec<u8> {
        let mut b = tar::Builder::new(Vec::new());
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(kind);
        h.set_size(if kind == tar::EntryType::Regular { 4 } else { 0 });
        h.set_mode(0o644);
        // Write the raw name so the tar crate's own checks do not stop us building the attack.
        let gnu = h.as_gnu_mut().unwrap();
        gnu.name[..name.len()].copy_from_slice(name.as_bytes());
        if let Some(l) = link {
            gnu.linkname[..l.len()].copy_from_slice(l.as_bytes());
        }
        h.set_cksum();
        let data: &[u8] = if kind == tar::EntryType::Regular { b"evil" } else { b"" };
        b.append(&h, data).unwrap();
        b.into_inner().unwrap()
    }

    #[test]
    fn a_modification_time_past_the_clocks_range_is_ignored() {
        // Found by the tar_extract fuzz target: adding u64::MAX seconds to
        // the epoch panicked ("overflow when adding duration to instant").
        let mut b = tar::Builder::new(Vec::new());
        for (name, mtime) in [("far.txt", u64::MAX), ("near.txt", 1_700_000_000)] {
            let mut h = tar::Header::new_gnu();
            h.set_size(2);
            h.set_mode(0o644);
            h.set_mtime(mtime);
            b.append_data(&mut h, name, &b"hi"[..]).unwrap();
        }
        let dest = tempfile::tempdir().unwrap();
        let got = extract(&b.into_inner().unwrap()[..], dest.path()).unwrap();
        assert_eq!(got.files, 2);
        assert_eq!(std::fs::read(dest.path().join("far.txt")).unwrap(), b"hi");
        let near = std::fs::metadata(dest.path().join("near.txt")).unwrap().modified().unwrap();
        assert_eq!(near, std::time::UNIX_EPOCH + std::time::Duration::from_secs(1_700_000_000));
    }

    #[test]
    fn extraction_refuses_unsafe_entries() {
        for (name, kind, link) in [
            ("../escape.txt", tar::EntryType::Regular, None),
            ("a/../../escape.txt", tar::EntryType::Regular, None),
            ("/tmp/abs.txt", tar::EntryType::Regular, None),
            ("link", tar::EntryType::Symlink, Some("/etc/passwd")),
            ("hard", tar::EntryType::Link, Some("/etc/passwd")),
            ("dev", tar::EntryType::Char, None),
            ("fifo", tar::EntryType::Fifo, None),
        ] {
            let dest = tempfile::tempdir().unwrap();
            let err = extract(&malicious(name, kind, link)[..], &dest.path().join("x")).unwrap_err();
            assert!(matches!(err, ExtractError::Unsafe(..)), "{name}: {err}");
            assert!(!dest.path().join("x").exists(), "{name} wrote something");
            assert!(!dest.path().parent().unwrap().join("escape.txt").exists());
        }
    }
}
