//! `/admin/v1/apps…`: list, show, create and change apps, and their secret keys. Each change is
//! a new app record in the store, applied on this node at once and on the others by
//! `crate::live`'s propagation.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::{get, post};
use axum::{Json, Router};
use portrait_core::operator::{
    AppCreate, AppCreated, AppKey, AppList, AppPatch, AppSource, AppView, ClientRateLimits,
    KeyRotate, RateLimits, WebhookSettings,
};
use portrait_store::StoreError;
use secrecy::{ExposeSecret, SecretString};

use super::{parse_sdkappid, Body};
use crate::error::OpError;
use crate::live::LiveApp;
use crate::settings::{
    AppConfig, ClientRateLimitConfig, PreviousKey, RateLimitConfig, WebhookConfig,
};
use crate::state::AppState;

/// The routes of this module.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/admin/v1/apps", get(list).post(create))
        .route("/admin/v1/apps/{sdkappid}", get(show).patch(patch))
        .route("/admin/v1/apps/{sdkappid}/key", get(key))
        .route("/admin/v1/apps/{sdkappid}/rotate-key", post(rotate_key))
}

/// Attempts of a change that another node's concurrent change made stale before it gives up
/// (changes through one node wait for each other instead: [`crate::live::Live::changing`]).
const ATTEMPTS: usize = 10;

/// Where a new app's SDKAppID is drawn from (the vendor's range).
const SDKAPPIDS: std::ops::Range<u64> = 1_400_000_000..2_000_000_000;

/// Default grace of a key rotation, seconds.
const GRACE_SECS: u64 = 86_400;

/// `POST /admin/v1/apps`.
async fn create(
    State(state): State<AppState>,
    Body(req): Body<AppCreate>,
) -> Result<(StatusCode, Json<AppCreated>), OpError> {
    let _one = state.live().changing().await;
    state.sync_apps().await.map_err(OpError::from_anyhow)?;
    let sdkappid = match req.sdkappid {
        Some(id) => id,
        None => loop {
            let id = rand::random_range(SDKAPPIDS);
            if state.live().get(id).is_none() {
                break id;
            }
        },
    };
    if state.live().get(sdkappid).is_some() {
        return Err(OpError::AppExists(sdkappid));
    }
    let key = req.key.unwrap_or_else(crate::devapp::random_key);
    let mut cfg: AppConfig = serde_json::from_value(serde_json::json!({
        "sdkappid": sdkappid,
        "key": key,
        "admins": req.admins.unwrap_or_else(|| vec!["administrator".into()]),
    }))
    .map_err(|e| OpError::Internal(e.into()))?;
    if let Some(w) = req.sensitive_words {
        cfg.sensitive_words = w;
    }
    cfg.shard = shard_for_new_app(&state, req.shard)?;
    set_common(
        &mut cfg,
        req.rate_limits,
        req.client_rate_limits,
        req.usersig_clock_skew_secs,
        req.webhook.map(Some),
    )?;
    check(&cfg)?;
    let revision = match put(&state, &cfg, None).await {
        Err(OpError::Store(StoreError::VersionConflict { .. })) => {
            return Err(OpError::AppExists(sdkappid))
        }
        r => r?,
    };
    let app = applied(&state, cfg, revision).await?;
    Ok((
        StatusCode::CREATED,
        Json(AppCreated {
            app: view(&app),
            key,
        }),
    ))
}

/// `PATCH /admin/v1/apps/{sdkappid}` (optional `If-Match: <revision>`).
async fn patch(
    State(state): State<AppState>,
    Path(sdkappid): Path<String>,
    headers: HeaderMap,
    Body(req): Body<AppPatch>,
) -> Result<Json<AppView>, OpError> {
    let if_match = if_match(&headers)?;
    let app = change(&state, &sdkappid, if_match, |cfg| {
        if let Some(d) = req.disabled {
            cfg.disabled = d;
        }
        if let Some(a) = &req.admins {
            cfg.admins.clone_from(a);
        }
        if let Some(w) = &req.sensitive_words {
            cfg.sensitive_words.clone_from(w);
        }
        set_common(
            cfg,
            req.rate_limits.clone(),
            req.client_rate_limits,
            req.usersig_clock_skew_secs,
            req.webhook.clone(),
        )
    })
    .await?;
    Ok(Json(view(&app)))
}

/// `GET /admin/v1/apps/{sdkappid}/key`.
async fn key(
    State(state): State<AppState>,
    Path(sdkappid): Path<String>,
) -> Result<Json<AppKey>, OpError> {
    let app = find(&state, &sdkappid)?;
    Ok(Json(app_key(&app.config)))
}

/// `POST /admin/v1/apps/{sdkappid}/rotate-key`.
async fn rotate_key(
    State(state): State<AppState>,
    Path(sdkappid): Path<String>,
    Body(req): Body<KeyRotate>,
) -> Result<Json<AppKey>, OpError> {
    let new_key = req.key.unwrap_or_else(crate::devapp::random_key);
    let grace = req.grace_secs.unwrap_or(GRACE_SECS);
    let app = change(&state, &sdkappid, None, |cfg| {
        let old = std::mem::replace(&mut cfg.key, SecretString::from(new_key.clone()));
        cfg.previous_key = (grace > 0).then(|| PreviousKey {
            key: old,
            valid_until: crate::auth::now_secs().saturating_add(grace),
        });
        Ok(())
    })
    .await?;
    Ok(Json(app_key(&app.config)))
}

fn app_key(cfg: &AppConfig) -> AppKey {
    AppKey {
        sdkappid: cfg.sdkappid,
        key: cfg.key.expose_secret().to_owned(),
        previous_key_valid_until: cfg
            .previous_key
            .as_ref()
            .map(|p| p.valid_until)
            .filter(|&until| until >= crate::auth::now_secs()),
    }
}

/// Sets the settings an app's creation and change share.
fn set_common(
    cfg: &mut AppConfig,
    rate_limits: Option<RateLimits>,
    client: Option<ClientRateLimits>,
    skew: Option<u64>,
    webhook: Option<Option<WebhookSettings>>,
) -> Result<(), OpError> {
    if let Some(r) = rate_limits {
        cfg.rate_limits = RateLimitConfig {
            enabled: r.enabled,
            per_api: r.per_api,
        };
    }
    if let Some(c) = client {
        cfg.client_rate_limits = ClientRateLimitConfig {
            user_reads: c.user_reads,
            user_writes: c.user_writes,
            app_reads: c.app_reads,
            app_writes: c.app_writes,
        };
    }
    if let Some(s) = skew {
        cfg.usersig_clock_skew_secs = s;
    }
    if let Some(w) = webhook {
        cfg.webhook = w
            .map(|w| {
                serde_json::from_value::<WebhookConfig>(
                    serde_json::to_value(&w).map_err(|e| OpError::Internal(e.into()))?,
                )
                .map_err(|e| OpError::Invalid(format!("webhook: {e}")))
            })
            .transpose()?;
    }
    Ok(())
}

/// Checks settings made through the API.
fn check(cfg: &AppConfig) -> Result<(), OpError> {
    cfg.validate()
        .map_err(|e| OpError::Invalid(format!("{e:#}")))
}

/// The `If-Match` revision, if sent (quotes allowed).
fn if_match(headers: &HeaderMap) -> Result<Option<u64>, OpError> {
    headers
        .get(axum::http::header::IF_MATCH)
        .map(|v| {
            v.to_str()
                .ok()
                .map(|s| s.trim().trim_matches('"'))
                .and_then(|s| s.parse().ok())
                .ok_or_else(|| {
                    OpError::Invalid("If-Match must be an app revision (a number)".into())
                })
        })
        .transpose()
}

/// Writes `cfg` as the app's record if its revision is `expected`; the new revision.
pub(super) async fn put(
    state: &AppState,
    cfg: &AppConfig,
    expected: Option<u64>,
) -> Result<u64, OpError> {
    let body = crate::live::record_body(cfg)?;
    Ok(state
        .store()
        .put_app_record(cfg.sdkappid, expected, &body)
        .await?)
}

/// Applies a record just written here, and tells the other nodes.
pub(super) async fn applied(
    state: &AppState,
    cfg: AppConfig,
    revision: u64,
) -> Result<Arc<LiveApp>, OpError> {
    let id = cfg.sdkappid;
    state.hub().apps_changed();
    state
        .apply_app(cfg, AppSource::Store, revision)
        .await
        .map_err(OpError::from_anyhow)?;
    state.live().get(id).ok_or(OpError::AppNotFound(id))
}

/// Changes the app named by `raw` with `edit` and stores it: from the freshest settings (the
/// store's records are read first), retried when another node changed the app meanwhile unless
/// the caller named the revision it read (`if_match`: 412 then). A file app is adopted: its
/// settings go into the store.
///
/// # Errors
/// No such app, a bad edit, a stale `if_match`, or a store failure.
pub async fn change(
    state: &AppState,
    raw: &str,
    if_match: Option<u64>,
    edit: impl Fn(&mut AppConfig) -> Result<(), OpError>,
) -> Result<Arc<LiveApp>, OpError> {
    let id = parse_sdkappid(raw)?;
    let _one = state.live().changing().await;
    for attempt in 0..ATTEMPTS {
        if attempt > 0 {
            // Another node changed the app meanwhile: let it finish, then start again.
            let ms = rand::random_range(5..20 * attempt as u64);
            tokio::time::sleep(std::time::Duration::from_millis(ms)).await;
        }
        state.sync_apps().await.map_err(OpError::from_anyhow)?;
        let app = state.live().get(id).ok_or(OpError::AppNotFound(id))?;
        if let Some(expected) = if_match {
            if expected != app.revision {
                return Err(OpError::RevisionMismatch {
                    expected,
                    current: app.revision,
                });
            }
        }
        let mut cfg = app.config.clone();
        edit(&mut cfg)?;
        // Any change ends the pause of a move whose mover died (operator/shards.rs): safe, as
        // a live mover's next record then conflicts, and it gives the move up.
        cfg.moving = None;
        check(&cfg)?;
        let expected = (app.source == AppSource::Store).then_some(app.revision);
        match put(state, &cfg, expected).await {
            Ok(revision) => return applied(state, cfg, revision).await,
            Err(OpError::Store(StoreError::VersionConflict { current })) => {
                if let Some(expected) = if_match {
                    return Err(OpError::RevisionMismatch { expected, current });
                }
                // Another node changed it meanwhile: start again from its change.
            }
            Err(e) => return Err(e),
        }
    }
    Err(OpError::Internal(anyhow::anyhow!(
        "app {id}: {ATTEMPTS} concurrent changes in a row; retry"
    )))
}

/// The shard a new app is placed on: the one asked for (checked), else the one with the fewest
/// apps; none on a node without shards.
fn shard_for_new_app(state: &AppState, asked: Option<String>) -> Result<Option<String>, OpError> {
    let Some(shards) = state.shards() else {
        return match asked.as_deref() {
            None | Some(portrait_store::sharded::HOME) => Ok(None),
            Some(s) => Err(OpError::Invalid(format!(
                "shard {s:?}: this node has no [store] shards"
            ))),
        };
    };
    match asked {
        Some(s) if shards.has(&s) => Ok(Some(s)),
        Some(s) => Err(OpError::Invalid(format!(
            "no shard {s:?}; the shards are {}",
            shards.names().join(", ")
        ))),
        None => Ok(Some(shards.least_loaded())),
    }
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
        shard: c.shard.clone(),
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
