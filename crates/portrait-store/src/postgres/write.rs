//! What every write shares: its transaction (begun with [`BEGIN`], the app's version row locked
//! by [`lock_app`]), rollback on error, a lone `set_profile`
//! and the statements of sets, imports and deletes.

use sqlx::postgres::PgConnection;
use sqlx::{Postgres, Transaction};

use crate::batch::{take_versions, SetJob};
use crate::codec::{app_key, unsigned, version_key};
use crate::{now_ms, AppId, Result, StoreError};

use super::PgBackend;

/// How every write transaction starts (explicit, whatever the server's default isolation).
pub(super) const BEGIN: &str = "begin isolation level read committed";

impl PgBackend {
    /// Starts a write transaction and locks `app`'s version row (steps 1–2 of a write, see the
    /// module docs). Returns the transaction and the app's current version.
    pub(super) async fn begin_write(
        &self,
        app: AppId,
    ) -> Result<(Transaction<'static, Postgres>, u64)> {
        let mut tx = self.pool.begin_with(BEGIN).await?;
        let version = lock_app(&mut tx, app).await?;
        Ok((tx, version))
    }

    /// One `set_profile` job in a transaction of its own (steps 1–4 of the module docs): the
    /// slow path of a batch that the database refused as a whole ([`batch`](super::batch)), so that each of
    /// its jobs gets its own result.
    pub(super) async fn set_one(&self, job: &SetJob) -> Result<u64> {
        let app = job.app;
        let (mut tx, last) = self.begin_write(app).await?;
        let at_ms = now_ms();
        let row: Option<(String, i64)> = sqlx::query_as(
            "select profile, version from accounts where app_id = $1 and user_id = $2",
        )
        .bind(app_key(app))
        .bind(&job.user)
        .fetch_optional(&mut *tx)
        .await?;
        let Some((stored, current)) = row else {
            return abort(tx, StoreError::NotFound).await;
        };
        let prepared = unsigned(current, "an account version")
            .and_then(|current| job.apply(&stored, current))
            .and_then(|profile| {
                let version = take_versions(app, last, 1)?;
                Ok((profile, version, version_key(version)?))
            });
        let (profile, version, key) = match prepared {
            Ok(prepared) => prepared,
            Err(e) => return abort(tx, e).await,
        };
        let updated: i64 = sqlx::query_scalar(SET_SQL)
            .bind(app_key(app))
            .bind(&job.user)
            .bind(profile)
            .bind(key)
            .bind(at_ms)
            .bind(&job.origin.operator)
            .bind(&job.change_items)
            .bind(&job.origin.client_ip)
            .bind(current)
            .fetch_one(&mut *tx)
            .await?;
        if updated != 1 {
            // The account was read under the app's lock, which every delete takes.
            return abort(tx, StoreError::NotFound).await;
        }
        tx.commit().await?;
        Ok(version)
    }
}

/// Locks the app's `app_versions` row until the transaction ends, creating it (at version 0) on
/// the app's first write; returns the app's version.
pub(super) async fn lock_app(conn: &mut PgConnection, app: AppId) -> Result<u64> {
    const LOCK: &str = "select version from app_versions where app_id = $1 for update";
    let mut locked: Option<i64> = sqlx::query_scalar(LOCK)
        .bind(app_key(app))
        .fetch_optional(&mut *conn)
        .await?;
    if locked.is_none() {
        // The app's first write. A concurrent first write makes this insert wait for it to end;
        // either way the row exists afterwards, and the next statement (a new snapshot) sees it.
        sqlx::query(
            "insert into app_versions (app_id, version) values ($1, 0) on conflict (app_id) do nothing",
        )
        .bind(app_key(app))
        .execute(&mut *conn)
        .await?;
        locked = sqlx::query_scalar(LOCK)
            .bind(app_key(app))
            .fetch_optional(&mut *conn)
            .await?;
    }
    let version = locked.ok_or_else(|| {
        StoreError::Corrupt(format!(
            "the version row of app {app} vanished while locked"
        ))
    })?;
    unsigned(version, "an app version")
}

/// Ends `tx` without writing anything (releasing the app's lock at once).
pub(super) async fn roll_back(tx: Transaction<'static, Postgres>) {
    // A failed rollback leaves nothing behind either: the server aborts the transaction when the
    // connection, now broken, is dropped.
    let _ = tx.rollback().await;
}

/// Ends `tx` without writing anything and returns `err`.
pub(super) async fn abort<T>(tx: Transaction<'static, Postgres>, err: StoreError) -> Result<T> {
    roll_back(tx).await;
    Err(err)
}

/// Step 3 of a `set_profile` written alone ([`PgBackend::set_one`], and batches of one): `$1` app,
/// `$2` user, `$3` profile, `$4` version, `$5` time, `$6` operator, `$7` change items, `$8` client
/// IP, `$9` the account's version before (its previous change). Its one row is the number of accounts updated. (For one row, this costs about half a millisecond less
/// than the batch statement's `unnest` join.)
pub(super) const SET_SQL: &str = "with account as ( \
        update accounts set profile = $3, version = $4, updated_at_ms = $5 \
        where app_id = $1 and user_id = $2 \
        returning 1 \
    ), change as ( \
        insert into changes \
            (app_id, version, user_id, operator, client_ip, kind, items, at_ms, prev_version) \
        values ($1, $4, $2, $6, $8, 'set', $7, $5, $9) \
    ), app as ( \
        update app_versions set version = $4 where app_id = $1 \
    ) \
    select count(*) from account";

/// Step 3 of `import_accounts`: `$1` app, `$2` users, `$3` profiles, `$4` versions (one per
/// user), `$5` time, `$6` operator, `$7` change items (one per user), `$8` the app's new version,
/// `$9` client IP. Each change links to the account's newest change before it (its row, or its
/// delete in `deleted_accounts`): every part of the statement sees the tables as they were before
/// it.
pub(super) const IMPORT_SQL: &str = "with account as ( \
        insert into accounts (app_id, user_id, profile, version, updated_at_ms) \
        select $1, t.user_id, t.profile, t.version, $5 \
        from unnest($2::text[], $3::text[], $4::bigint[]) as t (user_id, profile, version) \
        on conflict (app_id, user_id) do update \
        set profile = excluded.profile, version = excluded.version, updated_at_ms = excluded.updated_at_ms \
    ), change as ( \
        insert into changes \
            (app_id, version, user_id, operator, client_ip, kind, items, at_ms, prev_version) \
        select $1, t.version, t.user_id, $6, $9, 'import', t.items, $5, coalesce( \
            (select a.version from accounts a where a.app_id = $1 and a.user_id = t.user_id), \
            (select d.version from deleted_accounts d where d.app_id = $1 and d.user_id = t.user_id), \
            0) \
        from unnest($4::bigint[], $2::text[], $7::text[]) as t (version, user_id, items) \
    ), undeleted as ( \
        delete from deleted_accounts where app_id = $1 and user_id = any($2::text[]) \
    ) \
    update app_versions set version = $8 where app_id = $1";

/// Step 3 of `delete_accounts`: `$1` app, `$2` users, `$3` versions (one per user), `$4` time,
/// `$5` operator, `$6` the app's new version, `$7` client IP. Each delete links to the account's
/// newest change and becomes the head of its chain (`deleted_accounts`).
pub(super) const DELETE_SQL: &str = "with account as ( \
        delete from accounts where app_id = $1 and user_id = any($2::text[]) \
    ), change as ( \
        insert into changes \
            (app_id, version, user_id, operator, client_ip, kind, items, at_ms, prev_version) \
        select $1, t.version, t.user_id, $5, $7, 'delete', '[]', $4, coalesce( \
            (select a.version from accounts a where a.app_id = $1 and a.user_id = t.user_id), 0) \
        from unnest($3::bigint[], $2::text[]) as t (version, user_id) \
    ), head as ( \
        insert into deleted_accounts (app_id, user_id, version) \
        select $1, t.user_id, t.version from unnest($3::bigint[], $2::text[]) as t (version, user_id) \
        on conflict (app_id, user_id) do update set version = excluded.version \
    ) \
    update app_versions set version = $6 where app_id = $1";
