//! Realtime push over the WebSocket `/v1/ws` (docs/client-api.md): live events, who sees what
//! of a change, and the frame helpers the other push tests share. Catch-up and the hand-over to
//! live events are in `push_catch_up.rs`; a connection's life (sign-in, limits, revocation,
//! timeouts, shutdown) in `push_sessions.rs`.

use std::time::Duration;

use portrait_client::user::{Frame, ProfileEvent, Socket};
use serde_json::json;

use crate::helpers::*;

pub const WAIT: Duration = Duration::from_secs(5);

/// Reads frames until a `profile` event; panics on anything else but `subscribed`/`synced`/`pong`.
pub(crate) async fn next_event(s: &mut Socket) -> ProfileEvent {
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
pub(crate) async fn quiet(s: &mut Socket, d: Duration) {
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
