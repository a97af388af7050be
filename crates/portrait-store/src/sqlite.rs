//! The embedded SQLite backend: Portrait's default store, one database file under the data
//! directory (`sqlite://<data_dir>/portrait.db`), no server to run.
//!
//! * **Durability**: WAL journal + `synchronous=FULL`, so every `COMMIT` fsyncs the WAL before it
//!   returns. A write is acknowledged only after the `COMMIT` of the transaction holding it has
//!   returned, so an acknowledged write survives `kill -9` and power loss.
//! * **Group commit**: a single writer task, on a thread of its own, owns the only writer
//!   connection. Every write call ([`Store::set_profile`], [`Store::import_accounts`],
//!   [`Store::delete_accounts`], [`Store::kick`]) becomes a job sent over a bounded channel
//!   together with a oneshot for its answer. The task waits for one job, takes whatever else is
//!   already queued (at most [`MAX_BATCH`]), and runs the whole batch in one `BEGIN IMMEDIATE`
//!   transaction, each job in a savepoint; then it `COMMIT`s once — one fsync for the batch — and
//!   only then answers every job. There is no timer: a lone write is a batch of one, and under
//!   load batches form by themselves while the previous batch's fsync is in flight.
//!   - *Why this is as durable as one transaction per write*: no job is answered before the
//!     `COMMIT` that contains it has returned (that is the durability point), and the batch is a
//!     single transaction, so a crash before it loses only writes nobody was told about. If the
//!     `COMMIT` fails, every job of the batch gets the error.
//!   - *Why jobs stay atomic and independent*: a job that fails (e.g. [`Store::set_profile`] on a
//!     missing account → [`StoreError::NotFound`]) is rolled back to its savepoint and gets its
//!     own error; the other jobs of the batch still commit. A failure that leaves the transaction
//!     in an unknown state (a savepoint cannot be released or rolled back to) rolls the whole
//!     batch back and fails every job of it.
//!   - *Runs of `set_profile` jobs* (the hot path) share one savepoint and one round trip to the
//!     connection ([`run_sets`]): their accounts are read together, each job is merged in memory
//!     onto what the jobs before it left (missing accounts fail alone, before anything is
//!     written), and the run is written by one statement list. Should that write fail, it is
//!     rolled back and each job of the run is redone alone in its own savepoint, so each still
//!     gets its own result. (A round trip to sqlx's connection thread costs more than the SQL of
//!     a set, so per-job statements would cap throughput well below what one fsync per batch
//!     allows.)
//!   - *Versions*: each app's version is read once per batch, handed out in job order in memory
//!     (a failed job gives its versions back, so there are no gaps), and written once per app
//!     before the `COMMIT`. Every job records its change rows in the batch's transaction, next to
//!     its data, and sees the data of the jobs before it (read-modify-write of the same account
//!     inside one batch composes).
//!   - The writer's thread and runtime are its own, so writes never wait for a worker of the
//!     caller's runtime. A background checkpointer ([`run_checkpointer`]) copies committed WAL
//!     pages into the database file between batches, so the automatic checkpoint that follows a
//!     `COMMIT` has little left to do and no longer stalls a batch.
//!   - A job that has been queued is carried out even if its caller stops waiting for the answer
//!     (as with any request whose response is lost). [`Store::close`] lets the writer finish the
//!     jobs queued before it, fails those after it with [`StoreError::Unavailable`], and closes the
//!     connections; write calls after that fail with [`StoreError::Unavailable`].
//! * **Reads**: a small pool of `query_only` reader connections, which WAL lets run during writes;
//!   they see only committed batches.
//! * **Layout**: `migrations/sqlite/` (embedded, run on open). Profiles and change items are text
//!   in the packed form of `codec.rs` (tags as one-letter codes, enum values as indexes,
//!   length-prefixed strings); rows written as JSON by earlier versions still decode.
//!
//! The parts, each in a module of its own: `open.rs` (the URL, the connections and their pragmas,
//! the migrations), `writer.rs` (the jobs, the writer task and its group commit, the checkpointer),
//! `batch.rs` (a batch's transaction, the runs of sets, the batch's view of profiles and the
//! version allocator), `jobs.rs` (the other writes a batch runs), and `sql.rs` (statements shared
//! by writes and reads, and the reads in SQLite's dialect; the reads themselves are shared with
//! the PostgreSQL backend, `read.rs`). This file keeps the `Store` implementation.
//!
//! [`MAX_BATCH`]: writer::MAX_BATCH
//! [`run_sets`]: batch::run_sets
//! [`run_checkpointer`]: writer::run_checkpointer

mod apps;
mod batch;
mod jobs;
mod open;
mod scan;
mod sql;
mod writer;

use async_trait::async_trait;
use portrait_core::{Identifier, ProfileValue, Tag};
use sqlx::sqlite::SqlitePool;
use tokio::sync::{mpsc, oneshot};

use crate::batch::SetJob;
use crate::codec::{distinct, version_key, AccountRow, OwnedOrigin};
use crate::read::{exist_in_order, profiles_in_order, Reads};
use crate::{
    pack_profiles, AppDump, AppId, Change, NewAccount, Origin, PackedProfile, Profile, Result,
    Store,
};

use sql::{existing_ids, select_accounts};
use writer::{CursorJob, DeleteJob, ImportJob, Job, KickJob, Msg, OtherJob, PruneJob};

/// The SQLite [`Store`]. Cheap to share behind an `Arc` (or to clone: clones share the writer task
/// and the reader pool); [`Store::close`] closes it, and so does dropping the last clone.
#[derive(Debug, Clone)]
pub struct SqliteStore {
    /// The queue of the writer task, which owns the one writer connection.
    writer: mpsc::Sender<Msg>,
    /// `query_only` connections for reads.
    reader: SqlitePool,
}

impl SqliteStore {
    /// The reads both backends share, on the reader connections.
    fn reads(&self) -> Reads<'_, sqlx::Sqlite> {
        Reads::new(&self.reader)
    }
}

#[async_trait]
impl Store for SqliteStore {
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
        let job = ImportJob {
            app,
            accounts: accounts.to_vec(),
            origin: OwnedOrigin::from(origin),
        };
        self.submit(|reply| Job::Other(OtherJob::Import(job, reply)))
            .await
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
        let job = DeleteJob {
            app,
            users: users.to_vec(),
            origin: OwnedOrigin::from(origin),
        };
        self.submit(|reply| Job::Other(OtherJob::Delete(job, reply)))
            .await
    }

    #[tracing::instrument(skip_all, fields(app = app, users = users.len()))]
    async fn accounts_exist(&self, app: AppId, users: &[Identifier]) -> Result<Vec<bool>> {
        if users.is_empty() {
            return Ok(Vec::new());
        }
        let ids = distinct(users.iter().map(Identifier::as_str));
        // A read transaction, so that a batch split over several statements is one snapshot.
        let mut tx = self.reader.begin().await?;
        let existing = existing_ids(&mut tx, app, &ids).await?;
        tx.commit().await?;
        Ok(exist_in_order(users, &existing))
    }

    #[tracing::instrument(skip_all, fields(app = app))]
    async fn kick(&self, app: AppId, user: &Identifier, not_before: u64) -> Result<bool> {
        let job = KickJob {
            app,
            user: user.as_str().to_owned(),
            // Saturating: a `not_before` past year 292 billion revokes everything either way.
            not_before: i64::try_from(not_before).unwrap_or(i64::MAX),
        };
        self.submit(|reply| Job::Other(OtherJob::Kick(job, reply)))
            .await
    }

    #[tracing::instrument(skip_all, fields(app = app))]
    async fn kicks(&self, app: AppId) -> Result<Vec<(String, u64)>> {
        self.reads().kicks(app).await
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
        let job = SetJob::new(app, user, items, origin, expected)?;
        self.submit(|reply| Job::Set(job, reply)).await
    }

    #[tracing::instrument(skip_all, fields(app = app, users = users.len()))]
    async fn get_profiles(&self, app: AppId, users: &[Identifier]) -> Result<Vec<Option<Profile>>> {
        if users.is_empty() {
            return Ok(Vec::new());
        }
        let ids = distinct(users.iter().map(Identifier::as_str));
        let mut tx = self.reader.begin().await?;
        let rows: Vec<AccountRow> = select_accounts(
            &mut tx,
            "user_id, profile, version, updated_at_ms",
            app,
            &ids,
        )
        .await?;
        tx.commit().await?;
        profiles_in_order(users, rows)
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
        self.reads().changes_since(app, since, limit).await
    }

    #[tracing::instrument(skip_all, fields(app = app, users = users.len(), since = since, limit = limit))]
    async fn changes_of(
        &self,
        app: AppId,
        users: &[Identifier],
        since: u64,
        limit: usize,
    ) -> Result<Vec<Change>> {
        self.reads().changes_of(app, users, since, limit).await
    }

    #[tracing::instrument(skip_all, fields(app = app))]
    async fn current_version(&self, app: AppId) -> Result<u64> {
        self.reads().current_version(app).await
    }

    #[tracing::instrument(skip_all, fields(app = app, name = name))]
    async fn cursor(&self, app: AppId, name: &str) -> Result<Option<u64>> {
        self.reads().cursor(app, name).await
    }

    #[tracing::instrument(skip_all, fields(app = app, name = name, version = version))]
    async fn set_cursor(&self, app: AppId, name: &str, version: u64) -> Result<()> {
        let job = CursorJob {
            app,
            name: name.to_owned(),
            version: version_key(version)?,
        };
        self.submit(|reply| Job::Other(OtherJob::Cursor(job, reply)))
            .await
    }

    #[tracing::instrument(skip_all, fields(app = app, through = through))]
    async fn prune_changes(&self, app: AppId, through: u64, limit: usize) -> Result<usize> {
        if limit == 0 {
            return Ok(0);
        }
        let job = PruneJob {
            app,
            through: i64::try_from(through).unwrap_or(i64::MAX),
            limit: i64::try_from(limit).unwrap_or(i64::MAX),
        };
        self.submit(|reply| Job::Other(OtherJob::Prune(job, reply)))
            .await
    }

    async fn app_records(&self, after_revision: u64) -> Result<Vec<crate::AppRecord>> {
        apps::app_records(&self.reader, after_revision).await
    }

    async fn put_app_record(&self, app: AppId, expected: Option<u64>, body: &str) -> Result<u64> {
        let job = apps::AppRecordJob {
            app,
            expected,
            body: body.to_owned(),
        };
        self.submit(|reply| Job::Other(OtherJob::AppRecord(job, reply)))
            .await
    }

    #[tracing::instrument(skip_all)]
    async fn apps(&self) -> Result<Vec<AppId>> {
        self.reads().apps().await
    }

    #[tracing::instrument(skip_all, fields(app = app))]
    async fn dump_app(&self, app: AppId) -> Result<AppDump> {
        self.reads().dump_app(app).await
    }

    #[tracing::instrument(skip_all, fields(app = dump.app))]
    async fn restore_app(&self, dump: AppDump) -> Result<()> {
        dump.check()?;
        self.submit(|reply| Job::Other(OtherJob::Restore(Box::new(dump), reply)))
            .await
    }

    /// Only one process can open the database file, so the lease is always this process's.
    async fn lease(&self, app: AppId, name: &str, holder: &str, ttl_ms: u64) -> Result<bool> {
        let _ = (app, name, holder, ttl_ms);
        Ok(true)
    }

    /// Only one process can open the database file: it is the only member.
    async fn members(&self, node: &str, ttl_ms: u64) -> Result<Vec<String>> {
        let _ = ttl_ms;
        Ok(vec![node.to_owned()])
    }

    #[tracing::instrument(skip_all, fields(app = app, limit = limit))]
    async fn scan_accounts(
        &self,
        app: AppId,
        prefix: &str,
        after: Option<&Identifier>,
        limit: usize,
    ) -> Result<Vec<Identifier>> {
        crate::scan::scan(&self.reader, scan::SCAN_SQL, app, prefix, after, limit).await
    }

    #[tracing::instrument(skip_all)]
    async fn ping(&self) -> Result<()> {
        sqlx::query("select 1").execute(&self.reader).await?;
        Ok(())
    }

    #[tracing::instrument(skip_all)]
    async fn close(&self) {
        self.reader.close().await;
        // Last: the writer task finishes the jobs queued before this, refuses later ones and
        // closes its connection, which checkpoints the WAL into the main file. If it has stopped
        // already (an earlier close), both steps fail and there is nothing left to do.
        let (ack, done) = oneshot::channel();
        if self.writer.send(Msg::Close(ack)).await.is_ok() {
            let _ = done.await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::sql::{CHANGES_OF_SQL, KICKS_SQL};
    use super::*;

    /// A store in a new temporary directory (kept alive by the returned guard).
    async fn open_temp() -> (tempfile::TempDir, SqliteStore) {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(&format!("sqlite://{}/p.db", dir.path().display()))
            .await
            .unwrap();
        (dir, store)
    }

    /// The steps of `explain query plan` for `sql` with `binds` (integers and texts).
    async fn plan(store: &SqliteStore, sql: &str, binds: &[&str]) -> Vec<String> {
        let sql = format!("explain query plan {sql}");
        let mut query = sqlx::query_as::<_, (i64, i64, i64, String)>(&sql);
        for b in binds {
            query = query.bind(*b);
        }
        let rows = query.fetch_all(&store.reader).await.unwrap();
        rows.into_iter().map(|r| r.3).collect()
    }

    #[tokio::test]
    async fn kicks_are_read_from_the_kicks_table_only() {
        let (_dir, store) = open_temp().await;
        assert_eq!(
            plan(&store, KICKS_SQL, &["1"]).await,
            ["SEARCH kicks USING PRIMARY KEY (app_id=?)"],
            "no scan of the app's accounts and no sort"
        );
        store.close().await;
    }

    #[tokio::test]
    async fn changes_of_some_accounts_are_read_by_primary_key_lookups_only() {
        let (_dir, store) = open_temp().await;
        let steps = plan(
            &store,
            CHANGES_OF_SQL,
            &["1", r#"["a","b"]"#, "0", "500", "10000"],
        )
        .await;
        let reads: Vec<&str> = steps
            .iter()
            .map(String::as_str)
            .filter(|s| s.contains("changes") || s.contains(" c ") || s.contains("accounts"))
            .collect();
        assert!(!reads.is_empty(), "{steps:?}");
        for read in &reads {
            assert!(
                read.starts_with("SEARCH") && read.contains("PRIMARY KEY"),
                "every read is a primary-key lookup, never a walk of the app's log: {steps:?}"
            );
        }
        for read in reads.iter().filter(|r| r.contains(" c ")) {
            assert!(
                read.ends_with("c USING PRIMARY KEY (app_id=? AND version=?)"),
                "changes are read one by one by version, never a range of the log: {steps:?}"
            );
        }
        assert_eq!(
            reads.iter().filter(|r| r.contains(" c ")).count(),
            3,
            "the head, each step back, and the rows answered: {steps:?}"
        );
        store.close().await;
    }

    #[tokio::test]
    async fn opened_database_is_durable_and_readers_cannot_write() {
        let (_dir, store) = open_temp().await;
        let (reply, answer) = oneshot::channel();
        store.writer.send(Msg::Pragmas(reply)).await.unwrap();
        let (mode, sync, fk, busy) = answer.await.unwrap().unwrap();
        assert_eq!(mode, "wal");
        assert_eq!(sync, 2, "synchronous=FULL");
        assert_eq!(fk, 1);
        assert_eq!(busy, 5000);
        let write = sqlx::query("insert into app_versions (app_id, version) values (1, 1)")
            .execute(&store.reader)
            .await;
        assert!(write.is_err(), "reader connections are query_only");
        store.close().await;
    }
}
