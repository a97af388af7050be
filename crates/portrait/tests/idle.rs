//! What an idle deployment costs the database: one `portrait serve` (the real binary) on a
//! PostgreSQL schema of its own with [`APPS`] apps, nothing written, left alone for [`WINDOW`];
//! the store calls it made meanwhile are counted from its `/metrics`
//! (`portrait_store_duration_seconds_count{op}`: every call that reached the database, each at
//! least one statement). docs/scaling.md ("Many apps, idle") quotes the figures.
//!
//! Run it (PostgreSQL at `PORTRAIT_TEST_PG_URL`, default `postgres://postgres@127.0.0.1:5432/test`):
//!
//! ```text
//! cargo test -p portrait --test idle -- --ignored --nocapture
//! ```
//!
//! Ignored by default: it starts 1,000 apps and idles for 10 s. It fails when the node makes more
//! than [`MAX_PER_SECOND`] store calls per second while idle, however many apps it serves. A quick
//! variant (200 apps, 3 s) runs with the other tests.

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use portrait_store::testkit;

/// Apps the node serves.
const APPS: u64 = 1_000;
/// The first app's sdkappid.
const FIRST: u64 = 1_400_100_000;
/// How long the node is left alone while its store calls are counted, unless
/// `PORTRAIT_IDLE_SECS` says otherwise (60 s takes in one round of change-log retention).
/// `PORTRAIT_IDLE_WEBHOOKS=1` gives every app a webhook (idle: never called).
const WINDOW: Duration = Duration::from_secs(10);
/// Most store calls per second an idle node may make, whatever the number of apps: the head
/// poll (one per `push.poll_interval_ms`) and the node's own housekeeping (the app-record sync,
/// retention), with room to spare.
const MAX_PER_SECOND: f64 = 100.0;

/// The store calls made so far, by `op`, read from the node's `/metrics`.
async fn store_calls(base: &str) -> BTreeMap<String, u64> {
    let text = reqwest::get(format!("{base}/metrics"))
        .await
        .expect("GET /metrics")
        .text()
        .await
        .expect("the metrics text");
    let mut calls = BTreeMap::new();
    for line in text.lines() {
        let Some(rest) = line.strip_prefix("portrait_store_duration_seconds_count{") else {
            continue;
        };
        let Some((labels, n)) = rest.split_once("} ") else {
            continue;
        };
        let op = labels
            .split(',')
            .find_map(|l| l.strip_prefix("op=\""))
            .map(|o| o.trim_end_matches('"').to_owned())
            .unwrap_or_default();
        let n: f64 = n.trim().parse().unwrap_or(0.0);
        *calls.entry(op).or_default() += n as u64;
    }
    calls
}

/// Starts a node with `apps` apps (each with a webhook if `webhooks`), lets start-up settle,
/// and prints and returns its store calls per second over `window`.
async fn idle_calls_per_second(apps: u64, window: Duration, webhooks: bool) -> f64 {
    let url = testkit::fresh_postgres_url().await;
    let dir = tempfile::tempdir().unwrap();
    let mut config = format!("[store]\nurl = \"{url}\"\n");
    for app in FIRST..FIRST + apps {
        config.push_str(&format!(
            "\n[[apps]]\nsdkappid = {app}\nkey = \"idle-test-key\"\nadmins = [\"administrator\"]\n"
        ));
        if webhooks {
            // Never called while nothing changes (port 9, discard).
            config.push_str("[apps.webhook]\nurl = \"http://127.0.0.1:9/\"\n");
        }
    }
    let path = dir.path().join("portrait.toml");
    std::fs::write(&path, config).unwrap();
    let mut cmd = common::serve_command(dir.path());
    cmd.arg("--config").arg(&path);
    let node = common::launch(cmd);

    // Let start-up settle (the first rounds of every periodic task).
    tokio::time::sleep(Duration::from_secs(3)).await;
    let before = store_calls(&node.base).await;
    tokio::time::sleep(window).await;
    let after = store_calls(&node.base).await;

    let mut total = 0;
    let with = if webhooks {
        " (each with a webhook)"
    } else {
        ""
    };
    println!("store calls of one idle node with {apps} apps{with} in {window:?}, by op:");
    for (op, n) in &after {
        let d = n - before.get(op).copied().unwrap_or(0);
        if d > 0 {
            println!("  {op:<24} {d:>8}");
        }
        total += d;
    }
    let per_second = total as f64 / window.as_secs_f64();
    println!("  {:<24} {total:>8}  ({per_second:.1} per second)", "total");
    per_second
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a measurement: 1,000 apps idle for 10 s (see the module doc)"]
async fn an_idle_node_makes_a_bounded_number_of_store_calls_whatever_the_number_of_apps() {
    let window = std::env::var("PORTRAIT_IDLE_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .map_or(WINDOW, Duration::from_secs);
    let webhooks = std::env::var("PORTRAIT_IDLE_WEBHOOKS").is_ok_and(|v| v == "1");
    let per_second = idle_calls_per_second(APPS, window, webhooks).await;
    // With webhooks, each one's delivery lease is still renewed per app (docs/scaling.md).
    assert!(
        webhooks || per_second <= MAX_PER_SECOND,
        "an idle node with {APPS} apps made {per_second:.1} store calls per second (at most {MAX_PER_SECOND} expected)"
    );
}

/// The quick check, run with the other tests: 200 apps made 272 calls per second with a poll
/// per app.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_node_with_200_apps_does_not_poll_each_of_them() {
    let per_second = idle_calls_per_second(200, Duration::from_secs(3), false).await;
    assert!(
        per_second <= MAX_PER_SECOND / 2.0,
        "an idle node with 200 apps made {per_second:.1} store calls per second (at most {} expected)",
        MAX_PER_SECOND / 2.0
    );
}
