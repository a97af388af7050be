//! The node's one head poll: every `push.poll_interval_ms`, one read of every app's head
//! ([`Store::app_heads`]: its version and kicks revision; one query per database, whatever the
//! number of apps) tells each feed whether its app's change log grew or its kicks changed
//! without this node hearing of it — written through another node whose wake-up or kick was
//! lost on NATS, or with no NATS at all. Only those feeds read the store, so an idle app costs
//! nothing but its row in that read. Local writes and NATS wake a feed at once; this is only the
//! fallback that bounds how late a lost wake-up or kick arrives.
//!
//! When a database cannot be read, the feeds of its apps read their own change logs instead (as
//! if each were polled), and their kicks are reloaded once the read works again and shows what
//! moved; with shards ([`Sharded::readable_heads`]), the apps of the shards that answer are
//! polled as usual meanwhile, so one shard's outage delays no other app's changes or kicks.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use portrait_store::sharded::Sharded;
use portrait_store::{AppHead, AppId, Store, StoreError};
use tokio_util::sync::CancellationToken;

use super::hub::Feeds;

/// Polls every app's head every `every` until `stop`, and hands each feed its app's.
pub(super) async fn run(
    feeds: Feeds,
    store: Arc<dyn Store>,
    shards: Option<Arc<Sharded>>,
    every: Duration,
    stop: CancellationToken,
) {
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    // The first tick is now: the feeds start from the heads just read.
    tick.tick().await;
    // A failing read is said once per outage, not at every poll.
    let mut failing = false;
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            () = stop.cancelled() => return,
        }
        let heads = tokio::select! {
            read = Heads::read(store.as_ref(), shards.as_deref()) => read,
            () = stop.cancelled() => return,
        };
        match heads.failed.first() {
            None => {
                if std::mem::take(&mut failing) {
                    tracing::info!("push: the apps' heads are readable again");
                }
            }
            Some((shard, e)) => {
                if std::mem::replace(&mut failing, true) {
                    tracing::debug!(shard, error = %e, "push: still cannot read some apps' heads");
                } else {
                    tracing::warn!(shard, error = %e, "push: cannot read some apps' heads; their feeds read their change logs until they are readable");
                }
                metrics::counter!("portrait_push_feed_errors_total").increment(1);
            }
        }
        let feeds: Vec<_> = crate::sync::read(&feeds).values().cloned().collect();
        for feed in feeds {
            match heads.of(feed.app(), shards.as_deref()) {
                Ok(head) => feed.observe(head),
                Err(_) => feed.wake(),
            }
        }
    }
}

/// Every app's head as read at one moment: those of the databases that answered, and the
/// databases that did not (a shard's name, or "store" for the one database), with their error.
pub(super) struct Heads {
    read: HashMap<AppId, AppHead>,
    failed: Vec<(String, StoreError)>,
}

impl Heads {
    /// One read of every database's app heads ([`Sharded::readable_heads`] with shards).
    pub(super) async fn read(store: &dyn Store, shards: Option<&Sharded>) -> Heads {
        let (heads, failed) = match shards {
            Some(s) => s.readable_heads().await,
            None => match store.app_heads().await {
                Ok(heads) => (heads, Vec::new()),
                Err(e) => (Vec::new(), vec![("store".to_owned(), e)]),
            },
        };
        Heads {
            read: heads.into_iter().map(|h| (h.app, h)).collect(),
            failed,
        }
    }

    /// `app`'s head (version 0 and no kick if it was never written), or, if its database did
    /// not answer, that database and its error.
    pub(super) fn of(
        &self,
        app: AppId,
        shards: Option<&Sharded>,
    ) -> Result<AppHead, &(String, StoreError)> {
        let failed = match shards {
            Some(s) => {
                let shard = s.shard_of(app);
                self.failed.iter().find(|(name, _)| *name == shard)
            }
            None => self.failed.first(),
        };
        match failed {
            Some(failure) => Err(failure),
            None => Ok(self.read.get(&app).copied().unwrap_or(AppHead {
                app,
                version: 0,
                kicks: 0,
            })),
        }
    }
}
