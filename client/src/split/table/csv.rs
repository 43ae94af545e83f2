//! CSV input: parsed with `csv-core` (or, for a row with no quote, split
//! at its commas with `memchr`), each row passed on as its exact bytes.

use std::io::{self, Read};
use std::path::Path;

use sha2::{Digest, Sha256};

use super::{BOM, Row, RowSource, is_blank};
use crate::error::{Error, ErrorCode, Result};

/// Rows longer than this are refused: the input is not a sensible CSV.
const MAX_ROW_BYTES: usize = 16 << 20;
/// How much of the file is read at a time.
pub(super) const READ_CHUNK: usize = 256 << 10;

pub struct CsvSource<R> {
    input: R,
    parser: csv_core::Reader,
    /// Raw input; the current row is `buf[start..pos]`.
    buf: Vec<u8>,
    /// Where `buf[0]` is in the input.
    base: u64,
    start: usize,
    pos: usize,
    filled: usize,
    eof: bool,
    /// Unescaped fields of the current row and where each ends.
    fields: Vec<u8>,
    ends: Vec<usize>,
    hasher: BackgroundSha256,
    header: Vec<String>,
    preamble: Vec<u8>,
    terminator: &'static [u8],
    rows: u64,
    name: String,
    progress: indicatif::ProgressBar,
    /// Whether quote-free rows are split here (always, but for the test
    /// that compares this with csv-core alone).
    pub(super) quick: bool,
    /// Whether the input is the file itself, so rows carry their offsets
    /// ([`Row::offset`]); not when it is decoded from another encoding.
    pub(super) verbatim: bool,
    /// The UTF-8 check of the whole file running beside the parse (see
    /// [`super::open`]); `rows` waits for it.
    pub(super) utf8_check: Option<std::thread::JoinHandle<Result<()>>>,
}

/// What [`CsvSource::quote_free_record`] found.
enum Quick {
    /// A row: its bytes and its split column's value, as ranges of the buffer.
    Row { body: (usize, usize), value: Option<(usize, usize)> },
    /// A row of empty or blank fields, skipped.
    Blank,
    /// The end of the input.
    End,
    /// A record csv-core must read (it has quotes, or runs past the buffer).
    NotHere,
}

/// SHA-256 of the input, computed on a thread of its own: hashing took
/// as long as parsing, and the two can run on different cores.
pub struct BackgroundSha256 {
    chunks: Option<std::sync::mpsc::SyncSender<Vec<u8>>>,
    thread: Option<std::thread::JoinHandle<[u8; 32]>>,
}

impl BackgroundSha256 {
    /// Starts the hashing thread.
    pub fn start() -> Self {
        let (chunks, rx) = std::sync::mpsc::sync_channel::<Vec<u8>>(8);
        let thread = std::thread::spawn(move || {
            let mut hasher = Sha256::new();
            for chunk in rx {
                hasher.update(&chunk);
            }
            hasher.finalize().into()
        });
        Self { chunks: Some(chunks), thread: Some(thread) }
    }

    fn update(&mut self, bytes: &[u8]) {
        self.update_owned(bytes.to_vec());
    }

    /// Hashes `chunk` next (handed over, not copied).
    pub fn update_owned(&mut self, chunk: Vec<u8>) {
        if let Some(tx) = &self.chunks {
            // Only fails if the hashing thread died; `finish` reports it.
            let _ = tx.send(chunk);
        }
    }

    /// The hash of everything given.
    pub fn finish(&mut self) -> Result<[u8; 32]> {
        self.chunks = None;
        let died = || Error::new(ErrorCode::Internal, "the thread hashing the input stopped");
        self.thread.take().ok_or_else(died)?.join().map_err(|_| died())
    }
}

/// The bounds of one parsed record: its raw bytes and its field count.
struct Parsed {
    raw: (usize, usize),
    nfields: usize,
}

impl<R: Read> CsvSource<R> {
    /// Reads the header of `input` (named `path` in messages).
    pub fn new(input: R, path: &Path, progress: indicatif::ProgressBar) -> Result<Self> {
        let mut s = Self {
            input,
            parser: csv_core::Reader::new(),
            buf: vec![0; READ_CHUNK],
            base: 0,
            start: 0,
            pos: 0,
            filled: 0,
            eof: false,
            fields: vec![0; 4096],
            ends: vec![0; 64],
            hasher: BackgroundSha256::start(),
            header: Vec::new(),
            preamble: Vec::new(),
            terminator: b"\n",
            rows: 0,
            name: path.display().to_string(),
            progress,
            quick: true,
            verbatim: true,
            utf8_check: None,
        };
        let Some(p) = s.parse()? else {
            return Err(Error::new(ErrorCode::EmptyInput, format!("{} is empty: there is no header row", s.name)));
        };
        let raw = &s.buf[p.raw.0..p.raw.1];
        let had_bom = raw.starts_with(BOM);
        let (body, mut terminator) = trim_record(raw);
        // csv-core ends a record at the CR of a CRLF; the LF is still unread.
        if terminator == b"\r" && s.buf[p.raw.1..s.filled].first() == Some(&b'\n') {
            terminator = b"\r\n";
        }
        s.terminator = terminator;
        let mut header = Vec::with_capacity(p.nfields);
        for i in 0..p.nfields {
            let f = s.field(i);
            let text = std::str::from_utf8(f).map_err(|_| {
                Error::new(
                    ErrorCode::NotUtf8,
                    format!("the header row of {} is not UTF-8 text; save the file as \"CSV UTF-8\"", s.name),
                )
            })?;
            header.push(text.trim().to_owned());
        }
        if had_bom {
            s.preamble.extend_from_slice(BOM);
        }
        s.preamble.extend_from_slice(body);
        s.preamble.extend_from_slice(terminator);
        s.header = header;
        Ok(s)
    }

    /// The next row that is not blank.
    pub fn next_row(&mut self, column: usize) -> Result<Option<Row<'_>>> {
        loop {
            match self.quote_free_record(column)? {
                Quick::Row { body, value } => {
                    self.rows += 1;
                    let value = match value {
                        Some((from, to)) => &self.buf[from..to],
                        None => &[][..],
                    };
                    let offset = self.verbatim.then_some(self.base + body.0 as u64);
                    return Ok(Some(Row { value, body: &self.buf[body.0..body.1], offset, number: self.rows + 1 }));
                }
                Quick::Blank => {}
                Quick::End => return Ok(None),
                Quick::NotHere => break,
            }
        }
        let p = loop {
            let Some(p) = self.parse()? else { return Ok(None) };
            if (0..p.nfields).any(|i| !is_blank(self.field(i))) {
                break p;
            }
        };
        self.rows += 1;
        let value = if column < p.nfields { self.field(column) } else { &[][..] };
        let raw = &self.buf[p.raw.0..p.raw.1];
        let (body, _) = trim_record(raw);
        // `body` lies within `raw`: its start is how much was trimmed off the front.
        let skipped = raw.len() - trim_front(raw).len();
        let offset = self.verbatim.then_some(self.base + (p.raw.0 + skipped) as u64);
        Ok(Some(Row { value, body, offset, number: self.rows + 1 }))
    }

    /// Reads the next record here if it has no quote character and ends
    /// within the buffer (csv-core splits such a record at its commas and
    /// ends it at its first CR or LF, as this does); otherwise leaves it to
    /// csv-core. Line breaks before a record (blank lines, the LF of a CRLF
    /// that ended the previous record) are skipped, as csv-core skips them.
    fn quote_free_record(&mut self, column: usize) -> Result<Quick> {
        if !self.quick {
            return Ok(Quick::NotHere);
        }
        loop {
            while self.pos < self.filled && matches!(self.buf[self.pos], b'\r' | b'\n') {
                self.pos += 1;
            }
            if self.pos < self.filled {
                break;
            }
            if self.eof {
                return Ok(Quick::End);
            }
            self.start = self.pos;
            self.refill()?;
        }
        self.start = self.pos;
        let rest = &self.buf[self.pos..self.filled];
        let Some(len) = memchr::memchr2(b'\n', b'\r', rest) else { return Ok(Quick::NotHere) };
        let line = &rest[..len];
        if memchr::memchr(b'"', line).is_some() {
            return Ok(Quick::NotHere);
        }
        let body = (self.pos, self.pos + len);
        self.pos += len;
        if line.iter().all(|&b| b == b',' || b.is_ascii_whitespace()) {
            return Ok(Quick::Blank);
        }
        let mut from = 0;
        let mut value = None;
        for (i, end) in memchr::memchr_iter(b',', line).chain(std::iter::once(len)).enumerate() {
            if i == column {
                value = Some((body.0 + from, body.0 + end));
                break;
            }
            from = end + 1;
        }
        Ok(Quick::Row { body, value })
    }

    fn field(&self, i: usize) -> &[u8] {
        let from = if i == 0 { 0 } else { self.ends[i - 1] };
        &self.fields[from..self.ends[i]]
    }

    /// Parses the next record (blank lines are skipped by csv-core).
    fn parse(&mut self) -> Result<Option<Parsed>> {
        use csv_core::ReadRecordResult as R;
        self.start = self.pos;
        let (mut nout, mut nend) = (0, 0);
        loop {
            // csv-core reads an empty input as the end of the file; and it
            // skips a BOM at the very start, so a first read of exactly the
            // BOM's three bytes would leave it nothing, and look empty too.
            if (self.pos == self.filled || self.filled <= BOM.len()) && !self.eof {
                self.refill()?;
                continue;
            }
            let (res, nin, o, e) = self.parser.read_record(
                &self.buf[self.pos..self.filled],
                &mut self.fields[nout..],
                &mut self.ends[nend..],
            );
            self.pos += nin;
            nout += o;
            nend += e;
            match res {
                R::InputEmpty => self.refill()?,
                R::OutputFull => {
                    let n = self.fields.len() * 2;
                    self.fields.resize(n, 0);
                }
                R::OutputEndsFull => {
                    let n = self.ends.len() * 2;
                    self.ends.resize(n, 0);
                }
                R::Record => return Ok(Some(Parsed { raw: (self.start, self.pos), nfields: nend })),
                R::End => return Ok(None),
            }
        }
    }

    /// Moves the unfinished row to the front and reads more of the file.
    fn refill(&mut self) -> Result<()> {
        if self.eof {
            return Ok(());
        }
        self.buf.copy_within(self.start..self.filled, 0);
        self.base += self.start as u64;
        self.pos -= self.start;
        self.filled -= self.start;
        self.start = 0;
        if self.filled == self.buf.len() {
            if self.buf.len() >= MAX_ROW_BYTES {
                return Err(Error::new(
                    ErrorCode::RowTooLong,
                    format!(
                        "{}: row {} is longer than {} MiB; is this really a CSV file (check for an unclosed quote)?",
                        self.name,
                        self.rows + 2,
                        MAX_ROW_BYTES >> 20
                    ),
                ));
            }
            self.buf.resize(self.buf.len() * 2, 0);
        }
        let n = loop {
            match self.input.read(&mut self.buf[self.filled..]) {
                Ok(n) => break n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(Error::io(format!("cannot read {}", self.name), e)),
            }
        };
        self.hasher.update(&self.buf[self.filled..self.filled + n]);
        self.filled += n;
        self.progress.inc(n as u64);
        if n == 0 {
            self.eof = true;
            self.progress.finish_and_clear();
        }
        Ok(())
    }
}

/// `raw` without its BOM and leading line breaks.
fn trim_front(raw: &[u8]) -> &[u8] {
    let raw = raw.strip_prefix(BOM).unwrap_or(raw);
    let start = raw.iter().position(|&b| b != b'\r' && b != b'\n').unwrap_or(raw.len());
    &raw[start..]
}

/// Strips the BOM, leading line breaks (left over from the previous row's
/// CRLF or blank lines) and the trailing terminator from a raw record, and
/// says which terminator it had.
fn trim_record(raw: &[u8]) -> (&[u8], &'static [u8]) {
    let raw = trim_front(raw);
    let end = raw.iter().rposition(|&b| b != b'\r' && b != b'\n').map_or(0, |i| i + 1);
    let terminator: &'static [u8] = match &raw[end..] {
        b"" | b"\n" => b"\n",
        t if t.starts_with(b"\r\n") => b"\r\n",
        t if t.starts_with(b"\r") => b"\r",
        _ => b"\n",
    };
    (&raw[..end], terminator)
}

impl<R: Read> RowSource for CsvSource<R> {
    fn header(&self) -> &[String] {
        &self.header
    }
    fn preamble(&self) -> &[u8] {
        &self.preamble
    }
    fn terminator(&self) -> &'static [u8] {
        self.terminator
    }
    fn rows(&mut self, column: usize, each: &mut dyn FnMut(Row<'_>) -> Result<()>) -> Result<()> {
        let mut read = || -> Result<()> {
            while let Some(row) = self.next_row(column)? {
                each(row)?;
            }
            Ok(())
        };
        let read = read();
        // A file that is not UTF-8 is refused as such, whatever else went wrong.
        self.checked()?;
        read
    }
    fn checked(&mut self) -> Result<()> {
        match self.utf8_check.take() {
            Some(check) => check
                .join()
                .map_err(|_| Error::new(ErrorCode::Internal, "the thread checking the input's encoding stopped"))?,
            None => Ok(()),
        }
    }
    fn input_sha256(&mut self) -> Result<[u8; 32]> {
        // Read whatever follows the last row so the hash covers the whole file.
        while !self.eof {
            self.start = self.pos;
            self.refill()?;
            self.pos = self.filled;
        }
        self.hasher.finish()
    }
}
