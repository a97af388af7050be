//! The profile type of the read cache: [`PackedProfile`], its fields read in place from the
//! packed form, and the borrowed [`FieldKey`] and [`FieldValue`] they are read as.

use std::borrow::Cow;
use std::sync::Arc;

use portrait_core::{ProfileValue, Tag};

use crate::Profile;

use super::{full_tag, pack_fields, packed, short_tag};

/// A profile as the read cache holds it ([`crate::cache::CachedStore`]): its version and time,
/// and its fields in the packed form in one shared string, read in place. A million cached
/// profiles as maps of `String`s are a dozen scattered heap objects each, and reading one waits
/// on a dozen cache misses; packed, a read touches one object. Cloning shares the fields.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PackedProfile {
    version: u64,
    updated_at_ms: i64,
    fields: Arc<str>,
}

impl PackedProfile {
    /// Packs `profile`.
    pub fn new(profile: &Profile) -> PackedProfile {
        PackedProfile {
            version: profile.version,
            updated_at_ms: profile.updated_at_ms,
            fields: pack_fields(&profile.fields).into(),
        }
    }

    /// A stored profile column (either form) as read from the database, with its version and
    /// time. The packed form is kept as it is, once checked to read back whole: the store only
    /// ever writes it from a map sorted by full tag name (`pack_fields`), which is the form
    /// [`PackedProfile::new`] makes. The JSON of earlier versions is packed.
    ///
    /// # Errors
    /// [`crate::StoreError::Corrupt`] if the column does not decode.
    #[cfg(feature = "sql")]
    pub(crate) fn from_stored(
        stored: &str,
        user: &str,
        version: u64,
        updated_at_ms: i64,
    ) -> crate::Result<PackedProfile> {
        let fields: Arc<str> = if stored.starts_with('{') {
            pack_fields(&super::decode_profile(stored, user)?).into()
        } else {
            if let Some(Err(e)) = packed::entries(stored).find(std::result::Result::is_err) {
                return Err(crate::StoreError::Corrupt(format!(
                    "profile of {user:?}: {e}"
                )));
            }
            stored.into()
        };
        Ok(PackedProfile {
            version,
            updated_at_ms,
            fields,
        })
    }

    /// The version of the account's last change.
    pub fn version(&self) -> u64 {
        self.version
    }

    /// Unix milliseconds of the account's last change.
    pub fn updated_at_ms(&self) -> i64 {
        self.updated_at_ms
    }

    /// The fields that have been set, sorted by full tag name, borrowed from the profile.
    pub fn fields(&self) -> impl Iterator<Item = (FieldKey<'_>, FieldValue<'_>)> + '_ {
        // What `new` packed always reads back (a test checks every kind of tag and value).
        packed::entries(&self.fields).map_while(std::result::Result::ok)
    }

    /// Reads the first byte of the fields, bringing them into the CPU cache (see
    /// `CachedStore::get_many`).
    pub(crate) fn first_byte(&self) -> u8 {
        self.fields.as_bytes().first().copied().unwrap_or(0)
    }

    /// The profile as a [`Profile`] (a copy).
    pub fn to_profile(&self) -> Profile {
        Profile {
            fields: self
                .fields()
                .map(|(k, v)| (k.full_name(), v.into_owned()))
                .collect(),
            version: self.version,
            updated_at_ms: self.updated_at_ms,
        }
    }
}

/// The tag of a field of a [`PackedProfile`], without allocating its full name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FieldKey<'a> {
    /// A standard tag.
    Standard(portrait_core::schema::StandardTag),
    /// `Tag_Profile_Custom_` + this.
    Custom(&'a str),
    /// Any other name, in the short form of storage (never produced by the schema).
    Other(&'a str),
}

impl FieldKey<'_> {
    /// Whether this is `tag`.
    pub fn is(&self, tag: &Tag) -> bool {
        match (self, tag) {
            (FieldKey::Standard(a), Tag::Standard(b)) => a == b,
            (FieldKey::Custom(a), Tag::Custom(b)) => {
                b.strip_prefix(portrait_core::schema::CUSTOM_PREFIX) == Some(*a)
            }
            (FieldKey::Other(a), Tag::Custom(b)) => short_tag(b) == *a,
            _ => false,
        }
    }

    /// The full tag name.
    pub fn full_name(&self) -> String {
        match self {
            FieldKey::Standard(t) => t.name().to_owned(),
            FieldKey::Custom(n) => format!("{}{n}", portrait_core::schema::CUSTOM_PREFIX),
            FieldKey::Other(short) => full_tag(short),
        }
    }
}

/// The value of a field of a [`PackedProfile`], borrowed where it can be.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FieldValue<'a> {
    /// An integer.
    Int(u64),
    /// A string.
    Str(Cow<'a, str>),
}

impl FieldValue<'_> {
    /// As an owned [`ProfileValue`].
    pub fn into_owned(self) -> ProfileValue {
        match self {
            FieldValue::Int(n) => ProfileValue::Int(n),
            FieldValue::Str(s) => ProfileValue::Str(s.into_owned()),
        }
    }
}
