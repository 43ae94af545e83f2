//! Routing records: one spreadsheet split into per-borough drops, each
//! encrypted only to the borough its rows belong to.
//!
//! The work happens in three steps, so that nothing leaves the machine
//! before the analyst has seen where everything goes:
//! 1. [`plan`] reads the file once: resolves every row's value through the
//!    signed directory, counts rows and bytes per recipient, keeps back the
//!    sender's own rows, writes unroutable rows to `<stem>-unroutable.csv`,
//!    hashes the input, and asks the hub which parts a previous run already
//!    delivered (by idempotency key).
//! 2. The caller shows [`Plan`] (see [`render_summary`]) and confirms.
//! 3. [`send`] reads the file again, streaming each recipient's rows through
//!    tar, zero padding to the size class ([`crate::padding`]) and age (to
//!    that party's keys only) into a spool file, checks the file did not
//!    change since step 1, then uploads and commits the parts
//!    in parallel. A part that fails does not stop the others; the same
//!    command run again sends only what is missing.
//!
//! Memory does not grow with the number of rows: rows are streamed, and
//! each recipient holds one small buffer and one age stream.

pub mod rerun;
pub mod route;
pub mod table;

use std::collections::HashMap;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::mpsc::sync_channel;

use jiff::Timestamp;
use serde::Serialize;

use sealdrop_log::entry::LogEntry;
use sealdrop_proto::api::{LogProof, Sent};
use sealdrop_proto::directory::{Agreement, Directory};
use sealdrop_proto::drop::EncryptedTo;
use sealdrop_proto::ids::{DropId, PartyId};
use sealdrop_proto::padding::padding_for;

use crate::context::{Session, Settings};
use crate::deliver::{Contents, Opening, Sealed};
use crate::error::{Error, Kind, Result};
use crate::fsutil::human_bytes;
use crate::pipe::{Digested, HashingWriter};
use route::{Route, Router};

/// Rows are handed to the encrypting thread in batches of about this size.
const BATCH: usize = 64 << 10;
/// The encrypting thread's word for "the input no longer matches the plan".
const CHANGED: &str = "the input changed";
/// Parts uploaded at once.
const UPLOADERS: usize = 4;
/// Threads encrypting parts (each owns every `ENCRYPTORS`-th part): with
/// one, the parse thread waited on it.
const ENCRYPTORS: usize = 2;

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
            Kind::Other,
            "split_incomplete",
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
    let col = table::find_column(source.header(), &req.column, &req.input)?;
    let column = source.header()[col].clone();
    let stem = stem_of(&req.input);
    if let Some(c) = crate::names::unsafe_char(&stem) {
        return Err(Error::input(
            "unsupported_file",
            format!(
                "{} has {} in its name, which the parts' names would carry and recipients refuse; rename it",
                crate::names::shown_path(&req.input),
                crate::names::describe_char(c)
            ),
        ));
    }

    let unroutable_path = req.input.with_file_name(format!("{stem}-unroutable.csv"));
    let mut unroutable: Option<(tempfile::NamedTempFile, BufWriter<File>)> = None;
    let mut router = Router::new(dir, me.clone());
    let (mut counts, mut own_rows, mut unroutable_rows, mut rows): (Vec<(u64, u64)>, u64, u64, u64) =
        (Vec::new(), 0, 0, 0);
    let preamble = source.preamble().to_vec();
    let terminator = source.terminator();
    source.rows(col, &mut |row| {
        rows += 1;
        let len = (row.body.len() + terminator.len()) as u64;
        match router.route(&row.value) {
            Route::To(i) => {
                if counts.len() <= i {
                    counts.resize(i + 1, (0, preamble.len() as u64));
                }
                counts[i].0 += 1;
                counts[i].1 += len;
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
        [] => Err(Error::input(
            "no_agreement",
            format!("no agreement in force in the signed directory (serial {}) includes your party {me}", dir.serial),
        )),
        many => Err(Error::input(
            "agreement_ambiguous",
            format!(
                "several agreements include your party ({}); choose one with --agreement",
                many.iter().map(|a| a.id.as_str()).collect::<Vec<_>>().join(", ")
            ),
        )),
    }
}

/// Why the plan must not be sent, if so: the first rule broken.
fn refusal(plan: &Plan, agreement: Option<&Agreement>, dir: &Directory, now: Timestamp) -> Option<Error> {
    if let Some(a) = agreement {
        if !a.includes(&plan.own_party) {
            return Some(Error::input(
                "not_in_agreement",
                format!("your party {} is not a party to agreement `{}`; nothing was sent", plan.own_party, a.id),
            ));
        }
        let outside: Vec<&PartPlan> = plan.parts.iter().filter(|p| !p.in_agreement).collect();
        if !outside.is_empty() {
            return Some(Error::input(
                "not_in_agreement",
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
            ));
        }
        if let Err(e) = crate::send::check_in_force(a, now) {
            return Some(e);
        }
        if let Err(e) = crate::send::lifetime(a, plan.expires.as_deref(), now) {
            return Some(e);
        }
    }
    if plan.unroutable_rows > 0 && !plan.allow_unroutable {
        return Some(Error::input(
            "unroutable_rows",
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
        return Some(Error::input(
            "nothing_to_send",
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

/// The summary shown before anything is sent.
pub fn render_summary(plan: &Plan, dir: &Directory) -> String {
    use std::fmt::Write as _;
    let mut s = String::new();
    let n = |x: u64| group_digits(x);
    let _ = writeln!(
        s,
        "Splitting {} by {:?}{}: {} rows (SHA-256 {}…)",
        plan.input.display(),
        plan.column,
        plan.sheet.as_deref().map(|x| format!(" (sheet {x:?})")).unwrap_or_default(),
        n(plan.rows),
        &plan.input_sha256[..16],
    );
    let _ = writeln!(
        s,
        "Recipients from the signed directory (serial {}){}:",
        plan.directory_serial,
        plan.agreement.as_deref().map(|a| format!(", agreement `{a}`")).unwrap_or_default()
    );
    let width = plan.parts.iter().map(|p| p.name.chars().count()).max().unwrap_or(0).max(9);
    for p in &plan.parts {
        let note = match (&p.already_sent, p.in_agreement) {
            (_, false) => "  NOT IN THE AGREEMENT".to_owned(),
            (Some((id, at)), _) => format!("  already sent as {id} at {at}; skipped"),
            (None, true) => String::new(),
        };
        let _ = writeln!(
            s,
            "  {:<width$}  {:>10} rows  {:>10}  {}{}",
            p.name,
            n(p.rows),
            human_bytes(p.bytes),
            p.file_name,
            note
        );
    }
    let to_send: Vec<&PartPlan> = plan.to_send().collect();
    let _ = writeln!(
        s,
        "  {} drop(s) to send: {} rows, {}; each encrypted only to its recipient's keys",
        to_send.len(),
        n(to_send.iter().map(|p| p.rows).sum()),
        human_bytes(to_send.iter().map(|p| p.bytes).sum())
    );
    let _ = writeln!(
        s,
        "  Parts sent before are recognised only if your key {} sent them (the hub cannot match the file); a run by another member of {} would send them again",
        plan.reruns_recognised_for, plan.own_party
    );
    let _ = writeln!(s, "Kept back:");
    let own_name = dir.party(&plan.own_party).map_or(plan.own_party.as_str(), |p| p.name.as_str());
    let _ = writeln!(s, "  {} rows for {own_name} (your own party) stay here", n(plan.own_rows));
    if plan.unroutable_rows == 0 {
        let _ = writeln!(s, "  0 rows could not be routed");
    } else {
        let mut values: Vec<String> = plan
            .unroutable_values
            .iter()
            .map(|(v, c)| if v.is_empty() { format!("(empty) {c}") } else { format!("{v:?} {c}") })
            .collect();
        if plan.unroutable_unlisted_rows > 0 {
            values.push(format!("other values {}", plan.unroutable_unlisted_rows));
        }
        let _ = writeln!(
            s,
            "  {} rows could not be routed and will never be sent: {}; written to {}",
            n(plan.unroutable_rows),
            values.join(", "),
            plan.unroutable_file.as_deref().map_or_else(|| "-".into(), |p| p.display().to_string())
        );
    }
    s
}

/// 1234567 as "1,234,567".
pub fn group_digits(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// A part encrypted into the spool, ready to upload.
struct Spooled {
    index: usize,
    path: PathBuf,
    digest: Digested,
    encrypted_to: Vec<EncryptedTo>,
}

/// Steps 3: encrypts and sends the plan's parts that are still missing. Call
/// only when [`Plan::refusal`] is `None` and the analyst confirmed.
pub fn send(settings: &Settings, session: &Session, plan: &Plan, req: &SplitRequest) -> Result<SplitOutcome> {
    if let Some(e) = plan.refusal() {
        return Err(e.clone());
    }
    let dir = &session.directory.directory;
    let agreement_id = plan.agreement.as_deref().unwrap_or_default();
    let agreement = dir
        .agreement(agreement_id)
        .ok_or_else(|| Error::input("unknown_agreement", format!("agreement {agreement_id:?} vanished")))?;
    let lifetime = crate::send::lifetime(agreement, plan.expires.as_deref(), settings.clock.now())?;
    let spool_root = settings.state_dir.join("spool");
    std::fs::create_dir_all(&spool_root)
        .map_err(|e| Error::io(format!("cannot create {}", spool_root.display()), e))?;
    let spool = tempfile::Builder::new()
        .prefix("split-")
        .tempdir_in(&spool_root)
        .map_err(|e| Error::io(format!("cannot create a spool folder in {}", spool_root.display()), e))?;
    // Ctrl-C from here on withdraws the parts created and not committed.
    crate::interrupt::working();
    crate::interrupt::scratch(spool.path());
    let spooled = encrypt_parts(settings, session, plan, req, spool.path())?;

    let queue = Mutex::new(spooled.into_iter());
    let results: Mutex<Vec<(usize, Result<PartResult>)>> = Mutex::new(Vec::new());
    let workers = UPLOADERS.min(plan.parts.len()).max(1);
    std::thread::scope(|scope| {
        for _ in 0..workers {
            scope.spawn(|| {
                loop {
                    let next = queue.lock().map(|mut q| q.next()).ok().flatten();
                    let Some(part) = next else { break };
                    let r = upload_part(settings, session, plan, agreement, lifetime, &part);
                    if let Ok(mut all) = results.lock() {
                        all.push((part.index, r));
                    }
                }
            });
        }
    });
    let results = results.into_inner().unwrap_or_default();
    // Receipts in log order: each moves the client's newest verified
    // checkpoint forward, and the next part's checkpoint is then never
    // older than it (parts were committed in parallel).
    let mut committed: Vec<(usize, DropId, Timestamp, u64, String, Option<LogProof>)> = Vec::new();
    let mut by_index: HashMap<usize, PartStatus> = HashMap::new();
    for (i, r) in results {
        let status = match r {
            Ok(PartResult::Committed { drop, committed: at, log_index, manifest, proof }) => {
                committed.push((i, drop, at, log_index, manifest, proof));
                continue;
            }
            Ok(PartResult::Existing { drop, committed }) => PartStatus::AlreadySent { drop, committed },
            Err(e) => PartStatus::Failed { code: e.code.clone(), message: e.message.clone() },
        };
        by_index.insert(i, status);
    }
    committed.sort_by_key(|c| c.3);
    for (i, drop, at, log_index, manifest, proof) in committed {
        let p = &plan.parts[i];
        let receipt = settings.keep_receipt(
            session,
            log_index,
            &format!("{drop}.committed"),
            |e| matches!(e, LogEntry::DropCommitted { manifest: m, .. } if *m == manifest),
            proof.as_ref(),
        );
        crate::journal::record_sent(
            &settings.state_dir,
            settings.clock.now(),
            &manifest,
            &session.me.signing.verifier(),
            vec![p.file_name.clone()],
            Some(p.bytes),
            at,
            log_index,
            receipt.as_deref().ok(),
        );
        let status = match receipt {
            Ok(receipt) => PartStatus::Sent { drop, committed: at, receipt },
            Err(e) => PartStatus::Failed {
                code: e.code.clone(),
                message: format!("drop {drop} was committed, but: {}", e.message),
            },
        };
        by_index.insert(i, status);
    }
    let mut parts = Vec::new();
    for (i, p) in plan.parts.iter().enumerate() {
        let status = match (&p.already_sent, by_index.remove(&i)) {
            (Some((drop, committed)), _) => PartStatus::AlreadySent { drop: drop.clone(), committed: *committed },
            (None, Some(status)) => status,
            (None, None) => {
                PartStatus::Failed { code: "internal".into(), message: "the part was not attempted".into() }
            }
        };
        parts.push((p.party.clone(), status));
    }
    Ok(SplitOutcome { parts })
}

enum PartResult {
    Committed { drop: DropId, committed: Timestamp, log_index: u64, manifest: String, proof: Option<LogProof> },
    Existing { drop: DropId, committed: Timestamp },
}

/// Creates (idempotently), uploads and commits one spooled part.
fn upload_part(
    settings: &Settings,
    session: &Session,
    plan: &Plan,
    agreement: &Agreement,
    lifetime: jiff::SignedDuration,
    part: &Spooled,
) -> Result<PartResult> {
    let p = &plan.parts[part.index];
    let hub = &session.hub;
    let now = settings.clock.now();
    let expires = crate::send::expiry_at(now, lifetime)?;
    let recipients = [p.party.clone()];
    let created = crate::deliver::open(
        session,
        Opening {
            recipients: &recipients,
            agreement: &agreement.id,
            expires,
            idempotency_key: Some(p.idempotency_key.clone()),
            // No local record: the part's idempotency key makes a re-run replace it.
            state_dir: None,
        },
    )?;
    if let Some(committed) = created.committed {
        return Ok(PartResult::Existing { drop: created.id, committed });
    }
    let file = File::open(&part.path).map_err(|e| Error::io("cannot open a spooled part", e))?;
    let uploaded = hub.upload_file(&created.id, file)?;
    if uploaded.sha256 != part.digest.sha256 || uploaded.len != part.digest.len {
        return Err(Error::verification(
            "upload_corrupted",
            format!(
                "the hub received {} bytes with SHA-256 {} but {} bytes with {} were sent; nothing was committed, try again",
                uploaded.len, uploaded.sha256, part.digest.len, part.digest.sha256
            ),
        ));
    }
    let Sealed { note, committed } = crate::deliver::commit(
        settings,
        session,
        &created,
        Contents {
            recipients: recipients.to_vec(),
            encrypted_to: part.encrypted_to.clone(),
            agreement: agreement.id.clone(),
        },
        &part.digest,
    )?;
    Ok(PartResult::Committed {
        drop: created.id,
        committed: committed.committed,
        log_index: committed.log_index,
        manifest: note,
        proof: committed.proof,
    })
}

/// One recipient's stream: tar framing around its CSV, padded to its size
/// class, age-encrypted to its keys, hashed, into a spool file.
struct PartWriter {
    sink: age::stream::StreamWriter<HashingWriter<BufWriter<File>>>,
    /// CSV bytes promised in the tar header.
    expected: u64,
    written: u64,
}

impl PartWriter {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        self.written += bytes.len() as u64;
        self.sink.write_all(bytes)
    }

    fn finish(mut self) -> std::io::Result<Digested> {
        if self.written != self.expected {
            return Err(std::io::Error::other(CHANGED));
        }
        // Pad the file to a whole tar block, then the two empty end blocks,
        // then zeros to the archive's size class (as `send` does).
        let pad = (512 - self.written % 512) % 512;
        let archive = 512 + self.written + pad + 1024;
        crate::padding::write_zeros(&mut self.sink, pad + 1024 + padding_for(archive))?;
        let (mut file, digest) = self.sink.finish()?.finish();
        file.flush()?;
        Ok(digest)
    }
}

/// Step 3a: the second read of the input. Rows are batched per recipient by
/// this thread and encrypted by another, so parsing and encryption use both
/// cores.
fn encrypt_parts(
    settings: &Settings,
    session: &Session,
    plan: &Plan,
    req: &SplitRequest,
    spool: &Path,
) -> Result<Vec<Spooled>> {
    let dir = &session.directory.directory;
    let mut source =
        table::open(&req.input, req.sheet.as_deref(), req.encoding, progress(settings, &req.input, "encrypting"))?;
    let col = table::find_column(source.header(), &req.column, &req.input)?;
    let preamble = source.preamble().to_vec();
    let terminator = source.terminator();
    let mtime = u64::try_from(settings.clock.now().as_second()).unwrap_or(0);

    // Parts to encrypt, by recipient.
    let mut index_of: HashMap<PartyId, usize> = HashMap::new();
    let mut writers: Vec<PartWriter> = Vec::new();
    let mut spooled = Vec::new();
    for (i, p) in plan.parts.iter().enumerate() {
        if p.already_sent.is_some() {
            continue;
        }
        let (recipients, encrypted_to) = crate::send::party_keys(dir, &p.party)?;
        let path = spool.join(format!("{}.age", p.party));
        let file = File::create(&path).map_err(|e| Error::io(format!("cannot create {}", path.display()), e))?;
        let encryptor = age::Encryptor::with_recipients(recipients.iter().map(|r| r as &dyn age::Recipient))
            .map_err(|e| Error::new(Kind::Other, "encrypt_failed", e.to_string()))?;
        let io = |e: std::io::Error| Error::io(format!("cannot write {}", path.display()), e);
        let sink = encryptor.wrap_output(HashingWriter::new(BufWriter::with_capacity(BATCH, file))).map_err(io)?;
        let mut header = tar::Header::new_gnu();
        header.set_path(&p.file_name).map_err(|e| Error::input("bad_file_name", format!("{}: {e}", p.file_name)))?;
        header.set_size(p.bytes);
        header.set_mode(0o644);
        header.set_mtime(mtime);
        header.set_entry_type(tar::EntryType::Regular);
        header.set_cksum();
        let mut w = PartWriter { sink, expected: p.bytes, written: 0 };
        w.sink.write_all(header.as_bytes()).map_err(io)?;
        w.write(&preamble).map_err(io)?;
        index_of.insert(p.party.clone(), writers.len());
        writers.push(w);
        spooled.push(Spooled { index: i, path, digest: Digested { sha256: String::new(), len: 0 }, encrypted_to });
    }

    // Routes of pass one, as indexes into `writers` (or nowhere).
    let mut router = Router::new(dir, session.me.party.clone());
    let mut shares: Vec<Vec<PartWriter>> = (0..ENCRYPTORS).map(|_| Vec::new()).collect();
    for (w, writer) in writers.into_iter().enumerate() {
        shares[w % ENCRYPTORS].push(writer);
    }
    let (senders, encryptors): (Vec<_>, Vec<_>) = shares
        .into_iter()
        .map(|mut mine| {
            let (tx, rx) = sync_channel::<(usize, Vec<u8>)>(8);
            let thread = std::thread::spawn(move || -> std::io::Result<Vec<Digested>> {
                for (w, batch) in rx {
                    mine[w / ENCRYPTORS].write(&batch)?;
                }
                mine.into_iter().map(PartWriter::finish).collect()
            });
            (tx, thread)
        })
        .unzip();
    let mut batches: Vec<Vec<u8>> = vec![Vec::new(); index_of.len()];
    let mut targets: Vec<Option<usize>> = Vec::new();
    let mut rows = 0u64;
    let read = source.rows(col, &mut |row| {
        crate::interrupt::check()?;
        rows += 1;
        let Route::To(r) = router.route(&row.value) else { return Ok(()) };
        if targets.len() <= r {
            targets.resize(r + 1, None);
            let party = &router.recipients[r];
            targets[r] = index_of.get(party).copied();
            if targets[r].is_none() && !plan.parts.iter().any(|p| &p.party == party) {
                return Err(changed(&req.input));
            }
        }
        let Some(w) = targets[r] else { return Ok(()) };
        let batch = &mut batches[w];
        batch.extend_from_slice(row.body);
        batch.extend_from_slice(terminator);
        if batch.len() >= BATCH {
            let full = std::mem::replace(batch, Vec::with_capacity(BATCH + 1024));
            senders[w % ENCRYPTORS]
                .send((w, full))
                .map_err(|_| Error::new(Kind::Other, "encrypt_failed", "the encrypting thread stopped"))?;
        }
        Ok(())
    });
    let hash = read.and_then(|()| source.input_sha256());
    for (w, batch) in batches.into_iter().enumerate() {
        if !batch.is_empty() {
            let _ = senders[w % ENCRYPTORS].send((w, batch));
        }
    }
    drop(senders);
    // Part `w` is the `w / ENCRYPTORS`-th of thread `w % ENCRYPTORS`.
    let mut by_thread = Vec::new();
    for thread in encryptors {
        by_thread.push(thread.join().map_err(|_| Error::new(Kind::Other, "internal", "an encrypting thread crashed"))?);
    }
    let encrypted: std::io::Result<Vec<Digested>> =
        by_thread.into_iter().collect::<std::io::Result<Vec<_>>>().map(|lists| {
            let total = lists.iter().map(Vec::len).sum();
            let mut lists: Vec<_> = lists.into_iter().map(Vec::into_iter).collect();
            (0..total).filter_map(|w| lists[w % ENCRYPTORS].next()).collect()
        });
    let hash = hash?;
    if hex::encode(hash) != plan.input_sha256 || rows != plan.rows {
        return Err(changed(&req.input));
    }
    let digests = encrypted.map_err(|e| {
        if e.to_string() == CHANGED { changed(&req.input) } else { Error::io("cannot write the encrypted parts", e) }
    })?;
    for (s, d) in spooled.iter_mut().zip(digests) {
        s.digest = d;
    }
    Ok(spooled)
}

fn changed(input: &Path) -> Error {
    Error::input(
        "input_changed",
        format!("{} changed while it was being split; nothing was sent, run the command again", input.display()),
    )
}

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
