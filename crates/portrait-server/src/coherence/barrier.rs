//! Barrier rounds: proof that every message the NATS server had routed to this node before a
//! moment has been handled.
//!
//! A round publishes a marker on this node's own subject and ends when the marker comes back.
//! The server delivers a subscriber's messages in the order it routed them, and the subscriber
//! task drains every invalidation received before it handles the marker, so when the round ends
//! every invalidation the server held for this node when the marker was published is applied.
//! Rounds run one at a time; a caller needs a round that *starts* after it asked, and every
//! caller waiting meanwhile shares that round, so under load one round trip serves many reads.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::sync::{watch, Notify};

/// The rounds' shared state; [`Barrier::run`] is the task that runs them.
pub(super) struct Barrier {
    /// The last round started.
    started: AtomicU64,
    /// The highest round some caller needs.
    wanted: AtomicU64,
    wake: Notify,
    /// The last round finished, and whether its marker came back in time on the same connection.
    done: watch::Sender<(u64, bool)>,
    /// The highest round whose marker the subscriber has handled.
    arrived: watch::Sender<u64>,
}

impl Barrier {
    pub(super) fn new() -> Barrier {
        Barrier {
            started: AtomicU64::new(0),
            wanted: AtomicU64::new(0),
            wake: Notify::new(),
            done: watch::Sender::new((0, false)),
            arrived: watch::Sender::new(0),
        }
    }

    /// Waits for a round that starts after this call; whether it succeeded.
    pub(super) async fn pass(&self) -> bool {
        let mut done = self.done.subscribe();
        let need = self.started.load(Ordering::SeqCst) + 1;
        self.wanted.fetch_max(need, Ordering::SeqCst);
        self.wake.notify_one();
        loop {
            let (round, ok) = *done.borrow_and_update();
            if round >= need {
                // A later round also started after this call.
                return ok;
            }
            if done.changed().await.is_err() {
                return false;
            }
        }
    }

    /// The subscriber handled the marker of `round`.
    pub(super) fn arrived(&self, round: u64) {
        self.arrived.send_if_modified(|seen| {
            let later = round > *seen;
            if later {
                *seen = round;
            }
            later
        });
    }

    /// Runs rounds while callers want them: `publish(round)` sends the marker and returns the
    /// connection's generation (`None`: not sent); a round succeeds if the marker comes back
    /// within `timeout` and `generation()` has not changed meanwhile.
    pub(super) async fn run<P, F>(
        &self,
        timeout: Duration,
        mut publish: P,
        generation: impl Fn() -> u64,
    ) where
        P: FnMut(u64) -> F,
        F: std::future::Future<Output = Option<u64>>,
    {
        let mut arrived = self.arrived.subscribe();
        loop {
            while self.wanted.load(Ordering::SeqCst) <= self.started.load(Ordering::SeqCst) {
                self.wake.notified().await;
            }
            let round = self.started.load(Ordering::SeqCst) + 1;
            self.started.store(round, Ordering::SeqCst);
            let ok = match publish(round).await {
                None => false,
                Some(generation_before) => {
                    let back = tokio::time::timeout(timeout, arrived.wait_for(|a| *a >= round));
                    matches!(back.await, Ok(Ok(_))) && generation() == generation_before
                }
            };
            if !ok {
                metrics::counter!("portrait_coherence_barrier_failures_total").increment(1);
            }
            self.done.send_replace((round, ok));
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    /// Rounds answer every waiting caller, a caller never takes a round that began before it
    /// asked, and a marker that never comes back fails the round.
    #[tokio::test]
    async fn callers_share_rounds_that_start_after_they_ask() {
        let barrier = Arc::new(Barrier::new());
        let published = Arc::new(std::sync::Mutex::new(Vec::new()));
        let (b, p) = (barrier.clone(), published.clone());
        let runner = tokio::spawn(async move {
            let echo = b.clone();
            b.run(
                Duration::from_millis(100),
                move |round| {
                    p.lock().unwrap().push(round);
                    let echo = echo.clone();
                    async move {
                        // Round 3's marker is lost.
                        if round != 3 {
                            let e = echo.clone();
                            tokio::spawn(async move {
                                tokio::time::sleep(Duration::from_millis(5)).await;
                                e.arrived(round);
                            });
                        }
                        Some(7)
                    }
                },
                || 7,
            )
            .await;
        });
        let waiters: Vec<_> = (0..20)
            .map(|_| {
                let b = barrier.clone();
                tokio::spawn(async move { b.pass().await })
            })
            .collect();
        for w in waiters {
            assert!(w.await.unwrap());
        }
        let rounds = published.lock().unwrap().len();
        assert!(rounds <= 2, "20 callers shared {rounds} rounds");
        // Next: rounds continue from there; make round 3 the one that is lost.
        while barrier.started.load(Ordering::SeqCst) < 2 {
            assert!(barrier.pass().await);
        }
        assert!(!barrier.pass().await, "round 3's marker never came back");
        assert!(barrier.pass().await, "round 4 works again");
        runner.abort();
    }
}
