//! Moving an app between shards while it is served ([`Sharded::begin_move`]):
//!
//! 1. **copy**: if the target holds nothing of the app, the source's dump is restored there
//!    (versions kept); if it holds an older copy (an earlier, abandoned move), that is kept;
//! 2. **catch up**: the source's change log after the target's version is replayed on the
//!    target, in version order, through the ordinary writes, which take the same versions
//!    (checked for each set, and for all at the end); writes go on meanwhile;
//! 3. **pause**: the app's writes wait at its gate; a last catch-up, the kicks and cursors;
//! 4. **verify**: the versions are equal and every account the catch-up touched reads the same
//!    on both shards; then the caller records the placement ([`Move::switch`] ends the pause),
//!    or drops the [`Move`], which leaves the app on the source, writes resumed.
//!
//! What is not carried over: leases (taken afresh on the target), and the times of the
//! replayed changes (`at_ms`, `updated_at_ms` are those of the replay). The source keeps its
//! copy (a later move back catches up from it).

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use portrait_core::schema::StandardTag;
use portrait_core::{Identifier, Tag};
use serde::Serialize;

use super::Sharded;
use crate::{AppId, Change, ChangeKind, NewAccount, Origin, Result, Store, StoreError, PRUNED};

/// Changes read from the source per round trip of a catch-up.
const CATCH_UP_PAGE: usize = 1_000;

/// Catch-up rounds while writes run before the pause; the pause starts earlier when a round
/// replays fewer than [`CALM`] changes.
const ROUNDS: usize = 5;
const CALM: usize = 50;

/// How long the catch-up may run before the pause; an app written as fast as its changes
/// replay never catches up, and its move is refused rather than paused for long.
const CATCH_UP_BUDGET: Duration = Duration::from_secs(60);

/// Longest the steps after every node holds the app's writes (the last catch-up, kicks,
/// cursors, verification) may take; past it the move is abandoned and the writes resume on the
/// source. Without it a shard that hangs rather than fails would hold the app's writes for as
/// long as it hangs.
const PAUSED_WORK_LIMIT: Duration = Duration::from_secs(2);

/// Accounts compared by the verification at most.
const VERIFY_MAX: usize = 10_000;

/// What a move did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MoveReport {
    /// The app.
    pub sdkappid: AppId,
    /// The shard it was on.
    pub from: String,
    /// The shard it is on now.
    pub to: String,
    /// Accounts copied by the dump (0 when the target kept an earlier copy).
    pub copied_accounts: usize,
    /// Changes replayed from the change log (before and during the pause).
    pub caught_up_changes: usize,
    /// The app's version on both shards at the switch.
    pub version: u64,
    /// Accounts compared by the verification.
    pub verified_accounts: usize,
    /// How long the app's writes waited, milliseconds.
    pub paused_ms: u64,
    /// The whole move, milliseconds.
    pub took_ms: u64,
}

/// A move that has paused the app's writes (on this node: [`Sharded::hold`]) and verified the
/// target: [`Move::switch`] places the app there and resumes; dropping it resumes on the source.
pub struct Move<'a> {
    sharded: &'a Sharded,
    report: MoveReport,
    paused: Instant,
    started: Instant,
    /// Switched: dropping it then releases nothing more.
    done: bool,
    _one: tokio::sync::MutexGuard<'a, ()>,
}

impl Drop for Move<'_> {
    fn drop(&mut self) {
        if !self.done {
            self.sharded.release(self.report.sdkappid);
        }
    }
}

impl Move<'_> {
    /// Where the move stands (`paused_ms` and `took_ms` so far).
    pub fn report(&self) -> &MoveReport {
        &self.report
    }

    /// Places the app on the target and lets its writes go on there.
    pub fn switch(mut self) -> MoveReport {
        let to = self.report.to.clone();
        // `to` was checked by `begin_move`.
        let _ = self.sharded.place(self.report.sdkappid, Some(&to));
        self.sharded.release(self.report.sdkappid);
        self.done = true;
        self.report.paused_ms = millis(self.paused.elapsed());
        self.report.took_ms = millis(self.started.elapsed());
        self.report.clone()
    }
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

impl Sharded {
    /// Copies `app` to shard `to` and catches up while it is written, then pauses its writes
    /// here, runs `pause_others` (which pauses them on the other nodes: the server announces
    /// the move in the app's record and waits for every node to hold its writes), catches up
    /// the rest and verifies. The app stays on its shard until [`Move::switch`].
    ///
    /// # Errors
    /// [`StoreError::Config`] for an unknown shard or the shard the app is on;
    /// [`StoreError::Conflict`] when the target holds a newer copy than the source;
    /// [`StoreError::Corrupt`] when the target does not read the same after the catch-up;
    /// [`StoreError::Unavailable`] when the steps after the pause outlast [`PAUSED_WORK_LIMIT`];
    /// or a shard's failure. Nothing is switched then, and the app's writes go on on its shard.
    pub async fn begin_move<F, Fut>(
        &self,
        app: AppId,
        to: &str,
        pause_others: F,
    ) -> Result<Move<'_>>
    where
        F: FnOnce() -> Fut,
        Fut: std::future::Future<Output = Result<()>>,
    {
        let one = self.moving.lock().await;
        let started = Instant::now();
        let from = self.shard_of(app);
        if from == to {
            return Err(StoreError::Config(format!(
                "app {app} is on shard {to:?} already"
            )));
        }
        let (src, dst) = (self.shard(&from)?.clone(), self.shard(to)?.clone());
        let mut report = MoveReport {
            sdkappid: app,
            from,
            to: to.to_owned(),
            copied_accounts: 0,
            caught_up_changes: 0,
            version: 0,
            verified_accounts: 0,
            paused_ms: 0,
            took_ms: 0,
        };
        let mut at = dst.current_version(app).await?;
        let mut cursors: BTreeSet<String> = BTreeSet::from([PRUNED.to_owned()]);
        if at == 0 {
            let dump = src.dump_app(app).await?;
            at = dump.version;
            report.copied_accounts = dump.accounts.len();
            cursors.extend(dump.cursors.iter().map(|(n, _)| n.clone()));
            if !dump.is_empty() {
                dst.restore_app(dump).await?;
            }
        }
        let mut touched = BTreeSet::new();
        let budget = Some(Instant::now() + CATCH_UP_BUDGET);
        for _ in 0..ROUNDS {
            let n = catch_up(&*src, &*dst, app, &mut at, &mut touched, budget).await?;
            report.caught_up_changes += n;
            if n < CALM {
                break;
            }
        }
        self.hold(app).await;
        let paused = Instant::now();
        // From here on, an error drops the move, which releases the writes.
        let mut moving = Move {
            sharded: self,
            report,
            paused,
            started,
            done: false,
            _one: one,
        };
        pause_others().await?;
        let report = &mut moving.report;
        let last_steps = async {
            report.caught_up_changes +=
                catch_up(&*src, &*dst, app, &mut at, &mut touched, None).await?;
            for (user, not_before) in src.kicks(app).await? {
                if let Ok(user) = Identifier::parse(&user) {
                    dst.kick(app, &user, not_before).await?;
                }
            }
            for name in &cursors {
                if let Some(v) = src.cursor(app, name).await? {
                    dst.set_cursor(app, name, v).await?;
                }
            }
            report.version = at;
            report.verified_accounts = verify(&*src, &*dst, app, &touched).await?;
            Ok::<(), StoreError>(())
        };
        // A shard that hangs (a lock, a stalled disk) must not hold the app's writes for long.
        tokio::time::timeout(PAUSED_WORK_LIMIT, last_steps)
            .await
            .map_err(|_| {
                StoreError::Unavailable(
                    format!(
                        "moving app {app}: the last catch-up and the verification took more than {PAUSED_WORK_LIMIT:?} with its writes paused; the move is abandoned, the app stays where it was"
                    )
                    .into(),
                )
            })??;
        report.paused_ms = millis(paused.elapsed());
        report.took_ms = millis(started.elapsed());
        Ok(moving)
    }
}

/// Replays the source's changes after `at` on the target until none is left; the number
/// replayed. Past `deadline`, refuses ([`StoreError::Conflict`]): the app is written faster
/// than it replays.
async fn catch_up(
    src: &dyn Store,
    dst: &dyn Store,
    app: AppId,
    at: &mut u64,
    touched: &mut BTreeSet<String>,
    deadline: Option<Instant>,
) -> Result<usize> {
    let source_version = src.current_version(app).await?;
    if source_version < *at {
        return Err(StoreError::Conflict {
            what: format!(
                "app {app}: the target shard is at version {at}, after the source's {source_version}; it holds a copy from elsewhere"
            ),
        });
    }
    let mut n = 0;
    loop {
        let page = src.changes_since(app, *at, CATCH_UP_PAGE).await?;
        if page.is_empty() {
            return Ok(n);
        }
        if deadline.is_some_and(|d| Instant::now() > d) {
            return Err(StoreError::Conflict {
                what: format!(
                    "app {app} is written faster than the move replays its changes ({n} replayed in {CATCH_UP_BUDGET:?}); retry when it is quieter"
                ),
            });
        }
        for c in &page {
            replay(dst, app, c).await?;
            *at = c.version;
            if touched.len() < VERIFY_MAX {
                touched.insert(c.user.clone());
            }
            n += 1;
        }
    }
}

/// Applies one change of the source to the target with the write that made it.
async fn replay(dst: &dyn Store, app: AppId, c: &Change) -> Result<()> {
    let corrupt = |what: String| StoreError::Corrupt(format!("moving app {app}: {what}"));
    let user =
        Identifier::parse(&c.user).map_err(|e| corrupt(format!("change {}: {e}", c.version)))?;
    let origin = Origin::new(&c.operator, &c.client_ip);
    let items = c
        .items
        .iter()
        .map(|(name, v)| {
            let tag = StandardTag::from_name(name)
                .map_or_else(|| Tag::Custom(name.clone()), Tag::Standard);
            (tag, v.clone())
        })
        .collect::<Vec<_>>();
    match c.kind {
        ChangeKind::Set => {
            let v = dst.set_profile(app, &user, &items, origin).await?;
            if v != c.version {
                return Err(corrupt(format!(
                    "change {} of {:?} took version {v} on the target",
                    c.version, c.user
                )));
            }
        }
        ChangeKind::Import => {
            let account = NewAccount { user, items };
            dst.import_accounts(app, std::slice::from_ref(&account), origin)
                .await?;
        }
        ChangeKind::Delete => {
            dst.delete_accounts(app, std::slice::from_ref(&user), origin)
                .await?;
        }
    }
    Ok(())
}

/// Checks that both shards are at one version and read the same for `users`; how many were
/// compared.
async fn verify(
    src: &dyn Store,
    dst: &dyn Store,
    app: AppId,
    users: &BTreeSet<String>,
) -> Result<usize> {
    let (a, b) = (
        src.current_version(app).await?,
        dst.current_version(app).await?,
    );
    if a != b {
        return Err(StoreError::Corrupt(format!(
            "moving app {app}: the source is at version {a}, the target at {b}"
        )));
    }
    let ids: Vec<Identifier> = users
        .iter()
        .filter_map(|u| Identifier::parse(u).ok())
        .collect();
    for chunk in ids.chunks(500) {
        let (x, y) = (
            src.get_profiles(app, chunk).await?,
            dst.get_profiles(app, chunk).await?,
        );
        for ((p, q), id) in x.iter().zip(&y).zip(chunk) {
            let same = match (p, q) {
                (Some(p), Some(q)) => p.fields == q.fields && p.version == q.version,
                (None, None) => true,
                _ => false,
            };
            if !same {
                return Err(StoreError::Corrupt(format!(
                    "moving app {app}: account {:?} reads differently on the target",
                    id.as_str()
                )));
            }
        }
    }
    Ok(ids.len())
}
