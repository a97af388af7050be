//! A node of a shared store that does not keep its cache coherent over NATS (no `nats_url`, or
//! `[coherence] enabled = false`) still registers as a member, and never sends a heartbeat:
//! while it may write, the nodes that do use NATS cannot hear it, so they never trust their
//! caches (their reads ask the database, which sees its writes).
//!
//! Another node may still trust a member list read just before this node (re)registered, for
//! up to a lease: so the node waits that long after registering before it serves (start), and
//! its writes wait that long after a registration that may have lapsed (its cache's
//! [`Coherence::wrote`](portrait_store::cache::Coherence::wrote)).

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use portrait_store::{now_ms, AppId, Store};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::{member_ttl_ms, MEMBERS_EVERY};
use crate::settings::Settings;

/// A member without NATS. See the module docs.
pub struct Bystander {
    node: String,
    /// How long after (re)registering writes wait (a lease, a refresh and twice the skew).
    wait_ms: i64,
    /// When the current registration began (Unix ms).
    registered_ms: AtomicI64,
    stop: CancellationToken,
    tasks: TaskTracker,
}

impl Bystander {
    /// The node's id among the members.
    pub fn node(&self) -> &str {
        &self.node
    }

    /// Registers, waits until no member list without this node can be trusted anywhere, and
    /// renews every [`MEMBERS_EVERY`] until [`Bystander::shutdown`].
    ///
    /// # Errors
    /// The first registration failed.
    pub async fn start(settings: &Settings, store: Arc<dyn Store>) -> anyhow::Result<Arc<Self>> {
        let node = format!("{:016x}", rand::random::<u64>());
        let ttl = member_ttl_ms(settings.coherence.lease_ms);
        store
            .members(&node, ttl)
            .await
            .map_err(|e| anyhow::anyhow!("coherence: registering as a member: {e}"))?;
        let lease = i64::try_from(settings.coherence.lease_ms).unwrap_or(60_000);
        let skew = i64::try_from(settings.coherence.max_clock_skew_ms).unwrap_or(10_000);
        let refresh = i64::try_from(MEMBERS_EVERY.as_millis()).unwrap_or(200);
        let me = Arc::new(Bystander {
            node,
            wait_ms: lease + refresh + 2 * skew,
            registered_ms: AtomicI64::new(now_ms()),
            stop: CancellationToken::new(),
            tasks: TaskTracker::new(),
        });
        let renew = me.clone();
        me.tasks.spawn(async move {
            let mut every = tokio::time::interval(MEMBERS_EVERY);
            let mut last_ok_ms = renew.registered_ms.load(Ordering::SeqCst);
            loop {
                tokio::select! {
                    () = renew.stop.cancelled() => return,
                    _ = every.tick() => {}
                }
                match store.members(&renew.node, ttl).await {
                    Ok(_) => {
                        let now = now_ms();
                        if now - last_ok_ms > i64::try_from(ttl / 2).unwrap_or(i64::MAX) {
                            renew.registered_ms.store(now, Ordering::SeqCst);
                        }
                        last_ok_ms = now;
                    }
                    Err(e) => {
                        tracing::debug!(error = %e, "coherence: could not renew the membership")
                    }
                }
            }
        });
        me.settle().await;
        Ok(me)
    }

    /// Waits until a registration that began less than a lease ago is known everywhere.
    async fn settle(&self) {
        let until = self.registered_ms.load(Ordering::SeqCst) + self.wait_ms;
        let now = now_ms();
        if until > now {
            metrics::counter!("portrait_coherence_write_waits_total").increment(1);
            let wait = u64::try_from(until - now).unwrap_or(0);
            tokio::time::sleep(Duration::from_millis(wait)).await;
        }
    }

    /// Stops renewing and leaves the members.
    pub async fn shutdown(&self, store: &dyn Store) {
        self.stop.cancel();
        self.tasks.close();
        self.tasks.wait().await;
        let _ = store.members(&self.node, 0).await;
    }
}

#[async_trait]
impl portrait_store::cache::Coherence for Bystander {
    async fn wrote(&self, _app: AppId, _users: Option<&[&str]>) {
        self.settle().await;
    }

    /// Never: without NATS, every read asks the database first.
    async fn fresh(&self) -> Option<u64> {
        None
    }
}
