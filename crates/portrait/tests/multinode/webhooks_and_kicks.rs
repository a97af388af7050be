//! Webhooks, kicks and deletes across nodes: each change posted once whichever node wrote it,
//! and a kick or delete through one node refused on every node (uses the cluster harness of
//! `multinode.rs`).

use std::collections::BTreeMap;

use super::push::{write_through_every_node, TARGETS};
use super::*;

/// Starts an HTTP receiver for `Profile.CallbackPortraitSet` on a loopback port; returns its URL
/// and the `(From_Account, Nick, Operator_Account)` of every callback received.
pub(super) async fn webhook_receiver() -> (String, Posts) {
    let got: Posts = Arc::default();
    let sink = got.clone();
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(move |axum::Json(body): axum::Json<Value>| {
            let sink = sink.clone();
            async move {
                let nick = body["ProfileItem"]
                    .as_array()
                    .and_then(|items| items.iter().find(|i| i["Tag"] == NICK))
                    .and_then(|i| i["Value"].as_str())
                    .unwrap_or_default()
                    .to_owned();
                sink.lock().unwrap().push((
                    body["From_Account"].as_str().unwrap_or_default().to_owned(),
                    nick,
                    body["Operator_Account"]
                        .as_str()
                        .unwrap_or_default()
                        .to_owned(),
                ));
                axum::Json(json!({"ActionStatus": "OK", "ErrorCode": 0, "ErrorInfo": ""}))
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, got)
}

/// Writes through every node with the webhook configured on every node, or on the first only;
/// every change must be POSTed exactly once.
async fn each_change_is_posted_once(webhook_on_first_node_only: bool) {
    let (url, got) = webhook_receiver().await;
    let c = Cluster::start(
        3,
        Options {
            webhook: Some(url),
            webhook_on_first_node_only,
            ..Options::default()
        },
    )
    .await;
    c.webhook_started().await;
    // Imports without Nick/FaceUrl are not called back.
    ok(
        c.admin(0).multiaccount_import(&TARGETS).await,
        "multiaccount_import via node 0",
    );
    let written = write_through_every_node(&c, 2).await;

    assert_posted_once(&got, &written, PUSH_WAIT).await;
}

/// Callbacks received by [`webhook_receiver`].
pub(super) type Posts = Arc<Mutex<Vec<(String, String, String)>>>;

/// Waits (at most `wait`) until `got` holds as many callbacks as `written`, then a little longer
/// for extra ones, and checks that each write was POSTed exactly once.
async fn assert_posted_once(got: &Posts, written: &[(String, String, String)], wait: Duration) {
    let deadline = tokio::time::Instant::now() + wait;
    while got.lock().unwrap().len() < written.len() && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Workers poll every second: wait longer than that for extra deliveries.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let got = got.lock().unwrap().clone();
    let mut counts: BTreeMap<&(String, String, String), usize> = BTreeMap::new();
    for g in &got {
        *counts.entry(g).or_default() += 1;
    }
    assert_eq!(
        sorted(got.clone()),
        sorted(written.to_vec()),
        "each change posted exactly once; posted more than once: {:?}",
        counts.iter().filter(|(_, n)| **n > 1).collect::<Vec<_>>()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_change_is_posted_once_to_the_webhook_whichever_node_wrote_it() {
    each_change_is_posted_once(false).await;
}

/// A node with the webhook delivers the changes written through every node (it reads them from
/// the shared change log), also when it is the only one configured with it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_webhook_configured_on_one_node_gets_every_change_of_every_node_once() {
    each_change_is_posted_once(true).await;
}

/// `[apps.webhook] lease_ms` of the failover test: short, so it does not wait for the default
/// 10 s, yet long enough that a live holder (renewing every third of it) never loses it to a
/// slow database call on a busy machine.
const WEBHOOK_LEASE_MS: u64 = 2_000;

/// The node holding the webhook lease is SIGKILLed (found through the store's `leases` table:
/// holders are `<pid>-<random>`); another node takes over from the stored cursor and delivers
/// the changes written meanwhile, each once, and nothing delivered before is sent again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn when_the_node_delivering_the_webhook_is_killed_another_takes_over_without_loss_or_repeats()
{
    let (url, got) = webhook_receiver().await;
    let mut c = Cluster::start(
        3,
        Options {
            webhook: Some(url),
            webhook_lease_ms: Some(WEBHOOK_LEASE_MS),
            ..Options::default()
        },
    )
    .await;
    c.webhook_started().await;
    ok(
        c.admin(0).multiaccount_import(&TARGETS).await,
        "multiaccount_import via node 0",
    );
    let mut written = write_through_every_node(&c, 1).await;
    assert_posted_once(&got, &written, PUSH_WAIT).await;

    let holder = c.webhook_holder().await;
    c.kill(holder);
    for (k, node) in others(holder).enumerate() {
        let nick = format!("after-kill-via{node}");
        ok(
            c.admin(node)
                .portrait_set(TARGETS[k], &[(NICK, json!(nick))])
                .await,
            "portrait_set through a surviving node",
        );
        written.push((TARGETS[k].to_owned(), nick, ADMIN.to_owned()));
    }
    // The dead holder's lease (WEBHOOK_LEASE_MS, 2 s) must run out before another node takes
    // over; the wait allowed is the one for the default 10 s lease.
    assert_posted_once(&got, &written, Duration::from_secs(10) + PUSH_WAIT).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kick_through_one_node_revokes_the_users_sigs_and_connections_on_every_node() {
    let c = Cluster::start(3, Options::default()).await;
    ok(
        c.admin(0).account_import("alice", None, None).await,
        "account_import via node 0",
    );
    // UserSigs minted before the kick.
    let alice: Vec<UserClient> = (0..3).map(|j| c.user(j, "alice")).collect();
    let mut subs = Vec::new();
    for client in &alice[1..] {
        subs.push(Subscriber::connect(client, None, &[]).await);
    }
    ok(c.admin(0).kick("alice").await, "kick via node 0");
    // Node 0 enforces it at once; the others learn of it over NATS within milliseconds (or from
    // the store within the poll, push.poll_interval_ms, if a message is lost).
    for (j, client) in alice.iter().enumerate() {
        let deadline = std::time::Instant::now() + Duration::from_secs(2);
        loop {
            let r = client.get_my_profile(None).await.unwrap();
            if r.code() == 70001 {
                break;
            }
            assert!(
                j > 0 && std::time::Instant::now() < deadline,
                "a UserSig minted before the kick, used on node {j}: {}",
                r.0
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    for sub in &mut subs {
        sub.assert_revoked(70001).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleting_an_account_through_one_node_closes_its_connections_on_every_node() {
    let c = Cluster::start(3, Options::default()).await;
    ok(
        c.admin(0).account_import("bob", None, None).await,
        "account_import via node 0",
    );
    let mut subs = Vec::new();
    for j in 1..3 {
        subs.push(Subscriber::connect(&c.user(j, "bob"), None, &[]).await);
    }
    ok(
        c.admin(0).account_delete(&["bob"]).await,
        "account_delete via node 0",
    );
    for sub in &mut subs {
        sub.assert_revoked(70107).await;
    }
}
