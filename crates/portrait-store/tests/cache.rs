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
        .import_accounts(APP, &[NewAccount::new(user.clone())], "admin".into())
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
                "admin".into(),
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
    let new = || NewAccount::with_nick_face(user.clone(), Some("first".into()), None);
    store
        .import_accounts(APP, &[new()], "admin".into())
        .await
        .unwrap();
    assert!(store
        .get_profiles(APP, std::slice::from_ref(&user))
        .await
        .unwrap()[0]
        .is_some());
    store
        .delete_accounts(APP, std::slice::from_ref(&user), "admin".into())
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
    store
        .import_accounts(APP, &[new()], "admin".into())
        .await
        .unwrap();
    assert_eq!(
        store
            .accounts_exist(APP, std::slice::from_ref(&user))
            .await
            .unwrap(),
        vec![true]
    );
}

/// Two nodes' caches over one database: a write through one is seen by the next read through
/// the other (shared mode), which a node-local cache would not do.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shared_caches_see_each_others_writes() {
    let (inner, _dir) = testkit::fresh_sqlite().await;
    let node_a: Arc<dyn Store> = Arc::new(CachedStore::shared(inner.clone(), 1_000));
    let node_b: Arc<dyn Store> = Arc::new(CachedStore::shared(inner.clone(), 1_000));
    let local_only: Arc<dyn Store> = Arc::new(CachedStore::new(inner.clone(), 1_000));
    let users: Vec<Identifier> = (0..3)
        .map(|i| Identifier::parse(&format!("u{i}")).unwrap())
        .collect();
    let new = |u: &Identifier| NewAccount::new(u.clone());
    node_a
        .import_accounts(
            APP,
            &users.iter().map(new).collect::<Vec<_>>(),
            "admin".into(),
        )
        .await
        .unwrap();
    let nick = |p: &Option<portrait_store::Profile>| {
        p.as_ref()
            .and_then(|p| p.fields.get("Tag_Profile_IM_Nick").cloned())
    };
    // Both caches hold every account now.
    for s in [&node_b, &local_only] {
        let got = s.get_profiles(APP, &users).await.unwrap();
        assert!(got.iter().all(|p| nick(p).is_none()));
    }
    for round in 0..5u64 {
        let value = ProfileValue::Str(format!("r{round}"));
        let user = &users[(round % 3) as usize];
        node_a
            .set_profile(
                APP,
                user,
                &[(Tag::Standard(StandardTag::Nick), value.clone())],
                "admin".into(),
            )
            .await
            .unwrap();
        let got = node_b
            .get_profiles(APP, std::slice::from_ref(user))
            .await
            .unwrap();
        assert_eq!(nick(&got[0]), Some(value.clone()), "round {round}");
        assert_eq!(
            node_b
                .accounts_exist(APP, std::slice::from_ref(user))
                .await
                .unwrap(),
            vec![true]
        );
    }
    // The control: a node-local cache keeps serving what it cached before the other's writes.
    let stale = local_only.get_profiles(APP, &users[..1]).await.unwrap();
    assert_eq!(
        nick(&stale[0]),
        None,
        "a node-local cache does not see other nodes' writes"
    );
    // Deletes by another node are seen too.
    node_a
        .delete_accounts(APP, &users[..1], "admin".into())
        .await
        .unwrap();
    assert_eq!(
        node_b.accounts_exist(APP, &users[..1]).await.unwrap(),
        vec![false]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shared_cached_sqlite_store_conforms() {
    let (inner, _dir) = testkit::fresh_sqlite().await;
    let store: Arc<dyn Store> = Arc::new(CachedStore::shared(inner, 100_000));
    testkit::run_all(store.clone()).await;
    store.close().await;
}

/// Ids of any valid length (the cache holds their keys inline) are found, shared by reads and
/// dropped by writes, and two apps with the same user stay apart.
#[tokio::test]
async fn short_and_long_ids_are_cached_and_invalidated_alike() {
    let (inner, _dir) = testkit::fresh_sqlite().await;
    let store = CachedStore::new(inner, 1_000);
    let short = Identifier::parse("s").unwrap();
    let long = Identifier::parse(&"L".repeat(portrait_core::ident::MAX_IDENTIFIER_BYTES)).unwrap();
    let level = |n| [(Tag::Standard(StandardTag::Level), ProfileValue::Int(n))];
    for app in [APP, APP + 1] {
        let accounts = [
            NewAccount::new(short.clone()),
            NewAccount::new(long.clone()),
        ];
        store
            .import_accounts(app, &accounts, "admin".into())
            .await
            .unwrap();
    }
    let users = [short.clone(), long.clone()];
    for round in 1..=3u64 {
        for user in &users {
            store
                .set_profile(APP, user, &level(round), "admin".into())
                .await
                .unwrap();
        }
        for _ in 0..2 {
            // The first read loads and caches, the second is served by the cache.
            let read = store.get_profiles_shared(APP, &users).await.unwrap();
            for p in &read {
                let p = p.as_ref().expect("both accounts exist");
                assert_eq!(
                    p.to_profile().fields["Tag_Profile_IM_Level"],
                    ProfileValue::Int(round)
                );
            }
            let other = store.get_profiles(APP + 1, &users).await.unwrap();
            assert!(other
                .iter()
                .all(|p| p.as_ref().is_some_and(|p| p.fields.is_empty())));
        }
    }
    store.close().await;
}
