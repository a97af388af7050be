//! Opening the SQLite store: the database URL, the connections (the writer's pragmas, the
//! `query_only` readers, the checkpointer's), the migrations, and the start of the writer thread.
//! No SQL of the data model lives here.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{ConnectOptions, Connection};
use tokio::sync::mpsc;

use crate::{migrate_error, Result, StoreError};

use super::lookup::{Commits, Lookups};
use super::writer::{run_writer, QUEUE};
use super::{SqliteBackend, SqliteStore};
use crate::backend::Engine;

/// The embedded migrations (`crates/portrait-store/migrations/sqlite`).
pub(super) static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");

/// How much of the database file every connection reads through the process's one memory map
/// of it (`PRAGMA mmap_size`; the map is `shared_map.rs`'s): reads of accounts not in the read
/// cache, and the writer's reads of the pages it changes, then copy no page in from the file
/// (`pread` per page otherwise). Address space only; the kernel's page cache holds the pages
/// either way.
pub(super) const MMAP_BYTES: i64 = 16 << 30;

/// How long a connection waits for a lock held by another process before failing.
pub(super) const BUSY_TIMEOUT: Duration = Duration::from_secs(5);
/// Reader connections.
pub(super) const READERS: u32 = 4;

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
        // Every connection reads the file through one map (`shared_map.rs`): a map per connection
        // would be torn down and faulted in again after commits, and would hold the pages that
        // `huge.rs` moves into huge pages.
        super::shared_map::register()?;
        let options = SqliteConnectOptions::new()
            .filename(&path)
            .vfs(super::shared_map::NAME)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .foreign_keys(true)
            .busy_timeout(BUSY_TIMEOUT);

        // Savepoint journals (rollback within a transaction, never needed for recovery) in memory.
        // Sets reach random accounts, and most of the writer's time went to copying database pages
        // in from the file (`pread`): it reads them through the memory map instead (SQLite still
        // writes through the WAL, so durability is unchanged).
        let mut writer = options
            .clone()
            .pragma("temp_store", "memory")
            .pragma("mmap_size", MMAP_BYTES.to_string())
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
                .connect_with(
                    options
                        .create_if_missing(false)
                        .pragma("query_only", "on")
                        .pragma("mmap_size", MMAP_BYTES.to_string()),
                )
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
        let (lookups, commits) = match Commits::of_file(&path)
            .and_then(|commits| Ok((Lookups::open(&path, commits.clone())?, commits)))
        {
            Ok((lookups, commits)) => (Arc::new(lookups), commits),
            Err(e) => {
                reader.close().await;
                let _ = writer.close().await;
                return Err(e);
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
                    .spawn(move || runtime.block_on(run_writer(writer, checkpointer, rx, commits)))
            });
        if let Err(e) = thread {
            // `writer` and `checkpointer` were moved into the closure and dropped with it.
            reader.close().await;
            lookups.close().await;
            return Err(StoreError::Unavailable(Box::new(e)));
        }
        tracing::debug!(path = %path.display(), "opened the sqlite store");
        Ok(Engine(SqliteBackend {
            writer: tx,
            reader,
            lookups,
        }))
    }
}

/// The file path of `sqlite://PATH` / `sqlite:PATH`. Query parameters and in-memory databases are
/// refused: Portrait sets the journal and sync modes itself, and a store must be durable.
pub(super) fn db_path(url: &str) -> Result<PathBuf> {
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

#[cfg(test)]
pub(super) async fn pragmas(
    conn: &mut sqlx::sqlite::SqliteConnection,
) -> Result<(String, i64, i64, i64)> {
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
}
