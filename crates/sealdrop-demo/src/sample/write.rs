//! Writing a generated list to a new `.csv` or `.xlsx` file, streaming.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::Path;

use sealdrop::error::{Error, ErrorCode, Result};

use super::{FSM_HEADER, FsmOptions, FsmRecord, FsmRows, FsmSummary, XLSX_MAX_ROWS, bad_option, fsm_rows, thousands};

/// Output formats, by extension.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Format {
    Csv,
    Xlsx,
}

pub(super) fn format_of(out: &Path) -> Result<Format> {
    match out.extension().and_then(|e| e.to_str()).map(str::to_ascii_lowercase).as_deref() {
        Some("csv") => Ok(Format::Csv),
        Some("xlsx") => Ok(Format::Xlsx),
        _ => Err(bad_option(format!("cannot tell the format of {}: name it FILE.csv or FILE.xlsx", out.display()))),
    }
}

pub(super) fn output_exists(out: &Path) -> Error {
    Error::new(
        ErrorCode::OutputExists,
        format!("{} already exists; choose another name or remove it first", out.display()),
    )
}

/// Writes a synthetic FSM list to `out` (`.csv` or `.xlsx`, by extension),
/// streaming, via a temporary file in the same folder renamed into place at
/// the end. Refuses to replace an existing file (`output_exists`) and bad
/// options (`bad_sample_option`).
pub fn write_fsm(opts: &FsmOptions, out: &Path) -> Result<FsmSummary> {
    let format = format_of(out)?;
    if format == Format::Xlsx && opts.rows > XLSX_MAX_ROWS {
        return Err(bad_option(format!(
            "--rows {} is more than an Excel sheet holds ({}); write a .csv instead or use fewer rows",
            thousands(opts.rows),
            thousands(XLSX_MAX_ROWS)
        )));
    }
    let rows = fsm_rows(opts)?;
    if out.exists() {
        return Err(output_exists(out));
    }
    let mut summary =
        FsmSummary { rows: 0, school_la: rows.school_la().name.clone(), home_las: BTreeMap::new(), unroutable: 0 };
    let mut count = |r: &FsmRecord| {
        summary.rows += 1;
        if r.routable() {
            match summary.home_las.get_mut(&r.home_la) {
                Some(n) => *n += 1,
                None => {
                    summary.home_las.insert(r.home_la.clone(), 1);
                }
            }
        } else {
            summary.unroutable += 1;
        }
    };

    let dir = match out.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let write_err = |e: std::io::Error| Error::io(format!("cannot write {}", out.display()), e);
    let mut tmp = {
        use std::os::unix::fs::PermissionsExt;
        tempfile::Builder::new()
            .prefix(".sealdrop-tmp-")
            .permissions(std::fs::Permissions::from_mode(0o644))
            .tempfile_in(dir)
            .map_err(|e| Error::io(format!("cannot write in {}", dir.display()), e))?
    };
    match format {
        Format::Csv => write_csv(rows, tmp.as_file(), &mut count).map_err(write_err)?,
        Format::Xlsx => write_xlsx(rows, dir, tmp.as_file_mut(), &mut count)
            .map_err(|e| Error::new(ErrorCode::Io, format!("cannot write {}: {e}", out.display())))?,
    }
    tmp.as_file().sync_all().map_err(write_err)?;
    tmp.persist_noclobber(out).map_err(|e| if out.exists() { output_exists(out) } else { write_err(e.error) })?;
    Ok(summary)
}

fn write_csv(rows: FsmRows, file: &File, count: &mut impl FnMut(&FsmRecord)) -> std::io::Result<()> {
    let mut w = csv::WriterBuilder::new()
        .terminator(csv::Terminator::Any(b'\n'))
        .from_writer(BufWriter::with_capacity(1 << 16, file));
    w.write_record(FSM_HEADER)?;
    for r in rows {
        count(&r);
        w.write_record(r.fields())?;
    }
    w.into_inner().map_err(|e| e.into_error())?.flush()
}

fn write_xlsx(
    rows: FsmRows,
    tempdir: &Path,
    file: &mut File,
    count: &mut impl FnMut(&FsmRecord),
) -> std::result::Result<(), rust_xlsxwriter::XlsxError> {
    use rust_xlsxwriter::{DocProperties, ExcelDateTime, Format as CellFormat, Workbook};
    let mut wb = Workbook::new();
    // A fixed creation time keeps the output byte-identical for a seed.
    let created = ExcelDateTime::from_ymd(2026, 9, 1)?;
    wb.set_properties(
        &DocProperties::new()
            .set_title("Synthetic free school meals list")
            .set_comment("Synthetic test data made by `sealdrop sample fsm`: not real people.")
            .set_creation_datetime(&created),
    );
    // The sheet's rows are spooled to an unnamed temporary file beside the output.
    wb.set_tempdir(tempdir)?;
    let sheet = wb.add_worksheet_with_constant_memory()?;
    sheet.set_name("FSM")?;
    let widths = [14.0, 12.0, 14.0, 13.0, 40.0, 22.0, 22.0, 13.0, 12.0, 12.0, 14.0, 9.0];
    for (col, width) in (0u16..).zip(widths) {
        sheet.set_column_width(col, width)?;
    }
    sheet.set_freeze_panes(1, 0)?;
    sheet.write_row_with_format(0, 0, FSM_HEADER, &CellFormat::new().set_bold())?;
    for (row, r) in (1u32..).zip(rows) {
        count(&r);
        sheet.write_row(row, 0, r.fields())?;
    }
    let mut w = BufWriter::with_capacity(1 << 16, file);
    wb.save_to_writer(&mut w)?;
    w.flush()?;
    Ok(())
}
