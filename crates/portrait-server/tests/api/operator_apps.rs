//! The operator API's apps and custom fields (`/admin/v1/apps…`): authentication, and apps
//! created and changed at run time used through `/v4` and `/v1` without a restart.

use std::time::Duration;

use portrait_client::user::{Frame, Incoming};
use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::helpers::*;

/// A call of the operator API with `token` (none: no `Authorization`); the status and JSON body.
pub async fn op_call(
    app: &TestApp,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: Option<Value>,
) -> (StatusCode, Value) {
    let mut req = app
        .http
        .request(method.parse().unwrap(), format!("{}{path}", app.base));
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    if let Some(b) = body {
        req = req.json(&b);
    }
    let resp = req.send().await.unwrap();
    let status = resp.status();
    let text = resp.text().await.unwrap();
    let json = serde_json::from_str(&text).unwrap_or(Value::String(text));
    (status, json)
}

/// Asserts that an operator call with the right token fails with `status` and `code`.
pub async fn expect_error(
    app: &TestApp,
    method: &str,
    path: &str,
    body: Option<Value>,
    status: StatusCode,
    code: &str,
) {
    let (got, body) = op(app, method, path, body).await;
    assert_eq!(
        (got, body["error"]["code"].as_str()),
        (status, Some(code)),
        "{method} {path}: {body}"
    );
}

/// An operator call with the right token.
pub async fn op(
    app: &TestApp,
    method: &str,
    path: &str,
    body: Option<Value>,
) -> (StatusCode, Value) {
    op_call(app, method, path, Some(OPERATOR_TOKEN), body).await
}

#[tokio::test]
async fn operator_api_is_off_without_a_token_and_every_path_answers_404() {
    let app = spawn_app().await;
    for path in [
        "/admin/v1/apps",
        "/admin/v1/apps/1400000001",
        "/admin/v1/nothing",
        "/admin/v1",
    ] {
        let (status, body) = op_call(&app, "GET", path, Some(OPERATOR_TOKEN), None).await;
        assert_eq!(status, 404, "{path}: {body}");
        assert_eq!(body["error"]["code"], "not_found", "{path}: {body}");
    }
    let (status, body) = op_call(&app, "POST", "/admin/v1/apps", None, Some(json!({}))).await;
    assert_eq!(
        (status, &body["error"]["code"]),
        (StatusCode::NOT_FOUND, &json!("not_found"))
    );
}

#[tokio::test]
async fn operator_api_refuses_a_missing_or_wrong_token_and_a_usersig() {
    let app = spawn_operator().await;
    for token in [None, Some("wrong"), Some(""), Some(&OPERATOR_TOKEN[..10])] {
        let (status, body) = op_call(&app, "GET", "/admin/v1/apps", token, None).await;
        assert_eq!(status, 401, "{token:?}: {body}");
        assert_eq!(body["error"]["code"], "unauthorized");
        assert!(body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("Bearer"));
    }
    // An app admin's UserSig is no operator token, in the query or as the bearer.
    let sig = sig(APP, KEY, ADMIN);
    let (status, _) = op_call(
        &app,
        "GET",
        &format!("/admin/v1/apps?sdkappid={APP}&identifier={ADMIN}&usersig={sig}"),
        None,
        None,
    )
    .await;
    assert_eq!(status, 401);
    let (status, _) = op_call(&app, "GET", "/admin/v1/apps", Some(&sig), None).await;
    assert_eq!(status, 401);
    // Unknown paths are not revealed before signing in.
    let (status, _) = op_call(&app, "GET", "/admin/v1/secret", None, None).await;
    assert_eq!(status, 401);
    expect_error(
        &app,
        "GET",
        "/admin/v1/secret",
        None,
        StatusCode::NOT_FOUND,
        "not_found",
    )
    .await;
    let (status, body) = op(&app, "DELETE", "/admin/v1/apps", None).await;
    assert_eq!(status, 405, "{body}");
    assert_eq!(body["error"]["code"], "method_not_allowed");
}

#[tokio::test]
async fn operator_api_refuses_unchecked_after_more_than_ten_failures_in_a_second() {
    let app = spawn_operator().await;
    let mut statuses = Vec::new();
    for _ in 0..12 {
        statuses.push(
            op_call(&app, "GET", "/admin/v1/apps", Some("guess"), None)
                .await
                .0,
        );
    }
    assert_eq!(&statuses[..10], &[StatusCode::UNAUTHORIZED; 10]);
    assert_eq!(&statuses[10..], &[StatusCode::TOO_MANY_REQUESTS; 2]);
    // Even the right token is not checked during the rest of that second…
    let (status, body) = op(&app, "GET", "/admin/v1/apps", None).await;
    assert_eq!(status, 429, "{body}");
    assert_eq!(body["error"]["code"], "too_many_attempts");
    // …and works again after it.
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let (status, _) = op(&app, "GET", "/admin/v1/apps", None).await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn failed_sign_ins_from_one_address_do_not_lock_out_another() {
    let mut server = server_settings();
    server.trusted_proxies = vec!["127.0.0.1".into()];
    let app = spawn_operator_with_server(server).await;
    let call = |from: &'static str, token: &'static str| {
        app.http
            .get(format!("{}/admin/v1/apps", app.base))
            .header("x-forwarded-for", from)
            .bearer_auth(token)
            .send()
    };
    let mut statuses = Vec::new();
    for _ in 0..11 {
        statuses.push(call("198.51.100.9", "guess").await.unwrap().status());
    }
    assert_eq!(&statuses[..10], &[StatusCode::UNAUTHORIZED; 10]);
    assert_eq!(statuses[10], StatusCode::TOO_MANY_REQUESTS);
    // The guesser is refused even with the right token for the rest of the second…
    let guesser = call("198.51.100.9", OPERATOR_TOKEN).await.unwrap().status();
    assert_eq!(guesser, StatusCode::TOO_MANY_REQUESTS);
    // …while the operator, calling from elsewhere, signs in.
    let operator = call("203.0.113.5", OPERATOR_TOKEN).await.unwrap();
    assert_eq!(operator.status(), StatusCode::OK);
}

#[tokio::test]
async fn operator_lists_and_shows_the_apps_of_the_file() {
    let app = spawn_operator().await;
    let (status, body) = op(&app, "GET", "/admin/v1/apps", None).await;
    assert_eq!(status, 200, "{body}");
    let apps = body["apps"].as_array().unwrap();
    let ids: Vec<u64> = apps
        .iter()
        .map(|a| a["sdkappid"].as_u64().unwrap())
        .collect();
    assert_eq!(ids, [APP, OTHER_APP]);
    assert!(apps
        .iter()
        .all(|a| a["source"] == "file" && a["revision"] == 0));
    assert!(
        !body.to_string().contains(KEY),
        "keys are never in an app's view"
    );
    let (status, one) = op(&app, "GET", &format!("/admin/v1/apps/{APP}"), None).await;
    assert_eq!(status, 200);
    assert_eq!(one, apps[0]);
    assert_eq!(one["admins"], json!([ADMIN, "admin2"]));
    assert_eq!(one["disabled"], false);
    assert_eq!(one["custom_fields"][0]["name"], HOBBY);
    assert_eq!(one["custom_fields"][0]["max_length"], 20);
    assert_eq!(one["custom_fields"][1]["write"], json!(["admin"]));
    let (status, body) = op(&app, "GET", "/admin/v1/apps/1400009999", None).await;
    assert_eq!(
        (status, &body["error"]["code"]),
        (StatusCode::NOT_FOUND, &json!("app_not_found"))
    );
    let (status, body) = op(&app, "GET", "/admin/v1/apps/abc", None).await;
    assert_eq!(
        (status, &body["error"]["code"]),
        (StatusCode::BAD_REQUEST, &json!("invalid"))
    );
    let (status, body) = op(&app, "GET", &format!("/admin/v1/apps/{APP}/fields"), None).await;
    assert_eq!(status, 200);
    assert_eq!(body["fields"], one["custom_fields"]);
}

/// The value of `tag` in a `portrait_get` answer for its first account.
pub fn value_of(reply: &Value, tag: &str) -> Option<Value> {
    reply["UserProfileItem"][0]["ProfileItem"]
        .as_array()?
        .iter()
        .find(|i| i["Tag"] == tag)
        .map(|i| i["Value"].clone())
}

const FIELD: &str = "Tag_Profile_Custom_Level2";

/// Creates an app with a string field [`FIELD`] through the operator API; its SDKAppID and key.
pub async fn create_app_with_field(app: &TestApp, body: Value) -> (u64, String) {
    let (status, created) = op(app, "POST", "/admin/v1/apps", Some(body)).await;
    assert_eq!(status, 201, "{created}");
    assert_eq!(created["app"]["source"], "store");
    let id = created["app"]["sdkappid"].as_u64().unwrap();
    let key = created["key"].as_str().unwrap().to_owned();
    let (status, field) = op(
        app,
        "POST",
        &format!("/admin/v1/apps/{id}/fields"),
        Some(json!({"name": FIELD, "type": "string", "max_length": 16})),
    )
    .await;
    assert_eq!(status, 201, "{field}");
    assert_eq!(
        field,
        json!({"name": FIELD, "type": "string", "max_length": 16,
        "read": ["user", "admin"], "write": ["user", "admin"], "hidden": false})
    );
    (id, key)
}

#[tokio::test]
async fn an_app_and_a_field_created_through_the_api_work_at_once_without_restart() {
    let app = spawn_operator().await;
    let (id, key) = create_app_with_field(&app, json!({})).await;
    assert!((1_400_000_000..2_000_000_000).contains(&id));
    assert_eq!(key.len(), 64);
    let admin = portrait_client::AdminClient::new(&app.base, id, "administrator", &key);
    let r = admin
        .account_import("alice", Some("Alice"), None)
        .await
        .unwrap();
    assert_eq!(r.code(), 0, "{:?}", r.0);
    let r = admin
        .portrait_set("alice", &[(FIELD, json!("gold"))])
        .await
        .unwrap();
    assert_eq!(r.code(), 0, "{:?}", r.0);
    let r = admin
        .portrait_get(&["alice"], &[FIELD, NICK])
        .await
        .unwrap();
    assert_eq!(value_of(&r.0, FIELD), Some(json!("gold")), "{:?}", r.0);
    assert_eq!(value_of(&r.0, NICK), Some(json!("Alice")));
    // The field's limit holds, and a user signs in with a UserSig of the new key.
    let r = admin
        .portrait_set("alice", &[(FIELD, json!("x".repeat(17)))])
        .await
        .unwrap();
    assert_ne!(r.code(), 0);
    let user = portrait_client::user::UserClient::with_key(&app.base, id, "alice", &key);
    let r = user.get_my_profile(Some(&[FIELD])).await.unwrap();
    assert_eq!(r.code(), 0, "{:?}", r.0);
    // The key is shown by GET …/key; a second app with the same SDKAppID is refused.
    let (status, k) = op(&app, "GET", &format!("/admin/v1/apps/{id}/key"), None).await;
    assert_eq!(
        (status, k["key"].as_str()),
        (StatusCode::OK, Some(key.as_str()))
    );
    for taken in [id, APP] {
        let body = Some(json!({ "sdkappid": taken }));
        let conflict = StatusCode::CONFLICT;
        expect_error(&app, "POST", "/admin/v1/apps", body, conflict, "app_exists").await;
    }
    expect_error(
        &app,
        "POST",
        &format!("/admin/v1/apps/{id}/fields"),
        Some(json!({"name": FIELD, "type": "integer"})),
        StatusCode::CONFLICT,
        "field_exists",
    )
    .await;
}

#[tokio::test]
async fn bad_operator_input_is_a_clear_400() {
    let app = spawn_operator().await;
    let path = format!("/admin/v1/apps/{APP}/fields");
    for (path, body, says) in [
        ("/admin/v1/apps", json!({"admins": []}), "admin"),
        (
            "/admin/v1/apps",
            json!({"admins": ["bad id with spaces and way too long…".repeat(5)]}),
            "admin",
        ),
        ("/admin/v1/apps", json!({"sdkappid": "x"}), "expected u64"),
        (
            "/admin/v1/apps",
            json!({"webhook": {"url": "ftp://x/"}}),
            "webhook",
        ),
        ("/admin/v1/apps", json!({"unknown": 1}), "unknown"),
        (
            path.as_str(),
            json!({"name": "Tag_Profile_Custom_TooLongName", "type": "string"}),
            "Tag_Profile_Custom_TooLongName",
        ),
        (
            path.as_str(),
            json!({"name": "Tag_Profile_Custom_Ok", "type": "float"}),
            "float",
        ),
        (
            path.as_str(),
            json!({"name": "Tag_Profile_Custom_Ok", "type": "string", "max_length": 501}),
            "Tag_Profile_Custom_Ok",
        ),
        (
            path.as_str(),
            json!({"name": "Tag_Profile_Custom_Ok", "type": "string", "read": []}),
            "read",
        ),
    ] {
        let (status, body) = op(&app, "POST", path, Some(body.clone())).await;
        assert_eq!(status, 400, "{path} {body}");
        assert_eq!(body["error"]["code"], "invalid");
        let msg = body["error"]["message"].as_str().unwrap();
        assert!(msg.contains(says), "{path}: {msg:?} should name {says:?}");
    }
    let resp = app
        .http
        .post(format!("{}/admin/v1/apps", app.base))
        .bearer_auth(OPERATOR_TOKEN)
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
}

#[tokio::test]
async fn a_patch_with_a_stale_if_match_is_refused_with_412() {
    let app = spawn_operator().await;
    let (id, _) = create_app_with_field(&app, json!({})).await;
    let (_, view) = op(&app, "GET", &format!("/admin/v1/apps/{id}"), None).await;
    let rev = view["revision"].as_u64().unwrap();
    assert!(rev > 0);
    let patch = |if_match: String, words: Value| {
        let app = &app;
        async move {
            let resp = app
                .http
                .patch(format!("{}/admin/v1/apps/{id}", app.base))
                .bearer_auth(OPERATOR_TOKEN)
                .header("If-Match", if_match)
                .json(&json!({ "sensitive_words": words }))
                .send()
                .await
                .unwrap();
            (resp.status(), resp.json::<Value>().await.unwrap())
        }
    };
    let (status, changed) = patch(rev.to_string(), json!(["one"])).await;
    assert_eq!(status, 200, "{changed}");
    assert!(changed["revision"].as_u64().unwrap() > rev);
    assert_eq!(changed["sensitive_words"], json!(["one"]));
    let (status, body) = patch(rev.to_string(), json!(["two"])).await;
    assert_eq!(status, 412, "{body}");
    assert_eq!(body["error"]["code"], "revision_mismatch");
    let (_, now) = op(&app, "GET", &format!("/admin/v1/apps/{id}"), None).await;
    assert_eq!(
        now["sensitive_words"],
        json!(["one"]),
        "the stale change was not made"
    );
    let (status, _) = patch("abc".into(), json!([])).await;
    assert_eq!(status, 400);
}

#[tokio::test]
async fn after_a_key_rotation_the_old_key_verifies_during_the_grace_only() {
    let app = spawn_operator().await;
    let (id, old) = create_app_with_field(&app, json!({})).await;
    let with = |key: &str| portrait_client::AdminClient::new(&app.base, id, "administrator", key);
    let (status, rotated) = op(
        &app,
        "POST",
        &format!("/admin/v1/apps/{id}/rotate-key"),
        Some(json!({"grace_secs": 2})),
    )
    .await;
    assert_eq!(status, 200, "{rotated}");
    let new = rotated["key"].as_str().unwrap().to_owned();
    assert_ne!(new, old);
    assert!(rotated["previous_key_valid_until"].as_u64().unwrap() > now());
    assert_eq!(
        with(&new)
            .account_check(&["administrator"])
            .await
            .unwrap()
            .code(),
        0
    );
    assert_eq!(
        with(&old)
            .account_check(&["administrator"])
            .await
            .unwrap()
            .code(),
        0,
        "old key in its grace"
    );
    tokio::time::sleep(std::time::Duration::from_millis(3100)).await;
    let r = with(&old).account_check(&["administrator"]).await.unwrap();
    assert_eq!(r.code(), 70009, "old key after its grace: {:?}", r.0);
    assert_eq!(
        with(&new)
            .account_check(&["administrator"])
            .await
            .unwrap()
            .code(),
        0
    );
    // Grace 0: the old key stops at once.
    let (_, again) = op(
        &app,
        "POST",
        &format!("/admin/v1/apps/{id}/rotate-key"),
        Some(json!({"key": "chosen-key", "grace_secs": 0})),
    )
    .await;
    assert_eq!(again["key"], "chosen-key");
    assert_eq!(again["previous_key_valid_until"], Value::Null);
    assert_eq!(
        with(&new)
            .account_check(&["administrator"])
            .await
            .unwrap()
            .code(),
        70009
    );
    assert_eq!(
        with("chosen-key")
            .account_check(&["administrator"])
            .await
            .unwrap()
            .code(),
        0
    );
}

#[tokio::test]
async fn a_disabled_app_refuses_every_call_like_an_unknown_one_until_enabled() {
    let app = spawn_operator().await;
    app.import(&["alice"]).await;
    let mut socket = app.user("alice").connect(None, &[]).await.unwrap();
    assert!(matches!(
        socket.frame(Duration::from_secs(5)).await.unwrap(),
        Frame::Ready { .. }
    ));
    let (status, view) = op(
        &app,
        "PATCH",
        &format!("/admin/v1/apps/{APP}"),
        Some(json!({"disabled": true})),
    )
    .await;
    assert_eq!(status, 200, "{view}");
    assert_eq!(view["disabled"], true);
    // Its open WebSockets are closed with the same code.
    assert!(matches!(
        socket.frame(Duration::from_secs(5)).await.unwrap(),
        Frame::Error { code: 70020, .. }
    ));
    assert!(matches!(
        socket.next().await.unwrap(),
        Some(Incoming::Closed(4002, _))
    ));
    let r = app.admin.portrait_get(&["alice"], &[NICK]).await.unwrap();
    assert_eq!(r.code(), 70020, "{:?}", r.0);
    let r = app.user("alice").get_my_profile(None).await.unwrap();
    assert_eq!(r.code(), 70020, "{:?}", r.0);
    // The other app is untouched; the operator still sees the disabled one.
    assert_eq!(
        app.other
            .account_check(&["administrator"])
            .await
            .unwrap()
            .code(),
        0
    );
    let (status, _) = op(&app, "GET", &format!("/admin/v1/apps/{APP}"), None).await;
    assert_eq!(status, 200);
    let (_, view) = op(
        &app,
        "PATCH",
        &format!("/admin/v1/apps/{APP}"),
        Some(json!({"disabled": false})),
    )
    .await;
    assert_eq!(view["disabled"], false);
    let r = app.admin.portrait_get(&["alice"], &[NICK]).await.unwrap();
    assert_eq!(r.code(), 0, "{:?}", r.0);
}

#[tokio::test]
async fn a_hidden_field_is_refused_like_an_unknown_one_and_its_value_returns_when_shown() {
    let app = spawn_operator().await;
    app.import(&["alice"]).await;
    let r = app
        .admin
        .portrait_set("alice", &[(HOBBY, json!("chess"))])
        .await
        .unwrap();
    assert_eq!(r.code(), 0);
    let path = format!("/admin/v1/apps/{APP}/fields/{HOBBY}");
    let hide = |hidden: bool| op(&app, "PATCH", &path, Some(json!({ "hidden": hidden })));
    let (status, field) = hide(true).await;
    assert_eq!(status, 200, "{field}");
    assert_eq!(field["hidden"], true);
    const UNKNOWN: &str = "Tag_Profile_Custom_Nope";
    let set_hidden = app
        .admin
        .portrait_set("alice", &[(HOBBY, json!("go"))])
        .await
        .unwrap();
    let set_unknown = app
        .admin
        .portrait_set("alice", &[(UNKNOWN, json!("go"))])
        .await
        .unwrap();
    assert_ne!(set_hidden.code(), 0);
    assert_eq!(
        set_hidden.code(),
        set_unknown.code(),
        "{:?} vs {:?}",
        set_hidden.0,
        set_unknown.0
    );
    let get_hidden = app.admin.portrait_get(&["alice"], &[HOBBY]).await.unwrap();
    let get_unknown = app
        .admin
        .portrait_get(&["alice"], &[UNKNOWN])
        .await
        .unwrap();
    assert_eq!(
        get_hidden.code(),
        get_unknown.code(),
        "{:?} vs {:?}",
        get_hidden.0,
        get_unknown.0
    );
    let mine = app.user("alice").get_my_profile(None).await.unwrap();
    assert_eq!(value_of(&mine.0, HOBBY), None, "{:?}", mine.0);
    // Shown again: the stored value is back.
    let (_, field) = hide(false).await;
    assert_eq!(field["hidden"], false);
    let r = app.admin.portrait_get(&["alice"], &[HOBBY]).await.unwrap();
    assert_eq!(value_of(&r.0, HOBBY), Some(json!("chess")), "{:?}", r.0);
    expect_error(
        &app,
        "PATCH",
        &format!("/admin/v1/apps/{APP}/fields/{UNKNOWN}"),
        Some(json!({"hidden": true})),
        StatusCode::NOT_FOUND,
        "field_not_found",
    )
    .await;
}

#[tokio::test]
async fn a_file_app_is_adopted_into_the_store_on_its_first_change() {
    let app = spawn_operator().await;
    let (_, before) = op(&app, "GET", &format!("/admin/v1/apps/{APP}"), None).await;
    assert_eq!(
        (before["source"].as_str(), before["revision"].as_u64()),
        (Some("file"), Some(0))
    );
    let (status, after) = op(
        &app,
        "PATCH",
        &format!("/admin/v1/apps/{APP}"),
        Some(json!({"sensitive_words": ["zzz"]})),
    )
    .await;
    assert_eq!(status, 200, "{after}");
    assert_eq!(after["source"], "store");
    assert!(after["revision"].as_u64().unwrap() > 0);
    assert_eq!(after["sensitive_words"], json!(["zzz"]));
    // Everything else is the file's, kept.
    assert_eq!(after["admins"], before["admins"]);
    assert_eq!(after["custom_fields"], before["custom_fields"]);
    let records = app.store.app_records(0).await.unwrap();
    assert_eq!(records.iter().filter(|r| r.sdkappid == APP).count(), 1);
    // The change applies: the new sensitive word is refused.
    word_is_refused(&app, "zzz").await;
}

/// Asserts that a nickname holding `word` is refused as a sensitive word (40005) in [`APP`].
async fn word_is_refused(app: &TestApp, word: &str) {
    app.import(&["alice"]).await;
    let nick = json!(format!("{word} top"));
    let r = app
        .admin
        .portrait_set("alice", &[(NICK, nick)])
        .await
        .unwrap();
    assert_eq!(r.code(), 40005, "{:?}", r.0);
}

#[tokio::test]
async fn at_start_an_app_record_in_the_store_wins_over_the_file() {
    let (store, _dir) = portrait_store::testkit::fresh_store_from_env().await;
    let mut first = spawn_operator_on(store.clone(), vec![test_app()]).await;
    let path = format!("/admin/v1/apps/{APP}");
    let words = json!({"sensitive_words": ["fromstore"]});
    let (status, changed) = op(&first, "PATCH", &path, Some(words)).await;
    assert_eq!(status, 200, "{changed}");
    first.stop().await;
    // Restarted with the same file: the store's record is served.
    let second = spawn_operator_on(store, vec![test_app()]).await;
    let (_, view) = op(&second, "GET", &path, None).await;
    assert_eq!(view["source"], "store");
    assert_eq!(view["revision"], changed["revision"]);
    assert_eq!(view["sensitive_words"], json!(["fromstore"]));
    word_is_refused(&second, "fromstore").await;
}

#[tokio::test]
async fn concurrent_changes_through_two_nodes_of_one_store_are_all_kept() {
    let (store, _dir) = portrait_store::testkit::fresh_store_from_env().await;
    let a = spawn_operator_on(store.clone(), vec![test_app()]).await;
    let b = spawn_operator_on(store, vec![test_app()]).await;
    let path = format!("/admin/v1/apps/{APP}/fields");
    let adds = (0..8).map(|i| {
        let node = if i % 2 == 0 { &a } else { &b };
        let field = json!({"name": format!("Tag_Profile_Custom_C{i}"), "type": "integer"});
        op(node, "POST", &path, Some(field))
    });
    for (status, body) in futures_util::future::join_all(adds).await {
        assert_eq!(status, 201, "{body}");
    }
    // Both nodes end up with the file's three fields and all eight added ones.
    for node in [&a, &b] {
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        loop {
            let (_, list) = op(node, "GET", &path, None).await;
            let n = list["fields"].as_array().unwrap().len();
            if n == 11 {
                break;
            }
            assert!(std::time::Instant::now() < deadline, "{n} fields: {list}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}
