//! `/admin/v1/apps…`: list, show, create and change apps, and their secret keys. Each change is
//! a new app record in the store, applied on this node at once and on the others by
//! `crate::live`'s propagation.

use axum::extract::{Path, State};
use axum::routing::get;
use axum::{Json, Router};
use portrait_core::operator::{AppList, AppView, ClientRateLimits, RateLimits, WebhookSettings};

use super::parse_sdkappid;
use crate::error::OpError;
use crate::live::LiveApp;
use crate::settings::{ClientRateLimitConfig, RateLimitConfig, WebhookConfig};
use crate::state::AppState;

/// The routes of this module.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/admin/v1/apps", get(list))
        .route("/admin/v1/apps/{sdkappid}", get(show))
}

/// `GET /admin/v1/apps`: every app of this node.
async fn list(State(state): State<AppState>) -> Json<AppList> {
    Json(AppList {
        apps: state.live().all().iter().map(|a| view(a)).collect(),
    })
}

/// `GET /admin/v1/apps/{sdkappid}`.
async fn show(
    State(state): State<AppState>,
    Path(sdkappid): Path<String>,
) -> Result<Json<AppView>, OpError> {
    let app = find(&state, &sdkappid)?;
    Ok(Json(view(&app)))
}

/// The app named by a path parameter.
///
/// # Errors
/// Not a number (400) or no such app (404).
pub fn find(state: &AppState, raw: &str) -> Result<std::sync::Arc<LiveApp>, OpError> {
    let id = parse_sdkappid(raw)?;
    state.live().get(id).ok_or(OpError::AppNotFound(id))
}

/// What the API shows of an app (never its key).
pub fn view(app: &LiveApp) -> AppView {
    let c = &app.config;
    AppView {
        sdkappid: c.sdkappid,
        source: app.source,
        revision: app.revision,
        disabled: c.disabled,
        admins: c.admins.clone(),
        sensitive_words: c.sensitive_words.clone(),
        rate_limits: rate_limits(&c.rate_limits),
        client_rate_limits: client_rate_limits(&c.client_rate_limits),
        usersig_clock_skew_secs: c.usersig_clock_skew_secs,
        webhook: c.webhook.as_ref().map(webhook),
        custom_fields: c.custom_fields.iter().map(super::fields::view).collect(),
        previous_key_valid_until: c
            .previous_key
            .as_ref()
            .map(|p| p.valid_until)
            .filter(|&until| until >= crate::auth::now_secs()),
    }
}

fn rate_limits(r: &RateLimitConfig) -> RateLimits {
    RateLimits {
        enabled: r.enabled,
        per_api: r.per_api.clone(),
    }
}

fn client_rate_limits(r: &ClientRateLimitConfig) -> ClientRateLimits {
    ClientRateLimits {
        user_reads: r.user_reads,
        user_writes: r.user_writes,
        app_reads: r.app_reads,
        app_writes: r.app_writes,
    }
}

fn webhook(w: &WebhookConfig) -> WebhookSettings {
    WebhookSettings {
        url: w.url.clone(),
        timeout_ms: Some(w.timeout_ms),
        concurrency: Some(w.concurrency),
        max_pending: Some(w.max_pending),
        initial_backoff_ms: Some(w.initial_backoff_ms),
        max_backoff_ms: Some(w.max_backoff_ms),
        give_up_after_ms: Some(w.give_up_after_ms),
        lease_ms: Some(w.lease_ms),
    }
}
