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
//!
//! The parts: `open.rs` (the URL, the pool and its bounds, the session settings, the migrations),
//! `write.rs` (what every write shares: its transaction, the app lock, rollback, a lone set and
//! the write statements), `batch.rs` (group commit of sets per app: the lanes and a batch's
//! transaction), `stage.rs` (a batch's jobs staged in memory), `restore.rs` (a dump written
//! back) and `sql.rs` (the read statements; the reads themselves are shared with the SQLite
//! backend, `read.rs`). The [`Store`](crate::Store) implementation is the one both backends
//! share (`backend.rs`); this file keeps this backend's side of it ([`PgBackend`]: the writes
//! and the account lookups) and the tests of the pool and of the query plans.
//!
//! [`Store::set_profile`]: crate::Store::set_profile
//! [`Store::kick`]: crate::Store::kick

use std::collections::HashSet;
use std::fmt;
use std::sync::Arc;

use portrait_core::Identifier;
use sqlx::postgres::PgPool;

use crate::backend::{Backend, Engine};
use crate::batch::{take_versions, SetJob};
use crate::codec::{app_key, distinct, pruned_mark, stage_import, version_key, AccountRow};
use crate::read::exist_in_order;
use crate::{now_ms, AppDump, AppId, NewAccount, Origin, Result, StoreError, PRUNED};

mod apps;
mod batch;
mod open;
mod pool;
mod restore;
mod scan;
mod sql;
mod stage;
mod write;

pub use open::{PoolSettings, ACQUIRE_TIMEOUT, IDLE_TIMEOUT, MAX_CONNECTIONS, MIN_SERVER_VERSION};
pub use pool::Targets;
use write::{abort, roll_back, DELETE_SQL, IMPORT_SQL};

/// The PostgreSQL [`Store`](crate::Store): the one implementation of the SQL backends
/// (`backend.rs`) on [`PgBackend`]. Cheap to clone (clones share the pool);
/// [`Store::close`](crate::Store::close) closes the pool for every clone.
pub type PgStore = Engine<PgBackend>;

/// What the PostgreSQL backend holds: its pool and its group-commit lanes. Made only by
/// [`PgStore::open`] and [`PgStore::open_with`].
#[derive(Clone)]
pub struct PgBackend {
    pool: PgPool,
    /// The per-app queues of `set_profile` jobs and their batches (group commit, see
    /// [`batch`]); shared by clones, so that every call of this process joins the same batches.
    lanes: Arc<batch::Lanes>,
    /// The task that points the pool at the primary of a host list (`pool.rs`), stopped when
    /// the last clone goes; `None` for one plain host.
    follower: Option<Arc<pool::Follower>>,
}

/// Pool statistics only: the connect options hold the password.
impl fmt::Debug for PgBackend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PgStore")
            .field("connections", &self.pool.size())
            .field("idle", &self.pool.num_idle())
            .field("closed", &self.pool.is_closed())
            .field("follows_primary", &self.follower.is_some())
            .field("queued_sets", &self.lanes.queued())
            .field("set_batches", &self.lanes.batches())
            .finish()
    }
}

impl Backend for PgBackend {
    type Readers = PgPool;

    fn readers(&self) -> &PgPool {
        &self.pool
    }

    async fn import(&self, app: AppId, accounts: &[NewAccount], origin: Origin<'_>) -> Result<()> {
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

    async fn delete(
        &self,
        app: AppId,
        users: &[Identifier],
        origin: Origin<'_>,
    ) -> Result<Vec<bool>> {
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
        let answer = exist_in_order(users, &existing);
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

    async fn existing(&self, app: AppId, ids: &[&str]) -> Result<HashSet<String>> {
        let existing: HashSet<String> = sqlx::query_scalar(
            "select user_id from accounts where app_id = $1 and user_id = any($2::text[])",
        )
        .bind(app_key(app))
        .bind(ids)
        .fetch_all(&self.pool)
        .await?
        .into_iter()
        .collect();
        Ok(existing)
    }

    async fn account_rows(&self, app: AppId, ids: &[&str]) -> Result<Vec<AccountRow>> {
        let rows = sqlx::query_as(
            "select user_id, profile, version, updated_at_ms from accounts \
             where app_id = $1 and user_id = any($2::text[])",
        )
        .bind(app_key(app))
        .bind(ids)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows)
    }

    async fn revoke(&self, app: AppId, user: &Identifier, not_before: i64) -> Result<bool> {
        // `greatest`: a later kick with an earlier time never un-revokes a UserSig. Recorded in
        // `kicks`, which outlives the account row, if the account exists; then, in the same
        // statement, the app's kicks revision moves (`Store::app_heads`).
        let done = sqlx::query(
            "with kicked as (\
                 insert into kicks (app_id, user_id, not_before) select $2, $3, $1 \
                 where exists (select 1 from accounts where app_id = $2 and user_id = $3) \
                 on conflict (app_id, user_id) \
                 do update set not_before = greatest(kicks.not_before, excluded.not_before) \
                 returning app_id) \
             insert into app_versions (app_id, version, kicks) select app_id, 0, 1 from kicked \
             on conflict (app_id) do update set kicks = app_versions.kicks + 1",
        )
        .bind(not_before)
        .bind(app_key(app))
        .bind(user.as_str())
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() > 0)
    }

    async fn set(&self, job: SetJob) -> Result<u64> {
        batch::submit(self, job).await
    }

    async fn move_cursor(&self, app: AppId, name: &str, version: i64) -> Result<()> {
        sqlx::query(
            "insert into cursors (app_id, name, version) values ($1, $2, $3) \
             on conflict (app_id, name) do update set version = excluded.version",
        )
        .bind(app_key(app))
        .bind(name)
        .bind(version)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn prune(&self, app: AppId, through: i64, limit: i64) -> Result<usize> {
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

    async fn take_lease(&self, app: AppId, name: &str, holder: &str, ttl_ms: u64) -> Result<bool> {
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

    async fn register(&self, node: &str, ttl_ms: u64) -> Result<Vec<String>> {
        // Kept in the leases of app 0 (no app has that id), as `node:<id>` held by `<id>`; a
        // member's row outlives it by an hour, then the next renewal of any node removes it.
        let mut tx = self.pool.begin().await?;
        sqlx::query(
            "insert into leases (app_id, name, holder, expires_at) \
             values (0, 'node:' || $1, $1, now() + $2 * interval '1 millisecond') \
             on conflict (app_id, name) do update \
             set holder = excluded.holder, expires_at = excluded.expires_at",
        )
        .bind(node)
        .bind(i64::try_from(ttl_ms).unwrap_or(i64::MAX) as f64)
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "delete from leases where app_id = 0 and name like 'node:%' \
             and expires_at < now() - interval '1 hour'",
        )
        .execute(&mut *tx)
        .await?;
        let live: Vec<String> = sqlx::query_scalar(
            "select holder from leases where app_id = 0 and name like 'node:%' \
             and expires_at > now()",
        )
        .fetch_all(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(live)
    }

    async fn put_record(&self, app: AppId, expected: Option<u64>, body: &str) -> Result<u64> {
        apps::put_app_record(&self.pool, app, expected, body).await
    }

    async fn restore(&self, dump: AppDump) -> Result<()> {
        self.write_dump(dump).await
    }

    async fn shut(&self) {
        self.pool.close().await;
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use sqlx::postgres::PgPoolOptions;

    use super::sql::CHANGES_OF_SQL;
    use super::*;
    use crate::codec::ChangeRow;
    use crate::Store;

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
        assert_eq!(store.0.pool.options().get_max_connections(), 16);
        assert_eq!(
            store.0.pool.options().get_acquire_timeout(),
            Duration::from_millis(2500)
        );
        assert!(store.0.pool.options().get_test_before_acquire());
        let (idle_tx, app_name): (String, String) = sqlx::query_as(
            "select current_setting('idle_in_transaction_session_timeout'), \
             current_setting('application_name')",
        )
        .fetch_one(&store.0.pool)
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
        .execute(&store.0.pool)
        .await
        .unwrap();
        let plan: Vec<String> = sqlx::query_scalar(&format!("explain {CHANGES_OF_SQL}"))
            .bind(1_i64)
            .bind(vec!["u1", "u2"])
            .bind(0_i64)
            .bind(500_i64)
            .bind(crate::codec::MAX_CHAIN_WALK)
            .fetch_all(&store.0.pool)
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
            .fetch_all(&store.0.pool)
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
        let shown = format!("{:?}", Engine(PgBackend::with_pool(pool)));
        assert!(!shown.contains("hunter2"), "{shown}");
    }
}
