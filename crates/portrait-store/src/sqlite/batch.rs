//! The batch engine: one transaction per batch, a savepoint per job, runs of `set_profile` jobs
//! merged in memory and written together, and the batch's view of profiles and app versions (the
//! version allocator: versions handed out in job order, given back by a failed job, written once
//! per app before `COMMIT`).

use std::collections::{HashMap, HashSet};

use sqlx::sqlite::SqliteConnection;

use crate::batch::{take_versions, BatchFailed};
use crate::codec::{app_key, unsigned, version_key};
use crate::{now_ms, AppId, Result, StoreError};

use super::jobs::{
    apply_cursor, apply_delete, apply_import, apply_kick, apply_prune, apply_restore,
};
use super::lookup::Commits;
use super::sql::exec;
use super::writer::{Answer, Job, OtherJob, Reply};
use crate::batch::SetJob;

/// The writer task's working state, reused from batch to batch to spare allocations; nothing in
/// it outlives a transaction (it is cleared at the start of every batch).
#[derive(Default)]
pub(super) struct Scratch {
    /// Results of the batch's jobs, sent after `COMMIT`.
    pub(super) answers: Vec<Answer>,
    pub(super) versions: Versions,
    pub(super) profiles: Profiles,
    /// The run of set jobs being written (see [`run_sets`]).
    pub(super) sets: Vec<(SetJob, Reply<u64>)>,
}

/// Runs `jobs` (drained) in one transaction, each in its own savepoint, commits, counts the
/// commit in `commits`, then answers every job.
pub(super) async fn run_batch(
    conn: &mut SqliteConnection,
    jobs: &mut Vec<Job>,
    scratch: &mut Scratch,
    commits: &Commits,
) {
    let Scratch {
        answers,
        versions,
        profiles,
        sets,
    } = scratch;
    versions.clear();
    profiles.clear();
    if let Err(e) = exec(conn, "BEGIN IMMEDIATE").await {
        let failed = BatchFailed::rolled_back("BEGIN IMMEDIATE", e);
        for job in jobs.drain(..) {
            job.fail(failed.unavailable());
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
            Ok(()) => {
                let committed = exec(conn, "COMMIT").await;
                // Even a failed attempt: counting one too many only ends a snapshot early.
                commits.counted();
                committed
                    .err()
                    .map(|e| BatchFailed::rolled_back("COMMIT", e))
            }
            Err(e) => Some(BatchFailed::rolled_back("storing the app versions", e)),
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
                answer.fail(failed.unavailable());
            }
            for job in pending {
                job.fail(failed.unavailable());
            }
        }
    }
}

/// Undoes the running job (`ROLLBACK TO` its savepoint, which is then released). If that fails,
/// the transaction is in an unknown state and the batch must not commit.
pub(super) async fn roll_back_job(conn: &mut SqliteConnection) -> Result<(), BatchFailed> {
    exec(conn, "ROLLBACK TO job; RELEASE job")
        .await
        .map_err(|e| BatchFailed::rolled_back("ROLLBACK TO", e))
}

/// Runs an import, delete or kick inside its own savepoint. Returns its answer, and an error if
/// the batch must be rolled back.
pub(super) async fn run_in_savepoint(
    conn: &mut SqliteConnection,
    versions: &mut Versions,
    job: OtherJob,
    at_ms: i64,
) -> (Answer, Result<(), BatchFailed>) {
    if let Err(e) = exec(conn, "SAVEPOINT job").await {
        let why = BatchFailed::rolled_back("SAVEPOINT", e);
        return (Job::Other(job).failed(why.unavailable()), Err(why));
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
        OtherJob::AppRecord(job, reply) => {
            Answer::Set(reply, super::apps::apply_put(conn, &job).await)
        }
    };
    let end = if answer.is_ok() {
        versions.keep();
        exec(conn, "RELEASE job")
            .await
            .map_err(|e| BatchFailed::rolled_back("RELEASE", e))
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
pub(super) const SET_SQL: &str = "SAVEPOINT job; \
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
pub(super) async fn run_sets(
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
                    .map_err(|e| BatchFailed::rolled_back("ROLLBACK TO", e))
                {
                    for (_, reply) in sets.drain(..) {
                        answers.push(Answer::Set(reply, Err(why.unavailable())));
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
                    Err(why) => Err(why.unavailable()),
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
pub(super) const SETS_SQL: &str = "SAVEPOINT sets; \
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
pub(super) struct StagedSets {
    /// Per job, in order: its version, or its own error (nothing of it is written).
    pub(super) results: Vec<Result<u64>>,
    /// Distinct accounts written.
    pub(super) accounts: usize,
    pub(super) accounts_json: String,
    pub(super) changes_json: String,
}

/// Step 2 of [`run_sets`]: merges every job into the cached profiles and hands out versions.
/// Errors only if the write as a whole cannot be prepared.
pub(super) async fn stage_sets(
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
                job.apply(stored, current)
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
pub(super) async fn run_set(
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
            job.apply(stored, current)
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

/// Stored profiles (as in `accounts.profile`) of accounts the running batch has read or
/// written, by app and user, with the version a job of the batch gave them (0 if none did).
/// `None` = the account is known not to exist. It mirrors the transaction only while nothing but
/// set jobs run, so any other job clears it, and so does a rollback of set jobs.
#[derive(Default)]
pub(super) struct Profiles {
    pub(super) apps: HashMap<AppId, HashMap<String, Option<Known>>>,
}

/// An account's profile as the running batch sees it.
pub(super) struct Known {
    pub(super) profile: String,
    /// Its current version (stored, or given by a job of the batch).
    pub(super) version: u64,
    /// Whether a job of the batch wrote it.
    pub(super) written: bool,
}

impl Profiles {
    pub(super) fn clear(&mut self) {
        self.apps.clear();
    }

    /// `None` if unknown, `Some(None)` if known to be missing; else the profile and its version.
    pub(super) fn get(&self, app: AppId, user: &str) -> Option<Option<(&str, u64)>> {
        let known = self.apps.get(&app)?.get(user)?;
        Some(known.as_ref().map(|k| (k.profile.as_str(), k.version)))
    }

    /// The profile and version a job of the batch wrote.
    pub(super) fn written(&self, app: AppId, user: &str) -> Option<(&str, u64)> {
        match self.apps.get(&app)?.get(user)? {
            Some(k) if k.written => Some((k.profile.as_str(), k.version)),
            _ => None,
        }
    }

    /// Records the profile a job has just written (or staged).
    pub(super) fn put(&mut self, app: AppId, user: &str, profile: String, version: u64) {
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
    pub(super) async fn read<'a>(
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
pub(super) struct Versions {
    /// `(app, version stored when the batch read it, last version handed out)`.
    pub(super) apps: Vec<(AppId, u64, u64)>,
    /// `(index into apps, last before)` of the running job, to give its versions back.
    pub(super) undo: Vec<(usize, u64)>,
}

impl Versions {
    pub(super) fn clear(&mut self) {
        self.apps.clear();
        self.undo.clear();
    }

    /// Hands out `n` (≥ 1) consecutive versions of `app` to the running job; returns the first.
    pub(super) async fn reserve(
        &mut self,
        conn: &mut SqliteConnection,
        app: AppId,
        n: usize,
    ) -> Result<u64> {
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
        let first = take_versions(app, last, n)?;
        self.undo.push((i, last));
        self.apps[i].2 = last + n as u64;
        Ok(first)
    }

    /// The running job succeeded: its versions stay taken.
    pub(super) fn keep(&mut self) {
        self.undo.clear();
    }

    /// The running job was rolled back: its versions are handed out again.
    pub(super) fn undo(&mut self) {
        while let Some((i, last)) = self.undo.pop() {
            self.apps[i].2 = last;
        }
    }

    /// `app`'s stored version was set to `version` behind this cache's back (by a restore, which
    /// only runs on an app no job of the batch has taken versions of).
    pub(super) fn restored(&mut self, app: AppId, version: u64) {
        if let Some(a) = self.apps.iter_mut().find(|a| a.0 == app) {
            debug_assert_eq!(a.1, a.2, "a restored app took no versions in the batch");
            a.1 = version;
            a.2 = version;
        }
    }

    /// Writes the last version handed out of every app that took any.
    pub(super) async fn store(&self, conn: &mut SqliteConnection) -> Result<()> {
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
