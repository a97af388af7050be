//! The operator API (`/admin/v1/*`, docs/operator-api.md): what an operator — not an app's admin
//! or user — calls to manage apps, their custom fields and their accounts without editing files
//! or restarting nodes. Bodies are `portrait_core::operator`'s types; failures are
//! [`crate::error::OpError`] (an HTTP status and a stable code, mapped in `error.rs`).
//!
//! Layout: [`auth`] (the bearer token, bounded failures), [`apps`] (apps, keys), [`fields`]
//! (custom fields); accounts and webhook state live in their own modules. Every route is added
//! in [`router`], where the authentication layer wraps them all: a route added elsewhere would
//! not be protected. The API is off (every path 404) unless `[operator]` has a token.
//!
//! What must not live here: vendor error codes or envelopes (this API has its own), and the
//! app-record bookkeeping shared with the poller (that is `crate::live`).

use axum::body::Bytes;
use axum::http::{Method, Uri};
use axum::response::{IntoResponse, Response};
use axum::Router;

use crate::error::OpError;
use crate::state::AppState;

pub mod accounts;
pub mod apps;
pub mod auth;
pub mod fields;
pub mod shards;
pub mod webhook;

/// The path prefix of every operator route.
pub const PREFIX: &str = "/admin/v1";

/// Every operator route, behind the token check ([`auth::require`]). Merge it after the vendor
/// routes' `method_not_allowed_fallback` (it has its own).
pub fn router(state: &AppState) -> Router<AppState> {
    Router::new()
        .merge(apps::router())
        .merge(fields::router())
        .merge(shards::router())
        .merge(accounts::router())
        .merge(webhook::router())
        .method_not_allowed_fallback(method_not_allowed)
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            auth::require,
        ))
}

/// A path under [`PREFIX`] that is no route: 404 once authenticated (the API is off: 404 too).
///
/// # Errors
/// Always: 404, or the authentication's refusal.
pub fn unknown_path(state: &AppState, headers: &axum::http::HeaderMap, path: &str) -> Response {
    match auth::check(state, headers) {
        Ok(()) => OpError::NotFound(format!("no operator API at {path}")).into_response(),
        Err(e) => e.into_response(),
    }
}

async fn method_not_allowed(method: Method, uri: Uri) -> Response {
    OpError::MethodNotAllowed(format!(
        "{method} {}: the method is not accepted here",
        uri.path()
    ))
    .into_response()
}

/// A JSON request body of the operator API, read up to the server's body limit (the edge reads
/// it first, except when its declared length is over the limit: then it is refused here) and
/// parsed into `T`; an empty body is `{}`.
pub struct Body<T>(pub T);

impl<T: serde::de::DeserializeOwned> axum::extract::FromRequest<AppState> for Body<T> {
    type Rejection = OpError;

    async fn from_request(req: axum::extract::Request, state: &AppState) -> Result<Self, OpError> {
        let limit = state.max_body_bytes();
        let bytes = axum::body::to_bytes(req.into_body(), limit)
            .await
            .map_err(|_| {
                OpError::Invalid(format!(
                    "request body is unreadable or larger than {limit} bytes"
                ))
            })?;
        parse_body(&bytes).map(Body)
    }
}

/// Parses a JSON body into `T`; an empty body is `{}`.
///
/// # Errors
/// [`OpError::Invalid`] naming what is wrong.
pub fn parse_body<T: serde::de::DeserializeOwned>(body: &Bytes) -> Result<T, OpError> {
    let body: &[u8] = if body.iter().all(u8::is_ascii_whitespace) {
        b"{}"
    } else {
        body
    };
    serde_json::from_slice(body).map_err(|e| OpError::Invalid(format!("request body: {e}")))
}

/// Parses an SDKAppID path parameter.
///
/// # Errors
/// [`OpError::Invalid`] when it is not a number.
pub fn parse_sdkappid(raw: &str) -> Result<u64, OpError> {
    raw.parse()
        .map_err(|_| OpError::Invalid(format!("{raw:?} is not an SDKAppID (a number)")))
}
