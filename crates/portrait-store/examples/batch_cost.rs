//! The store's cost of one W2 batch (100 random accounts of an app) on an existing database,
//! without HTTP or the read cache: the lookup thread's walk, its answers and SQLite's searches.
//! For changes to the batch path (`sqlite/tree_ahead.rs`, `sqlite/direct.rs`), where the whole
//! benchmark's drift hides a few percent. With SIZE 1, the cost of one W1 read that misses the
//! cache (`sqlite/lookup.rs`'s inline path).
//!
//! ```sh
//! cargo run --release -p portrait-store --example batch_cost -- \
//!     sqlite:///path/to/portrait.db APP ACCOUNTS [BATCHES] [ROUNDS] [SIZE]
//! ```
//!
//! Accounts are `u<N>`, N < ACCOUNTS (as `portrait-bench load` makes them). Each round reads
//! BATCHES batches (default 1,000) one after another; after ROUNDS rounds (default 30; the first
//! warms up and is not counted) it prints the least and the median of the rounds' mean µs per
//! batch of SIZE accounts (default 100) (a shared host's drift slows some rounds, never speeds one up).

use std::time::Instant;

use portrait_core::Identifier;
use portrait_store::Store;

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [url, app, accounts, rest @ ..] = &args[..] else {
        eprintln!(
            "usage: batch_cost sqlite:///path/portrait.db APP ACCOUNTS [BATCHES] [ROUNDS] [SIZE]"
        );
        std::process::exit(2);
    };
    let app: u64 = app.parse().expect("APP");
    let accounts: u64 = accounts.parse().expect("ACCOUNTS");
    let batches: usize = rest.first().map_or(1000, |b| b.parse().expect("BATCHES"));
    let rounds: usize = rest.get(1).map_or(30, |r| r.parse().expect("ROUNDS"));
    let size: usize = rest.get(2).map_or(100, |s| s.parse().expect("SIZE"));
    let store = portrait_store::sqlite::SqliteStore::open(url)
        .await
        .expect("open");
    let mut x = 0x2545_f491_4f6c_dd1du64;
    let mut found = 0usize;
    let mut means = Vec::with_capacity(rounds);
    for round in 0..=rounds {
        let started = Instant::now();
        for _ in 0..batches {
            let users: Vec<Identifier> = (0..size)
                .map(|_| {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    Identifier::parse(&format!("u{}", x % accounts)).expect("an id")
                })
                .collect();
            let got = store.get_profiles_shared(app, &users).await.expect("read");
            found += got.iter().filter(|p| p.is_some()).count();
        }
        let us = started.elapsed().as_secs_f64() * 1e6 / batches as f64;
        if round > 0 {
            means.push(us);
        }
    }
    means.sort_by(f64::total_cmp);
    let (least, median) = (means[0], means[means.len() / 2]);
    println!("µs per batch of {size}: least {least:.2}, median {median:.2}");
    println!("({rounds} rounds of {batches}; {found} profiles found)");
    store.close().await;
}
