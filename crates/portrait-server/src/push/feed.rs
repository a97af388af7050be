//! One app's feed: the registry of its connections and subscriptions (with the per-user and
//! per-connection limits), and the task that tails the app's change log and offers each change to
//! the connections subscribed to its account (see [`crate::push`] for the no-gap, no-duplicate
//! argument). Connections between nodes are [`super::bus`]'s business.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use portrait_core::ErrorCode;
use portrait_store::{AppHead, AppId, Change, Store};
use tokio::sync::{mpsc, watch, Notify};
use tokio_util::sync::CancellationToken;

use super::{CloseReason, Conn, Event};
use crate::settings::PushSettings;
use crate::tenant::Tenant;

/// Most changes read from the store per query.
pub const PAGE: usize = 500;

/// A kicks revision no store answers: the feed's kicks are reloaded at the next head poll.
pub(super) const KICKS_UNKNOWN: u64 = u64::MAX;

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
    /// Replaced when the app's settings change (`crate::live`).
    tenant: std::sync::RwLock<Arc<Tenant>>,
    wake: Notify,
    /// Last version dispatched (watchers: webhook delivery).
    dispatched: watch::Sender<u64>,
    state: Mutex<FeedState>,
    next_id: AtomicU64,
    settings: PushSettings,
    /// The change log may have grown past `dispatched`: set by [`Feed::wake`] (a local write, a
    /// bus wake-up, the head poll), cleared by the feed when it reads.
    pending: AtomicBool,
    /// The app's version at the head poll's ([`super::poll`]) latest read: every version up to
    /// it was committed before the feed's next read began.
    head: AtomicU64,
    /// The kicks revision of the app when its kicks were last read ([`KICKS_UNKNOWN`]: reload).
    kicks_seen: AtomicU64,
    /// The head poll saw the kicks revision move: reload the app's kicks.
    kicks_stale: AtomicBool,
    /// Whether `dispatched` is where the feed starts: false for a feed made without knowing the
    /// app's version (its shard was down as the node started), which learns it first.
    head_known: AtomicBool,
}

impl Feed {
    /// The feed of `tenant`'s app, which has dispatched everything up to version `head` and
    /// whose kick table is that of kicks revision `kicks` ([`KICKS_UNKNOWN`] if not known).
    /// Without a `head` (the app could not be read), the feed starts once it can read the app's
    /// version and its kicks, from that version.
    pub(super) fn new(
        tenant: Arc<Tenant>,
        head: Option<u64>,
        kicks: u64,
        settings: PushSettings,
    ) -> Feed {
        let head_known = head.is_some();
        let head = head.unwrap_or(0);
        Feed {
            app: tenant.sdkappid,
            tenant: std::sync::RwLock::new(tenant),
            wake: Notify::new(),
            dispatched: watch::Sender::new(head),
            state: Mutex::new(FeedState::default()),
            next_id: AtomicU64::new(1),
            settings,
            pending: AtomicBool::new(false),
            head: AtomicU64::new(head),
            kicks_seen: AtomicU64::new(kicks),
            kicks_stale: AtomicBool::new(false),
            head_known: AtomicBool::new(head_known),
        }
    }

    /// Whether it knows where it starts (see [`Feed::new`]): until then it takes no
    /// connection.
    pub fn started(&self) -> bool {
        self.head_known.load(Ordering::Acquire)
    }

    /// The app.
    pub fn app(&self) -> AppId {
        self.app
    }

    /// The app's tenant now (its schema renders frames).
    pub fn tenant(&self) -> Arc<Tenant> {
        crate::sync::read(&self.tenant).clone()
    }

    /// Serves the app with `tenant` from now on (its settings changed).
    pub fn set_tenant(&self, tenant: Arc<Tenant>) {
        *crate::sync::write(&self.tenant) = tenant;
    }

    /// Closes every connection of the app with `code` (the app was disabled).
    pub fn revoke_all(&self, code: ErrorCode) {
        let st = crate::sync::lock(&self.state);
        for conn in st.users.values().flat_map(HashMap::values) {
            conn.revoke(CloseReason::Revoked(code));
        }
    }

    /// Applies a kick seen elsewhere (another node, or the store): records it in the app's kick
    /// table and closes the user's connections opened with older UserSigs.
    pub fn apply_kick(&self, user: &str, not_before: u64) {
        let tenant = self.tenant();
        if tenant
            .kicked_before(user)
            .is_some_and(|nb| nb >= not_before)
        {
            return;
        }
        tenant.set_kick(user.to_owned(), not_before);
        self.revoke(user, ErrorCode::SIG_EXPIRED);
    }

    /// Push settings.
    pub fn settings(&self) -> &PushSettings {
        &self.settings
    }

    /// Tells the feed that the change log has grown (after a local write).
    pub fn wake(&self) {
        self.pending.store(true, Ordering::Release);
        self.wake.notify_one();
    }

    /// What the head poll saw of the app: wakes the feed if the app's version passed what it
    /// dispatched, and has it reload the app's kicks if their revision moved since it read them.
    pub(super) fn observe(&self, head: AppHead) {
        // The latest, not the highest: after a failover to a standby that lacked the newest
        // versions, the database's head went back, and versions above it will be reused.
        self.head.store(head.version, Ordering::Release);
        if head.version > *self.dispatched.borrow() {
            self.wake();
        }
        if self.kicks_seen.swap(head.kicks, Ordering::AcqRel) != head.kicks {
            self.kicks_stale.store(true, Ordering::Release);
            self.wake.notify_one();
        }
    }

    /// Has the feed reload the app's kicks (its tenant's are not loaded): at once, and again at
    /// every head poll until a reload succeeds.
    pub(super) fn kicks_unknown(&self) {
        self.kicks_seen.store(KICKS_UNKNOWN, Ordering::Release);
        self.kicks_stale.store(true, Ordering::Release);
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
                    let ev = Arc::new(Event::new(change, &self.tenant().schema));
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

    /// Reloads the app's kicks from the store (kicks made through other nodes: the bus brings
    /// them at once, this catches those it lost). On failure, the next head poll retries.
    async fn reload_kicks(&self, store: &dyn Store) {
        match store.kicks(self.app).await {
            Ok(kicks) => {
                for (user, nb) in kicks {
                    self.apply_kick(&user, nb);
                }
                self.tenant().set_kicks_loaded(true);
            }
            Err(e) => {
                self.kicks_seen.store(KICKS_UNKNOWN, Ordering::Release);
                tracing::warn!(app = self.app, error = %e, "push feed: cannot reload kicks");
            }
        }
    }

    /// The version the feed starts after: the one it was made with, or, for a feed made
    /// without one, the app's version as soon as it can be read (tried every poll interval):
    /// changes made before then are not pushed, as for a feed started at that moment. `None`
    /// if the node stops first.
    async fn start(&self, store: &dyn Store, stop: &CancellationToken) -> Option<u64> {
        let every = std::time::Duration::from_millis(self.settings.poll_interval_ms);
        while !self.head_known.load(Ordering::Acquire) {
            // The version first: a kick made after it is seen by the next head poll.
            let started = match store.current_version(self.app).await {
                Ok(version) => super::hub::load_kicks(store, &self.tenant())
                    .await
                    .map(|()| version),
                Err(e) => Err(e),
            };
            match started {
                Ok(version) => {
                    self.dispatched.send_replace(version);
                    self.head_known.store(true, Ordering::Release);
                    tracing::info!(app = self.app, version, "push feed: started");
                }
                Err(e) => {
                    tracing::debug!(app = self.app, error = %e, "push feed: cannot read the app's version yet");
                    tokio::select! {
                        () = tokio::time::sleep(every) => {}
                        () = stop.cancelled() => return None,
                    }
                }
            }
        }
        Some(*self.dispatched.borrow())
    }

    /// Reads the change log after `last` to its end and dispatches it; returns the new `last`.
    /// A failed read is retried when the head poll next finds the app ahead of the feed.
    async fn read(&self, store: &dyn Store, mut last: u64) -> u64 {
        // Committed before this read began (the poll saw it), so the read sees all up to it.
        let head = self.head.load(Ordering::Acquire);
        loop {
            match store.changes_since(self.app, last, PAGE).await {
                Ok(page) if page.is_empty() => break,
                Ok(page) => {
                    if page[0].version > last + 1 {
                        self.pruned(last, page[0].version);
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
                    return last;
                }
            }
        }
        if head > last {
            // The log ends below a version committed before the read: the changes up to it are
            // gone (pruned). Passing over them keeps the poll from waking the feed for them again.
            self.pruned(last, head + 1);
            last = head;
            self.dispatched.send_replace(last);
        }
        last
    }

    /// Versions after `last` and before `next` were pruned before the feed read them (versions
    /// have no gaps; it lagged behind by more than the retention): every connection catches up.
    fn pruned(&self, last: u64, next: u64) {
        tracing::warn!(
            app = self.app,
            after = last,
            next,
            "push feed: changes were pruned before it read them; every connection catches up"
        );
        self.resync_all();
    }

    /// Tails the change log until `stop`: reads it when woken ([`Feed::wake`]), and reloads the
    /// app's kicks when the head poll says they changed.
    pub(super) async fn run(self: Arc<Self>, store: Arc<dyn Store>, stop: CancellationToken) {
        let Some(mut last) = self.start(store.as_ref(), &stop).await else {
            return;
        };
        loop {
            if self.kicks_stale.swap(false, Ordering::AcqRel) {
                self.reload_kicks(store.as_ref()).await;
            }
            if self.pending.swap(false, Ordering::AcqRel) {
                last = self.read(store.as_ref(), last).await;
            }
            tokio::select! {
                () = self.wake.notified() => {}
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
