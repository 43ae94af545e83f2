//! sealdrop's hub: stores and relays age ciphertext between the parties of a
//! sharing agreement. It never decrypts and never sees file names; what it
//! enforces is who may send what to whom, under which agreement, for how long,
//! and that every drop is vouched for by its sender's signed manifest and
//! every delivery by its recipients' signed receipts.
//!
//! - [`init()`] creates a data directory; [`Hub::open`] opens one.
//! - [`serve`] runs the HTTP API on a listener; [`router`] builds it for
//!   in-process tests.
//! - [`storage`] holds the two narrow storage interfaces and their local
//!   implementations; [`api`] the routes.
//! - [`transfer_log`]: the hub's signed transfer log (a C2SP transparency
//!   log): every drop committed, fetched, acknowledged and deleted, and every
//!   directory published, is an entry appended in the same database
//!   transaction as the change, under a newly signed checkpoint.

pub mod api;
pub mod error;
pub mod hub;
pub mod init;
mod locks;
pub mod log_key;
pub mod metrics;
pub mod storage;
pub mod sweeper;
pub mod transfer_log;

use std::future::Future;

pub use error::HubError;
pub use hub::{CleanupReport, DEFAULT_MAX_UPLOAD_BYTES, DEFAULT_SWEEP_INTERVAL, Hub, HubConfig, read_log_verifier};
pub use init::{InitOptions, init};

/// The hub's router, for in-process tests and embedding.
pub fn router(hub: Hub) -> axum::Router {
    api::router(hub)
}

/// Serves the API on `listener` until `shutdown` completes, then finishes
/// the requests in flight. Meanwhile the sweeper deletes what expires every
/// [`HubConfig::sweep_interval`].
pub async fn serve(
    listener: tokio::net::TcpListener,
    hub: Hub,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let addr = listener.local_addr()?;
    let config = hub.config();
    tracing::info!(
        %addr,
        origin = hub.origin(),
        max_upload_bytes = config.max_upload_bytes,
        sweep_interval_secs = config.sweep_interval.as_secs_f64(),
        "serving"
    );
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let stopped = |mut rx: tokio::sync::watch::Receiver<bool>| async move {
        let _ = rx.wait_for(|stop| *stop).await;
    };
    let sweeper = tokio::spawn(sweeper::run(hub.clone(), config.sweep_interval, stopped(stop_rx.clone())));
    let served = axum::serve(listener, router(hub))
        .with_graceful_shutdown(async move {
            shutdown.await;
            let _ = stop_tx.send(true);
        })
        .await;
    // The sender is gone once serving ends (also when it failed), so the
    // sweeper stops after the sweep in progress, if any.
    drop(stop_rx);
    let _ = sweeper.await;
    served?;
    tracing::info!("stopped");
    Ok(())
}
