//! The socket side of the connection layer: [`GuardedIo`] notes when request bytes arrive
//! (and how many before the head is complete) and when writes block, fails reads and writes once
//! the connection is closed by the sweeper or an eviction, and lingers on close when the client
//! still has bytes in flight.

use std::io;
use std::mem::ManuallyDrop;
use std::pin::Pin;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;

use super::{ConnState, Registry, IDLE, MAX_HEAD_BYTES, NEW, READING};

/// One accepted socket of [`Guarded`] (see the module docs).
pub struct GuardedIo {
    // Taken in `drop` (to linger).
    tcp: ManuallyDrop<TcpStream>,
    /// Bytes read since the current request's first byte, while its head is incomplete.
    head_read: usize,
    state: Arc<ConnState>,
    registry: Arc<Registry>,
}

/// How long a closed connection is drained of what its client still sends.
const LINGER: Duration = Duration::from_secs(2);
/// How much of it at most.
const LINGER_BYTES: usize = 16 << 20;

impl Drop for GuardedIo {
    fn drop(&mut self) {
        // SAFETY: `tcp` is not used again; this is the only place it is taken.
        let tcp = unsafe { ManuallyDrop::take(&mut self.tcp) };
        let registry = self.registry.clone();
        let state = self.state.clone();
        // The server closes a connection whose request it did not read whole (a body over the
        // limit): closing a socket with unread bytes resets it, and the reset can destroy the
        // answer before the client reads it. Like nginx's lingering close, read and drop what
        // the client still sends for a short while, so that it gets the answer. Not for
        // connections closed for misbehaving (killed), and still counted against the cap.
        let mut probe = [0u8; 1024];
        let unread = !state.is_killed() && matches!(tcp.try_read(&mut probe), Ok(n) if n > 0);
        match tokio::runtime::Handle::try_current() {
            Ok(rt) if unread => {
                state.enter(IDLE);
                rt.spawn(async move {
                    linger(tcp, &state).await;
                    registry.remove(state.id);
                });
            }
            _ => {
                drop(tcp);
                registry.remove(state.id);
            }
        }
    }
}

/// Shuts the write side and reads until the client closes, [`LINGER`] passes,
/// [`LINGER_BYTES`] are read or the connection is evicted.
async fn linger(mut tcp: TcpStream, state: &ConnState) {
    use tokio::io::AsyncReadExt;
    let _ = tokio::io::AsyncWriteExt::shutdown(&mut tcp).await;
    let deadline = tokio::time::Instant::now() + LINGER;
    let mut buf = vec![0u8; 64 << 10];
    let mut read = 0;
    // Evicted or timed out meanwhile: stop at once (the read is raced against the kill).
    let killed = std::future::poll_fn(|cx| {
        state.read_waker.register(cx.waker());
        if state.is_killed() {
            Poll::Ready(())
        } else {
            Poll::Pending
        }
    });
    tokio::pin!(killed);
    while read < LINGER_BYTES {
        tokio::select! {
            r = tokio::time::timeout_at(deadline, tcp.read(&mut buf)) => match r {
                Ok(Ok(n)) if n > 0 => read += n,
                _ => break,
            },
            () = &mut killed => break,
        }
    }
}

fn closed() -> io::Error {
    io::Error::new(io::ErrorKind::TimedOut, "connection closed by the server")
}

impl AsyncRead for GuardedIo {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        if self.state.is_killed() {
            return Poll::Ready(Err(closed()));
        }
        let before = buf.filled().len();
        match Pin::new(&mut *self.tcp).poll_read(cx, buf) {
            Poll::Pending => {
                self.state.read_waker.register(cx.waker());
                if self.state.is_killed() {
                    return Poll::Ready(Err(closed()));
                }
                Poll::Pending
            }
            Poll::Ready(Ok(())) => {
                let n = buf.filled().len() - before;
                match self.state.phase.load(Ordering::Relaxed) {
                    IDLE if n > 0 => {
                        self.state.enter(READING);
                        self.head_read = n;
                    }
                    // More than a head's worth already read, and still no whole head (one read
                    // may also hold the start of the body: only a further read counts).
                    NEW | READING if self.head_read > MAX_HEAD_BYTES => {
                        self.registry.kill(&self.state, "head too large");
                        return Poll::Ready(Err(closed()));
                    }
                    NEW | READING => self.head_read += n,
                    _ => {}
                }
                Poll::Ready(Ok(()))
            }
            other => other,
        }
    }
}

impl GuardedIo {
    /// Wraps an accepted socket registered as `state` in `registry`.
    pub(super) fn new(tcp: TcpStream, state: Arc<ConnState>, registry: Arc<Registry>) -> Self {
        Self {
            tcp: ManuallyDrop::new(tcp),
            head_read: 0,
            state,
            registry,
        }
    }

    fn wrote<T>(&self, r: Poll<io::Result<T>>, cx: &mut Context<'_>) -> Poll<io::Result<T>> {
        match r {
            Poll::Pending => {
                if self.state.write_blocked.load(Ordering::Relaxed) == u64::MAX {
                    self.state
                        .write_blocked
                        .store(self.state.now(), Ordering::Relaxed);
                }
                self.state.write_waker.register(cx.waker());
                if self.state.is_killed() {
                    return Poll::Ready(Err(closed()));
                }
                Poll::Pending
            }
            ready => {
                if self.state.write_blocked.load(Ordering::Relaxed) != u64::MAX {
                    self.state.write_blocked.store(u64::MAX, Ordering::Relaxed);
                }
                ready
            }
        }
    }
}

impl AsyncWrite for GuardedIo {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        if self.state.is_killed() {
            return Poll::Ready(Err(closed()));
        }
        let r = Pin::new(&mut *self.tcp).poll_write(cx, buf);
        self.wrote(r, cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        if self.state.is_killed() {
            return Poll::Ready(Err(closed()));
        }
        let r = Pin::new(&mut *self.tcp).poll_write_vectored(cx, bufs);
        self.wrote(r, cx)
    }

    fn is_write_vectored(&self) -> bool {
        self.tcp.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut *self.tcp).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut *self.tcp).poll_shutdown(cx)
    }
}
