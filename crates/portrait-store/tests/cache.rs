//! The read cache: it passes the same conformance suite as the backend it wraps, and it never
//! serves a value older than the last acknowledged write, even with readers racing the writer.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use portrait_core::schema::StandardTag;
use portrait_core::{Identifier, ProfileValue, Tag};
use portrait_store::cache::CachedStore;
use portrait_store::{testkit, NewAccount, Store};

const APP: u64 = 1_400_000_077;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cached_sqlite_store_conforms() {
    let (inner, _dir) = testkit::fresh_sqlite().await;
    let store: Arc<dyn Store> = Arc::new(CachedStore::new(inner, 100_000));
    testkit::run_all(store.clone()).await;
    store.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_read_after_an_acknowledged_write_never_sees_an_older_value() {
    let (inner, _dir) = testkit::fresh_sqlite().await;
    let store: Arc<dyn Store> = Arc::new(CachedStore::new(inner, 100_000));
    let user = Identifier::parse("hot").unwrap();
    store
        .import_accounts(
            APP,
            &[NewAccount {
                user: user.clone(),
                nick: None,
                face_url: None,
            }],
            "admin",
        )
        .await
        .unwrap();

    // Readers keep missing and refilling the cache for the same key while the writer writes.
    let stop = Arc::new(AtomicBool::new(false));
    let mut readers = Vec::new();
    for _ in 0..4 {
        let (store, stop, user) = (store.clone(), stop.clone(), user.clone());
        readers.push(tokio::spawn(async move {
            let mut n = 0u64;
            while !stop.load(Ordering::Relaxed) {
                store
                    .get_profiles(APP, std::slice::from_ref(&user))
                    .await
                    .unwrap();
                n += 1;
                // A cache hit completes without awaiting anything: pace the loop so that
                // spinning readers cannot monopolise the runtime's two worker threads.
                tokio::task::yield_now().await;
            }
            n
        }));
    }
    for i in 1..=300u64 {
        store
            .set_profile(
                APP,
                &user,
                &[(Tag::Standard(StandardTag::Level), ProfileValue::Int(i))],
                "admin",
            )
            .await
            .unwrap();
        let got = store
            .get_profiles(APP, std::slice::from_ref(&user))
            .await
            .unwrap();
        let level = got[0]
            .as_ref()
            .unwrap()
            .fields
            .get("Tag_Profile_IM_Level")
            .cloned();
        assert_eq!(
            level,
            Some(ProfileValue::Int(i)),
            "read after write {i} saw an older value"
        );
    }
    stop.store(true, Ordering::Relaxed);
    let mut reads = 0;
    for r in readers {
        reads += r.await.unwrap();
    }
    assert!(reads > 0, "the readers ran");
}

#[tokio::test]
async fn deleted_and_reimported_accounts_are_not_served_from_a_stale_cache() {
    let (inner, _dir) = testkit::fresh_sqlite().await;
    let store = CachedStore::new(inner, 100_000);
    let user = Identifier::parse("gone").unwrap();
    let new = || NewAccount {
        user: user.clone(),
        nick: Some("first".into()),
        face_url: None,
    };
    store.import_accounts(APP, &[new()], "admin").await.unwrap();
    assert!(store
        .get_profiles(APP, std::slice::from_ref(&user))
        .await
        .unwrap()[0]
        .is_some());
    store
        .delete_accounts(APP, std::slice::from_ref(&user), "admin")
        .await
        .unwrap();
    assert!(store
        .get_profiles(APP, std::slice::from_ref(&user))
        .await
        .unwrap()[0]
        .is_none());
    assert_eq!(
        store
            .accounts_exist(APP, std::slice::from_ref(&user))
            .await
            .unwrap(),
        vec![false]
    );
    store.import_accounts(APP, &[new()], "admin").await.unwrap();
    assert_eq!(
        store
            .accounts_exist(APP, std::slice::from_ref(&user))
            .await
            .unwrap(),
        vec![true]
    );
}
