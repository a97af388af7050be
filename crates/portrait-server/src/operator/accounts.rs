//! `/admin/v1/apps/{sdkappid}/accounts…`: an app's accounts for an operator — list them by
//! UserID (with a prefix and a cursor), show one with its whole profile (hidden custom fields
//! included), version and recent changes, kick one, delete one. Kick and delete are the REST
//! API's own (`crate::accounts`), so they have the same effects on every node; a delete made
//! here is recorded in the change log with the operator [`OPERATOR`] and the caller's address.
//!
//! What must not live here: the effects of a kick or a delete (`crate::accounts`), or SQL.

use std::collections::BTreeMap;

use axum::extract::{Path, Query, State};
use axum::http::{StatusCode, Uri};
use axum::routing::{get, post};
use axum::{Json, Router};
use portrait_core::operator::{AccountList, AccountView, ChangeView};
use portrait_core::Identifier;
use portrait_store::{AppId, Change, Origin, Store};
use serde::Deserialize;

use crate::client_ip::ClientIp;
use crate::error::OpError;
use crate::state::AppState;

/// Who the change log names as the author of a delete made through the operator API (the
/// name Portrait uses for every write it makes itself).
pub const OPERATOR: &str = "portrait";
/// UserIDs per page when `limit` is absent.
pub const DEFAULT_LIMIT: usize = 100;
/// The most UserIDs per page (`portrait_store::MAX_SCAN`).
pub const MAX_LIMIT: usize = portrait_store::MAX_SCAN;
/// The most recent changes an account view shows.
pub const RECENT_CHANGES: usize = 50;

/// The routes of this module.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/admin/v1/apps/{sdkappid}/accounts", get(list))
        .route(
            "/admin/v1/apps/{sdkappid}/accounts/{user_id}",
            get(show).delete(delete),
        )
        .route(
            "/admin/v1/apps/{sdkappid}/accounts/{user_id}/kick",
            post(kick),
        )
}

/// The query of `GET …/accounts`.
#[derive(Deserialize)]
struct ListQuery {
    #[serde(default)]
    prefix: String,
    #[serde(default)]
    after: Option<String>,
    #[serde(default)]
    limit: Option<String>,
}

/// `GET /admin/v1/apps/{sdkappid}/accounts?prefix=&after=&limit=`: one page of UserIDs in
/// ascending (bytewise) order; `next` is set when more follow.
async fn list(
    State(state): State<AppState>,
    Path(sdkappid): Path<String>,
    uri: Uri,
) -> Result<Json<AccountList>, OpError> {
    let app = super::apps::find(&state, &sdkappid)?.tenant.sdkappid;
    let q = Query::<ListQuery>::try_from_uri(&uri)
        .map_err(|e| OpError::Invalid(format!("query: {e}")))?
        .0;
    let limit = match q.limit.as_deref() {
        None => DEFAULT_LIMIT,
        Some(raw) => match raw.parse::<usize>() {
            Ok(n @ 1..=MAX_LIMIT) => n,
            _ => {
                return Err(OpError::Invalid(format!(
                    "limit {raw:?}: give a number from 1 to {MAX_LIMIT}"
                )))
            }
        },
    };
    let after = match q.after.as_deref() {
        None | Some("") => None,
        Some(raw) => {
            Some(Identifier::parse(raw).map_err(|e| OpError::Invalid(format!("after: {e}")))?)
        }
    };
    let store = state.store();
    let accounts = store
        .scan_accounts(app, &q.prefix, after.as_ref(), limit)
        .await?;
    // A full page has a `next` only if something follows it (one more index probe).
    let next = match accounts.last() {
        Some(last) if accounts.len() == limit => {
            let more = store.scan_accounts(app, &q.prefix, Some(last), 1).await?;
            (!more.is_empty()).then(|| last.as_str().to_owned())
        }
        _ => None,
    };
    Ok(Json(AccountList {
        accounts: accounts.into_iter().map(Identifier::into_string).collect(),
        next,
    }))
}

/// `GET /admin/v1/apps/{sdkappid}/accounts/{user_id}`.
async fn show(
    State(state): State<AppState>,
    Path((sdkappid, user_id)): Path<(String, String)>,
) -> Result<Json<AccountView>, OpError> {
    let app = super::apps::find(&state, &sdkappid)?;
    let user = account_id(&user_id)?;
    let sdkappid = app.tenant.sdkappid;
    let store = state.store();
    let profile = store
        .get_profiles(sdkappid, std::slice::from_ref(&user))
        .await?
        .pop()
        .flatten()
        .ok_or(OpError::AccountNotFound(user_id))?;
    let changes = recent_changes(store, sdkappid, &user, profile.version).await?;
    let kicked_until = app.tenant.kicked_before(user.as_str());
    Ok(Json(AccountView {
        user_id: user.into_string(),
        version: profile.version,
        profile: profile
            .fields
            .iter()
            .map(|(tag, value)| (tag.clone(), value.to_json()))
            .collect(),
        changes: changes.iter().rev().map(change_view).collect(),
        kicked_until,
    }))
}

/// `POST /admin/v1/apps/{sdkappid}/accounts/{user_id}/kick`: 204, as the REST API's `kick`.
async fn kick(
    State(state): State<AppState>,
    Path((sdkappid, user_id)): Path<(String, String)>,
) -> Result<StatusCode, OpError> {
    let app = super::apps::find(&state, &sdkappid)?;
    let user = account_id(&user_id)?;
    if !crate::accounts::kick(&state, &app.tenant, &user).await? {
        return Err(OpError::AccountNotFound(user_id));
    }
    Ok(StatusCode::NO_CONTENT)
}

/// `DELETE /admin/v1/apps/{sdkappid}/accounts/{user_id}`: 204, as the REST API's
/// `account_delete`, recorded as made by [`OPERATOR`] from the caller's address.
async fn delete(
    State(state): State<AppState>,
    Path((sdkappid, user_id)): Path<(String, String)>,
    ClientIp(ip): ClientIp,
) -> Result<StatusCode, OpError> {
    let app = super::apps::find(&state, &sdkappid)?;
    let user = account_id(&user_id)?;
    let origin = Origin::new(OPERATOR, &ip);
    let existed = crate::accounts::delete(
        &state,
        app.tenant.sdkappid,
        std::slice::from_ref(&user),
        origin,
    )
    .await?;
    if existed != [true] {
        return Err(OpError::AccountNotFound(user_id));
    }
    Ok(StatusCode::NO_CONTENT)
}

/// A UserID from the path: one that is not valid names no account (404).
fn account_id(raw: &str) -> Result<Identifier, OpError> {
    Identifier::parse(raw).map_err(|_| OpError::AccountNotFound(raw.to_owned()))
}

/// The account's newest [`RECENT_CHANGES`] changes still in the log, oldest first. The store
/// reads an account's changes after a version by walking its chain back from the newest, so the
/// walk is kept short by asking for the changes after `newest - window`, widening the window
/// (×4) until enough are found or it reaches the log's start: each read costs at most the
/// window, never a walk of the account's whole history.
///
/// # Errors
/// Storage failures.
async fn recent_changes(
    store: &dyn Store,
    app: AppId,
    user: &Identifier,
    newest: u64,
) -> portrait_store::Result<Vec<Change>> {
    let users = std::slice::from_ref(user);
    let mut window: u64 = 64;
    loop {
        let since = newest.saturating_sub(window);
        let limit = usize::try_from(window).unwrap_or(usize::MAX);
        // A walk cut short by the store's bound drops the oldest changes only: the newest are
        // what is shown.
        let mut got = store.changes_of(app, users, since, limit).await?.changes;
        if got.len() >= RECENT_CHANGES || since == 0 {
            let skip = got.len().saturating_sub(RECENT_CHANGES);
            got.drain(..skip);
            return Ok(got);
        }
        window = window.saturating_mul(4);
    }
}

/// A change as the API shows it.
fn change_view(c: &Change) -> ChangeView {
    ChangeView {
        version: c.version,
        kind: c.kind.as_str().to_owned(),
        operator: c.operator.clone(),
        client_ip: (!c.client_ip.is_empty()).then(|| c.client_ip.clone()),
        at_ms: u64::try_from(c.at_ms).unwrap_or(0),
        items: c
            .items
            .iter()
            .map(|(tag, value)| (tag.clone(), value.to_json()))
            .collect::<BTreeMap<_, _>>(),
    }
}
