//! Counters that the cores add to without sharing a line: [`Striped`].
//!
//! **Why.** A `metrics` counter is one atomic (two with the Prometheus recorder, which also
//! bumps a generation), written by every core that counts: each increment waits for the line
//! to come over from the core that wrote it last. A read that misses the read cache counts
//! three times (a miss, a profile not admitted, a read by the walk); under W1 at 10M accounts,
//! where nine reads in ten miss, those increments took 0.25–0.32 µs a request against 0.1 at
//! 1M; striped, with the requests' own counter, 0.06 (`perf`, BENCHMARKS.md "session 23").
//!
//! **How.** A [`Striped`] counter keeps one slot per stripe, each on lines of its own, and a
//! thread adds to the slot of its stripe (threads take stripes in turn). The counter the
//! recorder shows is brought up to the sum by [`flush`], which the node calls before it
//! renders `/metrics`, so a scrape sees every increment made before it, as before; by a
//! counter's drop; and every [`FLUSH_EVERY`] by a thread of its own, for a program that embeds
//! the store with a recorder of its own and never renders.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, Weak};

/// How often the flushing thread brings every counter up to date.
pub const FLUSH_EVERY: std::time::Duration = std::time::Duration::from_secs(1);

/// Stripes per counter (a node's runtime has a worker per core; other threads count rarely).
const STRIPES: usize = 8;

/// One stripe's count, on two lines of its own (Intel's adjacent-line prefetcher fetches lines
/// in pairs).
#[repr(align(128))]
#[derive(Default)]
struct Slot(AtomicU64);

/// A counter whose increments stay on the counting core's lines (see the module docs).
pub struct Striped {
    slots: [Slot; STRIPES],
    counter: metrics::Counter,
    /// How much of the sum `counter` has been given.
    flushed: Mutex<u64>,
}

/// Every live striped counter, for [`flush`].
static ALL: Mutex<Vec<Weak<Striped>>> = Mutex::new(Vec::new());

/// The stripe the next thread to count takes.
static NEXT: AtomicUsize = AtomicUsize::new(0);

thread_local! {
    static STRIPE: usize = NEXT.fetch_add(1, Ordering::Relaxed) % STRIPES;
}

impl Striped {
    /// A striped counter that adds up into `counter` (the first starts the flushing thread).
    pub fn new(counter: metrics::Counter) -> Arc<Striped> {
        static FLUSHING: std::sync::Once = std::sync::Once::new();
        FLUSHING.call_once(|| {
            // (Without the thread, a scrape still flushes; only an embedder's recorder waits.)
            let _ = std::thread::Builder::new()
                .name("metrics-flush".into())
                .spawn(|| loop {
                    std::thread::sleep(FLUSH_EVERY);
                    flush();
                });
        });
        let striped = Arc::new(Striped {
            slots: Default::default(),
            counter,
            flushed: Mutex::new(0),
        });
        let mut all = ALL.lock().expect("striped counters lock");
        all.retain(|c| c.strong_count() > 0);
        all.push(Arc::downgrade(&striped));
        striped
    }

    /// Adds `n`.
    pub fn increment(&self, n: u64) {
        let stripe = STRIPE.with(|s| *s);
        self.slots[stripe].0.fetch_add(n, Ordering::Relaxed);
    }

    /// The sum of the stripes.
    fn sum(&self) -> u64 {
        self.slots.iter().fold(0, |sum, slot| {
            sum.wrapping_add(slot.0.load(Ordering::Relaxed))
        })
    }

    /// Brings the recorder's counter up to the sum of the stripes.
    fn flush(&self) {
        let mut flushed = self.flushed.lock().expect("striped counter lock");
        let sum = self.sum();
        let new = sum.wrapping_sub(*flushed);
        if new > 0 {
            self.counter.increment(new);
            *flushed = sum;
        }
    }
}

impl std::fmt::Debug for Striped {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Striped").field("sum", &self.sum()).finish()
    }
}

impl Drop for Striped {
    fn drop(&mut self) {
        self.flush();
    }
}

/// Brings every striped counter's recorder counter up to date: before `/metrics` is rendered.
pub fn flush() {
    let live: Vec<Arc<Striped>> = ALL
        .lock()
        .expect("striped counters lock")
        .iter()
        .filter_map(Weak::upgrade)
        .collect();
    for counter in live {
        counter.flush();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Increments from many threads, each on its stripe, all reach the recorder's counter at a
    /// flush, and none twice; a counter dropped between flushes hands over what it had.
    #[test]
    fn every_increment_reaches_the_recorder_once() {
        fn recorded() -> (metrics::Counter, Arc<AtomicU64>) {
            let value = Arc::new(AtomicU64::new(0));
            (metrics::Counter::from_arc(value.clone()), value)
        }
        let (kept_counter, kept_value) = recorded();
        let (dropped_counter, dropped_value) = recorded();
        let kept = Striped::new(kept_counter);
        let dropped = Striped::new(dropped_counter);
        std::thread::scope(|s| {
            for t in 0..12u64 {
                let (kept, dropped) = (&kept, &dropped);
                s.spawn(move || {
                    for _ in 0..1000 {
                        kept.increment(t + 1);
                    }
                    dropped.increment(1);
                });
            }
        });
        let value = |v: &AtomicU64| v.load(Ordering::Relaxed);
        // (The flushing thread may flush at any time too: the sums are the same.)
        flush();
        assert_eq!(value(&kept_value), 78_000);
        kept.increment(5);
        flush();
        flush();
        assert_eq!(value(&kept_value), 78_005);
        let before = value(&dropped_value);
        dropped.increment(2);
        drop(dropped);
        assert_eq!(value(&dropped_value), before + 2);
        assert_eq!(before, 12);
    }

    /// Counts reach a recorder that no one scrapes, within a few [`FLUSH_EVERY`].
    #[test]
    fn counts_reach_the_recorder_without_a_scrape() {
        let value = Arc::new(AtomicU64::new(0));
        let counter = Striped::new(metrics::Counter::from_arc(value.clone()));
        counter.increment(3);
        let deadline = std::time::Instant::now() + 5 * FLUSH_EVERY;
        while value.load(Ordering::Relaxed) != 3 {
            assert!(std::time::Instant::now() < deadline, "never flushed");
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
    }
}
