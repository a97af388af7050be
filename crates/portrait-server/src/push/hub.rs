//! The node's push hub: every app's [`Feed`], the bus publisher, the head poll that wakes the
//! feeds ([`super::poll`]), and the tracker of the node's background tasks (feeds, WebSocket
//! sessions, webhook workers) that shutdown waits for.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use portrait_store::sharded::Sharded;
use portrait_store::{AppId, Store, StoreError};
use tokio::sync::{mpsc, Notify};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::bus::{start_bus, BusMsg};
use super::feed::KICKS_UNKNOWN;
use super::Feed;
use crate::settings::PushSettings;
use crate::tenant::Tenant;
use crate::webhook::status::Statuses;

/// The feeds by app, shared with the bus subscriber.
pub(super) type Feeds = Arc<RwLock<HashMap<AppId, Arc<Feed>>>>;

/// Every app's feed, and the node's background tasks (feeds, connections, webhooks).
pub struct Hub {
    /// Grows when an app is added at run time (`crate::live`).
    feeds: Feeds,
    /// Woken by another node's app-record wake-up (`<nats_subject>.apps`).
    apps_changed: Arc<Notify>,
    settings: PushSettings,
    stop: CancellationToken,
    tasks: TaskTracker,
    /// Messages to publish on the bus (if one is configured).
    bus: Option<mpsc::UnboundedSender<BusMsg>>,
    /// What this node's webhook workers show of themselves, per app.
    webhooks: Statuses,
}

impl Hub {
    /// Starts a feed per app, each starting from the app's current version with its kicks
    /// loaded (an app whose database is down: once it answers), and the node's head poll
    /// ([`super::poll`]), which reads each of `shards` apart.
    ///
    /// # Errors
    /// The store cannot be read.
    pub async fn start(
        store: Arc<dyn Store>,
        shards: Option<Arc<Sharded>>,
        apps: impl IntoIterator<Item = Arc<Tenant>>,
        settings: &PushSettings,
    ) -> portrait_store::Result<Hub> {
        let stop = CancellationToken::new();
        let tasks = TaskTracker::new();
        let feeds: Feeds = Arc::default();
        let apps_changed = Arc::new(Notify::new());
        let bus = start_bus(
            settings,
            feeds.clone(),
            apps_changed.clone(),
            &tasks,
            stop.clone(),
        )
        .await;
        let hub = Hub {
            feeds,
            apps_changed,
            settings: settings.clone(),
            stop,
            tasks,
            bus,
            webhooks: Statuses::default(),
        };
        // One read for every app's start, before the kicks are read: a kick made in between
        // moves the revision past the one the feed starts from, so the poll reloads it. The
        // apps of a database that does not answer (a shard) start once it does.
        let heads = super::poll::Heads::read(store.as_ref(), shards.as_deref()).await;
        for tenant in apps {
            let app = tenant.sdkappid;
            let (head, kicks) = match heads.of(app, shards.as_deref()) {
                Ok(h) => (Ok(h.version), h.kicks),
                // An outage: the app starts once its database answers.
                Err((db, e @ StoreError::Unavailable(_))) => (
                    Err(StoreError::Unavailable(
                        format!("{}: {e}", database(shards.as_deref(), db)).into(),
                    )),
                    KICKS_UNKNOWN,
                ),
                // A refusal (a corrupt row, say): a fault to fix, which stops the start.
                Err((db, e)) => {
                    return Err(StoreError::Corrupt(format!(
                        "reading the apps' heads from {} (where app {app} is): {e}",
                        database(shards.as_deref(), db)
                    )))
                }
            };
            let head = ready(store.as_ref(), &tenant, head, kicks).await?;
            if head.is_none() {
                // No UserSig of the app passes until its feed has loaded the kicks.
                tenant.set_kicks_loaded(false);
            }
            hub.add(&store, tenant, head, kicks);
        }
        hub.tasks.spawn(super::poll::run(
            hub.feeds.clone(),
            store,
            shards,
            Duration::from_millis(settings.poll_interval_ms),
            hub.stop.clone(),
        ));
        Ok(hub)
    }

    /// Serves `tenant`'s app from now on: starts its feed (from the app's current version) if
    /// it has none, else hands the feed the new tenant. Returns the feed. The caller loads a new
    /// app's kicks into `tenant`; the feed reloads them at its first head poll.
    ///
    /// # Errors
    /// The store cannot be read.
    pub async fn serve(
        &self,
        store: &Arc<dyn Store>,
        tenant: Arc<Tenant>,
    ) -> portrait_store::Result<Arc<Feed>> {
        if let Some(feed) = self.feed(tenant.sdkappid) {
            let reload = !tenant.kicks_loaded();
            feed.set_tenant(tenant);
            if reload {
                feed.kicks_unknown();
            }
            return Ok(feed);
        }
        // With its kicks loaded by the caller, only the version is read here.
        let head = if tenant.kicks_loaded() {
            let head = store.current_version(tenant.sdkappid).await;
            ready(store.as_ref(), &tenant, head, 0).await?
        } else {
            None
        };
        Ok(self.add(store, tenant, head, KICKS_UNKNOWN))
    }

    /// Starts the feed of `tenant`'s app from version `head` (`None`: once the app can be
    /// read) and kicks revision `kicks`, unless it has one already; returns the app's feed.
    fn add(
        &self,
        store: &Arc<dyn Store>,
        tenant: Arc<Tenant>,
        head: Option<u64>,
        kicks: u64,
    ) -> Arc<Feed> {
        let app = tenant.sdkappid;
        let mut feeds = crate::sync::write(&self.feeds);
        if let Some(raced) = feeds.get(&app) {
            return raced.clone();
        }
        let feed = Arc::new(Feed::new(tenant, head, kicks, self.settings.clone()));
        self.tasks
            .spawn(feed.clone().run(store.clone(), self.stop.clone()));
        feeds.insert(app, feed.clone());
        feed
    }

    /// The feed of `app`.
    pub fn feed(&self, app: AppId) -> Option<Arc<Feed>> {
        crate::sync::read(&self.feeds).get(&app).cloned()
    }

    /// Tells every other node that app records changed (`<nats_subject>.apps`).
    pub fn apps_changed(&self) {
        if let Some(bus) = &self.bus {
            let _ = bus.send(BusMsg::Apps);
        }
    }

    /// Resolves when another node says app records changed.
    pub fn apps_notified(&self) -> Arc<Notify> {
        self.apps_changed.clone()
    }

    /// Wakes the feed of `app` after a local write, and every other node's through the bus.
    pub fn wake(&self, app: AppId) {
        if let Some(f) = self.feed(app) {
            f.wake();
        }
        if let Some(bus) = &self.bus {
            let _ = bus.send(BusMsg::Wake(app));
        }
    }

    /// Tells the other nodes of a kick (this node's kick table and connections are already
    /// updated by the caller).
    pub fn kicked(&self, app: AppId, user: &str, not_before: u64) {
        if let Some(bus) = &self.bus {
            let _ = bus.send(BusMsg::Kick(app, user.to_owned(), not_before));
        }
    }

    /// The webhook workers' statuses (`crate::webhook::status`), per app.
    pub fn webhooks(&self) -> &Statuses {
        &self.webhooks
    }

    /// Cancelled when the node shuts down.
    pub fn stopping(&self) -> CancellationToken {
        self.stop.clone()
    }

    /// Tracks a background task so that [`Hub::shutdown`] waits for it.
    pub fn spawn<F>(&self, task: F)
    where
        F: std::future::Future<Output = ()> + Send + 'static,
    {
        self.tasks.spawn(task);
    }

    /// Wraps a future (a WebSocket session) so that [`Hub::shutdown`] waits for it.
    pub fn track<F: std::future::Future>(
        &self,
        f: F,
    ) -> tokio_util::task::task_tracker::TrackedFuture<F> {
        self.tasks.track_future(f)
    }

    /// Stops the feeds, closes every connection (1001) and waits for the tasks, at most `grace`.
    pub async fn shutdown(&self, grace: Duration) {
        self.stop.cancel();
        self.tasks.close();
        if tokio::time::timeout(grace, self.tasks.wait())
            .await
            .is_err()
        {
            tracing::warn!("push: some tasks did not stop within {grace:?}");
        }
    }
}

/// The database named `db` in [`super::poll::Heads`], for a message.
fn database(shards: Option<&Sharded>, db: &str) -> String {
    match shards {
        Some(_) => format!("shard {db:?}"),
        None => "the store".to_owned(),
    }
}

/// Where the feed of `tenant`'s app starts: `head` (the app's version as read), after loading
/// the app's kicks unless its kicks revision `kicks` is 0 (never kicked). `None` when its
/// database is down: the feed then starts, and loads the kicks, once it can read them.
///
/// # Errors
/// Any other store failure.
async fn ready(
    store: &dyn Store,
    tenant: &Tenant,
    head: portrait_store::Result<u64>,
    kicks: u64,
) -> portrait_store::Result<Option<u64>> {
    let loaded = match head {
        Ok(head) if kicks == 0 => Ok(head),
        Ok(head) => load_kicks(store, tenant).await.map(|()| head),
        Err(e) => Err(e),
    };
    match loaded {
        Ok(head) => Ok(Some(head)),
        Err(e @ portrait_store::StoreError::Unavailable(_)) => {
            tracing::warn!(app = tenant.sdkappid, error = %e, "push: the app cannot be read; its feed starts once its database answers");
            Ok(None)
        }
        Err(e) => Err(e),
    }
}

/// Loads the app's kicks into `tenant`'s table.
///
/// # Errors
/// The store cannot be read (the table is then as it was).
pub(crate) async fn load_kicks(store: &dyn Store, tenant: &Tenant) -> portrait_store::Result<()> {
    for (user, not_before) in store.kicks(tenant.sdkappid).await? {
        tenant.set_kick(user, not_before);
    }
    tenant.set_kicks_loaded(true);
    Ok(())
}
