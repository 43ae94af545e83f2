//! For information-governance officers: `audit verify` checks the signed
//! transfer log, `audit report` writes who sent what to whom from it, and
//! `audit export` bundles it for an offline machine.

use std::io::Write;
use std::path::PathBuf;

use clap::Subcommand;

use super::{parse_date, parse_since, print};
use crate::context::Settings;
use crate::error::{Error, Result};

#[derive(Debug, Subcommand)]
pub(super) enum AuditCommand {
    /// Rebuild the log's tree from every entry and check every signature and rule.
    Verify {
        /// Check an exported bundle offline instead of the hub's log.
        #[arg(long)]
        bundle: Option<PathBuf>,
        /// How many parties' witnesses must have cosigned the checkpoint.
        #[arg(long, default_value_t = 0)]
        witnesses: usize,
        /// The hub's log key (text or file), when the directory does not list the hub.
        #[arg(long)]
        log_key: Option<String>,
        /// Print the verdict as JSON.
        #[arg(long)]
        json: bool,
        /// Exit 7 (`error[audit_warnings]`) when the log verifies with warnings, e.g. an
        /// entry signed with a key revoked from before it; without it warnings are shown
        /// and the exit status is 0.
        #[arg(long)]
        strict: bool,
    },
    /// Verify the log, then write the IG report: who sent what to whom, delivery times, expiries, key changes.
    Report {
        /// Report from an exported bundle instead of the hub's log.
        #[arg(long)]
        bundle: Option<PathBuf>,
        /// Only drops under this agreement.
        #[arg(long)]
        agreement: Option<String>,
        /// Only drops committed on or after this date (YYYY-MM-DD or RFC 3339).
        #[arg(long)]
        since: Option<String>,
        /// Only drops committed before this date, exclusive (YYYY-MM-DD or RFC 3339):
        /// `--since 2026-11-01 --until 2026-12-01` is November.
        #[arg(long)]
        until: Option<String>,
        /// Replace existing --csv and --html files (otherwise refused: they are evidence).
        #[arg(long)]
        force: bool,
        /// Write one CSV row per drop and recipient here.
        #[arg(long)]
        csv: Option<PathBuf>,
        /// Write the self-contained HTML report here.
        #[arg(long)]
        html: Option<PathBuf>,
        /// The hub's log key (text or file), when the directory does not list the hub.
        #[arg(long)]
        log_key: Option<String>,
        /// Print one JSON object per drop and recipient on stdout (JSON Lines; the CSV's columns).
        #[arg(long)]
        json: bool,
    },
    /// Download the whole log into one self-contained bundle for an offline machine.
    Export {
        /// The bundle file to write (an existing one is refused unless --force).
        #[arg(short = 'o', long = "out")]
        out: PathBuf,
        /// Replace an existing bundle file.
        #[arg(long)]
        force: bool,
    },
}

impl AuditCommand {
    pub(super) fn run(self, settings: &Settings, out: &mut dyn Write) -> Result<()> {
        match self {
            AuditCommand::Verify { bundle, witnesses, log_key, json, strict } => {
                let verdict = match &bundle {
                    Some(path) => crate::audit_cmd::verify_bundle(settings, path, witnesses, log_key.as_deref())?,
                    None => crate::audit_cmd::verify_hub(settings, witnesses, log_key.as_deref())?,
                };
                crate::audit_cmd::report_verdict(&verdict, json, strict, out)
            }
            AuditCommand::Report { bundle, agreement, since, until, force, csv, html, log_key, json } => {
                let since = since.map(|s| parse_since(&s)).transpose()?;
                let until = until.map(|s| parse_date("--until", &s)).transpose()?;
                let req = crate::audit_cmd::ReportRequest {
                    bundle,
                    agreement,
                    since,
                    until,
                    force,
                    csv: csv.clone(),
                    html: html.clone(),
                    log_key,
                    json,
                };
                let (verdict, report) = crate::audit_cmd::report(settings, &req)?;
                let mut lines = vec![format!(
                    "log of {} verified ({} entries); report covers {} drops, {} of them post-quantum",
                    verdict.origin, verdict.entries, report.totals.drops, report.totals.post_quantum
                )];
                lines.extend(csv.iter().chain(html.iter()).map(|path| format!("wrote {}", path.display())));
                if !json {
                    return lines.iter().try_for_each(|l| print(out, l));
                }
                // stdout carries only the rows.
                lines.iter().for_each(|l| eprintln!("{l}"));
                crate::audit::report::write_json_lines(&report, out)
                    .map_err(|e| Error::io("cannot write the rows to stdout", e))
            }
            AuditCommand::Export { out: path, force } => {
                let n = crate::audit_cmd::export(settings, &path, force)?;
                print(
                    out,
                    &format!(
                        "exported {n} log entries, the checkpoint and every directory version to {}",
                        path.display()
                    ),
                )
            }
        }
    }
}
