//! Reading a spreadsheet row by row, in constant memory, for splitting.
//!
//! A CSV file is parsed with `csv-core` and every row is passed on as the
//! exact bytes it had in the file (quoting, separators and non-ASCII text
//! untouched), so each recipient gets its rows verbatim. A row with no
//! quote character (most rows of most files) is split at its commas here
//! instead, with `memchr`: that is exactly what csv-core would do with it,
//! and about three times faster than copying every field out. An Excel workbook is
//! read cell by cell with `calamine` and each row is written out as CSV.
//! Both hash the input file, which identifies the data for re-runs.

use std::borrow::Cow;
use std::fs::File;
use std::io::{self, BufReader, Read};
use std::path::Path;

use calamine::{DataRef, Reader as _, Xlsx, XlsxCellReader};
use sha2::{Digest, Sha256};

use crate::error::{Error, Result};

/// The UTF-8 byte order mark Excel writes at the start of "CSV UTF-8" files.
pub const BOM: &[u8] = b"\xef\xbb\xbf";
/// Rows longer than this are refused: the input is not a sensible CSV.
const MAX_ROW_BYTES: usize = 16 << 20;
/// How much of the file is read at a time.
const READ_CHUNK: usize = 256 << 10;

/// One data row: the split column's value and the row as CSV without its
/// line terminator.
pub struct Row<'a> {
    /// The split column's value ("" when the row is shorter than the header).
    pub value: Cow<'a, str>,
    /// The row's CSV bytes, without a line terminator.
    pub body: &'a [u8],
    /// 1-based row number counting the header as row 1 (blank rows included
    /// in the count for workbooks, excluded for CSV).
    pub number: u64,
}

/// A spreadsheet being read row by row.
pub trait RowSource {
    /// The header's fields, BOM removed.
    fn header(&self) -> &[String];
    /// What every part starts with: a BOM when the input had one (always for
    /// workbooks, so Excel reads the UTF-8 correctly), then the header row
    /// and its line terminator.
    fn preamble(&self) -> &[u8];
    /// The line terminator every row is written with.
    fn terminator(&self) -> &'static [u8];
    /// Calls `each` with every row that is not blank (blank: every field
    /// empty or spaces, as Excel writes trailing rows of commas), in order;
    /// stops at the first error `each` returns. Call once.
    fn rows(&mut self, column: usize, each: &mut dyn FnMut(Row<'_>) -> Result<()>) -> Result<()>;
    /// The SHA-256 of the whole input file; call after the last row.
    fn input_sha256(&mut self) -> Result<[u8; 32]>;
}

/// Which reader a file needs, from its extension.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// Comma-separated values.
    Csv,
    /// An Excel 2007+ workbook.
    Xlsx,
}

impl Format {
    /// Picks the format from the file name, or says what to do.
    pub fn of(path: &Path) -> Result<Self> {
        let ext = path.extension().and_then(|e| e.to_str()).unwrap_or("").to_ascii_lowercase();
        match ext.as_str() {
            "csv" | "txt" => Ok(Self::Csv),
            "xlsx" | "xlsm" => Ok(Self::Xlsx),
            "xls" => Err(Error::input(
                "unsupported_format",
                format!(
                    "{} is an old-style .xls workbook; save it as .xlsx or CSV UTF-8 and try again",
                    path.display()
                ),
            )),
            _ => Err(Error::input(
                "unsupported_format",
                format!("cannot split {}: give a .csv or .xlsx file", path.display()),
            )),
        }
    }
}

/// Opens `path` for reading rows; `sheet` applies to workbooks only (default:
/// the first sheet).
/// A CSV is read as UTF-8 (refused with `not_utf8` if it is not), or from
/// `encoding` and converted as it is read.
pub fn open(
    path: &Path,
    sheet: Option<&str>,
    encoding: Option<&'static encoding_rs::Encoding>,
    progress: indicatif::ProgressBar,
) -> Result<Box<dyn RowSource>> {
    match Format::of(path)? {
        Format::Csv => {
            if sheet.is_some() {
                return Err(Error::input("bad_option", "--sheet applies to .xlsx workbooks only, not to CSV files"));
            }
            let file = File::open(path).map_err(|e| Error::io(format!("cannot open {}", path.display()), e))?;
            // A file that is UTF-8 already is read as it is: decoding it
            // as Windows-1252 would garble every accented name.
            let utf8 = crate::encoding::check_utf8(path);
            match encoding {
                Some(encoding) if utf8.is_err() => {
                    Ok(Box::new(CsvSource::new(crate::encoding::Decoding::new(file, encoding), path, progress)?))
                }
                Some(_) => Ok(Box::new(CsvSource::new(file, path, progress)?)),
                None => {
                    // A pass of its own: a bad byte must stop the split
                    // before any part is planned, whichever row it is in.
                    utf8?;
                    Ok(Box::new(CsvSource::new(file, path, progress)?))
                }
            }
        }
        Format::Xlsx if encoding.is_some() => {
            Err(Error::input("bad_option", "--encoding applies to CSV files only: a .xlsx workbook is always Unicode"))
        }
        Format::Xlsx => {
            progress.finish_and_clear();
            Ok(Box::new(XlsxSource::open(path, sheet)?))
        }
    }
}

/// Finds the split column by name: exactly, else ignoring case and spacing.
pub fn find_column(header: &[String], name: &str, input: &Path) -> Result<usize> {
    if let Some(i) = header.iter().position(|h| h == name) {
        return Ok(i);
    }
    let loose = |s: &str| s.chars().filter(|c| c.is_alphanumeric()).flat_map(char::to_lowercase).collect::<String>();
    let want = loose(name);
    let found: Vec<usize> = header.iter().enumerate().filter(|(_, h)| loose(h) == want).map(|(i, _)| i).collect();
    match found.as_slice() {
        [one] => Ok(*one),
        [] => Err(Error::input(
            "no_such_column",
            format!(
                "{} has no column {name:?}; its columns are: {}",
                input.display(),
                header.iter().map(|h| format!("{h:?}")).collect::<Vec<_>>().join(", ")
            ),
        )),
        _ => Err(Error::input(
            "ambiguous_column",
            format!("{} has several columns like {name:?}; give the exact header text", input.display()),
        )),
    }
}

fn is_blank(field: &[u8]) -> bool {
    field.iter().all(|b| b.is_ascii_whitespace())
}

/// A CSV file, parsed with `csv-core`, whose rows are handed out verbatim.
pub struct CsvSource<R> {
    input: R,
    parser: csv_core::Reader,
    /// Raw input; the current row is `buf[start..pos]`.
    buf: Vec<u8>,
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
    quick: bool,
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
struct BackgroundSha256 {
    chunks: Option<std::sync::mpsc::SyncSender<Vec<u8>>>,
    thread: Option<std::thread::JoinHandle<[u8; 32]>>,
}

impl BackgroundSha256 {
    fn start() -> Self {
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
        if let Some(tx) = &self.chunks {
            // Only fails if the hashing thread died; `finish` reports it.
            let _ = tx.send(bytes.to_vec());
        }
    }

    fn finish(&mut self) -> Result<[u8; 32]> {
        self.chunks = None;
        let died = || Error::new(crate::error::Kind::Other, "internal", "the thread hashing the input stopped");
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
        };
        let Some(p) = s.parse()? else {
            return Err(Error::input("empty_input", format!("{} is empty: there is no header row", s.name)));
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
                Error::input(
                    "not_utf8",
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
                        Some((from, to)) => String::from_utf8_lossy(&self.buf[from..to]),
                        None => Cow::Borrowed(""),
                    };
                    return Ok(Some(Row { value, body: &self.buf[body.0..body.1], number: self.rows + 1 }));
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
        let value = if column < p.nfields { String::from_utf8_lossy(self.field(column)) } else { Cow::Borrowed("") };
        let (body, _) = trim_record(&self.buf[p.raw.0..p.raw.1]);
        Ok(Some(Row { value, body, number: self.rows + 1 }))
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
        self.pos -= self.start;
        self.filled -= self.start;
        self.start = 0;
        if self.filled == self.buf.len() {
            if self.buf.len() >= MAX_ROW_BYTES {
                return Err(Error::input(
                    "row_too_long",
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

/// Strips the BOM, leading line breaks (left over from the previous row's
/// CRLF or blank lines) and the trailing terminator from a raw record, and
/// says which terminator it had.
fn trim_record(raw: &[u8]) -> (&[u8], &'static [u8]) {
    let raw = raw.strip_prefix(BOM).unwrap_or(raw);
    let start = raw.iter().position(|&b| b != b'\r' && b != b'\n').unwrap_or(raw.len());
    let raw = &raw[start..];
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
        while let Some(row) = self.next_row(column)? {
            each(row)?;
        }
        Ok(())
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

/// An Excel workbook's sheet, read cell by cell; rows are written as CSV.
pub struct XlsxSource {
    workbook: Xlsx<BufReader<File>>,
    sheet: String,
    header: Vec<String>,
    /// The header's row in the sheet (0-based); data rows come after it.
    header_row: u32,
    preamble: Vec<u8>,
    file_sha256: [u8; 32],
    name: String,
}

/// Groups the cells calamine hands out (row by row, left to right) into rows.
#[derive(Default)]
struct RowAssembler {
    /// A cell read past the end of the previous row.
    pending: Option<((u32, u32), String)>,
    current: Vec<String>,
    row: u32,
    /// calamine's reader must not be asked again once it has said "no more".
    finished: bool,
}

impl RowAssembler {
    /// Reads the next row that has a non-blank cell into `current`.
    fn next(&mut self, cells: &mut XlsxCellReader<'_, BufReader<File>>, name: &str) -> Result<bool> {
        loop {
            self.current.clear();
            let mut row = None;
            if let Some(((r, c), v)) = self.pending.take() {
                row = Some(r);
                self.put(c, v);
            }
            while !self.finished {
                let Some(cell) = cells.next_cell().map_err(|e| Error::input("bad_workbook", format!("{name}: {e}")))?
                else {
                    self.finished = true;
                    break;
                };
                let (r, c) = cell.get_position();
                let text = cell_text(cell.get_value());
                match row {
                    Some(current) if r != current => {
                        self.pending = Some(((r, c), text));
                        break;
                    }
                    _ => {
                        row = Some(r);
                        self.put(c, text);
                    }
                }
            }
            let Some(r) = row else { return Ok(false) };
            self.row = r;
            if self.current.iter().any(|v| !is_blank(v.as_bytes())) {
                return Ok(true);
            }
        }
    }

    fn put(&mut self, column: u32, value: String) {
        let c = column as usize;
        if self.current.len() <= c {
            self.current.resize(c + 1, String::new());
        }
        self.current[c] = value;
    }
}

impl XlsxSource {
    /// Opens `sheet` (default: the first) of the workbook at `path`.
    pub fn open(path: &Path, sheet: Option<&str>) -> Result<Self> {
        let name = path.display().to_string();
        let file_sha256 = hash_file(path)?;
        let bad = |e: &dyn std::fmt::Display| {
            Error::input("bad_workbook", format!("{name} is not a readable .xlsx workbook: {e}"))
        };
        let mut workbook: Xlsx<BufReader<File>> = calamine::open_workbook(path).map_err(|e| bad(&e))?;
        let names = workbook.sheet_names();
        let sheet = match sheet {
            Some(s) => names.iter().find(|n| n.as_str() == s).cloned().ok_or_else(|| {
                Error::input(
                    "no_such_sheet",
                    format!("{name} has no sheet {s:?}; its sheets are: {}", names.join(", ")),
                )
            })?,
            None => names.first().cloned().ok_or_else(|| bad(&"it has no sheets"))?,
        };
        let mut rows = RowAssembler::default();
        {
            let mut cells = workbook.worksheet_cells_reader(&sheet).map_err(|e| bad(&e))?;
            if !rows.next(&mut cells, &name)? {
                return Err(Error::input(
                    "empty_input",
                    format!("sheet {sheet:?} of {name} is empty: there is no header row"),
                ));
            }
        }
        let mut header: Vec<String> = rows.current.iter().map(|h| h.trim().to_owned()).collect();
        while header.last().is_some_and(String::is_empty) {
            header.pop();
        }
        let mut preamble = BOM.to_vec();
        preamble.extend_from_slice(&csv_line(&header)?);
        preamble.extend_from_slice(b"\r\n");
        Ok(Self { workbook, sheet, header, header_row: rows.row, preamble, file_sha256, name })
    }
}

/// Serialises one row as CSV (quoting only where needed), without a terminator.
fn csv_line(fields: &[String]) -> Result<Vec<u8>> {
    let internal = |e: &dyn std::fmt::Display| {
        Error::new(crate::error::Kind::Other, "internal", format!("cannot write a CSV row: {e}"))
    };
    let mut w =
        csv::WriterBuilder::new().terminator(csv::Terminator::Any(b'\n')).flexible(true).from_writer(Vec::new());
    w.write_record(fields).map_err(|e| internal(&e))?;
    let mut line = w.into_inner().map_err(|e| internal(&e))?;
    if line.last() == Some(&b'\n') {
        line.pop();
    }
    Ok(line)
}

/// A cell as text: whole numbers without ".0", dates as ISO dates.
fn cell_text(v: &DataRef<'_>) -> String {
    match v {
        DataRef::Int(i) => i.to_string(),
        DataRef::Float(f) if f.fract() == 0.0 && f.abs() < 1e15 => format!("{}", *f as i64),
        DataRef::Float(f) => f.to_string(),
        DataRef::String(s) => s.clone(),
        DataRef::SharedString(s) => (*s).to_owned(),
        DataRef::Bool(b) => if *b { "TRUE" } else { "FALSE" }.to_owned(),
        DataRef::DateTime(dt) if dt.is_datetime() => {
            let (y, mo, d, h, mi, s, ms) = dt.to_ymd_hms_milli();
            if (h, mi, s, ms) == (0, 0, 0, 0) {
                format!("{y:04}-{mo:02}-{d:02}")
            } else {
                format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}")
            }
        }
        DataRef::DateTime(dt) => dt.as_f64().to_string(),
        DataRef::DateTimeIso(s) | DataRef::DurationIso(s) => s.clone(),
        DataRef::Error(e) => e.to_string(),
        DataRef::Empty => String::new(),
    }
}

impl RowSource for XlsxSource {
    fn header(&self) -> &[String] {
        &self.header
    }
    fn preamble(&self) -> &[u8] {
        &self.preamble
    }
    fn terminator(&self) -> &'static [u8] {
        b"\r\n"
    }
    fn rows(&mut self, column: usize, each: &mut dyn FnMut(Row<'_>) -> Result<()>) -> Result<()> {
        let width = self.header.len();
        let mut cells = self
            .workbook
            .worksheet_cells_reader(&self.sheet)
            .map_err(|e| Error::input("bad_workbook", format!("{}: {e}", self.name)))?;
        let mut rows = RowAssembler::default();
        while rows.next(&mut cells, &self.name)? {
            if rows.row <= self.header_row {
                continue;
            }
            if rows.current.len() < width {
                rows.current.resize(width, String::new());
            }
            let line = csv_line(&rows.current)?;
            let value = rows.current.get(column).map_or("", String::as_str);
            each(Row { value: Cow::Borrowed(value), body: &line, number: u64::from(rows.row) + 1 })?;
        }
        Ok(())
    }
    fn input_sha256(&mut self) -> Result<[u8; 32]> {
        Ok(self.file_sha256)
    }
}

/// SHA-256 of a whole file, streamed.
pub fn hash_file(path: &Path) -> Result<[u8; 32]> {
    let mut file = File::open(path).map_err(|e| Error::io(format!("cannot open {}", path.display()), e))?;
    let mut hasher = Sha256::new();
    io::copy(&mut file, &mut hasher).map_err(|e| Error::io(format!("cannot read {}", path.display()), e))?;
    Ok(hasher.finalize().into())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Header, preamble + "|" + terminator, and (value, body) per row.
    type Parsed = (Vec<String>, Vec<u8>, Vec<(String, Vec<u8>)>);

    fn rows_of(input: &[u8], column: usize) -> Parsed {
        rows_read(input, column, true)
    }

    fn rows_read(input: &[u8], column: usize, quick: bool) -> Parsed {
        let mut src = CsvSource::new(input, Path::new("t.csv"), indicatif::ProgressBar::hidden()).unwrap();
        src.quick = quick;
        let mut got = Vec::new();
        src.rows(column, &mut |r| {
            got.push((r.value.into_owned(), r.body.to_vec()));
            Ok(())
        })
        .unwrap();
        let hash = src.input_sha256().unwrap();
        assert_eq!(hash.to_vec(), Sha256::digest(input).to_vec(), "the hash covers the whole file");
        let mut preamble = src.preamble().to_vec();
        preamble.extend_from_slice(b"|");
        preamble.extend_from_slice(src.terminator());
        (src.header().to_vec(), preamble, got)
    }

    #[test]
    fn rows_pass_through_verbatim_with_quotes_newlines_bom_and_crlf() {
        let input = "\u{feff}id,name,home\r\n1,\"Smith, Jo\",Islington\r\n\r\n2,\"two\r\nlines \"\"q\"\"\",\"Hackney\"\r\n,,\r\n3,Zoë,\r\n4,short\r\n5,last,Camden";
        let (header, preamble, rows) = rows_of(input.as_bytes(), 2);
        assert_eq!(header, ["id", "name", "home"]);
        assert_eq!(preamble, "\u{feff}id,name,home\r\n|\r\n".as_bytes());
        let got: Vec<(String, String)> = rows.into_iter().map(|(v, b)| (v, String::from_utf8(b).unwrap())).collect();
        let want = [
            ("Islington", "1,\"Smith, Jo\",Islington"),
            ("Hackney", "2,\"two\r\nlines \"\"q\"\"\",\"Hackney\""),
            ("", "3,Zoë,"),
            ("", "4,short"),
            ("Camden", "5,last,Camden"),
        ];
        assert_eq!(got, want.map(|(a, b)| (a.to_owned(), b.to_owned())));
    }

    #[test]
    fn lf_files_and_rows_longer_than_the_read_buffer() {
        let long = "x".repeat(READ_CHUNK * 3);
        let input = format!("a,b\n1,{long}\n2,y\n");
        let (_, preamble, rows) = rows_of(input.as_bytes(), 0);
        assert_eq!(preamble, b"a,b\n|\n");
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[0].1.len(), long.len() + 2);
        assert_eq!(rows[1], ("2".to_owned(), b"2,y".to_vec()));
    }

    #[test]
    fn empty_input_and_columns_are_explained() {
        let err = CsvSource::new(&b""[..], Path::new("t.csv"), indicatif::ProgressBar::hidden()).err().unwrap();
        assert_eq!(err.code, "empty_input");
        let header = ["pupil_ref".to_owned(), "Home LA".to_owned()];
        assert_eq!(find_column(&header, "Home LA", Path::new("t")).unwrap(), 1);
        assert_eq!(find_column(&header, "home_la", Path::new("t")).unwrap(), 1);
        assert_eq!(find_column(&header, "school", Path::new("t")).unwrap_err().code, "no_such_column");
        let twice = ["home la".to_owned(), "Home-LA".to_owned()];
        assert_eq!(find_column(&twice, "homela", Path::new("t")).unwrap_err().code, "ambiguous_column");
        assert_eq!(Format::of(Path::new("a.XLSX")).unwrap(), Format::Xlsx);
        assert_eq!(Format::of(Path::new("a.xls")).unwrap_err().code, "unsupported_format");
    }

    /// A reader that hands out a few bytes at a time, so records straddle
    /// the buffer's refills.
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
    fn quote_free_rows_are_read_exactly_as_csv_core_reads_them() {
        use rand::{Rng as _, SeedableRng as _};
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(7);
        // Bytes that matter to CSV, and some that do not.
        let alphabet: &[&str] = &["a", "b", ",", ",", "\"", "\r", "\n", "\r\n", " ", "\t", "é", "x,y", "\n\n"];
        for case in 0..3000 {
            let mut input = String::from(if case % 5 == 0 { "\u{feff}id,name,home\r\n" } else { "id,name,home\n" });
            for _ in 0..rng.gen_range(0..40) {
                input.push_str(alphabet[rng.gen_range(0..alphabet.len())]);
            }
            let column = rng.gen_range(0..4);
            let quick = rows_read(input.as_bytes(), column, true);
            let core = rows_read(input.as_bytes(), column, false);
            assert_eq!(quick, core, "input {input:?}, column {column}");
            // And the same when the input arrives a few bytes at a time.
            let mut src =
                CsvSource::new(Trickle(input.as_bytes(), 3), Path::new("t.csv"), indicatif::ProgressBar::hidden())
                    .unwrap_or_else(|e| panic!("{input:?}: {e:?}"));
            let mut got = Vec::new();
            src.rows(column, &mut |r| {
                got.push((r.value.into_owned(), r.body.to_vec()));
                Ok(())
            })
            .unwrap();
            assert_eq!(got, core.2, "input {input:?} read 3 bytes at a time");
        }
    }
}
