//! sealdrop's hub: stores and relays age ciphertext between the parties of a
//! sharing agreement. It never decrypts and never sees file names; what it
//! enforces is who may send what to whom, under which agreement, for how long,
//! and that every drop is vouched for by its sender's signed manifest and
//! every delivery by its recipients' signed receipts.
//!
//! - [`init()`] creates a data directory; [`Hub::open`] opens one;
//!   [`backup`] backs one up while it serves and restores it.
//! - [`serve`] and [`serve_with`] run the HTTP API on a listener (plain or
//!   TLS, [`tls`]), with `/metrics` on a second one ([`metrics`]) and a
//!   bounded graceful shutdown; [`router`] builds the API for in-process
//!   tests. [`config`] resolves `serve`'s settings (file, environment, flags).
//! - [`storage`] holds the narrow storage interfaces (blobs, and one trait
//!   per area of the metadata) and their local implementations; [`api`] the
//!   routes.
//! - [`transfer_log`]: the hub's signed transfer log (a C2SP transparency
//!   log): every drop committed, fetched, acknowledged and deleted, and every
//!   directory published, is an entry appended in the same database
//!   transaction as the change, under a new checkpoint that the
//!   [`sequencer`] signs.

pub mod api;
pub mod backup;
pub mod byte_range;
pub mod check_config;
pub mod client_addr;
pub mod config;
pub mod connections;
pub mod data_lock;
pub mod error;
pub mod failpoint;
pub mod hub;
pub mod inbox_wait;
pub mod init;
mod locks;
pub mod log_key;
pub mod metrics;
pub mod migrate;
pub mod private_files;
pub mod quota;
pub mod rate_limit;
pub mod sequencer;
pub mod service;
pub mod storage;
pub mod sweeper;
pub mod tls;
pub mod tls_cert;
pub mod transfer_log;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

pub use error::HubError;
pub use hub::{
    CleanupReport, DEFAULT_BODY_IDLE_TIMEOUT, DEFAULT_MAX_UPLOAD_BYTES, DEFAULT_SWEEP_INTERVAL, Hub, HubConfig,
    MAX_UPLOAD_RESUME_WINDOW, StoredCiphertext, read_log_verifier,
};
pub use init::{InitOptions, init};

/// The hub's router, for in-process tests and embedding.
pub fn router(hub: Hub) -> axum::Router {
    api::router(hub)
}

/// How [`serve_with`] serves, beyond the API listener itself.
#[derive(Debug)]
pub struct ServeOptions {
    /// TLS in the hub itself (see [`tls::server_config`]); `None` serves
    /// plain HTTP (behind a TLS reverse proxy, or on loopback).
    pub tls: Option<Arc<rustls::ServerConfig>>,
    /// A listener of its own for `GET /metrics`; `None`: no metrics.
    pub metrics: Option<tokio::net::TcpListener>,
    /// After `shutdown` completes, how long requests in flight may take to
    /// finish before their connections are closed.
    pub shutdown_grace: Duration,
    /// How long a client may take to send a request's head (request line
    /// and headers), counted from when the hub starts waiting for it: on a
    /// new connection, and between requests on a kept-alive one. A client
    /// that connects and sends nothing, or trickles its headers a byte at a
    /// time (slowloris), is disconnected when it runs out; so is a kept-alive
    /// connection idle for that long.
    pub header_read_timeout: Duration,
    /// How many connections may be open, in all and per client address
    /// (see [`connections`]).
    pub connections: connections::ConnectionLimits,
}

impl Default for ServeOptions {
    fn default() -> Self {
        Self {
            tls: None,
            metrics: None,
            shutdown_grace: config::DEFAULT_SHUTDOWN_GRACE,
            header_read_timeout: config::DEFAULT_HEADER_READ_TIMEOUT,
            connections: connections::ConnectionLimits::default(),
        }
    }
}

/// The most header lines a request may carry: a signed request needs about
/// a dozen. More is refused (431) before any handler runs. The total size of
/// a request's head is bounded too, by hyper's read buffer (about 400 KiB,
/// also 431), so neither costs the hub more than that per connection (and
/// [`ServeOptions::connections`] bounds the connections).
pub const MAX_REQUEST_HEADERS: usize = 100;

/// Serves the API over plain HTTP on `listener` until `shutdown` completes,
/// then lets the requests in flight finish (for up to
/// [`config::DEFAULT_SHUTDOWN_GRACE`]). See [`serve_with`].
pub async fn serve(
    listener: tokio::net::TcpListener,
    hub: Hub,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    serve_with(listener, hub, ServeOptions::default(), shutdown).await
}

/// Serves the API on `listener` (already bound, so tests can use port 0)
/// until `shutdown` completes; meanwhile the sweeper deletes what expires
/// every [`HubConfig::sweep_interval`], and `/metrics` is served on
/// `options.metrics` if given.
///
/// When `shutdown` completes, the hub stops accepting connections,
/// `/readyz` turns 503, idle connections are closed, and requests in
/// flight (a slow upload, a large download) get `options.shutdown_grace`
/// to finish; connections still open after that are closed, and this
/// returns. The metrics listener stops last, so the drain can be watched.
/// Built on axum-server, whose handle gives the bounded graceful shutdown
/// and the TLS acceptor (with a handshake timeout) over one listener.
pub async fn serve_with(
    listener: tokio::net::TcpListener,
    hub: Hub,
    options: ServeOptions,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let addr = listener.local_addr()?;
    let metrics_addr = options.metrics.as_ref().map(tokio::net::TcpListener::local_addr).transpose()?;
    // A waiting inbox request holds an authenticated connection, which the
    // connection cap never closes for another: at most half the cap may
    // wait, so long-polls can never take the slots uploads need.
    let waiter_cap = options.connections.total / 2;
    let hub = if hub.config().max_inbox_waiters > waiter_cap { hub.with_max_inbox_waiters(waiter_cap) } else { hub };
    let config = hub.config();
    let grace = options.shutdown_grace;
    tracing::info!(
        %addr,
        tls = options.tls.is_some(),
        metrics = metrics_addr.map(tracing::field::display),
        origin = hub.origin(),
        max_upload_bytes = config.max_upload_bytes,
        sweep_interval_secs = config.sweep_interval.as_secs_f64(),
        rate_limit_per_address = config.rate_limits.per_address.map_or(0.0, |r| r.per_second),
        rate_limit_per_address_burst = config.rate_limits.per_address.map(|r| r.burst),
        rate_limit_per_party = config.rate_limits.per_party.map_or(0.0, |r| r.per_second),
        rate_limit_per_party_burst = config.rate_limits.per_party.map(|r| r.burst),
        rate_limit_loopback = config.rate_limits.loopback.as_str(),
        shutdown_grace_secs = grace.as_secs_f64(),
        header_read_timeout_secs = options.header_read_timeout.as_secs_f64(),
        max_connections = options.connections.total,
        max_connections_per_address = options.connections.per_address,
        max_inbox_waiters = config.max_inbox_waiters,
        trusted_proxies = %hub.trusted_proxies().to_setting(),
        max_held_bytes_per_party = config.quotas.held_bytes,
        max_open_uploads_per_party = config.quotas.open_uploads,
        body_idle_timeout_secs = config.body_idle_timeout.as_secs_f64(),
        upload_resume_window_secs = config.upload_resume_window.as_secs_f64(),
        log_access = config.log_access.as_str(),
        "serving"
    );
    let stopped = |mut rx: tokio::sync::watch::Receiver<bool>| async move {
        let _ = rx.wait_for(|stop| *stop).await;
    };
    // Stops the sweeper (at once) and the metrics listener (after the drain).
    let (sweep_stop, sweep_rx) = tokio::sync::watch::channel(false);
    let (metrics_stop, metrics_rx) = tokio::sync::watch::channel(false);
    let sweeper = tokio::spawn(sweeper::run(hub.clone(), config.sweep_interval, stopped(sweep_rx.clone())));
    let metrics = options.metrics.map(|listener| {
        let app = api::scrape::router(hub.clone());
        tokio::spawn(async move { axum::serve(listener, app).with_graceful_shutdown(stopped(metrics_rx)).await })
    });

    let handle: axum_server::Handle<std::net::SocketAddr> = axum_server::Handle::new();
    let (watcher_hub, watcher_handle) = (hub.clone(), handle.clone());
    // When the drain began, to tell afterwards whether the grace ran out.
    let drain_started = Arc::new(std::sync::OnceLock::new());
    let drain_mark = Arc::clone(&drain_started);
    let watcher = tokio::spawn(async move {
        shutdown.await;
        watcher_hub.begin_shutdown();
        let _ = sweep_stop.send(true);
        tracing::info!(
            connections = watcher_handle.connection_count(),
            requests_in_flight = watcher_hub.metrics().in_flight(),
            grace_secs = grace.as_secs_f64(),
            "shutting down: no new connections; requests in flight may finish within the grace period"
        );
        let _ = drain_mark.set(std::time::Instant::now());
        watcher_handle.graceful_shutdown(Some(grace));
    });

    // Every connection is admitted into the registry of the connection cap,
    // and each request marked on its connection while in flight.
    let registry =
        Arc::new(connections::Registry::new(options.connections, hub.trusted_proxies_handle(), hub.metrics_handle()));
    let tracked = connections::TrackedAcceptor::new(Arc::clone(&registry));
    // With each connection's peer address, for the per-address rate limit
    // and to find the connection in the registry.
    let app = router(hub)
        .layer(axum::middleware::from_fn_with_state(registry, connections::track))
        .into_make_service_with_connect_info::<std::net::SocketAddr>();
    // HTTP/1.1 only (TLS already offers nothing else): hyper then times the
    // head of every request from the moment it waits for it, the first on a
    // connection included, where its HTTP/2 detection would wait untimed.
    let mut server = axum_server::Server::<std::net::SocketAddr>::from_listener(listener).handle(handle).http1_only();
    server.http_builder().http1().header_read_timeout(options.header_read_timeout).max_headers(MAX_REQUEST_HEADERS);
    let served = match options.tls {
        Some(tls) => {
            let acceptor =
                axum_server::tls_rustls::RustlsAcceptor::new(axum_server::tls_rustls::RustlsConfig::from_config(tls))
                    .handshake_timeout(TLS_HANDSHAKE_TIMEOUT)
                    .acceptor(tracked);
            server.acceptor(acceptor).serve(app).await
        }
        None => server.acceptor(tracked).serve(app).await,
    };
    watcher.abort();
    if let Some(started) = drain_started.get()
        && started.elapsed() >= grace
        && !grace.is_zero()
    {
        // axum-server closed whatever was still open when the grace ran out.
        tracing::warn!(
            grace_secs = grace.as_secs_f64(),
            "the shutdown grace period ended: closed the connections still open (their transfers were cut off)"
        );
    }
    // Also when serving failed: the sweeper stops after the sweep in
    // progress, if any, and the metrics listener after its last scrape.
    drop(sweep_rx);
    let _ = sweeper.await;
    let _ = metrics_stop.send(true);
    if let Some(metrics) = metrics {
        match metrics.await {
            Ok(Err(e)) => tracing::warn!(error = %e, "the metrics listener failed"),
            Err(e) => tracing::warn!(error = %e, "the metrics listener's task failed"),
            Ok(Ok(())) => {}
        }
    }
    served?;
    tracing::info!("stopped");
    Ok(())
}

/// How long a client may take over its TLS handshake before it is dropped
/// (a half-open handshake must not hold a connection for ever).
const TLS_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(15);
