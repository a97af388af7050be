//! Opening the PostgreSQL store: the URL, the pool and its bounds, the session settings, the
//! server version check and the migrations.

use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::Executor;

use crate::{migrate_error, redact_url, Result, StoreError};

use super::{PgBackend, PgStore};
use crate::backend::Engine;

/// The embedded migrations (`crates/portrait-store/migrations/postgres`).
static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");

/// Default of [`PoolSettings::max_connections`].
pub const MAX_CONNECTIONS: u32 = 16;
/// Default of [`PoolSettings::acquire_timeout`]: a little under the server's default 3 s request
/// deadline, so that while the database is down a request fails with the store's own error (and
/// its cause in the log) rather than with the deadline's.
pub const ACQUIRE_TIMEOUT: Duration = Duration::from_millis(2500);
/// An idle connection is closed after this long (connections are reopened on demand).
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(600);
/// Connections are replaced after this long, spreading load after a failover.
const MAX_LIFETIME: Duration = Duration::from_secs(1800);
/// The server ends a session that stays idle inside a transaction this long (milliseconds).
const IDLE_IN_TRANSACTION_TIMEOUT_MS: u32 = 30_000;
/// The oldest PostgreSQL accepted, as `server_version_num` (12.0).
pub const MIN_SERVER_VERSION: i32 = 120_000;

/// Pool bounds of a [`PgStore`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PoolSettings {
    /// Most connections open at once; further calls wait for one (up to `acquire_timeout`).
    pub max_connections: u32,
    /// Longest a call waits for a connection, (re)connecting included, before it fails with
    /// [`StoreError::Unavailable`].
    pub acquire_timeout: Duration,
}

impl Default for PoolSettings {
    fn default() -> Self {
        Self {
            max_connections: MAX_CONNECTIONS,
            acquire_timeout: ACQUIRE_TIMEOUT,
        }
    }
}

impl PgStore {
    /// Opens the database at `url` with the default [`PoolSettings`], checks the server version
    /// and runs pending migrations.
    ///
    /// # Errors
    /// [`StoreError::Config`] for a malformed URL, a server older than [`MIN_SERVER_VERSION`] or a
    /// database migrated by a newer Portrait; [`StoreError::Unavailable`] if the database cannot be
    /// reached within the acquire timeout. Messages never contain the password.
    pub async fn open(url: &str) -> Result<Self> {
        Self::open_with(Self::connect_options(url)?, PoolSettings::default()).await
    }

    /// Parses a `postgres://` URL (libpq-style query parameters such as `sslmode` included).
    ///
    /// # Errors
    /// [`StoreError::Config`] if it cannot be parsed.
    pub fn connect_options(url: &str) -> Result<PgConnectOptions> {
        PgConnectOptions::from_str(url)
            .map_err(|e| StoreError::Config(format!("store url {:?}: {e}", redact_url(url))))
    }

    /// [`PgStore::open`] with explicit connect options and pool bounds.
    ///
    /// # Errors
    /// As [`PgStore::open`].
    pub async fn open_with(options: PgConnectOptions, settings: PoolSettings) -> Result<Self> {
        if settings.max_connections == 0 {
            return Err(StoreError::Config(
                "the PostgreSQL pool needs at least one connection".into(),
            ));
        }
        let options = match options.get_application_name() {
            Some(_) => options,
            None => options.application_name("portrait"),
        };
        let pool = PgPoolOptions::new()
            .max_connections(settings.max_connections)
            .min_connections(0)
            .acquire_timeout(settings.acquire_timeout)
            .idle_timeout(IDLE_TIMEOUT)
            .max_lifetime(MAX_LIFETIME)
            .test_before_acquire(true)
            .after_connect(|conn, _meta| {
                Box::pin(async move {
                    // A plain `set` rather than a startup option: poolers such as PgBouncer refuse
                    // unknown startup parameters.
                    conn.execute(
                        format!(
                            "set idle_in_transaction_session_timeout = {IDLE_IN_TRANSACTION_TIMEOUT_MS}"
                        )
                        .as_str(),
                    )
                    .await?;
                    Ok(())
                })
            })
            .connect_lazy_with(options);
        let backend = PgBackend::with_pool(pool);
        if let Err(e) = backend.prepare().await {
            backend.pool.close().await;
            return Err(e);
        }
        tracing::debug!("opened the postgres store");
        Ok(Engine(backend))
    }
}

impl PgBackend {
    /// The backend on `pool`, with no lane yet.
    pub(super) fn with_pool(pool: PgPool) -> Self {
        Self {
            pool,
            lanes: Arc::default(),
        }
    }

    /// Checks the server version and runs pending migrations.
    pub(super) async fn prepare(&self) -> Result<()> {
        let version: i32 =
            sqlx::query_scalar("select current_setting('server_version_num')::integer")
                .fetch_one(&self.pool)
                .await?;
        if version < MIN_SERVER_VERSION {
            return Err(StoreError::Config(format!(
                "PostgreSQL {}.{} is too old; Portrait needs {} or newer",
                version / 10_000,
                version % 10_000,
                MIN_SERVER_VERSION / 10_000
            )));
        }
        MIGRATOR.run(&self.pool).await.map_err(migrate_error)
    }
}
