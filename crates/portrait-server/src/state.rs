//! Shared state of a running node, handed to every handler. Nothing here is global: tests build as
//! many independent states as they like.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use async_trait::async_trait;
use portrait_core::{Identifier, ProfileValue, Tag};
use portrait_store::sharded::Sharded;
use portrait_store::{AppId, Change, NewAccount, Origin, Profile, Store};

use crate::client_ip::TrustedProxies;
use crate::live::{Live, LiveApp};
use crate::push::Hub;
use crate::settings::{AppConfig, PushSettings, Settings};
use crate::tenant::Tenant;

/// Cheaply clonable handle to the node's state.
#[derive(Clone)]
pub struct AppState {
    inner: Arc<Inner>,
}

struct Inner {
    store: Arc<dyn Store>,
    hub: Arc<Hub>,
    /// The apps served now ([`crate::live`]).
    live: Arc<Live>,
    max_body_bytes: usize,
    /// Whose `X-Forwarded-For` is believed ([`crate::client_ip`]).
    trusted_proxies: TrustedProxies,
    /// The operator API's token and failure counter; `None` = the operator API is off.
    operator: Option<Arc<crate::operator::auth::OperatorAuth>>,
    /// The shards under `store`, when `[store] shards` is set: where each app is placed
    /// (applied from its settings) and moved.
    shards: Option<Arc<Sharded>>,
    /// This node's id among the members (`coherence`), with which it acknowledges holding an
    /// app's writes for a move; `None` without NATS.
    node: Option<String>,
    /// Limits counted across nodes ([`crate::cluster`]); per node unless set from settings.
    cluster: std::sync::OnceLock<Arc<crate::cluster::ClusterLimits>>,
}

impl AppState {
    /// [`AppState::with_push`] with default push settings.
    ///
    /// # Errors
    /// As [`AppState::with_push`].
    pub async fn new(
        store: Arc<dyn Store>,
        apps: &[AppConfig],
        max_body_bytes: usize,
    ) -> anyhow::Result<AppState> {
        Self::with_push(store, apps, max_body_bytes, &PushSettings::default()).await
    }

    /// Builds the state: the file's apps `apps`, then the store's app records, which win over
    /// them ([`crate::live`]); makes sure every admin identifier exists as an account (as the
    /// vendor's console does), loads each app's kick table, and starts the push feeds and
    /// webhook deliveries. No change-log retention (see [`AppState::from_settings`]).
    ///
    /// # Errors
    /// Invalid app configuration or a store failure.
    pub async fn with_push(
        store: Arc<dyn Store>,
        apps: &[AppConfig],
        max_body_bytes: usize,
        push: &PushSettings,
    ) -> anyhow::Result<AppState> {
        Self::build(store, None, apps, max_body_bytes, push, None).await
    }

    async fn build(
        store: Arc<dyn Store>,
        shards: Option<Arc<Sharded>>,
        file_apps: &[AppConfig],
        max_body_bytes: usize,
        push: &PushSettings,
        retention: Option<Duration>,
    ) -> anyhow::Result<AppState> {
        let (apps, highest) = crate::live::merge(store.as_ref(), file_apps).await?;
        let mut tenants = HashMap::new();
        // Apps whose database is down (a shard): their admins are imported once it is up.
        let mut admins_later = Vec::new();
        for (cfg, _, _) in &apps {
            place(shards.as_deref(), cfg)?;
            if let (Some(shards), Some(_)) = (&shards, &cfg.moving) {
                // Started during a move: this node's writes wait like the others'.
                shards.hold(cfg.sdkappid).await;
            }
            let tenant = Tenant::from_config(cfg)?;
            if !import_admins_now(store.as_ref(), cfg).await? {
                admins_later.push(cfg.sdkappid);
            }
            anyhow::ensure!(
                tenants.insert(cfg.sdkappid, Arc::new(tenant)).is_none(),
                "app {} is configured twice",
                cfg.sdkappid
            );
        }
        crate::metrics::handle();
        let hub = Arc::new(
            Hub::start(
                store.clone(),
                shards.clone(),
                tenants.values().cloned(),
                push,
            )
            .await
            .context("starting the push feeds")?,
        );
        let store: Arc<dyn Store> = Arc::new(Waking {
            inner: store,
            hub: hub.clone(),
        });
        let state = AppState {
            inner: Arc::new(Inner {
                store,
                hub,
                live: Arc::new(Live::new(retention)),
                max_body_bytes,
                trusted_proxies: TrustedProxies::default(),
                operator: None,
                shards,
                node: None,
                cluster: std::sync::OnceLock::new(),
            }),
        };
        for (cfg, source, revision) in apps {
            let tenant = tenants[&cfg.sdkappid].clone();
            state.start_workers(&cfg, &tenant)?;
            state.live().insert(LiveApp {
                tenant,
                config: cfg,
                source,
                revision,
            });
        }
        state.live().set_applied(highest);
        for id in admins_later {
            state.import_admins_later(id);
        }
        Ok(state)
    }

    /// Builds the state from full settings, and starts each app's change-log retention
    /// ([`crate::retention`]) unless `[store] change_retention_hours` is 0.
    ///
    /// # Errors
    /// As [`AppState::new`].
    pub async fn from_settings(
        store: Arc<dyn Store>,
        settings: &Settings,
    ) -> anyhow::Result<AppState> {
        Self::from_settings_sharded(store, None, settings).await
    }

    /// [`AppState::from_settings`] over `store`, which routes to `shards` (the same
    /// [`Sharded`], under the wrappers): each app is placed by its `shard` setting.
    ///
    /// # Errors
    /// As [`AppState::new`]; an app placed on a shard that is not configured.
    pub async fn from_settings_sharded(
        store: Arc<dyn Store>,
        shards: Option<Arc<Sharded>>,
        settings: &Settings,
    ) -> anyhow::Result<AppState> {
        let hours = settings.store.change_retention_hours;
        let retention = if hours > 0.0 {
            Some(
                Duration::try_from_secs_f64(hours * 3600.0)
                    .context("store.change_retention_hours")?,
            )
        } else {
            None
        };
        let state = Self::build(
            store,
            shards,
            &settings.apps,
            settings.server.max_body_bytes,
            &settings.push,
            retention,
        )
        .await?
        .with_trusted_proxies(
            TrustedProxies::parse(&settings.server.trusted_proxies)
                .map_err(|e| anyhow::anyhow!("server: trusted_proxies: {e}"))?,
        )
        .with_operator(settings.operator.resolve_token()?);
        state.live().set_poll_ms(settings.operator.poll_ms);
        let cluster = crate::cluster::ClusterLimits::from_settings(&settings.cluster)?;
        state
            .hub()
            .spawn(cluster.clone().run(state.hub().stopping()));
        state
            .inner
            .cluster
            .set(cluster)
            .map_err(|_| anyhow::anyhow!("the cluster limits were set twice"))?;
        Ok(state)
    }

    /// This state, believing `X-Forwarded-For` from `proxies` (`[server] trusted_proxies`).
    /// Call it before the state is shared (cloned).
    ///
    /// # Panics
    /// If the state has been cloned already.
    pub fn with_trusted_proxies(mut self, proxies: TrustedProxies) -> Self {
        Arc::get_mut(&mut self.inner)
            .expect("trusted proxies are set before the state is shared")
            .trusted_proxies = proxies;
        self
    }

    /// This state, serving the operator API with `token` (`None`: the API is off, every
    /// `/admin/v1` path answers 404). Call it before the state is shared (cloned).
    ///
    /// # Panics
    /// If the state has been cloned already.
    pub fn with_operator(mut self, token: Option<secrecy::SecretString>) -> Self {
        Arc::get_mut(&mut self.inner)
            .expect("the operator token is set before the state is shared")
            .operator = token.map(|t| Arc::new(crate::operator::auth::OperatorAuth::new(t)));
        self
    }

    /// This state, acknowledging moves as member `node`. Call it before the state is shared.
    ///
    /// # Panics
    /// If the state has been cloned already.
    pub fn with_node(mut self, node: Option<String>) -> Self {
        Arc::get_mut(&mut self.inner)
            .expect("the node id is set before the state is shared")
            .node = node;
        self
    }

    /// This node's id among the members, if it has one.
    pub fn node(&self) -> Option<&str> {
        self.inner.node.as_deref()
    }

    /// The shards, when `[store] shards` is set.
    pub fn shards(&self) -> Option<&Arc<Sharded>> {
        self.inner.shards.as_ref()
    }

    /// Routes `cfg`'s app to its shard from now on.
    ///
    /// # Errors
    /// As [`place`].
    pub fn place(&self, cfg: &AppConfig) -> anyhow::Result<()> {
        place(self.shards().map(|s| &**s), cfg)
    }

    /// Honours a move announced in `cfg` (the app's record at `revision`): while `moving` is
    /// set, the app's writes wait on this node (acknowledged on the app's shard, so the mover
    /// knows); once it is not, they go on, on the shard `cfg` places the app on.
    pub async fn honour_move(&self, cfg: &AppConfig, revision: u64) {
        let Some(shards) = self.shards() else { return };
        let id = cfg.sdkappid;
        if cfg.moving.is_none() {
            shards.release(id);
            return;
        }
        shards.hold(id).await;
        if let Some(node) = self.node() {
            if let Err(e) = shards.ack_pause(id, node, revision).await {
                tracing::warn!(sdkappid = id, error = %e, "could not acknowledge a move's pause");
            }
        }
    }

    /// The limits counted across nodes (per node without `[cluster] redis_url`).
    pub fn cluster(&self) -> &Arc<crate::cluster::ClusterLimits> {
        self.inner
            .cluster
            .get_or_init(crate::cluster::ClusterLimits::per_node)
    }

    /// The operator API's authentication, if the API is on.
    pub fn operator(&self) -> Option<&Arc<crate::operator::auth::OperatorAuth>> {
        self.inner.operator.as_ref()
    }

    /// The apps served now.
    pub fn live(&self) -> &Live {
        &self.inner.live
    }

    /// Whose `X-Forwarded-For` is believed.
    pub fn trusted_proxies(&self) -> &TrustedProxies {
        &self.inner.trusted_proxies
    }

    /// The store.
    pub fn store(&self) -> &dyn Store {
        self.inner.store.as_ref()
    }

    /// Imports the admins of app `id` (in the registry) once its database answers, in a task
    /// ([`retry_admin_import`]); one task per app at a time.
    pub(crate) fn import_admins_later(&self, id: u64) {
        if !self.live().admins_deferred(id) {
            return; // a task is on it, and reads the admins at each try
        }
        let stop = self.hub().stopping();
        self.hub().spawn(retry_admin_import(
            self.store_arc(),
            self.inner.live.clone(),
            stop,
            id,
        ));
    }

    /// The store, shared.
    pub fn store_arc(&self) -> Arc<dyn Store> {
        self.inner.store.clone()
    }

    /// This process's metrics, rendered for `/metrics`.
    pub fn metrics_text(&self) -> String {
        crate::metrics::render()
    }

    /// Push feeds and background tasks.
    pub fn hub(&self) -> &Arc<Hub> {
        &self.inner.hub
    }

    /// The app with this SDKAppID, unless it is unknown or disabled.
    pub fn tenant(&self, sdkappid: u64) -> Option<Arc<Tenant>> {
        self.inner.live.tenant(sdkappid)
    }

    /// Largest request body accepted.
    pub fn max_body_bytes(&self) -> usize {
        self.inner.max_body_bytes
    }
}

/// Whether `e` is the store's "unavailable" (its database is down), not a refusal.
fn unavailable(e: &anyhow::Error) -> bool {
    matches!(
        e.downcast_ref::<portrait_store::StoreError>(),
        Some(portrait_store::StoreError::Unavailable(_))
    )
}

/// Imports the admins of `cfg`'s app now if it can: `Ok(false)` when that has to wait (see
/// [`AppState::import_admins_later`]): its writes are held for a move (importing would wait on that hold,
/// with the caller's locks held or before the node listens), or its database is down.
///
/// # Errors
/// As [`import_admins`], but for a database that is down.
pub(crate) async fn import_admins_now(store: &dyn Store, cfg: &AppConfig) -> anyhow::Result<bool> {
    if cfg.moving.is_some() {
        return Ok(false);
    }
    match import_admins(store, cfg).await {
        Ok(()) => Ok(true),
        Err(e) if unavailable(&e) => {
            tracing::warn!(sdkappid = cfg.sdkappid, error = %format!("{e:#}"), "the app's database is down; its admins are imported when it is up");
            Ok(false)
        }
        Err(e) => Err(e),
    }
}

/// Imports the admins of app `id` (whose database was down, or whose writes were held for a
/// move, when the node took it on) as soon as it can: tried every second until done (with the
/// admins the app has then), the app is no longer in the registry, or the node stops. Each try
/// imports the app's admins as they are when it begins: an admin named and removed again while
/// the database was down is not made an account (unless a try begun before the removal is still
/// under way when the database answers). One task per app ([`Live::admins_deferred`]), so an
/// app whose writes stay held delays no other.
async fn retry_admin_import(
    store: Arc<dyn Store>,
    live: Arc<Live>,
    stop: tokio_util::sync::CancellationToken,
    id: u64,
) {
    /// Lets a later deferral start a task again, however this one ends (unless
    /// [`Live::admins_imported`] already did: a new task may be on the list by then).
    struct Waiting<'a>(Option<&'a Live>, u64);
    impl Drop for Waiting<'_> {
        fn drop(&mut self) {
            if let Some(live) = self.0 {
                live.admins_done(self.1);
            }
        }
    }
    let mut waiting = Waiting(Some(&live), id);
    loop {
        tokio::select! {
            () = tokio::time::sleep(Duration::from_secs(1)) => {}
            () = stop.cancelled() => return,
        }
        let Some(app) = live.get(id) else {
            return;
        };
        let done = tokio::select! {
            done = import_admins(store.as_ref(), &app.config) => done,
            () = stop.cancelled() => return,
        };
        match done {
            // The admins changed during the try: import them as they are now.
            Ok(()) if !live.admins_imported(id, &app.config.admins) => {}
            Ok(()) => {
                waiting.0 = None;
                tracing::info!(sdkappid = id, "the app's admins are imported");
                return;
            }
            Err(e) if unavailable(&e) => {}
            Err(e) => {
                tracing::error!(sdkappid = id, error = %format!("{e:#}"), "importing the app's admins failed");
                return;
            }
        }
    }
}

/// Makes sure every admin of `cfg` exists as an account.
///
/// # Errors
/// A bad admin identifier or a store failure.
pub(crate) async fn import_admins(store: &dyn Store, cfg: &AppConfig) -> anyhow::Result<()> {
    let admins: Vec<NewAccount> = cfg
        .admins
        .iter()
        .map(|a| Ok(NewAccount::new(Identifier::parse(a)?)))
        .collect::<anyhow::Result<_>>()?;
    store
        .import_accounts(cfg.sdkappid, &admins, "portrait".into())
        .await
        .context("importing admin accounts")
}

/// The store as handlers see it: every successful write wakes the app's push feed, so that its
/// change reaches subscribers at once (the feed also polls, so a missed wake only delays).
struct Waking {
    inner: Arc<dyn Store>,
    hub: Arc<Hub>,
}

impl Waking {
    fn woke<T>(&self, app: AppId, r: portrait_store::Result<T>) -> portrait_store::Result<T> {
        if r.is_ok() {
            self.hub.wake(app);
        }
        r
    }
}

#[async_trait]
impl Store for Waking {
    async fn import_accounts(
        &self,
        app: AppId,
        accounts: &[NewAccount],
        origin: Origin<'_>,
    ) -> portrait_store::Result<()> {
        let r = self.inner.import_accounts(app, accounts, origin).await;
        self.woke(app, r)
    }

    async fn delete_accounts(
        &self,
        app: AppId,
        users: &[Identifier],
        origin: Origin<'_>,
    ) -> portrait_store::Result<Vec<bool>> {
        let r = self.inner.delete_accounts(app, users, origin).await;
        self.woke(app, r)
    }

    async fn accounts_exist(
        &self,
        app: AppId,
        users: &[Identifier],
    ) -> portrait_store::Result<Vec<bool>> {
        self.inner.accounts_exist(app, users).await
    }

    async fn scan_accounts(
        &self,
        app: AppId,
        prefix: &str,
        after: Option<&Identifier>,
        limit: usize,
    ) -> portrait_store::Result<Vec<Identifier>> {
        self.inner.scan_accounts(app, prefix, after, limit).await
    }

    async fn kick(
        &self,
        app: AppId,
        user: &Identifier,
        not_before: u64,
    ) -> portrait_store::Result<bool> {
        self.inner.kick(app, user, not_before).await
    }

    async fn kicks(&self, app: AppId) -> portrait_store::Result<Vec<(String, u64)>> {
        self.inner.kicks(app).await
    }

    async fn set_profile_expecting(
        &self,
        app: AppId,
        user: &Identifier,
        items: &[(Tag, ProfileValue)],
        origin: Origin<'_>,
        expected: Option<u64>,
    ) -> portrait_store::Result<u64> {
        let r = self
            .inner
            .set_profile_expecting(app, user, items, origin, expected)
            .await;
        self.woke(app, r)
    }

    async fn get_profiles(
        &self,
        app: AppId,
        users: &[Identifier],
    ) -> portrait_store::Result<Vec<Option<Profile>>> {
        self.inner.get_profiles(app, users).await
    }

    async fn get_profiles_shared(
        &self,
        app: AppId,
        users: &[Identifier],
    ) -> portrait_store::Result<Vec<Option<portrait_store::PackedProfile>>> {
        self.inner.get_profiles_shared(app, users).await
    }

    async fn changes_since(
        &self,
        app: AppId,
        since: u64,
        limit: usize,
    ) -> portrait_store::Result<Vec<Change>> {
        self.inner.changes_since(app, since, limit).await
    }

    async fn changes_of(
        &self,
        app: AppId,
        users: &[Identifier],
        since: u64,
        limit: usize,
    ) -> portrait_store::Result<portrait_store::ChangesOf> {
        self.inner.changes_of(app, users, since, limit).await
    }

    async fn current_version(&self, app: AppId) -> portrait_store::Result<u64> {
        self.inner.current_version(app).await
    }

    async fn cursor(&self, app: AppId, name: &str) -> portrait_store::Result<Option<u64>> {
        self.inner.cursor(app, name).await
    }

    async fn set_cursor(&self, app: AppId, name: &str, version: u64) -> portrait_store::Result<()> {
        self.inner.set_cursor(app, name, version).await
    }

    async fn prune_changes(
        &self,
        app: AppId,
        through: u64,
        limit: usize,
    ) -> portrait_store::Result<usize> {
        self.inner.prune_changes(app, through, limit).await
    }

    async fn lease(
        &self,
        app: AppId,
        name: &str,
        holder: &str,
        ttl_ms: u64,
    ) -> portrait_store::Result<bool> {
        self.inner.lease(app, name, holder, ttl_ms).await
    }

    async fn members(&self, node: &str, ttl_ms: u64) -> portrait_store::Result<Vec<String>> {
        self.inner.members(node, ttl_ms).await
    }

    async fn apps(&self) -> portrait_store::Result<Vec<AppId>> {
        self.inner.apps().await
    }

    async fn app_heads(&self) -> portrait_store::Result<Vec<portrait_store::AppHead>> {
        self.inner.app_heads().await
    }

    async fn app_records(
        &self,
        after_revision: u64,
    ) -> portrait_store::Result<Vec<portrait_store::AppRecord>> {
        self.inner.app_records(after_revision).await
    }

    async fn put_app_record(
        &self,
        app: AppId,
        expected: Option<u64>,
        body: &str,
    ) -> portrait_store::Result<u64> {
        self.inner.put_app_record(app, expected, body).await
    }

    async fn dump_app(&self, app: AppId) -> portrait_store::Result<portrait_store::AppDump> {
        self.inner.dump_app(app).await
    }

    async fn restore_app(&self, dump: portrait_store::AppDump) -> portrait_store::Result<()> {
        let app = dump.app;
        let r = self.inner.restore_app(dump).await;
        self.woke(app, r)
    }

    async fn ping(&self) -> portrait_store::Result<()> {
        self.inner.ping().await
    }

    async fn close(&self) {
        self.inner.close().await;
    }
}

/// Routes `cfg`'s app to its shard (`shard` setting) on `shards`.
///
/// # Errors
/// A shard not configured on this node (or a shard named on a node without shards).
fn place(shards: Option<&Sharded>, cfg: &AppConfig) -> anyhow::Result<()> {
    match (shards, cfg.shard.as_deref()) {
        (Some(s), shard) => s.place(cfg.sdkappid, shard).map_err(anyhow::Error::from),
        (None, None | Some(portrait_store::sharded::HOME)) => Ok(()),
        (None, Some(shard)) => Err(portrait_store::StoreError::Config(format!(
            "app {} is placed on shard {shard:?}, but this node has no [store] shards",
            cfg.sdkappid
        ))
        .into()),
    }
}
