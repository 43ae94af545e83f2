//! Where pass one found each routed row, so pass two can slice the rows
//! out of the file instead of parsing it again.
//!
//! Parsing was half of the client's work in a split (`perf record` of
//! 1,000,000 rows: `memchr`, row splitting, value lookup), done twice. Pass
//! one now records, per routed row, how many bytes to skip since the
//! previous routed row, the row's length and its recipient, as three LEB128
//! numbers (about 3-4 bytes a row). Pass two reads the file in large
//! chunks, hashes every byte (the hash must still match pass one's, which
//! is what makes the slicing trustworthy: a changed file is refused before
//! anything is committed) and copies each row to its recipient.
//!
//! Memory stays bounded: past [`MAX_BYTES`] the record is dropped and pass
//! two parses the file as before.

use std::io::{self, Read};

use sealdrop_proto::ids::PartyId;

/// The most memory the record may take: 32 MiB, about 8-10 million rows.
pub const MAX_BYTES: usize = 32 << 20;
/// How much of the file pass two reads at a time.
const CHUNK: usize = 256 << 10;

/// What [`Layout::slice`] hands each piece of a row to: its recipient, the
/// bytes, and whether they end the row.
pub type RowPiece<'a> = dyn FnMut(usize, &[u8], bool) -> io::Result<()> + 'a;

/// The rows of pass one, as offsets into the file.
pub struct Layout {
    /// (gap, length, recipient) per routed row, each LEB128.
    bytes: Vec<u8>,
    /// Where the last recorded row ended in the file.
    end: u64,
    /// Recipient indexes are into this list (pass one's router order).
    pub recipients: Vec<PartyId>,
    /// The header row every part starts with.
    pub preamble: Vec<u8>,
    /// The line terminator every row is written with.
    pub terminator: &'static [u8],
    max: usize,
}

impl std::fmt::Debug for Layout {
    // The record itself is megabytes of numbers; say how big it is.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Layout").field("bytes", &self.bytes.len()).field("recipients", &self.recipients).finish()
    }
}

impl Layout {
    /// An empty record for a file whose parts start with `preamble` and
    /// whose rows end with `terminator`, holding at most `max` bytes.
    pub fn new(preamble: Vec<u8>, terminator: &'static [u8], max: usize) -> Self {
        Self { bytes: Vec::new(), end: 0, recipients: Vec::new(), preamble, terminator, max }
    }

    /// Records a row of `len` bytes at `offset` for recipient `to`; false
    /// (and the record must be dropped) when it would grow past its bound
    /// or the row is not after the previous one.
    #[must_use]
    pub fn push(&mut self, offset: u64, len: usize, to: usize) -> bool {
        let Some(gap) = offset.checked_sub(self.end) else { return false };
        if self.bytes.len() + 30 > self.max {
            return false;
        }
        put(&mut self.bytes, gap);
        put(&mut self.bytes, len as u64);
        put(&mut self.bytes, to as u64);
        self.end = offset + len as u64;
        true
    }

    /// Reads all of `input`, giving every chunk read to `chunk` after use
    /// (for hashing) and the bytes of every recorded row to `row` with its
    /// recipient, in pieces (`true` with the last piece of a row). Returns
    /// the bytes read. A file that ends before the last recorded row is an
    /// error of kind `UnexpectedEof`.
    pub fn slice(
        &self,
        mut input: impl Read,
        row: &mut RowPiece<'_>,
        chunk: &mut dyn FnMut(Vec<u8>) -> io::Result<()>,
    ) -> io::Result<u64> {
        let mut records = Records(&self.bytes);
        // The current row: bytes still to skip before it, its bytes still to copy, its recipient.
        let mut cur = records.next();
        let mut total = 0u64;
        loop {
            let mut buf = vec![0u8; CHUNK];
            let n = read_full(&mut input, &mut buf)?;
            if n == 0 {
                break;
            }
            buf.truncate(n);
            let mut at = 0;
            while let Some((gap, len, to)) = cur.as_mut() {
                let skip = (*gap).min((n - at) as u64);
                at += skip as usize;
                *gap -= skip;
                if *gap > 0 {
                    break;
                }
                let take = (*len).min((n - at) as u64) as usize;
                *len -= take as u64;
                row(*to, &buf[at..at + take], *len == 0)?;
                at += take;
                if *len > 0 {
                    break;
                }
                cur = records.next();
            }
            total += n as u64;
            chunk(buf)?;
        }
        match cur {
            Some(_) => Err(io::Error::new(io::ErrorKind::UnexpectedEof, "the file is shorter than when it was read")),
            None => Ok(total),
        }
    }
}

/// Reads until `buf` is full or the input ends.
fn read_full(input: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match input.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
}

fn put(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// The recorded rows, decoded.
struct Records<'a>(&'a [u8]);

impl Records<'_> {
    fn number(&mut self) -> Option<u64> {
        let mut v = 0u64;
        for (i, &b) in self.0.iter().enumerate() {
            v |= u64::from(b & 0x7f) << (7 * i);
            if b & 0x80 == 0 {
                self.0 = &self.0[i + 1..];
                return Some(v);
            }
        }
        None
    }
}

impl Iterator for Records<'_> {
    /// (gap, length, recipient).
    type Item = (u64, u64, usize);

    fn next(&mut self) -> Option<Self::Item> {
        Some((self.number()?, self.number()?, usize::try_from(self.number()?).ok()?))
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::split::table::{CsvSource, RowSource};

    /// Per recipient, its rows: sliced, and parsed.
    type Parts = (Vec<Vec<u8>>, Vec<Vec<u8>>);

    /// Records `input` split by `column` (rows whose value is "a" go to 0,
    /// "b" to 1, others nowhere) and returns what slicing gives each recipient,
    /// against what the parser gave.
    fn both_ways(input: &[u8], column: usize, max: usize) -> Option<Parts> {
        let mut src = CsvSource::new(input, Path::new("t.csv"), indicatif::ProgressBar::hidden()).unwrap();
        let mut layout = Layout::new(src.preamble().to_vec(), src.terminator(), max);
        let terminator = src.terminator();
        let mut parsed = vec![Vec::new(), Vec::new()];
        let mut kept = true;
        src.rows(column, &mut |r| {
            let to = match r.value {
                b"a" => 0,
                b"b" => 1,
                _ => return Ok(()),
            };
            kept = kept && layout.push(r.offset.unwrap(), r.body.len(), to);
            parsed[to].extend_from_slice(r.body);
            parsed[to].extend_from_slice(terminator);
            Ok(())
        })
        .unwrap();
        if !kept {
            return None;
        }
        let mut sliced = vec![Vec::new(), Vec::new()];
        let mut hashed = Vec::new();
        let total = layout
            .slice(
                Trickle(input, 1000),
                &mut |to, bytes, last| {
                    sliced[to].extend_from_slice(bytes);
                    if last {
                        sliced[to].extend_from_slice(terminator);
                    }
                    Ok(())
                },
                &mut |chunk| {
                    hashed.extend_from_slice(&chunk);
                    Ok(())
                },
            )
            .unwrap();
        assert_eq!(hashed, input, "every byte is handed on for hashing, in order");
        assert_eq!(total, input.len() as u64);
        Some((sliced, parsed))
    }

    /// Hands out at most this many bytes per read.
    struct Trickle<'a>(&'a [u8], usize);

    impl Read for Trickle<'_> {
        fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
            let n = self.1.min(out.len()).min(self.0.len());
            out[..n].copy_from_slice(&self.0[..n]);
            self.0 = &self.0[n..];
            Ok(n)
        }
    }

    #[test]
    fn slicing_gives_each_recipient_exactly_the_rows_parsing_gave() {
        use rand::{Rng as _, SeedableRng as _};
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(11);
        let fields: &[&str] = &["a", "b", "c", "", " ", "\"a\"", "\"x,\r\ny\"", "é", "\"\"\"q\"\"\""];
        for case in 0..300 {
            let crlf = case % 2 == 0;
            let eol = if crlf { "\r\n" } else { "\n" };
            let mut input = String::from(if case % 7 == 0 { "\u{feff}id,v,w" } else { "id,v,w" });
            input.push_str(eol);
            for _ in 0..rng.gen_range(0..400) {
                let n = rng.gen_range(1..4);
                let row: Vec<&str> = (0..n).map(|_| fields[rng.gen_range(0..fields.len())]).collect();
                input.push_str(&row.join(","));
                input.push_str(if rng.gen_range(0..10) == 0 { "\n\n" } else { eol });
                // Rows longer than a chunk straddle the reads.
                if rng.gen_range(0..50) == 0 {
                    input.push_str(&format!("{},a,{}{eol}", "z".repeat(CHUNK), "y".repeat(rng.gen_range(0..99))));
                }
            }
            let (sliced, parsed) = both_ways(input.as_bytes(), 1, MAX_BYTES).unwrap();
            assert_eq!(sliced, parsed, "case {case}: {input:?}");
        }
    }

    #[test]
    fn the_record_is_bounded_and_a_short_file_is_noticed() {
        let input: String = std::iter::once("id,v\n".to_owned()).chain((0..100).map(|i| format!("{i},a\n"))).collect();
        assert!(both_ways(input.as_bytes(), 1, 64).is_none(), "a record past its bound is given up");
        assert!(both_ways(input.as_bytes(), 1, 4096).is_some());

        let mut layout = Layout::new(b"id,v\n".to_vec(), b"\n", MAX_BYTES);
        assert!(layout.push(5, 3, 0) && layout.push(9, 3, 0));
        assert!(!layout.push(10, 3, 0), "rows must come in file order");
        let err = layout.slice(&b"id,v\n1,a\n2,"[..], &mut |_, _, _| Ok(()), &mut |_| Ok(())).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::UnexpectedEof);
    }
}
