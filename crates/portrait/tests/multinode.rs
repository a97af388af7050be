//! Several `portrait serve` processes sharing one PostgreSQL and NATS — the scale-out deployment of
//! docs/deployment.md — end to end on loopback:
//!
//! * a write acknowledged by one node is read back at once through every other node;
//! * a change written through any node is pushed exactly once to subscribers on every node;
//! * a subscriber whose node is SIGKILLed reconnects to another node with `since=<cursor>` and
//!   receives exactly what it missed, nothing twice, also while writes go on;
//! * webhooks, kicks and deletes behave the same whichever node handles them.
//!
//! Each test starts three nodes (the real binary) on a schema of its own in the tests' PostgreSQL
//! (`portrait_store::testkit::fresh_postgres_url`: `PORTRAIT_TEST_PG_URL`, default
//! `postgres://postgres@127.0.0.1:5432/test`), dropped at the end, sharing NATS
//! (`PORTRAIT_TEST_NATS_URL`, default `nats://127.0.0.1:4222`) on a subject of their own, with
//! push polling every [`POLL_MS`] (so a change reaches other nodes even without NATS), except in
//! the test that slows polling down to prove NATS alone carries changes across at once. Both
//! services must be running: a test fails, naming the missing one, when either is not
//! (`bash .ci/run` starts them).
//!
//! Writes carry unique values, so every event is identified by `(account, value)`: a duplicate
//! or a missing event shows up as a difference between what was acknowledged and what arrived.
//!

mod common;

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use portrait_client::user::{Frame, Incoming, ProfileEvent, Socket, UserClient, ADMIN_OPERATOR};
use portrait_client::{AdminClient, Reply};
use portrait_store::testkit;
use serde_json::{json, Value};
use tokio::io::AsyncBufReadExt;

const APP: u64 = 1_400_000_001;
const KEY: &str = "multinode-test-key";
const ADMIN: &str = "administrator";
const NICK: &str = "Tag_Profile_IM_Nick";
const LEVEL: &str = "Tag_Profile_IM_Level";
const SIGNATURE: &str = "Tag_Profile_IM_SelfSignature";

/// `push.poll_interval_ms` of the nodes: without NATS, a change written through another node
/// reaches a node's subscribers within this.
const POLL_MS: u64 = 50;
/// Longest wait for an expected push or close (generous: the machine may be busy).
const PUSH_WAIT: Duration = Duration::from_secs(20);
/// How long a connection must stay silent to show that nothing more (no duplicate) comes: many
/// poll intervals.
const QUIET: Duration = Duration::from_millis(1500);

/// Env var with the NATS URL of the tests.
const NATS_URL_ENV: &str = "PORTRAIT_TEST_NATS_URL";
const DEFAULT_NATS_URL: &str = "nats://127.0.0.1:4222";

// ---------------------------------------------------------------------------------------------
// The services and the cluster
// ---------------------------------------------------------------------------------------------

/// The NATS URL of the tests, after checking that a NATS server answers there.
///
/// # Panics
/// If nothing answers with NATS's `INFO` greeting within 5 s, saying how to start NATS.
async fn require_nats() -> String {
    let url = std::env::var(NATS_URL_ENV)
        .ok()
        .filter(|u| !u.is_empty())
        .unwrap_or_else(|| DEFAULT_NATS_URL.to_owned());
    let rest = url.strip_prefix("nats://").unwrap_or(&url);
    let addr = rest
        .rsplit('@')
        .next()
        .unwrap_or(rest)
        .trim_end_matches('/');
    let hint = format!(
        "the multi-node tests need NATS at {NATS_URL_ENV} (default {DEFAULT_NATS_URL}). Start it \
         (`bash .ci/run` does; or `apt-get install nats-server && nats-server -js -a 127.0.0.1 -p 4222 &`) \
         or point {NATS_URL_ENV} at one"
    );
    let stream =
        match tokio::time::timeout(Duration::from_secs(5), tokio::net::TcpStream::connect(addr))
            .await
        {
            Ok(Ok(stream)) => stream,
            Ok(Err(e)) => panic!("NATS at {addr} is unreachable: {e}\n{hint}"),
            Err(_) => panic!("NATS at {addr} did not accept a connection within 5 s\n{hint}"),
        };
    let mut greeting = String::new();
    let read = tokio::time::timeout(
        Duration::from_secs(5),
        tokio::io::BufReader::new(stream).read_line(&mut greeting),
    )
    .await;
    assert!(
        matches!(read, Ok(Ok(_))) && greeting.starts_with("INFO "),
        "NATS at {addr}: no NATS server there (expected its INFO line, got {greeting:?}, {read:?})\n{hint}"
    );
    url
}

/// A schema of the tests' PostgreSQL database, dropped when this is dropped.
struct PgSchema {
    name: String,
}

impl PgSchema {
    /// A fresh schema of the tests' PostgreSQL (`testkit::fresh_postgres_url`): its URL, and
    /// the guard that drops it.
    async fn fresh() -> (String, PgSchema) {
        let url = testkit::fresh_postgres_url().await;
        let name = url
            .rsplit_once("search_path%3D")
            .expect("testkit URLs name their schema")
            .1
            .to_owned();
        (url, PgSchema { name })
    }
}

impl Drop for PgSchema {
    fn drop(&mut self) {
        let name = std::mem::take(&mut self.name);
        // Drop may run inside the test's runtime, which cannot be blocked on: use a thread with
        // a runtime of its own. Best effort: leftovers are dropped by a later run (testkit).
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .ok()?;
            rt.block_on(async {
                use sqlx::Connection;
                let mut conn = sqlx::PgConnection::connect(&testkit::test_pg_url())
                    .await
                    .ok()?;
                sqlx::query(&format!("drop schema if exists {name} cascade"))
                    .execute(&mut conn)
                    .await
                    .ok()?;
                conn.close().await.ok()
            })
        })
        .join();
    }
}

/// How the nodes of a [`Cluster`] are configured beyond the common settings.
#[derive(Default)]
struct Options {
    /// `store.cache_entries` (default: the server's default, i.e. the read cache on).
    cache_entries: Option<usize>,
    /// `push.poll_interval_ms` (default [`POLL_MS`]).
    poll_interval_ms: Option<u64>,
    /// The app's `[apps.webhook] url`.
    webhook: Option<String>,
    /// Configure the webhook on the first node only (the others have no `[apps.webhook]`).
    webhook_on_first_node_only: bool,
    /// `[apps.webhook] lease_ms` (default: the server's default).
    webhook_lease_ms: Option<u64>,
    /// `[operator] token` of every node (default: the operator API off).
    operator_token: Option<&'static str>,
    /// `[operator] poll_ms` (default: the server's default).
    operator_poll_ms: Option<u64>,
    /// Run without NATS (no `push.nats_url`): changes cross nodes by polling only.
    without_nats: bool,
    /// The nodes' `[cluster]` section and the app's limit sections (default: none, and every
    /// rate limit off), and `push.max_connections_per_user` (multinode/limits.rs).
    cluster: Option<String>,
    limits: Option<String>,
    max_connections_per_user: Option<usize>,
    /// Per node, a NATS URL other than the tests' shared one (`multinode/reads.rs`).
    nats_per_node: Vec<String>,
    /// `[coherence] lease_ms` (default: the server's default).
    coherence_lease_ms: Option<u64>,
    /// More lines of `[store]` (`multinode/shards.rs`: `shards = { … }`).
    store_extra: Option<String>,
    /// `[server] request_timeout_ms` (default: the server's default).
    request_timeout_ms: Option<u64>,
}

/// Nodes sharing one PostgreSQL schema (and NATS). Dropping it kills the nodes, then drops the
/// schema (fields drop in declaration order).
struct Cluster {
    /// `None` once killed.
    nodes: Vec<Option<common::Node>>,
    bases: Vec<String>,
    /// The nodes' `store.url`.
    store_url: String,
    /// Data directories of the nodes and the directory of the configuration file.
    _dirs: Vec<tempfile::TempDir>,
    _schema: PgSchema,
}

impl Cluster {
    /// Starts `n` nodes at once (so they also migrate the fresh schema concurrently).
    async fn start(n: usize, options: Options) -> Cluster {
        let nats = require_nats().await;
        let (url, schema) = PgSchema::fresh().await;
        let config_dir = tempfile::tempdir().unwrap();
        let configs: Vec<std::path::PathBuf> = (0..n)
            .map(|node| {
                let path = config_dir.path().join(format!("node{node}.toml"));
                let text = config_text(&url, &nats, &schema.name, &options, node);
                std::fs::write(&path, text).unwrap();
                path
            })
            .collect();

        let started = tokio::task::spawn_blocking(move || {
            std::thread::scope(|s| {
                let handles: Vec<_> = configs
                    .iter()
                    .map(|config| {
                        s.spawn(move || {
                            let dir = tempfile::tempdir().unwrap();
                            let mut cmd = common::serve_command(dir.path());
                            cmd.arg("--config").arg(config);
                            (common::launch(cmd), dir)
                        })
                    })
                    .collect();
                handles
                    .into_iter()
                    .map(|h| h.join().unwrap_or_else(|p| std::panic::resume_unwind(p)))
                    .collect::<Vec<_>>()
            })
        })
        .await
        .unwrap_or_else(|e| std::panic::resume_unwind(e.into_panic()));

        let mut nodes = Vec::new();
        let mut bases = Vec::new();
        let mut dirs = vec![config_dir];
        for (node, dir) in started {
            bases.push(node.base.clone());
            nodes.push(Some(node));
            dirs.push(dir);
        }
        Cluster {
            nodes,
            bases,
            store_url: url,
            _dirs: dirs,
            _schema: schema,
        }
    }

    fn admin(&self, node: usize) -> AdminClient {
        AdminClient::new(&self.bases[node], APP, ADMIN, KEY)
    }

    /// `user`, signed in on `node` with a UserSig minted now.
    fn user(&self, node: usize, user: &str) -> UserClient {
        UserClient::with_key(&self.bases[node], APP, user, KEY)
    }

    /// Waits until a webhook worker has stored its starting position. A webhook's first start
    /// begins at the app's version when its worker starts, shortly after the node listens;
    /// changes made before that are not delivered (by design), so tests write only after it.
    async fn webhook_started(&self) {
        let store = portrait_store::open(&self.store_url)
            .await
            .expect("open the cluster's store");
        let deadline = tokio::time::Instant::now() + PUSH_WAIT;
        while store.cursor(APP, "webhook").await.unwrap().is_none() {
            assert!(
                tokio::time::Instant::now() < deadline,
                "no webhook worker stored its cursor within {PUSH_WAIT:?}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        store.close().await;
    }

    /// The node holding the app's webhook lease.
    async fn webhook_holder(&self) -> usize {
        use sqlx::Connection;
        let mut conn = sqlx::PgConnection::connect(&self.store_url)
            .await
            .expect("connect to the cluster's schema");
        let holder: String =
            sqlx::query_scalar("select holder from leases where app_id = $1 and name = 'webhook'")
                .bind(i64::try_from(APP).unwrap())
                .fetch_one(&mut conn)
                .await
                .expect("a webhook lease is held");
        let _ = conn.close().await;
        let pid: u32 = holder
            .split('-')
            .next()
            .and_then(|p| p.parse().ok())
            .unwrap_or_else(|| panic!("lease holder {holder:?} is not <pid>-…"));
        self.nodes
            .iter()
            .position(|n| n.as_ref().is_some_and(|n| n.child.id() == pid))
            .unwrap_or_else(|| panic!("lease holder {holder:?} is none of the running nodes"))
    }

    /// Starts one more node with the configuration of node `like`; answers its base URL.
    async fn launch_another(&mut self, like: usize) -> String {
        let config = self._dirs[0].path().join(format!("node{like}.toml"));
        let (node, dir) = tokio::task::spawn_blocking(move || {
            let dir = tempfile::tempdir().unwrap();
            let mut cmd = common::serve_command(dir.path());
            cmd.arg("--config").arg(config);
            (common::launch(cmd), dir)
        })
        .await
        .unwrap_or_else(|e| std::panic::resume_unwind(e.into_panic()));
        let base = node.base.clone();
        self.bases.push(base.clone());
        self.nodes.push(Some(node));
        self._dirs.push(dir);
        base
    }

    /// Stops `node` with SIGTERM (it leaves the members) and waits until it exits.
    fn stop(&mut self, node: usize) {
        let mut old = self.nodes[node].take().expect("the node is running");
        let stopped = std::process::Command::new("kill")
            .args(["-TERM", &old.child.id().to_string()])
            .status()
            .is_ok_and(|s| s.success());
        assert!(stopped, "SIGTERM to node {node}");
        tokio::task::block_in_place(|| old.child.wait())
            .unwrap_or_else(|e| panic!("node {node} does not exit: {e}"));
    }

    /// SIGKILLs `node`.
    fn kill(&mut self, node: usize) {
        self.nodes[node]
            .take()
            .expect("the node is still running")
            .kill9();
    }
}

/// The configuration file of `node`: the shared store, NATS on a subject of the cluster's own
/// (`subject`), fast push polling, one app.
fn config_text(
    store_url: &str,
    nats_url: &str,
    subject: &str,
    options: &Options,
    node: usize,
) -> String {
    let mut c = match options.request_timeout_ms {
        Some(ms) => format!("[server]\nrequest_timeout_ms = {ms}\n\n"),
        None => String::new(),
    };
    c.push_str(&format!("[store]\nurl = \"{store_url}\"\n"));
    if let Some(extra) = &options.store_extra {
        c.push_str(extra);
    }
    if let Some(n) = options.cache_entries {
        c.push_str(&format!("cache_entries = {n}\n"));
    }
    let nats_url = match options.nats_per_node.get(node) {
        _ if options.without_nats => "",
        Some(own) => own.as_str(),
        None => nats_url,
    };
    c.push_str(&format!(
        "\n[push]\npoll_interval_ms = {}\nnats_url = \"{nats_url}\"\nnats_subject = \"portrait-test.{subject}\"\n",
        options.poll_interval_ms.unwrap_or(POLL_MS)
    ));
    if let Some(n) = options.max_connections_per_user {
        c.push_str(&format!("max_connections_per_user = {n}\n"));
    }
    c.push_str(options.cluster.as_deref().unwrap_or_default());
    if let Some(ms) = options.coherence_lease_ms {
        c.push_str(&format!("\n[coherence]\nlease_ms = {ms}\n"));
    }
    if let Some(token) = options.operator_token {
        c.push_str(&format!("\n[operator]\ntoken = \"{token}\"\n"));
        if let Some(ms) = options.operator_poll_ms {
            c.push_str(&format!("poll_ms = {ms}\n"));
        }
    }
    c.push_str(&format!(
        "\n[[apps]]\nsdkappid = {APP}\nkey = \"{KEY}\"\nadmins = [\"{ADMIN}\"]\n\n{}",
        options.limits.as_deref().unwrap_or(
            "[apps.rate_limits]\nenabled = false\n\n\
             [apps.client_rate_limits]\nuser_reads = 0\nuser_writes = 0\napp_reads = 0\napp_writes = 0\n"
        )
    ));
    let webhook = options
        .webhook
        .as_ref()
        .filter(|_| node == 0 || !options.webhook_on_first_node_only);
    if let Some(url) = webhook {
        c.push_str(&format!(
            "\n[apps.webhook]\nurl = \"{url}\"\ninitial_backoff_ms = 50\nmax_backoff_ms = 500\n"
        ));
        if let Some(ms) = options.webhook_lease_ms {
            c.push_str(&format!("lease_ms = {ms}\n"));
        }
    }
    c
}

// ---------------------------------------------------------------------------------------------
// Small helpers
// ---------------------------------------------------------------------------------------------

/// The reply of a call that must succeed.
fn ok(r: portrait_client::Result<Reply>, what: &str) -> Reply {
    let r = r.unwrap_or_else(|e| panic!("{what}: {e}"));
    assert_eq!(r.code(), 0, "{what}: {}", r.0);
    r
}

/// The value of `tag` in the `i`-th `UserProfileItem` of a profile read.
fn item(r: &Reply, i: usize, tag: &str) -> Value {
    r.0["UserProfileItem"][i]["ProfileItem"]
        .as_array()
        .and_then(|items| items.iter().find(|it| it["Tag"] == tag))
        .map(|it| it["Value"].clone())
        .unwrap_or(Value::Null)
}

/// The other nodes of a three-node cluster.
fn others(node: usize) -> impl Iterator<Item = usize> {
    (0..3).filter(move |j| *j != node)
}

/// `(account, Nick written, operator)` of an event.
fn key_of(ev: &ProfileEvent) -> (String, String, String) {
    let nick = ev
        .item(NICK)
        .and_then(Value::as_str)
        .unwrap_or_else(|| panic!("event without a Nick: {ev:?}"));
    (ev.account.clone(), nick.to_owned(), ev.operator.clone())
}

/// Sorted, so that two lists compare as multisets (a duplicate is a difference).
fn sorted<T: Ord>(mut v: Vec<T>) -> Vec<T> {
    v.sort();
    v
}

/// Versions strictly increase along `events`: in version order, and nothing twice.
fn assert_strictly_increasing(events: &[ProfileEvent], what: &str) {
    for w in events.windows(2) {
        assert!(
            w[0].version < w[1].version,
            "{what}: version {} followed by {} (out of order or duplicate): {:?} then {:?}",
            w[0].version,
            w[1].version,
            w[0],
            w[1]
        );
    }
}

/// A raw WebSocket connection with the client's bookkeeping of docs/client-api.md: the last
/// `cursor`.
struct Subscriber {
    socket: Socket,
    /// Every change of every subscribed account up to this has been received.
    cursor: u64,
    /// For messages.
    name: String,
}

impl Subscriber {
    /// Connects `client` with `since` and `accounts` and reads the `ready` frame.
    async fn connect(client: &UserClient, since: Option<u64>, accounts: &[&str]) -> Subscriber {
        let url = client.ws_url(None, &[]);
        let name = format!(
            "{}@{}",
            client.user(),
            url.split('?').next().unwrap_or_default()
        );
        let mut socket = client
            .connect(since, accounts)
            .await
            .unwrap_or_else(|e| panic!("{name}: connect: {e}"));
        let cursor = match socket.frame(PUSH_WAIT).await {
            Ok(Frame::Ready { version, .. }) => since.unwrap_or(version),
            other => panic!("{name}: expected ready, got {other:?}"),
        };
        Subscriber {
            socket,
            cursor,
            name,
        }
    }

    /// The next frame that matters (profile or synced); panics on errors, closes and timeouts.
    async fn next(&mut self, what: &str, so_far: &[ProfileEvent]) -> Frame {
        loop {
            let got = tokio::time::timeout(PUSH_WAIT, self.socket.next()).await;
            let frame = match got {
                Ok(Ok(Some(Incoming::Frame(f)))) => f,
                other => panic!(
                    "{}: waiting for {what}: got {other:?}; received so far: {:#?}",
                    self.name,
                    so_far.iter().map(key_of).collect::<Vec<_>>()
                ),
            };
            match frame {
                Frame::Profile(ref ev) => {
                    self.cursor = self.cursor.max(ev.cursor);
                    return frame;
                }
                Frame::Synced { cursor } => {
                    self.cursor = self.cursor.max(cursor);
                    return frame;
                }
                Frame::Error { .. } => panic!("{}: error frame {frame:?}", self.name),
                _ => {}
            }
        }
    }

    /// The next `n` profile events.
    async fn events(&mut self, n: usize) -> Vec<ProfileEvent> {
        let mut got = Vec::new();
        while got.len() < n {
            let what = format!("event {} of {n}", got.len() + 1);
            match self.next(&what, &got).await {
                Frame::Profile(ev) => got.push(ev),
                other => panic!("{}: {what}: unexpected {other:?}", self.name),
            }
        }
        got
    }

    /// The catch-up: profile events up to the `synced` frame.
    async fn until_synced(&mut self) -> Vec<ProfileEvent> {
        let mut got = Vec::new();
        loop {
            match self.next("the catch-up and synced", &got).await {
                Frame::Profile(ev) => got.push(ev),
                Frame::Synced { .. } => return got,
                _ => unreachable!("next returns profile and synced frames only"),
            }
        }
    }

    /// Nothing more arrives for [`QUIET`] (no duplicate, no stray event).
    async fn assert_quiet(&mut self) {
        let deadline = tokio::time::Instant::now() + QUIET;
        loop {
            match tokio::time::timeout_at(deadline, self.socket.next()).await {
                Err(_) => return,
                Ok(Ok(Some(Incoming::Frame(Frame::Profile(ev))))) => panic!(
                    "{}: an event beyond those expected (a duplicate?): {ev:?}",
                    self.name
                ),
                Ok(Ok(Some(Incoming::Frame(Frame::Pong)))) => {}
                other => panic!("{}: while expecting silence: {other:?}", self.name),
            }
        }
    }

    /// The connection ends (its node died) without another frame.
    async fn assert_gone(&mut self) {
        match tokio::time::timeout(PUSH_WAIT, self.socket.next()).await {
            Ok(Ok(None | Some(Incoming::Closed(..))) | Err(_)) => {}
            Ok(Ok(Some(Incoming::Frame(f)))) => {
                panic!("{}: a frame after its node was killed: {f:?}", self.name)
            }
            Err(_) => panic!("{}: still open {PUSH_WAIT:?} after the kill", self.name),
        }
    }

    /// The server revokes the connection: an `error` frame with `code`, then close 4002
    /// (profile events before them are skipped).
    async fn assert_revoked(&mut self, code: u32) {
        let mut error = None;
        loop {
            match tokio::time::timeout(PUSH_WAIT, self.socket.next()).await {
                Ok(Ok(Some(Incoming::Frame(Frame::Error { code: c, .. })))) => error = Some(c),
                Ok(Ok(Some(Incoming::Frame(_)))) => {}
                Ok(Ok(Some(Incoming::Closed(close, _)))) => {
                    assert_eq!(
                        (error, close),
                        (Some(code), 4002),
                        "{}: error frame and close code",
                        self.name
                    );
                    return;
                }
                other => panic!(
                    "{}: expected error {code} and close 4002, got {other:?}",
                    self.name
                ),
            }
        }
    }
}

// Read-after-write across nodes, and the read caches kept coherent over NATS: multinode/reads.rs.
#[path = "multinode/reads.rs"]
mod reads;
// A write waits for every node that may trust its cache to acknowledge it: multinode/acks.rs.
#[path = "multinode/acks.rs"]
mod acks;

// Push across nodes: multinode/push.rs; a node dies and its subscribers move:
// multinode/failover.rs.
#[path = "multinode/failover.rs"]
mod failover;
#[path = "multinode/push.rs"]
mod push;

// Apps and custom fields made through the operator API, used on every node: multinode/operator.rs.
#[path = "multinode/operator.rs"]
mod operator;

// Rate limits and connection caps counted across nodes (Redis): multinode/limits.rs.
#[path = "multinode/limits.rs"]
mod limits;

// PostgreSQL failover and a NATS server's death under writes: multinode/ha.rs, on the replicated
// services of multinode/replicas.rs.
#[path = "multinode/ha.rs"]
mod ha;
#[path = "multinode/replicas.rs"]
mod replicas;

// Nodes that ended up on different servers of a NATS cluster meet on the first listed one and
// trust their read caches again: multinode/converge.rs.
#[path = "multinode/converge.rs"]
mod converge;

// Apps on two PostgreSQL clusters (shards): multinode/shards.rs; a node's start with a shard
// down or refusing: multinode/shard_starts.rs.
#[path = "multinode/shard_starts.rs"]
mod shard_starts;
#[path = "multinode/shards.rs"]
mod shards;

// Webhooks, kicks and deletes across nodes: multinode/webhooks_and_kicks.rs.
#[path = "multinode/webhooks_and_kicks.rs"]
mod webhooks_and_kicks;
