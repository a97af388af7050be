//! Group commit of [`crate::Store::set_profile`] for [`super::PgStore`]: the concurrent sets of one
//! app, in one process, share one transaction and one `COMMIT` (one WAL flush).
//!
//! * **Lanes**: each app with sets waiting has a *lane*, a queue plus one task (spawned by the
//!   call that found the lane idle) that runs the app's batches one after the other. While a
//!   batch is in flight, the app's next sets queue up and form the next batch (at most
//!   [`MAX_BATCH`]): no timer, a lone set is a batch of one. Lanes of different apps run in
//!   parallel, each on a pooled connection of its own. The lane task ends when its queue is empty.
//! * **A batch** is one `READ COMMITTED` transaction, as any write of the backend:
//!   1. take a connection and `BEGIN`, lock the app's `app_versions` row (held to `COMMIT`; this
//!      is what orders batches of several processes sharing the database), and only then take
//!      the queued jobs, so jobs arriving while the batch waits for a connection or the lock join
//!      it;
//!   2. read every account the jobs touch in one statement (a new snapshot, taken after the lock:
//!      it sees every write of the app committed before);
//!   3. stage the jobs in memory, in queue order (`stage.rs`): a missing account
//!      ([`StoreError::NotFound`]), a stale expected version ([`StoreError::VersionConflict`]) or
//!      an undecodable profile fails that job alone, before anything is written, and takes no
//!      version; every other job is merged onto what the jobs before it left (read-modify-write
//!      of one account composes) and takes the app's next version;
//!   4. one statement ([`WRITE_SQL`]) writes each account once with its last profile, one
//!      change row per job and the app's new version (a batch that writes one account once uses
//!      the single-row statements instead, which cost about half a millisecond less than the
//!      `unnest` join: a lone write is as fast as before group commit);
//!   5. `COMMIT`, and only then answer the jobs.
//!
//!   Should step 4 fail (or update fewer accounts than staged), the transaction is rolled back and
//!   every job of the batch is redone alone, in order, in a transaction of its own
//!   ([`PgBackend::set_one`]), so a job that the database refuses still fails alone. If the batch
//!   fails as a whole (no connection, the lock or the read fails, `COMMIT` fails), every job of
//!   it gets the error: nothing was acknowledged, and the transaction left nothing behind.
//! * A job that has been queued is carried out even if its caller stops waiting. If the lane task
//!   is dropped (its runtime shutting down), the jobs it holds or that are queued are answered
//!   with [`StoreError::Unavailable`].
//!
//! What must not live here: anything but `set_profile` (the other writes keep their own
//! transaction, serialised with the batches by the same app lock).

use std::collections::hash_map::Entry;
use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError};

use tokio::sync::oneshot;
use tracing::Instrument;

use super::stage::stage;
use super::write::{lock_app, BEGIN, SET_SQL};
use super::PgBackend;
use crate::batch::{BatchFailed, SetJob};
use crate::codec::{app_key, distinct};
use crate::{now_ms, AppId, Result, StoreError};

/// Most jobs committed together in one transaction.
pub(super) const MAX_BATCH: usize = 256;

/// A queued job and where its answer goes.
struct Queued {
    job: SetJob,
    reply: oneshot::Sender<Result<u64>>,
}

/// The lanes of one [`PgBackend`] (shared by its clones).
#[derive(Default)]
pub(super) struct Lanes {
    /// Jobs waiting, by app. An app has an entry exactly while its lane task runs.
    queues: Mutex<HashMap<AppId, VecDeque<Queued>>>,
    /// Batches run so far (committed or not), for `Debug` and the tests.
    batches: AtomicU64,
}

impl Lanes {
    fn queues(&self) -> MutexGuard<'_, HashMap<AppId, VecDeque<Queued>>> {
        // The critical sections only move jobs around; a panic there leaves the map usable.
        self.queues.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Queues `job`; true if the app had no lane task, which the caller must then start.
    fn push(&self, app: AppId, job: Queued) -> bool {
        match self.queues().entry(app) {
            Entry::Occupied(mut queue) => {
                queue.get_mut().push_back(job);
                false
            }
            Entry::Vacant(slot) => {
                slot.insert(VecDeque::from([job]));
                true
            }
        }
    }

    /// Moves up to `max` queued jobs of `app` into `out` (all of them if `max` is `None`).
    fn take(&self, app: AppId, max: Option<usize>, out: &mut Vec<Queued>) {
        if let Some(queue) = self.queues().get_mut(&app) {
            let n = max.map_or(queue.len(), |max| max.min(queue.len()));
            out.extend(queue.drain(..n));
        }
    }

    /// Ends the app's lane if nothing is queued (atomically with [`Lanes::push`], so a job is
    /// never left without a task); true if it did.
    fn finish_if_idle(&self, app: AppId) -> bool {
        let mut queues = self.queues();
        match queues.get(&app) {
            Some(queue) if !queue.is_empty() => false,
            _ => {
                queues.remove(&app);
                true
            }
        }
    }

    /// Ends the app's lane whatever is queued; dropping the jobs answers their callers with an
    /// error.
    fn abandon(&self, app: AppId) {
        let dropped = self.queues().remove(&app);
        drop(dropped); // outside the lock
    }

    /// Jobs waiting for a batch, over every app.
    pub(super) fn queued(&self) -> usize {
        self.queues().values().map(VecDeque::len).sum()
    }

    /// Batches run so far.
    pub(super) fn batches(&self) -> u64 {
        self.batches.load(Ordering::Relaxed)
    }
}

/// The error of a job whose lane was dropped before answering it, or of a closed store.
fn abandoned() -> StoreError {
    StoreError::Unavailable("the write was abandoned: the store is closing".into())
}

/// Queues `job` in its app's lane (starting the lane task if it is idle) and waits for its
/// answer, which comes after the `COMMIT` of the batch holding it.
pub(super) async fn submit(store: &PgBackend, job: SetJob) -> Result<u64> {
    let app = job.app;
    if store.pool.is_closed() {
        return Err(abandoned());
    }
    let (reply, answer) = oneshot::channel();
    if store.lanes.push(app, Queued { job, reply }) {
        tokio::spawn(run_lane(store.clone(), app));
    }
    answer.await.map_err(|_| abandoned())?
}

/// Ends the lane if the lane task is dropped before it has finished (runtime shutdown), so that
/// later calls start a new one and the queued callers get an answer.
struct LaneGuard<'a> {
    lanes: &'a Lanes,
    app: AppId,
    finished: bool,
}

impl Drop for LaneGuard<'_> {
    fn drop(&mut self) {
        if !self.finished {
            self.lanes.abandon(self.app);
        }
    }
}

/// The lane task of `app`: runs batches until the queue is empty.
async fn run_lane(store: PgBackend, app: AppId) {
    let mut guard = LaneGuard {
        lanes: &store.lanes,
        app,
        finished: false,
    };
    let mut jobs = Vec::with_capacity(MAX_BATCH);
    while !store.lanes.finish_if_idle(app) {
        run_batch(&store, app, &mut jobs)
            .instrument(tracing::debug_span!("set_batch", app))
            .await;
        store.lanes.batches.fetch_add(1, Ordering::Relaxed);
    }
    guard.finished = true;
}

/// Failing the queued jobs of a batch, the PostgreSQL engine's own use of the shared type.
impl BatchFailed {
    /// Answers every job with [`BatchFailed::error`].
    fn fail(&self, jobs: impl IntoIterator<Item = Queued>) {
        for q in jobs {
            let _ = q.reply.send(Err(self.error()));
        }
    }
}

/// Step 4 of a batch: `$1` app, `$2` users (each once), `$3` their profiles, `$4` their
/// versions, `$5` time, `$6` change versions (one per written job), `$7` change users, `$8`
/// change operators, `$9` change items, `$10` the app's new version, `$11` change client IPs,
/// `$12` the versions of the changes' previous changes of their accounts. Its one row is the
/// number of accounts updated.
pub(super) const WRITE_SQL: &str = "with account as ( \
        update accounts as a set profile = t.profile, version = t.version, updated_at_ms = $5 \
        from unnest($2::text[], $3::text[], $4::bigint[]) as t (user_id, profile, version) \
        where a.app_id = $1 and a.user_id = t.user_id \
        returning 1 \
    ), change as ( \
        insert into changes \
            (app_id, version, user_id, operator, client_ip, kind, items, at_ms, prev_version) \
        select $1, t.version, t.user_id, t.operator, t.client_ip, 'set', t.items, $5, t.prev \
        from unnest($6::bigint[], $7::text[], $8::text[], $9::text[], $11::text[], $12::bigint[]) \
            as t (version, user_id, operator, items, client_ip, prev) \
    ), app as ( \
        update app_versions set version = $10 where app_id = $1 \
    ) \
    select count(*) from account";

/// Runs one batch of `app` (see the module docs); `jobs` is scratch space, empty on return.
async fn run_batch(store: &PgBackend, app: AppId, jobs: &mut Vec<Queued>) {
    // Step 1. Jobs are taken only once the lock is held; until then a failure fails every job
    // queued, all of which waited for this attempt.
    let begun = match store.pool.begin_with(BEGIN).await {
        Ok(mut tx) => match lock_app(&mut tx, app).await {
            Ok(last) => Ok((tx, last)),
            Err(e) => {
                let _ = tx.rollback().await;
                Err(BatchFailed::not_committed("locking the app", e))
            }
        },
        Err(e) => Err(BatchFailed::not_committed("BEGIN", e)),
    };
    let (mut tx, last) = match begun {
        Ok(begun) => begun,
        Err(failed) => {
            tracing::error!(app, error = %failed, "a write batch failed");
            store.lanes.take(app, None, jobs);
            failed.fail(jobs.drain(..));
            return;
        }
    };
    store.lanes.take(app, Some(MAX_BATCH), jobs);
    let at_ms = now_ms();

    // Step 2.
    let ids = distinct(jobs.iter().map(|q| q.job.user.as_str()));
    let read = match ids[..] {
        [one] => sqlx::query_as(
            "select user_id, profile, version from accounts where app_id = $1 and user_id = $2",
        )
        .bind(app_key(app))
        .bind(one),
        _ => sqlx::query_as(
            "select user_id, profile, version from accounts \
             where app_id = $1 and user_id = any($2::text[])",
        )
        .bind(app_key(app))
        .bind(&ids),
    };
    let read: Result<Vec<(String, String, i64)>> =
        read.fetch_all(&mut *tx).await.map_err(StoreError::from);
    let stored = match read {
        Ok(rows) => rows,
        Err(e) => {
            let failed = BatchFailed::not_committed("reading the accounts", e);
            tracing::error!(app, error = %failed, "a write batch failed");
            let _ = tx.rollback().await;
            failed.fail(jobs.drain(..));
            return;
        }
    };

    // Steps 3–4.
    let staged = stage(app, last, stored, jobs.iter().map(|q| &q.job));
    let written = match &staged.write {
        None => Ok(()), // every job failed alone: nothing to write
        Some(w) => {
            let query = if w.change_versions.len() == 1 {
                sqlx::query_scalar::<_, i64>(SET_SQL)
                    .bind(app_key(app))
                    .bind(&w.users[0])
                    .bind(&w.profiles[0])
                    .bind(w.versions[0])
                    .bind(at_ms)
                    .bind(&w.operators[0])
                    .bind(&w.items[0])
                    .bind(&w.client_ips[0])
                    .bind(w.prevs[0])
            } else {
                sqlx::query_scalar::<_, i64>(WRITE_SQL)
                    .bind(app_key(app))
                    .bind(&w.users)
                    .bind(&w.profiles)
                    .bind(&w.versions)
                    .bind(at_ms)
                    .bind(&w.change_versions)
                    .bind(&w.change_users)
                    .bind(&w.operators)
                    .bind(&w.items)
                    .bind(w.last)
                    .bind(&w.client_ips)
                    .bind(&w.prevs)
            };
            query
                .fetch_one(&mut *tx)
                .await
                .map_err(StoreError::from)
                .and_then(|updated| {
                    if updated == w.users.len() as i64 {
                        Ok(())
                    } else {
                        Err(StoreError::Corrupt(format!(
                            "{updated} of {} accounts updated although the app was locked",
                            w.users.len()
                        )))
                    }
                })
        }
    };
    let results = staged.results;
    if let Err(e) = written {
        // Some job is refused by the database: redo each alone, so that it fails alone.
        tracing::warn!(app, jobs = jobs.len(), error = %e, "redoing a write batch job by job");
        let _ = tx.rollback().await;
        for q in jobs.drain(..) {
            let result = store.set_one(&q.job).await;
            let _ = q.reply.send(result);
        }
        return;
    }

    // Step 5.
    let Some(write) = &staged.write else {
        // Nothing written: the answers (each job's own error) stand whatever the rollback does.
        let _ = tx.rollback().await;
        for (q, result) in jobs.drain(..).zip(results) {
            let _ = q.reply.send(result);
        }
        return;
    };
    match tx.commit().await {
        Ok(()) => {
            tracing::debug!(jobs = jobs.len(), last = write.last, "committed");
            for (q, result) in jobs.drain(..).zip(results) {
                let _ = q.reply.send(result);
            }
        }
        Err(e) => {
            let failed = BatchFailed::not_committed("COMMIT", e);
            tracing::error!(app, error = %failed, "a write batch failed");
            failed.fail(jobs.drain(..));
        }
    }
}

#[cfg(test)]
mod tests {
    use portrait_core::schema::StandardTag;
    use portrait_core::{ProfileValue, Tag};

    use super::*;

    /// Tests on a real database: the app's lock is held by another connection while jobs queue,
    /// so that they all land, in a known order, in the one batch that runs once it is released.
    #[cfg(feature = "testkit")]
    mod on_postgres {
        use std::time::Duration;

        use portrait_core::Identifier;
        use sqlx::{Connection, PgConnection};
        use tokio::task::JoinHandle;

        use super::*;
        use crate::postgres::{PgStore, PoolSettings};
        use crate::{ChangeKind, NewAccount, Store};

        const APP: AppId = 1_400_000_000;

        fn id(s: &str) -> Identifier {
            Identifier::parse(s).unwrap()
        }

        fn level(n: u64) -> Vec<(Tag, ProfileValue)> {
            vec![(Tag::Standard(StandardTag::Level), ProfileValue::Int(n))]
        }

        /// A store in a fresh schema, its sessions named `name` (to find them in
        /// `pg_stat_activity`), with accounts `a` and `b` imported (versions 1 and 2), and a
        /// connection of its own to the same schema.
        async fn setup(name: &str) -> (PgStore, PgConnection) {
            let url = crate::testkit::fresh_postgres_url().await;
            let options = PgStore::connect_options(&url).unwrap();
            let store = PgStore::open_with(
                options.clone().application_name(name),
                PoolSettings::default(),
            )
            .await
            .unwrap();
            let accounts = ["a", "b"].map(|u| NewAccount::new(id(u)));
            store
                .import_accounts(APP, &accounts, "admin".into())
                .await
                .unwrap();
            assert_eq!(store.current_version(APP).await.unwrap(), 2);
            let conn = PgConnection::connect_with(&options).await.unwrap();
            (store, conn)
        }

        /// Locks the app's version row on `conn` until the transaction ends.
        async fn block(conn: &mut PgConnection) -> sqlx::Transaction<'_, sqlx::Postgres> {
            let mut tx = conn.begin().await.unwrap();
            sqlx::query("select version from app_versions where app_id = $1 for update")
                .bind(app_key(APP))
                .execute(&mut *tx)
                .await
                .unwrap();
            tx
        }

        /// Starts a `set_profile_expecting` and waits until it is queued (behind `queued` others).
        async fn queue(
            store: &PgStore,
            queued: usize,
            user: &str,
            items: Vec<(Tag, ProfileValue)>,
            operator: &str,
            expected: Option<u64>,
        ) -> JoinHandle<Result<u64>> {
            let (store2, user, operator) = (store.clone(), id(user), operator.to_owned());
            let task = tokio::spawn(async move {
                store2
                    .set_profile_expecting(APP, &user, &items, (&operator).into(), expected)
                    .await
            });
            for _ in 0..10_000 {
                if store.0.lanes.queued() == queued + 1 {
                    return task;
                }
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
            panic!("the job was not queued within 10 s");
        }

        fn summary(r: &Result<u64>) -> String {
            match r {
                Ok(v) => v.to_string(),
                Err(StoreError::VersionConflict { current }) => format!("conflict@{current}"),
                Err(StoreError::NotFound) => "missing".into(),
                Err(StoreError::Unavailable(_)) => "unavailable".into(),
                Err(e) => format!("{e:?}"),
            }
        }

        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn queued_sets_commit_in_one_batch_and_failing_jobs_fail_alone() {
            let (store, mut conn) = setup("portrait-batch-one").await;
            let blocker = block(&mut conn).await;
            let hobby = vec![(
                Tag::Custom("Tag_Profile_Custom_Hobby".into()),
                ProfileValue::Str("chess".into()),
            )];
            let jobs = [
                queue(&store, 0, "a", level(1), "a", None).await, // 3
                queue(&store, 1, "ghost", level(1), "x", None).await, // missing
                queue(&store, 2, "a", level(2), "a", Some(1)).await, // stale: a is at 3 now
                queue(&store, 3, "a", level(3), "a", Some(3)).await, // 4: sees job 1
                queue(&store, 4, "b", level(4), "b", Some(2)).await, // 5
                queue(&store, 5, "b", level(5), "b", Some(2)).await, // stale: b is at 5 now
                queue(&store, 6, "a", hobby, "a", None).await,    // 6: keeps job 4's level
            ];
            let batches = store.0.lanes.batches();
            blocker.commit().await.unwrap();
            let mut results = Vec::new();
            for job in jobs {
                results.push(summary(&job.await.unwrap()));
            }
            assert_eq!(
                results,
                ["3", "missing", "conflict@3", "4", "5", "conflict@5", "6"]
            );
            assert_eq!(store.0.lanes.batches(), batches + 1, "all in one batch");
            assert_eq!(store.current_version(APP).await.unwrap(), 6);
            let log: Vec<(u64, String, ChangeKind)> = store
                .changes_since(APP, 2, 100)
                .await
                .unwrap()
                .into_iter()
                .map(|c| (c.version, c.user, c.kind))
                .collect();
            let set = ChangeKind::Set;
            assert_eq!(
                log,
                [
                    (3, "a".into(), set),
                    (4, "a".into(), set),
                    (5, "b".into(), set),
                    (6, "a".into(), set)
                ]
            );
            let profiles = store.get_profiles(APP, &[id("a"), id("b")]).await.unwrap();
            let a = profiles[0].as_ref().unwrap();
            assert_eq!(a.version, 6);
            assert_eq!(a.fields["Tag_Profile_IM_Level"], ProfileValue::Int(3));
            assert_eq!(
                a.fields["Tag_Profile_Custom_Hobby"],
                ProfileValue::Str("chess".into())
            );
            let b = profiles[1].as_ref().unwrap();
            assert_eq!(b.version, 5);
            assert_eq!(b.fields["Tag_Profile_IM_Level"], ProfileValue::Int(4));
            assert!(!store.accounts_exist(APP, &[id("ghost")]).await.unwrap()[0]);
            store.close().await;
        }

        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn a_job_the_database_refuses_fails_alone_and_the_rest_of_its_batch_commits() {
            let (store, mut conn) = setup("portrait-batch-refused").await;
            let blocker = block(&mut conn).await;
            let jobs = [
                queue(&store, 0, "a", level(1), "a", None).await,
                // PostgreSQL text cannot hold NUL: the batch's write fails because of this job.
                queue(&store, 1, "b", level(2), "b\0", None).await,
                queue(&store, 2, "a", level(3), "a", Some(3)).await,
            ];
            blocker.commit().await.unwrap();
            let mut results = Vec::new();
            for job in jobs {
                results.push(summary(&job.await.unwrap()));
            }
            assert_eq!(results, ["3", "unavailable", "4"]);
            assert_eq!(store.current_version(APP).await.unwrap(), 4);
            let log: Vec<(u64, String)> = store
                .changes_since(APP, 2, 100)
                .await
                .unwrap()
                .into_iter()
                .map(|c| (c.version, c.user))
                .collect();
            assert_eq!(log, [(3, "a".into()), (4, "a".into())]);
            let b = store.get_profiles(APP, &[id("b")]).await.unwrap()[0]
                .clone()
                .unwrap();
            assert_eq!((b.version, b.fields.len()), (2, 0), "b is untouched");
            store.close().await;
        }

        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn a_batch_that_fails_as_a_whole_fails_every_job_and_takes_no_version() {
            let name = "portrait-batch-killed";
            let (store, mut conn) = setup(name).await;
            let blocker = block(&mut conn).await;
            let jobs = [
                queue(&store, 0, "a", level(1), "a", None).await,
                queue(&store, 1, "b", level(2), "b", None).await,
                queue(&store, 2, "ghost", level(3), "x", None).await,
            ];
            // The batch's session, waiting for the app's lock, is killed.
            let mut killer = PgConnection::connect_with(
                &PgStore::connect_options(&crate::testkit::test_pg_url()).unwrap(),
            )
            .await
            .unwrap();
            let mut killed = false;
            for _ in 0..10_000 {
                killed = sqlx::query_scalar::<_, bool>(
                    "select coalesce(bool_or(pg_terminate_backend(pid)), false) \
                     from pg_stat_activity where application_name = $1 and wait_event_type = 'Lock'",
                )
                .bind(name)
                .fetch_one(&mut killer)
                .await
                .unwrap();
                if killed {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
            assert!(killed, "the batch never waited for the lock");
            let mut results = Vec::new();
            for job in jobs {
                results.push(summary(&job.await.unwrap()));
            }
            assert_eq!(results, ["unavailable", "unavailable", "unavailable"]);
            blocker.commit().await.unwrap();
            assert_eq!(store.current_version(APP).await.unwrap(), 2);
            assert_eq!(
                store
                    .set_profile(APP, &id("a"), &level(4), "a".into())
                    .await
                    .unwrap(),
                3,
                "the failed batch took no version, and the lane carries on"
            );
            store.close().await;
        }

        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn many_concurrent_sets_share_few_commits() {
            let (store, _conn) = setup("portrait-batch-many").await;
            const TASKS: u64 = 64;
            const EACH: u64 = 20;
            let batches = store.0.lanes.batches();
            let tasks: Vec<_> = (0..TASKS)
                .map(|t| {
                    let store = store.clone();
                    tokio::spawn(async move {
                        for i in 0..EACH {
                            let user = if (t + i) % 2 == 0 { "a" } else { "b" };
                            store
                                .set_profile(APP, &id(user), &level(i), user.into())
                                .await
                                .unwrap();
                        }
                    })
                })
                .collect();
            for t in tasks {
                t.await.unwrap();
            }
            let ran = store.0.lanes.batches() - batches;
            assert_eq!(store.current_version(APP).await.unwrap(), 2 + TASKS * EACH);
            assert!(
                ran <= TASKS * EACH / 4,
                "{} writes took {ran} batches: no group commit",
                TASKS * EACH
            );
            assert_eq!(store.0.lanes.queued(), 0);
            assert!(store.0.lanes.queues().is_empty(), "the idle lane has ended");
            store.close().await;
        }
    }
}
