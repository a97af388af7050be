//! The PostgreSQL backend, for deployments where several Portrait nodes share one database
//! (`postgres://USER[:PASSWORD]@HOST[:PORT]/DATABASE`, or `postgresql://…`).
//!
//! * **Schema**: `migrations/postgres/` (embedded, run on open; sqlx holds an advisory lock while
//!   migrating, so nodes starting together migrate once). The tables and what their columns hold
//!   are those of the SQLite backend (shared encoding in `codec.rs`): app ids as `bigint` (the u64
//!   reinterpreted), profiles and change items as *text* in the packed form of `codec.rs` (rows
//!   written as JSON by earlier versions still decode), user ids sorting bytewise (`collate "C"`). Servers older
//!   than [`MIN_SERVER_VERSION`] are refused on open.
//! * **Pool**: at most [`PoolSettings::max_connections`] connections, opened on demand and closed
//!   after [`IDLE_TIMEOUT`] idle. Waiting for a connection, including (re)connecting, is bounded by
//!   [`PoolSettings::acquire_timeout`]: while the database is down every call fails within that
//!   time with [`StoreError::Unavailable`] instead of hanging. Each connection is tested before it
//!   is handed out and broken ones are replaced, so the store recovers by itself when the database
//!   is back. Every session sets `idle_in_transaction_session_timeout`, so a node that vanishes in
//!   the middle of a transaction cannot hold its app's write lock (below) for long.
//! * **Writes**: each write is carried out in a `READ COMMITTED` transaction:
//!   1. lock the app's `app_versions` row (`select … for update`; the app's first write creates
//!      it), held until `COMMIT`/`ROLLBACK`;
//!   2. read what the write needs (the accounts) in a *new* statement, whose snapshot therefore
//!      includes every write of the app committed before the lock was granted (a read in the
//!      locking statement itself would use the snapshot from before the wait, and lose updates);
//!   3. one statement writes the data, the change-log rows and the app's new version
//!      (data-modifying CTEs);
//!   4. `COMMIT`.
//!
//!   [`Store::set_profile`] (the hot path) is *group-committed* (`postgres/batch.rs`): the sets of one app
//!   that are waiting in this process share one such transaction, each account read once and
//!   written once, one change row per set, one `COMMIT`. Each set is answered only after that
//!   `COMMIT`; a set that fails (missing account, stale expected version) fails alone, before
//!   anything is written, and takes no version; a set sees the sets before it in the batch. The
//!   other writes (imports, deletes, restores) keep a transaction each.
//!
//!   A write that fails rolls back: it takes no version and leaves nothing behind. Lock order is
//!   always the app row first, then account rows; [`Store::kick`] (which takes no version) locks
//!   a single account row and nothing else, and a transaction (a batch included) never touches
//!   two apps, so writers cannot deadlock, within a process or between nodes.
//! * **Versions become visible in version order** (what realtime push relies on: a reader that
//!   sees change version *v* committed also sees every lower version of the app). The writer that
//!   hands out *v + 1* can only get the app's lock after the writer of *v* has ended, and
//!   PostgreSQL makes a commit visible to new snapshots *before* it releases the committing
//!   transaction's locks. So a snapshot that sees *v + 1* was taken after *v* committed and sees
//!   *v* as well: no reader ever observes a gap that is later filled. A batch is one writer: it
//!   hands out a run of versions under the lock and they become visible together. Versions from a
//!   sequence would not give this (values are handed out at `nextval`, and commits land in any
//!   order); the conformance check `versions_become_visible_in_version_order` catches that.
//! * **Throughput**: the writes of one app are serialised from lock to `COMMIT`, across every
//!   node, and each `COMMIT` waits for one WAL flush. With a transaction per set that capped one
//!   app at about one set per commit latency; with group commit a batch carries every set that
//!   queued up meanwhile (at most 256, `MAX_BATCH`). `examples/set_bench.rs`, 64 concurrent
//!   callers on the 2-core development machine: one app 560–1 550 → 26 500–28 700 sets/s (p99
//!   72–410 → ~6 ms), 8 apps ~3 000 → ~12 000 sets/s; a lone caller is unchanged (~0.75 ms per
//!   set). Different apps write in parallel, each batch on a connection of its own.
//! * **Reads** are single statements (one snapshot each) and take no locks.
//! * **Secrets**: the URL never appears in errors or logs (see [`crate::redact_url`]), and the
//!   store's `Debug` shows only pool and batch statistics.

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use portrait_core::{Identifier, ProfileValue, Tag};
use sqlx::postgres::{PgConnectOptions, PgConnection, PgPool, PgPoolOptions};
use sqlx::{Executor, Postgres, Transaction};

use crate::codec::{
    app_from_key, app_key, distinct, encode_items, encode_profile, merge_items, pruned_mark,
    stage_import, stored_account, unsigned, version_key, AccountRow, ChangeRow,
};
use crate::{
    migrate_error, now_ms, pack_profiles, redact_url, restore_conflict, AppDump, AppId, Change,
    NewAccount, Origin, PackedProfile, Profile, Result, Store, StoreError, PRUNED,
};

mod batch;

/// The embedded migrations (`crates/portrait-store/migrations/postgres`).
static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");

/// Default of [`PoolSettings::max_connections`].
pub const MAX_CONNECTIONS: u32 = 16;
/// Default of [`PoolSettings::acquire_timeout`]: a little under the server's default 3 s request
/// deadline, so that while the database is down a request fails with the store's own error (and
/// its cause in the log) rather than with the deadline's.
pub const ACQUIRE_TIMEOUT: Duration = Duration::from_millis(2500);
/// An idle connection is closed after this long (connections are reopened on demand).
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(600);
/// Connections are replaced after this long, spreading load after a failover.
const MAX_LIFETIME: Duration = Duration::from_secs(1800);
/// The server ends a session that stays idle inside a transaction this long (milliseconds).
const IDLE_IN_TRANSACTION_TIMEOUT_MS: u32 = 30_000;
/// The oldest PostgreSQL accepted, as `server_version_num` (12.0).
pub const MIN_SERVER_VERSION: i32 = 120_000;
/// Rows per statement when restoring a dump.
const RESTORE_CHUNK: usize = 5_000;
/// How every write transaction starts (explicit, whatever the server's default isolation).
const BEGIN: &str = "begin isolation level read committed";

/// Pool bounds of a [`PgStore`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PoolSettings {
    /// Most connections open at once; further calls wait for one (up to `acquire_timeout`).
    pub max_connections: u32,
    /// Longest a call waits for a connection, (re)connecting included, before it fails with
    /// [`StoreError::Unavailable`].
    pub acquire_timeout: Duration,
}

impl Default for PoolSettings {
    fn default() -> Self {
        Self {
            max_connections: MAX_CONNECTIONS,
            acquire_timeout: ACQUIRE_TIMEOUT,
        }
    }
}

/// The PostgreSQL [`Store`]. Cheap to clone (clones share the pool); [`Store::close`] closes the
/// pool for every clone.
#[derive(Clone)]
pub struct PgStore {
    pool: PgPool,
    /// The per-app queues of `set_profile` jobs and their batches (group commit, see
    /// [`batch`]); shared by clones, so that every call of this process joins the same batches.
    lanes: Arc<batch::Lanes>,
}

/// Pool statistics only: the connect options hold the password.
impl fmt::Debug for PgStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PgStore")
            .field("connections", &self.pool.size())
            .field("idle", &self.pool.num_idle())
            .field("closed", &self.pool.is_closed())
            .field("queued_sets", &self.lanes.queued())
            .field("set_batches", &self.lanes.batches())
            .finish()
    }
}

impl PgStore {
    /// Opens the database at `url` with the default [`PoolSettings`], checks the server version
    /// and runs pending migrations.
    ///
    /// # Errors
    /// [`StoreError::Config`] for a malformed URL, a server older than [`MIN_SERVER_VERSION`] or a
    /// database migrated by a newer Portrait; [`StoreError::Unavailable`] if the database cannot be
    /// reached within the acquire timeout. Messages never contain the password.
    pub async fn open(url: &str) -> Result<Self> {
        Self::open_with(Self::connect_options(url)?, PoolSettings::default()).await
    }

    /// Parses a `postgres://` URL (libpq-style query parameters such as `sslmode` included).
    ///
    /// # Errors
    /// [`StoreError::Config`] if it cannot be parsed.
    pub fn connect_options(url: &str) -> Result<PgConnectOptions> {
        PgConnectOptions::from_str(url)
            .map_err(|e| StoreError::Config(format!("store url {:?}: {e}", redact_url(url))))
    }

    /// [`PgStore::open`] with explicit connect options and pool bounds.
    ///
    /// # Errors
    /// As [`PgStore::open`].
    pub async fn open_with(options: PgConnectOptions, settings: PoolSettings) -> Result<Self> {
        if settings.max_connections == 0 {
            return Err(StoreError::Config(
                "the PostgreSQL pool needs at least one connection".into(),
            ));
        }
        let options = match options.get_application_name() {
            Some(_) => options,
            None => options.application_name("portrait"),
        };
        let pool = PgPoolOptions::new()
            .max_connections(settings.max_connections)
            .min_connections(0)
            .acquire_timeout(settings.acquire_timeout)
            .idle_timeout(IDLE_TIMEOUT)
            .max_lifetime(MAX_LIFETIME)
            .test_before_acquire(true)
            .after_connect(|conn, _meta| {
                Box::pin(async move {
                    // A plain `set` rather than a startup option: poolers such as PgBouncer refuse
                    // unknown startup parameters.
                    conn.execute(
                        format!(
                            "set idle_in_transaction_session_timeout = {IDLE_IN_TRANSACTION_TIMEOUT_MS}"
                        )
                        .as_str(),
                    )
                    .await?;
                    Ok(())
                })
            })
            .connect_lazy_with(options);
        let store = Self::with_pool(pool);
        if let Err(e) = store.prepare().await {
            store.pool.close().await;
            return Err(e);
        }
        tracing::debug!("opened the postgres store");
        Ok(store)
    }

    fn with_pool(pool: PgPool) -> Self {
        Self {
            pool,
            lanes: Arc::default(),
        }
    }

    /// Checks the server version and runs pending migrations.
    async fn prepare(&self) -> Result<()> {
        let version: i32 =
            sqlx::query_scalar("select current_setting('server_version_num')::integer")
                .fetch_one(&self.pool)
                .await?;
        if version < MIN_SERVER_VERSION {
            return Err(StoreError::Config(format!(
                "PostgreSQL {}.{} is too old; Portrait needs {} or newer",
                version / 10_000,
                version % 10_000,
                MIN_SERVER_VERSION / 10_000
            )));
        }
        MIGRATOR.run(&self.pool).await.map_err(migrate_error)
    }

    /// Starts a write transaction and locks `app`'s version row (steps 1–2 of a write, see the
    /// module docs). Returns the transaction and the app's current version.
    async fn begin_write(&self, app: AppId) -> Result<(Transaction<'static, Postgres>, u64)> {
        let mut tx = self.pool.begin_with(BEGIN).await?;
        let version = lock_app(&mut tx, app).await?;
        Ok((tx, version))
    }

    /// One `set_profile` job in a transaction of its own (steps 1–4 of the module docs): the
    /// slow path of a batch that the database refused as a whole ([`batch`]), so that each of
    /// its jobs gets its own result.
    async fn set_one(&self, app: AppId, job: &batch::SetJob) -> Result<u64> {
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
        let checked =
            unsigned(current, "an account version").and_then(|current| match job.expected {
                Some(expected) if expected != current => {
                    Err(StoreError::VersionConflict { current })
                }
                _ => Ok(()),
            });
        let prepared = checked
            .and_then(|()| merge_items(&stored, &job.user, &job.items))
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
async fn lock_app(conn: &mut PgConnection, app: AppId) -> Result<u64> {
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

/// The first of `n` (≥ 1) versions following `last`.
fn take_versions(app: AppId, last: u64, n: usize) -> Result<u64> {
    u64::try_from(n)
        .ok()
        .and_then(|n| last.checked_add(n))
        .filter(|v| i64::try_from(*v).is_ok())
        .map(|_| last + 1)
        .ok_or_else(|| StoreError::Conflict {
            what: format!("{n} more changes overflow the version of app {app}"),
        })
}

/// Ends `tx` without writing anything (releasing the app's lock at once).
async fn roll_back(tx: Transaction<'static, Postgres>) {
    // A failed rollback leaves nothing behind either: the server aborts the transaction when the
    // connection, now broken, is dropped.
    let _ = tx.rollback().await;
}

/// Ends `tx` without writing anything and returns `err`.
async fn abort<T>(tx: Transaction<'static, Postgres>, err: StoreError) -> Result<T> {
    roll_back(tx).await;
    Err(err)
}

/// Step 3 of a `set_profile` written alone ([`PgStore::set_one`], and batches of one): `$1` app,
/// `$2` user, `$3` profile, `$4` version, `$5` time, `$6` operator, `$7` change items, `$8` client
/// IP, `$9` the account's version before (its previous change). Its one row is the number of accounts updated. (For one row, this costs about half a millisecond less
/// than the batch statement's `unnest` join.)
const SET_SQL: &str = "with account as ( \
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
const IMPORT_SQL: &str = "with account as ( \
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
const DELETE_SQL: &str = "with account as ( \
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

#[async_trait]
impl Store for PgStore {
    #[tracing::instrument(skip_all, fields(app = app, accounts = accounts.len()))]
    async fn import_accounts(
        &self,
        app: AppId,
        accounts: &[NewAccount],
        origin: Origin<'_>,
    ) -> Result<()> {
        if accounts.is_empty() {
            return Ok(());
        }
        let ids = distinct(accounts.iter().map(|a| a.user.as_str()));
        let (mut tx, last) = self.begin_write(app).await?;
        let at_ms = now_ms();

        // Every requested account's stored profile, for the ones that exist.
        let existing: Vec<(String, String)> = sqlx::query_as(
            "select user_id, profile from accounts where app_id = $1 and user_id = any($2::text[])",
        )
        .bind(app_key(app))
        .bind(&ids)
        .fetch_all(&mut *tx)
        .await?;
        let rows = match stage_import(accounts, existing) {
            Ok(rows) if rows.is_empty() => {
                roll_back(tx).await;
                return Ok(());
            }
            Ok(rows) => rows,
            Err(e) => return abort(tx, e).await,
        };
        let first = match take_versions(app, last, rows.len()) {
            Ok(first) => first,
            Err(e) => return abort(tx, e).await,
        };
        let n = rows.len();
        let mut users = Vec::with_capacity(n);
        let mut stored = Vec::with_capacity(n);
        let mut versions = Vec::with_capacity(n);
        let mut items = Vec::with_capacity(n);
        for (version, row) in (first..).zip(rows) {
            users.push(row.user);
            stored.push(row.profile);
            versions.push(version_key(version)?);
            items.push(row.items);
        }
        let new_last = *versions.last().expect("at least one change");
        sqlx::query(IMPORT_SQL)
            .bind(app_key(app))
            .bind(&users)
            .bind(&stored)
            .bind(&versions)
            .bind(at_ms)
            .bind(origin.operator)
            .bind(&items)
            .bind(new_last)
            .bind(origin.client_ip)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    #[tracing::instrument(skip_all, fields(app = app, users = users.len()))]
    async fn delete_accounts(
        &self,
        app: AppId,
        users: &[Identifier],
        origin: Origin<'_>,
    ) -> Result<Vec<bool>> {
        if users.is_empty() {
            return Ok(Vec::new());
        }
        let ids = distinct(users.iter().map(Identifier::as_str));
        let (mut tx, last) = self.begin_write(app).await?;
        let at_ms = now_ms();
        let existing: HashSet<String> = sqlx::query_scalar(
            "select user_id from accounts where app_id = $1 and user_id = any($2::text[])",
        )
        .bind(app_key(app))
        .bind(&ids)
        .fetch_all(&mut *tx)
        .await?
        .into_iter()
        .collect();
        let doomed: Vec<&str> = ids
            .into_iter()
            .filter(|id| existing.contains(*id))
            .collect();
        let answer = users
            .iter()
            .map(|u| existing.contains(u.as_str()))
            .collect();
        if doomed.is_empty() {
            roll_back(tx).await;
            return Ok(answer);
        }
        let first = match take_versions(app, last, doomed.len()) {
            Ok(first) => first,
            Err(e) => return abort(tx, e).await,
        };
        let versions = (first..)
            .take(doomed.len())
            .map(version_key)
            .collect::<Result<Vec<i64>>>()?;
        let new_last = *versions.last().expect("at least one change");
        sqlx::query(DELETE_SQL)
            .bind(app_key(app))
            .bind(&doomed)
            .bind(&versions)
            .bind(at_ms)
            .bind(origin.operator)
            .bind(new_last)
            .bind(origin.client_ip)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(answer)
    }

    #[tracing::instrument(skip_all, fields(app = app, users = users.len()))]
    async fn accounts_exist(&self, app: AppId, users: &[Identifier]) -> Result<Vec<bool>> {
        if users.is_empty() {
            return Ok(Vec::new());
        }
        let ids = distinct(users.iter().map(Identifier::as_str));
        let existing: HashSet<String> = sqlx::query_scalar(
            "select user_id from accounts where app_id = $1 and user_id = any($2::text[])",
        )
        .bind(app_key(app))
        .bind(&ids)
        .fetch_all(&self.pool)
        .await?
        .into_iter()
        .collect();
        Ok(users
            .iter()
            .map(|u| existing.contains(u.as_str()))
            .collect())
    }

    #[tracing::instrument(skip_all, fields(app = app))]
    async fn kick(&self, app: AppId, user: &Identifier, not_before: u64) -> Result<bool> {
        // `greatest`: a later kick with an earlier time never un-revokes a UserSig. Saturating: a
        // `not_before` past year 292 billion revokes everything either way.
        // Recorded in `kicks`, which outlives the account row, if the account exists.
        let done = sqlx::query(
            "insert into kicks (app_id, user_id, not_before) select $2, $3, $1 \
             where exists (select 1 from accounts where app_id = $2 and user_id = $3) \
             on conflict (app_id, user_id) \
             do update set not_before = greatest(kicks.not_before, excluded.not_before)",
        )
        .bind(i64::try_from(not_before).unwrap_or(i64::MAX))
        .bind(app_key(app))
        .bind(user.as_str())
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() > 0)
    }

    #[tracing::instrument(skip_all, fields(app = app))]
    async fn kicks(&self, app: AppId) -> Result<Vec<(String, u64)>> {
        let rows: Vec<(String, i64)> = sqlx::query_as(KICKS_SQL)
            .bind(app_key(app))
            .fetch_all(&self.pool)
            .await?;
        kicks_from(rows)
    }

    #[tracing::instrument(skip_all, fields(app = app, items = items.len()))]
    async fn set_profile_expecting(
        &self,
        app: AppId,
        user: &Identifier,
        items: &[(Tag, ProfileValue)],
        origin: Origin<'_>,
        expected: Option<u64>,
    ) -> Result<u64> {
        let job = batch::SetJob {
            user: user.as_str().to_owned(),
            items: items.to_vec(),
            change_items: encode_items(items.iter().map(|(t, v)| (t.name(), v)))?,
            origin: origin.into(),
            expected,
        };
        batch::submit(self, app, job).await
    }

    #[tracing::instrument(skip_all, fields(app = app, users = users.len()))]
    async fn get_profiles(&self, app: AppId, users: &[Identifier]) -> Result<Vec<Option<Profile>>> {
        if users.is_empty() {
            return Ok(Vec::new());
        }
        let ids = distinct(users.iter().map(Identifier::as_str));
        let rows: Vec<AccountRow> = sqlx::query_as(
            "select user_id, profile, version, updated_at_ms from accounts \
             where app_id = $1 and user_id = any($2::text[])",
        )
        .bind(app_key(app))
        .bind(&ids)
        .fetch_all(&self.pool)
        .await?;
        let found: HashMap<String, Profile> = rows
            .into_iter()
            .map(AccountRow::into_profile)
            .collect::<Result<_>>()?;
        Ok(users
            .iter()
            .map(|u| found.get(u.as_str()).cloned())
            .collect())
    }

    async fn get_profiles_shared(
        &self,
        app: AppId,
        users: &[Identifier],
    ) -> Result<Vec<Option<PackedProfile>>> {
        Ok(pack_profiles(self.get_profiles(app, users).await?))
    }

    #[tracing::instrument(skip_all, fields(app = app, since = since, limit = limit))]
    async fn changes_since(&self, app: AppId, since: u64, limit: usize) -> Result<Vec<Change>> {
        let Ok(since) = i64::try_from(since) else {
            return Ok(Vec::new()); // no version is that large
        };
        if limit == 0 {
            return Ok(Vec::new());
        }
        let rows: Vec<ChangeRow> = sqlx::query_as(
            "select version, user_id, operator, client_ip, kind, items, at_ms from changes \
             where app_id = $1 and version > $2 order by version limit $3",
        )
        .bind(app_key(app))
        .bind(since)
        .bind(i64::try_from(limit).unwrap_or(i64::MAX))
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter().map(ChangeRow::into_change).collect()
    }

    #[tracing::instrument(skip_all, fields(app = app, users = users.len(), since = since, limit = limit))]
    async fn changes_of(
        &self,
        app: AppId,
        users: &[Identifier],
        since: u64,
        limit: usize,
    ) -> Result<Vec<Change>> {
        let Some((since, ids)) = crate::codec::changes_of_args(users, since, limit) else {
            return Ok(Vec::new());
        };
        let rows: Vec<ChangeRow> = sqlx::query_as(CHANGES_OF_SQL)
            .bind(app_key(app))
            .bind(&ids)
            .bind(since)
            .bind(i64::try_from(limit).unwrap_or(i64::MAX))
            .bind(crate::codec::MAX_CHAIN_WALK)
            .fetch_all(&self.pool)
            .await?;
        rows.into_iter().map(ChangeRow::into_change).collect()
    }

    #[tracing::instrument(skip_all, fields(app = app))]
    async fn current_version(&self, app: AppId) -> Result<u64> {
        let version: Option<i64> =
            sqlx::query_scalar("select version from app_versions where app_id = $1")
                .bind(app_key(app))
                .fetch_optional(&self.pool)
                .await?;
        version.map_or(Ok(0), |v| unsigned(v, "an app version"))
    }

    #[tracing::instrument(skip_all, fields(app = app, name = name))]
    async fn cursor(&self, app: AppId, name: &str) -> Result<Option<u64>> {
        let version: Option<i64> =
            sqlx::query_scalar("select version from cursors where app_id = $1 and name = $2")
                .bind(app_key(app))
                .bind(name)
                .fetch_optional(&self.pool)
                .await?;
        version.map(|v| unsigned(v, "a cursor")).transpose()
    }

    #[tracing::instrument(skip_all, fields(app = app, name = name, version = version))]
    async fn set_cursor(&self, app: AppId, name: &str, version: u64) -> Result<()> {
        sqlx::query(
            "insert into cursors (app_id, name, version) values ($1, $2, $3) \
             on conflict (app_id, name) do update set version = excluded.version",
        )
        .bind(app_key(app))
        .bind(name)
        .bind(version_key(version)?)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    #[tracing::instrument(skip_all, fields(app = app, through = through))]
    async fn prune_changes(&self, app: AppId, through: u64, limit: usize) -> Result<usize> {
        if limit == 0 {
            return Ok(0);
        }
        let through = i64::try_from(through).unwrap_or(i64::MAX);
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        // No app lock: pruning touches only versions long committed, and the cursor moves by
        // `greatest`, so nodes pruning at once agree.
        let mut tx = self.pool.begin().await?;
        let (deleted, highest): (i64, Option<i64>) = sqlx::query_as(
            "with doomed as (select version from changes \
                 where app_id = $1 and version <= $2 order by version limit $3), \
             gone as (delete from changes c using doomed d \
                 where c.app_id = $1 and c.version = d.version returning c.version), \
             heads as (delete from deleted_accounts \
                 where app_id = $1 and version <= (select max(version) from doomed)) \
             select count(*), max(version) from gone",
        )
        .bind(app_key(app))
        .bind(through)
        .bind(limit)
        .fetch_one(&mut *tx)
        .await?;
        let committed: i64 = sqlx::query_scalar(
            "select coalesce((select version from app_versions where app_id = $1), 0)",
        )
        .bind(app_key(app))
        .fetch_one(&mut *tx)
        .await?;
        let pruned = pruned_mark(deleted, limit, highest, through, committed);
        sqlx::query(
            "insert into cursors (app_id, name, version) values ($1, $2, $3) \
             on conflict (app_id, name) do update \
             set version = greatest(cursors.version, excluded.version)",
        )
        .bind(app_key(app))
        .bind(PRUNED)
        .bind(pruned)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        usize::try_from(deleted)
            .map_err(|_| StoreError::Corrupt(format!("{deleted} changes deleted")))
    }

    #[tracing::instrument(skip_all, fields(app = app, name = name))]
    async fn lease(&self, app: AppId, name: &str, holder: &str, ttl_ms: u64) -> Result<bool> {
        // Taken if free, expired, or already ours; the row lock serialises competing nodes.
        let got: Option<String> = sqlx::query_scalar(
            "insert into leases (app_id, name, holder, expires_at) \
             values ($1, $2, $3, now() + $4 * interval '1 millisecond') \
             on conflict (app_id, name) do update \
             set holder = excluded.holder, expires_at = excluded.expires_at \
             where leases.holder = excluded.holder or leases.expires_at < now() \
             returning holder",
        )
        .bind(app_key(app))
        .bind(name)
        .bind(holder)
        .bind(i64::try_from(ttl_ms).unwrap_or(i64::MAX) as f64)
        .fetch_optional(&self.pool)
        .await?;
        Ok(got.is_some())
    }

    #[tracing::instrument(skip_all)]
    async fn apps(&self) -> Result<Vec<AppId>> {
        let keys: Vec<i64> = sqlx::query_scalar(
            "select app_id from app_versions where version > 0 union select app_id from cursors",
        )
        .fetch_all(&self.pool)
        .await?;
        let mut apps: Vec<AppId> = keys.into_iter().map(app_from_key).collect();
        apps.sort_unstable();
        Ok(apps)
    }

    #[tracing::instrument(skip_all, fields(app = app))]
    async fn dump_app(&self, app: AppId) -> Result<AppDump> {
        // One snapshot for all four reads.
        let mut tx = self
            .pool
            .begin_with("begin isolation level repeatable read read only")
            .await?;
        let version: Option<i64> =
            sqlx::query_scalar("select version from app_versions where app_id = $1")
                .bind(app_key(app))
                .fetch_optional(&mut *tx)
                .await?;
        let accounts: Vec<(String, String, i64, i64)> = sqlx::query_as(
            "select user_id, profile, version, updated_at_ms from accounts \
             where app_id = $1 order by user_id",
        )
        .bind(app_key(app))
        .fetch_all(&mut *tx)
        .await?;
        let kicks: Vec<(String, i64)> = sqlx::query_as(KICKS_SQL)
            .bind(app_key(app))
            .fetch_all(&mut *tx)
            .await?;
        let changes: Vec<ChangeRow> = sqlx::query_as(
            "select version, user_id, operator, client_ip, kind, items, at_ms from changes \
             where app_id = $1 order by version",
        )
        .bind(app_key(app))
        .fetch_all(&mut *tx)
        .await?;
        let cursors: Vec<(String, i64)> =
            sqlx::query_as("select name, version from cursors where app_id = $1 order by name")
                .bind(app_key(app))
                .fetch_all(&mut *tx)
                .await?;
        tx.commit().await?;
        Ok(AppDump {
            app,
            version: version.map_or(Ok(0), |v| unsigned(v, "an app version"))?,
            accounts: accounts
                .into_iter()
                .map(|(user, profile, version, updated_at_ms)| {
                    stored_account(user, &profile, version, updated_at_ms)
                })
                .collect::<Result<_>>()?,
            kicks: kicks_from(kicks)?,
            changes: changes
                .into_iter()
                .map(ChangeRow::into_change)
                .collect::<Result<_>>()?,
            cursors: cursors
                .into_iter()
                .map(|(name, v)| Ok((name, unsigned(v, "a cursor")?)))
                .collect::<Result<_>>()?,
        })
    }

    #[tracing::instrument(skip_all, fields(app = dump.app))]
    async fn restore_app(&self, dump: AppDump) -> Result<()> {
        dump.check()?;
        let app = dump.app;
        // Under the app's write lock, like any write: no write of the app can slip in between
        // the emptiness check and the COMMIT.
        let (mut tx, version) = self.begin_write(app).await?;
        let taken: bool = sqlx::query_scalar(
            "select exists (select 1 from accounts where app_id = $1) \
                 or exists (select 1 from changes where app_id = $1) \
                 or exists (select 1 from cursors where app_id = $1) \
                 or exists (select 1 from kicks where app_id = $1)",
        )
        .bind(app_key(app))
        .fetch_one(&mut *tx)
        .await?;
        if taken || version > 0 {
            return abort(tx, restore_conflict(app)).await;
        }
        for chunk in dump.accounts.chunks(RESTORE_CHUNK) {
            let mut users = Vec::with_capacity(chunk.len());
            let mut profiles = Vec::with_capacity(chunk.len());
            let mut versions = Vec::with_capacity(chunk.len());
            let mut times = Vec::with_capacity(chunk.len());
            for a in chunk {
                users.push(a.user.as_str());
                profiles.push(encode_profile(&a.profile.fields)?);
                versions.push(version_key(a.profile.version)?);
                times.push(a.profile.updated_at_ms);
            }
            sqlx::query(
                "insert into accounts (app_id, user_id, profile, version, updated_at_ms) \
                 select $1, t.* from unnest($2::text[], $3::text[], $4::bigint[], $5::bigint[]) as t",
            )
            .bind(app_key(app))
            .bind(&users)
            .bind(&profiles)
            .bind(&versions)
            .bind(&times)
            .execute(&mut *tx)
            .await?;
        }
        for chunk in dump.kicks.chunks(RESTORE_CHUNK) {
            let users: Vec<&str> = chunk.iter().map(|(u, _)| u.as_str()).collect();
            let times: Vec<i64> = chunk
                .iter()
                .map(|(_, t)| i64::try_from(*t).unwrap_or(i64::MAX))
                .collect();
            sqlx::query(
                "insert into kicks (app_id, user_id, not_before) \
                 select $1, t.* from unnest($2::text[], $3::bigint[]) as t",
            )
            .bind(app_key(app))
            .bind(&users)
            .bind(&times)
            .execute(&mut *tx)
            .await?;
        }
        let chains = crate::codec::chains(&dump);
        for (chunk, prev) in dump
            .changes
            .chunks(RESTORE_CHUNK)
            .zip(chains.prev.chunks(RESTORE_CHUNK))
        {
            let prev = prev
                .iter()
                .map(|v| version_key(*v))
                .collect::<Result<Vec<i64>>>()?;
            let mut versions = Vec::with_capacity(chunk.len());
            let mut users = Vec::with_capacity(chunk.len());
            let mut operators = Vec::with_capacity(chunk.len());
            let mut ips = Vec::with_capacity(chunk.len());
            let mut kinds = Vec::with_capacity(chunk.len());
            let mut items = Vec::with_capacity(chunk.len());
            let mut times = Vec::with_capacity(chunk.len());
            for c in chunk {
                versions.push(version_key(c.version)?);
                users.push(c.user.as_str());
                operators.push(c.operator.as_str());
                ips.push(c.client_ip.as_str());
                kinds.push(c.kind.as_str());
                items.push(encode_items(c.items.iter().map(|(t, v)| (t.as_str(), v)))?);
                times.push(c.at_ms);
            }
            sqlx::query(
                "insert into changes (app_id, version, user_id, operator, kind, items, at_ms, client_ip, prev_version) \
                 select $1, t.* from unnest($2::bigint[], $3::text[], $4::text[], $5::text[], $6::text[], $7::bigint[], $8::text[], $9::bigint[]) as t",
            )
            .bind(app_key(app))
            .bind(&versions)
            .bind(&users)
            .bind(&operators)
            .bind(&kinds)
            .bind(&items)
            .bind(&times)
            .bind(&ips)
            .bind(&prev)
            .execute(&mut *tx)
            .await?;
        }
        if !chains.deleted.is_empty() {
            let users: Vec<&str> = chains.deleted.iter().map(|d| d.0).collect();
            let versions = chains
                .deleted
                .iter()
                .map(|d| version_key(d.1))
                .collect::<Result<Vec<i64>>>()?;
            sqlx::query(
                "insert into deleted_accounts (app_id, user_id, version) \
                 select $1, t.* from unnest($2::text[], $3::bigint[]) as t",
            )
            .bind(app_key(app))
            .bind(&users)
            .bind(&versions)
            .execute(&mut *tx)
            .await?;
        }
        if !dump.cursors.is_empty() {
            let names: Vec<&str> = dump.cursors.iter().map(|(n, _)| n.as_str()).collect();
            let versions = dump
                .cursors
                .iter()
                .map(|(_, v)| version_key(*v))
                .collect::<Result<Vec<i64>>>()?;
            sqlx::query(
                "insert into cursors (app_id, name, version) \
                 select $1, t.* from unnest($2::text[], $3::bigint[]) as t",
            )
            .bind(app_key(app))
            .bind(&names)
            .bind(&versions)
            .execute(&mut *tx)
            .await?;
        }
        sqlx::query("update app_versions set version = $2 where app_id = $1")
            .bind(app_key(app))
            .bind(version_key(dump.version)?)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    #[tracing::instrument(skip_all)]
    async fn ping(&self) -> Result<()> {
        sqlx::query("select 1").execute(&self.pool).await?;
        Ok(())
    }

    #[tracing::instrument(skip_all)]
    async fn close(&self) {
        self.pool.close().await;
    }
}

/// The kicks of an app, by UserID (a range of the `kicks` primary key).
const KICKS_SQL: &str = "select user_id, not_before from kicks where app_id = $1 order by user_id";

/// `kicks` rows as [`Store::kicks`] answers them.
fn kicks_from(rows: Vec<(String, i64)>) -> Result<Vec<(String, u64)>> {
    rows.into_iter()
        .map(|(user, t)| Ok((user, unsigned(t, "a kick's not_before")?)))
        .collect()
}

/// The changes of some accounts (`$2`) after a version (`$3`), at most `$4`, in version order:
/// each account's chain of changes walked back from its newest (`accounts.version`, or
/// `deleted_accounts.version`) through `changes.prev_version`, one primary-key lookup per change,
/// at most `$4` per account, then merged (as in the SQLite backend). The cost grows with the
/// number of accounts and the limit, not with the app's log.
const CHANGES_OF_SQL: &str = "with recursive \
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
     oldest(version) as (select version from walk order by version limit $4) \
     select c.version, c.user_id, c.operator, c.client_ip, c.kind, c.items, c.at_ms \
     from oldest join changes as c on c.app_id = $1 and c.version = oldest.version \
     order by c.version";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_are_taken_after_the_last_and_never_overflow() {
        assert_eq!(take_versions(1, 0, 1).unwrap(), 1);
        assert_eq!(take_versions(1, 41, 3).unwrap(), 42);
        assert!(take_versions(1, i64::MAX as u64 - 1, 1).is_ok());
        assert!(matches!(
            take_versions(1, i64::MAX as u64 - 1, 2),
            Err(StoreError::Conflict { .. })
        ));
        assert!(matches!(
            take_versions(1, u64::MAX, 1),
            Err(StoreError::Conflict { .. })
        ));
    }

    #[test]
    fn malformed_urls_are_refused_without_echoing_the_password() {
        let err = PgStore::connect_options("postgres://u:hunter2@h:notaport/db").unwrap_err();
        assert!(matches!(err, StoreError::Config(_)), "{err:?}");
        assert!(!err.to_string().contains("hunter2"), "{err}");
    }

    #[cfg(feature = "testkit")]
    #[tokio::test]
    async fn sessions_and_pool_are_configured_as_documented() {
        let store = PgStore::open(&crate::testkit::fresh_postgres_url().await)
            .await
            .unwrap();
        assert_eq!(store.pool.options().get_max_connections(), 16);
        assert_eq!(
            store.pool.options().get_acquire_timeout(),
            Duration::from_millis(2500)
        );
        assert!(store.pool.options().get_test_before_acquire());
        let (idle_tx, app_name): (String, String) = sqlx::query_as(
            "select current_setting('idle_in_transaction_session_timeout'), \
             current_setting('application_name')",
        )
        .fetch_one(&store.pool)
        .await
        .unwrap();
        assert_eq!((idle_tx.as_str(), app_name.as_str()), ("30s", "portrait"));
        store.close().await;
    }

    #[cfg(feature = "testkit")]
    #[tokio::test]
    async fn changes_of_some_accounts_are_read_by_primary_key_lookups_only() {
        let store = PgStore::open(&crate::testkit::fresh_postgres_url().await)
            .await
            .unwrap();
        // A log of 50 000 changes of 1 000 accounts, chained, so the planner has tables worth
        // indexing.
        sqlx::raw_sql(
            "insert into changes \
                 (app_id, version, user_id, operator, kind, items, at_ms, prev_version) \
             select 1, v, 'u' || (v % 1000), 'admin', 'set', '[]', 0, greatest(v - 1000, 0) \
             from generate_series(1, 50000) as v; \
             insert into accounts (app_id, user_id, profile, version, updated_at_ms) \
             select 1, 'u' || (v % 1000), '', v, 0 from generate_series(49001, 50000) as v; \
             analyze changes; analyze accounts",
        )
        .execute(&store.pool)
        .await
        .unwrap();
        let plan: Vec<String> = sqlx::query_scalar(&format!("explain {CHANGES_OF_SQL}"))
            .bind(1_i64)
            .bind(vec!["u1", "u2"])
            .bind(0_i64)
            .bind(500_i64)
            .bind(crate::codec::MAX_CHAIN_WALK)
            .fetch_all(&store.pool)
            .await
            .unwrap();
        let plan = plan.join("\n");
        assert!(
            plan.contains("Index Scan using changes_pkey on changes"),
            "each change by its primary key: {plan}"
        );
        assert!(!plan.contains("Seq Scan on changes"), "{plan}");
        assert!(
            !plan.contains("Index Scan Backward"),
            "no walk of the log by version: {plan}"
        );
        // And it answers: u1's changes are 1, 1001, …, 49001.
        let got: Vec<ChangeRow> = sqlx::query_as(CHANGES_OF_SQL)
            .bind(1_i64)
            .bind(vec!["u1"])
            .bind(40_000_i64)
            .bind(500_i64)
            .bind(crate::codec::MAX_CHAIN_WALK)
            .fetch_all(&store.pool)
            .await
            .unwrap();
        let versions: Vec<u64> = got
            .into_iter()
            .map(|r| r.into_change().unwrap().version)
            .collect();
        assert_eq!(
            versions,
            (40_001..=49_001).step_by(1000).collect::<Vec<_>>()
        );
        store.close().await;
    }

    #[tokio::test]
    async fn debug_shows_no_connect_options() {
        let pool = PgPoolOptions::new().connect_lazy_with(
            PgStore::connect_options("postgres://u:hunter2@127.0.0.1:1/db").unwrap(),
        );
        let shown = format!("{:?}", PgStore::with_pool(pool));
        assert!(!shown.contains("hunter2"), "{shown}");
    }
}
