//! A write waits for the acknowledgement of every node that may answer reads from its cache
//! (`portrait_server::coherence`): a node that hears NATS late, one that stops cleanly (not
//! waited for), and one that dies (waited for until it can no longer trust its cache).

use super::reads::{import_and_warm, metric, until_trusted, write_then_read, OwnNats, USERS};
use super::*;

/// A TCP forwarder from a free port to `upstream` that hands what the server sends to the
/// client `delay` late, from `after` into each connection on (in order; the other way goes at
/// once): a node whose NATS URL points here hears every message `delay` after the others.
pub(super) async fn lagging(upstream: u16, delay: Duration, after: Duration) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((client, _)) = listener.accept().await {
            let accepted = Instant::now();
            tokio::spawn(async move {
                let Ok(server) = tokio::net::TcpStream::connect(("127.0.0.1", upstream)).await
                else {
                    return;
                };
                let (mut client_in, mut client_out) = client.into_split();
                let (mut server_in, mut server_out) = server.into_split();
                let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<(Instant, Vec<u8>)>();
                let up = tokio::spawn(async move {
                    let _ = tokio::io::copy(&mut client_in, &mut server_out).await;
                });
                let down = tokio::spawn(async move {
                    while let Some((at, chunk)) = rx.recv().await {
                        if at >= accepted + after {
                            tokio::time::sleep_until((at + delay).into()).await;
                        }
                        if client_out.write_all(&chunk).await.is_err() {
                            return;
                        }
                    }
                });
                let mut buf = vec![0; 64 << 10];
                while let Ok(n) = server_in.read(&mut buf).await {
                    if n == 0 || tx.send((Instant::now(), buf[..n].to_vec())).is_err() {
                        break;
                    }
                }
                drop(tx);
                let _ = down.await;
                up.abort();
            });
        }
    });
    format!("nats://127.0.0.1:{port}")
}

/// One node hears NATS 300 ms late but stays in its epoch of trust: a write through the other
/// node is answered only once the late node has acknowledged the invalidation, so a read
/// through the late node right after it, answered from its cache, sees the write.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_waits_for_every_listed_node_to_acknowledge_it() {
    let nats = OwnNats::start();
    let delay = Duration::from_millis(300);
    let c = Cluster::start(
        2,
        Options {
            nats_per_node: vec![nats.url(), lagging(nats.port, delay, Duration::ZERO).await],
            coherence_lease_ms: Some(2_000),
            ..Options::default()
        },
    )
    .await;
    until_trusted(&c, &[0, 1], true, Duration::from_secs(10)).await;
    import_and_warm(&c, 2).await;
    // The first read of an epoch checks the version once.
    ok(c.admin(1).portrait_get(&USERS, &[NICK]).await, "get");
    let checks = metric(&c.bases[1], "portrait_cache_version_checks_total").await;
    let waits = metric(&c.bases[0], "portrait_coherence_write_waits_total").await;
    for i in 0..4 {
        let started = Instant::now();
        write_then_read(&c, 0, &[1], USERS[i % 3], &format!("late-{i}")).await;
        let took = started.elapsed();
        assert!(
            took >= delay,
            "node 0 answered its write in {took:?}, before node 1 can have had it"
        );
    }
    assert!(
        metric(&c.bases[1], "portrait_cache_version_checks_total").await - checks <= 1.0,
        "node 1 answered from its cache, trusted"
    );
    assert_eq!(
        metric(&c.bases[0], "portrait_coherence_write_waits_total").await,
        waits,
        "acknowledged writes do not wait out the lease"
    );
    // The late node's own writes wait for the other's acknowledgement (which it hears late).
    write_then_read(&c, 1, &[0, 1], "alice", "from-the-late-node").await;
}

/// A node that stops cleanly says so first, and the others' writes do not wait for it; a node
/// that dies is waited for (its acknowledgement cannot come) until it can no longer trust its
/// cache, and reads through the rest still see every write.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_that_leaves_is_not_waited_for_and_one_that_dies_is_until_it_cannot_trust() {
    let mut c = Cluster::start(3, Options::default()).await;
    until_trusted(&c, &[0, 1, 2], true, Duration::from_secs(10)).await;
    import_and_warm(&c, 3).await;
    write_then_read(&c, 0, &[1, 2], "alice", "all-three").await;
    let before = unacknowledged(&c.bases[0]).await + unacknowledged(&c.bases[1]).await;

    c.stop(2);
    let mut slowest = Duration::ZERO;
    for i in 0..6 {
        let started = Instant::now();
        write_then_read(&c, i % 2, &[0, 1], USERS[i % 3], &format!("left-{i}")).await;
        slowest = slowest.max(started.elapsed());
    }
    println!("node 2 stopped: slowest write-then-read {slowest:?}");
    assert_eq!(
        unacknowledged(&c.bases[0]).await + unacknowledged(&c.bases[1]).await,
        before,
        "no write waited for the node that left ({slowest:?})"
    );

    let waited = unacknowledged(&c.bases[0]).await;
    c.kill(1);
    let started = Instant::now();
    write_then_read(&c, 0, &[0], "bob", "after-a-death").await;
    let took = started.elapsed();
    println!("node 1 killed: the next write-then-read took {took:?}");
    assert!(
        unacknowledged(&c.bases[0]).await > waited,
        "node 0 waited for the dead node's acknowledgement until it ran out ({took:?})"
    );
    // The dead node stops being listed, then waited for: writes are fast again.
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    let settled = unacknowledged(&c.bases[0]).await;
    write_then_read(&c, 0, &[0], "carol", "alone").await;
    assert_eq!(
        unacknowledged(&c.bases[0]).await,
        settled,
        "nobody left to wait for"
    );
}

async fn unacknowledged(base: &str) -> f64 {
    metric(base, "portrait_coherence_unacknowledged_total").await
}

/// A node that hears NATS later than the lease cannot trust its cache (its own heartbeats come
/// back too old), says it is not ready, and is not listed: writes elsewhere do not wait for it,
/// and reads through it ask PostgreSQL and see them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_too_late_to_trust_its_cache_is_not_waited_for() {
    let nats = OwnNats::start();
    let c = Cluster::start(
        2,
        Options {
            // 700 ms late with a lease of 200: its acknowledgements would come after the
            // 500 ms a write waits for a listed node. Late only after 2 s, so that its client
            // connects (the handshake must finish within a second) and its pings, every
            // second, still get their answers in time.
            nats_per_node: vec![
                nats.url(),
                lagging(
                    nats.port,
                    Duration::from_millis(700),
                    Duration::from_secs(2),
                )
                .await,
            ],
            coherence_lease_ms: Some(200),
            ..Options::default()
        },
    )
    .await;
    import_and_warm(&c, 2).await;
    // Long enough for node 0 to have heard node 1 say it is not ready, and for any listing of
    // node 1 from the start to run out.
    tokio::time::sleep(Duration::from_secs(3)).await;
    until_trusted(&c, &[1], false, Duration::from_secs(5)).await;
    let before = unacknowledged(&c.bases[0]).await;
    let mut slowest = Duration::ZERO;
    for i in 0..4 {
        let started = Instant::now();
        write_then_read(&c, 0, &[1], USERS[i % 3], &format!("too-late-{i}")).await;
        slowest = slowest.max(started.elapsed());
    }
    println!("node 1 hears NATS 700 ms late: slowest write-then-read through node 0 {slowest:?}");
    assert_eq!(
        unacknowledged(&c.bases[0]).await,
        before,
        "node 0 waited for node 1, which cannot trust its cache ({slowest:?})"
    );
}
