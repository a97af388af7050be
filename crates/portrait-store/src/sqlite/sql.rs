//! SQL shared by the writer and the readers: bound-id lists, JSON id lists, account lookups,
//! change-log inserts, and the read statements whose query plans the tests check.

use std::collections::HashSet;

use sqlx::sqlite::{SqliteConnection, SqliteRow};

use crate::codec::{app_key, version_key, OwnedOrigin};
use crate::read::{Dialect, ReadSql};
use crate::{AppId, ChangeKind, Result, StoreError};

/// Most ids bound in one `in (…)` list; larger batches are split (SQLite's bound-parameter limit
/// is 32766, this keeps statements small).
pub(super) const MAX_IDS_PER_QUERY: usize = 500;

/// `?, ?, …, ?` (`n` placeholders).
pub(super) fn placeholders(n: usize) -> String {
    vec!["?"; n].join(", ")
}

/// `ids` (distinct) as a JSON array of strings in the primary key's order: the parameter of
/// `lookup.rs`'s `ROWS_SQL` and `EXISTING_SQL`.
pub(super) fn json_list(ids: &[&str]) -> Result<String> {
    let mut sorted = ids.to_vec();
    sorted.sort_unstable();
    json_of(&sorted)
}

/// `ids` as a JSON array of strings, in their order.
pub(super) fn json_of(ids: &[&str]) -> Result<String> {
    serde_json::to_string(ids).map_err(|e| StoreError::Corrupt(format!("a list of UserIDs: {e}")))
}

/// A batch's ids in the primary key's order (SQLite's `binary` collation compares bytes, as
/// `str`'s `Ord` does), owned in one buffer: what a lookup thread needs of a batch.
pub(super) struct Sorted {
    text: String,
    ends: Vec<usize>,
}

impl Sorted {
    pub(super) fn of(ids: &[&str]) -> Sorted {
        let mut sorted = ids.to_vec();
        sorted.sort_unstable();
        let mut text = String::with_capacity(sorted.iter().map(|id| id.len()).sum());
        let ends = sorted
            .iter()
            .map(|id| {
                text.push_str(id);
                text.len()
            })
            .collect();
        Sorted { text, ends }
    }

    pub(super) fn keys(&self) -> Vec<&str> {
        let starts = std::iter::once(0).chain(self.ends.iter().copied());
        starts
            .zip(&self.ends)
            .map(|(start, &end)| &self.text[start..end])
            .collect()
    }
}

/// Selects `columns` of the app's accounts whose ids are in `ids` (distinct), one statement per
/// [`MAX_IDS_PER_QUERY`] ids.
pub(super) async fn select_accounts<T>(
    conn: &mut SqliteConnection,
    columns: &str,
    app: AppId,
    ids: &[&str],
) -> Result<Vec<T>>
where
    T: for<'r> sqlx::FromRow<'r, SqliteRow> + Send + Unpin,
{
    let mut rows = Vec::with_capacity(ids.len());
    for chunk in ids.chunks(MAX_IDS_PER_QUERY) {
        let sql = format!(
            "select {columns} from accounts where app_id = ? and user_id in ({})",
            placeholders(chunk.len())
        );
        // Not cached: the text varies with the batch size.
        let mut query = sqlx::query_as::<_, T>(&sql)
            .persistent(false)
            .bind(app_key(app));
        for id in chunk {
            query = query.bind(*id);
        }
        rows.extend(query.fetch_all(&mut *conn).await?);
    }
    Ok(rows)
}

/// The ids among `ids` that exist in the app.
pub(super) async fn existing_ids(
    conn: &mut SqliteConnection,
    app: AppId,
    ids: &[&str],
) -> Result<HashSet<String>> {
    let rows: Vec<(String,)> = select_accounts(conn, "user_id", app, ids).await?;
    Ok(rows.into_iter().map(|(id,)| id).collect())
}

/// One change-log row to insert.
pub(super) struct NewChange<'a> {
    pub(super) version: u64,
    pub(super) user: &'a str,
    pub(super) kind: ChangeKind,
    pub(super) items: String,
}

pub(super) async fn insert_change(
    conn: &mut SqliteConnection,
    app: AppId,
    origin: &OwnedOrigin,
    at_ms: i64,
    c: NewChange<'_>,
) -> Result<()> {
    // Linked to the account's newest change (its row, which is still there).
    sqlx::query(
        "insert into changes \
             (app_id, version, user_id, operator, client_ip, kind, items, at_ms, prev_version) \
         values (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, coalesce( \
             (select version from accounts where app_id = ?1 and user_id = ?3), 0))",
    )
    .bind(app_key(app))
    .bind(version_key(c.version)?)
    .bind(c.user)
    .bind(origin.operator.as_str())
    .bind(origin.client_ip.as_str())
    .bind(c.kind.as_str())
    .bind(c.items)
    .bind(at_ms)
    .execute(conn)
    .await?;
    Ok(())
}

/// Runs `sql` (no arguments, no rows) on the writer connection.
pub(super) async fn exec(conn: &mut SqliteConnection, sql: &'static str) -> Result<()> {
    sqlx::query(sql).execute(conn).await?;
    Ok(())
}

/// The shared reads ([`crate::read`]) in SQLite's dialect. A list of UserIDs is bound as one
/// JSON array (`json_each`), so the statement text stays fixed whatever the number of ids.
impl Dialect for sqlx::Sqlite {
    const READS: ReadSql = ReadSql {
        changes_since: "select version, user_id, operator, client_ip, kind, items, at_ms \
             from changes where app_id = ? and version > ? order by version limit ?",
        changes_of: CHANGES_OF_SQL,
        app_version: "select version from app_versions where app_id = ?",
        cursor: "select version from cursors where app_id = ? and name = ?",
        kicks: KICKS_SQL,
        apps: "select app_id from app_versions where version > 0 union select app_id from cursors",
        app_heads: "select app_id, version, kicks from app_versions",
        // A read transaction: one WAL snapshot for every read of the dump.
        begin_snapshot: "begin",
        dump_accounts: "select user_id, profile, version, updated_at_ms from accounts \
             where app_id = ? order by user_id",
        dump_changes: "select version, user_id, operator, client_ip, kind, items, at_ms \
             from changes where app_id = ? order by version",
        dump_cursors: "select name, version from cursors where app_id = ? order by name",
        scan_accounts: super::scan::SCAN_SQL,
        app_records: "select sdkappid, revision, body, updated_ms from app_records \
             where revision > ?1 order by revision",
    };

    type Ids<'a> = String;

    fn user_ids(ids: Vec<&str>) -> Result<String> {
        serde_json::to_string(&ids)
            .map_err(|e| StoreError::Corrupt(format!("cannot encode UserIDs: {e}")))
    }
}

/// The kicks of an app, by UserID: a range of the `kicks` primary key, read by every
/// [`crate::Store::kicks`] call (each push feed makes one every few seconds), so never a scan of
/// the app's accounts.
pub(super) const KICKS_SQL: &str =
    "select user_id, not_before from kicks where app_id = ? order by user_id";

/// The changes of some accounts (`?2`, a JSON array of distinct UserIDs) after a version (`?3`),
/// at most `?4` (≥ 1), in version order, by walking each account's chain of changes back from
/// its newest (`accounts.version`, or for a deleted account `deleted_accounts.version`) through
/// `changes.prev_version`, one primary-key lookup per change, at most `?5` per account and
/// never below `?3`: the cost grows with the number of accounts and the limit, never with the
/// app's log. A link that does not lead to a change of the same account (pruned) ends the walk.
/// `cross join` fixes the join order (SQLite's planner would otherwise range over the app's log
/// and probe the walk), and the walk is capped at `?5` changes per account. Every row also
/// carries `complete_after`: the highest link after `?3` that a walk capped at `?5` did not
/// follow (computed over the whole walk, before the limit), else `?3`.
pub(super) const CHANGES_OF_SQL: &str =
    "with recursive u(id) as (select value from json_each(?2)), \
     head(id, v) as (select u.id, coalesce( \
         (select version from accounts where app_id = ?1 and user_id = u.id), \
         (select version from deleted_accounts where app_id = ?1 and user_id = u.id), 0) from u), \
     walk(version, user_id, prev, n) as ( \
         select c.version, c.user_id, c.prev_version, 1 \
         from head cross join changes as c on c.app_id = ?1 and c.version = head.v \
         where head.v > ?3 and c.user_id = head.id \
         union all \
         select c.version, c.user_id, c.prev_version, w.n + 1 \
         from walk as w cross join changes as c on c.app_id = ?1 and c.version = w.prev \
         where w.prev > ?3 and w.n < ?5 and c.user_id = w.user_id), \
     oldest(version, cut) as (select version, \
         max(case when n >= ?5 and prev > ?3 then prev end) over () \
         from walk order by version limit ?4) \
     select c.version, c.user_id, c.operator, c.client_ip, c.kind, c.items, c.at_ms, \
         coalesce(oldest.cut, ?3) as complete_after \
     from oldest cross join changes as c on c.app_id = ?1 and c.version = oldest.version \
     order by c.version";
