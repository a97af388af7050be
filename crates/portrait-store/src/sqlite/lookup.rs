//! Account lookups by UserID on threads of their own: the read behind every profile read that
//! misses the read cache ([`crate::Store::get_profiles`], [`crate::Store::accounts_exist`]).
//!
//! **Why not sqlx's reader pool.** sqlx runs each SQLite connection on a worker thread and hands
//! every statement and every row back to the async caller through a channel, waking a thread for
//! each. For a batch of 100 accounts that cost several times the B-tree lookups themselves, and
//! a one-account read paid three round trips (begin, select, commit). With 10M accounts, where
//! most reads miss the cache, that was the bound of W1 and W2 (BENCHMARKS.md, "growth").
//!
//! **How.** [`THREADS`] threads each own a `query_only` connection (rusqlite, on the same
//! `libsqlite3-sys` as sqlx) to the same file, reading its pages through one memory map that all
//! lookup connections share and that commits do not drop (`shared_map.rs`). A batch is one job
//! on a shared queue: the thread that takes it runs one cached prepared statement for the whole
//! batch (primary-key searches through one cursor; one statement is one snapshot) and answers
//! once. WAL lets them read while the writer writes; they see committed batches only.
//!
//! **A batch's searches walked, and mostly answered, at once.** The lookup thread walks the
//! primary key for all the batch's ids at once, level by level, asking the CPU for the pages and
//! cells of every search side by side (`tree_ahead.rs`), in a read transaction; an id whose
//! search went only through pages that are, in the file, what the transaction sees is answered
//! from the walk, and SQLite's statement searches the rest in the same transaction
//! (`direct.rs`).
//!
//! **One account, on the caller's thread** (`lookup/inline.rs`): a lookup of one account
//! runs where it is asked, on a connection kept for it, in a read transaction kept from one
//! lookup to the next while the store commits nothing, and is answered from the walk too.
//!
//! **Bounded.** At most [`QUEUE`] jobs wait; a caller waits for room (back-pressure). A batch is
//! as large as the caller's request, which the API bounds. [`Lookups::close`] lets the threads
//! finish the queued jobs, then closes their connections; later lookups fail with
//! [`StoreError::Unavailable`].

use std::collections::HashSet;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;
use std::time::Duration;

use rusqlite::{Connection, OpenFlags};
use tokio::sync::oneshot;

use crate::codec::{app_key, AccountRow};
use crate::{AppId, Result, StoreError};

use super::open::{BUSY_TIMEOUT, MMAP_BYTES};
use super::per_file::PerFile;
use super::sql::{json_list, json_of, Sorted};
use super::{direct, huge, shared_map};

mod inline;

use inline::{InlinePool, SNAPSHOT_MAX_AGE};

/// Lookup threads (and connections).
pub(super) const THREADS: usize = 4;

/// Connections for lookups of one account on the caller's thread.
const INLINE: usize = 2;

/// Most jobs waiting for a thread.
const QUEUE: usize = 1024;

/// The rows of the app's accounts among the ids of the JSON array `?2`, which [`json_list`]
/// puts in order. SQLite walks the list (`cross join` keeps it the outer loop) and searches the
/// primary key for each id with one cursor, so the pages near the root stay in hand from one
/// search to the next (a statement per id would open a cursor per id, and read and parse the
/// root, the inner pages and the leaf every time). Written as `user_id in (select value from
/// json_each(?2))`, SQLite would first copy the list into a temporary index to sort it.
pub(super) const ROWS_SQL: &str = "select a.user_id, a.profile, a.version, a.updated_at_ms \
     from json_each(?2) as j cross join accounts as a where a.app_id = ?1 and a.user_id = j.value";

/// [`ROWS_SQL`] for one account.
pub(super) const ROW_SQL: &str = "select user_id, profile, version, updated_at_ms from accounts \
     where app_id = ?1 and user_id = ?2";

/// The ids among the JSON array `?2` of the app's accounts (walked as in [`ROWS_SQL`]).
const EXISTING_SQL: &str = "select a.user_id from json_each(?2) as j cross join accounts as a \
     where a.app_id = ?1 and a.user_id = j.value";

/// A job for a lookup thread.
type Job = Box<dyn FnOnce(&Connection) + Send>;

/// The count of a database file's commits: the writer adds one right after each `COMMIT` (or
/// attempt at one), before it answers any job of the batch; an inline connection keeps its
/// snapshot only while the count stays what it was when the snapshot was taken. The
/// checkpointer adds one too when it has copied the whole WAL into the file: a snapshot taken
/// then reads the file alone, which lets the writer restart the WAL from its beginning (a
/// snapshot that reads part of the WAL stops that, and the WAL would grow).
#[derive(Debug, Default)]
pub(super) struct Commits {
    count: AtomicU64,
    /// The inline pools whose sweeper should look at once (see [`Commits::counted`]).
    pools: Mutex<Vec<std::sync::Weak<InlinePool>>>,
}

impl Commits {
    /// The count of the file at `path`, shared by every store of this process open on it (each
    /// must see the others' commits).
    pub(super) fn of_file(path: &Path) -> Result<Arc<Commits>> {
        static COUNTS: PerFile<Commits> = PerFile::new();
        let meta = std::fs::metadata(path).map_err(|e| StoreError::Unavailable(Box::new(e)))?;
        Ok(COUNTS
            .get_or_make(&meta, || Some(Arc::default()))
            .expect("made when missing"))
    }

    /// Counts a commit (call it before acknowledging anything the commit holds) or a
    /// checkpoint of the whole WAL, and wakes the sweepers: an idle connection whose snapshot
    /// is now stale would hold back the checkpoint and the WAL's restart until it is ended.
    pub(super) fn counted(&self) {
        self.count.fetch_add(1, Ordering::SeqCst);
        for pool in lock(&self.pools)
            .iter()
            .filter_map(std::sync::Weak::upgrade)
        {
            pool.wake.notify_all();
        }
    }

    fn now(&self) -> u64 {
        self.count.load(Ordering::SeqCst)
    }

    /// Has [`Commits::counted`] wake `pool`'s sweeper.
    fn wakes(&self, pool: &Arc<InlinePool>) {
        let mut pools = lock(&self.pools);
        pools.retain(|p| p.strong_count() > 0);
        pools.push(Arc::downgrade(pool));
    }
}

/// The lookup threads: their queue, and their handles for [`Lookups::close`].
pub(super) struct Lookups {
    jobs: Mutex<Option<flume::Sender<Job>>>,
    threads: Mutex<Vec<JoinHandle<()>>>,
    /// Connections for lookups of one account on the caller's thread.
    inline: Arc<InlinePool>,
    commits: Arc<Commits>,
    /// The accounts table's B-tree, which reads walk (`tree_ahead.rs`, `direct.rs`).
    pub(super) tree: Arc<direct::Tree>,
    /// Moves the file's cached pages into huge pages (`huge.rs`), if it is mapped in them.
    rehouser: Mutex<Option<huge::Rehouser>>,
}

impl std::fmt::Debug for Lookups {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Lookups").finish_non_exhaustive()
    }
}

impl Lookups {
    /// Opens [`THREADS`] connections to the database at `path` (which must exist, in WAL mode)
    /// and starts a thread for each.
    ///
    /// # Errors
    /// [`StoreError::Unavailable`] if a connection cannot be opened or a thread started.
    pub(super) fn open(path: &Path, commits: Arc<Commits>) -> Result<Lookups> {
        Lookups::open_with(path, commits, SNAPSHOT_MAX_AGE)
    }

    /// [`Lookups::open`] with inline snapshots kept at most `max_age`.
    pub(super) fn open_with(
        path: &Path,
        commits: Arc<Commits>,
        max_age: Duration,
    ) -> Result<Lookups> {
        shared_map::register()?;
        let connections = (0..THREADS)
            .map(|_| connect(path))
            .collect::<Result<Vec<_>>>()?;
        let tree = Arc::new(direct::Tree::of(&connections[0])?);
        let conns = (0..INLINE)
            .map(|_| connect(path))
            .collect::<Result<Vec<_>>>()?;
        let inline = Arc::new(InlinePool::new(conns, max_age));
        let rehouser = huge::Rehouser::start(connect(path)?)?;
        let (tx, rx) = flume::bounded::<Job>(QUEUE);
        let mut threads = Vec::with_capacity(THREADS);
        for (i, conn) in connections.into_iter().enumerate() {
            let rx = rx.clone();
            let thread = std::thread::Builder::new()
                .name(format!("portrait-sqlite-lookup-{i}"))
                .spawn(move || {
                    for job in rx.iter() {
                        job(&conn);
                    }
                })
                .map_err(|e| StoreError::Unavailable(Box::new(e)))?;
            threads.push(thread);
        }
        commits.wakes(&inline);
        let (pool, count) = (inline.clone(), commits.clone());
        let sweeper = std::thread::Builder::new()
            .name("portrait-sqlite-sweeper".into())
            .spawn(move || pool.sweep(&count))
            .map_err(|e| StoreError::Unavailable(Box::new(e)))?;
        threads.push(sweeper);
        Ok(Lookups {
            jobs: Mutex::new(Some(tx)),
            threads: Mutex::new(threads),
            inline,
            commits,
            tree,
            rehouser: Mutex::new(rehouser),
        })
    }

    /// Runs `f` on a lookup thread and answers what it answers.
    async fn run<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Connection) -> Result<T> + Send + 'static,
    ) -> Result<T> {
        let Some(jobs) = lock(&self.jobs).clone() else {
            return Err(closed());
        };
        let (reply, answer) = oneshot::channel();
        let job: Job = Box::new(move |conn| {
            let _ = reply.send(f(conn));
        });
        jobs.send_async(job).await.map_err(|_| closed())?;
        answer.await.map_err(|_| closed())?
    }

    /// The rows of the app's accounts among `ids` (distinct), in no particular order. One
    /// account is looked up on the caller's thread when an inline connection is free
    /// (`lookup/inline.rs`); a batch, or one account when none is, on a lookup thread.
    pub(super) async fn accounts(&self, app: AppId, ids: &[&str]) -> Result<Vec<AccountRow>> {
        if let [one] = ids {
            if let Some(found) = self.inline.account(&self.commits, &self.tree, app, one) {
                return found;
            }
        }
        let capacity = ids.len();
        let sorted = Sorted::of(ids);
        let tree = self.tree.clone();
        self.run(move |conn| {
            let keys = sorted.keys();
            let file = shared_map::mapped(conn);
            match file.as_ref().and_then(|f| Some((f, f.pages(true)?))) {
                Some((file, pages)) => direct::batch(conn, file, &pages, &tree, app, &keys),
                None => {
                    tree.counted(0, keys.len());
                    rows(conn, app, ROWS_SQL, json_of(&keys)?, capacity)
                }
            }
        })
        .await
    }

    /// The ids among `ids` (distinct) that exist in the app.
    pub(super) async fn existing(&self, app: AppId, ids: &[&str]) -> Result<HashSet<String>> {
        let list = json_list(ids)?;
        self.run(move |conn| {
            let mut stmt = conn.prepare_cached(EXISTING_SQL)?;
            let found = stmt
                .query_map((app_key(app), list), |r| r.get::<_, String>(0))?
                .collect::<rusqlite::Result<HashSet<String>>>()?;
            Ok(found)
        })
        .await
    }

    /// Inner pages copied by the spines of the idle inline connections.
    #[cfg(test)]
    pub(super) fn spine_pages(&self) -> usize {
        self.inline.spine_pages()
    }

    /// Lets the threads finish the queued jobs, then waits for them to close their connections.
    pub(super) async fn close(&self) {
        self.inline.close();
        drop(lock(&self.jobs).take());
        let threads = std::mem::take(&mut *lock(&self.threads));
        let rehouser = lock(&self.rehouser).take();
        let _ = tokio::task::spawn_blocking(move || {
            if let Some(r) = rehouser {
                r.stop();
            }
            for t in threads {
                let _ = t.join();
            }
        })
        .await;
    }
}

/// A store dropped without [`Lookups::close`] still stops the sweeper and closes the inline
/// connections (the lookup threads stop when the queue's sender is dropped with `self`).
impl Drop for Lookups {
    fn drop(&mut self) {
        self.inline.close();
    }
}

/// A lookup connection: read-write open (so it can share the WAL index) but `query_only`, with
/// the readers' busy timeout, reading pages through the map all lookup connections share
/// (`shared_map.rs`, which SQLite uses up to `mmap_size`).
pub(super) fn connect(path: &Path) -> Result<Connection> {
    let flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let conn = Connection::open_with_flags_and_vfs(path, flags, shared_map::NAME)?;
    conn.busy_timeout(BUSY_TIMEOUT)?;
    conn.pragma_update(None, "query_only", true)?;
    conn.pragma_update(None, "mmap_size", MMAP_BYTES)?;
    conn.set_prepared_statement_cache_capacity(6);
    Ok(conn)
}

/// The rows `sql` ([`ROWS_SQL`] or [`ROW_SQL`]) answers for `arg`.
pub(super) fn rows(
    conn: &Connection,
    app: AppId,
    sql: &str,
    arg: String,
    capacity: usize,
) -> Result<Vec<AccountRow>> {
    let mut stmt = conn.prepare_cached(sql)?;
    let mut rows = Vec::with_capacity(capacity);
    let mut found = stmt.query((app_key(app), arg))?;
    while let Some(r) = found.next()? {
        rows.push(AccountRow {
            user_id: r.get(0)?,
            profile: r.get(1)?,
            version: r.get(2)?,
            updated_at_ms: r.get(3)?,
        });
    }
    Ok(rows)
}

/// Locks `m` (a panic while it was held leaves nothing half-done here).
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

fn closed() -> StoreError {
    StoreError::Unavailable("the store is closed".into())
}

#[cfg(test)]
mod tests {
    use std::time::Instant;

    use super::inline::SWEEP_EVERY;
    use super::*;

    #[tokio::test]
    async fn lookup_connections_map_as_much_of_the_file_as_asked_and_cannot_write() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}/p.db", dir.path().display());
        let store = crate::sqlite::SqliteStore::open(&url).await.unwrap();
        let lookups = Lookups::open(&dir.path().join("p.db"), Arc::default()).unwrap();
        let (mmap, query_only) = lookups
            .run(|conn| {
                let mmap: i64 = conn.query_row("pragma mmap_size", [], |r| r.get(0))?;
                let query_only: i64 = conn.query_row("pragma query_only", [], |r| r.get(0))?;
                Ok((mmap, query_only))
            })
            .await
            .unwrap();
        // SQLite silently caps the map at SQLITE_MAX_MMAP_SIZE (2 GiB unless built with more,
        // .cargo/config.toml): a larger file would be read with `pread` past the cap.
        assert_eq!(mmap, MMAP_BYTES, "the whole map, not SQLite's default cap");
        assert_eq!(query_only, 1);
        let write = lookups
            .run(|conn| Ok(conn.execute("insert into app_versions values (1, 1)", [])?))
            .await;
        assert!(write.is_err(), "lookup connections are query_only");
        lookups.close().await;
        for ids in [&["a", "b"][..], &["a"]] {
            let after = lookups.accounts(1, ids).await;
            assert!(matches!(after, Err(StoreError::Unavailable(_))), "{ids:?}");
        }
        crate::Store::close(&store).await;
    }

    /// A store's file with account `a` of app 1 at version 1, and a connection that writes to
    /// it behind the lookups' back (as another process would).
    async fn file_with_one_account() -> (tempfile::TempDir, std::path::PathBuf, Connection) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("p.db");
        let store = crate::sqlite::SqliteStore::open(&format!("sqlite://{}", path.display()))
            .await
            .unwrap();
        crate::Store::close(&store).await;
        let outside = Connection::open(&path).unwrap();
        // Gives up at once on a lock (rusqlite's default waits 5 s).
        outside.busy_timeout(Duration::ZERO).unwrap();
        outside
            .execute(
                "insert into accounts (app_id, user_id, profile, version, updated_at_ms) \
                 values (1, 'a', '{}', 1, 0)",
                [],
            )
            .unwrap();
        (dir, path, outside)
    }

    async fn version_of_a(lookups: &Lookups) -> i64 {
        let rows = lookups.accounts(1, &["a"]).await.unwrap();
        assert_eq!(rows.len(), 1);
        rows[0].version
    }

    fn set_version_of_a(outside: &Connection, v: i64) {
        outside
            .execute("update accounts set version = ?1 where user_id = 'a'", [v])
            .unwrap();
    }

    /// Lookups of [`file_with_one_account`] that keep a snapshot for 10 minutes (so that only a
    /// counted commit renews it), their commit count, and the writing connection; one lookup
    /// has taken its snapshot (`a` at version 1).
    async fn lookups_with_a_snapshot() -> (
        tempfile::TempDir,
        std::path::PathBuf,
        Connection,
        Arc<Commits>,
        Lookups,
    ) {
        let (dir, path, outside) = file_with_one_account().await;
        let commits = Arc::new(Commits::default());
        let lookups = Lookups::open_with(&path, commits.clone(), Duration::from_secs(600)).unwrap();
        assert_eq!(version_of_a(&lookups).await, 1);
        (dir, path, outside, commits, lookups)
    }

    #[tokio::test]
    async fn a_one_account_lookup_keeps_its_snapshot_until_a_commit_is_counted_or_it_ages() {
        let (_dir, path, outside, commits, lookups) = lookups_with_a_snapshot().await;
        // A write the store did not count is not seen: the snapshot is kept (this is what
        // saves the read transaction per lookup).
        set_version_of_a(&outside, 2);
        assert_eq!(version_of_a(&lookups).await, 1, "the snapshot was not kept");
        // Once the writer has counted a commit, the next lookup takes a new snapshot.
        commits.counted();
        assert_eq!(version_of_a(&lookups).await, 2);
        lookups.close().await;

        let aging = Lookups::open_with(&path, commits, Duration::from_millis(50)).unwrap();
        assert_eq!(version_of_a(&aging).await, 2);
        set_version_of_a(&outside, 3);
        tokio::time::sleep(Duration::from_millis(120)).await;
        assert_eq!(version_of_a(&aging).await, 3, "a snapshot outlived its age");
        aging.close().await;
    }

    #[tokio::test]
    async fn the_sweeper_ends_an_idle_snapshot_once_a_commit_is_counted_so_the_wal_checkpoints() {
        let (_dir, _path, outside, commits, lookups) = lookups_with_a_snapshot().await;
        set_version_of_a(&outside, 2);
        // (busy, WAL frames, frames checkpointed) of a checkpoint that must copy every frame
        // and empty the WAL; it gives up at once on a reader.
        let truncate = || {
            outside
                .query_row("pragma wal_checkpoint(truncate)", [], |r| {
                    Ok((
                        r.get::<_, i64>(0)?,
                        r.get::<_, i64>(1)?,
                        r.get::<_, i64>(2)?,
                    ))
                })
                .unwrap()
        };
        assert_eq!(
            truncate().0,
            1,
            "the idle connection's snapshot holds the checkpoint back"
        );
        commits.counted();
        let deadline = Instant::now() + Duration::from_secs(10);
        let mut last = truncate();
        while last.0 != 0 && Instant::now() < deadline {
            std::thread::sleep(SWEEP_EVERY / 4);
            last = truncate();
        }
        assert_eq!(
            last,
            (0, 0, 0),
            "the sweeper did not end the snapshot once a commit was counted"
        );
        // And the connection still reads, in a new snapshot.
        assert_eq!(version_of_a(&lookups).await, 2);
        lookups.close().await;
    }

    #[tokio::test]
    async fn the_wal_restarts_while_one_account_reads_follow_every_commit() {
        use crate::{NewAccount, Store};
        use portrait_core::Identifier;
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}/p.db", dir.path().display());
        let store = crate::sqlite::SqliteStore::open(&url).await.unwrap();
        let account = |name: &str| {
            let id = Identifier::parse(name).unwrap();
            NewAccount::with_nick_face(id, Some("n".into()), None)
        };
        let reader = Identifier::parse("reader").unwrap();
        store
            .import_accounts(1, &[account("reader")], "test".into())
            .await
            .unwrap();
        // Each commit is followed by a one-account read, which renews the kept snapshot before
        // the background checkpoint has copied the commit: unless the snapshot is renewed
        // again once the checkpoint is done, it reads part of the WAL until the next commit,
        // and the writer can never restart the WAL.
        for i in 0..300 {
            store
                .import_accounts(1, &[account(&format!("u{i}"))], "test".into())
                .await
                .unwrap();
            store
                .get_profiles(1, std::slice::from_ref(&reader))
                .await
                .unwrap();
            tokio::time::sleep(Duration::from_millis(3)).await;
        }
        let wal = std::fs::metadata(dir.path().join("p.db-wal"))
            .unwrap()
            .len();
        store.close().await;
        assert!(wal < 1 << 20, "the WAL grew to {wal} bytes");
    }
}
