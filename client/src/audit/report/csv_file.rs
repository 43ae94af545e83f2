//! The report as a CSV file: one row per (drop, recipient), for spreadsheets.

use std::io::Write as _;
use std::path::Path;

use jiff::Timestamp;

use super::model::{Report, reason_word};
use crate::error::{Error, Result};

/// Writes `path` through a temporary file in the same folder, renamed into
/// place only once everything is written.
fn write_atomic_with(path: &Path, write: impl FnOnce(&mut dyn std::io::Write) -> std::io::Result<()>) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    std::fs::create_dir_all(dir).map_err(|e| Error::io(format!("cannot create folder {}", dir.display()), e))?;
    let mut tmp = tempfile::Builder::new()
        .prefix(".sealdrop-tmp-")
        .permissions(std::fs::Permissions::from_mode(0o644))
        .tempfile_in(dir)
        .map_err(|e| Error::io(format!("cannot write in {}", dir.display()), e))?;
    let written = (|| {
        let mut out = std::io::BufWriter::new(tmp.as_file_mut());
        write(&mut out)?;
        out.flush()?;
        drop(out);
        tmp.as_file().sync_all()
    })();
    written.map_err(|e| Error::io(format!("cannot write {}", path.display()), e))?;
    tmp.persist(path).map_err(|e| Error::io(format!("cannot write {}", path.display()), e.error))?;
    Ok(())
}

/// The CSV header. The last four columns came later, so older columns keep
/// their positions: `deleted` (when the hub deleted the drop; for a recall,
/// when it was recalled), `deletion_reason` (`delivered`, `expired`,
/// `recalled`, `agreement_ended`), `recalled_by` (the sender's member key
/// that recalled it) and `delivery` ([`Outcome::delivery`](super::Outcome::delivery): `delivered`,
/// `pending`, `recalled` or `NOT DELIVERED`). The four after them came
/// later still: which key signed the manifest and which the receipt, by
/// name (`manifest_signer`, `receipt_signer`: `<party>/<member>`) and by
/// fingerprint (`manifest_key_fingerprint`, `receipt_key_fingerprint`:
/// `SHA256:...`), since a member name is reused when a lost key is replaced.
/// The last, `encryption`, says what kind of keys the drop was encrypted to
/// ([`Encryption::as_str`](super::Encryption::as_str): `post_quantum`,
/// `classic`, `plugin`, `mixed` or `unknown`).
pub const CSV_HEADER: [&str; 19] = [
    "drop_id",
    "agreement",
    "sender",
    "recipient",
    "ciphertext_bytes",
    "committed",
    "fetched",
    "acknowledged",
    "hours_to_acknowledge",
    "outcome",
    "deleted",
    "deletion_reason",
    "recalled_by",
    "delivery",
    "manifest_signer",
    "manifest_key_fingerprint",
    "receipt_signer",
    "receipt_key_fingerprint",
    "encryption",
];

/// Writes one row per (drop, recipient), atomically.
pub fn write_csv(report: &Report, path: &Path) -> Result<()> {
    write_atomic_with(path, |out| {
        let mut w = csv::Writer::from_writer(out);
        w.write_record(CSV_HEADER)?;
        let opt = |t: Option<Timestamp>| t.map(|t| t.to_string()).unwrap_or_default();
        for r in report.rows() {
            w.write_record([
                r.drop,
                r.agreement,
                r.sender.as_str(),
                r.recipient.as_str(),
                &r.ciphertext_bytes.to_string(),
                &r.committed.to_string(),
                &opt(r.fetched),
                &opt(r.acknowledged),
                &r.hours_to_acknowledge.map(|h| format!("{h:.2}")).unwrap_or_default(),
                r.outcome.as_str(),
                &opt(r.deleted.map(|d| d.0)),
                r.deleted.map_or("", |d| reason_word(d.1)),
                r.recalled_by.unwrap_or_default(),
                r.outcome.delivery(),
                r.manifest_key.map_or("", |k| k.name.as_str()),
                r.manifest_key.map_or("", |k| k.fingerprint.as_str()),
                r.receipt_key.map_or("", |k| k.name.as_str()),
                r.receipt_key.map_or("", |k| k.fingerprint.as_str()),
                r.encryption.as_str(),
            ])?;
        }
        w.flush()
    })
}

#[cfg(test)]
mod tests {
    use super::super::build;
    use super::super::fixture::*;
    use super::*;
    use sealdrop_proto::ids::DropId;

    #[test]
    fn csv_rows_round_trip() {
        let (f, ids) = fixture();
        let r = build(f.input(None, None));
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out/report.csv");
        write_csv(&r, &path).unwrap();
        let mut rd = csv::Reader::from_path(&path).unwrap();
        assert_eq!(rd.headers().unwrap().iter().collect::<Vec<_>>(), CSV_HEADER.to_vec());
        let rows: Vec<csv::StringRecord> = rd.records().map(Result::unwrap).collect();
        assert_eq!(rows.len(), 7, "one row per drop and recipient");
        let find = |drop: &DropId, to: &str| {
            rows.iter().find(|r| &r[0] == drop.as_str() && &r[3] == to).unwrap_or_else(|| panic!("{drop} {to}"))
        };
        let row = find(&ids[0], "hackney");
        assert_eq!(
            row.iter().collect::<Vec<_>>(),
            vec![
                ids[0].as_str(),
                "inner-fsm",
                "camden",
                "hackney",
                "1000",
                "2026-01-05T10:00:00Z",
                "2026-01-06T10:00:00Z",
                "2026-01-06T14:00:00Z",
                "28.00",
                "acknowledged",
                "2026-01-06T14:00:00Z",
                "delivered",
                "",
                "delivered",
                "camden/data-team",
                &f.keys["camden"].signing.verifier().fingerprint(),
                "hackney/data-team",
                &f.keys["hackney"].signing.verifier().fingerprint(),
                "classic",
            ]
        );
        let row = find(&ids[1], "camden");
        assert_eq!((&row[6], &row[7], &row[8], &row[9]), ("", "", "", "expired_undelivered"));
        assert_eq!(
            row.iter().skip(10).collect::<Vec<_>>(),
            vec![
                "2026-01-24T08:00:00Z",
                "expired",
                "",
                "NOT DELIVERED",
                "islington/data-team",
                &f.old_islington_fp,
                "",
                "",
                "post_quantum"
            ]
        );
        let row = find(&ids[2], "camden");
        assert_eq!(&row[9], "recalled");
        assert_eq!(
            row.iter().skip(10).take(4).collect::<Vec<_>>(),
            vec!["2026-01-12T10:00:00Z", "recalled", "hackney/data-team", "recalled"]
        );
        assert_eq!(
            row.iter().skip(14).collect::<Vec<_>>(),
            vec!["hackney/data-team", &f.keys["hackney"].signing.verifier().fingerprint(), "", "", "post_quantum"]
        );
        assert_eq!(&find(&ids[3], "islington")[8], "6.00");
        // The last column: D4 went to Islington's new post-quantum key, D6 to its old classic one.
        assert_eq!((&find(&ids[3], "islington")[18], &find(&ids[5], "islington")[18]), ("post_quantum", "classic"));
        let row = find(&ids[4], "camden");
        assert_eq!((&row[6], &row[9]), ("2026-02-10T10:00:00Z", "waiting"));
        assert_eq!(row.iter().skip(10).take(4).collect::<Vec<_>>(), vec!["", "", "", "pending"]);
        assert_eq!(&row[15], &f.new_islington_fp, "D5 is signed after the key was replaced");
        // No temporary files left behind.
        assert_eq!(std::fs::read_dir(path.parent().unwrap()).unwrap().count(), 1);
    }
}
