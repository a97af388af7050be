//! Profile reads and writes shared by the admin REST API (`v4/profile/*`) and the client API
//! (`/v1/profile/*`): one implementation of tag resolution, validation, permissions and the
//! per-user answer shape, parameterised by who is acting ([`Actor`]).

use std::sync::Arc;

use portrait_core::schema::{Actor, StandardKind, StandardTag};
use portrait_core::wire::ProfileItem;
#[cfg(doc)]
use portrait_core::wire::{PortraitGetResponse, UserProfileItem};
use portrait_core::{ErrorCode, Identifier, ProfileValue, Tag};
use portrait_store::{Profile, StoreError};
use serde::ser::{SerializeSeq, SerializeStruct};
use serde::{Serialize, Serializer};

use crate::api::{parse_ids, spread};
use crate::error::{ApiError, Result};
use crate::state::AppState;
use crate::tenant::Tenant;

/// Most accounts one read may ask for.
pub const MAX_GET_ACCOUNTS: usize = 100;

/// Resolves a `TagList` for `actor`. `None` (client API only) means every standard field and
/// every custom field `actor` may read.
///
/// # Errors
/// 40001 for an empty list, 40009 unknown tag, 40007 unreadable custom field.
pub fn resolve_tags(tenant: &Tenant, names: Option<&[String]>, actor: Actor) -> Result<Vec<Tag>> {
    match names {
        Some([]) => Err(ApiError::BadRequest("TagList is empty".into())),
        Some(names) => names
            .iter()
            .map(|t| tenant.schema.resolve_readable(t, actor))
            .collect::<Result<Vec<_>, _>>()
            .map_err(Into::into),
        None => {
            let mut tags: Vec<Tag> = StandardTag::ALL.into_iter().map(Tag::Standard).collect();
            let mut custom: Vec<Tag> = tenant
                .schema
                .custom_fields()
                .filter(|f| f.read().allows(actor))
                .map(|f| Tag::Custom(f.name().to_owned()))
                .collect();
            custom.sort_by(|a, b| a.name().cmp(b.name()));
            tags.extend(custom);
            Ok(tags)
        }
    }
}

/// Reads `tags` of up to [`MAX_GET_ACCOUNTS`] accounts, answering per account in request order
/// (unknown or invalid accounts: 40003 and `Fail_Account`). With `versions`, each profile carries
/// its `Version` and `UpdatedAtMs` (client API).
///
/// # Errors
/// 40002 for no accounts, 40001 for too many, storage failures.
pub async fn read(
    state: &AppState,
    tenant: &Tenant,
    accounts: Option<Vec<String>>,
    tags: Vec<Tag>,
    versions: bool,
) -> Result<ReadAnswer> {
    let accounts = accounts
        .filter(|v| !v.is_empty())
        .ok_or(ApiError::MissingToAccount)?;
    if accounts.len() > MAX_GET_ACCOUNTS {
        return Err(ApiError::BadRequest(format!(
            "To_Account has {} accounts; at most {MAX_GET_ACCOUNTS} per call",
            accounts.len()
        )));
    }
    let (ids, valid) = parse_ids(&accounts);
    let found = state
        .store()
        .get_profiles_shared(tenant.sdkappid, &valid)
        .await?;
    let users = accounts
        .into_iter()
        .zip(spread(&ids, found))
        .map(|(account, profile)| (account, profile.flatten()))
        .collect();
    Ok(ReadAnswer {
        users,
        tags,
        versions,
    })
}

/// The answer of [`read`]: the JSON of [`PortraitGetResponse`], serialized straight from the
/// (shared, cached) profiles, so a read copies no profile and allocates nothing per field.
pub struct ReadAnswer {
    /// Per requested account, in order: the profile, or `None` (40003).
    users: Vec<(String, Option<Arc<Profile>>)>,
    tags: Vec<Tag>,
    versions: bool,
}

const NOT_FOUND_INFO: &str = "Err_Profile_Account_Not_Exist: requested UserID does not exist";

impl Serialize for ReadAnswer {
    fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        let mut out = s.serialize_struct("PortraitGetResponse", 2)?;
        let users: Vec<UserOut<'_>> = self
            .users
            .iter()
            .map(|(account, profile)| match profile {
                Some(p) => UserOut {
                    to_account: account,
                    profile_item: Some(ItemsOut {
                        profile: p,
                        tags: &self.tags,
                    }),
                    result_code: ErrorCode::OK,
                    result_info: "",
                    version: self.versions.then_some(p.version),
                    updated_at_ms: self.versions.then_some(p.updated_at_ms),
                },
                None => UserOut {
                    to_account: account,
                    profile_item: None,
                    result_code: ErrorCode::PROFILE_ACCOUNT_NOT_FOUND,
                    result_info: NOT_FOUND_INFO,
                    version: None,
                    updated_at_ms: None,
                },
            })
            .collect();
        out.serialize_field("UserProfileItem", &users)?;
        let failed: Vec<&str> = self
            .users
            .iter()
            .filter(|(_, p)| p.is_none())
            .map(|(a, _)| a.as_str())
            .collect();
        if failed.is_empty() {
            out.skip_field("Fail_Account")?;
        } else {
            out.serialize_field("Fail_Account", &failed)?;
        }
        out.end()
    }
}

/// One `UserProfileItem` of a [`ReadAnswer`] (same fields as [`UserProfileItem`]).
#[derive(Serialize)]
struct UserOut<'a> {
    #[serde(rename = "To_Account")]
    to_account: &'a str,
    #[serde(rename = "ProfileItem", skip_serializing_if = "Option::is_none")]
    profile_item: Option<ItemsOut<'a>>,
    #[serde(rename = "ResultCode")]
    result_code: ErrorCode,
    #[serde(rename = "ResultInfo")]
    result_info: &'a str,
    #[serde(rename = "Version", skip_serializing_if = "Option::is_none")]
    version: Option<u64>,
    #[serde(rename = "UpdatedAtMs", skip_serializing_if = "Option::is_none")]
    updated_at_ms: Option<i64>,
}

/// The `ProfileItem` list of one profile: each requested tag in order; a standard field never
/// set answers its default, a custom field never set is omitted.
struct ItemsOut<'a> {
    profile: &'a Profile,
    tags: &'a [Tag],
}

impl Serialize for ItemsOut<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        let mut seq = s.serialize_seq(None)?;
        for tag in self.tags {
            let value = match (self.profile.fields.get(tag.name()), tag) {
                (Some(ProfileValue::Str(v)), _) => ValueOut::Str(v),
                (Some(ProfileValue::Int(n)), _) => ValueOut::Int(*n),
                (None, Tag::Standard(std)) => match std.kind() {
                    StandardKind::Text { .. } => ValueOut::Str(""),
                    StandardKind::Enum(values) => ValueOut::Str(values[0]),
                    StandardKind::U32 => ValueOut::Int(0),
                },
                (None, Tag::Custom(_)) => continue,
            };
            seq.serialize_element(&ItemOut {
                tag: tag.name(),
                value,
            })?;
        }
        seq.end()
    }
}

#[derive(Serialize)]
struct ItemOut<'a> {
    #[serde(rename = "Tag")]
    tag: &'a str,
    #[serde(rename = "Value")]
    value: ValueOut<'a>,
}

#[derive(Serialize)]
#[serde(untagged)]
enum ValueOut<'a> {
    Str(&'a str),
    Int(u64),
}

/// Validates `items` for `actor` and writes them to `user`'s profile atomically (only if the
/// profile is at `expected`, when given). Returns the new version.
///
/// # Errors
/// 40001 for no items, the field codes (40005, 40008, 40009, 406xx), 40003 missing account,
/// 49001 stale `expected`, storage failures.
pub async fn write(
    state: &AppState,
    tenant: &Tenant,
    user: &Identifier,
    items: Option<Vec<ProfileItem>>,
    actor: Actor,
    operator: &str,
    expected: Option<u64>,
) -> Result<u64> {
    let items = items
        .filter(|v| !v.is_empty())
        .ok_or_else(|| ApiError::BadRequest("ProfileItem is missing or empty".into()))?;
    let parsed = items
        .iter()
        .map(|i| tenant.schema.parse_item(&i.tag, &i.value, actor))
        .collect::<Result<Vec<_>, _>>()?;
    state
        .store()
        .set_profile_expecting(tenant.sdkappid, user, &parsed, operator, expected)
        .await
        .map_err(|e| match e {
            StoreError::NotFound => ApiError::AccountNotFound(user.as_str().to_owned()),
            StoreError::VersionConflict { current } => ApiError::VersionConflict {
                expected: expected.unwrap_or_default(),
                current,
            },
            e => e.into(),
        })
}
