//! Issue #19's shards, at a node's start: a node that starts while a shard's database does not
//! answer takes on that shard's apps once it does, and never accepts a UserSig revoked by a kick
//! made before (its kick table is on that shard); a shard whose database answers but refuses
//! stops the start. The shards themselves, their outages and moves: `shards.rs`.

use super::shards::{app_on_a, now_secs, op, with_shard_a, PgServer, APP_A, KEY_A};
use super::*;

// A node that takes on an app whose database is down (shard a stopped as it starts) must not
// accept a UserSig revoked by a kick made before: its kick table is loaded from that database.
// Until it is, the app's calls fail as when the store is down (40006); after, the revoked sig
// is refused (70001). It used to be accepted for about a second after shard a came back.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn shards_a_node_started_with_a_shard_down_never_accepts_a_revoked_usersig() {
    let shard_a = tokio::task::spawn_blocking(PgServer::start).await.unwrap();
    let mut cluster = Cluster::start(
        1,
        Options {
            // Slow head polls: a window between the shard's return and the kicks is wider.
            poll_interval_ms: Some(1000),
            ..with_shard_a(&shard_a.url())
        },
    )
    .await;
    let b0 = cluster.bases[0].clone();
    app_on_a(&b0, APP_A, KEY_A).await;
    let admin = AdminClient::new(&b0, APP_A, ADMIN, KEY_A);
    assert_eq!(
        admin
            .account_import("alice", None, None)
            .await
            .unwrap()
            .code(),
        0
    );
    let minted = portrait_core::usersig::mint(APP_A, KEY_A, "alice", now_secs(), 86_400);
    let before = UserClient::new(&b0, APP_A, "alice", minted.clone());
    assert_eq!(before.get_my_profile(None).await.unwrap().code(), 0);
    assert_eq!(admin.kick("alice").await.unwrap().code(), 0);
    assert_eq!(
        before.get_my_profile(None).await.unwrap().code(),
        70001,
        "revoked on the node that kicked"
    );

    shard_a.pg_ctl("stop");
    let late = cluster.launch_another(0).await;
    let alice = UserClient::new(&late, APP_A, "alice", minted);
    shard_a.pg_ctl("start");
    let t = Instant::now();
    let mut codes = Vec::new();
    loop {
        let code = alice
            .get_my_profile(None)
            .await
            .map_or(u64::MAX, |r| r.code());
        if codes.last() != Some(&code) {
            codes.push(code);
        }
        if code == 70001 || t.elapsed() > Duration::from_secs(20) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(
        codes.first(),
        Some(&40006),
        "unavailable while shard a is down: {codes:?}"
    );
    assert_eq!(
        codes.last(),
        Some(&70001),
        "the late node refuses the revoked sig once shard a is back: {codes:?}"
    );
    assert!(
        codes.iter().all(|&c| c == 40006 || c == 70001),
        "never accepted, only unavailable before: {codes:?}"
    );
}

// A shard whose database answers but refuses (here: it does not exist) is a setting to fix:
// the node does not start (the error names the shard), unlike a shard that does not answer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shards_a_shard_that_refuses_stops_the_start() {
    let (url, _schema) = PgSchema::fresh().await;
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("node.toml");
    let options = Options {
        without_nats: true,
        ..with_shard_a("postgres://postgres@127.0.0.1:5432/portrait_no_such_database")
    };
    std::fs::write(&config, config_text(&url, "", "refused", &options, 0)).unwrap();
    let stderr = start_fails(dir.path(), &config).await;
    assert!(
        stderr.contains("shard \"a\"") && stderr.contains("portrait_no_such_database"),
        "the error names the shard and what refused: {stderr}"
    );
}

// Admins named while the app's database is down are imported once it is up, as the app's
// admins are *then*: an admin named and removed again during the outage does not become an
// account. (Each deferred import used to import the list of its own moment, so the removed
// admin was imported once the shard came back.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shards_admins_changed_while_the_shard_is_down_are_imported_as_they_are_then() {
    let (shard_a, cluster) = one_node_with_an_app_on_a().await;
    let b0 = cluster.bases[0].clone();
    shard_a.pg_ctl("stop");
    for admins in [
        json!([ADMIN, "removed-admin"]),
        json!([ADMIN, "kept-admin"]),
    ] {
        let (status, patched) = op(
            &b0,
            "PATCH",
            &format!("/admin/v1/apps/{APP_A}"),
            json!({ "admins": admins }),
        )
        .await;
        assert_eq!(status, 200, "{patched}");
    }
    // A try begun before the change may still be under way (with the old list); let the
    // deferred imports begin their next tries, with the new one.
    tokio::time::sleep(Duration::from_secs(3)).await;
    shard_a.pg_ctl("start");
    let admin = AdminClient::new(&b0, APP_A, ADMIN, KEY_A);
    let status = |reply: &Reply, i: usize| {
        reply.0["ResultItem"][i]["AccountStatus"]
            .as_str()
            .unwrap_or_default()
            .to_owned()
    };
    let t = Instant::now();
    loop {
        if let Ok(r) = admin.account_check(&["kept-admin"]).await {
            if status(&r, 0) == "Imported" {
                break;
            }
        }
        assert!(
            t.elapsed() < Duration::from_secs(30),
            "the new admin is imported once shard a is back"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Every deferred import tries once a second: give any left another two tries.
    tokio::time::sleep(Duration::from_millis(2_500)).await;
    let r = admin.account_check(&["removed-admin"]).await.unwrap();
    assert_eq!(status(&r, 0), "NotImported", "{}", r.0);
}

// A shard whose apps' heads cannot be read for a reason other than an outage (here a corrupt
// row: a negative kicks revision) is a fault to fix: a node with an app there does not start,
// and the error names the shard. (An outage would let it start and take the app on later.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shards_a_corrupt_head_stops_the_start_and_names_the_shard() {
    let (shard_a, cluster) = one_node_with_an_app_on_a().await;
    shard_a.psql(&format!(
        "update app_versions set kicks = -1 where app_id = {APP_A}"
    ));
    let dir = tempfile::tempdir().unwrap();
    let config = cluster._dirs[0].path().join("node0.toml");
    let stderr = start_fails(dir.path(), &config).await;
    assert!(
        stderr.contains("shard \"a\"") && stderr.contains("kicks revision is negative"),
        "the error names the shard and what is wrong: {stderr}"
    );
}

/// A PostgreSQL server for shard a, and one node (without NATS) with app [`APP_A`] on it.
async fn one_node_with_an_app_on_a() -> (PgServer, Cluster) {
    let shard_a = tokio::task::spawn_blocking(PgServer::start).await.unwrap();
    let cluster = Cluster::start(
        1,
        Options {
            without_nats: true,
            ..with_shard_a(&shard_a.url())
        },
    )
    .await;
    app_on_a(&cluster.bases[0], APP_A, KEY_A).await;
    (shard_a, cluster)
}

/// Starts a node in `dir` with `config`, which must exit with an error within a minute; its
/// standard error.
async fn start_fails(dir: &std::path::Path, config: &std::path::Path) -> String {
    let mut cmd = common::serve_command(dir);
    cmd.arg("--config")
        .arg(config)
        .stderr(std::process::Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    let t = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if t.elapsed() > Duration::from_secs(60) {
            child.kill().unwrap();
            panic!("the node started");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut stderr).unwrap();
    assert!(!status.success(), "{stderr}");
    stderr
}
