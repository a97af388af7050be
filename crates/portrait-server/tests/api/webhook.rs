//! Webhook `Profile.CallbackPortraitSet` (spec §5.4): the vendor's query and body for every
//! profile change (imports included), at-least-once delivery from the change log — also of
//! changes made while the receiver was down, and across a server restart — per-account order
//! while one account's callback fails and the others go on — also for an account that skipped
//! more changes than one read by account reaches — and the lag metric.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::{Query, State};
use axum::routing::post;
use axum::Json;
use portrait_server::settings::{AppConfig, PushSettings, WebhookConfig};
use portrait_store::MAX_CHAIN_WALK;
use serde_json::{json, Value};
use tokio::net::TcpListener;

use crate::helpers::*;

/// What a callback carried: its query parameters and JSON body.
pub type Callback = (HashMap<String, String>, Value);

/// A callback receiver: records what it accepts; answers 500 while `down`, and to callbacks for
/// the account in `failing`.
#[derive(Clone, Default)]
pub struct Receiver {
    got: Arc<Mutex<Vec<Callback>>>,
    down: Arc<AtomicBool>,
    failing: Arc<Mutex<Option<String>>>,
}

impl Receiver {
    pub async fn start(self, addr: &str) -> String {
        let listener = TcpListener::bind(addr).await.unwrap();
        let url = format!("http://{}/callback", listener.local_addr().unwrap());
        let app = axum::Router::new()
            .route("/callback", post(receive))
            .with_state(self);
        tokio::spawn(async move { axum::serve(listener, app).await });
        url
    }

    fn bodies(&self) -> Vec<Value> {
        self.got
            .lock()
            .unwrap()
            .iter()
            .map(|(_, b)| b.clone())
            .collect()
    }

    /// The nicks called back for `user`, in the order they were accepted.
    fn nicks_of(&self, user: &str) -> Vec<String> {
        self.bodies()
            .iter()
            .filter(|b| b["From_Account"] == user)
            .map(|b| b["ProfileItem"][0]["Value"].as_str().unwrap().to_owned())
            .collect()
    }

    /// Waits (at most 10 s) until `user`'s callbacks include `nicks`; returns all of them.
    async fn wait_for_nicks(&self, user: &str, nicks: &[&str]) -> Vec<String> {
        for _ in 0..200 {
            let got = self.nicks_of(user);
            if nicks.iter().all(|n| got.iter().any(|g| g == n)) {
                return got;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("{user}: expected {nicks:?}, got {:?}", self.nicks_of(user));
    }

    /// Waits until `n` callbacks were accepted.
    pub async fn wait_for(&self, n: usize) -> Vec<Callback> {
        for _ in 0..200 {
            if self.got.lock().unwrap().len() >= n {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let got = self.got.lock().unwrap().clone();
        assert!(
            got.len() >= n,
            "expected {n} callbacks, got {}: {got:?}",
            got.len()
        );
        got
    }
}

async fn receive(
    State(r): State<Receiver>,
    Query(q): Query<HashMap<String, String>>,
    Json(body): Json<Value>,
) -> (axum::http::StatusCode, Json<Value>) {
    let failing = r.failing.lock().unwrap().clone();
    if r.down.load(Ordering::SeqCst) || failing.is_some_and(|u| body["From_Account"] == u.as_str())
    {
        return (
            axum::http::StatusCode::INTERNAL_SERVER_ERROR,
            Json(json!({})),
        );
    }
    r.got.lock().unwrap().push((q, body));
    (
        axum::http::StatusCode::OK,
        Json(json!({"ActionStatus": "OK", "ErrorCode": 0, "ErrorInfo": ""})),
    )
}

pub fn with_webhook(url: &str) -> AppConfig {
    let mut app = test_app();
    app.webhook = Some(WebhookConfig {
        initial_backoff_ms: 50,
        max_backoff_ms: 200,
        ..WebhookConfig::new(url)
    });
    app
}

#[tokio::test]
async fn every_profile_change_is_called_back_in_the_vendor_format() {
    let receiver = Receiver::default();
    let url = receiver.clone().start("127.0.0.1:0").await;
    let app = spawn_app_with(vec![with_webhook(&url)]).await;
    // Let the worker take its starting cursor (history before a webhook exists is not replayed).
    tokio::time::sleep(Duration::from_millis(200)).await;
    app.import(&["alice"]).await;
    let r = app
        .admin
        .portrait_set("alice", &[(NICK, json!("Alice")), (LEVEL, json!(7))])
        .await
        .unwrap();
    assert_eq!(r.code(), 0);
    let r = app
        .user("alice")
        .update_my_profile(&[(HOBBY, json!("chess"))], None)
        .await
        .unwrap();
    assert_eq!(r.code(), 0);
    let r = app
        .admin
        .account_import("bob", Some("Bob"), None)
        .await
        .unwrap();
    assert_eq!(r.code(), 0);
    app.admin.account_delete(&["bob"]).await.unwrap();

    let mut got = receiver.wait_for(3).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        receiver.bodies().len(),
        3,
        "imports without fields and deletes are not sent"
    );
    // In version order per account (alice's two), concurrently across accounts.
    got.sort_by_key(|(_, b)| b["From_Account"].as_str().unwrap().to_owned());
    let (q, b) = &got[0];
    assert_eq!(q["SdkAppid"], APP.to_string());
    assert_eq!(q["CallbackCommand"], "Profile.CallbackPortraitSet");
    assert_eq!(q["contenttype"], "json");
    assert_eq!(q["ClientIP"], "127.0.0.1", "the caller's address");
    assert_eq!(q["OptPlatform"], "RESTAPI");
    assert_eq!(b["CallbackCommand"], "Profile.CallbackPortraitSet");
    assert_eq!(b["Operator_Account"], ADMIN);
    assert_eq!(b["From_Account"], "alice");
    assert!(b["EventTime"].as_i64().unwrap() > 1_700_000_000_000);
    assert_eq!(
        b["ProfileItem"],
        json!([{"Tag": NICK, "Value": "Alice"}, {"Tag": LEVEL, "Value": 7}])
    );
    let (q, b) = &got[1];
    assert_eq!(q["OptPlatform"], "Web");
    assert_eq!(q["ClientIP"], "127.0.0.1", "a client-API write's too");
    assert_eq!(b["Operator_Account"], "alice");
    assert_eq!(b["ProfileItem"], json!([{"Tag": HOBBY, "Value": "chess"}]));
    let (q, b) = &got[2];
    assert_eq!(q["ClientIP"], "127.0.0.1", "an import's too");
    assert_eq!(b["From_Account"], "bob");
    assert_eq!(b["ProfileItem"], json!([{"Tag": NICK, "Value": "Bob"}]));
}

#[tokio::test]
async fn changes_made_while_the_receiver_is_down_are_delivered_when_it_is_back() {
    let receiver = Receiver::default();
    let url = receiver.clone().start("127.0.0.1:0").await;
    let app = spawn_app_with(vec![with_webhook(&url)]).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    app.import(&["alice"]).await;
    receiver.down.store(true, Ordering::SeqCst);
    let started = std::time::Instant::now();
    for i in 0..5 {
        let r = app
            .admin
            .portrait_set("alice", &[(NICK, json!(format!("n{i}")))])
            .await
            .unwrap();
        assert_eq!(r.code(), 0);
    }
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "a failing webhook does not slow writes"
    );
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(receiver.bodies().is_empty());
    receiver.down.store(false, Ordering::SeqCst);
    receiver.wait_for(5).await;
    let nicks: Vec<Value> = receiver
        .bodies()
        .iter()
        .map(|b| b["ProfileItem"][0]["Value"].clone())
        .collect();
    for i in 0..5 {
        assert!(nicks.contains(&json!(format!("n{i}"))), "n{i} in {nicks:?}");
    }
    // Failed attempts are visible in the metrics.
    let metrics = app
        .http
        .get(format!("{}/metrics", app.base))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics
            .lines()
            .any(|l| l.starts_with("portrait_webhook_deliveries_total")
                && l.contains("outcome=\"failed_attempt\"")),
        "{metrics}"
    );
}

#[tokio::test]
async fn undelivered_changes_survive_a_server_restart() {
    // A port with nothing listening yet: every attempt fails.
    let probe = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = probe.local_addr().unwrap().to_string();
    drop(probe);
    let url = format!("http://{addr}/callback");

    let (store, dir) = portrait_store::testkit::fresh_store_from_env().await;
    let mut first = spawn_on(
        store.clone(),
        vec![with_webhook(&url)],
        PushSettings::default(),
        "127.0.0.1:0",
    )
    .await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    first.import(&["alice"]).await;
    for i in 0..3 {
        first
            .admin
            .portrait_set("alice", &[(NICK, json!(format!("r{i}")))])
            .await
            .unwrap();
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    first.stop().await;

    let receiver = Receiver::default();
    receiver.clone().start(&addr).await;
    let _second = spawn_on(
        store,
        vec![with_webhook(&url)],
        PushSettings::default(),
        "127.0.0.1:0",
    )
    .await;
    receiver.wait_for(3).await;
    let nicks: Vec<Value> = receiver
        .bodies()
        .iter()
        .map(|b| b["ProfileItem"][0]["Value"].clone())
        .collect();
    assert_eq!(nicks, vec![json!("r0"), json!("r1"), json!("r2")]);
    drop(dir);
}

/// `portrait_set` of `NICK = nick` for `user`, asserting success.
async fn set_nick(app: &TestApp, user: &str, nick: &str) {
    app.set(user, &[(NICK, json!(nick))]).await.expect_ok();
}

#[tokio::test]
async fn a_failing_callback_for_one_account_does_not_hold_back_the_other_accounts() {
    let receiver = Receiver::default();
    let url = receiver.clone().start("127.0.0.1:0").await;
    let mut app_cfg = test_app();
    app_cfg.webhook = Some(WebhookConfig {
        initial_backoff_ms: 1_000,
        max_backoff_ms: 2_000,
        ..WebhookConfig::new(&url)
    });
    let app = spawn_app_with(vec![app_cfg]).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    app.import(&["alice", "b", "c", "d"]).await;
    *receiver.failing.lock().unwrap() = Some("alice".into());
    set_nick(&app, "alice", "a0").await;
    // alice's first change is read and failing (retried after 1 s, then 2 s, …).
    tokio::time::sleep(Duration::from_millis(300)).await;
    let written = std::time::Instant::now();
    for (user, nick) in [("b", "b0"), ("alice", "a1"), ("c", "c0"), ("d", "d0")] {
        set_nick(&app, user, nick).await;
    }
    set_nick(&app, "b", "b1").await;
    set_nick(&app, "alice", "a2").await;
    receiver.wait_for_nicks("b", &["b0", "b1"]).await;
    receiver.wait_for_nicks("c", &["c0"]).await;
    receiver.wait_for_nicks("d", &["d0"]).await;
    let took = written.elapsed();
    assert!(
        took < Duration::from_millis(1_500),
        "the other accounts' changes are delivered while alice's callback fails (took {took:?})"
    );
    assert_eq!(receiver.nicks_of("b"), ["b0", "b1"], "in order per account");
    assert!(receiver.nicks_of("alice").is_empty());

    // The receiver recovers: alice's changes arrive, in order, each once.
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    assert!(receiver.nicks_of("alice").is_empty());
    *receiver.failing.lock().unwrap() = None;
    receiver.wait_for_nicks("alice", &["a2"]).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(receiver.nicks_of("alice"), ["a0", "a1", "a2"]);
    assert_eq!(receiver.bodies().len(), 7, "each change once");
}

#[tokio::test]
async fn a_full_account_does_not_hold_back_the_others_and_its_skipped_changes_follow() {
    let receiver = Receiver::default();
    let url = receiver.clone().start("127.0.0.1:0").await;
    let mut app_cfg = with_webhook(&url);
    if let Some(w) = app_cfg.webhook.as_mut() {
        w.max_pending = 2;
    }
    let app = spawn_app_with(vec![app_cfg]).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    app.import(&["alice", "bob"]).await;
    *receiver.failing.lock().unwrap() = Some("alice".into());
    // alice's a0 and a1 fill her queue (max_pending is per account); a2..a4 are read past.
    for nick in ["a0", "a1", "a2", "a3", "a4"] {
        set_nick(&app, "alice", nick).await;
    }
    set_nick(&app, "bob", "b0").await;
    receiver.wait_for_nicks("bob", &["b0"]).await;
    assert!(receiver.nicks_of("alice").is_empty());
    set_nick(&app, "bob", "b1").await;
    receiver.wait_for_nicks("bob", &["b1"]).await;
    *receiver.failing.lock().unwrap() = None;
    receiver.wait_for_nicks("alice", &["a4"]).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        receiver.nicks_of("alice"),
        ["a0", "a1", "a2", "a3", "a4"],
        "the skipped changes are read again, in order, once each"
    );
    assert_eq!(receiver.nicks_of("bob"), ["b0", "b1"]);
}

#[tokio::test]
async fn a_restart_while_an_account_is_parked_redelivers_its_undelivered_changes() {
    let receiver = Receiver::default();
    let url = receiver.clone().start("127.0.0.1:0").await;
    let (store, dir) = portrait_store::testkit::fresh_store_from_env().await;
    let mut first = spawn_on(
        store.clone(),
        vec![with_webhook(&url)],
        PushSettings::default(),
        "127.0.0.1:0",
    )
    .await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    first.import(&["alice", "bob"]).await;
    *receiver.failing.lock().unwrap() = Some("alice".into());
    set_nick(&first, "alice", "a0").await;
    set_nick(&first, "bob", "b0").await;
    set_nick(&first, "alice", "a1").await;
    set_nick(&first, "bob", "b1").await;
    receiver.wait_for_nicks("bob", &["b0", "b1"]).await;
    // The stored position stays below alice's oldest undelivered change.
    tokio::time::sleep(Duration::from_millis(500)).await;
    first.stop().await;
    assert!(receiver.nicks_of("alice").is_empty());

    *receiver.failing.lock().unwrap() = None;
    let restarted = std::time::Instant::now();
    let _second = spawn_on(
        store,
        vec![with_webhook(&url)],
        PushSettings::default(),
        "127.0.0.1:0",
    )
    .await;
    receiver.wait_for_nicks("alice", &["a1"]).await;
    // The first node gave up its delivery lease as it stopped: the second delivers at once, not
    // after the lease (10 s) runs out. (On a store only one process opens, leases always grant.)
    assert!(
        restarted.elapsed() < Duration::from_millis(portrait_server::webhook::LEASE_MS / 2),
        "delivery resumed only after {:?}",
        restarted.elapsed()
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(receiver.nicks_of("alice"), ["a0", "a1"]);
    // bob's changes came after alice's oldest undelivered one: they are sent again (at least
    // once), in order.
    let bob = receiver.nicks_of("bob");
    assert!(
        bob == ["b0", "b1"] || bob == ["b0", "b1", "b0", "b1"],
        "{bob:?}"
    );
    drop(dir);
}

/// An app of its own for the lag test: the metrics recorder is shared by every server of the
/// test process, and other tests' workers report the lag of [`APP`].
const LAG_APP: u64 = 1_400_000_077;

/// The value of `portrait_webhook_lag` for [`LAG_APP`] in `/metrics` (`None` if not recorded).
async fn webhook_lag(app: &TestApp) -> Option<f64> {
    let metrics = app
        .http
        .get(format!("{}/metrics", app.base))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let series = format!("portrait_webhook_lag{{app=\"{LAG_APP}\"}}");
    metrics
        .lines()
        .find_map(|l| l.strip_prefix(series.as_str()))
        .map(|v| v.trim().parse().unwrap())
}

/// Waits (at most 5 s) until the lag reads `want`.
async fn wait_for_lag(app: &TestApp, want: f64) {
    let mut got = None;
    for _ in 0..100 {
        got = webhook_lag(app).await;
        if got == Some(want) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("portrait_webhook_lag: expected {want}, got {got:?}");
}

#[tokio::test]
async fn the_webhook_lag_counts_the_changes_not_yet_delivered() {
    let receiver = Receiver::default();
    let url = receiver.clone().start("127.0.0.1:0").await;
    let app = spawn_app_with(vec![AppConfig {
        sdkappid: LAG_APP,
        ..with_webhook(&url)
    }])
    .await;
    let admin = portrait_client::AdminClient::new(&app.base, LAG_APP, ADMIN, KEY);
    tokio::time::sleep(Duration::from_millis(200)).await;
    admin
        .multiaccount_import(&["alice", "bob"])
        .await
        .unwrap()
        .expect_ok();
    receiver.down.store(true, Ordering::SeqCst);
    for i in 0..4 {
        for user in ["alice", "bob"] {
            admin
                .portrait_set(user, &[(NICK, json!(format!("{user}{i}")))])
                .await
                .unwrap()
                .expect_ok();
        }
    }
    wait_for_lag(&app, 8.0).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        webhook_lag(&app).await,
        Some(8.0),
        "still 8 while the receiver is down"
    );
    receiver.down.store(false, Ordering::SeqCst);
    receiver.wait_for(8).await;
    wait_for_lag(&app, 0.0).await;
}

#[tokio::test]
async fn imports_are_called_back_with_the_fields_they_wrote_and_bare_imports_are_not() {
    let receiver = Receiver::default();
    let url = receiver.clone().start("127.0.0.1:0").await;
    let app = spawn_app_with(vec![with_webhook(&url)]).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    // Bare imports write no profile field: not called back.
    app.import(&["alice"]).await;
    app.admin
        .account_import("bob", None, None)
        .await
        .unwrap()
        .expect_ok();
    app.admin
        .portrait_import(&[("carol", &[])])
        .await
        .unwrap()
        .expect_ok();
    // Imports that write fields are called back with exactly those, like a `portrait_set`.
    app.admin
        .portrait_import(&[("dave", &[(LEVEL, json!(3))])])
        .await
        .unwrap()
        .expect_ok();
    app.admin
        .account_import("erin", None, Some("https://x.test/e.png"))
        .await
        .unwrap()
        .expect_ok();
    let got = receiver.wait_for(2).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let mut bodies = receiver.bodies();
    assert_eq!(bodies.len(), 2, "{bodies:?}");
    bodies.sort_by_key(|b| b["From_Account"].as_str().unwrap().to_owned());
    assert_eq!(bodies[0]["From_Account"], "dave");
    assert_eq!(bodies[0]["Operator_Account"], ADMIN);
    assert_eq!(
        bodies[0]["ProfileItem"],
        json!([{"Tag": LEVEL, "Value": 3}])
    );
    assert_eq!(bodies[1]["From_Account"], "erin");
    assert_eq!(
        bodies[1]["ProfileItem"],
        json!([{"Tag": IMAGE, "Value": "https://x.test/e.png"}])
    );
    assert!(got.iter().all(|(q, _)| q["OptPlatform"] == "RESTAPI"));
}

#[tokio::test]
async fn an_account_that_skipped_more_changes_than_a_read_by_account_reaches_gets_each_in_order() {
    let receiver = Receiver::default();
    let url = receiver.clone().start("127.0.0.1:0").await;
    let mut app_cfg = with_webhook(&url);
    if let Some(w) = app_cfg.webhook.as_mut() {
        w.max_pending = 1_000;
    }
    let app = spawn_app_with(vec![app_cfg]).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    app.import(&["alice", "bob"]).await;
    *receiver.failing.lock().unwrap() = Some("alice".into());
    // alice's first 1,000 changes fill her queue; the rest are read past and skipped: more than
    // one read by account (`changes_of`, walking her chain back from the newest) reaches.
    let nicks = set_nicks_in_store(&app.store, "alice", 1_000 + MAX_CHAIN_WALK + 100).await;
    // bob's change comes after all of them: once it is delivered, alice's have all been read.
    set_nick(&app, "bob", "b0").await;
    receiver.wait_for_nicks("bob", &["b0"]).await;
    assert!(receiver.nicks_of("alice").is_empty());

    *receiver.failing.lock().unwrap() = None;
    // Per-account order: once her newest has arrived, every earlier one has been sent.
    let newest = nicks.last().unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(180);
    while receiver.nicks_of("alice").last() != Some(newest) {
        assert!(
            std::time::Instant::now() < deadline,
            "alice's newest change never arrived"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let got = receiver.nicks_of("alice");
    let first_difference = got.iter().zip(&nicks).position(|(g, n)| g != n);
    assert!(
        got.len() == nicks.len() && first_difference.is_none(),
        "every change of alice once, in order: {} of {} arrived, the first difference at {:?}",
        got.len(),
        nicks.len(),
        first_difference.map(|i| (i, &got[i], &nicks[i]))
    );
}
