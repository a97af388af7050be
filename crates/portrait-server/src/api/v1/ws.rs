//! `GET /v1/ws`: one WebSocket connection of a signed-in user (docs/client-api.md).
//!
//! A [`Session`] owns the socket and its bookkeeping: the accounts it subscribes to, the highest
//! version sent per account (`sent`, which de-duplicates catch-up against live events), and the
//! `cursor` (every change up to it of every subscribed account has been sent). It registers with
//! the app's [`Feed`] before reading any catch-up from the store, so nothing falls between the
//! two; see [`crate::push`] for why that is gap-free.
//!
//! Why one file of about 650 lines: everything here is the one per-socket loop and the state it
//! alone touches (handshake, ops, catch-up, live events, heartbeat, close); split, each part would
//! need the whole `Session`. The frames are `portrait_core::ws`, the registry and the feed
//! [`crate::push`], the vendor codes of failures [`crate::error`].

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket, WebSocketUpgrade};
use axum::extract::State;
use axum::http::Uri;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use portrait_core::ws::{ClientOp as Op, CloseCode, OpName, ServerFrame};
use portrait_core::{ErrorCode, Identifier};
use portrait_store::{Store, PRUNED};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::auth::{self, UserCall};
use crate::error::{reply, ApiError, Family};
use crate::push::{self, CloseReason, Conn, Event, Feed, Refused, PAGE};
use crate::ratelimit::ClientCall;
use crate::state::AppState;

// The close codes are the protocol's (portrait_core::ws::CloseCode), named here as the session
// uses them.
const CLOSE_AUTH: u16 = CloseCode::AUTH.0;
const CLOSE_REVOKED: u16 = CloseCode::REVOKED.0;
const CLOSE_EXPIRED: u16 = CloseCode::EXPIRED.0;
const CLOSE_TOO_MANY: u16 = CloseCode::TOO_MANY_CONNECTIONS.0;
const CLOSE_IDLE: u16 = CloseCode::IDLE.0;
const CLOSE_INTERNAL: u16 = CloseCode::INTERNAL.0;
const CLOSE_GOING_AWAY: u16 = CloseCode::GOING_AWAY.0;
const CLOSE_POLICY: u16 = CloseCode::POLICY.0;
const CLOSE_TOO_BIG: u16 = CloseCode::TOO_BIG.0;

/// Largest message a connection refused at sign-in may send (it is only waited on for its close
/// frame).
const REFUSED_MAX_MESSAGE: usize = 1024;

/// Routes of this group.
pub fn router() -> Router<AppState> {
    Router::new().route("/v1/ws", get(upgrade))
}

/// Connection parameters besides authentication.
type Params = portrait_core::query::WsParams;

/// The connection parameters of the URL query ([`portrait_core::query::ws_params`]), decoded as
/// [`auth::query_pairs`] does for the sign-in parameters; unknown ones are ignored.
///
/// # Errors
/// A `since` that is not a version, or a `since` / `accounts` value that is not UTF-8 once
/// decoded (refused with [`ErrorCode::BAD_FRAME`] and close [`CLOSE_AUTH`]).
fn params(raw: Option<&str>) -> Result<Params, String> {
    portrait_core::query::ws_params(raw).map_err(|e| e.to_string())
}

async fn upgrade(
    State(state): State<AppState>,
    uri: Uri,
    ws: Result<WebSocketUpgrade, axum::extract::ws::rejection::WebSocketUpgradeRejection>,
) -> Response {
    let auth = auth::user(&state, uri.query(), ClientCall::Read).await;
    let params = params(uri.query());
    let ws = match ws {
        Ok(ws) => ws,
        // Not a WebSocket handshake (e.g. curl): answer in the envelope.
        Err(rejection) => {
            return match auth {
                Err(e) => reply::<()>(Family::Profile, Err(e)),
                Ok(_) => reply::<()>(
                    Family::Profile,
                    Err(ApiError::BadRequest(format!(
                        "/v1/ws needs a WebSocket handshake: {rejection}"
                    ))),
                ),
            }
        }
    };
    let tracker = state.hub().clone();
    // Frames from clients are small ops; tungstenite zero-fills its read buffer before every
    // read, and the default 128 KiB made that a quarter of the CPU of a large fan-out. Messages
    // are bounded (a frame header announcing more is refused before any of it is buffered), the
    // more so before sign-in.
    let max = match &auth {
        Ok(call) => state
            .hub()
            .feed(call.tenant.sdkappid)
            .map_or(REFUSED_MAX_MESSAGE, |f| f.settings().max_message_bytes),
        Err(_) => REFUSED_MAX_MESSAGE,
    };
    let ws = ws
        .read_buffer_size(4096)
        .max_message_size(max)
        .max_frame_size(max);
    ws.on_upgrade(move |socket| async move {
        let setup = match (auth, params) {
            // Our fault (e.g. the database is down): a retryable close, no internal details.
            (Err(e), _) if e.is_internal() => {
                let code = e.code(Family::Profile);
                tracing::warn!(error = %e, "websocket handshake: internal error");
                Err((code, code.default_info().to_owned(), CLOSE_INTERNAL))
            }
            (Err(e), _) => Err((
                e.code(Family::Profile),
                e.error_info(Family::Profile),
                CLOSE_AUTH,
            )),
            (Ok(_), Err(e)) => Err((ErrorCode::BAD_FRAME, e, CLOSE_AUTH)),
            (Ok(call), Ok(p)) => Ok((call, p)),
        };
        match setup {
            Err((code, message, close)) => refuse(socket, code, &message, close).await,
            // Tracked, so that shutdown waits for the close frame to go out.
            Ok((call, p)) => tracker.track(run(socket, state, call, p)).await,
        }
    })
    .into_response()
}

/// Sends one `error` frame and closes with `close`.
async fn refuse(mut socket: WebSocket, code: ErrorCode, message: &str, close: u16) {
    let _ = socket.send(text(&error_frame(code, message, None))).await;
    close_cleanly(&mut socket, close, message).await;
}

/// Sends a close frame and waits (briefly) for the client's, so that the client reads every
/// frame before the connection goes (the WebSocket closing handshake).
async fn close_cleanly(socket: &mut WebSocket, code: u16, reason: &str) {
    if socket.send(close_msg(code, reason)).await.is_err() {
        return;
    }
    let _ = tokio::time::timeout(Duration::from_secs(1), async {
        while let Some(Ok(msg)) = socket.recv().await {
            if let Message::Close(_) = msg {
                break;
            }
        }
    })
    .await;
}

fn text(s: &str) -> Message {
    Message::Text(Utf8Bytes::from(s))
}

fn close_msg(code: u16, reason: &str) -> Message {
    // A close reason is at most 123 bytes.
    let mut end = reason.len().min(123);
    while !reason.is_char_boundary(end) {
        end -= 1;
    }
    Message::Close(Some(CloseFrame {
        code,
        reason: Utf8Bytes::from(&reason[..end]),
    }))
}

fn error_frame(code: ErrorCode, message: &str, op: Option<OpName>) -> String {
    ServerFrame::error(code, message, op).to_json()
}

/// Why a session ended.
enum End {
    /// The socket failed or the client closed it.
    Gone,
    /// The server closes with this code and reason (after an optional error frame).
    Close(u16, String, Option<(ErrorCode, String)>),
}

struct Session {
    socket: WebSocket,
    feed: Arc<Feed>,
    conn: Arc<Conn>,
    rx: mpsc::Receiver<Arc<Event>>,
    store: Arc<dyn Store>,
    /// Per subscribed account: highest version sent (or known not wanted).
    sent: HashMap<String, u64>,
    cursor: u64,
    own: String,
    last_heard: Instant,
    /// The connection's message budget (`[push] ops_per_sec`).
    ops: Option<governor::DefaultDirectRateLimiter>,
    /// Messages refused by `ops` in the current second (from `refused_since`).
    refused: u32,
    refused_since: Instant,
}

async fn run(socket: WebSocket, state: AppState, call: UserCall, p: Params) {
    let Some(feed) = state.hub().feed(call.tenant.sdkappid) else {
        return refuse(
            socket,
            ErrorCode::PROFILE_INTERNAL,
            "no feed for this app",
            CLOSE_INTERNAL,
        )
        .await;
    };
    if !feed.started() {
        // Its database was down as the node started: a session registered before the feed
        // knows where it starts could miss the changes in between.
        return refuse(
            socket,
            ErrorCode::PROFILE_INTERNAL,
            "the app's push feed has not started yet (its database was down); retry",
            CLOSE_INTERNAL,
        )
        .await;
    }
    let cap = feed.settings().max_connections_per_user;
    let too_many = |socket| {
        let msg = format!("{} already has {cap} connections", call.user.as_str());
        async move {
            refuse(
                socket,
                ErrorCode::TOO_MANY_CONNECTIONS,
                &msg,
                CLOSE_TOO_MANY,
            )
            .await
        }
    };
    let Ok((conn, rx)) = feed.register(call.user.as_str()) else {
        return too_many(socket).await;
    };
    // The same cap over the user's connections on every node, while `[cluster]` Redis answers.
    let counted = state
        .cluster()
        .connect(call.tenant.sdkappid, call.user.as_str(), cap)
        .await;
    let Ok(_counted) = counted else {
        feed.deregister(&conn);
        return too_many(socket).await;
    };
    let mut s = Session {
        socket,
        feed: feed.clone(),
        conn: conn.clone(),
        rx,
        store: state.store_arc(),
        sent: HashMap::new(),
        cursor: 0,
        own: call.user.as_str().to_owned(),
        last_heard: Instant::now(),
        ops: std::num::NonZeroU32::new(feed.settings().ops_per_sec)
            .map(|n| governor::RateLimiter::direct(governor::Quota::per_second(n))),
        refused: 0,
        refused_since: Instant::now(),
    };
    let stop = state.hub().stopping();
    let end = s.serve(p, call.expires_at, stop).await;
    feed.deregister(&conn);
    if let End::Close(code, reason, error) = end {
        if let Some((c, m)) = error {
            let _ = s.socket.send(text(&error_frame(c, &m, None))).await;
        }
        close_cleanly(&mut s.socket, code, &reason).await;
    }
}

impl Session {
    async fn send(&mut self, frame: String) -> Result<(), End> {
        self.socket.send(text(&frame)).await.map_err(|_| End::Gone)
    }

    async fn serve(&mut self, p: Params, expires_at: u64, stop: CancellationToken) -> End {
        match self.start(p).await {
            Ok(()) => {}
            Err(end) => return end,
        }
        let settings = self.feed.settings().clone();
        let mut ping = tokio::time::interval(Duration::from_millis(settings.ping_interval_ms));
        ping.tick().await;
        let idle = Duration::from_millis(settings.idle_timeout_ms);
        let expiry = Duration::from_secs(
            expires_at
                .saturating_sub(auth::now_secs())
                .saturating_add(1),
        );
        let expired = tokio::time::sleep(expiry);
        tokio::pin!(expired);
        loop {
            let step = tokio::select! {
                ev = self.rx.recv() => match ev {
                    Some(ev) => self.live(ev).await,
                    None => Err(End::Gone),
                },
                msg = self.socket.recv() => match msg {
                    Some(Ok(msg)) => {
                        self.last_heard = Instant::now();
                        self.on_message(msg).await
                    }
                    Some(Err(e)) if too_big(&e) => {
                        let why = format!("message over {} bytes", settings.max_message_bytes);
                        Err(End::Close(CLOSE_TOO_BIG, why, None))
                    }
                    _ => Err(End::Gone),
                },
                _ = ping.tick() => {
                    if self.last_heard.elapsed() > idle {
                        Err(End::Close(CLOSE_IDLE, "idle timeout".into(), None))
                    } else {
                        self.socket.send(Message::Ping(Default::default())).await.map_err(|_| End::Gone)
                    }
                }
                () = self.conn.close.notified() => match self.conn.close_reason() {
                    Some(CloseReason::Revoked(code)) => {
                        let why = if code == ErrorCode::ACCOUNT_NOT_FOUND { "the account was deleted" } else { "the user was kicked; sign in again" };
                        Err(End::Close(CLOSE_REVOKED, why.into(), Some((code, why.into()))))
                    }
                    // Not a close: the feed asks for a resync (checked below).
                    None => Ok(()),
                },
                () = &mut expired => {
                    let why = "the UserSig expired; sign in again with a new one";
                    Err(End::Close(CLOSE_EXPIRED, why.into(), Some((ErrorCode::SIG_EXPIRED, why.into()))))
                }
                () = stop.cancelled() => Err(End::Close(CLOSE_GOING_AWAY, "server shutting down".into(), None)),
            };
            if let Err(end) = step {
                return end;
            }
            // A queue that overflowed is drained first (its events precede the gap), then the gap
            // is read from the store.
            if self.conn.overflowed() && self.rx.is_empty() {
                if let Err(end) = self.resync().await {
                    return end;
                }
            }
        }
    }

    /// Subscribes the initial accounts, says `ready`, and catches up from `since`.
    async fn start(&mut self, p: Params) -> Result<(), End> {
        let mut accounts = vec![self.own.clone()];
        let mut refused = None;
        for a in p.accounts {
            if Identifier::parse(&a).is_err() {
                refused = Some((
                    ErrorCode::BAD_FRAME,
                    format!("accounts: {a:?} is not a valid UserID"),
                ));
            } else {
                accounts.push(a);
            }
        }
        if self.feed.subscribe(&self.conn, &accounts).is_err() {
            refused = Some((
                ErrorCode::TOO_MANY_SUBSCRIPTIONS,
                format!(
                    "{} accounts asked, at most {} per connection; only the own account is subscribed",
                    accounts.len(),
                    self.feed.settings().max_subscriptions
                ),
            ));
            accounts.truncate(1);
            let _ = self.feed.subscribe(&self.conn, &accounts);
        }
        // After registering: anything committed later is offered to the queue.
        let head = self
            .store
            .current_version(self.feed.app())
            .await
            .map_err(|e| internal(&e))?;
        let max_subscriptions = self.feed.settings().max_subscriptions;
        let own = self.own.clone();
        self.send(
            ServerFrame::Ready {
                user: own,
                version: head,
                max_subscriptions,
            }
            .to_json(),
        )
        .await?;
        if let Some((code, msg)) = refused {
            self.send(error_frame(code, &msg, None)).await?;
        }
        let subscribed: Vec<String> = accounts
            .into_iter()
            .collect::<HashSet<_>>()
            .into_iter()
            .collect();
        match p.since {
            None => {
                for a in subscribed {
                    self.sent.insert(a, head);
                }
                self.cursor = head;
            }
            Some(since) => {
                for a in &subscribed {
                    self.sent.insert(a.clone(), since);
                }
                let reached = self.catch_up(since, None).await?;
                for a in &subscribed {
                    let v = self.sent.entry(a.clone()).or_default();
                    *v = (*v).max(reached);
                }
                self.cursor = reached.max(since);
                self.send(
                    ServerFrame::Synced {
                        cursor: self.cursor,
                    }
                    .to_json(),
                )
                .await?;
            }
        }
        Ok(())
    }

    /// Sends the changes after `from` of the subscribed accounts (or of `only`) not sent yet, up
    /// to the head of the log; returns the version up to which every change of those accounts
    /// has been read (at least the head as it was when the catch-up began).
    ///
    /// Only those accounts' changes are read ([`portrait_store::Store::changes_of`], walking each
    /// account's chain of changes): the cost does not grow with the app's log.
    ///
    /// If the change log has been pruned past the point a page is read from (the [`PRUNED`]
    /// cursor, read after the page, so a prune racing the read is seen too), some of the changes
    /// asked for are gone: one `error` frame 49005 (no `op`) says so, and the catch-up goes on with
    /// what is kept. The client re-reads the profiles it shows. The same frame, once, when the
    /// store's answer is not complete (an account has more changes after the page's start than
    /// one walk of its chain reaches, [`portrait_store::MAX_CHAIN_WALK`]): the changes the walk
    /// did not reach are not sent, as if pruned, and the catch-up goes on with the newer ones.
    async fn catch_up(&mut self, from: u64, only: Option<&HashSet<String>>) -> Result<u64, End> {
        let users: Vec<Identifier> = match only {
            Some(only) => only.iter().collect::<Vec<_>>(),
            None => self.sent.keys().collect(),
        }
        .into_iter()
        .filter_map(|u| Identifier::parse(u).ok())
        .collect();
        // Read before the first page: the pages then hold every change of `users` up to it
        // (versions become visible in version order), so the catch-up reaches at least it.
        let head = self
            .store
            .current_version(self.feed.app())
            .await
            .map_err(|e| internal(&e))?;
        let mut pos = from;
        let mut told = false;
        loop {
            let asked = from.max(pos);
            let answer = self
                .store
                .changes_of(self.feed.app(), &users, asked, PAGE)
                .await
                .map_err(|e| internal(&e))?;
            if !told {
                let pruned = self
                    .store
                    .cursor(self.feed.app(), PRUNED)
                    .await
                    .map_err(|e| internal(&e))?
                    .unwrap_or(0);
                let missing = if pruned > asked {
                    Some(format!(
                        "changes after version {asked} up to {pruned} are no longer kept; \
                         read the profiles again"
                    ))
                } else if !answer.is_complete(asked) {
                    Some(format!(
                        "changes after version {asked} up to {} are too many to catch up; \
                         read the profiles again",
                        answer.complete_after
                    ))
                } else {
                    None
                };
                if let Some(message) = missing {
                    told = true;
                    self.send(error_frame(ErrorCode::CHANGES_PRUNED, &message, None))
                        .await?;
                    metrics::counter!("portrait_push_pruned_catch_ups_total").increment(1);
                }
            }
            let page = answer.changes;
            let n = page.len();
            for c in page {
                pos = c.version;
                if only.is_some_and(|o| !o.contains(&c.user)) {
                    continue;
                }
                let Some(&sent) = self.sent.get(&c.user) else {
                    continue; // not subscribed
                };
                if c.version <= sent {
                    continue;
                }
                let cursor = if only.is_some() {
                    self.cursor
                } else {
                    c.version
                };
                let frame = push::Event::new(c, &self.feed.tenant().schema);
                let text = if cursor == frame.version {
                    frame.frame.to_string()
                } else {
                    frame.frame_with_cursor(&self.feed.tenant().schema, cursor)
                };
                self.send(text).await?;
                self.sent.insert(frame.account.clone(), frame.version);
                metrics::counter!("portrait_push_events_sent_total").increment(1);
            }
            if n < PAGE {
                return Ok(pos.max(head));
            }
        }
    }

    /// A live event from the feed.
    async fn live(&mut self, ev: Arc<Event>) -> Result<(), End> {
        match self.sent.get(&ev.account) {
            Some(&sent) if ev.version > sent => {
                self.send(ev.frame.to_string()).await?;
                self.sent.insert(ev.account.clone(), ev.version);
                self.cursor = self.cursor.max(ev.version);
                metrics::counter!("portrait_push_events_sent_total").increment(1);
            }
            _ => {} // sent already, or no longer subscribed
        }
        Ok(())
    }

    /// The queue overflowed: resume live offers, then read the gap from the store.
    async fn resync(&mut self) -> Result<(), End> {
        self.conn.clear_overflow();
        metrics::counter!("portrait_push_resyncs_total").increment(1);
        let reached = self.catch_up(self.cursor, None).await?;
        for v in self.sent.values_mut() {
            *v = (*v).max(reached);
        }
        self.cursor = self.cursor.max(reached);
        Ok(())
    }

    async fn on_message(&mut self, msg: Message) -> Result<(), End> {
        if self.ops.as_ref().is_some_and(|l| l.check().is_err()) {
            if self.refused_since.elapsed() >= Duration::from_secs(1) {
                self.refused = 0;
                self.refused_since = Instant::now();
            }
            self.refused += 1;
            metrics::counter!("portrait_push_ops_refused_total").increment(1);
            let per_sec = self.feed.settings().ops_per_sec;
            if self.refused > per_sec.saturating_mul(2) {
                return Err(End::Close(
                    CLOSE_POLICY,
                    format!("more than {per_sec} messages per second"),
                    None,
                ));
            }
            if let Message::Text(_) = msg {
                let why = format!("at most {per_sec} ops per second on a connection; slow down");
                return self
                    .send(error_frame(ErrorCode::RATE_LIMITED, &why, None))
                    .await;
            }
            return Ok(());
        }
        match msg {
            Message::Text(t) => match serde_json::from_str::<Op>(t.as_str()) {
                Ok(op) => self.on_op(op).await,
                Err(e) => {
                    self.send(error_frame(
                        ErrorCode::BAD_FRAME,
                        &format!("not a valid op: {e}"),
                        None,
                    ))
                    .await
                }
            },
            Message::Binary(_) => {
                self.send(error_frame(
                    ErrorCode::BAD_FRAME,
                    "binary frames are not supported",
                    None,
                ))
                .await
            }
            Message::Close(_) => Err(End::Gone),
            Message::Ping(_) | Message::Pong(_) => Ok(()),
        }
    }

    async fn on_op(&mut self, op: Op) -> Result<(), End> {
        match op {
            Op::Ping => self.send(ServerFrame::Pong.to_json()).await,
            Op::Subscribe { accounts, since } => {
                if let Some(bad) = accounts.iter().find(|a| Identifier::parse(a).is_err()) {
                    let msg = format!("{bad:?} is not a valid UserID");
                    return self
                        .send(error_frame(
                            ErrorCode::BAD_FRAME,
                            &msg,
                            Some(OpName::Subscribe),
                        ))
                        .await;
                }
                let new = match self.feed.subscribe(&self.conn, &accounts) {
                    Ok(new) => new,
                    Err(Refused::TooManySubscriptions | Refused::TooManyConnections) => {
                        let msg = format!(
                            "at most {} subscriptions per connection",
                            self.feed.settings().max_subscriptions
                        );
                        return self
                            .send(error_frame(
                                ErrorCode::TOO_MANY_SUBSCRIPTIONS,
                                &msg,
                                Some(OpName::Subscribe),
                            ))
                            .await;
                    }
                };
                let start = since.unwrap_or(self.cursor);
                for a in &new {
                    self.sent.insert(a.clone(), start);
                }
                let count = self.feed.subscriptions(&self.conn);
                self.send(
                    ServerFrame::Subscribed {
                        accounts: new.clone(),
                        count,
                    }
                    .to_json(),
                )
                .await?;
                if since.is_some() {
                    let only: HashSet<String> = new.iter().cloned().collect();
                    let reached = self.catch_up(start, Some(&only)).await?;
                    for a in &new {
                        let v = self.sent.entry(a.clone()).or_default();
                        *v = (*v).max(reached);
                    }
                    let cursor = self.cursor;
                    self.send(ServerFrame::Synced { cursor }.to_json()).await?;
                }
                Ok(())
            }
            Op::Unsubscribe { accounts } => {
                let others: Vec<String> = accounts.into_iter().filter(|a| *a != self.own).collect();
                let removed = self.feed.unsubscribe(&self.conn, &others);
                for a in &removed {
                    self.sent.remove(a);
                }
                let count = self.feed.subscriptions(&self.conn);
                self.send(
                    ServerFrame::Unsubscribed {
                        accounts: removed,
                        count,
                    }
                    .to_json(),
                )
                .await
            }
        }
    }
}

/// Whether a receive failed because a message or frame was over the size limit.
fn too_big(e: &axum::Error) -> bool {
    std::error::Error::source(e)
        .and_then(|e| e.downcast_ref::<tungstenite::Error>())
        .is_some_and(|e| matches!(e, tungstenite::Error::Capacity(_)))
}

fn internal(e: &portrait_store::StoreError) -> End {
    End::Close(
        CLOSE_INTERNAL,
        "internal error, reconnect".into(),
        Some(crate::error::ws_store_failure(e)),
    )
}
