//! Conformance check of kicks: a kick is recorded for an existing account and listed by
//! `kicks` (that a kick outlives delete and re-import is checked in `catch_up.rs`).

use crate::{AppId, Store};

use super::{id, new, ADMIN};

pub(super) async fn kick_records_revocation_and_kicks_lists_kicked_accounts(store: &dyn Store) {
    const APP: AppId = 1_400_000_014;
    store
        .import_accounts(
            APP,
            &[
                new("a", None, None),
                new("b", None, None),
                new("c", None, None),
            ],
            ADMIN.into(),
        )
        .await
        .unwrap();
    assert!(
        store.kicks(APP).await.unwrap().is_empty(),
        "nobody is kicked yet"
    );
    assert!(
        !store.kick(APP, &id("ghost"), 100).await.unwrap(),
        "kicking a missing account reports false"
    );
    assert!(store.kick(APP, &id("b"), 1_700_000_000).await.unwrap());
    assert!(store.kick(APP, &id("a"), 100).await.unwrap());
    assert_eq!(
        store.kicks(APP).await.unwrap(),
        vec![("a".to_owned(), 100), ("b".to_owned(), 1_700_000_000)]
    );

    assert!(store.kick(APP, &id("a"), 200).await.unwrap());
    assert!(
        store.kick(APP, &id("b"), 5).await.unwrap(),
        "an earlier kick of an existing account still succeeds"
    );
    assert_eq!(
        store.kicks(APP).await.unwrap(),
        vec![("a".to_owned(), 200), ("b".to_owned(), 1_700_000_000)],
        "a later kick moves the revocation forward, never back",
    );
    assert_eq!(
        store.current_version(APP).await.unwrap(),
        3,
        "a kick is not a profile change"
    );
    assert!(
        store.kicks(APP + 1000).await.unwrap().is_empty(),
        "other app"
    );

    store
        .delete_accounts(APP, &[id("a")], ADMIN.into())
        .await
        .unwrap();
    assert_eq!(
        store.kicks(APP).await.unwrap(),
        vec![("a".to_owned(), 200), ("b".to_owned(), 1_700_000_000)],
        "a deleted account keeps its kick (see catch_up::a_kick_outlives_delete_and_reimport)"
    );
}
