//! `sealdrop audit`: what an information-governance officer runs. `export`
//! downloads the whole log (entries as C2SP entry bundles, the signed
//! checkpoint with its cosignatures, every directory version) into one
//! self-contained bundle; `verify` checks a bundle offline (or the hub's log,
//! through a temporary bundle, so both paths run the same checks).

use std::collections::BTreeMap;
use std::fs::File;
use std::io::BufWriter;
use std::path::Path;

use serde::Serialize;

use sealdrop_log::audit::{AuditReport, verify};
use sealdrop_log::bundle::{BundleMeta, BundleReader, BundleWriter};
use sealdrop_log::entry::{HubStatement, LogEntry};
use sealdrop_log::tiles::{TilePath, decode_entry_bundle};
use sealdrop_proto::directory::SignedDirectory;
use sealdrop_proto::keys::NoteVerifierKey;
use sealdrop_proto::note::peek_doc;

use crate::context::Settings;
use crate::error::{Error, ErrorCode, Result};

fn io_err(what: &str) -> impl Fn(std::io::Error) -> Error + '_ {
    move |e| Error::io(what, e)
}

/// Downloads the hub's whole log into a bundle at `out` (atomically; an
/// existing `out` is refused unless `force`, see [`crate::audit::output`]).
/// Returns the number of entries. Every read is signed with the member or
/// witness key configured (see [`Settings::hub_as_reader`]).
pub fn export(settings: &Settings, out: &Path, force: bool) -> Result<u64> {
    crate::audit::output::check_free("-o", out, force)?;
    let hub = settings.hub_as_reader()?;
    let authority = settings.authority()?;
    let directory = settings.trusted_directory(&hub)?;
    let info = hub.info()?;
    let log_key = crate::logcheck::log_key(&settings.state_dir, &directory.directory, &info)?;
    // The checkpoint this client verifies as consistent with its history is the one exported.
    let checkpoint = crate::logcheck::check(&settings.state_dir, &hub, &log_key, settings.clock.now())?;
    let served = hub.checkpoint()?.note;
    // Keep the cosignatures the hub serves when it is the same checkpoint.
    let checkpoint_note = match sealdrop_log::checkpoint::open(&served, &log_key) {
        Ok(cp) if cp.size == checkpoint.size && cp.root == checkpoint.root => served,
        _ => checkpoint.note.clone(),
    };

    let dir = out.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let tmp = tempfile::Builder::new()
        .prefix(".sealdrop-bundle-")
        .tempfile_in(dir)
        .map_err(io_err("cannot create the bundle file"))?;
    let meta = BundleMeta::new(log_key.clone(), authority, checkpoint_note);
    let mut writer = BundleWriter::new(BufWriter::new(tmp.as_file().try_clone().map_err(io_err("bundle"))?), &meta)
        .map_err(io_err("bundle"))?;
    let mut serials = Vec::new();
    for tile in TilePath::entry_bundles(checkpoint.size) {
        let bytes = hub.log_tile(&tile.path())?;
        let entries = decode_entry_bundle(&bytes).map_err(|e| {
            Error::new(
                ErrorCode::LogBadTile,
                format!(
                    "the hub served a malformed {}: {e}; report it to the hub operator, nothing was exported",
                    tile.path()
                ),
            )
        })?;
        if entries.len() != tile.width() as usize {
            return Err(Error::new(
                ErrorCode::LogBadTile,
                format!(
                    "the hub's {} holds {} entries, not {}; report it to the hub operator, nothing was exported",
                    tile.path(),
                    entries.len(),
                    tile.width()
                ),
            ));
        }
        for e in entries {
            if let Ok(LogEntry::Hub { statement }) = LogEntry::from_bytes(&e)
                && let Ok(HubStatement::DirectoryPublished { serial, .. }) = peek_doc::<HubStatement>(&statement)
            {
                serials.push(serial);
            }
            writer.add_entry(&e).map_err(io_err("bundle"))?;
        }
    }
    for serial in serials {
        let note = hub.directory_at(serial)?;
        writer.add_directory(serial, &note).map_err(io_err("bundle"))?;
    }
    let entries = writer.entries();
    let mut file = writer.finish().map_err(io_err("bundle"))?;
    std::io::Write::flush(&mut file).map_err(io_err("bundle"))?;
    drop(file);
    tmp.as_file().sync_all().map_err(io_err("bundle"))?;
    let tmp = tmp.into_temp_path();
    crate::audit::output::write_via("-o", out, force, |path| {
        std::fs::rename(&tmp, path).map_err(|e| Error::io(format!("cannot write {}", out.display()), e))
    })?;
    Ok(entries)
}

/// The outcome of `audit verify`, for people and for `--json`.
#[derive(Debug, Serialize)]
pub struct Verdict {
    /// Whether every check passed.
    pub verified: bool,
    /// The log's origin.
    pub origin: String,
    /// The log key's fingerprint.
    pub log_key_fingerprint: String,
    /// Whether the log key is vouched for by the signed directory.
    pub log_key_vouched: bool,
    /// Entries checked.
    pub entries: u64,
    /// Directory versions checked.
    pub directory_versions: u64,
    /// Drops committed.
    pub drops_committed: u64,
    /// Fetch events.
    pub fetches: u64,
    /// Acknowledgements.
    pub acknowledgements: u64,
    /// Recalls by senders.
    pub recalls: u64,
    /// Deletions of ciphertext, by reason.
    pub deleted: Deletions,
    /// Signatures checked.
    pub signatures_checked: u64,
    /// Parties whose witnesses cosigned the checkpoint.
    pub witnesses: Vec<String>,
    /// Failures, each naming the entry and the reason.
    pub failures: Vec<String>,
    /// Entries signed with a key that a later directory revokes from before
    /// them (a stolen key's use before its revocation was published): not
    /// failures, but they count for nothing, and say what the key did.
    pub used_after_revocation: Vec<String>,
}

/// How many drops the hub deleted for each reason, in `audit verify --json`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Deletions {
    /// Every recipient acknowledged.
    pub delivered: u64,
    /// The drop expired first.
    pub expired: u64,
    /// The sender recalled it.
    pub recalled: u64,
    /// Its agreement ended first.
    pub agreement_ended: u64,
}

/// Verifies a bundle file against the pinned authority key.
pub fn verify_bundle(
    settings: &Settings,
    path: &Path,
    required_witnesses: usize,
    log_key: Option<&str>,
) -> Result<Verdict> {
    let authority = settings.authority()?;
    let file = File::open(path).map_err(|e| {
        Error::new(ErrorCode::BundleUnreadable, format!("cannot open {}: {e}; check the path", path.display()))
    })?;
    let mut reader = BundleReader::open(std::io::BufReader::new(file)).map_err(|e| {
        Error::new(
            ErrorCode::BundleInvalid,
            format!(
                "{} is not a valid audit bundle: {e}; export it again with `sealdrop audit export` (and copy it whole)",
                path.display()
            ),
        )
    })?;
    let meta = reader.meta().clone();
    if meta.authority != authority {
        return Err(Error::new(
            ErrorCode::BundleWrongAuthority,
            format!(
                "the bundle was made for authority {} but you pinned {}; nothing was checked: pin the authority of the bundle's agreement with --authority, or export a bundle from your own hub",
                meta.authority, authority
            ),
        ));
    }
    // The log key: the newest directory that lists the hub vouches for it; else an explicit --log-key must match.
    let listed = newest_listing(reader.directories(), &authority);
    let vouched = match (&listed, log_key) {
        (Some(k), _) if *k == meta.log_key => true,
        (Some(k), _) => {
            return Err(Error::new(
                ErrorCode::BundleWrongLogKey,
                format!(
                    "the bundle's log key {} is not the one the signed directory lists ({k}); the bundle is not from the hub the directory names: do not rely on it, and report it to the coordinator",
                    meta.log_key
                ),
            ));
        }
        (None, Some(given)) => {
            let given: NoteVerifierKey = crate::context::parse_authority(given)?;
            if given != meta.log_key {
                return Err(Error::new(
                    ErrorCode::BundleWrongLogKey,
                    format!(
                        "the bundle's log key {} is not --log-key {given}; check --log-key against `sealdrop-hub verifier-key` on the hub",
                        meta.log_key
                    ),
                ));
            }
            true
        }
        (None, None) => false,
    };
    let report = verify(reader.audit_input(required_witnesses));
    Ok(verdict(&meta, &report, vouched))
}

fn newest_listing(directories: &BTreeMap<u64, String>, authority: &NoteVerifierKey) -> Option<NoteVerifierKey> {
    directories
        .values()
        .rev()
        .find_map(|note| SignedDirectory::verify(note, authority).ok().and_then(|d| d.directory.hub.map(|h| h.log_key)))
}

fn verdict(meta: &BundleMeta, r: &AuditReport, vouched: bool) -> Verdict {
    let mut failures: Vec<String> = r
        .failures
        .iter()
        .map(|f| match f.index {
            Some(i) => format!("entry {i}: {}", f.reason),
            None => f.reason.clone(),
        })
        .collect();
    if r.failures_omitted > 0 {
        failures.push(format!("... and {} more failures", r.failures_omitted));
    }
    Verdict {
        verified: r.ok(),
        origin: r.origin.clone(),
        log_key_fingerprint: meta.log_key.fingerprint(),
        log_key_vouched: vouched,
        entries: r.entries,
        directory_versions: r.directory_versions,
        drops_committed: r.drops_committed,
        fetches: r.fetches,
        acknowledgements: r.acknowledgements,
        recalls: r.recalls,
        deleted: Deletions {
            delivered: r.deleted.delivered,
            expired: r.deleted.expired,
            recalled: r.deleted.recalled,
            agreement_ended: r.deleted.agreement_ended,
        },
        signatures_checked: r.signatures_checked,
        witnesses: r.witnesses.iter().map(ToString::to_string).collect(),
        failures,
        used_after_revocation: r.used_after_revocation.iter().map(ToString::to_string).collect(),
    }
}

/// Verifies the hub's log: exports it to a temporary bundle, then verifies that.
pub fn verify_hub(settings: &Settings, required_witnesses: usize, log_key: Option<&str>) -> Result<Verdict> {
    let tmp = tempfile::Builder::new().prefix("sealdrop-audit-").tempdir().map_err(io_err("temporary folder"))?;
    let path = tmp.path().join("log.bundle");
    export(settings, &path, false)?;
    verify_bundle(settings, &path, required_witnesses, log_key)
}

/// Prints a verdict; a failed audit is an error (exit 4). With `strict`, a
/// verified log with warnings is one too (`audit_warnings`, exit 7), after
/// the verdict is printed.
pub fn report_verdict(v: &Verdict, json: bool, strict: bool, out: &mut dyn std::io::Write) -> Result<()> {
    let w = |out: &mut dyn std::io::Write, s: String| writeln!(out, "{s}").map_err(io_err("stdout"));
    if json {
        w(out, serde_json::to_string_pretty(v).map_err(|e| Error::new(ErrorCode::Internal, e.to_string()))?)?;
    } else {
        let warnings = match v.used_after_revocation.len() {
            0 => String::new(),
            1 => ", with 1 warning".to_owned(),
            n => format!(", with {n} warnings"),
        };
        w(out, format!("audit of log {}: {}{warnings}", v.origin, if v.verified { "VERIFIED" } else { "FAILED" }))?;
        w(
            out,
            format!(
                "  log key {}{}",
                v.log_key_fingerprint,
                if v.log_key_vouched {
                    " (listed in the signed directory)"
                } else {
                    " (NOT vouched for by the directory: compare this fingerprint with the coordinator)"
                }
            ),
        )?;
        w(
            out,
            format!(
                "  {} entries; {} directory versions; {} signatures checked",
                v.entries, v.directory_versions, v.signatures_checked
            ),
        )?;
        w(
            out,
            format!(
                "  drops committed {}, fetches {}, acknowledgements {}, recalls {}; \
                 deleted: {} delivered, {} expired, {} recalled, {} agreement ended",
                v.drops_committed,
                v.fetches,
                v.acknowledgements,
                v.recalls,
                v.deleted.delivered,
                v.deleted.expired,
                v.deleted.recalled,
                v.deleted.agreement_ended
            ),
        )?;
        w(
            out,
            format!("  witnesses: {}", if v.witnesses.is_empty() { "none".to_owned() } else { v.witnesses.join(", ") }),
        )?;
        if !v.used_after_revocation.is_empty() {
            w(out, crate::audit::warnings::heading(v.used_after_revocation.len()))?;
        }
        for u in &v.used_after_revocation {
            w(out, format!("  AFTER REVOCATION {u}"))?;
        }
        for f in &v.failures {
            w(out, format!("  FAIL {f}"))?;
        }
    }
    if v.verified && strict && !v.used_after_revocation.is_empty() {
        return Err(crate::audit::warnings::strict_error(&v.origin, &v.used_after_revocation));
    }
    if v.verified {
        Ok(())
    } else {
        Err(Error::new(
            ErrorCode::AuditFailed,
            format!(
                "the log of {} failed {} check(s); the first: {}. Keep the bundle or the output as evidence and report it to the coordinator",
                v.origin,
                v.failures.len(),
                v.failures.first().map(String::as_str).unwrap_or("?")
            ),
        ))
    }
}

/// What `audit report` needs besides the log.
#[derive(Debug, Clone)]
pub struct ReportRequest {
    /// An exported bundle, or `None` for the hub's log.
    pub bundle: Option<std::path::PathBuf>,
    /// Only drops under this agreement.
    pub agreement: Option<String>,
    /// Only drops committed since this time.
    pub since: Option<jiff::Timestamp>,
    /// Only drops committed before this time (exclusive).
    pub until: Option<jiff::Timestamp>,
    /// Replace existing --csv and --html files.
    pub force: bool,
    /// Where to write the CSV.
    pub csv: Option<std::path::PathBuf>,
    /// Where to write the HTML.
    pub html: Option<std::path::PathBuf>,
    /// The hub's log key when the directory does not list the hub.
    pub log_key: Option<String>,
    /// The rows go to stdout as JSON Lines (the caller prints them).
    pub json: bool,
}

/// Verifies the log, then writes the IG report. A log that fails the audit
/// gets no report: figures from an unverified log would mislead.
pub fn report(settings: &Settings, req: &ReportRequest) -> Result<(Verdict, super::audit::report::Report)> {
    if req.csv.is_none() && req.html.is_none() && !req.json {
        return Err(Error::new(
            ErrorCode::NoOutput,
            "say where the report goes: --csv FILE, --html FILE and/or --json (rows on stdout)",
        ));
    }
    if let (Some(s), Some(u)) = (req.since, req.until)
        && u <= s
    {
        return Err(Error::new(
            ErrorCode::BadDate,
            format!("--until {u} is not after --since {s}: the period would be empty; give an --until after --since"),
        ));
    }
    for (flag, path) in [("--csv", &req.csv), ("--html", &req.html)] {
        if let Some(p) = path {
            crate::audit::output::check_free(flag, p, req.force)?;
        }
    }
    let tmp = tempfile::Builder::new().prefix("sealdrop-audit-").tempdir().map_err(io_err("temporary folder"))?;
    let path = match &req.bundle {
        Some(p) => p.clone(),
        None => {
            let p = tmp.path().join("log.bundle");
            export(settings, &p, false)?;
            p
        }
    };
    let verdict = verify_bundle(settings, &path, 0, req.log_key.as_deref())?;
    if !verdict.verified {
        return Err(Error::new(
            ErrorCode::AuditFailed,
            format!(
                "the log failed the audit ({}); no report was written: run `sealdrop audit verify` for every failure and report them to the coordinator",
                verdict.failures.first().map(String::as_str).unwrap_or("?")
            ),
        ));
    }
    let authority = settings.authority()?;
    let file = File::open(&path).map_err(|e| {
        Error::new(ErrorCode::BundleUnreadable, format!("cannot open {}: {e}; check the path", path.display()))
    })?;
    let mut reader = BundleReader::open(std::io::BufReader::new(file)).map_err(|e| {
        Error::new(
            ErrorCode::BundleInvalid,
            format!("{}: {e}; export it again with `sealdrop audit export`", path.display()),
        )
    })?;
    let directories = reader
        .directories()
        .values()
        .map(|note| {
            SignedDirectory::verify(note, &authority).map_err(|e| crate::trust::directory_error(e, "the bundle"))
        })
        .collect::<Result<Vec<_>>>()?;
    let meta = reader.meta().clone();
    let checkpoint = sealdrop_log::checkpoint::open(&meta.checkpoint, &meta.log_key).map_err(|e| {
        Error::new(
            ErrorCode::LogBadCheckpoint,
            format!("the bundle's checkpoint does not verify with its log key: {e}; do not rely on this bundle"),
        )
    })?;
    let entries = reader
        .entries()
        .enumerate()
        .filter_map(|(i, e)| e.ok().and_then(|bytes| LogEntry::from_bytes(&bytes).ok()).map(|entry| (i as u64, entry)));
    let mut built = super::audit::report::build(super::audit::report::ReportInput {
        entries: Box::new(entries),
        directories,
        origin: checkpoint.origin.clone(),
        checkpoint_size: checkpoint.size,
        agreement: req.agreement.clone(),
        since: req.since,
        until: req.until,
        generated_at: settings.clock.now(),
    });
    built.used_after_revocation = verdict.used_after_revocation.clone();
    if let Some(csv) = &req.csv {
        crate::audit::output::write_via("--csv", csv, req.force, |p| super::audit::report::write_csv(&built, p))?;
    }
    if let Some(html) = &req.html {
        crate::audit::output::write_via("--html", html, req.force, |p| super::audit::report::write_html(&built, p))?;
    }
    Ok((verdict, built))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(failures: Vec<String>) -> Verdict {
        Verdict {
            verified: failures.is_empty(),
            origin: "hub.example/log".into(),
            log_key_fingerprint: "SHA256:abc".into(),
            log_key_vouched: true,
            entries: 12,
            directory_versions: 2,
            drops_committed: 4,
            fetches: 3,
            acknowledgements: 2,
            recalls: 1,
            deleted: Deletions { delivered: 1, expired: 1, recalled: 1, agreement_ended: 1 },
            signatures_checked: 20,
            witnesses: vec!["camden".into()],
            failures,
            used_after_revocation: vec![],
        }
    }

    #[test]
    fn verdicts_count_recalls_and_agreement_endings() {
        let mut out = Vec::new();
        report_verdict(&sample(vec![]), false, false, &mut out).unwrap();
        let text = String::from_utf8(out).unwrap();
        assert!(text.contains("audit of log hub.example/log: VERIFIED"), "{text}");
        assert!(
            text.contains(
                "  drops committed 4, fetches 3, acknowledgements 2, recalls 1; \
                 deleted: 1 delivered, 1 expired, 1 recalled, 1 agreement ended\n"
            ),
            "{text}"
        );

        let mut out = Vec::new();
        report_verdict(&sample(vec![]), true, false, &mut out).unwrap();
        let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(v["recalls"], 1);
        assert_eq!(
            v["deleted"],
            serde_json::json!({"delivered": 1, "expired": 1, "recalled": 1, "agreement_ended": 1})
        );

        let mut out = Vec::new();
        let failed =
            vec!["entry 7: drop d-x is deleted as recalled, but the sender's recall is not the entry before".into()];
        let err = report_verdict(&sample(failed), false, false, &mut out).unwrap_err();
        assert!(err.to_string().contains("entry 7: drop d-x is deleted as recalled"), "{err}");
        assert!(String::from_utf8(out).unwrap().contains("  FAIL entry 7: "));
    }

    #[test]
    fn uses_of_a_key_after_its_revocation_are_shown_but_do_not_fail_the_verdict() {
        let mut v = sample(vec![]);
        v.used_after_revocation = vec!["entry 9: a fetch request signed at 2026-11-20T10:00:00Z with camden/data-team's key, which directory 3 revokes from 2026-11-20T09:00:00Z: it counts for nothing, and whoever used the key may not have been its owner".into()];
        let mut out = Vec::new();
        report_verdict(&v, false, false, &mut out).unwrap();
        let text = String::from_utf8(out).unwrap();
        assert!(text.contains("VERIFIED") && text.contains("  AFTER REVOCATION entry 9: a fetch request"), "{text}");
        let mut out = Vec::new();
        report_verdict(&v, true, false, &mut out).unwrap();
        let json: serde_json::Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(json["used_after_revocation"][0].as_str().unwrap(), v.used_after_revocation[0]);
    }
}
