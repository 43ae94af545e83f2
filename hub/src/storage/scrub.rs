//! Deleted means deleted, for the small ciphertexts kept in the database.
//!
//! Deleting a row does not erase its bytes: SQLite leaves them in the freed
//! pages of `hub.db`, and every earlier version of a page stays in the
//! write-ahead log (`hub.db-wal`) until the log is reset. So the hub runs
//! with `PRAGMA secure_delete = ON` (freed content and pages are
//! overwritten with zeros, in the same transaction), and after a
//! transaction that deleted ciphertext it checkpoints the log with
//! `TRUNCATE`: the zeroed pages are copied into `hub.db` over the old ones
//! and the log is emptied. Only then does the deletion return, so once a
//! drop's deletion is answered no byte of its ciphertext is left in any file
//! of the data directory, just as when its blob file is unlinked.
//!
//! A checkpoint is shared by concurrent deletions (a [`GroupSync`]: each
//! waits for one that started after its own transaction). A reader holding
//! an older snapshot (a backup being taken, an operator's `sqlite3`)
//! blocks the reset; the hub then waits briefly, reports the failure, and
//! retries in the background until it succeeds.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use super::group_sync::GroupSync;

/// One attempt at scrubbing: `Ok` once the log is reset.
pub type Attempt = Arc<dyn Fn() -> std::io::Result<()> + Send + Sync>;

/// How long the background retries wait between attempts.
const RETRY_EVERY: Duration = Duration::from_secs(5);

/// Shares scrubbing checkpoints among concurrent deletions.
pub struct Scrubber {
    group: GroupSync<Box<dyn Fn() -> std::io::Result<()> + Send + Sync>>,
    attempt: Attempt,
    retrying: Arc<AtomicBool>,
}

impl Scrubber {
    /// Scrubs with `attempt`.
    pub fn new(attempt: Attempt) -> Self {
        let each = Arc::clone(&attempt);
        Self { group: GroupSync::new(Box::new(move || each())), attempt, retrying: Arc::new(AtomicBool::new(false)) }
    }

    /// Returns once a scrub that started after the call succeeded; if it
    /// failed, starts retrying in the background and returns the error.
    pub fn scrub(&self) -> std::io::Result<()> {
        let result = self.group.sync();
        if result.is_err() {
            self.retry_in_background();
        }
        result
    }

    /// How many scrubs have run (fewer than calls when callers shared them).
    pub fn runs(&self) -> u64 {
        self.group.syncs()
    }

    fn retry_in_background(&self) {
        if self.retrying.swap(true, Ordering::SeqCst) {
            return;
        }
        let (attempt, retrying) = (Arc::clone(&self.attempt), Arc::clone(&self.retrying));
        let spawned = std::thread::Builder::new().name("sealdrop-scrub".into()).spawn(move || {
            loop {
                std::thread::sleep(RETRY_EVERY);
                match attempt() {
                    Ok(()) => {
                        tracing::info!("scrubbed the database's write-ahead log after an earlier failure");
                        break;
                    }
                    Err(e) => tracing::debug!(error = %e, "scrubbing the write-ahead log failed again; retrying"),
                }
            }
            retrying.store(false, Ordering::SeqCst);
        });
        if spawned.is_err() {
            self.retrying.store(false, Ordering::SeqCst);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicU32;

    #[test]
    fn a_failed_scrub_is_reported_and_retried_until_it_succeeds() {
        let calls = Arc::new(AtomicU32::new(0));
        let counted = Arc::clone(&calls);
        // Fails twice (a reader holds the log), then succeeds.
        let scrubber = Scrubber::new(Arc::new(move || {
            if counted.fetch_add(1, Ordering::SeqCst) < 2 { Err(std::io::Error::other("busy")) } else { Ok(()) }
        }));
        assert!(scrubber.scrub().is_err());
        assert!(scrubber.retrying.load(Ordering::SeqCst), "a retry runs in the background");
        assert!(scrubber.scrub().is_err(), "the second attempt fails too, and starts no second retrier");
        let started = std::time::Instant::now();
        while scrubber.retrying.load(Ordering::SeqCst) {
            assert!(started.elapsed() < RETRY_EVERY * 3, "the background retry never succeeded");
            std::thread::sleep(Duration::from_millis(20));
        }
        assert_eq!(calls.load(Ordering::SeqCst), 3);
        scrubber.scrub().unwrap();
        assert_eq!(scrubber.runs(), 3);
    }
}
