//! The client API of a signed-in user (docs/client-api.md): profile calls over HTTP and the
//! WebSocket `/v1/ws`.
//!
//! * [`UserClient::connect`] opens one raw [`Socket`]: typed [`Frame`]s in, ops out. Tests and
//!   tools that want to see exactly what the server sends use it.
//! * [`UserClient::changes`] is what an application wants: a [`Changes`] stream (see
//!   [`crate::feed`]) that survives disconnects and reports what goes wrong.
//!
//! Answers are the vendor envelope as JSON ([`Reply`]), failures included: this is the level
//! the server's tests work at. Applications usually want the typed [`crate::User`].

use std::sync::{Arc, RwLock};
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use portrait_core::ws::ClientOp;
use serde_json::{json, Value};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

pub use portrait_core::wire::ADMIN_OPERATOR;
/// A frame from the server: the protocol's own type.
pub use portrait_core::ws::ServerFrame as Frame;
pub use portrait_core::ws::{ChangeKind, ProfileEvent};

pub use crate::feed::Changes;
use crate::feed::FeedConfig;
use crate::{decode, urlencode, ClientError, Reply, Result};

/// A user of one app, signed in with their own UserSig.
#[derive(Clone)]
pub struct UserClient {
    http: reqwest::Client,
    base: String,
    sdkappid: u64,
    user: String,
    /// Shared by clones, so that a refreshed UserSig reaches every one of them.
    usersig: Arc<RwLock<String>>,
}

impl UserClient {
    /// A client for `base` (e.g. `http://127.0.0.1:8080`) signed in as `user` with `usersig`.
    pub fn new(
        base: impl Into<String>,
        sdkappid: u64,
        user: impl Into<String>,
        usersig: impl Into<String>,
    ) -> Self {
        Self {
            http: reqwest::Client::new(),
            base: base.into().trim_end_matches('/').to_owned(),
            sdkappid,
            user: user.into(),
            usersig: Arc::new(RwLock::new(usersig.into())),
        }
    }

    /// The same client with another `reqwest::Client` (timeouts, proxies, TLS roots).
    pub fn with_http(mut self, http: reqwest::Client) -> Self {
        self.http = http;
        self
    }

    /// Replaces the UserSig (of this client and its clones), e.g. after a refresh.
    pub fn set_usersig(&self, usersig: impl Into<String>) {
        *self.usersig.write().expect("usersig lock") = usersig.into();
    }

    /// The app.
    pub fn sdkappid(&self) -> u64 {
        self.sdkappid
    }

    /// A client for `user`, minting a UserSig valid for a day from the app's secret key (for
    /// tests and trusted tools; a real client receives its UserSig from the app's backend).
    pub fn with_key(base: impl Into<String>, sdkappid: u64, user: &str, key: &str) -> Self {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        let sig = portrait_core::usersig::mint(sdkappid, key, user, now, 86_400);
        Self::new(base, sdkappid, user, sig)
    }

    /// The signed-in user.
    pub fn user(&self) -> &str {
        &self.user
    }

    fn query(&self) -> String {
        format!(
            "sdkappid={}&identifier={}&usersig={}&random={}&contenttype=json",
            self.sdkappid,
            urlencode(&self.user),
            urlencode(&self.usersig.read().expect("usersig lock")),
            rand::random::<u32>()
        )
    }

    /// The URL of a client API path (`v1/profile/…`) with the sign-in query.
    pub fn url(&self, api: &str) -> String {
        format!(
            "{}/{}?{}",
            self.base,
            api.trim_start_matches('/'),
            self.query()
        )
    }

    pub(crate) fn http(&self) -> &reqwest::Client {
        &self.http
    }

    /// POSTs `body` to a client API path (`v1/profile/…`).
    ///
    /// # Errors
    /// Transport failures, or a non-JSON answer.
    pub async fn call(&self, api: &str, body: &Value) -> Result<Reply> {
        let resp = self.http.post(self.url(api)).json(body).send().await?;
        decode(resp).await
    }

    /// `getMyProfile`: the caller's profile (all readable fields, or `tags`).
    ///
    /// # Errors
    /// Transport failures.
    pub async fn get_my_profile(&self, tags: Option<&[&str]>) -> Result<Reply> {
        let body = match tags {
            Some(t) => json!({ "TagList": t }),
            None => json!({}),
        };
        self.call("v1/profile/get_my_profile", &body).await
    }

    /// `getUserProfile`: up to 100 profiles (all readable fields, or `tags`).
    ///
    /// # Errors
    /// Transport failures.
    pub async fn get_user_profile(
        &self,
        accounts: &[&str],
        tags: Option<&[&str]>,
    ) -> Result<Reply> {
        let mut body = json!({ "To_Account": accounts });
        if let Some(t) = tags {
            body["TagList"] = json!(t);
        }
        self.call("v1/profile/get_user_profile", &body).await
    }

    /// `updateMyProfile`: writes `items` to the caller's profile, only if it is still at
    /// `expected_version` when given. The reply's `Version` is the new version.
    ///
    /// # Errors
    /// Transport failures.
    pub async fn update_my_profile(
        &self,
        items: &[(&str, Value)],
        expected_version: Option<u64>,
    ) -> Result<Reply> {
        let items: Vec<Value> = items
            .iter()
            .map(|(t, v)| json!({ "Tag": t, "Value": v }))
            .collect();
        let mut body = json!({ "ProfileItem": items });
        if let Some(v) = expected_version {
            body["ExpectedVersion"] = json!(v);
        }
        self.call("v1/profile/update_my_profile", &body).await
    }

    /// The WebSocket URL with `since` and initial `accounts`.
    pub fn ws_url(&self, since: Option<u64>, accounts: &[&str]) -> String {
        let base = self
            .base
            .replacen("http://", "ws://", 1)
            .replacen("https://", "wss://", 1);
        let mut url = format!("{base}/v1/ws?{}", self.query());
        if let Some(s) = since {
            url.push_str(&format!("&since={s}"));
        }
        if !accounts.is_empty() {
            url.push_str("&accounts=");
            url.push_str(&urlencode(&accounts.join(",")));
        }
        url
    }

    /// Opens one WebSocket connection.
    ///
    /// # Errors
    /// The handshake fails.
    pub async fn connect(&self, since: Option<u64>, accounts: &[&str]) -> Result<Socket> {
        Socket::open(&self.ws_url(since, accounts)).await
    }

    /// A stream of every change of `accounts` (and of the own account) from `since` on (or from
    /// now), reconnecting and catching up by cursor until the [`Changes`] is dropped; failures
    /// are yielded as [`crate::FeedError`]s (see [`crate::feed`]). No refresh hook: an expired
    /// UserSig ends it ([`crate::User::changes`] takes one).
    pub fn changes(&self, accounts: &[&str], since: Option<u64>) -> Changes {
        crate::feed::start(self.clone(), accounts, since, FeedConfig::default())
    }

    /// As [`UserClient::changes`], with a backoff and a refresh hook.
    pub(crate) fn changes_with(
        &self,
        accounts: &[&str],
        since: Option<u64>,
        config: FeedConfig,
    ) -> Changes {
        crate::feed::start(self.clone(), accounts, since, config)
    }
}

/// What [`Socket::next`] yields besides frames.
#[derive(Debug, Clone, PartialEq)]
pub enum Incoming {
    /// A JSON frame.
    Frame(Frame),
    /// The server closed the connection with this code and reason.
    Closed(u16, String),
}

/// What [`Socket::next_heard`] got.
pub(crate) enum Heard {
    /// A frame or the close.
    Incoming(Incoming),
    /// A ping, pong or binary message: the connection is alive.
    Heartbeat,
    /// The connection is gone without a close frame.
    Gone,
}

/// One raw WebSocket connection.
pub struct Socket {
    ws: WebSocketStream<MaybeTlsStream<TcpStream>>,
}

impl Socket {
    /// Opens one WebSocket connection to `url`, a full `/v1/ws` URL with its query (as
    /// [`UserClient::ws_url`] builds it).
    ///
    /// # Errors
    /// The handshake fails.
    pub async fn open(url: &str) -> Result<Socket> {
        // A small read buffer: tungstenite zero-fills it before every read (default 128 KiB).
        let config = tokio_tungstenite::tungstenite::protocol::WebSocketConfig::default()
            .read_buffer_size(4096);
        let (ws, _) = tokio_tungstenite::connect_async_with_config(url, Some(config), false)
            .await
            .map_err(|e| ClientError::Ws(e.to_string()))?;
        Ok(Socket { ws })
    }

    /// The next frame or the close; `None` when the connection is gone without a close frame.
    ///
    /// # Errors
    /// A frame that is not valid JSON of a known type.
    pub async fn next(&mut self) -> Result<Option<Incoming>> {
        loop {
            match self.next_heard().await? {
                Heard::Incoming(i) => return Ok(Some(i)),
                Heard::Heartbeat => {}
                Heard::Gone => return Ok(None),
            }
        }
    }

    /// As [`Socket::next`], but also returns when a ping or pong arrives (liveness watching).
    pub(crate) async fn next_heard(&mut self) -> Result<Heard> {
        match self.ws.next().await {
            Some(Ok(Message::Text(t))) => {
                let frame = serde_json::from_str(t.as_str())
                    .map_err(|e| ClientError::Ws(format!("bad frame {t}: {e}")))?;
                Ok(Heard::Incoming(Incoming::Frame(frame)))
            }
            Some(Ok(Message::Close(c))) => {
                let (code, reason) = c
                    .map(|c| (u16::from(c.code), c.reason.to_string()))
                    .unwrap_or((1005, String::new()));
                Ok(Heard::Incoming(Incoming::Closed(code, reason)))
            }
            Some(Ok(_)) => Ok(Heard::Heartbeat),
            Some(Err(_)) | None => Ok(Heard::Gone),
        }
    }

    /// The next frame, skipping nothing; fails if the connection closes first or `wait` passes.
    ///
    /// # Errors
    /// Timeout, close, or a bad frame.
    pub async fn frame(&mut self, wait: Duration) -> Result<Frame> {
        match tokio::time::timeout(wait, self.next()).await {
            Ok(Ok(Some(Incoming::Frame(f)))) => Ok(f),
            Ok(Ok(other)) => Err(ClientError::Ws(format!("expected a frame, got {other:?}"))),
            Ok(Err(e)) => Err(e),
            Err(_) => Err(ClientError::Ws(format!("no frame within {wait:?}"))),
        }
    }

    /// Sends an op of the protocol.
    ///
    /// # Errors
    /// The connection is gone.
    pub async fn send_op(&mut self, op: &ClientOp) -> Result<()> {
        self.ws
            .send(Message::Text(op.to_json().into()))
            .await
            .map_err(|e| ClientError::Ws(e.to_string()))
    }

    /// Sends any JSON text (tests send invalid ops with it).
    ///
    /// # Errors
    /// The connection is gone.
    pub async fn send(&mut self, op: &Value) -> Result<()> {
        self.ws
            .send(Message::Text(op.to_string().into()))
            .await
            .map_err(|e| ClientError::Ws(e.to_string()))
    }

    /// `subscribe` op.
    ///
    /// # Errors
    /// The connection is gone.
    pub async fn subscribe(&mut self, accounts: &[&str], since: Option<u64>) -> Result<()> {
        let op = ClientOp::Subscribe {
            accounts: accounts.iter().map(|a| (*a).to_owned()).collect(),
            since,
        };
        self.send_op(&op).await
    }

    /// Closes the connection normally.
    pub async fn close(mut self) {
        let _ = self.ws.close(None).await;
    }
}
