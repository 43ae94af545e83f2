//! c2sp.org/tlog-tiles paths, hash tiles and entry bundles.
//!
//! Hash tiles are `tile/<L>/<N>[.p/<W>]` (tile height 8: a full tile holds
//! 256 hashes of 32 bytes); entry bundles are `tile/entries/<N>[.p/<W>]`
//! (each entry prefixed by its big-endian `u16` length). `N` is written in
//! 3-digit groups, each but the last prefixed by `x` (`1234067` is
//! `x001/x234/067`); `.p/<W>` marks a partial tile of width 1..=255.

use std::fmt;

use tlog_tiles::HashReader;

use crate::entry::MAX_ENTRY_BYTES;

/// The tiles' height: 2^8 = 256 hashes or entries per full tile.
pub const TILE_HEIGHT: u8 = 8;
/// Hashes or entries in a full tile.
pub const TILE_WIDTH: u32 = 1 << TILE_HEIGHT;
/// The highest level the spec allows in a path.
pub const MAX_LEVEL: u8 = 63;

/// Why a tile path, tile or entry bundle was refused.
#[derive(Debug, thiserror::Error)]
pub enum TileError {
    #[error("{0:?} is not a tlog-tiles path (`<L>/<N>[.p/<W>]` or `entries/<N>[.p/<W>]`)")]
    BadPath(String),
    #[error("the entry bundle is malformed: {0}")]
    BadBundle(String),
    #[error("tile {0} lies beyond any tree this log can hold")]
    OutOfRange(String),
    #[error("a log entry of {0} bytes is longer than the {MAX_ENTRY_BYTES} bytes an entry bundle can hold")]
    EntryTooLarge(usize),
    #[error("the tree does not hold the hashes of tile {tile}: {reason}")]
    MissingHashes { tile: String, reason: String },
}

/// A tile's or entry bundle's coordinates, as in its path after `tile/`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TilePath {
    /// `<level>/<index>[.p/<width>]`: hashes at tree level `8 × level`.
    Hashes {
        /// The tile level, 0..=63.
        level: u8,
        /// The tile's index within its level.
        index: u64,
        /// 1..=255 for a partial tile, 256 for a full one.
        width: u32,
    },
    /// `entries/<index>[.p/<width>]`: entries `256 × index ..`.
    Entries {
        /// The bundle's index.
        index: u64,
        /// 1..=255 for a partial bundle, 256 for a full one.
        width: u32,
    },
}

/// Parses a decimal with no sign, no leading zeros (except "0") and at most `max`.
fn decimal(s: &str, max: u64) -> Option<u64> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) || (s.len() > 1 && s.starts_with('0')) {
        return None;
    }
    s.parse::<u64>().ok().filter(|v| *v <= max)
}

/// Parses `x001/x234/067` into 1234067: every group 3 digits, all but the
/// last prefixed by `x`, no needless leading `x000` groups.
fn tile_index(parts: &[&str]) -> Option<u64> {
    let (last, groups) = parts.split_last()?;
    let mut n: u64 = 0;
    let digits = |g: &str| (g.len() == 3 && g.bytes().all(|b| b.is_ascii_digit())).then(|| g.parse::<u64>().ok())?;
    for (i, g) in groups.iter().enumerate() {
        let v = digits(g.strip_prefix('x')?)?;
        if i == 0 && v == 0 {
            return None;
        }
        n = n.checked_mul(1000)?.checked_add(v)?;
    }
    n.checked_mul(1000)?.checked_add(digits(last)?)
}

fn write_index(f: &mut fmt::Formatter<'_>, n: u64) -> fmt::Result {
    let mut groups = vec![n % 1000];
    let mut rest = n / 1000;
    while rest > 0 {
        groups.push(rest % 1000);
        rest /= 1000;
    }
    for g in groups[1..].iter().rev() {
        write!(f, "x{g:03}/")?;
    }
    write!(f, "{:03}", groups[0])
}

impl TilePath {
    /// Parses a path after the `tile/` prefix, accepting exactly the C2SP
    /// forms (no leading zeros, no empty or extra segments, widths 1..=255
    /// only on `.p`, indexes whose tiles fit a tree of at most 2^64 entries).
    ///
    /// A malformed path is [`TileError::BadPath`]; a well-formed one whose
    /// index is too large for its tile to fit such a tree is
    /// [`TileError::OutOfRange`] (a server answers "not found" to it, as to
    /// any tile beyond its tree).
    pub fn parse(path: &str) -> Result<Self, TileError> {
        let bad = || TileError::BadPath(path.chars().take(80).collect());
        if path.len() > 64 {
            return Err(bad());
        }
        let mut parts: Vec<&str> = path.split('/').collect();
        if parts.len() < 2 {
            return Err(bad());
        }
        let mut width = TILE_WIDTH;
        if parts.len() >= 3 {
            let n = parts.len();
            if let Some(base) = parts[n - 2].strip_suffix(".p") {
                width = decimal(parts[n - 1], u64::from(TILE_WIDTH) - 1).filter(|w| *w >= 1).ok_or_else(bad)? as u32;
                parts[n - 2] = base;
                parts.pop();
            }
        }
        let index = tile_index(&parts[1..]).ok_or_else(bad)?;
        let tile = if parts[0] == "entries" {
            TilePath::Entries { index, width }
        } else {
            let level = decimal(parts[0], u64::from(MAX_LEVEL)).ok_or_else(bad)? as u8;
            TilePath::Hashes { level, index, width }
        };
        // Belt and braces: only the canonical spelling is accepted.
        if tile.to_string() != path {
            return Err(bad());
        }
        // The first entry or hash a tile covers must exist in a u64-sized tree.
        if index > u64::MAX >> TILE_HEIGHT {
            return Err(TileError::OutOfRange(path.to_owned()));
        }
        Ok(tile)
    }

    /// The path including the `tile/` prefix.
    pub fn path(&self) -> String {
        format!("tile/{self}")
    }

    /// The tile's width (256 when full).
    pub fn width(&self) -> u32 {
        match *self {
            TilePath::Hashes { width, .. } | TilePath::Entries { width, .. } => width,
        }
    }

    /// The tile's index within its level.
    pub fn index(&self) -> u64 {
        match *self {
            TilePath::Hashes { index, .. } | TilePath::Entries { index, .. } => index,
        }
    }

    /// Whether the tile is partial (`.p/<W>`).
    pub fn is_partial(&self) -> bool {
        self.width() < TILE_WIDTH
    }

    /// The first index the tile covers (of an entry, or of a hash at the
    /// tile's level) and how many it covers; `None` when that passes
    /// `u64::MAX` (never for a parsed path).
    pub fn span(&self) -> Option<(u64, u64)> {
        let start = self.index().checked_mul(u64::from(TILE_WIDTH))?;
        let width = u64::from(self.width());
        start.checked_add(width)?;
        Some((start, width))
    }

    /// Whether every entry or hash the tile covers exists in a tree of
    /// `size` entries, so it can be served (a narrower partial tile of
    /// existing data is; a wider one, or one past the end, is not).
    pub fn in_tree(&self, size: u64) -> bool {
        let level = match *self {
            TilePath::Hashes { level, .. } => level,
            TilePath::Entries { .. } => 0,
        };
        // Hashes at tile level L are over subtrees of 256^L entries.
        let available = size.checked_shr(u32::from(level) * u32::from(TILE_HEIGHT)).unwrap_or(0);
        self.span().is_some_and(|(start, width)| start + width <= available)
    }

    /// The entry bundles of a tree of `size` entries, in order (full ones,
    /// then a partial one when `size` is not a multiple of 256).
    pub fn entry_bundles(size: u64) -> impl Iterator<Item = TilePath> {
        let full = size / u64::from(TILE_WIDTH);
        let rest = (size % u64::from(TILE_WIDTH)) as u32;
        (0..full)
            .map(|index| TilePath::Entries { index, width: TILE_WIDTH })
            .chain((rest > 0).then_some(TilePath::Entries { index: full, width: rest }))
    }
}

impl fmt::Display for TilePath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (index, width) = match *self {
            TilePath::Hashes { level, index, width } => {
                write!(f, "{level}/")?;
                (index, width)
            }
            TilePath::Entries { index, width } => {
                f.write_str("entries/")?;
                (index, width)
            }
        };
        write_index(f, index)?;
        if width != TILE_WIDTH {
            write!(f, ".p/{width}")?;
        }
        Ok(())
    }
}

impl std::str::FromStr for TilePath {
    type Err = TileError;
    fn from_str(s: &str) -> Result<Self, TileError> {
        Self::parse(s)
    }
}

/// Encodes entries as a tlog-tiles entry bundle: each one prefixed by its
/// length as a big-endian `u16`.
///
/// An entry longer than [`MAX_ENTRY_BYTES`] (65,535 bytes, which
/// [`crate::entry::LogEntry::to_bytes`] never produces) is
/// [`TileError::EntryTooLarge`].
pub fn encode_entry_bundle<E: AsRef<[u8]>>(entries: &[E]) -> Result<Vec<u8>, TileError> {
    let mut out = Vec::with_capacity(entries.iter().map(|e| e.as_ref().len() + 2).sum());
    for e in entries {
        let e = e.as_ref();
        let len = u16::try_from(e.len()).map_err(|_| TileError::EntryTooLarge(e.len()))?;
        out.extend_from_slice(&len.to_be_bytes());
        out.extend_from_slice(e);
    }
    Ok(out)
}

/// Decodes a tlog-tiles entry bundle.
pub fn decode_entry_bundle(bytes: &[u8]) -> Result<Vec<Vec<u8>>, TileError> {
    let mut out = Vec::new();
    let mut rest = bytes;
    while !rest.is_empty() {
        let Some((len, tail)) = rest.split_first_chunk::<2>() else {
            return Err(TileError::BadBundle(format!("a length prefix is cut short after {} entries", out.len())));
        };
        let len = usize::from(u16::from_be_bytes(*len));
        if tail.len() < len {
            return Err(TileError::BadBundle(format!(
                "entry {} claims {len} bytes but only {} remain",
                out.len(),
                tail.len()
            )));
        }
        debug_assert!(len <= MAX_ENTRY_BYTES);
        let (entry, tail) = tail.split_at(len);
        out.push(entry.to_vec());
        rest = tail;
    }
    Ok(out)
}

/// The bytes of hash tile `<level>/<index>` of `width` hashes (256 = full)
/// from a tree's stored hashes (`tlog_tiles::Tile::read_data`, height 8).
pub fn hash_tile(level: u8, index: u64, width: u32, reader: &impl HashReader) -> Result<Vec<u8>, TileError> {
    let path = TilePath::Hashes { level, index, width };
    if !(1..=TILE_WIDTH).contains(&width) {
        return Err(TileError::BadPath(path.to_string()));
    }
    // The tile's last hash covers entries up to (index·256 + width)·256^level;
    // keep that well inside u64 so the stored-hash arithmetic cannot overflow.
    if level > 7 || index > u64::MAX >> TILE_HEIGHT {
        return Err(TileError::OutOfRange(path.to_string()));
    }
    let end =
        (u128::from(index) * u128::from(TILE_WIDTH) + u128::from(width)) << (u32::from(TILE_HEIGHT) * u32::from(level));
    if end > u128::from(u64::MAX >> 2) {
        return Err(TileError::OutOfRange(path.to_string()));
    }
    tlog_tiles::Tile::new(TILE_HEIGHT, level, index, width, false)
        .read_data(reader)
        .map_err(|e| TileError::MissingHashes { tile: path.to_string(), reason: e.to_string() })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tree::MemoryTree;

    #[test]
    fn paths_round_trip_and_match_tlog_tiles() {
        for (tile, text) in [
            (TilePath::Hashes { level: 0, index: 0, width: 256 }, "0/000"),
            (TilePath::Hashes { level: 0, index: 1234067, width: 256 }, "0/x001/x234/067"),
            (TilePath::Hashes { level: 3, index: 1234067, width: 1 }, "3/x001/x234/067.p/1"),
            (TilePath::Hashes { level: 63, index: 1000, width: 255 }, "63/x001/000.p/255"),
            (TilePath::Entries { index: 0, width: 5 }, "entries/000.p/5"),
            (TilePath::Entries { index: 999, width: 256 }, "entries/999"),
            (TilePath::Entries { index: 1000, width: 256 }, "entries/x001/000"),
            (TilePath::Entries { index: u64::MAX >> 8, width: 256 }, "entries/x072/x057/x594/x037/x927/935"),
        ] {
            assert_eq!(tile.to_string(), text);
            assert_eq!(TilePath::parse(text).unwrap(), tile, "{text}");
            assert_eq!(tile.path(), format!("tile/{text}"));
            if let TilePath::Hashes { level, index, width } = tile
                && level < 8
            {
                // tlog_tiles spells hash tiles `tile/<H>/<L>/<N>` (Go sumdb); C2SP drops H.
                let theirs = tlog_tiles::Tile::new(8, level, index, width, false).path();
                assert_eq!(theirs, format!("tile/8/{text}"));
            }
        }
    }

    #[test]
    fn malformed_paths_are_refused() {
        for bad in [
            "",
            "0",
            "0/",
            "/0/000",
            "0/000/",
            "../0/000",
            "0/../000",
            "0/x001/../000",
            "0/001/234",   // missing x
            "0/x1/234",    // short group
            "0/x0001/234", // long group
            "0/x000/234",  // needless leading group
            "0/1",
            "0/01",
            "0/0000",
            "00/000",
            "01/000",
            "64/000",
            "-1/000",
            "+1/000",
            "a/000",
            "0/000.p/0",
            "0/000.p/256",
            "0/000.p/01",
            "0/000.p/",
            "0/000.p",
            "0/000.p/1/2",
            "0/000.q/1",
            "entries/000.p/0",
            "entries/000.p/256",
            "entries",
            "entries/",
            "entry/000",
            "Entries/000",
            "data/000",
            "0/x018/x446/x744/x073/x709/x551/616", // u64::MAX + 1
            "0/x999/x999/x999/x999/x999/x999/x999/999",
            "0/000 ",
            " 0/000",
            "0\\000",
            "0/+00",
            "0/0",
            "0/1234",
            "0/000.p/+0",
            "0/000.p/00",
            "0/000.p/x",
            "0/x001",
            "255/000",
            "300/000",
            "8/0/000",
            "tile/8/0/000",
            "tile/0/000",
            "entries/abc",
            "0/x001/x002/x003/x004/x005/x006/x007/x008/x009/000",
        ] {
            assert!(matches!(TilePath::parse(bad), Err(TileError::BadPath(_))), "{bad:?} must be refused");
        }
    }

    #[test]
    fn well_formed_paths_beyond_any_tree_are_out_of_range() {
        for far in [
            "entries/x072/x057/x594/x037/x927/936", // first entry beyond u64
            "entries/x018/x446/x744/x073/x709/x551/615.p/3",
            "0/x072/x057/x594/x037/x927/936",
            "0/x018/x446/x744/x073/x709/x551/615", // u64::MAX
            "63/x018/x446/x744/x073/x709/x551/615.p/255",
        ] {
            assert!(matches!(TilePath::parse(far), Err(TileError::OutOfRange(p)) if p == far), "{far:?}");
        }
        // The largest index that fits is accepted.
        assert!(TilePath::parse("0/x072/x057/x594/x037/x927/935").is_ok());
    }

    #[test]
    fn tiles_in_a_tree() {
        let t = |p: &str| TilePath::parse(p).unwrap();
        assert_eq!(t("0/001.p/5").span(), Some((256, 5)));
        assert_eq!(t("entries/x001/002").span(), Some((1002 * 256, 256)));
        assert_eq!(TilePath::Entries { index: u64::MAX, width: 1 }.span(), None);
        assert_eq!(TilePath::Hashes { level: 0, index: u64::MAX >> 8, width: 256 }.span(), None);
        assert!(!t("0/000.p/1").in_tree(0));
        assert!(t("0/000.p/1").in_tree(1));
        assert!(t("entries/000.p/1").in_tree(1));
        assert!(!t("0/000.p/2").in_tree(1));
        assert!(!t("0/000").in_tree(255));
        assert!(t("0/000").in_tree(256));
        assert!(t("0/000.p/7").in_tree(300), "narrower than available");
        assert!(t("0/001.p/44").in_tree(300));
        assert!(!t("0/001.p/45").in_tree(300));
        assert!(!t("entries/001.p/45").in_tree(300));
        assert!(!t("1/000.p/1").in_tree(255));
        assert!(t("1/000.p/1").in_tree(256));
        assert!(t("1/000.p/2").in_tree(512));
        assert!(!t("7/000.p/1").in_tree(u64::MAX >> 8));
        assert!(t("7/000.p/255").in_tree(u64::MAX));
        assert!(!t("63/000.p/1").in_tree(u64::MAX));
        assert!(t("0/x072/x057/x594/x037/x927/935.p/255").in_tree(u64::MAX));
        assert!(!t("0/x072/x057/x594/x037/x927/935").in_tree(u64::MAX), "no overflow");
        assert!(!TilePath::Entries { index: u64::MAX, width: 1 }.in_tree(u64::MAX), "no overflow");
    }

    #[test]
    fn entry_bundles_round_trip() {
        let entries: Vec<Vec<u8>> = vec![vec![], b"a".to_vec(), vec![7u8; 300], vec![0xff; MAX_ENTRY_BYTES]];
        let bytes = encode_entry_bundle(&entries).unwrap();
        assert_eq!(&bytes[..4], &[0, 0, 0, 1]);
        let refs: Vec<&[u8]> = entries.iter().map(Vec::as_slice).collect();
        assert_eq!(encode_entry_bundle(&refs).unwrap(), bytes);
        assert_eq!(encode_entry_bundle(&[&b"ab"[..], &b""[..], &b"c"[..]]).unwrap(), b"\0\x02ab\0\0\0\x01c");
        assert!(encode_entry_bundle::<&[u8]>(&[]).unwrap().is_empty());
        assert_eq!(decode_entry_bundle(&bytes).unwrap(), entries);
        assert!(decode_entry_bundle(&[]).unwrap().is_empty());
        assert!(decode_entry_bundle(&bytes[..bytes.len() - 1]).is_err(), "cut short");
        assert!(decode_entry_bundle(&[0]).is_err(), "half a length");
        assert!(decode_entry_bundle(&[0, 5, 1, 2]).is_err(), "length past the end");
    }

    #[test]
    fn oversized_entries_cannot_be_bundled() {
        let big = vec![0u8; MAX_ENTRY_BYTES + 1];
        let err = encode_entry_bundle(&[b"ok".to_vec(), big]).unwrap_err();
        assert!(matches!(err, TileError::EntryTooLarge(n) if n == MAX_ENTRY_BYTES + 1), "{err}");
        assert!(err.to_string().contains("65536 bytes"), "{err}");
    }

    #[test]
    fn bundle_paths_for_sizes() {
        assert_eq!(TilePath::entry_bundles(0).count(), 0);
        let v: Vec<String> = TilePath::entry_bundles(513).map(|t| t.to_string()).collect();
        assert_eq!(v, ["entries/000", "entries/001", "entries/002.p/1"]);
        assert_eq!(TilePath::entry_bundles(512).count(), 2);
    }

    #[test]
    fn hash_tiles_come_from_stored_hashes() {
        let mut tree = MemoryTree::new();
        for i in 0..(256 * 256 + 300u32) {
            tree.append(&i.to_be_bytes());
        }
        let full = hash_tile(0, 0, 256, &tree).unwrap();
        assert_eq!(full.len(), 256 * 32);
        assert_eq!(&full[..32], &crate::tree::leaf_hash(&0u32.to_be_bytes()).0);
        // A full level-0 tile hashes to the subtree root of its 256 entries,
        // which is the first hash of the level-1 tile.
        let level1 = hash_tile(1, 0, 1, &tree).unwrap();
        assert_eq!(tlog_tiles::Tile::subtree_hash(&full).0.as_slice(), &level1[..]);
        assert_eq!(&level1[..], tree.root_at(256).unwrap().0.as_slice());
        // 256·256 + 300 entries: level-0 tile 257 holds the last 44.
        let partial = hash_tile(0, 257, 44, &tree).unwrap();
        assert_eq!(partial.len(), 44 * 32);
        assert_eq!(&partial[43 * 32..], &crate::tree::leaf_hash(&(256 * 256 + 299u32).to_be_bytes()).0);
        assert!(matches!(hash_tile(0, 257, 45, &tree), Err(TileError::MissingHashes { .. })));
        assert!(matches!(hash_tile(0, 258, 1, &tree), Err(TileError::MissingHashes { .. })));
        assert!(matches!(hash_tile(8, 0, 1, &tree), Err(TileError::OutOfRange(_))));
        assert!(matches!(hash_tile(0, u64::MAX, 1, &tree), Err(TileError::OutOfRange(_))));
        assert!(hash_tile(0, 0, 0, &tree).is_err());
        assert!(hash_tile(0, 0, 257, &tree).is_err());
    }
}
