//! Lookups of one account on the caller's thread, each connection keeping its read transaction
//! from one lookup to the next, and answered from the walk of the accounts B-tree where it can.
//!
//! **One account, on the caller's thread.** A lookup of one account (W1's shape, and most
//! reads of the client API) is one primary-key search, a few microseconds with the file in the
//! page cache, while the trip to a lookup thread and back (two thread wake-ups) cost several
//! times that. So it runs where it is asked, on one of the connections of an [`InlinePool`];
//! when all are in use, it takes the thread path like a batch. The price: with the file not in
//! the page cache (the first reads after a boot), the search waits for the disk on a worker
//! thread of the caller's runtime, for the few pages of one search.
//!
//! **One snapshot for many one-account lookups.** In SQLite's autocommit mode every statement
//! begins and ends its own read transaction: locks in the WAL index (`fcntl`), a look at the
//! file's size, and the commit of nothing. With 10M accounts, where most one-account reads
//! miss the cache, that cost more than the search (BENCHMARKS.md, 2026-12-05 evening). So an
//! inline connection keeps its read transaction open from one lookup to the next for as long as
//! the store has committed nothing since it began, and at most [`SNAPSHOT_MAX_AGE`]. The writer
//! counts its commits ([`Commits`]) right after each `COMMIT` and before it acknowledges anything
//! of the batch, and a lookup reads the count before its transaction takes its snapshot; so a
//! lookup whose snapshot is kept sees every write acknowledged before it began, as a fresh
//! statement would. A snapshot kept open holds back the WAL's checkpoint (the frames committed
//! after it cannot be copied, nor the WAL restarted), so a sweeper thread ends the snapshots of
//! idle inline connections within [`SWEEP_EVERY`] once the store has committed or they are old.
//! The age bound also bounds how long a lookup can miss a write made behind the store's back by
//! another process (`portrait import` on the file of a running node, which docs/deployment.md
//! says not to do).
//!
//! **Answered from the walk.** Within the kept transaction, a lookup walks the accounts B-tree
//! for its one key and takes the walk's finding where every page of its search is, in the file,
//! what the transaction sees, exactly as a batch does (`direct.rs`); SQLite's statement runs
//! only for the rest. With 10M accounts most one-account reads miss the cache, and a statement
//! (binding, the VDBE, the statement cache, the row's columns copied out) cost more than the
//! search itself (BENCHMARKS.md, "2026-12-06 (session 20)").
//!
//! **Down a spine.** Each inline connection keeps compact copies of the inner pages its walks
//! went through (`tree_ahead/spine.rs`), so that a search reaches its leaf without reading the
//! inner pages, whose rows do not fit in the CPU's caches at 10M accounts, and asks for the
//! whole leaf at once.

use std::sync::{Condvar, Mutex, PoisonError};
use std::time::{Duration, Instant};

use rusqlite::Connection;

use crate::codec::AccountRow;
use crate::{AppId, Result};

use super::super::direct;
use super::super::shared_map::Kept;
use super::super::tree_ahead::Spine;
use super::{lock, Commits};

/// Longest an inline connection keeps one read transaction open (see the module docs).
pub(super) const SNAPSHOT_MAX_AGE: Duration = Duration::from_millis(250);

/// How often the sweeper looks at the idle inline connections while one of them keeps a read
/// transaction open.
pub(super) const SWEEP_EVERY: Duration = Duration::from_millis(100);

/// The idle inline connections, shared with the sweeper thread.
pub(super) struct InlinePool {
    /// `None` once closed.
    idle: Mutex<Option<Idle>>,
    /// Wakes the sweeper: a connection with an open snapshot came back, or the pool closed.
    pub(super) wake: Condvar,
    /// [`SNAPSHOT_MAX_AGE`] (longer in tests).
    max_age: Duration,
}

struct Idle {
    conns: Vec<Inline>,
    /// The sweeper waits without a timeout (no idle connection had a snapshot open) and must be
    /// woken when one comes back with a snapshot open.
    sweeper_waits: bool,
}

/// An inline connection and the read transaction it keeps open between lookups.
pub(super) struct Inline {
    conn: Connection,
    /// What was found of `conn`'s file (`shared_map/mapped.rs`), kept for `conn` alone.
    kept: Kept,
    /// Its copies of the accounts B-tree's inner pages (`tree_ahead/spine.rs`).
    spine: Spine,
    /// Its read transaction, if it has one open.
    snapshot: Option<Snapshot>,
}

/// A kept read transaction.
#[derive(Clone, Copy)]
struct Snapshot {
    /// When it began.
    began: Instant,
    /// The commit count read just before.
    count: u64,
    /// The schema's version, whose reading began it ([`direct::schema_version`]).
    schema: i64,
}

impl InlinePool {
    /// A pool of `conns`, each keeping a snapshot at most `max_age`.
    pub(super) fn new(conns: Vec<Connection>, max_age: Duration) -> InlinePool {
        let conns = conns
            .into_iter()
            .map(|conn| Inline {
                conn,
                kept: Kept::default(),
                spine: Spine::default(),
                snapshot: None,
            })
            .collect();
        InlinePool {
            idle: Mutex::new(Some(Idle {
                conns,
                sweeper_waits: false,
            })),
            wake: Condvar::new(),
            max_age,
        }
    }

    /// The row of account `id` of the app (if it exists) read on an idle connection, or `None`
    /// if every connection is in use (or the pool is closed).
    pub(super) fn account(
        &self,
        commits: &Commits,
        tree: &direct::Tree,
        app: AppId,
        id: &str,
    ) -> Option<Result<Vec<AccountRow>>> {
        let mut conn = lock(&self.idle).as_mut()?.conns.pop()?;
        let found = conn.account(commits, tree, self.max_age, app, id);
        self.put_back(conn);
        Some(found)
    }

    /// Inner pages copied by the spines of the idle connections.
    #[cfg(test)]
    pub(super) fn spine_pages(&self) -> usize {
        lock(&self.idle)
            .as_ref()
            .map_or(0, |idle| idle.conns.iter().map(|c| c.spine.len()).sum())
    }

    /// Closes the idle connections (those in use are dropped when they come back) and stops
    /// the sweeper.
    pub(super) fn close(&self) {
        drop(lock(&self.idle).take());
        self.wake.notify_all();
    }

    /// Returns `conn` to the idle ones (or drops it if the pool closed meanwhile), waking the
    /// sweeper if it now has a snapshot to watch.
    fn put_back(&self, conn: Inline) {
        let mut idle = lock(&self.idle);
        let Some(idle) = idle.as_mut() else { return };
        if !conn.conn.is_autocommit() && idle.sweeper_waits {
            idle.sweeper_waits = false;
            self.wake.notify_one();
        }
        idle.conns.push(conn);
    }

    /// The sweeper thread: while an idle inline connection keeps a snapshot open, every
    /// [`SWEEP_EVERY`] it ends the ones that are no longer fresh (the store committed since,
    /// or they are old), so that they do not hold back the WAL's checkpoint. Returns once the
    /// pool is closed.
    pub(super) fn sweep(&self, commits: &Commits) {
        let mut guard = lock(&self.idle);
        loop {
            let Some(idle) = guard.as_mut() else { return };
            idle.sweeper_waits = false;
            let count = commits.now();
            for conn in idle
                .conns
                .iter_mut()
                .filter(|c| !c.fresh(count, self.max_age))
            {
                conn.end();
            }
            // (A transaction SQLite still has open counts, even one `end` failed to roll back.)
            if idle.conns.iter().any(|c| !c.conn.is_autocommit()) {
                guard = self
                    .wake
                    .wait_timeout(guard, SWEEP_EVERY)
                    .unwrap_or_else(PoisonError::into_inner)
                    .0;
            } else {
                idle.sweeper_waits = true;
                guard = self
                    .wake
                    .wait(guard)
                    .unwrap_or_else(PoisonError::into_inner);
            }
        }
    }
}

impl Inline {
    /// Whether its snapshot may serve a lookup while the commit count is `commits`.
    fn fresh(&self, commits: u64, max_age: Duration) -> bool {
        matches!(self.snapshot, Some(s) if s.count == commits && s.began.elapsed() < max_age)
    }

    /// Ends its read transaction, if it has one open.
    fn end(&mut self) {
        self.snapshot = None;
        if !self.conn.is_autocommit() {
            if let Err(e) = self.conn.execute_batch("ROLLBACK") {
                tracing::warn!(error = %e, "ending a lookup's read transaction failed");
            }
        }
    }

    /// The row of account `id`, read in the kept snapshot if it is still fresh, else in a new
    /// one (module docs).
    fn account(
        &mut self,
        commits: &Commits,
        tree: &direct::Tree,
        max_age: Duration,
        app: AppId,
        id: &str,
    ) -> Result<Vec<AccountRow>> {
        // Read before the new transaction takes its snapshot: every commit counted by now is
        // in it.
        let count = commits.now();
        if self.conn.is_autocommit() {
            self.snapshot = None; // SQLite ended it (after an error)
        }
        let found = self.snapshot(count, max_age).and_then(|schema| {
            let spine = &mut self.spine;
            // SAFETY: `kept` lives beside `conn` from its open to its close, and an inline
            // connection runs only its reads (never a change of `journal_mode`).
            unsafe { direct::one(&self.conn, &mut self.kept, tree, spine, schema, app, id) }
        });
        if found.is_err() {
            self.end();
        }
        found
    }

    /// The schema's version in its read transaction: the kept one if it is fresh at commit
    /// count `count`, else a new one.
    fn snapshot(&mut self, count: u64, max_age: Duration) -> Result<i64> {
        match self.snapshot {
            Some(s) if self.fresh(count, max_age) => Ok(s.schema),
            _ => {
                self.end();
                self.conn.prepare_cached("BEGIN")?.execute([])?;
                let began = Instant::now();
                let schema = direct::schema_version(&self.conn)?;
                self.snapshot = Some(Snapshot {
                    began,
                    count,
                    schema,
                });
                Ok(schema)
            }
        }
    }
}
