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
//! * publishes a heartbeat (`<subject>.coh.inv.hb`: id, NATS server id, send time, whether it is
//!   *ready*, i.e. could trust its cache but for being listed, and the nodes it *lists*: the
//!   ready ones it heard less than `lease` ago) every [`HEARTBEAT_EVERY`], on the
//!   invalidations' subscription, so that hearing its own heartbeat proves that subscription is
//!   live (after a reconnect too);
//! * applies the other nodes' invalidations in the order each sent them, and acknowledges them
//!   to their sender (`<subject>.coh.ack.<sender>`: "applied everything of yours up to number
//!   n") once applied;
//! * after each write, before answering it, publishes the accounts written
//!   (`<subject>.coh.inv.<sdkappid>`) and waits, for each node listed in one of its heartbeats
//!   of the last `wait` (`lease + heartbeat + 2 × skew`), until that node acknowledged the
//!   invalidation or `wait` has passed since the last heartbeat that listed it;
//! * answers a read from memory, with no round trip, while it is in an epoch of trust
//!   ([`trust`]): connected without a reconnect, every member heard recently through the same
//!   server, **listed by every other member in a heartbeat of the last `lease`**, nothing
//!   unconfirmed.
//!
//! **Why a read needs no round trip.** A node trusts its cache only while each other member
//! listed it in a heartbeat sent less than `lease` ago. A writer waits for the acknowledgement
//! of every node it listed in the last `wait`, or until `wait` after the last heartbeat that
//! listed it, by which time that node no longer trusts that heartbeat (clocks differ by at most
//! `max_clock_skew_ms`). A heartbeat listing a node that comes after an invalidation reaches that
//! node after it (one sender's messages keep their order), so the invalidation is applied before
//! the heartbeat can start trust. So when the write is answered, every node that trusts its cache
//! has applied the invalidation. A node that lists no one (alone, or the others silent or not
//! ready) waits for no one. A node that stops says so last (`<subject>.coh.inv.bye`), after
//! ending its trust for good, and the others take that as its acknowledgement of everything.
//!
//! **When a write cannot be published** (NATS down, the publish failed), or the connection
//! changed while it waited, the node stops heartbeats until `wait` after its last one and
//! answers the write only then, when no heartbeat from it newer than `lease` is left anywhere, so
//! no other node trusts its cache. A node that writes with NATS down therefore waits once, and
//! not again while it stays down. A write within `wait` of the node's registration or of a
//! reconnect waits that long too (without muting), until no member list without it and no
//! heartbeat of an earlier connection can be trusted anywhere.
//!
//! **Losses are noticed.** Every heartbeat and invalidation carries its sender's sequence number
//! ([`wire`]); a gap from any sender, or a heartbeat that comes more than `lease` after that
//! sender's previous one, ends the epoch at once, in the task that applies invalidations,
//! before it acknowledges anything later. A reconnect ends it at the next read (the epoch
//! belongs to a connection), a slow-consumer event or a disconnect soon after (the client's
//! event wakes the heartbeat task); what such an event lost shows as a gap anyway.
//!
//! **One NATS server.** Trust needs every member on the server this node is connected to, so
//! with a NATS cluster the connection takes the listed servers in order, and a node that has
//! been on another server than the first listed one that answers for a few seconds moves there
//! ([`home`]): nodes that ended up apart (a server died and came back, a node restarted) meet
//! again.
//!
//! Nodes of the same store without NATS register as members too ([`bystander`]), so the nodes
//! with NATS cannot trust their caches while such a node may write.

use std::collections::HashMap;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use portrait_store::cache::CachedStore;
use portrait_store::{now_ms, AppId, Store};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::settings::Settings;

mod acks;
mod bystander;
mod home;
mod trust;
mod wire;

pub use bystander::Bystander;
pub use home::PROBE_NAME;

use trust::{Link, Trust};

/// How often a node sends its heartbeat.
pub const HEARTBEAT_EVERY: Duration = Duration::from_millis(100);

/// How often a node renews its membership and reads the others'.
pub const MEMBERS_EVERY: Duration = Duration::from_millis(200);

/// How long connecting to one NATS server may take, handshake included (async-nats's default is
/// 5 s). A reconnect tries the listed servers in order (`retain_servers_order`), so a first
/// server whose host is down without refusing (packets dropped) would delay every reconnect,
/// and the node's trust in its cache, by this much. NATS is on the nodes' network (coherence
/// needs it close); a handshake there takes milliseconds, so 1 s is ample, the same bound as
/// the home probe's (`home.rs`).
const CONNECT_TIMEOUT: Duration = Duration::from_secs(1);

/// The last token of the heartbeats' subject (`<subject>.coh.inv.hb`; never an app id).
const HEARTBEAT: &str = "hb";

/// The last token of the subject of a node's last word (`<subject>.coh.inv.bye`): it will never
/// answer from its cache again, so no one need wait for its acknowledgements.
const BYE: &str = "bye";

/// The node's coherence: given to the cache as its [`portrait_store::cache::Coherence`].
pub struct Coherence {
    node: String,
    client: async_nats::Client,
    /// The client's counters (one `Arc` for the client's life; held, so that a read does not
    /// clone it, a write to a line both cores share).
    statistics: Arc<async_nats::Statistics>,
    subject: String,
    lease_ms: i64,
    /// How long an unconfirmed write waits after the node's last heartbeat; also how long after
    /// a heartbeat that listed a node a write waits for that node's acknowledgement.
    wait_ms: i64,
    /// How long a publish may wait in the client's queue: half the lease.
    publish_timeout: Duration,
    trust: Trust,
    /// When each node was last listed in a heartbeat of this node (Unix ms; updated under
    /// `sent`, so a write's invalidation sees every listing sent before it).
    listed: Mutex<HashMap<String, i64>>,
    /// The acknowledgements of this node's invalidations, and the writes waiting for them.
    acks: acks::Acks,
    /// The heartbeats sent; also serialises every heartbeat and invalidation with its sequence
    /// number, so that they leave in that order.
    sent: tokio::sync::Mutex<Sent>,
    /// Send time of the last heartbeat (Unix ms), readable without the lock above.
    last_beat_ms: AtomicI64,
    /// Send time of the last heartbeat sent on an earlier connection (Unix ms).
    earlier_connection_ms: AtomicI64,
    /// The generation the last heartbeat was sent on.
    beat_generation: AtomicU64,
    /// When the node's current registration began (Unix ms, after the store answered).
    registered_ms: AtomicI64,
    /// Sequence numbers seen, per sender (only the subscriber task uses it).
    seen: Mutex<wire::Sequences>,
    stop: CancellationToken,
    tasks: TaskTracker,
}

/// This node's sequence of messages.
#[derive(Default)]
struct Sent {
    seq: u64,
}

impl Coherence {
    /// Starts coherence for `cache` if the settings call for it (a shared store, NATS, and
    /// `[coherence] enabled`); the cache asks the database before every read otherwise.
    ///
    /// # Errors
    /// A malformed NATS URL, or the first registration as a member failed.
    pub async fn start(
        settings: &Settings,
        cache: &Arc<CachedStore>,
    ) -> anyhow::Result<Option<Arc<Coherence>>> {
        let servers = crate::settings::nats::servers(&settings.push.nats_url)?;
        if servers.is_empty() || !settings.coherence.enabled {
            return Ok(None);
        }
        let node = format!("{:016x}", rand::random::<u64>());
        let stop = CancellationToken::new();
        let trust_ended = Arc::new(tokio::sync::Notify::new());
        let on_event = trust_ended.clone();
        let client = async_nats::ConnectOptions::new()
            .name("portrait-coherence")
            .connection_timeout(CONNECT_TIMEOUT)
            .retry_on_initial_connect()
            .subscription_capacity(1 << 16)
            // A half-open connection is noticed within seconds, not minutes.
            .ping_interval(Duration::from_secs(1))
            // Every node takes the first listed server that answers, so that with a NATS
            // cluster the nodes share one server (trust needs it) unless it fails; `home`
            // brings a node back to it when it answers again.
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
            .connect(servers.clone())
            .await?;
        let skew = i64::try_from(settings.coherence.max_clock_skew_ms).unwrap_or(i64::MAX / 4);
        let lease_ms = i64::try_from(settings.coherence.lease_ms).unwrap_or(i64::MAX / 4);
        let heartbeat = i64::try_from(HEARTBEAT_EVERY.as_millis()).unwrap_or(100);
        let me = Arc::new(Coherence {
            node,
            statistics: client.statistics(),
            client,
            subject: format!("{}.coh", settings.push.nats_subject),
            lease_ms,
            wait_ms: lease_ms + heartbeat + 2 * skew,
            publish_timeout: Duration::from_millis(settings.coherence.lease_ms / 2),
            trust: Trust::new(),
            listed: Mutex::new(HashMap::new()),
            acks: acks::Acks::default(),
            sent: tokio::sync::Mutex::new(Sent::default()),
            last_beat_ms: AtomicI64::new(0),
            earlier_connection_ms: AtomicI64::new(0),
            beat_generation: AtomicU64::new(0),
            registered_ms: AtomicI64::new(0),
            seen: Mutex::new(wire::Sequences::default()),
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
        if servers.len() > 1 {
            me.tasks
                .spawn(home::run(me.client.clone(), servers, me.stop.clone()));
        }
        tracing::info!(node = %me.node, "coherence: read caches kept coherent over NATS");
        Ok(Some(me))
    }

    /// The node's id among the members.
    pub fn node(&self) -> &str {
        &self.node
    }

    /// Stops trusting the cache for good and tells the others, so that their writes do not wait
    /// for this node; stops the tasks and leaves the members (so the others need not wait out
    /// the lease).
    pub async fn shutdown(&self, store: &dyn Store) {
        self.trust.muted_until_ms.store(i64::MAX, Ordering::SeqCst);
        self.trust.end();
        if self.connected() {
            let mut sent = self.sent.lock().await;
            sent.seq += 1;
            let bye = self.client.publish(
                format!("{}.inv.{BYE}", self.subject),
                wire::ack(&self.node, sent.seq).into(),
            );
            if let Ok(Ok(())) = tokio::time::timeout(self.publish_timeout, bye).await {
                let _ = tokio::time::timeout(self.publish_timeout, self.client.flush()).await;
            }
        }
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
        self.statistics.connects.load(Ordering::SeqCst)
    }

    fn connected(&self) -> bool {
        self.client.connection_state() == async_nats::connection::State::Connected
    }

    /// Re-checks trust now.
    fn check(&self) -> bool {
        let generation = self.generation();
        let server = self.client.server_info().server_id;
        let trusted = self.trust.check(
            &self.node,
            &Link {
                connected: self.connected() && self.generation() == generation,
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
        let mut acks = self
            .client
            .subscribe(format!("{s}.ack.{}", self.node))
            .await?;
        // The acknowledgements of this node's own invalidations, in a task of their own so
        // that a stream of invalidations cannot hold them up.
        let me = self.clone();
        self.tasks.spawn(async move {
            use futures_util::StreamExt;
            loop {
                tokio::select! {
                    () = me.stop.cancelled() => return,
                    m = acks.next() => match m {
                        Some(m) => me.acknowledged(&m),
                        None => {
                            tracing::warn!("coherence: the acknowledgements' subscription ended; writes wait out the lease for other nodes");
                            return;
                        }
                    },
                }
            }
        });
        // Subscriber: invalidations and heartbeats (one subscription), in the order they came,
        // then an acknowledgement to each sender whose invalidations were applied (one per
        // sender per batch).
        let me = self.clone();
        let store: Arc<dyn Store> = cache.clone();
        self.tasks.spawn(async move {
            use futures_util::{FutureExt, StreamExt};
            let mut applied = Vec::new();
            loop {
                tokio::select! {
                    biased;
                    () = me.stop.cancelled() => return,
                    Some(m) = invs.next() => {
                        me.apply(&cache, &m, &mut applied);
                        while let Some(Some(m)) = invs.next().now_or_never() {
                            me.apply(&cache, &m, &mut applied);
                        }
                        for (node, seq) in applied.drain(..) {
                            let ack = wire::ack(&me.node, seq);
                            let publish = me.client.publish(format!("{}.ack.{node}", me.subject), ack.into());
                            let _ = tokio::time::timeout(me.publish_timeout, publish).await;
                        }
                    }
                    else => {
                        tracing::warn!("coherence: the invalidations' subscription ended; other nodes stop trusting their caches");
                        return;
                    }
                }
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
                // The list is as old as the moment it was asked for.
                let asked = Instant::now();
                let Ok(list) = store.members(&me.node, ttl).await else {
                    continue;
                };
                let now = now_ms();
                // Registered anew if the registration may have lapsed in between.
                if now - last_ok_ms > i64::try_from(ttl / 2).unwrap_or(i64::MAX) {
                    me.registered_ms.store(now, Ordering::SeqCst);
                }
                last_ok_ms = now;
                // Forget what nodes no longer members sent (bounded by the members).
                crate::sync::lock(&me.trust.heard).retain(|n, _| list.contains(n));
                crate::sync::lock(&me.seen).retain(|n| list.iter().any(|m| m == n));
                {
                    let listed = crate::sync::lock(&me.listed);
                    me.acks
                        .retain(|n| list.iter().any(|m| m == n) || listed.contains_key(n));
                }
                *crate::sync::lock(&me.trust.members) = trust::Members {
                    list,
                    read_at: Some(asked),
                };
                // A new member not heard yet ends the epoch now, not at the deadline.
                me.check();
            }
        });
        Ok(())
    }

    /// Sends a heartbeat, unless disconnected or muted (checked and recorded under the lock
    /// that muting takes, so no heartbeat escapes a mute). The first tick on a new connection
    /// sends nothing: the client may still name the previous server.
    async fn beat(&self) {
        if !self.connected() {
            return;
        }
        let mut sent = self.sent.lock().await;
        let generation = self.generation();
        let now = now_ms();
        if self.trust.muted_until_ms.load(Ordering::SeqCst) > now {
            return;
        }
        if self.beat_generation.swap(generation, Ordering::SeqCst) != generation {
            self.earlier_connection_ms
                .store(self.last_beat_ms.load(Ordering::SeqCst), Ordering::SeqCst);
            return;
        }
        let server = self.client.server_info().server_id;
        // Every other node heard less than a lease ago that said it was ready (the heard map
        // holds members and nodes heard since the members were last read).
        let listing: Vec<String> = crate::sync::lock(&self.trust.heard)
            .iter()
            .filter(|(n, h)| *n != &self.node && h.ready && now - h.sent_ms <= self.lease_ms)
            .map(|(n, _)| n.clone())
            .collect();
        {
            let mut listed = crate::sync::lock(&self.listed);
            listed.retain(|_, at| now - *at <= self.wait_ms);
            for n in &listing {
                listed.insert(n.clone(), now);
            }
        }
        self.last_beat_ms.store(now, Ordering::SeqCst);
        sent.seq += 1;
        let listing: Vec<&str> = listing.iter().map(String::as_str).collect();
        let ready = self.trust.ready.load(Ordering::SeqCst);
        let payload = wire::heartbeat(&self.node, sent.seq, &server, now, ready, &listing);
        let publish = self
            .client
            .publish(format!("{}.inv.{HEARTBEAT}", self.subject), payload.into());
        let _ = tokio::time::timeout(self.publish_timeout, publish).await;
    }

    /// Notes a sender's sequence number; ends the epoch on a gap.
    fn in_order(&self, node: &str, seq: u64) {
        if !crate::sync::lock(&self.seen).follows(node, seq) {
            metrics::counter!("portrait_coherence_gaps_total").increment(1);
            self.trust.end();
        }
    }

    /// Applies another node's invalidation (noting it in `applied`, to acknowledge), or notes a
    /// heartbeat.
    fn apply(
        &self,
        cache: &CachedStore,
        m: &async_nats::Message,
        applied: &mut Vec<(String, u64)>,
    ) {
        let last = m.subject.as_str().rsplit('.').next();
        let text = String::from_utf8_lossy(&m.payload);
        if last == Some(HEARTBEAT) {
            let Some(beat) = wire::parse_heartbeat(&text) else {
                return;
            };
            self.in_order(beat.node, beat.seq);
            self.trust
                .hear(&beat, beat.lists(&self.node), self.lease_ms);
            return;
        }
        if last == Some(BYE) {
            if let Some((node, seq)) = wire::parse_ack(&text) {
                self.in_order(node, seq);
                if node != self.node {
                    // As good as an acknowledgement of everything (its trust ended first).
                    self.acks.arrived(node, u64::MAX);
                }
            }
            return;
        }
        let Some(app) = last.and_then(|a| a.parse::<AppId>().ok()) else {
            return;
        };
        let Some((node, seq, users)) = wire::parse_invalidation(&text) else {
            return;
        };
        self.in_order(node, seq);
        if node == self.node {
            return; // this node's own write: invalidated locally already
        }
        metrics::counter!("portrait_coherence_invalidations_total").increment(1);
        match users {
            None => cache.invalidate_remote_app(app),
            Some(users) => cache.invalidate_remote(app, users),
        }
        match applied.iter_mut().find(|(n, _)| n == node) {
            Some(entry) => entry.1 = seq,
            None => applied.push((node.to_owned(), seq)),
        }
    }

    /// Notes another node's acknowledgement of this node's messages.
    fn acknowledged(&self, m: &async_nats::Message) {
        if let Some((node, seq)) = std::str::from_utf8(&m.payload)
            .ok()
            .and_then(wire::parse_ack)
        {
            self.acks.arrived(node, seq);
        }
    }

    /// Mutes this node until no other node can trust a heartbeat of it (`wait` after the last
    /// one, or after its registration) and ends its own epoch; returns that time (Unix ms).
    fn mute(&self) -> i64 {
        let last = self.last_beat_ms.load(Ordering::SeqCst);
        let registered = self.registered_ms.load(Ordering::SeqCst);
        let until = last.max(registered) + self.wait_ms;
        self.trust.muted_until_ms.fetch_max(until, Ordering::SeqCst);
        self.trust.end();
        until
    }

    /// When a write just published may be answered (`None`: now). If it was not confirmed, this
    /// node is muted, under the heartbeats' lock, until no other node can still trust a
    /// heartbeat of it. If it was, the write still waits while a heartbeat sent on an earlier
    /// connection, or a member list read before this node registered, may be trusted somewhere.
    async fn settle(&self, confirmed: bool, generation: u64) -> Option<i64> {
        let _sent = self.sent.lock().await;
        let now = now_ms();
        let registered = self.registered_ms.load(Ordering::SeqCst);
        let last = self.last_beat_ms.load(Ordering::SeqCst);
        if !confirmed {
            return Some(self.mute());
        }
        // Heartbeats sent before this connection (if the heartbeat task has not seen it yet,
        // the last one was sent before it) can still be trusted elsewhere for a while.
        let earlier = if self.beat_generation.load(Ordering::SeqCst) == generation {
            self.earlier_connection_ms.load(Ordering::SeqCst)
        } else {
            last
        };
        let until = earlier.max(registered) + self.wait_ms;
        (until > now).then_some(until)
    }
}

/// How long a membership lasts unless renewed: ten leases, at least 5 s.
fn member_ttl_ms(lease_ms: u64) -> u64 {
    lease_ms.saturating_mul(10).max(5_000)
}

#[async_trait]
impl portrait_store::cache::Coherence for Coherence {
    async fn wrote(&self, app: AppId, users: Option<&[&str]>) {
        let generation = self.generation();
        let mut published = None;
        if self.connected() {
            let mut sent = self.sent.lock().await;
            sent.seq += 1;
            let payload = wire::invalidation(&self.node, sent.seq, users);
            let publish = self
                .client
                .publish(format!("{}.inv.{app}", self.subject), payload.into());
            if let Ok(Ok(())) = tokio::time::timeout(self.publish_timeout, publish).await {
                // Every node listed before the invalidation left (under the same lock).
                let now = now_ms();
                let waits: Vec<(String, i64)> = crate::sync::lock(&self.listed)
                    .iter()
                    .map(|(n, at)| (n.clone(), at + self.wait_ms))
                    .filter(|(_, until)| *until > now)
                    .collect();
                published = Some((sent.seq, waits));
            }
        }
        if published.is_none() {
            // Muted at once, before any await, so that a write cancelled from here on (the
            // request's deadline) still keeps this node's heartbeats back; `settle` below
            // does it again under the heartbeats' lock.
            self.mute();
        }
        let confirmed = match published {
            Some((seq, waits)) => {
                let lapsed = self.acks.wait(seq, &waits, now_ms).await;
                if lapsed > 0 {
                    metrics::counter!("portrait_coherence_unacknowledged_total").increment(lapsed);
                }
                self.generation() == generation
            }
            None => false,
        };
        let Some(until) = self.settle(confirmed, generation).await else {
            return;
        };
        metrics::counter!("portrait_coherence_write_waits_total").increment(1);
        let now = now_ms();
        if until > now {
            let wait = Duration::from_millis(u64::try_from(until - now).unwrap_or(0));
            tracing::debug!(
                ?wait,
                confirmed,
                "coherence: waiting before answering a write"
            );
            tokio::time::sleep(wait).await;
        }
    }

    async fn fresh(&self) -> Option<u64> {
        let generation = self.generation();
        if let Some(epoch) = self.trust.trusted(generation, now_ms()) {
            return Some(epoch);
        }
        // Past the last check's deadline: check again. (An epoch begins only in a check of
        // the tick or the membership task.)
        self.trust.epoch(generation)?;
        self.check();
        self.trust.trusted(self.generation(), now_ms())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // The tests' NATS (`nats-server -a 127.0.0.1 -p 4222`, as the API and multinode tests use)
    // listed second, after a server that accepts connections and never speaks, as a host that
    // drops packets does for as long as the handshake waits.
    #[tokio::test]
    async fn a_silent_first_server_delays_the_connection_about_a_second_not_five() {
        let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let silent = silent.local_addr().map(|a| (silent, a)).unwrap();
        let mut settings = Settings::default();
        settings.push.nats_url = format!("nats://{},nats://127.0.0.1:4222", silent.1);
        settings.push.nats_subject = format!("portrait-test.coh-timeout-{}", rand::random::<u32>());
        let (store, _dir) = portrait_store::testkit::fresh_sqlite().await;
        let cache = Arc::new(CachedStore::shared(store, 100));
        let started = Instant::now();
        let coherence = Coherence::start(&settings, &cache)
            .await
            .unwrap()
            .expect("coherence is on");
        while !coherence.connected() {
            assert!(
                started.elapsed() < Duration::from_secs(4),
                "not connected to the second server within 4 s; is NATS running on 127.0.0.1:4222?"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let took = started.elapsed();
        assert!(
            took >= CONNECT_TIMEOUT && took < CONNECT_TIMEOUT + Duration::from_millis(1500),
            "connected after {took:?}"
        );
        coherence.shutdown(&*cache).await;
        drop(silent);
    }
}
