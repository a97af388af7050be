//! Issue #19, item 2: limits counted across nodes through Redis (`[cluster] redis_url`,
//! docs/deployment.md "Limits across nodes"), on the cluster harness of `multinode.rs`:
//!
//! * three nodes with an app limit of 200 calls/s, load spread evenly over them, admit
//!   200 ± 10 % calls in each second of Redis's clock;
//! * a per-user connection cap of 2 holds over two nodes: the third connection, on the other
//!   node, is refused exactly as the node's own cap refuses it (49003, close 4003), and the
//!   connections of a node that is killed stop counting after `conn_ttl_ms`;
//! * the client API's per-user and per-app limits hold over two nodes;
//! * nodes start while Redis is down; while it is down every call is still served, with
//!   per-node limits, and shared counting returns once Redis is back (a private `redis-server`
//!   that the test starts, kills and starts again).
//!
//! Redis must answer at `PORTRAIT_TEST_REDIS_URL` (default `redis://127.0.0.1:6379`;
//! `scripts/services.sh` starts it); each test writes under a key prefix of its own.

use super::*;

const REDIS_URL_ENV: &str = "PORTRAIT_TEST_REDIS_URL";
const DEFAULT_REDIS_URL: &str = "redis://127.0.0.1:6379";

/// The tests' Redis URL, after checking that it answers.
///
/// # Panics
/// If Redis does not answer PING within 5 s, saying how to start it.
async fn require_redis() -> String {
    let url = std::env::var(REDIS_URL_ENV)
        .ok()
        .filter(|u| !u.is_empty())
        .unwrap_or_else(|| DEFAULT_REDIS_URL.to_owned());
    let hint = format!(
        "the cluster-limit tests need Redis at {REDIS_URL_ENV} (default {DEFAULT_REDIS_URL}): \
         run `bash scripts/services.sh`, or `apt-get install redis-server`, or point \
         {REDIS_URL_ENV} at one"
    );
    let ping = async {
        let mut conn = redis::Client::open(url.as_str())?
            .get_multiplexed_async_connection()
            .await?;
        redis::cmd("PING").query_async::<String>(&mut conn).await
    };
    match tokio::time::timeout(Duration::from_secs(5), ping).await {
        Ok(Ok(_)) => url,
        Ok(Err(e)) => panic!("Redis at {url}: {e}\n{hint}"),
        Err(_) => panic!("Redis at {url} did not answer within 5 s\n{hint}"),
    }
}

/// A key prefix no other test run uses.
fn prefix() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!("portrait-test-{}-{nanos}", std::process::id())
}

/// The nodes' `[cluster]` section: short retry, and a timeout generous for a busy machine.
fn cluster_section(url: &str) -> String {
    cluster_section_with(url, &prefix())
}

/// [`cluster_section`] with the key prefix `prefix`.
fn cluster_section_with(url: &str, prefix: &str) -> String {
    format!(
        "\n[cluster]\nredis_url = \"{url}\"\nkey_prefix = \"{prefix}\"\ntimeout_ms = 1000\nretry_ms = 200\n"
    )
}

/// The app's limits: `portrait_get` at `per_sec`, every other limit off.
fn limits(per_sec: u32) -> String {
    format!(
        "[apps.rate_limits]\nenabled = true\nportrait_get = {per_sec}\nportrait_set = 0\n\
         account_import = 0\naccount_check = 0\n\n\
         [apps.client_rate_limits]\nuser_reads = 0\nuser_writes = 0\napp_reads = 0\napp_writes = 0\n"
    )
}

/// The local instant at which Redis's clock next starts a second (a window of the limits).
async fn next_window(url: &str) -> tokio::time::Instant {
    next_window_second(url).await.0
}

/// [`next_window`] and that second of Redis's clock.
async fn next_window_second(url: &str) -> (tokio::time::Instant, u64) {
    let mut conn = redis::Client::open(url)
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    let asked = tokio::time::Instant::now();
    let (secs, micros): (u64, u64) = redis::cmd("TIME").query_async(&mut conn).await.unwrap();
    let rtt = asked.elapsed();
    (
        asked + rtt / 2 + Duration::from_micros(1_000_000 - micros),
        secs + 1,
    )
}

/// The second of Redis's clock now.
async fn redis_second(url: &str) -> u64 {
    let mut conn = redis::Client::open(url)
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    let (secs, _): (u64, u64) = redis::cmd("TIME").query_async(&mut conn).await.unwrap();
    secs
}

/// Runs `calls` from the start of a window of Redis's clock and returns their result if they
/// all ran within it (read from Redis's clock before and after); tries again in a later window,
/// up to 5 times, when the machine was too busy for that.
async fn in_one_window<T, F: std::future::Future<Output = T>>(
    url: &str,
    mut calls: impl FnMut() -> F,
) -> T {
    for _ in 0..5 {
        tokio::time::sleep_until(next_window(url).await + Duration::from_millis(10)).await;
        let before = redis_second(url).await;
        let out = calls().await;
        if redis_second(url).await == before {
            return out;
        }
    }
    panic!(
        "the calls did not fit in one second of Redis's clock in 5 tries: the machine is too busy"
    );
}

/// `portrait_cluster_limits_connected` of the node at `base` (None when not served).
async fn connected(base: &str) -> Option<f64> {
    let text = reqwest::get(format!("{base}/metrics"))
        .await
        .ok()?
        .text()
        .await
        .ok()?;
    text.lines()
        .find_map(|l| l.strip_prefix("portrait_cluster_limits_connected "))
        .and_then(|v| v.trim().parse().ok())
}

/// Waits until every node reports the gauge at `want`.
async fn wait_connected(c: &Cluster, want: f64) {
    let deadline = tokio::time::Instant::now() + PUSH_WAIT;
    for base in &c.bases {
        loop {
            let now = connected(base).await;
            if now == Some(want) {
                break;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "{base}: portrait_cluster_limits_connected is {now:?}, not {want}, after {PUSH_WAIT:?}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

/// `n` `portrait_get` calls at once through each of `nodes`: how many each admitted (0) and
/// refused (60007). Any other answer fails the test: every call must be served.
async fn burst(c: &Cluster, nodes: &[usize], n: usize) -> Vec<(usize, usize)> {
    let mut out = Vec::new();
    let tasks: Vec<_> = nodes
        .iter()
        .map(|&node| {
            let admin = c.admin(node);
            tokio::spawn(async move {
                let calls = (0..n).map(|_| admin.portrait_get(&[ADMIN], &[NICK]));
                futures_codes(calls).await
            })
        })
        .collect();
    for t in tasks {
        out.push(t.await.unwrap());
    }
    out
}

/// Runs `calls` concurrently; (admitted, refused).
async fn futures_codes(
    calls: impl Iterator<Item = impl std::future::Future<Output = portrait_client::Result<Reply>>>,
) -> (usize, usize) {
    let handles: Vec<_> = calls.collect();
    let mut admitted = 0;
    let mut refused = 0;
    for r in join_all(handles).await {
        match r.map(|r| r.code()) {
            Ok(0) => admitted += 1,
            Ok(60007) => refused += 1,
            other => panic!("a call was not served: {other:?}"),
        }
    }
    (admitted, refused)
}

/// Awaits all of `futs` concurrently (on this task).
async fn join_all<F: std::future::Future>(futs: Vec<F>) -> Vec<F::Output> {
    let mut futs: Vec<_> = futs.into_iter().map(Box::pin).collect();
    let mut out: Vec<Option<F::Output>> = futs.iter().map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut pending = false;
        for (f, o) in futs.iter_mut().zip(out.iter_mut()) {
            if o.is_none() {
                match f.as_mut().poll(cx) {
                    std::task::Poll::Ready(v) => *o = Some(v),
                    std::task::Poll::Pending => pending = true,
                }
            }
        }
        if pending {
            std::task::Poll::Pending
        } else {
            std::task::Poll::Ready(())
        }
    })
    .await;
    out.into_iter().map(Option::unwrap).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_nodes_admit_an_apps_limit_of_200_calls_a_second_in_total() {
    const LIMIT: usize = 200;
    const WINDOWS: usize = 3;
    /// Callers per node, each sending its next call as soon as the last is answered: as much
    /// load as the machine serves (more than the limit), spread evenly over the nodes, without
    /// the pile-up of a fixed rate that a busy machine cannot keep.
    const CALLERS: usize = 4;
    let redis = require_redis().await;
    let prefix = prefix();
    let c = Cluster::start(
        3,
        Options {
            cluster: Some(cluster_section_with(&redis, &prefix)),
            limits: Some(limits(LIMIT as u32)),
            ..Options::default()
        },
    )
    .await;
    wait_connected(&c, 1.0).await;
    // Start with a window of Redis's clock, so the calls fall into WINDOWS whole windows (and
    // the calls still answered after them, into one more).
    let (start, first) = next_window_second(&redis).await;
    let end = start + Duration::from_secs(WINDOWS as u64);
    // What the nodes took from each window, read from Redis (docs/deployment.md names the
    // keys) while the window's key lives (2 s): how a response's time falls on the server's
    // windows is blurred on a busy machine, Redis's count is not.
    let granted = {
        let (redis, prefix) = (redis.clone(), prefix.clone());
        move |second: u64| {
            let (redis, key) = (
                redis.clone(),
                format!("{prefix}:rate:{APP}:portrait_get:{second}"),
            );
            async move {
                let mut conn = redis::Client::open(redis.as_str())
                    .unwrap()
                    .get_multiplexed_async_connection()
                    .await
                    .unwrap();
                let n: Option<usize> = redis::cmd("GET")
                    .arg(key)
                    .query_async(&mut conn)
                    .await
                    .unwrap();
                n.unwrap_or(0)
            }
        }
    };
    let monitor = tokio::spawn({
        let granted = granted.clone();
        async move {
            let mut out = Vec::new();
            for w in 0..WINDOWS {
                tokio::time::sleep_until(start + Duration::from_millis(1000 * w as u64 + 1100))
                    .await;
                out.push(granted(first + w as u64).await);
            }
            out
        }
    });
    tokio::time::sleep_until(start).await;
    let tasks: Vec<_> = (0..3)
        .flat_map(|node| (0..CALLERS).map(move |_| node))
        .map(|node| {
            let admin = c.admin(node);
            tokio::spawn(async move {
                let mut out = Vec::new();
                while tokio::time::Instant::now() < end {
                    let r = admin.portrait_get(&[ADMIN], &[NICK]).await;
                    out.push((node, r.map(|r| r.code())));
                }
                out
            })
        })
        .collect();
    let mut admitted = [0usize; 3];
    let mut refused = 0;
    for t in tasks {
        for (node, code) in t.await.unwrap() {
            match code {
                Ok(0) => admitted[node] += 1,
                Ok(60007) => refused += 1,
                other => panic!("node {node}: a call was not served: {other:?}"),
            }
        }
    }
    let mut per_window = monitor.await.unwrap();
    let after = granted(first + WINDOWS as u64).await;
    eprintln!(
        "cluster limit {LIMIT}/s over 3 nodes, {CALLERS} callers each: taken per second \
         {per_window:?} (+{after} by calls still answered after), admitted per node \
         {admitted:?}, refused {refused}"
    );
    for (w, n) in per_window.iter().enumerate() {
        assert!(
            (LIMIT * 9 / 10..=LIMIT * 11 / 10).contains(n),
            "second {w}: the 3 nodes together took {n} calls, not {LIMIT} ± 10 % (per second \
             {per_window:?}; under {LIMIT} means either lost counts or a machine that could not \
             offer more calls than the limit)"
        );
    }
    // What was taken is what was admitted, but for the tokens each node held when a window
    // ended (less than one chunk of 2 per node and window).
    per_window.push(after);
    let taken: usize = per_window.iter().sum();
    let total: usize = admitted.iter().sum();
    assert!(
        total <= taken && taken - total <= 3 * per_window.len(),
        "the nodes admitted {total} calls but took {taken} from Redis ({per_window:?})"
    );
    assert!(refused > 0, "nothing was refused");
    for (node, n) in admitted.iter().enumerate() {
        assert!(
            *n >= LIMIT * WINDOWS / 3 / 2,
            "node {node} admitted only {n}: the load was not spread ({admitted:?})"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_users_connection_cap_holds_across_nodes() {
    /// `[cluster] conn_ttl_ms`: how long a dead node's connections still count.
    const CONN_TTL: Duration = Duration::from_millis(1000);
    let redis = require_redis().await;
    let mut c = Cluster::start(
        2,
        Options {
            cluster: Some(
                cluster_section(&redis) + &format!("conn_ttl_ms = {}\n", CONN_TTL.as_millis()),
            ),
            max_connections_per_user: Some(2),
            ..Options::default()
        },
    )
    .await;
    wait_connected(&c, 1.0).await;
    ok(
        c.admin(0).account_import("alice", None, None).await,
        "import alice",
    );
    let first = Subscriber::connect(&c.user(0, "alice"), None, &[]).await;
    let _second = Subscriber::connect(&c.user(0, "alice"), None, &[]).await;
    // The third, on the other node: refused as the node's own cap refuses.
    let mut third = c.user(1, "alice").connect(None, &[]).await.unwrap();
    match third.frame(PUSH_WAIT).await {
        Ok(Frame::Error { code, message, .. }) => {
            assert_eq!(code, 49003, "{message}");
            assert!(message.contains("already has 2 connections"), "{message}");
        }
        other => panic!("a third connection over two nodes: expected 49003, got {other:?}"),
    }
    assert!(
        matches!(third.next().await.unwrap(), Some(Incoming::Closed(4003, _))),
        "then closed with 4003"
    );
    // Closing one on node 0 frees a place on node 1.
    first.socket.close().await;
    let (_on_1, _) = connect_when_free(&c, 1, "alice").await;
    // A node that dies stops counting once its connections expire (nobody refreshes them).
    c.kill(0);
    let (_again, took) = connect_when_free(&c, 1, "alice").await;
    eprintln!(
        "a killed node's connection stopped counting after {took:?} (conn_ttl_ms {CONN_TTL:?})"
    );
}

/// Connects `user` to `node` as soon as the cap allows (refused with 49003 until then): the
/// socket and how long it took.
async fn connect_when_free(c: &Cluster, node: usize, user: &str) -> (Socket, Duration) {
    let began = tokio::time::Instant::now();
    loop {
        let mut s = c.user(node, user).connect(None, &[]).await.unwrap();
        match s.frame(PUSH_WAIT).await {
            Ok(Frame::Ready { .. }) => return (s, began.elapsed()),
            Ok(Frame::Error { code: 49003, .. }) if began.elapsed() < PUSH_WAIT => {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            other => panic!(
                "{user} on node {node} after {:?}: {other:?}",
                began.elapsed()
            ),
        }
    }
}

/// A `redis-server` of the test's own on a free port, killed on drop.
struct PrivateRedis {
    child: Option<std::process::Child>,
}

impl PrivateRedis {
    fn start(port: u16) -> PrivateRedis {
        let child = std::process::Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .stdout(std::process::Stdio::null())
            .spawn()
            .expect("redis-server (apt-get install redis-server; scripts/services.sh does)");
        PrivateRedis { child: Some(child) }
    }

    fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for PrivateRedis {
    fn drop(&mut self) {
        self.kill();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_redis_calls_are_served_with_per_node_limits_and_sharing_returns_after() {
    const LIMIT: usize = 20;
    /// Calls per node in each burst: over the limit on each node.
    const BURST: usize = 30;
    require_redis().await;
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("redis://127.0.0.1:{port}");
    // The nodes start while nothing answers there, and serve with per-node limits …
    let c = Cluster::start(
        2,
        Options {
            cluster: Some(cluster_section(&url)),
            limits: Some(limits(LIMIT as u32)),
            ..Options::default()
        },
    )
    .await;
    wait_connected(&c, 0.0).await;
    ok(
        c.admin(0).portrait_get(&[ADMIN], &[NICK]).await,
        "served without Redis",
    );
    // … and share them once Redis answers.
    let mut redis = PrivateRedis::start(port);
    wait_connected(&c, 1.0).await;

    // Shared: one window admits LIMIT calls over both nodes together.
    let shared = in_one_window(&url, || burst(&c, &[0, 1], BURST)).await;
    let total: usize = shared.iter().map(|(a, _)| a).sum();
    assert_eq!(total, LIMIT, "shared counting: {shared:?}");

    // Redis gone: every call is still served, each node holding its own limit.
    redis.kill();
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let alone = burst(&c, &[0, 1], BURST).await;
    for (node, (admitted, _)) in alone.iter().enumerate() {
        assert!(
            (LIMIT..=LIMIT + 5).contains(admitted),
            "node {node} without Redis admitted {admitted} of {BURST} (its own limit {LIMIT}): {alone:?}"
        );
    }
    wait_connected(&c, 0.0).await;

    // Redis back (empty): shared counting resumes without a restart.
    let _redis = PrivateRedis::start(port);
    wait_connected(&c, 1.0).await;
    let again = in_one_window(&url, || burst(&c, &[0, 1], BURST)).await;
    let total: usize = again.iter().map(|(a, _)| a).sum();
    assert_eq!(
        total, LIMIT,
        "shared counting after Redis came back: {again:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_api_limits_per_user_and_per_app_hold_across_nodes() {
    const USER_READS: usize = 10;
    const APP_READS: usize = 30;
    let redis = require_redis().await;
    let c = Cluster::start(
        2,
        Options {
            cluster: Some(cluster_section(&redis)),
            limits: Some(format!(
                "[apps.rate_limits]\nenabled = false\n\n[apps.client_rate_limits]\n\
                 user_reads = {USER_READS}\nuser_writes = 0\napp_reads = {APP_READS}\napp_writes = 0\n"
            )),
            ..Options::default()
        },
    )
    .await;
    wait_connected(&c, 1.0).await;
    let users = ["alice", "u0", "u1", "u2", "u3"];
    for u in users {
        ok(c.admin(0).account_import(u, None, None).await, "import");
    }
    /// Each of `who` reads its profile `n` times through each node at once: the answers.
    async fn reads(c: &Cluster, who: &[&str], n: usize) -> Vec<Reply> {
        let clients: Vec<UserClient> = who
            .iter()
            .flat_map(|u| (0..2).map(move |node| (node, *u)))
            .map(|(node, u)| c.user(node, u))
            .collect();
        let calls = clients
            .iter()
            .flat_map(|client| (0..n).map(move |_| client.get_my_profile(None)));
        join_all(calls.collect())
            .await
            .into_iter()
            .map(|r| r.expect("every call is served"))
            .collect()
    }
    let admitted = |rs: &[Reply]| rs.iter().filter(|r| r.code() == 0).count();

    // One user over two nodes: USER_READS in a second, the rest refused by the per-user limit.
    let rs = in_one_window(&redis, || reads(&c, &["alice"], 15)).await;
    assert_eq!(admitted(&rs), USER_READS, "alice's reads over two nodes");
    for r in rs.iter().filter(|r| r.code() != 0) {
        assert_eq!(r.code(), 60007, "{}", r.0);
        assert!(
            r.0["ErrorInfo"]
                .as_str()
                .unwrap_or_default()
                .contains("per user"),
            "{}",
            r.0
        );
    }

    // Four users within their own limit, over the app's: APP_READS in a second.
    let rs = in_one_window(&redis, || reads(&c, &users[1..], USER_READS / 2)).await;
    assert_eq!(rs.len(), 40);
    assert_eq!(admitted(&rs), APP_READS, "the app's reads over two nodes");
    for r in rs.iter().filter(|r| r.code() != 0) {
        assert!(
            r.0["ErrorInfo"]
                .as_str()
                .unwrap_or_default()
                .contains("for the app"),
            "{}",
            r.0
        );
    }
}
