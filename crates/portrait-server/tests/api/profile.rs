//! `portrait_set` / `portrait_get` over HTTP: semantics (atomicity, order, defaults, JSON types).
//! Every profile error code is tested in `profile_errors.rs`.

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
