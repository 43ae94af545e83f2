//! The stream side of the cap: each accepted TCP stream admitted into the
//! registry, and failing its reads and writes once the registry closes it.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;

use super::{Conn, ConnectionLimits, FD_RESERVE, Registry};

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
    /// The stream read and written.
    pub(super) inner: S,
    /// Its connection in the registry: whether it was closed, and whom to wake.
    pub(super) conn: Arc<Conn>,
    /// The registry it leaves when dropped.
    pub(super) registry: Arc<Registry>,
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
