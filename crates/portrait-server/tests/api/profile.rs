//! `portrait_set` / `portrait_get` over HTTP: semantics (atomicity, order, defaults, JSON types)
//! and every profile error code.

use serde_json::{json, Value};

use crate::helpers::*;

// ---- semantics -----------------------------------------------------------------------------------

#[tokio::test]
async fn portrait_set_then_get_round_trips_standard_and_custom_fields() {
    let app = spawn_app().await;
    app.import(&["alice"]).await;
    app.set(
        "alice",
        &[
            (NICK, json!("Alice")),
            (GENDER, json!("Gender_Type_Female")),
            (LEVEL, json!(7)),
            (HOBBY, json!("climbing")),
            (SCORE, json!(99)),
        ],
    )
    .await
    .expect_ok();
    let got = app
        .profile("alice", &[NICK, GENDER, LEVEL, HOBBY, SCORE])
        .await;
    assert_eq!(got[NICK], json!("Alice"));
    assert_eq!(got[GENDER], json!("Gender_Type_Female"));
    assert_eq!(got[LEVEL], json!(7));
    assert_eq!(got[HOBBY], json!("climbing"));
    assert_eq!(got[SCORE], json!(99));
}

#[tokio::test]
async fn portrait_set_overwrites_only_the_fields_it_names() {
    let app = spawn_app().await;
    app.import(&["alice"]).await;
    app.set("alice", &[(NICK, json!("one")), (LEVEL, json!(1))])
        .await
        .expect_ok();
    app.set("alice", &[(NICK, json!("two"))]).await.expect_ok();
    let got = app.profile("alice", &[NICK, LEVEL]).await;
    assert_eq!((&got[NICK], &got[LEVEL]), (&json!("two"), &json!(1)));
}

#[tokio::test]
async fn portrait_set_with_the_same_tag_twice_keeps_the_last_value() {
    let app = spawn_app().await;
    app.import(&["alice"]).await;
    app.set("alice", &[(NICK, json!("first")), (NICK, json!("last"))])
        .await
        .expect_ok();
    assert_eq!(app.value("alice", NICK).await, Some(json!("last")));
}

#[tokio::test]
async fn portrait_set_is_atomic_when_one_item_is_invalid() {
    let app = spawn_app().await;
    app.import(&["alice"]).await;
    app.set(
        "alice",
        &[
            (NICK, json!("orig")),
            (LEVEL, json!(1)),
            (HOBBY, json!("chess")),
        ],
    )
    .await
    .expect_ok();
    let version = app.store.current_version(APP).await.unwrap();
    let bad_items: Vec<(Value, u64)> = vec![
        (json!({"Tag": "Tag_Profile_IM_Nope", "Value": "x"}), 40009),
        (json!({"Tag": LOCATION, "Value": "x".repeat(17)}), 40601),
        (json!({"Tag": GENDER, "Value": "Gender_Type_Other"}), 40605),
        (json!({"Tag": LEVEL, "Value": "high"}), 40610),
        (json!({"Tag": USER_ONLY, "Value": "x"}), 40008),
        (json!({"Tag": NICK, "Value": "a badword"}), 40005),
    ];
    for (bad, code) in bad_items {
        // The bad item is last, so every valid item before it would have been written first.
        let body = json!({"From_Account": "alice", "ProfileItem": [
            {"Tag": NICK, "Value": "changed"},
            {"Tag": LEVEL, "Value": 2},
            {"Tag": HOBBY, "Value": "go"},
            bad,
        ]});
        app.call(PORTRAIT_SET, &body).await.expect_code(code);
        let got = app.profile("alice", &[NICK, LEVEL, HOBBY]).await;
        assert_eq!(
            (&got[NICK], &got[LEVEL], &got[HOBBY]),
            (&json!("orig"), &json!(1), &json!("chess")),
            "nothing changes when one item fails with {code}"
        );
    }
    assert_eq!(
        app.store.current_version(APP).await.unwrap(),
        version,
        "no change was recorded in the store"
    );
}

#[tokio::test]
async fn portrait_get_returns_users_and_tags_in_request_order() {
    let app = spawn_app().await;
    app.import(&["alice", "bob", "carol"]).await;
    for u in ["alice", "bob", "carol"] {
        app.set(
            u,
            &[
                (NICK, json!(format!("nick of {u}"))),
                (LEVEL, json!(u.len())),
            ],
        )
        .await
        .expect_ok();
    }
    let tags = [LEVEL, HOBBY, NICK, GENDER];
    let r = app
        .admin
        .portrait_get(&["carol", "alice", "bob", "alice"], &tags)
        .await
        .unwrap();
    let b = r.expect_ok();
    assert!(
        b.get("Fail_Account").is_none(),
        "no Fail_Account when nobody failed: {b}"
    );
    let users: Vec<&Value> = b["UserProfileItem"].as_array().unwrap().iter().collect();
    let ids: Vec<&str> = users
        .iter()
        .map(|u| u["To_Account"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["carol", "alice", "bob", "alice"]);
    for u in users {
        let name = u["To_Account"].as_str().unwrap();
        assert_eq!(u["ResultCode"], 0, "{u}");
        assert_eq!(u["ResultInfo"], "", "{u}");
        assert_eq!(
            u["ProfileItem"],
            json!([
                {"Tag": LEVEL, "Value": name.len()},
                {"Tag": NICK, "Value": format!("nick of {name}")},
                {"Tag": GENDER, "Value": "Gender_Type_Unknown"},
            ]),
            "tags in request order; the never-set custom Hobby is omitted"
        );
    }
}

#[tokio::test]
async fn portrait_get_returns_defaults_for_never_set_standard_fields() {
    let app = spawn_app().await;
    app.import(&["fresh"]).await;
    let all = [
        "Tag_Profile_IM_Nick",
        "Tag_Profile_IM_Gender",
        "Tag_Profile_IM_BirthDay",
        "Tag_Profile_IM_Location",
        "Tag_Profile_IM_SelfSignature",
        "Tag_Profile_IM_AllowType",
        "Tag_Profile_IM_Language",
        "Tag_Profile_IM_Image",
        "Tag_Profile_IM_MsgSettings",
        "Tag_Profile_IM_AdminForbidType",
        "Tag_Profile_IM_Level",
        "Tag_Profile_IM_Role",
    ];
    let got = app.profile("fresh", &all).await;
    let expected = json!({
        "Tag_Profile_IM_Nick": "",
        "Tag_Profile_IM_Gender": "Gender_Type_Unknown",
        "Tag_Profile_IM_BirthDay": 0,
        "Tag_Profile_IM_Location": "",
        "Tag_Profile_IM_SelfSignature": "",
        "Tag_Profile_IM_AllowType": "AllowType_Type_NeedConfirm",
        "Tag_Profile_IM_Language": 0,
        "Tag_Profile_IM_Image": "",
        "Tag_Profile_IM_MsgSettings": 0,
        "Tag_Profile_IM_AdminForbidType": "AdminForbid_Type_None",
        "Tag_Profile_IM_Level": 0,
        "Tag_Profile_IM_Role": 0,
    });
    assert_eq!(serde_json::to_value(&got).unwrap(), expected);
}

#[tokio::test]
async fn portrait_get_omits_never_set_custom_fields() {
    let app = spawn_app().await;
    app.import(&["alice", "bob"]).await;
    app.set("alice", &[(HOBBY, json!("chess"))])
        .await
        .expect_ok();
    let r = app
        .admin
        .portrait_get(&["alice", "bob"], &[HOBBY, SCORE, NICK])
        .await
        .unwrap();
    let b = r.expect_ok();
    assert_eq!(
        b["UserProfileItem"][0]["ProfileItem"],
        json!([{"Tag": HOBBY, "Value": "chess"}, {"Tag": NICK, "Value": ""}])
    );
    assert_eq!(
        b["UserProfileItem"][1]["ProfileItem"],
        json!([{"Tag": NICK, "Value": ""}])
    );
    // Only custom tags requested, none set: the user is still listed, with no items.
    let r = app
        .admin
        .portrait_get(&["bob"], &[HOBBY, SCORE])
        .await
        .unwrap();
    let b = r.expect_ok();
    assert_eq!(b["UserProfileItem"][0]["ResultCode"], 0);
    assert_eq!(b["UserProfileItem"][0]["ProfileItem"], json!([]));
}

#[tokio::test]
async fn portrait_get_returns_integers_as_json_numbers_and_strings_as_strings() {
    let app = spawn_app().await;
    app.import(&["alice"]).await;
    app.set(
        "alice",
        &[
            (LEVEL, json!(u32::MAX)),
            ("Tag_Profile_IM_BirthDay", json!(20_190_419)),
            (SCORE, json!(u64::MAX)),
            (HOBBY, json!("123")),
            (NICK, json!("42")),
        ],
    )
    .await
    .expect_ok();
    let got = app
        .profile(
            "alice",
            &[LEVEL, "Tag_Profile_IM_BirthDay", SCORE, HOBBY, NICK],
        )
        .await;
    assert!(
        got[LEVEL].is_u64() && got[LEVEL] == json!(4_294_967_295u64),
        "{:?}",
        got[LEVEL]
    );
    assert!(
        got["Tag_Profile_IM_BirthDay"].is_u64(),
        "{:?}",
        got["Tag_Profile_IM_BirthDay"]
    );
    assert_eq!(
        got[SCORE],
        json!(u64::MAX),
        "integer custom fields hold a uint64"
    );
    assert!(got[SCORE].is_u64());
    assert_eq!(
        got[HOBBY],
        json!("123"),
        "a numeric-looking string stays a string"
    );
    assert_eq!(got[NICK], json!("42"));
}

#[tokio::test]
async fn profile_replies_carry_an_empty_error_display() {
    let app = spawn_app().await;
    app.import(&["alice"]).await;
    let ok = app.set("alice", &[(NICK, json!("x"))]).await;
    assert_eq!(ok.expect_ok()["ErrorDisplay"], "");
    let fail = app.set("alice", &[(NICK, json!(1))]).await;
    assert_eq!(fail.expect_code(40610)["ErrorDisplay"], "");
    let get = app.admin.portrait_get(&["alice"], &[NICK]).await.unwrap();
    assert_eq!(get.expect_ok()["ErrorDisplay"], "");
}

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
