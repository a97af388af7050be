//! Issue #18's done-when: an app and a custom field created through one node's operator API are
//! used on every other node within a second, with no restart (NATS wake-up), and without NATS
//! within `[operator] poll_ms` (uses the cluster harness of `multinode.rs`).

use super::*;

const TOKEN: &str = "multinode-operator-token";
const FIELD: &str = "Tag_Profile_Custom_Tier";

/// An operator call to `base`; the status and JSON body.
async fn op(base: &str, method: &str, path: &str, body: Value) -> (u16, Value) {
    let resp = reqwest::Client::new()
        .request(method.parse().unwrap(), format!("{base}{path}"))
        .bearer_auth(TOKEN)
        .json(&body)
        .send()
        .await
        .unwrap();
    (resp.status().as_u16(), resp.json().await.unwrap())
}

/// Creates an app and a string field through `base`; the SDKAppID and key.
async fn create(base: &str) -> (u64, String) {
    let (status, created) = op(base, "POST", "/admin/v1/apps", json!({})).await;
    assert_eq!(status, 201, "{created}");
    let id = created["app"]["sdkappid"].as_u64().unwrap();
    let key = created["key"].as_str().unwrap().to_owned();
    let (status, field) = op(
        base,
        "POST",
        &format!("/admin/v1/apps/{id}/fields"),
        json!({"name": FIELD, "type": "string"}),
    )
    .await;
    assert_eq!(status, 201, "{field}");
    (id, key)
}

/// How long after `since` node `base` first imports an account and sets and reads [`FIELD`]
/// of the app `id` (signed with `key`), trying every 10 ms for at most `within` and twice that.
async fn usable_after(
    base: &str,
    id: u64,
    key: &str,
    since: Instant,
    within: Duration,
) -> Duration {
    let admin = AdminClient::new(base, id, ADMIN, key);
    let user = format!("user-{}", base.rsplit(':').next().unwrap());
    loop {
        let imported = admin.account_import(&user, None, None).await.unwrap();
        if imported.code() == 0 {
            let set = admin
                .portrait_set(&user, &[(FIELD, json!(base))])
                .await
                .unwrap();
            let got = admin
                .portrait_get(&[user.as_str()], &[FIELD])
                .await
                .unwrap();
            if set.code() == 0 && got.code() == 0 && item(&got, 0, FIELD) == json!(base) {
                return since.elapsed();
            }
        }
        assert!(
            since.elapsed() < within * 2,
            "{base}: app {id} not usable after {:?}: {:?}",
            since.elapsed(),
            imported.0
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_app_and_a_field_made_on_one_node_work_on_every_node_within_a_second() {
    let c = Cluster::start(
        3,
        Options {
            operator_token: Some(TOKEN),
            ..Options::default()
        },
    )
    .await;
    let (id, key) = create(&c.bases[0]).await;
    let made = Instant::now();
    for node in 1..3 {
        let took = usable_after(&c.bases[node], id, &key, made, Duration::from_secs(1)).await;
        eprintln!(
            "node {node}: app {id} and its field usable {took:?} after they were made on node 0"
        );
        assert!(took < Duration::from_secs(1), "node {node}: {took:?}");
    }
    // Every node shows the app from the store.
    for base in &c.bases {
        let (status, view) = op(base, "GET", &format!("/admin/v1/apps/{id}"), json!({})).await;
        assert_eq!(status, 200, "{base}: {view}");
        assert_eq!(view["source"], "store");
        assert_eq!(view["custom_fields"][0]["name"], FIELD);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_nats_polling_applies_an_app_on_every_node_within_poll_ms() {
    const POLL: u64 = 300;
    let c = Cluster::start(
        3,
        Options {
            operator_token: Some(TOKEN),
            operator_poll_ms: Some(POLL),
            without_nats: true,
            ..Options::default()
        },
    )
    .await;
    let (id, key) = create(&c.bases[0]).await;
    let made = Instant::now();
    // Within one poll interval, plus the time of the calls themselves on a busy machine.
    let within = Duration::from_millis(POLL + 500);
    for node in 1..3 {
        let took = usable_after(&c.bases[node], id, &key, made, within).await;
        eprintln!("node {node} (no NATS, poll_ms {POLL}): app {id} usable after {took:?}");
        assert!(took < within, "node {node}: {took:?}");
    }
}
