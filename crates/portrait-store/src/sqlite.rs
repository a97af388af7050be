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
//! * **Reads**: `query_only` connections, which WAL lets run during writes; they see only
//!   committed batches. Account lookups by UserID (every profile read that misses the read cache)
//!   run on threads of their own, a batch per job (`lookup.rs`); the other reads on a small sqlx
//!   pool. Both read the file through a memory map.
//! * **Layout**: `migrations/sqlite/` (embedded, run on open). Profiles and change items are text
//!   in the packed form of `codec.rs` (tags as one-letter codes, enum values as indexes,
//!   length-prefixed strings); rows written as JSON by earlier versions still decode.
//!
//! The parts, each in a module of its own: `open.rs` (the URL, the connections and their pragmas,
//! the migrations), `lookup.rs` (the account lookups' threads), `writer.rs` (the jobs, the writer task and its group commit, the checkpointer),
//! `batch.rs` (a batch's transaction, the runs of sets, the batch's view of profiles and the
//! version allocator), `jobs.rs` (the other writes a batch runs), and `sql.rs` (statements shared
//! by writes and reads, and the reads in SQLite's dialect; the reads themselves are shared with
//! the PostgreSQL backend, `read.rs`). The [`Store`] implementation is the one both backends
//! share (`backend.rs`); this file keeps this backend's side of it ([`SqliteBackend`]: the
//! writes as jobs for the writer, the account lookups on the reader pool).
//!
//! [`Store`]: crate::Store
//! [`Store::set_profile`]: crate::Store::set_profile
//! [`Store::import_accounts`]: crate::Store::import_accounts
//! [`Store::delete_accounts`]: crate::Store::delete_accounts
//! [`Store::kick`]: crate::Store::kick
//! [`Store::close`]: crate::Store::close
//! [`StoreError::NotFound`]: crate::StoreError::NotFound
//! [`StoreError::Unavailable`]: crate::StoreError::Unavailable
//! [`MAX_BATCH`]: writer::MAX_BATCH
//! [`run_sets`]: batch::run_sets
//! [`run_checkpointer`]: writer::run_checkpointer

mod apps;
mod batch;
mod direct;
mod huge;
pub use huge::allow_huge_pages;
mod jobs;
mod lookup;
mod open;
mod page_ahead;
mod per_file;
mod scan;
mod shared_map;
mod sql;
mod tree_ahead;
mod wal_pages;
mod writer;

use std::collections::HashSet;
use std::fmt;
use std::sync::Arc;

use portrait_core::Identifier;
use sqlx::sqlite::SqlitePool;
use tokio::sync::{mpsc, oneshot};

use crate::backend::{Backend, Engine};
use crate::batch::SetJob;
use crate::codec::{AccountRow, OwnedOrigin};
use crate::{AppDump, AppId, NewAccount, Origin, Result};

use lookup::Lookups;
use writer::{CursorJob, DeleteJob, ImportJob, Job, KickJob, Msg, OtherJob, PruneJob};

/// The SQLite [`Store`](crate::Store): the one implementation of the SQL backends
/// (`backend.rs`) on [`SqliteBackend`]. Cheap to share behind an `Arc` (or to clone: clones share
/// the writer task and the reader pool); [`Store::close`](crate::Store::close) closes it, and so
/// does dropping the last clone.
pub type SqliteStore = Engine<SqliteBackend>;

/// What the SQLite backend holds: the writer task's queue and the reader pool. Made only by
/// [`SqliteStore::open`].
#[derive(Clone)]
pub struct SqliteBackend {
    /// The queue of the writer task, which owns the one writer connection.
    writer: mpsc::Sender<Msg>,
    /// `query_only` connections for reads.
    reader: SqlitePool,
    /// The account lookups' threads and connections.
    lookups: Arc<Lookups>,
}

impl fmt::Debug for SqliteBackend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SqliteStore")
            .field("writer", &self.writer)
            .field("reader", &self.reader)
            .finish()
    }
}

/// Every write is a job for the writer task; reads run on the reader pool.
impl Backend for SqliteBackend {
    type Readers = SqlitePool;

    fn readers(&self) -> &SqlitePool {
        &self.reader
    }

    async fn import(&self, app: AppId, accounts: &[NewAccount], origin: Origin<'_>) -> Result<()> {
        let job = ImportJob {
            app,
            accounts: accounts.to_vec(),
            origin: OwnedOrigin::from(origin),
        };
        self.submit(|reply| Job::Other(OtherJob::Import(job, reply)))
            .await
    }

    async fn delete(
        &self,
        app: AppId,
        users: &[Identifier],
        origin: Origin<'_>,
    ) -> Result<Vec<bool>> {
        let job = DeleteJob {
            app,
            users: users.to_vec(),
            origin: OwnedOrigin::from(origin),
        };
        self.submit(|reply| Job::Other(OtherJob::Delete(job, reply)))
            .await
    }

    async fn existing(&self, app: AppId, ids: &[&str]) -> Result<HashSet<String>> {
        self.lookups.existing(app, ids).await
    }

    async fn account_rows(&self, app: AppId, ids: &[&str]) -> Result<Vec<AccountRow>> {
        self.lookups.accounts(app, ids).await
    }

    async fn revoke(&self, app: AppId, user: &Identifier, not_before: i64) -> Result<bool> {
        let job = KickJob {
            app,
            user: user.as_str().to_owned(),
            not_before,
        };
        self.submit(|reply| Job::Other(OtherJob::Kick(job, reply)))
            .await
    }

    async fn set(&self, job: SetJob) -> Result<u64> {
        self.submit(|reply| Job::Set(job, reply)).await
    }

    async fn move_cursor(&self, app: AppId, name: &str, version: i64) -> Result<()> {
        let job = CursorJob {
            app,
            name: name.to_owned(),
            version,
        };
        self.submit(|reply| Job::Other(OtherJob::Cursor(job, reply)))
            .await
    }

    async fn prune(&self, app: AppId, through: i64, limit: i64) -> Result<usize> {
        let job = PruneJob {
            app,
            through,
            limit,
        };
        self.submit(|reply| Job::Other(OtherJob::Prune(job, reply)))
            .await
    }

    /// Only one process can open the database file, so the lease is always this process's.
    async fn take_lease(&self, app: AppId, name: &str, holder: &str, ttl_ms: u64) -> Result<bool> {
        let _ = (app, name, holder, ttl_ms);
        Ok(true)
    }

    async fn put_record(&self, app: AppId, expected: Option<u64>, body: &str) -> Result<u64> {
        let job = apps::AppRecordJob {
            app,
            expected,
            body: body.to_owned(),
        };
        self.submit(|reply| Job::Other(OtherJob::AppRecord(job, reply)))
            .await
    }

    async fn restore(&self, dump: AppDump) -> Result<()> {
        self.submit(|reply| Job::Other(OtherJob::Restore(Box::new(dump), reply)))
            .await
    }

    /// Only one process can open the database file: it is the only member.
    async fn register(&self, node: &str, ttl_ms: u64) -> Result<Vec<String>> {
        let _ = ttl_ms;
        Ok(vec![node.to_owned()])
    }

    async fn shut(&self) {
        self.reader.close().await;
        self.lookups.close().await;
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
    use crate::Store;

    /// A store in a new temporary directory (kept alive by the returned guard).
    async fn open_temp() -> (tempfile::TempDir, SqliteStore) {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(&format!("sqlite://{}/p.db", dir.path().display()))
            .await
            .unwrap();
        (dir, store)
    }

    /// The steps of `explain query plan` for `sql` with `binds` (integers and texts).
    pub(super) async fn plan(store: &SqliteStore, sql: &str, binds: &[&str]) -> Vec<String> {
        let sql = format!("explain query plan {sql}");
        let mut query = sqlx::query_as::<_, (i64, i64, i64, String)>(&sql);
        for b in binds {
            query = query.bind(*b);
        }
        let rows = query.fetch_all(&store.0.reader).await.unwrap();
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
        store.0.writer.send(Msg::Pragmas(reply)).await.unwrap();
        let (mode, sync, fk, busy) = answer.await.unwrap().unwrap();
        assert_eq!(mode, "wal");
        assert_eq!(sync, 2, "synchronous=FULL");
        assert_eq!(fk, 1);
        assert_eq!(busy, 5000);
        let write = sqlx::query("insert into app_versions (app_id, version) values (1, 1)")
            .execute(&store.0.reader)
            .await;
        assert!(write.is_err(), "reader connections are query_only");
        store.close().await;
    }
}
