//! Padding a drop's plaintext to its size class, and checking the padding
//! of a drop received.
//!
//! The sender appends zeros after the tar archive's end-of-archive marker
//! until the plaintext is [`sealdrop_proto::padding::padded_len`] of the
//! archive's length, inside the encryption: the hub sees only the class
//! (32 KiB for any small list, then Padmé; see [`sealdrop_proto::padding`]).
//! Stock `tar` stops at the marker, so padded drops open with
//! `age -d | tar -x` as before: tar exits 0 without a word and the files are
//! whole. From a pipe, when more padding is left than the pipe holds (64 KiB),
//! `age` is then ended by SIGPIPE (141 in a shell with `pipefail`); `tar -xi`
//! reads the padding too, and the README says so.
//!
//! The recipient reads everything after the marker and refuses a drop with
//! a non-zero byte there: the signed ciphertext must not carry bytes that
//! no tool shows (or, after a lone zero block, entries that `tar -i` would
//! extract and sealdrop would not). The class itself is not enforced on
//! receipt: it protects the sender's metadata from the hub, the recipient
//! gains nothing by refusing an unpadded drop, and drops made by hand with
//! stock `age` and `tar` (or by clients before padding) stay readable.
//!
//! [`check_trailing_zeros`] relies on [`archive::extract`] reading the
//! archive exactly up to its first end block and no further (no read-ahead
//! buffer of its own): the test
//! `a_padded_archive_is_its_class_long_ends_in_zeros_and_still_extracts`
//! holds it to that.

use std::io::{self, Read, Write};

use sealdrop_proto::padding::padding_for;

use crate::archive;

/// Zeros written or checked per call.
const ZEROS: usize = 64 * 1024;

/// A tar block.
const BLOCK: u64 = 512;

/// The longest name a plain GNU tar header holds; a longer one takes a
/// GNU long-name record (a header and the name in whole blocks) first.
const HEADER_NAME: usize = 100;

/// Writes `plan`'s archive to `out`, then the zeros that pad it to its size
/// class. `on_bytes` counts file content and then the padding, so a
/// progress bar of [`progress_len`] ends full.
pub fn write_padded<W: Write>(plan: &archive::Plan, out: W, mut on_bytes: impl FnMut(u64)) -> io::Result<W> {
    let counted = archive::write(plan, Counting { inner: out, n: 0 }, &mut on_bytes)?;
    let Counting { mut inner, n } = counted;
    let padding = padding_for(n);
    write_zeros(&mut inner, padding)?;
    on_bytes(padding);
    Ok(inner)
}

/// Appends `n` zero bytes to `out`.
pub fn write_zeros(out: &mut impl Write, mut n: u64) -> io::Result<()> {
    let zeros = [0u8; ZEROS];
    while n > 0 {
        let now = n.min(ZEROS as u64) as usize;
        out.write_all(&zeros[..now])?;
        n -= now as u64;
    }
    Ok(())
}

/// What a progress bar of a send of `plan` counts: file content and padding.
pub fn progress_len(plan: &archive::Plan) -> u64 {
    plan.total_bytes + padding_for(archive_len(plan))
}

/// The length of the tar archive [`archive::write`] makes of `plan`: per
/// item a header (and a GNU long-name record before it for a name over 100
/// bytes), the content in whole blocks, and the two-block end marker.
pub fn archive_len(plan: &archive::Plan) -> u64 {
    let blocks = |n: u64| n.div_ceil(BLOCK) * BLOCK;
    let entries: u64 = plan
        .items
        .iter()
        .map(|item| {
            // A folder's name goes into the archive with a trailing `/`.
            let name = item.name.len() + usize::from(item.is_dir);
            let long_name = if name > HEADER_NAME { BLOCK + blocks(name as u64 + 1) } else { 0 };
            long_name + BLOCK + blocks(item.size)
        })
        .sum();
    entries + 2 * BLOCK
}

/// The tar archive ended early; `offset` bytes after its end-of-archive
/// block, the plaintext holds a byte that is not zero.
#[derive(Debug, thiserror::Error)]
pub enum TrailingError {
    /// A non-zero byte after the archive's end.
    #[error(
        "the drop's plaintext holds data {offset} bytes after its archive's end-of-archive marker, which no tar program shows (a sender pads only with zeros); nothing was written"
    )]
    Hidden {
        /// Bytes from the end of the archive's first end block to the first non-zero byte.
        offset: u64,
    },
    /// Reading (decrypting) the rest failed.
    #[error("{0}")]
    Io(#[from] io::Error),
}

/// Reads what follows the archive's end to the end of the plaintext (so
/// age authenticates its last chunk) and checks that it is only zeros: the
/// second end block and the padding. Returns the bytes read.
pub fn check_trailing_zeros(mut rest: impl Read) -> Result<u64, TrailingError> {
    let mut buf = vec![0u8; ZEROS];
    let mut read = 0u64;
    loop {
        let n = match rest.read(&mut buf) {
            Ok(0) => return Ok(read),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e.into()),
        };
        if let Some(at) = buf[..n].iter().position(|&b| b != 0) {
            return Err(TrailingError::Hidden { offset: read + at as u64 });
        }
        read += n as u64;
    }
}

/// Counts what passes through to the archive.
struct Counting<W> {
    inner: W,
    n: u64,
}

impl<W: Write> Write for Counting<W> {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(data)?;
        self.n += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sealdrop_proto::padding::padded_len;

    /// A tree with names on both sides of the 100-byte header limit, files
    /// of 0, 1, 511, 512 and 513 bytes, and nested folders.
    fn tree() -> (tempfile::TempDir, archive::Plan) {
        let d = tempfile::tempdir().unwrap();
        let top = d.path().join("top");
        std::fs::create_dir_all(top.join("sub").join("d".repeat(96))).unwrap();
        for (name, size) in [("a", 0), ("b", 1), ("c", 511), ("e", 512), ("f", 513)] {
            std::fs::write(top.join(name), vec![7u8; size]).unwrap();
        }
        // "top/" + 96 = 100 bytes: a folder (101 with its `/`) and a file of exactly 100.
        std::fs::write(top.join("x".repeat(96)), b"x").unwrap();
        std::fs::write(top.join("y".repeat(97)), b"y").unwrap();
        std::fs::write(top.join("sub").join("z".repeat(200)), vec![1u8; 5000]).unwrap();
        std::fs::write(top.join("sub").join("d".repeat(96)).join("w".repeat(255)), b"w").unwrap();
        let plan = archive::plan(&[top]).unwrap();
        (d, plan)
    }

    #[test]
    fn the_predicted_archive_length_is_what_the_archive_writes() {
        let (_d, plan) = tree();
        let tar = archive::write(&plan, Vec::new(), |_| {}).unwrap();
        assert_eq!(archive_len(&plan), tar.len() as u64);
        assert!(plan.items.iter().any(|i| i.name.len() > HEADER_NAME), "the tree tests long names");
    }

    #[test]
    fn a_padded_archive_is_its_class_long_ends_in_zeros_and_still_extracts() {
        let (_d, plan) = tree();
        let tar = archive::write(&plan, Vec::new(), |_| {}).unwrap();
        let mut counted = 0;
        let padded = write_padded(&plan, Vec::new(), |n| counted += n).unwrap();
        assert_eq!(padded.len() as u64, padded_len(tar.len() as u64));
        assert_eq!(counted, progress_len(&plan), "the progress bar ends full");
        assert_eq!(&padded[..tar.len()], &tar[..]);
        assert!(padded[tar.len()..].iter().all(|&b| b == 0));

        let dest = tempfile::tempdir().unwrap();
        let mut input = &padded[..];
        let got = archive::extract(&mut input, dest.path()).unwrap();
        assert_eq!(got.files, plan.files);
        // The tar reader stops after the first end block: the rest is the
        // second block and the padding.
        let rest = check_trailing_zeros(input).unwrap();
        assert_eq!(rest, padded.len() as u64 - (tar.len() as u64 - BLOCK));
    }

    #[test]
    fn bytes_after_the_end_are_refused_unless_zero() {
        assert_eq!(check_trailing_zeros(&[0u8; 100_000][..]).unwrap(), 100_000);
        assert_eq!(check_trailing_zeros(&[][..]).unwrap(), 0);
        let mut hidden = vec![0u8; 100_000];
        hidden[70_000] = b'!';
        match check_trailing_zeros(&hidden[..]) {
            Err(TrailingError::Hidden { offset }) => assert_eq!(offset, 70_000),
            other => panic!("{other:?}"),
        }
    }
}
