//! The acknowledgements of this node's invalidations, and the writes waiting for them.
//!
//! Another node acknowledges "everything of yours up to number n" once it has applied it.
//! A write waits for each node it must hear from in turn, woken only by an acknowledgement that
//! covers it (not by every acknowledgement that arrives), or by the time after which that node
//! no longer needs to acknowledge it.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;
use std::time::Duration;

use tokio::sync::oneshot;

/// Acknowledgements received, and writes waiting.
#[derive(Default)]
pub(super) struct Acks(Mutex<Inner>);

#[derive(Default)]
struct Inner {
    /// The last number each node acknowledged.
    last: HashMap<String, u64>,
    /// Per node, the writes waiting for it, by the number they need acknowledged.
    waiting: HashMap<String, BTreeMap<u64, Vec<oneshot::Sender<()>>>>,
}

impl Acks {
    /// `node` applied everything of this node's up to `seq` (`u64::MAX`: it left, and will
    /// never answer from its cache again).
    pub(super) fn arrived(&self, node: &str, seq: u64) {
        let mut inner = crate::sync::lock(&self.0);
        let last = inner.last.entry(node.to_owned()).or_insert(0);
        *last = (*last).max(seq);
        let Some(waiting) = inner.waiting.get_mut(node) else {
            return;
        };
        let later = match seq.checked_add(1) {
            Some(next) => waiting.split_off(&next),
            None => BTreeMap::new(),
        };
        for (_, writes) in std::mem::replace(waiting, later) {
            for w in writes {
                let _ = w.send(());
            }
        }
        if inner.waiting.get(node).is_some_and(BTreeMap::is_empty) {
            inner.waiting.remove(node);
        }
    }

    /// Waits until each of `waits` (a node, and the time, Unix ms by `now`, after which it need
    /// not acknowledge) acknowledged `seq` or reached its time; returns how many reached it.
    pub(super) async fn wait(
        &self,
        seq: u64,
        waits: &[(String, i64)],
        now: impl Fn() -> i64,
    ) -> u64 {
        let mut lapsed = 0;
        for (node, until) in waits {
            let left = *until - now();
            let answer = {
                let mut inner = crate::sync::lock(&self.0);
                if inner.last.get(node).is_some_and(|a| *a >= seq) {
                    continue;
                }
                if left <= 0 {
                    lapsed += 1;
                    continue;
                }
                let (tx, rx) = oneshot::channel();
                let waiting = inner.waiting.entry(node.clone()).or_default();
                waiting.entry(seq).or_default().push(tx);
                rx
            };
            let deadline = tokio::time::Instant::now() + Duration::from_millis(left.unsigned_abs());
            match tokio::time::timeout_at(deadline, answer).await {
                Ok(Ok(())) => continue,
                // A node forgotten meanwhile (see `retain`) dropped the sender: wait out its time.
                Ok(Err(_)) => {
                    tokio::time::sleep_until(deadline).await;
                    lapsed += 1;
                }
                Err(_) => lapsed += 1,
            }
            self.forget_closed(node, seq);
        }
        lapsed
    }

    /// Drops the waiters of `node` for `seq` that stopped waiting (a node that never answers
    /// would otherwise keep them until it is forgotten).
    fn forget_closed(&self, node: &str, seq: u64) {
        let mut inner = crate::sync::lock(&self.0);
        let Some(waiting) = inner.waiting.get_mut(node) else {
            return;
        };
        if let Some(writes) = waiting.get_mut(&seq) {
            writes.retain(|w| !w.is_closed());
            if writes.is_empty() {
                waiting.remove(&seq);
            }
        }
        if waiting.is_empty() {
            inner.waiting.remove(node);
        }
    }

    /// Forgets the nodes for which `keep` is false (their waiting writes wait out their time).
    pub(super) fn retain(&self, keep: impl Fn(&str) -> bool) {
        let mut inner = crate::sync::lock(&self.0);
        inner.last.retain(|n, _| keep(n));
        inner.waiting.retain(|n, _| keep(n));
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::Instant;

    use super::*;

    fn clock() -> impl Fn() -> i64 {
        let start = Instant::now();
        move || i64::try_from(start.elapsed().as_millis()).unwrap()
    }

    /// A write waits until every node acknowledged its number (a later number covers it), and
    /// no longer than each node's time; a node that left counts as having acknowledged all.
    #[tokio::test]
    async fn a_write_waits_for_each_node_until_covered_or_its_time() {
        let acks = Arc::new(Acks::default());
        acks.arrived("a", 5);
        let now = clock();
        assert_eq!(
            acks.wait(5, &[("a".into(), 10_000)], &now).await,
            0,
            "already acknowledged"
        );

        let waits: Vec<(String, i64)> = vec![("a".into(), 10_000), ("b".into(), 10_000)];
        let waiting = {
            let acks = acks.clone();
            tokio::spawn(async move { acks.wait(7, &waits, clock()).await })
        };
        tokio::time::sleep(Duration::from_millis(50)).await;
        acks.arrived("a", 6);
        acks.arrived("b", 9);
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(!waiting.is_finished(), "a has acknowledged only 6 of 7");
        acks.arrived("a", 8);
        assert_eq!(waiting.await.unwrap(), 0);

        let started = Instant::now();
        let lapsed = acks
            .wait(9, &[("a".into(), 150), ("c".into(), 150)], clock())
            .await;
        assert_eq!(lapsed, 2, "neither acknowledged 9");
        assert!(
            crate::sync::lock(&acks.0).waiting.is_empty(),
            "writes that stopped waiting leave nothing behind"
        );
        let took = started.elapsed();
        assert!(
            took >= Duration::from_millis(140) && took < Duration::from_secs(2),
            "{took:?}"
        );

        let waits: Vec<(String, i64)> = vec![("c".into(), 10_000)];
        let waiting = {
            let acks = acks.clone();
            tokio::spawn(async move { acks.wait(10, &waits, clock()).await })
        };
        tokio::time::sleep(Duration::from_millis(20)).await;
        acks.arrived("c", u64::MAX);
        assert_eq!(waiting.await.unwrap(), 0, "c left: nothing to wait for");
        assert_eq!(acks.wait(11, &[("c".into(), 10_000)], clock()).await, 0);
    }

    /// A node forgotten while a write waits for it is waited for until its time, not less.
    #[tokio::test]
    async fn a_forgotten_node_is_waited_for_until_its_time() {
        let acks = Arc::new(Acks::default());
        let waits: Vec<(String, i64)> = vec![("a".into(), 200)];
        let started = Instant::now();
        let waiting = {
            let acks = acks.clone();
            tokio::spawn(async move { acks.wait(1, &waits, clock()).await })
        };
        tokio::time::sleep(Duration::from_millis(20)).await;
        acks.retain(|_| false);
        assert_eq!(waiting.await.unwrap(), 1);
        assert!(started.elapsed() >= Duration::from_millis(190));
        assert!(crate::sync::lock(&acks.0).waiting.is_empty());
    }
}
