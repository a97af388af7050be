//! Conformance checks of reader cursors and of pruning the change log behind them.

use portrait_core::schema::StandardTag;

use crate::{AppId, Store};

use super::{all_changes, fields_of, id, logged_versions, new, std_tag, text, ADMIN, NICK};

pub(super) async fn cursors_are_per_app_and_name_and_overwrite(store: &dyn Store) {
    const APP: AppId = 1_400_000_303;
    assert_eq!(store.cursor(APP, "webhook").await.unwrap(), None);
    store.set_cursor(APP, "webhook", 5).await.unwrap();
    store.set_cursor(APP, "other", 9).await.unwrap();
    store.set_cursor(APP + 1, "webhook", 1).await.unwrap();
    assert_eq!(store.cursor(APP, "webhook").await.unwrap(), Some(5));
    store.set_cursor(APP, "webhook", 7).await.unwrap();
    assert_eq!(store.cursor(APP, "webhook").await.unwrap(), Some(7));
    assert_eq!(store.cursor(APP, "other").await.unwrap(), Some(9));
    assert_eq!(store.cursor(APP + 1, "webhook").await.unwrap(), Some(1));
    store.set_cursor(APP, "webhook", 0).await.unwrap();
    assert_eq!(store.cursor(APP, "webhook").await.unwrap(), Some(0));
}

pub(super) async fn pruning_deletes_the_oldest_changes_and_moves_the_pruned_cursor(
    store: &dyn Store,
) {
    const APP: AppId = 1_400_000_308;
    assert_eq!(store.prune_changes(APP, 100, 10).await.unwrap(), 0);
    assert_eq!(
        store.cursor(APP, crate::PRUNED).await.unwrap(),
        Some(0),
        "not beyond the app's version"
    );
    store.set_cursor(APP, crate::PRUNED, 100).await.unwrap();
    let other = APP + 1;
    store
        .import_accounts(
            APP,
            &[new("a", None, None), new("b", None, None)],
            ADMIN.into(),
        )
        .await
        .unwrap(); // versions 1, 2
    store
        .import_accounts(other, &[new("a", None, None)], ADMIN.into())
        .await
        .unwrap();
    for i in 0..6 {
        store
            .set_profile(
                APP,
                &id("a"),
                &[(std_tag(StandardTag::Nick), text(&format!("n{i}")))],
                "a".into(),
            )
            .await
            .unwrap(); // versions 3..=8
    }
    // Chunks of at most `limit`, oldest first; the cursor says where gaps may be.
    assert_eq!(store.prune_changes(APP, 5, 2).await.unwrap(), 2);
    assert_eq!(
        store.cursor(APP, crate::PRUNED).await.unwrap(),
        Some(100),
        "never backwards"
    );
    assert_eq!(logged_versions(store, APP).await, [3, 4, 5, 6, 7, 8]);
    store.set_cursor(APP, crate::PRUNED, 0).await.unwrap();
    assert_eq!(store.prune_changes(APP, 5, 2).await.unwrap(), 2);
    assert_eq!(
        store.cursor(APP, crate::PRUNED).await.unwrap(),
        Some(4),
        "the highest deleted"
    );
    assert_eq!(store.prune_changes(APP, 5, 2).await.unwrap(), 1);
    assert_eq!(
        store.cursor(APP, crate::PRUNED).await.unwrap(),
        Some(5),
        "done: `through`"
    );
    assert_eq!(logged_versions(store, APP).await, [6, 7, 8]);
    assert_eq!(store.changes_since(APP, 0, 1).await.unwrap()[0].version, 6);
    // Data, versions and other apps are untouched; writes go on from the app's version.
    assert_eq!(store.current_version(APP).await.unwrap(), 8);
    assert_eq!(fields_of(store, APP, "a").await[NICK], text("n5"));
    assert_eq!(all_changes(store, other).await.len(), 1);
    let v = store
        .set_profile(
            APP,
            &id("b"),
            &[(std_tag(StandardTag::Nick), text("b"))],
            "b".into(),
        )
        .await
        .unwrap();
    assert_eq!(v, 9);
    assert_eq!(store.prune_changes(APP, u64::MAX, 1000).await.unwrap(), 4);
    assert!(all_changes(store, APP).await.is_empty());
    assert_eq!(
        store.cursor(APP, crate::PRUNED).await.unwrap(),
        Some(9),
        "through beyond every version: up to the app's version"
    );
    assert_eq!(
        store.prune_changes(APP, 1, 0).await.unwrap(),
        0,
        "limit 0 deletes nothing"
    );
}

/// Every store counts the node that registers among the members ([`Store::members`]), once.
pub(super) async fn a_node_is_a_member_while_registered(store: &dyn Store) {
    let node = format!("conformance-{}", std::process::id());
    let live = store.members(&node, 60_000).await.unwrap();
    assert!(live.contains(&node), "{live:?} lacks {node}");
    let live = store.members(&node, 60_000).await.unwrap();
    assert_eq!(
        live.iter().filter(|m| **m == node).count(),
        1,
        "once: {live:?}"
    );
}
