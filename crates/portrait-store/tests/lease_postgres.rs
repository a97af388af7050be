//! Leases on PostgreSQL: one holder at a time per app and name, renewable by the holder, taken
//! over by another only after expiry (webhook delivery runs on one node of a cluster).

use std::time::Duration;

use portrait_store::testkit;

const APP: u64 = 1_400_000_500;

#[tokio::test]
async fn a_lease_has_one_holder_until_it_expires() {
    let store = testkit::fresh_postgres().await;
    assert!(store.lease(APP, "webhook", "node-a", 400).await.unwrap());
    assert!(
        !store.lease(APP, "webhook", "node-b", 400).await.unwrap(),
        "held by node-a"
    );
    assert!(
        store.lease(APP, "webhook", "node-a", 400).await.unwrap(),
        "the holder renews"
    );
    assert!(
        store.lease(APP, "other", "node-b", 400).await.unwrap(),
        "leases are per name"
    );
    assert!(
        store
            .lease(APP + 1, "webhook", "node-b", 400)
            .await
            .unwrap(),
        "and per app"
    );
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert!(
        store.lease(APP, "webhook", "node-b", 400).await.unwrap(),
        "expired: taken over"
    );
    assert!(!store.lease(APP, "webhook", "node-a", 400).await.unwrap());
}

#[tokio::test]
async fn a_holder_releases_its_lease_by_renewing_it_for_zero_milliseconds() {
    let store = testkit::fresh_postgres().await;
    assert!(store.lease(APP, "webhook", "node-a", 60_000).await.unwrap());
    assert!(!store.lease(APP, "webhook", "node-b", 60_000).await.unwrap());
    assert!(
        !store.lease(APP, "webhook", "node-b", 0).await.unwrap(),
        "a zero-length call by another is no release"
    );
    assert!(store.lease(APP, "webhook", "node-a", 0).await.unwrap());
    tokio::time::sleep(Duration::from_millis(5)).await;
    assert!(
        store.lease(APP, "webhook", "node-b", 60_000).await.unwrap(),
        "released: taken at once, not after the minute"
    );
}

#[tokio::test]
async fn members_are_the_nodes_renewed_within_their_ttl_and_leave_with_zero() {
    let store = testkit::fresh_postgres().await;
    let sorted = |mut v: Vec<String>| {
        v.sort();
        v
    };
    assert_eq!(store.members("node-a", 400).await.unwrap(), ["node-a"]);
    assert_eq!(
        sorted(store.members("node-b", 60_000).await.unwrap()),
        ["node-a", "node-b"],
        "both alive"
    );
    // A webhook lease of app 0 named like a member is not mistaken for one, and vice versa.
    assert!(store
        .lease(APP, "node:node-c", "node-c", 60_000)
        .await
        .unwrap());
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(
        store.members("node-b", 60_000).await.unwrap(),
        ["node-b"],
        "node-a was not renewed within 400 ms"
    );
    assert_eq!(
        sorted(store.members("node-a", 60_000).await.unwrap()),
        ["node-a", "node-b"],
        "node-a is back"
    );
    assert_eq!(
        store.members("node-a", 0).await.unwrap(),
        ["node-b"],
        "node-a left: renewed for 0 ms"
    );
    assert_eq!(store.members("node-b", 60_000).await.unwrap(), ["node-b"]);
}
