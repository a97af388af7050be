//! Conformance check of `dump_app` and `restore_app`: a restored app is the dumped one.

use portrait_core::ProfileValue;

use crate::{AppDump, AppId, Store, StoreError};

use super::{all_changes, custom, id, ids, new, text, ADMIN};

pub(super) async fn dump_and_restore_preserve_everything(store: &dyn Store) {
    const APP: AppId = 1_400_000_305;
    // Far from APP, and negative as an i64: `apps()` must still sort it after APP.
    const COPY: AppId = u64::MAX - 7;
    const NEVER: AppId = 1_400_000_307;
    store
        .import_accounts(
            APP,
            &[
                new("a", Some("Ann"), None),
                new("b", None, None),
                new("c", None, Some("https://x.test/c.png")),
            ],
            ADMIN.into(),
        )
        .await
        .unwrap();
    store
        .set_profile(
            APP,
            &id("a"),
            &[
                (custom("Max"), ProfileValue::Int(u64::MAX)),
                (custom("Odd"), text("nul:\0 深 \"q\"")),
            ],
            "a".into(),
        )
        .await
        .unwrap();
    store.kick(APP, &id("b"), 1_700_000_000).await.unwrap();
    store.kick(APP, &id("c"), 1_600_000_000).await.unwrap();
    store
        .delete_accounts(APP, &[id("c")], "ops".into())
        .await
        .unwrap();
    store.set_cursor(APP, "webhook", 3).await.unwrap();
    store.set_cursor(APP, "other", 0).await.unwrap();

    let dump = store.dump_app(APP).await.expect("dump_app");
    dump.check().expect("a dump passes its own check");
    assert_eq!(dump.app, APP);
    assert_eq!(dump.version, store.current_version(APP).await.unwrap());
    assert_eq!(dump.version, 5);
    assert_eq!(dump.changes, all_changes(store, APP).await, "the whole log");
    assert_eq!(
        dump.cursors,
        vec![("other".to_owned(), 0), ("webhook".to_owned(), 3)]
    );
    let profiles = store.get_profiles(APP, &ids(&["a", "b"])).await.unwrap();
    assert_eq!(
        dump.accounts
            .iter()
            .map(|a| (a.user.as_str(), Some(a.profile.clone())))
            .collect::<Vec<_>>(),
        vec![("a", profiles[0].clone()), ("b", profiles[1].clone())],
        "accounts by UserID, as get_profiles sees them"
    );
    assert_eq!(
        dump.kicks,
        vec![
            ("b".to_owned(), 1_700_000_000),
            ("c".to_owned(), 1_600_000_000)
        ],
        "every kick by UserID, the deleted account's included"
    );
    let never = store.dump_app(NEVER).await.unwrap();
    assert!(never.is_empty(), "an app never written: {never:?}");

    // Read the target first, so that a cache in front of the store holds "absent" for it.
    assert_eq!(
        store.accounts_exist(COPY, &ids(&["a", "b"])).await.unwrap(),
        vec![false, false]
    );
    let copy = AppDump {
        app: COPY,
        ..dump.clone()
    };
    store.restore_app(copy.clone()).await.expect("restore_app");
    assert_eq!(
        store.dump_app(COPY).await.unwrap(),
        copy,
        "restored exactly"
    );
    assert_eq!(
        store
            .get_profiles(COPY, &ids(&["a", "b", "c"]))
            .await
            .unwrap(),
        store
            .get_profiles(APP, &ids(&["a", "b", "c"]))
            .await
            .unwrap(),
        "the ordinary reads agree (no stale cache)"
    );
    assert_eq!(
        store
            .accounts_exist(COPY, &ids(&["a", "b", "c"]))
            .await
            .unwrap(),
        vec![true, true, false]
    );
    assert_eq!(
        store.kicks(COPY).await.unwrap(),
        store.kicks(APP).await.unwrap()
    );
    assert_eq!(store.cursor(COPY, "webhook").await.unwrap(), Some(3));
    assert_eq!(store.current_version(COPY).await.unwrap(), 5);
    assert_eq!(
        all_changes(store, COPY).await,
        all_changes(store, APP).await
    );
    let apps = store.apps().await.unwrap();
    assert!(
        apps.contains(&APP) && apps.contains(&COPY) && !apps.contains(&NEVER),
        "{apps:?}"
    );
    assert!(
        apps.windows(2).all(|w| w[0] < w[1]),
        "apps() is ascending as u64, without duplicates: {apps:?}"
    );
    assert_eq!(
        store
            .set_profile(COPY, &id("b"), &[(custom("Next"), text("x"))], ADMIN.into())
            .await
            .unwrap(),
        6,
        "writes continue after the restored version"
    );

    let before = store.dump_app(COPY).await.unwrap();
    let err = store
        .restore_app(copy.clone())
        .await
        .expect_err("restoring into an app that holds data");
    assert!(matches!(err, StoreError::Conflict { .. }), "{err:?}");
    assert_eq!(
        store.dump_app(COPY).await.unwrap(),
        before,
        "nothing written"
    );

    // Inconsistent dumps are refused before anything is written.
    let broken = [
        AppDump {
            app: NEVER,
            version: 2,
            ..dump.clone()
        },
        AppDump {
            app: NEVER,
            changes: dump.changes.iter().rev().cloned().collect(),
            ..dump.clone()
        },
        AppDump {
            app: NEVER,
            accounts: vec![dump.accounts[0].clone(), dump.accounts[0].clone()],
            ..dump.clone()
        },
    ];
    for bad in broken {
        let err = store
            .restore_app(bad)
            .await
            .expect_err("an inconsistent dump");
        assert!(matches!(err, StoreError::Corrupt(_)), "{err:?}");
    }
    assert!(store.dump_app(NEVER).await.unwrap().is_empty());

    // An app that has only a cursor is listed and moves too.
    let cursor_only = AppDump {
        app: NEVER,
        cursors: vec![("webhook".to_owned(), 0)],
        ..AppDump::default()
    };
    store.restore_app(cursor_only.clone()).await.unwrap();
    assert_eq!(store.dump_app(NEVER).await.unwrap(), cursor_only);
    assert!(store.apps().await.unwrap().contains(&NEVER));
}
