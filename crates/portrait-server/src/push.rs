//! Realtime fan-out of each app's change log to WebSocket connections (docs/client-api.md).
//!
//! The change log in the store is the only source of truth. Per app, one **feed** task tails it:
//! woken after every local write (and by a poll timer, for changes written by other processes or
//! nodes), it reads `changes_since(last dispatched)` and offers each change, serialized once, to
//! the connections subscribed to its account. Because the store makes versions visible in order,
//! the feed dispatches every version exactly once, in order.
//!
//! A connection ([`crate::api::v1::ws`]) registers with the feed *before* it reads its catch-up
//! from the store, so the union of "read from the store" and "offered live" has no gap; it drops
//! what it has already sent by per-account version (so no duplicate). Offering never blocks the
//! feed: each connection has a bounded queue, and a connection whose queue is full is marked
//! *overflowed*, gets nothing more until it has caught up from the store from its cursor, and
//! then resumes live. Versions have no gaps, so a page that starts after `last + 1` means the
//! change log was pruned ([`crate::retention`]) before the feed read it; then every connection
//! is switched to that catch-up, which tells its client (49005).
//!
//! **Several nodes** share one store. A node's own writes wake its feeds directly; with
//! `push.nats_url` set, it also publishes a wake-up on `<nats_subject>.<sdkappid>` and every
//! node wakes that app's feed when one arrives, so a change reaches subscribers on every node at
//! once. NATS carries nothing but these wake-ups: a lost one (NATS down, a node disconnected)
//! only delays delivery until the next poll (`push.poll_interval_ms`), and the async-nats client
//! reconnects and resubscribes by itself when NATS is back.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use portrait_core::schema::{Actor, Schema};
use portrait_core::wire::ADMIN_OPERATOR;
use portrait_core::ws::{ChangeKind, ProfileEvent, ServerFrame};
use portrait_core::ErrorCode;
use portrait_store::{AppId, Change, Store};
use tokio::sync::{mpsc, watch, Notify};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::settings::PushSettings;
use crate::tenant::Tenant;

/// Most changes read from the store per query.
pub const PAGE: usize = 500;

/// How often each feed reloads the app's kicks from the store (kicks through other nodes also
/// arrive on the bus at once).
pub const KICK_RELOAD: Duration = Duration::from_secs(5);

/// One change, as pushed to users.
#[derive(Debug)]
pub struct Event {
    /// Whose profile changed.
    pub account: String,
    /// The change's version.
    pub version: u64,
    /// The frame, with `cursor` = `version` (what a live event carries).
    pub frame: Arc<str>,
    change: Change,
}

impl Event {
    /// Builds the event of `change` as users may see it (unreadable tags dropped).
    pub fn new(change: Change, schema: &Schema) -> Event {
        let frame = frame(&change, schema, change.version).into();
        Event {
            account: change.user.clone(),
            version: change.version,
            frame,
            change,
        }
    }

    /// The frame with another `cursor` (catch-up of a newly subscribed account).
    pub fn frame_with_cursor(&self, schema: &Schema, cursor: u64) -> String {
        frame(&self.change, schema, cursor)
    }
}

/// The `profile` frame of `c` (docs/client-api.md), with unreadable tags dropped.
fn frame(c: &Change, schema: &Schema, cursor: u64) -> String {
    let items = c
        .items
        .iter()
        .filter(|(tag, _)| {
            schema
                .resolve(tag)
                .is_ok_and(|t| schema.can_read(&t, Actor::User))
        })
        .map(|(tag, value)| portrait_core::wire::ProfileItem {
            tag: tag.clone(),
            value: value.to_json(),
        })
        .collect();
    ServerFrame::Profile(ProfileEvent {
        account: c.user.clone(),
        version: c.version,
        kind: wire_kind(c.kind),
        operator: shown_operator(c).to_owned(),
        time_ms: c.at_ms,
        items,
        cursor,
    })
    .to_json()
}

/// The store's change kind as the protocol names it.
fn wire_kind(kind: portrait_store::ChangeKind) -> ChangeKind {
    match kind {
        portrait_store::ChangeKind::Import => ChangeKind::Import,
        portrait_store::ChangeKind::Set => ChangeKind::Set,
        portrait_store::ChangeKind::Delete => ChangeKind::Delete,
    }
}

/// The `operator` of `c` as users see it: the UserID when the user changed their own profile
/// (users can change no other), otherwise [`ADMIN_OPERATOR`], never an admin's identifier.
fn shown_operator(c: &Change) -> &str {
    if c.operator == c.user {
        &c.operator
    } else {
        ADMIN_OPERATOR
    }
}

/// Why a connection is being closed by the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CloseReason {
    /// `kick` (code 70001) or `account_delete` (70107) of the connection's user.
    Revoked(ErrorCode),
}

/// A connection as the feed sees it.
pub struct Conn {
    id: u64,
    /// The signed-in user.
    pub user: String,
    tx: mpsc::Sender<Arc<Event>>,
    overflowed: AtomicBool,
    closing: Mutex<Option<CloseReason>>,
    /// Unix milliseconds when the connection was registered.
    opened_ms: i64,
    /// Woken when the connection must close ([`Conn::close_reason`]), or, without a close
    /// reason, when it must catch up from the store (its `overflowed` flag is set).
    pub close: Notify,
}

impl Conn {
    /// Whether the queue overflowed since the last [`Conn::clear_overflow`].
    pub fn overflowed(&self) -> bool {
        self.overflowed.load(Ordering::Acquire)
    }

    /// Resumes live offers; call *before* catching up from the store.
    pub fn clear_overflow(&self) {
        self.overflowed.store(false, Ordering::Release);
    }

    /// Why the server closes this connection, once it does.
    pub fn close_reason(&self) -> Option<CloseReason> {
        *crate::sync::lock(&self.closing)
    }

    fn offer(&self, ev: &Arc<Event>) {
        if self.overflowed.load(Ordering::Acquire) {
            return;
        }
        match self.tx.try_send(ev.clone()) {
            Ok(()) => {}
            Err(mpsc::error::TrySendError::Full(_)) => {
                self.overflowed.store(true, Ordering::Release);
                metrics::counter!("portrait_push_overflows_total").increment(1);
            }
            Err(mpsc::error::TrySendError::Closed(_)) => {}
        }
    }

    fn revoke(&self, why: CloseReason) {
        *crate::sync::lock(&self.closing) = Some(why);
        self.close.notify_one();
    }
}

/// Refusals of [`Feed::register`] and [`Feed::subscribe`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    /// `max_connections_per_user` reached.
    TooManyConnections,
    /// `max_subscriptions` would be exceeded.
    TooManySubscriptions,
}

#[derive(Default)]
struct FeedState {
    /// account → subscribed connections.
    subs: HashMap<String, HashMap<u64, Arc<Conn>>>,
    /// user → their connections.
    users: HashMap<String, HashMap<u64, Arc<Conn>>>,
    /// conn → its subscriptions.
    conn_subs: HashMap<u64, HashSet<String>>,
}

/// One app's feed: its subscriptions and the task tailing its change log.
pub struct Feed {
    app: AppId,
    tenant: Arc<Tenant>,
    wake: Notify,
    /// Last version dispatched (watchers: webhook delivery).
    dispatched: watch::Sender<u64>,
    state: Mutex<FeedState>,
    next_id: AtomicU64,
    settings: PushSettings,
}

impl Feed {
    /// The app.
    pub fn app(&self) -> AppId {
        self.app
    }

    /// The app's schema (for frames with another cursor).
    pub fn schema(&self) -> &Schema {
        &self.tenant.schema
    }

    /// Applies a kick seen elsewhere (another node, or the store): records it in the app's kick
    /// table and closes the user's connections opened with older UserSigs.
    pub fn apply_kick(&self, user: &str, not_before: u64) {
        if self
            .tenant
            .kicked_before(user)
            .is_some_and(|nb| nb >= not_before)
        {
            return;
        }
        self.tenant.set_kick(user.to_owned(), not_before);
        self.revoke(user, ErrorCode::SIG_EXPIRED);
    }

    /// Push settings.
    pub fn settings(&self) -> &PushSettings {
        &self.settings
    }

    /// Tells the feed that the change log has grown (after a local write).
    pub fn wake(&self) {
        self.wake.notify_one();
    }

    /// The last version dispatched, updated as the feed advances.
    pub fn watch(&self) -> watch::Receiver<u64> {
        self.dispatched.subscribe()
    }

    /// Registers a connection of `user` (no subscriptions yet).
    ///
    /// # Errors
    /// [`Refused::TooManyConnections`].
    pub fn register(&self, user: &str) -> Result<(Arc<Conn>, mpsc::Receiver<Arc<Event>>), Refused> {
        let mut st = crate::sync::lock(&self.state);
        let mine = st.users.entry(user.to_owned()).or_default();
        if mine.len() >= self.settings.max_connections_per_user {
            return Err(Refused::TooManyConnections);
        }
        let (tx, rx) = mpsc::channel(self.settings.queue);
        let conn = Arc::new(Conn {
            id: self.next_id.fetch_add(1, Ordering::Relaxed),
            user: user.to_owned(),
            tx,
            overflowed: AtomicBool::new(false),
            closing: Mutex::new(None),
            opened_ms: portrait_store::now_ms(),
            close: Notify::new(),
        });
        mine.insert(conn.id, conn.clone());
        st.conn_subs.insert(conn.id, HashSet::new());
        metrics::gauge!("portrait_ws_connections").increment(1.0);
        Ok((conn, rx))
    }

    /// Adds subscriptions; all or nothing. Returns the accounts newly added.
    ///
    /// # Errors
    /// [`Refused::TooManySubscriptions`].
    pub fn subscribe(&self, conn: &Arc<Conn>, accounts: &[String]) -> Result<Vec<String>, Refused> {
        let mut st = crate::sync::lock(&self.state);
        let st = &mut *st;
        let Some(mine) = st.conn_subs.get_mut(&conn.id) else {
            return Ok(Vec::new());
        };
        let new: Vec<String> = accounts
            .iter()
            .filter(|a| !mine.contains(*a))
            .cloned()
            .collect::<HashSet<_>>()
            .into_iter()
            .collect();
        if mine.len() + new.len() > self.settings.max_subscriptions {
            return Err(Refused::TooManySubscriptions);
        }
        for a in &new {
            mine.insert(a.clone());
            st.subs
                .entry(a.clone())
                .or_default()
                .insert(conn.id, conn.clone());
        }
        Ok(new)
    }

    /// Removes subscriptions; returns those that were held.
    pub fn unsubscribe(&self, conn: &Conn, accounts: &[String]) -> Vec<String> {
        let mut st = crate::sync::lock(&self.state);
        let st = &mut *st;
        let Some(mine) = st.conn_subs.get_mut(&conn.id) else {
            return Vec::new();
        };
        let mut removed = Vec::new();
        for a in accounts {
            if mine.remove(a) {
                remove_sub(&mut st.subs, a, conn.id);
                removed.push(a.clone());
            }
        }
        removed
    }

    /// Number of subscriptions the connection holds.
    pub fn subscriptions(&self, conn: &Conn) -> usize {
        let st = crate::sync::lock(&self.state);
        st.conn_subs.get(&conn.id).map_or(0, HashSet::len)
    }

    /// Forgets a connection and all its subscriptions.
    pub fn deregister(&self, conn: &Conn) {
        let mut st = crate::sync::lock(&self.state);
        let st = &mut *st;
        if let Some(subs) = st.conn_subs.remove(&conn.id) {
            for a in subs {
                remove_sub(&mut st.subs, &a, conn.id);
            }
            metrics::gauge!("portrait_ws_connections").decrement(1.0);
        }
        if let Some(mine) = st.users.get_mut(&conn.user) {
            mine.remove(&conn.id);
            if mine.is_empty() {
                st.users.remove(&conn.user);
            }
        }
    }

    /// Closes every connection of `user` with `code` (kick: 70001; deleted: 70107).
    pub fn revoke(&self, user: &str, code: ErrorCode) {
        let st = crate::sync::lock(&self.state);
        for conn in st.users.get(user).into_iter().flat_map(HashMap::values) {
            conn.revoke(CloseReason::Revoked(code));
        }
    }

    /// Open connections of the app.
    pub fn connections(&self) -> usize {
        crate::sync::lock(&self.state).conn_subs.len()
    }

    fn dispatch(&self, changes: Vec<Change>) {
        let Some(last) = changes.last().map(|c| c.version) else {
            return;
        };
        let n = changes.len() as u64;
        {
            let st = crate::sync::lock(&self.state);
            for change in changes {
                // A delete made on any node closes the user's connections opened before it.
                if change.kind == portrait_store::ChangeKind::Delete {
                    for conn in st
                        .users
                        .get(&change.user)
                        .into_iter()
                        .flat_map(HashMap::values)
                    {
                        if conn.opened_ms <= change.at_ms {
                            conn.revoke(CloseReason::Revoked(ErrorCode::ACCOUNT_NOT_FOUND));
                        }
                    }
                }
                // Serialised only for accounts someone follows, once for all their connections.
                if let Some(conns) = st.subs.get(&change.user) {
                    let ev = Arc::new(Event::new(change, &self.tenant.schema));
                    for conn in conns.values() {
                        conn.offer(&ev);
                    }
                }
            }
        }
        metrics::counter!("portrait_push_changes_total").increment(n);
        self.dispatched.send_replace(last);
    }

    /// Switches every connection to catch-up from its cursor, as after an overflow, and wakes it:
    /// the catch-up reads the store, so it tells the client (49005) what the feed missed.
    fn resync_all(&self) {
        let st = crate::sync::lock(&self.state);
        for conn in st.users.values().flat_map(HashMap::values) {
            conn.overflowed.store(true, Ordering::Release);
            conn.close.notify_one();
        }
    }

    /// Tails the change log until `stop`.
    async fn run(self: Arc<Self>, store: Arc<dyn Store>, stop: CancellationToken) {
        let poll = Duration::from_millis(self.settings.poll_interval_ms);
        let mut last = *self.dispatched.borrow();
        let mut kicks_loaded = std::time::Instant::now();
        loop {
            // Kicks made through other nodes (also sent on the bus; this catches missed ones).
            if kicks_loaded.elapsed() >= KICK_RELOAD {
                kicks_loaded = std::time::Instant::now();
                match store.kicks(self.app).await {
                    Ok(kicks) => {
                        for (user, nb) in kicks {
                            self.apply_kick(&user, nb);
                        }
                    }
                    Err(e) => {
                        tracing::warn!(app = self.app, error = %e, "push feed: cannot reload kicks")
                    }
                }
            }
            loop {
                match store.changes_since(self.app, last, PAGE).await {
                    Ok(page) if page.is_empty() => break,
                    Ok(page) => {
                        if page[0].version > last + 1 {
                            // Versions have no gaps, so these were pruned before the feed read
                            // them (it lagged behind by more than the retention).
                            tracing::warn!(
                                app = self.app,
                                after = last,
                                next = page[0].version,
                                "push feed: changes were pruned before it read them; every connection catches up"
                            );
                            self.resync_all();
                        }
                        last = page.last().map_or(last, |c| c.version);
                        let full = page.len() == PAGE;
                        self.dispatch(page);
                        if !full {
                            break;
                        }
                    }
                    Err(e) => {
                        tracing::warn!(app = self.app, error = %e, "push feed: cannot read the change log; retrying");
                        metrics::counter!("portrait_push_feed_errors_total").increment(1);
                        break;
                    }
                }
            }
            tokio::select! {
                () = self.wake.notified() => {}
                () = tokio::time::sleep(poll) => {}
                () = stop.cancelled() => return,
            }
        }
    }
}

fn remove_sub(subs: &mut HashMap<String, HashMap<u64, Arc<Conn>>>, account: &str, id: u64) {
    if let Some(conns) = subs.get_mut(account) {
        conns.remove(&id);
        if conns.is_empty() {
            subs.remove(account);
        }
    }
}

/// Every app's feed, and the node's background tasks (feeds, connections, webhooks).
pub struct Hub {
    feeds: HashMap<AppId, Arc<Feed>>,
    stop: CancellationToken,
    tasks: TaskTracker,
    /// Messages to publish on the bus (if one is configured).
    bus: Option<mpsc::UnboundedSender<BusMsg>>,
}

/// What nodes tell each other.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum BusMsg {
    /// The app's change log grew (`<prefix>.<app>`).
    Wake(AppId),
    /// A user was kicked (`<prefix>.kick.<app>`, payload `<not_before> <user>`).
    Kick(AppId, String, u64),
}

/// Connects to NATS (in the background if it is down) and starts the publisher and subscriber
/// of wake-ups and kicks. Returns the publisher's queue.
async fn start_bus(
    settings: &PushSettings,
    feeds: HashMap<AppId, Arc<Feed>>,
    tasks: &TaskTracker,
    stop: CancellationToken,
) -> Option<mpsc::UnboundedSender<BusMsg>> {
    if settings.nats_url.is_empty() {
        return None;
    }
    let url = settings.nats_url.clone();
    let client = match async_nats::ConnectOptions::new()
        .retry_on_initial_connect()
        .event_callback(|event| async move {
            match event {
                async_nats::Event::Connected => {
                    tracing::info!("push bus: connected to NATS");
                    metrics::gauge!("portrait_bus_connected").set(1.0);
                }
                async_nats::Event::Disconnected => {
                    tracing::warn!("push bus: disconnected from NATS; changes from other nodes arrive by polling until it is back");
                    metrics::gauge!("portrait_bus_connected").set(0.0);
                }
                other => tracing::debug!(event = %other, "push bus"),
            }
        })
        .connect(url.as_str())
        .await
    {
        Ok(c) => c,
        Err(e) => {
            tracing::error!(url = %url, error = %e, "push bus: bad NATS settings; running without it");
            return None;
        }
    };
    let node: u64 = rand::random();
    let prefix = settings.nats_subject.clone();
    // Publisher: coalesces bursts into one wake-up per app.
    let (tx, mut rx) = mpsc::unbounded_channel::<BusMsg>();
    let publisher = client.clone();
    let subject = prefix.clone();
    let stop_pub = stop.clone();
    tasks.spawn(async move {
        let payload = bytes::Bytes::from(node.to_string());
        loop {
            let first = tokio::select! {
                m = rx.recv() => match m { Some(m) => m, None => return },
                () = stop_pub.cancelled() => return,
            };
            let mut msgs = vec![first];
            while let Ok(m) = rx.try_recv() {
                if !msgs.contains(&m) {
                    msgs.push(m);
                }
            }
            for m in msgs {
                let sent = match m {
                    BusMsg::Wake(app) => {
                        publisher
                            .publish(format!("{subject}.{app}"), payload.clone())
                            .await
                    }
                    BusMsg::Kick(app, user, nb) => {
                        publisher
                            .publish(
                                format!("{subject}.kick.{app}"),
                                bytes::Bytes::from(format!("{nb} {user}")),
                            )
                            .await
                    }
                };
                if let Err(e) = sent {
                    tracing::debug!(error = %e, "push bus: publish failed");
                }
                metrics::counter!("portrait_bus_published_total").increment(1);
            }
        }
    });
    // Subscriber: wakes the feed of the app named by the subject; applies kicks.
    let subscriber = client.clone();
    tasks.spawn(async move {
        use futures_util::StreamExt;
        let subs = match (
            subscriber.subscribe(format!("{prefix}.*")).await,
            subscriber.subscribe(format!("{prefix}.kick.*")).await,
        ) {
            (Ok(a), Ok(b)) => futures_util::stream::select(a, b),
            (Err(e), _) | (_, Err(e)) => {
                tracing::error!(error = %e, "push bus: cannot subscribe; changes from other nodes arrive by polling");
                return;
            }
        };
        let mut sub = subs;
        let own = node.to_string();
        loop {
            let msg = tokio::select! {
                m = sub.next() => match m { Some(m) => m, None => return },
                () = stop.cancelled() => return,
            };
            let app = msg
                .subject
                .as_str()
                .rsplit('.')
                .next()
                .and_then(|a| a.parse::<AppId>().ok());
            let Some(feed) = app.and_then(|a| feeds.get(&a)) else {
                continue;
            };
            metrics::counter!("portrait_bus_received_total").increment(1);
            if msg.subject.as_str().starts_with(&format!("{prefix}.kick.")) {
                let text = String::from_utf8_lossy(&msg.payload);
                if let Some((nb, user)) = text.split_once(' ') {
                    if let Ok(nb) = nb.parse() {
                        feed.apply_kick(user, nb);
                    }
                }
            } else if msg.payload.as_ref() != own.as_bytes() {
                feed.wake(); // not our own write: that one woke the feed directly
            }
        }
    });
    Some(tx)
}

impl Hub {
    /// Starts a feed per app, each starting from the app's current version.
    ///
    /// # Errors
    /// The store cannot be read.
    pub async fn start(
        store: Arc<dyn Store>,
        apps: impl IntoIterator<Item = Arc<Tenant>>,
        settings: &PushSettings,
    ) -> portrait_store::Result<Hub> {
        let stop = CancellationToken::new();
        let tasks = TaskTracker::new();
        let mut feeds = HashMap::new();
        for tenant in apps {
            let app = tenant.sdkappid;
            let head = store.current_version(app).await?;
            let feed = Arc::new(Feed {
                app,
                tenant,
                wake: Notify::new(),
                dispatched: watch::Sender::new(head),
                state: Mutex::new(FeedState::default()),
                next_id: AtomicU64::new(1),
                settings: settings.clone(),
            });
            tasks.spawn(feed.clone().run(store.clone(), stop.clone()));
            feeds.insert(app, feed);
        }
        let bus = start_bus(settings, feeds.clone(), &tasks, stop.clone()).await;
        Ok(Hub {
            feeds,
            stop,
            tasks,
            bus,
        })
    }

    /// The feed of `app`.
    pub fn feed(&self, app: AppId) -> Option<&Arc<Feed>> {
        self.feeds.get(&app)
    }

    /// Wakes the feed of `app` after a local write, and every other node's through the bus.
    pub fn wake(&self, app: AppId) {
        if let Some(f) = self.feeds.get(&app) {
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
