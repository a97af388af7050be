//! How both SQL backends lay values out in columns, shared so that they store byte-identical
//! data: app ids as `i64`, versions as non-negative `i64`, profiles and change items in the
//! packed form described in [`packed`] (JSON of earlier versions still decodes).
//!
//! Pure functions only: no SQL and no I/O here.

use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;

use portrait_core::{ProfileValue, Tag};

use crate::{AppId, Change, ChangeKind, NewAccount, Profile, Result, StoreError, StoredAccount};

/// The prefix every tag shares, stripped in storage.
const TAG_PREFIX: &str = "Tag_Profile_";

/// A profile's fields by full tag name.
pub(crate) type Fields = BTreeMap<String, ProfileValue>;

/// The column value of an app id: the u64 reinterpreted as i64 (lossless both ways, so every
/// `AppId` is accepted and apps stay distinct).
pub(crate) fn app_key(app: AppId) -> i64 {
    app as i64
}

/// The inverse of [`app_key`].
pub(crate) fn app_from_key(key: i64) -> AppId {
    key as AppId
}

/// A stored version or timestamp that must not be negative.
pub(crate) fn unsigned(n: i64, what: &str) -> Result<u64> {
    u64::try_from(n).map_err(|_| StoreError::Corrupt(format!("{what} is negative: {n}")))
}

/// Where the [`crate::PRUNED`] cursor may move after one chunk of [`crate::Store::prune_changes`]
/// deleted `deleted` of at most `limit` changes, the highest being `highest`: once fewer than
/// `limit` went nothing at or below `through` is left, so up to `through` — but not beyond the
/// app's `committed` version, so versions handed out and not committed yet stay clear; else only
/// up to the highest version deleted. (The caller keeps the cursor from moving backwards.)
pub(crate) fn pruned_mark(
    deleted: i64,
    limit: i64,
    highest: Option<i64>,
    through: i64,
    committed: i64,
) -> i64 {
    let highest = highest.unwrap_or(0);
    if deleted < limit {
        highest.max(through.min(committed))
    } else {
        highest
    }
}

/// The column value of a version (versions are stored as non-negative `i64`).
pub(crate) fn version_key(v: u64) -> Result<i64> {
    i64::try_from(v).map_err(|_| StoreError::Conflict {
        what: format!("version {v} is out of range"),
    })
}

/// `Tag_Profile_IM_Nick` → `IM_Nick`. A name without the prefix (never produced by the schema,
/// but representable in [`Tag::Custom`]) is kept whole behind a `/`, so the mapping is reversible.
pub(crate) fn short_tag(name: &str) -> Cow<'_, str> {
    match name.strip_prefix(TAG_PREFIX) {
        Some(rest) if !rest.is_empty() && !rest.starts_with('/') => Cow::Borrowed(rest),
        _ => Cow::Owned(format!("/{name}")),
    }
}

/// The inverse of [`short_tag`].
pub(crate) fn full_tag(short: &str) -> String {
    match short.strip_prefix('/') {
        Some(whole) => whole.to_owned(),
        None => format!("{TAG_PREFIX}{short}"),
    }
}

pub(crate) fn encode_profile(fields: &Fields) -> Result<String> {
    Ok(pack_fields(fields))
}

/// `fields` in the packed form (cannot fail).
fn pack_fields(fields: &Fields) -> String {
    packed::encode(fields.iter().map(|(k, v)| (k.as_str(), v)))
}

/// A stored profile (packed, or JSON as written before the packed form) by full tag name.
pub(crate) fn decode_profile(stored: &str, user: &str) -> Result<Fields> {
    decode_stored::<BTreeMap<String, ProfileValue>, _>(stored, '{', || {
        format!("profile of {user:?}")
    })
}

/// Decodes a stored profile or change items: packed, or — if it starts with `legacy` — the JSON
/// (`L`, keyed by short tag names) that versions before the packed form wrote.
fn decode_stored<L, C>(stored: &str, legacy: char, what: impl Fn() -> String) -> Result<C>
where
    L: serde::de::DeserializeOwned + IntoIterator<Item = (String, ProfileValue)>,
    C: FromIterator<(String, ProfileValue)>,
{
    let corrupt = |e: String| StoreError::Corrupt(format!("{}: {e}", what()));
    if stored.starts_with(legacy) {
        let short: L = serde_json::from_str(stored).map_err(|e| corrupt(e.to_string()))?;
        return Ok(short.into_iter().map(|(k, v)| (full_tag(&k), v)).collect());
    }
    packed::decode(stored)
        .collect::<std::result::Result<C, String>>()
        .map_err(corrupt)
}

/// The stored profile `stored` (either form) of `user` with `items` written in order (later
/// items win), encoded again (packed).
pub(crate) fn merge_items(
    stored: &str,
    user: &str,
    items: &[(Tag, ProfileValue)],
) -> Result<String> {
    let mut fields = decode_profile(stored, user)?;
    for (tag, value) in items {
        match fields.get_mut(tag.name()) {
            Some(slot) => slot.clone_from(value),
            None => {
                fields.insert(tag.name().to_owned(), value.clone());
            }
        }
    }
    encode_profile(&fields)
}

pub(crate) fn encode_items<'a>(
    items: impl IntoIterator<Item = (&'a str, &'a ProfileValue)>,
) -> Result<String> {
    Ok(packed::encode(items))
}

/// A change's stored items (packed, or JSON as written before the packed form), in order.
pub(crate) fn decode_items(stored: &str, version: i64) -> Result<Vec<(String, ProfileValue)>> {
    decode_stored::<Vec<(String, ProfileValue)>, _>(stored, '[', || {
        format!("items of change {version}")
    })
}

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

/// The packed form of profiles and change items: a run of `key value` entries, with no
/// separators, that costs about half the bytes of the JSON it replaced (W5 of issue #6: a profile
/// is stored twice, once in `accounts` and once in its change, so its size is the disk footprint).
///
/// ```text
/// key   := CODE                    a standard tag: one letter of STANDARD_CODES
///        | '+' LEN ':' NAME        Tag_Profile_Custom_NAME
///        | '/' LEN ':' SHORT       any other name, as short_tag writes it
/// value := DIGITS '#'              an integer (u64)
///        | DIGITS '*'              an enum field's value by its index in ENUM_VALUES
///        | LEN '\'' BYTES          a string of LEN bytes (UTF-8, no NUL)
///        | '"' … '"'               a string as a JSON literal (used when it holds a NUL,
///                                  which PostgreSQL text cannot store)
/// ```
///
/// `LEN` and `DIGITS` are decimal. A profile lists each tag once (sorted by full name), change
/// items in their order. The empty string is the empty profile / no items. A stored value that
/// starts with `{` or `[` is the JSON of earlier versions and still decodes, so existing data
/// directories and databases need no migration; every write stores the packed form.
///
/// The codes and enum tables are part of the storage format: never change or reorder an entry,
/// only append.
mod packed {
    use std::borrow::Cow;
    use std::fmt::Write;

    use portrait_core::schema::{StandardTag, CUSTOM_PREFIX};
    use portrait_core::ProfileValue;

    use super::{short_tag, FieldKey, FieldValue};

    /// One letter per standard tag.
    const STANDARD_CODES: [(StandardTag, u8); 12] = [
        (StandardTag::Nick, b'N'),
        (StandardTag::Gender, b'G'),
        (StandardTag::BirthDay, b'B'),
        (StandardTag::Location, b'O'),
        (StandardTag::SelfSignature, b'S'),
        (StandardTag::AllowType, b'A'),
        (StandardTag::Language, b'L'),
        (StandardTag::Image, b'I'),
        (StandardTag::MsgSettings, b'M'),
        (StandardTag::AdminForbidType, b'F'),
        (StandardTag::Level, b'V'),
        (StandardTag::Role, b'R'),
    ];

    /// The values an enum field stores by index (frozen copies of the schema's lists: a test
    /// checks that they hold every value the schema accepts).
    pub(super) const ENUM_VALUES: [(StandardTag, &[&str]); 3] = [
        (
            StandardTag::Gender,
            &[
                "Gender_Type_Unknown",
                "Gender_Type_Female",
                "Gender_Type_Male",
            ],
        ),
        (
            StandardTag::AllowType,
            &[
                "AllowType_Type_NeedConfirm",
                "AllowType_Type_AllowAny",
                "AllowType_Type_DenyAny",
            ],
        ),
        (
            StandardTag::AdminForbidType,
            &["AdminForbid_Type_None", "AdminForbid_Type_SendOut"],
        ),
    ];

    fn enum_values(tag: StandardTag) -> &'static [&'static str] {
        ENUM_VALUES
            .iter()
            .find(|(t, _)| *t == tag)
            .map_or(&[], |(_, v)| v)
    }

    fn code_of(name: &str) -> Option<(StandardTag, u8)> {
        STANDARD_CODES
            .iter()
            .copied()
            .find(|(t, _)| t.name() == name)
    }

    /// The entries packed into one string.
    pub(super) fn encode<'a>(
        entries: impl IntoIterator<Item = (&'a str, &'a ProfileValue)>,
    ) -> String {
        let mut out = String::new();
        for (name, value) in entries {
            let standard = match code_of(name) {
                Some((tag, code)) => {
                    out.push(code as char);
                    Some(tag)
                }
                None => {
                    match name.strip_prefix(CUSTOM_PREFIX) {
                        Some(rest) => push_len_prefixed(&mut out, '+', rest, ':'),
                        None => push_len_prefixed(&mut out, '/', &short_tag(name), ':'),
                    }
                    None
                }
            };
            match value {
                ProfileValue::Int(n) => {
                    let _ = write!(out, "{n}#");
                }
                ProfileValue::Str(s) => {
                    let index = standard.and_then(|t| enum_values(t).iter().position(|v| v == s));
                    if let Some(i) = index {
                        let _ = write!(out, "{i}*");
                    } else if s.contains('\0') {
                        let _ = write!(out, "{}", serde_json::Value::from(s.as_str()));
                    } else {
                        out.reserve(s.len() + 4);
                        let _ = write!(out, "{}'", s.len());
                        out.push_str(s);
                    }
                }
            }
        }
        out
    }

    /// `marker`, then `text`'s byte length, `end`, and `text`.
    fn push_len_prefixed(out: &mut String, marker: char, text: &str, end: char) {
        let _ = write!(out, "{marker}{}{end}", text.len());
        out.push_str(text);
    }

    /// The entries of a packed string, as (full tag name, value); an error says what is wrong.
    pub(super) fn decode(
        packed: &str,
    ) -> impl Iterator<Item = Result<(String, ProfileValue), String>> + '_ {
        entries(packed).map(|e| e.map(|(k, v)| (k.full_name(), v.into_owned())))
    }

    /// The entries of a packed string, borrowed from it; an error says what is wrong (and ends
    /// the iteration).
    pub(super) fn entries(
        packed: &str,
    ) -> impl Iterator<Item = Result<(FieldKey<'_>, FieldValue<'_>), String>> + '_ {
        let mut reader = Reader { s: packed, at: 0 };
        std::iter::from_fn(move || {
            if reader.at >= reader.s.len() {
                return None;
            }
            let entry = reader.entry();
            if entry.is_err() {
                reader.at = reader.s.len(); // stop after the first error
            }
            Some(entry)
        })
    }

    struct Reader<'a> {
        s: &'a str,
        at: usize,
    }

    impl<'a> Reader<'a> {
        fn entry(&mut self) -> Result<(FieldKey<'a>, FieldValue<'a>), String> {
            let key = self.key()?;
            let standard = match key {
                FieldKey::Standard(tag) => Some(tag),
                _ => None,
            };
            let value = self.value(standard)?;
            Ok((key, value))
        }

        fn key(&mut self) -> Result<FieldKey<'a>, String> {
            let at = self.at;
            let b = self.s.as_bytes()[at];
            self.at += 1;
            match b {
                b'+' => Ok(FieldKey::Custom(self.len_prefixed(b':')?)),
                b'/' => Ok(FieldKey::Other(self.len_prefixed(b':')?)),
                _ => match STANDARD_CODES.iter().find(|(_, c)| *c == b) {
                    Some((tag, _)) => Ok(FieldKey::Standard(*tag)),
                    None => Err(format!("no tag starts at byte {at}")),
                },
            }
        }

        fn value(&mut self, standard: Option<StandardTag>) -> Result<FieldValue<'a>, String> {
            let at = self.at;
            if self.s.as_bytes().get(at) == Some(&b'"') {
                let mut literal =
                    serde_json::Deserializer::from_str(&self.s[at..]).into_iter::<String>();
                let s = match literal.next() {
                    Some(Ok(s)) => s,
                    _ => return Err(format!("bad string literal at byte {at}")),
                };
                self.at += literal.byte_offset();
                return Ok(FieldValue::Str(Cow::Owned(s)));
            }
            let n = self.digits()?;
            match self.s.as_bytes().get(self.at) {
                Some(b'#') => {
                    self.at += 1;
                    Ok(FieldValue::Int(n))
                }
                Some(b'*') => {
                    self.at += 1;
                    let values = standard.map_or(&[][..], enum_values);
                    usize::try_from(n)
                        .ok()
                        .and_then(|i| values.get(i))
                        .map(|v| FieldValue::Str(Cow::Borrowed(*v)))
                        .ok_or_else(|| format!("no enum value {n} at byte {at}"))
                }
                Some(b'\'') => {
                    self.at += 1;
                    Ok(FieldValue::Str(Cow::Borrowed(self.take(n)?)))
                }
                _ => Err(format!("no value at byte {at}")),
            }
        }

        /// `LEN end BYTES`: the bytes.
        fn len_prefixed(&mut self, end: u8) -> Result<&'a str, String> {
            let n = self.digits()?;
            if self.s.as_bytes().get(self.at) != Some(&end) {
                return Err(format!("no {:?} at byte {}", end as char, self.at));
            }
            self.at += 1;
            self.take(n)
        }

        fn take(&mut self, n: u64) -> Result<&'a str, String> {
            let at = self.at;
            let text = usize::try_from(n)
                .ok()
                .and_then(|n| self.s.get(at..at.checked_add(n)?))
                .ok_or_else(|| format!("{n} bytes at byte {at} run past the end"))?;
            self.at += text.len();
            Ok(text)
        }

        fn digits(&mut self) -> Result<u64, String> {
            let at = self.at;
            let mut n: u64 = 0;
            while let Some(d) = self
                .s
                .as_bytes()
                .get(self.at)
                .filter(|b| b.is_ascii_digit())
            {
                n = n
                    .checked_mul(10)
                    .and_then(|n| n.checked_add(u64::from(d - b'0')))
                    .ok_or_else(|| format!("number at byte {at} is too large"))?;
                self.at += 1;
            }
            if self.at == at {
                return Err(format!("no number at byte {at}"));
            }
            Ok(n)
        }
    }
}

/// An [`Origin`](crate::Origin) owned by a queued write job (it outlives the caller's borrow).
#[derive(Debug, Clone, Default)]
pub(crate) struct OwnedOrigin {
    pub(crate) operator: String,
    pub(crate) client_ip: String,
}

impl From<crate::Origin<'_>> for OwnedOrigin {
    fn from(o: crate::Origin<'_>) -> Self {
        Self {
            operator: o.operator.to_owned(),
            client_ip: o.client_ip.to_owned(),
        }
    }
}

/// The per-account chains of a dump's change log, as a restore writes them: the version of each
/// change's previous change of the same account (0 if none), in the order of `dump.changes`, and
/// the newest change of each account the dump has changes of but no account row for (deleted).
pub(crate) struct Chains<'a> {
    pub(crate) prev: Vec<u64>,
    pub(crate) deleted: Vec<(&'a str, u64)>,
}

/// [`Chains`] of `dump` (whose changes are in version order, [`crate::AppDump::check`]).
pub(crate) fn chains(dump: &crate::AppDump) -> Chains<'_> {
    let mut newest: HashMap<&str, u64> = HashMap::with_capacity(dump.accounts.len());
    let prev = dump
        .changes
        .iter()
        .map(|c| newest.insert(c.user.as_str(), c.version).unwrap_or(0))
        .collect();
    for a in &dump.accounts {
        newest.remove(a.user.as_str());
    }
    let mut deleted: Vec<(&str, u64)> = newest.into_iter().collect();
    deleted.sort_unstable();
    Chains { prev, deleted }
}

/// A change-log row's columns as a [`Change`].
pub(crate) fn decode_change(
    version: i64,
    user: String,
    operator: String,
    client_ip: String,
    kind: &str,
    items: &str,
    at_ms: i64,
) -> Result<Change> {
    let kind = ChangeKind::parse(kind).ok_or_else(|| {
        StoreError::Corrupt(format!("change {version} has unknown kind {kind:?}"))
    })?;
    Ok(Change {
        items: decode_items(items, version)?,
        version: unsigned(version, "a change version")?,
        user,
        operator,
        client_ip,
        kind,
        at_ms,
    })
}

/// An `accounts` row's columns as a [`StoredAccount`].
pub(crate) fn stored_account(
    user: String,
    profile: &str,
    version: i64,
    updated_at_ms: i64,
) -> Result<StoredAccount> {
    Ok(StoredAccount {
        profile: Profile {
            fields: decode_profile(profile, &user)?,
            version: unsigned(version, "an account version")?,
            updated_at_ms,
        },
        user,
    })
}

/// The distinct ids, in first-seen order.
pub(crate) fn distinct<'a>(ids: impl IntoIterator<Item = &'a str>) -> Vec<&'a str> {
    let mut seen = HashSet::new();
    ids.into_iter().filter(|id| seen.insert(*id)).collect()
}

/// The arguments of [`crate::Store::changes_of`] as both backends bind them: `since` as a
/// database integer and the distinct UserIDs; `None` when nothing can match (no version is that
/// large, no account, or a limit of 0).
pub(crate) fn changes_of_args(
    users: &[portrait_core::Identifier],
    since: u64,
    limit: usize,
) -> Option<(i64, Vec<&str>)> {
    let since = i64::try_from(since).ok()?;
    if limit == 0 || users.is_empty() {
        return None;
    }
    Some((since, distinct(users.iter().map(|u| u.as_str()))))
}

/// Most changes of one account a [`crate::Store::changes_of`] call walks back through (one
/// primary-key lookup each): its work bound per account. An account with more changes than this
/// after `since` is caught up from its newest this many only (the older ones are not answered, as
/// if pruned).
pub(crate) const MAX_CHAIN_WALK: i64 = 10_000;

/// One account an import writes: its new stored profile and its change's items, both encoded.
pub(crate) struct ImportRow<'a> {
    pub(crate) user: &'a str,
    pub(crate) profile: String,
    pub(crate) items: String,
}

/// What [`crate::Store::import_accounts`] writes, the same for every backend: one row per
/// distinct account that is created or whose fields are written, in first-seen order. A user
/// listed twice gets the items of both occurrences in one change; an existing account given no
/// items is left alone. `existing` holds the stored profiles (user, profile column) of the
/// requested accounts that exist.
pub(crate) fn stage_import(
    accounts: &[NewAccount],
    existing: impl IntoIterator<Item = (String, String)>,
) -> Result<Vec<ImportRow<'_>>> {
    let mut profiles: HashMap<&str, Fields> = HashMap::with_capacity(accounts.len());
    let stored: HashMap<String, String> = existing.into_iter().collect();
    let mut changed: Vec<(&str, Vec<(&str, &ProfileValue)>)> = Vec::new();
    let mut slot: HashMap<&str, usize> = HashMap::new();
    for account in accounts {
        let user = account.user.as_str();
        let fields = match profiles.entry(user) {
            std::collections::hash_map::Entry::Occupied(e) => {
                if account.items.is_empty() {
                    continue;
                }
                e.into_mut()
            }
            std::collections::hash_map::Entry::Vacant(e) => match stored.get(user) {
                Some(_) if account.items.is_empty() => continue,
                Some(json) => e.insert(decode_profile(json, user)?),
                None => e.insert(Fields::new()),
            },
        };
        for (tag, value) in &account.items {
            fields.insert(tag.name().to_owned(), value.clone());
        }
        let i = *slot.entry(user).or_insert_with(|| {
            changed.push((user, Vec::new()));
            changed.len() - 1
        });
        changed[i]
            .1
            .extend(account.items.iter().map(|(t, v)| (t.name(), v)));
    }
    changed
        .into_iter()
        .map(|(user, items)| {
            Ok(ImportRow {
                user,
                profile: encode_profile(&profiles[user])?,
                items: encode_items(items)?,
            })
        })
        .collect()
}

/// The codec's entry points for the fuzz targets (`fuzz/`, target `store_codec`), behind the
/// `fuzzing` feature: not part of the store's API.
#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub mod fuzzing {
    use std::collections::BTreeMap;

    use portrait_core::{ProfileValue, Tag};

    use crate::{Change, Result};

    /// A profile's fields by full tag name.
    pub type Fields = BTreeMap<String, ProfileValue>;

    /// A stored profile column (packed or legacy JSON) as fields by full tag name.
    pub fn decode_profile(stored: &str) -> Result<Fields> {
        super::decode_profile(stored, "fuzz")
    }

    /// A stored change's items column (packed or legacy JSON), in order.
    pub fn decode_items(stored: &str) -> Result<Vec<(String, ProfileValue)>> {
        super::decode_items(stored, 1)
    }

    /// A profile column as the store writes it.
    pub fn encode_profile(fields: &Fields) -> Result<String> {
        super::encode_profile(fields)
    }

    /// A change's items column as the store writes it.
    pub fn encode_items(items: &[(String, ProfileValue)]) -> Result<String> {
        super::encode_items(items.iter().map(|(k, v)| (k.as_str(), v)))
    }

    /// A change-log row's columns as a [`Change`].
    pub fn decode_change(version: i64, kind: &str, items: &str) -> Result<Change> {
        super::decode_change(
            version,
            "u".into(),
            "op".into(),
            String::new(),
            kind,
            items,
            0,
        )
    }

    /// The stored profile with `items` written, encoded again.
    pub fn merge_items(stored: &str, items: &[(Tag, ProfileValue)]) -> Result<String> {
        super::merge_items(stored, "fuzz", items)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tag_names_shorten_and_expand_losslessly() {
        for name in [
            "Tag_Profile_IM_Nick",
            "Tag_Profile_Custom_Hobby",
            "Tag_Profile_",
            "Tag_Profile_/odd",
            "NoPrefix",
            "/slash",
            "",
        ] {
            assert_eq!(full_tag(&short_tag(name)), name, "{name:?}");
        }
        assert_eq!(short_tag("Tag_Profile_IM_Nick"), "IM_Nick");
        assert_eq!(short_tag("Tag_Profile_Custom_Hobby"), "Custom_Hobby");
    }

    fn text(s: &str) -> ProfileValue {
        ProfileValue::Str(s.into())
    }

    #[test]
    fn profiles_are_stored_packed_with_codes_and_enum_indexes() {
        let mut fields = Fields::new();
        fields.insert("Tag_Profile_IM_Nick".into(), text("Ann"));
        fields.insert("Tag_Profile_IM_Gender".into(), text("Gender_Type_Male"));
        fields.insert("Tag_Profile_IM_Level".into(), ProfileValue::Int(3));
        fields.insert(
            "Tag_Profile_Custom_Score".into(),
            ProfileValue::Int(u64::MAX),
        );
        let packed = encode_profile(&fields).unwrap();
        // The format is frozen: this exact string must keep decoding to these fields.
        assert_eq!(packed, "+5:Score18446744073709551615#G2*V3#N3'Ann");
        assert_eq!(decode_profile(&packed, "u").unwrap(), fields);
        assert_eq!(encode_profile(&Fields::new()).unwrap(), "");
        assert_eq!(decode_profile("", "u").unwrap(), Fields::new());
    }

    #[test]
    fn profiles_and_items_written_as_json_by_earlier_versions_still_decode() {
        let old = r#"{"Custom_Score":18446744073709551615,"IM_Nick":"Ann","/NoPrefix":"x"}"#;
        let fields = decode_profile(old, "u").unwrap();
        assert_eq!(
            fields["Tag_Profile_Custom_Score"],
            ProfileValue::Int(u64::MAX)
        );
        assert_eq!(fields["Tag_Profile_IM_Nick"], text("Ann"));
        assert_eq!(fields["NoPrefix"], text("x"));
        assert_eq!(decode_profile("{}", "u").unwrap(), Fields::new());
        let items = decode_items(r#"[["IM_Level",3],["IM_Nick","A\u0000"]]"#, 1).unwrap();
        assert_eq!(
            items,
            [
                ("Tag_Profile_IM_Level".to_owned(), ProfileValue::Int(3)),
                ("Tag_Profile_IM_Nick".to_owned(), text("A\0")),
            ]
        );
        // A merge into an old profile writes the packed form.
        let merged = merge_items(
            r#"{"IM_Nick":"A"}"#,
            "u",
            &[(
                Tag::Standard(portrait_core::schema::StandardTag::Level),
                ProfileValue::Int(3),
            )],
        )
        .unwrap();
        assert_eq!(merged, "V3#N1'A");
    }

    #[test]
    fn every_tag_and_value_survives_packing_in_order() {
        let names = [
            "Tag_Profile_IM_Nick",
            "Tag_Profile_IM_Gender",
            "Tag_Profile_IM_AllowType",
            "Tag_Profile_IM_AdminForbidType",
            "Tag_Profile_IM_Level",
            "Tag_Profile_Custom_Hobby",
            "Tag_Profile_Custom_a:b",
            "Tag_Profile_Custom_9",
            "Tag_Profile_Custom_",
            "Tag_Profile_IM_Unknown",
            "Tag_Profile_",
            "Tag_Profile_/odd",
            "NoPrefix",
            "/slash",
            "",
        ];
        let values = [
            ProfileValue::Int(0),
            ProfileValue::Int(7),
            ProfileValue::Int(u64::MAX),
            text(""),
            text("Gender_Type_Male"),
            text("AllowType_Type_DenyAny"),
            text("AdminForbid_Type_SendOut"),
            text("Gender_Type_Other"),
            text("123"),
            text("12#"),
            text("3'abc"),
            text("\"quoted\" 'single'"),
            text("nul:\0 tab:\t newline:\n"),
            text("\0"),
            text("张三 🙂 Ünïcödé"),
            text("+5:Score1#"),
        ];
        let mut items = Vec::new();
        for name in names {
            for value in &values {
                items.push((name, value));
            }
        }
        let packed = encode_items(items.iter().map(|(n, v)| (*n, *v))).unwrap();
        assert!(!packed.contains('\0'), "a NUL is never stored raw");
        let decoded = decode_items(&packed, 1).unwrap();
        assert_eq!(decoded.len(), items.len());
        for ((name, value), (dn, dv)) in items.iter().zip(&decoded) {
            assert_eq!((*name, *value), (dn.as_str(), dv));
        }
    }

    #[test]
    fn a_packed_profile_reads_back_every_tag_and_value_in_place() {
        let values = [
            ProfileValue::Int(u64::MAX),
            text(""),
            text("Gender_Type_Female"),
            text("AllowType_Type_AllowAny"),
            text("nul:\0 \"q\" 3'x"),
            text("张三 🙂"),
        ];
        let names = [
            "Tag_Profile_IM_Nick",
            "Tag_Profile_IM_Gender",
            "Tag_Profile_IM_AllowType",
            "Tag_Profile_Custom_Hobby",
            "Tag_Profile_Custom_a:b",
            "Tag_Profile_IM_Unknown",
            "NoPrefix",
        ];
        for value in &values {
            let fields: Fields = names
                .iter()
                .map(|n| ((*n).to_owned(), value.clone()))
                .collect();
            let profile = Profile {
                fields,
                version: 9,
                updated_at_ms: -1,
            };
            let packed = PackedProfile::new(&profile);
            assert_eq!(packed.to_profile(), profile);
            assert_eq!((packed.version(), packed.updated_at_ms()), (9, -1));
            assert_eq!(packed.fields().count(), names.len());
            for name in names {
                let tag = match portrait_core::schema::StandardTag::from_name(name) {
                    Some(t) => Tag::Standard(t),
                    None => Tag::Custom(name.to_owned()),
                };
                let hits: Vec<_> = packed.fields().filter(|(k, _)| k.is(&tag)).collect();
                assert_eq!(hits.len(), 1, "{name}");
                assert_eq!(hits[0].0.full_name(), name);
                assert_eq!(hits[0].1.clone().into_owned(), *value);
            }
            let absent = Tag::Custom("Tag_Profile_Custom_Absent".into());
            assert!(!packed.fields().any(|(k, _)| k.is(&absent)));
        }
    }

    #[test]
    fn damaged_packed_values_are_corrupt_not_misread() {
        for bad in [
            "X",
            "N",
            "N3'An",
            "N3",
            "N'abc",
            "G9*",
            "N2*",
            "V#",
            "V99999999999999999999#",
            "+99:ab1#",
            "+2ab1#",
            "N\"abc",
            "N3'Ann?",
            "{",
            "[",
        ] {
            assert!(
                matches!(decode_profile(bad, "u"), Err(StoreError::Corrupt(_))),
                "profile {bad:?}"
            );
            assert!(
                matches!(decode_items(bad, 1), Err(StoreError::Corrupt(_))),
                "items {bad:?}"
            );
        }
    }

    #[test]
    fn the_frozen_enum_tables_hold_every_value_the_schema_accepts() {
        use portrait_core::schema::{StandardKind, StandardTag};
        for tag in StandardTag::ALL {
            if let StandardKind::Enum(values) = tag.kind() {
                let frozen = packed::ENUM_VALUES
                    .iter()
                    .find(|(t, _)| *t == tag)
                    .map(|(_, v)| *v)
                    .unwrap_or_else(|| panic!("{tag:?} has no frozen table"));
                for v in values {
                    assert!(frozen.contains(v), "{tag:?}: {v} missing");
                }
            }
        }
    }

    #[test]
    fn a_typical_profile_packs_into_little_more_than_half_its_json() {
        let mut fields = Fields::new();
        for (k, v) in [
            ("Tag_Profile_IM_Nick", text("nick123456")),
            (
                "Tag_Profile_IM_Image",
                text("https://img.example.com/a/123456.png"),
            ),
            ("Tag_Profile_IM_Gender", text("Gender_Type_Male")),
            ("Tag_Profile_IM_Level", ProfileValue::Int(56)),
            ("Tag_Profile_Custom_Hobby", text("hobby12")),
        ] {
            fields.insert(k.into(), v);
        }
        let packed = encode_profile(&fields).unwrap();
        let short: BTreeMap<Cow<'_, str>, &ProfileValue> =
            fields.iter().map(|(k, v)| (short_tag(k), v)).collect();
        let json = serde_json::to_string(&short).unwrap();
        assert!(
            packed.len() * 100 <= json.len() * 56,
            "{} bytes packed vs {} as JSON: {packed}",
            packed.len(),
            json.len()
        );
    }

    #[test]
    fn app_ids_round_trip_through_their_column_value() {
        for app in [0, 1, 1_400_000_000, i64::MAX as u64, 1 << 63, u64::MAX] {
            assert_eq!(app_from_key(app_key(app)), app);
        }
        assert_ne!(app_key(u64::MAX), app_key(u64::MAX - 1));
    }
}

/// An `accounts` row as both backends select it.
#[derive(sqlx::FromRow)]
pub(crate) struct AccountRow {
    pub(crate) user_id: String,
    pub(crate) profile: String,
    pub(crate) version: i64,
    pub(crate) updated_at_ms: i64,
}

impl AccountRow {
    pub(crate) fn into_profile(self) -> Result<(String, Profile)> {
        let fields = decode_profile(&self.profile, &self.user_id)?;
        let version = unsigned(self.version, "an account version")?;
        Ok((
            self.user_id,
            Profile {
                fields,
                version,
                updated_at_ms: self.updated_at_ms,
            },
        ))
    }
}

/// A `changes` row as both backends select it.
#[derive(sqlx::FromRow)]
pub(crate) struct ChangeRow {
    version: i64,
    user_id: String,
    operator: String,
    client_ip: String,
    kind: String,
    items: String,
    at_ms: i64,
}

impl ChangeRow {
    pub(crate) fn into_change(self) -> Result<Change> {
        decode_change(
            self.version,
            self.user_id,
            self.operator,
            self.client_ip,
            &self.kind,
            &self.items,
            self.at_ms,
        )
    }
}
