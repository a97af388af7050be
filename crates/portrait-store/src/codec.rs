//! How both SQL backends lay values out in columns, shared so that they store byte-identical
//! data: app ids as `i64`, versions as non-negative `i64`, profiles and change items in the
//! packed form described in [`packed`] (JSON of earlier versions still decodes).
//!
//! Pure functions only: no SQL and no I/O here.
//!
//! Here: the column encoding (ids, versions, profiles, items, rows), the catch-up arguments and
//! the prune rule ([`pruned_mark`]). Elsewhere: the packed format ([`packed`]), the read cache's
//! profile type ([`PackedProfile`], `profile.rs`) and import staging ([`stage_import`],
//! `import.rs`).

use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap, HashSet};

use portrait_core::{ProfileValue, Tag};

use crate::{AppId, Change, ChangeKind, Profile, Result, StoreError, StoredAccount};

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

mod import;
mod profile;

pub(crate) use import::stage_import;
pub use profile::{FieldKey, FieldValue, PackedProfile};

mod packed;

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
pub(crate) fn distinct<'a>(ids: impl ExactSizeIterator<Item = &'a str>) -> Vec<&'a str> {
    if ids.len() < 2 {
        return ids.collect();
    }
    let mut seen =
        HashSet::with_capacity_and_hasher(ids.len(), foldhash::fast::RandomState::default());
    ids.filter(|id| seen.insert(*id)).collect()
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

/// [`crate::MAX_CHAIN_WALK`] as both backends bind it.
pub(crate) const MAX_CHAIN_WALK: i64 = crate::MAX_CHAIN_WALK as i64;

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
mod tests;

/// An `accounts` row as both backends select it.
#[cfg(feature = "sql")]
#[derive(sqlx::FromRow)]
pub(crate) struct AccountRow {
    pub(crate) user_id: String,
    pub(crate) profile: String,
    pub(crate) version: i64,
    pub(crate) updated_at_ms: i64,
}

#[cfg(feature = "sql")]
impl AccountRow {
    /// The row's profile, packed ([`PackedProfile::from_stored`]), under its UserID.
    pub(crate) fn into_packed(self) -> Result<(String, PackedProfile)> {
        let version = unsigned(self.version, "an account version")?;
        let packed =
            PackedProfile::from_stored(&self.profile, &self.user_id, version, self.updated_at_ms)?;
        Ok((self.user_id, packed))
    }

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
#[cfg(feature = "sql")]
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

/// A row of [`crate::Store::changes_of`] as both backends select it: a change, and the answer's
/// [`crate::ChangesOf::complete_after`] (the same on every row).
#[cfg(feature = "sql")]
#[derive(sqlx::FromRow)]
pub(crate) struct ChangeOfRow {
    #[sqlx(flatten)]
    pub(crate) change: ChangeRow,
    pub(crate) complete_after: i64,
}

#[cfg(feature = "sql")]
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
