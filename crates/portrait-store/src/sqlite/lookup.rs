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
//! `libsqlite3-sys` as sqlx) to the same file, with the readers' memory map. A batch is one job
//! on a shared queue: the thread that takes it runs one cached prepared statement for the whole
//! batch (primary-key searches through one cursor; one statement is one snapshot) and answers
//! once. WAL lets them read while the writer writes; they see committed batches only.
//!
//! **One account, on the caller's thread.** A lookup of one account (W1's shape, and most
//! reads of the client API) is one primary-key search, a few microseconds with the file in the
//! page cache, while the trip to a thread and back (two thread wake-ups) cost several times
//! that. So it runs where it is asked, on one of [`INLINE`] connections kept for it; when all
//! are in use, it takes the thread path like a batch. The price: with the file not in the page
//! cache (the first reads after a boot), the search waits for the disk on a worker thread of
//! the caller's runtime, for the few pages of one search.
//!
//! **Bounded.** At most [`QUEUE`] jobs wait; a caller waits for room (back-pressure). A batch is
//! as large as the caller's request, which the API bounds. [`Lookups::close`] lets the threads
//! finish the queued jobs, then closes their connections; later lookups fail with
//! [`StoreError::Unavailable`].

use std::collections::HashSet;
use std::path::Path;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;

use rusqlite::{Connection, OpenFlags};
use tokio::sync::oneshot;

use crate::codec::{app_key, AccountRow};
use crate::{AppId, Result, StoreError};

use super::open::{BUSY_TIMEOUT, READER_MMAP_BYTES};

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
const ROWS_SQL: &str = "select a.user_id, a.profile, a.version, a.updated_at_ms \
     from json_each(?2) as j cross join accounts as a where a.app_id = ?1 and a.user_id = j.value";

/// [`ROWS_SQL`] for one account.
const ROW_SQL: &str = "select user_id, profile, version, updated_at_ms from accounts \
     where app_id = ?1 and user_id = ?2";

/// The ids among the JSON array `?2` of the app's accounts (walked as in [`ROWS_SQL`]).
const EXISTING_SQL: &str = "select a.user_id from json_each(?2) as j cross join accounts as a \
     where a.app_id = ?1 and a.user_id = j.value";

/// A job for a lookup thread.
type Job = Box<dyn FnOnce(&Connection) + Send>;

/// The lookup threads: their queue, and their handles for [`Lookups::close`].
pub(super) struct Lookups {
    jobs: Mutex<Option<flume::Sender<Job>>>,
    threads: Mutex<Vec<JoinHandle<()>>>,
    /// Connections for lookups of one account on the caller's thread (`None` once closed).
    inline: Mutex<Option<Vec<Connection>>>,
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
    pub(super) fn open(path: &Path) -> Result<Lookups> {
        let connections = (0..THREADS)
            .map(|_| connect(path))
            .collect::<Result<Vec<_>>>()?;
        let inline = (0..INLINE)
            .map(|_| connect(path))
            .collect::<Result<Vec<_>>>()?;
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
        Ok(Lookups {
            jobs: Mutex::new(Some(tx)),
            threads: Mutex::new(threads),
            inline: Mutex::new(Some(inline)),
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
    /// account is looked up on the caller's thread when an inline connection is free (see the
    /// module docs); a batch, on a lookup thread.
    pub(super) async fn accounts(&self, app: AppId, ids: &[&str]) -> Result<Vec<AccountRow>> {
        let (sql, arg) = match ids {
            [one] => (ROW_SQL, (*one).to_owned()),
            _ => (ROWS_SQL, json_list(ids)?),
        };
        if ids.len() == 1 {
            let free = lock(&self.inline).as_mut().and_then(Vec::pop);
            if let Some(conn) = free {
                let found = rows(&conn, app, sql, arg, 1);
                match lock(&self.inline).as_mut() {
                    Some(pool) => pool.push(conn),
                    None => drop(conn), // closed meanwhile
                }
                return found;
            }
        }
        let capacity = ids.len();
        self.run(move |conn| rows(conn, app, sql, arg, capacity))
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

    /// Lets the threads finish the queued jobs, then waits for them to close their connections.
    pub(super) async fn close(&self) {
        drop(lock(&self.inline).take());
        drop(lock(&self.jobs).take());
        let threads = std::mem::take(&mut *lock(&self.threads));
        let _ = tokio::task::spawn_blocking(move || {
            for t in threads {
                let _ = t.join();
            }
        })
        .await;
    }
}

/// A connection of a lookup thread: read-write open (so it can share the WAL index) but
/// `query_only`, with the readers' memory map and busy timeout.
fn connect(path: &Path) -> Result<Connection> {
    let flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let conn = Connection::open_with_flags(path, flags)?;
    conn.busy_timeout(BUSY_TIMEOUT)?;
    conn.pragma_update(None, "query_only", true)?;
    conn.pragma_update(None, "mmap_size", READER_MMAP_BYTES)?;
    conn.set_prepared_statement_cache_capacity(4);
    Ok(conn)
}

/// The rows `sql` ([`ROWS_SQL`] or [`ROW_SQL`]) answers for `arg`.
fn rows(
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

/// `ids` (distinct) as a JSON array of strings in the primary key's order (SQLite's `binary`
/// collation compares bytes, as `str`'s `Ord` does): the parameter of [`ROWS_SQL`] and
/// [`EXISTING_SQL`].
fn json_list(ids: &[&str]) -> Result<String> {
    let mut sorted = ids.to_vec();
    sorted.sort_unstable();
    serde_json::to_string(&sorted)
        .map_err(|e| StoreError::Corrupt(format!("a list of UserIDs: {e}")))
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
    use super::*;

    #[tokio::test]
    async fn lookup_connections_map_as_much_of_the_file_as_asked_and_cannot_write() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}/p.db", dir.path().display());
        let store = crate::sqlite::SqliteStore::open(&url).await.unwrap();
        let lookups = Lookups::open(&dir.path().join("p.db")).unwrap();
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
        assert_eq!(
            mmap, READER_MMAP_BYTES,
            "the whole map, not SQLite's default cap"
        );
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
}
