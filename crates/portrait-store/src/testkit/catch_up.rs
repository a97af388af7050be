//! Conformance checks of kicks that outlive their account and of the catch-up read by account
//! ([`Store::changes_of`]): what it answers, and that an answer cut short by the walk bound
//! ([`MAX_CHAIN_WALK`]) says so.

use std::sync::Arc;

use portrait_core::schema::StandardTag;
use portrait_core::ProfileValue;
use tokio::task::JoinSet;

use super::{all_changes, id, ids, new, std_tag, ADMIN};
use crate::{AppId, Change, ChangeKind, Store, MAX_CHAIN_WALK};

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
                    got.changes, want,
                    "changes_of({users:?}, since {since}, limit {limit})"
                );
                assert!(
                    got.is_complete(since) && got.complete_after == since,
                    "changes_of({users:?}, since {since}, limit {limit}): complete after \
                     {since}, answered {}",
                    got.complete_after
                );
            }
        }
    }
    let c = store.changes_of(APP, &ids(&["c"]), 0, 500).await.unwrap();
    assert_eq!(
        c.changes.iter().map(|c| c.kind).collect::<Vec<_>>(),
        [
            ChangeKind::Import,
            ChangeKind::Set,
            ChangeKind::Set,
            ChangeKind::Delete
        ],
        "imports, sets and deletes"
    );
    let nothing = |since| crate::ChangesOf {
        changes: Vec::new(),
        complete_after: since,
    };
    assert_eq!(store.changes_of(APP, &[], 0, 10).await.unwrap(), nothing(0));
    assert_eq!(
        store.changes_of(APP, &ids(&["a"]), 3, 0).await.unwrap(),
        nothing(3)
    );
    assert_eq!(
        store
            .changes_of(APP, &ids(&["a"]), u64::MAX, 10)
            .await
            .unwrap(),
        nothing(u64::MAX)
    );
    assert_eq!(
        store
            .changes_of(APP + 1, &ids(&["a", "b"]), 0, 10)
            .await
            .unwrap()
            .changes
            .iter()
            .map(|c| (c.version, c.user.as_str()))
            .collect::<Vec<_>>(),
        [(1, "a")],
        "apps are apart"
    );
}

/// `changes_of` follows an account's chain through a delete and a re-import, and stops where
/// pruning cut it (a catch-up from before [`crate::PRUNED`] cannot be complete anyway).
pub(super) async fn changes_of_follows_an_account_through_delete_reimport_and_pruning(
    store: &dyn Store,
) {
    const APP: AppId = 1_400_000_045;
    let level = |n: u64| [(std_tag(StandardTag::Level), ProfileValue::Int(n))];
    let of = |users: &'static [&'static str]| async move {
        let got = store.changes_of(APP, &ids(users), 0, 500).await.unwrap();
        let want: Vec<Change> = all_changes(store, APP)
            .await
            .into_iter()
            .filter(|c| users.contains(&c.user.as_str()))
            .collect();
        assert_eq!(got.changes, want, "changes_of({users:?})");
        assert_eq!(
            got.complete_after, 0,
            "changes_of({users:?}): a pruned chain is told by the pruned cursor, not the answer"
        );
        got.changes.iter().map(|c| c.version).collect::<Vec<u64>>()
    };
    store
        .import_accounts(
            APP,
            &[new("x", None, None), new("y", None, None)],
            ADMIN.into(),
        )
        .await
        .unwrap();
    store
        .set_profile(APP, &id("x"), &level(1), ADMIN.into())
        .await
        .unwrap();
    store
        .delete_accounts(APP, &ids(&["x"]), ADMIN.into())
        .await
        .unwrap();
    store
        .set_profile(APP, &id("y"), &level(2), ADMIN.into())
        .await
        .unwrap();
    store
        .import_accounts(APP, &[new("x", Some("again"), None)], ADMIN.into())
        .await
        .unwrap();
    store
        .set_profile(APP, &id("x"), &level(3), ADMIN.into())
        .await
        .unwrap();
    assert_eq!(
        of(&["x"]).await,
        [1, 3, 4, 6, 7],
        "through the delete and re-import"
    );
    assert_eq!(of(&["x", "y"]).await, [1, 2, 3, 4, 5, 6, 7]);

    assert_eq!(store.prune_changes(APP, 3, 100).await.unwrap(), 3);
    assert_eq!(
        of(&["x"]).await,
        [4, 6, 7],
        "the chain ends where the log was pruned"
    );
    store
        .delete_accounts(APP, &ids(&["x"]), ADMIN.into())
        .await
        .unwrap();
    store.prune_changes(APP, 8, 100).await.unwrap();
    store
        .import_accounts(APP, &[new("x", Some("third"), None)], ADMIN.into())
        .await
        .unwrap();
    assert_eq!(
        of(&["x"]).await,
        [9],
        "a pruned delete leaves nothing to link to"
    );
    assert_eq!(of(&["x", "y"]).await, [9]);
}

/// A change log as an earlier Portrait left it, before changes were chained (migration 0005), in
/// app [`EARLIER_APP`]: `a` imported (1), set (3, 5); `b` imported (2) and deleted (4); `c`
/// imported (6). Plain SQL for both backends, to run on a database migrated up to 0004.
pub const EARLIER_LOG_SQL: &str = "\
    insert into accounts (app_id, user_id, profile, version, updated_at_ms) values \
        (1400000046, 'a', '{}', 5, 0), (1400000046, 'c', '{}', 6, 0); \
    insert into changes (app_id, version, user_id, operator, kind, items, at_ms) values \
        (1400000046, 1, 'a', 'admin', 'import', '[]', 0), \
        (1400000046, 2, 'b', 'admin', 'import', '[]', 0), \
        (1400000046, 3, 'a', 'admin', 'set', '[]', 0), \
        (1400000046, 4, 'b', 'admin', 'delete', '[]', 0), \
        (1400000046, 5, 'a', 'a', 'set', '[]', 0), \
        (1400000046, 6, 'c', 'admin', 'import', '[]', 0); \
    insert into app_versions (app_id, version) values (1400000046, 6)";

/// The app of [`EARLIER_LOG_SQL`].
pub const EARLIER_APP: AppId = 1_400_000_046;

/// On a store opened on [`EARLIER_LOG_SQL`]: the migration chained the changes written before it,
/// deleted accounts included, and new changes link onto them.
///
/// # Panics
/// If a catch-up misses or invents a change.
pub async fn changes_written_before_chains_are_chained(store: &dyn Store) {
    const APP: AppId = EARLIER_APP;
    let versions = |got: Vec<Change>| got.iter().map(|c| c.version).collect::<Vec<u64>>();
    let of = |users: &'static [&'static str], since: u64, limit: usize| async move {
        versions(
            store
                .changes_of(APP, &ids(users), since, limit)
                .await
                .unwrap()
                .changes,
        )
    };
    assert_eq!(of(&["a"], 0, 10).await, [1, 3, 5]);
    assert_eq!(of(&["b"], 0, 10).await, [2, 4], "a deleted account's chain");
    assert_eq!(of(&["a", "b", "c"], 1, 10).await, [2, 3, 4, 5, 6]);
    assert_eq!(of(&["a"], 1, 1).await, [3]);
    store
        .import_accounts(APP, &[new("b", Some("back"), None)], ADMIN.into())
        .await
        .unwrap();
    store
        .set_profile(
            APP,
            &id("a"),
            &[(std_tag(StandardTag::Level), ProfileValue::Int(1))],
            ADMIN.into(),
        )
        .await
        .unwrap();
    assert_eq!(
        of(&["b"], 0, 10).await,
        [2, 4, 7],
        "re-imported after the migration"
    );
    assert_eq!(
        of(&["a"], 0, 10).await,
        [1, 3, 5, 8],
        "set after the migration"
    );
}

/// An account with more than [`MAX_CHAIN_WALK`] changes after `since` is answered from its newest
/// [`MAX_CHAIN_WALK`] only, and the answer says so: [`crate::ChangesOf::complete_after`] is the
/// change the walk stopped above, exactly; with one change fewer after `since` the answer is
/// complete. The other accounts of the same call are answered whole.
pub(super) async fn changes_of_says_where_a_long_walk_stopped(store: Arc<dyn Store>) {
    const APP: AppId = 1_400_000_047;
    const LONG: usize = MAX_CHAIN_WALK + 5;
    store
        .import_accounts(
            APP,
            &[new("long", None, None), new("short", None, None)],
            ADMIN.into(),
        )
        .await
        .unwrap();
    let level = |n: usize| [(std_tag(StandardTag::Level), ProfileValue::Int(n as u64))];
    // Many writers at once, so that the writes are committed in groups (quick on both backends).
    let write = |from: usize, to: usize| {
        let store = store.clone();
        async move {
            let mut writers = JoinSet::new();
            for n in from..to {
                let store = store.clone();
                writers.spawn(async move {
                    store
                        .set_profile(APP, &id("long"), &level(n), ADMIN.into())
                        .await
                        .expect("set_profile");
                });
                while writers.len() >= 64 {
                    writers.join_next().await.unwrap().expect("writer");
                }
            }
            while let Some(done) = writers.join_next().await {
                done.expect("writer");
            }
        }
    };
    write(0, LONG / 2).await;
    store
        .set_profile(APP, &id("short"), &level(0), ADMIN.into())
        .await
        .unwrap();
    write(LONG / 2, LONG).await;

    let log = all_changes(&*store, APP).await;
    let long: Vec<u64> = log
        .iter()
        .filter(|c| c.user == "long")
        .map(|c| c.version)
        .collect();
    assert_eq!(long.len(), LONG + 1, "the import and every set");
    // The walk from the newest reaches `MAX_CHAIN_WALK` changes of `long`; the one before them
    // is where it stops.
    let cut = long[long.len() - MAX_CHAIN_WALK - 1];
    let want = |users: &[&str], since: u64, limit: usize, cut: u64| -> Vec<Change> {
        log.iter()
            .filter(|c| c.version > since && users.contains(&c.user.as_str()))
            .filter(|c| c.user != "long" || c.version > cut)
            .take(limit)
            .cloned()
            .collect()
    };
    for (users, since, limit) in [
        (&["long"][..], 0, MAX_CHAIN_WALK),
        (&["long"], 0, 3),
        (&["long", "short"], 0, 10),
        (&["short", "long"], 0, usize::MAX),
        (&["long"], cut - 1, 1),
        (&["long"], long[1], 500),
    ] {
        let got = store
            .changes_of(APP, &ids(users), since, limit)
            .await
            .unwrap();
        assert!(
            !got.is_complete(since),
            "changes_of({users:?}, since {since}, limit {limit}) says it is incomplete"
        );
        assert_eq!(
            got.complete_after, cut,
            "changes_of({users:?}, since {since}, limit {limit}): complete after the change \
             the walk stopped above"
        );
        assert_eq!(
            got.changes,
            want(users, since, limit, cut),
            "changes_of({users:?}, since {since}, limit {limit}): the newest {MAX_CHAIN_WALK} \
             of `long`, and every change of `short`"
        );
    }
    // From the stopping point on, the walk reaches `since`: complete.
    for (users, since, limit) in [
        (&["long"][..], cut, MAX_CHAIN_WALK),
        (&["long", "short"], cut, 20),
        (&["short"], 0, 10),
        (&["long"], long[long.len() - 2], 10),
    ] {
        let got = store
            .changes_of(APP, &ids(users), since, limit)
            .await
            .unwrap();
        assert_eq!(
            got.complete_after, since,
            "changes_of({users:?}, since {since}, limit {limit}) is complete"
        );
        assert_eq!(got.changes, want(users, since, limit, 0));
    }
}
