//! Conformance checks of the account lifecycle: import (new, re-import, duplicates), existence
//! and delete, each with the change rows it must write.

use portrait_core::schema::StandardTag;

use crate::{AppId, ChangeKind, Store};

use super::{
    all_changes, custom, fields, fields_of, id, ids, item, new, now_ms, std_tag, summary, text,
    ADMIN, GENDER, IMAGE, NICK,
};

pub(super) async fn importing_new_accounts_creates_them_with_one_change_each(store: &dyn Store) {
    const APP: AppId = 1_400_000_001;
    let before = now_ms();
    store
        .import_accounts(
            APP,
            &[
                new("alice", Some("Alice"), Some("https://x.test/a.png")),
                new("bob", None, None),
            ],
            ADMIN.into(),
        )
        .await
        .expect("import");

    assert_eq!(
        store.current_version(APP).await.unwrap(),
        2,
        "one version per created account"
    );
    let changes = all_changes(store, APP).await;
    assert_eq!(
        summary(&changes),
        vec![
            (
                1,
                "alice",
                ChangeKind::Import,
                vec![
                    item(NICK, text("Alice")),
                    item(IMAGE, text("https://x.test/a.png"))
                ]
            ),
            (2, "bob", ChangeKind::Import, vec![]),
        ],
    );
    for c in &changes {
        assert_eq!(c.operator, ADMIN, "the operator is recorded");
        assert!(
            c.at_ms >= before - 1000 && c.at_ms <= now_ms() + 1000,
            "change time is Unix ms: {}",
            c.at_ms
        );
    }

    let got = store
        .get_profiles(APP, &ids(&["alice", "bob"]))
        .await
        .unwrap();
    let alice = got[0].as_ref().expect("alice exists");
    assert_eq!(
        alice.fields,
        fields(&[(NICK, text("Alice")), (IMAGE, text("https://x.test/a.png"))])
    );
    assert_eq!(alice.version, 1);
    assert!(alice.updated_at_ms >= before - 1000);
    let bob = got[1].as_ref().expect("bob exists");
    assert!(
        bob.fields.is_empty(),
        "an account imported without nick or face has no fields: {:?}",
        bob.fields
    );
    assert_eq!(bob.version, 2);

    store
        .import_accounts(APP, &[], ADMIN.into())
        .await
        .expect("an empty import is a no-op");
    assert_eq!(store.current_version(APP).await.unwrap(), 2);
}

pub(super) async fn reimporting_without_nick_or_face_writes_nothing(store: &dyn Store) {
    const APP: AppId = 1_400_000_002;
    store
        .import_accounts(APP, &[new("carol", Some("Carol"), None)], ADMIN.into())
        .await
        .unwrap();
    let v = store
        .set_profile(
            APP,
            &id("carol"),
            &[(std_tag(StandardTag::Gender), text("Gender_Type_Female"))],
            ADMIN.into(),
        )
        .await
        .unwrap();
    assert_eq!(v, 2);
    let before = store.get_profiles(APP, &[id("carol")]).await.unwrap();

    store
        .import_accounts(APP, &[new("carol", None, None)], "someone-else".into())
        .await
        .expect("re-import");
    assert_eq!(
        store.current_version(APP).await.unwrap(),
        2,
        "no version is taken"
    );
    assert_eq!(
        all_changes(store, APP).await.len(),
        2,
        "no change is recorded"
    );
    assert_eq!(
        store.get_profiles(APP, &[id("carol")]).await.unwrap(),
        before,
        "the profile is untouched"
    );
}

pub(super) async fn reimporting_with_nick_or_face_writes_only_those(store: &dyn Store) {
    const APP: AppId = 1_400_000_003;
    store
        .import_accounts(
            APP,
            &[new("dave", Some("Dave"), Some("https://x.test/d.png"))],
            ADMIN.into(),
        )
        .await
        .unwrap();
    store
        .set_profile(
            APP,
            &id("dave"),
            &[(std_tag(StandardTag::Gender), text("Gender_Type_Male"))],
            ADMIN.into(),
        )
        .await
        .unwrap();

    store
        .import_accounts(APP, &[new("dave", Some("David"), None)], "op2".into())
        .await
        .unwrap();
    assert_eq!(
        fields_of(store, APP, "dave").await,
        fields(&[
            (NICK, text("David")),
            (IMAGE, text("https://x.test/d.png")),
            (GENDER, text("Gender_Type_Male"))
        ]),
        "only the nick changes; other fields stay",
    );
    store
        .import_accounts(
            APP,
            &[new("dave", None, Some("https://x.test/d2.png"))],
            "op3".into(),
        )
        .await
        .unwrap();
    assert_eq!(
        fields_of(store, APP, "dave").await[IMAGE],
        text("https://x.test/d2.png")
    );

    let changes = all_changes(store, APP).await;
    assert_eq!(
        summary(&changes[2..]),
        vec![
            (
                3,
                "dave",
                ChangeKind::Import,
                vec![item(NICK, text("David"))]
            ),
            (
                4,
                "dave",
                ChangeKind::Import,
                vec![item(IMAGE, text("https://x.test/d2.png"))]
            ),
        ],
    );
    assert_eq!(
        (changes[2].operator.as_str(), changes[3].operator.as_str()),
        ("op2", "op3")
    );
    let profile = store
        .get_profiles(APP, &[id("dave")])
        .await
        .unwrap()
        .pop()
        .flatten()
        .unwrap();
    assert_eq!(
        profile.version, 4,
        "the account's version is that of its last change"
    );
}

pub(super) async fn an_account_listed_twice_in_one_import_gets_one_change(store: &dyn Store) {
    const APP: AppId = 1_400_000_004;
    store
        .import_accounts(APP, &[new("old", None, None)], ADMIN.into())
        .await
        .unwrap();
    store
        .import_accounts(
            APP,
            &[
                new("erin", None, None),
                new("old", None, None),
                new("erin", Some("Erin"), None),
                new("old", Some("Old"), None),
                new("old", Some("Older"), None),
            ],
            ADMIN.into(),
        )
        .await
        .unwrap();
    assert_eq!(
        summary(&all_changes(store, APP).await[1..]),
        vec![
            (
                2,
                "erin",
                ChangeKind::Import,
                vec![item(NICK, text("Erin"))]
            ),
            (
                3,
                "old",
                ChangeKind::Import,
                vec![item(NICK, text("Old")), item(NICK, text("Older"))]
            ),
        ],
        "one change per distinct account, items of every occurrence in order",
    );
    assert_eq!(
        fields_of(store, APP, "old").await[NICK],
        text("Older"),
        "the later occurrence wins"
    );
    assert_eq!(fields_of(store, APP, "erin").await[NICK], text("Erin"));
}

pub(super) async fn accounts_exist_answers_per_requested_user(store: &dyn Store) {
    const APP: AppId = 1_400_000_005;
    store
        .import_accounts(
            APP,
            &[new("a", None, None), new("b", None, None)],
            ADMIN.into(),
        )
        .await
        .unwrap();
    assert_eq!(
        store
            .accounts_exist(APP, &ids(&["b", "zz", "a", "b", "A"]))
            .await
            .unwrap(),
        vec![true, false, true, true, false],
        "request order, duplicates answered each time, ids are case-sensitive",
    );
    assert_eq!(
        store.accounts_exist(APP, &[]).await.unwrap(),
        Vec::<bool>::new()
    );
    assert_eq!(
        store
            .accounts_exist(APP + 1000, &ids(&["a"]))
            .await
            .unwrap(),
        vec![false],
        "other app"
    );
}

pub(super) async fn delete_removes_profiles_and_records_one_change_per_account(store: &dyn Store) {
    const APP: AppId = 1_400_000_013;
    store
        .import_accounts(
            APP,
            &[
                new("a", Some("A"), None),
                new("b", Some("B"), None),
                new("c", Some("C"), None),
            ],
            ADMIN.into(),
        )
        .await
        .unwrap();
    store
        .set_profile(APP, &id("a"), &[(custom("Hobby"), text("x"))], ADMIN.into())
        .await
        .unwrap();

    let existed = store
        .delete_accounts(APP, &ids(&["a", "nobody", "a", "c"]), "deleter".into())
        .await
        .unwrap();
    assert_eq!(
        existed,
        vec![true, false, true, true],
        "per requested user: did it exist before the call"
    );
    let changes = all_changes(store, APP).await;
    assert_eq!(
        summary(&changes[4..]),
        vec![
            (5, "a", ChangeKind::Delete, vec![]),
            (6, "c", ChangeKind::Delete, vec![])
        ],
        "one Delete per deleted account, no items",
    );
    assert!(changes[4..].iter().all(|c| c.operator == "deleter"));
    assert_eq!(
        store
            .get_profiles(APP, &ids(&["a", "b", "c"]))
            .await
            .unwrap()
            .iter()
            .map(Option::is_some)
            .collect::<Vec<_>>(),
        vec![false, true, false]
    );
    assert_eq!(
        store
            .accounts_exist(APP, &ids(&["a", "b", "c"]))
            .await
            .unwrap(),
        vec![false, true, false]
    );

    assert_eq!(
        store
            .delete_accounts(APP, &ids(&["a"]), ADMIN.into())
            .await
            .unwrap(),
        vec![false],
        "deleting twice"
    );
    assert_eq!(
        store.delete_accounts(APP, &[], ADMIN.into()).await.unwrap(),
        Vec::<bool>::new()
    );
    assert_eq!(
        store.current_version(APP).await.unwrap(),
        6,
        "deleting nothing takes no version"
    );

    store
        .import_accounts(APP, &[new("a", None, None)], ADMIN.into())
        .await
        .unwrap();
    let again = store
        .get_profiles(APP, &[id("a")])
        .await
        .unwrap()
        .pop()
        .flatten()
        .expect("re-created");
    assert!(
        again.fields.is_empty(),
        "a deleted account's data is gone: {:?}",
        again.fields
    );
    assert_eq!(again.version, 7);
}
