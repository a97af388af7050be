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

use std::collections::{BTreeMap, HashMap, HashSet};
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
        let url = testkit::fresh_postgres_url().await;
        let schema = PgSchema {
            name: url
                .rsplit_once("search_path%3D")
                .expect("testkit URLs name their schema")
                .1
                .to_owned(),
        };
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
    let mut c = format!("[store]\nurl = \"{store_url}\"\n");
    if let Some(n) = options.cache_entries {
        c.push_str(&format!("cache_entries = {n}\n"));
    }
    c.push_str(&format!(
        "\n[push]\npoll_interval_ms = {}\nnats_url = \"{nats_url}\"\nnats_subject = \"portrait-test.{subject}\"\n",
        options.poll_interval_ms.unwrap_or(POLL_MS)
    ));
    c.push_str(&format!(
        "\n[[apps]]\nsdkappid = {APP}\nkey = \"{KEY}\"\nadmins = [\"{ADMIN}\"]\n\n\
         [apps.rate_limits]\nenabled = false\n\n\
         [apps.client_rate_limits]\nuser_reads = 0\nuser_writes = 0\napp_reads = 0\napp_writes = 0\n"
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

// ---------------------------------------------------------------------------------------------
// Read-after-write across nodes
// ---------------------------------------------------------------------------------------------

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
// Push across nodes
// ---------------------------------------------------------------------------------------------

const TARGETS: [&str; 3] = ["u0", "u1", "u2"];

/// Writes through the three nodes at once: through node `i`, admin sets of every target and
/// updates by `u<i>` of their own profile. Returns `(account, Nick, operator)` of every write.
async fn write_through_every_node(c: &Cluster, rounds: usize) -> Vec<(String, String, String)> {
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

// ---------------------------------------------------------------------------------------------
// A node dies; its subscribers move to another node and catch up by cursor
// ---------------------------------------------------------------------------------------------

/// Through which node, and as whom, a write is made.
enum Via {
    /// `portrait_set` by the admin through node N.
    Admin(usize),
    /// `update_my_profile` by the account itself through node N.
    Own(usize),
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_subscriber_of_a_killed_node_catches_up_exactly_on_another_node() {
    let mut c = Cluster::start(3, Options::default()).await;
    ok(
        c.admin(0)
            .multiaccount_import(&["alice", "bob", "dave", "wendy"])
            .await,
        "multiaccount_import via node 0",
    );
    let subscribed = ["alice", "bob"];
    let mut sub = Subscriber::connect(&c.user(2, "wendy"), None, &subscribed).await;

    // Before the kill: one write through each surviving node, pushed through node 2.
    ok(
        c.admin(0)
            .portrait_set("alice", &[(NICK, json!("before-1"))])
            .await,
        "set",
    );
    ok(
        c.user(1, "bob")
            .update_my_profile(&[(NICK, json!("before-2"))], None)
            .await,
        "update",
    );
    let before = sub.events(2).await;
    assert_eq!(
        before
            .iter()
            .map(|e| (e.account.as_str(), e.item(NICK).unwrap().as_str().unwrap()))
            .collect::<Vec<_>>(),
        [("alice", "before-1"), ("bob", "before-2")]
    );
    let cursor = sub.cursor;
    assert_eq!(cursor, before[1].version);

    c.kill(2);
    sub.assert_gone().await;

    // Meanwhile, through the surviving nodes: changes of the followed accounts, of wendy's own
    // account (always subscribed) and of an account she does not follow.
    let meanwhile = [
        (Via::Admin(0), "alice", "meanwhile-1", true),
        (Via::Own(1), "bob", "meanwhile-2", true),
        (Via::Admin(1), "dave", "not-followed", false),
        (Via::Admin(0), "wendy", "meanwhile-3", true),
        (Via::Own(0), "alice", "meanwhile-4", true),
        (Via::Admin(1), "bob", "meanwhile-5", true),
    ];
    let mut expected = Vec::new();
    for (via, account, nick, followed) in meanwhile {
        let item = [(NICK, json!(nick))];
        match via {
            Via::Admin(n) => ok(c.admin(n).portrait_set(account, &item).await, "set"),
            Via::Own(n) => ok(
                c.user(n, account).update_my_profile(&item, None).await,
                "update",
            ),
        };
        if followed {
            expected.push((account.to_owned(), nick.to_owned()));
        }
    }

    // Reconnect to node 0 with the last cursor: exactly the changes made meanwhile, in order.
    let mut sub = Subscriber::connect(&c.user(0, "wendy"), Some(cursor), &subscribed).await;
    let caught = sub.until_synced().await;
    assert_eq!(
        caught
            .iter()
            .map(|e| (
                e.account.clone(),
                e.item(NICK).unwrap().as_str().unwrap().to_owned()
            ))
            .collect::<Vec<_>>(),
        expected,
        "the catch-up on node 0 from cursor {cursor}"
    );
    assert!(caught.iter().all(|e| e.version > cursor && e.kind == "set"));
    assert!(sub.cursor >= caught.last().unwrap().version);

    // Then live again, on the new node, for a write through another node.
    ok(
        c.admin(1)
            .portrait_set("bob", &[(NICK, json!("after-1"))])
            .await,
        "set",
    );
    let after = sub.events(1).await;
    assert_eq!(key_of(&after[0]).1, "after-1");
    sub.assert_quiet().await;

    let history: Vec<ProfileEvent> = before.into_iter().chain(caught).chain(after).collect();
    assert_strictly_increasing(&history, "wendy's events over both connections");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn under_continuous_writes_a_subscriber_moved_off_a_killed_node_misses_nothing_and_gets_nothing_twice(
) {
    let mut c = Cluster::start(3, Options::default()).await;
    let followed = ["alice", "bob"];
    ok(
        c.admin(0)
            .multiaccount_import(&["alice", "bob", "wendy"])
            .await,
        "multiaccount_import via node 0",
    );
    let mut sub = Subscriber::connect(&c.user(2, "wendy"), None, &followed).await;

    // Writers through nodes 0 (admin) and 1 (the users themselves) until told to stop.
    let stop = Arc::new(AtomicBool::new(false));
    let written: Arc<Mutex<Vec<(String, String, String)>>> = Arc::default();
    let writers: Vec<_> = (0..2)
        .map(|node| {
            let (admin, stop, written) = (c.admin(node), stop.clone(), written.clone());
            let users: Vec<UserClient> = followed.iter().map(|u| c.user(node, u)).collect();
            tokio::spawn(async move {
                let mut n = 0usize;
                while !stop.load(Ordering::Relaxed) {
                    let account = followed[n % 2];
                    let nick = format!("via{node}-{n}");
                    let operator = if node == 0 {
                        ok(
                            admin.portrait_set(account, &[(NICK, json!(nick))]).await,
                            "portrait_set",
                        );
                        ADMIN_OPERATOR
                    } else {
                        ok(
                            users[n % 2]
                                .update_my_profile(&[(NICK, json!(nick))], None)
                                .await,
                            "update_my_profile",
                        );
                        account
                    };
                    written
                        .lock()
                        .unwrap()
                        .push((account.to_owned(), nick, operator.to_owned()));
                    n += 1;
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
            })
        })
        .collect();

    let mut received = sub.events(20).await;
    c.kill(2);
    // Frames already on the wire before the kill still count.
    loop {
        match tokio::time::timeout(PUSH_WAIT, sub.socket.next()).await {
            Ok(Ok(Some(Incoming::Frame(Frame::Profile(ev))))) => {
                sub.cursor = sub.cursor.max(ev.cursor);
                received.push(ev);
            }
            Ok(Ok(None | Some(Incoming::Closed(..))) | Err(_)) => break,
            other => panic!("node 2's connection after the kill: {other:?}"),
        }
    }
    let cursor = sub.cursor;
    assert_eq!(cursor, received.last().unwrap().version);

    let mut sub = Subscriber::connect(&c.user(1, "wendy"), Some(cursor), &followed).await;
    received.extend(sub.until_synced().await);
    received.extend(sub.events(20).await); // live on node 1, writes still going on
    stop.store(true, Ordering::Relaxed);
    for w in writers {
        w.await.unwrap();
    }
    let written = std::mem::take(&mut *written.lock().unwrap());
    let missing = written.len().saturating_sub(received.len());
    received.extend(sub.events(missing).await);
    sub.assert_quiet().await;

    assert_strictly_increasing(&received, "wendy's events over both connections");
    assert_eq!(
        sorted(received.iter().map(key_of).collect()),
        sorted(written),
        "every acknowledged write exactly once, across the kill and the reconnect (cursor {cursor})"
    );
}

// ---------------------------------------------------------------------------------------------
// Webhooks, kicks and deletes across nodes
// ---------------------------------------------------------------------------------------------

/// Starts an HTTP receiver for `Profile.CallbackPortraitSet` on a loopback port; returns its URL
/// and the `(From_Account, Nick, Operator_Account)` of every callback received.
async fn webhook_receiver() -> (String, Posts) {
    let got: Posts = Arc::default();
    let sink = got.clone();
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(move |axum::Json(body): axum::Json<Value>| {
            let sink = sink.clone();
            async move {
                let nick = body["ProfileItem"]
                    .as_array()
                    .and_then(|items| items.iter().find(|i| i["Tag"] == NICK))
                    .and_then(|i| i["Value"].as_str())
                    .unwrap_or_default()
                    .to_owned();
                sink.lock().unwrap().push((
                    body["From_Account"].as_str().unwrap_or_default().to_owned(),
                    nick,
                    body["Operator_Account"]
                        .as_str()
                        .unwrap_or_default()
                        .to_owned(),
                ));
                axum::Json(json!({"ActionStatus": "OK", "ErrorCode": 0, "ErrorInfo": ""}))
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, got)
}

/// Writes through every node with the webhook configured on every node, or on the first only;
/// every change must be POSTed exactly once.
async fn each_change_is_posted_once(webhook_on_first_node_only: bool) {
    let (url, got) = webhook_receiver().await;
    let c = Cluster::start(
        3,
        Options {
            webhook: Some(url),
            webhook_on_first_node_only,
            ..Options::default()
        },
    )
    .await;
    c.webhook_started().await;
    // Imports without Nick/FaceUrl are not called back.
    ok(
        c.admin(0).multiaccount_import(&TARGETS).await,
        "multiaccount_import via node 0",
    );
    let written = write_through_every_node(&c, 2).await;

    assert_posted_once(&got, &written, PUSH_WAIT).await;
}

/// Callbacks received by [`webhook_receiver`].
type Posts = Arc<Mutex<Vec<(String, String, String)>>>;

/// Waits (at most `wait`) until `got` holds as many callbacks as `written`, then a little longer
/// for extra ones, and checks that each write was POSTed exactly once.
async fn assert_posted_once(got: &Posts, written: &[(String, String, String)], wait: Duration) {
    let deadline = tokio::time::Instant::now() + wait;
    while got.lock().unwrap().len() < written.len() && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Workers poll every second: wait longer than that for extra deliveries.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let got = got.lock().unwrap().clone();
    let mut counts: BTreeMap<&(String, String, String), usize> = BTreeMap::new();
    for g in &got {
        *counts.entry(g).or_default() += 1;
    }
    assert_eq!(
        sorted(got.clone()),
        sorted(written.to_vec()),
        "each change posted exactly once; posted more than once: {:?}",
        counts.iter().filter(|(_, n)| **n > 1).collect::<Vec<_>>()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_change_is_posted_once_to_the_webhook_whichever_node_wrote_it() {
    each_change_is_posted_once(false).await;
}

/// A node with the webhook delivers the changes written through every node (it reads them from
/// the shared change log), also when it is the only one configured with it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_webhook_configured_on_one_node_gets_every_change_of_every_node_once() {
    each_change_is_posted_once(true).await;
}

/// `[apps.webhook] lease_ms` of the failover test: short, so it does not wait for the default
/// 10 s, yet long enough that a live holder (renewing every third of it) never loses it to a
/// slow database call on a busy machine.
const WEBHOOK_LEASE_MS: u64 = 2_000;

/// The node holding the webhook lease is SIGKILLed (found through the store's `leases` table:
/// holders are `<pid>-<random>`); another node takes over from the stored cursor and delivers
/// the changes written meanwhile, each once, and nothing delivered before is sent again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn when_the_node_delivering_the_webhook_is_killed_another_takes_over_without_loss_or_repeats()
{
    let (url, got) = webhook_receiver().await;
    let mut c = Cluster::start(
        3,
        Options {
            webhook: Some(url),
            webhook_lease_ms: Some(WEBHOOK_LEASE_MS),
            ..Options::default()
        },
    )
    .await;
    c.webhook_started().await;
    ok(
        c.admin(0).multiaccount_import(&TARGETS).await,
        "multiaccount_import via node 0",
    );
    let mut written = write_through_every_node(&c, 1).await;
    assert_posted_once(&got, &written, PUSH_WAIT).await;

    let holder = c.webhook_holder().await;
    c.kill(holder);
    for (k, node) in others(holder).enumerate() {
        let nick = format!("after-kill-via{node}");
        ok(
            c.admin(node)
                .portrait_set(TARGETS[k], &[(NICK, json!(nick))])
                .await,
            "portrait_set through a surviving node",
        );
        written.push((TARGETS[k].to_owned(), nick, ADMIN.to_owned()));
    }
    // The dead holder's lease (WEBHOOK_LEASE_MS, 2 s) must run out before another node takes
    // over; the wait allowed is the one for the default 10 s lease.
    assert_posted_once(&got, &written, Duration::from_secs(10) + PUSH_WAIT).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kick_through_one_node_revokes_the_users_sigs_and_connections_on_every_node() {
    let c = Cluster::start(3, Options::default()).await;
    ok(
        c.admin(0).account_import("alice", None, None).await,
        "account_import via node 0",
    );
    // UserSigs minted before the kick.
    let alice: Vec<UserClient> = (0..3).map(|j| c.user(j, "alice")).collect();
    let mut subs = Vec::new();
    for client in &alice[1..] {
        subs.push(Subscriber::connect(client, None, &[]).await);
    }
    ok(c.admin(0).kick("alice").await, "kick via node 0");
    // Node 0 enforces it at once; the others learn of it over NATS within milliseconds (or from
    // the store within 5 s if a message is lost).
    for (j, client) in alice.iter().enumerate() {
        let deadline = std::time::Instant::now() + Duration::from_secs(2);
        loop {
            let r = client.get_my_profile(None).await.unwrap();
            if r.code() == 70001 {
                break;
            }
            assert!(
                j > 0 && std::time::Instant::now() < deadline,
                "a UserSig minted before the kick, used on node {j}: {}",
                r.0
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    for sub in &mut subs {
        sub.assert_revoked(70001).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleting_an_account_through_one_node_closes_its_connections_on_every_node() {
    let c = Cluster::start(3, Options::default()).await;
    ok(
        c.admin(0).account_import("bob", None, None).await,
        "account_import via node 0",
    );
    let mut subs = Vec::new();
    for j in 1..3 {
        subs.push(Subscriber::connect(&c.user(j, "bob"), None, &[]).await);
    }
    ok(
        c.admin(0).account_delete(&["bob"]).await,
        "account_delete via node 0",
    );
    for sub in &mut subs {
        sub.assert_revoked(70107).await;
    }
}
