//! `v4/profile/portrait_set` and `v4/profile/portrait_get` (spec §1.4, §1.5).

use axum::body::Body;
use axum::extract::{RawQuery, State};
use axum::response::Response;
use axum::routing::any;
use axum::Router;
use portrait_core::schema::{Actor, StandardTag};
use portrait_core::wire::{
    PortraitGetRequest, PortraitGetResponse, PortraitSetRequest, ProfileItem, UserProfileItem,
};
use portrait_core::{ErrorCode, Identifier, Tag};

use crate::api::{parse_ids, read_body, spread};
use crate::auth;
use crate::error::{parse_body, reply, ApiError, Empty, Family, Result};
use crate::ratelimit::Api;
use crate::state::AppState;

/// Most accounts one `portrait_get` may read.
pub const MAX_GET_ACCOUNTS: usize = 100;

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
    let items = req
        .profile_item
        .filter(|v| !v.is_empty())
        .ok_or_else(|| ApiError::BadRequest("ProfileItem is missing or empty".into()))?;
    let parsed = items
        .iter()
        .map(|i| {
            call.tenant
                .schema
                .parse_item(&i.tag, &i.value, Actor::Admin)
        })
        .collect::<Result<Vec<_>, _>>()?;
    state
        .store()
        .set_profile(call.tenant.sdkappid, &user, &parsed, &call.identifier)
        .await
        .map_err(|e| match e {
            portrait_store::StoreError::NotFound => ApiError::AccountNotFound(from),
            e => e.into(),
        })?;
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
    let accounts = req
        .to_account
        .filter(|v| !v.is_empty())
        .ok_or(ApiError::MissingToAccount)?;
    if accounts.len() > MAX_GET_ACCOUNTS {
        return Err(ApiError::BadRequest(format!(
            "To_Account has {} accounts; at most {MAX_GET_ACCOUNTS} per call",
            accounts.len()
        )));
    }
    let tag_names = req
        .tag_list
        .filter(|v| !v.is_empty())
        .ok_or_else(|| ApiError::BadRequest("TagList is missing or empty".into()))?;
    let tags = tag_names
        .iter()
        .map(|t| call.tenant.schema.resolve_readable(t, Actor::Admin))
        .collect::<Result<Vec<_>, _>>()?;
    let (ids, valid) = parse_ids(&accounts);
    let found = state
        .store()
        .get_profiles(call.tenant.sdkappid, &valid)
        .await?;
    let mut resp = PortraitGetResponse {
        user_profile_item: Vec::with_capacity(accounts.len()),
        fail_account: Vec::new(),
    };
    for (account, profile) in accounts.into_iter().zip(spread(&ids, found)) {
        let Some(profile) = profile.flatten() else {
            resp.fail_account.push(account.clone());
            resp.user_profile_item.push(UserProfileItem {
                to_account: account,
                profile_item: None,
                result_code: ErrorCode::PROFILE_ACCOUNT_NOT_FOUND,
                result_info: "Err_Profile_Account_Not_Exist: requested UserID does not exist"
                    .into(),
            });
            continue;
        };
        let items = tags
            .iter()
            .filter_map(|tag| {
                let value = match profile.fields.get(tag.name()) {
                    Some(v) => v.to_json(),
                    None => match tag {
                        Tag::Standard(std) => default_of(*std),
                        Tag::Custom(_) => return None, // never-set custom fields are omitted
                    },
                };
                Some(ProfileItem {
                    tag: tag.name().to_owned(),
                    value,
                })
            })
            .collect();
        resp.user_profile_item.push(UserProfileItem {
            to_account: account,
            profile_item: Some(items),
            result_code: ErrorCode::OK,
            result_info: String::new(),
        });
    }
    Ok(resp)
}

fn default_of(tag: StandardTag) -> serde_json::Value {
    tag.default_value().to_json()
}
