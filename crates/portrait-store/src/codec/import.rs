//! Import staging: what an import writes, decided once for both backends from the requested
//! accounts and the stored profiles of those that exist.

use std::collections::HashMap;

use portrait_core::ProfileValue;

use crate::{NewAccount, Result};

use super::{decode_profile, encode_items, encode_profile, Fields};

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
