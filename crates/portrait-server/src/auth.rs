//! Authentication of REST calls: the URL query (`sdkappid, identifier, usersig, random,
//! contenttype`) → a verified admin of a known app, within its rate limit.
//!
//! Order of checks (each with its own code): query parse (60002), sdkappid present (60012) and
//! numeric (60006), app known (70020), identifier present (60004), UserSig (70001–70014, kick ⇒
//! 70001), admin (40004 / 70403), rate limit (60007). The rate limit is taken only by
//! authenticated admins, so anonymous traffic cannot use up an app's budget; it is counted
//! across nodes while `[cluster] redis_url` answers ([`crate::cluster`]), else per node.

use std::borrow::Cow;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use portrait_core::query;
use portrait_core::usersig::{self, SigError, VerifiedSig};
use portrait_core::wire::RestQuery;
use portrait_core::Identifier;

use crate::error::{ApiError, Result};
use crate::ratelimit::{Api, ClientCall, Over};
use crate::state::AppState;
use crate::tenant::Tenant;

/// An authenticated admin call.
pub struct AdminCall {
    /// The app.
    pub tenant: Arc<Tenant>,
    /// The admin identifier (the operator of any change).
    pub identifier: String,
}

/// Current Unix time in seconds.
pub fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// Parses the raw URL query ([`query::parse_query`]: unknown parameters ignored, repeated ones
/// take the first).
///
/// # Errors
/// [`ApiError::HttpParse`] when a known parameter's value is not UTF-8 once its escapes are
/// decoded.
pub fn parse_query(raw: Option<&str>) -> Result<RestQuery<'_>> {
    query::parse_query(raw).map_err(|e| ApiError::HttpParse(e.to_string()))
}

/// The `key=value` pairs of a raw URL query ([`query::query_pairs`]). Every parser of a query
/// uses this, so all of them decode alike.
pub use query::query_pairs;

/// `application/x-www-form-urlencoded` decoding of one key or value ([`query::decode`]).
///
/// # Errors
/// [`ApiError::HttpParse`] when the result is not UTF-8.
pub fn decode(raw: &str) -> Result<Cow<'_, str>> {
    query::decode(raw).map_err(|e| ApiError::HttpParse(e.to_string()))
}

/// Resolves the app named by the query.
///
/// # Errors
/// 60012, 60006 or 70020.
pub fn tenant_of(state: &AppState, q: &RestQuery<'_>) -> Result<Arc<Tenant>> {
    let raw = q
        .sdkappid
        .as_deref()
        .filter(|s| !s.is_empty())
        .ok_or(ApiError::SdkAppIdMissing)?;
    let id: u64 = raw
        .trim()
        .parse()
        .map_err(|_| ApiError::SdkAppIdInvalid(raw.to_owned()))?;
    state.tenant(id).ok_or(ApiError::AppNotFound(id))
}

/// Verifies `usersig` for `identifier` in `tenant`, including revocation by `kick`.
///
/// The clock-skew rule: a sig dated more than the app's `usersig_clock_skew_secs` (S) ahead of
/// this server's clock is refused (70005) until then, and a kick at second `k` revokes every sig
/// dated up to `k + S` ([`kick_not_before`]). So a sig minted before a kick by a server whose
/// clock runs fast by up to S is revoked too, and one whose clock runs further ahead was not
/// usable at the time of the kick; a new sig works once dated after `k + S`.
///
/// # Errors
/// The [`SigError`] of the failed check.
pub fn verify_sig(
    tenant: &Tenant,
    identifier: &str,
    usersig: &str,
) -> Result<Arc<VerifiedSig>, SigError> {
    let now = now_secs();
    let sig = match tenant.cached_sig(usersig) {
        // Same checks as `usersig::verify` minus the decoding and HMAC, which this exact
        // string already passed for this app.
        Some(sig) if sig.identifier == identifier => {
            if now > sig.expires_at() {
                return Err(SigError::Expired {
                    expired_at: sig.expires_at(),
                });
            }
            sig
        }
        Some(_) => return Err(SigError::IdentifierMismatch),
        None => match usersig::verify(usersig, tenant.sdkappid, identifier, tenant.key(), now) {
            Ok(sig) => {
                let sig = Arc::new(sig);
                tenant.cache_sig(usersig, sig.clone());
                sig
            }
            // During a key rotation's grace, a sig of the previous key verifies. It is not
            // cached: the cache does not know when the grace ends.
            Err(SigError::BadHmac) => match tenant.previous_key(now) {
                Some(old) => Arc::new(usersig::verify(
                    usersig,
                    tenant.sdkappid,
                    identifier,
                    old,
                    now,
                )?),
                None => return Err(SigError::BadHmac),
            },
            Err(e) => return Err(e),
        },
    };
    if sig.time > now.saturating_add(tenant.clock_skew) {
        return Err(SigError::FromTheFuture {
            ahead: sig.time - now,
            skew: tenant.clock_skew,
        });
    }
    if tenant
        .kicked_before(identifier)
        .is_some_and(|nb| sig.time <= nb)
    {
        return Err(SigError::Revoked);
    }
    Ok(sig)
}

/// The `not_before` of a kick made now: every sig dated up to the allowed clock skew after it
/// is revoked (see [`verify_sig`]).
pub fn kick_not_before(tenant: &Tenant) -> u64 {
    now_secs().saturating_add(tenant.clock_skew)
}

/// An authenticated user of the client API (docs/client-api.md).
pub struct UserCall {
    /// The app.
    pub tenant: Arc<Tenant>,
    /// The signed-in user (an imported account).
    pub user: Identifier,
    /// Unix second at which the UserSig expires.
    pub expires_at: u64,
}

/// Fails as a store that is down while the app's kicks are not loaded (its database was down
/// when this node took the app on): a revoked UserSig must not pass meanwhile.
fn kicks_known(tenant: &Tenant) -> Result<()> {
    if tenant.kicks_loaded() {
        return Ok(());
    }
    Err(portrait_store::StoreError::Unavailable(
        format!(
            "app {}: its kicks are not loaded yet (its database is down)",
            tenant.sdkappid
        )
        .into(),
    )
    .into())
}

/// Authenticates a client-API call: the same checks and codes as [`admin`] up to the UserSig,
/// then the client rate limits of the user and the app for a `call` (60007), then the account
/// must exist (70107); no admin check.
///
/// # Errors
/// See [`admin`]; [`ApiError::ClientRateLimited`], [`ApiError::UserNotImported`].
pub async fn user(state: &AppState, raw_query: Option<&str>, call: ClientCall) -> Result<UserCall> {
    let q = parse_query(raw_query)?;
    let tenant = tenant_of(state, &q)?;
    let identifier = q
        .identifier
        .filter(|s| !s.is_empty())
        .ok_or(ApiError::IdentifierMissing)?;
    kicks_known(&tenant)?;
    let sig = verify_sig(&tenant, &identifier, q.usersig.as_deref().unwrap_or(""))?;
    if let Err(over) = state
        .cluster()
        .check_client(&tenant, &identifier, call)
        .await
    {
        let kind = match call {
            ClientCall::Read => "reads",
            ClientCall::Write => "writes",
        };
        return Err(ApiError::ClientRateLimited(match over {
            Over::User(n) => format!("over the client limit of {n} {kind} per second per user"),
            Over::App(n) => {
                format!("over the client limit of {n} {kind} per second for the app")
            }
        }));
    }
    let user = Identifier::parse(&identifier)
        .map_err(|_| ApiError::UserNotImported(identifier.to_string()))?;
    let exists = state
        .store()
        .accounts_exist(tenant.sdkappid, std::slice::from_ref(&user))
        .await?;
    if exists != [true] {
        return Err(ApiError::UserNotImported(identifier.into_owned()));
    }
    Ok(UserCall {
        tenant,
        user,
        expires_at: sig.expires_at(),
    })
}

/// Authenticates an admin REST call to `api`.
///
/// # Errors
/// See the module docs for the order and codes.
pub async fn admin(state: &AppState, raw_query: Option<&str>, api: Api) -> Result<AdminCall> {
    let q = parse_query(raw_query)?;
    let tenant = tenant_of(state, &q)?;
    let identifier = q
        .identifier
        .filter(|s| !s.is_empty())
        .ok_or(ApiError::IdentifierMissing)?;
    kicks_known(&tenant)?;
    verify_sig(&tenant, &identifier, q.usersig.as_deref().unwrap_or(""))?;
    if !tenant.is_admin(&identifier) {
        return Err(ApiError::NotAdmin(identifier.into_owned()));
    }
    if !state.cluster().check_api(&tenant, api).await {
        return Err(ApiError::RateLimited(api.name()));
    }
    Ok(AdminCall {
        tenant,
        identifier: identifier.into_owned(),
    })
}
