//! The metrics listener's router: `GET /metrics` in the OpenMetrics text
//! format (see [`crate::metrics`]). It is served on its own address
//! (`metrics_listen`), never on the API listener, so the API's public face
//! shows nothing of the hub's traffic and the metrics address can be
//! firewalled to the monitoring network alone.

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::http::header::CONTENT_TYPE;
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use crate::hub::Hub;

/// The router of the metrics listener.
pub fn router(hub: Hub) -> Router {
    Router::new().route("/metrics", get(metrics)).with_state(hub)
}

/// `GET /metrics`: reads the transfer log's size, then encodes everything.
async fn metrics(State(hub): State<Hub>) -> Response {
    match hub.log().log_size().await {
        Ok(size) => hub.metrics().set_transfer_log_entries(size),
        Err(e) => tracing::warn!(error = %e, "metrics: cannot read the transfer log's size"),
    }
    (StatusCode::OK, [(CONTENT_TYPE, crate::metrics::CONTENT_TYPE)], hub.metrics().encode()).into_response()
}
