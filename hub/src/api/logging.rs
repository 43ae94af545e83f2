//! One log line per request: method, route template, party and member,
//! drop id, status, error code and duration.
//!
//! The route is the template (`/v1/drops/{id}/content`), never the raw URI,
//! and nothing from bodies is logged: the hub never sees file names, and its
//! log must not become a record of content. Handlers and extractors fill in
//! the party, member and drop on the request's span (the drop with
//! [`crate::service::record_drop`]).

use std::time::Instant;

use axum::extract::{MatchedPath, Request};
use axum::middleware::Next;
use axum::response::Response;
use tracing::Instrument as _;
use tracing::field::Empty;

use super::error::ServedErrorCode;

/// Middleware that opens the request span and logs the outcome.
pub async fn log_requests(req: Request, next: Next) -> Response {
    let route = req.extensions().get::<MatchedPath>().map_or("<no route>", MatchedPath::as_str).to_owned();
    let span = tracing::info_span!(
        "request",
        method = %req.method(),
        route = %route,
        party = Empty,
        member = Empty,
        drop = Empty,
    );
    let started = Instant::now();
    let response = next.run(req).instrument(span.clone()).await;
    let status = response.status().as_u16();
    let code = response.extensions().get::<ServedErrorCode>().map(|c| c.0.as_str());
    let elapsed_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
    span.in_scope(|| {
        if route == "/healthz" || route == "/readyz" {
            // Probes come every few seconds; a failing readiness check logs its cause itself.
            tracing::debug!(status, elapsed_ms, "probe");
        } else if status == 429 {
            // A flood must not fill the disk with one line per refusal: the
            // limiter warns once when an address or party starts being limited.
            tracing::debug!(status, code, elapsed_ms, "request");
        } else if status >= 500 {
            tracing::error!(status, code, elapsed_ms, "request failed");
        } else {
            tracing::info!(status, code, elapsed_ms, "request");
        }
    });
    response
}
