//! An accepted socket that a request handler can ask to reset.
//!
//! hyper owns the socket while it serves a connection, so a handler cannot
//! reach it to reset it. Instead the socket shares a flag with the handler;
//! when the `refuse` fault sets the flag and the handler fails the request,
//! hyper drops the socket, and the drop sets `SO_LINGER` to zero first, so the
//! kernel answers with a TCP reset instead of an orderly close. The client
//! sees "connection reset", as with a provider that refuses connections.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;

/// A TCP stream that resets instead of closing when its [`ResetHandle`] asked.
#[derive(Debug)]
pub(crate) struct ResettableSocket {
    stream: TcpStream,
    /// Shared with every request handler of this connection.
    reset: Arc<AtomicBool>,
}

/// Asks the connection's socket to reset when it is dropped.
#[derive(Clone, Debug)]
pub(crate) struct ResetHandle(Arc<AtomicBool>);

impl ResettableSocket {
    /// Wraps `stream`, returning the handle that can reset it.
    pub(crate) fn new(stream: TcpStream) -> (Self, ResetHandle) {
        let reset = Arc::new(AtomicBool::new(false));
        let handle = ResetHandle(reset.clone());
        (Self { stream, reset }, handle)
    }
}

impl ResetHandle {
    /// Makes the socket reset when hyper drops it.
    pub(crate) fn reset(&self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

impl Drop for ResettableSocket {
    fn drop(&mut self) {
        if self.reset.load(Ordering::Relaxed)
            && let Err(err) = self.stream.set_zero_linger()
        {
            tracing::debug!(error = %err, "mock could not set SO_LINGER for a reset");
        }
    }
}

impl AsyncRead for ResettableSocket {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_read(cx, buf)
    }
}

impl AsyncWrite for ResettableSocket {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().stream).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().stream).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_shutdown(cx)
    }
}
