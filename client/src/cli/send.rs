//! `sealdrop send`: one drop of files and folders, or with --split-by one
//! spreadsheet split into a drop per party (plan, show, confirm, send).

use std::io::Write;
use std::path::PathBuf;

use clap::Args;

use super::{json_text, print};
use crate::context::Settings;
use crate::error::{Error, ErrorCode, Result};
use crate::fsutil::human_bytes;
use crate::send::{self, SendRequest};
use crate::split::{self, PartStatus, SplitRequest};

// `sealdrop send`; its help is the command's in the table in cli/mod.rs.
#[derive(Debug, Args)]
pub(super) struct SendArgs {
    /// Recipient parties (id, name, GSS code or LA number), comma-separated.
    #[arg(long, value_delimiter = ',', required_unless_present = "split_by", conflicts_with = "split_by")]
    to: Vec<String>,
    /// Split one .csv or .xlsx file by this column (its header text).
    #[arg(long, value_name = "COLUMN")]
    split_by: Option<String>,
    /// The workbook sheet to split (default: the first sheet).
    #[arg(long, value_name = "NAME", requires = "split_by")]
    sheet: Option<String>,
    /// Show where every row would go, then stop without sending.
    #[arg(long, requires = "split_by")]
    dry_run: bool,
    /// Send without asking (check the summary with --dry-run first).
    #[arg(long, short = 'y', requires = "split_by")]
    yes: bool,
    /// Send the routable rows even when some rows match no party (those are never sent).
    #[arg(long, requires = "split_by")]
    allow_unroutable: bool,
    /// Send a file named here even if it is empty (0 bytes), or a drop with no data.
    #[arg(long, conflicts_with = "split_by")]
    allow_empty: bool,
    /// Send even if your own party is among the recipients (to your colleagues' keys).
    #[arg(long, conflicts_with = "split_by")]
    allow_own_party: bool,
    /// The encoding of a CSV that is not UTF-8, e.g. windows-1252 (Excel's
    /// plain "CSV"); it is sent converted to UTF-8. Without it such a CSV is refused.
    #[arg(long, value_name = "LABEL")]
    encoding: Option<String>,
    /// The sharing agreement (may be omitted when exactly one applies).
    #[arg(long)]
    agreement: Option<String>,
    /// How long the drop may wait for its recipients, e.g. 36h or 2d (default 5d).
    #[arg(long)]
    expires: Option<String>,
    /// Print a JSON object instead of the drop id.
    #[arg(long)]
    json: bool,
    /// Files and folders to send.
    #[arg(required = true)]
    paths: Vec<PathBuf>,
}

impl SendArgs {
    pub(super) fn run(self, settings: &Settings, out: &mut dyn Write) -> Result<()> {
        let SendArgs {
            to,
            split_by,
            sheet,
            dry_run,
            yes,
            allow_unroutable,
            allow_empty,
            allow_own_party,
            encoding,
            agreement,
            expires,
            json,
            paths,
        } = self;
        if let Some(column) = split_by {
            let [input] = <[PathBuf; 1]>::try_from(paths).map_err(|_| {
                Error::new(ErrorCode::SplitOneFile, "--split-by splits exactly one .csv or .xlsx file; give just one")
            })?;
            let encoding = encoding.as_deref().map(crate::encoding::parse_label).transpose()?;
            if let Some(e) = encoding {
                eprintln!("reading {} as {}: the parts are sent converted to UTF-8", input.display(), e.name());
            }
            let req = SplitRequest { input, column, sheet, agreement, expires, allow_unroutable, encoding };
            crate::interrupt::install("split")?;
            return split_send(settings, &req, SplitMode { dry_run, yes, json }, out);
        }
        crate::interrupt::install("send")?;
        let allow = crate::preflight::Allow { empty: allow_empty, own_party: allow_own_party };
        let outcome = send::send(settings, &SendRequest { to, agreement, expires, paths, allow, encoding });
        // After Ctrl-C, the interrupt handler has the last word.
        crate::interrupt::settle();
        let outcome = outcome?;
        if json {
            print(out, &json_text(&outcome, false)?)
        } else {
            eprintln!(
                "sent {} file(s), {} encrypted, to {} under `{}`; expires {}",
                outcome.files,
                human_bytes(outcome.size),
                outcome.recipients.iter().map(|p| p.as_str()).collect::<Vec<_>>().join(", "),
                outcome.agreement,
                outcome.expires
            );
            print(out, outcome.id.as_str())
        }
    }
}

/// How `send --split-by` was asked to behave.
#[derive(Clone, Copy, Debug)]
struct SplitMode {
    dry_run: bool,
    yes: bool,
    json: bool,
}

/// `send --split-by`: plan, show, confirm, send, report.
fn split_send(settings: &Settings, req: &SplitRequest, mode: SplitMode, out: &mut dyn Write) -> Result<()> {
    use std::io::IsTerminal;
    let session = settings.session()?;
    let plan = split::plan(settings, &session, req)?;
    let summary = split::render_summary(&plan, &session.directory.directory);
    if mode.json {
        eprint!("{summary}");
    } else {
        write!(out, "{summary}").map_err(|e| Error::io("cannot write to stdout", e))?;
    }
    let json_out = |out: &mut dyn Write, value: serde_json::Value| {
        writeln!(out, "{}", serde_json::to_string_pretty(&value).unwrap_or_default())
            .map_err(|e| Error::io("cannot write to stdout", e))
    };
    if let Some(e) = plan.refusal() {
        if mode.json {
            json_out(out, serde_json::json!({"plan": plan, "sent": false}))?;
        }
        return Err(e.clone());
    }
    let pending = plan.to_send().count();
    if mode.dry_run || pending == 0 {
        if mode.json {
            json_out(out, serde_json::json!({"plan": plan, "sent": false}))?;
        }
        eprintln!(
            "{}",
            if mode.dry_run { "dry run: nothing was sent" } else { "every part was already sent; nothing to do" }
        );
        return Ok(());
    }
    if !mode.yes {
        if !std::io::stdin().is_terminal() {
            return Err(Error::new(
                ErrorCode::ConfirmationRequired,
                "not sending without confirmation: run this in a terminal to confirm, or add --yes once the summary (see --dry-run) is right",
            ));
        }
        eprint!("Send {pending} drop(s) as shown above? Type yes to send: ");
        let mut answer = String::new();
        std::io::stdin().read_line(&mut answer).map_err(|e| Error::io("cannot read the answer", e))?;
        if !matches!(answer.trim().to_ascii_lowercase().as_str(), "y" | "yes") {
            return Err(Error::new(
                ErrorCode::Cancelled,
                "cancelled: nothing was sent; run the same command again and type yes when the summary is right",
            ));
        }
    }
    let outcome = split::send(settings, &session, &plan, req);
    // After Ctrl-C, the interrupt handler has the last word.
    crate::interrupt::settle();
    let outcome = outcome?;
    for ((party, status), part) in outcome.parts.iter().zip(&plan.parts) {
        let line = match status {
            PartStatus::Sent { drop, .. } => {
                format!("sent {drop} to {} ({party}): {} rows", part.name, split::group_digits(part.rows))
            }
            PartStatus::AlreadySent { drop, committed } => {
                format!("already sent {drop} to {} ({party}) at {committed}; not sent again", part.name)
            }
            PartStatus::Failed { code, message } => format!("NOT SENT to {} ({party}): {message} [{code}]", part.name),
        };
        if mode.json {
            eprintln!("{line}");
        } else {
            writeln!(out, "{line}").map_err(|e| Error::io("cannot write to stdout", e))?;
        }
    }
    if mode.json {
        json_out(out, serde_json::json!({"plan": plan, "sent": true, "parts": outcome.parts}))?;
    }
    match outcome.failure() {
        Some(e) => Err(e),
        None => Ok(()),
    }
}
