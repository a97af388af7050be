//! Issue #19's shards: apps placed on two PostgreSQL clusters, the tests' running one (the home
//! shard, a schema of its own) and one this test starts ([`PgServer`], shard `a`), served by
//! two real nodes. What it shows:
//!
//! * an app made through the operator API with `"shard": "a"` lives there, and both nodes route
//!   to it (the second learns the placement from the app record);
//! * with shard `a`'s PostgreSQL stopped (`pg_ctl stop -m immediate`), the app on the home shard
//!   keeps reading and writing (and a kick of its user reaches the other node, by the head poll
//!   without NATS), the app on `a` fails with the store-unavailable code (40006), and recovers
//!   once `a` is back, with no node restarted; a third node started meanwhile serves the home
//!   app at once, and the app on `a` (reads, writes, push) once `a` is back;
//! * `portrait app move` (`POST /admin/v1/apps/{id}/move`) moves the app from `a` to home
//!   while both nodes write it, each holding the app's writes during the switch: no
//!   acknowledged write is lost, writes paused at most a second (measured, printed:
//!   `cargo test -p portrait --test multinode shards_ -- --nocapture`), and afterwards the app
//!   is served with `a` stopped again, so its data really is on the home shard;
//! * a move announced by a mover that died holds the app's writes until any change of the app,
//!   also on a node started meanwhile (which starts);
//! * a move that outlasts the request deadline, or whose caller hangs up, runs to its end, and
//!   a refused one (a member that never holds the writes) leaves the app readable and writable
//!   on its shard through every node;
//! * all of it with NATS and without (the nodes then learn of a move by polling).

use std::path::{Path, PathBuf};

use super::replicas::{
    configure, initdb, pg, pg_start_on_free_port, postmaster_pid, require, PG_BIN, START_WAIT,
};
use super::*;

pub(super) const TOKEN: &str = "multinode-shards-token";
/// The app made on shard `a`.
pub(super) const APP_A: u64 = 1_400_000_777;
pub(super) const KEY_A: &str = "shard-a-app-key";
/// Writes may wait for a move at most this long (the bound).
const PAUSE_BOUND: Duration = Duration::from_secs(1);

/// One PostgreSQL server in a temporary directory, on a port found free when it first started;
/// killed and removed on drop.
pub(super) struct PgServer {
    dir: tempfile::TempDir,
    port: u16,
}

impl PgServer {
    fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    pub(super) fn start() -> PgServer {
        require(
            &["initdb", "pg_ctl", "postgres"].map(|b| Path::new(PG_BIN).join(b)),
            "postgresql-15",
        );
        let dir = tempfile::tempdir().expect("a temp dir");
        if super::replicas::as_root() {
            let ok = std::process::Command::new("chown")
                .arg("postgres:postgres")
                .arg(dir.path())
                .status()
                .is_ok_and(|s| s.success());
            assert!(ok, "chown {} to the postgres user", dir.path().display());
        }
        let mut server = PgServer { dir, port: 0 };
        initdb(&server.data());
        configure(
            &server.data(),
            &format!(
                "listen_addresses = '127.0.0.1'\nunix_socket_directories = '{}'\n\
                 max_connections = 100\nshared_buffers = '32MB'\nfsync = off",
                server.dir.path().display()
            ),
        );
        // Started again later on the same port (`pg_ctl start`), which its config keeps.
        server.port = pg_start_on_free_port(&server.data());
        server
    }

    pub(super) fn pg_ctl(&self, action: &str) {
        let data = self.data().display().to_string();
        let log = self.data().join("server.log").display().to_string();
        let wait = START_WAIT.as_secs().to_string();
        match action {
            "start" => pg(
                "pg_ctl",
                &["-D", &data, "-l", &log, "-w", "-t", &wait, "start"],
            ),
            // Immediate: the server dies as if its machine did, no clean shutdown.
            _ => pg("pg_ctl", &["-D", &data, "-w", "-m", "immediate", "stop"]),
        }
    }

    pub(super) fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    /// Runs `sql` on the server's `postgres` database.
    pub(super) fn psql(&self, sql: &str) {
        let port = self.port.to_string();
        let args = ["-h", "127.0.0.1", "-p", &port, "-U", "postgres", "-v"];
        super::replicas::pg(
            "psql",
            &[&args[..], &["ON_ERROR_STOP=1", "-c", sql]].concat(),
        );
    }
}

impl Drop for PgServer {
    fn drop(&mut self) {
        if let Some(pid) = postmaster_pid(&self.data()) {
            super::replicas::kill_group(pid);
        }
    }
}

/// An operator call to `base`; the status and JSON body.
pub(super) async fn op(base: &str, method: &str, path: &str, body: Value) -> (u16, Value) {
    let resp = reqwest::Client::new()
        .request(method.parse().unwrap(), format!("{base}{path}"))
        .bearer_auth(TOKEN)
        .json(&body)
        .send()
        .await
        .unwrap();
    (resp.status().as_u16(), resp.json().await.unwrap())
}

/// `portrait_set` of `nick` on `user`; its vendor code.
async fn set(admin: &AdminClient, user: &str, nick: &str) -> u64 {
    admin
        .portrait_set(user, &[(NICK, json!(nick))])
        .await
        .map_or(u64::MAX, |r| r.code())
}

/// The Nick of `user` read through `admin`, or the vendor code of a failed read.
async fn nick(admin: &AdminClient, user: &str) -> Result<String, u64> {
    match admin.portrait_get(&[user], &[NICK]).await {
        Ok(r) if r.code() == 0 => Ok(item(&r, 0, NICK).as_str().unwrap_or("").to_owned()),
        Ok(r) => Err(r.code()),
        Err(_) => Err(u64::MAX),
    }
}

/// Tries `f` every 100 ms until it is true, for at most `within`; whether it became true.
async fn eventually<F, Fut>(within: Duration, mut f: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + within;
    while Instant::now() < deadline {
        if f().await {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    false
}

/// Sets a new Nick on `users` in turn through `admin` until `stop`; the acknowledged
/// `(user, nick)`s in order, the slowest write and the number of attempts.
async fn writer(
    admin: AdminClient,
    users: [&'static str; 2],
    stop: Arc<AtomicBool>,
) -> (Vec<(&'static str, String)>, Duration, usize) {
    for user in users {
        admin.account_import(user, None, None).await.unwrap();
    }
    let (mut acked, mut slowest, mut n) = (Vec::new(), Duration::ZERO, 0usize);
    while !stop.load(Ordering::Relaxed) {
        let user = users[n % 2];
        let value = format!("{user}-{n}");
        let t = Instant::now();
        let code = set(&admin, user, &value).await;
        slowest = slowest.max(t.elapsed());
        if code == 0 {
            acked.push((user, value));
        }
        n += 1;
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    (acked, slowest, n)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn shards_fail_apart_and_an_app_moves_online() {
    scenario(false).await;
}

// Without NATS the other node learns of the move by polling (`[operator] poll_ms`), then
// acknowledges as a member (coherence's bystander).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn shards_fail_apart_and_an_app_moves_online_without_nats() {
    scenario(true).await;
}

/// The options of a cluster with one more shard, `a` at `url`, and the operator API on.
pub(super) fn with_shard_a(url: &str) -> Options {
    Options {
        operator_token: Some(TOKEN),
        operator_poll_ms: Some(100),
        store_extra: Some(format!("shards = {{ a = \"{url}\" }}\n")),
        ..Options::default()
    }
}

/// Makes app `sdkappid` (key `key`, admin [`ADMIN`]) on shard `a` through the operator API of
/// the node at `base`; its answer.
pub(super) async fn app_on_a(base: &str, sdkappid: u64, key: &str) -> Value {
    let (status, created) = op(
        base,
        "POST",
        "/admin/v1/apps",
        json!({"sdkappid": sdkappid, "key": key, "admins": [ADMIN], "shard": "a"}),
    )
    .await;
    assert_eq!(status, 201, "{created}");
    created
}

async fn scenario(without_nats: bool) {
    let shard_a = tokio::task::spawn_blocking(PgServer::start).await.unwrap();
    let mut cluster = Cluster::start(
        2,
        Options {
            without_nats,
            ..with_shard_a(&shard_a.url())
        },
    )
    .await;
    let (b0, b1) = (cluster.bases[0].clone(), cluster.bases[1].clone());

    // Placement at creation: a shard that does not exist is refused; "a" is taken.
    let (status, refused) = op(&b0, "POST", "/admin/v1/apps", json!({"shard": "nope"})).await;
    assert_eq!(
        (status, refused["error"]["code"].as_str()),
        (400, Some("invalid")),
        "{refused}"
    );
    let created = app_on_a(&b0, APP_A, KEY_A).await;
    assert_eq!(created["app"]["shard"], "a", "{created}");
    // Without a shard, a new app goes to the one with the fewest apps: home (a holds one).
    let (status, other) = op(&b0, "POST", "/admin/v1/apps", json!({})).await;
    assert_eq!(
        (status, &other["app"]["shard"]),
        (201, &json!("home")),
        "{other}"
    );

    let home = [cluster.admin(0), cluster.admin(1)];
    let on_a = [
        AdminClient::new(&b0, APP_A, ADMIN, KEY_A),
        AdminClient::new(&b1, APP_A, ADMIN, KEY_A),
    ];
    for (admin, user) in [(&home[0], "h1"), (&on_a[0], "a1")] {
        assert_eq!(
            admin.account_import(user, None, None).await.unwrap().code(),
            0
        );
        assert_eq!(set(admin, user, "before").await, 0);
    }
    // The second node routes the app to shard a too, from its record.
    assert!(
        eventually(Duration::from_secs(10), || async {
            nick(&on_a[1], "a1").await.as_deref() == Ok("before")
        })
        .await,
        "node 1 serves the app on shard a"
    );

    // Shard a's PostgreSQL dies: the home shard's app is served as if nothing happened.
    shard_a.pg_ctl("stop");
    for n in 0..5 {
        for admin in &home {
            let t = Instant::now();
            assert_eq!(
                set(admin, "h1", &format!("down-{n}")).await,
                0,
                "home writes go on"
            );
            assert_eq!(
                nick(admin, "h1").await,
                Ok(format!("down-{n}")),
                "home reads go on"
            );
            assert!(
                t.elapsed() < Duration::from_secs(2),
                "without waiting on shard a: {:?}",
                t.elapsed()
            );
        }
    }
    // A kick of a home app's user reaches the other node while shard a is down: through NATS,
    // or without it through the head poll, which goes on reading the shards that answer.
    let minted = portrait_core::usersig::mint(APP, KEY, "h1", now_secs(), 86_400);
    let h1_on_1 = UserClient::new(&b1, APP, "h1", minted);
    assert_eq!(h1_on_1.get_my_profile(None).await.unwrap().code(), 0);
    assert_eq!(home[0].kick("h1").await.unwrap().code(), 0);
    let revoked = eventually(Duration::from_secs(5), || async {
        h1_on_1
            .get_my_profile(None)
            .await
            .is_ok_and(|r| r.code() == 70001)
    })
    .await;
    assert!(revoked, "the kick made on node 0 revokes the sig on node 1");
    for admin in &on_a {
        let code = set(admin, "a1", "while-down").await;
        assert_eq!(
            code, 40006,
            "the app on the stopped shard fails with the store code"
        );
    }
    // A node started while shard a is down (a restart, a node added) serves the home shard's
    // app at once, knows the app on a (40006 until a is back), and serves it once a is back.
    let late = cluster.launch_another(1).await;
    let late_home = AdminClient::new(&late, APP, ADMIN, KEY);
    assert_eq!(
        set(&late_home, "h1", "late").await,
        0,
        "a node started with shard a down writes the home app"
    );
    assert_eq!(nick(&late_home, "h1").await.as_deref(), Ok("late"));
    let late_a = AdminClient::new(&late, APP_A, ADMIN, KEY_A);
    assert_eq!(
        set(&late_a, "a1", "while-down").await,
        40006,
        "a node started with shard a down knows the app on a"
    );

    // Shard a is back: its app recovers with no node restarted, its data intact.
    shard_a.pg_ctl("start");
    for admin in on_a.iter().chain([&late_a]) {
        let recovered = eventually(Duration::from_secs(20), || async {
            set(admin, "a1", "after").await == 0
        })
        .await;
        assert!(
            recovered,
            "the app on shard a recovers without a node restart"
        );
        assert_eq!(nick(admin, "a1").await.as_deref(), Ok("after"));
    }
    // The late node's feed of the app on a started once a was back: it pushes a change made
    // through another node.
    let client = UserClient::with_key(&late, APP_A, "a1", KEY_A);
    let started = eventually(Duration::from_secs(10), || async {
        // Refused (40006) until the feed has read where it starts.
        match client.connect(None, &["a1"]).await {
            Ok(mut socket) => matches!(socket.frame(PUSH_WAIT).await, Ok(Frame::Ready { .. })),
            Err(_) => false,
        }
    })
    .await;
    assert!(started, "the late node's feed of the app on a starts");
    let mut subscriber = Subscriber::connect(&client, None, &["a1"]).await;
    assert_eq!(set(&on_a[0], "a1", "pushed").await, 0);
    let events = subscriber.events(1).await;
    let (account, written, _) = key_of(&events[0]);
    assert_eq!(
        (account.as_str(), written.as_str()),
        ("a1", "pushed"),
        "the late node pushes the app on a"
    );
    subscriber.assert_quiet().await;

    // Move the app from a to home while both nodes write it (each its own accounts).
    let stop = Arc::new(AtomicBool::new(false));
    let writers: Vec<_> = [(0, ["a1", "a2"]), (1, ["a3", "a4"])]
        .into_iter()
        .map(|(node, users)| tokio::spawn(writer(on_a[node].clone(), users, stop.clone())))
        .collect();
    tokio::time::sleep(Duration::from_millis(300)).await;
    // From the shell, as an operator would: `portrait app move … --to home --json`.
    let cli = tokio::process::Command::new(env!("CARGO_BIN_EXE_portrait"))
        .args(["app", "move", &APP_A.to_string(), "--to", "home", "--json"])
        .env("PORTRAIT_SERVER", &b0)
        .env("PORTRAIT_OPERATOR_TOKEN", TOKEN)
        .output()
        .await
        .unwrap();
    let status = if cli.status.success() { 200 } else { 0 };
    let moved: Value = serde_json::from_slice(&cli.stdout)
        .unwrap_or_else(|_| json!(String::from_utf8_lossy(&cli.stderr)));
    tokio::time::sleep(Duration::from_millis(300)).await;
    stop.store(true, Ordering::Relaxed);
    let (mut acked, mut slowest, mut attempts) = (Vec::new(), Duration::ZERO, 0);
    for w in writers {
        let (a, s, n) = w.await.unwrap();
        acked.extend(a);
        slowest = slowest.max(s);
        attempts += n;
    }
    assert_eq!(status, 200, "{moved}");
    println!(
        "shards (without NATS: {without_nats}): move a -> home: {moved}; writer: {attempts} writes, {} acknowledged, slowest {slowest:?}",
        acked.len()
    );
    assert_eq!(
        (moved["from"].as_str(), moved["to"].as_str()),
        (Some("a"), Some("home"))
    );
    let paused = Duration::from_millis(moved["paused_ms"].as_u64().unwrap());
    assert!(paused <= PAUSE_BOUND, "writes paused {paused:?}");
    assert!(
        slowest <= PAUSE_BOUND + Duration::from_millis(500),
        "a write waited {slowest:?}"
    );
    assert!(
        acked.len() > 10,
        "the writer wrote during the move: {}",
        acked.len()
    );
    assert_eq!(acked.len(), attempts, "no write failed during the move");
    // Nothing lost: the last acknowledged Nick of each account is read back.
    for user in ["a1", "a2", "a3", "a4"] {
        let last = acked
            .iter()
            .rev()
            .find(|(u, _)| *u == user)
            .map(|(_, v)| v.clone());
        assert_eq!(
            nick(&on_a[0], user).await.ok(),
            last,
            "{user} after the move"
        );
    }
    // Nothing reached the old shard after the switch (a node still writing there would lose it).
    let source = portrait_store::open(&shard_a.url()).await.unwrap();
    assert_eq!(
        source.current_version(APP_A).await.unwrap(),
        moved["version"].as_u64().unwrap(),
        "shard a is where the move left it"
    );
    source.close().await;
    let (_, view) = op(&b0, "GET", &format!("/admin/v1/apps/{APP_A}"), json!({})).await;
    assert_eq!(view["shard"], "home", "{view}");

    // The data is on the home shard now: stop a again and the app is served by both nodes.
    shard_a.pg_ctl("stop");
    let last_a1 = nick(&on_a[0], "a1").await.unwrap();
    for admin in &on_a {
        let served = eventually(Duration::from_secs(10), || async {
            nick(admin, "a1").await.as_deref() == Ok(last_a1.as_str())
                && set(admin, "a2", "moved").await == 0
        })
        .await;
        assert!(served, "the moved app is served with shard a stopped");
    }

    // A mover that died after announcing a move leaves its record: the app's writes wait on
    // every node, until any change of the app ends the pause.
    let home_store = portrait_store::open(&cluster.store_url).await.unwrap();
    let record = home_store
        .app_records(0)
        .await
        .unwrap()
        .into_iter()
        .rfind(|r| r.sdkappid == APP_A)
        .unwrap();
    let mut body: Value = serde_json::from_str(&record.body).unwrap();
    body["moving"] = json!("a");
    home_store
        .put_app_record(APP_A, Some(record.revision), &body.to_string())
        .await
        .unwrap();
    home_store.close().await;
    tokio::time::sleep(Duration::from_millis(500)).await; // > [operator] poll_ms
                                                          // A node started now holds the app's writes like the others, and still starts (it used to
                                                          // wait for its own hold while importing the app's admins, before listening).
    let t = Instant::now();
    let third = cluster.launch_another(0).await;
    assert!(
        t.elapsed() < Duration::from_secs(20),
        "a node starts while an app is moving: {:?}",
        t.elapsed()
    );
    let third_a = AdminClient::new(&third, APP_A, ADMIN, KEY_A);
    assert_eq!(nick(&third_a, "a1").await, nick(&on_a[0], "a1").await);
    let held_on_third = tokio::spawn({
        let admin = third_a.clone();
        async move { set(&admin, "a3", "held-too").await }
    });
    let held = tokio::spawn({
        let admin = on_a[1].clone();
        async move { set(&admin, "a1", "held").await }
    });
    tokio::time::sleep(Duration::from_millis(700)).await;
    assert!(
        !held.is_finished(),
        "a write waits while a move is announced"
    );
    assert!(
        !held_on_third.is_finished(),
        "also on the node started during the pause"
    );
    let (status, patched) = op(
        &b0,
        "PATCH",
        &format!("/admin/v1/apps/{APP_A}"),
        json!({"sensitive_words": []}),
    )
    .await;
    assert_eq!(status, 200, "{patched}");
    assert_eq!(
        held.await.unwrap(),
        0,
        "the waiting write went on after the change"
    );
    assert_eq!(
        held_on_third.await.unwrap(),
        0,
        "and the one on the node started during the pause"
    );
    assert_eq!(nick(&on_a[0], "a1").await.as_deref(), Ok("held"));
}

/// The app of [`a_move_cut_short_or_refused_leaves_the_app_served_where_it_was`].
const APP_B: u64 = 1_400_000_778;
const KEY_B: &str = "shard-b-app-key";

// A move that outlasts the nodes' request deadline (1 s here), or whose caller hangs up, still
// runs to its end, and one that is refused leaves the app readable and writable on its shard.
// A member that never acknowledges the pause (a hung node) makes the move wait its 3 s and give
// up. Before the move ran in a task of its own, the request deadline dropped it in that wait: a
// 500, and the announced pause was never ended, so every node held the app's writes. Shard `a`
// is a second schema of the tests' PostgreSQL here (no second cluster needed).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn shards_a_move_cut_short_or_refused_leaves_the_app_served_where_it_was() {
    let (shard_url, _shard_schema) = PgSchema::fresh().await;
    let cluster = Cluster::start(
        2,
        Options {
            request_timeout_ms: Some(1_000),
            ..with_shard_a(&shard_url)
        },
    )
    .await;
    let (b0, b1) = (cluster.bases[0].clone(), cluster.bases[1].clone());
    app_on_a(&b0, APP_B, KEY_B).await;
    let admins = [
        AdminClient::new(&b0, APP_B, ADMIN, KEY_B),
        AdminClient::new(&b1, APP_B, ADMIN, KEY_B),
    ];
    assert_eq!(
        admins[0]
            .account_import("u1", None, None)
            .await
            .unwrap()
            .code(),
        0
    );
    for (n, admin) in admins.iter().enumerate() {
        let served = eventually(Duration::from_secs(10), || async {
            set(admin, "u1", &format!("before-{n}")).await == 0
        })
        .await;
        assert!(served, "node {n} serves the app on shard a");
    }

    // A member that never acknowledges: the move waits for it, then gives up.
    let home = portrait_store::open(&cluster.store_url).await.unwrap();
    home.members("hung-node", 120_000).await.unwrap();
    let path = format!("/admin/v1/apps/{APP_B}/move");
    let t = Instant::now();
    let (status, refused) = op(&b0, "POST", &path, json!({"shard": "home"})).await;
    assert_eq!(
        (status, refused["error"]["code"].as_str()),
        (409, Some("move_refused")),
        "a move longer than the request deadline answers its own outcome ({:?}): {refused}",
        t.elapsed()
    );
    let message = refused["error"]["message"].as_str().unwrap_or_default();
    assert!(message.contains("hung-node"), "{refused}");
    assert_served_on_a(&b0, &admins, &shard_url, "refused").await;

    // The caller hangs up long before the move ends: the move still ends its pause.
    let hung_up = reqwest::Client::new()
        .post(format!("{b1}{path}"))
        .bearer_auth(TOKEN)
        .json(&json!({"shard": "home"}))
        .timeout(Duration::from_millis(300))
        .send()
        .await;
    assert!(hung_up.is_err(), "the caller gave up: {hung_up:?}");
    // The move waits 3 s for the member, then ends its pause.
    let resumed = eventually(Duration::from_secs(15), || async {
        let t = Instant::now();
        set(&admins[1], "u1", "after-hang-up").await == 0
            && t.elapsed() < Duration::from_millis(500)
    })
    .await;
    assert!(
        resumed,
        "the app's writes go on after a move whose caller hung up"
    );
    assert_served_on_a(&b1, &admins, &shard_url, "hung-up").await;

    // With every member answering, the move succeeds (and outlasts no deadline it should not).
    home.members("hung-node", 0).await.unwrap();
    home.close().await;
    let (status, moved) = op(&b1, "POST", &path, json!({"shard": "home"})).await;
    assert_eq!(status, 200, "{moved}");
    assert_eq!(
        (moved["from"].as_str(), moved["to"].as_str()),
        (Some("a"), Some("home"))
    );
    for admin in &admins {
        let served = eventually(Duration::from_secs(10), || async {
            set(admin, "u1", "moved").await == 0
                && nick(admin, "u1").await.as_deref() == Ok("moved")
        })
        .await;
        assert!(served, "the moved app is served from home");
    }
}

/// After a move that did not happen: the app's record names shard `a` and no move, and both
/// nodes read and write the app at once, on shard `a` (`step` names each write).
async fn assert_served_on_a(base: &str, admins: &[AdminClient; 2], shard_url: &str, step: &str) {
    let (_, view) = op(base, "GET", &format!("/admin/v1/apps/{APP_B}"), json!({})).await;
    assert_eq!(view["shard"], "a", "{view}");
    let shard = portrait_store::open(shard_url).await.unwrap();
    for (n, admin) in admins.iter().enumerate() {
        let value = format!("{step}-{n}");
        let before = shard.current_version(APP_B).await.unwrap();
        let t = Instant::now();
        let code = set(admin, "u1", &value).await;
        assert_eq!(code, 0, "node {n} writes the app after the {step} move");
        assert!(
            t.elapsed() < Duration::from_millis(900),
            "node {n}'s write waited {:?}: the move's pause was not ended",
            t.elapsed()
        );
        assert_eq!(nick(admin, "u1").await.as_deref(), Ok(value.as_str()));
        assert_eq!(
            shard.current_version(APP_B).await.unwrap(),
            before + 1,
            "node {n} wrote on shard a"
        );
    }
    shard.close().await;
}

pub(super) fn now_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}
