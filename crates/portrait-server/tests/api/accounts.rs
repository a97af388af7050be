//! The account APIs (`v4/im_open_login_svc/*`) over HTTP: import (single and batch, both forms),
//! delete, check, kick (UserSig revocation), their error codes, and app isolation.

use portrait_core::usersig::mint;
use serde_json::{json, Value};

use crate::helpers::*;

fn delete_body(users: &[&str]) -> Value {
    json!({"DeleteItem": users.iter().map(|u| json!({"UserID": u})).collect::<Vec<_>>()})
}

// ---- account_import ------------------------------------------------------------------------------

#[tokio::test]
async fn account_import_creates_an_account_that_account_check_reports_imported() {
    let app = spawn_app().await;
    assert_eq!(app.statuses(&["alice"]).await, ["NotImported"]);
    let r = app.admin.account_import("alice", None, None).await.unwrap();
    r.expect_ok();
    assert!(
        r.0.get("ErrorDisplay").is_none(),
        "account APIs carry no ErrorDisplay: {:?}",
        r.0
    );
    assert_eq!(app.statuses(&["alice"]).await, ["Imported"]);
    app.set("alice", &[(NICK, json!("now settable"))])
        .await
        .expect_ok();
}

#[tokio::test]
async fn account_import_writes_nick_and_face_url_into_the_standard_fields() {
    let app = spawn_app().await;
    app.admin
        .account_import("alice", Some("Alice 🙂"), Some("https://x.test/a.png"))
        .await
        .unwrap()
        .expect_ok();
    let got = app.profile("alice", &[NICK, IMAGE, GENDER]).await;
    assert_eq!(got[NICK], json!("Alice 🙂"));
    assert_eq!(got[IMAGE], json!("https://x.test/a.png"));
    assert_eq!(got[GENDER], json!("Gender_Type_Unknown"));
}

#[tokio::test]
async fn account_import_again_updates_nick_and_face_url_and_keeps_other_fields() {
    let app = spawn_app().await;
    app.admin
        .account_import("alice", Some("Old"), Some("https://x.test/old.png"))
        .await
        .unwrap()
        .expect_ok();
    app.set("alice", &[(LEVEL, json!(3))]).await.expect_ok();
    app.admin
        .account_import("alice", Some("New"), Some("https://x.test/new.png"))
        .await
        .unwrap()
        .expect_ok();
    let got = app.profile("alice", &[NICK, IMAGE, LEVEL]).await;
    assert_eq!(
        (&got[NICK], &got[IMAGE], &got[LEVEL]),
        (&json!("New"), &json!("https://x.test/new.png"), &json!(3))
    );
    // Re-importing with only a Nick changes only the Nick; with neither, nothing.
    app.admin
        .account_import("alice", Some("Newer"), None)
        .await
        .unwrap()
        .expect_ok();
    app.admin
        .account_import("alice", None, None)
        .await
        .unwrap()
        .expect_ok();
    let got = app.profile("alice", &[NICK, IMAGE]).await;
    assert_eq!(
        (&got[NICK], &got[IMAGE]),
        (&json!("Newer"), &json!("https://x.test/new.png"))
    );
}

#[tokio::test]
async fn account_import_rejects_a_sensitive_nick_with_40005_and_creates_nothing() {
    let app = spawn_app().await;
    app.admin
        .account_import("alice", Some("I am BadWord"), None)
        .await
        .unwrap()
        .expect_code(40005);
    app.admin
        .account_import("bob", None, Some("https://x.test/违禁.png"))
        .await
        .unwrap()
        .expect_code(40005);
    assert_eq!(
        app.statuses(&["alice", "bob"]).await,
        ["NotImported", "NotImported"]
    );
    // An existing account keeps its Nick.
    app.admin
        .account_import("carol", Some("Carol"), None)
        .await
        .unwrap()
        .expect_ok();
    app.admin
        .account_import("carol", Some("badword"), None)
        .await
        .unwrap()
        .expect_code(40005);
    assert_eq!(app.value("carol", NICK).await, Some(json!("Carol")));
}

#[tokio::test]
async fn account_import_rejects_a_nick_over_500_bytes_with_40601() {
    let app = spawn_app().await;
    app.admin
        .account_import("alice", Some(&"n".repeat(501)), None)
        .await
        .unwrap()
        .expect_code(40601);
    app.admin
        .account_import("alice", None, Some(&"u".repeat(501)))
        .await
        .unwrap()
        .expect_code(40601);
    assert_eq!(app.statuses(&["alice"]).await, ["NotImported"]);
    app.admin
        .account_import("alice", Some(&"n".repeat(500)), None)
        .await
        .unwrap()
        .expect_ok();
}

#[tokio::test]
async fn account_import_rejects_a_bad_body_with_70402() {
    let app = spawn_app().await;
    let bodies = [
        json!({}),
        json!({"Nick": "no user"}),
        json!({"UserID": ""}),
        json!({"UserID": "x".repeat(33)}),
        json!({"UserID": "名字"}),
        json!({"UserID": "tab\there"}),
        json!({"UserID": 12345}),
        json!({"UserID": null}),
        json!({"UserID": "alice", "Nick": 5}),
        json!(["alice"]),
        json!("alice"),
    ];
    for body in bodies {
        let r = app.call(ACCOUNT_IMPORT, &body).await;
        assert_eq!(r["ErrorCode"], 70402, "body {body}: {r}");
        r.expect_code(70402);
    }
    // The longest valid UserID is 32 bytes of printable ASCII.
    let longest = "x".repeat(32);
    app.admin
        .account_import(&longest, None, None)
        .await
        .unwrap()
        .expect_ok();
    app.admin
        .account_import("with space & symbols!", None, None)
        .await
        .unwrap()
        .expect_ok();
    assert_eq!(
        app.statuses(&[&longest, "with space & symbols!"]).await,
        ["Imported", "Imported"]
    );
}

#[tokio::test]
async fn configured_admins_exist_as_accounts() {
    let app = spawn_app().await;
    assert_eq!(
        app.statuses(&[ADMIN, "admin2"]).await,
        ["Imported", "Imported"]
    );
    app.set(ADMIN, &[(NICK, json!("The Admin"))])
        .await
        .expect_ok();
}

// ---- multiaccount_import -------------------------------------------------------------------------

#[tokio::test]
async fn multiaccount_import_accepts_the_old_accounts_form() {
    let app = spawn_app().await;
    let r = app
        .admin
        .multiaccount_import(&["a1", "a2", "a3"])
        .await
        .unwrap();
    assert_eq!(r.expect_ok()["FailAccounts"], json!([]));
    assert_eq!(app.statuses(&["a1", "a2", "a3"]).await, ["Imported"; 3]);
}

#[tokio::test]
async fn multiaccount_import_accepts_the_new_account_list_form_with_nick_and_face_url() {
    let app = spawn_app().await;
    let r = app
        .call(
            MULTIACCOUNT_IMPORT,
            &json!({"AccountList": [
                {"UserID": "a1", "Nick": "One", "FaceUrl": "https://x.test/1.png"},
                {"UserID": "a2", "Nick": "Two"},
                {"UserID": "a3"},
            ]}),
        )
        .await;
    assert_eq!(r.expect_ok()["FailAccounts"], json!([]));
    let got = app
        .admin
        .portrait_get(&["a1", "a2", "a3"], &[NICK, IMAGE])
        .await
        .unwrap();
    let items: Vec<&Value> = got.expect_ok()["UserProfileItem"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| &u["ProfileItem"])
        .collect();
    assert_eq!(
        *items[0],
        json!([{"Tag": NICK, "Value": "One"}, {"Tag": IMAGE, "Value": "https://x.test/1.png"}])
    );
    assert_eq!(
        *items[1],
        json!([{"Tag": NICK, "Value": "Two"}, {"Tag": IMAGE, "Value": ""}])
    );
    assert_eq!(
        *items[2],
        json!([{"Tag": NICK, "Value": ""}, {"Tag": IMAGE, "Value": ""}])
    );
}

#[tokio::test]
async fn multiaccount_import_updates_existing_accounts() {
    let app = spawn_app().await;
    app.admin
        .account_import("a1", Some("Before"), None)
        .await
        .unwrap()
        .expect_ok();
    let r = app
        .call(
            MULTIACCOUNT_IMPORT,
            &json!({"AccountList": [{"UserID": "a1", "Nick": "After"}, {"UserID": "a2"}]}),
        )
        .await;
    assert_eq!(r.expect_ok()["FailAccounts"], json!([]));
    assert_eq!(app.value("a1", NICK).await, Some(json!("After")));
    // The old form re-imports without touching the Nick.
    app.admin
        .multiaccount_import(&["a1"])
        .await
        .unwrap()
        .expect_ok();
    assert_eq!(app.value("a1", NICK).await, Some(json!("After")));
}

#[tokio::test]
async fn multiaccount_import_reports_invalid_entries_in_fail_accounts_and_imports_the_rest() {
    let app = spawn_app().await;
    let too_long = "x".repeat(33);
    let r = app
        .admin
        .multiaccount_import(&["ok1", "", &too_long, "名字", "ok2"])
        .await
        .unwrap();
    assert_eq!(r.expect_ok()["FailAccounts"], json!(["", too_long, "名字"]));
    assert_eq!(
        app.statuses(&["ok1", "ok2"]).await,
        ["Imported", "Imported"]
    );

    let r = app
        .call(
            MULTIACCOUNT_IMPORT,
            &json!({"AccountList": [
                {"UserID": "ok3", "Nick": "fine"},
                {"UserID": "rude", "Nick": "badword"},
                {"UserID": "huge", "FaceUrl": "u".repeat(501)},
                {"Nick": "no id"},
                {"UserID": "ok4"},
            ]}),
        )
        .await;
    assert_eq!(r.expect_ok()["FailAccounts"], json!(["rude", "huge", ""]));
    assert_eq!(
        app.statuses(&["ok3", "rude", "huge", "ok4"]).await,
        ["Imported", "NotImported", "NotImported", "Imported"]
    );
    assert_eq!(app.value("ok3", NICK).await, Some(json!("fine")));
}

#[tokio::test]
async fn multiaccount_import_rejects_more_than_100_accounts_with_70402() {
    let app = spawn_app().await;
    let many: Vec<String> = (0..101).map(|i| format!("u{i}")).collect();
    let refs: Vec<&str> = many.iter().map(String::as_str).collect();
    app.admin
        .multiaccount_import(&refs)
        .await
        .unwrap()
        .expect_code(70402);
    let list: Vec<Value> = many.iter().map(|u| json!({"UserID": u})).collect();
    app.call(MULTIACCOUNT_IMPORT, &json!({"AccountList": list}))
        .await
        .expect_code(70402);
    assert_eq!(
        app.statuses(&["u0", "u100"]).await,
        ["NotImported", "NotImported"],
        "nothing is imported"
    );

    let r = app.admin.multiaccount_import(&refs[..100]).await.unwrap();
    assert_eq!(r.expect_ok()["FailAccounts"], json!([]));
    assert_eq!(
        app.statuses(&["u0", "u99", "u100"]).await,
        ["Imported", "Imported", "NotImported"]
    );
}

#[tokio::test]
async fn multiaccount_import_rejects_a_bad_body_with_70402() {
    let app = spawn_app().await;
    for body in [
        json!({}),
        json!({"Accounts": []}),
        json!({"AccountList": []}),
        json!({"Accounts": "alice"}),
        json!({"Accounts": [1, 2]}),
        json!({"AccountList": ["alice"]}),
        json!([]),
    ] {
        let r = app.call(MULTIACCOUNT_IMPORT, &body).await;
        assert_eq!(r["ErrorCode"], 70402, "body {body}: {r}");
        r.expect_code(70402);
    }
}

// ---- account_delete ------------------------------------------------------------------------------

#[tokio::test]
async fn account_delete_erases_the_account_and_its_profile_data() {
    let app = spawn_app().await;
    app.admin
        .account_import("alice", Some("Alice"), Some("https://x.test/a.png"))
        .await
        .unwrap()
        .expect_ok();
    app.set(
        "alice",
        &[
            (LEVEL, json!(9)),
            (HOBBY, json!("chess")),
            (GENDER, json!("Gender_Type_Male")),
        ],
    )
    .await
    .expect_ok();

    let r = app.admin.account_delete(&["alice"]).await.unwrap();
    assert_eq!(
        r.expect_ok()["ResultItem"],
        json!([{"UserID": "alice", "ResultCode": 0, "ResultInfo": ""}])
    );

    assert_eq!(app.statuses(&["alice"]).await, ["NotImported"]);
    app.set("alice", &[(NICK, json!("x"))])
        .await
        .expect_code(40003);
    let r = app.admin.portrait_get(&["alice"], &[NICK]).await.unwrap();
    let b = r.expect_ok();
    assert_eq!(b["Fail_Account"], json!(["alice"]));
    assert_eq!(b["UserProfileItem"][0]["ResultCode"], 40003);

    // Re-imported, the account starts from defaults.
    app.import(&["alice"]).await;
    let got = app
        .profile("alice", &[NICK, IMAGE, LEVEL, GENDER, HOBBY])
        .await;
    assert_eq!(
        serde_json::to_value(&got).unwrap(),
        json!({NICK: "", IMAGE: "", LEVEL: 0, GENDER: "Gender_Type_Unknown"})
    );
}

#[tokio::test]
async fn account_delete_reports_each_item_with_70107_for_unknown_accounts() {
    let app = spawn_app().await;
    app.import(&["alice", "bob"]).await;
    let r = app
        .admin
        .account_delete(&["alice", "ghost", "bob", ""])
        .await
        .unwrap();
    let items = r.expect_ok()["ResultItem"].as_array().unwrap().clone();
    let summary: Vec<(&str, u64)> = items
        .iter()
        .map(|i| {
            (
                i["UserID"].as_str().unwrap(),
                i["ResultCode"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        summary,
        [("alice", 0), ("ghost", 70107), ("bob", 0), ("", 70107)]
    );
    assert!(
        items[1]["ResultInfo"]
            .as_str()
            .unwrap()
            .contains("Account_Not_Exist"),
        "{}",
        items[1]
    );
    assert_eq!(
        app.statuses(&["alice", "bob"]).await,
        ["NotImported", "NotImported"]
    );
    // Deleting again: every item is unknown, the call itself still succeeds.
    let r = app.admin.account_delete(&["alice"]).await.unwrap();
    assert_eq!(r.expect_ok()["ResultItem"][0]["ResultCode"], 70107);
}

#[tokio::test]
async fn account_delete_rejects_a_bad_body_with_70402() {
    let app = spawn_app().await;
    app.import(&["alice"]).await;
    let many: Vec<String> = (0..101).map(|i| format!("u{i}")).collect();
    let refs: Vec<&str> = many.iter().map(String::as_str).collect();
    for body in [
        json!({}),
        json!({"DeleteItem": []}),
        json!({"DeleteItem": "alice"}),
        json!({"DeleteItem": ["alice"]}),
        delete_body(&refs),
    ] {
        let r = app.call(ACCOUNT_DELETE, &body).await;
        assert_eq!(r["ErrorCode"], 70402, "{r}");
        r.expect_code(70402);
    }
    assert_eq!(app.statuses(&["alice"]).await, ["Imported"]);
}

// ---- account_check -------------------------------------------------------------------------------

#[tokio::test]
async fn account_check_reports_imported_and_not_imported_in_request_order() {
    let app = spawn_app().await;
    app.import(&["alice", "bob"]).await;
    let too_long = "y".repeat(40);
    let r = app
        .admin
        .account_check(&["ghost", "bob", "", &too_long, "alice"])
        .await
        .unwrap();
    let items = r.expect_ok()["ResultItem"].as_array().unwrap().clone();
    let summary: Vec<(&str, &str, u64)> = items
        .iter()
        .map(|i| {
            (
                i["UserID"].as_str().unwrap(),
                i["AccountStatus"].as_str().unwrap(),
                i["ResultCode"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        summary,
        [
            ("ghost", "NotImported", 0),
            ("bob", "Imported", 0),
            ("", "NotImported", 0),
            (too_long.as_str(), "NotImported", 0),
            ("alice", "Imported", 0)
        ]
    );
}

#[tokio::test]
async fn account_check_rejects_a_bad_body_with_70402() {
    let app = spawn_app().await;
    let many: Vec<Value> = (0..101)
        .map(|i| json!({"UserID": format!("u{i}")}))
        .collect();
    for body in [
        json!({}),
        json!({"CheckItem": []}),
        json!({"CheckItem": {"UserID": "a"}}),
        json!({"CheckItem": many}),
    ] {
        let r = app.call(ACCOUNT_CHECK, &body).await;
        assert_eq!(r["ErrorCode"], 70402, "{r}");
        r.expect_code(70402);
    }
}

// ---- kick ----------------------------------------------------------------------------------------

#[tokio::test]
async fn kick_revokes_usersigs_minted_before_the_kick_and_accepts_newer_ones() {
    let app = spawn_app().await;
    app.import(&["alice"]).await;
    let check = json!({"CheckItem": [{"UserID": "alice"}]});
    let before = sig(APP, KEY, "admin2");
    let before_url = app.raw_url(ACCOUNT_CHECK, &query(APP, "admin2", &before));
    app.post_json(&before_url, &check).await.expect_ok();

    let kicked_at = now();
    app.admin.kick("admin2").await.unwrap().expect_ok();

    app.post_json(&before_url, &check).await.expect_code(70001);
    let old_set = app.raw_url(PORTRAIT_SET, &query(APP, "admin2", &before));
    app.post_json(
        &old_set,
        &json!({"From_Account": "alice", "ProfileItem": [{"Tag": NICK, "Value": "x"}]}),
    )
    .await
    .expect_code(70001);
    assert_eq!(app.value("alice", NICK).await, Some(json!("")));

    // Kick revokes sigs with TLS.time up to the kick second plus the allowed clock skew
    // (`usersig_clock_skew_secs`, 2 s); one dated after that works once it is no longer ahead
    // of the server's clock by more than the skew.
    let dated = kicked_at + 4;
    while now() + 2 < dated {
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let after = mint(APP, KEY, "admin2", dated, 3600);
    let after_url = app.raw_url(ACCOUNT_CHECK, &query(APP, "admin2", &after));
    assert_eq!(
        app.post_json(&after_url, &check).await.expect_ok()["ResultItem"][0]["AccountStatus"],
        "Imported"
    );

    // Other admins are not affected.
    app.admin
        .account_check(&["alice"])
        .await
        .unwrap()
        .expect_ok();
}

#[tokio::test]
async fn kick_of_an_ordinary_user_succeeds_and_leaves_the_account_and_admins_alone() {
    let app = spawn_app().await;
    app.admin
        .account_import("alice", Some("Alice"), None)
        .await
        .unwrap()
        .expect_ok();
    app.admin.kick("alice").await.unwrap().expect_ok();
    app.admin.kick("alice").await.unwrap().expect_ok();
    assert_eq!(app.statuses(&["alice"]).await, ["Imported"]);
    assert_eq!(app.value("alice", NICK).await, Some(json!("Alice")));
}

#[tokio::test]
async fn kick_of_an_unknown_user_fails_with_70107() {
    let app = spawn_app().await;
    let r = app.admin.kick("ghost").await.unwrap();
    r.expect_code(70107);
    assert!(
        r.info()
            .starts_with("Err_TLS_PT_Open_Login_Account_Not_Exist: "),
        "the vendor's name for 70107 (spec §2.2): {:?}",
        r.0
    );
    app.admin
        .kick(&"z".repeat(33))
        .await
        .unwrap()
        .expect_code(70107);
    app.other.kick("alice").await.unwrap().expect_code(70107);
}

#[tokio::test]
async fn kick_rejects_a_bad_body_with_70402() {
    let app = spawn_app().await;
    for body in [
        json!({}),
        json!({"UserID": null}),
        json!({"UserID": 5}),
        json!({"UserID": ["alice"]}),
        json!([]),
    ] {
        let r = app.call(KICK, &body).await;
        assert_eq!(r["ErrorCode"], 70402, "{body}: {r}");
        r.expect_code(70402);
    }
}

// ---- app isolation -------------------------------------------------------------------------------

#[tokio::test]
async fn a_user_imported_in_one_app_is_unknown_in_another() {
    let app = spawn_app().await;
    app.admin
        .account_import("alice", Some("Alice"), None)
        .await
        .unwrap()
        .expect_ok();

    let r = app.other.account_check(&["alice"]).await.unwrap();
    assert_eq!(
        r.expect_ok()["ResultItem"][0]["AccountStatus"],
        "NotImported"
    );
    let r = app.other.portrait_get(&["alice"], &[NICK]).await.unwrap();
    let b = r.expect_ok();
    assert_eq!(b["Fail_Account"], json!(["alice"]));
    assert_eq!(b["UserProfileItem"][0]["ResultCode"], 40003);
    app.other
        .portrait_set("alice", &[(NICK, json!("x"))])
        .await
        .unwrap()
        .expect_code(40003);
    app.other.kick("alice").await.unwrap().expect_code(70107);
    let r = app.other.account_delete(&["alice"]).await.unwrap();
    assert_eq!(r.expect_ok()["ResultItem"][0]["ResultCode"], 70107);

    assert_eq!(
        app.value("alice", NICK).await,
        Some(json!("Alice")),
        "APP's alice is untouched"
    );
}

#[tokio::test]
async fn the_same_user_id_in_two_apps_has_independent_profiles() {
    let app = spawn_app().await;
    app.admin
        .account_import("alice", Some("In APP"), None)
        .await
        .unwrap()
        .expect_ok();
    app.other
        .account_import("alice", Some("In OTHER"), None)
        .await
        .unwrap()
        .expect_ok();
    app.set("alice", &[(LEVEL, json!(1))]).await.expect_ok();
    app.other
        .portrait_set(
            "alice",
            &[(LEVEL, json!(2)), (GENDER, json!("Gender_Type_Male"))],
        )
        .await
        .unwrap()
        .expect_ok();

    let got = app.profile("alice", &[NICK, LEVEL, GENDER]).await;
    assert_eq!(
        serde_json::to_value(&got).unwrap(),
        json!({NICK: "In APP", LEVEL: 1, GENDER: "Gender_Type_Unknown"})
    );
    let r = app
        .other
        .portrait_get(&["alice"], &[NICK, LEVEL, GENDER])
        .await
        .unwrap();
    assert_eq!(
        r.expect_ok()["UserProfileItem"][0]["ProfileItem"],
        json!([{"Tag": NICK, "Value": "In OTHER"}, {"Tag": LEVEL, "Value": 2}, {"Tag": GENDER, "Value": "Gender_Type_Male"}])
    );

    // Deleting in one app leaves the other.
    app.other
        .account_delete(&["alice"])
        .await
        .unwrap()
        .expect_ok();
    assert_eq!(app.statuses(&["alice"]).await, ["Imported"]);
    assert_eq!(app.value("alice", LEVEL).await, Some(json!(1)));
}

#[tokio::test]
async fn a_kick_in_one_app_does_not_revoke_sigs_in_another() {
    let app = spawn_app().await;
    let other_sig = sig(OTHER_APP, OTHER_KEY, ADMIN);
    app.admin.kick(ADMIN).await.unwrap().expect_ok();
    let url = app.raw_url(ACCOUNT_CHECK, &query(OTHER_APP, ADMIN, &other_sig));
    app.post_json(&url, &json!({"CheckItem": [{"UserID": ADMIN}]}))
        .await
        .expect_ok();
    // …while in APP the admin's sigs from before the kick are revoked.
    let before = mint(APP, KEY, ADMIN, now() - 5, 3600);
    let url = app.raw_url(ACCOUNT_CHECK, &query(APP, ADMIN, &before));
    app.post_json(&url, &json!({"CheckItem": [{"UserID": ADMIN}]}))
        .await
        .expect_code(70001);
}
