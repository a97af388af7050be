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

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use portrait_core::{Identifier, ProfileValue, Tag};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteConnection, SqliteJournalMode, SqlitePool, SqlitePoolOptions,
    SqliteRow, SqliteSynchronous,
};
use sqlx::{ConnectOptions, Connection};
use tokio::sync::{mpsc, oneshot};
use tracing::Instrument;

use crate::codec::{
    self, app_from_key, app_key, distinct, encode_items, encode_profile, pruned_mark, stage_import,
    stored_account, unsigned, version_key, AccountRow, ChangeRow, OwnedOrigin,
};
use crate::{
    migrate_error, now_ms, restore_conflict, AppDump, AppId, Change, ChangeKind, NewAccount,
    Origin, Profile, Result, Store, StoreError, PRUNED,
};

/// The embedded migrations (`crates/portrait-store/migrations/sqlite`).
static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");

/// How much of the database file the writer reads through a memory map (`PRAGMA mmap_size`).
const WRITER_MMAP_BYTES: &str = "1073741824";

/// How long a connection waits for a lock held by another process before failing.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);
/// Reader connections.
const READERS: u32 = 4;
/// Most jobs committed together in one transaction.
const MAX_BATCH: usize = 512;
/// Write jobs that may wait for the writer task; callers beyond that wait to enqueue.
const QUEUE: usize = 2 * MAX_BATCH;
/// Most ids bound in one `in (…)` list; larger batches are split (SQLite's bound-parameter limit
/// is 32766, this keeps statements small).
const MAX_IDS_PER_QUERY: usize = 500;

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
    /// Opens (creating the file and its parent directories if missing) the database at
    /// `sqlite://PATH` or `sqlite:PATH`, runs pending migrations and starts the writer thread.
    ///
    /// # Errors
    /// [`StoreError::Config`] for a malformed URL, an in-memory database or a database written by a
    /// newer Portrait; [`StoreError::Unavailable`] if the file cannot be opened or migrated.
    pub async fn open(url: &str) -> Result<Self> {
        let path = db_path(url)?;
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            tokio::fs::create_dir_all(dir).await.map_err(|e| {
                StoreError::Config(format!(
                    "cannot create the directory {}: {e}",
                    dir.display()
                ))
            })?;
        }
        let options = SqliteConnectOptions::new()
            .filename(&path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .foreign_keys(true)
            .busy_timeout(BUSY_TIMEOUT);

        // Savepoint journals (rollback within a transaction, never needed for recovery) in memory.
        // Sets reach random accounts, and most of the writer's time went to copying database pages
        // in from the file (`pread`): it reads them through a memory map instead (SQLite still
        // writes through the WAL, so durability is unchanged).
        let mut writer = options
            .clone()
            .pragma("temp_store", "memory")
            .pragma("mmap_size", WRITER_MMAP_BYTES)
            .connect()
            .await?;
        if let Err(e) = MIGRATOR.run(&mut writer).await {
            let _ = writer.close().await;
            return Err(migrate_error(e));
        }
        // Opened after the writer has switched the file to WAL, so they never change the mode.
        let opened = async {
            let checkpointer = options.clone().create_if_missing(false).connect().await?;
            let reader = SqlitePoolOptions::new()
                .max_connections(READERS)
                .connect_with(options.create_if_missing(false).pragma("query_only", "on"))
                .await;
            match reader {
                Ok(reader) => Ok((checkpointer, reader)),
                Err(e) => {
                    let _ = checkpointer.close().await;
                    Err(e)
                }
            }
        };
        let (checkpointer, reader) = match opened.await {
            Ok(opened) => opened,
            Err(e) => {
                let _ = writer.close().await;
                return Err(e.into());
            }
        };
        let (tx, rx) = mpsc::channel(QUEUE);
        // Its own thread and runtime: writes never wait for a worker of the caller's runtime
        // (busy with requests, or hogged by a task that does not yield).
        let thread = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .and_then(|runtime| {
                std::thread::Builder::new()
                    .name("portrait-sqlite-writer".into())
                    .spawn(move || runtime.block_on(run_writer(writer, checkpointer, rx)))
            });
        if let Err(e) = thread {
            // `writer` and `checkpointer` were moved into the closure and dropped with it.
            reader.close().await;
            return Err(StoreError::Unavailable(Box::new(e)));
        }
        tracing::debug!(path = %path.display(), "opened the sqlite store");
        Ok(Self { writer: tx, reader })
    }

    /// Queues a write job for the writer task and waits for its answer, which comes after the
    /// `COMMIT` of the batch holding the job.
    async fn submit<T>(&self, job: impl FnOnce(Reply<T>) -> Job) -> Result<T> {
        let (reply, answer) = oneshot::channel();
        self.writer
            .send(Msg::Job(job(reply)))
            .await
            .map_err(|_| closed())?;
        answer.await.map_err(|_| closed())?
    }
}
/// The file path of `sqlite://PATH` / `sqlite:PATH`. Query parameters and in-memory databases are
/// refused: Portrait sets the journal and sync modes itself, and a store must be durable.
fn db_path(url: &str) -> Result<PathBuf> {
    let rest = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))
        .ok_or_else(|| StoreError::Config(format!("store url {url:?}: use sqlite://PATH")))?;
    if rest.contains('?') {
        return Err(StoreError::Config(format!(
            "store url {url:?}: query parameters are not supported (Portrait sets WAL and synchronous=FULL itself)"
        )));
    }
    if rest.is_empty() || rest == ":memory:" {
        return Err(StoreError::Config(format!(
            "store url {url:?}: name a database file, e.g. sqlite://data/portrait.db (in-memory databases are not durable)"
        )));
    }
    Ok(PathBuf::from(rest))
}

/// `?, ?, …, ?` (`n` placeholders).
fn placeholders(n: usize) -> String {
    vec!["?"; n].join(", ")
}

/// Selects `columns` of the app's accounts whose ids are in `ids` (distinct), one statement per
/// [`MAX_IDS_PER_QUERY`] ids.
async fn select_accounts<T>(
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
async fn existing_ids(
    conn: &mut SqliteConnection,
    app: AppId,
    ids: &[&str],
) -> Result<HashSet<String>> {
    let rows: Vec<(String,)> = select_accounts(conn, "user_id", app, ids).await?;
    Ok(rows.into_iter().map(|(id,)| id).collect())
}

/// One change-log row to insert.
struct NewChange<'a> {
    version: u64,
    user: &'a str,
    kind: ChangeKind,
    items: String,
}

async fn insert_change(
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

// ---- the writer task ---------------------------------------------------------------------------

/// Where the writer task sends a job's answer.
type Reply<T> = oneshot::Sender<Result<T>>;

/// What the store sends to the writer task.
enum Msg {
    /// A write to carry out in the next batch.
    Job(Job),
    /// Stop: finish the jobs queued before this, fail the later ones, close the connection, then
    /// answer.
    Close(oneshot::Sender<()>),
    /// Test hook: the writer connection's `journal_mode`, `synchronous`, `foreign_keys` and
    /// `busy_timeout`.
    #[cfg(test)]
    Pragmas(Reply<(String, i64, i64, i64)>),
}

/// One write call, with everything it needs owned (it outlives the caller's borrow).
enum Job {
    /// `set_profile`: the hot path, written in runs (see [`run_sets`]).
    Set(SetJob, Reply<u64>),
    /// Any other write: run as is, in its own savepoint.
    Other(OtherJob),
}

enum OtherJob {
    Import(ImportJob, Reply<()>),
    Delete(DeleteJob, Reply<Vec<bool>>),
    Kick(KickJob, Reply<bool>),
    Cursor(CursorJob, Reply<()>),
    Prune(PruneJob, Reply<usize>),
    Restore(Box<AppDump>, Reply<()>),
}

struct SetJob {
    app: AppId,
    user: String,
    /// The items as given; applied in order, so later items win.
    items: Vec<(Tag, ProfileValue)>,
    /// The change-log `items` column, encoded by the caller (off the writer task).
    change_items: String,
    origin: OwnedOrigin,
    /// Written only if the account's version is this one.
    expected: Option<u64>,
}

struct ImportJob {
    app: AppId,
    accounts: Vec<NewAccount>,
    origin: OwnedOrigin,
}

struct DeleteJob {
    app: AppId,
    users: Vec<Identifier>,
    origin: OwnedOrigin,
}

struct CursorJob {
    app: AppId,
    name: String,
    version: i64,
}

struct PruneJob {
    app: AppId,
    through: i64,
    limit: i64,
}

struct KickJob {
    app: AppId,
    user: String,
    not_before: i64,
}

impl Job {
    /// The job's answer when it fails with `err` without running.
    fn failed(self, err: StoreError) -> Answer {
        match self {
            Job::Set(_, reply) => Answer::Set(reply, Err(err)),
            Job::Other(OtherJob::Import(_, reply)) => Answer::Unit(reply, Err(err)),
            Job::Other(OtherJob::Delete(_, reply)) => Answer::Delete(reply, Err(err)),
            Job::Other(OtherJob::Kick(_, reply)) => Answer::Kick(reply, Err(err)),
            Job::Other(OtherJob::Cursor(_, reply)) => Answer::Unit(reply, Err(err)),
            Job::Other(OtherJob::Prune(_, reply)) => Answer::Count(reply, Err(err)),
            Job::Other(OtherJob::Restore(_, reply)) => Answer::Unit(reply, Err(err)),
        }
    }

    /// Answers the job with `err` without running it.
    fn fail(self, err: StoreError) {
        self.failed(err).send();
    }
}

/// A job that has run, with its result, waiting for the batch's `COMMIT`.
enum Answer {
    Set(Reply<u64>, Result<u64>),
    Unit(Reply<()>, Result<()>),
    Delete(Reply<Vec<bool>>, Result<Vec<bool>>),
    Kick(Reply<bool>, Result<bool>),
    Count(Reply<usize>, Result<usize>),
}

impl Answer {
    fn is_ok(&self) -> bool {
        match self {
            Answer::Set(_, r) => r.is_ok(),
            Answer::Unit(_, r) => r.is_ok(),
            Answer::Delete(_, r) => r.is_ok(),
            Answer::Kick(_, r) => r.is_ok(),
            Answer::Count(_, r) => r.is_ok(),
        }
    }

    /// Sends the result (a caller that stopped waiting is ignored).
    fn send(self) {
        match self {
            Answer::Set(reply, r) => drop(reply.send(r)),
            Answer::Unit(reply, r) => drop(reply.send(r)),
            Answer::Delete(reply, r) => drop(reply.send(r)),
            Answer::Kick(reply, r) => drop(reply.send(r)),
            Answer::Count(reply, r) => drop(reply.send(r)),
        }
    }

    /// Sends `err` instead of the result: the batch was not committed.
    fn fail(self, err: StoreError) {
        match self {
            Answer::Set(reply, _) => drop(reply.send(Err(err))),
            Answer::Unit(reply, _) => drop(reply.send(Err(err))),
            Answer::Delete(reply, _) => drop(reply.send(Err(err))),
            Answer::Kick(reply, _) => drop(reply.send(Err(err))),
            Answer::Count(reply, _) => drop(reply.send(Err(err))),
        }
    }
}

/// The error of calls on a closed store (or one whose writer task has stopped).
fn closed() -> StoreError {
    StoreError::Unavailable("the store is closed".into())
}

/// Why a whole batch was not committed; every job of the batch gets it (as
/// [`StoreError::Unavailable`]), so the cause is shared.
#[derive(Debug, Clone)]
struct BatchFailed {
    /// The step that failed.
    step: &'static str,
    cause: Arc<StoreError>,
}

impl BatchFailed {
    fn new(step: &'static str, cause: impl Into<StoreError>) -> Self {
        Self {
            step,
            cause: Arc::new(cause.into()),
        }
    }

    fn error(&self) -> StoreError {
        StoreError::Unavailable(Box::new(self.clone()))
    }
}

impl fmt::Display for BatchFailed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "the write batch was rolled back ({} failed: {})",
            self.step, self.cause
        )
    }
}

impl std::error::Error for BatchFailed {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&*self.cause)
    }
}

/// The writer task (on its own thread): owns the writer connection and commits queued jobs in
/// batches until [`Msg::Close`] or until every sender is gone. After each batch it kicks the
/// checkpointer ([`run_checkpointer`]), which it stops before closing its own connection.
async fn run_writer(
    mut conn: SqliteConnection,
    checkpointer: SqliteConnection,
    mut rx: mpsc::Receiver<Msg>,
) {
    let (kick, kicks) = mpsc::channel(1);
    let checkpointer = tokio::spawn(run_checkpointer(checkpointer, kicks));
    let mut msgs: Vec<Msg> = Vec::with_capacity(MAX_BATCH);
    let mut jobs: Vec<Job> = Vec::with_capacity(MAX_BATCH);
    let mut scratch = Scratch::default();
    let mut close_acks: Vec<oneshot::Sender<()>> = Vec::new();
    // Waits for one message and takes whatever else is already queued.
    while close_acks.is_empty() && rx.recv_many(&mut msgs, MAX_BATCH).await > 0 {
        for msg in msgs.drain(..) {
            match msg {
                Msg::Job(job) if close_acks.is_empty() => jobs.push(job),
                Msg::Job(job) => job.fail(closed()),
                Msg::Close(ack) => close_acks.push(ack),
                #[cfg(test)]
                Msg::Pragmas(reply) => drop(reply.send(pragmas(&mut conn).await)),
            }
        }
        if !jobs.is_empty() {
            let span = tracing::debug_span!("write_batch", jobs = jobs.len());
            run_batch(&mut conn, &mut jobs, &mut scratch)
                .instrument(span)
                .await;
            // A kick already pending covers this batch too.
            let _ = kick.try_send(());
        }
    }

    // Closing (or every store handle is gone): refuse what is still queued, then close the
    // connection, which checkpoints the WAL into the main file.
    rx.close();
    while let Ok(msg) = rx.try_recv() {
        match msg {
            Msg::Job(job) => job.fail(closed()),
            Msg::Close(ack) => close_acks.push(ack),
            #[cfg(test)]
            Msg::Pragmas(reply) => drop(reply.send(Err(closed()))),
        }
    }
    drop(kick);
    let _ = checkpointer.await;
    // The last connection to close checkpoints the WAL into the main file and removes it.
    if let Err(e) = conn.close().await {
        tracing::warn!(error = %e, "closing the sqlite writer connection failed");
    }
    for ack in close_acks {
        let _ = ack.send(());
    }
}

/// The background checkpointer: after every kick (one per batch; kicks coalesce while a
/// checkpoint runs) it copies the WAL frames committed so far into the database file with a
/// `PASSIVE` checkpoint, which never blocks the writer or readers. The writer's own automatic
/// checkpoint (every 1000 WAL pages, right after a `COMMIT`) then finds little left to copy, so
/// it no longer stalls a batch for a large copy and fsync, and it still lets the WAL restart
/// from its beginning. Returns, closing its connection, when the writer drops the kick sender.
async fn run_checkpointer(mut conn: SqliteConnection, mut kicks: mpsc::Receiver<()>) {
    while kicks.recv().await.is_some() {
        if let Err(e) = sqlx::query("pragma wal_checkpoint(PASSIVE)")
            .execute(&mut conn)
            .await
        {
            tracing::warn!(error = %e, "background WAL checkpoint failed");
        }
    }
    if let Err(e) = conn.close().await {
        tracing::warn!(error = %e, "closing the sqlite checkpointer connection failed");
    }
}

#[cfg(test)]
async fn pragmas(conn: &mut SqliteConnection) -> Result<(String, i64, i64, i64)> {
    Ok((
        sqlx::query_scalar("pragma journal_mode")
            .fetch_one(&mut *conn)
            .await?,
        sqlx::query_scalar("pragma synchronous")
            .fetch_one(&mut *conn)
            .await?,
        sqlx::query_scalar("pragma foreign_keys")
            .fetch_one(&mut *conn)
            .await?,
        sqlx::query_scalar("pragma busy_timeout")
            .fetch_one(&mut *conn)
            .await?,
    ))
}

/// Runs `sql` (no arguments, no rows) on the writer connection.
async fn exec(conn: &mut SqliteConnection, sql: &'static str) -> Result<()> {
    sqlx::query(sql).execute(conn).await?;
    Ok(())
}

/// The writer task's working state, reused from batch to batch to spare allocations; nothing in
/// it outlives a transaction (it is cleared at the start of every batch).
#[derive(Default)]
struct Scratch {
    /// Results of the batch's jobs, sent after `COMMIT`.
    answers: Vec<Answer>,
    versions: Versions,
    profiles: Profiles,
    /// The run of set jobs being written (see [`run_sets`]).
    sets: Vec<(SetJob, Reply<u64>)>,
}

/// Runs `jobs` (drained) in one transaction, each in its own savepoint, commits, then answers
/// every job.
async fn run_batch(conn: &mut SqliteConnection, jobs: &mut Vec<Job>, scratch: &mut Scratch) {
    let Scratch {
        answers,
        versions,
        profiles,
        sets,
    } = scratch;
    versions.clear();
    profiles.clear();
    if let Err(e) = exec(conn, "BEGIN IMMEDIATE").await {
        let failed = BatchFailed::new("BEGIN IMMEDIATE", e);
        for job in jobs.drain(..) {
            job.fail(failed.error());
        }
        return;
    }
    // One timestamp per batch: change times never go backwards as versions go forwards.
    let at_ms = now_ms();
    let mut failed = None;
    let mut pending = jobs.drain(..);
    while let Some(job) = pending.next() {
        let end = match job {
            Job::Set(job, reply) => {
                // The set jobs queued right behind this one are written together.
                sets.push((job, reply));
                while let Some(Job::Set(..)) = pending.as_slice().first() {
                    let Some(Job::Set(job, reply)) = pending.next() else {
                        unreachable!("just peeked at a set job")
                    };
                    sets.push((job, reply));
                }
                run_sets(conn, versions, profiles, sets, answers, at_ms).await
            }
            Job::Other(job) => {
                // Imports and deletes change accounts behind the cache's back.
                profiles.clear();
                let (answer, end) = run_in_savepoint(conn, versions, job, at_ms).await;
                answers.push(answer);
                end
            }
        };
        if let Err(why) = end {
            failed = Some(why);
            break;
        }
    }
    if failed.is_none() {
        failed = match versions.store(conn).await {
            Ok(()) => exec(conn, "COMMIT")
                .await
                .err()
                .map(|e| BatchFailed::new("COMMIT", e)),
            Err(e) => Some(BatchFailed::new("storing the app versions", e)),
        };
    }
    match failed {
        None => {
            for answer in answers.drain(..) {
                answer.send();
            }
        }
        Some(failed) => {
            tracing::error!(error = %failed, "a write batch failed");
            // Whatever state the transaction is in, end it; nothing of it was acknowledged.
            let _ = exec(conn, "ROLLBACK").await;
            for answer in answers.drain(..) {
                answer.fail(failed.error());
            }
            for job in pending {
                job.fail(failed.error());
            }
        }
    }
}

/// Undoes the running job (`ROLLBACK TO` its savepoint, which is then released). If that fails,
/// the transaction is in an unknown state and the batch must not commit.
async fn roll_back_job(conn: &mut SqliteConnection) -> Result<(), BatchFailed> {
    exec(conn, "ROLLBACK TO job; RELEASE job")
        .await
        .map_err(|e| BatchFailed::new("ROLLBACK TO", e))
}

/// Runs an import, delete or kick inside its own savepoint. Returns its answer, and an error if
/// the batch must be rolled back.
async fn run_in_savepoint(
    conn: &mut SqliteConnection,
    versions: &mut Versions,
    job: OtherJob,
    at_ms: i64,
) -> (Answer, Result<(), BatchFailed>) {
    if let Err(e) = exec(conn, "SAVEPOINT job").await {
        let why = BatchFailed::new("SAVEPOINT", e);
        return (Job::Other(job).failed(why.error()), Err(why));
    }
    let answer = match job {
        OtherJob::Import(job, reply) => {
            Answer::Unit(reply, apply_import(conn, versions, &job, at_ms).await)
        }
        OtherJob::Delete(job, reply) => {
            Answer::Delete(reply, apply_delete(conn, versions, &job, at_ms).await)
        }
        OtherJob::Kick(job, reply) => Answer::Kick(reply, apply_kick(conn, &job).await),
        OtherJob::Cursor(job, reply) => Answer::Unit(reply, apply_cursor(conn, &job).await),
        OtherJob::Prune(job, reply) => Answer::Count(reply, apply_prune(conn, &job).await),
        OtherJob::Restore(dump, reply) => {
            Answer::Unit(reply, apply_restore(conn, versions, &dump).await)
        }
    };
    let end = if answer.is_ok() {
        versions.keep();
        exec(conn, "RELEASE job")
            .await
            .map_err(|e| BatchFailed::new("RELEASE", e))
    } else {
        versions.undo();
        roll_back_job(conn).await
    };
    (answer, end)
}

/// The writes of one `set_profile`, in one round trip to the connection: its own savepoint, the
/// account row, its change row, release. Parameters: `?1` profile, `?2` version, `?3` time, `?4`
/// app, `?5` user, `?6` operator, `?7` change items, `?8` client IP, `?9` the account's version
/// before (its previous change). Its one row is the number of accounts updated (1 unless the
/// account is missing).
const SET_SQL: &str = "SAVEPOINT job; \
    update accounts set profile = ?1, version = ?2, updated_at_ms = ?3 \
    where app_id = ?4 and user_id = ?5; \
    select changes(); \
    insert into changes \
        (app_id, version, user_id, operator, client_ip, kind, items, at_ms, prev_version) \
    values (?4, ?2, ?5, ?6, ?8, 'set', ?7, ?3, ?9); \
    RELEASE job";

/// Writes a run of consecutive `set_profile` jobs (`sets`, drained into `answers`) in one round
/// trip to the connection:
///
/// 1. the stored profiles of their accounts not known yet are read ([`Profiles::read`]);
/// 2. each job, in order, is staged in memory: a missing account ([`StoreError::NotFound`]) or an
///    undecodable profile fails that job alone, before anything is written; otherwise its items
///    are merged into the account's latest profile (so it sees the jobs before it) and it takes
///    the app's next version;
/// 3. everything is written inside one savepoint by [`SETS_SQL`]: each account once, with its
///    last profile and version, and one change row per job.
///
/// If that write fails (or finds an account missing), it is rolled back to its savepoint, the
/// versions are given back and every job of the run is redone on its own in its own savepoint
/// ([`run_set`]), so that each gets its own result. Returns an error if the batch must be rolled
/// back.
async fn run_sets(
    conn: &mut SqliteConnection,
    versions: &mut Versions,
    profiles: &mut Profiles,
    sets: &mut Vec<(SetJob, Reply<u64>)>,
    answers: &mut Vec<Answer>,
    at_ms: i64,
) -> Result<(), BatchFailed> {
    let staged = match profiles.read(conn, sets.iter().map(|(job, _)| job)).await {
        Ok(()) => stage_sets(conn, versions, profiles, sets).await,
        Err(e) => Err(e),
    };
    let written = match staged {
        Ok(staged) => {
            let updated = if staged.accounts == 0 {
                Ok(vec![0]) // every job failed alone: nothing to write
            } else {
                // `fetch_all`: sqlx stops a statement list at the first row for `fetch_one`.
                sqlx::query_scalar::<_, i64>(SETS_SQL)
                    .bind(staged.accounts_json)
                    .bind(staged.changes_json)
                    .bind(at_ms)
                    .fetch_all(&mut *conn)
                    .await
                    .map_err(StoreError::from)
            };
            match updated {
                Ok(n) if n == [staged.accounts as i64] => Ok(staged.results),
                Ok(_) => Err((StoreError::NotFound, true)),
                Err(e) => Err((e, true)),
            }
        }
        Err(e) => Err((e, false)),
    };
    match written {
        Ok(results) => {
            versions.keep();
            for ((_, reply), result) in sets.drain(..).zip(results) {
                answers.push(Answer::Set(reply, result));
            }
            Ok(())
        }
        Err((e, wrote)) => {
            tracing::debug!(error = %e, jobs = sets.len(), "redoing a run of set jobs one by one");
            versions.undo();
            profiles.clear();
            if wrote {
                if let Err(why) = exec(conn, "ROLLBACK TO sets; RELEASE sets")
                    .await
                    .map_err(|e| BatchFailed::new("ROLLBACK TO", e))
                {
                    for (_, reply) in sets.drain(..) {
                        answers.push(Answer::Set(reply, Err(why.error())));
                    }
                    return Err(why);
                }
            }
            let mut end = Ok(());
            for (job, reply) in sets.drain(..) {
                let result = match &end {
                    Ok(()) => {
                        let (result, job_end) = run_set(conn, versions, profiles, job, at_ms).await;
                        end = job_end;
                        result
                    }
                    Err(why) => Err(why.error()),
                };
                answers.push(Answer::Set(reply, result));
            }
            end
        }
    }
}

/// The writes of a run of set jobs (see [`run_sets`]), in one round trip: `?1` the accounts to
/// update, a JSON array of `[app, user, profile, version]` (each account once); `?2` the change
/// rows, a JSON array of `[app, version, user, operator, items, client IP, previous version]`;
/// `?3` the time. Its one row is
/// the number of accounts updated. (JSON parameters keep the text fixed, so the statements are
/// prepared once, and one row instead of one per account spares a message per account.)
const SETS_SQL: &str = "SAVEPOINT sets; \
    update accounts set profile = j.value ->> 2, version = j.value ->> 3, updated_at_ms = ?3 \
    from json_each(?1) as j \
    where accounts.app_id = j.value ->> 0 and accounts.user_id = j.value ->> 1; \
    select changes(); \
    insert into changes \
        (app_id, version, user_id, operator, client_ip, kind, items, at_ms, prev_version) \
    select j.value ->> 0, j.value ->> 1, j.value ->> 2, j.value ->> 3, j.value ->> 5, 'set', \
        j.value ->> 4, ?3, j.value ->> 6 \
    from json_each(?2) as j; \
    RELEASE sets";

/// A run of set jobs staged for [`SETS_SQL`].
struct StagedSets {
    /// Per job, in order: its version, or its own error (nothing of it is written).
    results: Vec<Result<u64>>,
    /// Distinct accounts written.
    accounts: usize,
    accounts_json: String,
    changes_json: String,
}

/// Step 2 of [`run_sets`]: merges every job into the cached profiles and hands out versions.
/// Errors only if the write as a whole cannot be prepared.
async fn stage_sets(
    conn: &mut SqliteConnection,
    versions: &mut Versions,
    profiles: &mut Profiles,
    sets: &[(SetJob, Reply<u64>)],
) -> Result<StagedSets> {
    let mut results = Vec::with_capacity(sets.len());
    // `(app, version, user, operator, items, client IP, previous version)` per written job.
    let mut changes: Vec<(i64, i64, &str, &str, &str, &str, i64)> = Vec::with_capacity(sets.len());
    for (job, _) in sets {
        let mut prev = 0;
        let merged = match profiles.get(job.app, &job.user) {
            Some(Some((stored, current))) => {
                prev = current;
                check_expected(job, current).and_then(|()| merge_items(stored, job))
            }
            Some(None) => Err(StoreError::NotFound),
            None => Err(StoreError::Corrupt(format!(
                "the profile of {:?} was not read",
                job.user
            ))),
        };
        let profile = match merged {
            Ok(profile) => profile,
            Err(e) => {
                results.push(Err(e));
                continue;
            }
        };
        let version = versions.reserve(conn, job.app, 1).await?;
        changes.push((
            app_key(job.app),
            version_key(version)?,
            &job.user,
            &job.origin.operator,
            &job.change_items,
            &job.origin.client_ip,
            version_key(prev)?,
        ));
        profiles.put(job.app, &job.user, profile, version);
        results.push(Ok(version));
    }
    // Each account once, with what its last job left.
    let mut seen = HashSet::with_capacity(changes.len());
    let mut accounts: Vec<(i64, &str, &str, i64)> = Vec::with_capacity(changes.len());
    for &(app, _, user, ..) in changes.iter().rev() {
        if seen.insert((app, user)) {
            let Some((profile, version)) = profiles.written(app as AppId, user) else {
                unreachable!("every staged job's profile is cached")
            };
            accounts.push((app, user, profile, version_key(version)?));
        }
    }
    let json = |e: serde_json::Error| StoreError::Corrupt(format!("cannot encode a write: {e}"));
    Ok(StagedSets {
        accounts: accounts.len(),
        accounts_json: serde_json::to_string(&accounts).map_err(json)?,
        changes_json: serde_json::to_string(&changes).map_err(json)?,
        results,
    })
}

/// Runs one `set_profile` job on its own, in its own savepoint ([`SET_SQL`]): the slow path of
/// [`run_sets`]. Returns the job's result, and an error if the batch must be rolled back.
async fn run_set(
    conn: &mut SqliteConnection,
    versions: &mut Versions,
    profiles: &mut Profiles,
    job: SetJob,
    at_ms: i64,
) -> (Result<u64>, Result<(), BatchFailed>) {
    if let Err(e) = profiles.read(conn, [&job]).await {
        return (Err(e), Ok(()));
    }
    let mut prev = 0;
    let profile = match profiles.get(job.app, &job.user) {
        Some(Some((stored, current))) => {
            prev = current;
            check_expected(&job, current).and_then(|()| merge_items(stored, &job))
        }
        _ => Err(StoreError::NotFound),
    };
    let (profile, prev) = match profile.and_then(|p| Ok((p, version_key(prev)?))) {
        Ok(staged) => staged,
        Err(e) => return (Err(e), Ok(())),
    };
    let version = match versions.reserve(conn, job.app, 1).await {
        Ok(v) => v,
        Err(e) => {
            versions.undo();
            return (Err(e), Ok(()));
        }
    };
    let written = match version_key(version) {
        // `fetch_all`: sqlx stops a statement list at the first row for `fetch_one`.
        Ok(v) => sqlx::query_scalar::<_, i64>(SET_SQL)
            .bind(profile.as_str())
            .bind(v)
            .bind(at_ms)
            .bind(app_key(job.app))
            .bind(job.user.as_str())
            .bind(job.origin.operator.as_str())
            .bind(job.change_items.as_str())
            .bind(job.origin.client_ip.as_str())
            .bind(prev)
            .fetch_all(&mut *conn)
            .await
            .map_err(StoreError::from),
        Err(e) => Err(e),
    };
    match written {
        Ok(updated) if updated == [1] => {
            versions.keep();
            profiles.put(job.app, &job.user, profile, version);
            (Ok(version), Ok(()))
        }
        written => {
            // The cache said the account exists, so this is a storage failure (or, should the
            // cache ever be wrong, a missing account: nothing of the job stays either way).
            versions.undo();
            profiles.clear();
            let err = written.err().unwrap_or(StoreError::NotFound);
            (Err(err), roll_back_job(conn).await)
        }
    }
}

/// A job with an expected version fails unless the account is at that version.
fn check_expected(job: &SetJob, current: u64) -> Result<()> {
    match job.expected {
        Some(expected) if expected != current => Err(StoreError::VersionConflict { current }),
        _ => Ok(()),
    }
}

/// The stored profile `stored` (packed, see `codec.rs`) with the job's items written in order.
fn merge_items(stored: &str, job: &SetJob) -> Result<String> {
    codec::merge_items(stored, &job.user, &job.items)
}

/// Stored profiles (as in `accounts.profile`) of accounts the running batch has read or
/// written, by app and user, with the version a job of the batch gave them (0 if none did).
/// `None` = the account is known not to exist. It mirrors the transaction only while nothing but
/// set jobs run, so any other job clears it, and so does a rollback of set jobs.
#[derive(Default)]
struct Profiles {
    apps: HashMap<AppId, HashMap<String, Option<Known>>>,
}

/// An account's profile as the running batch sees it.
struct Known {
    profile: String,
    /// Its current version (stored, or given by a job of the batch).
    version: u64,
    /// Whether a job of the batch wrote it.
    written: bool,
}

impl Profiles {
    fn clear(&mut self) {
        self.apps.clear();
    }

    /// `None` if unknown, `Some(None)` if known to be missing; else the profile and its version.
    fn get(&self, app: AppId, user: &str) -> Option<Option<(&str, u64)>> {
        let known = self.apps.get(&app)?.get(user)?;
        Some(known.as_ref().map(|k| (k.profile.as_str(), k.version)))
    }

    /// The profile and version a job of the batch wrote.
    fn written(&self, app: AppId, user: &str) -> Option<(&str, u64)> {
        match self.apps.get(&app)?.get(user)? {
            Some(k) if k.written => Some((k.profile.as_str(), k.version)),
            _ => None,
        }
    }

    /// Records the profile a job has just written (or staged).
    fn put(&mut self, app: AppId, user: &str, profile: String, version: u64) {
        let known = self.apps.entry(app).or_default();
        let k = Some(Known {
            profile,
            version,
            written: true,
        });
        match known.get_mut(user) {
            Some(slot) => *slot = k,
            None => {
                known.insert(user.to_owned(), k);
            }
        }
    }

    /// Reads the stored profiles of the accounts of `jobs` that are not known yet: one statement
    /// per app, answering one row (a JSON array of `[user, profile]`) rather than a row (and a
    /// message from the connection's thread) per account.
    async fn read<'a>(
        &mut self,
        conn: &mut SqliteConnection,
        jobs: impl IntoIterator<Item = &'a SetJob>,
    ) -> Result<()> {
        let mut wanted: Vec<(AppId, &str)> = jobs
            .into_iter()
            .filter(|j| self.get(j.app, &j.user).is_none())
            .map(|j| (j.app, j.user.as_str()))
            .collect();
        wanted.sort_unstable();
        wanted.dedup();
        for group in wanted.chunk_by(|a, b| a.0 == b.0) {
            let app = group[0].0;
            let ids: Vec<&str> = group.iter().map(|w| w.1).collect();
            let ids_json = serde_json::to_string(&ids)
                .map_err(|e| StoreError::Corrupt(format!("cannot encode user ids: {e}")))?;
            let found: String = sqlx::query_scalar(
                "select json_group_array(json_array(user_id, profile, version)) from accounts \
                 where app_id = ?1 and user_id in (select value from json_each(?2))",
            )
            .bind(app_key(app))
            .bind(ids_json)
            .fetch_one(&mut *conn)
            .await?;
            let rows: Vec<(String, String, u64)> = serde_json::from_str(&found)
                .map_err(|e| StoreError::Corrupt(format!("profiles of app {app}: {e}")))?;
            let known = self.apps.entry(app).or_default();
            for id in ids {
                known.insert(id.to_owned(), None);
            }
            for (user, profile, version) in rows {
                known.insert(
                    user,
                    Some(Known {
                        profile,
                        version,
                        written: false,
                    }),
                );
            }
        }
        Ok(())
    }
}

/// The batch's view of `app_versions`: each app's version is read on first use in the batch,
/// handed out in memory, and written once before `COMMIT`. Kept across batches only as scratch
/// space (nothing is cached between transactions).
#[derive(Default)]
struct Versions {
    /// `(app, version stored when the batch read it, last version handed out)`.
    apps: Vec<(AppId, u64, u64)>,
    /// `(index into apps, last before)` of the running job, to give its versions back.
    undo: Vec<(usize, u64)>,
}

impl Versions {
    fn clear(&mut self) {
        self.apps.clear();
        self.undo.clear();
    }

    /// Hands out `n` (≥ 1) consecutive versions of `app` to the running job; returns the first.
    async fn reserve(&mut self, conn: &mut SqliteConnection, app: AppId, n: usize) -> Result<u64> {
        let i = match self.apps.iter().position(|a| a.0 == app) {
            Some(i) => i,
            None => {
                let stored: Option<i64> =
                    sqlx::query_scalar("select version from app_versions where app_id = ?")
                        .bind(app_key(app))
                        .fetch_optional(&mut *conn)
                        .await?;
                let stored = stored.map_or(Ok(0), |v| unsigned(v, "an app version"))?;
                self.apps.push((app, stored, stored));
                self.apps.len() - 1
            }
        };
        let last = self.apps[i].2;
        let new_last = u64::try_from(n)
            .ok()
            .and_then(|n| last.checked_add(n))
            .filter(|v| i64::try_from(*v).is_ok())
            .ok_or_else(|| StoreError::Conflict {
                what: format!("{n} more changes overflow the version of app {app}"),
            })?;
        self.undo.push((i, last));
        self.apps[i].2 = new_last;
        Ok(last + 1)
    }

    /// The running job succeeded: its versions stay taken.
    fn keep(&mut self) {
        self.undo.clear();
    }

    /// The running job was rolled back: its versions are handed out again.
    fn undo(&mut self) {
        while let Some((i, last)) = self.undo.pop() {
            self.apps[i].2 = last;
        }
    }

    /// `app`'s stored version was set to `version` behind this cache's back (by a restore, which
    /// only runs on an app no job of the batch has taken versions of).
    fn restored(&mut self, app: AppId, version: u64) {
        if let Some(a) = self.apps.iter_mut().find(|a| a.0 == app) {
            debug_assert_eq!(a.1, a.2, "a restored app took no versions in the batch");
            a.1 = version;
            a.2 = version;
        }
    }

    /// Writes the last version handed out of every app that took any.
    async fn store(&self, conn: &mut SqliteConnection) -> Result<()> {
        for &(app, stored, last) in &self.apps {
            if last == stored {
                continue;
            }
            sqlx::query(
                "insert into app_versions (app_id, version) values (?, ?) \
                 on conflict (app_id) do update set version = excluded.version",
            )
            .bind(app_key(app))
            .bind(version_key(last)?)
            .execute(&mut *conn)
            .await?;
        }
        Ok(())
    }
}

/// The writes of an import (see [`apply_import`]) in one round trip: `?1` app, `?2` the accounts,
/// a JSON array of `[user, profile, version, change items]`; `?3` time; `?4` operator; `?5`
/// client IP. The change rows go first, so that each links to the account's newest change before
/// it (its account row, or its delete in `deleted_accounts`). (`where true` resolves SQLite's
/// `insert … select … on conflict` parsing ambiguity.)
const IMPORT_SQL: &str = "insert into changes \
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
async fn apply_import(
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

async fn apply_delete(
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

/// [`Store::kick`]: recorded in `kicks` (which outlives the account row) if the account exists.
async fn apply_kick(conn: &mut SqliteConnection, job: &KickJob) -> Result<bool> {
    // `max`: a later kick with an earlier time never un-revokes a UserSig.
    let done = sqlx::query(
        "insert into kicks (app_id, user_id, not_before) select ?1, ?2, ?3 \
         where exists (select 1 from accounts where app_id = ?1 and user_id = ?2) \
         on conflict (app_id, user_id) do update set not_before = max(not_before, excluded.not_before)",
    )
    .bind(app_key(job.app))
    .bind(job.user.as_str())
    .bind(job.not_before)
    .execute(conn)
    .await?;
    Ok(done.rows_affected() > 0)
}

async fn apply_cursor(conn: &mut SqliteConnection, job: &CursorJob) -> Result<()> {
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

/// [`Store::prune_changes`]: the oldest `limit` changes at or below `through` go, and the
/// [`PRUNED`] cursor follows (never backwards).
async fn apply_prune(conn: &mut SqliteConnection, job: &PruneJob) -> Result<usize> {
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

async fn apply_restore(
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

// ---- the Store --------------------------------------------------------------------------------

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
        Ok(users
            .iter()
            .map(|u| existing.contains(u.as_str()))
            .collect())
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
        let rows: Vec<(String, i64)> = sqlx::query_as(KICKS_SQL)
            .bind(app_key(app))
            .fetch_all(&self.reader)
            .await?;
        rows.into_iter()
            .map(|(user, t)| Ok((user, unsigned(t, "a kick's not_before")?)))
            .collect()
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
        let job = SetJob {
            expected,
            app,
            user: user.as_str().to_owned(),
            change_items: encode_items(items.iter().map(|(t, v)| (t.name(), v)))?,
            items: items.to_vec(),
            origin: OwnedOrigin::from(origin),
        };
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
        let found: HashMap<String, Profile> = rows
            .into_iter()
            .map(AccountRow::into_profile)
            .collect::<Result<_>>()?;
        Ok(users
            .iter()
            .map(|u| found.get(u.as_str()).cloned())
            .collect())
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
             where app_id = ? and version > ? order by version limit ?",
        )
        .bind(app_key(app))
        .bind(since)
        .bind(i64::try_from(limit).unwrap_or(i64::MAX))
        .fetch_all(&self.reader)
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
        let ids = serde_json::to_string(&ids)
            .map_err(|e| StoreError::Corrupt(format!("cannot encode UserIDs: {e}")))?;
        let rows: Vec<ChangeRow> = sqlx::query_as(CHANGES_OF_SQL)
            .bind(app_key(app))
            .bind(ids)
            .bind(since)
            .bind(i64::try_from(limit).unwrap_or(i64::MAX))
            .bind(crate::codec::MAX_CHAIN_WALK)
            .fetch_all(&self.reader)
            .await?;
        rows.into_iter().map(ChangeRow::into_change).collect()
    }

    #[tracing::instrument(skip_all, fields(app = app))]
    async fn current_version(&self, app: AppId) -> Result<u64> {
        let version: Option<i64> =
            sqlx::query_scalar("select version from app_versions where app_id = ?")
                .bind(app_key(app))
                .fetch_optional(&self.reader)
                .await?;
        version.map_or(Ok(0), |v| unsigned(v, "an app version"))
    }

    #[tracing::instrument(skip_all, fields(app = app, name = name))]
    async fn cursor(&self, app: AppId, name: &str) -> Result<Option<u64>> {
        let version: Option<i64> =
            sqlx::query_scalar("select version from cursors where app_id = ? and name = ?")
                .bind(app_key(app))
                .bind(name)
                .fetch_optional(&self.reader)
                .await?;
        version.map(|v| unsigned(v, "a cursor")).transpose()
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

    #[tracing::instrument(skip_all)]
    async fn apps(&self) -> Result<Vec<AppId>> {
        let keys: Vec<i64> = sqlx::query_scalar(
            "select app_id from app_versions where version > 0 union select app_id from cursors",
        )
        .fetch_all(&self.reader)
        .await?;
        let mut apps: Vec<AppId> = keys.into_iter().map(app_from_key).collect();
        apps.sort_unstable();
        Ok(apps)
    }

    #[tracing::instrument(skip_all, fields(app = app))]
    async fn dump_app(&self, app: AppId) -> Result<AppDump> {
        // One read transaction: one WAL snapshot for all five reads.
        let mut tx = self.reader.begin().await?;
        let version: Option<i64> =
            sqlx::query_scalar("select version from app_versions where app_id = ?")
                .bind(app_key(app))
                .fetch_optional(&mut *tx)
                .await?;
        let accounts: Vec<(String, String, i64, i64)> = sqlx::query_as(
            "select user_id, profile, version, updated_at_ms from accounts \
             where app_id = ? order by user_id",
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
             where app_id = ? order by version",
        )
        .bind(app_key(app))
        .fetch_all(&mut *tx)
        .await?;
        let cursors: Vec<(String, i64)> =
            sqlx::query_as("select name, version from cursors where app_id = ? order by name")
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
            kicks: kicks
                .into_iter()
                .map(|(user, t)| Ok((user, unsigned(t, "a kick's not_before")?)))
                .collect::<Result<_>>()?,
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
        self.submit(|reply| Job::Other(OtherJob::Restore(Box::new(dump), reply)))
            .await
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

/// The kicks of an app, by UserID: a range of the `kicks` primary key, read by every
/// [`Store::kicks`] call (each push feed makes one every few seconds), so never a scan of the
/// app's accounts.
const KICKS_SQL: &str = "select user_id, not_before from kicks where app_id = ? order by user_id";

/// The changes of some accounts (`?2`, a JSON array of distinct UserIDs) after a version (`?3`),
/// at most `?4` (≥ 1), in version order, by walking each account's chain of changes back from
/// its newest (`accounts.version`, or for a deleted account `deleted_accounts.version`) through
/// `changes.prev_version`, one primary-key lookup per change, at most `?4` per account and
/// never below `?3`: the cost grows with the number of accounts and the limit, never with the
/// app's log. A link that does not lead to a change of the same account (pruned) ends the walk.
/// `cross join` fixes the join order (SQLite's planner would otherwise range over the app's log
/// and probe the walk), and the walk is capped at `?5` changes per account.
const CHANGES_OF_SQL: &str = "with recursive u(id) as (select value from json_each(?2)), \
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
     oldest(version) as (select version from walk order by version limit ?4) \
     select c.version, c.user_id, c.operator, c.client_ip, c.kind, c.items, c.at_ms \
     from oldest cross join changes as c on c.app_id = ?1 and c.version = oldest.version \
     order by c.version";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn store_urls_name_a_file() {
        assert_eq!(
            db_path("sqlite://data/portrait.db").unwrap(),
            PathBuf::from("data/portrait.db")
        );
        assert_eq!(
            db_path("sqlite:///var/lib/p.db").unwrap(),
            PathBuf::from("/var/lib/p.db")
        );
        assert_eq!(db_path("sqlite:p.db").unwrap(), PathBuf::from("p.db"));
        for bad in [
            "sqlite::memory:",
            "sqlite://",
            "sqlite://p.db?mode=ro",
            "postgres://x",
        ] {
            assert!(matches!(db_path(bad), Err(StoreError::Config(_))), "{bad}");
        }
    }

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
