//! What the REST API (`v4/im_open_login_svc`: `kick`, `account_delete`) and the operator API
//! (`/admin/v1/apps/{sdkappid}/accounts/…`) do to accounts, written once so that both have the
//! same effects everywhere:
//!
//! * a **kick** is stored (it outlives the account), takes effect in this node's kick table at
//!   once, closes the user's WebSockets on this node and is published to the other nodes, which
//!   do the same;
//! * a **delete** is stored (one change per deleted account, with who made it and from where)
//!   and closes the deleted users' WebSockets on this node (the other nodes' sessions learn of
//!   it from the change log).
//!
//! What must not live here: parsing requests or shaping answers (each API's handler).

use portrait_core::{ErrorCode, Identifier};
use portrait_store::{AppId, Origin};

use crate::state::AppState;
use crate::tenant::Tenant;

/// Revokes every UserSig of `user` minted up to now (plus the app's clock skew) on every node
/// and closes the user's WebSockets. Returns `false`, doing nothing, if the account does not
/// exist.
///
/// # Errors
/// Storage failures (nothing is revoked).
pub async fn kick(
    state: &AppState,
    tenant: &Tenant,
    user: &Identifier,
) -> portrait_store::Result<bool> {
    let not_before = crate::auth::kick_not_before(tenant);
    if !state
        .store()
        .kick(tenant.sdkappid, user, not_before)
        .await?
    {
        return Ok(false);
    }
    let raw = user.as_str();
    tenant.set_kick(raw.to_owned(), not_before);
    if let Some(feed) = state.hub().feed(tenant.sdkappid) {
        feed.revoke(raw, ErrorCode::SIG_EXPIRED);
    }
    state.hub().kicked(tenant.sdkappid, raw, not_before);
    Ok(true)
}

/// Deletes `users` of `app` with their profiles, recording `origin` with each change, and closes
/// the deleted users' WebSockets. Returns, per user in order, whether it existed.
///
/// # Errors
/// Storage failures (nothing is deleted).
pub async fn delete(
    state: &AppState,
    app: AppId,
    users: &[Identifier],
    origin: Origin<'_>,
) -> portrait_store::Result<Vec<bool>> {
    let existed = state.store().delete_accounts(app, users, origin).await?;
    if let Some(feed) = state.hub().feed(app) {
        for (user, _) in users.iter().zip(&existed).filter(|(_, e)| **e) {
            feed.revoke(user.as_str(), ErrorCode::ACCOUNT_NOT_FOUND);
        }
    }
    Ok(existed)
}
