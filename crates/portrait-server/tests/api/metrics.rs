//! Request metrics at `/metrics`: per route and vendor code, latency histograms, requests in
//! flight and the read cache's hits and misses (`portrait_server::metrics::http`).
//!
//! The recorder is one per process and the tests run side by side, so each test compares the
//! values before and after its own calls and asserts at least its own share.

use std::time::Duration;

use serde_json::json;
use tokio::io::AsyncWriteExt;

use crate::helpers::*;

/// The scraped text of `/metrics`.
async fn scrape(app: &TestApp) -> String {
    let resp = app
        .http
        .get(format!("{}/metrics", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    resp.text().await.unwrap()
}

/// The value of the series `name` whose labels include every pair of `labels` (0 if none).
fn value(text: &str, name: &str, labels: &[(&str, &str)]) -> f64 {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| {
            let (series, v) = l.rsplit_once(' ')?;
            let (n, rest) = series.split_once('{').unwrap_or((series, ""));
            (n == name
                && labels
                    .iter()
                    .all(|(k, val)| rest.contains(&format!("{k}=\"{val}\""))))
            .then(|| v.parse::<f64>().ok())
            .flatten()
        })
        .sum()
}

#[tokio::test]
async fn requests_are_counted_per_route_and_vendor_code_and_timed() {
    let app = spawn_app().await;
    app.import(&["m_alice"]).await;
    let get = "/v4/profile/portrait_get";
    let before = scrape(&app).await;

    for _ in 0..3 {
        let r = app
            .call(
                "v4/profile/portrait_get",
                &json!({"To_Account": ["m_alice"], "TagList": ["Tag_Profile_IM_Nick"]}),
            )
            .await;
        assert_eq!(r["ErrorCode"], 0, "{r}");
    }
    // Two refusals: a UserSig that does not verify.
    let bad = app.raw_url(
        "v4/profile/portrait_get",
        &query(APP, ADMIN, "not-a-usersig"),
    );
    let mut bad_code = 0;
    for _ in 0..2 {
        let r = app.post_raw(&bad, "{}").await;
        bad_code = r["ErrorCode"].as_u64().unwrap();
        assert_ne!(bad_code, 0);
    }
    // A path that is no route is counted under "other", whatever the client sent.
    let r = app
        .post_raw(&format!("{}/v4/nope/made_up_12345", app.base), "{}")
        .await;
    assert_eq!(r["ErrorCode"], 60009);
    let health = app
        .http
        .get(format!("{}/healthz", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(health.status(), 200);

    let after = scrape(&app).await;
    let delta = |name: &str, labels: &[(&str, &str)]| {
        value(&after, name, labels) - value(&before, name, labels)
    };
    let total = "portrait_http_requests_total";
    assert!(
        delta(total, &[("api", get), ("code", "0")]) >= 3.0,
        "{after}"
    );
    let bad_code = bad_code.to_string();
    assert!(
        delta(total, &[("api", get), ("code", &bad_code)]) >= 2.0,
        "{after}"
    );
    assert!(
        delta(total, &[("api", "other"), ("code", "60009")]) >= 1.0,
        "{after}"
    );
    assert!(
        delta(total, &[("api", "/healthz"), ("code", "http_200")]) >= 1.0,
        "{after}"
    );
    assert!(
        !after.contains("made_up_12345"),
        "an unknown path never becomes a label"
    );
    // Every answer is timed: the histogram's count grew by the five portrait_get calls, and
    // they all fall in the last bucket.
    let hist = "portrait_http_request_duration_seconds";
    assert!(
        delta(&format!("{hist}_count"), &[("api", get)]) >= 5.0,
        "{after}"
    );
    assert!(
        delta(&format!("{hist}_bucket"), &[("api", get), ("le", "+Inf")]) >= 5.0,
        "{after}"
    );
    assert!(value(&after, &format!("{hist}_sum"), &[("api", get)]) > 0.0);
    assert!(
        after.contains("portrait_http_requests_in_flight"),
        "{after}"
    );
}

#[tokio::test]
async fn a_request_whose_body_is_still_arriving_is_in_flight() {
    let app = spawn_app().await;
    let url = app.url("v4/profile/portrait_get");
    let path_and_query = url.strip_prefix(&app.base).unwrap().to_owned();
    let addr = app.base.strip_prefix("http://").unwrap().to_owned();
    // Half a request: the head and the first bytes of a 100-byte body.
    let mut held = tokio::net::TcpStream::connect(&addr).await.unwrap();
    held.write_all(
        format!("POST {path_and_query} HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{{\"To_")
            .as_bytes(),
    )
    .await
    .unwrap();
    let mut seen = 0.0;
    for _ in 0..50 {
        seen = value(&scrape(&app).await, "portrait_http_requests_in_flight", &[]);
        if seen >= 1.0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(seen >= 1.0, "the held request is in flight (gauge {seen})");
    drop(held);
}

#[tokio::test]
async fn reads_count_cache_hits_and_misses() {
    let app = spawn_app().await;
    app.import(&["m_carol"]).await;
    let body = json!({"To_Account": ["m_carol"], "TagList": ["Tag_Profile_IM_Nick"]});
    let read = || app.call("v4/profile/portrait_get", &body);
    let before = scrape(&app).await;
    assert_eq!(read().await["ErrorCode"], 0);
    assert_eq!(read().await["ErrorCode"], 0);
    let after = scrape(&app).await;
    let delta = |name| value(&after, name, &[]) - value(&before, name, &[]);
    // The second read of the same account is answered from memory.
    assert!(delta("portrait_cache_hits_total") >= 1.0, "{after}");
    assert!(
        delta("portrait_cache_hits_total") + delta("portrait_cache_misses_total") >= 2.0,
        "{after}"
    );
}

/// On the embedded store, every account read by UserID that misses the cache (each id of a
/// batch, and a one-account read) is counted once, by how it was answered: from the node's walk
/// of the file, or by SQLite.
#[tokio::test]
async fn account_reads_are_counted_by_how_the_store_answered() {
    let app = spawn_app().await;
    if !app.is_embedded() {
        return; // PostgreSQL answers every batch with one query; the metric is the file's
    }
    let users: Vec<String> = (0..40).map(|i| format!("batch_{i}")).collect();
    let ids: Vec<&str> = users.iter().map(String::as_str).collect();
    app.import(&ids).await;
    // (Other tests of this process may read meanwhile: at least this read's ids.)
    let mut asked = ids.clone();
    asked.extend(["batch_missing_1", "batch_missing_2"]);
    let (n, after) = counted_reads(&app, &asked).await;
    assert!(n >= 42.0, "{after}");
    let (n, after) = counted_reads(&app, &["one_missing"]).await;
    assert!(n >= 1.0, "a one-account read is counted: {after}");
}

/// `portrait_store_account_reads_total` (both ways) over a `portrait_get` of `asked`, and the
/// metrics after it.
async fn counted_reads(app: &TestApp, asked: &[&str]) -> (f64, String) {
    let before = scrape(app).await;
    let read = app
        .call(
            "v4/profile/portrait_get",
            &json!({"To_Account": asked, "TagList": ["Tag_Profile_IM_Nick"]}),
        )
        .await;
    assert_eq!(read["ErrorCode"], 0, "{read}");
    let after = scrape(app).await;
    let name = "portrait_store_account_reads_total";
    let by = |how| value(&after, name, &[("by", how)]) - value(&before, name, &[("by", how)]);
    (by("walk") + by("sqlite"), after)
}

/// The `portrait_*` metric names in `text` (histogram series folded into their metric).
fn names(text: &str) -> std::collections::BTreeSet<String> {
    let mut out = std::collections::BTreeSet::new();
    let mut rest = text;
    while let Some(at) = rest.find("portrait_") {
        let tail = &rest[at..];
        let end = tail
            .find(|c: char| !(c.is_ascii_lowercase() || c == '_'))
            .unwrap_or(tail.len());
        let name = &tail[..end];
        let base = ["_bucket", "_sum", "_count"]
            .iter()
            .find_map(|s| name.strip_suffix(s))
            .unwrap_or(name);
        out.insert(base.to_owned());
        rest = &tail[end..];
    }
    out
}

#[tokio::test]
async fn every_metric_is_documented_and_the_dashboard_uses_only_documented_ones() {
    let docs = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs");
    let page = std::fs::read_to_string(docs.join("operations.md")).unwrap();
    let documented = names(&page);
    let dashboard = std::fs::read_to_string(docs.join("grafana-dashboard.json")).unwrap();
    let dashboard: serde_json::Value = serde_json::from_str(&dashboard).expect("valid JSON");
    let exprs: Vec<&str> = dashboard["panels"]
        .as_array()
        .expect("panels")
        .iter()
        .flat_map(|p| p["targets"].as_array().expect("targets"))
        .map(|t| t["expr"].as_str().expect("expr"))
        .collect();
    assert!(exprs.len() >= 10, "the dashboard has its panels");
    for expr in &exprs {
        for name in names(expr) {
            assert!(
                documented.contains(&name),
                "dashboard uses undocumented {name}"
            );
        }
    }

    // What a node serves after some work of each kind is documented, series by series.
    let app = spawn_app().await;
    app.import(&["m_dave"]).await;
    let dave = app.user("m_dave");
    let _ws = dave.connect(None, &["m_dave"]).await.unwrap();
    app.set("m_dave", &[("Tag_Profile_IM_Nick", json!("D"))])
        .await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    // Series lines start with the metric's name (label values may hold route paths).
    let text = scrape(&app).await;
    let served = names(
        &text
            .lines()
            .filter(|l| !l.starts_with('#'))
            .map(|l| l.split(['{', ' ']).next().unwrap_or(""))
            .collect::<Vec<_>>()
            .join("\n"),
    );
    assert!(
        served.contains("portrait_http_requests_total"),
        "{served:?}"
    );
    // Store latency: the set went to the backend (a write is never a cache hit).
    assert!(
        text.lines().any(|l| l
            .starts_with("portrait_store_duration_seconds_count{op=\"set_profile\"}")
            && !l.ends_with(" 0")),
        "a store write is timed: {text}"
    );
    for name in &served {
        assert!(
            documented.contains(name),
            "/metrics serves undocumented {name}"
        );
    }
}
