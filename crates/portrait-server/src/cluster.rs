//! Cluster-wide limits: the per-app REST rate limits, the client-API limits and the per-user
//! WebSocket connection caps counted across every node of a deployment, through the Redis of
//! `[cluster] redis_url` (docs/deployment.md, "Limits across nodes"). Without a URL, or while
//! Redis does not answer, every limit is counted per node by [`crate::ratelimit`]'s limiters and
//! the feeds' own caps (today's behaviour), so a Redis outage never stops a call from being
//! served; shared counting resumes as soon as Redis answers again.
//!
//! * [`window`]: calls per second, in one-second windows of Redis's clock; a node takes tokens
//!   in small chunks and admits locally while it holds some, so most calls cost no round trip.
//! * [`conns`]: a sorted set per user of the connections open on every node, each scored by an
//!   expiry that its node refreshes, so that a dead node's connections stop counting.
//!
//! This module only decides; what a refusal looks like on the wire stays with the callers
//! (`auth`, `api::v1::ws`) and `error.rs`. Redis holds nothing but counters that expire.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use secrecy::ExposeSecret;
use tokio_util::sync::CancellationToken;

use crate::ratelimit::{Api, ClientCall, Over};
use crate::settings::ClusterSettings;
use crate::tenant::Tenant;

pub mod conns;
pub mod window;

pub use conns::{ConnSlot, OverCap};

/// The gauge that says whether this node counts its limits in Redis now (1) or per node (0).
pub const CONNECTED_GAUGE: &str = "portrait_cluster_limits_connected";

/// The link to Redis: one multiplexed connection (concurrent calls are pipelined on it), and
/// whether it answers. Calls never wait for a connection to be made: while `up` is false they
/// count per node, and [`Link::supervise`] reconnects in the background.
pub(crate) struct Link {
    client: redis::Client,
    conn: RwLock<Option<ConnectionManager>>,
    up: AtomicBool,
    /// Longest wait for one reply.
    pub(crate) timeout: Duration,
    retry: Duration,
    /// `<key_prefix>:`.
    pub(crate) prefix: String,
    /// Wakes the connection refresher when Redis is back (its data may be gone).
    back: tokio::sync::Notify,
}

impl Link {
    /// The connection, when Redis answers.
    pub(crate) fn conn(&self) -> Option<ConnectionManager> {
        if !self.up.load(Ordering::Relaxed) {
            return None;
        }
        crate::sync::read(&self.conn).clone()
    }

    /// Runs `f` on the connection within the timeout; `None` (and counting per node from now
    /// on) when Redis is down, slow or fails.
    pub(crate) async fn call<T, F, Fut>(&self, f: F) -> Option<T>
    where
        F: FnOnce(ConnectionManager) -> Fut,
        Fut: std::future::Future<Output = redis::RedisResult<T>>,
    {
        let conn = self.conn()?;
        match tokio::time::timeout(self.timeout, f(conn)).await {
            Ok(Ok(v)) => Some(v),
            Ok(Err(e)) => {
                self.failed(&e.to_string());
                None
            }
            Err(_) => {
                self.failed(&format!("no reply within {:?}", self.timeout));
                None
            }
        }
    }

    /// Switches to per-node counting, logging the first failure only.
    fn failed(&self, why: &str) {
        if self.up.swap(false, Ordering::Relaxed) {
            tracing::warn!(
                error = why,
                "cluster limits: Redis does not answer; counting limits per node until it does"
            );
            metrics::gauge!(CONNECTED_GAUGE).set(0.0);
        }
        // A fresh connection is made by `supervise`.
        *crate::sync::write(&self.conn) = None;
    }

    /// Keeps a connection: PINGs Redis every `retry` (so a lost Redis is noticed without
    /// traffic too) and (re)connects while it does not answer.
    async fn supervise(self: Arc<Self>, stop: CancellationToken) {
        let mut warned = false;
        loop {
            if self.up.load(Ordering::Relaxed) {
                self.call(|mut conn| async move {
                    redis::cmd("PING").query_async::<String>(&mut conn).await
                })
                .await;
            } else {
                match self.connect().await {
                    Ok(conn) => {
                        *crate::sync::write(&self.conn) = Some(conn);
                        self.up.store(true, Ordering::Relaxed);
                        metrics::gauge!(CONNECTED_GAUGE).set(1.0);
                        tracing::info!("cluster limits: counting limits across nodes in Redis");
                        self.back.notify_one();
                        warned = false;
                    }
                    Err(e) if !warned => {
                        warned = true;
                        tracing::warn!(error = %e, "cluster limits: Redis does not answer; counting limits per node until it does");
                    }
                    Err(_) => {}
                }
            }
            tokio::select! {
                () = stop.cancelled() => return,
                () = tokio::time::sleep(self.retry) => {}
            }
        }
    }

    async fn connect(&self) -> anyhow::Result<ConnectionManager> {
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(self.timeout.max(Duration::from_millis(200)))
            .set_response_timeout(self.timeout)
            .set_number_of_retries(0);
        let wait = self.timeout.max(Duration::from_millis(200)) * 2;
        let mut conn = tokio::time::timeout(
            wait,
            ConnectionManager::new_with_config(self.client.clone(), config),
        )
        .await
        .map_err(|_| anyhow::anyhow!("no connection within {wait:?}"))??;
        let pong: String = tokio::time::timeout(wait, redis::cmd("PING").query_async(&mut conn))
            .await
            .map_err(|_| anyhow::anyhow!("no PONG within {wait:?}"))??;
        anyhow::ensure!(pong == "PONG", "PING answered {pong:?}");
        Ok(conn)
    }
}

/// The node's cluster-wide limits. Without Redis (`[cluster] redis_url` empty) every check is
/// the per-node one.
pub struct ClusterLimits {
    link: Option<Arc<Link>>,
    windows: window::Windows,
    conns: conns::Conns,
}

impl ClusterLimits {
    /// Limits counted per node only.
    pub fn per_node() -> Arc<Self> {
        Arc::new(Self {
            link: None,
            windows: window::Windows::default(),
            conns: conns::Conns::new(Duration::from_secs(30)),
        })
    }

    /// Limits shared through `settings.redis_url` (per node when it is empty). Connects in the
    /// background: call [`ClusterLimits::run`].
    ///
    /// # Errors
    /// A malformed URL (never echoed: it may hold a password).
    pub fn from_settings(settings: &ClusterSettings) -> anyhow::Result<Arc<Self>> {
        if !settings.enabled() {
            return Ok(Self::per_node());
        }
        settings.validate()?;
        let client = redis::Client::open(settings.redis_url.expose_secret().trim())
            .map_err(|e| anyhow::anyhow!("cluster: redis_url: {:?}", e.kind()))?;
        metrics::gauge!(CONNECTED_GAUGE).set(0.0);
        Ok(Arc::new(Self {
            link: Some(Arc::new(Link {
                client,
                conn: RwLock::new(None),
                up: AtomicBool::new(false),
                timeout: Duration::from_millis(settings.timeout_ms),
                retry: Duration::from_millis(settings.retry_ms),
                prefix: format!("{}:", settings.key_prefix),
                back: tokio::sync::Notify::new(),
            })),
            windows: window::Windows::default(),
            conns: conns::Conns::new(Duration::from_millis(settings.conn_ttl_ms)),
        }))
    }

    /// Whether limits are counted in Redis right now.
    pub fn shared(&self) -> bool {
        self.link.as_ref().is_some_and(|l| l.conn().is_some())
    }

    /// The background work until `stop`: keeping the Redis connection, refreshing this node's
    /// connections there, forgetting idle windows. Nothing to do without Redis.
    pub async fn run(self: Arc<Self>, stop: CancellationToken) {
        let Some(link) = self.link.clone() else {
            return;
        };
        tokio::join!(
            link.clone().supervise(stop.clone()),
            self.conns.refresh(&link, stop.clone()),
            self.windows.prune(stop),
        );
    }

    /// Takes one call to `api` of `tenant` from the app's budget; `false` when over the limit.
    /// Counted across nodes while Redis answers, else by the tenant's own limiter.
    pub async fn check_api(&self, tenant: &Tenant, api: Api) -> bool {
        let Some(link) = &self.link else {
            return tenant.limits.check(api);
        };
        let Some(limit) = tenant.limits.limit(api) else {
            return true;
        };
        let key = window::Key::Api(tenant.sdkappid, api);
        let redis_key = || format!("{}rate:{}:{}", link.prefix, tenant.sdkappid, api.name());
        match self.windows.take(link, key, redis_key, limit).await {
            Some(admitted) => admitted,
            None => tenant.limits.check(api),
        }
    }

    /// Takes one client-API `call` of `user` from the user's and the app's budgets, across nodes
    /// while Redis answers, else from the tenant's own limiters.
    ///
    /// # Errors
    /// The limit that was exceeded.
    pub async fn check_client(
        &self,
        tenant: &Tenant,
        user: &str,
        call: ClientCall,
    ) -> Result<(), Over> {
        let Some(link) = &self.link else {
            return tenant.client_limits.check(user, call);
        };
        if link.conn().is_none() {
            return tenant.client_limits.check(user, call);
        }
        let cfg = tenant.client_limits.config();
        let (kind, user_rate, app_rate) = match call {
            ClientCall::Read => ("reads", cfg.user_reads, cfg.app_reads),
            ClientCall::Write => ("writes", cfg.user_writes, cfg.app_writes),
        };
        let app = tenant.sdkappid;
        if user_rate > 0 {
            let key = window::Key::User(app, call, tenant.client_limits.user_key(user));
            let redis_key = || format!("{}user:{app}:{kind}:{user}", link.prefix);
            match self.windows.take(link, key, redis_key, user_rate).await {
                Some(true) => {}
                Some(false) => return Err(Over::User(user_rate)),
                None => return tenant.client_limits.check(user, call),
            }
        }
        if app_rate > 0 {
            let key = window::Key::Client(app, call);
            let redis_key = || format!("{}client:{app}:{kind}", link.prefix);
            match self.windows.take(link, key, redis_key, app_rate).await {
                Some(true) => {}
                Some(false) => return Err(Over::App(app_rate)),
                None => return tenant.client_limits.check_app(call),
            }
        }
        Ok(())
    }

    /// Counts a new WebSocket connection of `user` against the cap of `cap` connections per
    /// user across nodes (`None`: no Redis configured, nothing to hold). Call it once the node's
    /// own cap admitted the connection; hold the slot for as long as the connection lives.
    ///
    /// # Errors
    /// [`OverCap`] when the user already has `cap` connections on the nodes together.
    pub async fn connect(
        &self,
        app: u64,
        user: &str,
        cap: usize,
    ) -> Result<Option<ConnSlot>, OverCap> {
        let Some(link) = &self.link else {
            return Ok(None);
        };
        self.conns.acquire(link, app, user, cap).await.map(Some)
    }
}
