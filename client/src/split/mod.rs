//! Routing records: one spreadsheet split into per-borough drops, each
//! encrypted only to the borough its rows belong to.
//!
//! The work happens in three steps, so that nothing leaves the machine
//! before the analyst has seen where everything goes:
//! 1. [`plan`] reads the file once: resolves every row's value through the
//!    signed directory, counts rows and bytes per recipient, keeps back the
//!    sender's own rows, writes unroutable rows to `<stem>-unroutable.csv`,
//!    hashes the input, records where each routed row is (`layout.rs`),
//!    and asks the hub which parts a previous run already delivered (by
//!    idempotency key).
//! 2. The caller shows [`Plan`] (see [`render_summary`]) and confirms.
//! 3. [`send`] reads the file again (slicing the rows out where step 1
//!    found them, or parsing it again), streaming each recipient's rows through
//!    tar, zero padding to the size class ([`crate::padding`]) and age (to
//!    that party's keys only) into a spool file, checks the file did not
//!    change since step 1, then uploads and commits the parts
//!    in parallel. A part that fails does not stop the others; the same
//!    command run again sends only what is missing.
//!
//! Memory does not grow with the number of rows: rows are streamed, and
//! each recipient holds one small buffer and one age stream.

mod encrypt;
mod layout;
pub mod rerun;
pub mod route;
mod summary;
pub mod table;
mod upload;

use std::collections::HashMap;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use jiff::Timestamp;
use serde::Serialize;

use sealdrop_proto::api::Sent;
use sealdrop_proto::directory::{Agreement, Directory};
use sealdrop_proto::ids::{DropId, PartyId};
use sealdrop_proto::policy::{self, AgreementRefusal};

use crate::context::{Session, Settings};
use crate::error::{Error, ErrorCode, Result};
use route::{Route, Router};

/// What to split and how.
#[derive(Clone, Debug, Default)]
pub struct SplitRequest {
    /// The CSV or XLSX file.
    pub input: PathBuf,
    /// The column whose value names each row's recipient.
    pub column: String,
    /// The workbook sheet (default: the first).
    pub sheet: Option<String>,
    /// The agreement; may be omitted when exactly one in force includes the sender.
    pub agreement: Option<String>,
    /// How long each drop may wait, e.g. `2d`.
    pub expires: Option<String>,
    /// Send the routable rows even when some rows cannot be routed.
    pub allow_unroutable: bool,
    /// `--encoding`: a CSV input is read from this encoding (and sent as
    /// UTF-8); `None` requires UTF-8 (see `crate::encoding`).
    pub encoding: Option<&'static encoding_rs::Encoding>,
}

/// One recipient's part.
#[derive(Clone, Debug, Serialize)]
pub struct PartPlan {
    /// The recipient.
    pub party: PartyId,
    /// Its display name from the signed directory.
    pub name: String,
    /// Data rows.
    pub rows: u64,
    /// Bytes of the CSV file the recipient will get (header included).
    pub bytes: u64,
    /// The file's name inside the drop.
    pub file_name: String,
    /// Whether the agreement covers this party.
    pub in_agreement: bool,
    /// The drop a previous run already committed for this part, if any.
    pub already_sent: Option<(DropId, Timestamp)>,
    /// Identifies this part to the hub across re-runs by the same member
    /// key (see [`rerun`]).
    #[serde(skip)]
    pub idempotency_key: String,
}

/// What a split would do, worked out before anything is sent.
#[derive(Clone, Debug, Serialize)]
pub struct Plan {
    /// The input file.
    pub input: PathBuf,
    /// The split column, as written in the header.
    pub column: String,
    /// The workbook sheet, for workbooks.
    pub sheet: Option<String>,
    /// Hex SHA-256 of the input file.
    pub input_sha256: String,
    /// Data rows read (blank rows skipped).
    pub rows: u64,
    /// The agreement the parts travel under, when one applies.
    pub agreement: Option<String>,
    /// The signed directory's serial used to resolve recipients.
    pub directory_serial: u64,
    /// One entry per recipient, largest first.
    pub parts: Vec<PartPlan>,
    /// The sender's party, whose rows stay here.
    pub own_party: PartyId,
    /// The member key (`party/member`) whose earlier runs of this split are
    /// recognised: parts another member sent are not (see [`rerun`]).
    pub reruns_recognised_for: String,
    /// Rows for the sender's own party.
    pub own_rows: u64,
    /// Rows that resolve to no party (or are empty).
    pub unroutable_rows: u64,
    /// The first few unroutable values and their counts.
    pub unroutable_values: Vec<(String, u64)>,
    /// Rows with other unroutable values.
    pub unroutable_unlisted_rows: u64,
    /// Where the unroutable rows were written.
    pub unroutable_file: Option<PathBuf>,
    /// Whether the request allows sending despite unroutable rows.
    #[serde(skip)]
    allow_unroutable: bool,
    /// Whether sending would be refused, and why.
    #[serde(skip)]
    refusal: Option<Error>,
    /// How long each drop may wait, as given.
    #[serde(skip)]
    expires: Option<String>,
    /// Where pass one found each routed row, so pass two need not parse the
    /// file again; `None` for workbooks, converted encodings and files with
    /// more rows than the record's memory bound.
    #[serde(skip)]
    layout: Option<std::sync::Arc<layout::Layout>>,
}

impl Plan {
    /// The parts that still need sending.
    pub fn to_send(&self) -> impl Iterator<Item = &PartPlan> {
        self.parts.iter().filter(|p| p.already_sent.is_none())
    }

    /// Why sending must not go ahead (bad rows, a party outside the
    /// agreement), if so. Shown after the summary.
    pub fn refusal(&self) -> Option<&Error> {
        self.refusal.as_ref()
    }
}

/// What happened to one part.
#[derive(Clone, Debug, Serialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum PartStatus {
    /// Committed now.
    Sent {
        /// The drop.
        drop: DropId,
        /// When the hub committed it.
        committed: Timestamp,
        /// The offline proof that the hub logged it.
        receipt: PathBuf,
    },
    /// A previous run already committed it; not sent again.
    AlreadySent {
        /// The drop.
        drop: DropId,
        /// When it was committed.
        committed: Timestamp,
    },
    /// It failed; the other parts were not affected.
    Failed {
        /// The error's code.
        code: String,
        /// The error.
        message: String,
    },
}

/// The result of sending a plan.
#[derive(Clone, Debug, Serialize)]
pub struct SplitOutcome {
    /// Per recipient, in the plan's order.
    pub parts: Vec<(PartyId, PartStatus)>,
}

impl SplitOutcome {
    /// The error to exit with when some parts failed.
    pub fn failure(&self) -> Option<Error> {
        let failed: Vec<&PartyId> =
            self.parts.iter().filter(|(_, s)| matches!(s, PartStatus::Failed { .. })).map(|(p, _)| p).collect();
        if failed.is_empty() {
            return None;
        }
        Some(Error::new(
            ErrorCode::SplitIncomplete,
            format!(
                "{} of {} parts were not sent ({}); the others are committed. Run the same command again to send only what is missing",
                failed.len(),
                self.parts.len(),
                failed.iter().map(|p| p.as_str()).collect::<Vec<_>>().join(", ")
            ),
        ))
    }
}

fn stem_of(path: &Path) -> String {
    path.file_stem().map_or_else(|| "records".to_owned(), |s| s.to_string_lossy().into_owned())
}

/// Step 1: reads the file once and works out where every row goes.
pub fn plan(settings: &Settings, session: &Session, req: &SplitRequest) -> Result<Plan> {
    let dir = &session.directory.directory;
    let me = &session.me.party;
    let mut source =
        table::open(&req.input, req.sheet.as_deref(), req.encoding, progress(settings, &req.input, "reading"))?;
    let stem = stem_of(&req.input);
    let col = table::find_column(source.header(), &req.column, &req.input).and_then(|col| {
        match crate::names::unsafe_char(&stem) {
            Some(c) => Err(Error::new(
                ErrorCode::UnsupportedFile,
                format!(
                    "{} has {} in its name, which the parts' names would carry and recipients refuse; rename it",
                    crate::names::shown_path(&req.input),
                    crate::names::describe_char(c)
                ),
            )),
            None => Ok(col),
        }
    });
    // A file that is not UTF-8 is refused as such before anything else.
    let col = col.or_else(|e| source.checked().and(Err(e)))?;
    let column = source.header()[col].clone();

    let unroutable_path = req.input.with_file_name(format!("{stem}-unroutable.csv"));
    let mut unroutable: Option<(tempfile::NamedTempFile, BufWriter<File>)> = None;
    let mut router = Router::new(dir, me.clone());
    let (mut counts, mut own_rows, mut unroutable_rows, mut rows): (Vec<(u64, u64)>, u64, u64, u64) =
        (Vec::new(), 0, 0, 0);
    let preamble = source.preamble().to_vec();
    let terminator = source.terminator();
    let mut layout = Some(layout::Layout::new(preamble.clone(), terminator, layout::MAX_BYTES));
    source.rows(col, &mut |row| {
        rows += 1;
        let len = (row.body.len() + terminator.len()) as u64;
        match router.route(row.value) {
            Route::To(i) => {
                if counts.len() <= i {
                    counts.resize(i + 1, (0, preamble.len() as u64));
                }
                counts[i].0 += 1;
                counts[i].1 += len;
                if let Some(l) = layout.as_mut()
                    && !row.offset.is_some_and(|at| l.push(at, row.body.len(), i))
                {
                    layout = None;
                }
            }
            Route::Own => own_rows += 1,
            Route::Unroutable => {
                unroutable_rows += 1;
                if unroutable.is_none() {
                    let tmp = tempfile::Builder::new()
                        .prefix(".sealdrop-tmp-")
                        .tempfile_in(parent_of(&unroutable_path))
                        .map_err(|e| Error::io(format!("cannot write beside {}", req.input.display()), e))?;
                    let mut w = BufWriter::new(tmp.reopen().map_err(|e| Error::io("cannot reopen a temp file", e))?);
                    w.write_all(&preamble).map_err(|e| Error::io("cannot write the unroutable rows", e))?;
                    unroutable = Some((tmp, w));
                }
                if let Some((_, w)) = unroutable.as_mut() {
                    w.write_all(row.body)
                        .and_then(|()| w.write_all(terminator))
                        .map_err(|e| Error::io("cannot write the unroutable rows", e))?;
                }
            }
        }
        Ok(())
    })?;
    let input_sha256 = hex::encode(source.input_sha256()?);
    let unroutable_file = match unroutable {
        Some((tmp, mut w)) => {
            w.flush()
                .and_then(|()| w.get_ref().sync_all())
                .map_err(|e| Error::io("cannot write the unroutable rows", e))?;
            // Derived from the input alone, so a re-run replaces it.
            tmp.persist(&unroutable_path)
                .map_err(|e| Error::io(format!("cannot write {}", unroutable_path.display()), e.error))?;
            Some(unroutable_path)
        }
        None => None,
    };

    let layout = layout.map(|mut l| {
        l.recipients.clone_from(&router.recipients);
        std::sync::Arc::new(l)
    });
    let now = settings.clock.now();
    let agreement = pick_agreement(dir, req.agreement.as_deref(), me, now)?;
    let already = already_sent(session)?;
    let rerun = rerun::RerunSecret::of(&session.me);
    let mut parts: Vec<PartPlan> = router
        .recipients
        .iter()
        .zip(counts)
        .map(|(party, (rows, bytes))| {
            let key = rerun.key(&input_sha256, req.sheet.as_deref(), &column, party);
            PartPlan {
                party: party.clone(),
                name: dir.party(party).map_or_else(|| party.to_string(), |p| p.name.clone()),
                rows,
                bytes,
                file_name: part_file_name(&stem, party),
                in_agreement: agreement.is_some_and(|a| a.includes(party)),
                already_sent: already.get(&key).cloned(),
                idempotency_key: key,
            }
        })
        .collect();
    parts.sort_by(|a, b| b.rows.cmp(&a.rows).then_with(|| a.party.cmp(&b.party)));

    let mut plan = Plan {
        input: req.input.clone(),
        column,
        sheet: req.sheet.clone(),
        input_sha256,
        rows,
        agreement: agreement.map(|a| a.id.clone()),
        directory_serial: dir.serial,
        parts,
        own_party: me.clone(),
        reruns_recognised_for: session.me.signing.name().to_owned(),
        own_rows,
        unroutable_rows,
        unroutable_values: router.unroutable_values,
        unroutable_unlisted_rows: router.unlisted_rows,
        unroutable_file,
        allow_unroutable: req.allow_unroutable,
        refusal: None,
        expires: req.expires.clone(),
        layout,
    };
    plan.refusal = refusal(&plan, agreement, dir, now);
    Ok(plan)
}

/// `<stem>-<party>.csv`, the stem shortened if need be so the name fits a
/// plain tar header (100 bytes).
fn part_file_name(stem: &str, party: &PartyId) -> String {
    let suffix = format!("-{party}.csv");
    let mut stem = stem.replace(['/', '\\'], "_");
    while stem.len() + suffix.len() > 100 {
        stem.pop();
    }
    format!("{stem}{suffix}")
}

fn parent_of(path: &Path) -> &Path {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}

fn progress(settings: &Settings, path: &Path, what: &str) -> indicatif::ProgressBar {
    let len = std::fs::metadata(path).map_or(0, |m| m.len());
    crate::pipe::progress_bar(len, what, settings.quiet)
}

/// The agreement: the one named, or the only one in force that includes the sender.
fn pick_agreement<'d>(
    dir: &'d Directory,
    given: Option<&str>,
    me: &PartyId,
    now: Timestamp,
) -> Result<Option<&'d Agreement>> {
    if let Some(id) = given {
        return dir.agreement(id).map(Some).ok_or_else(|| crate::send::unknown_agreement(dir, id));
    }
    let mine: Vec<&Agreement> = dir.agreements.iter().filter(|a| a.includes(me) && a.in_force(now)).collect();
    match mine.as_slice() {
        [one] => Ok(Some(*one)),
        [] => Err(Error::new(
            ErrorCode::NoAgreement,
            format!("no agreement in force in the signed directory (serial {}) includes your party {me}", dir.serial),
        )),
        many => Err(Error::new(
            ErrorCode::AgreementAmbiguous,
            format!(
                "several agreements include your party ({}); choose one with --agreement",
                many.iter().map(|a| a.id.as_str()).collect::<Vec<_>>().join(", ")
            ),
        )),
    }
}

/// The refusal of a plan with parts for parties outside agreement `a`,
/// naming every one of them with its rows.
fn outside_parts(plan: &Plan, a: &Agreement) -> Error {
    let outside: Vec<&PartPlan> = plan.parts.iter().filter(|p| !p.in_agreement).collect();
    Error::new(
        ErrorCode::NotInAgreement,
        format!(
            "{} not a party to agreement `{}` ({}); nothing was sent. Remove those rows or ask the coordinator",
            outside
                .iter()
                .map(|p| format!("{} ({} rows for {})", p.party, p.rows, p.name))
                .collect::<Vec<_>>()
                .join(", ")
                + if outside.len() == 1 { " is" } else { " are" },
            a.id,
            a.title
        ),
    )
}

/// Why the plan must not be sent, if so: the first rule broken.
fn refusal(plan: &Plan, agreement: Option<&Agreement>, dir: &Directory, now: Timestamp) -> Option<Error> {
    if let Some(a) = agreement {
        // The role is the part a party receives; `None` for the sender's own party.
        let parties = std::iter::once((None, &plan.own_party)).chain(plan.parts.iter().map(|p| (Some(p), &p.party)));
        if let Err(refusal) = policy::agreement_admits(a, parties, now) {
            return Some(match refusal {
                AgreementRefusal::NotInForce(why) => crate::send::not_in_force(a, why),
                AgreementRefusal::NotInAgreement { role: None, .. } => Error::new(
                    ErrorCode::NotInAgreement,
                    format!("your party {} is not a party to agreement `{}`; nothing was sent", plan.own_party, a.id),
                ),
                AgreementRefusal::NotInAgreement { role: Some(_), .. } => outside_parts(plan, a),
            });
        }
        if let Err(e) = crate::send::lifetime(a, plan.expires.as_deref(), now) {
            return Some(e);
        }
    }
    if plan.unroutable_rows > 0 && !plan.allow_unroutable {
        return Some(Error::new(
            ErrorCode::UnroutableRows,
            format!(
                "{} rows have a {:?} that matches no party in the signed directory (serial {}), written to {}; nothing was sent. Fix them (use a name, or a GSS code or LA number written exactly as `sealdrop directory show` lists it) or add --allow-unroutable to send the other rows",
                plan.unroutable_rows,
                plan.column,
                dir.serial,
                plan.unroutable_file.as_deref().map_or_else(|| "-".into(), |p| p.display().to_string())
            ),
        ));
    }
    if plan.parts.is_empty() {
        return Some(Error::new(
            ErrorCode::NothingToSend,
            format!("no row of {} goes to another party; nothing was sent", plan.input.display()),
        ));
    }
    None
}

/// The idempotency keys of this party's committed drops.
fn already_sent(session: &Session) -> Result<HashMap<String, (DropId, Timestamp)>> {
    let sent: Sent = session.hub.sent(None)?;
    Ok(sent.drops.into_iter().filter_map(|d| Some((d.idempotency_key?, (d.id, d.committed?)))).collect())
}

pub use summary::{group_digits, render_summary};
pub use upload::send;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digits_are_grouped() {
        assert_eq!(group_digits(0), "0");
        assert_eq!(group_digits(999), "999");
        assert_eq!(group_digits(1000), "1,000");
        assert_eq!(group_digits(1_234_567), "1,234,567");
    }
}
