//! Group commit: many callers that each need "everything I committed is on
//! disk" share one `fsync`.
//!
//! A caller whose transaction has committed calls [`GroupSync::sync`]. If
//! nobody is syncing, it becomes the leader: it notes how many commits have
//! been announced so far, runs one sync, and so makes all of them durable.
//! Callers that arrive meanwhile wait; when the sync they need is already
//! covered they return at once, otherwise one of them leads the next sync.
//! With 32 senders committing at once this turns 32 fsyncs into one or two,
//! while no caller is ever answered before its own commit is durable.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Condvar, Mutex, MutexGuard, PoisonError};

/// Shares one durable sync among concurrent callers.
pub struct GroupSync<F> {
    /// Makes every write issued before the call durable (e.g. `fsync`).
    flush: F,
    /// Commits announced so far (each caller takes the next number).
    announced: AtomicU64,
    /// Progress of the syncs.
    state: Mutex<State>,
    /// Signalled when a sync finishes.
    finished: Condvar,
}

#[derive(Default)]
struct State {
    /// Every commit numbered up to this one is durable.
    durable: u64,
    /// A leader is syncing now.
    syncing: bool,
    /// Syncs run so far (for tests and metrics).
    syncs: u64,
}

impl<F: Fn() -> std::io::Result<()>> GroupSync<F> {
    /// Uses `flush` to make writes durable.
    pub fn new(flush: F) -> Self {
        Self { flush, announced: AtomicU64::new(0), state: Mutex::new(State::default()), finished: Condvar::new() }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Returns once everything committed before the call is durable. Call it
    /// only after the commit returned: its number is taken here, so a sync
    /// that starts later covers it.
    pub fn sync(&self) -> std::io::Result<()> {
        let mine = self.announced.fetch_add(1, Ordering::SeqCst) + 1;
        let mut state = self.lock();
        loop {
            if state.durable >= mine {
                return Ok(());
            }
            if !state.syncing {
                break;
            }
            state = self.finished.wait(state).unwrap_or_else(PoisonError::into_inner);
        }
        // Lead: whatever was announced by now was committed before this sync starts.
        state.syncing = true;
        let covers = self.announced.load(Ordering::SeqCst);
        drop(state);
        let result = (self.flush)();
        let mut state = self.lock();
        state.syncing = false;
        state.syncs += 1;
        if result.is_ok() {
            state.durable = state.durable.max(covers);
        }
        drop(state);
        self.finished.notify_all();
        result
    }

    /// How many syncs have run (fewer than calls when callers shared them).
    pub fn syncs(&self) -> u64 {
        self.lock().syncs
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::AtomicBool;
    use std::time::Duration;

    #[test]
    fn a_lone_caller_syncs_every_time() {
        let g = GroupSync::new(|| Ok(()));
        for _ in 0..3 {
            g.sync().unwrap();
        }
        assert_eq!(g.syncs(), 3);
    }

    #[test]
    fn concurrent_callers_share_syncs_and_none_returns_before_a_sync_that_covers_it() {
        // Each flush takes a while, so callers pile up behind it.
        let flushed = Arc::new(AtomicU64::new(0));
        let f = flushed.clone();
        let g = Arc::new(GroupSync::new(move || {
            std::thread::sleep(Duration::from_millis(5));
            f.fetch_add(1, Ordering::SeqCst);
            Ok(())
        }));
        let threads: Vec<_> = (0..32)
            .map(|_| {
                let (g, flushed) = (g.clone(), flushed.clone());
                std::thread::spawn(move || {
                    for _ in 0..10 {
                        let before = flushed.load(Ordering::SeqCst);
                        g.sync().unwrap();
                        // A flush finished after this call began.
                        assert!(flushed.load(Ordering::SeqCst) > before);
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        let syncs = g.syncs();
        assert!(syncs < 320 / 4, "320 calls took {syncs} syncs");
        assert_eq!(flushed.load(Ordering::SeqCst), syncs);
    }

    #[test]
    fn a_failed_sync_is_reported_and_the_next_caller_tries_again() {
        let fail = Arc::new(AtomicBool::new(true));
        let f = fail.clone();
        let g = GroupSync::new(move || {
            if f.swap(false, Ordering::SeqCst) { Err(std::io::Error::other("disk gone")) } else { Ok(()) }
        });
        assert_eq!(g.sync().unwrap_err().to_string(), "disk gone");
        g.sync().unwrap();
        assert_eq!(g.syncs(), 2);
    }
}
