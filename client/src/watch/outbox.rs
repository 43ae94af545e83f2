//! The outbox: which files are complete, taking them as jobs, and sending
//! each job to where its folders say, then moving it to `sent/` (with
//! `sent.json`) or `failed/` (with `reason.txt`).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

use serde::Serialize;

use jiff::Timestamp;
use sealdrop_proto::ids::{DropId, PartyId};

use super::jobs::{Job, KeyMaker};
use super::layout::{self, Layout, Route};
use crate::context::{Session, Settings};
use crate::error::{Error, ErrorCode, Kind, Result};
use crate::send::{Keyed, SendRequest};
use crate::split::{PartStatus, SplitRequest};

/// Entries looked at per scan of the outbox: a folder of a million files
/// is taken a slice at a time, never read into memory whole.
const SCAN_LIMIT: usize = 10_000;

/// What the scan last saw of each file: a file is complete once its size
/// and modification time stayed the same for the settle time.
#[derive(Debug, Default)]
pub struct Settler {
    seen: HashMap<PathBuf, (u64, SystemTime, Instant)>,
}

impl Settler {
    /// The files below `outbox` that are complete now, oldest first.
    /// `trust_old`: also take a file seen for the first time whose
    /// modification time is older than `settle` (for `--once`, which runs
    /// once and cannot watch a file stay the same).
    pub fn ready(&mut self, outbox: &Path, settle: Duration, trust_old: bool) -> Vec<PathBuf> {
        let now = Instant::now();
        let mut found = Vec::new();
        walk(outbox, outbox, 0, &mut found);
        let mut ready = Vec::new();
        let mut seen = HashMap::with_capacity(found.len());
        for (path, len, mtime) in found {
            let since = match self.seen.get(&path) {
                Some(&(l, m, since)) if l == len && m == mtime => since,
                _ => now,
            };
            let old_enough = trust_old && mtime.elapsed().is_ok_and(|age| age >= settle);
            if now.duration_since(since) >= settle || old_enough {
                ready.push((mtime, path.clone()));
            }
            seen.insert(path, (len, mtime, since));
        }
        self.seen = seen;
        ready.sort();
        ready.into_iter().map(|(_, p)| p).collect()
    }

    /// Forgets a file that was taken.
    pub fn taken(&mut self, path: &Path) {
        self.seen.remove(path);
    }
}

/// The files (and anything else that is not a folder) below `dir`, at most
/// three levels deep and [`SCAN_LIMIT`] entries, skipping temporary names.
fn walk(root: &Path, dir: &Path, depth: usize, found: &mut Vec<(PathBuf, u64, SystemTime)>) {
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    for entry in entries.flatten() {
        if found.len() >= SCAN_LIMIT {
            return;
        }
        let name = entry.file_name().to_string_lossy().into_owned();
        if layout::is_temporary(&name) {
            continue;
        }
        let Ok(meta) = entry.path().symlink_metadata() else { continue };
        if meta.is_dir() && depth < 2 {
            walk(root, &entry.path(), depth + 1, found);
        } else if meta.is_dir() && entry.path().strip_prefix(root).is_ok() {
            // Too deep: taken as a "file" so it is refused with its reason.
            found.push((entry.path(), 0, meta.modified().unwrap_or(SystemTime::UNIX_EPOCH)));
        } else if !meta.is_dir() {
            found.push((entry.path(), meta.len(), meta.modified().unwrap_or(SystemTime::UNIX_EPOCH)));
        }
    }
}

/// Takes `path` from the outbox as a new job: writes the job's record into
/// a new job folder, then moves the file in. `None` if it vanished meanwhile.
/// In that order, a job folder holding its file always has its record (and
/// key) before anything is sent; one without its file was never sent.
pub fn take(layout: &Layout, keys: &KeyMaker, path: &Path, now: Timestamp) -> Result<Option<Job>> {
    let rel = path.strip_prefix(layout.outbox()).unwrap_or(path);
    let file = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let name = layout::job_name(&file, now, &[layout.work(), layout.sent(), layout.failed()]);
    let dir = layout.work().join(&name);
    crate::fsutil::create_private_dir(&dir)?;
    let job = Job {
        key: keys.key(&layout.root, &name, now),
        name,
        file,
        route: layout::route(rel),
        taken: now,
        attempts: 0,
        last_error: None,
    };
    job.save(&layout.work())?;
    if let Err(e) = std::fs::rename(path, job.path(&layout.work())) {
        let _ = std::fs::remove_dir_all(&dir);
        return match e.kind() {
            std::io::ErrorKind::NotFound => Ok(None),
            _ => Err(Error::io(format!("cannot take {} from the outbox", path.display()), e)),
        };
    }
    Ok(Some(job))
}

/// One drop a job sent, as `sent.json` lists it.
#[derive(Clone, Debug, Serialize)]
pub struct SentDrop {
    /// The drop.
    pub drop: DropId,
    /// Its recipients.
    pub to: Vec<PartyId>,
    /// When the hub committed it.
    pub committed: Timestamp,
    /// The receipt (c2sp.org/tlog-proof) copied beside the file, when this
    /// run committed it (an earlier run's receipt is in the state dir).
    pub receipt: Option<String>,
    /// Committed by an earlier attempt (before a restart); not sent again.
    pub already_sent: bool,
    /// File size in bytes of what was sent, when known.
    pub bytes: Option<u64>,
}

/// `sent.json`.
#[derive(Clone, Debug, Serialize)]
pub struct SentRecord {
    /// The job.
    pub job: String,
    /// The file.
    pub file: String,
    /// The agreement.
    pub agreement: Option<String>,
    /// When it was sent.
    pub sent: Timestamp,
    /// Each drop.
    pub drops: Vec<SentDrop>,
}

/// How a job ended, or that it must be tried again.
#[derive(Debug)]
pub enum Outcome {
    /// Sent (every part, for a split).
    Sent(SentRecord),
    /// Refused for good: the file goes to `failed/` with the reason. Parts
    /// a split sent before that are listed.
    Failed(Error, Option<SentRecord>),
    /// Not now (the hub down or busy): tried again later.
    Retry(Error),
}

/// Whether `e` is about the file or where it is going (the file goes to
/// `failed/`), rather than about the hub or the network just now (the job
/// waits and is tried again).
pub fn refuses_the_file(e: &Error) -> bool {
    const PASSING: [&str; 5] = ["rate_limited", "hub_busy", "insufficient_storage", "quota_held_bytes", "internal"];
    match e.kind {
        Kind::Input => e.code != ErrorCode::Io.as_str(),
        Kind::Refused => !PASSING.contains(&e.code.as_str()) && !e.code.starts_with("http_5"),
        _ => false,
    }
}

/// Sends job `job` in `session`.
pub fn send_job(settings: &Settings, session: &Session, layout: &Layout, job: &Job, now: Timestamp) -> Outcome {
    let path = job.path(&layout.work());
    let result = match &job.route {
        Route::Send { to, agreement } => send_one(settings, session, layout, job, &path, to, agreement.as_deref(), now),
        Route::Split { column } => split_one(settings, session, layout, job, &path, column, now),
        Route::Misplaced { reason } => {
            return Outcome::Failed(Error::new(ErrorCode::OutboxMisplaced, reason.clone()), None);
        }
    };
    match result {
        Ok(outcome) => outcome,
        Err(e) if refuses_the_file(&e) => Outcome::Failed(e, None),
        Err(e) => Outcome::Retry(e),
    }
}

#[allow(clippy::too_many_arguments)]
fn send_one(
    settings: &Settings,
    session: &Session,
    layout: &Layout,
    job: &Job,
    path: &Path,
    to: &str,
    agreement: Option<&str>,
    now: Timestamp,
) -> Result<Outcome> {
    let dir = &session.directory.directory;
    if dir.resolve_party(to).is_none() {
        return Ok(Outcome::Failed(layout::unknown_folder(dir, to), None));
    }
    let req = SendRequest {
        to: vec![to.to_owned()],
        agreement: agreement.map(str::to_owned),
        paths: vec![path.to_owned()],
        ..SendRequest::default()
    };
    let bytes = std::fs::metadata(path).ok().map(|m| m.len());
    let drop = match crate::send::send_keyed(settings, session, &req, &job.key)? {
        Keyed::Sent(o) => SentDrop {
            receipt: copy_receipt(&o.receipt, &layout.work().join(&job.name)),
            drop: o.id,
            to: o.recipients,
            committed: o.committed,
            already_sent: false,
            bytes,
        },
        Keyed::AlreadySent { id, committed, .. } => SentDrop {
            drop: id,
            to: dir.resolve_party(to).map(|p| vec![p.id.clone()]).unwrap_or_default(),
            committed,
            receipt: None,
            already_sent: true,
            bytes,
        },
    };
    Ok(Outcome::Sent(SentRecord {
        job: job.name.clone(),
        file: job.file.clone(),
        agreement: agreement.map(str::to_owned).or_else(|| default_agreement(session, &drop.to, now)),
        sent: now,
        drops: vec![drop],
    }))
}

/// The agreement `send` chose when none was named.
fn default_agreement(session: &Session, to: &[PartyId], now: Timestamp) -> Option<String> {
    crate::send::choose_agreement(&session.directory.directory, None, &session.me.party, to, now)
        .ok()
        .map(|a| a.id.clone())
}

fn split_one(
    settings: &Settings,
    session: &Session,
    layout: &Layout,
    job: &Job,
    path: &Path,
    column: &str,
    now: Timestamp,
) -> Result<Outcome> {
    let req = SplitRequest {
        input: path.to_owned(),
        column: column.to_owned(),
        sheet: None,
        agreement: None,
        expires: None,
        allow_unroutable: false,
        encoding: None,
    };
    let plan = crate::split::plan(settings, session, &req)?;
    if let Some(e) = plan.refusal() {
        return Ok(Outcome::Failed(e.clone(), None));
    }
    let outcome = crate::split::send(settings, session, &plan, &req)?;
    let folder = layout.work().join(&job.name);
    let mut drops = Vec::new();
    let mut passing = None;
    for ((party, status), part) in outcome.parts.iter().zip(&plan.parts) {
        let to = vec![party.clone()];
        match status {
            PartStatus::Sent { drop, committed, receipt } => drops.push(SentDrop {
                drop: drop.clone(),
                to,
                committed: *committed,
                receipt: copy_receipt(receipt, &folder),
                already_sent: false,
                bytes: Some(part.bytes),
            }),
            PartStatus::AlreadySent { drop, committed } => drops.push(SentDrop {
                drop: drop.clone(),
                to,
                committed: *committed,
                receipt: None,
                already_sent: true,
                bytes: Some(part.bytes),
            }),
            PartStatus::Failed { code, message } => {
                let e = Error::refused(code.clone(), message.clone());
                if !refuses_the_file(&e) {
                    passing.get_or_insert(e);
                }
            }
        }
    }
    let record = SentRecord {
        job: job.name.clone(),
        file: job.file.clone(),
        agreement: plan.agreement.clone(),
        sent: now,
        drops,
    };
    Ok(match (passing, outcome.failure()) {
        // The split's own keys send only the missing parts next time.
        (Some(e), _) => Outcome::Retry(e),
        (None, Some(e)) => Outcome::Failed(e, Some(record)),
        (None, None) => Outcome::Sent(record),
    })
}

/// Copies a receipt into the job's folder; its name there, if copied.
fn copy_receipt(receipt: &Path, folder: &Path) -> Option<String> {
    let name = receipt.file_name()?.to_string_lossy().into_owned();
    std::fs::copy(receipt, folder.join(&name)).ok().map(|_| name)
}

/// Writes `sent.json` into the job's folder and moves it to `sent/`.
pub fn finish_sent(layout: &Layout, job: &Job, record: &SentRecord) -> Result<PathBuf> {
    let dir = layout.work().join(&job.name);
    write_record(&dir.join("sent.json"), record)?;
    let _ = std::fs::remove_file(dir.join(super::jobs::RECORD));
    layout::finish(&dir, &layout.sent())
}

/// Writes `reason.txt` (and `sent.json` when some parts went) into the
/// job's folder and moves it to `failed/`.
pub fn finish_failed(layout: &Layout, job: &Job, e: &Error, partial: Option<&SentRecord>) -> Result<PathBuf> {
    let dir = layout.work().join(&job.name);
    if let Some(record) = partial {
        write_record(&dir.join("sent.json"), record)?;
    }
    crate::fsutil::write_atomic(&dir.join("reason.txt"), format!("{e}\n").as_bytes(), false)?;
    let _ = std::fs::remove_file(dir.join(super::jobs::RECORD));
    layout::finish(&dir, &layout.failed())
}

fn write_record(path: &Path, record: &SentRecord) -> Result<()> {
    let text = serde_json::to_vec_pretty(record).map_err(|e| Error::new(ErrorCode::Internal, e.to_string()))?;
    crate::fsutil::write_atomic(path, &text, false)
}

/// The jobs in `work/`, oldest first. A job folder without its file (the
/// service stopped between writing the record and taking the file, so
/// nothing was sent) is removed; the file is still in the outbox.
pub fn jobs_in_progress(layout: &Layout) -> Result<Vec<Job>> {
    let mut jobs = Vec::new();
    let Ok(entries) = std::fs::read_dir(layout.work()) else { return Ok(jobs) };
    for entry in entries.flatten().filter(|e| e.path().is_dir()) {
        let dir = entry.path();
        match Job::load(&dir)? {
            Some(job) if job.path(&layout.work()).symlink_metadata().is_ok() => jobs.push(job),
            Some(_) => {
                let _ = std::fs::remove_dir_all(&dir);
            }
            None => {
                // Not the service's (it writes the record first): left alone, and said.
                eprintln!(
                    "warning: {} has no job record; the service leaves it alone: move its contents back into the outbox to send them",
                    dir.display()
                );
            }
        }
    }
    jobs.sort_by(|a, b| a.taken.cmp(&b.taken).then_with(|| a.name.cmp(&b.name)));
    Ok(jobs)
}
