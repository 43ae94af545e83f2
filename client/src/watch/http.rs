//! `--status-listen`: `/healthz`, `/metrics` and `/status` on a local port,
//! so council IT monitors the service like any other. Read-only, no secrets,
//! no file names beyond what the status file holds; meant for 127.0.0.1 or a
//! monitoring network, never the internet.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;

use super::monitor::Monitor;
use crate::error::{Error, ErrorCode, Result};

/// Requests answered at once: a scraper and a health check need a few.
const MOST_CONNECTIONS: usize = 16;

/// What the handlers share.
#[derive(Clone)]
struct Shared {
    monitor: Arc<Monitor>,
    clock: Arc<dyn sealdrop_proto::clock::Clock>,
}

/// Binds `addr` now (so a port in use is an error at start, not later) and
/// serves on a thread of its own for the life of the process.
pub fn serve(
    addr: SocketAddr,
    monitor: Arc<Monitor>,
    clock: Arc<dyn sealdrop_proto::clock::Clock>,
) -> Result<SocketAddr> {
    let listener = std::net::TcpListener::bind(addr).map_err(|e| {
        Error::new(
            ErrorCode::WatchListen,
            format!("--status-listen {addr}: cannot listen there ({e}); choose another port, e.g. 127.0.0.1:9477"),
        )
    })?;
    listener.set_nonblocking(true).map_err(|e| Error::io("cannot set up the status listener", e))?;
    let bound = listener.local_addr().map_err(|e| Error::io("cannot set up the status listener", e))?;
    let app = Router::new()
        .route("/healthz", get(healthz))
        .route("/metrics", get(metrics))
        .route("/status", get(status))
        .layer(axum::middleware::from_fn(at_most))
        .with_state(Shared { monitor, clock });
    std::thread::Builder::new()
        .name("status-listen".into())
        .spawn(move || {
            let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
                Ok(r) => r,
                Err(e) => return eprintln!("warning: the status listener did not start: {e}"),
            };
            runtime.block_on(async move {
                match tokio::net::TcpListener::from_std(listener) {
                    Ok(listener) => {
                        if let Err(e) = axum::serve(listener, app).await {
                            eprintln!("warning: the status listener stopped: {e}");
                        }
                    }
                    Err(e) => eprintln!("warning: the status listener did not start: {e}"),
                }
            });
        })
        .map_err(|e| Error::io("cannot start the status listener", e))?;
    Ok(bound)
}

/// Answers `503` beyond [`MOST_CONNECTIONS`] requests at once.
async fn at_most(req: axum::extract::Request, next: axum::middleware::Next) -> axum::response::Response {
    static IN_FLIGHT: tokio::sync::Semaphore = tokio::sync::Semaphore::const_new(MOST_CONNECTIONS);
    match IN_FLIGHT.try_acquire() {
        Ok(_permit) => next.run(req).await,
        Err(_) => (StatusCode::SERVICE_UNAVAILABLE, "busy\n").into_response(),
    }
}

/// `200 ok`, or `503` with the reason.
async fn healthz(State(s): State<Shared>) -> impl IntoResponse {
    match s.monitor.health(s.clock.now()) {
        None => (StatusCode::OK, "ok\n".to_owned()),
        Some(why) => (StatusCode::SERVICE_UNAVAILABLE, format!("{why}\n")),
    }
}

async fn metrics(State(s): State<Shared>) -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")], s.monitor.metrics_text())
}

async fn status(State(s): State<Shared>) -> impl IntoResponse {
    axum::Json(s.monitor.snapshot())
}
