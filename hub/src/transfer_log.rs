//! The hub's side of its signed transfer log (a C2SP transparency log):
//! making entries, checking the stored log before serving, and the small
//! pieces of the tlog-tiles layout the API serves.
//!
//! The entries themselves and the checkpoint format are
//! [`sealdrop_log`]'s; the tables and the atomic append are the
//! [`crate::storage`]'s. Entries hold party ids, key names, hashes, sizes
//! and times, never content or file names (the hub never has them).

use jiff::Timestamp;
use sealdrop_log::entry::{EntryError, HubStatement, LogEntry};
use sealdrop_proto::directory::SignedDirectory;
use sealdrop_proto::keys::{NoteSigningKey, NoteVerifierKey};
use sealdrop_proto::note::sign_doc;
use tlog_tiles::{Hash, HashReader, Tile};

use crate::error::HubError;
use crate::storage::meta::setting;
use crate::storage::{MetaError, MetaStore};

/// The height of the log's tiles (c2sp.org/tlog-tiles: 256 hashes or entries each).
pub const TILE_HEIGHT: u8 = 8;

/// The number of hashes or entries in a full tile.
pub const TILE_WIDTH: u64 = 1 << TILE_HEIGHT;

/// A statement in the hub's own name, signed with its log key.
pub fn hub_entry(log_key: &NoteSigningKey, statement: &HubStatement) -> LogEntry {
    LogEntry::Hub { statement: sign_doc(statement, log_key) }
}

/// The entry recording that the hub started enforcing `directory` at `time`.
pub fn directory_entry(
    log_key: &NoteSigningKey,
    time: Timestamp,
    directory: &SignedDirectory,
) -> Result<Vec<u8>, EntryError> {
    let statement =
        HubStatement::DirectoryPublished { time, serial: directory.directory.serial, sha256: directory.sha256_hex() };
    hub_entry(log_key, &statement).to_bytes()
}

/// Reads the tree's stored hashes through the metadata store.
pub struct StoreHashReader<'a>(pub &'a dyn MetaStore);

impl HashReader for StoreHashReader<'_> {
    fn read_hashes(&self, indexes: &[u64]) -> Result<Vec<Hash>, tlog_tiles::Error> {
        self.0.log_hashes(indexes).map_err(|e| tlog_tiles::Error::InvalidInput(e.to_string()))
    }
}

/// Turns a `tlog_tiles` failure while reading the stored tree into a store error.
pub fn tree_error(what: &str, e: tlog_tiles::Error) -> MetaError {
    MetaError::LogInconsistent(format!("{what}: {e}"))
}

fn inconsistent(message: impl Into<String>) -> HubError {
    HubError::LogInconsistent(message.into())
}

/// Checks the stored log before the hub serves anything: every stored hash
/// is recomputed from the entries, and the latest checkpoint must verify
/// with the log key, cover exactly the stored entries and have the
/// recomputed root. A log that fails is never served or appended to: the
/// hub would otherwise present two histories.
///
/// An empty log in a database from before the log existed is started with
/// the directory in force, so every log begins with a directory; an empty
/// log in a database that had started one is refused.
pub fn check_on_open(
    meta: &dyn MetaStore,
    log_key: &NoteSigningKey,
    directory: &SignedDirectory,
    now: Timestamp,
) -> Result<u64, HubError> {
    let (size, root) = meta.recompute_log().map_err(|e| match e {
        MetaError::LogInconsistent(m) => inconsistent(m),
        other => HubError::Meta(other),
    })?;
    let Some(latest) = meta.latest_checkpoint()? else {
        if size != 0 {
            return Err(inconsistent(format!("{size} entries are stored but no checkpoint covers them")));
        }
        if meta.setting(setting::LOG_STARTED)?.is_some() {
            return Err(inconsistent("the log is empty, but this hub had started it: its entries were deleted"));
        }
        let entry = directory_entry(log_key, now, directory)?;
        meta.append_log(&[entry], log_key)?;
        tracing::info!(directory_serial = directory.directory.serial, "started the transfer log");
        return Ok(1);
    };
    let verifier: NoteVerifierKey = log_key.verifier();
    let checkpoint = sealdrop_log::checkpoint::open(&latest.note, &verifier).map_err(|e| {
        inconsistent(format!("the latest checkpoint (size {}) does not verify with the log key: {e}", latest.size))
    })?;
    if checkpoint.size != latest.size {
        return Err(inconsistent(format!(
            "the checkpoint stored as size {} says size {}",
            latest.size, checkpoint.size
        )));
    }
    if checkpoint.size != size {
        return Err(inconsistent(format!(
            "the latest checkpoint covers {} entries but {size} are stored",
            checkpoint.size
        )));
    }
    if checkpoint.root != root {
        return Err(inconsistent(format!(
            "the tree hash recomputed from the {size} stored entries differs from the latest checkpoint's root"
        )));
    }
    Ok(size)
}

/// A checkpoint note with witness cosignature lines added after the log's
/// own signature (each line ends in a newline, as in any signed note).
pub fn with_cosignatures(note: &str, lines: &[String]) -> String {
    let mut out = String::with_capacity(note.len() + lines.iter().map(String::len).sum::<usize>());
    out.push_str(note);
    for line in lines {
        out.push_str(line);
        if !line.ends_with('\n') {
            out.push('\n');
        }
    }
    out
}

/// Parses a tile path as served under `/v1/log/tile/`: `<L>/<N>[.p/<W>]`
/// for a hash tile, `entries/<N>[.p/<W>]` for an entry bundle (returned as
/// a data tile). `None` for anything else.
pub fn parse_tile_path(path: &str) -> Option<Tile> {
    let (rest, full) = match path.strip_prefix("entries/") {
        Some(rest) => (rest, format!("tile/{TILE_HEIGHT}/data/{rest}")),
        None => {
            let (level, rest) = path.split_once('/')?;
            // `Tile::new` panics on a level of 64 or more.
            if level.is_empty() || !level.bytes().all(|b| b.is_ascii_digit()) || level.parse::<u8>().ok()? >= 64 {
                return None;
            }
            (rest, format!("tile/{TILE_HEIGHT}/{path}"))
        }
    };
    // `Tile::new` panics on a width of 0.
    if let Some((_, width)) = rest.rsplit_once(".p/")
        && width.parse::<u32>().ok()? == 0
    {
        return None;
    }
    Tile::from_path(&full).ok()
}

/// The C2SP path of a tile (below `tile/`), the inverse of [`parse_tile_path`].
pub fn tile_path(tile: &Tile) -> String {
    let go = tile.path();
    let rest = go.strip_prefix(&format!("tile/{TILE_HEIGHT}/")).unwrap_or(&go);
    match rest.strip_prefix("data/") {
        Some(n) => format!("entries/{n}"),
        None => rest.to_owned(),
    }
}

/// The first index (of an entry, or of a hash at the tile's level) that
/// `tile` covers, and how many it covers; `None` if that overflows.
pub fn tile_span(tile: &Tile) -> Option<(u64, u64)> {
    let start = tile.level_index().checked_mul(TILE_WIDTH)?;
    let width = u64::from(tile.width());
    start.checked_add(width)?;
    Some((start, width))
}

/// Whether every hash or entry `tile` covers exists in a tree of `size` entries.
pub fn tile_in_tree(tile: &Tile, size: u64) -> bool {
    let shift = u32::from(tile.level()) * u32::from(TILE_HEIGHT);
    let available = size.checked_shr(shift).unwrap_or(0);
    tile_span(tile).is_some_and(|(start, width)| start + width <= available)
}

/// Whether `tile` is full, so its bytes can never change.
pub fn tile_is_full(tile: &Tile) -> bool {
    u64::from(tile.width()) == TILE_WIDTH
}

/// An entry bundle: each entry prefixed by its length as a big-endian u16.
pub fn entry_bundle(entries: &[Vec<u8>]) -> Result<Vec<u8>, MetaError> {
    let mut out = Vec::with_capacity(entries.iter().map(|e| e.len() + 2).sum());
    for e in entries {
        let len = u16::try_from(e.len()).map_err(|_| MetaError::LogEntryTooLarge(e.len()))?;
        out.extend_from_slice(&len.to_be_bytes());
        out.extend_from_slice(e);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tile_paths() {
        let cases = [
            ("0/000", 0, 0, 256, false),
            ("0/001.p/5", 0, 1, 5, false),
            ("2/x001/x234/067", 2, 1_234_067, 256, false),
            ("1/000.p/255", 1, 0, 255, false),
            ("entries/000", 0, 0, 256, true),
            ("entries/x001/002.p/17", 0, 1002, 17, true),
        ];
        for (path, level, n, width, data) in cases {
            let t = parse_tile_path(path).unwrap_or_else(|| panic!("{path}"));
            assert_eq!((t.level(), t.level_index(), t.width(), t.is_data()), (level, n, width, data), "{path}");
            assert_eq!(tile_path(&t), path);
        }
        for bad in [
            "",
            "0",
            "0/",
            "0/0",
            "0/1234",
            "0/000.p/0",
            "0/000.p/+0",
            "0/000.p/00",
            "0/000.p/256",
            "0/000.p/",
            "0/000.p/x",
            "0/x000/001",
            "0/x001",
            "64/000",
            "255/000",
            "300/000",
            "+1/000",
            "01/000",
            "-1/000",
            "data/000",
            "entries/",
            "entries/000.p/0",
            "entries/abc",
            "8/0/000",
            "tile/8/0/000",
            "0/000/",
            "0/x001/x002/x003/x004/x005/x006/x007/x008/x009/000",
        ] {
            assert!(parse_tile_path(bad).is_none(), "{bad:?}");
        }
    }

    #[test]
    fn tiles_in_a_tree() {
        let t = |p: &str| parse_tile_path(p).unwrap();
        assert!(!tile_in_tree(&t("0/000.p/1"), 0));
        assert!(tile_in_tree(&t("0/000.p/1"), 1));
        assert!(tile_in_tree(&t("entries/000.p/1"), 1));
        assert!(!tile_in_tree(&t("0/000.p/2"), 1));
        assert!(!tile_in_tree(&t("0/000"), 255));
        assert!(tile_in_tree(&t("0/000"), 256));
        assert!(tile_in_tree(&t("0/000.p/7"), 300), "narrower than available");
        assert!(tile_in_tree(&t("0/001.p/44"), 300));
        assert!(!tile_in_tree(&t("0/001.p/45"), 300));
        assert!(!tile_in_tree(&t("1/000.p/1"), 255));
        assert!(tile_in_tree(&t("1/000.p/1"), 256));
        assert!(tile_in_tree(&t("1/000.p/2"), 512));
        assert!(!tile_in_tree(&t("7/000.p/1"), u64::MAX >> 8));
        assert!(tile_in_tree(&t("7/000.p/255"), u64::MAX));
        assert!(!tile_in_tree(&t("63/000.p/1"), u64::MAX));
        assert!(!tile_in_tree(&t("0/x018/x446/x744/x073/x709/x551/615"), u64::MAX), "no overflow");
    }

    #[test]
    fn bundles_and_cosignatures() {
        assert_eq!(entry_bundle(&[b"ab".to_vec(), vec![], b"c".to_vec()]).unwrap(), b"\0\x02ab\0\0\0\x01c");
        assert!(entry_bundle(&[vec![0; 65_536]]).is_err());
        let note = "o\n1\nAA==\n\n\u{2014} o sig\n";
        assert_eq!(
            with_cosignatures(note, &["\u{2014} w1 a\n".into(), "\u{2014} w2 b".into()]),
            "o\n1\nAA==\n\n\u{2014} o sig\n\u{2014} w1 a\n\u{2014} w2 b\n"
        );
    }
}
