//! Change-log retention: pruning by age (never past an undelivered webhook change), the server
//! started from settings pruning by itself, and the WebSocket catch-up telling a client that
//! starts before the pruned point (49005) while still sending every change that is kept.

use std::collections::BTreeMap;
use std::time::Duration;

use portrait_client::user::{Frame, Socket};
use portrait_server::settings::{PushSettings, Settings};
use portrait_store::{now_ms, AppDump, Change, ChangeKind, Profile, StoredAccount, PRUNED};
use serde_json::json;

use crate::client_crate::{feed_live, next_change, next_feed_item};
use crate::helpers::*;
use portrait_client::FeedError;

const WAIT: Duration = Duration::from_secs(5);

async fn set_nick(app: &TestApp, user: &str, nick: &str) {
    let r = app
        .admin
        .portrait_set(user, &[(NICK, json!(nick))])
        .await
        .unwrap();
    assert_eq!(r.code(), 0, "{:?}", r.0);
}

/// The versions in [`APP`]'s change log, of `user`'s changes only if given.
async fn logged(app: &TestApp, user: Option<&str>) -> Vec<u64> {
    let log = app.store.changes_since(APP, 0, 1000).await.unwrap();
    log.into_iter()
        .filter(|c| user.is_none_or(|u| c.user == u))
        .map(|c| c.version)
        .collect()
}

/// Frames up to and including `synced`.
async fn until_synced(s: &mut Socket) -> Vec<Frame> {
    let mut got = Vec::new();
    loop {
        let f = s.frame(WAIT).await.unwrap();
        let end = matches!(f, Frame::Synced { .. });
        got.push(f);
        if end {
            return got;
        }
    }
}

fn versions(frames: &[Frame]) -> Vec<u64> {
    frames
        .iter()
        .filter_map(|f| match f {
            Frame::Profile(ev) => Some(ev.version),
            _ => None,
        })
        .collect()
}

fn pruned_errors(frames: &[Frame]) -> usize {
    frames
        .iter()
        .filter(|f| {
            matches!(
                f,
                Frame::Error {
                    code: 49005,
                    op: None,
                    ..
                }
            )
        })
        .count()
}

#[tokio::test]
async fn a_catch_up_from_before_the_pruned_point_gets_49005_and_then_every_change_kept() {
    let app = spawn_app().await;
    app.import(&["alice", "bob", "carol"]).await;
    for i in 0..4 {
        set_nick(&app, "bob", &format!("b{i}")).await;
        set_nick(&app, "carol", &format!("c{i}")).await;
    }
    let head = app.store.current_version(APP).await.unwrap();
    let all = logged(&app, Some("bob")).await;
    assert_eq!(all.len(), 5, "bob's import and four sets");
    // Prune through bob's second set.
    let through = all[2];
    assert!(app.store.prune_changes(APP, through, 1000).await.unwrap() > 0);
    assert_eq!(app.store.cursor(APP, PRUNED).await.unwrap(), Some(through));

    // From before the pruned point: told once, then bob's kept changes, then synced.
    let mut s = app.user("alice").connect(Some(1), &["bob"]).await.unwrap();
    assert!(matches!(s.frame(WAIT).await.unwrap(), Frame::Ready { .. }));
    let frames = until_synced(&mut s).await;
    assert_eq!(pruned_errors(&frames), 1, "{frames:?}");
    assert!(
        matches!(frames[0], Frame::Error { code: 49005, .. }),
        "said first: {frames:?}"
    );
    assert_eq!(versions(&frames), all[3..], "every kept change of bob");
    assert_eq!(frames.last(), Some(&Frame::Synced { cursor: head }));

    // From the pruned point on: nothing is missing, so nothing is said.
    let mut s = app
        .user("alice")
        .connect(Some(through), &["bob"])
        .await
        .unwrap();
    assert!(matches!(s.frame(WAIT).await.unwrap(), Frame::Ready { .. }));
    let frames = until_synced(&mut s).await;
    assert_eq!(pruned_errors(&frames), 0, "{frames:?}");
    assert_eq!(versions(&frames), all[3..]);

    // A `subscribe` with an old `since`: the same notice (no `op`: the subscription stands).
    let mut s = app.user("alice").connect(None, &[]).await.unwrap();
    assert!(matches!(s.frame(WAIT).await.unwrap(), Frame::Ready { .. }));
    s.subscribe(&["carol"], Some(0)).await.unwrap();
    let frames = until_synced(&mut s).await;
    assert!(
        frames
            .iter()
            .any(|f| matches!(f, Frame::Subscribed { accounts, .. } if accounts == &["carol"])),
        "{frames:?}"
    );
    assert_eq!(pruned_errors(&frames), 1, "{frames:?}");
    assert_eq!(versions(&frames), logged(&app, Some("carol")).await);
    // Live changes still arrive.
    set_nick(&app, "carol", "live").await;
    match s.frame(WAIT).await.unwrap() {
        Frame::Profile(ev) => assert_eq!((ev.account.as_str(), ev.version), ("carol", head + 1)),
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn pruning_takes_changes_older_than_the_cutoff_but_never_undelivered_webhook_ones() {
    let app = spawn_app().await;
    app.import(&["alice", "bob"]).await; // versions 1..=3 with the admins
    set_nick(&app, "alice", "a1").await;
    tokio::time::sleep(Duration::from_millis(20)).await;
    let cutoff = now_ms();
    tokio::time::sleep(Duration::from_millis(20)).await;
    set_nick(&app, "bob", "b1").await;
    set_nick(&app, "bob", "b2").await;
    let log = app.store.changes_since(APP, 0, 1000).await.unwrap();
    let old: Vec<u64> = log
        .iter()
        .filter(|c| c.at_ms < cutoff)
        .map(|c| c.version)
        .collect();
    let new: Vec<u64> = log
        .iter()
        .filter(|c| c.at_ms >= cutoff)
        .map(|c| c.version)
        .collect();
    assert!(!old.is_empty() && new.len() == 2, "{log:?}");
    let store = app.store.as_ref();

    // With a webhook that has delivered nothing yet (no cursor), nothing goes.
    assert_eq!(
        portrait_server::retention::prune(store, APP, cutoff, true)
            .await
            .unwrap(),
        0
    );
    // With one that has delivered up to the first old change, only that goes.
    store
        .set_cursor(APP, portrait_server::webhook::CURSOR, old[0])
        .await
        .unwrap();
    assert_eq!(
        portrait_server::retention::prune(store, APP, cutoff, true)
            .await
            .unwrap(),
        1
    );
    assert_eq!(store.cursor(APP, PRUNED).await.unwrap(), Some(old[0]));
    // Without a webhook: everything before the cutoff, and nothing after it.
    let n = portrait_server::retention::prune(store, APP, cutoff, false)
        .await
        .unwrap();
    assert_eq!(n, old.len() - 1);
    assert_eq!(logged(&app, None).await, new);
    assert_eq!(
        store.cursor(APP, PRUNED).await.unwrap(),
        Some(*old.last().unwrap())
    );
    // Again: nothing more to do. Profiles are untouched.
    assert_eq!(
        portrait_server::retention::prune(store, APP, cutoff, false)
            .await
            .unwrap(),
        0
    );
    let r = app
        .admin
        .portrait_get(&["alice", "bob"], &[NICK])
        .await
        .unwrap();
    assert_eq!(
        r.0["UserProfileItem"][0]["ProfileItem"][0]["Value"], "a1",
        "{:?}",
        r.0
    );
    assert_eq!(
        r.0["UserProfileItem"][1]["ProfileItem"][0]["Value"], "b2",
        "{:?}",
        r.0
    );
    // Each app's log is its own: pruning the other app leaves this one's.
    let other = store.changes_since(OTHER_APP, 0, 1000).await.unwrap().len();
    assert!(other > 0, "the other app's admins were imported");
    let n = portrait_server::retention::prune(store, OTHER_APP, now_ms() + 1, false)
        .await
        .unwrap();
    assert_eq!(n, other);
    assert_eq!(
        store.changes_since(APP, 0, 1000).await.unwrap().len(),
        new.len()
    );
}

#[tokio::test]
async fn a_server_started_from_settings_prunes_changes_older_than_the_retention() {
    let (store, _dir) = portrait_store::testkit::fresh_store_from_env().await;
    let day_ms = 24 * 3600 * 1000;
    let now = now_ms();
    let change = |version: u64, at_ms: i64| Change {
        version,
        user: "alice".into(),
        operator: ADMIN.into(),
        client_ip: String::new(),
        kind: ChangeKind::Set,
        items: vec![(
            NICK.into(),
            portrait_core::ProfileValue::Str(format!("n{version}")),
        )],
        at_ms,
    };
    store
        .restore_app(AppDump {
            app: APP,
            version: 3,
            accounts: vec![StoredAccount {
                user: "alice".into(),
                profile: Profile {
                    fields: BTreeMap::from([(
                        NICK.into(),
                        portrait_core::ProfileValue::Str("n3".into()),
                    )]),
                    version: 3,
                    updated_at_ms: now,
                },
            }],
            changes: vec![
                change(1, now - 3 * day_ms),
                change(2, now - 2 * day_ms),
                change(3, now),
            ],
            cursors: vec![],
            kicks: vec![],
        })
        .await
        .unwrap();
    let mut settings = Settings {
        apps: vec![test_app()],
        ..Settings::default()
    };
    settings.store.change_retention_hours = 24.0;
    let state = portrait_server::state::AppState::from_settings(store.clone(), &settings)
        .await
        .unwrap();
    let deadline = tokio::time::Instant::now() + WAIT;
    while store.cursor(APP, PRUNED).await.unwrap().is_none() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the retention never ran"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(store.cursor(APP, PRUNED).await.unwrap(), Some(2));
    let kept: Vec<u64> = store
        .changes_since(APP, 0, 10)
        .await
        .unwrap()
        .iter()
        .map(|c| c.version)
        .collect();
    assert_eq!(
        kept[0], 3,
        "the change within the last 24 hours stays: {kept:?}"
    );
    // The pruner counts what it deleted once the store has answered, which is after the cursor
    // the loop above saw was committed: the count may come a moment later.
    let pruned = format!("portrait_changes_pruned_total{{app=\"{APP}\"}} 2");
    loop {
        let metrics = state.metrics_text();
        if metrics.lines().any(|l| l.starts_with(&pruned)) {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "{metrics}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    state.hub().shutdown(Duration::from_secs(1)).await;
}

/// `UserClient::changes` reconnecting past a prune yields one `gap` event, then the kept changes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_rust_client_stream_says_gap_when_changes_it_missed_were_pruned() {
    use portrait_core::schema::StandardTag;
    use portrait_core::{Identifier, ProfileValue, Tag};
    let (store, _dir) = portrait_store::testkit::fresh_store_from_env().await;
    let mut first = spawn_on(
        store.clone(),
        vec![test_app()],
        Default::default(),
        "127.0.0.1:0",
    )
    .await;
    let addr = first.base.trim_start_matches("http://").to_owned();
    first.import(&["alice", "bob"]).await;
    let mut stream = first.user("bob").changes(&["alice"], None);
    feed_live(&mut stream, WAIT).await;
    set_nick(&first, "alice", "v1").await;
    let ev = next_change(&mut stream, WAIT).await;
    assert_eq!(ev.item(NICK), Some(&json!("v1")));

    // While no server runs: two more changes, and the first of them pruned.
    first.stop().await;
    let alice = Identifier::parse("alice").unwrap();
    let nick = |v: &str| {
        [(
            Tag::Standard(StandardTag::Nick),
            ProfileValue::Str(v.into()),
        )]
    };
    let v2 = store
        .set_profile(APP, &alice, &nick("v2"), "alice".into())
        .await
        .unwrap();
    store
        .set_profile(APP, &alice, &nick("v3"), "alice".into())
        .await
        .unwrap();
    store.prune_changes(APP, v2, 1000).await.unwrap();
    let _second = spawn_on(store.clone(), vec![test_app()], Default::default(), &addr).await;

    let gap = next_feed_item(&mut stream, Duration::from_secs(10)).await;
    assert!(
        matches!(&gap, Err(FeedError::Gap { cursor, .. }) if *cursor == ev.cursor),
        "{gap:?}"
    );
    let ev = next_change(&mut stream, WAIT).await;
    assert_eq!(ev.item(NICK), Some(&json!("v3")), "the kept change follows");
}

/// A node's feed that lagged behind the pruned point (here: changes written under the node, so
/// nothing woke it, then pruned) sees the gap in versions and makes every connection catch up
/// from its cursor, which says 49005 and sends what is kept.
#[tokio::test]
async fn a_feed_that_finds_changes_pruned_before_it_read_them_makes_its_connections_catch_up() {
    use portrait_core::schema::StandardTag;
    use portrait_core::{Identifier, ProfileValue, Tag};
    let push = PushSettings {
        poll_interval_ms: 600_000, // only wake-ups move the feed
        ..PushSettings::default()
    };
    let app = spawn_app_opts(vec![test_app()], push).await;
    app.import(&["alice", "bob"]).await;
    let mut s = app.user("alice").connect(None, &["bob"]).await.unwrap();
    assert!(matches!(s.frame(WAIT).await.unwrap(), Frame::Ready { .. }));
    let bob = Identifier::parse("bob").unwrap();
    let nick = |v: &str| {
        [(
            Tag::Standard(StandardTag::Nick),
            ProfileValue::Str(v.into()),
        )]
    };
    let v1 = app
        .store
        .set_profile(APP, &bob, &nick("b1"), "bob".into())
        .await
        .unwrap();
    let v2 = app
        .store
        .set_profile(APP, &bob, &nick("b2"), "bob".into())
        .await
        .unwrap();
    app.store.prune_changes(APP, v1, 1000).await.unwrap();
    // A write through the node wakes its feed, whose next page starts after the gap.
    set_nick(&app, "bob", "b3").await;
    let v3 = app.store.current_version(APP).await.unwrap();
    let mut frames = Vec::new();
    while versions(&frames).last() != Some(&v3) {
        frames.push(s.frame(WAIT).await.unwrap());
    }
    assert_eq!(pruned_errors(&frames), 1, "{frames:?}");
    assert!(
        matches!(frames[0], Frame::Error { code: 49005, .. }),
        "{frames:?}"
    );
    assert_eq!(versions(&frames), [v2, v3], "what is kept, once each");
    // And live again afterwards.
    set_nick(&app, "bob", "b4").await;
    match s.frame(WAIT).await.unwrap() {
        Frame::Profile(ev) => assert_eq!(ev.version, v3 + 1),
        other => panic!("{other:?}"),
    }
}
