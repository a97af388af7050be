//! Integer fields over HTTP with numbers in float form (issue #15, defect 9). JSON does not tell
//! integers from floats: `1.0`, `1e2` and `-0` are the whole numbers 1, 100 and 0, accepted and
//! stored as integers; `1.5` and `1e-3` have a fraction (40610); a whole number out of the field's
//! range is refused as the same integer would be (40605). The same through `portrait_set`,
//! `portrait_import` and the client's `update_my_profile`. Bodies are sent as raw text, so the
//! literals reach the server exactly as written.

use reqwest::Method;
use serde_json::{json, Value};

use crate::helpers::*;

const ROLE: &str = "Tag_Profile_IM_Role";
const BIRTHDAY: &str = "Tag_Profile_IM_BirthDay";

/// Whole numbers in float form and the integer each one is.
const WHOLE: &[(&str, u64)] = &[
    ("1.0", 1),
    ("1e2", 100),
    ("-0", 0),
    ("2.5E1", 25),
    ("4294967295.0", 4_294_967_295),
];

/// Numbers refused for a uint32 field, with the code.
const REFUSED: &[(&str, u64)] = &[
    ("1.5", 40610),
    ("1e-3", 40610),
    ("-0.5", 40610),
    ("-1.0", 40605),
    ("4294967296.0", 40605),
    ("1e10", 40605),
    ("1e300", 40605),
];

/// `{"Tag": tag, "Value": <literal>}` as raw JSON text.
fn item(tag: &str, literal: &str) -> String {
    format!(r#"{{"Tag":"{tag}","Value":{literal}}}"#)
}

impl TestApp {
    async fn raw_admin(&self, api: &str, body: String) -> Value {
        self.send(Method::POST, &self.url(api), Some("application/json"), body)
            .await
    }

    async fn raw_set(&self, user: &str, tag: &str, literal: &str) -> Value {
        let body = format!(
            r#"{{"From_Account":"{user}","ProfileItem":[{}]}}"#,
            item(tag, literal)
        );
        self.raw_admin(PORTRAIT_SET, body).await
    }

    async fn raw_update_my_profile(&self, user: &str, tag: &str, literal: &str) -> Value {
        let url = self.raw_url(
            "v1/profile/update_my_profile",
            &query(APP, user, &sig(APP, KEY, user)),
        );
        let body = format!(r#"{{"ProfileItem":[{}]}}"#, item(tag, literal));
        self.send(Method::POST, &url, Some("application/json"), body)
            .await
    }
}

/// Asserts that `user`'s `tag` reads back as the integer `want` (JSON integer, not `1.0`), to the
/// admin and to the user themself.
async fn assert_integer(app: &TestApp, user: &str, tag: &str, want: u64) {
    let got = app.value(user, tag).await.unwrap();
    assert!(got.is_u64(), "{tag}: stored as an integer, got {got}");
    assert_eq!(got, json!(want), "{tag}");
    let mine = app.user(user).get_my_profile(Some(&[tag])).await.unwrap();
    let mine = mine.expect_ok();
    let raw = mine.to_string();
    let v = &mine["UserProfileItem"][0]["ProfileItem"][0]["Value"];
    assert!(v.is_u64(), "{tag}: returned as an integer: {raw}");
    assert_eq!(*v, json!(want), "{raw}");
}

#[tokio::test]
async fn portrait_set_reads_whole_floats_as_integers_and_refuses_fractions() {
    let app = spawn_app().await;
    app.import(&["alice"]).await;
    for &(literal, want) in WHOLE {
        for tag in [LEVEL, ROLE, BIRTHDAY, SCORE] {
            // Set something else first so that the write is seen.
            app.set("alice", &[(tag, json!(7))]).await.expect_ok();
            let r = app.raw_set("alice", tag, literal).await;
            assert_eq!(r["ErrorCode"], 0, "{tag} = {literal}: {r}");
            assert_integer(&app, "alice", tag, want).await;
        }
    }
    app.set("alice", &[(LEVEL, json!(7))]).await.expect_ok();
    for &(literal, code) in REFUSED {
        let r = app.raw_set("alice", LEVEL, literal).await;
        r.expect_code(code);
        assert!(r["ErrorInfo"].as_str().unwrap().contains(LEVEL), "{r}");
        assert_eq!(app.value("alice", LEVEL).await, Some(json!(7)), "{literal}");
    }
    // A custom integer field (uint64): a fraction is the wrong type, a negative whole float and
    // one beyond uint64 are out of range.
    for (literal, code) in [("1.5", 40610), ("-1.0", 40605), ("1e20", 40605)] {
        app.raw_set("alice", SCORE, literal).await.expect_code(code);
    }
}

#[tokio::test]
async fn portrait_import_reads_whole_floats_as_integers_and_refuses_fractions() {
    let app = spawn_app().await;
    let accounts: Vec<String> = [
        ("one", "1.0"),
        ("hundred", "1e2"),
        ("zero", "-0"),
        ("half", "1.5"),
        ("milli", "1e-3"),
        ("minus", "-1.0"),
        ("big", "4294967296.0"),
    ]
    .iter()
    .map(|(user, literal)| {
        format!(
            r#"{{"UserID":"{user}","ProfileItem":[{}]}}"#,
            item(LEVEL, literal)
        )
    })
    .collect();
    let body = format!(r#"{{"AccountList":[{}]}}"#, accounts.join(","));
    let r = app.raw_admin(PORTRAIT_IMPORT, body).await;
    let codes: Vec<(&str, u64)> = r.expect_ok()["ResultItem"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| {
            (
                i["UserID"].as_str().unwrap(),
                i["ResultCode"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        codes,
        [
            ("one", 0),
            ("hundred", 0),
            ("zero", 0),
            ("half", 40610),
            ("milli", 40610),
            ("minus", 40605),
            ("big", 40605),
        ],
        "{r}"
    );
    assert_integer(&app, "one", LEVEL, 1).await;
    assert_integer(&app, "hundred", LEVEL, 100).await;
    assert_integer(&app, "zero", LEVEL, 0).await;
}

#[tokio::test]
async fn update_my_profile_reads_whole_floats_as_integers_and_refuses_fractions() {
    let app = spawn_app().await;
    app.import(&["alice"]).await;
    for &(literal, want) in WHOLE {
        for tag in [LEVEL, ROLE, BIRTHDAY] {
            app.set("alice", &[(tag, json!(7))]).await.expect_ok();
            let r = app.raw_update_my_profile("alice", tag, literal).await;
            assert_eq!(r["ErrorCode"], 0, "{tag} = {literal}: {r}");
            assert_integer(&app, "alice", tag, want).await;
        }
    }
    app.set("alice", &[(LEVEL, json!(7))]).await.expect_ok();
    for &(literal, code) in REFUSED {
        let r = app.raw_update_my_profile("alice", LEVEL, literal).await;
        r.expect_code(code);
        assert_eq!(app.value("alice", LEVEL).await, Some(json!(7)), "{literal}");
    }
}
