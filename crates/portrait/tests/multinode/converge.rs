//! Nodes on a NATS cluster meet on one server: two nodes configured with the same three routed
//! servers (`replicas.rs`) start on the first, move to the second when the first dies, and when
//! the first is back while one node restarts (and so connects to it), the other moves there too
//! (`portrait_server::coherence`, `home.rs`). Both trust their caches again within a bound,
//! their reads stop asking the database for versions, and a checker that writes through one
//! node and reads through the other all along sees every acknowledged write. The times are
//! printed: `cargo test -p portrait --test multinode converge:: -- --nocapture`.

use super::reads::{import_and_warm, metric, until_trusted, write_then_read, USERS};
use super::replicas::NatsCluster;
use super::*;

/// How long after the first server is back both nodes must trust their caches again.
const CONVERGE_BOUND: Duration = Duration::from_secs(20);

/// Stops `node` with SIGTERM (it leaves the members) and starts it again with its
/// configuration; its address changes.
async fn restart_node(c: &mut Cluster, node: usize) {
    c.stop(node);
    let config = c._dirs[0].path().join(format!("node{node}.toml"));
    let (started, dir) = tokio::task::spawn_blocking(move || {
        let dir = tempfile::tempdir().unwrap();
        let mut cmd = common::serve_command(dir.path());
        cmd.arg("--config").arg(&config);
        (common::launch(cmd), dir)
    })
    .await
    .unwrap();
    c.bases[node] = started.base.clone();
    c.nodes[node] = Some(started);
    c._dirs.push(dir);
}

/// Waits until the nodes' coherence connections per server are `want`; how long it took.
async fn until_on(nats: &NatsCluster, want: &[Option<u64>], within: Duration) -> Duration {
    let started = Instant::now();
    loop {
        let got = nats.coherence_clients().await;
        if got == want {
            return started.elapsed();
        }
        assert!(
            started.elapsed() < within,
            "the nodes' coherence connections per NATS server are {got:?}, not {want:?}, \
             after {within:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// `portrait_cache_version_checks_total` of each node.
async fn version_checks(c: &Cluster) -> Vec<f64> {
    metrics(c, "portrait_cache_version_checks_total").await
}

/// `name` of each node.
async fn metrics(c: &Cluster, name: &str) -> Vec<f64> {
    let mut v = Vec::new();
    for b in &c.bases {
        v.push(metric(b, name).await);
    }
    v
}

/// Until `stop`: writes a unique nick through one node and reads it back through the other,
/// alternating; every read must see the write just acknowledged. Returns the rounds made.
async fn checker(bases: Arc<Mutex<Vec<String>>>, stop: Arc<AtomicBool>) -> usize {
    let mut rounds = 0;
    while !stop.load(Ordering::Relaxed) {
        let (from, to) = (rounds % 2, (rounds + 1) % 2);
        let (write, read) = {
            let b = bases.lock().unwrap();
            (b[from].clone(), b[to].clone())
        };
        let nick = format!("check-{rounds}");
        let user = USERS[rounds % USERS.len()];
        rounds += 1;
        // A node restarting refuses connections for a moment: skip that round.
        let Ok(r) = AdminClient::new(&write, APP, ADMIN, KEY)
            .portrait_set(user, &[(NICK, json!(nick))])
            .await
        else {
            tokio::time::sleep(Duration::from_millis(50)).await;
            continue;
        };
        assert_eq!(r.code(), 0, "portrait_set through {write}: {}", r.0);
        let Ok(r) = AdminClient::new(&read, APP, ADMIN, KEY)
            .portrait_get(&[user], &[NICK])
            .await
        else {
            tokio::time::sleep(Duration::from_millis(50)).await;
            continue;
        };
        assert_eq!(r.code(), 0, "portrait_get through {read}: {}", r.0);
        assert_eq!(
            item(&r, 0, NICK),
            json!(nick),
            "portrait_get of {user} through {read} right after {write} acknowledged {nick}"
        );
    }
    rounds
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn converge_nodes_apart_on_a_nats_cluster_meet_on_the_first_server_and_trust_again() {
    let mut nats = NatsCluster::start().await;
    let mut c = Cluster::start(
        2,
        Options {
            nats_per_node: vec![nats.url(), nats.url()],
            // As in `reads.rs`: a longer lease, so a busy machine does not end the trust that
            // the last step measures.
            coherence_lease_ms: Some(2_000),
            ..Options::default()
        },
    )
    .await;
    until_trusted(&c, &[0, 1], true, Duration::from_secs(10)).await;
    until_on(&nats, &[Some(2), Some(0), Some(0)], Duration::from_secs(5)).await;
    import_and_warm(&c, 2).await;
    let bases = Arc::new(Mutex::new(c.bases.clone()));
    let stop = Arc::new(AtomicBool::new(false));
    let check = tokio::spawn(checker(bases.clone(), stop.clone()));

    // The first server dies: both nodes move to the next listed one and trust again there.
    nats.kill(0);
    let moved = until_on(&nats, &[None, Some(2), Some(0)], Duration::from_secs(10)).await;
    until_trusted(&c, &[0, 1], true, Duration::from_secs(15)).await;
    println!("converge: server 0 killed; both nodes on server 1 after {moved:?}");

    // The first server comes back and node 1 restarts: node 1 connects to it, node 0 is still
    // on server 1, and nobody can trust until they meet.
    nats.restart(0).await;
    let back = Instant::now();
    restart_node(&mut c, 1).await;
    *bases.lock().unwrap() = c.bases.clone();
    let restarted = back.elapsed();
    until_trusted(&c, &[0, 1], true, CONVERGE_BOUND.saturating_sub(restarted)).await;
    let trusted = back.elapsed();
    // Where they met: the first listed server, which node 1 took when it started.
    until_on(&nats, &[Some(2), Some(0), Some(0)], Duration::from_secs(1)).await;
    println!(
        "converge: server 0 back; node 1 restarted after {restarted:?}; both nodes on server 0 \
         and trusting their caches after {trusted:?}"
    );

    // Reads are answered from memory again: no version check beyond each node's first read.
    for j in 0..2 {
        ok(c.admin(j).portrait_get(&USERS, &[NICK]).await, "get");
    }
    stop.store(true, Ordering::Relaxed);
    let rounds = check.await.unwrap();
    let before = version_checks(&c).await;
    let epochs = metrics(&c, "portrait_coherence_epochs_total").await;
    for i in 0..20 {
        write_then_read(&c, i % 2, &[0, 1], USERS[i % 3], &format!("home-{i}")).await;
    }
    let after = version_checks(&c).await;
    let epochs_after = metrics(&c, "portrait_coherence_epochs_total").await;
    let gaps = metrics(&c, "portrait_coherence_gaps_total").await;
    let failed = metrics(&c, "portrait_coherence_unacknowledged_total").await;
    println!(
        "converge: epochs {epochs:?} → {epochs_after:?}, gaps {gaps:?}, unacknowledged \
         {failed:?}"
    );
    for j in 0..2 {
        assert!(
            after[j] - before[j] <= 2.0,
            "node {j} still checks versions ({before:?} → {after:?}; epochs {epochs:?} → \
             {epochs_after:?}, gaps {gaps:?}, unacknowledged {failed:?}): its cache is not \
             trusted"
        );
    }
    println!("converge: the checker read every acknowledged write back in {rounds} rounds");
}
