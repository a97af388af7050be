//! Opening the PostgreSQL store: the URL, the pool and its bounds, the session settings, the
//! server version check and the migrations. A URL with several hosts or
//! `target_session_attrs=read-write` gets a pool that follows the primary (`pool.rs`).

use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::Executor;

use crate::{migrate_error, redact_url, Result, StoreError};

use super::pool::{self, Fence, Targets};
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
    ///
    /// A libpq-style host list with `target_session_attrs=read-write`
    /// (`postgres://USER@H1:5433,H2:5434/DB?target_session_attrs=read-write`) connects to
    /// whichever host is the writable primary and follows it to another host after a failover,
    /// without a restart (`postgres/pool.rs`).
    pub async fn open(url: &str) -> Result<Self> {
        match Targets::parse(url)? {
            Some(targets) => Self::open_following(targets, PoolSettings::default()).await,
            None => Self::open_with(Self::connect_options(url)?, PoolSettings::default()).await,
        }
    }

    /// [`PgStore::open`] on the hosts of a replicated cluster: the pool connects only to the
    /// writable primary and follows it when another host is promoted.
    ///
    /// # Errors
    /// As [`PgStore::open`]; [`StoreError::Unavailable`] if no host is a writable primary within
    /// the acquire timeout.
    pub async fn open_following(targets: Targets, settings: PoolSettings) -> Result<Self> {
        let targets = targets.map(with_application_name);
        let fence = Arc::new(Fence::new());
        let first = targets.first().clone();
        Self::build(first, settings, Some((targets, fence))).await
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
        Self::build(options, settings, None).await
    }

    /// The pool on `options`; with `follow`, one that the follower points at the primary.
    async fn build(
        options: PgConnectOptions,
        settings: PoolSettings,
        follow: Option<(Targets, Arc<Fence>)>,
    ) -> Result<Self> {
        if settings.max_connections == 0 {
            return Err(StoreError::Config(
                "the PostgreSQL pool needs at least one connection".into(),
            ));
        }
        let options = with_application_name(options);
        let fence = follow.as_ref().map(|(_, fence)| fence.clone());
        let fenced = fence.clone();
        let pool = PgPoolOptions::new()
            .max_connections(settings.max_connections)
            .min_connections(0)
            .acquire_timeout(settings.acquire_timeout)
            .idle_timeout(IDLE_TIMEOUT)
            .max_lifetime(MAX_LIFETIME)
            .test_before_acquire(true)
            .before_acquire(move |_conn, meta| {
                // Opened before the last search for a primary: maybe on the old one.
                let fresh = fenced.as_ref().is_none_or(|f| f.admits(meta.age));
                Box::pin(async move { Ok(fresh) })
            })
            .after_connect(move |conn, _meta| {
                let follows = fence.is_some();
                Box::pin(async move {
                    if follows && !pool::writable(conn).await? {
                        return Err(sqlx::Error::Configuration(
                            "the host is a standby or read-only; waiting for the primary".into(),
                        ));
                    }
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
        let follower = match follow {
            Some((targets, fence)) => Some(Arc::new(
                pool::follow(pool.clone(), targets, fence, settings.acquire_timeout).await,
            )),
            None => None,
        };
        let backend = PgBackend {
            follower,
            ..PgBackend::with_pool(pool)
        };
        if let Err(e) = backend.prepare().await {
            backend.pool.close().await;
            return Err(e);
        }
        tracing::debug!("opened the postgres store");
        Ok(Engine(backend))
    }
}

impl PgBackend {
    /// The backend on `pool`, with no lane yet and no follower.
    pub(super) fn with_pool(pool: PgPool) -> Self {
        Self {
            pool,
            lanes: Arc::default(),
            follower: None,
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

/// `options` named `portrait` in `pg_stat_activity` unless the URL names them.
fn with_application_name(options: PgConnectOptions) -> PgConnectOptions {
    match options.get_application_name() {
        Some(_) => options,
        None => options.application_name("portrait"),
    }
}
