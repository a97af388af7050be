//! Listing an app's accounts page by page ([`crate::Store::scan_accounts`]), written once for
//! both backends: the range of the accounts' primary key a page reads, and the read. Each backend
//! has only its statement, and the test that checks its query plan, in its own `scan.rs`.
//!
//! A prefix is matched as a key range, never with `like`, so no character of it is a wildcard and
//! both databases read the range from their primary-key index (UserIDs sort bytewise in both:
//! SQLite's `binary` collation, PostgreSQL's `collate "C"`).
//!
//! What must not live here: SQL of one dialect.

use portrait_core::Identifier;
#[cfg(feature = "sql")]
use sqlx::{ColumnIndex, Database, Decode, Encode, Executor, IntoArguments, Type};

use crate::codec::app_key;
use crate::{AppId, Result, StoreError};

/// The most accounts one [`crate::Store::scan_accounts`] call answers.
pub const MAX_SCAN: usize = 1000;

/// The first byte after the printable ASCII UserIDs are made of (`0x20`–`0x7e`): every UserID
/// sorts below it.
const PAST_LAST: char = '\u{7f}';

/// The key range of one page: UserIDs `from <= id < to`, at most `limit`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Page {
    /// Inclusive lower bound.
    pub(crate) from: String,
    /// Exclusive upper bound.
    pub(crate) to: String,
    /// Rows to read (1..=[`MAX_SCAN`]).
    pub(crate) limit: i64,
}

impl Page {
    /// The page of UserIDs starting with `prefix`, after `after`, at most `limit`; `None` when
    /// nothing can be on it (`limit` 0, a prefix no UserID starts with, or `after` past every
    /// UserID with the prefix).
    pub(crate) fn new(prefix: &str, after: Option<&Identifier>, limit: usize) -> Option<Page> {
        if limit == 0 || !prefix.bytes().all(|b| (0x20..=0x7e).contains(&b)) {
            return None;
        }
        // UserIDs with the prefix sort from the prefix itself up to (excluding) the prefix with
        // its last character's successor in place of it; with no prefix, up to `PAST_LAST`.
        let to = match prefix.char_indices().next_back() {
            Some((i, last)) => {
                let next = char::from_u32(u32::from(last) + 1)?;
                format!("{}{next}", &prefix[..i])
            }
            None => PAST_LAST.to_string(),
        };
        // The least UserID after `after` is `after` followed by the lowest character, a space.
        let from = match after {
            Some(after) => format!("{} ", after.as_str()).max(prefix.to_owned()),
            None => prefix.to_owned(),
        };
        (from < to).then(|| Page {
            from,
            to,
            limit: i64::try_from(limit.min(MAX_SCAN)).unwrap_or(1),
        })
    }
}

/// [`crate::Store::scan_accounts`] on any backend: reads the page with `sql`, the backend's
/// statement (parameters: the app, [`Page::from`], [`Page::to`], [`Page::limit`]; one column, the
/// UserID).
///
/// # Errors
/// Storage failures; [`StoreError::Corrupt`] for a stored UserID that is not one.
#[cfg(feature = "sql")]
pub(crate) async fn scan<'e, DB, E>(
    executor: E,
    sql: &'static str,
    app: AppId,
    prefix: &str,
    after: Option<&Identifier>,
    limit: usize,
) -> Result<Vec<Identifier>>
where
    DB: Database,
    E: Executor<'e, Database = DB>,
    i64: for<'q> Encode<'q, DB> + Type<DB>,
    String: for<'q> Encode<'q, DB> + for<'r> Decode<'r, DB> + Type<DB>,
    for<'q> DB::Arguments<'q>: IntoArguments<'q, DB>,
    usize: ColumnIndex<DB::Row>,
{
    let Some(page) = Page::new(prefix, after, limit) else {
        return Ok(Vec::new());
    };
    let rows: Vec<String> = sqlx::query_scalar(sql)
        .bind(app_key(app))
        .bind(page.from)
        .bind(page.to)
        .bind(page.limit)
        .fetch_all(executor)
        .await?;
    identifiers(rows)
}

/// The UserIDs a page read, checked.
///
/// # Errors
/// [`StoreError::Corrupt`] for a stored UserID that is not one.
fn identifiers(rows: Vec<String>) -> Result<Vec<Identifier>> {
    rows.into_iter()
        .map(|id| {
            Identifier::parse(&id)
                .map_err(|e| StoreError::Corrupt(format!("stored UserID {id:?}: {e}")))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn page(prefix: &str, after: Option<&str>, limit: usize) -> Option<(String, String, i64)> {
        let after = after.map(|a| Identifier::parse(a).unwrap());
        Page::new(prefix, after.as_ref(), limit).map(|p| (p.from, p.to, p.limit))
    }

    #[test]
    fn a_prefix_is_the_range_up_to_its_last_characters_successor() {
        assert_eq!(page("ab", None, 10), Some(("ab".into(), "ac".into(), 10)));
        assert_eq!(page("a%", None, 10), Some(("a%".into(), "a&".into(), 10)));
        assert_eq!(page("a_", None, 10), Some(("a_".into(), "a`".into(), 10)));
        assert_eq!(page("~", None, 10), Some(("~".into(), "\u{7f}".into(), 10)));
        assert_eq!(page("", None, 10), Some(("".into(), "\u{7f}".into(), 10)));
    }

    #[test]
    fn after_moves_the_start_only_forwards() {
        assert_eq!(page("a", Some("ab"), 5).unwrap().0, "ab ");
        assert_eq!(page("a", Some("0"), 5).unwrap().0, "a", "before the prefix");
        assert_eq!(page("a", Some("b"), 5), None, "past every UserID with it");
        assert_eq!(page("a", Some("a~~"), 5).unwrap().0, "a~~ ");
    }

    #[test]
    fn limits_are_capped_and_impossible_prefixes_read_nothing() {
        assert_eq!(page("", None, usize::MAX).unwrap().2, MAX_SCAN as i64);
        assert_eq!(page("", None, 0), None);
        assert_eq!(page("é", None, 5), None);
        assert_eq!(page("a\n", None, 5), None);
    }
}
