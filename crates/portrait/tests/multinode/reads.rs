//! Read-after-write across nodes: a write acknowledged by one node is read at once through every
//! other node, with the read caches on (kept coherent over NATS, `portrait_server::coherence`, or
//! by a version check per read without it) and off. Also what coherence does when NATS is down,
//! restarted, or not shared by every node (uses the cluster harness of `multinode.rs`).

use super::*;

/// Imports through node 0, lets every node read every profile (filling any read cache), then
/// writes through each node in turn and reads every write back through the two others right
/// after it was acknowledged; then deletes and re-imports an account the same way.
async fn writes_are_read_back_at_once_through_every_other_node(options: Options) {
    let c = Cluster::start(3, options).await;
    let users = ["alice", "bob", "carol"];
    for u in users {
        let nick = format!("{u}-imported");
        ok(
            c.admin(0).account_import(u, Some(&nick), None).await,
            "account_import via node 0",
        );
    }
    for j in 0..3 {
        let r = ok(
            c.admin(j).portrait_get(&users, &[NICK]).await,
            "portrait_get",
        );
        let r2 = ok(
            c.user(j, users[j]).get_user_profile(&users, None).await,
            "get_user_profile",
        );
        for (i, u) in users.iter().enumerate() {
            assert_eq!(item(&r, i, NICK), format!("{u}-imported"), "node {j}");
            assert_eq!(item(&r2, i, NICK), format!("{u}-imported"), "node {j}");
        }
    }

    for round in 0..2 {
        for i in 0..3 {
            // An admin write through node i.
            let target = users[(i + round) % 3];
            let nick = format!("admin-round{round}-via{i}");
            let level = (round * 10 + i) as u64;
            ok(
                c.admin(i)
                    .portrait_set(target, &[(NICK, json!(nick)), (LEVEL, json!(level))])
                    .await,
                "portrait_set",
            );
            for j in others(i) {
                let r = ok(
                    c.admin(j).portrait_get(&[target], &[NICK, LEVEL]).await,
                    "portrait_get",
                );
                assert_eq!(
                    (item(&r, 0, NICK), item(&r, 0, LEVEL)),
                    (json!(nick), json!(level)),
                    "portrait_get of {target} through node {j} right after node {i} acknowledged \
                     portrait_set"
                );
                let r = ok(
                    c.user(j, users[j])
                        .get_user_profile(&[target], Some(&[NICK]))
                        .await,
                    "get_user_profile",
                );
                assert_eq!(
                    item(&r, 0, NICK),
                    json!(nick),
                    "get_user_profile of {target} through node {j} right after node {i} \
                     acknowledged portrait_set"
                );
            }

            // A user's own write through node i.
            let me = users[i];
            let signature = format!("self-round{round}-via{i}");
            let r = ok(
                c.user(i, me)
                    .update_my_profile(&[(SIGNATURE, json!(signature))], None)
                    .await,
                "update_my_profile",
            );
            let version = r.0["Version"].as_u64().expect("update_my_profile Version");
            for j in others(i) {
                let r = ok(
                    c.user(j, users[j])
                        .get_user_profile(&[me], Some(&[SIGNATURE]))
                        .await,
                    "get_user_profile",
                );
                assert_eq!(
                    (
                        item(&r, 0, SIGNATURE),
                        r.0["UserProfileItem"][0]["Version"].clone()
                    ),
                    (json!(signature), json!(version)),
                    "get_user_profile of {me} through node {j} right after node {i} \
                     acknowledged update_my_profile (version {version})"
                );
                let r = ok(
                    c.admin(j).portrait_get(&[me], &[SIGNATURE]).await,
                    "portrait_get",
                );
                assert_eq!(
                    item(&r, 0, SIGNATURE),
                    json!(signature),
                    "portrait_get of {me} through node {j} right after node {i} acknowledged \
                     update_my_profile"
                );
            }
        }
    }

    // A delete through node 0 is seen at once by the others …
    ok(
        c.admin(0).account_delete(&["carol"]).await,
        "account_delete via node 0",
    );
    for j in 1..3 {
        let r = ok(c.admin(j).account_check(&["carol"]).await, "account_check");
        assert_eq!(
            r.0["ResultItem"][0]["AccountStatus"], "NotImported",
            "account_check through node {j} after node 0 deleted carol: {}",
            r.0
        );
        let r = ok(c.admin(j).portrait_get(&["carol"], &[NICK]).await, "get");
        assert_eq!(
            r.0["UserProfileItem"][0]["ResultCode"], 40003,
            "portrait_get through node {j} after node 0 deleted carol: {}",
            r.0
        );
        let r = c.user(j, "carol").get_my_profile(None).await.unwrap();
        assert_eq!(
            r.code(),
            70107,
            "carol's own call through node {j} after node 0 deleted her: {}",
            r.0
        );
    }
    // … and so is a re-import through node 1.
    ok(
        c.admin(1)
            .account_import("carol", Some("carol-again"), None)
            .await,
        "account_import via node 1",
    );
    for j in [0, 2] {
        let r = ok(c.admin(j).portrait_get(&["carol"], &[NICK]).await, "get");
        assert_eq!(
            item(&r, 0, NICK),
            json!("carol-again"),
            "portrait_get through node {j} after node 1 re-imported carol: {}",
            r.0
        );
        ok(
            c.user(j, "carol").get_my_profile(None).await,
            &format!("carol's own call through node {j} after node 1 re-imported her"),
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_acknowledged_by_one_node_is_read_at_once_through_every_other_node() {
    writes_are_read_back_at_once_through_every_other_node(Options::default()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_the_read_cache_off_every_node_reads_what_another_node_acknowledged() {
    writes_are_read_back_at_once_through_every_other_node(Options {
        cache_entries: Some(0),
        ..Options::default()
    })
    .await;
}

// ---------------------------------------------------------------------------------------------
// Coherence over NATS
// ---------------------------------------------------------------------------------------------

/// The sum of every series of the metric `name` on the node at `base` (0 if absent).
pub(super) async fn metric(base: &str, name: &str) -> f64 {
    let text = reqwest::get(format!("{base}/metrics"))
        .await
        .expect("GET /metrics")
        .text()
        .await
        .expect("metrics body");
    text.lines()
        .filter(|l| {
            l.strip_prefix(name)
                .is_some_and(|rest| rest.starts_with(' ') || rest.starts_with('{'))
        })
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// Waits until every node of `nodes` says `portrait_coherence_trusted` is `want`.
pub(super) async fn until_trusted(c: &Cluster, nodes: &[usize], want: bool, within: Duration) {
    let deadline = Instant::now() + within;
    for &n in nodes {
        loop {
            let v = metric(&c.bases[n], "portrait_coherence_trusted").await;
            if (v == 1.0) == want {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "node {n}: portrait_coherence_trusted is {v}, not {} within {within:?}",
                u8::from(want)
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

/// Writes a unique nick through `from` and reads it back at once through every node in `to`.
pub(super) async fn write_then_read(
    c: &Cluster,
    from: usize,
    to: &[usize],
    user: &str,
    nick: &str,
) {
    ok(
        c.admin(from)
            .portrait_set(user, &[(NICK, json!(nick))])
            .await,
        "portrait_set",
    );
    for &j in to {
        let r = ok(c.admin(j).portrait_get(&[user], &[NICK]).await, "get");
        assert_eq!(
            item(&r, 0, NICK),
            json!(nick),
            "portrait_get of {user} through node {j} right after node {from} acknowledged {nick}"
        );
    }
}

/// A `nats-server` of the test's own on a port it picked, killed when dropped.
pub(super) struct OwnNats {
    pub(super) port: u16,
    child: Option<std::process::Child>,
    /// Its ports files (`super::replicas::spawn_nats`).
    dir: tempfile::TempDir,
}

impl OwnNats {
    pub(super) fn start() -> OwnNats {
        let dir = tempfile::tempdir().unwrap();
        let args = ["-p".to_owned(), "-1".to_owned()];
        let (child, ports) = super::replicas::spawn_nats(dir.path(), &args);
        OwnNats {
            port: ports.client,
            child: Some(child),
            dir,
        }
    }

    pub(super) fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    /// Starts the server again on its port, once it listens.
    fn restart(&mut self) {
        let args = ["-p".to_owned(), self.port.to_string()];
        let (child, _) = super::replicas::spawn_nats(self.dir.path(), &args);
        self.child = Some(child);
    }

    /// SIGKILLs the server.
    fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for OwnNats {
    fn drop(&mut self) {
        self.kill();
    }
}

pub(super) const USERS: [&str; 3] = ["alice", "bob", "carol"];

/// Imports [`USERS`] through node 0 and reads them through every node (filling the caches).
pub(super) async fn import_and_warm(c: &Cluster, nodes: usize) {
    ok(
        c.admin(0).multiaccount_import(&USERS).await,
        "multiaccount_import",
    );
    for j in 0..nodes {
        ok(
            c.admin(j).portrait_get(&USERS, &[NICK]).await,
            "warm-up get",
        );
    }
}

/// With every node on one NATS server, reads are answered from memory (no version check) and
/// still see every write acknowledged through another node; writes do not wait.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_nats_reads_skip_the_database_and_see_every_acknowledged_write() {
    let c = Cluster::start(
        3,
        Options {
            coherence_lease_ms: Some(2_000),
            ..Options::default()
        },
    )
    .await;
    until_trusted(&c, &[0, 1, 2], true, Duration::from_secs(10)).await;
    import_and_warm(&c, 3).await;
    // One more read each: the first read of an epoch checks the version once.
    for j in 0..3 {
        ok(c.admin(j).portrait_get(&USERS, &[NICK]).await, "get");
    }
    let checks = |c: &Cluster| {
        let bases = c.bases.clone();
        async move {
            let mut v = Vec::new();
            for b in &bases {
                v.push(metric(b, "portrait_cache_version_checks_total").await);
            }
            v
        }
    };
    let waits_before = metric(&c.bases[0], "portrait_coherence_write_waits_total").await;
    let before = checks(&c).await;
    let rounds = 30;
    for i in 0..rounds {
        let from = i % 3;
        let user = USERS[i % USERS.len()];
        write_then_read(&c, from, &[0, 1, 2], user, &format!("fast-{i}")).await;
    }
    let after = checks(&c).await;
    for j in 0..3 {
        let grew = after[j] - before[j];
        assert!(
            grew <= 2.0,
            "node {j} checked the version {grew} times for {} reads: the cache was not trusted \
             ({before:?} → {after:?})",
            rounds
        );
    }
    assert_eq!(
        metric(&c.bases[0], "portrait_coherence_write_waits_total").await,
        waits_before,
        "a confirmed write does not wait"
    );
}

/// NATS goes down: writes are still acknowledged (after waiting out the lease once), reads ask
/// the database and see every acknowledged write; NATS comes back: the nodes trust their caches
/// again and reads keep seeing every write.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nats_down_and_back_reads_fall_back_to_the_database_and_stay_exact() {
    let mut nats = OwnNats::start();
    let c = Cluster::start(
        2,
        Options {
            nats_per_node: vec![nats.url(), nats.url()],
            ..Options::default()
        },
    )
    .await;
    until_trusted(&c, &[0, 1], true, Duration::from_secs(10)).await;
    import_and_warm(&c, 2).await;
    write_then_read(&c, 0, &[1], "alice", "before").await;

    nats.kill();
    until_trusted(&c, &[0, 1], false, Duration::from_secs(5)).await;
    let checks_before = metric(&c.bases[1], "portrait_cache_version_checks_total").await;
    let mut slowest = Duration::ZERO;
    for i in 0..6 {
        let started = Instant::now();
        write_then_read(
            &c,
            i % 2,
            &[(i + 1) % 2],
            USERS[i % 3],
            &format!("down-{i}"),
        )
        .await;
        slowest = slowest.max(started.elapsed());
    }
    println!("NATS down: slowest write-then-read {slowest:?}");
    assert!(
        metric(&c.bases[1], "portrait_cache_version_checks_total").await > checks_before,
        "without NATS, node 1 asks the database before reading"
    );

    // Written while NATS is down and not read on node 1 since: node 1 must catch up from the
    // change log when it trusts its cache again, not keep what it had.
    ok(
        c.admin(0)
            .portrait_set("carol", &[(NICK, json!("while-down"))])
            .await,
        "portrait_set",
    );
    nats.restart();
    until_trusted(&c, &[0, 1], true, Duration::from_secs(15)).await;
    let r = ok(c.admin(1).portrait_get(&["carol"], &[NICK]).await, "get");
    assert_eq!(
        item(&r, 0, NICK),
        json!("while-down"),
        "node 1's first read after NATS came back sees the write made while it was down"
    );
    for i in 0..6 {
        write_then_read(&c, i % 2, &[0, 1], USERS[i % 3], &format!("back-{i}")).await;
    }
}

/// Two nodes on two different NATS servers cannot see each other's invalidations: neither
/// trusts its cache, and every read still sees what the other node acknowledged.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nodes_on_different_nats_servers_never_trust_their_caches() {
    let (a, b) = (OwnNats::start(), OwnNats::start());
    let c = Cluster::start(
        2,
        Options {
            nats_per_node: vec![a.url(), b.url()],
            ..Options::default()
        },
    )
    .await;
    import_and_warm(&c, 2).await;
    for i in 0..6 {
        write_then_read(
            &c,
            i % 2,
            &[(i + 1) % 2],
            USERS[i % 3],
            &format!("apart-{i}"),
        )
        .await;
    }
    for j in 0..2 {
        assert_eq!(
            metric(&c.bases[j], "portrait_coherence_trusted").await,
            0.0,
            "node {j} cannot hear the other node, so it must not trust its cache"
        );
    }
}

/// A TCP forwarder from a free port to `upstream` that the test can cut: a node whose NATS URL
/// points here loses NATS while the other nodes keep it.
struct Cuttable {
    port: u16,
    cut: tokio::sync::watch::Sender<bool>,
}

impl Cuttable {
    async fn start(upstream: u16) -> Cuttable {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let (cut, _) = tokio::sync::watch::channel(false);
        let cuts = cut.clone();
        tokio::spawn(async move {
            loop {
                let Ok((mut client, _)) = listener.accept().await else {
                    return;
                };
                if *cuts.borrow() {
                    continue; // dropped: refused while cut
                }
                let mut cut = cuts.subscribe();
                tokio::spawn(async move {
                    let Ok(mut server) =
                        tokio::net::TcpStream::connect(("127.0.0.1", upstream)).await
                    else {
                        return;
                    };
                    tokio::select! {
                        _ = tokio::io::copy_bidirectional(&mut client, &mut server) => {}
                        _ = cut.wait_for(|c| *c) => {}
                    }
                });
            }
        });
        Cuttable { port, cut }
    }

    fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    fn set_cut(&self, cut: bool) {
        self.cut.send_replace(cut);
    }
}

/// One node loses NATS while the other keeps it: the cut-off node's writes are answered only
/// once the other node has stopped trusting its cache, so reads there still see them; when
/// the link is back, both trust their caches again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_cut_off_from_nats_waits_until_the_others_stop_trusting() {
    let nats = OwnNats::start();
    let link = Cuttable::start(nats.port).await;
    let c = Cluster::start(
        2,
        Options {
            nats_per_node: vec![link.url(), nats.url()],
            ..Options::default()
        },
    )
    .await;
    until_trusted(&c, &[0, 1], true, Duration::from_secs(10)).await;
    import_and_warm(&c, 2).await;
    write_then_read(&c, 0, &[1], "alice", "linked").await;

    let waits = metric(&c.bases[0], "portrait_coherence_write_waits_total").await;
    link.set_cut(true);
    // At once, before node 1 can have noticed node 0's silence.
    let started = Instant::now();
    write_then_read(&c, 0, &[1], "alice", "cut-0").await;
    let first = started.elapsed();
    println!("node 0 cut off from NATS: its first write and the read took {first:?}");
    assert!(
        metric(&c.bases[0], "portrait_coherence_write_waits_total").await > waits,
        "node 0 could not confirm its write, so it waited before answering"
    );
    until_trusted(&c, &[1], false, Duration::from_secs(5)).await;
    for i in 1..4 {
        write_then_read(&c, 0, &[1], USERS[i % 3], &format!("cut-{i}")).await;
        write_then_read(&c, 1, &[0], USERS[i % 3], &format!("other-{i}")).await;
    }

    link.set_cut(false);
    until_trusted(&c, &[0, 1], true, Duration::from_secs(15)).await;
    for i in 0..4 {
        write_then_read(&c, i % 2, &[0, 1], USERS[i % 3], &format!("relinked-{i}")).await;
    }
}

/// A node of the cluster without NATS registers as a member that never sends a heartbeat: the
/// node with NATS cannot vouch for its cache while it may write, and reads there still see what
/// the node without NATS acknowledged.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_without_nats_keeps_the_others_from_trusting_their_caches() {
    let nats = OwnNats::start();
    let c = Cluster::start(
        2,
        Options {
            nats_per_node: vec![nats.url(), String::new()],
            ..Options::default()
        },
    )
    .await;
    import_and_warm(&c, 2).await;
    for i in 0..6 {
        write_then_read(&c, 1, &[0], USERS[i % 3], &format!("no-nats-{i}")).await;
    }
    assert_eq!(
        metric(&c.bases[0], "portrait_coherence_trusted").await,
        0.0,
        "node 0 never hears node 1, a member"
    );
}
