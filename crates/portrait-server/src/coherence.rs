//! Read-cache coherence between nodes sharing PostgreSQL, over NATS: the read path of a cluster
//! without a database round trip per read (docs/deployment.md, "Read caches across nodes").
//!
//! **What it promises.** A read answered by any node reflects every write that any node
//! acknowledged before the read began. Without this module a node keeps that promise by asking
//! PostgreSQL for the app's version before each read; with it, it asks only when it cannot vouch
//! for its cache ([`portrait_store::cache::Coherence`]).
//!
//! **How.** Each node has a random id and its own NATS connection, and
//! * registers as a member in the store every [`MEMBERS_EVERY`] (`Store::members`);
//! * publishes a heartbeat (`<subject>.coh.inv.hb`: id, NATS server id, send time) every
//!   [`HEARTBEAT_EVERY`], on the invalidations' subscription, so that hearing its own heartbeat
//!   proves that subscription is live (after a reconnect too);
//! * after each write, before answering it, publishes the accounts written
//!   (`<subject>.coh.inv.<sdkappid>`) and then passes a barrier round ([`barrier`]): its marker
//!   comes back through the same server after the invalidation, so every node connected to that
//!   server has it queued before any marker published later;
//! * before each read, passes a barrier round too, and answers from memory only if it is in an
//!   epoch of trust ([`trust`]): connected without a reconnect, every member heard recently
//!   through the same server, nothing unconfirmed.
//!
//! **When a write cannot be confirmed** (its barrier round failed, or the connection changed, or
//! the node registered or reconnected less than `lease + heartbeat + 2 × skew` ago), the node
//! stops heartbeats for that long and answers the write only once every other node has either
//! received the invalidation or stopped trusting its cache: no heartbeat from this node newer than
//! `lease` is left anywhere. A node that writes with NATS down therefore waits once, and not
//! again while it stays down. This relies on clocks differing by at most `max_clock_skew_ms`.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use portrait_store::cache::CachedStore;
use portrait_store::{now_ms, AppId, Store};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::settings::Settings;

mod barrier;
mod trust;

use barrier::Barrier;
use trust::{Heard, Link, Trust};

/// How often a node sends its heartbeat.
pub const HEARTBEAT_EVERY: Duration = Duration::from_millis(100);

/// How often a node renews its membership and reads the others'.
pub const MEMBERS_EVERY: Duration = Duration::from_millis(200);

/// How long a barrier round waits for its marker.
pub const BARRIER_TIMEOUT: Duration = Duration::from_millis(250);

/// The last token of the heartbeats' subject (`<subject>.coh.inv.hb`; never an app id).
const HEARTBEAT: &str = "hb";

/// More accounts than this in one write are sent as "the whole app".
const MAX_USERS_PER_MESSAGE: usize = 10_000;

/// The node's coherence: given to the cache as its [`portrait_store::cache::Coherence`].
pub struct Coherence {
    node: String,
    client: async_nats::Client,
    subject: String,
    lease_ms: i64,
    /// How long an unconfirmed write waits after the node's last heartbeat.
    wait_ms: i64,
    trust: Trust,
    barrier: Barrier,
    sent: Mutex<Sent>,
    /// When the node's current registration began (Unix ms, after the store answered).
    registered_ms: AtomicI64,
    stop: CancellationToken,
    tasks: TaskTracker,
}

/// The heartbeats this node sent.
#[derive(Default)]
struct Sent {
    /// Connection generation and send time of the last heartbeat.
    generation: u64,
    last_ms: i64,
    /// Send time of the last heartbeat sent on an earlier connection.
    earlier_connection_ms: i64,
}

impl Coherence {
    /// Starts coherence for `cache` if the settings call for it (a shared store, NATS, and
    /// `[coherence] enabled`); the cache asks the database before every read otherwise.
    ///
    /// # Errors
    /// A malformed NATS URL.
    pub async fn start(
        settings: &Settings,
        cache: &Arc<CachedStore>,
    ) -> anyhow::Result<Option<Arc<Coherence>>> {
        if settings.push.nats_url.is_empty() || !settings.coherence.enabled {
            return Ok(None);
        }
        let node = format!("{:016x}", rand::random::<u64>());
        let stop = CancellationToken::new();
        let trust_ended = Arc::new(tokio::sync::Notify::new());
        let on_event = trust_ended.clone();
        let client = async_nats::ConnectOptions::new()
            .name("portrait-coherence")
            .retry_on_initial_connect()
            .subscription_capacity(1 << 16)
            // Every node takes the first listed server that answers, so that with a NATS
            // cluster the nodes share one server (trust needs it) unless it fails.
            .retain_servers_order()
            .ignore_discovered_servers()
            .event_callback(move |event| {
                let on_event = on_event.clone();
                async move {
                    match event {
                        async_nats::Event::Disconnected | async_nats::Event::SlowConsumer(_) => {
                            tracing::warn!(%event, "coherence: reads ask PostgreSQL until trusted again");
                            on_event.notify_one();
                        }
                        other => tracing::debug!(event = %other, "coherence"),
                    }
                }
            })
            .connect(crate::settings::nats::servers(&settings.push.nats_url)?)
            .await?;
        let skew = i64::try_from(settings.coherence.max_clock_skew_ms).unwrap_or(i64::MAX / 4);
        let lease_ms = i64::try_from(settings.coherence.lease_ms).unwrap_or(i64::MAX / 4);
        let heartbeat = i64::try_from(HEARTBEAT_EVERY.as_millis()).unwrap_or(100);
        let me = Arc::new(Coherence {
            node,
            client,
            subject: format!("{}.coh", settings.push.nats_subject),
            lease_ms,
            wait_ms: lease_ms + heartbeat + 2 * skew,
            trust: Trust::new(),
            barrier: Barrier::new(),
            sent: Mutex::new(Sent::default()),
            registered_ms: AtomicI64::new(0),
            stop,
            tasks: TaskTracker::new(),
        });
        let store: Arc<dyn Store> = cache.clone();
        store
            .members(&me.node, me.member_ttl_ms())
            .await
            .map_err(|e| anyhow::anyhow!("coherence: registering as a member: {e}"))?;
        me.registered_ms.store(now_ms(), Ordering::SeqCst);
        me.spawn_tasks(cache.clone(), trust_ended).await?;
        tracing::info!(node = %me.node, "coherence: read caches kept coherent over NATS");
        Ok(Some(me))
    }

    /// The node's id among the members.
    pub fn node(&self) -> &str {
        &self.node
    }

    /// Stops the tasks and leaves the members (so the others need not wait out the lease).
    pub async fn shutdown(&self, store: &dyn Store) {
        self.stop.cancel();
        self.tasks.close();
        self.tasks.wait().await;
        if let Err(e) = store.members(&self.node, 0).await {
            tracing::debug!(error = %e, "coherence: could not leave the members");
        }
    }

    fn member_ttl_ms(&self) -> u64 {
        member_ttl_ms(u64::try_from(self.lease_ms).unwrap_or(5_000))
    }

    fn generation(&self) -> u64 {
        self.client.statistics().connects.load(Ordering::SeqCst)
    }

    fn link(&self) -> (bool, u64, String) {
        let connected = self.client.connection_state() == async_nats::connection::State::Connected;
        (
            connected,
            self.generation(),
            self.client.server_info().server_id,
        )
    }

    /// Re-checks trust now.
    fn check(&self) -> bool {
        let (connected, generation, server) = self.link();
        let trusted = self.trust.check(
            &self.node,
            &Link {
                connected,
                generation,
                server: &server,
            },
            now_ms(),
            self.lease_ms,
        );
        metrics::gauge!("portrait_coherence_trusted").set(if trusted { 1.0 } else { 0.0 });
        trusted
    }

    async fn spawn_tasks(
        self: &Arc<Self>,
        cache: Arc<CachedStore>,
        trust_ended: Arc<tokio::sync::Notify>,
    ) -> anyhow::Result<()> {
        let s = &self.subject;
        let mut invs = self.client.subscribe(format!("{s}.inv.*")).await?;
        let mut marks = self
            .client
            .subscribe(format!("{s}.mark.{}", self.node))
            .await?;
        // Subscriber: invalidations and heartbeats (one subscription), and this node's markers.
        // Before a marker, every invalidation already queued is applied: the client queued
        // them before the marker.
        let me = self.clone();
        let store: Arc<dyn Store> = cache.clone();
        self.tasks.spawn(async move {
            use futures_util::{FutureExt, StreamExt};
            loop {
                tokio::select! {
                    biased;
                    () = me.stop.cancelled() => return,
                    Some(m) = invs.next() => me.apply(&cache, &m),
                    Some(m) = marks.next() => {
                        while let Some(Some(m)) = invs.next().now_or_never() {
                            me.apply(&cache, &m);
                        }
                        if let Some(round) = std::str::from_utf8(&m.payload).ok().and_then(|p| p.parse().ok()) {
                            me.barrier.arrived(round);
                        }
                    }
                    else => return,
                }
            }
        });
        // Barrier rounds.
        let me = self.clone();
        self.tasks.spawn(async move {
            let subject = format!("{}.mark.{}", me.subject, me.node);
            let rounds = me.barrier.run(
                BARRIER_TIMEOUT,
                |round| {
                    let (client, subject) = (me.client.clone(), subject.clone());
                    let generation = me.generation();
                    async move {
                        client
                            .publish(subject, round.to_string().into())
                            .await
                            .ok()
                            .map(|()| generation)
                    }
                },
                || me.generation(),
            );
            tokio::select! {
                () = rounds => {}
                () = me.stop.cancelled() => {}
            }
        });
        // Heartbeats and trust checks.
        let me = self.clone();
        self.tasks.spawn(async move {
            let mut beat = tokio::time::interval(HEARTBEAT_EVERY);
            let mut tick = tokio::time::interval(trust::TICK);
            loop {
                tokio::select! {
                    () = me.stop.cancelled() => return,
                    _ = beat.tick() => me.beat().await,
                    _ = tick.tick() => { me.check(); }
                    () = trust_ended.notified() => { me.trust.end(); }
                }
            }
        });
        // Membership.
        let me = self.clone();
        self.tasks.spawn(async move {
            let ttl = me.member_ttl_ms();
            let mut every = tokio::time::interval(MEMBERS_EVERY);
            let mut last_ok_ms = me.registered_ms.load(Ordering::SeqCst);
            loop {
                tokio::select! {
                    () = me.stop.cancelled() => return,
                    _ = every.tick() => {}
                }
                let Ok(list) = store.members(&me.node, ttl).await else {
                    continue;
                };
                let now = now_ms();
                // Registered anew if the registration may have lapsed in between.
                if now - last_ok_ms > i64::try_from(ttl / 2).unwrap_or(i64::MAX) {
                    me.registered_ms.store(now, Ordering::SeqCst);
                }
                last_ok_ms = now;
                *crate::sync::lock(&me.trust.members) = trust::Members {
                    list,
                    read_at: Some(Instant::now()),
                };
            }
        });
        Ok(())
    }

    /// Sends a heartbeat, unless disconnected or muted (checked and recorded under the lock
    /// that muting takes, so no heartbeat escapes a mute).
    async fn beat(&self) {
        let (connected, generation, server) = self.link();
        if !connected {
            return;
        }
        let now = {
            let mut sent = crate::sync::lock(&self.sent);
            let now = now_ms();
            if self.trust.muted_until_ms.load(Ordering::SeqCst) > now {
                return;
            }
            if sent.generation != generation {
                sent.earlier_connection_ms = sent.last_ms;
                sent.generation = generation;
            }
            sent.last_ms = now;
            now
        };
        let payload = format!("{} {server} {now}", self.node);
        let _ = self
            .client
            .publish(format!("{}.inv.{HEARTBEAT}", self.subject), payload.into())
            .await;
    }

    fn heard(&self, m: &async_nats::Message) {
        let text = String::from_utf8_lossy(&m.payload);
        let mut parts = text.split(' ');
        let (Some(node), Some(server), Some(Ok(sent_ms))) =
            (parts.next(), parts.next(), parts.next().map(str::parse))
        else {
            return;
        };
        crate::sync::lock(&self.trust.heard).insert(
            node.to_owned(),
            Heard {
                sent_ms,
                server: server.to_owned(),
            },
        );
    }

    /// Applies another node's invalidation, or notes a heartbeat.
    fn apply(&self, cache: &CachedStore, m: &async_nats::Message) {
        let last = m.subject.as_str().rsplit('.').next();
        if last == Some(HEARTBEAT) {
            return self.heard(m);
        }
        let Some(app) = last.and_then(|a| a.parse::<AppId>().ok()) else {
            return;
        };
        let text = String::from_utf8_lossy(&m.payload);
        let mut lines = text.split('\n');
        let Some(head) = lines.next() else { return };
        let (node, scope) = head.split_once(' ').unwrap_or((head, ""));
        if node == self.node {
            return; // this node's own write: invalidated locally already
        }
        metrics::counter!("portrait_coherence_invalidations_total").increment(1);
        if scope == "all" {
            cache.invalidate_remote_app(app);
        } else {
            cache.invalidate_remote(app, lines);
        }
    }

    /// When a write just published may be answered (`None`: now). If its barrier round failed,
    /// this node is muted, under the heartbeats' lock, until no other node can still trust a
    /// heartbeat of it. If it passed, the write still waits while a heartbeat sent on an earlier
    /// connection, or a member list read before this node registered, may be trusted somewhere.
    fn settle(&self, passed: bool, now: i64) -> Option<i64> {
        let sent = crate::sync::lock(&self.sent);
        let registered = self.registered_ms.load(Ordering::SeqCst);
        if !passed {
            let until = sent.last_ms.max(registered) + self.wait_ms;
            self.trust.muted_until_ms.fetch_max(until, Ordering::SeqCst);
            self.trust.end();
            return Some(until);
        }
        let until = sent.earlier_connection_ms.max(registered) + self.wait_ms;
        (until > now).then_some(until)
    }
}

/// A node of a shared store that does not keep its cache coherent over NATS (no `nats_url`, or
/// `[coherence] enabled = false`) still registers as a member, without ever sending a heartbeat:
/// while it may write, the nodes that do use NATS cannot hear it, so they never trust their caches
/// (their reads ask the database, which sees its writes).
pub struct Bystander {
    node: String,
    stop: CancellationToken,
    tasks: TaskTracker,
}

impl Bystander {
    /// The node's id among the members.
    pub fn node(&self) -> &str {
        &self.node
    }

    /// Registers now and renews every [`MEMBERS_EVERY`] until [`Bystander::shutdown`].
    ///
    /// # Errors
    /// The first registration failed.
    pub async fn start(settings: &Settings, store: Arc<dyn Store>) -> anyhow::Result<Bystander> {
        let node = format!("{:016x}", rand::random::<u64>());
        let ttl = member_ttl_ms(settings.coherence.lease_ms);
        store
            .members(&node, ttl)
            .await
            .map_err(|e| anyhow::anyhow!("coherence: registering as a member: {e}"))?;
        let me = Bystander {
            node,
            stop: CancellationToken::new(),
            tasks: TaskTracker::new(),
        };
        let (node, stop) = (me.node.clone(), me.stop.clone());
        me.tasks.spawn(async move {
            let mut every = tokio::time::interval(MEMBERS_EVERY);
            loop {
                tokio::select! {
                    () = stop.cancelled() => return,
                    _ = every.tick() => {}
                }
                if let Err(e) = store.members(&node, ttl).await {
                    tracing::debug!(error = %e, "coherence: could not renew the membership");
                }
            }
        });
        Ok(me)
    }

    /// Stops renewing and leaves the members.
    pub async fn shutdown(&self, store: &dyn Store) {
        self.stop.cancel();
        self.tasks.close();
        self.tasks.wait().await;
        let _ = store.members(&self.node, 0).await;
    }
}

/// How long a membership lasts unless renewed: ten leases, at least 5 s.
fn member_ttl_ms(lease_ms: u64) -> u64 {
    lease_ms.saturating_mul(10).max(5_000)
}

#[async_trait]
impl portrait_store::cache::Coherence for Coherence {
    async fn wrote(&self, app: AppId, users: Option<&[&str]>) {
        let mut payload = self.node.clone();
        match users {
            Some(users) if users.len() <= MAX_USERS_PER_MESSAGE => {
                payload.push_str(" some");
                for u in users {
                    payload.push('\n');
                    payload.push_str(u);
                }
            }
            _ => payload.push_str(" all"),
        }
        let generation = self.generation();
        let published = self
            .client
            .publish(format!("{}.inv.{app}", self.subject), payload.into())
            .await
            .is_ok();
        let passed = published && self.barrier.pass().await && self.generation() == generation;
        let now = now_ms();
        let Some(until) = self.settle(passed, now) else {
            return;
        };
        metrics::counter!("portrait_coherence_write_waits_total").increment(1);
        if until > now {
            let wait = Duration::from_millis(u64::try_from(until - now).unwrap_or(0));
            tracing::debug!(?wait, passed, "coherence: waiting before answering a write");
            tokio::time::sleep(wait).await;
        }
    }

    async fn fresh(&self) -> Option<u64> {
        let epoch = self.trust.epoch(self.generation())?;
        if !self.barrier.pass().await {
            self.trust.end_epoch(epoch);
            return None;
        }
        self.trust.epoch(self.generation()).filter(|e| *e == epoch)
    }
}
