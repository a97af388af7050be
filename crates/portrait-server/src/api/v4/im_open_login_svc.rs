//! `v4/im_open_login_svc/*`: account import, batch import, delete, check and kick (spec §4).

use axum::body::Body;
use axum::extract::State;
use axum::http::Uri;
use axum::response::Response;
use axum::routing::any;
use axum::Router;
use portrait_core::schema::StandardTag;
use portrait_core::wire::{
    AccountCheckRequest, AccountDeleteRequest, AccountImportRequest, AccountResultItem,
    AccountResultResponse, MultiAccountImportRequest, MultiAccountImportResponse, UserIdItem,
};
use portrait_core::{ErrorCode, Identifier};
use portrait_store::{NewAccount, Origin};

use crate::api::read_body;
use crate::auth::{self, AdminCall};
use crate::client_ip::ClientIp;
use crate::error::{item_result, parse_body, reply, ApiError, Empty, Family, Result};
use crate::ids::{parse_ids, spread};
use crate::ratelimit::Api;
use crate::state::AppState;

/// Most accounts one batch call may carry.
pub const MAX_BATCH: usize = 100;

/// Routes of this group.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/v4/im_open_login_svc/account_import", any(account_import))
        .route(
            "/v4/im_open_login_svc/multiaccount_import",
            any(multiaccount_import),
        )
        .route("/v4/im_open_login_svc/account_delete", any(account_delete))
        .route("/v4/im_open_login_svc/account_check", any(account_check))
        .route("/v4/im_open_login_svc/kick", any(kick))
}

async fn begin<T: serde::de::DeserializeOwned>(
    state: &AppState,
    q: Option<&str>,
    body: Body,
    api: Api,
) -> Result<(AdminCall, T)> {
    let call = auth::admin(state, q, api).await?;
    let req = parse_body(&read_body(state, body).await?)?;
    Ok((call, req))
}

/// Validates one account to import: UserID, and Nick/FaceUrl against their field rules.
fn new_account(call: &AdminCall, req: AccountImportRequest) -> Result<NewAccount> {
    let raw = req
        .user_id
        .ok_or_else(|| ApiError::Decode("UserID is missing".into()))?;
    let user = Identifier::parse(&raw).map_err(|e| ApiError::BadRequest(format!("UserID: {e}")))?;
    for (tag, v) in [
        (StandardTag::Nick, &req.nick),
        (StandardTag::Image, &req.face_url),
    ] {
        if let Some(v) = v {
            call.tenant.schema.check_text(tag, v)?;
        }
    }
    Ok(NewAccount::with_nick_face(user, req.nick, req.face_url))
}

/// Imports one account (creates it, or updates its Nick/FaceUrl).
async fn account_import(
    State(state): State<AppState>,
    uri: Uri,
    ClientIp(ip): ClientIp,
    body: Body,
) -> Response {
    reply(
        Family::Account,
        import_one(&state, uri.query(), &ip, body).await,
    )
}

async fn import_one(state: &AppState, q: Option<&str>, ip: &str, body: Body) -> Result<Empty> {
    let (call, req) = begin::<AccountImportRequest>(state, q, body, Api::AccountImport).await?;
    let account = new_account(&call, req)?;
    state
        .store()
        .import_accounts(
            call.tenant.sdkappid,
            &[account],
            Origin::new(&call.identifier, ip),
        )
        .await?;
    Ok(Empty {})
}

/// Imports up to 100 accounts, in the old (`Accounts`) or new (`AccountList`) form. Invalid
/// entries are reported in `FailAccounts`; the valid ones are imported.
async fn multiaccount_import(
    State(state): State<AppState>,
    uri: Uri,
    ClientIp(ip): ClientIp,
    body: Body,
) -> Response {
    reply(
        Family::Account,
        import_many(&state, uri.query(), &ip, body).await,
    )
}

async fn import_many(
    state: &AppState,
    q: Option<&str>,
    ip: &str,
    body: Body,
) -> Result<MultiAccountImportResponse> {
    let (call, req) =
        begin::<MultiAccountImportRequest>(state, q, body, Api::MultiaccountImport).await?;
    let list: Vec<AccountImportRequest> = match (req.account_list, req.accounts) {
        (Some(list), _) => list,
        (None, Some(ids)) => ids
            .into_iter()
            .map(|id| AccountImportRequest {
                user_id: Some(id),
                nick: None,
                face_url: None,
            })
            .collect(),
        (None, None) => {
            return Err(ApiError::BadRequest(
                "Accounts or AccountList is required".into(),
            ))
        }
    };
    check_batch(list.len(), "accounts")?;
    let mut ok = Vec::with_capacity(list.len());
    let mut fail_accounts = Vec::new();
    for req in list {
        let raw = req.user_id.clone().unwrap_or_default();
        match new_account(&call, req) {
            Ok(a) => ok.push(a),
            Err(_) => fail_accounts.push(raw),
        }
    }
    if !ok.is_empty() {
        state
            .store()
            .import_accounts(call.tenant.sdkappid, &ok, Origin::new(&call.identifier, ip))
            .await?;
    }
    Ok(MultiAccountImportResponse { fail_accounts })
}

fn check_batch(n: usize, what: &str) -> Result<()> {
    if n == 0 {
        return Err(ApiError::BadRequest(format!("no {what} given")));
    }
    if n > MAX_BATCH {
        return Err(ApiError::BadRequest(format!(
            "{n} {what}; at most {MAX_BATCH} per call"
        )));
    }
    Ok(())
}

/// The raw UserIDs of a `[{UserID}]` list, after checking its size.
fn batch_user_ids(items: Option<Vec<UserIdItem>>, field: &str) -> Result<Vec<String>> {
    let items = items.ok_or_else(|| ApiError::Decode(format!("{field} is missing")))?;
    check_batch(items.len(), "accounts")?;
    Ok(items
        .into_iter()
        .map(|i| i.user_id.unwrap_or_default())
        .collect())
}

/// Deletes up to 100 accounts and their profile data.
async fn account_delete(
    State(state): State<AppState>,
    uri: Uri,
    ClientIp(ip): ClientIp,
    body: Body,
) -> Response {
    reply(
        Family::Account,
        delete(&state, uri.query(), &ip, body).await,
    )
}

async fn delete(
    state: &AppState,
    q: Option<&str>,
    ip: &str,
    body: Body,
) -> Result<AccountResultResponse> {
    let (call, req) = begin::<AccountDeleteRequest>(state, q, body, Api::AccountDelete).await?;
    let raw = batch_user_ids(req.delete_item, "DeleteItem")?;
    let (ids, valid) = parse_ids(&raw);
    let origin = Origin::new(&call.identifier, ip);
    let existed = crate::accounts::delete(state, call.tenant.sdkappid, &valid, origin).await?;
    let result_item = raw
        .into_iter()
        .zip(spread(&ids, existed))
        .map(|(user_id, existed)| {
            if existed == Some(true) {
                AccountResultItem {
                    user_id,
                    result_code: ErrorCode::OK,
                    result_info: String::new(),
                    account_status: None,
                }
            } else {
                let (result_code, result_info) = item_result::account_not_found();
                AccountResultItem {
                    user_id,
                    result_code,
                    result_info: result_info.into(),
                    account_status: None,
                }
            }
        })
        .collect();
    Ok(AccountResultResponse { result_item })
}

/// Reports whether up to 100 accounts are imported.
async fn account_check(State(state): State<AppState>, uri: Uri, body: Body) -> Response {
    reply(Family::Account, check(&state, uri.query(), body).await)
}

async fn check(state: &AppState, q: Option<&str>, body: Body) -> Result<AccountResultResponse> {
    let (call, req) = begin::<AccountCheckRequest>(state, q, body, Api::AccountCheck).await?;
    let raw = batch_user_ids(req.check_item, "CheckItem")?;
    let (ids, valid) = parse_ids(&raw);
    let exists = state
        .store()
        .accounts_exist(call.tenant.sdkappid, &valid)
        .await?;
    let result_item = raw
        .into_iter()
        .zip(spread(&ids, exists))
        .map(|(user_id, imported)| AccountResultItem {
            user_id,
            result_code: ErrorCode::OK,
            result_info: String::new(),
            account_status: Some(
                if imported == Some(true) {
                    "Imported"
                } else {
                    "NotImported"
                }
                .into(),
            ),
        })
        .collect();
    Ok(AccountResultResponse { result_item })
}

/// Revokes every UserSig issued to the account so far.
async fn kick(State(state): State<AppState>, uri: Uri, body: Body) -> Response {
    reply(Family::Account, kick_one(&state, uri.query(), body).await)
}

async fn kick_one(state: &AppState, q: Option<&str>, body: Body) -> Result<Empty> {
    let (call, req) = begin::<UserIdItem>(state, q, body, Api::Kick).await?;
    let raw = req
        .user_id
        .ok_or_else(|| ApiError::Decode("UserID is missing".into()))?;
    let user = Identifier::parse(&raw).map_err(|_| ApiError::AccountNotFound(raw.clone()))?;
    if !crate::accounts::kick(state, &call.tenant, &user).await? {
        return Err(ApiError::AccountNotFound(raw));
    }
    Ok(Empty {})
}
