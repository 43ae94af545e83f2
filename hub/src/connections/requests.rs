//! The request side of the cap: which requests are in flight, still
//! arriving, or authenticated, on which connection.

use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::task::{Context, Poll};

use axum::body::Body;
use axum::extract::{ConnectInfo, Request, State};
use axum::middleware::Next;
use axum::response::Response;
use bytes::Bytes;
use http_body::{Frame, SizeHint};

use super::{Conn, Registry};

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
