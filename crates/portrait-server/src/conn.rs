//! The connection layer: what every TCP connection gets before and around HTTP, so that no client
//! can make the node hold a socket (a file descriptor, a task, buffers) for longer than a bound:
//!
//! * **a cap on open connections** (`[server] max_connections`; by default three quarters of the
//!   process's file-descriptor limit, which [`raise_fd_limit`] raises to the hard limit at start).
//!   At the cap, a new connection evicts the connection that has waited longest without a request
//!   in progress (idle keep-alive, not yet sent its request, or sending its headers slowly), so
//!   health checks and real clients keep working while idle or slow clients hold the cap. When
//!   every connection is busy (a request in progress, or an upgraded WebSocket) the new one gets
//!   an immediate `503` and is closed: the answer never hangs;
//! * **a header-read timeout** (`header_timeout_ms`): a connection must send a whole request head
//!   within this time of connecting, or of the first byte of a later request (slowloris);
//! * **an idle keep-alive timeout** (`keepalive_timeout_ms`): a connection with no request in
//!   progress is closed after this long;
//! * **a write timeout** (`write_timeout_ms`): a connection whose writes have been blocked this
//!   long (the client stopped reading) is closed, WebSockets included.
//!
//! How: [`Guarded`] is the [`axum::serve::Listener`] that axum's server accepts from. Each accepted
//! socket is wrapped in a [`GuardedIo`] (`conn/socket.rs`) that notes when request bytes arrive and when writes
//! block, and a per-connection service ([`ConnService`]) notes when a request is in progress. One
//! sweeper task per listener looks at every connection a few times per timeout and closes the
//! expired ones by failing their next read or write (their task is woken for it). Times are read
//! from a clock the sweeper advances on each look (no clock read per request), so a timeout
//! fires between its time and that plus two sweep intervals (at most a second each). The
//! per-request cost is a few atomic loads and stores.
//!
//! The peer's address is set in a task-local around each request's handling ([`peer_addr`]), so
//! a handler that needs it (the writes, for the change log's client IP) reads it, and no request
//! pays an allocation for it.

use std::collections::HashMap;
use std::convert::Infallible;
use std::future::Future;
use std::io;

use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use axum::extract::Request;
use axum::response::Response;
use axum::serve::{IncomingStream, Listener};
use futures_util::task::AtomicWaker;

use tokio::net::TcpListener;

use crate::settings::ServerSettings;

mod socket;
pub use socket::GuardedIo;

tokio::task_local! {
    /// The peer of the connection whose request is being handled (see [`peer_addr`]).
    static PEER: SocketAddr;
}

/// The peer address of the connection whose request the calling task is handling, if the request
/// came through the connection layer. Set only while the request's future is polled: a task
/// spawned by a handler (e.g. a WebSocket session) must take it before.
pub fn peer_addr() -> Option<SocketAddr> {
    PEER.try_with(|a| *a).ok()
}

/// The bounds of the connection layer (from `[server]`).
#[derive(Debug, Clone, Copy)]
pub struct ConnLimits {
    /// Open connections at most.
    pub max_connections: usize,
    /// Time to send a whole request head.
    pub header_timeout: Duration,
    /// Time a connection may stay open with no request in progress.
    pub keepalive_timeout: Duration,
    /// Time a write may stay blocked.
    pub write_timeout: Duration,
}

impl ConnLimits {
    /// The limits of `[server]`; `max_connections = 0` is sized from the file-descriptor limit.
    pub fn from_settings(s: &ServerSettings) -> Self {
        Self {
            max_connections: if s.max_connections > 0 {
                s.max_connections
            } else {
                default_max_connections(fd_limit())
            },
            header_timeout: Duration::from_millis(s.header_timeout_ms.max(1)),
            keepalive_timeout: Duration::from_millis(s.keepalive_timeout_ms.max(1)),
            write_timeout: Duration::from_millis(s.write_timeout_ms.max(1)),
        }
    }
}

/// The default connection cap for a file-descriptor limit: three quarters of it, leaving the
/// rest for the store, the cluster bus and outgoing webhook calls.
pub fn default_max_connections(fd_limit: u64) -> usize {
    usize::try_from(fd_limit.saturating_mul(3) / 4)
        .unwrap_or(usize::MAX)
        .clamp(16, MAX_DEFAULT_CONNECTIONS)
}

/// This process's soft limit on open files (1024 if it cannot be read).
pub fn fd_limit() -> u64 {
    rlimit::getrlimit(rlimit::Resource::NOFILE)
        .map(|(soft, _)| soft)
        .unwrap_or(1024)
}

/// Raises the soft limit on open files to the hard limit; returns the new soft limit.
pub fn raise_fd_limit() -> u64 {
    match rlimit::increase_nofile_limit(u64::MAX) {
        Ok(n) => n,
        Err(e) => {
            tracing::warn!(error = %e, "cannot raise the open-file limit");
            fd_limit()
        }
    }
}

// What a connection is doing (ConnState::phase).
/// Accepted; no byte of a request yet (header timeout from the accept).
const NEW: u8 = 0;
/// Bytes of a request head arrived, not yet handed to the router (header timeout).
const READING: u8 = 1;
/// A request is in progress (bounded by the request deadline of the edge).
const BUSY: u8 = 2;
/// Between requests (keep-alive timeout).
const IDLE: u8 = 3;
/// Upgraded to a WebSocket (the session keeps its own timers; only the write timeout applies).
const UPGRADED: u8 = 4;
/// The head was read, the body is still arriving (header timeout from the head; evictable, like
/// any connection that is not yet doing work).
const BODY: u8 = 5;
/// Closed to make room (set by the eviction, so that a connection cannot turn busy meanwhile).
const EVICTED: u8 = 6;

/// Bytes of one request head at most (URL, UserSig and headers are far smaller); a connection
/// that sends more before its head is complete is closed. This bounds the memory a connection
/// that has not sent a request yet can hold.
pub const MAX_HEAD_BYTES: usize = 64 << 10;

/// The default connection cap is never above this (each connection not yet past its head may
/// hold up to [`MAX_HEAD_BYTES`] of buffers).
pub const MAX_DEFAULT_CONNECTIONS: usize = 65_536;

/// The bookkeeping of one connection, shared by its socket wrapper, its service and the sweeper.
pub struct ConnState {
    id: u64,
    addr: SocketAddr,
    phase: AtomicU8,
    /// Milliseconds on the registry's clock when `phase` was entered.
    since: AtomicU64,
    /// Milliseconds on the registry's clock since when a write has been blocked; `u64::MAX`: none.
    write_blocked: AtomicU64,
    killed: AtomicBool,
    read_waker: AtomicWaker,
    write_waker: AtomicWaker,
    clock: Arc<Clock>,
}

/// Milliseconds since the listener started, as of the sweeper's last look.
struct Clock {
    epoch: Instant,
    ms: AtomicU64,
    /// The sweep interval, in milliseconds.
    tick: u64,
}

impl Clock {
    fn now(&self) -> u64 {
        self.ms.load(Ordering::Relaxed)
    }

    /// Reads the real time into the clock and returns it.
    fn advance(&self) -> u64 {
        let now = self.epoch.elapsed().as_millis() as u64;
        self.ms.store(now, Ordering::Relaxed);
        now
    }
}

impl ConnState {
    fn now(&self) -> u64 {
        self.clock.now()
    }

    fn enter(&self, phase: u8) {
        self.since.store(self.now(), Ordering::Relaxed);
        self.phase.store(phase, Ordering::Release);
    }

    /// Closes the connection: its next read or write fails, and its task is woken for it.
    /// `true` if it was not closed before.
    fn kill(&self) -> bool {
        let first = !self.killed.swap(true, Ordering::AcqRel);
        self.read_waker.wake();
        self.write_waker.wake();
        first
    }

    fn is_killed(&self) -> bool {
        self.killed.load(Ordering::Acquire)
    }

    /// Whether this connection may be evicted to make room (no request in progress).
    fn evictable(&self) -> bool {
        matches!(
            self.phase.load(Ordering::Acquire),
            NEW | READING | BODY | IDLE
        )
    }

    /// Takes the connection out of service to make room, unless it turned busy meanwhile.
    fn evict(&self) -> bool {
        let phase = self.phase.load(Ordering::Acquire);
        matches!(phase, NEW | READING | BODY | IDLE)
            && self
                .phase
                .compare_exchange(phase, EVICTED, Ordering::AcqRel, Ordering::Acquire)
                .is_ok()
    }

    /// Why this connection has expired at `now`, if it has. Times noted on the coarse clock
    /// may be up to one tick early: a tick more is waited, so none is cut short.
    fn expired(&self, now: u64, limits: &ConnLimits) -> Option<&'static str> {
        let over = |since: u64, limit: Duration| {
            now.saturating_sub(since) > millis(limit) + self.clock.tick
        };
        let blocked = self.write_blocked.load(Ordering::Relaxed);
        if blocked != u64::MAX && over(blocked, limits.write_timeout) {
            return Some("write timeout");
        }
        let since = self.since.load(Ordering::Relaxed);
        match self.phase.load(Ordering::Acquire) {
            NEW | READING | BODY if over(since, limits.header_timeout) => Some("header timeout"),
            IDLE if over(since, limits.keepalive_timeout) => Some("keep-alive timeout"),
            _ => None,
        }
    }
}

fn millis(d: Duration) -> u64 {
    d.as_millis() as u64
}

/// The open connections of one listener.
struct Registry {
    conns: Mutex<HashMap<u64, Arc<ConnState>>>,
    /// Connections registered and not closed by the server.
    live: AtomicUsize,
    next_id: AtomicU64,
    clock: Arc<Clock>,
    limits: ConnLimits,
}

impl Registry {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<u64, Arc<ConnState>>> {
        // A panic while holding this lock leaves the map consistent (single inserts/removes).
        crate::sync::lock(&self.conns)
    }

    fn remove(&self, id: u64) {
        if let Some(c) = self.lock().remove(&id) {
            if c.kill() {
                self.live.fetch_sub(1, Ordering::Relaxed);
            }
        }
        metrics::gauge!("portrait_connections_open").decrement(1.0);
    }

    fn kill(&self, c: &ConnState, reason: &'static str) {
        if c.kill() {
            self.live.fetch_sub(1, Ordering::Relaxed);
            tracing::debug!(peer = %c.addr, reason, "closing connection");
            metrics::counter!("portrait_connections_closed_total", "reason" => reason).increment(1);
        }
    }

    /// Makes room for one more connection if the cap is reached (or, `forced`, in any case):
    /// evicts the connection that has waited longest with no request in progress. `false` if
    /// every connection is busy.
    fn make_room(&self, forced: bool) -> bool {
        if !forced && self.live.load(Ordering::Relaxed) < self.limits.max_connections {
            return true;
        }
        let conns = self.lock();
        for _ in 0..3 {
            let oldest = conns
                .values()
                .filter(|c| !c.is_killed() && c.evictable())
                .min_by_key(|c| c.since.load(Ordering::Relaxed));
            match oldest {
                Some(c) if c.evict() => {
                    self.kill(c, "evicted");
                    return true;
                }
                Some(_) => continue, // it turned busy meanwhile
                None => return false,
            }
        }
        false
    }

    /// Closes every expired connection.
    fn sweep(&self) {
        let now = self.clock.advance();
        for c in self.lock().values() {
            if c.is_killed() {
                continue;
            }
            if let Some(reason) = c.expired(now, &self.limits) {
                self.kill(c, reason);
            }
        }
    }
}

/// The listener of the connection layer (see the module docs).
pub struct Guarded {
    listener: TcpListener,
    registry: Arc<Registry>,
}

impl Guarded {
    /// Wraps `listener` with `limits`, and starts the sweeper (which ends with the listener).
    pub fn new(listener: TcpListener, limits: ConnLimits) -> Self {
        let every = [
            limits.header_timeout,
            limits.keepalive_timeout,
            limits.write_timeout,
        ]
        .into_iter()
        .min()
        .unwrap_or(Duration::from_secs(1))
            / 4;
        let every = every.clamp(Duration::from_millis(20), Duration::from_secs(1));
        let registry = Arc::new(Registry {
            conns: Mutex::new(HashMap::new()),
            live: AtomicUsize::new(0),
            next_id: AtomicU64::new(1),
            clock: Arc::new(Clock {
                epoch: Instant::now(),
                ms: AtomicU64::new(0),
                tick: millis(every),
            }),
            limits,
        });
        tokio::spawn(sweeper(Arc::downgrade(&registry), every));
        Self { listener, registry }
    }
}

async fn sweeper(registry: Weak<Registry>, every: Duration) {
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        match registry.upgrade() {
            Some(r) => r.sweep(),
            None => return,
        }
    }
}

/// What [`Guarded`] hands axum with each connection: the peer and the connection's bookkeeping.
#[derive(Clone)]
pub struct Peer {
    /// The peer's address.
    pub addr: SocketAddr,
    state: Arc<ConnState>,
}

impl std::fmt::Debug for Peer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.addr.fmt(f)
    }
}

/// The fixed answer to a connection that finds every slot busy.
const FULL: &[u8] = b"HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\n\
connection: close\r\nretry-after: 1\r\ncontent-length: 93\r\n\r\n\
{\"ActionStatus\":\"FAIL\",\"ErrorCode\":60007,\"ErrorInfo\":\"the server is at its connection limit\"}";

impl Listener for Guarded {
    type Io = GuardedIo;
    type Addr = Peer;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        loop {
            let (tcp, addr) = match self.listener.accept().await {
                Ok(accepted) => accepted,
                Err(e) => {
                    // Out of descriptors (or another transient failure): free one if possible.
                    tracing::warn!(error = %e, "accept failed");
                    // Free one, and give the evicted connection's task time to close it.
                    self.registry.make_room(true);
                    tokio::time::sleep(Duration::from_millis(20)).await;
                    continue;
                }
            };
            if !self.registry.make_room(false) {
                metrics::counter!("portrait_connections_refused_total").increment(1);
                // One non-blocking write: a client that does not read gets nothing.
                let _ = tcp.try_write(FULL);
                continue;
            }
            let _ = tcp.set_nodelay(true);
            let id = self.registry.next_id.fetch_add(1, Ordering::Relaxed);
            let state = Arc::new(ConnState {
                id,
                addr,
                phase: AtomicU8::new(NEW),
                since: AtomicU64::new(self.registry.clock.advance()),
                write_blocked: AtomicU64::new(u64::MAX),
                killed: AtomicBool::new(false),
                read_waker: AtomicWaker::new(),
                write_waker: AtomicWaker::new(),
                clock: self.registry.clock.clone(),
            });
            self.registry.live.fetch_add(1, Ordering::Relaxed);
            self.registry.lock().insert(id, state.clone());
            metrics::gauge!("portrait_connections_open").increment(1.0);
            let io = GuardedIo::new(tcp, state.clone(), self.registry.clone());
            return (io, Peer { addr, state });
        }
    }

    fn local_addr(&self) -> io::Result<Self::Addr> {
        Err(io::Error::other(
            "a Guarded listener hands out peers, not its own address; ask the TcpListener",
        ))
    }
}

/// The make-service of [`Guarded`] connections: one [`ConnService`] per connection around `S`.
#[derive(Clone)]
pub struct MakeConn<S> {
    inner: S,
}

impl<S> MakeConn<S> {
    /// Serves each connection with a clone of `inner`.
    pub fn new(inner: S) -> Self {
        Self { inner }
    }
}

/// A service that learns which connection it serves (the edge, so that it can say when a
/// request's body has been read).
pub trait PerConnection: Clone {
    /// This service for the connection `conn`.
    fn for_connection(&self, conn: ConnHandle) -> Self;
}

/// What a per-connection service may tell the connection layer.
#[derive(Clone)]
pub struct ConnHandle(Arc<ConnState>);

impl ConnHandle {
    /// The request's body has been read: the request is in progress (no longer evictable).
    pub fn body_read(&self) {
        let _ = self
            .0
            .phase
            .compare_exchange(BODY, BUSY, Ordering::AcqRel, Ordering::Acquire);
    }
}

impl<S: PerConnection> tower::Service<IncomingStream<'_, Guarded>> for MakeConn<S> {
    type Response = ConnService<S>;
    type Error = Infallible;
    type Future = std::future::Ready<Result<ConnService<S>, Infallible>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, stream: IncomingStream<'_, Guarded>) -> Self::Future {
        std::future::ready(Ok(ConnService {
            inner: self
                .inner
                .for_connection(ConnHandle(stream.remote_addr().state.clone())),
            peer: stream.remote_addr().clone(),
        }))
    }
}

/// The service of one connection: marks requests in progress.
#[derive(Clone)]
pub struct ConnService<S> {
    inner: S,
    peer: Peer,
}

impl<S> tower::Service<Request> for ConnService<S>
where
    S: tower::Service<Request, Response = Response, Error = Infallible>,
{
    type Response = Response;
    type Error = Infallible;
    type Future = ConnFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request) -> Self::Future {
        use axum::body::HttpBody;
        if req.body().is_end_stream() {
            self.peer.state.phase.store(BUSY, Ordering::Release);
        } else {
            // Busy once the edge has read the body ([`ConnHandle::body_read`]).
            self.peer.state.enter(BODY);
        }
        ConnFuture {
            inner: PEER.scope(self.peer.addr, self.inner.call(req)),
            state: self.peer.state.clone(),
        }
    }
}

pin_project_lite::pin_project! {
    /// The answer of [`ConnService`]: the inner one (polled with [`peer_addr`] set), noting the
    /// end of the request.
    pub struct ConnFuture<F> {
        #[pin]
        inner: tokio::task::futures::TaskLocalFuture<SocketAddr, F>,
        state: Arc<ConnState>,
    }
}

impl<F> Future for ConnFuture<F>
where
    F: Future<Output = Result<Response, Infallible>>,
{
    type Output = Result<Response, Infallible>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let out = std::task::ready!(this.inner.poll(cx));
        let status = match &out {
            Ok(response) => response.status(),
            Err(never) => match *never {},
        };
        if status == axum::http::StatusCode::SWITCHING_PROTOCOLS {
            this.state.enter(UPGRADED);
        } else {
            this.state.enter(IDLE);
        }
        Poll::Ready(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_full_answer_is_well_formed() {
        let text = std::str::from_utf8(FULL).unwrap();
        let (head, body) = text.split_once("\r\n\r\n").unwrap();
        assert!(
            head.ends_with(&format!("content-length: {}", body.len())),
            "{head}"
        );
        let v: serde_json::Value = serde_json::from_str(body).unwrap();
        assert_eq!(v["ErrorCode"], 60007);
    }

    #[test]
    fn the_default_cap_leaves_a_quarter_of_the_descriptors() {
        assert_eq!(default_max_connections(256), 192);
        assert_eq!(default_max_connections(1 << 20), MAX_DEFAULT_CONNECTIONS);
        assert_eq!(default_max_connections(0), 16);
    }
}
