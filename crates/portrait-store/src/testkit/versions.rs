//! Conformance checks of versions and the change log: versions increase without gaps per app,
//! apps are isolated, `changes_since` honours its bounds, and versions become visible in order.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use portrait_core::schema::StandardTag;
use portrait_core::ProfileValue;

use crate::{AppId, Change, ChangeKind, NewAccount, Store};

use super::{
    all_changes, custom, fields, fields_of, id, ids, item, new, std_tag, text, ADMIN, NICK,
};

pub(super) async fn versions_increase_strictly_per_app_and_apps_are_independent(store: &dyn Store) {
    const X: AppId = 1_400_000_010;
    const Y: AppId = 1_400_000_011;
    assert_eq!(
        store.current_version(X).await.unwrap(),
        0,
        "an app never written is at version 0"
    );
    store
        .import_accounts(X, &[new("u", None, None)], ADMIN.into())
        .await
        .unwrap();
    store
        .import_accounts(Y, &[new("u", None, None)], ADMIN.into())
        .await
        .unwrap();
    let nick = |s: &str| vec![(std_tag(StandardTag::Nick), text(s))];
    assert_eq!(
        store
            .set_profile(X, &id("u"), &nick("x2"), ADMIN.into())
            .await
            .unwrap(),
        2
    );
    assert_eq!(
        store
            .set_profile(X, &id("u"), &nick("x3"), ADMIN.into())
            .await
            .unwrap(),
        3
    );
    assert_eq!(
        store
            .set_profile(Y, &id("u"), &nick("y2"), ADMIN.into())
            .await
            .unwrap(),
        2
    );
    assert_eq!(
        store
            .delete_accounts(X, &[id("u")], ADMIN.into())
            .await
            .unwrap(),
        vec![true]
    );
    assert_eq!(store.current_version(X).await.unwrap(), 4);
    assert_eq!(store.current_version(Y).await.unwrap(), 2);
    let xs: Vec<u64> = all_changes(store, X)
        .await
        .iter()
        .map(|c| c.version)
        .collect();
    let ys: Vec<u64> = all_changes(store, Y)
        .await
        .iter()
        .map(|c| c.version)
        .collect();
    assert_eq!(xs, vec![1, 2, 3, 4]);
    assert_eq!(ys, vec![1, 2]);
}

pub(super) async fn changes_since_honours_since_limit_and_order(store: &dyn Store) {
    const APP: AppId = 1_400_000_012;
    store
        .import_accounts(
            APP,
            &[new("a", None, None), new("b", None, None)],
            ADMIN.into(),
        )
        .await
        .unwrap();
    for i in 0..3u64 {
        store
            .set_profile(
                APP,
                &id("a"),
                &[(std_tag(StandardTag::Level), ProfileValue::Int(i))],
                "a".into(),
            )
            .await
            .unwrap();
    }
    let versions = |cs: Vec<Change>| cs.iter().map(|c| c.version).collect::<Vec<_>>();
    assert_eq!(
        versions(store.changes_since(APP, 0, 10).await.unwrap()),
        vec![1, 2, 3, 4, 5]
    );
    assert_eq!(
        versions(store.changes_since(APP, 2, 2).await.unwrap()),
        vec![3, 4],
        "since is exclusive, limit caps"
    );
    assert_eq!(
        versions(store.changes_since(APP, 4, 10).await.unwrap()),
        vec![5]
    );
    assert!(
        store.changes_since(APP, 5, 10).await.unwrap().is_empty(),
        "nothing after the latest version"
    );
    assert!(
        store.changes_since(APP, 0, 0).await.unwrap().is_empty(),
        "limit 0"
    );
    assert!(store
        .changes_since(APP, u64::MAX, 10)
        .await
        .unwrap()
        .is_empty());
    assert!(
        store
            .changes_since(APP + 1000, 0, 10)
            .await
            .unwrap()
            .is_empty(),
        "an app never written"
    );

    let c = store.changes_since(APP, 3, 1).await.unwrap().pop().unwrap();
    assert_eq!(
        (
            c.version,
            c.user.as_str(),
            c.operator.as_str(),
            c.kind,
            c.items
        ),
        (
            4,
            "a",
            "a",
            ChangeKind::Set,
            vec![item("Tag_Profile_IM_Level", ProfileValue::Int(1))]
        ),
    );
}

pub(super) async fn apps_are_isolated(store: &dyn Store) {
    const A: AppId = 1_400_000_015;
    const B: AppId = 1_400_000_016;
    store
        .import_accounts(A, &[new("same", Some("in A"), None)], ADMIN.into())
        .await
        .unwrap();
    store
        .import_accounts(
            B,
            &[new("same", Some("in B"), None), new("only-b", None, None)],
            ADMIN.into(),
        )
        .await
        .unwrap();
    store
        .set_profile(
            A,
            &id("same"),
            &[(custom("Hobby"), text("a"))],
            ADMIN.into(),
        )
        .await
        .unwrap();
    store.kick(A, &id("same"), 42).await.unwrap();

    assert_eq!(
        fields_of(store, B, "same").await,
        fields(&[(NICK, text("in B"))]),
        "A's writes do not reach B"
    );
    assert_eq!(
        store.accounts_exist(A, &ids(&["only-b"])).await.unwrap(),
        vec![false]
    );
    assert!(store.kicks(B).await.unwrap().is_empty());
    assert!(all_changes(store, B)
        .await
        .iter()
        .all(|c| c.operator == ADMIN && c.kind == ChangeKind::Import));
    assert_eq!(all_changes(store, B).await.len(), 2);

    assert_eq!(
        store
            .delete_accounts(A, &ids(&["same", "only-b"]), ADMIN.into())
            .await
            .unwrap(),
        vec![true, false]
    );
    assert_eq!(
        fields_of(store, B, "same").await[NICK],
        text("in B"),
        "deleting in A leaves B"
    );
    assert_eq!(store.current_version(B).await.unwrap(), 2);
}

/// The ordering realtime push relies on: a reader that sees change version `v` committed must see
/// every lower version of the app too. Many writers (sets, imports and deletes) race while a
/// reader keeps polling `changes_since(seen)`; every poll must continue exactly at `seen + 1`
/// with no hole. A backend that hands out versions before taking the app's write lock (e.g. from
/// a sequence) lets a later version commit first, and this check sees the gap.
pub(super) async fn versions_become_visible_in_version_order(store: Arc<dyn Store>) {
    const APP: AppId = 1_400_000_304;
    const WRITERS: u64 = 8;
    const WRITES: u64 = 40;
    let accounts: Vec<NewAccount> = (0..WRITERS)
        .map(|w| new(&format!("o{w}"), None, None))
        .collect();
    store
        .import_accounts(APP, &accounts, ADMIN.into())
        .await
        .unwrap();
    let base = WRITERS;

    let done = Arc::new(AtomicBool::new(false));
    let reader = {
        let (store, done) = (store.clone(), done.clone());
        tokio::spawn(async move {
            let mut seen = 0u64;
            let mut growths = 0u32;
            loop {
                // Read before polling: once the writers are done, one more poll sees the end.
                let finished = done.load(Ordering::SeqCst);
                let got = store
                    .changes_since(APP, seen, 10_000)
                    .await
                    .expect("changes_since while writers write");
                if !got.is_empty() {
                    growths += 1;
                }
                for c in &got {
                    assert_eq!(
                        c.version,
                        seen + 1,
                        "version {} became visible while version {} was not (a gap a reader \
                         could skip for good)",
                        c.version,
                        seen + 1
                    );
                    seen = c.version;
                }
                let current = store.current_version(APP).await.expect("current_version");
                assert!(
                    current >= seen,
                    "current_version {current} is behind the visible change log ({seen})"
                );
                if finished {
                    return (seen, growths);
                }
                tokio::task::yield_now().await;
            }
        })
    };

    let start = Arc::new(tokio::sync::Barrier::new(WRITERS as usize));
    let mut writers = Vec::new();
    for w in 0..WRITERS {
        let (store, start) = (store.clone(), start.clone());
        writers.push(tokio::spawn(async move {
            start.wait().await;
            let user = format!("o{w}");
            let mut taken = 0u64;
            for i in 0..WRITES {
                match i % 10 {
                    // Now and then a multi-version write: a new account plus a nick of the writer's
                    // own, then that account deleted again.
                    3 => {
                        let extra = format!("o{w}x{i}");
                        store
                            .import_accounts(
                                APP,
                                &[new(&extra, None, None), new(&user, Some("n"), None)],
                                ADMIN.into(),
                            )
                            .await
                            .expect("concurrent import");
                        store
                            .delete_accounts(APP, &[id(&extra)], ADMIN.into())
                            .await
                            .expect("concurrent delete");
                        taken += 3;
                    }
                    _ => {
                        store
                            .set_profile(
                                APP,
                                &id(&user),
                                &[(custom("Seq"), ProfileValue::Int(i))],
                                (&user).into(),
                            )
                            .await
                            .expect("concurrent set_profile");
                        taken += 1;
                    }
                }
            }
            taken
        }));
    }
    let mut total = base;
    for w in writers {
        total += w.await.expect("writer task");
    }
    done.store(true, Ordering::SeqCst);
    let (seen, growths) = reader.await.expect("reader task");
    assert_eq!(seen, total, "the reader ends having seen every version");
    assert_eq!(store.current_version(APP).await.unwrap(), total);
    assert!(
        growths >= 2,
        "the reader saw the log grow only {growths} time(s): it did not run alongside the writers"
    );
}
