//! Push across nodes: a change written through any node reaches subscribers on every node
//! exactly once, and over NATS at once (uses the cluster harness of `multinode.rs`).

use super::*;

pub(super) const TARGETS: [&str; 3] = ["u0", "u1", "u2"];

/// Writes through the three nodes at once: through node `i`, admin sets of every target and
/// updates by `u<i>` of their own profile. Returns `(account, Nick, operator)` of every write.
pub(super) async fn write_through_every_node(
    c: &Cluster,
    rounds: usize,
) -> Vec<(String, String, String)> {
    let tasks: Vec<_> = (0..3)
        .map(|i| {
            let admin = c.admin(i);
            let me = c.user(i, TARGETS[i]);
            tokio::spawn(async move {
                let mut written = Vec::new();
                for r in 0..rounds {
                    let target = TARGETS[(i + r) % 3];
                    let nick = format!("admin-via{i}-{r}");
                    ok(
                        admin.portrait_set(target, &[(NICK, json!(nick))]).await,
                        &format!("portrait_set via node {i}"),
                    );
                    written.push((target.to_owned(), nick, ADMIN.to_owned()));
                    let nick = format!("self-via{i}-{r}");
                    ok(
                        me.update_my_profile(&[(NICK, json!(nick))], None).await,
                        &format!("update_my_profile via node {i}"),
                    );
                    written.push((TARGETS[i].to_owned(), nick, TARGETS[i].to_owned()));
                }
                written
            })
        })
        .collect();
    let mut written = Vec::new();
    for t in tasks {
        written.extend(t.await.unwrap());
    }
    written
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_change_written_through_any_node_is_pushed_once_to_subscribers_on_every_node() {
    let c = Cluster::start(3, Options::default()).await;
    let watchers = ["w0", "w1", "w2"];
    let everyone: Vec<&str> = TARGETS.iter().chain(&watchers).copied().collect();
    ok(
        c.admin(0).multiaccount_import(&everyone).await,
        "multiaccount_import via node 0",
    );
    let mut subs = Vec::new();
    for (k, w) in watchers.iter().enumerate() {
        subs.push(Subscriber::connect(&c.user(k, w), None, &TARGETS).await);
    }

    let written = write_through_every_node(&c, 3).await;
    assert_eq!(written.len(), 18);

    for sub in &mut subs {
        let events = sub.events(written.len()).await;
        let what = sub.name.clone();
        assert_strictly_increasing(&events, &what);
        for ev in &events {
            assert_eq!(ev.kind, "set", "{what}: {ev:?}");
            assert_eq!(
                ev.cursor, ev.version,
                "{what}: a live event's cursor: {ev:?}"
            );
        }
        // Users see that an admin made a change, not which admin (the webhook sees which).
        let shown: Vec<_> = written
            .iter()
            .map(|(user, nick, op)| {
                let op = if op == ADMIN { ADMIN_OPERATOR } else { op };
                (user.clone(), nick.clone(), op.to_owned())
            })
            .collect();
        assert_eq!(
            sorted(events.iter().map(key_of).collect()),
            sorted(shown),
            "{what}: every acknowledged write exactly once"
        );
    }
    for sub in &mut subs {
        sub.assert_quiet().await;
    }
}

/// With polling slowed to a minute, only the NATS wake-ups can bring a change to the other nodes
/// within the test's wait: every write through node 0 reaches the subscribers on all three nodes
/// at once, each once. (Writes go through node 0 only: a node's own write also wakes its feed,
/// which then reads other nodes' changes too and would hide a missing wake-up.) Prints the
/// cross-node propagation latency (see it with `--nocapture`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn over_nats_a_change_reaches_subscribers_on_the_other_nodes_at_once() {
    const WRITES: usize = 60;
    let c = Cluster::start(
        3,
        Options {
            poll_interval_ms: Some(60_000),
            ..Options::default()
        },
    )
    .await;
    let watchers = ["w0", "w1", "w2"];
    let everyone: Vec<&str> = TARGETS.iter().chain(&watchers).copied().collect();
    ok(
        c.admin(0).multiaccount_import(&everyone).await,
        "multiaccount_import via node 0",
    );
    // One subscriber per node; each event is stamped when it arrives.
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<(usize, String, Instant)>();
    for (k, w) in watchers.iter().enumerate() {
        let mut sub = Subscriber::connect(&c.user(k, w), None, &TARGETS).await;
        let tx = tx.clone();
        tokio::spawn(async move {
            while let Ok(Some(Incoming::Frame(frame))) = sub.socket.next().await {
                if let Frame::Profile(ev) = frame {
                    let _ = tx.send((k, key_of(&ev).1, Instant::now()));
                }
            }
        });
    }

    let mut acked: HashMap<String, (usize, Instant)> = HashMap::new();
    for n in 0..WRITES {
        let nick = format!("bus-{n}");
        ok(
            c.admin(0)
                .portrait_set(TARGETS[n % 3], &[(NICK, json!(nick))])
                .await,
            "portrait_set via node 0",
        );
        acked.insert(nick, (0, Instant::now()));
    }

    // Far below the one-minute poll: only NATS can have woken the other nodes.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    let mut seen = HashSet::new();
    let mut latencies = Vec::new();
    while seen.len() < WRITES * 3 {
        let (k, nick, at) = tokio::time::timeout_at(deadline, rx.recv())
            .await
            .unwrap_or_else(|_| {
                panic!(
                    "{} of {} deliveries within 10 s with polling at 60 s: NATS did not wake \
                     the other nodes",
                    seen.len(),
                    WRITES * 3
                )
            })
            .expect("subscribers are running");
        assert!(
            seen.insert((k, nick.clone())),
            "{nick} twice on node {k}'s subscriber"
        );
        let (node, acked_at) = acked[&nick];
        if node != k {
            latencies.push(at.saturating_duration_since(acked_at));
        }
    }
    tokio::time::sleep(QUIET).await;
    assert!(rx.try_recv().is_err(), "an event beyond those expected");

    latencies.sort();
    let pct = |p: usize| latencies[(latencies.len() * p / 100).min(latencies.len() - 1)];
    eprintln!(
        "cross-node push over NATS ({} deliveries to subscribers on other nodes, after the write \
         was acknowledged): p50 {:?}, p99 {:?}, max {:?}",
        latencies.len(),
        pct(50),
        pct(99),
        latencies.last().unwrap()
    );
}
