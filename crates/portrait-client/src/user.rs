//! The client API of a signed-in user (docs/client-api.md): profile calls over HTTP and the
//! WebSocket `/v1/ws`.
//!
//! * [`UserClient::connect`] opens one raw [`Socket`]: typed [`Frame`]s in, ops out. Tests and
//!   tools that want to see exactly what the server sends use it.
//! * [`UserClient::changes`] is what an application wants: a [`Changes`] stream of
//!   [`ProfileEvent`]s that survives disconnects. It reconnects with backoff, passes the last
//!   `cursor` as `since`, re-subscribes, and drops events it has already delivered (per account,
//!   by version), so every change arrives once.

use std::collections::{BTreeSet, HashMap};
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde::Deserialize;
use serde_json::{json, Value};
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

pub use portrait_core::wire::ADMIN_OPERATOR;

use crate::{decode, urlencode, ClientError, Reply, Result};

/// A user of one app, signed in with their own UserSig.
#[derive(Clone)]
pub struct UserClient {
    http: reqwest::Client,
    base: String,
    sdkappid: u64,
    user: String,
    usersig: String,
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
            usersig: usersig.into(),
        }
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
            urlencode(&self.usersig),
            rand::random::<u32>()
        )
    }

    /// POSTs `body` to a client API path (`v1/profile/…`).
    ///
    /// # Errors
    /// Transport failures, or a non-JSON answer.
    pub async fn call(&self, api: &str, body: &Value) -> Result<Reply> {
        let url = format!(
            "{}/{}?{}",
            self.base,
            api.trim_start_matches('/'),
            self.query()
        );
        let resp = self.http.post(url).json(body).send().await?;
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
    /// now), reconnecting and catching up by cursor until the [`Changes`] is dropped.
    ///
    /// If the server no longer keeps every change since the cursor (its change log is pruned
    /// after `[store] change_retention_hours`; error 49005), the stream yields one event of kind
    /// [`GAP`] (no account, no items): some changes are gone, so read the profiles shown again.
    /// The changes that are kept follow as usual.
    pub fn changes(&self, accounts: &[&str], since: Option<u64>) -> Changes {
        let (tx, rx) = mpsc::channel(1024);
        let client = self.clone();
        let accounts: BTreeSet<String> = accounts.iter().map(|a| (*a).to_owned()).collect();
        let task = tokio::spawn(follow(client, accounts, since, tx));
        Changes { rx, task }
    }
}

/// A frame from the server (docs/client-api.md).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Frame {
    /// First frame after a successful handshake.
    Ready {
        /// The signed-in user.
        user: String,
        /// The app's latest version at connect.
        version: u64,
        /// Subscriptions allowed per connection.
        max_subscriptions: usize,
    },
    /// A change of a subscribed account.
    Profile(ProfileEvent),
    /// A catch-up is complete.
    Synced {
        /// Everything up to this version has been sent.
        cursor: u64,
    },
    /// Answer to `subscribe`.
    Subscribed {
        /// Accounts newly subscribed.
        accounts: Vec<String>,
        /// Subscriptions now held.
        count: usize,
    },
    /// Answer to `unsubscribe`.
    Unsubscribed {
        /// Accounts no longer subscribed.
        accounts: Vec<String>,
        /// Subscriptions now held.
        count: usize,
    },
    /// Answer to the `ping` op.
    Pong,
    /// A refused op, or the reason of a close.
    Error {
        /// The code.
        code: i64,
        /// Why.
        message: String,
        /// The op it answers.
        #[serde(default)]
        op: Option<String>,
    },
}

/// One change of a profile.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct ProfileEvent {
    /// Whose profile changed.
    pub account: String,
    /// The change's version.
    pub version: u64,
    /// `import`, `set` or `delete`; [`GAP`] from [`UserClient::changes`] when changes are gone.
    pub kind: String,
    /// Who made it: the account's own UserID when its user changed it, otherwise
    /// [`ADMIN_OPERATOR`] (`"admin"`: an app admin or the app's backend; which admin account is
    /// never shown to users).
    pub operator: String,
    /// When (Unix milliseconds).
    pub time_ms: i64,
    /// The items written (`{"Tag", "Value"}`), readable ones only.
    pub items: Vec<Value>,
    /// Everything up to this version has been sent on the connection.
    pub cursor: u64,
}

impl ProfileEvent {
    /// The value written to `tag` by this change.
    pub fn item(&self, tag: &str) -> Option<&Value> {
        self.items
            .iter()
            .find(|i| i["Tag"] == tag)
            .map(|i| &i["Value"])
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

/// The `kind` of the event [`UserClient::changes`] yields when the server no longer keeps every
/// change since the stream's cursor (error 49005).
pub const GAP: &str = "gap";

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
        while let Some(msg) = self.ws.next().await {
            match msg {
                Ok(Message::Text(t)) => {
                    let frame = serde_json::from_str(t.as_str())
                        .map_err(|e| ClientError::Ws(format!("bad frame {t}: {e}")))?;
                    return Ok(Some(Incoming::Frame(frame)));
                }
                Ok(Message::Close(c)) => {
                    let (code, reason) = c
                        .map(|c| (u16::from(c.code), c.reason.to_string()))
                        .unwrap_or((1005, String::new()));
                    return Ok(Some(Incoming::Closed(code, reason)));
                }
                Ok(_) => {}
                Err(_) => return Ok(None),
            }
        }
        Ok(None)
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

    /// Sends an op (a JSON object with `op`).
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
        let mut op = json!({ "op": "subscribe", "accounts": accounts });
        if let Some(s) = since {
            op["since"] = json!(s);
        }
        self.send(&op).await
    }

    /// Closes the connection normally.
    pub async fn close(mut self) {
        let _ = self.ws.close(None).await;
    }
}

/// A resilient stream of change events; see [`UserClient::changes`].
pub struct Changes {
    rx: mpsc::Receiver<ProfileEvent>,
    task: tokio::task::JoinHandle<()>,
}

impl Changes {
    /// The next change (`None` only if the background task ended, e.g. the UserSig was refused).
    pub async fn next(&mut self) -> Option<ProfileEvent> {
        self.rx.recv().await
    }
}

impl Drop for Changes {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn follow(
    client: UserClient,
    accounts: BTreeSet<String>,
    mut since: Option<u64>,
    tx: mpsc::Sender<ProfileEvent>,
) {
    let mut delivered: HashMap<String, u64> = HashMap::new();
    let mut backoff = Duration::from_millis(100);
    let list: Vec<&str> = accounts.iter().map(String::as_str).collect();
    loop {
        match client.connect(since, &list).await {
            Ok(mut socket) => {
                backoff = Duration::from_millis(100);
                loop {
                    match socket.next().await {
                        Ok(Some(Incoming::Frame(Frame::Profile(ev)))) => {
                            since = Some(since.unwrap_or(0).max(ev.cursor));
                            let seen = delivered.entry(ev.account.clone()).or_default();
                            if ev.version > *seen {
                                *seen = ev.version;
                                if tx.send(ev).await.is_err() {
                                    return;
                                }
                            }
                        }
                        // Without `since` the stream starts at the head; with it, only `synced`
                        // (the catch-up is complete) may move it.
                        Ok(Some(Incoming::Frame(Frame::Ready { version, .. }))) => {
                            since.get_or_insert(version);
                        }
                        Ok(Some(Incoming::Frame(Frame::Synced { cursor }))) => {
                            since = Some(since.unwrap_or(cursor).max(cursor));
                        }
                        Ok(Some(Incoming::Frame(Frame::Error {
                            code: 49005,
                            message,
                            ..
                        }))) => {
                            tracing::warn!(%message, "portrait ws: changes were pruned");
                            let gap = ProfileEvent {
                                account: String::new(),
                                version: 0,
                                kind: GAP.to_owned(),
                                operator: String::new(),
                                time_ms: 0,
                                items: Vec::new(),
                                cursor: since.unwrap_or(0),
                            };
                            if tx.send(gap).await.is_err() {
                                return;
                            }
                        }
                        Ok(Some(Incoming::Frame(Frame::Error { code, message, .. }))) => {
                            tracing::warn!(code, %message, "portrait ws: error frame");
                            if is_auth_failure(code) {
                                return;
                            }
                        }
                        Ok(Some(Incoming::Frame(_))) => {}
                        Ok(Some(Incoming::Closed(code, reason))) => {
                            tracing::info!(code, %reason, "portrait ws: closed by the server");
                            if matches!(code, 4001 | 4002 | 4004) {
                                return; // signing in again needs a new UserSig
                            }
                            break;
                        }
                        Ok(None) | Err(_) => break,
                    }
                }
            }
            Err(e) => tracing::debug!(error = %e, "portrait ws: connect failed"),
        }
        if tx.is_closed() {
            return;
        }
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(Duration::from_secs(5));
    }
}

fn is_auth_failure(code: i64) -> bool {
    (60000..61000).contains(&code) || (70000..71000).contains(&code)
}
