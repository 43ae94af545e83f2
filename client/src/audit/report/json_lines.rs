//! The report's rows as JSON Lines for `audit report --json`.

use std::io::Write as _;

use jiff::Timestamp;

use super::csv_file::CSV_HEADER;
use super::model::{DeliveryRow, Report, reason_word};

/// One (drop, recipient) row as a JSON object for `audit report --json`:
/// the CSV's columns ([`CSV_HEADER`]) by the same names and with the same
/// values, numbers as numbers and empty cells as `null`.
pub fn row_json(r: &DeliveryRow<'_>) -> serde_json::Value {
    let time = |t: Option<Timestamp>| t.map(|t| t.to_string());
    let values = [
        serde_json::json!(r.drop),
        serde_json::json!(r.agreement),
        serde_json::json!(r.sender.as_str()),
        serde_json::json!(r.recipient.as_str()),
        serde_json::json!(r.ciphertext_bytes),
        serde_json::json!(r.committed.to_string()),
        serde_json::json!(time(r.fetched)),
        serde_json::json!(time(r.acknowledged)),
        // Two decimals, as in the CSV.
        serde_json::json!(r.hours_to_acknowledge.map(|h| (h * 100.0).round() / 100.0)),
        serde_json::json!(r.outcome.as_str()),
        serde_json::json!(time(r.deleted.map(|d| d.0))),
        serde_json::json!(r.deleted.map(|d| reason_word(d.1))),
        serde_json::json!(r.recalled_by),
        serde_json::json!(r.outcome.delivery()),
        serde_json::json!(r.manifest_key.map(|k| &k.name)),
        serde_json::json!(r.manifest_key.map(|k| &k.fingerprint)),
        serde_json::json!(r.receipt_key.map(|k| &k.name)),
        serde_json::json!(r.receipt_key.map(|k| &k.fingerprint)),
        serde_json::json!(r.encryption.as_str()),
    ];
    serde_json::Value::Object(CSV_HEADER.iter().map(|k| (*k).to_owned()).zip(values).collect())
}

/// Writes every row as JSON Lines ([`row_json`], one object per line): a
/// large log makes many rows, which a reader can then take one at a time.
pub fn write_json_lines(report: &Report, out: &mut dyn std::io::Write) -> std::io::Result<()> {
    let mut out = std::io::BufWriter::new(out);
    for r in report.rows() {
        serde_json::to_writer(&mut out, &row_json(&r))?;
        out.write_all(b"\n")?;
    }
    out.flush()
}

#[cfg(test)]
mod tests {
    use super::super::fixture::*;
    use super::super::{NOT_DELIVERED, build, write_csv};
    use super::*;

    #[test]
    fn json_rows_carry_the_csv_columns_and_values() {
        let (f, _) = fixture();
        let r = build(f.input(None, None));
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("report.csv");
        write_csv(&r, &path).unwrap();
        let csv_rows: Vec<csv::StringRecord> =
            csv::Reader::from_path(&path).unwrap().records().map(Result::unwrap).collect();
        let mut out = Vec::new();
        write_json_lines(&r, &mut out).unwrap();
        let text = String::from_utf8(out).unwrap();
        let json_rows: Vec<serde_json::Value> = text.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
        assert_eq!(json_rows.len(), 7, "one line per drop and recipient");
        assert_eq!(json_rows.len(), csv_rows.len());
        for (j, c) in json_rows.iter().zip(&csv_rows) {
            let obj = j.as_object().unwrap();
            assert_eq!(obj.len(), CSV_HEADER.len(), "{j}");
            for (i, column) in CSV_HEADER.iter().enumerate() {
                let cell = match &obj[*column] {
                    serde_json::Value::Null => String::new(),
                    serde_json::Value::String(s) => s.clone(),
                    serde_json::Value::Number(n) if *column == "hours_to_acknowledge" => {
                        format!("{:.2}", n.as_f64().unwrap())
                    }
                    other => other.to_string(),
                };
                assert_eq!(cell, c[i], "column {column} of {j}");
            }
        }
        assert!(json_rows.iter().any(|j| j["ciphertext_bytes"].is_u64() && j["hours_to_acknowledge"].is_f64()));
        assert!(json_rows.iter().any(|j| j["acknowledged"].is_null() && j["delivery"] == NOT_DELIVERED));
    }
}
