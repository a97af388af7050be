//! Push catch-up over the WebSocket `/v1/ws`: a subscriber that missed changes receives exactly
//! those (by `since`), the hand-over from catch-up to live events under concurrent writes, slow
//! consumers switched to catch-up, subscribing with `since`, the Rust client's reconnecting
//! stream, and a catch-up over more changes of one account than the store walks (49005).

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use portrait_client::user::Frame;
use portrait_server::settings::PushSettings;
use portrait_store::MAX_CHAIN_WALK;
use serde_json::json;

use crate::client_crate::{feed_live, next_change};
use crate::helpers::*;
use crate::push::{next_event, quiet, ready, WAIT};

#[tokio::test]
async fn a_subscriber_that_missed_50_changes_receives_exactly_those_then_live_ones() {
    let app = spawn_app().await;
    app.import(&["alice", "bob", "noise"]).await;
    let mut bob = app.user("bob").connect(None, &["alice"]).await.unwrap();
    ready(&mut bob).await;
    let r = app
        .user("alice")
        .update_my_profile(&[(NICK, json!("n0"))], None)
        .await
        .unwrap();
    let first = r.0["Version"].as_u64().unwrap();
    let cursor = next_event(&mut bob).await.cursor;
    assert_eq!(cursor, first);
    bob.close().await;

    let alice = app.user("alice");
    let mut missed = Vec::new();
    for i in 1..=50 {
        let r = alice
            .update_my_profile(&[(NICK, json!(format!("n{i}")))], None)
            .await
            .unwrap();
        missed.push(r.0["Version"].as_u64().unwrap());
        // Changes of accounts bob does not follow are not sent to him.
        app.admin
            .portrait_set("noise", &[(NICK, json!(format!("{i}")))])
            .await
            .unwrap();
    }

    let mut bob = app
        .user("bob")
        .connect(Some(cursor), &["alice"])
        .await
        .unwrap();
    ready(&mut bob).await;
    let mut got = Vec::new();
    loop {
        match bob.frame(WAIT).await.unwrap() {
            Frame::Profile(ev) => {
                assert_eq!(ev.account, "alice");
                assert_eq!(ev.item(NICK), Some(&json!(format!("n{}", got.len() + 1))));
                got.push(ev.version);
            }
            Frame::Synced { cursor } => {
                let head = app.store.current_version(APP).await.unwrap();
                assert_eq!(cursor, head, "cursor is the log head");
                assert_eq!(head, *missed.last().unwrap() + 1);
                break;
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(
        got, missed,
        "exactly the 50 missed changes, in version order"
    );

    let r = alice
        .update_my_profile(&[(NICK, json!("live"))], None)
        .await
        .unwrap();
    let ev = next_event(&mut bob).await;
    assert_eq!(ev.version, r.0["Version"].as_u64().unwrap());
    assert_eq!(ev.item(NICK), Some(&json!("live")));
    quiet(&mut bob, Duration::from_millis(300)).await;
}

/// Catch-up and live push overlap while writers run: every change of the followed accounts after
/// `since` arrives exactly once, in version order per account.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_hand_over_from_catch_up_to_live_has_no_gap_and_no_duplicate() {
    let app = Arc::new(spawn_app().await);
    let users: Vec<String> = (0..4).map(|i| format!("w{i}")).collect();
    let refs: Vec<&str> = users.iter().map(String::as_str).collect();
    app.import(&refs).await;
    app.import(&["watcher"]).await;
    let since = app.store.current_version(APP).await.unwrap();

    const PER_WRITER: usize = 60;
    let writers: Vec<_> = users
        .iter()
        .cloned()
        .map(|u| {
            let app = app.clone();
            tokio::spawn(async move {
                let c = app.user(&u);
                for i in 0..PER_WRITER {
                    let r = c
                        .update_my_profile(&[(NICK, json!(format!("{i}")))], None)
                        .await
                        .unwrap();
                    assert_eq!(r.code(), 0);
                    if i % 10 == 0 {
                        tokio::task::yield_now().await;
                    }
                }
            })
        })
        .collect();
    // Connect while the writers are in flight, from the version before any of them.
    tokio::time::sleep(Duration::from_millis(30)).await;
    let mut s = app
        .user("watcher")
        .connect(Some(since), &refs)
        .await
        .unwrap();
    ready(&mut s).await;
    let mut seen = Vec::new();
    let expected_total = users.len() * PER_WRITER;
    while seen.len() < expected_total {
        match s.frame(WAIT).await.expect("every change arrives") {
            Frame::Profile(ev) => seen.push((ev.account, ev.version)),
            Frame::Synced { .. } => {}
            other => panic!("unexpected {other:?}"),
        }
    }
    for w in writers {
        w.await.unwrap();
    }
    quiet(&mut s, Duration::from_millis(300)).await;

    let log: Vec<(String, u64)> = app
        .store
        .changes_since(APP, since, 100_000)
        .await
        .unwrap()
        .into_iter()
        .filter(|c| users.contains(&c.user))
        .map(|c| (c.user, c.version))
        .collect();
    let unique: BTreeSet<_> = seen.iter().cloned().collect();
    assert_eq!(unique.len(), seen.len(), "no duplicate");
    assert_eq!(unique, log.iter().cloned().collect(), "no gap");
    for u in &users {
        let mine: Vec<u64> = seen
            .iter()
            .filter(|(a, _)| a == u)
            .map(|(_, v)| *v)
            .collect();
        assert!(
            mine.windows(2).all(|w| w[0] < w[1]),
            "{u}: in version order: {mine:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_consumer_is_switched_to_catch_up_and_loses_nothing() {
    let push = PushSettings {
        queue: 1,
        ..PushSettings::default()
    };
    let app = Arc::new(spawn_app_opts(vec![test_app()], push).await);
    let users: Vec<String> = (0..40).map(|i| format!("s{i}")).collect();
    let refs: Vec<&str> = users.iter().map(String::as_str).collect();
    app.import(&refs).await;
    app.import(&["slow"]).await;
    let mut s = app.user("slow").connect(None, &refs).await.unwrap();
    ready(&mut s).await;
    let resyncs_before = metric(&app, "portrait_push_resyncs_total").await;

    // 40 concurrent writes commit in a few batches, each dispatched at once into a queue of 1.
    let writes: Vec<_> = users
        .iter()
        .cloned()
        .map(|u| {
            let app = app.clone();
            tokio::spawn(async move {
                let r = app
                    .admin
                    .portrait_set(&u, &[(NICK, json!("x"))])
                    .await
                    .unwrap();
                assert_eq!(r.code(), 0);
                (u, r)
            })
        })
        .collect();
    for w in writes {
        w.await.unwrap();
    }
    let mut got = BTreeSet::new();
    while got.len() < users.len() {
        let ev = next_event(&mut s).await;
        assert!(
            got.insert(ev.account.clone()),
            "duplicate event for {}",
            ev.account
        );
    }
    quiet(&mut s, Duration::from_millis(300)).await;
    assert!(
        metric(&app, "portrait_push_resyncs_total").await > resyncs_before,
        "the overflow path was taken"
    );
}

/// A counter's value from `/metrics` (0 if absent).
async fn metric(app: &TestApp, name: &str) -> f64 {
    let text = app
        .http
        .get(format!("{}/metrics", app.base))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    text.lines()
        .find_map(|l| l.strip_prefix(name).and_then(|r| r.trim().parse().ok()))
        .unwrap_or(0.0)
}

#[tokio::test]
async fn subscribe_with_since_catches_up_the_new_account_and_unsubscribe_stops_events() {
    let app = spawn_app().await;
    app.import(&["alice", "bob", "carol"]).await;
    let before = app.store.current_version(APP).await.unwrap();
    app.admin
        .portrait_set("carol", &[(NICK, json!("c1"))])
        .await
        .unwrap();
    app.admin
        .portrait_set("carol", &[(NICK, json!("c2"))])
        .await
        .unwrap();

    let mut s = app.user("alice").connect(None, &[]).await.unwrap();
    ready(&mut s).await;
    s.subscribe(&["carol", "bob"], Some(before)).await.unwrap();
    match s.frame(WAIT).await.unwrap() {
        Frame::Subscribed { accounts, count } => {
            assert_eq!(
                accounts.iter().cloned().collect::<BTreeSet<_>>(),
                ["bob".to_string(), "carol".to_string()].into()
            );
            assert_eq!(count, 3, "own account included");
        }
        other => panic!("{other:?}"),
    }
    let a = next_event(&mut s).await;
    let b = next_event(&mut s).await;
    assert_eq!(
        (a.item(NICK), b.item(NICK)),
        (Some(&json!("c1")), Some(&json!("c2")))
    );
    assert!(matches!(s.frame(WAIT).await.unwrap(), Frame::Synced { .. }));

    s.send(&json!({"op": "unsubscribe", "accounts": ["carol", "alice"]}))
        .await
        .unwrap();
    match s.frame(WAIT).await.unwrap() {
        Frame::Unsubscribed { accounts, count } => {
            assert_eq!(accounts, vec!["carol".to_string()], "the own account stays");
            assert_eq!(count, 2);
        }
        other => panic!("{other:?}"),
    }
    app.admin
        .portrait_set("carol", &[(NICK, json!("c3"))])
        .await
        .unwrap();
    app.admin
        .portrait_set("bob", &[(NICK, json!("b1"))])
        .await
        .unwrap();
    let ev = next_event(&mut s).await;
    assert_eq!(
        ev.account, "bob",
        "carol's change is not sent after unsubscribe"
    );

    s.send(&json!({"op": "ping"})).await.unwrap();
    assert_eq!(s.frame(WAIT).await.unwrap(), Frame::Pong);
    s.send(&json!({"op": "dance"})).await.unwrap();
    assert!(matches!(
        s.frame(WAIT).await.unwrap(),
        Frame::Error { code: 49004, .. }
    ));
}

/// `UserClient::changes` reconnects when the server goes away and catches up what was written
/// meanwhile, once each.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_rust_client_stream_reconnects_and_catches_up() {
    let (store, dir) = portrait_store::testkit::fresh_store_from_env().await;
    let mut first = spawn_on(
        store.clone(),
        vec![test_app()],
        PushSettings::default(),
        "127.0.0.1:0",
    )
    .await;
    let addr = first.base.trim_start_matches("http://").to_owned();
    first.import(&["alice", "bob"]).await;
    let mut stream = first.user("bob").changes(&["alice"], None);
    feed_live(&mut stream, WAIT).await;
    first
        .user("alice")
        .update_my_profile(&[(NICK, json!("v1"))], None)
        .await
        .unwrap();
    let ev = next_change(&mut stream, WAIT).await;
    assert_eq!(ev.item(NICK), Some(&json!("v1")));

    first.stop().await;
    // While no server runs, nothing can be written; the next server writes two changes before
    // the client is back.
    let second = spawn_on(
        store.clone(),
        vec![test_app()],
        PushSettings::default(),
        &addr,
    )
    .await;
    second
        .user("alice")
        .update_my_profile(&[(NICK, json!("v2"))], None)
        .await
        .unwrap();
    second
        .user("alice")
        .update_my_profile(&[(NICK, json!("v3"))], None)
        .await
        .unwrap();
    let mut got = Vec::new();
    while got.len() < 2 {
        let ev = next_change(&mut stream, Duration::from_secs(10)).await;
        got.push(ev.item(NICK).cloned().unwrap());
    }
    assert_eq!(got, vec![json!("v2"), json!("v3")]);
    second
        .user("alice")
        .update_my_profile(&[(NICK, json!("v4"))], None)
        .await
        .unwrap();
    let ev = next_change(&mut stream, WAIT).await;
    assert_eq!(
        ev.item(NICK),
        Some(&json!("v4")),
        "no duplicate of v2/v3 before it"
    );
    drop(dir);
}

/// The frames of a catch-up: the versions of `account`'s profile events, the 49005 notices, and
/// the cursor of the `synced` that ends it.
async fn catch_up_frames(
    s: &mut portrait_client::user::Socket,
    account: &str,
) -> (Vec<u64>, usize, u64) {
    let (mut versions, mut told) = (Vec::new(), 0);
    loop {
        match s.frame(WAIT).await.unwrap() {
            Frame::Profile(ev) if ev.account == account => versions.push(ev.version),
            Frame::Profile(_) => {}
            Frame::Error {
                code: 49005,
                op: None,
                ..
            } => {
                assert!(versions.is_empty(), "told before the changes");
                told += 1;
            }
            Frame::Synced { cursor } => return (versions, told, cursor),
            other => panic!("unexpected {other:?}"),
        }
    }
}

#[tokio::test]
async fn a_catch_up_over_more_changes_than_one_walk_reaches_says_49005_and_sends_the_rest() {
    let app = spawn_app().await;
    app.import(&["alice", "bob"]).await;
    set_nicks_in_store(&app.store, "bob", MAX_CHAIN_WALK + 5).await;
    let head = app.store.current_version(APP).await.unwrap();
    let log = app.store.changes_since(APP, 0, usize::MAX).await.unwrap();
    let bob: Vec<u64> = log
        .iter()
        .filter(|c| c.user == "bob")
        .map(|c| c.version)
        .collect();
    // The store walks bob's newest MAX_CHAIN_WALK changes; the one before them is out of reach.
    let cut = bob[bob.len() - MAX_CHAIN_WALK - 1];
    let reached = &bob[bob.len() - MAX_CHAIN_WALK..];

    // From the start: some changes cannot be sent, and the client is told so (as if pruned),
    // once, before the changes that can.
    let mut s = app.user("alice").connect(Some(0), &["bob"]).await.unwrap();
    ready(&mut s).await;
    let (versions, told, cursor) = catch_up_frames(&mut s, "bob").await;
    assert_eq!(told, 1, "one 49005");
    assert!(
        versions == reached,
        "every change the walk reaches, in order"
    );
    assert_eq!(cursor, head);

    // From the cut on, every change is reached: nothing is said.
    let mut s = app
        .user("alice")
        .connect(Some(cut), &["bob"])
        .await
        .unwrap();
    ready(&mut s).await;
    let (versions, told, _) = catch_up_frames(&mut s, "bob").await;
    assert_eq!(told, 0);
    assert_eq!(versions, reached);
}
