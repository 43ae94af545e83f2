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

mod csv;
mod xlsx;

pub use csv::{BackgroundSha256, CsvSource};
pub use xlsx::XlsxSource;

use std::fs::File;
use std::io;
use std::path::Path;

use sha2::{Digest, Sha256};

use crate::error::{Error, ErrorCode, Result};

/// The UTF-8 byte order mark Excel writes at the start of "CSV UTF-8" files.
pub const BOM: &[u8] = b"\xef\xbb\xbf";

/// One data row: the split column's value and the row as CSV without its
/// line terminator.
pub struct Row<'a> {
    /// The split column's value as it is in the file ("" when the row is
    /// shorter than the header): bytes, so looking it up needs no UTF-8
    /// conversion (see [`crate::split::route::Router::route`]).
    pub value: &'a [u8],
    /// The row's CSV bytes, without a line terminator.
    pub body: &'a [u8],
    /// Where `body` starts in the input file, when it is the file's own
    /// bytes there (a CSV read without conversion); `None` when the row was
    /// written out anew (a workbook, a converted encoding). Lets the second
    /// pass of a split slice rows out of the file without parsing it again.
    pub offset: Option<u64>,
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
    /// Waits for the checks of the whole file that run beside the reading
    /// (a CSV's UTF-8 check) and gives their verdict; `rows` ends with it.
    /// Call before reporting any other error about the file, so a file
    /// that is not UTF-8 is refused as such first.
    fn checked(&mut self) -> Result<()> {
        Ok(())
    }
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
            "xls" => Err(Error::new(
                ErrorCode::UnsupportedFormat,
                format!(
                    "{} is an old-style .xls workbook; save it as .xlsx or CSV UTF-8 and try again",
                    path.display()
                ),
            )),
            _ => Err(Error::new(
                ErrorCode::UnsupportedFormat,
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
                return Err(Error::new(
                    ErrorCode::BadOption,
                    "--sheet applies to .xlsx workbooks only, not to CSV files",
                ));
            }
            let file = File::open(path).map_err(|e| Error::io(format!("cannot open {}", path.display()), e))?;
            match encoding {
                // A file that is UTF-8 already is read as it is: decoding it
                // as Windows-1252 would garble every accented name.
                Some(encoding) if crate::encoding::check_utf8(path).is_err() => {
                    let mut source = CsvSource::new(crate::encoding::Decoding::new(file, encoding), path, progress)?;
                    // The rows are the decoded text, not the file's bytes.
                    source.verbatim = false;
                    Ok(Box::new(source))
                }
                Some(_) => Ok(Box::new(CsvSource::new(file, path, progress)?)),
                None => {
                    // A read of its own, on another thread while the rows
                    // are parsed (it took a sixth of pass one's time before
                    // it): a bad byte must stop the split before any part is
                    // planned, whichever row it is in, so `rows` ends with
                    // its verdict, and it is the error given before any other.
                    let owned = path.to_owned();
                    let check = std::thread::spawn(move || crate::encoding::check_utf8(&owned));
                    match CsvSource::new(file, path, progress) {
                        Ok(mut source) => {
                            source.utf8_check = Some(check);
                            Ok(Box::new(source))
                        }
                        Err(e) => Err(match check.join() {
                            Ok(Err(not_utf8)) => not_utf8,
                            _ => e,
                        }),
                    }
                }
            }
        }
        Format::Xlsx if encoding.is_some() => Err(Error::new(
            ErrorCode::BadOption,
            "--encoding applies to CSV files only: a .xlsx workbook is always Unicode",
        )),
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
        [] => Err(Error::new(
            ErrorCode::NoSuchColumn,
            format!(
                "{} has no column {name:?}; its columns are: {}",
                input.display(),
                header.iter().map(|h| format!("{h:?}")).collect::<Vec<_>>().join(", ")
            ),
        )),
        _ => Err(Error::new(
            ErrorCode::AmbiguousColumn,
            format!("{} has several columns like {name:?}; give the exact header text", input.display()),
        )),
    }
}

fn is_blank(field: &[u8]) -> bool {
    field.iter().all(|b| b.is_ascii_whitespace())
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
    use std::io::Read;

    use super::csv::READ_CHUNK;
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
            // Each row is the file's bytes at its offset, which the split's
            // second pass slices out without parsing.
            let at = usize::try_from(r.offset.expect("a CSV read as it is gives offsets")).unwrap();
            assert_eq!(&input[at..at + r.body.len()], r.body, "row {} at offset {at}", r.number);
            got.push((String::from_utf8_lossy(r.value).into_owned(), r.body.to_vec()));
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
                got.push((String::from_utf8_lossy(r.value).into_owned(), r.body.to_vec()));
                Ok(())
            })
            .unwrap();
            assert_eq!(got, core.2, "input {input:?} read 3 bytes at a time");
        }
    }
}
