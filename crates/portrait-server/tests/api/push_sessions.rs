//! A push connection's life on the WebSocket `/v1/ws`: kicks and deletes close it, an expiring
//! UserSig closes it, refused sign-ins and undecodable parameters, the connection and
//! subscription caps, the idle timeout, and shutdown.

use std::time::Duration;

use portrait_client::user::{Frame, Incoming, Socket};
use portrait_server::settings::PushSettings;
use serde_json::json;

use crate::helpers::*;
use crate::push::{next_event, quiet, ready, WAIT};

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
