//! The profile schema: which tags exist, what values they take, who may read and write them.
//!
//! Standard fields (spec §1.2) are fixed: 12 `Tag_Profile_IM_*` tags, each a bounded string, an
//! enum string, or a uint32. Custom fields (spec §1.3) are declared per app, named by the rule of
//! [`custom_name`] (`Tag_Profile_Custom_Test1`, legacy `Tag_Profile_Custom_888888_Test`), string
//! (≤ its declared byte limit, at most 500) or integer (uint64), with read and write permissions
//! for users and/or admins. Byte limits count UTF-8 bytes.
//!
//! Parsing a `{Tag, Value}` item goes through [`Schema::parse_item`], which returns a typed
//! ([`Tag`], [`ProfileValue`]) or a [`FieldError`] naming the tag. This is the only place limits,
//! enum values and permissions are checked.

use std::collections::HashMap;
use std::fmt;

use aho_corasick::AhoCorasick;
use serde::{Deserialize, Serialize};

use crate::ErrorCode;

pub mod custom_name;

pub use custom_name::{check_custom_name, CustomName, CustomNameError, CUSTOM_NAME_RULE};

/// Prefix of every standard tag.
pub const STANDARD_PREFIX: &str = "Tag_Profile_IM_";
/// Prefix of every custom tag.
pub const CUSTOM_PREFIX: &str = "Tag_Profile_Custom_";
/// Largest byte limit a string field may have (vendor: "string, at most 500 bytes").
pub const MAX_STRING_BYTES: usize = 500;
/// Most custom fields an app may declare (vendor console limit).
pub const MAX_CUSTOM_FIELDS: usize = 20;
/// Longest custom key after the prefix, in bytes (see [`custom_name`]).
pub const MAX_CUSTOM_KEYWORD: usize = custom_name::MAX_CUSTOM_KEY;

/// One of the 12 standard profile fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[allow(missing_docs)]
pub enum StandardTag {
    Nick,
    Gender,
    BirthDay,
    Location,
    SelfSignature,
    AllowType,
    Language,
    Image,
    MsgSettings,
    AdminForbidType,
    Level,
    Role,
}

/// What values a standard field takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StandardKind {
    /// A UTF-8 string of at most `max` bytes.
    Text {
        /// Byte limit.
        max: usize,
    },
    /// One of a fixed set of strings; the first is the default.
    Enum(&'static [&'static str]),
    /// An unsigned 32-bit integer; default 0.
    U32,
}

/// Values of `Tag_Profile_IM_Gender`; the first is the default.
pub const GENDER_VALUES: &[&str] = &[
    "Gender_Type_Unknown",
    "Gender_Type_Female",
    "Gender_Type_Male",
];
/// Values of `Tag_Profile_IM_AllowType`; the first is the default.
pub const ALLOW_TYPE_VALUES: &[&str] = &[
    "AllowType_Type_NeedConfirm",
    "AllowType_Type_AllowAny",
    "AllowType_Type_DenyAny",
];
/// Values of `Tag_Profile_IM_AdminForbidType`; the first is the default.
pub const ADMIN_FORBID_VALUES: &[&str] = &["AdminForbid_Type_None", "AdminForbid_Type_SendOut"];
/// Byte limit of `Tag_Profile_IM_Location` (spec §1.2: 16, the current vendor figure).
pub const LOCATION_MAX_BYTES: usize = 16;

impl StandardTag {
    /// All standard tags, in the vendor's table order.
    pub const ALL: [StandardTag; 12] = [
        StandardTag::Nick,
        StandardTag::Gender,
        StandardTag::BirthDay,
        StandardTag::Location,
        StandardTag::SelfSignature,
        StandardTag::AllowType,
        StandardTag::Language,
        StandardTag::Image,
        StandardTag::MsgSettings,
        StandardTag::AdminForbidType,
        StandardTag::Level,
        StandardTag::Role,
    ];

    /// The full wire name, e.g. `Tag_Profile_IM_Nick`.
    pub fn name(self) -> &'static str {
        match self {
            StandardTag::Nick => "Tag_Profile_IM_Nick",
            StandardTag::Gender => "Tag_Profile_IM_Gender",
            StandardTag::BirthDay => "Tag_Profile_IM_BirthDay",
            StandardTag::Location => "Tag_Profile_IM_Location",
            StandardTag::SelfSignature => "Tag_Profile_IM_SelfSignature",
            StandardTag::AllowType => "Tag_Profile_IM_AllowType",
            StandardTag::Language => "Tag_Profile_IM_Language",
            StandardTag::Image => "Tag_Profile_IM_Image",
            StandardTag::MsgSettings => "Tag_Profile_IM_MsgSettings",
            StandardTag::AdminForbidType => "Tag_Profile_IM_AdminForbidType",
            StandardTag::Level => "Tag_Profile_IM_Level",
            StandardTag::Role => "Tag_Profile_IM_Role",
        }
    }

    /// Looks a wire name up (case-sensitive, as the vendor's parameter names are).
    pub fn from_name(name: &str) -> Option<StandardTag> {
        StandardTag::ALL.into_iter().find(|t| t.name() == name)
    }

    /// What values the field takes.
    pub fn kind(self) -> StandardKind {
        match self {
            StandardTag::Nick | StandardTag::SelfSignature | StandardTag::Image => {
                StandardKind::Text {
                    max: MAX_STRING_BYTES,
                }
            }
            StandardTag::Location => StandardKind::Text {
                max: LOCATION_MAX_BYTES,
            },
            StandardTag::Gender => StandardKind::Enum(GENDER_VALUES),
            StandardTag::AllowType => StandardKind::Enum(ALLOW_TYPE_VALUES),
            StandardTag::AdminForbidType => StandardKind::Enum(ADMIN_FORBID_VALUES),
            StandardTag::BirthDay
            | StandardTag::Language
            | StandardTag::MsgSettings
            | StandardTag::Level
            | StandardTag::Role => StandardKind::U32,
        }
    }

    /// The value `portrait_get` returns for a field that was never set.
    pub fn default_value(self) -> ProfileValue {
        match self.kind() {
            StandardKind::Text { .. } => ProfileValue::Str(String::new()),
            StandardKind::Enum(values) => ProfileValue::Str(values[0].to_owned()),
            StandardKind::U32 => ProfileValue::Int(0),
        }
    }

    /// Whether ordinary users may write this field from a client (only `AdminForbidType` is
    /// admin-only, spec §1.2).
    pub fn user_writable(self) -> bool {
        self != StandardTag::AdminForbidType
    }
}

/// A profile tag: standard or custom.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Tag {
    /// A `Tag_Profile_IM_*` field.
    Standard(StandardTag),
    /// A declared `Tag_Profile_Custom_*` field, by full name.
    Custom(String),
}

impl Tag {
    /// The full wire name.
    pub fn name(&self) -> &str {
        match self {
            Tag::Standard(t) => t.name(),
            Tag::Custom(n) => n,
        }
    }
}

impl fmt::Display for Tag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A stored profile value: a string or an unsigned integer, serialized as the bare JSON value.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum ProfileValue {
    /// An integer (uint32 standard fields, integer custom fields).
    Int(u64),
    /// A string (text and enum fields, string custom fields).
    Str(String),
}

impl ProfileValue {
    /// The value as JSON.
    pub fn to_json(&self) -> serde_json::Value {
        match self {
            ProfileValue::Int(n) => serde_json::Value::from(*n),
            ProfileValue::Str(s) => serde_json::Value::from(s.as_str()),
        }
    }
}

/// Who is reading or writing: an app admin (REST API) or the user themself (client API).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Actor {
    /// An app admin identifier.
    Admin,
    /// An ordinary user acting on a profile.
    User,
}

/// A read or write permission: which actors it allows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Perms {
    /// Users (client SDKs) are allowed.
    pub user: bool,
    /// App admins (REST API) are allowed.
    pub admin: bool,
}

impl Perms {
    /// Both users and admins.
    pub const ALL: Perms = Perms {
        user: true,
        admin: true,
    };

    /// Whether `actor` is allowed.
    pub fn allows(self, actor: Actor) -> bool {
        match actor {
            Actor::Admin => self.admin,
            Actor::User => self.user,
        }
    }
}

/// The value type of a custom field.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CustomKind {
    /// UTF-8 string with a byte limit.
    String,
    /// Unsigned 64-bit integer.
    Integer,
}

/// A custom field declared by an app.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CustomField {
    name: String,
    kind: CustomKind,
    max_bytes: usize,
    read: Perms,
    write: Perms,
}

/// Why an app's schema declaration is invalid (a configuration error, not a request error).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SchemaError {
    /// The name breaks the rule of [`custom_name`].
    #[error("custom field {0:?}: {1}; a name is {rule}", rule = CUSTOM_NAME_RULE)]
    BadName(String, CustomNameError),
    /// The byte limit is 0 or over 500.
    #[error("custom field {0:?}: max_length must be between 1 and 500 bytes")]
    BadLimit(String),
    /// Read or write permission allows nobody.
    #[error(
        "custom field {0:?}: read and write permission must each allow at least one of user, admin"
    )]
    NoPermission(String),
    /// Declared twice.
    #[error("custom field {0:?} is declared twice")]
    Duplicate(String),
    /// More than 20 fields.
    #[error("an app may declare at most 20 custom fields, found {0}")]
    TooMany(usize),
    /// The sensitive-word list cannot be compiled.
    #[error("sensitive words: {0}")]
    Words(String),
}

impl CustomField {
    /// Declares a custom field.
    ///
    /// # Errors
    /// A [`SchemaError`] naming the field if the name, limit or permissions are invalid.
    pub fn new(
        name: &str,
        kind: CustomKind,
        max_bytes: usize,
        read: Perms,
        write: Perms,
    ) -> Result<Self, SchemaError> {
        check_custom_name(name).map_err(|e| SchemaError::BadName(name.to_owned(), e))?;
        if kind == CustomKind::String && !(1..=MAX_STRING_BYTES).contains(&max_bytes) {
            return Err(SchemaError::BadLimit(name.to_owned()));
        }
        if !(read.user || read.admin) || !(write.user || write.admin) {
            return Err(SchemaError::NoPermission(name.to_owned()));
        }
        Ok(Self {
            name: name.to_owned(),
            kind,
            max_bytes,
            read,
            write,
        })
    }

    /// Full tag name.
    pub fn name(&self) -> &str {
        &self.name
    }
    /// Value type.
    pub fn kind(&self) -> CustomKind {
        self.kind
    }
    /// Byte limit (strings only).
    pub fn max_bytes(&self) -> usize {
        self.max_bytes
    }
    /// Read permission.
    pub fn read(&self) -> Perms {
        self.read
    }
    /// Write permission.
    pub fn write(&self) -> Perms {
        self.write
    }
}

/// Why one profile item was refused. Every variant names the tag; [`FieldError::code`] gives the
/// vendor code.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FieldError {
    /// Not a standard tag and not declared by the app.
    #[error("{tag}: tag does not exist")]
    UnknownTag {
        /// The tag as sent.
        tag: String,
    },
    /// The actor may not read this field.
    #[error("{tag}: no permission to read this field")]
    NoReadPermission {
        /// The tag.
        tag: String,
    },
    /// The actor may not write this field.
    #[error("{tag}: no permission to write this field")]
    NoWritePermission {
        /// The tag.
        tag: String,
    },
    /// The string is longer than the field's byte limit.
    #[error("{tag}: value is {len} bytes, the limit is {max} bytes")]
    TooLong {
        /// The tag.
        tag: String,
        /// The limit.
        max: usize,
        /// The value's length in bytes.
        len: usize,
    },
    /// The value has the right type but is not allowed (enum, range).
    #[error("{tag}: invalid value ({reason})")]
    InvalidValue {
        /// The tag.
        tag: String,
        /// What is allowed.
        reason: String,
    },
    /// The value has the wrong JSON type.
    #[error("{tag}: value must be {expected}")]
    WrongType {
        /// The tag.
        tag: String,
        /// The expected type.
        expected: &'static str,
    },
    /// The value contains a word on the app's sensitive-word list.
    #[error("{tag}: value contains a sensitive word")]
    SensitiveWord {
        /// The tag.
        tag: String,
    },
}

impl FieldError {
    /// The vendor error code for this failure.
    pub fn code(&self) -> ErrorCode {
        match self {
            FieldError::UnknownTag { .. } => ErrorCode::PROFILE_UNKNOWN_TAG,
            FieldError::NoReadPermission { .. } => ErrorCode::PROFILE_NO_READ_PERMISSION,
            FieldError::NoWritePermission { .. } => ErrorCode::PROFILE_NO_WRITE_PERMISSION,
            FieldError::TooLong { .. } => ErrorCode::PROFILE_VALUE_TOO_LONG,
            FieldError::InvalidValue { .. } => ErrorCode::PROFILE_INVALID_VALUE,
            FieldError::WrongType { .. } => ErrorCode::PROFILE_WRONG_TYPE,
            FieldError::SensitiveWord { .. } => ErrorCode::PROFILE_SENSITIVE_WORD,
        }
    }
}

/// Case-insensitive (for ASCII) substring filter over an app's sensitive-word list.
#[derive(Debug, Clone)]
pub struct WordFilter(Option<AhoCorasick>);

impl WordFilter {
    /// Compiles a word list; empty words are ignored.
    ///
    /// # Errors
    /// [`SchemaError::Words`] if the automaton cannot be built.
    pub fn new<S: AsRef<str>>(words: &[S]) -> Result<Self, SchemaError> {
        let words: Vec<&str> = words
            .iter()
            .map(AsRef::as_ref)
            .filter(|w| !w.is_empty())
            .collect();
        if words.is_empty() {
            return Ok(Self(None));
        }
        AhoCorasick::builder()
            .ascii_case_insensitive(true)
            .build(words)
            .map(|ac| Self(Some(ac)))
            .map_err(|e| SchemaError::Words(e.to_string()))
    }

    /// Whether `text` contains a listed word.
    pub fn matches(&self, text: &str) -> bool {
        self.0.as_ref().is_some_and(|ac| ac.is_match(text))
    }
}

/// An app's profile schema: its custom fields and sensitive words.
#[derive(Debug, Clone)]
pub struct Schema {
    custom: HashMap<String, CustomField>,
    words: WordFilter,
}

impl Default for Schema {
    fn default() -> Self {
        Self {
            custom: HashMap::new(),
            words: WordFilter(None),
        }
    }
}

impl Schema {
    /// Builds a schema from custom field declarations and a sensitive-word list.
    ///
    /// # Errors
    /// Too many fields, duplicates, or an uncompilable word list.
    pub fn new<S: AsRef<str>>(
        custom: Vec<CustomField>,
        sensitive_words: &[S],
    ) -> Result<Self, SchemaError> {
        if custom.len() > MAX_CUSTOM_FIELDS {
            return Err(SchemaError::TooMany(custom.len()));
        }
        let mut map = HashMap::new();
        for f in custom {
            if let Some(dup) = map.insert(f.name.clone(), f) {
                return Err(SchemaError::Duplicate(dup.name));
            }
        }
        Ok(Self {
            custom: map,
            words: WordFilter::new(sensitive_words)?,
        })
    }

    /// The declared custom fields.
    pub fn custom_fields(&self) -> impl Iterator<Item = &CustomField> {
        self.custom.values()
    }

    /// Resolves a tag name to a [`Tag`].
    ///
    /// # Errors
    /// [`FieldError::UnknownTag`] for anything not standard and not declared.
    pub fn resolve(&self, name: &str) -> Result<Tag, FieldError> {
        if let Some(t) = StandardTag::from_name(name) {
            return Ok(Tag::Standard(t));
        }
        if self.custom.contains_key(name) {
            return Ok(Tag::Custom(name.to_owned()));
        }
        Err(FieldError::UnknownTag {
            tag: name.to_owned(),
        })
    }

    /// Resolves a tag for reading by `actor`, checking read permission.
    ///
    /// # Errors
    /// [`FieldError::UnknownTag`] or [`FieldError::NoReadPermission`].
    pub fn resolve_readable(&self, name: &str, actor: Actor) -> Result<Tag, FieldError> {
        let tag = self.resolve(name)?;
        if let Tag::Custom(n) = &tag {
            if !self.custom[n].read.allows(actor) {
                return Err(FieldError::NoReadPermission { tag: n.clone() });
            }
        }
        Ok(tag)
    }

    /// Whether `actor` may read `tag` (used to filter whole-profile reads).
    pub fn can_read(&self, tag: &Tag, actor: Actor) -> bool {
        match tag {
            Tag::Standard(_) => true,
            Tag::Custom(n) => self.custom.get(n).is_some_and(|f| f.read.allows(actor)),
        }
    }

    /// Parses one `{Tag, Value}` item written by `actor`: resolves the tag, checks write
    /// permission, type, limit, enum values and sensitive words.
    ///
    /// # Errors
    /// A [`FieldError`] naming the tag.
    pub fn parse_item(
        &self,
        name: &str,
        value: &serde_json::Value,
        actor: Actor,
    ) -> Result<(Tag, ProfileValue), FieldError> {
        let tag = self.resolve(name)?;
        let tag_s = || name.to_owned();
        let value = match &tag {
            Tag::Standard(std) => {
                if actor == Actor::User && !std.user_writable() {
                    return Err(FieldError::NoWritePermission { tag: tag_s() });
                }
                match std.kind() {
                    StandardKind::Text { max } => ProfileValue::Str(self.text(name, value, max)?),
                    StandardKind::Enum(values) => {
                        let s = value.as_str().ok_or_else(|| FieldError::WrongType {
                            tag: tag_s(),
                            expected: "a string",
                        })?;
                        if !values.contains(&s) {
                            return Err(FieldError::InvalidValue {
                                tag: tag_s(),
                                reason: format!("must be one of {}", values.join(", ")),
                            });
                        }
                        ProfileValue::Str(s.to_owned())
                    }
                    StandardKind::U32 => {
                        let n = integer(name, value)?;
                        if n > u64::from(u32::MAX) {
                            return Err(FieldError::InvalidValue {
                                tag: tag_s(),
                                reason: "must fit in an unsigned 32-bit integer".into(),
                            });
                        }
                        ProfileValue::Int(n)
                    }
                }
            }
            Tag::Custom(n) => {
                let f = &self.custom[n];
                if !f.write.allows(actor) {
                    return Err(FieldError::NoWritePermission { tag: tag_s() });
                }
                match f.kind {
                    CustomKind::String => ProfileValue::Str(self.text(name, value, f.max_bytes)?),
                    CustomKind::Integer => ProfileValue::Int(integer(name, value)?),
                }
            }
        };
        Ok((tag, value))
    }

    /// Checks a free-text value written outside `portrait_set` (e.g. `account_import`'s Nick).
    ///
    /// # Errors
    /// [`FieldError::TooLong`] or [`FieldError::SensitiveWord`].
    pub fn check_text(&self, tag: StandardTag, s: &str) -> Result<(), FieldError> {
        let max = match tag.kind() {
            StandardKind::Text { max } => max,
            _ => MAX_STRING_BYTES,
        };
        self.text(tag.name(), &serde_json::Value::from(s), max)
            .map(drop)
    }

    fn text(
        &self,
        name: &str,
        value: &serde_json::Value,
        max: usize,
    ) -> Result<String, FieldError> {
        let s = value.as_str().ok_or_else(|| FieldError::WrongType {
            tag: name.to_owned(),
            expected: "a string",
        })?;
        if s.len() > max {
            return Err(FieldError::TooLong {
                tag: name.to_owned(),
                max,
                len: s.len(),
            });
        }
        if self.words.matches(s) {
            return Err(FieldError::SensitiveWord {
                tag: name.to_owned(),
            });
        }
        Ok(s.to_owned())
    }
}

/// Largest whole number a JSON number in float form (`1.0`, `1e2`) is read as exactly: 2^53,
/// JavaScript's safe-integer bound. serde_json reads such numbers as `f64`, which cannot tell
/// `9007199254740993.0` from `9007199254740992.0`.
const MAX_EXACT_FLOAT: f64 = 9_007_199_254_740_992.0;

/// An unsigned integer value. JSON does not tell integers from floats, so any number whose value
/// is a whole number counts: `1`, `1.0`, `1e2` and `-0` are 1, 1, 100 and 0.
///
/// - A negative whole number or one beyond `u64` is an invalid value (40605), as for integers.
/// - A number with a fractional part (`1.5`, `1e-3`) is the wrong type (40610), as are strings,
///   booleans and the rest.
/// - A whole number in float form beyond 2^53 (and within `u64`) is the wrong type too: a double
///   cannot hold it exactly, so it must be written as a plain integer.
fn integer(name: &str, value: &serde_json::Value) -> Result<u64, FieldError> {
    let invalid = |reason: &str| FieldError::InvalidValue {
        tag: name.to_owned(),
        reason: reason.into(),
    };
    let wrong_type = |expected: &'static str| FieldError::WrongType {
        tag: name.to_owned(),
        expected,
    };
    let serde_json::Value::Number(n) = value else {
        return Err(wrong_type("an unsigned integer"));
    };
    if let Some(u) = n.as_u64() {
        return Ok(u);
    }
    if n.is_i64() {
        return Err(invalid("must not be negative"));
    }
    // A float form: serde_json's f64 for any number with a fraction, an exponent, `-0`, or a
    // whole number beyond the 64-bit integer ranges.
    let f = n.as_f64().unwrap_or(f64::NAN);
    if !f.is_finite() || f.fract() != 0.0 {
        return Err(wrong_type("an unsigned integer"));
    }
    if f == 0.0 {
        return Ok(0); // `-0`, `0.0`, `0e5`
    }
    if f < 0.0 {
        return Err(invalid("must not be negative"));
    }
    // 2^64 is exactly representable; anything at or above it does not fit.
    if f >= 18_446_744_073_709_551_616.0 {
        return Err(invalid("too large for an unsigned 64-bit integer"));
    }
    if f > MAX_EXACT_FLOAT {
        return Err(wrong_type(
            "an unsigned integer (beyond 2^53 write it without a fraction or exponent)",
        ));
    }
    // Whole, positive and at most 2^53: the conversion is exact.
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    Ok(f as u64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn schema() -> Schema {
        Schema::new(
            vec![
                CustomField::new(
                    "Tag_Profile_Custom_Hobby",
                    CustomKind::String,
                    8,
                    Perms::ALL,
                    Perms::ALL,
                )
                .unwrap(),
                CustomField::new(
                    "Tag_Profile_Custom_Score",
                    CustomKind::Integer,
                    0,
                    Perms::ALL,
                    Perms {
                        user: false,
                        admin: true,
                    },
                )
                .unwrap(),
                CustomField::new(
                    "Tag_Profile_Custom_Secret",
                    CustomKind::String,
                    500,
                    Perms {
                        user: false,
                        admin: true,
                    },
                    Perms::ALL,
                )
                .unwrap(),
            ],
            &["badword", "敏感"],
        )
        .unwrap()
    }

    #[test]
    fn every_standard_tag_round_trips_through_its_name() {
        for t in StandardTag::ALL {
            assert_eq!(StandardTag::from_name(t.name()), Some(t));
            assert!(t.name().starts_with(STANDARD_PREFIX));
        }
        assert_eq!(
            StandardTag::from_name("Tag_Profile_IM_nick"),
            None,
            "tag names are case-sensitive"
        );
    }

    #[test]
    fn byte_limits_count_utf8_bytes() {
        let s = schema();
        // 5 CJK characters = 15 bytes fit Location (16); 6 = 18 bytes do not.
        assert!(s
            .parse_item(
                "Tag_Profile_IM_Location",
                &json!("深圳南山区科"[..15]),
                Actor::Admin
            )
            .is_ok());
        let err = s
            .parse_item(
                "Tag_Profile_IM_Location",
                &json!("深圳南山区科"),
                Actor::Admin,
            )
            .unwrap_err();
        assert_eq!(
            err,
            FieldError::TooLong {
                tag: "Tag_Profile_IM_Location".into(),
                max: 16,
                len: 18
            }
        );
        assert_eq!(err.code().0, 40601);
        assert!(s
            .parse_item("Tag_Profile_IM_Nick", &json!("a".repeat(500)), Actor::Admin)
            .is_ok());
        assert_eq!(
            s.parse_item("Tag_Profile_IM_Nick", &json!("a".repeat(501)), Actor::Admin)
                .unwrap_err()
                .code()
                .0,
            40601
        );
        assert_eq!(
            s.parse_item(
                "Tag_Profile_Custom_Hobby",
                &json!("123456789"),
                Actor::Admin
            )
            .unwrap_err()
            .code()
            .0,
            40601
        );
    }

    #[test]
    fn enum_and_integer_fields_check_value_and_type() {
        let s = schema();
        assert_eq!(
            s.parse_item(
                "Tag_Profile_IM_Gender",
                &json!("Gender_Type_Other"),
                Actor::Admin
            )
            .unwrap_err()
            .code()
            .0,
            40605
        );
        assert_eq!(
            s.parse_item("Tag_Profile_IM_Gender", &json!(1), Actor::Admin)
                .unwrap_err()
                .code()
                .0,
            40610
        );
        assert_eq!(
            s.parse_item("Tag_Profile_IM_Level", &json!(-1), Actor::Admin)
                .unwrap_err()
                .code()
                .0,
            40605
        );
        assert_eq!(
            s.parse_item(
                "Tag_Profile_IM_Level",
                &json!(4_294_967_296u64),
                Actor::Admin
            )
            .unwrap_err()
            .code()
            .0,
            40605
        );
        assert_eq!(
            s.parse_item("Tag_Profile_IM_Level", &json!("3"), Actor::Admin)
                .unwrap_err()
                .code()
                .0,
            40610
        );
        assert_eq!(
            s.parse_item("Tag_Profile_IM_Level", &json!(1.5), Actor::Admin)
                .unwrap_err()
                .code()
                .0,
            40610
        );
        assert_eq!(
            s.parse_item(
                "Tag_Profile_IM_Level",
                &json!(4_294_967_295u64),
                Actor::Admin
            )
            .unwrap()
            .1,
            ProfileValue::Int(4_294_967_295)
        );
        assert_eq!(
            s.parse_item("Tag_Profile_Custom_Score", &json!(u64::MAX), Actor::Admin)
                .unwrap()
                .1,
            ProfileValue::Int(u64::MAX)
        );
    }

    #[test]
    fn permissions_are_checked_per_actor() {
        let s = schema();
        assert_eq!(
            s.parse_item(
                "Tag_Profile_IM_AdminForbidType",
                &json!("AdminForbid_Type_SendOut"),
                Actor::User
            )
            .unwrap_err()
            .code()
            .0,
            40008
        );
        assert!(s
            .parse_item(
                "Tag_Profile_IM_AdminForbidType",
                &json!("AdminForbid_Type_SendOut"),
                Actor::Admin
            )
            .is_ok());
        assert_eq!(
            s.parse_item("Tag_Profile_Custom_Score", &json!(1), Actor::User)
                .unwrap_err()
                .code()
                .0,
            40008
        );
        assert_eq!(
            s.resolve_readable("Tag_Profile_Custom_Secret", Actor::User)
                .unwrap_err()
                .code()
                .0,
            40007
        );
        assert!(s
            .resolve_readable("Tag_Profile_Custom_Secret", Actor::Admin)
            .is_ok());
        assert_eq!(
            s.resolve_readable("Tag_Profile_Custom_Nope", Actor::Admin)
                .unwrap_err()
                .code()
                .0,
            40009
        );
    }

    #[test]
    fn sensitive_words_match_case_insensitively_and_in_any_script() {
        let s = schema();
        assert_eq!(
            s.parse_item(
                "Tag_Profile_IM_Nick",
                &json!("a BadWord here"),
                Actor::Admin
            )
            .unwrap_err()
            .code()
            .0,
            40005
        );
        assert_eq!(
            s.parse_item(
                "Tag_Profile_IM_SelfSignature",
                &json!("很敏感的"),
                Actor::Admin
            )
            .unwrap_err()
            .code()
            .0,
            40005
        );
        assert!(s
            .parse_item("Tag_Profile_IM_Nick", &json!("good"), Actor::Admin)
            .is_ok());
    }

    #[test]
    fn custom_field_declarations_are_validated() {
        let ok = |n: &str| CustomField::new(n, CustomKind::String, 10, Perms::ALL, Perms::ALL);
        assert!(ok("Tag_Profile_Custom_Abcdefgh").is_ok());
        assert!(ok("Tag_Profile_Custom_Abcdefghi").is_err(), "9 letters");
        // The vendor's documents use digits and the legacy numbered form (seeds 000, 003).
        assert!(ok("Tag_Profile_Custom_Ab1").is_ok(), "digit");
        assert!(ok("Tag_Profile_Custom_888888_Test").is_ok(), "legacy form");
        assert!(ok("Tag_Profile_Custom_1Ab").is_err(), "starts with a digit");
        assert!(ok("Tag_Profile_Custom_").is_err());
        assert!(ok("Tag_Profile_IM_Nick").is_err());
        let msg = ok("Tag_Profile_Custom_Abcdefghi").unwrap_err().to_string();
        assert!(
            msg.contains("1 to 8") && msg.contains("888888_Test"),
            "{msg}"
        );
        assert!(CustomField::new(
            "Tag_Profile_Custom_A",
            CustomKind::String,
            501,
            Perms::ALL,
            Perms::ALL
        )
        .is_err());
        assert!(CustomField::new(
            "Tag_Profile_Custom_A",
            CustomKind::String,
            5,
            Perms::default(),
            Perms::ALL
        )
        .is_err());
        let many: Vec<_> = (0..21)
            .map(|i| {
                ok(&format!(
                    "Tag_Profile_Custom_{}",
                    "abcdefghijklmnopqrstu".chars().nth(i).unwrap()
                ))
                .unwrap()
            })
            .collect();
        assert_eq!(
            Schema::new::<&str>(many, &[]).unwrap_err(),
            SchemaError::TooMany(21)
        );
    }

    #[test]
    fn defaults_match_the_vendor() {
        assert_eq!(
            StandardTag::Gender.default_value(),
            ProfileValue::Str("Gender_Type_Unknown".into())
        );
        assert_eq!(
            StandardTag::AllowType.default_value(),
            ProfileValue::Str("AllowType_Type_NeedConfirm".into())
        );
        assert_eq!(
            StandardTag::AdminForbidType.default_value(),
            ProfileValue::Str("AdminForbid_Type_None".into())
        );
        assert_eq!(
            StandardTag::Nick.default_value(),
            ProfileValue::Str(String::new())
        );
        assert_eq!(StandardTag::Level.default_value(), ProfileValue::Int(0));
    }

    #[test]
    fn whole_numbers_in_float_form_are_integers() {
        let s = schema();
        let parse = |tag: &str, text: &str| {
            let v: serde_json::Value = serde_json::from_str(text).unwrap();
            s.parse_item(tag, &v, Actor::Admin)
        };
        for (text, want) in [
            ("1.0", 1),
            ("1e2", 100),
            ("1E2", 100),
            ("2.5e1", 25),
            ("-0", 0),
            ("-0.0", 0),
            ("0e5", 0),
            ("4294967295.0", 4_294_967_295),
        ] {
            for tag in [
                "Tag_Profile_IM_Level",
                "Tag_Profile_IM_Role",
                "Tag_Profile_IM_BirthDay",
                "Tag_Profile_Custom_Score",
            ] {
                assert_eq!(
                    parse(tag, text).unwrap(),
                    (s.resolve(tag).unwrap(), ProfileValue::Int(want)),
                    "{tag} = {text}"
                );
            }
        }
        // Up to 2^53 a custom integer field takes the float form too.
        assert_eq!(
            parse("Tag_Profile_Custom_Score", "9007199254740992.0")
                .unwrap()
                .1,
            ProfileValue::Int(9_007_199_254_740_992)
        );
        assert_eq!(
            parse("Tag_Profile_Custom_Score", "1e15").unwrap().1,
            ProfileValue::Int(1_000_000_000_000_000)
        );
    }

    #[test]
    fn fractions_are_the_wrong_type_and_out_of_range_whole_floats_invalid_values() {
        let s = schema();
        let code = |tag: &str, text: &str| {
            let v: serde_json::Value = serde_json::from_str(text).unwrap();
            s.parse_item(tag, &v, Actor::Admin).unwrap_err().code().0
        };
        for tag in ["Tag_Profile_IM_Level", "Tag_Profile_Custom_Score"] {
            for text in ["1.5", "1e-3", "-0.5", "0.1"] {
                assert_eq!(code(tag, text), 40610, "{tag} = {text}");
            }
            // Negative whole numbers are out of range, as the integer -1 is.
            for text in ["-1.0", "-1e2"] {
                assert_eq!(code(tag, text), 40605, "{tag} = {text}");
            }
            // Beyond u64 in float form: out of range.
            for text in ["1e20", "1e300", "18446744073709551616.0"] {
                assert_eq!(code(tag, text), 40605, "{tag} = {text}");
            }
        }
        // Beyond uint32 for a standard field: out of range, as 4294967296 is.
        assert_eq!(code("Tag_Profile_IM_Level", "4294967296.0"), 40605);
        assert_eq!(code("Tag_Profile_IM_Level", "1e10"), 40605);
        // Beyond 2^53 a double cannot hold the value exactly: write it as a plain integer.
        assert_eq!(
            code("Tag_Profile_Custom_Score", "9007199254740993.0"),
            40610
        );
        assert_eq!(code("Tag_Profile_Custom_Score", "1e19"), 40610);
        assert_eq!(
            s.parse_item(
                "Tag_Profile_Custom_Score",
                &serde_json::from_str("9007199254740993").unwrap(),
                Actor::Admin
            )
            .unwrap()
            .1,
            ProfileValue::Int(9_007_199_254_740_993)
        );
    }

    #[test]
    fn a_whole_number_beyond_u64_is_an_invalid_value_not_a_wrong_type() {
        let s = schema();
        let huge: serde_json::Value = serde_json::from_str("18446744073709551616").unwrap();
        let err = s
            .parse_item("Tag_Profile_Custom_Score", &huge, Actor::Admin)
            .unwrap_err();
        assert_eq!(err.code().0, 40605);
        let err = s
            .parse_item("Tag_Profile_IM_Level", &huge, Actor::Admin)
            .unwrap_err();
        assert_eq!(err.code().0, 40605);
    }
}
