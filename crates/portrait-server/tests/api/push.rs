//! Realtime push over the WebSocket `/v1/ws` (docs/client-api.md): live events, catch-up by
//! `since`, the hand-over under concurrent writes, slow consumers, revocation, limits, shutdown,
//! and the Rust client's reconnecting stream.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use portrait_client::user::{Frame, Incoming, ProfileEvent, Socket};
use portrait_server::settings::PushSettings;
use serde_json::json;

use crate::client_crate::{feed_live, next_change};
use crate::helpers::*;

pub const WAIT: Duration = Duration::from_secs(5);

/// Reads frames until a `profile` event; panics on anything else but `subscribed`/`synced`/`pong`.
async fn next_event(s: &mut Socket) -> ProfileEvent {
    loop {
        match s.frame(WAIT).await.expect("a frame") {
            Frame::Profile(ev) => return ev,
            Frame::Subscribed { .. } | Frame::Synced { .. } | Frame::Pong => {}
            other => panic!("expected a profile event, got {other:?}"),
        }
    }
}

/// The `ready` frame; returns the app version at connect.
pub async fn ready(s: &mut Socket) -> u64 {
    match s.frame(WAIT).await.expect("ready") {
        Frame::Ready { version, .. } => version,
        other => panic!("expected ready, got {other:?}"),
    }
}

/// Asserts that nothing but pings arrives within `d`.
async fn quiet(s: &mut Socket, d: Duration) {
    if let Ok(got) = tokio::time::timeout(d, s.next()).await {
        panic!("expected silence, got {got:?}");
    }
}

#[tokio::test]
async fn a_device_update_reaches_the_other_device_and_a_subscriber() {
    let app = spawn_app().await;
    app.import(&["alice", "bob"]).await;
    let device1 = app.user("alice");
    let mut device2 = app.user("alice").connect(None, &[]).await.unwrap();
    let mut bob = app.user("bob").connect(None, &["alice"]).await.unwrap();
    ready(&mut device2).await;
    ready(&mut bob).await;

    let r = device1
        .update_my_profile(&[(NICK, json!("Alice ✓"))], None)
        .await
        .unwrap();
    assert_eq!(r.code(), 0);
    let version = r.0["Version"].as_u64().unwrap();
    for s in [&mut device2, &mut bob] {
        let ev = next_event(s).await;
        assert_eq!(ev.account, "alice");
        assert_eq!(ev.version, version);
        assert_eq!(ev.cursor, version);
        assert_eq!(ev.kind, "set");
        assert_eq!(ev.operator, "alice");
        assert_eq!(ev.items, vec![json!({"Tag": NICK, "Value": "Alice ✓"})]);
    }
    // bob's own changes reach bob, not alice's devices (they do not follow bob).
    let r = app
        .user("bob")
        .update_my_profile(&[(NICK, json!("B"))], None)
        .await
        .unwrap();
    assert_eq!(r.code(), 0);
    assert_eq!(next_event(&mut bob).await.account, "bob");
    quiet(&mut device2, Duration::from_millis(300)).await;
}

#[tokio::test]
async fn admin_changes_imports_and_deletes_reach_subscribers() {
    let app = spawn_app().await;
    app.import(&["bob", "carol"]).await;
    let mut bob = app
        .user("bob")
        .connect(None, &["carol", "dave"])
        .await
        .unwrap();
    ready(&mut bob).await;

    let r = app
        .admin
        .portrait_set("carol", &[(NICK, json!("C")), (LEVEL, json!(3))])
        .await
        .unwrap();
    assert_eq!(r.code(), 0);
    let ev = next_event(&mut bob).await;
    assert_eq!(
        (ev.account.as_str(), ev.operator.as_str(), ev.kind.as_str()),
        ("carol", portrait_client::user::ADMIN_OPERATOR, "set")
    );
    assert_eq!(ev.item(NICK), Some(&json!("C")));
    assert_eq!(ev.item(LEVEL), Some(&json!(3)));

    // An account subscribed before it exists: its import is an event.
    let r = app
        .admin
        .account_import("dave", Some("Dave"), None)
        .await
        .unwrap();
    assert_eq!(r.code(), 0);
    let ev = next_event(&mut bob).await;
    assert_eq!((ev.account.as_str(), ev.kind.as_str()), ("dave", "import"));
    assert_eq!(ev.item(NICK), Some(&json!("Dave")));

    let r = app.admin.account_delete(&["carol"]).await.unwrap();
    assert_eq!(r.code(), 0);
    let ev = next_event(&mut bob).await;
    assert_eq!((ev.account.as_str(), ev.kind.as_str()), ("carol", "delete"));
    assert!(ev.items.is_empty());
}

/// The next `profile` frame of a raw socket, as the text the server sent.
async fn raw_profile_frame(
    ws: &mut tokio_tungstenite::WebSocketStream<
        tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>,
    >,
) -> String {
    use futures_util::StreamExt;
    loop {
        let msg = tokio::time::timeout(WAIT, ws.next())
            .await
            .expect("a frame in time")
            .expect("the connection is open")
            .expect("a frame");
        if let tokio_tungstenite::tungstenite::Message::Text(t) = msg {
            let v: serde_json::Value = serde_json::from_str(t.as_str()).unwrap();
            if v["type"] == "profile" {
                return t.as_str().to_owned();
            }
        }
    }
}

#[tokio::test]
async fn users_see_that_an_admin_changed_a_profile_but_not_which_admin() {
    let app = spawn_app().await;
    app.import(&["bob", "carol"]).await;
    let start = app.store.current_version(APP).await.unwrap();
    let url = app.user("bob").ws_url(None, &["carol"]);
    let (mut live, _) = tokio_tungstenite::connect_async(url.as_str())
        .await
        .unwrap();
    // Wait for `ready`, so the connection is registered before the writes.
    let mut bob = app.user("bob").connect(None, &["carol"]).await.unwrap();
    ready(&mut bob).await;
    {
        use futures_util::StreamExt;
        let first = tokio::time::timeout(WAIT, live.next()).await.unwrap();
        assert!(format!("{first:?}").contains("ready"), "{first:?}");
    }

    // Two admins change carol's profile; carol changes it herself.
    let r = app
        .admin
        .portrait_set("carol", &[(NICK, json!("by the first admin"))])
        .await
        .unwrap();
    assert_eq!(r.code(), 0);
    let r = app
        .admin
        .as_identifier("admin2")
        .portrait_set("carol", &[(NICK, json!("by the second admin"))])
        .await
        .unwrap();
    assert_eq!(r.code(), 0);
    let r = app
        .user("carol")
        .update_my_profile(&[(NICK, json!("by carol"))], None)
        .await
        .unwrap();
    assert_eq!(r.code(), 0);

    // Live, and in the catch-up of a later connection.
    let since = format!("&since={start}");
    let catch_up_url = format!("{}{since}", app.user("bob").ws_url(None, &["carol"]));
    let (mut catch_up, _) = tokio_tungstenite::connect_async(catch_up_url.as_str())
        .await
        .unwrap();
    for ws in [&mut live, &mut catch_up] {
        for (nick, operator) in [
            ("by the first admin", "admin"),
            ("by the second admin", "admin"),
            ("by carol", "carol"),
        ] {
            let text = raw_profile_frame(ws).await;
            let frame: serde_json::Value = serde_json::from_str(&text).unwrap();
            assert_eq!(frame["items"][0]["Value"], nick, "{text}");
            assert_eq!(frame["operator"], operator, "{text}");
            for id in [ADMIN, "admin2"] {
                assert!(!text.contains(id), "the frame names admin {id}: {text}");
            }
        }
    }
    // The typed client sees the marker too.
    let ev = next_event(&mut bob).await;
    assert_eq!(ev.operator, portrait_client::user::ADMIN_OPERATOR);

    // The change log keeps who it was, for the app's backend (the webhook's Operator_Account).
    let changes = app.store.changes_since(APP, start, 10).await.unwrap();
    let operators: Vec<&str> = changes.iter().map(|c| c.operator.as_str()).collect();
    assert_eq!(operators, [ADMIN, "admin2", "carol"]);
}

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

#[tokio::test]
async fn events_carry_only_fields_users_may_read() {
    let mut cfg = test_app();
    cfg.custom_fields
        .push(portrait_server::settings::CustomFieldConfig {
            name: "Tag_Profile_Custom_Secret".into(),
            kind: serde_json::from_value(json!("string")).unwrap(),
            max_length: 50,
            read: vec![portrait_server::settings::Who::Admin],
            write: vec![portrait_server::settings::Who::Admin],
            hidden: false,
        });
    let app = spawn_app_with(vec![cfg]).await;
    app.import(&["alice", "bob"]).await;
    let mut s = app.user("bob").connect(None, &["alice"]).await.unwrap();
    ready(&mut s).await;
    app.admin
        .portrait_set(
            "alice",
            &[
                ("Tag_Profile_Custom_Secret", json!("hidden")),
                (NICK, json!("A")),
            ],
        )
        .await
        .unwrap();
    let ev = next_event(&mut s).await;
    assert_eq!(ev.items, vec![json!({"Tag": NICK, "Value": "A"})]);
}

#[tokio::test]
async fn kick_and_delete_close_the_users_connections() {
    let app = spawn_app().await;
    app.import(&["alice", "bob"]).await;
    let mut alice = app.user("alice").connect(None, &[]).await.unwrap();
    let mut bob = app.user("bob").connect(None, &[]).await.unwrap();
    ready(&mut alice).await;
    ready(&mut bob).await;

    assert_eq!(app.admin.kick("alice").await.unwrap().code(), 0);
    assert!(matches!(
        alice.frame(WAIT).await.unwrap(),
        Frame::Error { code: 70001, .. }
    ));
    assert!(matches!(
        alice.next().await.unwrap(),
        Some(Incoming::Closed(4002, _))
    ));

    assert_eq!(app.admin.account_delete(&["bob"]).await.unwrap().code(), 0);
    let mut closed = None;
    while closed.is_none() {
        match bob.next().await.unwrap() {
            Some(Incoming::Frame(Frame::Error { code, .. })) => assert_eq!(code, 70107),
            Some(Incoming::Frame(Frame::Profile(ev))) => assert_eq!(ev.kind, "delete"),
            Some(Incoming::Closed(code, _)) => closed = Some(code),
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(closed, Some(4002));
}

#[tokio::test]
async fn a_connection_is_closed_with_4004_when_its_usersig_expires() {
    let app = spawn_app().await;
    app.import(&["alice"]).await;
    let sig = portrait_core::usersig::mint(APP, KEY, "alice", now(), 2);
    let mut s = portrait_client::user::UserClient::new(&app.base, APP, "alice", sig)
        .connect(None, &[])
        .await
        .unwrap();
    ready(&mut s).await;
    match s.frame(Duration::from_secs(6)).await.unwrap() {
        Frame::Error { code, .. } => assert_eq!(code, 70001),
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        s.next().await.unwrap(),
        Some(Incoming::Closed(4004, _))
    ));
}

#[tokio::test]
async fn refused_sign_ins_get_an_error_frame_and_close_4001() {
    let app = spawn_app().await;
    app.import(&["alice"]).await;
    for (client, code) in [
        (app.user("stranger"), 70107),
        (
            portrait_client::user::UserClient::new(&app.base, APP, "alice", "garbage"),
            70003,
        ),
        (
            portrait_client::user::UserClient::new(&app.base, APP, "alice", sig(APP, KEY, "bob")),
            70013,
        ),
    ] {
        let mut s = client.connect(None, &[]).await.unwrap();
        match s.frame(WAIT).await.unwrap() {
            Frame::Error { code: c, .. } => assert_eq!(c, code),
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            s.next().await.unwrap(),
            Some(Incoming::Closed(4001, _))
        ));
    }
    // Without a WebSocket handshake: the envelope.
    let url = app
        .user("alice")
        .ws_url(None, &[])
        .replace("ws://", "http://");
    let b: serde_json::Value = app
        .http
        .get(url)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(b["ErrorCode"], 40001, "{b}");
}

#[tokio::test]
async fn connection_parameters_are_form_decoded_and_undecodable_ones_are_refused_with_49004() {
    let app = spawn_app().await;
    app.import(&["alice", "bob", "carol"]).await;
    let url = app.user("alice").ws_url(None, &[]);
    // `%2C` is the comma between accounts, `+` a space (trimmed), as in the sign-in parameters.
    let mut s = Socket::open(&format!("{url}&accounts=bob%2C+carol&since="))
        .await
        .unwrap();
    ready(&mut s).await;
    app.admin
        .portrait_set("carol", &[(NICK, json!("c1"))])
        .await
        .unwrap();
    assert_eq!(next_event(&mut s).await.account, "carol");
    // An undecodable key is no parameter: ignored.
    let mut s = Socket::open(&format!("{url}&%FF=1")).await.unwrap();
    ready(&mut s).await;
    for bad in ["since=abc", "since=%FF", "accounts=bob%2C%FF%FE"] {
        let mut s = Socket::open(&format!("{url}&{bad}")).await.unwrap();
        match s.frame(WAIT).await.unwrap() {
            Frame::Error { code, .. } => assert_eq!(code, 49004, "{bad}"),
            other => panic!("{bad}: {other:?}"),
        }
        assert!(
            matches!(s.next().await.unwrap(), Some(Incoming::Closed(4001, _))),
            "{bad}"
        );
    }
}

#[tokio::test]
async fn connection_and_subscription_caps_hold() {
    let push = PushSettings {
        max_subscriptions: 3,
        max_connections_per_user: 2,
        ..PushSettings::default()
    };
    let app = spawn_app_opts(vec![test_app()], push).await;
    app.import(&["alice"]).await;
    let mut a = app.user("alice").connect(None, &["b", "c"]).await.unwrap();
    ready(&mut a).await;
    a.subscribe(&["d"], None).await.unwrap();
    match a.frame(WAIT).await.unwrap() {
        Frame::Error { code, op, .. } => {
            assert_eq!(code, 49002);
            assert_eq!(op.as_deref(), Some("subscribe"));
        }
        other => panic!("{other:?}"),
    }
    let mut b = app.user("alice").connect(None, &[]).await.unwrap();
    ready(&mut b).await;
    let mut c = app.user("alice").connect(None, &[]).await.unwrap();
    assert!(matches!(
        c.frame(WAIT).await.unwrap(),
        Frame::Error { code: 49003, .. }
    ));
    assert!(matches!(
        c.next().await.unwrap(),
        Some(Incoming::Closed(4003, _))
    ));
    // Closing one frees a slot.
    b.close().await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    let mut d = app.user("alice").connect(None, &[]).await.unwrap();
    ready(&mut d).await;
}

#[tokio::test]
async fn a_silent_client_is_closed_after_the_idle_timeout() {
    let push = PushSettings {
        ping_interval_ms: 100,
        idle_timeout_ms: 400,
        ..PushSettings::default()
    };
    let app = spawn_app_opts(vec![test_app()], push).await;
    app.import(&["alice"]).await;
    let mut s = app.user("alice").connect(None, &[]).await.unwrap();
    ready(&mut s).await;
    // Not reading means not answering the server's pings.
    tokio::time::sleep(Duration::from_millis(900)).await;
    let got = tokio::time::timeout(WAIT, s.next()).await.unwrap().unwrap();
    assert_eq!(
        got,
        Some(Incoming::Closed(4000, "idle timeout".into())),
        "{got:?}"
    );

    // A client that reads (and so answers pings) stays connected.
    let mut s = app.user("alice").connect(None, &[]).await.unwrap();
    ready(&mut s).await;
    quiet(&mut s, Duration::from_millis(900)).await;
    s.send(&json!({"op": "ping"})).await.unwrap();
    assert_eq!(s.frame(WAIT).await.unwrap(), Frame::Pong);
}

#[tokio::test]
async fn shutdown_closes_every_socket_with_going_away() {
    let mut app = spawn_app().await;
    app.import(&["alice", "bob"]).await;
    let mut a = app.user("alice").connect(None, &[]).await.unwrap();
    let mut b = app.user("bob").connect(None, &["alice"]).await.unwrap();
    ready(&mut a).await;
    ready(&mut b).await;
    tokio::time::timeout(WAIT, app.stop())
        .await
        .expect("shutdown finishes");
    for s in [&mut a, &mut b] {
        assert!(matches!(
            s.next().await.unwrap(),
            Some(Incoming::Closed(1001, _))
        ));
    }
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
