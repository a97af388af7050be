//! `GET /admin/v1/apps/{sdkappid}/webhook`: an app's webhook delivery as this node sees it — the
//! delivered position (the stored cursor, or this node's newer one in memory while it holds the
//! delivery lease), the app's newest change-log version, the lag between them, whether this
//! node delivers, and this node's latest failed attempts (`crate::webhook::status`).
//!
//! What must not live here: delivery (`crate::webhook`).

use axum::extract::{Path, State};
use axum::routing::get;
use axum::{Json, Router};
use portrait_core::operator::WebhookState;

use crate::error::OpError;
use crate::state::AppState;

/// The routes of this module.
pub fn router() -> Router<AppState> {
    Router::new().route("/admin/v1/apps/{sdkappid}/webhook", get(show))
}

/// `GET /admin/v1/apps/{sdkappid}/webhook`.
async fn show(
    State(state): State<AppState>,
    Path(sdkappid): Path<String>,
) -> Result<Json<WebhookState>, OpError> {
    let app = super::apps::find(&state, &sdkappid)?;
    let id = app.tenant.sdkappid;
    let configured = app.config.webhook.is_some();
    let store = state.store();
    let head = store.current_version(id).await?;
    let stored = store.cursor(id, crate::webhook::CURSOR).await?;
    let status = state.hub().webhooks().get(id);
    let delivering_here = status.as_ref().is_some_and(|s| s.delivering());
    let in_memory = status.as_ref().and_then(|s| s.cursor());
    // Before its first delivery a webhook starts at the app's version of then (no history).
    let cursor = match (stored, in_memory) {
        (None, None) => head,
        (s, m) => s.unwrap_or(0).max(m.unwrap_or(0)),
    }
    .min(head);
    Ok(Json(WebhookState {
        configured,
        cursor,
        head,
        lag: if configured { head - cursor } else { 0 },
        delivering_here,
        recent_failures: status.map(|s| s.failures()).unwrap_or_default(),
    }))
}
