//! HTTP routes. One module per vendor endpoint group, named after the wire path so that a grep
//! from `shared/spec` lands on the handler: `api/v4/profile.rs` (`portrait_set`, `portrait_get`)
//! and `api/v4/im_open_login_svc.rs` (account APIs). Handlers stay thin: authenticate, parse,
//! call the schema and the store, reply through `error::reply`.
//!
//! Every vendor route (`/v4/*`, `/v1/profile/*`) accepts any HTTP method (clients send POST;
//! some libraries send GET with a body) and any or no `Content-Type`; the body is read as JSON
//! regardless. Every answer under `/v4` and `/v1` is the vendor envelope with HTTP 200, also for
//! an unknown path (60009) and for `/v1/ws` with a method other than GET; only the operational
//! routes `/healthz`, `/metrics` and `/openapi.json` (GET or HEAD) answer a wrong method with a
//! plain HTTP 405.

use axum::body::{Body, Bytes};
use axum::http::{Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;

use crate::error::{reply, ApiError, Family, Result};
use crate::state::AppState;

pub mod v1;
pub mod v4;

/// All routes of a node (`state` is the one the operator API's authentication checks against).
pub fn router(state: &AppState) -> Router<AppState> {
    Router::new()
        .merge(v4::profile::router())
        .merge(v4::im_open_login_svc::router())
        .merge(v1::profile::router())
        .merge(v1::ws::router())
        .merge(crate::console::router())
        .route("/healthz", get(healthz))
        .route("/metrics", get(metrics))
        .route("/openapi.json", get(openapi))
        // After every route: axum applies it to the routes present when it is called.
        .method_not_allowed_fallback(method_not_allowed)
        // After that: the operator routes answer a wrong method with their own JSON error.
        .merge(crate::operator::router(state))
        .fallback(unknown_api)
}

/// Liveness and store reachability: `200 ok` or `503` with the reason class.
async fn healthz(
    axum::extract::State(state): axum::extract::State<AppState>,
) -> (axum::http::StatusCode, &'static str) {
    match state.store().ping().await {
        Ok(()) => (axum::http::StatusCode::OK, "ok"),
        Err(e) => {
            tracing::warn!(error = %e, "health check: store unavailable");
            (
                axum::http::StatusCode::SERVICE_UNAVAILABLE,
                "store unavailable",
            )
        }
    }
}

/// Prometheus metrics of this node (text exposition format).
async fn metrics(
    axum::extract::State(state): axum::extract::State<AppState>,
) -> ([(axum::http::HeaderName, &'static str); 1], String) {
    (
        [(
            axum::http::header::CONTENT_TYPE,
            "text/plain; version=0.0.4",
        )],
        state.metrics_text(),
    )
}

/// The OpenAPI document of every HTTP API.
async fn openapi() -> ([(axum::http::HeaderName, &'static str); 1], &'static [u8]) {
    (
        [(axum::http::header::CONTENT_TYPE, "application/json")],
        crate::openapi::bytes(),
    )
}

/// Any other path: the vendor's "request resource error" (60009), still HTTP 200; under
/// `/admin/v1`, the operator API's 404 (after its authentication).
async fn unknown_api(
    axum::extract::State(state): axum::extract::State<AppState>,
    headers: axum::http::HeaderMap,
    uri: axum::http::Uri,
) -> Response {
    if Family::of_path(uri.path()) == Family::Operator {
        return crate::operator::unknown_path(&state, &headers, uri.path());
    }
    reply::<()>(
        Family::Rest,
        Err(ApiError::UnknownApi(uri.path().to_owned())),
    )
}

/// A known path with a method its route does not take: under the APIs (`/v1/ws` takes only GET),
/// the envelope of the path's family; for `/healthz`, `/metrics` and `/openapi.json`, HTTP 405
/// with a short text (axum adds the `Allow` header).
async fn method_not_allowed(method: Method, uri: axum::http::Uri) -> Response {
    let path = uri.path();
    if path.starts_with("/v4/") || path.starts_with("/v1/") {
        let how = if path == "/v1/ws" {
            "GET with a WebSocket handshake"
        } else {
            "POST"
        };
        return reply::<()>(
            Family::of_path(path),
            Err(ApiError::BadRequest(format!(
                "{method} {path}: the method is not accepted; use {how}"
            ))),
        );
    }
    (
        StatusCode::METHOD_NOT_ALLOWED,
        format!("{method} {path}: method not allowed; use GET\n"),
    )
        .into_response()
}

/// Reads a request body up to the configured limit.
///
/// # Errors
/// [`ApiError::BadRequest`] when over the limit or unreadable.
pub async fn read_body(state: &AppState, body: Body) -> Result<Bytes> {
    let limit = state.max_body_bytes();
    axum::body::to_bytes(body, limit).await.map_err(|_| {
        ApiError::BadRequest(format!(
            "request body is unreadable or larger than {limit} bytes"
        ))
    })
}
