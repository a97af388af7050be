//! `v4/profile/portrait_set` and `v4/profile/portrait_get` (spec §1.4, §1.5).

use axum::body::Body;
use axum::extract::{RawQuery, State};
use axum::response::Response;
use axum::routing::any;
use axum::Router;
use portrait_core::schema::Actor;
use portrait_core::wire::{PortraitGetRequest, PortraitGetResponse, PortraitSetRequest};
use portrait_core::Identifier;

use crate::api::read_body;
use crate::auth;
use crate::error::{parse_body, reply, ApiError, Empty, Family, Result};
use crate::profiles;
use crate::ratelimit::Api;
use crate::state::AppState;

/// Routes of this group.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/v4/profile/portrait_set", any(portrait_set))
        .route("/v4/profile/portrait_get", any(portrait_get))
}

/// Sets profile fields of one account, atomically.
async fn portrait_set(
    State(state): State<AppState>,
    RawQuery(q): RawQuery,
    body: Body,
) -> Response {
    reply(Family::Profile, set(&state, q.as_deref(), body).await)
}

async fn set(state: &AppState, q: Option<&str>, body: Body) -> Result<Empty> {
    let call = auth::admin(state, q, Api::PortraitSet)?;
    let req: PortraitSetRequest = parse_body(&read_body(state, body).await?)?;
    let from = req
        .from_account
        .ok_or_else(|| ApiError::BadRequest("From_Account is missing".into()))?;
    let user =
        Identifier::parse(&from).map_err(|e| ApiError::BadRequest(format!("From_Account: {e}")))?;
    profiles::write(
        state,
        &call.tenant,
        &user,
        req.profile_item,
        Actor::Admin,
        &call.identifier,
        None,
    )
    .await?;
    Ok(Empty {})
}

/// Reads profile fields of up to 100 accounts.
async fn portrait_get(
    State(state): State<AppState>,
    RawQuery(q): RawQuery,
    body: Body,
) -> Response {
    reply(Family::Profile, get(&state, q.as_deref(), body).await)
}

async fn get(state: &AppState, q: Option<&str>, body: Body) -> Result<PortraitGetResponse> {
    let call = auth::admin(state, q, Api::PortraitGet)?;
    let req: PortraitGetRequest = parse_body(&read_body(state, body).await?)?;
    // The vendor requires both lists; an empty TagList is 40001 like a missing one.
    let accounts = req
        .to_account
        .filter(|v| !v.is_empty())
        .ok_or(ApiError::MissingToAccount)?;
    let names = req
        .tag_list
        .filter(|v| !v.is_empty())
        .ok_or_else(|| ApiError::BadRequest("TagList is missing or empty".into()))?;
    if accounts.len() > profiles::MAX_GET_ACCOUNTS {
        return Err(ApiError::BadRequest(format!(
            "To_Account has {} accounts; at most {} per call",
            accounts.len(),
            profiles::MAX_GET_ACCOUNTS
        )));
    }
    let tags = profiles::resolve_tags(&call.tenant, Some(&names), Actor::Admin)?;
    profiles::read(state, &call.tenant, Some(accounts), &tags, false).await
}
