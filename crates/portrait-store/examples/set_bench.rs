//! `set_profile` throughput and latency of the store backends, without HTTP: many concurrent
//! callers write random accounts, and the table shows writes/s and latency percentiles per store
//! (issue #4: portrait_set on PostgreSQL vs the embedded store).
//!
//! ```sh
//! cargo run --release -p portrait-store --example set_bench -- \
//!     [--store postgres|sqlite|both] [--tasks 64] [--writes 20000] [--accounts 10000] [--apps 1]
//! ```
//!
//! PostgreSQL: a fresh schema in the database at `PORTRAIT_TEST_PG_URL` (default
//! `postgres://postgres@127.0.0.1:5432/test`), as the tests use, dropped at the end. SQLite: a
//! temporary directory.
//! Each write sets 3 fields (Nick, Level, a custom string) of a random account of a random app,
//! like the W3 workload of `bench/run.sh`. After the run the bench checks that every app's
//! version is exactly its imports plus its acknowledged writes.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use portrait_core::schema::StandardTag;
use portrait_core::{Identifier, ProfileValue, Tag};
use portrait_store::postgres::PgStore;
use portrait_store::{testkit, AppId, NewAccount, Store};

const FIRST_APP: AppId = 1_400_000_000;

struct Args {
    stores: Vec<&'static str>,
    tasks: usize,
    writes: u64,
    accounts: u64,
    apps: u64,
}

fn parse_args() -> Args {
    let mut args = Args {
        stores: vec!["postgres", "sqlite"],
        tasks: 64,
        writes: 20_000,
        accounts: 10_000,
        apps: 1,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let value = it.next().unwrap_or_else(|| panic!("{flag} needs a value"));
        let number = || -> u64 {
            value
                .parse()
                .unwrap_or_else(|e| panic!("{flag} {value}: {e}"))
        };
        match flag.as_str() {
            "--store" => {
                args.stores = match value.as_str() {
                    "postgres" => vec!["postgres"],
                    "sqlite" => vec!["sqlite"],
                    "both" => vec!["postgres", "sqlite"],
                    other => panic!("--store {other}: use postgres, sqlite or both"),
                }
            }
            "--tasks" => args.tasks = number() as usize,
            "--writes" => args.writes = number(),
            "--accounts" => args.accounts = number(),
            "--apps" => args.apps = number(),
            other => panic!("unknown flag {other}"),
        }
    }
    assert!(args.tasks > 0 && args.accounts > 0 && args.apps > 0);
    args
}

/// A tiny xorshift generator: the bench needs spread, not quality.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

fn user(n: u64) -> Identifier {
    Identifier::parse(&format!("u{n}")).expect("a valid UserID")
}

struct Outcome {
    elapsed: Duration,
    latencies: Vec<Duration>,
}

async fn run(store: Arc<dyn Store>, args: &Args) -> Outcome {
    for a in 0..args.apps {
        let accounts: Vec<NewAccount> = (0..args.accounts)
            .map(|n| NewAccount::with_nick_face(user(n), Some(format!("user {n}")), None))
            .collect();
        for chunk in accounts.chunks(1000) {
            store
                .import_accounts(FIRST_APP + a, chunk, "administrator".into())
                .await
                .expect("import the accounts");
        }
    }
    let next = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let workers: Vec<_> = (0..args.tasks)
        .map(|t| {
            let (store, next) = (store.clone(), next.clone());
            let (writes, accounts, apps) = (args.writes, args.accounts, args.apps);
            tokio::spawn(async move {
                let mut rng = Rng(0x9E37_79B9_7F4A_7C15 ^ (t as u64 + 1).wrapping_mul(0x2545_F491));
                let mut latencies = Vec::new();
                let mut per_app = vec![0u64; apps as usize];
                while next.fetch_add(1, Ordering::Relaxed) < writes {
                    let app = rng.below(apps);
                    let who = user(rng.below(accounts));
                    let i = rng.below(1_000_000);
                    let items = [
                        (
                            Tag::Standard(StandardTag::Nick),
                            ProfileValue::Str(format!("n{i}")),
                        ),
                        (
                            Tag::Standard(StandardTag::Level),
                            ProfileValue::Int(i % 100),
                        ),
                        (
                            Tag::Custom("Tag_Profile_Custom_Hobby".into()),
                            ProfileValue::Str(format!("h{i}")),
                        ),
                    ];
                    let at = Instant::now();
                    store
                        .set_profile(FIRST_APP + app, &who, &items, (who.as_str()).into())
                        .await
                        .expect("set_profile");
                    latencies.push(at.elapsed());
                    per_app[app as usize] += 1;
                }
                (latencies, per_app)
            })
        })
        .collect();
    let mut latencies = Vec::with_capacity(args.writes as usize);
    let mut per_app = vec![0u64; args.apps as usize];
    for w in workers {
        let (l, p) = w.await.expect("a bench task");
        latencies.extend(l);
        for (total, n) in per_app.iter_mut().zip(p) {
            *total += n;
        }
    }
    let elapsed = started.elapsed();
    for (a, n) in per_app.iter().enumerate() {
        let version = store.current_version(FIRST_APP + a as u64).await.unwrap();
        let imports = args.accounts;
        assert_eq!(
            version,
            imports + n,
            "app {a}: {imports} imports + {n} acknowledged writes"
        );
    }
    latencies.sort_unstable();
    Outcome { elapsed, latencies }
}

/// Drops the bench's schema from the shared test database.
async fn drop_schema(schema: &str) {
    let options = PgStore::connect_options(&testkit::test_pg_url()).unwrap();
    let mut conn: sqlx::PgConnection = sqlx::ConnectOptions::connect(&options)
        .await
        .expect("connect to drop the bench schema");
    sqlx::query(&format!("drop schema {schema} cascade"))
        .execute(&mut conn)
        .await
        .expect("drop the bench schema");
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len()) - 1;
    sorted[i]
}

fn ms(d: Duration) -> String {
    format!("{:.2}", d.as_secs_f64() * 1000.0)
}

#[tokio::main]
async fn main() {
    let args = parse_args();
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    let load: Vec<&str> = load.split_whitespace().take(3).collect();
    println!(
        "set_profile bench: {} tasks, {} writes, {} accounts per app, {} app(s); 3 fields per write",
        args.tasks, args.writes, args.accounts, args.apps
    );
    println!("load average before: {}", load.join(" "));
    println!();
    println!("| store | writes/s | p50 ms | p90 ms | p99 ms | max ms |");
    println!("|---|---|---|---|---|---|");
    for &kind in &args.stores {
        let (store, _dir, schema): (Arc<dyn Store>, _, _) = match kind {
            "postgres" => {
                let url = testkit::fresh_postgres_url().await;
                let schema = url
                    .rsplit_once("search_path%3D")
                    .map(|(_, s)| s.to_owned())
                    .expect("the test URL names its schema");
                let store = PgStore::open(&url).await.expect("open the bench store");
                (Arc::new(store), None, Some(schema))
            }
            _ => {
                let (store, dir) = testkit::fresh_sqlite().await;
                (store, Some(dir), None)
            }
        };
        let out = run(store.clone(), &args).await;
        store.close().await;
        if let Some(schema) = schema {
            drop_schema(&schema).await;
        }
        let l = &out.latencies;
        println!(
            "| {kind} | {:.0} | {} | {} | {} | {} |",
            l.len() as f64 / out.elapsed.as_secs_f64(),
            ms(percentile(l, 0.50)),
            ms(percentile(l, 0.90)),
            ms(percentile(l, 0.99)),
            ms(*l.last().expect("at least one write")),
        );
    }
    let after = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    let after: Vec<&str> = after.split_whitespace().take(3).collect();
    println!();
    println!("load average after: {}", after.join(" "));
}
