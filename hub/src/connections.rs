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

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};
use std::time::Instant;

use axum::body::Body;
use axum::extract::{ConnectInfo, Request, State};
use axum::middleware::Next;
use axum::response::Response;
use bytes::Bytes;
use futures_util::task::AtomicWaker;
use http_body::{Frame, SizeHint};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;

use crate::client_addr::TrustedProxies;
use crate::metrics::Metrics;
use crate::rate_limit::address_key;

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

tokio::task_local! {
    /// The connection of the request being handled, for [`mark_authenticated`].
    static CURRENT: Arc<Conn>;
}

/// Marks the current request's connection as serving an authenticated
/// request, so the cap never closes it for a newcomer. Called once the
/// request's signature has verified; does nothing outside a tracked
/// connection (the router driven in-process by tests).
pub fn mark_authenticated() {
    let _ = CURRENT.try_with(|conn| {
        conn.authenticated.store(true, Ordering::Release);
        conn.vouched.store(true, Ordering::Release);
    });
}

/// Middleware that marks a request in flight on its connection until its
/// response body has been sent.
pub async fn track(State(registry): State<Arc<Registry>>, req: Request, next: Next) -> Response {
    let conn = req.extensions().get::<ConnectInfo<SocketAddr>>().and_then(|info| registry.get(&info.0));
    let Some(conn) = conn else { return next.run(req).await };
    let with_body = !http_body::Body::is_end_stream(req.body());
    registry.begin_request(&conn, with_body);
    let guard = InFlight { registry, conn: Arc::clone(&conn) };
    let req =
        if with_body { req.map(|body| Body::new(Arriving { inner: body, conn: Arc::clone(&conn) })) } else { req };
    let response = CURRENT.scope(conn, next.run(req)).await;
    response.map(|body| Body::new(TrackedBody { inner: body, guard: Some(guard) }))
}

/// Ends a request on its connection when dropped.
struct InFlight {
    registry: Arc<Registry>,
    conn: Arc<Conn>,
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.registry.end_request(&self.conn);
    }
}

/// A request body that notes on its connection when it has all arrived.
struct Arriving {
    inner: Body,
    conn: Arc<Conn>,
}

impl http_body::Body for Arriving {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let polled = Pin::new(&mut self.inner).poll_frame(cx);
        if matches!(polled, Poll::Ready(None)) || self.inner.is_end_stream() {
            self.conn.receiving.store(false, Ordering::Release);
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// A response body that ends its request when it ends (or is dropped).
struct TrackedBody {
    inner: Body,
    guard: Option<InFlight>,
}

impl http_body::Body for TrackedBody {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let polled = Pin::new(&mut self.inner).poll_frame(cx);
        if matches!(polled, Poll::Ready(None) | Poll::Ready(Some(Err(_)))) {
            self.guard = None;
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// Admits each accepted TCP stream into the [`Registry`] (the inner
/// acceptor of the TLS acceptor, when the hub serves TLS itself).
#[derive(Debug, Clone)]
pub struct TrackedAcceptor {
    registry: Arc<Registry>,
}

impl TrackedAcceptor {
    /// Admits into `registry`.
    pub fn new(registry: Arc<Registry>) -> Self {
        Self { registry }
    }
}

impl<S> axum_server::accept::Accept<TcpStream, S> for TrackedAcceptor {
    type Stream = TrackedStream<TcpStream>;
    type Service = S;
    type Future = std::future::Ready<std::io::Result<(Self::Stream, S)>>;

    fn accept(&self, stream: TcpStream, service: S) -> Self::Future {
        let admitted = stream
            .peer_addr()
            .and_then(|peer| self.registry.admit(peer).map_err(std::io::Error::other))
            .map(|conn| (TrackedStream { inner: stream, conn, registry: Arc::clone(&self.registry) }, service));
        std::future::ready(admitted)
    }
}

/// A connection's stream: fails every read and write once the registry
/// closed it, and leaves the registry when dropped.
#[derive(Debug)]
pub struct TrackedStream<S> {
    inner: S,
    conn: Arc<Conn>,
    registry: Arc<Registry>,
}

impl<S> TrackedStream<S> {
    /// Registers the task to wake and says whether the stream was closed.
    fn closed(&self, cx: &Context<'_>) -> Option<std::io::Error> {
        self.conn.waker.register(cx.waker());
        self.conn.is_closing().then(|| {
            std::io::Error::new(
                std::io::ErrorKind::ConnectionAborted,
                "the connection cap closed this idle or unauthenticated connection",
            )
        })
    }
}

impl<S> Drop for TrackedStream<S> {
    fn drop(&mut self) {
        self.registry.release(&self.conn);
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for TrackedStream<S> {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<std::io::Result<()>> {
        if let Some(e) = self.closed(cx) {
            return Poll::Ready(Err(e));
        }
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for TrackedStream<S> {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<std::io::Result<usize>> {
        if let Some(e) = self.closed(cx) {
            return Poll::Ready(Err(e));
        }
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        if let Some(e) = self.closed(cx) {
            return Poll::Ready(Err(e));
        }
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        if let Some(e) = self.closed(cx) {
            return Poll::Ready(Err(e));
        }
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// Raises this process's open-file limit (its soft limit, up to the hard
/// one) so that `limits.total` connections fit beside [`FD_RESERVE`]
/// descriptors for files; says what to change when the hard limit is too low.
pub fn raise_open_file_limit(limits: ConnectionLimits) -> Result<u64, String> {
    use rustix::process::{Resource, getrlimit, setrlimit};
    let needed = limits.total as u64 + FD_RESERVE;
    let current = getrlimit(Resource::Nofile);
    let soft = current.current.unwrap_or(u64::MAX);
    let hard = current.maximum.unwrap_or(u64::MAX);
    if soft >= needed {
        return Ok(soft);
    }
    if hard < needed {
        return Err(format!(
            "the open-file limit is {hard} (hard limit), too low for max_connections = {} plus {FD_RESERVE} files: \
             raise it (LimitNOFILE= in the systemd unit, or ulimit -n) to at least {needed}, or lower max_connections",
            limits.total
        ));
    }
    let raised = rustix::process::Rlimit { current: Some(needed.max(soft)), maximum: current.maximum };
    setrlimit(Resource::Nofile, raised)
        .map_err(|e| format!("cannot raise the open-file limit from {soft} to {needed}: {e}"))?;
    Ok(needed)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn registry(total: usize, per_address: usize, trusted: &str) -> Registry {
        Registry::new(
            ConnectionLimits { total, per_address },
            Arc::new(TrustedProxies::parse(trusted).unwrap()),
            Arc::new(Metrics::new()),
        )
    }

    fn peer(ip: &str, port: u16) -> SocketAddr {
        SocketAddr::new(ip.parse().unwrap(), port)
    }

    /// A request in flight (with a body still arriving), authenticated or not.
    fn busy(r: &Registry, conn: &Conn, authenticated: bool) {
        r.begin_request(conn, true);
        conn.authenticated.store(authenticated, Ordering::Release);
        if authenticated {
            conn.vouched.store(true, Ordering::Release);
        }
    }

    #[test]
    fn under_the_caps_everyone_is_admitted_and_released() {
        let r = registry(4, 2, "");
        let a = r.admit(peer("192.0.2.1", 1)).unwrap();
        let b = r.admit(peer("192.0.2.2", 1)).unwrap();
        assert_eq!(r.len(), 2);
        assert!(Arc::ptr_eq(&r.get(&peer("192.0.2.1", 1)).unwrap(), &a));
        r.release(&a);
        r.release(&a);
        assert_eq!(r.len(), 1);
        r.release(&b);
        assert!(r.is_empty());
    }

    #[test]
    fn at_the_total_cap_the_longest_idle_goes_first_then_the_oldest_unauthenticated() {
        let r = registry(3, 10, "");
        let idle_old = r.admit(peer("192.0.2.1", 1)).unwrap();
        let idle_new = r.admit(peer("192.0.2.2", 1)).unwrap();
        let member = r.admit(peer("192.0.2.3", 1)).unwrap();
        busy(&r, &member, true);
        let newcomer = r.admit(peer("192.0.2.4", 1)).unwrap();
        assert!(idle_old.is_closing(), "the connection idle longest was closed");
        assert!(!idle_new.is_closing() && !member.is_closing());
        assert_eq!(r.len(), 3);
        // The newcomer trickles an unauthenticated body; the other idle one goes next.
        busy(&r, &newcomer, false);
        let _ = r.admit(peer("192.0.2.5", 1)).unwrap();
        assert!(idle_new.is_closing());
        // Now: the member (authenticated), the trickler, and a fresh idle one.
        // An idle connection goes before an unauthenticated request.
        let _ = r.admit(peer("192.0.2.6", 1)).unwrap();
        assert!(!newcomer.is_closing(), "an idle connection was closed before the unauthenticated request");
        assert!(!member.is_closing());
    }

    #[test]
    fn a_members_idle_connection_goes_after_strangers_and_slow_requests() {
        let r = registry(3, 10, "");
        let member = r.admit(peer("192.0.2.1", 1)).unwrap();
        busy(&r, &member, true);
        r.end_request(&member);
        let stranger = r.admit(peer("192.0.2.2", 1)).unwrap();
        let slow = r.admit(peer("192.0.2.3", 1)).unwrap();
        busy(&r, &slow, false);
        // The member's connection has been idle longest, yet goes last:
        // first the idle stranger,
        let fourth = r.admit(peer("192.0.2.4", 1)).unwrap();
        assert!(stranger.is_closing() && !slow.is_closing() && !member.is_closing());
        // (strangers make room for strangers)
        let fifth = r.admit(peer("192.0.2.5", 1)).unwrap();
        assert!(fourth.is_closing() && !slow.is_closing() && !member.is_closing());
        // then the slow unauthenticated request,
        busy(&r, &fifth, true);
        let sixth = r.admit(peer("192.0.2.6", 1)).unwrap();
        assert!(slow.is_closing() && !member.is_closing());
        // and only then the member's idle connection.
        busy(&r, &sixth, true);
        let _ = r.admit(peer("192.0.2.7", 1)).unwrap();
        assert!(member.is_closing());
    }

    #[test]
    fn a_client_between_public_requests_goes_after_silent_and_slow_strangers() {
        let r = registry(4, 10, "");
        // A client that completed a public request and is about to send the next.
        let client = r.admit(peer("192.0.2.1", 1)).unwrap();
        r.begin_request(&client, false);
        r.end_request(&client);
        // A public request being answered.
        let answering = r.admit(peer("192.0.2.2", 1)).unwrap();
        r.begin_request(&answering, false);
        let silent = r.admit(peer("192.0.2.3", 1)).unwrap();
        let slow = r.admit(peer("192.0.2.4", 1)).unwrap();
        busy(&r, &slow, false);
        // Each newcomer then serves a member, so only the four above compete;
        // they go in this order.
        let expected = ["silent", "slow", "client", "answering"];
        for (i, port) in (5..9).enumerate() {
            let newcomer = r.admit(peer(&format!("192.0.2.{port}"), 1)).unwrap();
            busy(&r, &newcomer, true);
            let closed: Vec<&str> =
                [("silent", &silent), ("slow", &slow), ("client", &client), ("answering", &answering)]
                    .into_iter()
                    .filter(|(_, c)| c.is_closing())
                    .map(|(name, _)| name)
                    .collect();
            assert_eq!(closed, expected[..=i], "after newcomer {}", i + 1);
        }
    }

    #[test]
    fn authenticated_requests_are_never_closed_for_a_newcomer() {
        let r = registry(2, 10, "");
        let a = r.admit(peer("192.0.2.1", 1)).unwrap();
        let b = r.admit(peer("192.0.2.2", 1)).unwrap();
        busy(&r, &a, true);
        busy(&r, &b, true);
        assert_eq!(r.admit(peer("192.0.2.3", 1)).unwrap_err(), Refused::Full(2));
        assert!(!a.is_closing() && !b.is_closing());
        assert_eq!(r.closed_by_caps(), (0, 1));
        // Once a request ends, its connection is idle and expendable again.
        r.end_request(&a);
        r.admit(peer("192.0.2.3", 1)).unwrap();
        assert!(a.is_closing() && !b.is_closing());
    }

    #[test]
    fn one_address_only_ever_closes_its_own_connections() {
        let r = registry(100, 2, "");
        let other = r.admit(peer("192.0.2.9", 1)).unwrap();
        let first = r.admit(peer("192.0.2.1", 1)).unwrap();
        let second = r.admit(peer("192.0.2.1", 2)).unwrap();
        busy(&r, &second, true);
        let third = r.admit(peer("192.0.2.1", 3)).unwrap();
        assert!(first.is_closing(), "its own idle connection made room");
        assert!(!other.is_closing());
        busy(&r, &third, true);
        assert!(matches!(r.admit(peer("192.0.2.1", 4)), Err(Refused::Address(_, 2))));
        // IPv6 addresses of one /64 are one address.
        let v6a = r.admit(peer("2001:db8::1", 1)).unwrap();
        let v6b = r.admit(peer("2001:db8::2", 1)).unwrap();
        let _v6c = r.admit(peer("2001:db8::3", 1)).unwrap();
        assert!(v6a.is_closing() && !v6b.is_closing());
        assert_eq!(r.len(), 5);
    }

    #[test]
    fn trusted_proxies_count_only_towards_the_total() {
        let r = registry(5, 1, "10.0.0.1");
        let conns: Vec<_> = (1..=5).map(|port| r.admit(peer("10.0.0.1", port)).unwrap()).collect();
        assert!(conns.iter().all(|c| !c.is_closing()));
        let _ = r.admit(peer("10.0.0.1", 6)).unwrap();
        assert!(conns[0].is_closing(), "the total cap still holds");
    }

    #[test]
    fn a_closed_stream_fails_its_reads_and_writes_and_wakes_its_task() {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        runtime.block_on(async {
            use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let addr = listener.local_addr().unwrap();
            let _client = TcpStream::connect(addr).await.unwrap();
            let (server, peer) = listener.accept().await.unwrap();
            let r = Arc::new(registry(1, 1, ""));
            let conn = r.admit(peer).unwrap();
            let mut stream = TrackedStream { inner: server, conn: Arc::clone(&conn), registry: Arc::clone(&r) };
            // A read parked waiting for bytes fails as soon as the
            // connection is closed from elsewhere.
            let closer = Arc::clone(&conn);
            tokio::spawn(async move {
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                closer.close();
            });
            let mut buf = [0u8; 16];
            let read = tokio::time::timeout(std::time::Duration::from_secs(5), stream.read(&mut buf)).await;
            let err = read.expect("the parked read was woken").unwrap_err();
            assert_eq!(err.kind(), std::io::ErrorKind::ConnectionAborted);
            assert!(stream.write_all(b"x").await.is_err());
            assert_eq!(r.len(), 1);
            drop(stream);
            assert!(r.is_empty(), "dropping the stream leaves the registry");
        });
    }
}
