//! [`Operator`]: the typed client of the operator API (`/admin/v1/*`, docs/operator-api.md), for
//! the people and tools that run Portrait rather than an app: apps and their keys, custom fields,
//! accounts and webhook delivery state. The `portrait app|field|account` commands are built on it.
//!
//! Bodies and answers are `portrait_core::operator`'s types. A refusal (any 4xx/5xx with the
//! API's JSON error) is [`ClientError::Operator`] carrying the HTTP status, the stable `code`
//! (`portrait_core::operator::error_code`) and the message; an answer that is not that JSON is
//! [`ClientError::Unexpected`].
//!
//! What it must not do: retry on its own (a retried create or rotation could apply twice), or
//! show the token (its `Debug` leaves it out).

use std::fmt;
use std::time::Duration;

/// The operator API's wire types, from `portrait_core::operator`.
pub use portrait_core::operator::{
    error_code, AccountList, AccountView, AppCreate, AppCreated, AppKey, AppList, AppMove,
    AppMoved, AppPatch, AppSource, AppView, ChangeView, ClientRateLimits, CustomKind, FieldAdd,
    FieldList, FieldPatch, FieldView, KeyRotate, OperatorError, RateLimits, WebhookFailure,
    WebhookSettings, WebhookState, Who,
};
use reqwest::{Method, RequestBuilder, StatusCode};
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::admin::{checked_base, http_client};
use crate::{urlencode, ClientError, Result};

/// The path prefix of the operator API.
const PREFIX: &str = "/admin/v1";

/// The least time limit of [`Operator::move_app`]: a move answers within two minutes (504
/// `move_unfinished` past them), and its request deadline on the server is a little longer.
pub const MOVE_TIMEOUT: Duration = Duration::from_secs(135);

/// Builds an [`Operator`]; see [`Operator::builder`].
pub struct OperatorBuilder {
    base: String,
    token: String,
    http: Option<reqwest::Client>,
    timeout: Duration,
    connect_timeout: Duration,
}

impl OperatorBuilder {
    /// Use this `reqwest::Client` (connection pool, proxy, TLS roots). Its own timeouts apply;
    /// [`OperatorBuilder::timeout`] is added per request.
    pub fn http_client(mut self, http: reqwest::Client) -> Self {
        self.http = Some(http);
        self
    }

    /// Time limit of each request, from sending to the whole answer (default 10 s).
    pub fn timeout(mut self, t: Duration) -> Self {
        self.timeout = t;
        self
    }

    /// Connect timeout of the client this builder makes (default 5 s; not applied to a client
    /// given with [`OperatorBuilder::http_client`]).
    pub fn connect_timeout(mut self, t: Duration) -> Self {
        self.connect_timeout = t;
        self
    }

    /// The client.
    ///
    /// # Errors
    /// [`ClientError::Config`] for a base URL that is not `http(s)://…` or an empty token;
    /// [`ClientError::Http`] if the HTTP client cannot be built.
    pub fn build(self) -> Result<Operator> {
        let base = checked_base(&self.base)?;
        if self.token.trim().is_empty() {
            return Err(ClientError::Config("the operator token is empty".into()));
        }
        let http = http_client(self.http, self.connect_timeout)?;
        Ok(Operator {
            http,
            base,
            token: self.token.trim().to_owned(),
            timeout: self.timeout,
        })
    }
}

/// The typed operator client. Cheap to clone (clones share the HTTP pool).
///
/// ```no_run
/// # async fn run() -> portrait_client::Result<()> {
/// use portrait_client::operator::{AppCreate, CustomKind, FieldAdd};
/// use portrait_client::Operator;
/// let op = Operator::builder("http://127.0.0.1:8080", "the-operator-token").build()?;
/// let created = op.create_app(&AppCreate::default()).await?;
/// let id = created.app.sdkappid;
/// let hobby = FieldAdd {
///     name: "Tag_Profile_Custom_Hobby".into(),
///     kind: CustomKind::String,
///     max_length: Some(64),
///     read: None,
///     write: None,
/// };
/// op.add_field(id, &hobby).await?;
/// let page = op.accounts(id, "al", None, Some(100)).await?;
/// for user in &page.accounts {
///     println!("{user}: version {}", op.account(id, user).await?.version);
/// }
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct Operator {
    http: reqwest::Client,
    base: String,
    token: String,
    timeout: Duration,
}

/// Everything but the token.
impl fmt::Debug for Operator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Operator")
            .field("base", &self.base)
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

/// Everything but the token.
impl fmt::Debug for OperatorBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OperatorBuilder")
            .field("base", &self.base)
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

impl Operator {
    /// A builder for the server at `base` (e.g. `http://127.0.0.1:8080`), signing in with the
    /// operator `token` (`[operator] token` of the server's settings).
    pub fn builder(base: impl Into<String>, token: impl Into<String>) -> OperatorBuilder {
        OperatorBuilder {
            base: base.into(),
            token: token.into(),
            http: None,
            timeout: Duration::from_secs(10),
            connect_timeout: Duration::from_secs(5),
        }
    }

    /// `GET /admin/v1/apps`: every app of the node.
    ///
    /// # Errors
    /// [`ClientError::Operator`] (e.g. 401 `unauthorized`); transport.
    pub async fn apps(&self) -> Result<AppList> {
        self.send(self.request(Method::GET, "/apps")).await
    }

    /// `POST /admin/v1/apps`: creates an app; the answer holds its key.
    ///
    /// # Errors
    /// [`ClientError::Operator`] (e.g. 409 `app_exists`, 400 `invalid`); transport.
    pub async fn create_app(&self, app: &AppCreate) -> Result<AppCreated> {
        self.send_json(Method::POST, "/apps".into(), app).await
    }

    /// `GET /admin/v1/apps/{sdkappid}`.
    ///
    /// # Errors
    /// [`ClientError::Operator`] (e.g. 404 `app_not_found`); transport.
    pub async fn app(&self, sdkappid: u64) -> Result<AppView> {
        self.send(self.request(Method::GET, &app_path(sdkappid, "")))
            .await
    }

    /// `PATCH /admin/v1/apps/{sdkappid}`: changes what `patch` holds; with `if_match`, only if
    /// the app is still at that [`AppView::revision`].
    ///
    /// # Errors
    /// [`ClientError::Operator`] (e.g. 412 `revision_mismatch`, 404 `app_not_found`); transport.
    pub async fn update_app(
        &self,
        sdkappid: u64,
        patch: &AppPatch,
        if_match: Option<u64>,
    ) -> Result<AppView> {
        let mut req = self
            .request(Method::PATCH, &app_path(sdkappid, ""))
            .json(patch);
        if let Some(revision) = if_match {
            req = req.header(reqwest::header::IF_MATCH, format!("\"{revision}\""));
        }
        self.send(req).await
    }

    /// `GET /admin/v1/apps/{sdkappid}/key`: the app's secret key.
    ///
    /// # Errors
    /// [`ClientError::Operator`] (e.g. 404 `app_not_found`); transport.
    pub async fn key(&self, sdkappid: u64) -> Result<AppKey> {
        self.send(self.request(Method::GET, &app_path(sdkappid, "/key")))
            .await
    }

    /// `POST /admin/v1/apps/{sdkappid}/rotate-key`: a new key; the old one keeps verifying
    /// UserSigs for the grace period.
    ///
    /// # Errors
    /// [`ClientError::Operator`] (e.g. 400 `invalid`); transport.
    pub async fn rotate_key(&self, sdkappid: u64, rotate: &KeyRotate) -> Result<AppKey> {
        self.send_json(Method::POST, app_path(sdkappid, "/rotate-key"), rotate)
            .await
    }

    /// `POST /admin/v1/apps/{sdkappid}/move`: moves the app's data to shard `shard` while it
    /// is served; what the move did. The request may take up to [`MOVE_TIMEOUT`] (or the
    /// builder's timeout, if longer): a move answers within two minutes.
    ///
    /// # Errors
    /// [`ClientError::Operator`] (400 `invalid`, 409 `move_refused`, 503 `store_unavailable`,
    /// 504 `move_unfinished`); transport.
    pub async fn move_app(&self, sdkappid: u64, shard: &str) -> Result<AppMoved> {
        let body = AppMove {
            shard: shard.to_owned(),
        };
        let req = self
            .request(Method::POST, &app_path(sdkappid, "/move"))
            .timeout(self.timeout.max(MOVE_TIMEOUT))
            .json(&body);
        self.send(req).await
    }

    /// `GET /admin/v1/apps/{sdkappid}/fields`: every custom field, hidden ones included.
    ///
    /// # Errors
    /// [`ClientError::Operator`]; transport.
    pub async fn fields(&self, sdkappid: u64) -> Result<FieldList> {
        self.send(self.request(Method::GET, &app_path(sdkappid, "/fields")))
            .await
    }

    /// `POST /admin/v1/apps/{sdkappid}/fields`: adds a custom field.
    ///
    /// # Errors
    /// [`ClientError::Operator`] (e.g. 409 `field_exists`, 409 `too_many_fields`); transport.
    pub async fn add_field(&self, sdkappid: u64, field: &FieldAdd) -> Result<FieldView> {
        self.send_json(Method::POST, app_path(sdkappid, "/fields"), field)
            .await
    }

    /// `PATCH /admin/v1/apps/{sdkappid}/fields/{name}`: hides, shows or re-permits a field.
    ///
    /// # Errors
    /// [`ClientError::Operator`] (e.g. 404 `field_not_found`); transport.
    pub async fn update_field(
        &self,
        sdkappid: u64,
        name: &str,
        patch: &FieldPatch,
    ) -> Result<FieldView> {
        let path = app_path(sdkappid, &format!("/fields/{}", urlencode(name)));
        self.send_json(Method::PATCH, path, patch).await
    }

    /// `GET /admin/v1/apps/{sdkappid}/accounts`: one page of the app's UserIDs starting with
    /// `prefix`, ascending, after `after` (the previous page's [`AccountList::next`]), at most
    /// `limit` (the server's default when `None`).
    ///
    /// # Errors
    /// [`ClientError::Operator`] (e.g. 400 `invalid` for a limit over 1000); transport.
    pub async fn accounts(
        &self,
        sdkappid: u64,
        prefix: &str,
        after: Option<&str>,
        limit: Option<usize>,
    ) -> Result<AccountList> {
        let mut query = format!("?prefix={}", urlencode(prefix));
        if let Some(after) = after {
            query.push_str(&format!("&after={}", urlencode(after)));
        }
        if let Some(limit) = limit {
            query.push_str(&format!("&limit={limit}"));
        }
        let path = app_path(sdkappid, &format!("/accounts{query}"));
        self.send(self.request(Method::GET, &path)).await
    }

    /// `GET /admin/v1/apps/{sdkappid}/accounts/{user_id}`: the profile (hidden fields included),
    /// version, recent changes and kick of an account.
    ///
    /// # Errors
    /// [`ClientError::Operator`] (e.g. 404 `account_not_found`); transport.
    pub async fn account(&self, sdkappid: u64, user_id: &str) -> Result<AccountView> {
        self.send(self.request(Method::GET, &account_path(sdkappid, user_id, "")))
            .await
    }

    /// `POST /admin/v1/apps/{sdkappid}/accounts/{user_id}/kick`: revokes the account's UserSigs
    /// on every node and closes its WebSockets (as the REST API's `kick`).
    ///
    /// # Errors
    /// [`ClientError::Operator`] (e.g. 404 `account_not_found`); transport.
    pub async fn kick(&self, sdkappid: u64, user_id: &str) -> Result<()> {
        let path = account_path(sdkappid, user_id, "/kick");
        self.send(self.request(Method::POST, &path)).await
    }

    /// `DELETE /admin/v1/apps/{sdkappid}/accounts/{user_id}`: deletes the account and its
    /// profile (as the REST API's `account_delete`).
    ///
    /// # Errors
    /// [`ClientError::Operator`] (e.g. 404 `account_not_found`); transport.
    pub async fn delete_account(&self, sdkappid: u64, user_id: &str) -> Result<()> {
        let path = account_path(sdkappid, user_id, "");
        self.send(self.request(Method::DELETE, &path)).await
    }

    /// `GET /admin/v1/apps/{sdkappid}/webhook`: the webhook's delivery state on this node.
    ///
    /// # Errors
    /// [`ClientError::Operator`] (e.g. 404 `app_not_found`); transport.
    pub async fn webhook(&self, sdkappid: u64) -> Result<WebhookState> {
        self.send(self.request(Method::GET, &app_path(sdkappid, "/webhook")))
            .await
    }

    /// A request to `PREFIX + path`, signed in, with the per-request timeout.
    fn request(&self, method: Method, path: &str) -> RequestBuilder {
        self.http
            .request(method, format!("{}{PREFIX}{path}", self.base))
            .bearer_auth(&self.token)
            .timeout(self.timeout)
    }

    /// Sends `body` as JSON to `path` and decodes the answer.
    async fn send_json<B: Serialize, T: DeserializeOwned>(
        &self,
        method: Method,
        path: String,
        body: &B,
    ) -> Result<T> {
        self.send(self.request(method, &path).json(body)).await
    }

    /// Sends `req` and decodes the answer: `T` on success (an empty answer is JSON `null`, for
    /// `()`), [`ClientError::Operator`] for the API's JSON error.
    async fn send<T: DeserializeOwned>(&self, req: RequestBuilder) -> Result<T> {
        let resp = req.send().await?;
        let status = resp.status();
        let text = resp.text().await?;
        if status.is_success() {
            let body = if status == StatusCode::NO_CONTENT || text.trim().is_empty() {
                "null"
            } else {
                &text
            };
            return serde_json::from_str(body).map_err(|e| ClientError::Decode(e.to_string()));
        }
        match serde_json::from_str::<OperatorError>(&text) {
            Ok(e) => Err(ClientError::Operator {
                status: status.as_u16(),
                code: e.error.code,
                message: e.error.message,
            }),
            Err(_) => Err(ClientError::Unexpected {
                status: status.as_u16(),
                body: text,
            }),
        }
    }
}

/// `/apps/{sdkappid}` + `rest`.
fn app_path(sdkappid: u64, rest: &str) -> String {
    format!("/apps/{sdkappid}{rest}")
}

/// `/apps/{sdkappid}/accounts/{user_id}` + `rest`, the UserID percent-encoded (it may hold `/`,
/// `?`, `#`, `%` or spaces).
fn account_path(sdkappid: u64, user_id: &str, rest: &str) -> String {
    app_path(sdkappid, &format!("/accounts/{}{rest}", urlencode(user_id)))
}
