//! The body idle timeout: a request body that stops arriving for longer than
//! [`HubConfig::body_idle_timeout`](crate::HubConfig) fails, so a client
//! that sends half an upload (or half a JSON body) and then nothing cannot
//! hold a connection, a drop's lock and a file open for ever.
//!
//! It is an *idle* timeout, not a whole-request one: each wait for the next
//! piece of the body gets the full timeout, so a slow but steady upload of
//! many gigabytes over a council's thin line still completes. The clock only
//! runs while the hub is waiting for the client: time the hub spends on its
//! own (hashing a continued upload's prefix, writing to disk) never counts
//! against the client, because the deadline is set when a wait begins.
//!
//! The error the body yields is [`BodyIdle`]; handlers tell it apart from a
//! connection that broke off with [`is_body_idle`].

use std::time::Duration;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::Response;
use http_body_util::BodyExt as _;
use tower_http::timeout::{TimeoutBody, TimeoutError};

use crate::hub::Hub;

/// The error of a body that sent nothing for the idle timeout.
#[derive(Debug, Clone, Copy, thiserror::Error)]
#[error("the client sent nothing for {} s", .0.as_secs_f64())]
pub struct BodyIdle(pub Duration);

/// Whether `error` (or one of its sources) is a [`BodyIdle`].
pub fn is_body_idle(error: &(dyn std::error::Error + 'static)) -> Option<BodyIdle> {
    let mut current = Some(error);
    while let Some(e) = current {
        if let Some(idle) = e.downcast_ref::<BodyIdle>() {
            return Some(*idle);
        }
        current = e.source();
    }
    None
}

/// Middleware that puts every request body under the hub's idle timeout.
pub async fn limit_idle(State(hub): State<Hub>, req: Request, next: Next) -> Response {
    let timeout = hub.config().body_idle_timeout;
    next.run(req.map(|body| idle_body(body, timeout))).await
}

/// `inner`, failing with [`BodyIdle`] when no frame arrives for `timeout`
/// while it is being read.
///
/// tower-http's [`TimeoutBody`] starts its clock when a read begins and
/// stops it when a frame arrives, which is the idle timeout described
/// above; its error names no duration, so it becomes a [`BodyIdle`] that
/// the handlers' messages can quote.
pub fn idle_body(inner: Body, timeout: Duration) -> Body {
    Body::new(TimeoutBody::new(timeout, inner).map_err(move |e| match e.downcast::<axum::Error>() {
        Ok(inner_error) => *inner_error,
        Err(e) if e.is::<TimeoutError>() => axum::Error::new(BodyIdle(timeout)),
        Err(e) => axum::Error::new(e),
    }))
}

#[cfg(test)]
mod tests {
    use axum::body::Bytes;
    use futures_util::StreamExt as _;

    use super::*;

    /// A body fed by hand: each `send` is one chunk.
    fn channel_body() -> (tokio::sync::mpsc::Sender<Result<Bytes, std::io::Error>>, Body) {
        let (tx, rx) = tokio::sync::mpsc::channel(4);
        (tx, Body::from_stream(tokio_stream(rx)))
    }

    fn tokio_stream(
        mut rx: tokio::sync::mpsc::Receiver<Result<Bytes, std::io::Error>>,
    ) -> impl futures_util::Stream<Item = Result<Bytes, std::io::Error>> {
        futures_util::stream::poll_fn(move |cx| rx.poll_recv(cx))
    }

    #[tokio::test(start_paused = true)]
    async fn a_steady_body_outlasts_the_timeout_and_a_stalled_one_fails() {
        let (tx, body) = channel_body();
        let mut stream = idle_body(body, Duration::from_secs(2)).into_data_stream();
        // Ten chunks 1.5 s apart: 15 s in all, never 2 s without data.
        let feeder = tokio::spawn(async move {
            for i in 0..10u8 {
                tokio::time::sleep(Duration::from_millis(1500)).await;
                tx.send(Ok(Bytes::from(vec![i; 10]))).await.unwrap();
            }
            // Then nothing, with the connection still open.
            tokio::time::sleep(Duration::from_secs(3600)).await;
            drop(tx);
        });
        let started = tokio::time::Instant::now();
        for i in 0..10u8 {
            assert_eq!(stream.next().await.unwrap().unwrap(), Bytes::from(vec![i; 10]));
        }
        let err = stream.next().await.unwrap().unwrap_err();
        let idle = is_body_idle(&err).expect("the error says the body was idle");
        assert_eq!(idle.0, Duration::from_secs(2));
        assert_eq!(started.elapsed(), Duration::from_secs(17), "15 s of steady data, then 2 s of silence");
        feeder.abort();
    }

    #[tokio::test(start_paused = true)]
    async fn time_the_reader_spends_elsewhere_is_not_the_clients() {
        let (tx, body) = channel_body();
        let mut stream = idle_body(body, Duration::from_secs(2)).into_data_stream();
        tx.send(Ok(Bytes::from_static(b"first"))).await.unwrap();
        assert_eq!(stream.next().await.unwrap().unwrap(), "first");
        // The hub is busy for 10 s (hashing, disk); the client sent its next
        // chunk meanwhile.
        tx.send(Ok(Bytes::from_static(b"second"))).await.unwrap();
        tokio::time::sleep(Duration::from_secs(10)).await;
        assert_eq!(stream.next().await.unwrap().unwrap(), "second");
        // And a wait that begins now gets the whole timeout.
        let sender = tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(1900)).await;
            tx.send(Ok(Bytes::from_static(b"third"))).await.unwrap();
        });
        assert_eq!(stream.next().await.unwrap().unwrap(), "third");
        sender.await.unwrap();
    }

    #[test]
    fn other_errors_are_not_idle() {
        let err = axum::Error::new(std::io::Error::other("connection reset"));
        assert!(is_body_idle(&err).is_none());
    }
}
