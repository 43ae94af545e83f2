//! Ctrl-C (SIGINT) and SIGTERM during a send.
//!
//! Killed by the signal, a send used to leave its drop open on the hub, a
//! 0-byte drop `status` showed as waiting for days, and said nothing. Now
//! `send` (and `send --split-by`) catch both signals ([`install`]); the
//! handler withdraws every drop the command created and did not commit
//! ([`crate::withdraw`]), lets the command finish the bookkeeping of what
//! it did commit (receipts and journal: nothing half-written), and exits
//! with 128 + the signal's number (130 for Ctrl-C) after one line,
//! `error[interrupted]: ...`, saying what happened. A committed drop was
//! sent and is not withdrawn (taking it back is `sealdrop recall`). If the
//! hub cannot be reached, the line says so and that the same send run
//! again continues or replaces the drop (the local record
//! [`crate::withdraw::remember`] keeps makes that true). A second signal
//! exits at once.
//!
//! The command's thread is never stopped from outside: it notices the
//! interrupt at its next step ([`check`]; the upload's tee checks every
//! chunk), stops creating and committing, and parks at [`settle`] instead
//! of printing or exiting on its own, so the handler's line is the last word.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Condvar, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use sealdrop_proto::ids::DropId;

use crate::error::{Error, ErrorCode, Kind, Result};
use crate::transport::HubApi;
use crate::withdraw::{Withdrawal, withdraw};

/// The error code of the line an interrupted send prints.
pub const CODE: ErrorCode = ErrorCode::Interrupted;

/// How long the handler waits for the command to finish its bookkeeping
/// (a receipt fetch may need the hub) before exiting anyway.
const SETTLE_WITHIN: Duration = Duration::from_secs(20);

/// Set once a signal arrived; read on every chunk of an upload.
static INTERRUPTED: AtomicBool = AtomicBool::new(false);

/// What the running command has on the hub.
struct State {
    /// `send` or `split`, for the message.
    what: &'static str,
    /// Whether the command may be creating drops (before this, an interrupt
    /// has nothing to wait for: the confirmation prompt, the directory).
    working: bool,
    /// Drops created and not (yet) committed.
    open: Vec<Open>,
    /// Drops committed by this run.
    committed: Vec<DropId>,
    /// The command's thread has stopped and parked.
    settled: bool,
    /// Folders of local working copies to remove on the way out.
    scratch: Vec<PathBuf>,
}

/// A drop created on the hub and not committed.
struct Open {
    id: DropId,
    /// A client of its own: the command's may be busy uploading.
    hub: HubApi,
    /// Where its records live, for a plain send (a split's parts have none).
    state_dir: Option<PathBuf>,
}

static STATE: Mutex<State> = Mutex::new(State {
    what: "send",
    working: false,
    open: Vec::new(),
    committed: Vec::new(),
    settled: false,
    scratch: Vec::new(),
});
static SETTLED: Condvar = Condvar::new();

fn state() -> MutexGuard<'static, State> {
    STATE.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Catches SIGINT and SIGTERM for the rest of this `what` (`send` or
/// `split`) command. Returns once the handlers are in place, so no drop is
/// created before an interrupt would be seen.
pub fn install(what: &'static str) -> Result<()> {
    state().what = what;
    let (ready_tx, ready_rx) = std::sync::mpsc::channel::<std::io::Result<()>>();
    std::thread::Builder::new()
        .name("signals".into())
        .spawn(move || {
            use tokio::signal::unix::{SignalKind, signal};
            let runtime = match tokio::runtime::Builder::new_current_thread().enable_io().build() {
                Ok(r) => r,
                Err(e) => {
                    let _ = ready_tx.send(Err(e));
                    return;
                }
            };
            runtime.block_on(async move {
                let (mut int, mut term) = match (signal(SignalKind::interrupt()), signal(SignalKind::terminate())) {
                    (Ok(i), Ok(t)) => (i, t),
                    (Err(e), _) | (_, Err(e)) => {
                        let _ = ready_tx.send(Err(e));
                        return;
                    }
                };
                let _ = ready_tx.send(Ok(()));
                let signo = tokio::select! {
                    _ = int.recv() => 2,
                    _ = term.recv() => 15,
                };
                INTERRUPTED.store(true, Ordering::SeqCst);
                std::thread::spawn(move || handle(signo));
                tokio::select! {
                    _ = int.recv() => {}
                    _ = term.recv() => {}
                }
                // A second signal: the analyst does not want to wait for
                // the hub. Any drop still open has its local record.
                eprintln!(
                    "error[{CODE}]: {} interrupted again before the hub answered; a drop it created may still be \
                     open there (nobody can see it): run the same command again to replace it",
                    state().what
                );
                std::process::exit(128 + signo);
            });
        })
        .map_err(|e| Error::new(ErrorCode::Internal, format!("cannot watch for Ctrl-C: {e}")))?;
    match ready_rx.recv() {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => Err(Error::new(ErrorCode::Internal, format!("cannot watch for Ctrl-C: {e}"))),
        Err(_) => Err(Error::new(ErrorCode::Internal, "cannot watch for Ctrl-C")),
    }
}

/// Whether a signal arrived.
pub fn requested() -> bool {
    INTERRUPTED.load(Ordering::SeqCst)
}

/// The error a step returns instead of going on after an interrupt (never
/// printed: the command parks at [`settle`] and the handler reports).
pub fn check() -> Result<()> {
    if requested() {
        return Err(Error::new(CODE, "interrupted"));
    }
    Ok(())
}

/// The command is about to create drops: from now on an interrupt waits for
/// it to stop (see [`settle`]) before reporting.
pub fn working() {
    state().working = true;
}

/// Drop `id` was created on `hub` and is not committed. `state_dir` is where
/// a plain send keeps its records (`None` for a split's parts).
pub fn opened(hub: &HubApi, id: &DropId, state_dir: Option<&Path>) {
    state().open.push(Open { id: id.clone(), hub: hub.twin(), state_dir: state_dir.map(Path::to_path_buf) });
}

/// Drop `id` was never made: a hub refused to take it in one request
/// (it stored nothing), so Ctrl-C has nothing of it to withdraw.
pub fn not_made(id: &DropId) {
    state().open.retain(|o| o.id != *id);
}

/// Drop `id` was committed: it is sent, and never withdrawn.
pub fn committed(id: &DropId) {
    let mut s = state();
    s.open.retain(|o| o.id != *id);
    s.committed.push(id.clone());
}

/// Folder `dir` holds local working copies to remove if the command is interrupted.
pub fn scratch(dir: &Path) {
    state().scratch.push(dir.to_path_buf());
}

/// Called by the command when it has stopped (returned, whatever the
/// result): after an interrupt, tells the handler and waits for it to exit;
/// otherwise returns at once.
pub fn settle() {
    if !requested() {
        return;
    }
    state().settled = true;
    SETTLED.notify_all();
    loop {
        std::thread::park();
    }
}

/// What the handler did, for its one line.
#[derive(Default)]
struct Report {
    withdrawn: Vec<DropId>,
    /// Not withdrawn, and whether the same send run again continues it
    /// (from its local encrypted copy) rather than replacing it.
    stranded: Vec<(DropId, bool, Error)>,
    committed: Vec<DropId>,
}

fn handle(signo: i32) -> ! {
    let mut report = Report::default();
    let first = std::mem::take(&mut state().open);
    withdraw_all(first, &mut report);
    // Let the command stop: it finishes the receipts and journal of what it
    // committed, and any drop it was creating when the signal came is then
    // known and withdrawn too.
    let deadline = Instant::now() + SETTLE_WITHIN;
    let mut s = state();
    while s.working && !s.settled {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            break;
        }
        s = SETTLED.wait_timeout(s, left).unwrap_or_else(PoisonError::into_inner).0;
    }
    let later = std::mem::take(&mut s.open);
    let (what, scratch) = (s.what, std::mem::take(&mut s.scratch));
    report.committed.extend(s.committed.iter().cloned());
    drop(s);
    withdraw_all(later, &mut report);
    for dir in scratch {
        let _ = std::fs::remove_dir_all(dir);
    }
    eprintln!("error[{CODE}]: {}", line(what, &report));
    std::process::exit(128 + signo);
}

fn withdraw_all(open: Vec<Open>, report: &mut Report) {
    for o in open {
        match withdraw(&o.hub, &o.id) {
            Withdrawal::Withdrawn | Withdrawal::AlreadyGone => {
                if let Some(dir) = &o.state_dir {
                    crate::withdraw::forget(dir, &o.id);
                    crate::outgoing::discard(dir, &o.id);
                }
                report.withdrawn.push(o.id);
            }
            Withdrawal::Committed => report.committed.push(o.id),
            Withdrawal::Failed(e) => {
                let continues = o.state_dir.as_deref().is_some_and(|d| crate::outgoing::continuable(d, &o.id));
                report.stranded.push((o.id, continues, e));
            }
        }
    }
}

fn ids(ids: &[DropId]) -> String {
    ids.iter().map(DropId::as_str).collect::<Vec<_>>().join(", ")
}

fn drops(n: usize) -> &'static str {
    if n == 1 { "drop" } else { "drops" }
}

/// The handler's line (after `error[interrupted]: `).
fn line(what: &str, r: &Report) -> String {
    let mut committed = r.committed.clone();
    committed.sort();
    committed.dedup();
    let mut parts = vec![format!("{what} interrupted")];
    if !r.withdrawn.is_empty() {
        parts.push(format!("{} {} withdrawn from the hub", drops(r.withdrawn.len()), ids(&r.withdrawn)));
    }
    for (id, continues, e) in &r.stranded {
        let why = if e.kind == Kind::Unreachable { "hub unreachable".to_owned() } else { e.code.clone() };
        let then = if *continues { "continue" } else { "replace" };
        parts.push(format!(
            "drop {id} could not be withdrawn ({why}); nobody can see it: run the same {} again to {then} it",
            if what == "split" { "command" } else { "send" }
        ));
    }
    if !committed.is_empty() {
        parts.push(format!(
            "{} {} had already been committed: sent, and not withdrawn (`sealdrop recall ID` takes one back)",
            drops(committed.len()),
            ids(&committed)
        ));
        if what == "split" {
            parts.push("run the same command again to send the rest".to_owned());
        }
    } else if r.stranded.is_empty() {
        parts.push("nothing was sent".to_owned());
    }
    parts.join("; ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id() -> DropId {
        DropId::random()
    }

    #[test]
    fn the_line_says_what_happened() {
        let a = id();
        let withdrawn = Report { withdrawn: vec![a.clone()], ..Report::default() };
        assert_eq!(
            line("send", &withdrawn),
            format!("send interrupted; drop {a} withdrawn from the hub; nothing was sent")
        );
        assert_eq!(line("send", &Report::default()), "send interrupted; nothing was sent");
        let down = Error::new(ErrorCode::HubUnreachable, "cannot reach the hub");
        let stranded = Report { stranded: vec![(a.clone(), false, down.clone())], ..Report::default() };
        assert_eq!(
            line("send", &stranded),
            format!(
                "send interrupted; drop {a} could not be withdrawn (hub unreachable); nobody can see it: run the same send again to replace it"
            )
        );
        let continued = Report { stranded: vec![(a.clone(), true, down)], ..Report::default() };
        assert!(line("send", &continued).ends_with("run the same send again to continue it"));
        let sent = Report { committed: vec![a.clone(), a.clone()], ..Report::default() };
        assert_eq!(
            line("send", &sent),
            format!(
                "send interrupted; drop {a} had already been committed: sent, and not withdrawn (`sealdrop recall ID` takes one back)"
            )
        );
        let b = id();
        let split = Report { withdrawn: vec![b.clone()], committed: vec![a.clone()], ..Report::default() };
        let text = line("split", &split);
        assert!(text.starts_with(&format!("split interrupted; drop {b} withdrawn from the hub; drop {a} had already")));
        assert!(text.ends_with("run the same command again to send the rest"), "{text}");
    }
}
