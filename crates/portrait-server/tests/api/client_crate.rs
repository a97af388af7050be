//! The typed Rust client (`portrait_client::{Admin, User}`) against the real server: its
//! runnable examples (compiled in here from `crates/portrait-client/examples/`, so the suite runs
//! exactly their code), vendor errors as `Err`, the change feed's errors, UserSig refresh and
//! reconnection. Also the feed helpers the push and retention tests use.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use portrait_client::{
    refresh_with, Admin, AllowType, Changes, ClientError, FeedError, FeedEvent, Gender,
    ProfileEvent, ProfileUpdate, User,
};
use portrait_core::ErrorCode;
use serde_json::json;

use crate::helpers::*;

#[allow(dead_code)]
#[path = "../../../portrait-client/examples/admin_import.rs"]
mod admin_example;
#[allow(dead_code)]
#[path = "../../../portrait-client/examples/watch_changes.rs"]
mod watch_example;

const WAIT: Duration = Duration::from_secs(10);

/// The next item of a change feed, skipping reconnection notices.
pub async fn next_feed_item(stream: &mut Changes, wait: Duration) -> Result<FeedEvent, FeedError> {
    loop {
        match tokio::time::timeout(wait, stream.next()).await {
            Ok(Some(Err(FeedError::Disconnected { .. }))) => {}
            Ok(Some(item)) => return item,
            Ok(None) => panic!("the feed ended"),
            Err(_) => panic!("nothing from the feed within {wait:?}"),
        }
    }
}

/// The next change of a feed (skipping `Live` and reconnection notices); panics on an error.
pub async fn next_change(stream: &mut Changes, wait: Duration) -> ProfileEvent {
    loop {
        match next_feed_item(stream, wait).await {
            Ok(FeedEvent::Change(ev)) => return ev,
            Ok(FeedEvent::Live { .. }) => {}
            Err(e) => panic!("feed error: {e}"),
        }
    }
}

/// Waits until the feed is connected and caught up; returns its cursor.
pub async fn feed_live(stream: &mut Changes, wait: Duration) -> u64 {
    match next_feed_item(stream, wait).await {
        Ok(FeedEvent::Live { cursor }) => cursor,
        other => panic!("expected Live, got {other:?}"),
    }
}

fn admin(app: &TestApp) -> Admin {
    Admin::builder(&app.base, APP, ADMIN, KEY).build().unwrap()
}

fn user(app: &TestApp, id: &str, usersig: String) -> User {
    User::builder(&app.base, APP, id, usersig).build().unwrap()
}

#[tokio::test]
async fn the_admin_example_imports_sets_and_reads_back_typed_profiles() {
    let app = spawn_app().await;
    let profiles = admin_example::run(&app.base, APP, ADMIN, KEY)
        .await
        .unwrap();
    let alice = profiles.get("alice").unwrap();
    assert_eq!(alice.nick.as_deref(), Some("Alice A."));
    assert_eq!(alice.gender, Some(Gender::Female));
    assert_eq!(alice.allow_type, Some(AllowType::AllowAny));
    assert_eq!(
        alice.image.as_deref(),
        Some("https://example.com/alice.png")
    );
    assert_eq!(alice.level, Some(3));
    let bob = profiles.get("bob").unwrap();
    assert_eq!(bob.nick.as_deref(), Some("Bob"));
    assert_eq!(
        bob.gender,
        Some(Gender::Unknown),
        "the default of a never-set field"
    );
    assert!(profiles.failed.is_empty());
    // What the server holds, read at the envelope level.
    let r = app.admin.portrait_get(&["alice"], &[NICK]).await.unwrap();
    assert_eq!(
        r.0["UserProfileItem"][0]["ProfileItem"][0]["Value"],
        "Alice A."
    );
}

#[tokio::test]
async fn the_watch_example_follows_changes_from_the_version_it_read() {
    let app = spawn_app().await;
    app.import(&["alice", "bob"]).await;
    let since = user(&app, "alice", sig(APP, KEY, "alice"))
        .get_user_profile(&["bob"], &[])
        .await
        .unwrap()
        .get("bob")
        .unwrap()
        .version
        .unwrap();
    let base = app.base.clone();
    let watcher = tokio::spawn(async move {
        watch_example::run(&base, APP, KEY, "alice", "bob", Some(since), 2).await
    });
    let admin = admin(&app);
    for nick in ["B1", "B2"] {
        admin
            .portrait_set("bob", &ProfileUpdate::new().nick(nick))
            .await
            .unwrap();
    }
    let events = tokio::time::timeout(WAIT, watcher)
        .await
        .expect("the example saw two changes")
        .unwrap()
        .unwrap();
    let nicks: Vec<_> = events.iter().map(|e| e.item(NICK).cloned()).collect();
    assert_eq!(nicks, vec![Some(json!("B1")), Some(json!("B2"))]);
    assert!(events
        .iter()
        .all(|e| e.kind == "set" && e.operator == "admin"));
    assert!(events[0].version > since && events[1].version > events[0].version);
}

#[tokio::test]
async fn admin_calls_return_vendor_errors_as_err_with_code_and_info() {
    let app = spawn_app().await;
    let admin = admin(&app);
    match admin
        .portrait_set("nobody", &ProfileUpdate::new().nick("x"))
        .await
    {
        Err(ClientError::Api { code, info }) => {
            assert_eq!(code, ErrorCode::PROFILE_ACCOUNT_NOT_FOUND);
            assert!(!info.is_empty());
        }
        other => panic!("{other:?}"),
    }
    let e = admin.kick("nobody").await.unwrap_err();
    assert_eq!(e.code(), Some(ErrorCode::ACCOUNT_NOT_FOUND), "{e}");
    admin
        .account_import("carol", Some("Carol"), None)
        .await
        .unwrap();
    assert_eq!(
        admin.account_check(&["carol", "nobody"]).await.unwrap(),
        vec![("carol".to_owned(), true), ("nobody".to_owned(), false)]
    );
    let failed = admin.account_delete(&["carol", "nobody"]).await.unwrap();
    assert_eq!(failed.len(), 1);
    assert_eq!(
        (failed[0].user_id.as_str(), failed[0].code),
        ("nobody", ErrorCode::ACCOUNT_NOT_FOUND)
    );
    let failed = admin
        .portrait_import(&[
            ("dave", ProfileUpdate::new().nick("Dave").level(2)),
            (
                "erin",
                ProfileUpdate::new().item("Tag_Profile_IM_Nosuch", "x"),
            ),
        ])
        .await
        .unwrap();
    assert_eq!(failed.len(), 1, "{failed:?}");
    assert_eq!(
        (failed[0].user_id.as_str(), failed[0].code),
        ("erin", ErrorCode::PROFILE_UNKNOWN_TAG)
    );
    let dave = admin
        .portrait_get(&["dave"], &[NICK, "Tag_Profile_IM_Level"])
        .await
        .unwrap();
    assert_eq!(
        (dave.found[0].nick.as_deref(), dave.found[0].level),
        (Some("Dave"), Some(2))
    );
    // A wrong key: the server refuses the admin's UserSig.
    let forged = Admin::builder(&app.base, APP, ADMIN, "not-the-key")
        .build()
        .unwrap();
    let e = forged.account_check(&["carol"]).await.unwrap_err();
    assert_eq!(e.code(), Some(ErrorCode::SIG_BAD_HMAC), "{e}");
}

#[tokio::test]
async fn user_calls_are_typed_and_a_stale_expected_version_is_a_49001_err() {
    let app = spawn_app().await;
    app.import(&["alice"]).await;
    let alice = user(&app, "alice", sig(APP, KEY, "alice"));
    let v1 = alice
        .update_my_profile(&ProfileUpdate::new().nick("Al").gender(Gender::Male), None)
        .await
        .unwrap();
    let me = alice.get_my_profile(&[]).await.unwrap();
    assert_eq!(
        (me.nick.as_deref(), me.gender, me.version),
        (Some("Al"), Some(Gender::Male), Some(v1))
    );
    let v2 = alice
        .update_my_profile(&ProfileUpdate::new().nick("Al2"), Some(v1))
        .await
        .unwrap();
    assert!(v2 > v1);
    let e = alice
        .update_my_profile(&ProfileUpdate::new().nick("lost"), Some(v1))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Some(ErrorCode::VERSION_CONFLICT), "{e}");
    assert_eq!(
        alice.get_my_profile(&[NICK]).await.unwrap().nick.as_deref(),
        Some("Al2")
    );
}

#[tokio::test]
async fn an_http_call_with_an_expired_usersig_is_retried_once_with_a_refreshed_one() {
    let app = spawn_app().await;
    app.import(&["alice"]).await;
    let expired = portrait_core::usersig::mint(APP, KEY, "alice", now() - 100, 10);
    let calls = Arc::new(AtomicUsize::new(0));
    let counter = calls.clone();
    let alice = User::builder(&app.base, APP, "alice", expired.clone())
        .refresh(refresh_with(move || {
            counter.fetch_add(1, Ordering::SeqCst);
            async { Ok(sig(APP, KEY, "alice")) }
        }))
        .build()
        .unwrap();
    alice.get_my_profile(&[]).await.unwrap();
    alice.get_my_profile(&[]).await.unwrap();
    assert_eq!(
        calls.load(Ordering::SeqCst),
        1,
        "refreshed once, then reused"
    );
    // Without a hook the same sig is an Err with the vendor code.
    let e = user(&app, "alice", expired)
        .get_my_profile(&[])
        .await
        .unwrap_err();
    assert_eq!(e.code(), Some(ErrorCode::SIG_EXPIRED), "{e}");
}

#[tokio::test]
async fn the_feed_yields_a_refused_sign_in_and_then_ends() {
    let app = spawn_app().await;
    app.import(&["alice"]).await;
    let mut feed = user(&app, "alice", "garbage".into()).changes(&[], None);
    match next_feed_item(&mut feed, WAIT).await {
        Err(e @ FeedError::Auth { code, .. }) => {
            assert_eq!(code, ErrorCode::SIG_UNDECODABLE);
            assert!(e.is_terminal());
        }
        other => panic!("{other:?}"),
    }
    assert!(tokio::time::timeout(WAIT, feed.next())
        .await
        .unwrap()
        .is_none());
}

#[tokio::test]
async fn the_feed_yields_a_kick_as_revoked_and_then_ends() {
    let app = spawn_app().await;
    app.import(&["alice"]).await;
    let mut feed = user(&app, "alice", sig(APP, KEY, "alice")).changes(&[], None);
    feed_live(&mut feed, WAIT).await;
    admin(&app).kick("alice").await.unwrap();
    match next_feed_item(&mut feed, WAIT).await {
        Err(FeedError::Revoked { code, .. }) => assert_eq!(code, ErrorCode::SIG_EXPIRED),
        other => panic!("{other:?}"),
    }
    assert!(tokio::time::timeout(WAIT, feed.next())
        .await
        .unwrap()
        .is_none());
}

#[tokio::test]
async fn the_feed_reconnects_with_a_refreshed_usersig_when_its_own_expires() {
    let app = spawn_app().await;
    app.import(&["alice", "bob"]).await;
    // Valid for two more seconds: the server closes the connection with 4004 then.
    let short = portrait_core::usersig::mint(APP, KEY, "alice", now() - 10, 12);
    let calls = Arc::new(AtomicUsize::new(0));
    let counter = calls.clone();
    let alice = User::builder(&app.base, APP, "alice", short)
        .refresh(refresh_with(move || {
            counter.fetch_add(1, Ordering::SeqCst);
            async { Ok(sig(APP, KEY, "alice")) }
        }))
        .build()
        .unwrap();
    let mut feed = alice.changes(&["bob"], None);
    let first = feed_live(&mut feed, WAIT).await;
    // Live again after the expiry, on a new connection, without anything in between.
    let again = feed_live(&mut feed, WAIT).await;
    assert!(again >= first);
    assert_eq!(calls.load(Ordering::SeqCst), 1);
    admin(&app)
        .portrait_set("bob", &ProfileUpdate::new().nick("after"))
        .await
        .unwrap();
    let ev = next_change(&mut feed, WAIT).await;
    assert_eq!(
        (ev.account.as_str(), ev.item(NICK)),
        ("bob", Some(&json!("after")))
    );
}

#[tokio::test]
async fn without_a_refresh_hook_an_expiring_usersig_ends_the_feed_with_expired() {
    let app = spawn_app().await;
    app.import(&["alice"]).await;
    let short = portrait_core::usersig::mint(APP, KEY, "alice", now() - 10, 12);
    let mut feed = user(&app, "alice", short).changes(&[], None);
    feed_live(&mut feed, WAIT).await;
    match next_feed_item(&mut feed, WAIT).await {
        Err(FeedError::Expired { .. }) => {}
        other => panic!("{other:?}"),
    }
    assert!(tokio::time::timeout(WAIT, feed.next())
        .await
        .unwrap()
        .is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_feed_reports_a_lost_server_and_is_live_again_when_it_is_back() {
    let (store, dir) = portrait_store::testkit::fresh_store_from_env().await;
    let push = portrait_server::settings::PushSettings::default();
    let mut first = spawn_on(store.clone(), vec![test_app()], push.clone(), "127.0.0.1:0").await;
    let addr = first.base.trim_start_matches("http://").to_owned();
    first.import(&["alice", "bob"]).await;
    let bob = User::builder(&first.base, APP, "bob", sig(APP, KEY, "bob"))
        .backoff(portrait_client::Backoff {
            min: Duration::from_millis(50),
            max: Duration::from_millis(200),
        })
        .build()
        .unwrap();
    let mut feed = bob.changes(&["alice"], None);
    let cursor = feed_live(&mut feed, WAIT).await;
    first.stop().await;
    match tokio::time::timeout(WAIT, feed.next()).await.unwrap() {
        Some(Err(e @ FeedError::Disconnected { .. })) => assert!(!e.is_terminal()),
        other => panic!("{other:?}"),
    }
    let second = spawn_on(store.clone(), vec![test_app()], push, &addr).await;
    admin(&second)
        .portrait_set("alice", &ProfileUpdate::new().nick("while away"))
        .await
        .unwrap();
    // Back: the change arrives, from the catch-up by cursor or live, whichever came first.
    let ev = next_change(&mut feed, WAIT).await;
    assert_eq!(ev.item(NICK), Some(&json!("while away")));
    assert!(ev.version > cursor);
    drop(dir);
}

#[tokio::test]
async fn a_connection_silent_past_the_liveness_timeout_is_replaced() {
    // The server pings only every minute; the feed expects a sign of life every 300 ms.
    let push = portrait_server::settings::PushSettings {
        ping_interval_ms: 60_000,
        ..Default::default()
    };
    let app = spawn_app_opts(vec![test_app()], push).await;
    app.import(&["alice"]).await;
    let alice = User::builder(&app.base, APP, "alice", sig(APP, KEY, "alice"))
        .feed_timeouts(Duration::from_secs(5), Duration::from_millis(300))
        .build()
        .unwrap();
    let mut feed = alice.changes(&[], None);
    feed_live(&mut feed, WAIT).await;
    match tokio::time::timeout(WAIT, feed.next()).await.unwrap() {
        Some(Err(FeedError::Disconnected { reason, .. })) => {
            assert!(reason.contains("nothing heard"), "{reason}")
        }
        other => panic!("{other:?}"),
    }
    feed_live(&mut feed, WAIT).await;
}
