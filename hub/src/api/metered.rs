//! The metrics middleware: every request is counted by method, route
//! template and status, timed until its response body has been sent, and
//! counted as in flight until then; API errors by their stable code; upload
//! and download bytes as they pass.
//!
//! Bodies are wrapped rather than measured by the handlers, so the counts
//! cover every store and every way a transfer ends (a cut-off upload counts
//! the bytes that did arrive). A commit is counted here from its route and
//! status: `POST /v1/drops/{id}/commit` answers 200 exactly once per drop
//! (a second commit is a 409), so the status says it all. A drop sent in
//! one request (`PUT /v1/drops/{id}`) is counted by its service instead, as
//! its 200 may repeat an earlier commit.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;

use axum::body::Body;
use axum::extract::{MatchedPath, Request, State};
use axum::http::Method;
use axum::middleware::Next;
use axum::response::Response;
use bytes::Bytes;
use http_body::{Frame, SizeHint};

use super::error::ServedErrorCode;
use crate::hub::Hub;
use crate::metrics::Metrics;

/// The route label of a request no route matched (never the raw path).
pub const UNMATCHED_ROUTE: &str = "unmatched";

/// The status recorded for a request whose client went away before it was
/// answered (nginx's convention).
pub const CLIENT_CLOSED_REQUEST: u16 = 499;

/// The route whose request bodies are uploads and whose answers downloads.
const CONTENT_ROUTE: &str = "/v1/drops/{id}/content";
const COMMIT_ROUTE: &str = "/v1/drops/{id}/commit";

/// The tile route's template: one catch-all, as a tile's index spans
/// several path segments (`x001/x234/067`).
const TILE_ROUTE: &str = "/v1/log/tile/{*path}";
/// The labels of the tile route's two kinds of tile.
pub const HASH_TILE_LABEL: &str = "/v1/log/tile/{level}/{index}";
pub const ENTRY_BUNDLE_LABEL: &str = "/v1/log/tile/entries/{index}";

/// The route label of a request: its route template, except the tile
/// route's catch-all, labelled by which of its two kinds of tile the path
/// asks for (a fixed set: never the raw path).
fn route_label<'a>(matched: &'a str, path: &str) -> &'a str {
    if matched != TILE_ROUTE {
        return matched;
    }
    if path.strip_prefix("/v1/log/tile/").is_some_and(|rest| rest.starts_with("entries/")) {
        ENTRY_BUNDLE_LABEL
    } else {
        HASH_TILE_LABEL
    }
}

/// Middleware that meters one request.
pub async fn observe(State(hub): State<Hub>, req: Request, next: Next) -> Response {
    let metrics = hub.metrics_handle();
    let matched = req.extensions().get::<MatchedPath>().map_or(UNMATCHED_ROUTE, MatchedPath::as_str);
    let route = route_label(matched, req.uri().path()).to_owned();
    let method = req.method().clone();
    let mut finish = Finish::start(Arc::clone(&metrics), method.as_str(), route.clone());
    let req = if method == Method::PUT && route == CONTENT_ROUTE {
        req.map(|body| Body::new(Counted::new(body, Arc::clone(&metrics), Metrics::uploaded, None)))
    } else {
        req
    };
    let response = next.run(req).await;
    let status = response.status().as_u16();
    finish.status = status;
    if let Some(ServedErrorCode(code)) = response.extensions().get::<ServedErrorCode>() {
        metrics.error(*code);
    }
    if method == Method::POST && route == COMMIT_ROUTE && response.status().is_success() {
        metrics.drop_committed();
    }
    let counts_download = method == Method::GET && route == CONTENT_ROUTE && response.status().is_success();
    let on_data: fn(&Metrics, u64) = if counts_download { Metrics::downloaded } else { |_, _| {} };
    response.map(|body| Body::new(Counted::new(body, metrics, on_data, Some(finish))))
}

/// Records a request's end when dropped: with its status once the handler
/// answered, as [`CLIENT_CLOSED_REQUEST`] if the request was abandoned first.
struct Finish {
    metrics: Arc<Metrics>,
    method: String,
    route: String,
    status: u16,
    started: Instant,
}

impl Finish {
    fn start(metrics: Arc<Metrics>, method: &str, route: String) -> Self {
        metrics.request_started();
        Self { metrics, method: method.to_owned(), route, status: CLIENT_CLOSED_REQUEST, started: Instant::now() }
    }
}

impl Drop for Finish {
    fn drop(&mut self) {
        self.metrics.request_finished(&self.method, &self.route, self.status, self.started.elapsed().as_secs_f64());
    }
}

/// A body that reports the size of each data frame as it passes, and ends
/// its request's [`Finish`] when it is dropped (sent or abandoned).
struct Counted {
    inner: Body,
    metrics: Arc<Metrics>,
    on_data: fn(&Metrics, u64),
    _finish: Option<Finish>,
}

impl Counted {
    fn new(inner: Body, metrics: Arc<Metrics>, on_data: fn(&Metrics, u64), finish: Option<Finish>) -> Self {
        Self { inner, metrics, on_data, _finish: finish }
    }
}

impl http_body::Body for Counted {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        let this = &mut *self;
        let polled = Pin::new(&mut this.inner).poll_frame(cx);
        if let Poll::Ready(Some(Ok(frame))) = &polled
            && let Some(data) = frame.data_ref()
        {
            (this.on_data)(&this.metrics, data.len() as u64);
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tiles_are_labelled_by_kind_and_other_routes_by_template() {
        let cases = [
            ("/v1/log/tile/0/000", HASH_TILE_LABEL),
            ("/v1/log/tile/2/x001/x234/067.p/8", HASH_TILE_LABEL),
            ("/v1/log/tile/entries/000.p/5", ENTRY_BUNDLE_LABEL),
            ("/v1/log/tile/not-a-tile", HASH_TILE_LABEL),
        ];
        for (path, label) in cases {
            assert_eq!(route_label(TILE_ROUTE, path), label, "{path}");
        }
        assert_eq!(route_label(CONTENT_ROUTE, "/v1/drops/d-x/content"), CONTENT_ROUTE);
        assert_eq!(route_label(UNMATCHED_ROUTE, "/v1/nowhere"), UNMATCHED_ROUTE);
    }
}
