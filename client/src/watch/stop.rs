//! Stopping the service: SIGTERM (systemd) or SIGINT (Ctrl-C) ends the
//! loops at their next step. A job being sent is finished first, or cut
//! where a restart continues it under the same idempotency key; nothing is
//! half-sent either way.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use crate::error::{Error, Result};

/// Set once a signal arrived.
static STOP: AtomicBool = AtomicBool::new(false);

/// Starts the thread that waits for the signals.
pub fn install() -> Result<()> {
    std::thread::Builder::new()
        .name("signals".into())
        .spawn(|| {
            let Ok(runtime) = tokio::runtime::Builder::new_current_thread().enable_all().build() else { return };
            runtime.block_on(async {
                use tokio::signal::unix::{SignalKind, signal};
                let (Ok(mut int), Ok(mut term)) = (signal(SignalKind::interrupt()), signal(SignalKind::terminate()))
                else {
                    return;
                };
                tokio::select! {
                    _ = int.recv() => {}
                    _ = term.recv() => {}
                }
                STOP.store(true, Ordering::SeqCst);
                // A second signal: stop now (a restart goes on where this left off).
                tokio::select! {
                    _ = int.recv() => {}
                    _ = term.recv() => {}
                }
                std::process::exit(143);
            });
        })
        .map(|_| ())
        .map_err(|e| Error::io("cannot start the signal thread", e))
}

/// Whether a stop was asked for.
pub fn requested() -> bool {
    STOP.load(Ordering::SeqCst)
}

/// Sleeps `d`, waking early when a stop is asked for.
pub fn sleep(d: Duration) {
    let end = Instant::now() + d;
    while !requested() {
        let left = end.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return;
        }
        std::thread::sleep(left.min(Duration::from_millis(200)));
    }
}
