//! The writer task: the jobs callers send it, the answers it sends back after `COMMIT`, the loop
//! that gathers queued jobs into batches (group commit), and the background WAL checkpointer.
//! What a batch does inside its transaction is in `batch.rs` and `jobs.rs`.

use std::sync::Arc;

use portrait_core::Identifier;
use sqlx::sqlite::SqliteConnection;
use sqlx::Connection;
use tokio::sync::{mpsc, oneshot};
use tracing::Instrument;

use crate::batch::SetJob;
use crate::codec::OwnedOrigin;
use crate::{AppDump, AppId, NewAccount, Result, StoreError};

use super::batch::{run_batch, Scratch};
use super::lookup::Commits;
#[cfg(test)]
use super::open::pragmas;
use super::SqliteBackend;

/// Most jobs committed together in one transaction.
pub(super) const MAX_BATCH: usize = 512;
/// Write jobs that may wait for the writer task; callers beyond that wait to enqueue.
pub(super) const QUEUE: usize = 2 * MAX_BATCH;

impl SqliteBackend {
    /// Queues a write job for the writer task and waits for its answer, which comes after the
    /// `COMMIT` of the batch holding the job.
    pub(super) async fn submit<T>(&self, job: impl FnOnce(Reply<T>) -> Job) -> Result<T> {
        let (reply, answer) = oneshot::channel();
        self.writer
            .send(Msg::Job(job(reply)))
            .await
            .map_err(|_| closed())?;
        answer.await.map_err(|_| closed())?
    }
}

/// Where the writer task sends a job's answer.
pub(super) type Reply<T> = oneshot::Sender<Result<T>>;

/// What the store sends to the writer task.
pub(super) enum Msg {
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
pub(super) enum Job {
    /// `set_profile`: the hot path, written in runs (see [`run_sets`](super::batch::run_sets)).
    Set(SetJob, Reply<u64>),
    /// Any other write: run as is, in its own savepoint.
    Other(OtherJob),
}

pub(super) enum OtherJob {
    Import(ImportJob, Reply<()>),
    Delete(DeleteJob, Reply<Vec<bool>>),
    Kick(KickJob, Reply<bool>),
    Cursor(CursorJob, Reply<()>),
    Prune(PruneJob, Reply<usize>),
    Restore(Box<AppDump>, Reply<()>),
    AppRecord(super::apps::AppRecordJob, Reply<u64>),
}

pub(super) struct ImportJob {
    pub(super) app: AppId,
    pub(super) accounts: Vec<NewAccount>,
    pub(super) origin: OwnedOrigin,
}

pub(super) struct DeleteJob {
    pub(super) app: AppId,
    pub(super) users: Vec<Identifier>,
    pub(super) origin: OwnedOrigin,
}

pub(super) struct CursorJob {
    pub(super) app: AppId,
    pub(super) name: String,
    pub(super) version: i64,
}

pub(super) struct PruneJob {
    pub(super) app: AppId,
    pub(super) through: i64,
    pub(super) limit: i64,
}

pub(super) struct KickJob {
    pub(super) app: AppId,
    pub(super) user: String,
    pub(super) not_before: i64,
}

impl Job {
    /// The job's answer when it fails with `err` without running.
    pub(super) fn failed(self, err: StoreError) -> Answer {
        match self {
            Job::Set(_, reply) => Answer::Set(reply, Err(err)),
            Job::Other(OtherJob::Import(_, reply)) => Answer::Unit(reply, Err(err)),
            Job::Other(OtherJob::Delete(_, reply)) => Answer::Delete(reply, Err(err)),
            Job::Other(OtherJob::Kick(_, reply)) => Answer::Kick(reply, Err(err)),
            Job::Other(OtherJob::Cursor(_, reply)) => Answer::Unit(reply, Err(err)),
            Job::Other(OtherJob::Prune(_, reply)) => Answer::Count(reply, Err(err)),
            Job::Other(OtherJob::Restore(_, reply)) => Answer::Unit(reply, Err(err)),
            Job::Other(OtherJob::AppRecord(_, reply)) => Answer::Set(reply, Err(err)),
        }
    }

    /// Answers the job with `err` without running it.
    pub(super) fn fail(self, err: StoreError) {
        self.failed(err).send();
    }
}

/// A job that has run, with its result, waiting for the batch's `COMMIT`.
pub(super) enum Answer {
    Set(Reply<u64>, Result<u64>),
    Unit(Reply<()>, Result<()>),
    Delete(Reply<Vec<bool>>, Result<Vec<bool>>),
    Kick(Reply<bool>, Result<bool>),
    Count(Reply<usize>, Result<usize>),
}

impl Answer {
    pub(super) fn is_ok(&self) -> bool {
        match self {
            Answer::Set(_, r) => r.is_ok(),
            Answer::Unit(_, r) => r.is_ok(),
            Answer::Delete(_, r) => r.is_ok(),
            Answer::Kick(_, r) => r.is_ok(),
            Answer::Count(_, r) => r.is_ok(),
        }
    }

    /// Sends the result (a caller that stopped waiting is ignored).
    pub(super) fn send(self) {
        match self {
            Answer::Set(reply, r) => drop(reply.send(r)),
            Answer::Unit(reply, r) => drop(reply.send(r)),
            Answer::Delete(reply, r) => drop(reply.send(r)),
            Answer::Kick(reply, r) => drop(reply.send(r)),
            Answer::Count(reply, r) => drop(reply.send(r)),
        }
    }

    /// Sends `err` instead of the result: the batch was not committed.
    pub(super) fn fail(self, err: StoreError) {
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
pub(super) fn closed() -> StoreError {
    StoreError::Unavailable("the store is closed".into())
}

/// The writer task (on its own thread): owns the writer connection and commits queued jobs in
/// batches until [`Msg::Close`] or until every sender is gone. After each batch it kicks the
/// checkpointer ([`run_checkpointer`]), which it stops before closing its own connection.
pub(super) async fn run_writer(
    mut conn: SqliteConnection,
    checkpointer: SqliteConnection,
    mut rx: mpsc::Receiver<Msg>,
    commits: Arc<Commits>,
) {
    let (kick, kicks) = mpsc::channel(1);
    let checkpointer = tokio::spawn(run_checkpointer(checkpointer, kicks, commits.clone()));
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
            run_batch(&mut conn, &mut jobs, &mut scratch, &commits)
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
///
/// A checkpoint that copied the whole WAL is counted in `commits`, so that the lookups' kept
/// snapshots are renewed reading the file alone and let the writer restart the WAL
/// ([`Commits`]).
pub(super) async fn run_checkpointer(
    mut conn: SqliteConnection,
    mut kicks: mpsc::Receiver<()>,
    commits: Arc<Commits>,
) {
    while kicks.recv().await.is_some() {
        // (busy, frames in the WAL, frames copied into the file)
        match sqlx::query_as::<_, (i64, i64, i64)>("pragma wal_checkpoint(PASSIVE)")
            .fetch_one(&mut conn)
            .await
        {
            Ok((0, log, copied)) if log > 0 && log == copied => commits.counted(),
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "background WAL checkpoint failed"),
        }
    }
    if let Err(e) = conn.close().await {
        tracing::warn!(error = %e, "closing the sqlite checkpointer connection failed");
    }
}
