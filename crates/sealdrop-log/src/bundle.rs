//! The audit bundle: everything an auditor needs, in one tar file.
//!
//! ```text
//! bundle.json                  {"format":"sealdrop-audit-bundle/v1","origin":..,"log_key":..,"authority":..,"checkpoint":..}
//! directories/<serial>.note    every signed directory version
//! tile/entries/<N>[.p/<W>]     the entries as C2SP tlog-tiles entry bundles (256 per full bundle)
//! ```
//!
//! Members may come in any order (the writer puts `bundle.json` first).
//!
//! [`BundleWriter`] streams: it holds at most one 256-entry bundle. A million
//! entries make a file of about 1 GB; [`BundleReader`] reads it in two passes
//! over a seekable file: the first notes where each entry bundle lies (and
//! reads the small members), the second ([`BundleReader::entries`]) reads one
//! entry bundle at a time.

use std::collections::BTreeMap;
use std::io::{self, Read, Seek, SeekFrom, Write};

use serde::{Deserialize, Serialize};

use sealdrop_proto::keys::NoteVerifierKey;

use crate::audit::AuditInput;
use crate::entry::MAX_ENTRY_BYTES;
use crate::tiles::{TILE_WIDTH, TilePath, decode_entry_bundle, encode_entry_bundle};

/// The `format` of `bundle.json`.
pub const BUNDLE_FORMAT: &str = "sealdrop-audit-bundle/v1";
/// The largest `bundle.json` or directory note read.
const MAX_SMALL_MEMBER: u64 = 4 << 20;
/// The largest entry bundle: 256 entries of 65,535 bytes and their lengths.
const MAX_ENTRY_BUNDLE: u64 = 256 * (MAX_ENTRY_BYTES as u64 + 2);

/// `bundle.json`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BundleMeta {
    /// [`BUNDLE_FORMAT`].
    pub format: String,
    /// The log's origin.
    pub origin: String,
    /// The log key (signed-note verifier key text).
    pub log_key: NoteVerifierKey,
    /// The authority key that signs directories.
    pub authority: NoteVerifierKey,
    /// The checkpoint note, with cosignatures.
    pub checkpoint: String,
}

impl BundleMeta {
    /// The metadata for a log whose origin is the log key's name.
    pub fn new(log_key: NoteVerifierKey, authority: NoteVerifierKey, checkpoint: impl Into<String>) -> Self {
        Self {
            format: BUNDLE_FORMAT.to_owned(),
            origin: log_key.name().to_owned(),
            log_key,
            authority,
            checkpoint: checkpoint.into(),
        }
    }
}

/// Why a bundle could not be read.
#[derive(Debug, thiserror::Error)]
pub enum BundleError {
    #[error("reading the audit bundle: {0}")]
    Io(#[from] io::Error),
    #[error("the audit bundle is malformed: {0}")]
    Malformed(String),
}

fn malformed(why: impl Into<String>) -> BundleError {
    BundleError::Malformed(why.into())
}

fn header(size: usize) -> tar::Header {
    let mut h = tar::Header::new_ustar();
    h.set_size(size as u64);
    h.set_mode(0o644);
    h.set_mtime(0);
    h.set_entry_type(tar::EntryType::Regular);
    h
}

/// Writes an audit bundle, streaming.
pub struct BundleWriter<W: Write> {
    tar: tar::Builder<W>,
    pending: Vec<Vec<u8>>,
    bundles: u64,
    entries: u64,
}

impl<W: Write> BundleWriter<W> {
    /// Starts a bundle by writing `bundle.json`.
    pub fn new(writer: W, meta: &BundleMeta) -> io::Result<Self> {
        let mut tar = tar::Builder::new(writer);
        let json = serde_json::to_vec_pretty(meta).map_err(io::Error::other)?;
        tar.append_data(&mut header(json.len()), "bundle.json", json.as_slice())?;
        Ok(Self { tar, pending: Vec::with_capacity(TILE_WIDTH as usize), bundles: 0, entries: 0 })
    }

    /// Adds a signed directory version (at any point: readers index members
    /// in any order).
    pub fn add_directory(&mut self, serial: u64, note: &str) -> io::Result<()> {
        let path = format!("directories/{serial}.note");
        self.tar.append_data(&mut header(note.len()), path, note.as_bytes())
    }

    /// Adds the next entry.
    pub fn add_entry(&mut self, entry: &[u8]) -> io::Result<()> {
        if entry.len() > MAX_ENTRY_BYTES {
            return Err(io::Error::new(io::ErrorKind::InvalidInput, "a log entry is at most 65,535 bytes"));
        }
        self.pending.push(entry.to_vec());
        self.entries += 1;
        if self.pending.len() == TILE_WIDTH as usize {
            self.flush_bundle()?;
        }
        Ok(())
    }

    fn flush_bundle(&mut self) -> io::Result<()> {
        if self.pending.is_empty() {
            return Ok(());
        }
        let data = encode_entry_bundle(&self.pending).map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
        let tile = TilePath::Entries { index: self.bundles, width: self.pending.len() as u32 };
        self.tar.append_data(&mut header(data.len()), tile.path(), data.as_slice())?;
        self.pending.clear();
        self.bundles += 1;
        Ok(())
    }

    /// The number of entries added so far.
    pub fn entries(&self) -> u64 {
        self.entries
    }

    /// Writes the last, partial entry bundle and the tar trailer; returns the writer.
    pub fn finish(mut self) -> io::Result<W> {
        self.flush_bundle()?;
        self.tar.into_inner()
    }
}

/// Reads an audit bundle from a seekable file without holding its entries.
pub struct BundleReader<R: Read + Seek> {
    inner: R,
    meta: BundleMeta,
    directories: BTreeMap<u64, String>,
    /// Entry bundles in order: (width, data offset, data size).
    bundles: Vec<(u32, u64, u64)>,
    entries: u64,
}

fn read_small(entry: &mut impl Read, size: u64, what: &str) -> Result<String, BundleError> {
    if size > MAX_SMALL_MEMBER {
        return Err(malformed(format!("{what} is larger than {MAX_SMALL_MEMBER} bytes")));
    }
    let mut s = String::with_capacity(size as usize);
    entry.read_to_string(&mut s).map_err(|_| malformed(format!("{what} is not UTF-8 text")))?;
    Ok(s)
}

fn decimal(s: &str) -> Option<u64> {
    (!s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) && (s == "0" || !s.starts_with('0')))
        .then(|| s.parse().ok())
        .flatten()
}

impl<R: Read + Seek> BundleReader<R> {
    /// Reads the bundle's index: `bundle.json`, the directories and where
    /// each entry bundle lies. Refuses members it does not know, duplicate
    /// or missing entry bundles and partial bundles anywhere but last.
    pub fn open(mut reader: R) -> Result<Self, BundleError> {
        reader.seek(SeekFrom::Start(0))?;
        let mut meta = None;
        let mut directories = BTreeMap::new();
        let mut bundles: BTreeMap<u64, (u32, u64, u64)> = BTreeMap::new();
        {
            let mut archive = tar::Archive::new(&mut reader);
            for entry in archive.entries_with_seek()? {
                let mut entry = entry?;
                let path =
                    entry.path()?.to_str().map(str::to_owned).ok_or_else(|| malformed("a member name is not UTF-8"))?;
                let path = path.strip_prefix("./").unwrap_or(&path).to_owned();
                let kind = entry.header().entry_type();
                if kind.is_dir() && ["directories/", "tile/", "tile/entries/"].contains(&path.as_str()) {
                    continue;
                }
                if !kind.is_file() {
                    return Err(malformed(format!("member {path:?} is not a regular file")));
                }
                let size = entry.size();
                if path == "bundle.json" {
                    let text = read_small(&mut entry, size, "bundle.json")?;
                    let m: BundleMeta =
                        serde_json::from_str(&text).map_err(|e| malformed(format!("bundle.json: {e}")))?;
                    if meta.replace(m).is_some() {
                        return Err(malformed("bundle.json appears twice"));
                    }
                } else if let Some(name) = path.strip_prefix("directories/") {
                    let serial = name
                        .strip_suffix(".note")
                        .and_then(decimal)
                        .ok_or_else(|| malformed(format!("{path:?} is not directories/<serial>.note")))?;
                    let note = read_small(&mut entry, size, &path)?;
                    if directories.insert(serial, note).is_some() {
                        return Err(malformed(format!("directory {serial} appears twice")));
                    }
                } else if let Some(tile) = path.strip_prefix("tile/") {
                    let Ok(TilePath::Entries { index, width }) = TilePath::parse(tile) else {
                        return Err(malformed(format!("{path:?} is not an entry bundle path")));
                    };
                    if size > MAX_ENTRY_BUNDLE {
                        return Err(malformed(format!("{path} is larger than any entry bundle can be")));
                    }
                    if bundles.insert(index, (width, entry.raw_file_position(), size)).is_some() {
                        return Err(malformed(format!("entry bundle {index} appears twice")));
                    }
                } else {
                    return Err(malformed(format!("unexpected member {path:?}")));
                }
            }
        }
        let meta = meta.ok_or_else(|| malformed("bundle.json is missing"))?;
        if meta.format != BUNDLE_FORMAT {
            return Err(malformed(format!("format {:?} is not {BUNDLE_FORMAT:?}", meta.format)));
        }
        if meta.origin != meta.log_key.name() {
            return Err(malformed(format!(
                "origin {:?} is not the log key's name {:?}",
                meta.origin,
                meta.log_key.name()
            )));
        }
        let count = bundles.len() as u64;
        let mut entries = 0u64;
        let mut ordered = Vec::with_capacity(bundles.len());
        for (expected, (index, (width, offset, size))) in bundles.into_iter().enumerate() {
            if index != expected as u64 {
                return Err(malformed(format!("entry bundle {expected} is missing")));
            }
            if width != TILE_WIDTH && index + 1 != count {
                return Err(malformed(format!("entry bundle {index} is partial but not the last")));
            }
            entries += u64::from(width);
            ordered.push((width, offset, size));
        }
        Ok(Self { inner: reader, meta, directories, bundles: ordered, entries })
    }

    /// `bundle.json`.
    pub fn meta(&self) -> &BundleMeta {
        &self.meta
    }

    /// The directory notes by serial.
    pub fn directories(&self) -> &BTreeMap<u64, String> {
        &self.directories
    }

    /// The number of entries the entry bundles hold.
    pub fn entry_count(&self) -> u64 {
        self.entries
    }

    /// The entries in order, reading one entry bundle at a time. A bundle
    /// that does not decode, or holds other than its width in entries,
    /// yields an `InvalidData` error and ends the iteration.
    pub fn entries(&mut self) -> Entries<'_, R> {
        Entries { inner: &mut self.inner, bundles: self.bundles.iter(), current: Vec::new().into_iter(), failed: false }
    }

    /// The audit's input: this bundle's keys, checkpoint, directories and entries.
    pub fn audit_input(&mut self, required_witnesses: usize) -> AuditInput<'_> {
        let (log_key, authority, checkpoint) =
            (self.meta.log_key.clone(), self.meta.authority.clone(), self.meta.checkpoint.clone());
        let directories = self.directories.clone();
        AuditInput::new(log_key, authority, checkpoint, directories, self.entries(), required_witnesses)
    }
}

/// The entries of a [`BundleReader`].
pub struct Entries<'a, R> {
    inner: &'a mut R,
    bundles: std::slice::Iter<'a, (u32, u64, u64)>,
    current: std::vec::IntoIter<Vec<u8>>,
    failed: bool,
}

impl<R: Read + Seek> Entries<'_, R> {
    fn load(&mut self, width: u32, offset: u64, size: u64) -> io::Result<Vec<Vec<u8>>> {
        self.inner.seek(SeekFrom::Start(offset))?;
        let mut data = vec![0u8; size as usize];
        self.inner.read_exact(&mut data)?;
        let entries = decode_entry_bundle(&data).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
        if entries.len() != width as usize {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("an entry bundle of width {width} holds {} entries", entries.len()),
            ));
        }
        Ok(entries)
    }
}

impl<R: Read + Seek> Iterator for Entries<'_, R> {
    type Item = io::Result<Vec<u8>>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if self.failed {
                return None;
            }
            if let Some(e) = self.current.next() {
                return Some(Ok(e));
            }
            let &(width, offset, size) = self.bundles.next()?;
            match self.load(width, offset, size) {
                Ok(entries) => self.current = entries.into_iter(),
                Err(e) => {
                    self.failed = true;
                    return Some(Err(e));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sealdrop_proto::keys::NoteSigningKey;
    use std::io::Cursor;

    fn meta() -> BundleMeta {
        let log = NoteSigningKey::generate("hub.example").unwrap();
        let auth = NoteSigningKey::generate("authority.example").unwrap();
        BundleMeta::new(
            log.verifier(),
            auth.verifier(),
            "hub.example\n0\n47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=\n\n",
        )
    }

    fn write(n: u32) -> (Vec<u8>, Vec<Vec<u8>>) {
        let entries: Vec<Vec<u8>> = (0..n).map(|i| format!("entry number {i}").into_bytes()).collect();
        let mut w = BundleWriter::new(Vec::new(), &meta()).unwrap();
        w.add_directory(1, "dir one\n").unwrap();
        w.add_directory(2, "dir two\n").unwrap();
        for e in &entries {
            w.add_entry(e).unwrap();
        }
        assert_eq!(w.entries(), u64::from(n));
        w.add_directory(3, "added after the entries\n").unwrap();
        (w.finish().unwrap(), entries)
    }

    #[test]
    fn round_trip() {
        for n in [0u32, 1, 255, 256, 257, 1000] {
            let (bytes, entries) = write(n);
            let mut r = BundleReader::open(Cursor::new(bytes)).unwrap();
            assert_eq!(r.meta(), &meta_with(&r.meta().log_key, &r.meta().authority));
            assert_eq!(r.directories().len(), 3);
            assert_eq!(r.directories()[&2], "dir two\n");
            assert_eq!(r.directories()[&3], "added after the entries\n");
            assert_eq!(r.entry_count(), u64::from(n));
            let got: Vec<Vec<u8>> = r.entries().collect::<io::Result<_>>().unwrap();
            assert_eq!(got, entries, "n = {n}");
            // A second pass reads the same.
            assert_eq!(r.entries().count(), n as usize);
        }
    }

    fn meta_with(log: &NoteVerifierKey, auth: &NoteVerifierKey) -> BundleMeta {
        BundleMeta::new(log.clone(), auth.clone(), meta().checkpoint)
    }

    #[test]
    fn member_paths_follow_tlog_tiles() {
        let (bytes, _) = write(513);
        let mut a = tar::Archive::new(Cursor::new(bytes));
        let names: Vec<String> =
            a.entries().unwrap().map(|e| e.unwrap().path().unwrap().to_str().unwrap().to_owned()).collect();
        assert_eq!(
            names,
            [
                "bundle.json",
                "directories/1.note",
                "directories/2.note",
                "tile/entries/000",
                "tile/entries/001",
                "directories/3.note",
                "tile/entries/002.p/1"
            ]
        );
    }

    fn tar_of(members: &[(&str, &[u8])]) -> Vec<u8> {
        let mut b = tar::Builder::new(Vec::new());
        for (path, data) in members {
            b.append_data(&mut header(data.len()), path, *data).unwrap();
        }
        b.into_inner().unwrap()
    }

    #[test]
    fn truncated_bundle_fails_cleanly() {
        let (bytes, _) = write(700);
        for cut in [bytes.len() / 2, bytes.len() - 1024 - 512 - 10] {
            let Ok(mut r) = BundleReader::open(Cursor::new(bytes[..cut].to_vec())) else { continue };
            let results: Vec<io::Result<Vec<u8>>> = r.entries().collect();
            assert!(results.iter().any(Result::is_err) || results.len() < 700, "cut at {cut}");
        }
    }

    #[test]
    fn malformed_bundles_are_refused() {
        let json = serde_json::to_vec(&meta()).unwrap();
        let full = encode_entry_bundle(&vec![b"x".as_slice(); 256]).unwrap();
        let part = encode_entry_bundle(&[b"x".as_slice()]).unwrap();
        let cases: Vec<Vec<(&str, &[u8])>> = vec![
            vec![],
            vec![("directories/1.note", b"d\n")],
            vec![("bundle.json", b"{}")],
            vec![("bundle.json", &json), ("bundle.json", &json)],
            vec![("bundle.json", &json), ("other.txt", b"x")],
            vec![("bundle.json", &json), ("directories/01.note", b"d\n")],
            vec![("bundle.json", &json), ("directories/x.note", b"d\n")],
            vec![("bundle.json", &json), ("tile/entries/001", &full)],
            vec![("bundle.json", &json), ("tile/entries/000.p/1", &part), ("tile/entries/001.p/1", &part)],
            vec![("bundle.json", &json), ("tile/0/000", &full)],
            vec![("bundle.json", &json), ("tile/entries/000.p/0", &part)],
        ];
        for members in cases {
            let names: Vec<&str> = members.iter().map(|(p, _)| *p).collect();
            assert!(BundleReader::open(Cursor::new(tar_of(&members))).is_err(), "{names:?}");
        }
        let wrong_format = serde_json::to_vec(&BundleMeta { format: "v0".into(), ..meta() }).unwrap();
        assert!(BundleReader::open(Cursor::new(tar_of(&[("bundle.json", &wrong_format)]))).is_err());
        // A bundle whose width disagrees with its content fails when read.
        let bytes = tar_of(&[("bundle.json", &json), ("tile/entries/000.p/2", &part)]);
        let mut r = BundleReader::open(Cursor::new(bytes)).unwrap();
        let got: Vec<io::Result<Vec<u8>>> = r.entries().collect();
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].as_ref().unwrap_err().kind(), io::ErrorKind::InvalidData);
    }
}
