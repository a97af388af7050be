//! The read statements: the shared reads ([`crate::read`]) in PostgreSQL's dialect, among them
//! the one whose query plan the tests check.

use crate::read::{Dialect, ReadSql};
use crate::Result;

/// The shared reads in PostgreSQL's dialect. Each is a single statement outside the dump (one
/// snapshot each, no locks); a list of UserIDs is bound as one `text[]`.
impl Dialect for sqlx::Postgres {
    const READS: ReadSql = ReadSql {
        changes_since: "select version, user_id, operator, client_ip, kind, items, at_ms \
             from changes where app_id = $1 and version > $2 order by version limit $3",
        changes_of: CHANGES_OF_SQL,
        app_version: "select version from app_versions where app_id = $1",
        cursor: "select version from cursors where app_id = $1 and name = $2",
        kicks: KICKS_SQL,
        apps: "select app_id from app_versions where version > 0 union select app_id from cursors",
        app_heads: "select app_id, version, kicks from app_versions",
        // One snapshot for every read of the dump.
        begin_snapshot: "begin isolation level repeatable read read only",
        dump_accounts: "select user_id, profile, version, updated_at_ms from accounts \
             where app_id = $1 order by user_id",
        dump_changes: "select version, user_id, operator, client_ip, kind, items, at_ms \
             from changes where app_id = $1 order by version",
        dump_cursors: "select name, version from cursors where app_id = $1 order by name",
        scan_accounts: super::scan::SCAN_SQL,
        app_records: "select sdkappid, revision, body, updated_ms from app_records \
             where revision > $1 order by revision",
    };

    type Ids<'a> = Vec<&'a str>;

    fn user_ids(ids: Vec<&str>) -> Result<Vec<&str>> {
        Ok(ids)
    }
}

/// The kicks of an app, by UserID (a range of the `kicks` primary key).
pub(super) const KICKS_SQL: &str =
    "select user_id, not_before from kicks where app_id = $1 order by user_id";

/// The changes of some accounts (`$2`) after a version (`$3`), at most `$4`, in version order:
/// each account's chain of changes walked back from its newest (`accounts.version`, or
/// `deleted_accounts.version`) through `changes.prev_version`, one primary-key lookup per change,
/// at most `$5` per account, then merged (as in the SQLite backend). The cost grows with the
/// number of accounts and the limit, not with the app's log. Every row also carries
/// `complete_after`: the highest link after `$3` that a walk capped at `$5` did not follow
/// (computed over the whole walk, before the limit), else `$3`.
pub(super) const CHANGES_OF_SQL: &str = "with recursive \
     head(id, v) as (select u.id, coalesce( \
         (select version from accounts where app_id = $1 and user_id = u.id), \
         (select version from deleted_accounts where app_id = $1 and user_id = u.id), 0) \
         from unnest($2::text[]) as u(id)), \
     walk(version, user_id, prev, n) as ( \
         select c.version, c.user_id, c.prev_version, 1 \
         from head join changes as c on c.app_id = $1 and c.version = head.v \
         where head.v > $3 and c.user_id = head.id \
         union all \
         select c.version, c.user_id, c.prev_version, w.n + 1 \
         from walk as w join changes as c on c.app_id = $1 and c.version = w.prev \
         where w.prev > $3 and w.n < $5 and c.user_id = w.user_id), \
     oldest(version, cut) as (select version, \
         max(case when n >= $5 and prev > $3 then prev end) over () \
         from walk order by version limit $4) \
     select c.version, c.user_id, c.operator, c.client_ip, c.kind, c.items, c.at_ms, \
         coalesce(oldest.cut, $3) as complete_after \
     from oldest join changes as c on c.app_id = $1 and c.version = oldest.version \
     order by c.version";
