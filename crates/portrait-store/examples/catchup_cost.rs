//! The store work of one WebSocket catch-up (a `subscribe` with `since`) of a few accounts,
//! before and after issue #15 (defect 5), on an existing database: the old path pages through
//! the app's whole log after `since` with `changes_since` (500 a page) and keeps the accounts'
//! changes; the new one reads only theirs with `changes_of`.
//!
//! ```sh
//! cargo run --release -p portrait-store --example catchup_cost -- \
//!     sqlite:///path/to/portrait.db APP PREFIX COUNT [OPS] [ACCOUNTS]
//! ```
//!
//! Accounts are `<PREFIX><N>`, N < COUNT, spread over the log as `portrait-bench catchup` picks
//! them. Prints p50 / p99 of each path over OPS catch-ups (default 50) of ACCOUNTS accounts
//! (default 3), with `since` 0.

use std::time::{Duration, Instant};

use portrait_core::Identifier;
use portrait_store::{AppId, Change, Store};

/// The page size of the server's catch-up (`portrait_server::push::PAGE`).
const PAGE: usize = 500;

async fn old_path(store: &dyn Store, app: AppId, users: &[Identifier]) -> Vec<Change> {
    let (mut got, mut pos) = (Vec::new(), 0);
    loop {
        let page = store.changes_since(app, pos, PAGE).await.unwrap();
        let n = page.len();
        for c in page {
            pos = c.version;
            if users.iter().any(|u| u.as_str() == c.user) {
                got.push(c);
            }
        }
        if n < PAGE {
            return got;
        }
    }
}

async fn new_path(store: &dyn Store, app: AppId, users: &[Identifier]) -> Vec<Change> {
    let (mut got, mut pos) = (Vec::new(), 0);
    loop {
        let page = store
            .changes_of(app, users, pos, PAGE)
            .await
            .unwrap()
            .changes;
        let n = page.len();
        if let Some(last) = page.last() {
            pos = last.version;
        }
        got.extend(page);
        if n < PAGE {
            return got;
        }
    }
}

fn summary(mut times: Vec<Duration>) -> String {
    times.sort();
    let pick = |q: f64| times[((times.len() as f64 * q).ceil() as usize).clamp(1, times.len()) - 1];
    format!(
        "p50 {:.3} ms, p99 {:.3} ms",
        pick(0.5).as_secs_f64() * 1000.0,
        pick(0.99).as_secs_f64() * 1000.0
    )
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [url, app, prefix, count, rest @ ..] = args.as_slice() else {
        panic!("usage: catchup_cost STORE_URL APP PREFIX COUNT [OPS] [ACCOUNTS]");
    };
    let app: AppId = app.parse().unwrap();
    let count: usize = count.parse().unwrap();
    let ops: usize = rest.first().map_or(50, |s| s.parse().unwrap());
    let accounts: usize = rest.get(1).map_or(3, |s| s.parse().unwrap());
    let store = portrait_store::open(url).await.unwrap();
    let log = store.current_version(app).await.unwrap();
    let (mut old, mut new) = (Vec::new(), Vec::new());
    for op in 0..ops {
        let users: Vec<Identifier> = (0..accounts)
            .map(|k| {
                let i = (op * 7919 + k * (count / accounts).max(1)) % count;
                Identifier::parse(&format!("{prefix}{}", i.max(1))).unwrap()
            })
            .collect();
        let started = Instant::now();
        let a = old_path(&*store, app, &users).await;
        old.push(started.elapsed());
        let started = Instant::now();
        let b = new_path(&*store, app, &users).await;
        new.push(started.elapsed());
        assert_eq!(a, b, "both paths read the same changes");
    }
    println!(
        "catch-up of {accounts} accounts from since 0, app log at version {log}, {ops} ops: \
         old (changes_since, whole log) {}; new (changes_of) {}",
        summary(old),
        summary(new)
    );
    store.close().await;
}
