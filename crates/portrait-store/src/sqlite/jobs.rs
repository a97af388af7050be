//! The writes of the writer's other jobs, each run inside the batch's transaction: import,
//! delete, kick, cursor, prune and restore. Each takes its versions from the batch's allocator.

use portrait_core::Identifier;
use sqlx::sqlite::SqliteConnection;

use crate::codec::{
    self, app_key, distinct, encode_items, encode_profile, pruned_mark, stage_import, version_key,
};
use crate::{restore_conflict, AppDump, AppId, ChangeKind, Result, StoreError, PRUNED};

use super::batch::Versions;
use super::sql::{existing_ids, insert_change, select_accounts, NewChange};
use super::writer::{CursorJob, DeleteJob, ImportJob, KickJob, PruneJob};

/// The writes of an import (see [`apply_import`]) in one round trip: `?1` app, `?2` the accounts,
/// a JSON array of `[user, profile, version, change items]`; `?3` time; `?4` operator; `?5`
/// client IP. The change rows go first, so that each links to the account's newest change before
/// it (its account row, or its delete in `deleted_accounts`). (`where true` resolves SQLite's
/// `insert … select … on conflict` parsing ambiguity.)
pub(super) const IMPORT_SQL: &str = "insert into changes \
        (app_id, version, user_id, operator, client_ip, kind, items, at_ms, prev_version) \
    select ?1, j.value ->> 2, j.value ->> 0, ?4, ?5, 'import', j.value ->> 3, ?3, \
        coalesce((select version from accounts where app_id = ?1 and user_id = j.value ->> 0), \
            (select version from deleted_accounts where app_id = ?1 and user_id = j.value ->> 0), \
            0) \
    from json_each(?2) as j; \
    insert into accounts (app_id, user_id, profile, version, updated_at_ms) \
    select ?1, j.value ->> 0, j.value ->> 1, j.value ->> 2, ?3 from json_each(?2) as j where true \
    on conflict (app_id, user_id) do update \
    set profile = excluded.profile, version = excluded.version, updated_at_ms = excluded.updated_at_ms; \
    delete from deleted_accounts \
    where app_id = ?1 and user_id in (select j.value ->> 0 from json_each(?2) as j)";

/// Writes an import: reads the requested accounts that exist, stages the rows ([`stage_import`])
/// and writes them with [`IMPORT_SQL`].
pub(super) async fn apply_import(
    conn: &mut SqliteConnection,
    versions: &mut Versions,
    job: &ImportJob,
    at_ms: i64,
) -> Result<()> {
    let app = job.app;
    let ids = distinct(job.accounts.iter().map(|a| a.user.as_str()));
    let existing: Vec<(String, String)> =
        select_accounts(conn, "user_id, profile", app, &ids).await?;
    let rows = stage_import(&job.accounts, existing)?;
    if rows.is_empty() {
        return Ok(());
    }
    let first = versions.reserve(conn, app, rows.len()).await?;
    let mut accounts: Vec<(&str, &str, i64, &str)> = Vec::with_capacity(rows.len());
    for (version, row) in (first..).zip(&rows) {
        accounts.push((row.user, &row.profile, version_key(version)?, &row.items));
    }
    let accounts = serde_json::to_string(&accounts)
        .map_err(|e| StoreError::Corrupt(format!("cannot encode an import: {e}")))?;
    sqlx::query(IMPORT_SQL)
        .bind(app_key(app))
        .bind(accounts)
        .bind(at_ms)
        .bind(&job.origin.operator)
        .bind(&job.origin.client_ip)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

pub(super) async fn apply_delete(
    conn: &mut SqliteConnection,
    versions: &mut Versions,
    job: &DeleteJob,
    at_ms: i64,
) -> Result<Vec<bool>> {
    let app = job.app;
    let ids = distinct(job.users.iter().map(Identifier::as_str));
    let existing = existing_ids(conn, app, &ids).await?;
    let doomed: Vec<&str> = ids
        .into_iter()
        .filter(|id| existing.contains(*id))
        .collect();
    if !doomed.is_empty() {
        let first = versions.reserve(conn, app, doomed.len()).await?;
        for (version, user) in (first..).zip(doomed) {
            let change = NewChange {
                version,
                user,
                kind: ChangeKind::Delete,
                items: encode_items([])?,
            };
            insert_change(conn, app, &job.origin, at_ms, change).await?;
            // The delete is the newest change of an account with no row: the head of its chain.
            sqlx::query(
                "delete from accounts where app_id = ?1 and user_id = ?2; \
                 insert into deleted_accounts (app_id, user_id, version) values (?1, ?2, ?3) \
                 on conflict (app_id, user_id) do update set version = excluded.version",
            )
            .bind(app_key(app))
            .bind(user)
            .bind(version_key(version)?)
            .execute(&mut *conn)
            .await?;
        }
    }
    Ok(job
        .users
        .iter()
        .map(|u| existing.contains(u.as_str()))
        .collect())
}

/// [`crate::Store::kick`]: recorded in `kicks` (which outlives the account row) if the account
/// exists.
pub(super) async fn apply_kick(conn: &mut SqliteConnection, job: &KickJob) -> Result<bool> {
    // `max`: a later kick with an earlier time never un-revokes a UserSig.
    let done = sqlx::query(
        "insert into kicks (app_id, user_id, not_before) select ?1, ?2, ?3 \
         where exists (select 1 from accounts where app_id = ?1 and user_id = ?2) \
         on conflict (app_id, user_id) do update set not_before = max(not_before, excluded.not_before)",
    )
    .bind(app_key(job.app))
    .bind(job.user.as_str())
    .bind(job.not_before)
    .execute(&mut *conn)
    .await?;
    if done.rows_affected() == 0 {
        return Ok(false);
    }
    bump_kicks(conn, job.app).await?;
    Ok(true)
}

/// Moves the app's kicks revision (`Store::app_heads`), in the transaction that wrote its kicks.
async fn bump_kicks(conn: &mut SqliteConnection, app: AppId) -> Result<()> {
    sqlx::query(
        "insert into app_versions (app_id, version, kicks) values (?1, 0, 1) \
         on conflict (app_id) do update set kicks = kicks + 1",
    )
    .bind(app_key(app))
    .execute(conn)
    .await?;
    Ok(())
}

pub(super) async fn apply_cursor(conn: &mut SqliteConnection, job: &CursorJob) -> Result<()> {
    sqlx::query(
        "insert into cursors (app_id, name, version) values (?1, ?2, ?3) \
         on conflict (app_id, name) do update set version = excluded.version",
    )
    .bind(app_key(job.app))
    .bind(job.name.as_str())
    .bind(job.version)
    .execute(conn)
    .await?;
    Ok(())
}

/// [`crate::Store::prune_changes`]: the oldest `limit` changes at or below `through` go, and the
/// [`PRUNED`] cursor follows (never backwards).
pub(super) async fn apply_prune(conn: &mut SqliteConnection, job: &PruneJob) -> Result<usize> {
    let app = app_key(job.app);
    let (deleted, highest): (i64, Option<i64>) = sqlx::query_as(
        "select count(*), max(version) from (select version from changes \
         where app_id = ?1 and version <= ?2 order by version limit ?3)",
    )
    .bind(app)
    .bind(job.through)
    .bind(job.limit)
    .fetch_one(&mut *conn)
    .await?;
    if let Some(highest) = highest {
        // A deleted account whose delete is pruned has no chain left to walk.
        sqlx::query(
            "delete from changes where app_id = ?1 and version <= ?2; \
             delete from deleted_accounts where app_id = ?1 and version <= ?2",
        )
        .bind(app)
        .bind(highest)
        .execute(&mut *conn)
        .await?;
    }
    // The app's version as committed before this batch.
    let committed: i64 = sqlx::query_scalar(
        "select coalesce((select version from app_versions where app_id = ?1), 0)",
    )
    .bind(app)
    .fetch_one(&mut *conn)
    .await?;
    let pruned = pruned_mark(deleted, job.limit, highest, job.through, committed);
    sqlx::query(
        "insert into cursors (app_id, name, version) values (?1, ?2, ?3) \
         on conflict (app_id, name) do update set version = max(version, excluded.version)",
    )
    .bind(app)
    .bind(PRUNED)
    .bind(pruned)
    .execute(&mut *conn)
    .await?;
    usize::try_from(deleted).map_err(|_| StoreError::Corrupt(format!("{deleted} changes deleted")))
}

pub(super) async fn apply_restore(
    conn: &mut SqliteConnection,
    versions: &mut Versions,
    dump: &AppDump,
) -> Result<()> {
    // `dump.check()` ran in `restore_app`, off the writer's thread.
    let app = app_key(dump.app);
    // Versions this batch handed out are in `changes` already, so they count as data here.
    let taken: bool = sqlx::query_scalar(
        "select exists (select 1 from accounts where app_id = ?1) \
             or exists (select 1 from changes where app_id = ?1) \
             or exists (select 1 from cursors where app_id = ?1) \
             or exists (select 1 from kicks where app_id = ?1) \
             or exists (select 1 from app_versions where app_id = ?1 and version > 0)",
    )
    .bind(app)
    .fetch_one(&mut *conn)
    .await?;
    if taken {
        return Err(restore_conflict(dump.app));
    }
    for a in &dump.accounts {
        sqlx::query(
            "insert into accounts (app_id, user_id, profile, version, updated_at_ms) \
             values (?, ?, ?, ?, ?)",
        )
        .bind(app)
        .bind(a.user.as_str())
        .bind(encode_profile(&a.profile.fields)?)
        .bind(version_key(a.profile.version)?)
        .bind(a.profile.updated_at_ms)
        .execute(&mut *conn)
        .await?;
    }
    for (user, not_before) in &dump.kicks {
        sqlx::query("insert into kicks (app_id, user_id, not_before) values (?, ?, ?)")
            .bind(app)
            .bind(user.as_str())
            .bind(i64::try_from(*not_before).unwrap_or(i64::MAX))
            .execute(&mut *conn)
            .await?;
    }
    let chains = codec::chains(dump);
    for (c, prev) in dump.changes.iter().zip(&chains.prev) {
        sqlx::query(
            "insert into changes \
                 (app_id, version, user_id, operator, client_ip, kind, items, at_ms, prev_version) \
             values (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(app)
        .bind(version_key(c.version)?)
        .bind(c.user.as_str())
        .bind(c.operator.as_str())
        .bind(c.client_ip.as_str())
        .bind(c.kind.as_str())
        .bind(encode_items(c.items.iter().map(|(t, v)| (t.as_str(), v)))?)
        .bind(c.at_ms)
        .bind(version_key(*prev)?)
        .execute(&mut *conn)
        .await?;
    }
    for (user, version) in &chains.deleted {
        sqlx::query("insert into deleted_accounts (app_id, user_id, version) values (?, ?, ?)")
            .bind(app)
            .bind(*user)
            .bind(version_key(*version)?)
            .execute(&mut *conn)
            .await?;
    }
    for (name, version) in &dump.cursors {
        sqlx::query("insert into cursors (app_id, name, version) values (?, ?, ?)")
            .bind(app)
            .bind(name.as_str())
            .bind(version_key(*version)?)
            .execute(&mut *conn)
            .await?;
    }
    if !dump.kicks.is_empty() {
        bump_kicks(conn, dump.app).await?;
    }
    if dump.version > 0 {
        sqlx::query(
            "insert into app_versions (app_id, version) values (?1, ?2) \
             on conflict (app_id) do update set version = excluded.version",
        )
        .bind(app)
        .bind(version_key(dump.version)?)
        .execute(&mut *conn)
        .await?;
        versions.restored(dump.app, dump.version);
    }
    Ok(())
}
