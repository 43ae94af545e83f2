//! The thread that runs the database's calls, one after another.
//!
//! Why not `spawn_blocking` per call: the connection is one, behind a
//! mutex, so calls run one at a time whichever thread runs them. Handing each
//! to tokio's blocking pool woke a different pool thread per call, and the
//! threads then queued on the pool's lock and the connection's: a small drop
//! in one request cost the hub ~39 context switches, which was most of its
//! CPU per drop (`bench/RESULTS.md`, issue 23). One thread taking calls from
//! a queue runs them back to back while callers keep it busy, and is woken
//! at most once per call when they do not.
//!
//! Durability stays shared ([`super::GroupSync`]): a call that commits a
//! transaction needing the disk does not sync on this thread (every other
//! call would wait behind the fsync, and no two commits could ever share
//! one). It marks the sync as wanted; its caller then waits for a group sync
//! on the blocking pool before it is answered, exactly as before.

use std::cell::Cell;
use std::sync::Arc;
use std::sync::mpsc;

use super::Db;
use crate::storage::meta::MetaError;

/// One call: runs with the database, then answers its caller.
type Job = Box<dyn FnOnce() + Send>;

thread_local! {
    /// Set on the database thread.
    static ON_WORKER: Cell<bool> = const { Cell::new(false) };
    /// Set by a call that committed a transaction needing a WAL sync.
    static SYNC_WANTED: Cell<bool> = const { Cell::new(false) };
}

/// The queue to the database thread; the thread ends when this is dropped.
pub(super) struct Worker {
    /// Where calls are queued.
    jobs: mpsc::Sender<Job>,
}

impl Worker {
    /// Starts the thread.
    pub(super) fn start() -> Result<Self, MetaError> {
        let (jobs, queue) = mpsc::channel::<Job>();
        std::thread::Builder::new()
            .name("sealdrop-db".into())
            .spawn(move || {
                ON_WORKER.with(|w| w.set(true));
                while let Ok(job) = queue.recv() {
                    job();
                }
            })
            .map_err(|e| MetaError::Corrupt(format!("cannot start the database thread: {e}")))?;
        Ok(Self { jobs })
    }
}

/// On the database thread: notes that the caller must wait for a WAL sync
/// before it is answered, and returns true. Elsewhere (opening the store):
/// false, and the caller syncs itself.
pub(super) fn defer_sync() -> bool {
    ON_WORKER.with(Cell::get) && {
        SYNC_WANTED.with(|s| s.set(true));
        true
    }
}

/// Runs `f` on the database thread and returns its result once any WAL sync
/// it asked for ([`defer_sync`]) covers it.
pub(super) async fn run<T: Send + 'static>(
    db: &Arc<Db>,
    f: impl FnOnce(&Db) -> Result<T, MetaError> + Send + 'static,
) -> Result<T, MetaError> {
    let (answer, answered) = tokio::sync::oneshot::channel();
    let on_thread = Arc::clone(db);
    let job: Job = Box::new(move || {
        SYNC_WANTED.with(|s| s.set(false));
        // A panicking call must not take the thread (and every later call) with it.
        let out = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| f(&on_thread)))
            .unwrap_or_else(|_| Err(MetaError::Corrupt("a database call panicked; see the hub's log".into())));
        let _ = answer.send((out, SYNC_WANTED.with(Cell::get)));
    });
    db.worker
        .jobs
        .send(job)
        .map_err(|_| MetaError::Corrupt("the database thread has stopped; restart the hub".into()))?;
    let (out, sync) = answered
        .await
        .map_err(|_| MetaError::Corrupt("the database thread stopped during a call; restart the hub".into()))?;
    if sync {
        // Whatever the call returned, what it committed is made durable
        // before anyone hears of it.
        let db = Arc::clone(db);
        let synced = tokio::task::spawn_blocking(move || db.sync_wal_now())
            .await
            .map_err(|e| MetaError::Corrupt(format!("a database sync failed: {e}")))
            .and_then(|r| r);
        if let Err(e) = synced {
            return out.and(Err(e));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use sealdrop_proto::ids::DropId;

    use super::*;
    use crate::storage::meta::{DropStore as _, NewDrop};
    use crate::storage::meta_conformance::fixtures::new_drop;
    use crate::storage::sqlite::SqliteMetaStore;

    fn another() -> NewDrop {
        NewDrop { id: DropId::random(), ..new_drop(&["islington"]) }
    }

    #[tokio::test]
    async fn a_call_that_panics_is_an_error_and_later_calls_still_run() {
        let s = SqliteMetaStore::open_in_memory().unwrap();
        let err = run(&s.db, |_| -> Result<(), MetaError> { panic!("a bug") }).await.unwrap_err();
        assert!(err.to_string().contains("panicked"), "{err}");
        let n: i64 = run(&s.db, |db| Ok(db.conn().query_row("SELECT 40 + 2", [], |r| r.get(0))?)).await.unwrap();
        assert_eq!(n, 42);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn durable_calls_are_answered_only_after_a_sync_that_started_after_them() {
        let dir = tempfile::tempdir().unwrap();
        let s = Arc::new(SqliteMetaStore::open(&dir.path().join("hub.db")).unwrap());
        let before = s.wal_syncs();
        let tasks: Vec<_> = (0..32)
            .map(|_| {
                let s = Arc::clone(&s);
                tokio::spawn(async move {
                    let asked = s.wal_syncs();
                    s.create_drop(&another()).await.unwrap();
                    // Answered only after a sync that ran after the call was made.
                    assert!(s.wal_syncs() > asked);
                })
            })
            .collect();
        for t in tasks {
            t.await.unwrap();
        }
        // Shared when the disk is slow enough for callers to pile up (the
        // group sync's own tests show that); never more than one a call.
        let syncs = s.wal_syncs() - before;
        assert!((1..=32).contains(&syncs), "32 durable creates took {syncs} syncs");
    }

    #[tokio::test]
    async fn a_create_inside_a_one_request_drop_waits_for_no_sync_of_its_own() {
        let dir = tempfile::tempdir().unwrap();
        let s = SqliteMetaStore::open(&dir.path().join("hub.db")).unwrap();
        let before = s.wal_syncs();
        s.create_drop(&NewDrop { durable_now: false, ..another() }).await.unwrap();
        assert_eq!(s.wal_syncs(), before, "its commit's sync covers it");
        s.create_drop(&another()).await.unwrap();
        assert_eq!(s.wal_syncs(), before + 1);
    }
}
