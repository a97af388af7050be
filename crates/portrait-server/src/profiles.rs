//! Profile reads and writes shared by the admin REST API (`v4/profile/*`) and the client API
//! (`/v1/profile/*`): one implementation of tag resolution, validation, permissions and the
//! per-user answer shape, parameterised by who is acting ([`Actor`]).

use portrait_core::schema::{Actor, StandardTag};
use portrait_core::wire::{PortraitGetResponse, ProfileItem, UserProfileItem};
use portrait_core::{ErrorCode, Identifier, Tag};
use portrait_store::StoreError;

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
    tags: &[Tag],
    versions: bool,
) -> Result<PortraitGetResponse> {
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
    let found = state.store().get_profiles(tenant.sdkappid, &valid).await?;
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
                version: None,
                updated_at_ms: None,
            });
            continue;
        };
        let items = tags
            .iter()
            .filter_map(|tag| {
                let value = match profile.fields.get(tag.name()) {
                    Some(v) => v.to_json(),
                    None => match tag {
                        Tag::Standard(std) => std.default_value().to_json(),
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
            version: versions.then_some(profile.version),
            updated_at_ms: versions.then_some(profile.updated_at_ms),
        });
    }
    Ok(resp)
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
