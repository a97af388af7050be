//! The Portrait extension `v4/profile/portrait_import` over HTTP: bulk creation and update of
//! accounts with any fields, per-account validation, request-level limits, the change log.

use portrait_store::ChangeKind;
use serde_json::{json, Value};

use crate::helpers::*;

fn account(user: &str, items: &[(&str, Value)]) -> Value {
    json!({
        "UserID": user,
        "ProfileItem": items.iter().map(|(t, v)| json!({"Tag": t, "Value": v})).collect::<Vec<_>>(),
    })
}

fn codes(r: &Value) -> Vec<(String, i64)> {
    r["ResultItem"]
        .as_array()
        .expect("ResultItem")
        .iter()
        .map(|i| {
            (
                i["UserID"].as_str().unwrap().to_owned(),
                i["ResultCode"].as_i64().unwrap(),
            )
        })
        .collect()
}

#[tokio::test]
async fn imports_new_accounts_with_standard_and_custom_fields() {
    let app = spawn_app().await;
    let five = |n: u64| {
        [
            (NICK, json!(format!("user {n}"))),
            (IMAGE, json!(format!("https://x.test/{n}.png"))),
            (GENDER, json!("Gender_Type_Female")),
            (LEVEL, json!(n)),
            (HOBBY, json!("chess")),
        ]
    };
    let body = json!({"AccountList": (1..=3).map(|n| account(&format!("u{n}"), &five(n))).collect::<Vec<_>>()});
    let r = app.call(PORTRAIT_IMPORT, &body).await;
    assert_eq!(
        codes(r.expect_ok()),
        [("u1".into(), 0), ("u2".into(), 0), ("u3".into(), 0)]
    );
    assert_eq!(app.statuses(&["u1", "u2", "u3"]).await, ["Imported"; 3]);
    let got = app
        .profile("u2", &[NICK, IMAGE, GENDER, LEVEL, HOBBY])
        .await;
    assert_eq!(got[NICK], json!("user 2"));
    assert_eq!(got[IMAGE], json!("https://x.test/2.png"));
    assert_eq!(got[GENDER], json!("Gender_Type_Female"));
    assert_eq!(got[LEVEL], json!(2));
    assert_eq!(got[HOBBY], json!("chess"));
}

#[tokio::test]
async fn an_existing_account_keeps_the_fields_the_import_does_not_name() {
    let app = spawn_app().await;
    app.import(&["alice"]).await;
    app.set("alice", &[(NICK, json!("Alice")), (LEVEL, json!(7))])
        .await
        .expect_ok();
    let r = app
        .call(
            PORTRAIT_IMPORT,
            &json!({"AccountList": [account("alice", &[(NICK, json!("Alicia")), (HOBBY, json!("go"))])]}),
        )
        .await;
    r.expect_ok();
    let got = app.profile("alice", &[NICK, LEVEL, HOBBY]).await;
    assert_eq!(got[NICK], json!("Alicia"));
    assert_eq!(got[LEVEL], json!(7));
    assert_eq!(got[HOBBY], json!("go"));
    // No items: the account is left as it is, and no change is logged for it.
    let before = app.store.current_version(APP).await.unwrap();
    app.call(
        PORTRAIT_IMPORT,
        &json!({"AccountList": [{"UserID": "alice"}]}),
    )
    .await
    .expect_ok();
    assert_eq!(app.store.current_version(APP).await.unwrap(), before);
    assert_eq!(app.value("alice", NICK).await, Some(json!("Alicia")));
}

#[tokio::test]
async fn invalid_accounts_get_their_own_code_and_the_valid_ones_are_imported() {
    let app = spawn_app().await;
    let long = "x".repeat(21); // Hobby allows 20 bytes
    let body = json!({"AccountList": [
        account("ok1", &[(NICK, json!("fine"))]),
        account("", &[(NICK, json!("no id"))]),
        {"ProfileItem": [{"Tag": NICK, "Value": "missing id"}]},
        account("bad_tag", &[(NICK, json!("n")), ("Tag_Profile_IM_Nope", json!("x"))]),
        account("bad_enum", &[(GENDER, json!("Gender_Type_Robot"))]),
        account("too_long", &[(HOBBY, json!(long))]),
        account("rude", &[(NICK, json!("a badword here"))]),
        account("wrong_type", &[(LEVEL, json!("high"))]),
        account("ok2", &[]),
    ]});
    let r = app.call(PORTRAIT_IMPORT, &body).await;
    assert_eq!(
        codes(r.expect_ok()),
        [
            ("ok1".into(), 0),
            ("".into(), 40001),
            ("".into(), 40001),
            ("bad_tag".into(), 40009),
            ("bad_enum".into(), 40605),
            ("too_long".into(), 40601),
            ("rude".into(), 40005),
            ("wrong_type".into(), 40610),
            ("ok2".into(), 0),
        ]
    );
    for item in r["ResultItem"].as_array().unwrap() {
        let code = item["ResultCode"].as_i64().unwrap();
        assert_eq!(
            item["ResultInfo"].as_str().unwrap().is_empty(),
            code == 0,
            "{item}"
        );
    }
    assert_eq!(
        app.statuses(&[
            "ok1",
            "bad_tag",
            "bad_enum",
            "too_long",
            "rude",
            "wrong_type",
            "ok2"
        ])
        .await,
        [
            "Imported",
            "NotImported",
            "NotImported",
            "NotImported",
            "NotImported",
            "NotImported",
            "Imported"
        ]
    );
    assert_eq!(app.value("ok1", NICK).await, Some(json!("fine")));
}

#[tokio::test]
async fn request_level_errors_import_nothing() {
    let app = spawn_app().await;
    let start = app.store.current_version(APP).await.unwrap();
    let many: Vec<Value> = (0..1001).map(|n| account(&format!("m{n}"), &[])).collect();
    for (body, code) in [
        (json!({}), 40001),
        (json!({"AccountList": []}), 40001),
        (json!({"AccountList": many}), 40001),
        (json!({"AccountList": "u1"}), 40001),
    ] {
        assert_eq!(
            app.call(PORTRAIT_IMPORT, &body).await["ErrorCode"],
            code,
            "{body}"
        );
    }
    assert_eq!(app.statuses(&["m0", "m1000"]).await, ["NotImported"; 2]);
    assert_eq!(app.store.current_version(APP).await.unwrap(), start);
    // 1000 is allowed.
    let max: Vec<Value> = (0..1000)
        .map(|n| account(&format!("m{n}"), &[(LEVEL, json!(n))]))
        .collect();
    let r = app
        .call(PORTRAIT_IMPORT, &json!({"AccountList": max}))
        .await;
    assert_eq!(codes(r.expect_ok()).len(), 1000);
    assert_eq!(app.value("m999", LEVEL).await, Some(json!(999)));
}

#[tokio::test]
async fn only_admins_may_import_and_users_cannot_call_it() {
    let app = spawn_app().await;
    app.import(&["alice"]).await;
    let body = json!({"AccountList": [account("mallory", &[(NICK, json!("x"))])]});
    let url = app.raw_url(
        PORTRAIT_IMPORT,
        &query(APP, "alice", &sig(APP, KEY, "alice")),
    );
    assert_eq!(app.post_json(&url, &body).await["ErrorCode"], json!(40004));
    assert_eq!(app.statuses(&["mallory"]).await, ["NotImported"]);
}

#[tokio::test]
async fn each_imported_account_gets_one_import_change_with_its_items() {
    let app = spawn_app().await;
    // The app's admins are imported when the server starts.
    let start = app.store.current_version(APP).await.unwrap();
    let body = json!({"AccountList": [
        account("a", &[(NICK, json!("A")), (LEVEL, json!(1))]),
        account("b", &[]),
        account("a", &[(HOBBY, json!("h"))]),
    ]});
    app.call(PORTRAIT_IMPORT, &body).await.expect_ok();
    let changes = app.store.changes_since(APP, start, 100).await.unwrap();
    let got: Vec<(&str, ChangeKind, Vec<&str>)> = changes
        .iter()
        .map(|c| {
            (
                c.user.as_str(),
                c.kind,
                c.items.iter().map(|(t, _)| t.as_str()).collect(),
            )
        })
        .collect();
    assert_eq!(
        got,
        [
            ("a", ChangeKind::Import, vec![NICK, LEVEL, HOBBY]),
            ("b", ChangeKind::Import, vec![]),
        ]
    );
    assert_eq!(changes[0].version + 1, changes[1].version);
}
