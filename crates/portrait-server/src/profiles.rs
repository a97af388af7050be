//! Profile reads and writes shared by the admin REST API (`v4/profile/*`) and the client API
//! (`/v1/profile/*`): one implementation of tag resolution, validation, permissions and the
//! per-user answer shape, parameterised by who is acting ([`Actor`]).

use portrait_core::schema::{Actor, StandardKind, StandardTag};
use portrait_core::wire::ProfileItem;
#[cfg(doc)]
use portrait_core::wire::{PortraitGetResponse, UserProfileItem};
use portrait_core::{Identifier, Tag};
use portrait_store::{FieldKey, FieldValue, Origin, PackedProfile};

use crate::error::{item_result, ApiError, RawFields, Result};
use crate::ids::{parse_ids, spread};
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

/// The answer of [`read`]: the JSON of [`PortraitGetResponse`], written straight from the
/// (shared, cached) profiles into the response ([`RawFields`]), so a read copies no profile and
/// allocates nothing per field.
pub struct ReadAnswer {
    /// Per requested account, in order: the profile, or `None` (40003).
    users: Vec<(String, Option<PackedProfile>)>,
    tags: Vec<Tag>,
    versions: bool,
}

impl RawFields for ReadAnswer {
    fn size_hint(&self) -> usize {
        32 + self.users.len() * (64 + self.tags.len() * 64)
    }

    /// `,"UserProfileItem":[…]` and, if any account failed, `,"Fail_Account":[…]`: the fields
    /// of [`UserProfileItem`] in its order; a standard field never set answers its default, a
    /// custom field never set is omitted.
    fn write_fields(&self, out: &mut Vec<u8>) {
        // One profile's fields, read once and looked up per requested tag.
        let mut fields: Vec<(FieldKey<'_>, FieldValue<'_>)> = Vec::with_capacity(16);
        // `{"Tag":"<name>","Value":` of each requested tag, written once per answer rather than
        // once per profile.
        let heads: Vec<Vec<u8>> = self
            .tags
            .iter()
            .map(|tag| {
                let mut head = b"{\"Tag\":".to_vec();
                json::str(&mut head, tag.name());
                head.extend_from_slice(b",\"Value\":");
                head
            })
            .collect();
        out.extend_from_slice(b",\"UserProfileItem\":[");
        for (i, (account, profile)) in self.users.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            out.extend_from_slice(b"{\"To_Account\":");
            json::str(out, account);
            let Some(p) = profile else {
                let (code, info) = item_result::profile_not_found();
                out.extend_from_slice(b",\"ResultCode\":");
                json::int(out, u64::from(code.0));
                out.extend_from_slice(b",\"ResultInfo\":");
                json::str(out, info);
                out.push(b'}');
                continue;
            };
            fields.clear();
            fields.extend(p.fields());
            out.extend_from_slice(b",\"ProfileItem\":[");
            let mut first = true;
            for (tag, head) in self.tags.iter().zip(&heads) {
                let default;
                let value = match (fields.iter().find(|(k, _)| k.is(tag)), tag) {
                    (Some((_, v)), _) => v,
                    (None, Tag::Standard(std)) => {
                        default = default_of(*std);
                        &default
                    }
                    (None, Tag::Custom(_)) => continue,
                };
                if !first {
                    out.push(b',');
                }
                first = false;
                out.extend_from_slice(head);
                match value {
                    FieldValue::Str(v) => json::str(out, v),
                    FieldValue::Int(n) => json::int(out, *n),
                }
                out.push(b'}');
            }
            out.extend_from_slice(b"],\"ResultCode\":0,\"ResultInfo\":\"\"");
            if self.versions {
                out.extend_from_slice(b",\"Version\":");
                json::int(out, p.version());
                out.extend_from_slice(b",\"UpdatedAtMs\":");
                json::int(out, p.updated_at_ms());
            }
            out.push(b'}');
        }
        out.push(b']');
        let mut failed = self.users.iter().filter(|(_, p)| p.is_none()).peekable();
        if failed.peek().is_some() {
            out.extend_from_slice(b",\"Fail_Account\":[");
            for (i, (account, _)) in failed.enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                json::str(out, account);
            }
            out.push(b']');
        }
    }
}

/// What a standard field never set answers (`StandardTag::default_value`, without allocating).
fn default_of(tag: StandardTag) -> FieldValue<'static> {
    match tag.kind() {
        StandardKind::Text { .. } => FieldValue::Str("".into()),
        StandardKind::Enum(values) => FieldValue::Str(values[0].into()),
        StandardKind::U32 => FieldValue::Int(0),
    }
}

/// JSON scalars written as serde_json writes them.
mod json {
    /// A JSON string literal. Most strings need no escape: one branch-free pass checks that, and
    /// they are copied whole; the others are escaped by serde_json.
    pub(super) fn str(out: &mut Vec<u8>, s: &str) {
        let needs_escape = s.bytes().fold(false, |acc, b| {
            acc | (b < 0x20) | (b == b'"') | (b == b'\\')
        });
        if needs_escape {
            // Writing a string into a Vec cannot fail.
            let _ = serde_json::to_writer(&mut *out, s);
        } else {
            out.reserve(s.len() + 2);
            out.push(b'"');
            out.extend_from_slice(s.as_bytes());
            out.push(b'"');
        }
    }

    pub(super) fn int(out: &mut Vec<u8>, n: impl itoa::Integer) {
        out.extend_from_slice(itoa::Buffer::new().format(n).as_bytes());
    }
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
    origin: Origin<'_>,
    expected: Option<u64>,
) -> Result<u64> {
    let items = items.ok_or_else(|| ApiError::Decode("ProfileItem is missing".into()))?;
    if items.is_empty() {
        return Err(ApiError::BadRequest("ProfileItem is empty".into()));
    }
    let parsed = items
        .iter()
        .map(|i| tenant.schema.parse_item(&i.tag, &i.value, actor))
        .collect::<Result<Vec<_>, _>>()?;
    state
        .store()
        .set_profile_expecting(tenant.sdkappid, user, &parsed, origin, expected)
        .await
        .map_err(|e| ApiError::from_profile_write(e, user, expected))
}

#[cfg(test)]
mod tests {
    use portrait_core::ProfileValue;
    use serde_json::{json, Value as Json};

    use super::*;

    fn written(answer: &ReadAnswer) -> Json {
        let mut out = b"{\"X\":1".to_vec();
        answer.write_fields(&mut out);
        out.push(b'}');
        serde_json::from_slice(&out)
            .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out)))
    }

    fn profile(fields: &[(&str, ProfileValue)]) -> PackedProfile {
        PackedProfile::new(&portrait_store::Profile {
            fields: fields
                .iter()
                .map(|(k, v)| ((*k).to_owned(), v.clone()))
                .collect(),
            version: 7,
            updated_at_ms: 1_700_000_000_123,
        })
    }

    #[test]
    fn a_read_answer_is_the_json_of_portrait_get_with_every_string_escaped() {
        let tricky = "q\"uote \\ back\tslash\n\u{1}\0 张三 🙂 </script>";
        let ann = profile(&[
            ("Tag_Profile_IM_Nick", ProfileValue::Str(tricky.into())),
            ("Tag_Profile_IM_Level", ProfileValue::Int(u64::MAX)),
            (
                "Tag_Profile_Custom_Hobby",
                ProfileValue::Str("chess".into()),
            ),
        ]);
        let tags = vec![
            Tag::Standard(StandardTag::Nick),
            Tag::Standard(StandardTag::Gender),
            Tag::Standard(StandardTag::Level),
            Tag::Standard(StandardTag::Image),
            Tag::Custom("Tag_Profile_Custom_Hobby".into()),
            Tag::Custom("Tag_Profile_Custom_Unset".into()),
        ];
        let mut answer = ReadAnswer {
            users: vec![("ann".into(), Some(ann)), ("gh\"ost".into(), None)],
            tags,
            versions: false,
        };
        let items = json!([
            {"Tag": "Tag_Profile_IM_Nick", "Value": tricky},
            {"Tag": "Tag_Profile_IM_Gender", "Value": "Gender_Type_Unknown"},
            {"Tag": "Tag_Profile_IM_Level", "Value": u64::MAX},
            {"Tag": "Tag_Profile_IM_Image", "Value": ""},
            {"Tag": "Tag_Profile_Custom_Hobby", "Value": "chess"},
        ]);
        let missing = json!({
            "To_Account": "gh\"ost",
            "ResultCode": 40003,
            "ResultInfo": item_result::profile_not_found().1,
        });
        assert_eq!(
            written(&answer),
            json!({
                "X": 1,
                "UserProfileItem": [
                    {"To_Account": "ann", "ProfileItem": items, "ResultCode": 0, "ResultInfo": ""},
                    missing,
                ],
                "Fail_Account": ["gh\"ost"],
            })
        );

        answer.versions = true;
        answer.users.pop();
        assert_eq!(
            written(&answer),
            json!({
                "X": 1,
                "UserProfileItem": [{
                    "To_Account": "ann", "ProfileItem": items, "ResultCode": 0, "ResultInfo": "",
                    "Version": 7, "UpdatedAtMs": 1_700_000_000_123_i64,
                }],
            })
        );
    }

    #[test]
    fn strings_are_written_byte_for_byte_as_serde_json_writes_them() {
        for s in [
            "",
            "plain",
            "a\"b",
            "a\\b",
            "\u{7f}\u{1f}\u{0}",
            "ünï 🙂",
            "/",
        ] {
            let mut out = Vec::new();
            json::str(&mut out, s);
            assert_eq!(out, serde_json::to_vec(s).unwrap(), "{s:?}");
        }
    }
}
