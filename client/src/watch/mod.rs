//! `sealdrop watch`: the unattended service over a folder. Files saved into
//! `outbox/<party>/` are sent once complete and moved to `sent/` with their
//! drop ids (or to `failed/` with the reason); drops that arrive are fetched,
//! verified and placed in `inbox/<sender>/<agreement>/`, then acknowledged;
//! the sender learns of acknowledgements and non-deliveries; people are told
//! through [`crate::notify`]; `status.json`, `/healthz` and `/metrics` show
//! how it is doing. See docs/watch.md.
//!
//! A layer above the operations: it calls `send`, `split`, `fetch` and
//! `status` as a library, as a person would run them, and adds only what
//! being unattended needs: when a file is complete ([`outbox::Settler`]),
//! never sending twice across restarts ([`jobs`]), waiting out the hub
//! ([`backoff`]), and telling people ([`monitor`], [`tracking`]).
//!
//! Threads: the outbox and the acknowledgement checks run on the calling
//! thread; the inbox waits on the hub on a thread of its own, so a long-poll
//! never delays a send; `--status-listen` serves on a third.

mod backoff;
mod http;
mod incoming;
pub mod jobs;
pub mod layout;
pub mod monitor;
pub mod outbox;
mod stop;
mod tracking;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use sealdrop_proto::ids::PartyId;

use crate::context::Settings;
use crate::error::{Error, ErrorCode, Kind, Result};
use crate::notify::{Event, EventKind, Notifier, NotifyConfig};
use backoff::Backoff;
use jobs::KeyMaker;
use layout::Layout;
use monitor::Monitor;
use outbox::Outcome;

/// The `[watch]` section of the config file; the command line's flags
/// take precedence.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WatchConfig {
    /// The watch folder.
    pub dir: Option<PathBuf>,
    /// Seconds a file must stay unchanged before it is sent.
    pub settle: Option<u64>,
    /// Seconds an inbox request waits on the hub (0: no long-poll).
    pub poll: Option<u64>,
    /// Seconds between checks of sent drops for acknowledgements.
    pub status_interval: Option<u64>,
    /// Merge the CSV parts of each pass per agreement.
    pub merge_csv: Option<bool>,
    /// Where to serve `/healthz` and `/metrics`.
    pub status_listen: Option<SocketAddr>,
}

/// What the service was asked to do.
#[derive(Clone, Debug)]
pub struct WatchOptions {
    /// The watch folder.
    pub dir: PathBuf,
    /// One pass, then exit (cron, Windows Task Scheduler).
    pub once: bool,
    /// How long a file must stay unchanged before it is sent.
    pub settle: Duration,
    /// How long an inbox request waits on the hub (zero: no long-poll).
    pub poll: Duration,
    /// How often sent drops are checked for acknowledgements.
    pub status_interval: Duration,
    /// Merge CSV parts per agreement into `inbox/merged/`.
    pub merge_csv: bool,
    /// Where to serve `/healthz` and `/metrics`.
    pub status_listen: Option<SocketAddr>,
    /// Who is told what.
    pub notify: NotifyConfig,
}

/// What a `--once` run did.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Summary {
    /// Files sent.
    pub sent: usize,
    /// Files moved to `failed/`.
    pub failed: usize,
    /// Files waiting to be tried again (the hub down or busy).
    pub waiting: usize,
    /// Drops fetched.
    pub fetched: usize,
    /// Drops that could not be fetched.
    pub fetch_failed: usize,
}

/// What every part of the running service shares.
pub struct Service {
    /// The member's settings.
    pub settings: Settings,
    /// The watch folder.
    pub layout: Layout,
    /// What it was asked to do.
    pub options: WatchOptions,
    /// Status file, health and metrics.
    pub monitor: Arc<Monitor>,
    /// This member's party.
    pub party: PartyId,
    notifier: Notifier,
    /// The log check failure people were last told about, so a failing
    /// check is told once, not on every pass.
    log_failure_told: Mutex<Option<String>>,
}

impl Service {
    /// Now, from the settings' clock.
    pub fn now(&self) -> Timestamp {
        self.settings.clock.now()
    }

    /// An event of `kind` from this service, to fill in.
    pub fn event(&self, kind: EventKind) -> Event {
        Event {
            kind,
            at: self.now(),
            party: self.party.clone(),
            drops: vec![],
            from: None,
            to: vec![],
            agreement: None,
            files: None,
            bytes: None,
            file_names: vec![],
            code: None,
            reason: None,
        }
    }

    /// Tells people; a notification that fails is reported and counted,
    /// never stops the service.
    pub fn notify(&self, event: Event) {
        for f in self.notifier.notify(&event) {
            eprintln!("warning: the {} notification failed: {}", f.sink, f.error);
            self.monitor.failed(self.now(), "notify", f.sink, &f.error);
        }
    }

    /// Notes an error that stopped a pass: the hub unreachable, or its log
    /// failing to verify (told once until it verifies again).
    fn hub_trouble(&self, e: &Error) {
        let now = self.now();
        match e.kind {
            Kind::Unreachable => self.monitor.hub_unreachable(now),
            Kind::Verification => {
                self.monitor.log_check(now, Some(e.to_string()));
                let mut told = self.log_failure_told.lock().unwrap_or_else(|p| p.into_inner());
                if told.as_deref() != Some(e.code.as_str()) {
                    *told = Some(e.code.clone());
                    drop(told);
                    self.notify(Event {
                        code: Some(e.code.clone()),
                        reason: Some(e.message.clone()),
                        ..self.event(EventKind::LogCheckFailed)
                    });
                }
            }
            _ => {}
        }
    }

    /// A session opened (the directory and log verified).
    fn hub_fine(&self) {
        let now = self.now();
        self.monitor.hub_answered(now);
        let mut told = self.log_failure_told.lock().unwrap_or_else(|p| p.into_inner());
        if told.take().is_some() {
            self.monitor.log_check(now, None);
        }
    }
}

/// Runs the service until SIGTERM or SIGINT (or, with `once`, one pass).
pub fn run(settings: &Settings, options: WatchOptions) -> Result<Summary> {
    let layout = Layout::new(&options.dir);
    layout.create()?;
    let _lock = lock(&layout)?;
    let me = settings.identity()?;
    let keys = KeyMaker::of(&me);
    let notifier = Notifier::new(&options.notify)?;
    let monitor = Arc::new(Monitor::new(me.party.as_str(), layout.status_file(), settings.clock.now()));
    // The status file exists from the start, for whoever watches the service.
    monitor.update(settings.clock.now(), |_| {});
    if let Some(addr) = options.status_listen {
        let bound = http::serve(addr, monitor.clone(), settings.clock.clone())?;
        eprintln!("serving /healthz and /metrics on http://{bound}");
    }
    let svc = Arc::new(Service {
        settings: settings.clone(),
        layout,
        options,
        monitor,
        party: me.party.clone(),
        notifier,
        log_failure_told: Mutex::new(None),
    });
    drop(me);
    let mut sender = Sender {
        keys,
        settler: outbox::Settler::default(),
        backoff: Backoff::default(),
        next_try: None,
        made_folders: false,
    };
    let mut tracking = tracking::Tracking::load(&svc)?;
    if svc.options.once {
        return once(&svc, &mut sender, &mut tracking);
    }
    stop::install()?;
    eprintln!("watching {} as {}", svc.layout.root.display(), svc.party);
    let inbox_thread = {
        let svc = svc.clone();
        std::thread::Builder::new()
            .name("inbox".into())
            .spawn(move || inbox_loop(&svc))
            .map_err(|e| Error::io("cannot start the inbox thread", e))?
    };
    let mut next_check = Instant::now();
    while !stop::requested() {
        sender.pass(&svc, false);
        if Instant::now() >= next_check {
            check_sent(&svc, &mut tracking);
            next_check = Instant::now() + svc.options.status_interval;
        }
        stop::sleep(Duration::from_secs(1));
    }
    eprintln!("stopping: nothing is half-sent; a restart goes on where this left off");
    // The inbox thread may be waiting on the hub; a fetch it is doing is
    // safe to cut (nothing is acknowledged before the files are in place).
    drop(inbox_thread);
    Ok(Summary::default())
}

/// One pass of everything, for `--once`.
fn once(svc: &Service, sender: &mut Sender, tracking: &mut tracking::Tracking) -> Result<Summary> {
    let mut summary = sender.pass(svc, true);
    match incoming::Incoming::default().pass(svc, Duration::ZERO) {
        Ok(p) => {
            summary.fetched = p.fetched;
            summary.fetch_failed = p.failed;
        }
        Err(e) => {
            svc.hub_trouble(&e);
            eprintln!("the inbox was not checked: {e}");
            summary.fetch_failed += 1;
        }
    }
    check_sent(svc, tracking);
    eprintln!(
        "sent {}, failed {}, waiting {}; fetched {}, not fetched {}",
        summary.sent, summary.failed, summary.waiting, summary.fetched, summary.fetch_failed
    );
    if summary.failed + summary.waiting + summary.fetch_failed > 0 {
        return Err(Error::new(
            ErrorCode::WatchFailed,
            format!(
                "{} file(s) refused (see {}), {} waiting to be tried again, {} drop(s) not fetched; details in {}",
                summary.failed,
                svc.layout.failed().display(),
                summary.waiting,
                summary.fetch_failed,
                svc.layout.status_file().display()
            ),
        ));
    }
    Ok(summary)
}

/// The outbox side's memory between passes.
struct Sender {
    keys: KeyMaker,
    settler: outbox::Settler,
    backoff: Backoff,
    /// No attempt before this (the hub was down or limiting requests).
    next_try: Option<Instant>,
    /// `outbox/<party>/` folders were made from the directory.
    made_folders: bool,
}

impl Sender {
    /// Takes what is complete, then sends every job (unless waiting out the hub).
    fn pass(&mut self, svc: &Service, once: bool) -> Summary {
        let mut summary = Summary::default();
        let now = svc.now();
        for path in self.settler.ready(&svc.layout.outbox(), svc.options.settle, once) {
            self.settler.taken(&path);
            match outbox::take(&svc.layout, &self.keys, &path, now) {
                Ok(Some(job)) => eprintln!("took {} as job {}", path.display(), job.name),
                Ok(None) => {}
                Err(e) => {
                    eprintln!("warning: {e}");
                    svc.monitor.failed(now, "send", &path.display().to_string(), &e);
                }
            }
        }
        let jobs = match outbox::jobs_in_progress(&svc.layout) {
            Ok(jobs) => jobs,
            Err(e) => {
                eprintln!("warning: {e}");
                return summary;
            }
        };
        svc.monitor.pending(now, pending(&jobs));
        let due = self.next_try.is_none_or(|t| Instant::now() >= t);
        if (jobs.is_empty() && self.made_folders) || !due {
            summary.waiting = jobs.len();
            return summary;
        }
        let session = match svc.settings.session() {
            Ok(s) => s,
            Err(e) => {
                // Each waiting job says why, for the status file and staff.
                let jobs: Vec<jobs::Job> = jobs
                    .into_iter()
                    .map(|mut job| {
                        job.attempts += 1;
                        job.last_error = Some(e.to_string());
                        let _ = job.save(&svc.layout.work());
                        job
                    })
                    .collect();
                svc.monitor.pending(svc.now(), pending(&jobs));
                svc.hub_trouble(&e);
                self.wait(svc, &e);
                summary.waiting = jobs.len();
                return summary;
            }
        };
        svc.hub_fine();
        if !self.made_folders {
            match svc.layout.create_party_folders(&session.directory.directory, &svc.party) {
                Ok(()) => self.made_folders = true,
                Err(e) => eprintln!("warning: {e}"),
            }
        }
        let mut tracking = tracking::Tracking::load(svc).unwrap_or_default();
        let mut left = jobs.len();
        for mut job in jobs {
            match outbox::send_job(&svc.settings, &session, &svc.layout, &job, svc.now()) {
                Outcome::Sent(record) => {
                    left -= 1;
                    summary.sent += 1;
                    self.backoff.reset();
                    svc.monitor.sent(svc.now());
                    for d in &record.drops {
                        eprintln!("sent {} ({}) to {} as drop {}", job.file, job.name, join(&d.to), d.drop);
                        let tracked = tracking::Tracked {
                            job: job.name.clone(),
                            committed: d.committed,
                            agreement: record.agreement.clone(),
                            bytes: d.bytes,
                            told: Default::default(),
                            file: job.file.clone(),
                            to: d.to.clone(),
                        };
                        if let Err(e) = tracking.add(svc, d.drop.clone(), tracked) {
                            eprintln!("warning: acknowledgements of {} will not be told: {e}", d.drop);
                        }
                    }
                    if let Err(e) = outbox::finish_sent(&svc.layout, &job, &record) {
                        eprintln!("warning: job {} was sent but not moved to sent/: {e}", job.name);
                    }
                }
                Outcome::Failed(e, partial) => {
                    left -= 1;
                    summary.failed += 1;
                    eprintln!("NOT SENT {} ({}): {e}", job.file, job.name);
                    svc.monitor.failed(svc.now(), "send", &job.name, &e);
                    svc.notify(Event {
                        to: partial
                            .as_ref()
                            .map(|r| r.drops.iter().flat_map(|d| d.to.clone()).collect())
                            .unwrap_or_default(),
                        drops: partial
                            .as_ref()
                            .map(|r| r.drops.iter().map(|d| d.drop.clone()).collect())
                            .unwrap_or_default(),
                        files: Some(1),
                        file_names: vec![job.file.clone()],
                        code: Some(e.code.clone()),
                        reason: Some(e.message.clone()),
                        ..svc.event(EventKind::SendFailed)
                    });
                    if let Err(moved) = outbox::finish_failed(&svc.layout, &job, &e, partial.as_ref()) {
                        eprintln!("warning: job {} was refused but not moved to failed/: {moved}", job.name);
                    }
                }
                Outcome::Retry(e) => {
                    job.attempts += 1;
                    job.last_error = Some(e.to_string());
                    let _ = job.save(&svc.layout.work());
                    svc.hub_trouble(&e);
                    self.wait(svc, &e);
                    break;
                }
            }
        }
        summary.waiting = left;
        if let Ok(jobs) = outbox::jobs_in_progress(&svc.layout) {
            svc.monitor.pending(svc.now(), pending(&jobs));
        }
        summary
    }

    /// Waits out the hub before the next attempt.
    fn wait(&mut self, svc: &Service, e: &Error) {
        let wait = self.backoff.failed(e.retry_after);
        eprintln!("{e}; trying again in {} s", wait.as_secs().max(1));
        self.next_try = Some(Instant::now() + wait);
        let _ = svc;
    }
}

fn pending(jobs: &[jobs::Job]) -> Vec<monitor::Pending> {
    jobs.iter()
        .map(|j| monitor::Pending { job: j.name.clone(), attempts: j.attempts, last_error: j.last_error.clone() })
        .collect()
}

fn join(parties: &[PartyId]) -> String {
    parties.iter().map(PartyId::as_str).collect::<Vec<_>>().join(", ")
}

/// Checks sent drops for acknowledgements and non-deliveries.
fn check_sent(svc: &Service, tracking: &mut tracking::Tracking) {
    // The outbox side adds drops to the file; read what it holds now.
    if let Ok(now_tracked) = tracking::Tracking::load(svc) {
        *tracking = now_tracked;
    }
    match tracking.check(svc) {
        Ok(awaiting) => svc.monitor.checked(svc.now(), awaiting),
        Err(e) => {
            svc.hub_trouble(&e);
            svc.monitor.failed(svc.now(), "status", "sent drops", &e);
        }
    }
}

/// The inbox side, on its own thread until the process ends.
fn inbox_loop(svc: &Service) {
    let mut incoming = incoming::Incoming::default();
    let mut backoff = Backoff::default();
    // The first look does not wait: what is already waiting is fetched at
    // once, and status.json shows the hub answering from the start rather
    // than after the first long poll's minute.
    let mut wait = Duration::ZERO;
    while !stop::requested() {
        let started = Instant::now();
        let asked = std::mem::replace(&mut wait, svc.options.poll);
        match incoming.pass(svc, asked) {
            Ok(pass) if pass.failed > 0 => {
                // A drop that failed (and is not refused for good) is tried
                // again after a pause, not at once in a loop.
                let wait = backoff.failed(None);
                stop::sleep(wait);
            }
            Ok(pass) => {
                backoff.reset();
                // A hub that answers at once with nothing (no long-poll, or
                // `--poll 0`) is asked again after a pause, not in a spin.
                if asked == svc.options.poll
                    && pass.fetched + pass.failed == 0
                    && started.elapsed() < Duration::from_secs(1)
                {
                    stop::sleep(Duration::from_secs(15));
                }
            }
            Err(e) => {
                svc.hub_trouble(&e);
                if e.kind != Kind::Unreachable {
                    svc.monitor.failed(svc.now(), "fetch", "inbox", &e);
                }
                let wait = backoff.failed(e.retry_after);
                eprintln!("the inbox was not checked: {e}; trying again in {} s", wait.as_secs().max(1));
                stop::sleep(wait);
            }
        }
    }
}

/// One service per watch folder: a second would take the same files.
fn lock(layout: &Layout) -> Result<std::fs::File> {
    let path = layout.private().join("lock");
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(|e| Error::io(format!("cannot open {}", path.display()), e))?;
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(std::fs::TryLockError::WouldBlock) => Err(Error::new(
            ErrorCode::WatchBusy,
            format!(
                "another `sealdrop watch` is serving {} already; stop it first (one service per folder)",
                layout.root.display()
            ),
        )),
        Err(std::fs::TryLockError::Error(e)) => Err(Error::io(format!("cannot lock {}", path.display()), e)),
    }
}
