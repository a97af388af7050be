//! Rust client for Portrait: the Tencent-Cloud-IM-compatible admin REST API and the client API
//! for users, with realtime push (docs/client-api.md).
//!
//! For applications:
//! * [`Admin`] — an app's backend: `account_import`, `multiaccount_import` (with Nick/FaceUrl),
//!   `account_check`, `account_delete`, `kick`, `portrait_set`, `portrait_get`, with typed
//!   results ([`Profile`], [`ProfileUpdate`], [`Gender`], [`AllowType`]). A non-zero vendor
//!   `ErrorCode` is an `Err` ([`ClientError::Api`]). Admin UserSigs are minted from the secret
//!   key once and renewed before they expire.
//! * [`User`] — a signed-in user: `get_my_profile`, `get_user_profile`, `update_my_profile`, and
//!   the change feed [`User::changes`], a `futures` [`Stream`](futures_util::Stream) that
//!   reconnects with backoff and jitter, resumes from its cursor, and yields failures
//!   ([`FeedError`]) instead of ending silently. A refresh hook supplies new UserSigs.
//!
//!
//! For operators: [`Operator`] — the operator API (`/admin/v1`): apps, keys, custom fields,
//! accounts and webhook state, with `portrait_core::operator`'s types (re-exported in
//! [`operator`]). A refusal is [`ClientError::Operator`] with the HTTP status, code and message.
//!
//! Envelope level (every answer as the vendor's JSON, failures included; the server's tests use
//! these): [`AdminClient`] and [`user::UserClient`], with the raw WebSocket [`user::Socket`].
//! The WebSocket frames are [`portrait_core::ws`]'s, shared with the server and the TypeScript
//! SDK.
//!
//! What it must not do: retry writes on its own (a retried `portrait_set` could apply twice
//! around a concurrent change), or log UserSigs and keys.

use portrait_core::usersig;
use portrait_core::ErrorCode;
use serde::de::DeserializeOwned;

mod admin;
pub mod feed;
pub mod operator;
mod profile;
mod signed_in;
pub mod user;
use serde_json::{json, Value};

pub use admin::{Admin, AdminBuilder};
pub use feed::{refresh_with, Backoff, Changes, FeedError, FeedEvent, SigRefresh};
pub use operator::{Operator, OperatorBuilder};
pub use portrait_core::profile::{AdminForbidType, AllowType, Gender};
/// The standard tags: `StandardTag::Nick.name()` is `"Tag_Profile_IM_Nick"`.
pub use portrait_core::schema::StandardTag;
pub use portrait_core::ws::{ChangeKind, ProfileEvent};
pub use portrait_core::ProfileValue;
pub use profile::{AccountFailure, ImportAccount, Profile, ProfileUpdate, Profiles};
pub use signed_in::{User, UserBuilder};

/// The README's examples, compiled by `cargo test --doc`.
#[doc = include_str!("../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;

/// Client errors: the server's vendor error, transport failures, or an unexpected answer.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The server answered with a non-zero `ErrorCode`.
    #[error("error {code}: {info}")]
    Api {
        /// The vendor code (e.g. 40003, 70107, 49001).
        code: ErrorCode,
        /// `ErrorInfo`.
        info: String,
    },
    /// The operator API ([`Operator`]) refused: its HTTP status and JSON error.
    #[error("HTTP {status} {code}: {message}")]
    Operator {
        /// HTTP status (4xx/5xx).
        status: u16,
        /// The stable machine-readable code (`portrait_core::operator::error_code`, e.g.
        /// `app_not_found`).
        code: String,
        /// A sentence for a person.
        message: String,
    },
    /// HTTP transport failed (connect, timeout, body).
    #[error("http: {0}")]
    Http(#[from] reqwest::Error),
    /// WebSocket failure or unexpected frame.
    #[error("websocket: {0}")]
    Ws(String),
    /// The server answered with something that is not a JSON envelope.
    #[error("unexpected response (HTTP {status}): {body}")]
    Unexpected {
        /// HTTP status.
        status: u16,
        /// Body text.
        body: String,
    },
    /// A successful answer whose fields are not as documented.
    #[error("undecodable answer: {0}")]
    Decode(String),
    /// A builder was given something unusable.
    #[error("configuration: {0}")]
    Config(String),
    /// The UserSig refresh hook failed.
    #[error("UserSig refresh failed: {0}")]
    Refresh(String),
    /// The change feed failed for good (from `?` on a [`FeedError`]).
    #[error("change feed: {0}")]
    Feed(#[from] FeedError),
}

impl ClientError {
    /// The vendor code of an [`ClientError::Api`] error.
    pub fn code(&self) -> Option<ErrorCode> {
        match self {
            ClientError::Api { code, .. } => Some(*code),
            _ => None,
        }
    }

    /// The `code` of an [`ClientError::Operator`] error (e.g. `"app_not_found"`).
    pub fn operator_code(&self) -> Option<&str> {
        match self {
            ClientError::Operator { code, .. } => Some(code),
            _ => None,
        }
    }
}

/// Result alias of this crate.
pub type Result<T, E = ClientError> = std::result::Result<T, E>;

/// A decoded response: the whole JSON body.
#[derive(Debug, Clone)]
pub struct Reply(pub Value);

impl Reply {
    /// `ErrorCode` (0 = success).
    pub fn code(&self) -> u64 {
        self.0["ErrorCode"].as_u64().unwrap_or(u64::MAX)
    }
    /// `ActionStatus`.
    pub fn status(&self) -> &str {
        self.0["ActionStatus"].as_str().unwrap_or("")
    }
    /// `ErrorInfo`.
    pub fn info(&self) -> &str {
        self.0["ErrorInfo"].as_str().unwrap_or("")
    }
}

/// Calls the REST API as an app admin, at the envelope level: every answer, failures included,
/// is a [`Reply`] (the server's tests use it). Mints a fresh UserSig for every call.
/// Applications usually want the typed [`Admin`].
#[derive(Clone)]
pub struct AdminClient {
    http: reqwest::Client,
    base: String,
    sdkappid: u64,
    identifier: String,
    key: String,
}

impl AdminClient {
    /// A client for `base` (e.g. `http://127.0.0.1:8080`), acting as `identifier` of `sdkappid`.
    pub fn new(
        base: impl Into<String>,
        sdkappid: u64,
        identifier: impl Into<String>,
        key: impl Into<String>,
    ) -> Self {
        Self {
            http: reqwest::Client::new(),
            base: base.into().trim_end_matches('/').to_owned(),
            sdkappid,
            identifier: identifier.into(),
            key: key.into(),
        }
    }

    /// The same client acting as another identifier (its UserSig is minted with the same key).
    pub fn as_identifier(&self, identifier: impl Into<String>) -> Self {
        Self {
            identifier: identifier.into(),
            ..self.clone()
        }
    }

    /// A UserSig for this client's identifier, valid for a day.
    pub fn usersig(&self) -> String {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        usersig::mint(self.sdkappid, &self.key, &self.identifier, now, 86_400)
    }

    /// The URL of `api` (e.g. `v4/profile/portrait_get`) with a full, freshly signed query.
    pub fn url(&self, api: &str) -> String {
        format!(
            "{}/{}?sdkappid={}&identifier={}&usersig={}&random={}&contenttype=json",
            self.base,
            api.trim_start_matches('/'),
            self.sdkappid,
            urlencode(&self.identifier),
            self.usersig(),
            rand::random::<u32>()
        )
    }

    /// POSTs `body` to `api` and decodes the envelope.
    ///
    /// # Errors
    /// Transport failures, or a non-JSON answer.
    pub async fn call(&self, api: &str, body: &Value) -> Result<Reply> {
        let resp = self.http.post(self.url(api)).json(body).send().await?;
        decode(resp).await
    }

    /// `v4/profile/portrait_set`.
    ///
    /// # Errors
    /// As [`AdminClient::call`].
    pub async fn portrait_set(&self, from: &str, items: &[(&str, Value)]) -> Result<Reply> {
        let items: Vec<Value> = items
            .iter()
            .map(|(t, v)| json!({"Tag": t, "Value": v}))
            .collect();
        self.call(
            "v4/profile/portrait_set",
            &json!({"From_Account": from, "ProfileItem": items}),
        )
        .await
    }

    /// `v4/profile/portrait_get`.
    ///
    /// # Errors
    /// As [`AdminClient::call`].
    pub async fn portrait_get(&self, to: &[&str], tags: &[&str]) -> Result<Reply> {
        self.call(
            "v4/profile/portrait_get",
            &json!({"To_Account": to, "TagList": tags}),
        )
        .await
    }

    /// `v4/profile/portrait_import` (Portrait extension): creates or updates up to 1000
    /// accounts, each with any `(tag, value)` items. The answer's `ResultItem` has a code per
    /// account.
    ///
    /// # Errors
    /// As [`AdminClient::call`].
    pub async fn portrait_import(&self, accounts: &[(&str, &[(&str, Value)])]) -> Result<Reply> {
        let list: Vec<Value> = accounts
            .iter()
            .map(|(user, items)| {
                let items: Vec<Value> = items
                    .iter()
                    .map(|(tag, value)| json!({"Tag": tag, "Value": value}))
                    .collect();
                json!({"UserID": user, "ProfileItem": items})
            })
            .collect();
        self.call("v4/profile/portrait_import", &json!({"AccountList": list}))
            .await
    }

    /// `v4/im_open_login_svc/account_import`.
    ///
    /// # Errors
    /// As [`AdminClient::call`].
    pub async fn account_import(
        &self,
        user: &str,
        nick: Option<&str>,
        face_url: Option<&str>,
    ) -> Result<Reply> {
        let mut body = json!({"UserID": user});
        if let Some(n) = nick {
            body["Nick"] = n.into();
        }
        if let Some(f) = face_url {
            body["FaceUrl"] = f.into();
        }
        self.call("v4/im_open_login_svc/account_import", &body)
            .await
    }

    /// `v4/im_open_login_svc/multiaccount_import` (old `Accounts` form).
    ///
    /// # Errors
    /// As [`AdminClient::call`].
    pub async fn multiaccount_import(&self, users: &[&str]) -> Result<Reply> {
        self.call(
            "v4/im_open_login_svc/multiaccount_import",
            &json!({"Accounts": users}),
        )
        .await
    }

    /// `v4/im_open_login_svc/account_delete`.
    ///
    /// # Errors
    /// As [`AdminClient::call`].
    pub async fn account_delete(&self, users: &[&str]) -> Result<Reply> {
        let items: Vec<Value> = users.iter().map(|u| json!({"UserID": u})).collect();
        self.call(
            "v4/im_open_login_svc/account_delete",
            &json!({"DeleteItem": items}),
        )
        .await
    }

    /// `v4/im_open_login_svc/account_check`.
    ///
    /// # Errors
    /// As [`AdminClient::call`].
    pub async fn account_check(&self, users: &[&str]) -> Result<Reply> {
        let items: Vec<Value> = users.iter().map(|u| json!({"UserID": u})).collect();
        self.call(
            "v4/im_open_login_svc/account_check",
            &json!({"CheckItem": items}),
        )
        .await
    }

    /// `v4/im_open_login_svc/kick`.
    ///
    /// # Errors
    /// As [`AdminClient::call`].
    pub async fn kick(&self, user: &str) -> Result<Reply> {
        self.call("v4/im_open_login_svc/kick", &json!({"UserID": user}))
            .await
    }
}

/// Decodes a typed answer: `Err(Api)` for a non-zero `ErrorCode`, else the body as `T`.
async fn envelope<T: DeserializeOwned>(resp: reqwest::Response) -> Result<T> {
    let reply = decode(resp).await?;
    if reply.code() != 0 {
        let code = u32::try_from(reply.code()).unwrap_or(u32::MAX);
        return Err(ClientError::Api {
            code: ErrorCode(code),
            info: reply.info().to_owned(),
        });
    }
    serde_json::from_value(reply.0).map_err(|e| ClientError::Decode(e.to_string()))
}

async fn decode(resp: reqwest::Response) -> Result<Reply> {
    let status = resp.status().as_u16();
    let text = resp.text().await?;
    match serde_json::from_str::<Value>(&text) {
        Ok(v) if v.get("ErrorCode").is_some() => Ok(Reply(v)),
        _ => Err(ClientError::Unexpected { status, body: text }),
    }
}

fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}
