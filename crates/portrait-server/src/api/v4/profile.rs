//! `v4/profile/portrait_set` and `v4/profile/portrait_get` (spec §1.4, §1.5), and the Portrait
//! extension `v4/profile/portrait_import` (bulk import with any fields).

use axum::body::Body;
use axum::extract::State;
use axum::http::Uri;
use axum::response::Response;
use axum::routing::any;
use axum::Router;
use portrait_core::schema::Actor;
use portrait_core::wire::{
    AccountResultItem, AccountResultResponse, PortraitGetRequest, PortraitImportAccount,
    PortraitImportRequest, PortraitSetRequest,
};
use portrait_core::{ErrorCode, Identifier};
use portrait_store::{NewAccount, Origin};

use crate::api::read_body;
use crate::auth;
use crate::client_ip::ClientIp;
use crate::error::{parse_body, reply, reply_raw, ApiError, Empty, Family, Result};
use crate::profiles;
use crate::ratelimit::Api;
use crate::state::AppState;

/// Routes of this group.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/v4/profile/portrait_set", any(portrait_set))
        .route("/v4/profile/portrait_get", any(portrait_get))
        .route("/v4/profile/portrait_import", any(portrait_import))
}

/// Sets profile fields of one account, atomically.
async fn portrait_set(
    State(state): State<AppState>,
    uri: Uri,
    ClientIp(ip): ClientIp,
    body: Body,
) -> Response {
    reply(Family::Profile, set(&state, uri.query(), &ip, body).await)
}

async fn set(state: &AppState, q: Option<&str>, ip: &str, body: Body) -> Result<Empty> {
    let call = auth::admin(state, q, Api::PortraitSet).await?;
    let req: PortraitSetRequest = parse_body(&read_body(state, body).await?)?;
    let from = req
        .from_account
        .ok_or_else(|| ApiError::Decode("From_Account is missing".into()))?;
    let user =
        Identifier::parse(&from).map_err(|e| ApiError::BadRequest(format!("From_Account: {e}")))?;
    profiles::write(
        state,
        &call.tenant,
        &user,
        req.profile_item,
        Actor::Admin,
        Origin::new(&call.identifier, ip),
        None,
    )
    .await?;
    Ok(Empty {})
}

/// Reads profile fields of up to 100 accounts.
async fn portrait_get(State(state): State<AppState>, uri: Uri, body: Body) -> Response {
    reply_raw(Family::Profile, get(&state, uri.query(), body).await)
}

async fn get(state: &AppState, q: Option<&str>, body: Body) -> Result<profiles::ReadAnswer> {
    let call = auth::admin(state, q, Api::PortraitGet).await?;
    let req: PortraitGetRequest = parse_body(&read_body(state, body).await?)?;
    // The vendor requires both lists; an empty TagList is 40001 like a missing one.
    let accounts = req
        .to_account
        .filter(|v| !v.is_empty())
        .ok_or(ApiError::MissingToAccount)?;
    let names = req
        .tag_list
        .ok_or_else(|| ApiError::Decode("TagList is missing".into()))?;
    if names.is_empty() {
        return Err(ApiError::BadRequest("TagList is empty".into()));
    }
    if accounts.len() > profiles::MAX_GET_ACCOUNTS {
        return Err(ApiError::BadRequest(format!(
            "To_Account has {} accounts; at most {} per call",
            accounts.len(),
            profiles::MAX_GET_ACCOUNTS
        )));
    }
    let tags = profiles::resolve_tags(&call.tenant, Some(&names), Actor::Admin)?;
    profiles::read(state, &call.tenant, Some(accounts), tags, false).await
}

/// Most accounts one `portrait_import` may carry.
pub const MAX_IMPORT_ACCOUNTS: usize = 1000;

/// Portrait extension: creates or updates up to [`MAX_IMPORT_ACCOUNTS`] accounts with any
/// profile fields in one transaction. Each account is validated on its own (`UserID`, then every
/// item as `portrait_set` by an admin); an invalid account is not imported and its
/// `ResultItem` carries the code, while the valid ones are.
async fn portrait_import(
    State(state): State<AppState>,
    uri: Uri,
    ClientIp(ip): ClientIp,
    body: Body,
) -> Response {
    reply(
        Family::Profile,
        import(&state, uri.query(), &ip, body).await,
    )
}

async fn import(
    state: &AppState,
    q: Option<&str>,
    ip: &str,
    body: Body,
) -> Result<AccountResultResponse> {
    let call = auth::admin(state, q, Api::PortraitImport).await?;
    let req: PortraitImportRequest = parse_body(&read_body(state, body).await?)?;
    let list = req
        .account_list
        .ok_or_else(|| ApiError::Decode("AccountList is missing".into()))?;
    if list.is_empty() {
        return Err(ApiError::BadRequest("AccountList is empty".into()));
    }
    if list.len() > MAX_IMPORT_ACCOUNTS {
        return Err(ApiError::BadRequest(format!(
            "AccountList has {} accounts; at most {MAX_IMPORT_ACCOUNTS} per call",
            list.len()
        )));
    }
    let mut accounts = Vec::with_capacity(list.len());
    let result_item = list
        .into_iter()
        .map(|entry| {
            let user_id = entry.user_id.clone().unwrap_or_default();
            match import_account(&call.tenant, entry) {
                Ok(account) => {
                    accounts.push(account);
                    AccountResultItem {
                        user_id,
                        result_code: ErrorCode::OK,
                        result_info: String::new(),
                        account_status: None,
                    }
                }
                Err(e) => AccountResultItem {
                    user_id,
                    result_code: e.code(Family::Profile),
                    result_info: e.error_info(Family::Profile),
                    account_status: None,
                },
            }
        })
        .collect();
    if !accounts.is_empty() {
        state
            .store()
            .import_accounts(
                call.tenant.sdkappid,
                &accounts,
                Origin::new(&call.identifier, ip),
            )
            .await?;
    }
    Ok(AccountResultResponse { result_item })
}

/// Validates one account of a `portrait_import`.
fn import_account(
    tenant: &crate::tenant::Tenant,
    entry: PortraitImportAccount,
) -> Result<NewAccount> {
    let raw = entry
        .user_id
        .ok_or_else(|| ApiError::Decode("UserID is missing".into()))?;
    let user = Identifier::parse(&raw).map_err(|e| ApiError::BadRequest(format!("UserID: {e}")))?;
    let items = entry
        .profile_item
        .unwrap_or_default()
        .iter()
        .map(|i| tenant.schema.parse_item(&i.tag, &i.value, Actor::Admin))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(NewAccount { user, items })
}
