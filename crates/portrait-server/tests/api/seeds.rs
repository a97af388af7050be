//! The REST examples of the two vendor REST documents, run as written against the real server.
//!
//! `tests/seeds/002_portrait_set.txt` and `tests/seeds/004_portrait_get.txt` are copies of the
//! examples of `shared/seeds/002_*.txt` (`portrait_set`) and `shared/seeds/004_*.txt`
//! (`portrait_get`), each file naming its source. Every request body is sent byte for byte, to the
//! document's own request URL with only the host and `usersig=xxx` replaced, for the app the URL
//! names (`sdkappid=88888888`, `identifier=admin`) configured with the custom fields the vendor
//! documents use, after importing the accounts the examples name. Each answer is compared with
//! the document's response example: the same keys and JSON types, and the same values wherever
//! Portrait holds the same data.

use portrait_client::AdminClient;
use portrait_server::settings::{AppConfig, CustomFieldConfig, RateLimitConfig, Who};
use reqwest::Method;
use secrecy::SecretString;
use serde_json::{json, Value};

use crate::helpers::*;

/// The app of the documents' request URLs.
const DOC_APP: u64 = 88_888_888;
/// The admin of the documents' request URLs.
const DOC_ADMIN: &str = "admin";
/// Where the documents' request URLs point.
const DOC_HOST: &str = "https://console.tim.qq.com/";

/// One example of a copied document.
struct Example {
    /// `url`, `request` or `response`.
    kind: String,
    /// Its number within its kind.
    n: u32,
    /// The document's section, for messages.
    section: String,
    /// The example, exactly as the document writes it.
    text: String,
}

/// The examples of `tests/seeds/<file>` in order.
fn examples(file: &str) -> Vec<Example> {
    let path = format!("{}/tests/seeds/{file}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let mut out: Vec<Example> = Vec::new();
    for line in text.lines() {
        if let Some(head) = line.strip_prefix("@@ ") {
            let (id, section) = head.split_once(": ").expect("@@ <kind> <n>: <section>");
            let (kind, n) = id.split_once(' ').expect("@@ <kind> <n>");
            out.push(Example {
                kind: kind.to_owned(),
                n: n.parse().expect("example number"),
                section: section.to_owned(),
                text: String::new(),
            });
        } else if let Some(ex) = out.last_mut() {
            ex.text.push_str(line);
            ex.text.push('\n');
        } else {
            assert!(line.starts_with('#'), "{path}: header lines start with #");
        }
    }
    out
}

fn find<'a>(all: &'a [Example], kind: &str, n: u32) -> &'a Example {
    all.iter()
        .find(|e| e.kind == kind && e.n == n)
        .unwrap_or_else(|| panic!("no {kind} {n}"))
}

fn parse(ex: &Example) -> Value {
    serde_json::from_str(&ex.text)
        .unwrap_or_else(|e| panic!("{} is not JSON ({e}): {}", ex.section, ex.text))
}

/// The app the documents' URLs name, with every custom field the vendor documents use (seed 000:
/// `Test1`, `Test2`; seed 003: `888888_Test`; seed 004: `Test`).
fn doc_app() -> AppConfig {
    let field = |name: &str| CustomFieldConfig {
        name: name.into(),
        kind: serde_json::from_value(json!("string")).unwrap(),
        max_length: 500,
        read: vec![Who::User, Who::Admin],
        write: vec![Who::User, Who::Admin],
        hidden: false,
    };
    AppConfig {
        sdkappid: DOC_APP,
        key: SecretString::from(KEY),
        admins: vec![DOC_ADMIN.into()],
        custom_fields: [
            "Tag_Profile_Custom_Test",
            "Tag_Profile_Custom_Test1",
            "Tag_Profile_Custom_Test2",
            "Tag_Profile_Custom_888888_Test",
        ]
        .into_iter()
        .map(field)
        .collect(),
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

/// The document's request URL pointed at `app`, with a real UserSig for `xxx`.
fn doc_url(app: &TestApp, url: &Example) -> String {
    let rest = url
        .text
        .trim()
        .strip_prefix(DOC_HOST)
        .unwrap_or_else(|| panic!("{}: {}", url.section, url.text));
    assert!(rest.contains("usersig=xxx"), "{rest}");
    let rest = rest.replace(
        "usersig=xxx",
        &format!("usersig={}", sig(DOC_APP, KEY, DOC_ADMIN)),
    );
    format!("{}/{rest}", app.base)
}

/// Sends `body` as written to `url`.
async fn send(app: &TestApp, url: &str, body: &str) -> Value {
    app.send(Method::POST, url, Some("application/json"), body.to_owned())
        .await
}

/// The server, and an admin client of the documents' app.
async fn doc_server(accounts: &[&str]) -> (TestApp, AdminClient) {
    let app = spawn_app_with(vec![doc_app()]).await;
    let admin = AdminClient::new(&app.base, DOC_APP, DOC_ADMIN, KEY);
    let r = admin.multiaccount_import(accounts).await.unwrap();
    assert_eq!(r.code(), 0, "{:?}", r.0);
    (app, admin)
}

/// Asserts that `got` has exactly the keys of `doc`, each with the same JSON type, recursively
/// (arrays of the same length element by element, others every element against the document's
/// first one).
#[track_caller]
fn assert_same_shape(doc: &Value, got: &Value, at: &str) {
    let kind = |v: &Value| match v {
        Value::Null => "null",
        Value::Bool(_) => "bool",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    };
    assert_eq!(kind(doc), kind(got), "{at}: {got}");
    match (doc, got) {
        (Value::Object(d), Value::Object(g)) => {
            let dk: std::collections::BTreeSet<&String> = d.keys().collect();
            let gk: std::collections::BTreeSet<&String> = g.keys().collect();
            assert_eq!(dk, gk, "{at}: keys");
            for (k, v) in d {
                assert_same_shape(v, &g[k], &format!("{at}.{k}"));
            }
        }
        (Value::Array(d), Value::Array(g)) if d.len() == g.len() => {
            for (i, (dv, gv)) in d.iter().zip(g).enumerate() {
                assert_same_shape(dv, gv, &format!("{at}[{i}]"));
            }
        }
        (Value::Array(d), Value::Array(g)) => {
            if let Some(first) = d.first() {
                for (i, v) in g.iter().enumerate() {
                    assert_same_shape(first, v, &format!("{at}[{i}]"));
                }
            }
        }
        _ => {}
    }
}

// ---- 002: portrait_set ---------------------------------------------------------------------------

#[tokio::test]
async fn the_portrait_set_request_example_runs_as_written_and_sets_the_nick() {
    let doc = examples("002_portrait_set.txt");
    let request = find(&doc, "request", 1);
    let body = parse(request);
    let user = body["From_Account"].as_str().unwrap();
    let (app, admin) = doc_server(&[user]).await;

    let got = send(&app, &doc_url(&app, find(&doc, "url", 1)), &request.text).await;
    got.expect_ok();
    // The response example's keys and types (its values are a failure's; see the next test).
    assert_same_shape(&parse(find(&doc, "response", 1)), &got, "response");
    assert_eq!(got["ErrorDisplay"], "");

    let item = &body["ProfileItem"][0];
    let tag = item["Tag"].as_str().unwrap();
    let read = admin.portrait_get(&[user], &[tag]).await.unwrap();
    let read = read.expect_ok();
    assert_eq!(
        read["UserProfileItem"][0]["ProfileItem"],
        json!([{"Tag": tag, "Value": item["Value"]}]),
        "{read}"
    );
}

#[tokio::test]
async fn the_portrait_set_response_example_answers_bodies_that_do_not_decode() {
    let doc = examples("002_portrait_set.txt");
    let request = parse(find(&doc, "request", 1));
    let response = parse(find(&doc, "response", 1));
    let user = request["From_Account"].as_str().unwrap().to_owned();
    let (app, admin) = doc_server(&[&user]).await;
    let url = doc_url(&app, find(&doc, "url", 1));

    // The documented request with one thing changed so that it no longer decodes.
    let item = request["ProfileItem"][0].clone();
    let mut tag_number = item.clone();
    tag_number["Tag"] = json!(40001);
    let variants = [
        (
            "ProfileItem as an object",
            json!({"From_Account": user, "ProfileItem": item}),
        ),
        (
            "a Tag that is a number",
            json!({"From_Account": user, "ProfileItem": [tag_number]}),
        ),
        (
            "ProfileItem as a string",
            json!({"From_Account": user, "ProfileItem": "x"}),
        ),
        (
            "From_Account as a number",
            json!({"From_Account": 1, "ProfileItem": [item]}),
        ),
        ("From_Account missing", json!({"ProfileItem": [item]})),
        ("ProfileItem missing", json!({"From_Account": user})),
        (
            "an item without Value",
            json!({"From_Account": user, "ProfileItem": [{"Tag": item["Tag"]}]}),
        ),
        ("an array, not an object", json!([request.clone()])),
    ];
    let name = response["ErrorInfo"].as_str().unwrap();
    for (what, body) in variants {
        let got = send(&app, &url, &body.to_string()).await;
        assert_same_shape(&response, &got, what);
        assert_eq!(
            got["ActionStatus"], response["ActionStatus"],
            "{what}: {got}"
        );
        assert_eq!(got["ErrorCode"], response["ErrorCode"], "{what}: {got}");
        assert_eq!(
            got["ErrorDisplay"], response["ErrorDisplay"],
            "{what}: {got}"
        );
        let info = got["ErrorInfo"].as_str().unwrap();
        assert!(
            info.starts_with(&format!("{name}: ")) && info.len() > name.len() + 2,
            "{what}: ErrorInfo is the vendor's name, then why: {got}"
        );
    }
    // Nothing was written.
    let tag = item["Tag"].as_str().unwrap();
    let read = admin.portrait_get(&[&user], &[tag]).await.unwrap();
    assert_eq!(
        read.expect_ok()["UserProfileItem"][0]["ProfileItem"][0]["Value"],
        ""
    );
}

// ---- 004: portrait_get ---------------------------------------------------------------------------

#[tokio::test]
async fn the_portrait_get_examples_run_as_written_and_answer_the_documented_responses() {
    let doc = examples("004_portrait_get.txt");
    // Response 4 is the fullest: every profile the other examples return, and one failed user.
    let full = parse(find(&doc, "response", 4));
    let users = full["UserProfileItem"].as_array().unwrap();
    let ok: Vec<&Value> = users.iter().filter(|u| u["ResultCode"] == 0).collect();
    let failed: Vec<&Value> = users.iter().filter(|u| u["ResultCode"] != 0).collect();
    let names: Vec<&str> = ok
        .iter()
        .map(|u| u["To_Account"].as_str().unwrap())
        .collect();
    let (app, admin) = doc_server(&names).await;
    // The documented profiles, written from the document itself.
    for u in &ok {
        let items: Vec<(&str, Value)> = u["ProfileItem"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| (i["Tag"].as_str().unwrap(), i["Value"].clone()))
            .collect();
        admin
            .portrait_set(u["To_Account"].as_str().unwrap(), &items)
            .await
            .unwrap()
            .expect_ok();
    }
    let url = doc_url(&app, find(&doc, "url", 1));

    let requests: Vec<&Example> = doc.iter().filter(|e| e.kind == "request").collect();
    assert_eq!(requests.len(), 4, "the document has four request examples");
    for request in requests {
        let response = find(&doc, "response", request.n);
        let mut expected = parse(response);
        let got = send(&app, &url, &request.text).await;
        assert_same_shape(&expected, &got, &response.section);
        // The documented failure of response 4 is the vendor's internal read error for `id4`
        // (40006 Err_Profile_PortraitGet_Read_Custom_Data_Fail). Portrait has no such per-user
        // failure; `id4`, never imported, fails as an unknown account — same shape, same
        // `Fail_Account`, its own code and name.
        for f in &failed {
            let account = &f["To_Account"];
            let Some(i) = expected["UserProfileItem"]
                .as_array()
                .unwrap()
                .iter()
                .position(|u| &u["To_Account"] == account)
            else {
                continue;
            };
            let entry = &got["UserProfileItem"][i];
            assert_eq!(&entry["To_Account"], account, "{got}");
            assert_eq!(entry["ResultCode"], 40003, "{got}");
            assert!(
                entry["ResultInfo"]
                    .as_str()
                    .unwrap()
                    .starts_with("Err_Profile_Account_Not_Exist: "),
                "{got}"
            );
            expected["UserProfileItem"][i] = entry.clone();
        }
        assert_eq!(got, expected, "{} / {}", request.section, response.section);
    }
    // The documented values are also what the client API returns for the same accounts.
    let doc_custom = &ok[0]["ProfileItem"][3];
    assert_eq!(doc_custom["Tag"], "Tag_Profile_Custom_Test");
    let user = app_user(&app, names[0]);
    let mine = user
        .get_my_profile(Some(&["Tag_Profile_Custom_Test"]))
        .await
        .unwrap();
    assert_eq!(
        mine.expect_ok()["UserProfileItem"][0]["ProfileItem"],
        json!([doc_custom]),
        "{:?}",
        mine.0
    );
}

/// A user client of the documents' app.
fn app_user(app: &TestApp, user: &str) -> portrait_client::user::UserClient {
    portrait_client::user::UserClient::with_key(&app.base, DOC_APP, user, KEY)
}
