//! The inbox long-poll's wake-ups (`GET /v1/inbox?wait=N`): a recipient's
//! client asks once and the hub answers as soon as a drop for its party is
//! committed, instead of the client polling.
//!
//! Each waiting request registers a [`Waiter`] for its caller's party
//! *before* it reads the inbox, so a commit between that read and the wait
//! is not missed (its wake-up is already pending). A commit signals each
//! recipient party once its database transaction is durable
//! ([`InboxWaits::committed`]); only waiters of that party wake, and each
//! then reads its own party's inbox, so a wake-up never tells one party
//! anything about another's drops.
//!
//! Bounded: at most the hub's `max_inbox_waiters` requests wait at once,
//! and one party at most [`MAX_WAITERS_PER_PARTY`] of them (so one party's
//! clients cannot take every slot); a request beyond either answers at once
//! without waiting, never with an error. Parties nobody waits for hold no
//! memory here. A shutdown ([`InboxWaits::shut_down`]) wakes every waiter
//! and turns later requests into immediate answers, so the drain is not
//! held up by requests that would otherwise wait out their minute.
//!
//! Several instances sharing PostgreSQL do not see each other's commits
//! here, so the waiting request also reads the inbox again every
//! [`RECHECK_INTERVAL`] (see `crate::service::fetch`).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use sealdrop_proto::ids::PartyId;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use crate::metrics::Metrics;

/// The longest wait a request gets; a longer one asked for is shortened to
/// this, not refused. A minute keeps a waiting request well inside common
/// proxy and load-balancer idle timeouts (60 s and up) and the client's
/// own answer timeout.
pub const MAX_WAIT: Duration = Duration::from_secs(60);

/// How often a waiting request reads its party's inbox again even without a
/// wake-up: a commit on another hub instance sharing the database does not
/// wake this one's waiters, so without this a drop committed there would
/// reach a client waiting here only when its wait ends. Two seconds bounds
/// that delay at a cost of one indexed read per waiter every two seconds.
pub const RECHECK_INTERVAL: Duration = Duration::from_secs(2);

/// The default cap on requests waiting at once (`max_inbox_waiters`): half
/// the default connection cap, because each waiting request holds an
/// authenticated connection, which the connection cap never closes for
/// another; the other half stays free for uploads and downloads.
pub const DEFAULT_MAX_INBOX_WAITERS: usize = 256;

/// The most requests of one party that wait at once: a party runs a
/// handful of watching clients, and one party's runaway clients must not
/// take every waiting slot from the others.
pub const MAX_WAITERS_PER_PARTY: usize = 16;

/// The wait a request gets for the whole seconds it asked for: at most
/// [`MAX_WAIT`].
pub fn effective_wait(asked_secs: u64) -> Duration {
    Duration::from_secs(asked_secs).min(MAX_WAIT)
}

/// The requests waiting for drops, by party.
#[derive(Debug)]
pub struct InboxWaits {
    parties: Mutex<Parties>,
    /// Cancelled once, at shutdown; every waiter watches it.
    shutdown: CancellationToken,
    /// For the gauge of waiting requests.
    metrics: Arc<Metrics>,
}

#[derive(Debug, Default)]
struct Parties {
    /// Only parties with a waiter: an entry goes with its last waiter.
    by_party: HashMap<PartyId, PartyWaits>,
    /// Waiters of every party.
    waiting: usize,
}

#[derive(Debug)]
struct PartyWaits {
    /// Sent to at each commit for the party; each waiter holds a receiver.
    commits: watch::Sender<()>,
    waiters: usize,
}

/// Why a [`Waiter::wait`] returned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wake {
    /// A drop for the party was committed on this instance.
    Committed,
    /// The time given passed (a recheck, or the end of the wait).
    Timer,
    /// The hub is shutting down: answer now.
    Shutdown,
}

impl InboxWaits {
    /// No waiters, counted in `metrics`.
    pub fn new(metrics: Arc<Metrics>) -> Self {
        Self { parties: Mutex::default(), shutdown: CancellationToken::new(), metrics }
    }

    /// Registers a waiter for `party`, or `None` when `limit` requests (or
    /// [`MAX_WAITERS_PER_PARTY`] of this party's) already wait or the hub
    /// is shutting down: the request then answers at once. Call before
    /// reading the inbox.
    pub fn register(self: &Arc<Self>, party: &PartyId, limit: usize) -> Option<Waiter> {
        if self.shutdown.is_cancelled() {
            return None;
        }
        let mut parties = self.parties.lock().unwrap_or_else(PoisonError::into_inner);
        if parties.waiting >= limit {
            return None;
        }
        let entry = parties
            .by_party
            .entry(party.clone())
            .or_insert_with(|| PartyWaits { commits: watch::Sender::new(()), waiters: 0 });
        if entry.waiters >= MAX_WAITERS_PER_PARTY.min(limit) {
            return None;
        }
        entry.waiters += 1;
        // A fresh receiver counts the current value as seen: only commits
        // from now on wake it.
        let commits = entry.commits.subscribe();
        parties.waiting += 1;
        self.metrics.set_inbox_waiting(parties.waiting);
        Some(Waiter { waits: Arc::clone(self), party: party.clone(), commits, shutdown: self.shutdown.clone() })
    }

    /// A drop for `party` was committed (durably): wakes its waiters.
    pub fn committed(&self, party: &PartyId) {
        let parties = self.parties.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(entry) = parties.by_party.get(party) {
            entry.commits.send_replace(());
        }
    }

    /// Wakes every waiter and lets no request wait from now on.
    pub fn shut_down(&self) {
        self.shutdown.cancel();
    }

    /// Requests waiting now.
    pub fn waiting(&self) -> usize {
        self.parties.lock().unwrap_or_else(PoisonError::into_inner).waiting
    }

    fn unregister(&self, party: &PartyId) {
        let mut parties = self.parties.lock().unwrap_or_else(PoisonError::into_inner);
        parties.waiting = parties.waiting.saturating_sub(1);
        if let Some(entry) = parties.by_party.get_mut(party) {
            entry.waiters = entry.waiters.saturating_sub(1);
            if entry.waiters == 0 {
                parties.by_party.remove(party);
            }
        }
        self.metrics.set_inbox_waiting(parties.waiting);
    }
}

/// One waiting request's registration; dropping it (the answer sent, or the
/// client gone) frees its slot.
#[derive(Debug)]
pub struct Waiter {
    waits: Arc<InboxWaits>,
    party: PartyId,
    commits: watch::Receiver<()>,
    shutdown: CancellationToken,
}

impl Waiter {
    /// Waits for a commit for the party (one since the last call, or since
    /// registering, counts at once), a shutdown, or `until`.
    pub async fn wait(&mut self, until: tokio::time::Instant) -> Wake {
        tokio::select! {
            biased;
            () = self.shutdown.cancelled() => Wake::Shutdown,
            // The sender lives while this waiter is registered; were it
            // gone, this branch would be disabled and the others remain.
            Ok(()) = self.commits.changed() => Wake::Committed,
            () = tokio::time::sleep_until(until) => Wake::Timer,
        }
    }
}

impl Drop for Waiter {
    fn drop(&mut self) {
        self.waits.unregister(&self.party);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::time::Instant;

    fn party(id: &str) -> PartyId {
        id.parse().unwrap()
    }

    fn waits() -> Arc<InboxWaits> {
        Arc::new(InboxWaits::new(Arc::new(Metrics::new())))
    }

    #[test]
    fn a_wait_over_a_minute_is_capped_at_a_minute() {
        assert_eq!(effective_wait(0), Duration::ZERO);
        assert_eq!(effective_wait(1), Duration::from_secs(1));
        assert_eq!(effective_wait(60), MAX_WAIT);
        assert_eq!(effective_wait(61), MAX_WAIT);
        assert_eq!(effective_wait(u64::MAX), MAX_WAIT);
    }

    #[tokio::test]
    async fn a_commit_wakes_its_partys_waiters_only() {
        let waits = waits();
        let mut camden = waits.register(&party("camden"), 10).unwrap();
        let mut islington = waits.register(&party("islington"), 10).unwrap();
        // Committed between registering and waiting: not missed.
        waits.committed(&party("camden"));
        let soon = Instant::now() + Duration::from_millis(200);
        assert_eq!(camden.wait(Instant::now() + Duration::from_secs(30)).await, Wake::Committed);
        assert_eq!(islington.wait(soon).await, Wake::Timer, "another party's commit wakes nobody here");
        // Seen once: the next wait waits for the next commit.
        assert_eq!(camden.wait(Instant::now() + Duration::from_millis(100)).await, Wake::Timer);
    }

    #[tokio::test]
    async fn the_caps_answer_at_once_and_slots_come_back_when_waiters_go() {
        let waits = waits();
        let first = waits.register(&party("camden"), 2).unwrap();
        let second = waits.register(&party("islington"), 2).unwrap();
        assert!(waits.register(&party("hackney"), 2).is_none(), "the total cap");
        assert_eq!(waits.waiting(), 2);
        drop(first);
        assert_eq!(waits.waiting(), 1);
        assert!(waits.register(&party("hackney"), 2).is_some(), "a freed slot is reused");
        drop(second);
        let mine: Vec<Waiter> =
            (0..MAX_WAITERS_PER_PARTY).map(|_| waits.register(&party("barnet"), 1000).unwrap()).collect();
        assert!(waits.register(&party("barnet"), 1000).is_none(), "one party's cap");
        assert!(waits.register(&party("camden"), 1000).is_some(), "other parties still wait");
        drop(mine);
        assert_eq!(waits.parties.lock().unwrap().by_party.len(), 0, "no memory for parties nobody waits for");
        assert_eq!(waits.waiting(), 0);
    }

    #[tokio::test]
    async fn shutdown_wakes_every_waiter_and_no_request_waits_after() {
        let waits = waits();
        let mut a = waits.register(&party("camden"), 10).unwrap();
        let mut b = waits.register(&party("islington"), 10).unwrap();
        let far = Instant::now() + Duration::from_secs(60);
        let both = async { (a.wait(far).await, b.wait(far).await) };
        let shutdown = async {
            tokio::time::sleep(Duration::from_millis(50)).await;
            waits.shut_down();
        };
        let ((wa, wb), ()) = tokio::time::timeout(Duration::from_secs(10), async { tokio::join!(both, shutdown) })
            .await
            .expect("shutdown wakes the waiters");
        assert_eq!((wa, wb), (Wake::Shutdown, Wake::Shutdown));
        assert!(waits.register(&party("camden"), 10).is_none());
    }

    #[test]
    fn the_gauge_counts_waiting_requests() {
        let metrics = Arc::new(Metrics::new());
        let waits = Arc::new(InboxWaits::new(Arc::clone(&metrics)));
        let gauge = || crate::metrics::sample(&metrics.encode(), "sealdrop_hub_inbox_waiting", "");
        let a = waits.register(&party("camden"), 10).unwrap();
        let b = waits.register(&party("camden"), 10).unwrap();
        assert_eq!(gauge(), Some(2.0));
        drop(a);
        assert_eq!(gauge(), Some(1.0));
        drop(b);
        assert_eq!(gauge(), Some(0.0));
    }
}
