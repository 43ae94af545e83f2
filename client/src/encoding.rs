//! Text encodings of CSV files a sender sends.
//!
//! Excel's plain "CSV" format writes Windows-1252, not UTF-8. Such a file
//! used to be split and sent without a word, and only the recipient's
//! `--merge-csv` refused it, after acknowledging. The sender now refuses a
//! `.csv` (sent plainly or split) that is not UTF-8 (`not_utf8`, naming the
//! first bad line) unless `--encoding LABEL` says what it is; then the file
//! is converted to UTF-8 as it is read. A UTF-8 byte order mark is fine.
//! Everything is streamed: nothing holds a whole file in memory.

use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use encoding_rs::{CoderResult, Decoder, Encoding, UTF_8};

use crate::error::{Error, ErrorCode, Result};
use crate::names::shown_path;

/// Bytes read at a time.
const CHUNK: usize = 64 * 1024;

/// Whether `path` is a CSV file by its name.
pub fn is_csv(path: &Path) -> bool {
    path.extension().and_then(|e| e.to_str()).is_some_and(|e| e.eq_ignore_ascii_case("csv"))
}

/// The encoding `--encoding` names (any WHATWG label, e.g. `windows-1252`,
/// `latin1`, `cp1252`, `utf-8`).
pub fn parse_label(label: &str) -> Result<&'static Encoding> {
    Encoding::for_label(label.trim().as_bytes()).ok_or_else(|| {
        Error::new(
            ErrorCode::BadEncoding,
            format!("--encoding {label:?} is not an encoding label; use e.g. windows-1252 (Excel's plain \"CSV\"), iso-8859-1 or utf-8"),
        )
    })
}

/// The 1-based line of the first byte that is not UTF-8 in `input`, or
/// `None` if it all is.
pub fn first_bad_line(mut input: impl Read) -> io::Result<Option<u64>> {
    let mut buf = vec![0u8; CHUNK + 4];
    // Bytes of a character cut by the end of the previous read.
    let mut carried = 0usize;
    let mut line = 1u64;
    loop {
        let n = match input.read(&mut buf[carried..carried + CHUNK]) {
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        let filled = carried + n;
        let valid = match std::str::from_utf8(&buf[..filled]) {
            Ok(_) => filled,
            // Cut at the end of this read, not wrong: unless the file ended.
            Err(e) if e.error_len().is_none() && n > 0 => e.valid_up_to(),
            Err(e) => {
                line += memchr::memchr_iter(b'\n', &buf[..e.valid_up_to()]).count() as u64;
                return Ok(Some(line));
            }
        };
        line += memchr::memchr_iter(b'\n', &buf[..valid]).count() as u64;
        if n == 0 {
            return Ok(None);
        }
        buf.copy_within(valid..filled, 0);
        carried = filled - valid;
    }
}

/// Refuses `path` if it is not UTF-8, naming its first bad line.
pub fn check_utf8(path: &Path) -> Result<()> {
    let file = std::fs::File::open(path).map_err(|e| Error::io(format!("cannot read {}", shown_path(path)), e))?;
    match first_bad_line(file).map_err(|e| Error::io(format!("cannot read {}", shown_path(path)), e))? {
        None => Ok(()),
        Some(line) => Err(not_utf8(path, line)),
    }
}

fn not_utf8(path: &Path, line: u64) -> Error {
    let name = path.file_name().map_or_else(|| shown_path(path), |n| n.to_string_lossy().into_owned());
    Error::new(
        ErrorCode::NotUtf8,
        format!(
            "{name} line {line} is not UTF-8 (Excel's \"CSV\" is Windows-1252): nothing was sent; save it as \"CSV UTF-8\", \
             or pass --encoding windows-1252 to send it converted to UTF-8"
        ),
    )
}

/// A reader that decodes `inner` from `encoding` and yields UTF-8 (with
/// U+FFFD for a byte sequence the encoding does not define; Windows-1252
/// defines every byte). A leading BOM of `encoding` is dropped, as the
/// WHATWG decoder does.
pub struct Decoding<R> {
    inner: R,
    decoder: Decoder,
    raw: Vec<u8>,
    raw_start: usize,
    raw_end: usize,
    out: Vec<u8>,
    out_start: usize,
    out_end: usize,
    eof: bool,
}

impl<R: Read> Decoding<R> {
    /// Decodes `inner` from `encoding`.
    pub fn new(inner: R, encoding: &'static Encoding) -> Self {
        Self {
            inner,
            decoder: encoding.new_decoder(),
            raw: vec![0; CHUNK],
            raw_start: 0,
            raw_end: 0,
            out: vec![0; CHUNK * 3 + 16],
            out_start: 0,
            out_end: 0,
            eof: false,
        }
    }
}

impl<R: Read> Read for Decoding<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.out_start == self.out_end {
            if self.eof && self.raw_start == self.raw_end {
                return Ok(0);
            }
            if self.raw_start == self.raw_end && !self.eof {
                let n = self.inner.read(&mut self.raw)?;
                self.raw_start = 0;
                self.raw_end = n;
                self.eof = n == 0;
            }
            let last = self.eof;
            let (result, read, written, _) =
                self.decoder.decode_to_utf8(&self.raw[self.raw_start..self.raw_end], &mut self.out, last);
            self.raw_start += read;
            self.out_start = 0;
            self.out_end = written;
            if result == CoderResult::InputEmpty && last {
                self.raw_start = self.raw_end;
            }
        }
        let n = buf.len().min(self.out_end - self.out_start);
        buf[..n].copy_from_slice(&self.out[self.out_start..self.out_start + n]);
        self.out_start += n;
        Ok(n)
    }
}

/// Converts the CSV file `path` from `encoding` into `<dir>/<its name>`
/// (created 0600), streamed, and returns the copy's path. A file that is
/// already UTF-8 is left alone (`None`): converting it would garble every
/// non-ASCII character, and valid UTF-8 with such characters is almost
/// never meant as Windows-1252.
pub fn convert_into(path: &Path, encoding: &'static Encoding, dir: &Path) -> Result<Option<PathBuf>> {
    let read_err = |e| Error::io(format!("cannot read {}", shown_path(path)), e);
    if encoding == UTF_8 || first_bad_line(std::fs::File::open(path).map_err(read_err)?).map_err(read_err)?.is_none() {
        return Ok(None);
    }
    let name = path
        .file_name()
        .ok_or_else(|| Error::new(ErrorCode::BadFileName, format!("{} has no file name", shown_path(path))))?;
    let copy = dir.join(name);
    let mut out = io::BufWriter::new(crate::fsutil::create_private_file(&copy)?);
    let input = std::fs::File::open(path).map_err(read_err)?;
    io::copy(&mut Decoding::new(input, encoding), &mut out)
        .and_then(|_| out.flush())
        .map_err(|e| Error::io(format!("cannot convert {} to UTF-8", shown_path(path)), e))?;
    Ok(Some(copy))
}

/// The paths a plain send archives: each `.csv` file named on the command
/// line must be UTF-8 (else `not_utf8`), or, with `--encoding`, is
/// converted into a private folder under the state folder (kept as long as
/// the returned guard, removed on Ctrl-C too) and sent from there under its
/// own name. Folders are sent byte for byte, as they are.
pub fn prepare(
    settings: &crate::context::Settings,
    paths: &[PathBuf],
    label: Option<&str>,
) -> Result<(Vec<PathBuf>, Option<tempfile::TempDir>)> {
    let encoding = label.map(parse_label).transpose()?;
    let mut out = Vec::with_capacity(paths.len());
    let mut scratch: Option<tempfile::TempDir> = None;
    for path in paths {
        if !is_csv(path) || !path.is_file() {
            out.push(path.clone());
            continue;
        }
        let Some(encoding) = encoding else {
            check_utf8(path)?;
            out.push(path.clone());
            continue;
        };
        if scratch.is_none() {
            let root = settings.state_dir.join("spool");
            crate::fsutil::create_private_dir(&root)?;
            let dir = tempfile::Builder::new()
                .prefix("convert-")
                .tempdir_in(&root)
                .map_err(|e| Error::io(format!("cannot create a folder in {}", root.display()), e))?;
            crate::interrupt::scratch(dir.path());
            scratch = Some(dir);
        }
        let dir = scratch.as_ref().map(tempfile::TempDir::path).unwrap_or(Path::new("."));
        match convert_into(path, encoding, dir)? {
            Some(copy) => {
                eprintln!("converted {} from {} to UTF-8 for sending", shown_path(path), encoding.name());
                out.push(copy);
            }
            None => out.push(path.clone()),
        }
    }
    Ok((out, scratch))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A reader that hands out one byte at a time, to cut every character.
    struct Trickle<'a>(&'a [u8]);
    impl Read for Trickle<'_> {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            let Some((first, rest)) = self.0.split_first() else { return Ok(0) };
            if buf.is_empty() {
                return Ok(0);
            }
            buf[0] = *first;
            self.0 = rest;
            Ok(1)
        }
    }

    #[test]
    fn the_first_line_that_is_not_utf8_is_found_across_reads() {
        let good = "\u{feff}a,b\nZoë,£5\n€\n".as_bytes();
        assert_eq!(first_bad_line(good).unwrap(), None);
        assert_eq!(first_bad_line(Trickle(good)).unwrap(), None);
        let bad = b"a,b\nZoe,1\nZo\xeb,\xa35\n";
        assert_eq!(first_bad_line(&bad[..]).unwrap(), Some(3));
        assert_eq!(first_bad_line(Trickle(bad)).unwrap(), Some(3));
        // A character cut off by the end of the file is not UTF-8.
        assert_eq!(first_bad_line(&b"a\n\xc3"[..]).unwrap(), Some(2));
    }

    #[test]
    fn windows_1252_is_decoded_to_utf8_in_pieces() {
        let mut text = Vec::new();
        for _ in 0..20_000 {
            text.extend_from_slice(b"Zo\xeb,\xa35,\x80\r\n");
        }
        let mut out = String::new();
        Decoding::new(Trickle(&text[..100]), encoding_rs::WINDOWS_1252).read_to_string(&mut out).unwrap();
        assert!(out.starts_with("Zoë,£5,€\r\n"), "{out:?}");
        let mut all = String::new();
        Decoding::new(&text[..], encoding_rs::WINDOWS_1252).read_to_string(&mut all).unwrap();
        assert_eq!(all, "Zoë,£5,€\r\n".repeat(20_000));
        assert_eq!(parse_label("cp1252").unwrap(), encoding_rs::WINDOWS_1252);
        assert_eq!(parse_label("no-such").unwrap_err().code, "bad_encoding");
    }
}
