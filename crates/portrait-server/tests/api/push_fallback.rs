//! The fallback that bounds how late a change or a kick made elsewhere reaches this node when
//! no wake-up says so (another node without NATS, or a wake-up lost): the node's one head poll
//! (`push/poll.rs`, every `push.poll_interval_ms`). Changes and kicks are written straight into
//! the store here, past the node, as another node sharing the database would.

use std::time::{Duration, Instant};

use portrait_client::user::{Frame, Incoming};
use portrait_core::schema::StandardTag;
use portrait_core::{Identifier, ProfileValue, Tag};
use portrait_server::settings::PushSettings;
use serde_json::json;

use crate::helpers::*;
use crate::push::{next_event, ready};

/// The nodes' poll: a change or kick from elsewhere arrives within about this.
const POLL_MS: u64 = 100;
/// How late it may arrive on a busy machine: many polls, but well under the 5 s of the kick
/// reload that this poll replaced.
const LATE: Duration = Duration::from_secs(2);

fn push() -> PushSettings {
    PushSettings {
        poll_interval_ms: POLL_MS,
        ..PushSettings::default()
    }
}

fn id(s: &str) -> Identifier {
    Identifier::parse(s).unwrap()
}

#[tokio::test]
async fn a_change_written_by_another_node_reaches_a_subscriber_within_the_poll() {
    let (store, _dir) = portrait_store::testkit::fresh_store_from_env().await;
    let app = spawn_on(store.clone(), vec![test_app()], push(), "127.0.0.1:0").await;
    app.import(&["alice", "bob"]).await;
    let mut bob = app.user("bob").connect(None, &["alice"]).await.unwrap();
    ready(&mut bob).await;

    for round in 0..3 {
        let nick = format!("from elsewhere {round}");
        let started = Instant::now();
        let version = store
            .set_profile(
                APP,
                &id("alice"),
                &[(
                    Tag::Standard(StandardTag::Nick),
                    ProfileValue::Str(nick.clone()),
                )],
                "alice".into(),
            )
            .await
            .unwrap();
        let ev = tokio::time::timeout(LATE, next_event(&mut bob))
            .await
            .unwrap_or_else(|_| panic!("no event within {LATE:?} of a change made elsewhere"));
        assert_eq!((ev.account.as_str(), ev.version), ("alice", version));
        assert_eq!(ev.items, vec![json!({"Tag": NICK, "Value": nick})]);
        eprintln!(
            "a change made elsewhere reached the subscriber after {:?}",
            started.elapsed()
        );
    }
}

#[tokio::test]
async fn a_kick_recorded_by_another_node_takes_effect_within_the_poll() {
    let (store, _dir) = portrait_store::testkit::fresh_store_from_env().await;
    let app = spawn_on(store.clone(), vec![test_app()], push(), "127.0.0.1:0").await;
    app.import(&["alice"]).await;
    let alice = app.user("alice");
    let mut socket = alice.connect(None, &[]).await.unwrap();
    ready(&mut socket).await;
    assert_eq!(alice.get_my_profile(None).await.unwrap().code(), 0);

    let started = Instant::now();
    assert!(store.kick(APP, &id("alice"), now()).await.unwrap());
    match socket.frame(LATE).await {
        Ok(Frame::Error { code: 70001, .. }) => {}
        other => panic!("expected the kick (70001) within {LATE:?}, got {other:?}"),
    }
    assert!(matches!(
        socket.next().await.unwrap(),
        Some(Incoming::Closed(4002, _))
    ));
    eprintln!(
        "a kick made elsewhere closed the connection after {:?}",
        started.elapsed()
    );
    assert_eq!(
        alice.get_my_profile(None).await.unwrap().code(),
        70001,
        "the UserSig minted before the kick is refused"
    );
}
