//! Tencent Cloud IM REST wire types: the URL query, request bodies and responses of
//! `v4/profile/*` and `v4/im_open_login_svc/*`, and the response envelope (spec §1.4–§1.5, §2, §4).
//!
//! Requests are lenient the way real clients need (unknown fields ignored, the legacy
//! `Identifier` accepted for `UserID`); responses use the vendor's exact field names.

use std::borrow::Cow;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::ErrorCode;

/// The `operator` users see in a push event (`/v1/ws` `profile` frame) for a change they did not
/// make themselves: an app admin's call, the app's backend or Portrait itself. Which admin
/// account it was is for the change log and the webhook (`Operator_Account`) only. A change a
/// user made to their own profile shows their UserID.
pub const ADMIN_OPERATOR: &str = "admin";

/// The URL query every REST call carries. All fields are optional here so that a missing one gets
/// its own vendor code instead of a generic parse failure.
/// Values borrow from the URL where they need no decoding.
#[derive(Debug, Clone, Default)]
pub struct RestQuery<'a> {
    /// The app.
    pub sdkappid: Option<Cow<'a, str>>,
    /// The admin account making the call.
    pub identifier: Option<Cow<'a, str>>,
    /// UserSig minted for `identifier`.
    pub usersig: Option<Cow<'a, str>>,
    /// A random uint32; accepted and ignored (clients reuse it).
    pub random: Option<Cow<'a, str>>,
    /// Always `json`; accepted and ignored.
    pub contenttype: Option<Cow<'a, str>>,
}

/// `ActionStatus` values.
pub mod action_status {
    /// Success.
    pub const OK: &str = "OK";
    /// Failure.
    pub const FAIL: &str = "FAIL";
}

/// The response envelope of every REST call.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Envelope {
    /// `OK` or `FAIL`.
    #[serde(rename = "ActionStatus")]
    pub action_status: String,
    /// 0 on success.
    #[serde(rename = "ErrorCode")]
    pub error_code: ErrorCode,
    /// Detail text; empty on success.
    #[serde(rename = "ErrorInfo", default)]
    pub error_info: String,
    /// Text for end users; present on profile APIs (always empty, as with the vendor).
    #[serde(
        rename = "ErrorDisplay",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub error_display: Option<String>,
}

impl Envelope {
    /// A success envelope; `with_display` adds the profile APIs' `ErrorDisplay`.
    pub fn ok(with_display: bool) -> Self {
        Self {
            action_status: action_status::OK.into(),
            error_code: ErrorCode::OK,
            error_info: String::new(),
            error_display: with_display.then(String::new),
        }
    }

    /// A failure envelope.
    pub fn fail(code: ErrorCode, info: impl Into<String>, with_display: bool) -> Self {
        Self {
            action_status: action_status::FAIL.into(),
            error_code: code,
            error_info: info.into(),
            error_display: with_display.then(String::new),
        }
    }
}

/// One `{Tag, Value}` item.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[cfg_attr(test, derive(ts_rs::TS))]
pub struct ProfileItem {
    /// Tag name.
    #[serde(rename = "Tag")]
    pub tag: String,
    /// Value: string or number.
    #[serde(rename = "Value")]
    #[cfg_attr(test, ts(type = "string | number"))]
    pub value: serde_json::Value,
}

/// Compares with the item's JSON object (`{"Tag": …, "Value": …}`).
impl PartialEq<serde_json::Value> for ProfileItem {
    fn eq(&self, other: &serde_json::Value) -> bool {
        other.as_object().is_some_and(|o| {
            o.len() == 2
                && o.get("Tag").and_then(|t| t.as_str()) == Some(self.tag.as_str())
                && o.get("Value") == Some(&self.value)
        })
    }
}

/// `v4/profile/portrait_set` request.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
pub struct PortraitSetRequest {
    /// The user whose profile is set.
    #[serde(rename = "From_Account")]
    pub from_account: Option<String>,
    /// Items to set.
    #[serde(rename = "ProfileItem")]
    pub profile_item: Option<Vec<ProfileItem>>,
}

/// `v4/profile/portrait_get` request.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
pub struct PortraitGetRequest {
    /// Users to read.
    #[serde(rename = "To_Account")]
    pub to_account: Option<Vec<String>>,
    /// Tags to read.
    #[serde(rename = "TagList")]
    pub tag_list: Option<Vec<String>>,
}

/// One user's entry in a `portrait_get` response.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct UserProfileItem {
    /// The user.
    #[serde(rename = "To_Account")]
    pub to_account: String,
    /// The requested tags, in request order (omitted for a failed user).
    #[serde(
        rename = "ProfileItem",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub profile_item: Option<Vec<ProfileItem>>,
    /// 0, or the per-user error code.
    #[serde(rename = "ResultCode")]
    pub result_code: ErrorCode,
    /// Per-user error text.
    #[serde(rename = "ResultInfo")]
    pub result_info: String,
    /// Portrait extension, client API only: the profile's version (its last change).
    #[serde(rename = "Version", default, skip_serializing_if = "Option::is_none")]
    pub version: Option<u64>,
    /// Portrait extension, client API only: Unix milliseconds of the profile's last change.
    #[serde(
        rename = "UpdatedAtMs",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub updated_at_ms: Option<i64>,
}

/// `v4/profile/portrait_get` response body (besides the envelope).
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct PortraitGetResponse {
    /// One entry per requested account, in request order.
    #[serde(rename = "UserProfileItem")]
    pub user_profile_item: Vec<UserProfileItem>,
    /// Accounts that failed; present only when at least one failed.
    #[serde(
        rename = "Fail_Account",
        default,
        skip_serializing_if = "Vec::is_empty"
    )]
    pub fail_account: Vec<String>,
}

/// `account_import` request; also one element of `multiaccount_import`'s `AccountList`.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
pub struct AccountImportRequest {
    /// The account; very old clients send `Identifier`.
    #[serde(rename = "UserID", alias = "Identifier")]
    pub user_id: Option<String>,
    /// Initial nickname (lands in `Tag_Profile_IM_Nick`).
    #[serde(rename = "Nick")]
    pub nick: Option<String>,
    /// Avatar URL (lands in `Tag_Profile_IM_Image`).
    #[serde(rename = "FaceUrl")]
    pub face_url: Option<String>,
}

/// `multiaccount_import` request, in either of the vendor's two forms.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
pub struct MultiAccountImportRequest {
    /// Old form: plain UserIDs.
    #[serde(rename = "Accounts")]
    pub accounts: Option<Vec<String>>,
    /// New form: UserID with optional Nick and FaceUrl.
    #[serde(rename = "AccountList")]
    pub account_list: Option<Vec<AccountImportRequest>>,
}

/// `multiaccount_import` response body (besides the envelope).
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct MultiAccountImportResponse {
    /// Accounts that could not be imported.
    #[serde(rename = "FailAccounts")]
    pub fail_accounts: Vec<String>,
}

/// `{"UserID": …}` element of delete/check lists and the `kick` body.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
pub struct UserIdItem {
    /// The account; `Identifier` accepted.
    #[serde(rename = "UserID", alias = "Identifier")]
    pub user_id: Option<String>,
}

/// `account_delete` request.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
pub struct AccountDeleteRequest {
    /// Accounts to delete (≤ 100).
    #[serde(rename = "DeleteItem")]
    pub delete_item: Option<Vec<UserIdItem>>,
}

/// `account_check` request.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
pub struct AccountCheckRequest {
    /// Accounts to check (≤ 100).
    #[serde(rename = "CheckItem")]
    pub check_item: Option<Vec<UserIdItem>>,
}

/// One `ResultItem` of `account_delete` / `account_check`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct AccountResultItem {
    /// The account.
    #[serde(rename = "UserID")]
    pub user_id: String,
    /// 0 or a per-item code.
    #[serde(rename = "ResultCode")]
    pub result_code: ErrorCode,
    /// Per-item text.
    #[serde(rename = "ResultInfo")]
    pub result_info: String,
    /// `account_check` only: `Imported` or `NotImported`.
    #[serde(
        rename = "AccountStatus",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub account_status: Option<String>,
}

/// `account_delete` / `account_check` response body (besides the envelope).
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct AccountResultResponse {
    /// One item per requested account, in request order.
    #[serde(rename = "ResultItem")]
    pub result_item: Vec<AccountResultItem>,
}

/// Body of `v4/profile/portrait_import` (a Portrait extension; README): accounts to create or
/// update with any profile fields, in bulk.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct PortraitImportRequest {
    /// The accounts (≤ 1000).
    #[serde(rename = "AccountList")]
    pub account_list: Option<Vec<PortraitImportAccount>>,
}

/// One account of a [`PortraitImportRequest`].
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct PortraitImportAccount {
    /// The account, created if it does not exist.
    #[serde(rename = "UserID")]
    pub user_id: Option<String>,
    /// Fields to write, validated as `portrait_set` by an admin; may be empty or absent.
    #[serde(
        rename = "ProfileItem",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub profile_item: Option<Vec<ProfileItem>>,
}

/// Body of the client API's `update_my_profile` (docs/client-api.md).
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct UpdateMyProfileRequest {
    /// Items to write, atomically.
    #[serde(rename = "ProfileItem")]
    pub profile_item: Option<Vec<ProfileItem>>,
    /// Write only if the profile is still at this version.
    #[serde(
        rename = "ExpectedVersion",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub expected_version: Option<u64>,
}

/// Answer of `update_my_profile`: the profile's new version.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct UpdateMyProfileResponse {
    /// The new version.
    #[serde(rename = "Version")]
    pub version: u64,
}
