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
mod standard;

pub use standard::{
    StandardKind, StandardTag, ADMIN_FORBID_VALUES, ALLOW_TYPE_VALUES, GENDER_VALUES,
    LOCATION_MAX_BYTES,
};

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
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
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
mod tests;
