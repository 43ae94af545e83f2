//! Excel input: read cell by cell with `calamine`, each row written out as CSV.

use std::fs::File;
use std::io::BufReader;
use std::path::Path;

use calamine::{DataRef, Reader as _, Xlsx, XlsxCellReader};

use super::{BOM, Row, RowSource, hash_file, is_blank};
use crate::error::{Error, ErrorCode, Result};

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
                let Some(cell) =
                    cells.next_cell().map_err(|e| Error::new(ErrorCode::BadWorkbook, format!("{name}: {e}")))?
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
            Error::new(ErrorCode::BadWorkbook, format!("{name} is not a readable .xlsx workbook: {e}"))
        };
        let mut workbook: Xlsx<BufReader<File>> = calamine::open_workbook(path).map_err(|e| bad(&e))?;
        let names = workbook.sheet_names();
        let sheet = match sheet {
            Some(s) => names.iter().find(|n| n.as_str() == s).cloned().ok_or_else(|| {
                Error::new(
                    ErrorCode::NoSuchSheet,
                    format!("{name} has no sheet {s:?}; its sheets are: {}", names.join(", ")),
                )
            })?,
            None => names.first().cloned().ok_or_else(|| bad(&"it has no sheets"))?,
        };
        let mut rows = RowAssembler::default();
        {
            let mut cells = workbook.worksheet_cells_reader(&sheet).map_err(|e| bad(&e))?;
            if !rows.next(&mut cells, &name)? {
                return Err(Error::new(
                    ErrorCode::EmptyInput,
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
    let internal = |e: &dyn std::fmt::Display| Error::new(ErrorCode::Internal, format!("cannot write a CSV row: {e}"));
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
            .map_err(|e| Error::new(ErrorCode::BadWorkbook, format!("{}: {e}", self.name)))?;
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
            each(Row { value: value.as_bytes(), body: &line, offset: None, number: u64::from(rows.row) + 1 })?;
        }
        Ok(())
    }
    fn input_sha256(&mut self) -> Result<[u8; 32]> {
        Ok(self.file_sha256)
    }
}
