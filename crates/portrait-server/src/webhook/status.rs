//! What a node's webhook workers show of themselves (`GET /admin/v1/apps/{sdkappid}/webhook`):
//! per app, whether this node holds the delivery lease, the cursor it keeps in memory, and its
//! latest failed attempts in a bounded ring ([`MAX_FAILURES`]). A worker writes its app's
//! [`Status`]; the operator API reads it. One [`Statuses`] per node (in the push hub), kept per
//! app across worker restarts.
//!
//! What must not live here: delivery itself (`webhook.rs`, `webhook/delivery.rs`), or reading
//! the store.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};

use portrait_core::operator::WebhookFailure;
use portrait_store::AppId;

/// The most failed attempts kept per app (newest first).
pub const MAX_FAILURES: usize = 20;

/// One app's webhook delivery on this node.
#[derive(Debug, Default)]
pub struct Status {
    /// This node holds the app's delivery lease and delivers.
    delivering: AtomicBool,
    /// The in-memory cursor while delivering (ahead of the stored one by up to a cursor write).
    cursor: AtomicU64,
    /// The latest failed attempts, newest first, at most [`MAX_FAILURES`].
    failures: Mutex<VecDeque<WebhookFailure>>,
}

impl Status {
    /// Records that this node took (`true`) or lost (`false`) the delivery lease.
    pub fn set_delivering(&self, delivering: bool) {
        self.delivering.store(delivering, Ordering::Relaxed);
    }

    /// Whether this node delivers.
    pub fn delivering(&self) -> bool {
        self.delivering.load(Ordering::Relaxed)
    }

    /// Records the in-memory cursor.
    pub fn set_cursor(&self, cursor: u64) {
        self.cursor.store(cursor, Ordering::Relaxed);
    }

    /// The in-memory cursor while delivering, else `None`.
    pub fn cursor(&self) -> Option<u64> {
        self.delivering()
            .then(|| self.cursor.load(Ordering::Relaxed))
    }

    /// Records a failed attempt, dropping the oldest beyond [`MAX_FAILURES`].
    pub fn failed(&self, failure: WebhookFailure) {
        let mut failures = crate::sync::lock(&self.failures);
        failures.push_front(failure);
        failures.truncate(MAX_FAILURES);
    }

    /// The latest failed attempts, newest first.
    pub fn failures(&self) -> Vec<WebhookFailure> {
        crate::sync::lock(&self.failures).iter().cloned().collect()
    }
}

/// Every app's [`Status`] on this node.
#[derive(Debug, Default)]
pub struct Statuses {
    apps: RwLock<HashMap<AppId, Arc<Status>>>,
}

impl Statuses {
    /// The status of `app`, made on first use (for its worker).
    pub fn of(&self, app: AppId) -> Arc<Status> {
        if let Some(s) = self.get(app) {
            return s;
        }
        crate::sync::write(&self.apps)
            .entry(app)
            .or_default()
            .clone()
    }

    /// The status of `app`, if a worker ever ran for it on this node.
    pub fn get(&self, app: AppId) -> Option<Arc<Status>> {
        crate::sync::read(&self.apps).get(&app).cloned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn failure(version: u64) -> WebhookFailure {
        WebhookFailure {
            at_ms: version,
            user_id: "u".into(),
            version,
            error: "HTTP 500".into(),
        }
    }

    #[test]
    fn failures_are_kept_newest_first_and_bounded() {
        let s = Status::default();
        for v in 1..=25 {
            s.failed(failure(v));
        }
        let kept: Vec<u64> = s.failures().iter().map(|f| f.version).collect();
        assert_eq!(kept, (6..=25).rev().collect::<Vec<_>>());
    }

    #[test]
    fn the_cursor_shows_only_while_delivering_and_statuses_are_per_app() {
        let all = Statuses::default();
        assert!(all.get(1).is_none());
        let s = all.of(1);
        s.set_cursor(7);
        assert_eq!(s.cursor(), None);
        s.set_delivering(true);
        assert_eq!(all.of(1).cursor(), Some(7), "the same status");
        assert!(all.of(2).cursor().is_none());
    }
}
