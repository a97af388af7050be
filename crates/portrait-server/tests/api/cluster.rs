//! Several nodes over one store (in one process here; `crates/portrait/tests/multinode.rs` runs
//! real processes on PostgreSQL): NATS wake-ups carry changes to subscribers on other nodes at
//! once, reads are coherent across nodes, and push survives a NATS outage.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use portrait_client::user::{Frame, Socket};
use portrait_server::settings::PushSettings;
use serde_json::json;

use crate::helpers::*;

const NATS: &str = "127.0.0.1:4222";

/// Fails clearly when the NATS server the tests need is not running.
fn require_nats(addr: &str) {
    if std::net::TcpStream::connect_timeout(&addr.parse().unwrap(), Duration::from_secs(2)).is_err()
    {
        panic!(
            "NATS is not reachable on {addr}: these tests need it (start it with \
             `nats-server -js -a 127.0.0.1 -p 4222`, or run .ci/run which starts it)"
        );
    }
}

fn cluster_push(nats: &str, subject: &str, poll_ms: u64) -> PushSettings {
    PushSettings {
        nats_url: format!("nats://{nats}"),
        nats_subject: subject.into(),
        poll_interval_ms: poll_ms,
        ..PushSettings::default()
    }
}

async fn event_within(
    s: &mut Socket,
    wait: Duration,
) -> Option<portrait_client::user::ProfileEvent> {
    let deadline = Instant::now() + wait;
    loop {
        let left = deadline.checked_duration_since(Instant::now())?;
        match s.frame(left).await {
            Ok(Frame::Profile(ev)) => return Some(ev),
            Ok(_) => {}
            Err(_) => return None,
        }
    }
}

async fn ready(s: &mut Socket) {
    assert!(matches!(
        s.frame(Duration::from_secs(5)).await.unwrap(),
        Frame::Ready { .. }
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_on_one_node_reaches_subscribers_and_readers_on_another() {
    require_nats(NATS);
    let subject = format!("portrait-test.{}", rand::random::<u32>());
    let (store, _dir) = portrait_store::testkit::fresh_store_from_env().await;
    // Polling is slowed to a minute: only the bus can deliver within the test's waits.
    let a = spawn_node(
        store.clone(),
        vec![test_app()],
        cluster_push(NATS, &subject, 60_000),
    )
    .await;
    let b = spawn_node(
        store.clone(),
        vec![test_app()],
        cluster_push(NATS, &subject, 60_000),
    )
    .await;
    let lone = spawn_node(
        store.clone(),
        vec![test_app()],
        PushSettings {
            poll_interval_ms: 60_000,
            ..PushSettings::default()
        },
    )
    .await;
    a.import(&["alice", "bob"]).await;
    // Warm node b's cache with the old profile.
    let before = b.admin.portrait_get(&["alice"], &[NICK]).await.unwrap().0;
    assert_eq!(before["UserProfileItem"][0]["ProfileItem"][0]["Value"], "");
    let mut on_b = b.user("bob").connect(None, &["alice"]).await.unwrap();
    let mut on_lone = lone.user("bob").connect(None, &["alice"]).await.unwrap();
    ready(&mut on_b).await;
    ready(&mut on_lone).await;
    tokio::time::sleep(Duration::from_millis(300)).await; // both nodes subscribed to the bus

    let r = a
        .user("alice")
        .update_my_profile(&[(NICK, json!("via A"))], None)
        .await
        .unwrap();
    assert_eq!(r.code(), 0);
    let version = r.0["Version"].as_u64().unwrap();
    // Read-after-write on the other node, at once.
    let got = b.admin.portrait_get(&["alice"], &[NICK]).await.unwrap().0;
    assert_eq!(
        got["UserProfileItem"][0]["ProfileItem"][0]["Value"],
        "via A"
    );
    let mine = b
        .user("alice")
        .get_my_profile(Some(&[NICK]))
        .await
        .unwrap()
        .0;
    assert_eq!(mine["UserProfileItem"][0]["Version"], version);

    let ev = event_within(&mut on_b, Duration::from_secs(2))
        .await
        .expect("the change reaches node b's subscriber through NATS");
    assert_eq!((ev.account.as_str(), ev.version), ("alice", version));
    // The control: a node without the bus learns of it only at its next poll.
    assert!(
        event_within(&mut on_lone, Duration::from_millis(700))
            .await
            .is_none(),
        "without NATS the change is not pushed before the poll"
    );
}

/// A private nats-server on `port` (the Debian binary), killed on drop.
struct OwnNats(Child);

impl OwnNats {
    fn start(port: u16) -> OwnNats {
        let mut child = Command::new("nats-server")
            .args(["-a", "127.0.0.1", "-p", &port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| {
                panic!("cannot start `nats-server` ({e}): install Debian's nats-server package")
            });
        let addr = format!("127.0.0.1:{port}");
        for _ in 0..100 {
            if std::net::TcpStream::connect(&addr).is_ok() {
                return OwnNats(child);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = child.kill();
        let _ = child.wait();
        panic!("nats-server did not start on {addr}");
    }
}

impl Drop for OwnNats {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn push_survives_a_nats_outage_and_live_push_resumes_without_a_restart() {
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let nats_addr = format!("127.0.0.1:{port}");
    let nats = OwnNats::start(port);
    let (store, _dir) = portrait_store::testkit::fresh_store_from_env().await;
    let push = cluster_push(&nats_addr, "portrait-outage", 3_000);
    let a = spawn_node(store.clone(), vec![test_app()], push.clone()).await;
    let b = spawn_node(store.clone(), vec![test_app()], push).await;
    a.import(&["alice", "bob"]).await;
    let mut s = b.user("bob").connect(None, &["alice"]).await.unwrap();
    ready(&mut s).await;
    tokio::time::sleep(Duration::from_millis(300)).await;

    let alice = a.user("alice");
    let write = |n: u32| {
        let alice = alice.clone();
        async move {
            let r = alice
                .update_my_profile(&[(NICK, json!(format!("n{n}")))], None)
                .await
                .unwrap();
            assert_eq!(r.code(), 0);
            r.0["Version"].as_u64().unwrap()
        }
    };
    // With the bus: fast.
    let v = write(1).await;
    let t = Instant::now();
    let ev = event_within(&mut s, Duration::from_secs(2))
        .await
        .expect("live");
    assert_eq!(ev.version, v);
    assert!(t.elapsed() < Duration::from_millis(1_000));

    // NATS down: nothing is lost, the poll delivers.
    drop(nats);
    tokio::time::sleep(Duration::from_millis(200)).await;
    let v = write(2).await;
    let ev = event_within(&mut s, Duration::from_secs(5))
        .await
        .expect("delivered by polling");
    assert_eq!(ev.version, v);

    // NATS back on the same port: the client reconnects by itself and pushes are fast again.
    let _nats = OwnNats::start(port);
    let deadline = Instant::now() + Duration::from_secs(20);
    let (mut n, mut fast_in_a_row) = (3, 0);
    while fast_in_a_row < 2 {
        let v = write(n).await;
        let t = Instant::now();
        let ev = event_within(&mut s, Duration::from_secs(5))
            .await
            .expect("delivered");
        assert_eq!(ev.version, v, "every change once, in order");
        // Faster than the poll (3 s) twice in a row: the bus is back.
        fast_in_a_row = if t.elapsed() < Duration::from_millis(400) {
            fast_in_a_row + 1
        } else {
            0
        };
        assert!(
            Instant::now() < deadline,
            "live push did not resume after NATS came back"
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
        n += 1;
    }
}
