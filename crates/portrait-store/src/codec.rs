//! How both SQL backends lay values out in columns, shared so that they store byte-identical
//! data: app ids as `i64`, versions as non-negative `i64`, profiles as compact JSON objects keyed
//! by short tag names, change items as JSON arrays of `[tag, value]` pairs.
//!
//! Pure functions only: no SQL and no I/O here.

use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap, HashSet};

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
    let short: BTreeMap<Cow<'_, str>, &ProfileValue> =
        fields.iter().map(|(k, v)| (short_tag(k), v)).collect();
    serde_json::to_string(&short)
        .map_err(|e| StoreError::Corrupt(format!("cannot encode a profile: {e}")))
}

pub(crate) fn decode_profile(json: &str, user: &str) -> Result<Fields> {
    let short = decode_short_profile(json, user)?;
    Ok(short.into_iter().map(|(k, v)| (full_tag(&k), v)).collect())
}

/// A stored profile as stored: keyed by short tag name (see [`short_tag`]).
pub(crate) fn decode_short_profile(
    json: &str,
    user: &str,
) -> Result<BTreeMap<String, ProfileValue>> {
    serde_json::from_str(json).map_err(|e| StoreError::Corrupt(format!("profile of {user:?}: {e}")))
}

/// The stored profile `stored` (JSON, short tags) of `user` with `items` written in order (later
/// items win), encoded again.
pub(crate) fn merge_items(
    stored: &str,
    user: &str,
    items: &[(Tag, ProfileValue)],
) -> Result<String> {
    // Merged in the stored (short-tag) form: no renaming of the fields already there.
    let mut fields = decode_short_profile(stored, user)?;
    for (tag, value) in items {
        let key = short_tag(tag.name());
        match fields.get_mut(key.as_ref()) {
            Some(slot) => slot.clone_from(value),
            None => {
                fields.insert(key.into_owned(), value.clone());
            }
        }
    }
    serde_json::to_string(&fields)
        .map_err(|e| StoreError::Corrupt(format!("cannot encode a profile: {e}")))
}

pub(crate) fn encode_items<'a>(
    items: impl IntoIterator<Item = (&'a str, &'a ProfileValue)>,
) -> Result<String> {
    let short: Vec<(Cow<'_, str>, &ProfileValue)> =
        items.into_iter().map(|(k, v)| (short_tag(k), v)).collect();
    serde_json::to_string(&short)
        .map_err(|e| StoreError::Corrupt(format!("cannot encode change items: {e}")))
}

pub(crate) fn decode_items(json: &str, version: i64) -> Result<Vec<(String, ProfileValue)>> {
    let short: Vec<(String, ProfileValue)> = serde_json::from_str(json)
        .map_err(|e| StoreError::Corrupt(format!("items of change {version}: {e}")))?;
    Ok(short.into_iter().map(|(k, v)| (full_tag(&k), v)).collect())
}

/// A change-log row's columns as a [`Change`].
pub(crate) fn decode_change(
    version: i64,
    user: String,
    operator: String,
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
    kicked_before: i64,
) -> Result<StoredAccount> {
    Ok(StoredAccount {
        profile: Profile {
            fields: decode_profile(profile, &user)?,
            version: unsigned(version, "an account version")?,
            updated_at_ms,
        },
        kicked_before: unsigned(kicked_before, "kicked_before")?,
        user,
    })
}

/// The distinct ids, in first-seen order.
pub(crate) fn distinct<'a>(ids: impl IntoIterator<Item = &'a str>) -> Vec<&'a str> {
    let mut seen = HashSet::new();
    ids.into_iter().filter(|id| seen.insert(*id)).collect()
}

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

    #[test]
    fn profiles_are_stored_as_compact_json_with_short_tags() {
        let mut fields = Fields::new();
        fields.insert(
            "Tag_Profile_IM_Nick".into(),
            ProfileValue::Str("Ann".into()),
        );
        fields.insert(
            "Tag_Profile_Custom_Score".into(),
            ProfileValue::Int(u64::MAX),
        );
        let json = encode_profile(&fields).unwrap();
        assert_eq!(
            json,
            r#"{"Custom_Score":18446744073709551615,"IM_Nick":"Ann"}"#
        );
        assert_eq!(decode_profile(&json, "u").unwrap(), fields);
        assert!(matches!(
            decode_profile("[1]", "u"),
            Err(StoreError::Corrupt(_))
        ));
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
            &self.kind,
            &self.items,
            self.at_ms,
        )
    }
}
