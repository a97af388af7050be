//! `/v1/profile/get_my_profile`, `get_user_profile`, `update_my_profile`: the client SDK calls
//! `getMyProfile / getUserProfile / updateMyProfile`, acting as the signed-in user. Validation and
//! answers are the admin API's ([`crate::profiles`]) with user permissions.

use axum::body::Body;
use axum::extract::State;
use axum::http::Uri;
use axum::response::Response;
use axum::routing::any;
use axum::Router;
use portrait_core::schema::Actor;
use portrait_core::wire::{PortraitGetRequest, UpdateMyProfileRequest, UpdateMyProfileResponse};
use portrait_store::Origin;
use serde::Deserialize;

use crate::api::read_body;
use crate::auth;
use crate::client_ip::ClientIp;
use crate::error::{parse_body, reply, reply_raw, Family, Result};
use crate::profiles;
use crate::ratelimit::ClientCall;
use crate::state::AppState;

/// Routes of this group. Like the `/v4` routes they take any method (the SDKs send POST), so
/// that every answer is the envelope.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/profile/get_my_profile", any(get_my_profile))
        .route("/v1/profile/get_user_profile", any(get_user_profile))
        .route("/v1/profile/update_my_profile", any(update_my_profile))
}

/// Body of `get_my_profile`.
#[derive(Deserialize, Default)]
struct GetMyRequest {
    #[serde(rename = "TagList")]
    tag_list: Option<Vec<String>>,
}

/// An empty body means `{}`.
fn parse_or_default<T: serde::de::DeserializeOwned + Default>(body: &[u8]) -> Result<T> {
    if body.iter().all(u8::is_ascii_whitespace) {
        Ok(T::default())
    } else {
        parse_body(body)
    }
}

async fn get_my_profile(State(state): State<AppState>, uri: Uri, body: Body) -> Response {
    let r = async {
        let call = auth::user(&state, uri.query(), ClientCall::Read).await?;
        let req: GetMyRequest = parse_or_default(&read_body(&state, body).await?)?;
        let tags = profiles::resolve_tags(&call.tenant, req.tag_list.as_deref(), Actor::User)?;
        profiles::read(
            &state,
            &call.tenant,
            Some(vec![call.user.as_str().to_owned()]),
            tags,
            true,
        )
        .await
    };
    reply_raw(Family::Profile, r.await)
}

async fn get_user_profile(State(state): State<AppState>, uri: Uri, body: Body) -> Response {
    let r = async {
        let call = auth::user(&state, uri.query(), ClientCall::Read).await?;
        let req: PortraitGetRequest = parse_body(&read_body(&state, body).await?)?;
        let tags = profiles::resolve_tags(&call.tenant, req.tag_list.as_deref(), Actor::User)?;
        profiles::read(&state, &call.tenant, req.to_account, tags, true).await
    };
    reply_raw(Family::Profile, r.await)
}

async fn update_my_profile(
    State(state): State<AppState>,
    uri: Uri,
    ClientIp(ip): ClientIp,
    body: Body,
) -> Response {
    let r = async {
        let call = auth::user(&state, uri.query(), ClientCall::Write).await?;
        let req: UpdateMyProfileRequest = parse_body(&read_body(&state, body).await?)?;
        let version = profiles::write(
            &state,
            &call.tenant,
            &call.user,
            req.profile_item,
            Actor::User,
            Origin::new(call.user.as_str(), &ip),
            req.expected_version,
        )
        .await?;
        Ok(UpdateMyProfileResponse { version })
    };
    reply(Family::Profile, r.await)
}
