//! Webhook `Profile.CallbackPortraitSet` (spec §5.4): the vendor's query and body for every
//! profile change, at-least-once delivery from the change log — also of changes made while the
//! receiver was down, and across a server restart.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::{Query, State};
use axum::routing::post;
use axum::Json;
use portrait_server::settings::{AppConfig, PushSettings, WebhookConfig};
use serde_json::{json, Value};
use tokio::net::TcpListener;

use crate::helpers::*;

/// What a callback carried: its query parameters and JSON body.
type Callback = (HashMap<String, String>, Value);

/// A callback receiver: records what it accepts; answers 500 while `down`.
#[derive(Clone, Default)]
struct Receiver {
    got: Arc<Mutex<Vec<Callback>>>,
    down: Arc<AtomicBool>,
}

impl Receiver {
    async fn start(self, addr: &str) -> String {
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

    /// Waits until `n` callbacks were accepted.
    async fn wait_for(&self, n: usize) -> Vec<Callback> {
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
    if r.down.load(Ordering::SeqCst) {
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

fn with_webhook(url: &str) -> AppConfig {
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
    assert!(q.contains_key("ClientIP"));
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
    assert_eq!(b["Operator_Account"], "alice");
    assert_eq!(b["ProfileItem"], json!([{"Tag": HOBBY, "Value": "chess"}]));
    let (_, b) = &got[2];
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
