//! The client API over HTTP (docs/client-api.md): user authentication, reading profiles with
//! versions, updating only one's own profile with user permissions, and compare-and-set.

use portrait_server::settings::{AppConfig, CustomFieldConfig, Who};
use serde_json::{json, Value};

use crate::helpers::*;

const SECRET: &str = "Tag_Profile_Custom_Secret";

/// The test app plus a custom field only admins may read or write.
fn app_with_secret() -> AppConfig {
    let mut app = test_app();
    app.custom_fields.push(CustomFieldConfig {
        name: SECRET.into(),
        kind: serde_json::from_value(json!("string")).unwrap(),
        max_length: 100,
        read: vec![Who::Admin],
        write: vec![Who::Admin],
        hidden: false,
    });
    app
}

fn item<'a>(body: &'a Value, tag: &str) -> Option<&'a Value> {
    body["UserProfileItem"][0]["ProfileItem"]
        .as_array()?
        .iter()
        .find(|i| i["Tag"] == tag)
        .map(|i| &i["Value"])
}

#[tokio::test]
async fn a_user_reads_profiles_with_versions_and_per_user_failures() {
    let app = spawn_app().await;
    app.import(&["alice", "bob"]).await;
    let set = app
        .admin
        .portrait_set("bob", &[(NICK, json!("Bob")), (HOBBY, json!("chess"))])
        .await
        .unwrap();
    assert_eq!(set.code(), 0, "{:?}", set.0);
    let alice = app.user("alice");

    let mine = alice.get_my_profile(None).await.unwrap();
    let b = mine.0.clone();
    assert_eq!(mine.code(), 0, "{b}");
    assert_eq!(b["ErrorDisplay"], "", "profile envelope: {b}");
    let me = &b["UserProfileItem"][0];
    assert_eq!(me["To_Account"], "alice");
    assert!(me["Version"].as_u64().unwrap() > 0, "{b}");
    assert!(
        me["UpdatedAtMs"].as_i64().unwrap() > 1_700_000_000_000,
        "{b}"
    );
    assert_eq!(
        item(&b, NICK),
        Some(&json!("")),
        "defaults for never-set fields"
    );
    assert_eq!(item(&b, HOBBY), None, "never-set custom fields are omitted");

    let r = alice
        .get_user_profile(&["bob", "nobody", "bad id with spaces"], None)
        .await
        .unwrap();
    let b = r.0;
    assert_eq!(b["ErrorCode"], 0, "{b}");
    let items = b["UserProfileItem"].as_array().unwrap();
    assert_eq!(items.len(), 3);
    assert_eq!(items[0]["To_Account"], "bob");
    assert_eq!(items[0]["ResultCode"], 0);
    let bob_version = items[0]["Version"].as_u64().unwrap();
    assert_eq!(
        bob_version,
        set_version(&app, "bob").await,
        "Version is the version of the profile's last change"
    );
    let tags: Vec<&str> = items[0]["ProfileItem"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["Tag"].as_str().unwrap())
        .collect();
    assert!(tags.contains(&NICK) && tags.contains(&HOBBY), "{tags:?}");
    assert_eq!(items[1]["ResultCode"], 40003);
    assert_eq!(items[2]["ResultCode"], 40003);
    assert_eq!(b["Fail_Account"], json!(["nobody", "bad id with spaces"]));

    // Tag selection, and the limits of portrait_get.
    let r = alice
        .get_user_profile(&["bob"], Some(&[NICK]))
        .await
        .unwrap();
    assert_eq!(
        r.0["UserProfileItem"][0]["ProfileItem"],
        json!([{"Tag": NICK, "Value": "Bob"}])
    );
    let many: Vec<String> = (0..101).map(|i| format!("u{i}")).collect();
    let many: Vec<&str> = many.iter().map(String::as_str).collect();
    assert_eq!(
        alice.get_user_profile(&many, None).await.unwrap().code(),
        40001
    );
    assert_eq!(
        alice.get_user_profile(&[], None).await.unwrap().code(),
        40002
    );
    assert_eq!(
        alice
            .get_user_profile(&["bob"], Some(&["Tag_Profile_IM_Nope"]))
            .await
            .unwrap()
            .code(),
        40009
    );
}

async fn set_version(app: &TestApp, user: &str) -> u64 {
    let changes = app
        .store
        .changes_since(APP, 0, 10_000)
        .await
        .expect("changes");
    changes
        .iter()
        .filter(|c| c.user == user)
        .map(|c| c.version)
        .max()
        .expect("a change")
}

#[tokio::test]
async fn a_user_updates_only_their_own_profile_with_user_permissions() {
    let app = spawn_app_with(vec![app_with_secret()]).await;
    app.import(&["alice", "bob"]).await;
    let alice = app.user("alice");

    let r = alice
        .update_my_profile(&[(NICK, json!("Al")), (HOBBY, json!("go"))], None)
        .await
        .unwrap();
    assert_eq!(r.code(), 0, "{:?}", r.0);
    assert_eq!(r.0["ErrorDisplay"], "");
    let v = r.0["Version"].as_u64().unwrap();
    let mine = alice.get_my_profile(Some(&[NICK, HOBBY])).await.unwrap().0;
    assert_eq!(mine["UserProfileItem"][0]["Version"], v);
    assert_eq!(item(&mine, NICK), Some(&json!("Al")));
    assert_eq!(item(&mine, HOBBY), Some(&json!("go")));

    // The body cannot name another account: a From_Account is ignored, alice's profile is written.
    let r = alice
        .call(
            "v1/profile/update_my_profile",
            &json!({"From_Account": "bob", "ProfileItem": [{"Tag": NICK, "Value": "hijack"}]}),
        )
        .await
        .unwrap();
    assert_eq!(r.code(), 0);
    let bob = app.admin.portrait_get(&["bob"], &[NICK]).await.unwrap().0;
    assert_eq!(
        bob["UserProfileItem"][0]["ProfileItem"][0]["Value"], "",
        "bob untouched"
    );
    // alice's UserSig cannot be used as bob.
    let as_bob =
        portrait_client::user::UserClient::new(&app.base, APP, "bob", sig(APP, KEY, "alice"));
    let r = as_bob
        .update_my_profile(&[(NICK, json!("x"))], None)
        .await
        .unwrap();
    assert_eq!(r.code(), 70013, "{:?}", r.0);

    // Admin-only fields: 40008, and nothing of the request is written.
    for (tag, value) in [
        (
            "Tag_Profile_IM_AdminForbidType",
            json!("AdminForbid_Type_SendOut"),
        ),
        (SCORE, json!(5)),
        (SECRET, json!("s")),
    ] {
        let r = alice
            .update_my_profile(&[(NICK, json!("not written")), (tag, value)], None)
            .await
            .unwrap();
        assert_eq!(r.code(), 40008, "{tag}: {:?}", r.0);
    }
    // The admin API's validation, with the same codes.
    for (tag, value, code) in [
        (NICK, json!("has badword inside"), 40005),
        (NICK, json!("x".repeat(501)), 40601),
        ("Tag_Profile_Custom_Unknown", json!("x"), 40009),
        (GENDER, json!("Gender_Type_Robot"), 40605),
        (LEVEL, json!("high"), 40610),
    ] {
        let r = alice
            .update_my_profile(&[(NICK, json!("not written")), (tag, value)], None)
            .await
            .unwrap();
        assert_eq!(r.code(), code, "{tag}: {:?}", r.0);
    }
    let r = alice.update_my_profile(&[], None).await.unwrap();
    assert_eq!(r.code(), 40001);
    let mine = alice.get_my_profile(Some(&[NICK])).await.unwrap().0;
    assert_eq!(item(&mine, NICK), Some(&json!("hijack")));
}

#[tokio::test]
async fn fields_without_user_read_permission_are_never_returned_to_users() {
    let app = spawn_app_with(vec![app_with_secret()]).await;
    app.import(&["alice", "bob"]).await;
    let r = app
        .admin
        .portrait_set(
            "bob",
            &[(SECRET, json!("classified")), (NICK, json!("Bob"))],
        )
        .await
        .unwrap();
    assert_eq!(r.code(), 0);
    let alice = app.user("alice");
    let r = alice
        .get_user_profile(&["bob"], Some(&[NICK, SECRET]))
        .await
        .unwrap();
    assert_eq!(r.code(), 40007, "asked explicitly: {:?}", r.0);
    for r in [
        alice.get_user_profile(&["bob"], None).await.unwrap(),
        app.user("bob").get_my_profile(None).await.unwrap(),
    ] {
        let text = r.0.to_string();
        assert_eq!(r.code(), 0);
        assert!(
            !text.contains(SECRET) && !text.contains("classified"),
            "{text}"
        );
        assert!(text.contains("Bob"));
    }
    // The admin still reads it.
    let b = app.admin.portrait_get(&["bob"], &[SECRET]).await.unwrap().0;
    assert_eq!(
        b["UserProfileItem"][0]["ProfileItem"][0]["Value"],
        "classified"
    );
}

#[tokio::test]
async fn only_imported_users_with_a_valid_usersig_may_sign_in() {
    let app = spawn_app().await;
    app.import(&["alice", "gone"]).await;
    let r = app.user("stranger").get_my_profile(None).await.unwrap();
    assert_eq!(r.code(), 70107, "never imported: {:?}", r.0);

    let gone = app.user("gone");
    assert_eq!(gone.get_my_profile(None).await.unwrap().code(), 0);
    let del = app.admin.account_delete(&["gone"]).await.unwrap();
    assert_eq!(del.code(), 0);
    assert_eq!(
        gone.get_my_profile(None).await.unwrap().code(),
        70107,
        "deleted"
    );

    let forged = portrait_client::user::UserClient::new(
        &app.base,
        APP,
        "alice",
        sig(APP, "not the app key", "alice"),
    );
    assert_eq!(forged.get_my_profile(None).await.unwrap().code(), 70009);
    let expired = portrait_client::user::UserClient::new(
        &app.base,
        APP,
        "alice",
        portrait_core::usersig::mint(APP, KEY, "alice", now() - 7200, 60),
    );
    assert_eq!(expired.get_my_profile(None).await.unwrap().code(), 70001);

    // kick revokes the UserSigs minted before it.
    let old = portrait_client::user::UserClient::new(
        &app.base,
        APP,
        "alice",
        portrait_core::usersig::mint(APP, KEY, "alice", now() - 10, 3600),
    );
    assert_eq!(old.get_my_profile(None).await.unwrap().code(), 0);
    assert_eq!(app.admin.kick("alice").await.unwrap().code(), 0);
    assert_eq!(old.get_my_profile(None).await.unwrap().code(), 70001);

    // Missing query parts: the REST API's codes.
    let url = format!("{}/v1/profile/get_my_profile?identifier=alice", app.base);
    assert_eq!(app.post_raw(&url, "{}").await["ErrorCode"], 60012);
    let url = format!(
        "{}/v1/profile/get_my_profile?sdkappid={APP}&usersig=x",
        app.base
    );
    assert_eq!(app.post_raw(&url, "{}").await["ErrorCode"], 60004);
}

#[tokio::test]
async fn a_stale_expected_version_is_refused_so_no_update_is_lost() {
    let app = spawn_app().await;
    app.import(&["alice"]).await;
    let phone = app.user("alice");
    let laptop = app.user("alice");
    let v0 = phone.get_my_profile(None).await.unwrap().0["UserProfileItem"][0]["Version"]
        .as_u64()
        .unwrap();

    let r = phone
        .update_my_profile(&[(NICK, json!("from phone"))], Some(v0))
        .await
        .unwrap();
    assert_eq!(r.code(), 0, "{:?}", r.0);
    let v1 = r.0["Version"].as_u64().unwrap();
    assert!(v1 > v0);

    let r = laptop
        .update_my_profile(&[(NICK, json!("from laptop"))], Some(v0))
        .await
        .unwrap();
    assert_eq!(r.code(), 49001, "{:?}", r.0);
    assert!(
        r.info().contains(&v1.to_string()),
        "ErrorInfo names the current version: {}",
        r.info()
    );
    let now = laptop.get_my_profile(Some(&[NICK])).await.unwrap().0;
    assert_eq!(
        item(&now, NICK),
        Some(&json!("from phone")),
        "nothing written"
    );
    assert_eq!(now["UserProfileItem"][0]["Version"], v1);

    let r = laptop
        .update_my_profile(&[(NICK, json!("from laptop"))], Some(v1))
        .await
        .unwrap();
    assert_eq!(r.code(), 0, "retry with the re-read version");
}

#[tokio::test]
async fn every_response_carries_a_distinct_request_id() {
    let app = spawn_app().await;
    let mut ids = std::collections::HashSet::new();
    for _ in 0..3 {
        let resp = app
            .http
            .get(format!("{}/healthz", app.base))
            .send()
            .await
            .unwrap();
        let id = resp.headers()["x-request-id"].to_str().unwrap().to_owned();
        assert!(ids.insert(id), "request ids are unique");
    }
    // A client's own id is kept.
    let resp = app
        .http
        .get(format!("{}/healthz", app.base))
        .header("x-request-id", "client-chosen")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.headers()["x-request-id"], "client-chosen");
}

#[tokio::test]
async fn a_client_body_that_does_not_decode_is_40001_with_the_vendor_name() {
    let app = spawn_app().await;
    app.import(&["alice"]).await;
    let alice = app.user("alice");
    for (api, body) in [
        (
            "v1/profile/update_my_profile",
            json!({"ProfileItem": {"Tag": NICK, "Value": "x"}}),
        ),
        (
            "v1/profile/update_my_profile",
            json!({"ProfileItem": [{"Tag": 1, "Value": "x"}]}),
        ),
        ("v1/profile/update_my_profile", json!({})),
        ("v1/profile/get_user_profile", json!({"To_Account": "bob"})),
        ("v1/profile/get_my_profile", json!({"TagList": NICK})),
    ] {
        let r = alice.call(api, &body).await.unwrap();
        r.expect_code(40001);
        assert!(
            r.info().starts_with("Err_Profile_Comm_Decode_Fail: "),
            "{api} {body}: {:?}",
            r.0
        );
    }
}
