//! Conformance checks of kicks that outlive their account and of the catch-up read by account
//! ([`Store::changes_of`]).

use portrait_core::schema::StandardTag;
use portrait_core::ProfileValue;

use super::{all_changes, id, ids, new, std_tag, ADMIN};
use crate::{AppId, Change, ChangeKind, Store};

/// Kick → delete → re-import: the kick is still there (revoked UserSigs stay revoked), a deleted
/// account cannot be kicked, and the re-imported account can be kicked again.
pub(super) async fn a_kick_outlives_delete_and_reimport(store: &dyn Store) {
    const APP: AppId = 1_400_000_040;
    store
        .import_accounts(
            APP,
            &[new("k", None, None), new("other", None, None)],
            ADMIN.into(),
        )
        .await
        .unwrap();
    assert!(store.kick(APP, &id("k"), 1_700_000_000).await.unwrap());
    assert_eq!(
        store
            .delete_accounts(APP, &[id("k")], ADMIN.into())
            .await
            .unwrap(),
        vec![true]
    );
    let kicked = vec![("k".to_owned(), 1_700_000_000)];
    assert_eq!(
        store.kicks(APP).await.unwrap(),
        kicked,
        "deleting the account keeps its kick"
    );
    assert!(
        !store.kick(APP, &id("k"), 1_800_000_000).await.unwrap(),
        "a deleted account does not exist: its kick is refused and changes nothing"
    );
    assert_eq!(store.kicks(APP).await.unwrap(), kicked);
    store
        .import_accounts(APP, &[new("k", Some("again"), None)], ADMIN.into())
        .await
        .unwrap();
    assert_eq!(
        store.kicks(APP).await.unwrap(),
        kicked,
        "re-importing the account does not bring its revoked UserSigs back"
    );
    assert!(store.kick(APP, &id("k"), 1_800_000_000).await.unwrap());
    assert_eq!(
        store.kicks(APP).await.unwrap(),
        vec![("k".to_owned(), 1_800_000_000)]
    );
    assert!(
        !store.kick(APP, &id("never"), 5).await.unwrap(),
        "an account never imported cannot be kicked"
    );
    assert_eq!(store.kicks(APP).await.unwrap().len(), 1);
}

/// `changes_of` answers exactly `changes_since` filtered to the given accounts, for every set of
/// accounts, `since` and `limit` tried, and carries every field of a change.
pub(super) async fn changes_of_reads_only_the_given_accounts_in_version_order(store: &dyn Store) {
    const APP: AppId = 1_400_000_041;
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
    // `b` is busy; `a` and `c` change now and then; `c` is deleted at the end.
    let level = |n: u64| [(std_tag(StandardTag::Level), ProfileValue::Int(n))];
    for n in 0..12u64 {
        let who = match n % 4 {
            0 => "a",
            3 if n > 4 => "c",
            _ => "b",
        };
        store
            .set_profile(APP, &id(who), &level(n), who.into())
            .await
            .unwrap();
    }
    store
        .delete_accounts(APP, &[id("c")], ADMIN.into())
        .await
        .unwrap();
    store
        .import_accounts(APP + 1, &[new("a", None, None)], ADMIN.into())
        .await
        .unwrap();

    let log = all_changes(store, APP).await;
    let head = log.last().unwrap().version;
    let sets: [&[&str]; 7] = [
        &["a"],
        &["b"],
        &["c"],
        &["a", "c"],
        &["c", "a", "a"],
        &["a", "b", "c"],
        &["a", "ghost"],
    ];
    for users in sets {
        for since in 0..=head {
            for limit in [1, 2, 3, 5, 500, usize::MAX] {
                let want: Vec<Change> = log
                    .iter()
                    .filter(|c| c.version > since && users.contains(&c.user.as_str()))
                    .take(limit)
                    .cloned()
                    .collect();
                let got = store
                    .changes_of(APP, &ids(users), since, limit)
                    .await
                    .expect("changes_of");
                assert_eq!(
                    got, want,
                    "changes_of({users:?}, since {since}, limit {limit})"
                );
            }
        }
    }
    let c = store.changes_of(APP, &ids(&["c"]), 0, 500).await.unwrap();
    assert_eq!(
        c.iter().map(|c| c.kind).collect::<Vec<_>>(),
        [
            ChangeKind::Import,
            ChangeKind::Set,
            ChangeKind::Set,
            ChangeKind::Delete
        ],
        "imports, sets and deletes"
    );
    assert!(store.changes_of(APP, &[], 0, 10).await.unwrap().is_empty());
    assert!(store
        .changes_of(APP, &ids(&["a"]), 0, 0)
        .await
        .unwrap()
        .is_empty());
    assert!(store
        .changes_of(APP, &ids(&["a"]), u64::MAX, 10)
        .await
        .unwrap()
        .is_empty());
    assert_eq!(
        store
            .changes_of(APP + 1, &ids(&["a", "b"]), 0, 10)
            .await
            .unwrap()
            .iter()
            .map(|c| (c.version, c.user.as_str()))
            .collect::<Vec<_>>(),
        [(1, "a")],
        "apps are apart"
    );
}
