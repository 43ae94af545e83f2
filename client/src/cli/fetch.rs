//! The recipient's commands: `inbox` lists what waits for the party,
//! `fetch` downloads, verifies, decrypts, places and acknowledges it (and
//! with --merge-csv combines the CSV parts), then reports each drop.

use std::io::Write;
use std::path::{Path, PathBuf};

use clap::Args;

use super::{json_text, print};
use crate::context::Settings;
use crate::error::{Error, Result};
use crate::fetch::{self, FetchOutcome, Which};
use crate::fsutil::human_bytes;
use crate::merge::{Formulas, MergeOutcome};

// `sealdrop inbox`; its help is the command's in the table in cli/mod.rs.
#[derive(Debug, Args)]
pub(super) struct InboxArgs {
    /// Print a JSON array: id, from, size, created, committed, expires, agreement (see docs/cli.md).
    #[arg(long)]
    json: bool,
}

impl InboxArgs {
    pub(super) fn run(self, settings: &Settings, out: &mut dyn Write) -> Result<()> {
        crate::inbox::run(settings, self.json, out)
    }
}

// `sealdrop fetch`; its help is the command's in the table in cli/mod.rs.
#[derive(Debug, Args)]
pub(super) struct FetchArgs {
    /// Drop ids to fetch.
    #[arg(required_unless_present = "all", conflicts_with = "all")]
    ids: Vec<String>,
    /// Fetch everything in the inbox.
    #[arg(long)]
    all: bool,
    /// Folder to put the files in (default: the current folder); a drop with
    /// a name already there goes into OUT/<drop id>/.
    #[arg(short = 'o', long = "out", default_value = ".")]
    out: PathBuf,
    /// Print a JSON array of results (with --merge-csv, an object: `drops`, `merged`).
    #[arg(long)]
    json: bool,
    /// Then merge every CSV file this run fetched into one new file, with an added
    /// last column `source_party` (the sender of each row's drop); the parts must
    /// share their header row. Cells a spreadsheet would run as formulas are
    /// written with a leading ' (the received files stay as sent).
    #[arg(long, value_name = "OUT.csv")]
    merge_csv: Option<PathBuf>,
    /// With --merge-csv: write cells that start like a spreadsheet formula
    /// (=, +, -, @, tab, CR) as sent, without the leading '.
    #[arg(long, requires = "merge_csv")]
    keep_formulas: bool,
}

impl FetchArgs {
    pub(super) fn run(self, settings: &Settings, out: &mut dyn Write) -> Result<()> {
        let FetchArgs { ids, all, out: dest, json, merge_csv, keep_formulas } = self;
        // `fetch` refuses before fetching anything when the merge
        // could not be written, and only when there is something to fetch.
        let which = if all { Which::All } else { Which::Ids(ids) };
        let run = fetch::fetch(settings, &which, &dest, merge_csv.as_deref())?;
        let nothing_fetched = run.results.is_empty();
        let mut first_err = None;
        let mut report = Vec::new();
        let mut fetched = Vec::new();
        for r in &run.skipped {
            eprintln!("{}", r.skip_note());
            report.push(
                serde_json::json!({"ok": false, "skipped": true, "drop": r.drop, "code": r.code, "message": r.message}),
            );
        }
        for r in run.results {
            match r {
                Ok(o) => {
                    if !json {
                        eprintln!(
                            "fetched {} from {}: {} file(s), {} into {} ({})",
                            o.id,
                            o.from,
                            o.files,
                            human_bytes(o.bytes),
                            crate::names::shown_path(&o.dest),
                            o.names_note()
                        );
                    }
                    for w in &o.formulas {
                        eprintln!("{}", w.describe());
                    }
                    report.push(serde_json::json!({"ok": true, "drop": o}));
                    fetched.push(o);
                }
                Err(e) => {
                    eprintln!("{e}");
                    report.push(serde_json::json!({"ok": false, "code": e.code, "message": e.message}));
                    first_err.get_or_insert(e);
                }
            }
        }
        if !json && report.is_empty() {
            eprintln!("no drops waiting");
        }
        let formulas = if keep_formulas { Formulas::Keep } else { Formulas::Neutralise };
        let merge = merge_csv.as_deref().map(|path| merge_fetched(path, &fetched, &dest, formulas, nothing_fetched));
        let merge_err = merge.as_ref().and_then(|(_, e)| e.clone());
        if json {
            let value = match &merge {
                None => serde_json::json!(report),
                Some((merged, _)) => {
                    let merged = match merged {
                        Ok(Some(m)) => serde_json::json!(m),
                        _ => serde_json::Value::Null,
                    };
                    let mut v = serde_json::json!({"drops": report, "merged": merged});
                    if let Some(e) = &merge_err {
                        v["merge_error"] = serde_json::json!({"code": e.code, "message": e.message});
                    }
                    v
                }
            };
            print(out, &json_text(&value, true)?)?;
        }
        // A failed fetch decides the exit status; then a failed merge.
        match first_err.or(merge_err) {
            // Already printed above; exit with its status without printing again.
            Some(e) => Err(Error { message: String::new(), ..e }),
            None => Ok(()),
        }
    }
}

/// `--merge-csv`: merges whatever this run fetched into `path`, even when
/// some drops failed, and says on stderr what came of it. Returns the merge's
/// outcome and, when it failed, the error (already shown) to exit with.
fn merge_fetched(
    path: &Path,
    fetched: &[FetchOutcome],
    dest: &Path,
    formulas: Formulas,
    nothing_fetched: bool,
) -> (Result<Option<MergeOutcome>>, Option<Error>) {
    let merged =
        crate::fetch::csv_parts(fetched).and_then(|parts| crate::merge::merge_csv_parts(&parts, path, formulas));
    let err = match &merged {
        Err(e) => {
            let e = Error {
                message: format!(
                    "{}; the fetched files are in place in {} (the drops were acknowledged, so a new fetch will not bring them again): fix or combine them there",
                    e.message,
                    crate::names::shown_path(dest)
                ),
                ..e.clone()
            };
            eprintln!("{e}");
            Some(e)
        }
        Ok(None) if nothing_fetched => {
            let kept = if path.symlink_metadata().is_ok() { "was left as it is" } else { "was not written" };
            eprintln!("nothing was waiting to fetch, so nothing was merged: {} {kept}", crate::names::shown_path(path));
            None
        }
        Ok(None) => {
            eprintln!("no CSV parts to merge");
            None
        }
        Ok(Some(m)) => {
            let plural = |n: u64, what: &str| format!("{n} {what}{}", if n == 1 { "" } else { "s" });
            eprintln!(
                "merged {} from {} (from {}) into {}",
                plural(m.rows, "row"),
                plural(m.parts as u64, "part"),
                m.parties.iter().map(|p| p.as_str()).collect::<Vec<_>>().join(", "),
                crate::names::shown_path(&m.path)
            );
            if m.neutralised > 0 {
                eprintln!(
                    "{} that a spreadsheet would run as a formula {} written with a leading ' (the received files are unchanged; --keep-formulas writes them as sent)",
                    plural(m.neutralised, "cell"),
                    if m.neutralised == 1 { "was" } else { "were" }
                );
            }
            None
        }
    };
    (merged, err)
}
