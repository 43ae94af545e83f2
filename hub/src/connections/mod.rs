//! The connection cap: at most `max_connections` open at once, and at most
//! `max_connections_per_address` from one client address, so idle or slow
//! connections can exhaust neither the hub's file descriptors nor its
//! memory, and one address cannot take the whole cap.
//!
//! When a new connection would pass a cap, the hub does not simply turn it
//! away (that would let whoever holds the slots deny service to members):
//! it closes the connection that is least useful instead, in this order
//! (within each, the one idle longest, or whose request began first):
//!
//! 1. an idle connection (no request in flight: waiting for the head of
//!    its first or next request) that never completed a request: a fresh
//!    connection that sends nothing, or trickles a head (slowloris);
//! 2. an unauthenticated request whose body is still arriving (a directory
//!    trickled in);
//! 3. an idle connection that completed requests, none authenticated (a
//!    client between public requests, or someone imitating one);
//! 4. an unauthenticated request fully received, being answered;
//! 5. an idle connection that carried a member's request (kept alive for
//!    its next one).
//!
//! A connection serving an authenticated request (a member's upload or
//! download) is never closed for another; only when every slot holds one
//! is the newcomer refused. Members' requests are therefore served while
//! the cap is held by idle or slow connections, whoever opened them. The
//! per-address cap is applied first, among that address's own connections,
//! so a single address churning its connections only ever closes its own.
//! Trusted reverse proxies (see [`crate::client_addr`]) carry many clients'
//! requests and count only towards the total.
//!
//! How: [`TrackedAcceptor`] admits each accepted TCP stream into the
//! [`Registry`] and wraps it in a [`TrackedStream`], whose reads and writes
//! fail once the registry closes it (waking the connection's task, so a
//! connection parked waiting for bytes goes at once). The [`track`]
//! middleware marks a request in flight until its response body ends, and
//! the request authentication marks it authenticated ([`mark_authenticated`]).
//!
//! `requests` holds the request side (the middleware and the bodies it
//! wraps), `stream` the acceptor and the stream side.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Instant;

use futures_util::task::AtomicWaker;

use crate::client_addr::TrustedProxies;
use crate::metrics::Metrics;
use crate::rate_limit::address_key;

mod requests;
mod stream;

pub use requests::{mark_authenticated, track};
pub use stream::{TrackedAcceptor, TrackedStream, raise_open_file_limit};

/// The default cap on open connections.
pub const DEFAULT_MAX_CONNECTIONS: usize = 512;
/// The default cap on open connections from one client address (IPv6: one /64).
pub const DEFAULT_MAX_CONNECTIONS_PER_ADDRESS: usize = 64;

/// File descriptors kept free beyond the connection cap: the database, its
/// WAL, blob and upload files being written or read, the listeners.
pub const FD_RESERVE: u64 = 256;

/// How many connections may be open.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnectionLimits {
    /// In all.
    pub total: usize,
    /// From one client address (IPv6: one /64); trusted proxies are exempt.
    pub per_address: usize,
}

impl Default for ConnectionLimits {
    fn default() -> Self {
        Self { total: DEFAULT_MAX_CONNECTIONS, per_address: DEFAULT_MAX_CONNECTIONS_PER_ADDRESS }
    }
}

/// Why a new connection was turned away.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Refused {
    /// Every connection of its address serves an authenticated request.
    #[error("address {0} already has {1} connections serving authenticated requests")]
    Address(IpAddr, usize),
    /// Every connection serves an authenticated request.
    #[error("all {0} connections are serving authenticated requests")]
    Full(usize),
}

/// One open connection.
#[derive(Debug)]
pub struct Conn {
    peer: SocketAddr,
    /// The per-address key (IPv6: its /64), if the per-address cap applies.
    capped: Option<IpAddr>,
    /// Requests in flight (HTTP/1.1: 0 or 1).
    requests: AtomicU32,
    /// Whether the request in flight was authenticated.
    authenticated: AtomicBool,
    /// Whether it has carried an authenticated request (a member's).
    vouched: AtomicBool,
    /// Whether it has completed a request.
    served: AtomicBool,
    /// Whether the body of its request in flight is still arriving.
    receiving: AtomicBool,
    /// When it became idle, or when its request in flight began, as a tick
    /// of the registry's clock (a counter: it only orders events).
    since: AtomicU64,
    /// Set when the registry closes it.
    closing: AtomicBool,
    /// The connection task to wake when it is closed.
    waker: AtomicWaker,
}

impl Conn {
    /// How expendable it is now, most first (the order of the module
    /// docs); `None` while it serves an authenticated request.
    fn class(&self) -> Option<u8> {
        let load = |flag: &AtomicBool| flag.load(Ordering::Acquire);
        if self.requests.load(Ordering::Acquire) == 0 {
            Some(match (load(&self.vouched), load(&self.served)) {
                (true, _) => 4,
                (false, true) => 2,
                (false, false) => 0,
            })
        } else if load(&self.authenticated) {
            None
        } else if load(&self.receiving) {
            Some(1)
        } else {
            Some(3)
        }
    }

    fn close(&self) {
        self.closing.store(true, Ordering::Release);
        self.waker.wake();
    }

    fn is_closing(&self) -> bool {
        self.closing.load(Ordering::Acquire)
    }
}

#[derive(Default)]
struct Open {
    by_peer: HashMap<SocketAddr, Arc<Conn>>,
    per_address: HashMap<IpAddr, usize>,
}

impl Open {
    fn remove(&mut self, conn: &Arc<Conn>) -> bool {
        match self.by_peer.get(&conn.peer) {
            Some(held) if Arc::ptr_eq(held, conn) => {}
            _ => return false,
        }
        self.by_peer.remove(&conn.peer);
        if let Some(key) = conn.capped
            && let Some(n) = self.per_address.get_mut(&key)
        {
            *n -= 1;
            if *n == 0 {
                self.per_address.remove(&key);
            }
        }
        true
    }

    /// The most expendable of the connections `within` admits.
    fn victim(&self, within: impl Fn(&Conn) -> bool) -> Option<Arc<Conn>> {
        self.by_peer
            .values()
            .filter(|c| within(c) && !c.is_closing())
            .filter_map(|c| c.class().map(|class| ((class, c.since.load(Ordering::Acquire)), c)))
            .min_by_key(|(rank, _)| *rank)
            .map(|(_, c)| Arc::clone(c))
    }
}

/// The open connections.
pub struct Registry {
    limits: ConnectionLimits,
    trusted: Arc<TrustedProxies>,
    metrics: Arc<Metrics>,
    epoch: Instant,
    /// Orders connections' activity (see [`Conn::since`]).
    ticks: AtomicU64,
    open: Mutex<Open>,
    /// When the last warning about the cap was logged (ms since epoch + 1).
    warned_ms: AtomicU64,
    evicted: AtomicU64,
    refused: AtomicU64,
}

impl std::fmt::Debug for Registry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Registry").field("limits", &self.limits).field("open", &self.len()).finish_non_exhaustive()
    }
}

/// Log at most one warning about the caps this often.
const WARN_EVERY_MS: u64 = 10_000;

impl Registry {
    /// An empty registry.
    pub fn new(limits: ConnectionLimits, trusted: Arc<TrustedProxies>, metrics: Arc<Metrics>) -> Self {
        Self {
            limits,
            trusted,
            metrics,
            epoch: Instant::now(),
            ticks: AtomicU64::new(0),
            open: Mutex::new(Open::default()),
            warned_ms: AtomicU64::new(0),
            evicted: AtomicU64::new(0),
            refused: AtomicU64::new(0),
        }
    }

    fn now_ms(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    fn tick(&self) -> u64 {
        self.ticks.fetch_add(1, Ordering::Relaxed)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Open> {
        self.open.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The limits in force.
    pub fn limits(&self) -> ConnectionLimits {
        self.limits
    }

    /// Connections open now.
    pub fn len(&self) -> usize {
        self.lock().by_peer.len()
    }

    /// Whether none is open.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Connections closed to make room, and turned away, so far.
    pub fn closed_by_caps(&self) -> (u64, u64) {
        (self.evicted.load(Ordering::Relaxed), self.refused.load(Ordering::Relaxed))
    }

    /// The open connection from `peer`, if any.
    pub fn get(&self, peer: &SocketAddr) -> Option<Arc<Conn>> {
        self.lock().by_peer.get(peer).cloned()
    }

    /// Admits a new connection from `peer`, closing a more expendable one
    /// when a cap is reached (see the module docs).
    pub fn admit(&self, peer: SocketAddr) -> Result<Arc<Conn>, Refused> {
        let capped = (!self.trusted.contains(peer.ip())).then(|| address_key(peer.ip()));
        let now = self.tick();
        let mut open = self.lock();
        let mut closed = Vec::new();
        if let Some(key) = capped
            && open.per_address.get(&key).copied().unwrap_or(0) >= self.limits.per_address
        {
            match open.victim(|c| c.capped == Some(key)) {
                Some(victim) => {
                    open.remove(&victim);
                    closed.push(victim);
                }
                None => {
                    drop(open);
                    return Err(self.refuse(Refused::Address(key, self.limits.per_address)));
                }
            }
        }
        if open.by_peer.len() >= self.limits.total {
            match open.victim(|_| true) {
                Some(victim) => {
                    open.remove(&victim);
                    closed.push(victim);
                }
                None => {
                    drop(open);
                    return Err(self.refuse(Refused::Full(self.limits.total)));
                }
            }
        }
        let conn = Arc::new(Conn {
            peer,
            capped,
            requests: AtomicU32::new(0),
            authenticated: AtomicBool::new(false),
            vouched: AtomicBool::new(false),
            served: AtomicBool::new(false),
            receiving: AtomicBool::new(false),
            since: AtomicU64::new(now),
            closing: AtomicBool::new(false),
            waker: AtomicWaker::new(),
        });
        if let Some(stale) = open.by_peer.get(&peer).cloned() {
            // The same peer address again: the old connection is gone
            // already (its socket was closed), only its entry was left.
            open.remove(&stale);
            stale.close();
        }
        open.by_peer.insert(peer, Arc::clone(&conn));
        if let Some(key) = capped {
            *open.per_address.entry(key).or_default() += 1;
        }
        let count = open.by_peer.len();
        drop(open);
        self.metrics.set_connections_open(count);
        if !closed.is_empty() {
            for victim in &closed {
                victim.close();
                self.metrics.connection_closed_by_cap("evicted");
            }
            self.evicted.fetch_add(closed.len() as u64, Ordering::Relaxed);
            self.warn(|| {
                tracing::warn!(
                    open = count,
                    max_connections = self.limits.total,
                    max_connections_per_address = self.limits.per_address,
                    evicted = self.evicted.load(Ordering::Relaxed),
                    refused = self.refused.load(Ordering::Relaxed),
                    "connection cap reached: closing idle or unauthenticated connections to admit new ones"
                );
            });
        }
        Ok(conn)
    }

    fn refuse(&self, why: Refused) -> Refused {
        self.refused.fetch_add(1, Ordering::Relaxed);
        self.metrics.connection_closed_by_cap("refused");
        self.warn(|| {
            tracing::warn!(
                reason = %why,
                evicted = self.evicted.load(Ordering::Relaxed),
                refused = self.refused.load(Ordering::Relaxed),
                "connection cap reached: turned a new connection away"
            );
        });
        why
    }

    fn warn(&self, log: impl FnOnce()) {
        let now = self.now_ms() + 1;
        let last = self.warned_ms.load(Ordering::Relaxed);
        if (last == 0 || now.saturating_sub(last) >= WARN_EVERY_MS)
            && self.warned_ms.compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed).is_ok()
        {
            log();
        }
    }

    /// Forgets a connection whose stream was dropped.
    fn release(&self, conn: &Arc<Conn>) {
        let mut open = self.lock();
        if open.remove(conn) {
            let count = open.by_peer.len();
            drop(open);
            self.metrics.set_connections_open(count);
        }
    }

    fn begin_request(&self, conn: &Conn, with_body: bool) {
        conn.authenticated.store(false, Ordering::Release);
        conn.receiving.store(with_body, Ordering::Release);
        conn.since.store(self.tick(), Ordering::Release);
        conn.requests.fetch_add(1, Ordering::AcqRel);
    }

    fn end_request(&self, conn: &Conn) {
        conn.since.store(self.tick(), Ordering::Release);
        conn.served.store(true, Ordering::Release);
        conn.receiving.store(false, Ordering::Release);
        if conn.requests.fetch_sub(1, Ordering::AcqRel) == 1 {
            conn.authenticated.store(false, Ordering::Release);
        }
    }
}

#[cfg(test)]
mod tests;
