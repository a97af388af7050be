//! The node's one head poll: every `push.poll_interval_ms`, one read of every app's head
//! ([`Store::app_heads`]: its version and kicks revision; one query per database, whatever the
//! number of apps) tells each feed whether its app's change log grew or its kicks changed
//! without this node hearing of it — written through another node whose wake-up or kick was
//! lost on NATS, or with no NATS at all. Only those feeds read the store, so an idle app costs
//! nothing but its row in that read. Local writes and NATS wake a feed at once; this is only the
//! fallback that bounds how late a lost wake-up or kick arrives.
//!
//! When the read fails, every feed reads its own change log (as if each were polled), so a
//! partial outage (one shard down) delays no other app's changes; kicks are reloaded once the
//! read works again and shows what moved.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use portrait_store::{AppHead, Store};
use tokio_util::sync::CancellationToken;

use super::hub::Feeds;

/// Polls every app's head every `every` until `stop`, and hands each feed its app's.
pub(super) async fn run(
    feeds: Feeds,
    store: Arc<dyn Store>,
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
            heads = store.app_heads() => heads,
            () = stop.cancelled() => return,
        };
        let feeds: Vec<_> = crate::sync::read(&feeds).values().cloned().collect();
        match heads {
            Ok(heads) => {
                if std::mem::take(&mut failing) {
                    tracing::info!("push: the apps' heads are readable again");
                }
                let heads: HashMap<_, _> = heads.into_iter().map(|h| (h.app, h)).collect();
                for feed in feeds {
                    let app = feed.app();
                    let never_written = AppHead {
                        app,
                        version: 0,
                        kicks: 0,
                    };
                    feed.observe(heads.get(&app).copied().unwrap_or(never_written));
                }
            }
            Err(e) => {
                if std::mem::replace(&mut failing, true) {
                    tracing::debug!(error = %e, "push: still cannot read the apps' heads");
                } else {
                    tracing::warn!(error = %e, "push: cannot read the apps' heads; every feed reads its change log until they are readable");
                }
                metrics::counter!("portrait_push_feed_errors_total").increment(1);
                for feed in feeds {
                    feed.wake();
                }
            }
        }
    }
}
