//! Merging the CSV parts of a split spreadsheet into one file
//! (`sealdrop fetch --merge-csv OUT.csv`).
//!
//! A sending borough splits one spreadsheet by home borough and sends each
//! borough its rows as `<stem>-<recipient>.csv`; a receiving borough gets such
//! parts from several boroughs and wants one file. [`crate::fetch::csv_parts`] lists the
//! `.csv` files (any case) that one fetch run extracted, in a deterministic
//! order, and [`merge_csv_parts`] combines them into one file with an added last
//! column, [`SOURCE_COLUMN`], holding the sending party of each row's drop.
//!
//! Rules:
//! - Every part must have the same header row: fields compare exactly, after
//!   a UTF-8 byte order mark at the start of the file is set aside. A header
//!   that already has a `source_party` column is refused.
//! - Rows are streamed one at a time (never a whole part in memory). Blank
//!   lines are skipped; a row with a different number of fields from the
//!   header, or that is not UTF-8, is refused with its file and line.
//! - The output is UTF-8 with LF line ends, quoted only where needed; it
//!   starts with a byte order mark when any part did (so Excel opens it as
//!   UTF-8 whichever part happened to come first). Line ends inside quoted
//!   fields are kept as they were.
//! - Cells a spreadsheet would run as formulas (`=`, `+`, `-`, `@`, tab or
//!   CR first, except plain numbers; see [`crate::formulas`]) are written
//!   with a leading `'`, unless [`Formulas::Keep`] (`--keep-formulas`). The
//!   received files themselves are never changed.
//! - All header rows are checked before anything is written; the output is
//!   written (0600: it holds the records) to a temporary file beside it and
//!   linked into place only when every row was good, never replacing an
//!   existing file, so nothing (a drop's file included) can stand in for
//!   it. On any error nothing is written.

use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use serde::Serialize;

use sealdrop_proto::ids::{DropId, PartyId};

use crate::error::{Error, ErrorCode, Result};
use crate::names::{shown, shown_path};

/// The column added to the merged file: the sending party of each row's drop.
pub const SOURCE_COLUMN: &str = "source_party";

/// The UTF-8 byte order mark.
const BOM: &[u8] = b"\xef\xbb\xbf";

/// One CSV file to merge and the drop it came in.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Part {
    /// The file.
    pub path: PathBuf,
    /// The drop it was extracted from.
    pub drop: DropId,
    /// The drop's sender: the value of [`SOURCE_COLUMN`] for its rows.
    pub from: PartyId,
}

impl Part {
    fn describe(&self) -> String {
        format!("{} (drop {} from {})", shown_path(&self.path), self.drop, self.from)
    }
}

/// What a merge wrote.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct MergeOutcome {
    /// The merged file.
    pub path: PathBuf,
    /// Data rows written (the header row not counted).
    pub rows: u64,
    /// Parts merged.
    pub parts: usize,
    /// The sending parties, each once, in the order their parts were merged.
    pub parties: Vec<PartyId>,
    /// Whether the merged file starts with a UTF-8 byte order mark.
    pub bom: bool,
    /// Cells written with a leading `'` because a spreadsheet would have
    /// run them as formulas (0 with [`Formulas::Keep`]).
    pub neutralised: u64,
}

/// What a merge does with cells a spreadsheet would run as formulas.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Formulas {
    /// Write them with a leading `'` (the default).
    Neutralise,
    /// Write them as sent (`--keep-formulas`).
    Keep,
}

/// Whether `path` has a `.csv` extension, in any case.
pub fn is_csv(path: &Path) -> bool {
    path.extension().is_some_and(|e| e.eq_ignore_ascii_case("csv"))
}

/// Refuses an output path that already exists (call before fetching, so
/// nothing is fetched when the merge could not be written).
pub fn check_output_free(out: &Path) -> Result<()> {
    if out.symlink_metadata().is_ok() { Err(output_exists(out)) } else { Ok(()) }
}

/// Refuses, before anything is fetched, a `--merge-csv` output that exists
/// while `waiting` drops are about to be fetched, suggesting a dated name
/// (`fsm-all-2026-12-01.csv`) for a merge run every day.
pub fn check_output_free_for(out: &Path, waiting: usize, now: jiff::Timestamp) -> Result<()> {
    if out.symlink_metadata().is_err() {
        return Ok(());
    }
    let stem = out.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
    let ext = out.extension().map(|e| format!(".{}", e.to_string_lossy())).unwrap_or_default();
    let dated = out.with_file_name(format!("{stem}-{}{ext}", now.strftime("%Y-%m-%d")));
    let drops = if waiting == 1 { "1 drop is".to_owned() } else { format!("{waiting} drops are") };
    Err(Error::new(
        ErrorCode::OutputExists,
        format!(
            "{} already exists and {drops} waiting; nothing was fetched: give the merge a new file, e.g. --merge-csv {}, or move the old one away",
            shown_path(out),
            shown_path(&dated)
        ),
    ))
}

fn output_exists(out: &Path) -> Error {
    Error::new(
        ErrorCode::OutputExists,
        format!("{} already exists; choose another name for --merge-csv or move it away first", shown_path(out)),
    )
}

/// Adds the `.csv` files at or under `path` to `out`, in sorted path order,
/// skipping hidden names and symbolic links.
pub(crate) fn collect_csv(path: &Path, out: &mut Vec<PathBuf>) -> Result<()> {
    if path.file_name().is_some_and(|n| n.as_encoded_bytes().starts_with(b".")) {
        return Ok(());
    }
    let meta = path.symlink_metadata().map_err(|e| Error::io(format!("cannot read {}", shown_path(path)), e))?;
    if meta.is_dir() {
        let mut children = std::fs::read_dir(path)
            .and_then(|entries| entries.map(|e| e.map(|e| e.path())).collect::<io::Result<Vec<_>>>())
            .map_err(|e| Error::io(format!("cannot read folder {}", shown_path(path)), e))?;
        children.sort();
        for child in children {
            collect_csv(&child, out)?;
        }
    } else if meta.is_file() && is_csv(path) {
        out.push(path.to_owned());
    }
    Ok(())
}

/// Merges `parts` into the new file `out` (see the module docs for the rules).
/// Returns `None`, writing nothing, when there are no parts.
///
/// Error codes: `output_exists`, `merge_headers_differ`, `merge_column_exists`,
/// `merge_bad_row`, `merge_not_utf8`, `io`. On any error nothing is written.
pub fn merge_csv_parts(parts: &[Part], out: &Path, formulas: Formulas) -> Result<Option<MergeOutcome>> {
    let Some(first) = parts.first() else {
        return Ok(None);
    };
    check_output_free(out)?;

    // Check every header row before writing anything.
    let mut reader = PartReader::open(first)?;
    let header = reader.header()?;
    let mut bom = reader.bom;
    drop(reader);
    if let Some(i) = header.iter().position(|f| f == SOURCE_COLUMN.as_bytes()) {
        return Err(Error::new(
            ErrorCode::MergeColumnExists,
            format!(
                "{} already has a `{SOURCE_COLUMN}` column (column {}), so the sending party cannot be added; nothing was merged",
                first.describe(),
                i + 1
            ),
        ));
    }
    for part in &parts[1..] {
        let mut reader = PartReader::open(part)?;
        let other = reader.header()?;
        bom |= reader.bom;
        if other != header {
            return Err(headers_differ(first, &header, part, &other));
        }
    }

    let dir = match out.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    std::fs::create_dir_all(dir).map_err(|e| Error::io(format!("cannot create folder {}", shown_path(dir)), e))?;
    let mut tmp = tempfile::Builder::new()
        .prefix(".sealdrop-tmp-")
        .permissions(std::os::unix::fs::PermissionsExt::from_mode(0o600))
        .tempfile_in(dir)
        .map_err(|e| Error::io(format!("cannot write in {}", shown_path(dir)), e))?;
    let write_err = |e: io::Error| Error::io(format!("cannot write {}", shown_path(out)), e);
    if bom {
        tmp.write_all(BOM).map_err(write_err)?;
    }
    let mut rows = 0u64;
    let mut parties: Vec<PartyId> = Vec::new();
    let mut neutralised = 0u64;
    {
        let mut writer = csv::WriterBuilder::new().terminator(csv::Terminator::Any(b'\n')).from_writer(&mut tmp);
        let mut scratch = csv::ByteRecord::new();
        let mut put_row = |writer: &mut csv::Writer<_>, record: &csv::ByteRecord| {
            write_row(writer, record, formulas, &mut scratch).map_err(|e| csv_write_err(out, e))
        };
        let mut record = header.clone();
        record.push_field(SOURCE_COLUMN.as_bytes());
        neutralised += put_row(&mut writer, &record)?;
        for part in parts {
            let mut reader = PartReader::open(part)?;
            // Checked above; checked again in case the file changed meanwhile.
            let again = reader.header()?;
            if again != header {
                return Err(headers_differ(first, &header, part, &again));
            }
            while reader.next(&mut record)? {
                record.push_field(part.from.as_str().as_bytes());
                neutralised += put_row(&mut writer, &record)?;
                rows += 1;
            }
            if !parties.contains(&part.from) {
                parties.push(part.from.clone());
            }
        }
        writer.flush().map_err(write_err)?;
    }
    tmp.as_file().sync_all().map_err(write_err)?;
    tmp.persist_noclobber(out).map_err(|e| {
        if e.error.kind() == io::ErrorKind::AlreadyExists { output_exists(out) } else { write_err(e.error) }
    })?;
    Ok(Some(MergeOutcome { path: out.to_owned(), rows, parts: parts.len(), parties, bom, neutralised }))
}

/// Writes `record`, its cells a spreadsheet would run as formulas with a
/// leading `'` unless `formulas` keeps them (`scratch` holds the changed
/// row); returns how many cells were changed.
fn write_row<W: Write>(
    writer: &mut csv::Writer<W>,
    record: &csv::ByteRecord,
    formulas: Formulas,
    scratch: &mut csv::ByteRecord,
) -> csv::Result<u64> {
    if formulas == Formulas::Keep {
        return writer.write_byte_record(record).map(|()| 0);
    }
    scratch.clear();
    let mut changed = 0;
    for cell in record {
        let cell = crate::formulas::neutralised(cell);
        changed += u64::from(matches!(cell, std::borrow::Cow::Owned(_)));
        scratch.push_field(&cell);
    }
    writer.write_byte_record(scratch).map(|()| changed)
}

/// Reads one part's records, streaming.
struct PartReader<'a> {
    part: &'a Part,
    reader: csv::Reader<File>,
    /// Whether the file started with a byte order mark (set aside before
    /// the CSV reader, whose byte offsets are therefore 3 short).
    bom: bool,
    header_len: usize,
}

impl<'a> PartReader<'a> {
    /// Opens a part, setting aside a UTF-8 byte order mark at its start.
    fn open(part: &'a Part) -> Result<Self> {
        let read_err = |e: io::Error| Error::io(format!("cannot read {}", part.describe()), e);
        let mut file = File::open(&part.path).map_err(read_err)?;
        let mut start = [0u8; 3];
        let mut n = 0;
        while n < start.len() {
            match file.read(&mut start[n..]) {
                Ok(0) => break,
                Ok(k) => n += k,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(read_err(e)),
            }
        }
        let bom = start[..n] == *BOM;
        if !bom {
            file.seek(SeekFrom::Start(0)).map_err(read_err)?;
        }
        let reader = csv::ReaderBuilder::new().has_headers(true).flexible(false).from_reader(file);
        Ok(Self { part, reader, bom, header_len: 0 })
    }

    /// The header row, which must exist and be UTF-8.
    fn header(&mut self) -> Result<csv::ByteRecord> {
        let header = match self.reader.byte_headers() {
            Ok(h) => h.clone(),
            Err(e) => return Err(self.error(e)),
        };
        if header.is_empty() {
            return Err(Error::new(
                ErrorCode::MergeHeadersDiffer,
                format!("{} is empty: it has no header row; nothing was merged", self.part.describe()),
            ));
        }
        if header.iter().any(|f| std::str::from_utf8(f).is_err()) {
            return Err(self.not_utf8(&header));
        }
        self.header_len = header.len();
        Ok(header)
    }

    /// The next data row into `record`, which must be as wide as the header
    /// and UTF-8; `false` at the end.
    fn next(&mut self, record: &mut csv::ByteRecord) -> Result<bool> {
        if !self.reader.read_byte_record(record).map_err(|e| self.error(e))? {
            return Ok(false);
        }
        if record.iter().any(|f| std::str::from_utf8(f).is_err()) {
            return Err(self.not_utf8(record));
        }
        Ok(true)
    }

    /// The line where the record at `pos` starts. csv's own line and byte
    /// counts lag on CRLF files (the LF of each CRLF is counted with the next
    /// record), so count the file's line feeds up to the record's first byte.
    fn line(&self, pos: Option<&csv::Position>) -> String {
        let Some(pos) = pos else {
            return "?".to_owned();
        };
        let offset = pos.byte() + if self.bom { BOM.len() as u64 } else { 0 };
        line_at(&self.part.path, offset).map_or_else(|_| pos.line().to_string(), |l| l.to_string())
    }

    fn not_utf8(&self, record: &csv::ByteRecord) -> Error {
        Error::new(
            ErrorCode::MergeNotUtf8,
            format!(
                "{} line {} is not UTF-8 text (the sender probably saved it as Windows-1252, Excel's plain \"CSV\"): \
                 nothing was merged, the fetched files are kept as they are; ask the sender to send it again as UTF-8 \
                 (`sealdrop send --encoding windows-1252` converts it)",
                self.part.describe(),
                self.line(record.position())
            ),
        )
    }

    fn error(&self, e: csv::Error) -> Error {
        match e.into_kind() {
            csv::ErrorKind::UnequalLengths { pos, len, .. } => Error::new(
                ErrorCode::MergeBadRow,
                format!(
                    "{} line {}: the row has {len} field(s) where the header has {}; nothing was merged",
                    self.part.describe(),
                    self.line(pos.as_ref()),
                    self.header_len
                ),
            ),
            csv::ErrorKind::Io(e) => Error::io(format!("cannot read {}", self.part.describe()), e),
            other => {
                Error::new(ErrorCode::MergeBadRow, format!("{}: {other:?}; nothing was merged", self.part.describe()))
            }
        }
    }
}

/// 1 + the number of line feeds before byte `offset` of the file and the
/// line ends (skipped blank lines) that directly follow it.
fn line_at(path: &Path, offset: u64) -> io::Result<u64> {
    let mut file = io::BufReader::new(File::open(path)?);
    let mut line = 1u64;
    let mut buf = [0u8; 8192];
    let mut before = (&mut file).take(offset);
    loop {
        let n = before.read(&mut buf)?;
        if n == 0 {
            break;
        }
        line += buf[..n].iter().filter(|&&b| b == b'\n').count() as u64;
    }
    for b in file.bytes() {
        match b? {
            b'\n' => line += 1,
            b'\r' => {}
            _ => break,
        }
    }
    Ok(line)
}

fn headers_differ(first: &Part, want: &csv::ByteRecord, part: &Part, got: &csv::ByteRecord) -> Error {
    let text = |f: &[u8]| shown(&String::from_utf8_lossy(f));
    let detail = match want.iter().zip(got.iter()).position(|(a, b)| a != b) {
        Some(i) => format!("column {} is \"{}\" where it is \"{}\" in", i + 1, text(&got[i]), text(&want[i])),
        None => format!("it has {} columns where there are {} in", got.len(), want.len()),
    };
    Error::new(
        ErrorCode::MergeHeadersDiffer,
        format!(
            "{} has a different header row: {detail} {}; nothing was merged",
            part.describe(),
            shown_path(&first.path)
        ),
    )
}

fn csv_write_err(out: &Path, e: csv::Error) -> Error {
    match e.into_kind() {
        csv::ErrorKind::Io(e) => Error::io(format!("cannot write {}", shown_path(out)), e),
        other => Error::io(format!("cannot write {}", shown_path(out)), io::Error::other(format!("{other:?}"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::Kind;
    use crate::fetch::{FetchOutcome, csv_parts};

    struct Fixture {
        dir: tempfile::TempDir,
    }

    impl Fixture {
        fn new() -> Self {
            Self { dir: tempfile::tempdir().unwrap() }
        }
        fn part(&self, name: &str, from: &str, content: &[u8]) -> Part {
            let path = self.dir.path().join(name);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(&path, content).unwrap();
            Part { path, drop: DropId::random(), from: from.parse().unwrap() }
        }
        fn out(&self) -> PathBuf {
            self.dir.path().join("merged.csv")
        }
        /// Names in the fixture folder, to check that no temporary file was left.
        fn names(&self) -> Vec<String> {
            let mut v: Vec<String> = std::fs::read_dir(self.dir.path())
                .unwrap()
                .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .collect();
            v.sort();
            v
        }
    }

    fn merged(f: &Fixture, parts: &[Part]) -> (MergeOutcome, String) {
        let outcome = merge_csv_parts(parts, &f.out(), Formulas::Neutralise).unwrap().expect("some parts");
        (outcome, std::fs::read_to_string(f.out()).unwrap())
    }

    fn refused(f: &Fixture, parts: &[Part], code: &str) -> Error {
        let before = f.names();
        let err = merge_csv_parts(parts, &f.out(), Formulas::Neutralise).unwrap_err();
        assert_eq!(err.code, code, "{err}");
        assert!(!err.message.contains('\n'), "the message is not one line: {err}");
        assert!(!f.out().exists(), "the output was written despite {err}");
        assert_eq!(f.names(), before, "a temporary file was left behind");
        err
    }

    #[test]
    fn bom_crlf_quotes_newlines_and_accents() {
        let f = Fixture::new();
        let a = f.part(
            "pupils-islington.csv",
            "camden",
            "\u{feff}upn,name,notes\r\nA1,\"Smith, Zoë\",\"said \"\"hi\"\"\"\r\nA2,Renée,\"two\r\nlines\"\r\n"
                .as_bytes(),
        );
        let b = f.part("pupils-islington-2.CSV", "hackney", "upn,name,notes\nB1,Łukasz,\"x,y\"\nB2,,\n".as_bytes());
        let (outcome, text) = merged(&f, &[a, b]);
        assert_eq!(
            text,
            "\u{feff}upn,name,notes,source_party\n\
             A1,\"Smith, Zoë\",\"said \"\"hi\"\"\",camden\n\
             A2,Renée,\"two\r\nlines\",camden\n\
             B1,Łukasz,\"x,y\",hackney\n\
             B2,,,hackney\n"
        );
        assert_eq!(outcome.rows, 4);
        assert_eq!(outcome.parts, 2);
        assert!(outcome.bom);
        assert_eq!(outcome.parties, ["camden".parse().unwrap(), "hackney".parse::<PartyId>().unwrap()]);
        assert_eq!(outcome.path, f.out());
    }

    #[test]
    fn a_bom_in_a_later_part_is_kept_once_and_does_not_change_its_header() {
        let f = Fixture::new();
        let a = f.part("a.csv", "camden", b"upn,fsm\nA1,1\n");
        let b = f.part("b.csv", "hackney", b"\xef\xbb\xbfupn,fsm\r\nB1,0\r\n");
        let c = f.part("c.csv", "hackney", b"\xef\xbb\xbfupn,fsm\nC1,1\n");
        let (outcome, text) = merged(&f, &[a.clone(), b, c]);
        assert_eq!(text, "\u{feff}upn,fsm,source_party\nA1,1,camden\nB1,0,hackney\nC1,1,hackney\n");
        assert!(outcome.bom);

        // Without any mark, none is added.
        std::fs::remove_file(f.out()).unwrap();
        let d = f.part("d.csv", "hackney", b"upn,fsm\r\nD1,0\r\n");
        let (outcome, text) = merged(&f, &[a, d]);
        assert_eq!(text, "upn,fsm,source_party\nA1,1,camden\nD1,0,hackney\n");
        assert!(!outcome.bom);
    }

    #[test]
    fn blank_lines_are_skipped_and_header_only_parts_count() {
        let f = Fixture::new();
        let a = f.part("a.csv", "camden", b"upn,fsm\r\n\r\nA1,1\r\n\r\n\r\nA2,0\r\n\r\n");
        let b = f.part("b.csv", "hackney", b"upn,fsm\n");
        let c = f.part("c.csv", "camden", b"upn,fsm\n\nC1,1");
        let (outcome, text) = merged(&f, &[a, b, c]);
        assert_eq!(text, "upn,fsm,source_party\nA1,1,camden\nA2,0,camden\nC1,1,camden\n");
        assert_eq!((outcome.rows, outcome.parts), (3, 3));
        assert_eq!(outcome.parties.len(), 2);
    }

    #[test]
    fn different_headers_are_refused_naming_the_file_and_drop() {
        let f = Fixture::new();
        let a = f.part("a.csv", "camden", b"upn,fsm\nA1,1\n");
        let b = f.part("b.csv", "hackney", b"upn,fsm\nB1,1\n");
        let c = f.part("c.csv", "haringey", b"upn,FSM\nC1,1\n");
        let err = refused(&f, &[a, b, c.clone()], "merge_headers_differ");
        assert!(err.message.contains("c.csv") && err.message.contains(c.drop.as_str()), "{err}");
        assert!(err.message.contains("column 2 is \"FSM\""), "{err}");
        assert_eq!(err.kind, Kind::Input);

        let d = f.part("d.csv", "camden", b"upn,fsm,extra\n");
        let first = f.part("e.csv", "camden", b"upn,fsm\n");
        let err = refused(&f, &[first, d], "merge_headers_differ");
        assert!(err.message.contains("3 columns where there are 2"), "{err}");

        let empty = f.part("empty.csv", "camden", b"");
        let first = f.part("f.csv", "camden", b"upn\n");
        refused(&f, &[first, empty], "merge_headers_differ");
    }

    #[test]
    fn an_existing_source_party_column_is_refused() {
        let f = Fixture::new();
        let a = f.part("a.csv", "camden", b"\xef\xbb\xbfupn,source_party\nA1,x\n");
        let err = refused(&f, &[a], "merge_column_exists");
        assert!(err.message.contains("a.csv"), "{err}");
    }

    #[test]
    fn a_row_of_the_wrong_width_is_refused_with_its_line() {
        let f = Fixture::new();
        let a = f.part("a.csv", "camden", b"upn,fsm\nA1,1\n");
        // Line 4 starts the bad row: the quoted field on line 2 spans two lines.
        let b = f.part("b.csv", "hackney", b"upn,fsm\r\nB1,\"1\r\n2\"\r\nB2,1,extra\r\n");
        let err = refused(&f, &[a, b], "merge_bad_row");
        assert!(err.message.contains("b.csv") && err.message.contains("line 4"), "{err}");
        assert!(err.message.contains("3 field(s) where the header has 2"), "{err}");

        // The same with LF line ends, and a short row after a byte order mark and blank CRLF lines.
        for (content, line, fields) in [
            (&b"upn,fsm\nB1,\"1\n2\"\nB2,1,extra\n"[..], 4, 3),
            (b"\xef\xbb\xbfupn,fsm\r\n\r\nB1,1\r\n\r\nB2\r\n", 5, 1),
            (b"\xef\xbb\xbfupn,fsm\n\"B1\nx\",1\n\n\n\"B2\",\"\r\n\",3\r\n", 6, 3),
        ] {
            let c = f.part("c.csv", "hackney", content);
            let err = refused(&f, &[c], "merge_bad_row");
            assert!(err.message.contains(&format!("line {line}: the row has {fields} field(s)")), "{err}");
        }
    }

    #[test]
    fn text_that_is_not_utf8_is_refused() {
        let f = Fixture::new();
        let a = f.part("a.csv", "camden", b"upn,name\nA1,Ren\xe9e\n");
        let err = refused(&f, &[a], "merge_not_utf8");
        assert!(err.message.contains("line 2"), "{err}");
        // Advice a recipient can follow: the fix is the sender's.
        assert!(err.message.contains("ask the sender to send it again as UTF-8"), "{err}");
        assert!(!err.message.contains("save it as"), "{err}");
        let b = f.part("b.csv", "camden", b"upn,name\r\nA1,x\r\nA2,Ren\xe9e\r\n");
        let err = refused(&f, &[b], "merge_not_utf8");
        assert!(err.message.contains("line 3"), "{err}");
        let c = f.part("c.csv", "camden", b"upn,n\xe4me\nA1,x\n");
        let err = refused(&f, &[c], "merge_not_utf8");
        assert!(err.message.contains("line 1"), "{err}");
    }

    #[test]
    fn no_parts_writes_nothing_and_an_existing_output_is_kept() {
        let f = Fixture::new();
        assert_eq!(merge_csv_parts(&[], &f.out(), Formulas::Neutralise).unwrap(), None);
        assert!(!f.out().exists());

        let a = f.part("a.csv", "camden", b"upn\nA1\n");
        std::fs::write(f.out(), b"keep me").unwrap();
        let err = merge_csv_parts(&[a], &f.out(), Formulas::Neutralise).unwrap_err();
        assert_eq!(err.code, "output_exists");
        assert_eq!(std::fs::read(f.out()).unwrap(), b"keep me");
        assert_eq!(check_output_free(&f.out()).unwrap_err().code, "output_exists");
    }

    #[test]
    fn parts_are_the_csv_files_each_fetch_extracted_in_sorted_order() {
        let f = Fixture::new();
        let dest = f.dir.path();
        for rel in [
            "reports/b/z.csv",
            "reports/b/a.Csv",
            "reports/a.csv",
            "reports/notes.txt",
            "reports/._a.csv",
            "top.CSV",
            "readme.txt",
            "other.csv",
        ] {
            f.part(rel, "camden", b"x\n");
        }
        let outcome = |from: &str, names: &[&str]| FetchOutcome {
            id: DropId::random(),
            from: from.parse().unwrap(),
            agreement: "a".into(),
            files: 0,
            bytes: 0,
            names: names.iter().map(|n| (*n).to_owned()).collect(),
            dest: dest.to_owned(),
            ciphertext_deleted: true,
            receipt: PathBuf::new(),
            formulas: Vec::new(),
        };
        let outcomes = [outcome("hackney", &["top.CSV", "reports", "readme.txt"]), outcome("camden", &["other.csv"])];
        let parts = csv_parts(&outcomes).unwrap();
        let got: Vec<(String, &str)> =
            parts.iter().map(|p| (p.path.strip_prefix(dest).unwrap().display().to_string(), p.from.as_str())).collect();
        assert_eq!(
            got,
            [
                ("reports/a.csv".to_owned(), "hackney"),
                ("reports/b/a.Csv".to_owned(), "hackney"),
                ("reports/b/z.csv".to_owned(), "hackney"),
                ("top.CSV".to_owned(), "hackney"),
                ("other.csv".to_owned(), "camden"),
            ]
        );
        assert_eq!(parts[0].drop, outcomes[0].id);
        assert_eq!(parts[4].drop, outcomes[1].id);
    }

    #[test]
    fn formula_cells_are_neutralised_unless_kept_and_the_parts_stay_as_sent() {
        let f = Fixture::new();
        let content = b"upn,note\nA1,\"=HYPERLINK(\"\"http://x\"\")\"\nA2,-3\nA3,@SUM(1)\n=cmd,+44 1\n";
        let a = f.part("a.csv", "camden", content);
        let (outcome, text) = merged(&f, std::slice::from_ref(&a));
        assert_eq!(
            text,
            "upn,note,source_party\n\
             A1,\"'=HYPERLINK(\"\"http://x\"\")\",camden\n\
             A2,-3,camden\n\
             A3,'@SUM(1),camden\n\
             '=cmd,'+44 1,camden\n"
        );
        assert_eq!(outcome.neutralised, 4);
        assert_eq!(std::fs::read(&a.path).unwrap(), content, "the received file is changed");
        {
            use std::os::unix::fs::PermissionsExt as _;
            assert_eq!(std::fs::metadata(f.out()).unwrap().permissions().mode() & 0o777, 0o600);
        }
        std::fs::remove_file(f.out()).unwrap();
        let kept = merge_csv_parts(std::slice::from_ref(&a), &f.out(), Formulas::Keep).unwrap().unwrap();
        assert_eq!(kept.neutralised, 0);
        let text = std::fs::read_to_string(f.out()).unwrap();
        assert!(text.contains("A1,\"=HYPERLINK(") && text.contains("=cmd,+44 1,camden"), "{text}");
    }
}
