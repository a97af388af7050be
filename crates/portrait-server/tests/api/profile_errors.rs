//! `portrait_set` / `portrait_get` over HTTP: every profile error code (40001 … 40601). The
//! semantics of successful calls are in `profile.rs`.

use serde_json::json;

use crate::helpers::*;

// ---- 40001: bad request body ---------------------------------------------------------------------

#[tokio::test]
async fn portrait_set_rejects_a_body_of_the_wrong_shape_with_40001() {
    let app = spawn_app().await;
    app.import(&["alice"]).await;
    let bodies = [
        json!([]),
        json!("a string"),
        json!(42),
        json!(null),
        json!({"From_Account": 5, "ProfileItem": [{"Tag": NICK, "Value": "x"}]}),
        json!({"From_Account": ["alice"], "ProfileItem": [{"Tag": NICK, "Value": "x"}]}),
        json!({"From_Account": "alice", "ProfileItem": {"Tag": NICK, "Value": "x"}}),
        json!({"From_Account": "alice", "ProfileItem": [{"Tag": 1, "Value": "x"}]}),
        json!({"From_Account": "alice", "ProfileItem": [{"Value": "x"}]}),
        json!({"From_Account": "alice", "ProfileItem": [{"Tag": NICK}]}),
        json!({"From_Account": "alice", "ProfileItem": ["Tag_Profile_IM_Nick"]}),
    ];
    for body in bodies {
        let r = app.call(PORTRAIT_SET, &body).await;
        assert_eq!(r["ErrorCode"], 40001, "body {body}: {r}");
        r.expect_code(40001);
        assert!(
            r["ErrorInfo"]
                .as_str()
                .unwrap()
                .starts_with("Err_Profile_Comm_Decode_Fail: "),
            "the vendor's name for a body that does not decode (seed 002): {r}"
        );
    }
    assert_eq!(app.value("alice", NICK).await, Some(json!("")));
}

#[tokio::test]
async fn portrait_set_rejects_a_missing_from_account_with_40001() {
    let app = spawn_app().await;
    let r = app
        .call(
            PORTRAIT_SET,
            &json!({"ProfileItem": [{"Tag": NICK, "Value": "x"}]}),
        )
        .await;
    r.expect_code(40001);
    assert!(
        r["ErrorInfo"].as_str().unwrap().contains("From_Account"),
        "{r}"
    );
    app.call(
        PORTRAIT_SET,
        &json!({"From_Account": null, "ProfileItem": [{"Tag": NICK, "Value": "x"}]}),
    )
    .await
    .expect_code(40001);
    app.call(
        PORTRAIT_SET,
        &json!({"From_Account": "", "ProfileItem": [{"Tag": NICK, "Value": "x"}]}),
    )
    .await
    .expect_code(40001);
}

#[tokio::test]
async fn portrait_set_rejects_an_empty_or_missing_profile_item_with_40001() {
    let app = spawn_app().await;
    app.import(&["alice"]).await;
    let r = app
        .call(
            PORTRAIT_SET,
            &json!({"From_Account": "alice", "ProfileItem": []}),
        )
        .await;
    r.expect_code(40001);
    assert!(
        r["ErrorInfo"].as_str().unwrap().contains("ProfileItem"),
        "{r}"
    );
    app.call(PORTRAIT_SET, &json!({"From_Account": "alice"}))
        .await
        .expect_code(40001);
    app.call(PORTRAIT_SET, &json!({})).await.expect_code(40001);
}

#[tokio::test]
async fn portrait_get_rejects_more_than_100_accounts_with_40001() {
    let app = spawn_app().await;
    app.import(&["alice"]).await;
    let many: Vec<String> = (0..101).map(|i| format!("user{i}")).collect();
    let r = app
        .call(
            PORTRAIT_GET,
            &json!({"To_Account": many, "TagList": [NICK]}),
        )
        .await;
    r.expect_code(40001);
    // Exactly 100 is allowed; unknown ones are answered per user.
    let mut hundred: Vec<String> = (0..99).map(|i| format!("user{i}")).collect();
    hundred.push("alice".into());
    let r = app
        .call(
            PORTRAIT_GET,
            &json!({"To_Account": hundred, "TagList": [NICK]}),
        )
        .await;
    let b = r.expect_ok();
    assert_eq!(b["UserProfileItem"].as_array().unwrap().len(), 100);
    assert_eq!(b["Fail_Account"].as_array().unwrap().len(), 99);
    assert_eq!(b["UserProfileItem"][99]["ResultCode"], 0);
}

#[tokio::test]
async fn portrait_get_rejects_a_missing_or_empty_tag_list_with_40001() {
    let app = spawn_app().await;
    app.import(&["alice"]).await;
    let r = app
        .call(PORTRAIT_GET, &json!({"To_Account": ["alice"]}))
        .await;
    r.expect_code(40001);
    assert!(r["ErrorInfo"].as_str().unwrap().contains("TagList"), "{r}");
    app.call(
        PORTRAIT_GET,
        &json!({"To_Account": ["alice"], "TagList": []}),
    )
    .await
    .expect_code(40001);
    app.call(
        PORTRAIT_GET,
        &json!({"To_Account": ["alice"], "TagList": NICK}),
    )
    .await
    .expect_code(40001);
    app.call(
        PORTRAIT_GET,
        &json!({"To_Account": ["alice"], "TagList": [1]}),
    )
    .await
    .expect_code(40001);
}

#[tokio::test]
async fn portrait_get_rejects_a_body_of_the_wrong_shape_with_40001() {
    let app = spawn_app().await;
    app.import(&["alice"]).await;
    for body in [
        json!([]),
        json!("x"),
        json!({"To_Account": "alice", "TagList": [NICK]}),
        json!({"To_Account": [1], "TagList": [NICK]}),
    ] {
        let r = app.call(PORTRAIT_GET, &body).await;
        assert_eq!(r["ErrorCode"], 40001, "body {body}: {r}");
        assert!(
            r["ErrorInfo"]
                .as_str()
                .unwrap()
                .starts_with("Err_Profile_Comm_Decode_Fail: "),
            "body {body}: {r}"
        );
    }
}

// ---- 40002, 40003 ------------------------------------------------------------------------------

#[tokio::test]
async fn portrait_get_rejects_a_missing_or_empty_to_account_with_40002() {
    let app = spawn_app().await;
    app.call(PORTRAIT_GET, &json!({"TagList": [NICK]}))
        .await
        .expect_code(40002);
    app.call(PORTRAIT_GET, &json!({"To_Account": [], "TagList": [NICK]}))
        .await
        .expect_code(40002);
    app.call(
        PORTRAIT_GET,
        &json!({"To_Account": null, "TagList": [NICK]}),
    )
    .await
    .expect_code(40002);
    app.call(PORTRAIT_GET, &json!({})).await.expect_code(40002);
}

#[tokio::test]
async fn portrait_set_on_an_account_that_was_never_imported_fails_with_40003() {
    let app = spawn_app().await;
    let r = app.set("ghost", &[(NICK, json!("Boo"))]).await;
    r.expect_code(40003);
    assert_eq!(
        r["ErrorInfo"], "Err_Profile_Account_Not_Exist: UserID \"ghost\" does not exist",
        "the name portrait_get's per-user result uses, then why"
    );
    assert_eq!(
        app.statuses(&["ghost"]).await,
        ["NotImported"],
        "portrait_set does not create accounts"
    );
}

#[tokio::test]
async fn portrait_get_reports_unknown_accounts_per_user_with_40003_and_returns_the_others() {
    let app = spawn_app().await;
    app.import(&["alice", "bob"]).await;
    app.set("alice", &[(NICK, json!("Alice"))])
        .await
        .expect_ok();
    let too_long = "x".repeat(33);
    let r = app
        .admin
        .portrait_get(&["ghost", "alice", &too_long, "bob"], &[NICK])
        .await
        .unwrap();
    let b = r.expect_ok();
    assert_eq!(b["Fail_Account"], json!(["ghost", too_long]));
    let users = b["UserProfileItem"].as_array().unwrap();
    assert_eq!(users.len(), 4);
    for i in [0, 2] {
        assert_eq!(users[i]["ResultCode"], 40003, "{}", users[i]);
        assert!(
            users[i]["ResultInfo"]
                .as_str()
                .is_some_and(|s| !s.is_empty()),
            "{}",
            users[i]
        );
        assert!(
            users[i].get("ProfileItem").is_none() || users[i]["ProfileItem"] == json!([]),
            "{}",
            users[i]
        );
    }
    assert_eq!(users[0]["To_Account"], "ghost");
    assert_eq!(users[2]["To_Account"], too_long);
    assert_eq!(
        users[1],
        json!({"To_Account": "alice", "ProfileItem": [{"Tag": NICK, "Value": "Alice"}], "ResultCode": 0, "ResultInfo": ""})
    );
    assert_eq!(users[3]["To_Account"], "bob");
    assert_eq!(users[3]["ProfileItem"], json!([{"Tag": NICK, "Value": ""}]));
}

// ---- 40005 ---------------------------------------------------------------------------------------

#[tokio::test]
async fn portrait_set_rejects_sensitive_words_with_40005() {
    let app = spawn_app().await;
    app.import(&["alice"]).await;
    let cases = [
        (NICK, "badword"),
        (NICK, "a BadWord inside"),
        ("Tag_Profile_IM_SelfSignature", "BADWORD!"),
        (LOCATION, "违禁"),
        (IMAGE, "https://x.test/badword.png"),
        (HOBBY, "我的违禁爱好"),
    ];
    for (tag, value) in cases {
        let r = app.set("alice", &[(tag, json!(value))]).await;
        assert_eq!(r["ErrorCode"], 40005, "{tag} = {value:?}: {r}");
        r.expect_code(40005);
    }
    let got = app.profile("alice", &[NICK, HOBBY]).await;
    assert_eq!(got[NICK], json!(""));
    assert!(!got.contains_key(HOBBY));
    // Near misses are fine.
    app.set(
        "alice",
        &[(NICK, json!("bad word")), (HOBBY, json!("违 禁"))],
    )
    .await
    .expect_ok();
}

#[tokio::test]
async fn sensitive_words_of_one_app_do_not_apply_to_another() {
    let app = spawn_app().await;
    app.import(&["alice"]).await;
    app.other
        .account_import("alice", Some("badword"), None)
        .await
        .unwrap()
        .expect_ok();
    app.other
        .portrait_set("alice", &[(NICK, json!("违禁 badword"))])
        .await
        .unwrap()
        .expect_ok();
}

// ---- 40007, 40008, 40009 -------------------------------------------------------------------------

#[tokio::test]
async fn portrait_get_of_a_user_only_field_by_an_admin_fails_with_40007() {
    let app = spawn_app().await;
    app.import(&["alice"]).await;
    let r = app
        .admin
        .portrait_get(&["alice"], &[NICK, USER_ONLY])
        .await
        .unwrap();
    r.expect_code(40007);
    assert!(r.info().contains(USER_ONLY), "{:?}", r.0);
    assert!(
        r.0.get("UserProfileItem").is_none(),
        "a failed call returns no data: {:?}",
        r.0
    );
}

#[tokio::test]
async fn portrait_set_of_a_user_only_field_by_an_admin_fails_with_40008() {
    let app = spawn_app().await;
    app.import(&["alice"]).await;
    let r = app.set("alice", &[(USER_ONLY, json!("x"))]).await;
    r.expect_code(40008);
    assert!(r["ErrorInfo"].as_str().unwrap().contains(USER_ONLY), "{r}");
}

#[tokio::test]
async fn admins_may_write_admin_only_fields() {
    let app = spawn_app().await;
    app.import(&["alice"]).await;
    app.set(
        "alice",
        &[
            (SCORE, json!(5)),
            (
                "Tag_Profile_IM_AdminForbidType",
                json!("AdminForbid_Type_SendOut"),
            ),
        ],
    )
    .await
    .expect_ok();
    let got = app
        .profile("alice", &[SCORE, "Tag_Profile_IM_AdminForbidType"])
        .await;
    assert_eq!(got[SCORE], json!(5));
    assert_eq!(
        got["Tag_Profile_IM_AdminForbidType"],
        json!("AdminForbid_Type_SendOut")
    );
}

#[tokio::test]
async fn portrait_set_rejects_an_unknown_tag_with_40009() {
    let app = spawn_app().await;
    app.import(&["alice"]).await;
    for tag in [
        "Tag_Profile_IM_Unknown",
        "Tag_Profile_IM_nick",
        "tag_profile_im_nick",
        "Tag_Profile_Custom_Nope",
        "Tag_Profile_Custom_hobby",
        "Hobby",
        "",
        "Tag_SNS_IM_Remark",
    ] {
        let r = app.set("alice", &[(tag, json!("x"))]).await;
        assert_eq!(r["ErrorCode"], 40009, "{tag:?}: {r}");
        r.expect_code(40009);
    }
    // A custom field of APP does not exist in OTHER_APP.
    app.other
        .account_import("alice", None, None)
        .await
        .unwrap()
        .expect_ok();
    app.other
        .portrait_set("alice", &[(HOBBY, json!("x"))])
        .await
        .unwrap()
        .expect_code(40009);
}

#[tokio::test]
async fn portrait_get_rejects_an_unknown_tag_with_40009() {
    let app = spawn_app().await;
    app.import(&["alice"]).await;
    for tag in [
        "Tag_Profile_IM_Unknown",
        "Tag_Profile_Custom_Nope",
        "Tag_Profile_IM_nick",
        "",
    ] {
        let r = app
            .admin
            .portrait_get(&["alice"], &[NICK, tag])
            .await
            .unwrap();
        assert_eq!(r.code(), 40009, "{tag:?}: {:?}", r.0);
        r.expect_code(40009);
    }
    app.other
        .account_import("alice", None, None)
        .await
        .unwrap()
        .expect_ok();
    app.other
        .portrait_get(&["alice"], &[HOBBY])
        .await
        .unwrap()
        .expect_code(40009);
}

// ---- 40601, 40605, 40610 -------------------------------------------------------------------------

#[tokio::test]
async fn portrait_set_rejects_nick_over_limit_with_40601() {
    let app = spawn_app().await;
    app.import(&["alice"]).await;
    let r = app.set("alice", &[(NICK, json!("n".repeat(501)))]).await;
    r.expect_code(40601);
    assert!(
        r["ErrorInfo"].as_str().unwrap().contains(NICK),
        "the error names the tag: {r}"
    );
    app.set("alice", &[(NICK, json!("n".repeat(500)))])
        .await
        .expect_ok();
}

#[tokio::test]
async fn portrait_set_counts_location_bytes_not_characters() {
    let app = spawn_app().await;
    app.import(&["alice"]).await;
    // 5 CJK characters (15 bytes) + 2 ASCII = 17 bytes, though only 7 characters.
    let seventeen = "深圳南山区ab";
    assert_eq!(seventeen.len(), 17);
    app.set("alice", &[(LOCATION, json!(seventeen))])
        .await
        .expect_code(40601);
    let sixteen = "深圳南山区a";
    app.set("alice", &[(LOCATION, json!(sixteen))])
        .await
        .expect_ok();
    assert_eq!(app.value("alice", LOCATION).await, Some(json!(sixteen)));
}

#[tokio::test]
async fn portrait_set_rejects_a_custom_string_over_its_declared_limit_with_40601() {
    let app = spawn_app().await;
    app.import(&["alice"]).await;
    app.set("alice", &[(HOBBY, json!("h".repeat(21)))])
        .await
        .expect_code(40601);
    app.set("alice", &[(HOBBY, json!("爱好爱好爱好爱"))])
        .await
        .expect_code(40601); // 21 bytes
    app.set("alice", &[(HOBBY, json!("h".repeat(20)))])
        .await
        .expect_ok();
    assert_eq!(app.value("alice", HOBBY).await, Some(json!("h".repeat(20))));
}

#[tokio::test]
async fn portrait_set_rejects_invalid_enum_and_out_of_range_values_with_40605() {
    let app = spawn_app().await;
    app.import(&["alice"]).await;
    let cases = [
        (GENDER, json!("Gender_Type_Other")),
        ("Tag_Profile_IM_AllowType", json!("AllowType_Type_Maybe")),
        ("Tag_Profile_IM_AdminForbidType", json!("")),
        (LEVEL, json!(4_294_967_296u64)),
        ("Tag_Profile_IM_Role", json!(-1)),
        (SCORE, json!(-3)),
    ];
    for (tag, value) in cases {
        let r = app.set("alice", &[(tag, value.clone())]).await;
        assert_eq!(r["ErrorCode"], 40605, "{tag} = {value}: {r}");
        r.expect_code(40605);
    }
}

#[tokio::test]
async fn portrait_set_rejects_a_value_of_the_wrong_json_type_with_40610() {
    let app = spawn_app().await;
    app.import(&["alice"]).await;
    let cases = [
        (NICK, json!(5)),
        (NICK, json!(null)),
        (GENDER, json!(1)),
        (LEVEL, json!("3")),
        (LEVEL, json!(1.5)),
        (LEVEL, json!(true)),
        (LOCATION, json!(["a"])),
        (HOBBY, json!({"a": 1})),
        (SCORE, json!("10")),
    ];
    for (tag, value) in cases {
        let r = app.set("alice", &[(tag, value.clone())]).await;
        assert_eq!(r["ErrorCode"], 40610, "{tag} = {value}: {r}");
        r.expect_code(40610);
    }
}

// ---- 60003 ---------------------------------------------------------------------------------------

#[tokio::test]
async fn malformed_json_or_an_empty_body_fails_with_60003() {
    let app = spawn_app().await;
    for api in [PORTRAIT_SET, PORTRAIT_GET, ACCOUNT_IMPORT, KICK] {
        for body in [
            "",
            "   \n",
            "{not json",
            "{\"To_Account\": [\"a\"],}",
            "{\"a\": 1} trailing",
            "\u{feff}{}",
        ] {
            let r = app
                .send(
                    reqwest::Method::POST,
                    &app.url(api),
                    Some("application/json"),
                    body,
                )
                .await;
            assert_eq!(r["ErrorCode"], 60003, "{api} with {body:?}: {r}");
            r.expect_code(60003);
        }
    }
}
