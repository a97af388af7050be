//! Conformance checks of profile writes and reads: `set_profile`, `get_profiles`, and values that
//! must round-trip unchanged (Unicode, long strings, integers up to `u64::MAX`).

use portrait_core::schema::StandardTag;
use portrait_core::{Identifier, ProfileValue, Tag};

use crate::{AppId, ChangeKind, NewAccount, Store, StoreError};

use super::{
    all_changes, custom, fields, fields_of, id, ids, item, new, std_tag, text, ADMIN, GENDER,
    IMAGE, NICK,
};

pub(super) async fn set_profile_writes_all_items_and_later_items_win(store: &dyn Store) {
    const APP: AppId = 1_400_000_006;
    store
        .import_accounts(
            APP,
            &[new("frank", Some("Frank"), Some("https://x.test/f.png"))],
            ADMIN.into(),
        )
        .await
        .unwrap();
    let items = vec![
        (std_tag(StandardTag::Nick), text("n1")),
        (std_tag(StandardTag::Gender), text("Gender_Type_Male")),
        (custom("Hobby"), text("chess")),
        (std_tag(StandardTag::Nick), text("n2")),
        (std_tag(StandardTag::Level), ProfileValue::Int(7)),
    ];
    let v = store
        .set_profile(APP, &id("frank"), &items, "frank".into())
        .await
        .expect("set_profile");
    assert_eq!(v, 2, "set_profile returns the new version");
    assert_eq!(store.current_version(APP).await.unwrap(), 2);

    let profile = store
        .get_profiles(APP, &[id("frank")])
        .await
        .unwrap()
        .pop()
        .flatten()
        .unwrap();
    assert_eq!(
        profile.fields,
        fields(&[
            (NICK, text("n2")),
            (IMAGE, text("https://x.test/f.png")),
            (GENDER, text("Gender_Type_Male")),
            ("Tag_Profile_Custom_Hobby", text("chess")),
            ("Tag_Profile_IM_Level", ProfileValue::Int(7)),
        ]),
    );
    assert_eq!(profile.version, 2);

    let changes = all_changes(store, APP).await;
    let set = changes.last().unwrap();
    assert_eq!(
        (
            set.version,
            set.user.as_str(),
            set.operator.as_str(),
            set.kind
        ),
        (2, "frank", "frank", ChangeKind::Set)
    );
    let expected: Vec<(String, ProfileValue)> = items
        .iter()
        .map(|(t, v)| (t.name().to_owned(), v.clone()))
        .collect();
    assert_eq!(
        set.items, expected,
        "change items are the items as given, in order"
    );

    let v = store
        .set_profile(
            APP,
            &id("frank"),
            &[(custom("Hobby"), text("go"))],
            ADMIN.into(),
        )
        .await
        .unwrap();
    assert_eq!(v, 3);
    assert_eq!(
        fields_of(store, APP, "frank").await["Tag_Profile_Custom_Hobby"],
        text("go")
    );
    assert_eq!(
        fields_of(store, APP, "frank").await[NICK],
        text("n2"),
        "untouched fields stay"
    );
}

pub(super) async fn set_profile_on_missing_account_writes_nothing(store: &dyn Store) {
    const APP: AppId = 1_400_000_007;
    store
        .import_accounts(APP, &[new("gina", None, None)], ADMIN.into())
        .await
        .unwrap();
    let err = store
        .set_profile(
            APP,
            &id("ghost"),
            &[(std_tag(StandardTag::Nick), text("Boo"))],
            ADMIN.into(),
        )
        .await
        .expect_err("set_profile on a missing account fails");
    assert!(
        matches!(err, StoreError::NotFound),
        "expected NotFound, got {err:?}"
    );
    assert_eq!(
        store.current_version(APP).await.unwrap(),
        1,
        "no version is taken"
    );
    assert_eq!(
        all_changes(store, APP).await.len(),
        1,
        "no change is recorded"
    );
    assert_eq!(
        store.accounts_exist(APP, &[id("ghost")]).await.unwrap(),
        vec![false],
        "the account is not created"
    );

    let err = store
        .set_profile(
            APP + 1000,
            &id("gina"),
            &[(std_tag(StandardTag::Nick), text("x"))],
            ADMIN.into(),
        )
        .await;
    assert!(
        matches!(err, Err(StoreError::NotFound)),
        "an account of another app is missing too: {err:?}"
    );
}

pub(super) async fn get_profiles_answers_in_request_order_with_none_and_duplicates(
    store: &dyn Store,
) {
    const APP: AppId = 1_400_000_008;
    store
        .import_accounts(
            APP,
            &[new("a", Some("A"), None), new("b", Some("B"), None)],
            ADMIN.into(),
        )
        .await
        .unwrap();
    let got = store
        .get_profiles(APP, &ids(&["b", "missing", "a", "b"]))
        .await
        .unwrap();
    let nicks: Vec<Option<&ProfileValue>> = got
        .iter()
        .map(|p| p.as_ref().map(|p| &p.fields[NICK]))
        .collect();
    assert_eq!(
        nicks,
        vec![Some(&text("B")), None, Some(&text("A")), Some(&text("B"))]
    );
    assert_eq!(got[0], got[3], "a duplicate gets the same answer");
    assert!(store.get_profiles(APP, &[]).await.unwrap().is_empty());
}

pub(super) async fn get_profiles_answers_large_batches(store: &dyn Store) {
    const APP: AppId = 1_400_000_009;
    let accounts: Vec<NewAccount> = (0..700)
        .map(|i| new(&format!("user{i:04}"), Some(&format!("nick {i}")), None))
        .collect();
    store
        .import_accounts(APP, &accounts, ADMIN.into())
        .await
        .expect("import 700 accounts in one call");
    assert_eq!(store.current_version(APP).await.unwrap(), 700);

    // 150 ids (the vendor's batch size is 100) and 900 ids, reversed, with missing ones mixed in.
    for n in [150usize, 900] {
        let wanted: Vec<Identifier> = (0..n).rev().map(|i| id(&format!("user{i:04}"))).collect();
        let got = store.get_profiles(APP, &wanted).await.unwrap();
        assert_eq!(got.len(), n);
        for (user, profile) in wanted.iter().zip(&got) {
            let i: usize = user.as_str()[4..].parse().unwrap();
            match profile {
                Some(p) => {
                    assert!(i < 700, "{user} should be missing");
                    assert_eq!(p.fields[NICK], text(&format!("nick {i}")), "{user}");
                    assert_eq!(p.version, i as u64 + 1);
                }
                None => assert!(i >= 700, "{user} should exist"),
            }
        }
        let exist = store.accounts_exist(APP, &wanted).await.unwrap();
        assert_eq!(exist, got.iter().map(Option::is_some).collect::<Vec<_>>());
    }
}

pub(super) async fn unicode_and_long_strings_round_trip(store: &dyn Store) {
    const APP: AppId = 1_400_000_018;
    let long = format!("{}ab", "深".repeat(166)); // 166 × 3 + 2 = 500 bytes
    assert_eq!(long.len(), 500);
    let tricky_user = r#"a 'quoted' "user" %_\"#;
    let values = [
        ("Tag_Profile_IM_Nick", text("张三 🙂 Ünïcödé")),
        ("Tag_Profile_IM_SelfSignature", text(&long)),
        ("Tag_Profile_IM_Location", text("")),
        (
            "Tag_Profile_Custom_Json",
            text(r#"{"a":[1,"\u0000"]} \n ' " \\"#),
        ),
        ("Tag_Profile_Custom_Numeric", text("123")),
        ("Tag_Profile_Custom_Ctrl", text("nul:\0 tab:\t newline:\n")),
    ];
    store
        .import_accounts(APP, &[new(tricky_user, Some("名字"), None)], ADMIN.into())
        .await
        .unwrap();
    let items: Vec<(Tag, ProfileValue)> = values
        .iter()
        .map(|(t, v)| {
            let tag = StandardTag::from_name(t)
                .map_or_else(|| Tag::Custom((*t).to_owned()), Tag::Standard);
            (tag, v.clone())
        })
        .collect();
    store
        .set_profile(APP, &id(tricky_user), &items, "操作员".into())
        .await
        .unwrap();

    let got = fields_of(store, APP, tricky_user).await;
    assert_eq!(
        got,
        fields(&values),
        "strings come back byte for byte; \"123\" stays a string"
    );
    let c = all_changes(store, APP).await.pop().unwrap();
    assert_eq!(c.user, tricky_user);
    assert_eq!(c.operator, "操作员");
    assert_eq!(
        c.items,
        values
            .iter()
            .map(|(t, v)| item(t, v.clone()))
            .collect::<Vec<_>>()
    );
    assert_eq!(
        all_changes(store, APP).await[0].items,
        vec![item(NICK, text("名字"))]
    );
}

pub(super) async fn integers_up_to_u64_max_round_trip(store: &dyn Store) {
    const APP: AppId = u64::MAX; // the whole AppId range is usable
    const OTHER: AppId = u64::MAX - 1;
    store
        .import_accounts(APP, &[new("big", None, None)], ADMIN.into())
        .await
        .unwrap();
    store
        .import_accounts(OTHER, &[new("big", None, None)], ADMIN.into())
        .await
        .unwrap();
    let items = [
        (custom("Max"), ProfileValue::Int(u64::MAX)),
        (custom("Zero"), ProfileValue::Int(0)),
        (
            std_tag(StandardTag::Level),
            ProfileValue::Int(u64::from(u32::MAX)),
        ),
        (custom("Above"), ProfileValue::Int(1 << 63)),
    ];
    store
        .set_profile(APP, &id("big"), &items, ADMIN.into())
        .await
        .unwrap();
    let got = fields_of(store, APP, "big").await;
    for (tag, value) in &items {
        assert_eq!(&got[tag.name()], value, "{tag}");
    }
    let c = all_changes(store, APP).await.pop().unwrap();
    assert_eq!(
        c.items,
        items
            .iter()
            .map(|(t, v)| (t.name().to_owned(), v.clone()))
            .collect::<Vec<_>>()
    );
    assert!(
        fields_of(store, OTHER, "big").await.is_empty(),
        "neighbouring app ids stay apart"
    );
    assert_eq!(store.current_version(APP).await.unwrap(), 2);
    assert_eq!(store.current_version(OTHER).await.unwrap(), 1);
}
