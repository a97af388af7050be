//! Change-log retention: every change is kept for `[store] change_retention_hours`, then pruned.
//!
//! The change log serves two readers: the catch-up of `/v1/ws` (`since=<cursor>`) and webhook
//! delivery. Kept forever it grows with every write (about 1 GiB per 10 million sets), so one
//! [`Pruner`] per app deletes, once a minute, every change made before the retention window —
//! but never one the app's webhook has not delivered yet (its cursor bounds the prune). The store
//! deletes in chunks of [`CHUNK`] (one transaction each, so writes interleave) and moves the
//! app's [`PRUNED`](portrait_store::PRUNED) cursor; a client whose catch-up starts before it is
//! told so (error 49005) and re-reads the profiles it shows. Profiles and versions are never
//! touched.
//!
//! Nodes sharing a database take the app's `prune` lease, so one of them prunes; should two
//! prune at once, the store's cursor still only moves forward.
//!
//! A round first reads the app's oldest change, without the lease: while it is younger than the
//! retention nothing can be pruned, and the pruner skips its rounds until it would be old enough
//! (at most [`RECHECK`]). So an app whose log holds nothing old costs nothing most minutes: one
//! read per node when its oldest change ages out, and at least once every [`RECHECK`].

use std::sync::Arc;
use std::time::Duration;

use portrait_store::{AppId, Result, Store};
use tokio_util::sync::CancellationToken;

/// How often each app's change log is pruned (the first time right after start); twice per
/// retention window if that is shorter, but not more often than every [`MIN_EVERY`].
pub const EVERY: Duration = Duration::from_secs(60);
/// The shortest pruning interval.
pub const MIN_EVERY: Duration = Duration::from_millis(100);
/// Most changes deleted in one store call (one transaction).
pub const CHUNK: usize = 5_000;
/// Longest a pruner goes without looking at the app's oldest change when it was younger than the
/// retention: changes restored into the app with older times are pruned within this.
pub const RECHECK: Duration = Duration::from_secs(3600);
/// The store lease that picks the one node pruning an app.
pub const LEASE: &str = "prune";

/// Prunes one app's change log every [`EVERY`].
pub struct Pruner {
    app: AppId,
    store: Arc<dyn Store>,
    keep: Duration,
    /// The app has a webhook: only changes it has delivered may go.
    webhook: bool,
    holder: String,
}

impl Pruner {
    /// A pruner keeping `keep` of `app`'s changes.
    pub fn new(app: AppId, store: Arc<dyn Store>, keep: Duration, webhook: bool) -> Self {
        Self {
            app,
            store,
            keep,
            webhook,
            holder: crate::lease::holder(),
        }
    }

    /// Runs until `stop`. Failures are logged and retried at the next round.
    pub async fn run(self, stop: CancellationToken) {
        let every = EVERY.min(self.keep / 2).max(MIN_EVERY);
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let lease_ms = u64::try_from(every.as_millis() * 2).unwrap_or(u64::MAX);
        let keep_ms = i64::try_from(self.keep.as_millis()).unwrap_or(i64::MAX);
        let recheck_ms = i64::try_from(RECHECK.as_millis()).unwrap_or(i64::MAX);
        // Until then, no change in the log is older than the retention: rounds cost nothing.
        let mut quiet_until = i64::MIN;
        loop {
            tokio::select! {
                () = stop.cancelled() => return,
                _ = tick.tick() => {}
            }
            let now = portrait_store::now_ms();
            if now < quiet_until {
                continue;
            }
            // The oldest change first, without the lease: if it is younger than the retention,
            // so is every other (changes are made in version order), and so is every change
            // made later.
            match self.store.changes_since(self.app, 0, 1).await {
                Ok(oldest) => {
                    let due = oldest
                        .first()
                        .map_or(now, |c| c.at_ms)
                        .saturating_add(keep_ms);
                    if due > now {
                        quiet_until = due.min(now.saturating_add(recheck_ms));
                        continue;
                    }
                }
                Err(e) => {
                    tracing::warn!(app = self.app, error = %e, "change-log retention: cannot read the oldest change");
                    continue;
                }
            }
            match self
                .store
                .lease(self.app, LEASE, &self.holder, lease_ms)
                .await
            {
                Ok(true) => {}
                Ok(false) => continue, // another node prunes this app
                Err(e) => {
                    tracing::warn!(app = self.app, error = %e, "change-log retention: lease failed");
                    continue;
                }
            }
            let cutoff = now.saturating_sub(keep_ms);
            let pruned = tokio::select! {
                () = stop.cancelled() => return,
                pruned = prune(self.store.as_ref(), self.app, cutoff, self.webhook) => pruned,
            };
            match pruned {
                Ok(0) => {}
                Ok(n) => {
                    tracing::info!(app = self.app, deleted = n, "pruned the change log");
                    metrics::counter!("portrait_changes_pruned_total", "app" => self.app.to_string())
                        .increment(n as u64);
                }
                Err(e) => tracing::warn!(app = self.app, error = %e, "change-log retention failed"),
            }
        }
    }
}

/// Deletes `app`'s changes made before `cutoff_ms` (Unix milliseconds), and with `webhook` only
/// those up to the webhook's cursor (none before the webhook has one). Returns how many went.
///
/// # Errors
/// Storage failures (what was deleted before stays deleted, and the cursor says so).
pub async fn prune(store: &dyn Store, app: AppId, cutoff_ms: i64, webhook: bool) -> Result<usize> {
    let mut through = last_before(store, app, cutoff_ms).await?;
    if webhook {
        let delivered = store.cursor(app, crate::webhook::CURSOR).await?;
        through = through.min(delivered.unwrap_or(0));
    }
    if through == 0 {
        return Ok(0);
    }
    let mut total = 0;
    loop {
        let n = store.prune_changes(app, through, CHUNK).await?;
        total += n;
        if n < CHUNK {
            return Ok(total);
        }
        tokio::task::yield_now().await;
    }
}

/// The highest version in `app`'s change log made before `cutoff_ms` (0 if none): a binary search
/// over versions by point reads, as changes are made in version order.
async fn last_before(store: &dyn Store, app: AppId, cutoff_ms: i64) -> Result<u64> {
    let Some(oldest) = store.changes_since(app, 0, 1).await?.pop() else {
        return Ok(0);
    };
    if oldest.at_ms >= cutoff_ms {
        return Ok(0);
    }
    // `lo` is a change made before the cutoff; no change at or after `hi` is known to be.
    let mut lo = oldest.version;
    let mut hi = store.current_version(app).await?.max(lo) + 1;
    while hi - lo > 1 {
        let mid = lo + (hi - lo) / 2;
        match store.changes_since(app, mid - 1, 1).await?.pop() {
            Some(c) if c.version < hi && c.at_ms < cutoff_ms => lo = c.version,
            _ => hi = mid,
        }
    }
    Ok(lo)
}
