//! Fresh stores for tests: a SQLite file in a temporary directory, a PostgreSQL schema of its
//! own (stale test schemas are dropped), or the backend named by `PORTRAIT_TEST_STORE`.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::Store;

/// Env var choosing the backend of [`fresh_store_from_env`].
pub const TEST_STORE_ENV: &str = "PORTRAIT_TEST_STORE";

/// A fresh SQLite store in a new temporary directory; keep the directory alive while the store is
/// in use (dropping it deletes the database).
///
/// # Panics
/// If the temporary directory or the store cannot be created.
pub async fn fresh_sqlite() -> (Arc<dyn Store>, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("create a temporary directory for the test store");
    let url = format!("sqlite://{}", dir.path().join("portrait.db").display());
    let store = crate::sqlite::SqliteStore::open(&url)
        .await
        .unwrap_or_else(|e| panic!("open {url}: {e}"));
    (Arc::new(store), dir)
}

/// Env var with the PostgreSQL URL of the tests ([`DEFAULT_TEST_PG_URL`] when unset). The tests
/// create a schema per store in that database (`portrait_test_…`).
pub const TEST_PG_URL_ENV: &str = "PORTRAIT_TEST_PG_URL";

/// The PostgreSQL the tests use unless [`TEST_PG_URL_ENV`] says otherwise.
pub const DEFAULT_TEST_PG_URL: &str = "postgres://postgres@127.0.0.1:5432/test";

/// Prefix of the schemas [`fresh_postgres_url`] creates.
const TEST_SCHEMA_PREFIX: &str = "portrait_test_";

/// Test schemas older than this are dropped by the next test run.
const STALE_TEST_SCHEMA: Duration = Duration::from_secs(24 * 3600);

/// The PostgreSQL URL of the tests: [`TEST_PG_URL_ENV`] or [`DEFAULT_TEST_PG_URL`].
pub fn test_pg_url() -> String {
    std::env::var(TEST_PG_URL_ENV)
        .ok()
        .filter(|u| !u.is_empty())
        .unwrap_or_else(|| DEFAULT_TEST_PG_URL.to_owned())
}

/// Creates a new, empty schema in the tests' PostgreSQL database ([`test_pg_url`]) and returns a
/// URL whose connections use it (`options=-c search_path=…`), so every test gets a database of its
/// own. Also drops test schemas left over from runs more than a day ago.
///
/// # Panics
/// If PostgreSQL cannot be reached (with a message naming the URL and how to start PostgreSQL or
/// point the tests elsewhere) or the schema cannot be created. Tests never skip silently.
pub async fn fresh_postgres_url() -> String {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let url = test_pg_url();
    let shown = crate::redact_url(&url);
    let hint = format!(
        "the PostgreSQL tests need a database they may create schemas in, at {TEST_PG_URL_ENV} \
         (default {DEFAULT_TEST_PG_URL}). Start PostgreSQL (e.g. `pg_ctlcluster 15 main start`, or \
         `docker run -d -p 5432:5432 -e POSTGRES_HOST_AUTH_METHOD=trust -e POSTGRES_DB=test postgres:16`) \
         or point {TEST_PG_URL_ENV} at one"
    );
    let options = crate::postgres::PgStore::connect_options(&url)
        .unwrap_or_else(|e| panic!("{TEST_PG_URL_ENV}={shown}: {e}; {hint}"));
    let mut conn = match tokio::time::timeout(
        Duration::from_secs(10),
        sqlx::ConnectOptions::connect(&options),
    )
    .await
    {
        Ok(Ok(conn)) => conn,
        Ok(Err(e)) => panic!("PostgreSQL at {shown} is unreachable: {e}\n{hint}"),
        Err(_) => panic!("PostgreSQL at {shown} did not answer within 10 s\n{hint}"),
    };
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let schema = format!(
        "{TEST_SCHEMA_PREFIX}{now}_{}_{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    );
    if NEXT.load(Ordering::Relaxed) == 1 {
        drop_stale_test_schemas(&mut conn, now).await;
    }
    sqlx::query(&format!("create schema {schema}"))
        .execute(&mut conn)
        .await
        .unwrap_or_else(|e| panic!("PostgreSQL at {shown}: create schema {schema}: {e}\n{hint}"));
    let _ = sqlx::Connection::close(conn).await;
    let sep = if url.contains('?') { '&' } else { '?' };
    format!("{url}{sep}options=-c%20search_path%3D{schema}")
}

/// Drops the `portrait_test_<unix secs>_…` schemas older than [`STALE_TEST_SCHEMA`] (best effort).
async fn drop_stale_test_schemas(conn: &mut sqlx::PgConnection, now: u64) {
    let Ok(names) = sqlx::query_scalar::<_, String>(
        "select nspname::text from pg_namespace where starts_with(nspname::text, $1)",
    )
    .bind(TEST_SCHEMA_PREFIX)
    .fetch_all(&mut *conn)
    .await
    else {
        return;
    };
    for name in names {
        let created: Option<u64> = name[TEST_SCHEMA_PREFIX.len()..]
            .split('_')
            .next()
            .and_then(|s| s.parse().ok());
        if created.is_some_and(|t| t + STALE_TEST_SCHEMA.as_secs() < now) {
            let _ = sqlx::query(&format!("drop schema if exists {name} cascade"))
                .execute(&mut *conn)
                .await;
        }
    }
}

/// A fresh PostgreSQL store in a schema of its own (see [`fresh_postgres_url`]).
///
/// # Panics
/// If PostgreSQL cannot be reached (the message says how to fix that) or the store cannot be
/// opened.
pub async fn fresh_postgres() -> Arc<dyn Store> {
    let url = fresh_postgres_url().await;
    let store = crate::postgres::PgStore::open(&url)
        .await
        .unwrap_or_else(|e| panic!("open the test store at {}: {e}", crate::redact_url(&url)));
    Arc::new(store)
}

/// A fresh store of the backend named by `PORTRAIT_TEST_STORE`: unset or `sqlite` → [`fresh_sqlite`]
/// (the directory is returned); `postgres` → [`fresh_postgres`] (no directory).
///
/// # Panics
/// For any other value, and if the store cannot be created (PostgreSQL unreachable included).
pub async fn fresh_store_from_env() -> (Arc<dyn Store>, Option<tempfile::TempDir>) {
    match std::env::var(TEST_STORE_ENV).as_deref() {
        Err(std::env::VarError::NotPresent) | Ok("" | "sqlite") => {
            let (store, dir) = fresh_sqlite().await;
            (store, Some(dir))
        }
        Ok("postgres") => (fresh_postgres().await, None),
        Ok(other) => panic!(
            "{TEST_STORE_ENV}={other:?}: valid values are `sqlite` (the default) and `postgres`"
        ),
        Err(e) => {
            panic!("{TEST_STORE_ENV}: {e}; valid values are `sqlite` (the default) and `postgres`")
        }
    }
}
