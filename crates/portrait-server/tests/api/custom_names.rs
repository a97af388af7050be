//! Custom field names as the vendor documents write them (`Tag_Profile_Custom_Test1`, the legacy
//! `Tag_Profile_Custom_888888_Test`) over every API that reads or writes custom fields, and names
//! outside the rule (docs/compatibility.md, "Custom field names") refused with 40009.

use portrait_client::AdminClient;
use portrait_server::settings::{AppConfig, CustomFieldConfig, RateLimitConfig, Who};
use secrecy::SecretString;
use serde_json::{json, Value};

use crate::helpers::*;

const NAMES_APP: u64 = 1_400_000_016;
const TEST: &str = "Tag_Profile_Custom_Test";
const TEST1: &str = "Tag_Profile_Custom_Test1";
const TEST2: &str = "Tag_Profile_Custom_Test2";
const LEGACY: &str = "Tag_Profile_Custom_888888_Test";
const LEGACY_INT: &str = "Tag_Profile_Custom_1400000016_Lvl9";

/// An app declaring the documents' names: strings with different limits, and a legacy-form
/// integer field.
fn names_app() -> AppConfig {
    let field = |name: &str, kind: &str, max: usize| CustomFieldConfig {
        name: name.into(),
        kind: serde_json::from_value(json!(kind)).unwrap(),
        max_length: max,
        read: vec![Who::User, Who::Admin],
        write: vec![Who::User, Who::Admin],
        hidden: false,
    };
    AppConfig {
        sdkappid: NAMES_APP,
        key: SecretString::from(KEY),
        admins: vec![ADMIN.into()],
        custom_fields: vec![
            field(TEST, "string", 500),
            field(TEST1, "string", 500),
            field(TEST2, "string", 8),
            field(LEGACY, "string", 500),
            field(LEGACY_INT, "integer", 500),
        ],
        sensitive_words: vec![],
        rate_limits: RateLimitConfig::default(),
        client_rate_limits: unlimited_clients(),
        usersig_clock_skew_secs: portrait_server::settings::default_clock_skew(),
        webhook: None,
        disabled: false,
        previous_key: None,
        shard: None,
        moving: None,
    }
}

async fn names_server(users: &[&str]) -> (TestApp, AdminClient) {
    let app = spawn_app_with(vec![names_app()]).await;
    let admin = AdminClient::new(&app.base, NAMES_APP, ADMIN, KEY);
    let r = admin.multiaccount_import(users).await.unwrap();
    assert_eq!(r.code(), 0, "{:?}", r.0);
    (app, admin)
}

/// The documents' names with a value each.
fn values() -> Vec<(&'static str, Value)> {
    vec![
        (TEST, json!("Custom Data1")),
        (TEST1, json!("My custom profile 1")),
        (TEST2, json!("8 bytes!")),
        (LEGACY, json!("webim 资料")),
        (LEGACY_INT, json!(18_446_744_073_709_551_615u64)),
    ]
}

fn items_of(body: &Value, user: usize) -> Vec<(String, Value)> {
    body["UserProfileItem"][user]["ProfileItem"]
        .as_array()
        .unwrap_or_else(|| panic!("ProfileItem: {body}"))
        .iter()
        .map(|i| (i["Tag"].as_str().unwrap().to_owned(), i["Value"].clone()))
        .collect()
}

fn owned(v: &[(&str, Value)]) -> Vec<(String, Value)> {
    v.iter()
        .map(|(t, v)| ((*t).to_owned(), v.clone()))
        .collect()
}

#[tokio::test]
async fn custom_names_with_digits_and_the_legacy_form_round_trip_through_portrait_set_and_get() {
    let (_app, admin) = names_server(&["alice"]).await;
    let values = values();
    let tags: Vec<&str> = values.iter().map(|(t, _)| *t).collect();
    // Each alone, then all at once.
    for (tag, value) in &values {
        admin
            .portrait_set("alice", &[(tag, value.clone())])
            .await
            .unwrap()
            .expect_ok();
        let r = admin.portrait_get(&["alice"], &[tag]).await.unwrap();
        assert_eq!(items_of(r.expect_ok(), 0), owned(&[(tag, value.clone())]));
    }
    let again: Vec<(&str, Value)> = values
        .iter()
        .map(|(t, v)| {
            (
                *t,
                if v.is_string() {
                    json!("again")
                } else {
                    json!(7)
                },
            )
        })
        .collect();
    admin
        .portrait_set("alice", &again)
        .await
        .unwrap()
        .expect_ok();
    let r = admin.portrait_get(&["alice"], &tags).await.unwrap();
    assert_eq!(items_of(r.expect_ok(), 0), owned(&again));
}

#[tokio::test]
async fn custom_names_of_the_documents_round_trip_through_the_client_api_and_portrait_import() {
    let (app, admin) = names_server(&["alice"]).await;
    let values = values();
    let user = portrait_client::user::UserClient::with_key(&app.base, NAMES_APP, "alice", KEY);
    user.update_my_profile(&values, None)
        .await
        .unwrap()
        .expect_ok();
    // With no TagList the client API returns every readable field; the custom ones in name order.
    let mine = user.get_my_profile(None).await.unwrap();
    let custom: Vec<(String, Value)> = items_of(mine.expect_ok(), 0)
        .into_iter()
        .filter(|(t, _)| t.starts_with("Tag_Profile_Custom_"))
        .collect();
    let mut expected = owned(&values);
    expected.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(custom, expected);

    let items: Vec<(&str, Value)> = values.iter().map(|(t, v)| (*t, v.clone())).collect();
    let r = admin.portrait_import(&[("bob", &items)]).await.unwrap();
    assert_eq!(r.expect_ok()["ResultItem"][0]["ResultCode"], 0, "{:?}", r.0);
    let tags: Vec<&str> = values.iter().map(|(t, _)| *t).collect();
    let r = admin.portrait_get(&["bob"], &tags).await.unwrap();
    assert_eq!(items_of(r.expect_ok(), 0), owned(&values));
}

#[tokio::test]
async fn names_outside_the_rule_or_undeclared_are_refused_with_40009_and_limits_still_hold() {
    let (app, admin) = names_server(&["alice"]).await;
    for tag in [
        "Tag_Profile_Custom_Abcdefghi",
        "Tag_Profile_Custom_Test_1",
        "Tag_Profile_Custom_1Test",
        "Tag_Profile_Custom_12345678901_Test",
        "Tag_Profile_Custom_",
        "Tag_Profile_custom_Test1",
        "Tag_Profile_Custom_Test3",
        "Tag_Profile_Custom_999999_Test",
    ] {
        let r = admin
            .portrait_set("alice", &[(tag, json!("x"))])
            .await
            .unwrap();
        r.expect_code(40009);
        assert!(r.info().contains(tag), "ErrorInfo names the tag: {:?}", r.0);
        admin
            .portrait_get(&["alice"], &[TEST1, tag])
            .await
            .unwrap()
            .expect_code(40009);
        let user = portrait_client::user::UserClient::with_key(&app.base, NAMES_APP, "alice", KEY);
        user.update_my_profile(&[(tag, json!("x"))], None)
            .await
            .unwrap()
            .expect_code(40009);
    }
    // The declared byte limit of a field with a digit in its name: 8 bytes fit, 9 do not.
    admin
        .portrait_set("alice", &[(TEST2, json!("12345678"))])
        .await
        .unwrap()
        .expect_ok();
    admin
        .portrait_set("alice", &[(TEST2, json!("123456789"))])
        .await
        .unwrap()
        .expect_code(40601);
    // The vendor's 500-byte limit for a legacy-form string field.
    admin
        .portrait_set("alice", &[(LEGACY, json!("a".repeat(501)))])
        .await
        .unwrap()
        .expect_code(40601);
    admin
        .portrait_set("alice", &[(LEGACY_INT, json!("7"))])
        .await
        .unwrap()
        .expect_code(40610);
    let r = admin
        .portrait_get(&["alice"], &[TEST2, LEGACY])
        .await
        .unwrap();
    assert_eq!(
        items_of(r.expect_ok(), 0),
        owned(&[(TEST2, json!("12345678"))]),
        "refused writes changed nothing"
    );
}

#[tokio::test]
async fn custom_names_of_the_documents_reach_websocket_subscribers() {
    use portrait_client::user::Frame;
    let wait = std::time::Duration::from_secs(5);
    let (app, admin) = names_server(&["alice", "bob"]).await;
    let bob = portrait_client::user::UserClient::with_key(&app.base, NAMES_APP, "bob", KEY);
    let mut socket = bob.connect(None, &["alice"]).await.unwrap();
    // Without `since`, the session sends what comes after the version in its `ready`: write only
    // after it (a write that lands before the session reads the head is already in that version).
    loop {
        match socket.frame(wait).await.expect("ready") {
            Frame::Ready { .. } => break,
            Frame::Subscribed { .. } | Frame::Pong => {}
            other => panic!("expected ready, got {other:?}"),
        }
    }
    let values = values();
    admin
        .portrait_set("alice", &values)
        .await
        .unwrap()
        .expect_ok();
    let event = loop {
        match socket.frame(wait).await.expect("a frame") {
            Frame::Profile(ev) => break ev,
            Frame::Ready { .. } | Frame::Subscribed { .. } | Frame::Synced { .. } | Frame::Pong => {
            }
            other => panic!("expected a profile event, got {other:?}"),
        }
    };
    assert_eq!(event.account, "alice");
    let items: Vec<Value> = values
        .iter()
        .map(|(t, v)| json!({"Tag": t, "Value": v}))
        .collect();
    assert_eq!(
        event.items, items,
        "every field, the legacy-form ones included"
    );
}
