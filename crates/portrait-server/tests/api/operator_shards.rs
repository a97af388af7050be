//! The operator API's shard settings on a node without `[store] shards` (the embedded store's
//! and a single database's case): `home` is accepted, any other shard and every move are refused
//! with a clear 400. Shards themselves are tested over two PostgreSQL clusters in
//! `crates/portrait/tests/multinode/shards.rs`.

use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::*;
use crate::operator_apps::{expect_error, op};

#[tokio::test]
async fn without_shards_only_home_is_accepted_and_moves_are_refused() {
    let app = spawn_operator().await;
    let (status, created) = op(
        &app,
        "POST",
        "/admin/v1/apps",
        Some(json!({"shard": "home"})),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    assert!(
        created["app"].get("shard").is_none(),
        "no shard shown: {created}"
    );
    expect_error(
        &app,
        "POST",
        "/admin/v1/apps",
        Some(json!({"shard": "b"})),
        StatusCode::BAD_REQUEST,
        "invalid",
    )
    .await;
    let (_, body) = op(&app, "POST", "/admin/v1/apps", Some(json!({"shard": "b"}))).await;
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("no [store] shards"),
        "{body}"
    );
    let path = format!("/admin/v1/apps/{APP}/move");
    expect_error(
        &app,
        "POST",
        &path,
        Some(json!({"shard": "home"})),
        StatusCode::BAD_REQUEST,
        "invalid",
    )
    .await;
    expect_error(
        &app,
        "POST",
        &path,
        Some(json!({})),
        StatusCode::BAD_REQUEST,
        "invalid",
    )
    .await;
}

#[tokio::test]
async fn a_record_on_a_shard_this_node_lacks_is_skipped_and_the_others_still_apply() {
    let app = spawn_operator().await;
    let lost = 1_400_000_999u64;
    let body = json!({"sdkappid": lost, "key": "k", "admins": ["administrator"], "shard": "b"});
    app.store
        .put_app_record(lost, None, &body.to_string())
        .await
        .unwrap();
    // Creating another app reads every record first: the one it cannot place does not stop it.
    let (status, created) = op(&app, "POST", "/admin/v1/apps", Some(json!({}))).await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    expect_error(
        &app,
        "GET",
        &format!("/admin/v1/apps/{lost}"),
        None,
        StatusCode::NOT_FOUND,
        "app_not_found",
    )
    .await;
}
