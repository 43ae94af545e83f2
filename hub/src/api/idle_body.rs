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

use std::future::Future as _;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::Response;
use http_body::{Frame, SizeHint};

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
    next.run(req.map(|body| Body::new(IdleBody::new(body, timeout)))).await
}

/// A body that fails with [`BodyIdle`] when no frame arrives for `timeout`
/// while it is being read.
pub struct IdleBody {
    inner: Body,
    timeout: Duration,
    /// Fires when the current wait has lasted `timeout`; set when a wait
    /// begins, made at the first (a body that never waits, such as a GET's
    /// or a small JSON body's, costs no timer).
    deadline: Option<Pin<Box<tokio::time::Sleep>>>,
    /// Whether a wait is under way (the last poll of `inner` was pending).
    waiting: bool,
}

impl IdleBody {
    /// Wraps `inner`.
    pub fn new(inner: Body, timeout: Duration) -> Self {
        Self { inner, timeout, deadline: None, waiting: false }
    }
}

impl http_body::Body for IdleBody {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let this = &mut *self;
        match Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Ready(frame) => {
                this.waiting = false;
                Poll::Ready(frame)
            }
            Poll::Pending => {
                let timeout = this.timeout;
                let deadline = this.deadline.get_or_insert_with(|| Box::pin(tokio::time::sleep(timeout)));
                if !this.waiting {
                    this.waiting = true;
                    deadline.as_mut().reset(tokio::time::Instant::now() + timeout);
                }
                match deadline.as_mut().poll(cx) {
                    Poll::Ready(()) => Poll::Ready(Some(Err(axum::Error::new(BodyIdle(this.timeout))))),
                    Poll::Pending => Poll::Pending,
                }
            }
        }
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
        let mut stream = Body::new(IdleBody::new(body, Duration::from_secs(2))).into_data_stream();
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
        let mut stream = Body::new(IdleBody::new(body, Duration::from_secs(2))).into_data_stream();
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
