//! The tar archive inside every drop, so file names travel only inside the
//! ciphertext. Packing refuses links and special files; unpacking refuses
//! absolute paths, `..`, links and special files, and writes only inside the
//! folder it is given.

use std::fs::File;
use std::io::{self, Read, Write};
use std::path::{Component, Path, PathBuf};

use crate::error::{Error, ErrorCode, Result};
use crate::names::{describe_char, shown, shown_path};

/// Bytes per read of an input file and per write of an extracted one: few,
/// large system calls (a 1 GiB file in 4,096 rather than 131,072).
const IO_BUFFER: usize = 256 * 1024;

/// The longest name of one file or folder (NAME_MAX), and of a whole path
/// (PATH_MAX less its NUL), that Linux file systems take. A sender's archive
/// with a longer one cannot be written: it is refused as unsafe, not
/// reported as a disk error that running the fetch again would not fix.
const MAX_NAME_BYTES: usize = 255;
const MAX_PATH_BYTES: usize = 4095;

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
        return Err(Error::new(ErrorCode::NoPaths, "nothing to send: name at least one file or folder"));
    }
    let mut plan = Plan::default();
    let mut top = std::collections::BTreeSet::new();
    for p in paths {
        let meta = std::fs::symlink_metadata(p).map_err(|e| {
            Error::new(ErrorCode::PathMissing, format!("cannot read {}: {e}; check the path", shown_path(p)))
        })?;
        let name = top_level_name(p)?;
        if !top.insert(name.clone()) {
            return Err(Error::new(
                ErrorCode::DuplicateName,
                format!("two of the paths are both called {}; rename one or put them in a folder", shown(&name)),
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
    let name = name.and_then(|n| n.to_str().map(str::to_owned)).filter(|n| !n.is_empty()).ok_or_else(|| {
        Error::new(ErrorCode::UnsupportedFile, format!("{} has no usable UTF-8 name; rename it", shown_path(p)))
    })?;
    refuse_unsafe_name(p, &name)?;
    Ok(name)
}

/// Refuses a name a recipient's `fetch` would refuse (and a terminal could
/// be made to act on): one with a control character or a bidirectional
/// override. Said here, before anything is encrypted or sent.
fn refuse_unsafe_name(path: &Path, name: &str) -> Result<()> {
    match crate::names::unsafe_char(name) {
        Some(c) => Err(Error::new(
            ErrorCode::UnsupportedFile,
            format!(
                "{} has {} in its name, which recipients refuse (it can disguise a name or drive a terminal); rename it",
                shown_path(path),
                describe_char(c)
            ),
        )),
        None => Ok(()),
    }
}

fn add(plan: &mut Plan, path: &Path, name: &str, meta: &std::fs::Metadata) -> Result<()> {
    let ft = meta.file_type();
    if ft.is_symlink() {
        return Err(Error::new(
            ErrorCode::UnsupportedFile,
            format!(
                "{} is a symbolic link; sealdrop sends only regular files and folders: give the file it points to instead",
                shown_path(path)
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
        return Err(Error::new(
            ErrorCode::UnsupportedFile,
            format!(
                "{} is a device, socket or pipe; sealdrop sends only regular files and folders: leave it out",
                shown_path(path)
            ),
        ));
    }
    plan.items.push(Item { source: path.to_owned(), name: name.to_owned(), is_dir: true, size: 0 });
    let mut children: Vec<_> = std::fs::read_dir(path)
        .map_err(|e| Error::io(format!("cannot list {}", shown_path(path)), e))?
        .collect::<io::Result<_>>()
        .map_err(|e| Error::io(format!("cannot list {}", shown_path(path)), e))?;
    children.sort_by_key(|c| c.file_name());
    for child in children {
        let child_name = child.file_name();
        let child_name = child_name.to_str().ok_or_else(|| {
            Error::new(
                ErrorCode::UnsupportedFile,
                format!("{} has a name that is not UTF-8; rename it", shown_path(&child.path())),
            )
        })?;
        refuse_unsafe_name(&child.path(), child_name)?;
        let meta = std::fs::symlink_metadata(child.path())
            .map_err(|e| Error::io(format!("cannot read {}", shown_path(&child.path())), e))?;
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
                    shown_path(&item.source)
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
    /// An entry that could write outside the folder, is a link, device or
    /// pipe, or whose name is unsafe to write or show (`unsafe_archive`).
    #[error("the drop's archive contains an unsafe entry {0} ({1}); nothing was written")]
    Unsafe(String, &'static str),
    /// Not a well-formed archive of plain files and folders: a damaged
    /// header, an entry that declares more bytes than the archive holds, a
    /// sparse file or another kind of entry sealdrop never sends
    /// (`bad_archive`). The same bytes give the same verdict every time.
    #[error("the drop's archive is not a well-formed archive of files and folders: {0}; nothing was written")]
    Bad(String),
    /// Reading the stream under the archive failed (decryption, network).
    #[error("{0}")]
    Input(io::Error),
    /// Writing the files failed (the disk).
    #[error("{0}")]
    Io(#[from] io::Error),
}

/// Extracts a tar stream into `dest` (an empty folder), refusing anything but
/// regular files and folders with plain relative names. Files are created
/// 0600 and folders 0700, whatever modes the archive states: what a sender
/// sends is for this user only, and never executable.
///
/// Reads the archive up to its end-of-archive marker; whatever follows is
/// left in `input` for the caller.
pub fn extract(input: impl Read, dest: &Path) -> Result<Extracted, ExtractError> {
    let mut input = Watched { inner: input, failed: false };
    let result = extract_entries(&mut input, dest);
    // A read error that did not come from the stream under the archive is
    // the tar reader's own verdict on the archive.
    result.map_err(|e| match e {
        ExtractError::Input(e) if !input.failed => ExtractError::Bad(e.to_string()),
        e => e,
    })
}

/// The stream under the archive, remembering whether it failed, so that an
/// error the tar reader returns can be told apart as the stream's (a
/// decryption or network failure) or the archive's.
struct Watched<R> {
    inner: R,
    failed: bool,
}

impl<R: Read> Read for Watched<R> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        self.inner.read(out).inspect_err(|e| self.failed |= e.kind() != io::ErrorKind::Interrupted)
    }
}

/// A read of the archive failed; [`extract`] decides whose fault it was.
fn read_err(e: io::Error) -> ExtractError {
    ExtractError::Input(e)
}

fn extract_entries(input: &mut impl Read, dest: &Path) -> Result<Extracted, ExtractError> {
    let mut archive = tar::Archive::new(input);
    let mut out = Extracted::default();
    let mut top_level = TopLevel::default();
    let mut buf = vec![0u8; IO_BUFFER];
    for entry in archive.entries().map_err(read_err)? {
        let mut entry = entry.map_err(read_err)?;
        let raw = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
        let rel = safe_relative(&raw)?;
        let kind = entry.header().entry_type();
        let target = dest.join(&rel);
        if target.as_os_str().len() > MAX_PATH_BYTES {
            return Err(ExtractError::Unsafe(shown(&raw), "its path is longer than a file system allows"));
        }
        top_level.note(&rel);
        match kind {
            tar::EntryType::Directory => {
                create_private_dirs(&target)?;
            }
            tar::EntryType::Regular | tar::EntryType::Continuous => {
                if let Some(parent) = target.parent() {
                    create_private_dirs(parent)?;
                }
                let mut file = {
                    use std::os::unix::fs::OpenOptionsExt as _;
                    std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(&target)
                }
                .map_err(|e| {
                    if e.kind() == io::ErrorKind::AlreadyExists {
                        ExtractError::Unsafe(shown(&raw), "the name appears twice")
                    } else {
                        ExtractError::Io(e)
                    }
                })?;
                {
                    // Exactly 0600 even under an unusual umask.
                    use std::os::unix::fs::PermissionsExt;
                    file.set_permissions(std::fs::Permissions::from_mode(0o600))?;
                }
                let declared = entry.size();
                let n = copy_entry(&mut entry, &mut file, &mut buf)?;
                if n != declared {
                    return Err(ExtractError::Bad(format!(
                        "entry {} declares {declared} bytes but the archive ends after {n}",
                        shown(&raw)
                    )));
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
                return Err(ExtractError::Unsafe(shown(&raw), "a link"));
            }
            tar::EntryType::Char | tar::EntryType::Block | tar::EntryType::Fifo => {
                return Err(ExtractError::Unsafe(shown(&raw), "not a regular file or folder"));
            }
            other => {
                let what = if other == tar::EntryType::GNUSparse {
                    "a sparse file".to_owned()
                } else {
                    format!("an entry of type {:?}", other.as_byte() as char)
                };
                return Err(ExtractError::Bad(format!(
                    "entry {} is {what}, which sealdrop does not send or unpack",
                    shown(&raw)
                )));
            }
        }
    }
    out.top_level = top_level.names;
    Ok(out)
}

/// The top-level names of an archive, in the order they first appear; a
/// set beside the list, so an archive of 80,000 names is checked in linear
/// time (a search of the list for each took 6 s).
#[derive(Default)]
struct TopLevel {
    names: Vec<String>,
    seen: std::collections::HashSet<String>,
}

impl TopLevel {
    /// Notes the first component of `rel`.
    fn note(&mut self, rel: &Path) {
        if let Some(first) = rel.components().next() {
            let first = first.as_os_str().to_string_lossy();
            if !self.seen.contains(first.as_ref()) {
                self.seen.insert(first.clone().into_owned());
                self.names.push(first.into_owned());
            }
        }
    }
}

/// Copies an entry's content into `file` in writes of up to [`IO_BUFFER`]
/// bytes (few, large system calls); returns the bytes copied. A read error
/// is the archive's or its stream's ([`read_err`]), a write error the disk's.
fn copy_entry(entry: &mut impl Read, file: &mut File, buf: &mut [u8]) -> Result<u64, ExtractError> {
    let mut total = 0u64;
    // A large file is written past the page cache's fresh pages (see `crate::drop_behind`).
    let mut since_advice = 0u64;
    loop {
        let mut filled = 0;
        while filled < buf.len() {
            match entry.read(&mut buf[filled..]) {
                Ok(0) => break,
                Ok(n) => filled += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(read_err(e)),
            }
        }
        if filled == 0 {
            return Ok(total);
        }
        file.write_all(&buf[..filled])?;
        crate::drop_behind::DropBehind::wrote(file, &mut since_advice, filled);
        total += filled as u64;
    }
}

/// Creates `dir` and any missing parents, each 0700.
fn create_private_dirs(dir: &Path) -> io::Result<()> {
    use std::os::unix::fs::DirBuilderExt as _;
    std::fs::DirBuilder::new().recursive(true).mode(0o700).create(dir)
}

fn safe_relative(raw: &str) -> Result<PathBuf, ExtractError> {
    if let Some(c) = crate::names::unsafe_char(raw) {
        let why = if c.is_control() {
            "its name holds a control character"
        } else {
            "its name holds a bidirectional override, which can disguise it"
        };
        return Err(ExtractError::Unsafe(shown(raw), why));
    }
    let path = Path::new(raw);
    let mut rel = PathBuf::new();
    for c in path.components() {
        match c {
            Component::Normal(part) if part.len() > MAX_NAME_BYTES => {
                return Err(ExtractError::Unsafe(shown(raw), "a name in it is longer than 255 bytes"));
            }
            Component::Normal(part) => rel.push(part),
            Component::CurDir => {}
            Component::ParentDir => return Err(ExtractError::Unsafe(shown(raw), "it climbs out with `..`")),
            Component::RootDir | Component::Prefix(_) => {
                return Err(ExtractError::Unsafe(shown(raw), "it is an absolute path"));
            }
        }
    }
    if rel.as_os_str().is_empty() {
        return Err(ExtractError::Unsafe(shown(raw), "it has an empty name"));
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

    fn mode(path: &Path) -> u32 {
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::metadata(path).unwrap().permissions().mode() & 0o7777
    }

    #[test]
    fn received_files_are_0600_and_folders_0700_whatever_the_archive_says() {
        let mut b = tar::Builder::new(Vec::new());
        for (name, mode, kind) in [
            ("open/", 0o777, tar::EntryType::Directory),
            ("open/run.sh", 0o4777, tar::EntryType::Regular),
            ("implicit/deeper/x.csv", 0o666, tar::EntryType::Regular),
        ] {
            let mut h = tar::Header::new_gnu();
            h.set_entry_type(kind);
            h.set_mode(mode);
            let data: &[u8] = if kind == tar::EntryType::Regular { b"data" } else { b"" };
            h.set_size(data.len() as u64);
            b.append_data(&mut h, name, data).unwrap();
        }
        let dest = tempfile::tempdir().unwrap();
        extract(&b.into_inner().unwrap()[..], dest.path()).unwrap();
        for (rel, want) in [
            ("open", 0o700),
            ("open/run.sh", 0o600),
            ("implicit", 0o700),
            ("implicit/deeper", 0o700),
            ("implicit/deeper/x.csv", 0o600),
        ] {
            assert_eq!(mode(&dest.path().join(rel)), want, "{rel}");
        }
    }

    /// One GNU header for `name` declaring `declared` bytes, followed by `data`.
    fn one_entry(name: &str, kind: tar::EntryType, declared: u64, data: &[u8]) -> Vec<u8> {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(kind);
        h.set_mode(0o644);
        h.set_size(declared);
        h.set_path(name).unwrap();
        if kind == tar::EntryType::GNUSparse {
            // A sparse file of 1 GiB of zeros, none of it stored.
            let gnu = h.as_gnu_mut().unwrap();
            gnu.set_real_size(1 << 30);
            gnu.sparse[0].set_offset(1 << 30);
            gnu.sparse[0].set_length(0);
        }
        h.set_cksum();
        let mut out = h.as_bytes().to_vec();
        out.extend_from_slice(data);
        out
    }

    #[test]
    fn a_malformed_archive_is_bad_not_a_disk_error() {
        let short = one_entry("short.csv", tar::EntryType::Regular, 10_000, &[b'x'; 1024]);
        let sparse = one_entry("sparse.bin", tar::EntryType::GNUSparse, 0, &[]);
        let global = one_entry("pax_global_header", tar::EntryType::XGlobalHeader, 0, &[]);
        let volume = one_entry("label", tar::EntryType::new(b'V'), 0, &[]);
        let mut bad_checksum = one_entry("a.csv", tar::EntryType::Regular, 0, &[]);
        bad_checksum[148] ^= 1;
        let half_header = one_entry("a.csv", tar::EntryType::Regular, 0, &[])[..300].to_vec();
        for (what, tar, needle) in [
            ("short", short, "declares 10000 bytes but the archive ends after 1024"),
            ("sparse", sparse, "a sparse file"),
            ("global", global, "type 'g'"),
            ("volume", volume, "type 'V'"),
            ("checksum", bad_checksum, ""),
            ("half header", half_header, ""),
        ] {
            let dest = tempfile::tempdir().unwrap();
            let err = extract(&tar[..], dest.path()).unwrap_err();
            assert!(matches!(&err, ExtractError::Bad(m) if m.contains(needle)), "{what}: {err:?}");
        }
    }

    /// Yields `data`, then fails as a decryption failure would.
    struct FailsAfter<'a>(&'a [u8]);

    impl Read for FailsAfter<'_> {
        fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
            if self.0.is_empty() {
                return Err(io::Error::new(io::ErrorKind::InvalidData, "chunk failed to decrypt"));
            }
            let n = out.len().min(self.0.len());
            out[..n].copy_from_slice(&self.0[..n]);
            self.0 = &self.0[n..];
            Ok(n)
        }
    }

    #[test]
    fn a_failure_of_the_stream_under_the_archive_is_passed_on_as_such() {
        let tar = one_entry("a.csv", tar::EntryType::Regular, 4096, &[b'x'; 1000]);
        let dest = tempfile::tempdir().unwrap();
        let err = extract(FailsAfter(&tar), dest.path()).unwrap_err();
        assert!(matches!(&err, ExtractError::Input(e) if e.kind() == io::ErrorKind::InvalidData), "{err:?}");
    }

    #[test]
    fn names_with_control_characters_or_bidi_overrides_are_refused_both_ways() {
        for name in
            ["a\u{1b}]0;owned\u{7}.csv", "fetched d-x.csv\nb.csv", "x\u{9b}2J", "del\u{7f}", "evil\u{202e}vsc.exe"]
        {
            let tar = one_entry(name, tar::EntryType::Regular, 0, &[]);
            let dest = tempfile::tempdir().unwrap();
            let err = extract(&tar[..], &dest.path().join("x")).unwrap_err();
            let ExtractError::Unsafe(shown_name, _) = &err else { panic!("{name:?}: {err:?}") };
            assert!(crate::names::unsafe_char(shown_name).is_none(), "the error shows the name raw: {shown_name:?}");
            assert!(crate::names::unsafe_char(&err.to_string()).is_none());
            assert!(!dest.path().join("x").exists(), "{name:?} wrote something");

            // And `send` refuses to pack such a name.
            let src = tempfile::tempdir().unwrap();
            let path = src.path().join(name);
            std::fs::write(&path, b"x").unwrap();
            let e = plan(std::slice::from_ref(&path)).unwrap_err();
            assert_eq!(e.code, "unsupported_file", "{name:?}");
            assert!(crate::names::unsafe_char(&e.message).is_none(), "{}", e.message);
            let folder = src.path().join("folder");
            std::fs::create_dir(&folder).unwrap();
            std::fs::rename(&path, folder.join(name)).unwrap();
            assert_eq!(plan(&[folder]).unwrap_err().code, "unsupported_file", "{name:?} inside a folder");
        }
    }

    #[test]
    fn top_level_names_are_checked_in_linear_time() {
        let paths: Vec<PathBuf> = (0..80_000).map(|i| PathBuf::from(format!("pupil-{i:06}.csv"))).collect();
        let started = std::time::Instant::now();
        let mut top = TopLevel::default();
        for p in &paths {
            top.note(p);
            top.note(&p.join("inside"));
        }
        let took = started.elapsed();
        assert_eq!(top.names.len(), 80_000);
        assert_eq!(top.names[79_999], "pupil-079999.csv");
        // Searching the list for each name took 6 s in a release build (and
        // takes minutes in this unoptimised one); a set takes milliseconds there.
        let bound = std::time::Duration::from_millis(if cfg!(debug_assertions) { 3000 } else { 200 });
        assert!(took < bound, "80,000 top-level names took {took:?}");
    }
}
