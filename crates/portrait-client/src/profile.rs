//! Typed profiles: [`Profile`] (what `portrait_get` and the client API's reads return, standard
//! fields typed) and [`ProfileUpdate`] (the items `portrait_set` / `update_my_profile` write).
//!
//! Values are checked by the server, not here (limits are per app); this module only maps the
//! vendor's `{Tag, Value}` lists to fields and back.

use std::collections::BTreeMap;

use portrait_core::profile::{AdminForbidType, AllowType, Gender};
use portrait_core::schema::{StandardTag, CUSTOM_PREFIX};
use portrait_core::wire::{ProfileItem, UserProfileItem};
use portrait_core::{ErrorCode, ProfileValue};
use serde_json::Value;

use crate::{ClientError, Result};

/// One user's profile. A standard field is `None` when it was not asked for (`TagList`);
/// never-set standard fields come back with their defaults, never-set custom fields are absent.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Profile {
    /// The UserID.
    pub user_id: String,
    /// `Tag_Profile_IM_Nick`.
    pub nick: Option<String>,
    /// `Tag_Profile_IM_Gender`.
    pub gender: Option<Gender>,
    /// `Tag_Profile_IM_BirthDay` (e.g. 19900101).
    pub birthday: Option<u32>,
    /// `Tag_Profile_IM_Location`.
    pub location: Option<String>,
    /// `Tag_Profile_IM_SelfSignature`.
    pub self_signature: Option<String>,
    /// `Tag_Profile_IM_AllowType`.
    pub allow_type: Option<AllowType>,
    /// `Tag_Profile_IM_Language`.
    pub language: Option<u32>,
    /// `Tag_Profile_IM_Image` (avatar URL).
    pub image: Option<String>,
    /// `Tag_Profile_IM_MsgSettings`.
    pub msg_settings: Option<u32>,
    /// `Tag_Profile_IM_AdminForbidType`.
    pub admin_forbid_type: Option<AdminForbidType>,
    /// `Tag_Profile_IM_Level`.
    pub level: Option<u32>,
    /// `Tag_Profile_IM_Role`.
    pub role: Option<u32>,
    /// `Tag_Profile_Custom_*` fields that are set, by full tag.
    pub custom: BTreeMap<String, ProfileValue>,
    /// The profile's version (its last change); client API reads only.
    pub version: Option<u64>,
    /// Unix milliseconds of its last change; client API reads only.
    pub updated_at_ms: Option<i64>,
}

fn text(tag: &str, v: &Value) -> Result<String> {
    v.as_str()
        .map(str::to_owned)
        .ok_or_else(|| ClientError::Decode(format!("{tag}: expected a string, got {v}")))
}

fn number(tag: &str, v: &Value) -> Result<u32> {
    v.as_u64()
        .and_then(|n| u32::try_from(n).ok())
        .ok_or_else(|| ClientError::Decode(format!("{tag}: expected a uint32, got {v}")))
}

fn choice<T>(tag: &str, v: &Value, parse: fn(&str) -> Option<T>) -> Result<T> {
    let s = text(tag, v)?;
    parse(&s).ok_or_else(|| ClientError::Decode(format!("{tag}: unknown value {s:?}")))
}

impl Profile {
    /// Reads one `UserProfileItem` of a successful account.
    ///
    /// # Errors
    /// [`ClientError::Decode`] for a value of the wrong type or an unknown tag.
    pub(crate) fn from_wire(item: UserProfileItem) -> Result<Profile> {
        let mut p = Profile {
            user_id: item.to_account,
            version: item.version,
            updated_at_ms: item.updated_at_ms,
            ..Profile::default()
        };
        for ProfileItem { tag, value: v } in item.profile_item.unwrap_or_default() {
            let t = tag.as_str();
            match StandardTag::from_name(t) {
                Some(StandardTag::Nick) => p.nick = Some(text(t, &v)?),
                Some(StandardTag::Gender) => p.gender = Some(choice(t, &v, Gender::parse)?),
                Some(StandardTag::BirthDay) => p.birthday = Some(number(t, &v)?),
                Some(StandardTag::Location) => p.location = Some(text(t, &v)?),
                Some(StandardTag::SelfSignature) => p.self_signature = Some(text(t, &v)?),
                Some(StandardTag::AllowType) => {
                    p.allow_type = Some(choice(t, &v, AllowType::parse)?)
                }
                Some(StandardTag::Language) => p.language = Some(number(t, &v)?),
                Some(StandardTag::Image) => p.image = Some(text(t, &v)?),
                Some(StandardTag::MsgSettings) => p.msg_settings = Some(number(t, &v)?),
                Some(StandardTag::AdminForbidType) => {
                    p.admin_forbid_type = Some(choice(t, &v, AdminForbidType::parse)?)
                }
                Some(StandardTag::Level) => p.level = Some(number(t, &v)?),
                Some(StandardTag::Role) => p.role = Some(number(t, &v)?),
                None if t.starts_with(CUSTOM_PREFIX) => {
                    let value = serde_json::from_value(v.clone()).map_err(|_| {
                        ClientError::Decode(format!("{t}: expected a string or number, got {v}"))
                    })?;
                    p.custom.insert(tag, value);
                }
                None => return Err(ClientError::Decode(format!("unknown tag {t:?}"))),
            }
        }
        Ok(p)
    }
}

/// Items to write to one profile, applied atomically by the server. Build it field by field:
///
/// ```
/// use portrait_client::{Gender, ProfileUpdate};
/// let update = ProfileUpdate::new()
///     .nick("Alice")
///     .gender(Gender::Female)
///     .custom("Tag_Profile_Custom_Hobby", "chess");
/// assert_eq!(update.items().len(), 3);
/// ```
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ProfileUpdate {
    items: Vec<ProfileItem>,
}

impl ProfileUpdate {
    /// No items yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Any tag with a JSON value (the server validates it).
    pub fn item(mut self, tag: impl Into<String>, value: impl Into<Value>) -> Self {
        self.items.push(ProfileItem {
            tag: tag.into(),
            value: value.into(),
        });
        self
    }

    fn standard(self, tag: StandardTag, value: impl Into<Value>) -> Self {
        self.item(tag.name(), value)
    }

    /// `Tag_Profile_IM_Nick`.
    pub fn nick(self, v: impl Into<String>) -> Self {
        self.standard(StandardTag::Nick, v.into())
    }
    /// `Tag_Profile_IM_Gender`.
    pub fn gender(self, v: Gender) -> Self {
        self.standard(StandardTag::Gender, v.as_str())
    }
    /// `Tag_Profile_IM_BirthDay`.
    pub fn birthday(self, v: u32) -> Self {
        self.standard(StandardTag::BirthDay, v)
    }
    /// `Tag_Profile_IM_Location`.
    pub fn location(self, v: impl Into<String>) -> Self {
        self.standard(StandardTag::Location, v.into())
    }
    /// `Tag_Profile_IM_SelfSignature`.
    pub fn self_signature(self, v: impl Into<String>) -> Self {
        self.standard(StandardTag::SelfSignature, v.into())
    }
    /// `Tag_Profile_IM_AllowType`.
    pub fn allow_type(self, v: AllowType) -> Self {
        self.standard(StandardTag::AllowType, v.as_str())
    }
    /// `Tag_Profile_IM_Language`.
    pub fn language(self, v: u32) -> Self {
        self.standard(StandardTag::Language, v)
    }
    /// `Tag_Profile_IM_Image` (avatar URL).
    pub fn image(self, v: impl Into<String>) -> Self {
        self.standard(StandardTag::Image, v.into())
    }
    /// `Tag_Profile_IM_MsgSettings`.
    pub fn msg_settings(self, v: u32) -> Self {
        self.standard(StandardTag::MsgSettings, v)
    }
    /// `Tag_Profile_IM_AdminForbidType` (admins only).
    pub fn admin_forbid_type(self, v: AdminForbidType) -> Self {
        self.standard(StandardTag::AdminForbidType, v.as_str())
    }
    /// `Tag_Profile_IM_Level`.
    pub fn level(self, v: u32) -> Self {
        self.standard(StandardTag::Level, v)
    }
    /// `Tag_Profile_IM_Role`.
    pub fn role(self, v: u32) -> Self {
        self.standard(StandardTag::Role, v)
    }
    /// A custom field, by full tag (`Tag_Profile_Custom_Hobby`): a string or an integer.
    pub fn custom(self, tag: impl Into<String>, v: impl Into<Value>) -> Self {
        self.item(tag, v)
    }

    /// The items, in the order given.
    pub fn items(&self) -> &[ProfileItem] {
        &self.items
    }
}

/// One account of a [`crate::Admin::multiaccount_import`] or [`crate::Admin::account_import`]:
/// a UserID with an optional initial nickname and avatar.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ImportAccount {
    /// The UserID.
    #[serde(rename = "UserID")]
    pub user_id: String,
    /// Lands in `Tag_Profile_IM_Nick`.
    #[serde(rename = "Nick", skip_serializing_if = "Option::is_none")]
    pub nick: Option<String>,
    /// Lands in `Tag_Profile_IM_Image`.
    #[serde(rename = "FaceUrl", skip_serializing_if = "Option::is_none")]
    pub face_url: Option<String>,
}

impl ImportAccount {
    /// Just the UserID.
    pub fn new(user_id: impl Into<String>) -> Self {
        Self {
            user_id: user_id.into(),
            nick: None,
            face_url: None,
        }
    }
    /// With a nickname.
    pub fn nick(mut self, nick: impl Into<String>) -> Self {
        self.nick = Some(nick.into());
        self
    }
    /// With an avatar URL.
    pub fn face_url(mut self, url: impl Into<String>) -> Self {
        self.face_url = Some(url.into());
        self
    }
}

/// The answer of a profile read: the profiles found, in request order, and the accounts that
/// failed (e.g. 40003: never imported).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Profiles {
    /// Profiles of the accounts that were read.
    pub found: Vec<Profile>,
    /// Accounts that could not be read.
    pub failed: Vec<AccountFailure>,
}

/// A per-account failure of a batch call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountFailure {
    /// The account.
    pub user_id: String,
    /// The vendor code (e.g. 40003, 70107).
    pub code: ErrorCode,
    /// The vendor text.
    pub info: String,
}

impl Profiles {
    pub(crate) fn from_wire(items: Vec<UserProfileItem>) -> Result<Profiles> {
        let mut out = Profiles::default();
        for item in items {
            if item.result_code.is_ok() {
                out.found.push(Profile::from_wire(item)?);
            } else {
                out.failed.push(AccountFailure {
                    user_id: item.to_account,
                    code: item.result_code,
                    info: item.result_info,
                });
            }
        }
        Ok(out)
    }

    /// The profile of `user_id`, if it was read.
    pub fn get(&self, user_id: &str) -> Option<&Profile> {
        self.found.iter().find(|p| p.user_id == user_id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_wire_profile_maps_to_typed_fields_and_custom_values() {
        let item: UserProfileItem = serde_json::from_value(json!({
            "To_Account": "alice",
            "ProfileItem": [
                {"Tag": "Tag_Profile_IM_Nick", "Value": "Al"},
                {"Tag": "Tag_Profile_IM_Gender", "Value": "Gender_Type_Female"},
                {"Tag": "Tag_Profile_IM_Level", "Value": 7},
                {"Tag": "Tag_Profile_Custom_Hobby", "Value": "chess"},
                {"Tag": "Tag_Profile_Custom_Score", "Value": 12}
            ],
            "ResultCode": 0, "ResultInfo": "", "Version": 3
        }))
        .unwrap();
        let p = Profile::from_wire(item).unwrap();
        assert_eq!(p.nick.as_deref(), Some("Al"));
        assert_eq!(p.gender, Some(Gender::Female));
        assert_eq!(p.level, Some(7));
        assert_eq!(p.image, None);
        assert_eq!(p.version, Some(3));
        assert_eq!(
            p.custom["Tag_Profile_Custom_Hobby"],
            ProfileValue::Str("chess".into())
        );
        assert_eq!(p.custom["Tag_Profile_Custom_Score"], ProfileValue::Int(12));
    }

    #[test]
    fn a_value_of_the_wrong_type_is_a_decode_error() {
        let item: UserProfileItem = serde_json::from_value(json!({
            "To_Account": "a", "ResultCode": 0, "ResultInfo": "",
            "ProfileItem": [{"Tag": "Tag_Profile_IM_Level", "Value": "high"}]
        }))
        .unwrap();
        assert!(matches!(
            Profile::from_wire(item),
            Err(ClientError::Decode(_))
        ));
    }
}
