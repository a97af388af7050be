//! Sloppy clients: whatever real client libraries send must succeed or fail with a vendor code —
//! always HTTP 200 with a JSON envelope (asserted by every helper that sends raw HTTP).

use reqwest::Method;
use serde_json::{json, Value};

use crate::helpers::*;

fn get_alice() -> Value {
    json!({"To_Account": ["alice"], "TagList": [NICK]})
}

/// The first value of the first user of a successful `portrait_get`.
fn first_value(r: &Value) -> Value {
    let b = r.expect_ok();
    b["UserProfileItem"][0]["ProfileItem"][0]["Value"].clone()
}

#[tokio::test]
async fn a_request_without_content_type_is_read_as_json() {
    let app = spawn_app().await;
    app.import(&["alice"]).await;
    let body = json!({"From_Account": "alice", "ProfileItem": [{"Tag": NICK, "Value": "no ct"}]})
        .to_string();
    app.post_raw(&app.url(PORTRAIT_SET), body).await.expect_ok();
    let r = app
        .send(
            Method::POST,
            &app.url(PORTRAIT_GET),
            None,
            get_alice().to_string(),
        )
        .await;
    assert_eq!(first_value(&r), "no ct");
    let r = app
        .send(
            Method::POST,
            &app.url(ACCOUNT_IMPORT),
            None,
            r#"{"UserID":"bob"}"#,
        )
        .await;
    r.expect_ok();
    assert_eq!(app.statuses(&["bob"]).await, ["Imported"]);
}

#[tokio::test]
async fn a_request_with_another_content_type_is_read_as_json() {
    let app = spawn_app().await;
    app.import(&["alice"]).await;
    for ct in [
        "text/plain",
        "text/plain; charset=utf-8",
        "application/x-www-form-urlencoded",
        "application/octet-stream",
        "garbage",
    ] {
        let body = json!({"From_Account": "alice", "ProfileItem": [{"Tag": NICK, "Value": ct}]})
            .to_string();
        app.send(Method::POST, &app.url(PORTRAIT_SET), Some(ct), body)
            .await
            .expect_ok();
        let r = app
            .send(
                Method::POST,
                &app.url(PORTRAIT_GET),
                Some(ct),
                get_alice().to_string(),
            )
            .await;
        assert_eq!(first_value(&r), ct);
    }
}

#[tokio::test]
async fn the_legacy_identifier_field_works_in_place_of_user_id() {
    let app = spawn_app().await;
    let r = app.call(ACCOUNT_IMPORT, &json!({"Identifier": "legacy", "Nick": "Old Client", "FaceUrl": "https://x.test/l.png"})).await;
    r.expect_ok();
    assert_eq!(app.statuses(&["legacy"]).await, ["Imported"]);
    assert_eq!(app.value("legacy", NICK).await, Some(json!("Old Client")));
    app.call(KICK, &json!({"Identifier": "legacy"}))
        .await
        .expect_ok();
    app.call(KICK, &json!({"Identifier": "ghost"}))
        .await
        .expect_code(70107);
    let r = app
        .call(
            ACCOUNT_CHECK,
            &json!({"CheckItem": [{"Identifier": "legacy"}]}),
        )
        .await;
    assert_eq!(r.expect_ok()["ResultItem"][0]["AccountStatus"], "Imported");
    let r = app
        .call(
            MULTIACCOUNT_IMPORT,
            &json!({"AccountList": [{"Identifier": "legacy2", "Nick": "L2"}]}),
        )
        .await;
    assert_eq!(r.expect_ok()["FailAccounts"], json!([]));
    assert_eq!(app.value("legacy2", NICK).await, Some(json!("L2")));
    let r = app
        .call(
            ACCOUNT_DELETE,
            &json!({"DeleteItem": [{"Identifier": "legacy"}]}),
        )
        .await;
    assert_eq!(
        r.expect_ok()["ResultItem"][0],
        json!({"UserID": "legacy", "ResultCode": 0, "ResultInfo": ""})
    );
}

#[tokio::test]
async fn the_same_random_may_be_reused_on_many_calls() {
    let app = spawn_app().await;
    app.import(&["alice"]).await;
    let usersig = sig(APP, KEY, ADMIN);
    let url = |api: &str| {
        app.raw_url(
            api,
            &format!(
                "sdkappid={APP}&identifier={ADMIN}&usersig={usersig}&random=7&contenttype=json"
            ),
        )
    };
    for i in 0..20 {
        let body = json!({"From_Account": "alice", "ProfileItem": [{"Tag": LEVEL, "Value": i}]});
        app.post_json(&url(PORTRAIT_SET), &body).await.expect_ok();
    }
    let r = app
        .post_json(
            &url(PORTRAIT_GET),
            &json!({"To_Account": ["alice"], "TagList": [LEVEL]}),
        )
        .await;
    assert_eq!(
        r.expect_ok()["UserProfileItem"][0]["ProfileItem"][0]["Value"],
        19
    );
}

#[tokio::test]
async fn a_query_without_random_or_contenttype_or_with_odd_values_for_them_is_accepted() {
    let app = spawn_app().await;
    app.import(&["alice"]).await;
    let s = sig(APP, KEY, ADMIN);
    for q in [
        format!("sdkappid={APP}&identifier={ADMIN}&usersig={s}"),
        format!("sdkappid={APP}&identifier={ADMIN}&usersig={s}&random=1"),
        format!("sdkappid={APP}&identifier={ADMIN}&usersig={s}&contenttype=json"),
        format!("sdkappid={APP}&identifier={ADMIN}&usersig={s}&random=not-a-number&contenttype=JSON"),
        format!("sdkappid={APP}&identifier={ADMIN}&usersig={s}&random=99999999999&contenttype="),
        format!("sdkappid={APP}&identifier={ADMIN}&usersig={s}&random=1&contenttype=json&extra=ignored&v=2"),
    ] {
        let r = app.post_json(&app.raw_url(PORTRAIT_GET, &q), &get_alice()).await;
        assert_eq!(r["ErrorCode"], 0, "{q}: {r}");
        r.expect_ok();
    }
}

#[tokio::test]
async fn url_parameters_in_any_order_are_accepted() {
    let app = spawn_app().await;
    app.import(&["alice"]).await;
    let s = sig(APP, KEY, ADMIN);
    for q in [
        format!("contenttype=json&random=5&usersig={s}&identifier={ADMIN}&sdkappid={APP}"),
        format!("usersig={s}&sdkappid={APP}&contenttype=json&identifier={ADMIN}&random=5"),
        format!("identifier={ADMIN}&random=5&sdkappid={APP}&usersig={s}"),
    ] {
        let r = app
            .post_json(
                &app.raw_url(ACCOUNT_CHECK, &q),
                &json!({"CheckItem": [{"UserID": "alice"}]}),
            )
            .await;
        assert_eq!(
            r.expect_ok()["ResultItem"][0]["AccountStatus"],
            "Imported",
            "{q}"
        );
    }
}

#[tokio::test]
async fn a_percent_encoded_query_is_decoded() {
    let app = spawn_app().await;
    app.import(&["alice"]).await;
    let s = sig(APP, KEY, ADMIN);
    // Every character of the vendor alphabet (`*`, `-`, `_`) percent-encoded, as some URL
    // builders do.
    let encoded: String = s
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_string()
            } else {
                format!("%{:02X}", c as u32)
            }
        })
        .collect();
    let q = format!("sdkappid={APP}&identifier=%61dministrator&usersig={encoded}");
    app.post_json(&app.raw_url(PORTRAIT_GET, &q), &get_alice())
        .await
        .expect_ok();
}

#[tokio::test]
async fn unknown_extra_json_fields_are_ignored() {
    let app = spawn_app().await;
    let r = app
        .call(
            ACCOUNT_IMPORT,
            &json!({"UserID": "alice", "Nick": "A", "Extra": {"nested": [1, 2]}, "Gender": 1}),
        )
        .await;
    r.expect_ok();
    let set = json!({
        "From_Account": "alice",
        "ProfileItem": [{"Tag": NICK, "Value": "B", "Comment": "ignored"}],
        "SyncOtherMachine": 1,
        "random": 123,
    });
    app.call(PORTRAIT_SET, &set).await.expect_ok();
    let get = json!({"To_Account": ["alice"], "TagList": [NICK], "LastStandardSequence": 0, "extra": null});
    let r = app.call(PORTRAIT_GET, &get).await;
    assert_eq!(first_value(&r), "B");
    let r = app
        .call(
            MULTIACCOUNT_IMPORT,
            &json!({"Accounts": ["bob"], "Whatever": true}),
        )
        .await;
    r.expect_ok();
    let r = app
        .call(
            ACCOUNT_CHECK,
            &json!({"CheckItem": [{"UserID": "bob", "Why": "?"}], "X": 1}),
        )
        .await;
    assert_eq!(r.expect_ok()["ResultItem"][0]["AccountStatus"], "Imported");
    app.call(KICK, &json!({"UserID": "bob", "Reason": "testing"}))
        .await
        .expect_ok();
    let r = app
        .call(
            ACCOUNT_DELETE,
            &json!({"DeleteItem": [{"UserID": "bob", "Note": 1}], "Force": true}),
        )
        .await;
    assert_eq!(r.expect_ok()["ResultItem"][0]["ResultCode"], 0);
}

#[tokio::test]
async fn get_and_other_methods_with_a_json_body_work_like_post() {
    let app = spawn_app().await;
    app.import(&["alice"]).await;
    let set = json!({"From_Account": "alice", "ProfileItem": [{"Tag": NICK, "Value": "via GET"}]})
        .to_string();
    app.send(
        Method::GET,
        &app.url(PORTRAIT_SET),
        Some("application/json"),
        set,
    )
    .await
    .expect_ok();
    let r = app
        .send(
            Method::GET,
            &app.url(PORTRAIT_GET),
            None,
            get_alice().to_string(),
        )
        .await;
    assert_eq!(first_value(&r), "via GET");
    let r = app
        .send(
            Method::PUT,
            &app.url(PORTRAIT_GET),
            Some("application/json"),
            get_alice().to_string(),
        )
        .await;
    assert_eq!(first_value(&r), "via GET");
    let r = app
        .send(
            Method::GET,
            &app.url(ACCOUNT_CHECK),
            None,
            r#"{"CheckItem":[{"UserID":"alice"}]}"#,
        )
        .await;
    assert_eq!(r.expect_ok()["ResultItem"][0]["AccountStatus"], "Imported");
    // A GET without a body is an empty body: a JSON parse error, still in the envelope.
    app.send(Method::GET, &app.url(PORTRAIT_GET), None, "")
        .await
        .expect_code(60003);
}

#[tokio::test]
async fn pretty_printed_json_with_whitespace_and_unicode_escapes_is_accepted() {
    let app = spawn_app().await;
    app.import(&["alice"]).await;
    let body = "\r\n  {\n\t\"From_Account\" : \"alice\" ,\n  \"ProfileItem\": [ {\"Tag\": \"Tag_Profile_IM_Nick\", \"Value\": \"\\u5f20\\u4e09\"} ]\n}\n\n";
    app.send(
        Method::POST,
        &app.url(PORTRAIT_SET),
        Some("application/json"),
        body,
    )
    .await
    .expect_ok();
    assert_eq!(app.value("alice", NICK).await, Some(json!("张三")));
}

#[tokio::test]
async fn a_body_over_the_1_mib_limit_is_refused_with_40001_or_70402() {
    let app = spawn_app().await;
    app.import(&["alice"]).await;
    let pad = "x".repeat(1 << 20);
    let big_set = json!({"From_Account": "alice", "ProfileItem": [{"Tag": NICK, "Value": "big"}], "Padding": pad}).to_string();
    assert!(big_set.len() > 1 << 20);
    let r = app
        .send(
            Method::POST,
            &app.url(PORTRAIT_SET),
            Some("application/json"),
            big_set,
        )
        .await;
    r.expect_code(40001);
    let big_import = json!({"UserID": "big", "Padding": pad}).to_string();
    let r = app
        .send(Method::POST, &app.url(ACCOUNT_IMPORT), None, big_import)
        .await;
    r.expect_code(70402);
    assert_eq!(app.value("alice", NICK).await, Some(json!("")));
    assert_eq!(app.statuses(&["big"]).await, ["NotImported"]);
    // Just under the limit is fine.
    let fits = json!({"From_Account": "alice", "ProfileItem": [{"Tag": NICK, "Value": "fits"}], "Padding": "x".repeat((1 << 20) - 200)}).to_string();
    assert!(fits.len() <= 1 << 20);
    app.send(Method::POST, &app.url(PORTRAIT_SET), None, fits)
        .await
        .expect_ok();
    assert_eq!(app.value("alice", NICK).await, Some(json!("fits")));
    // Far over the limit, and with a bad sig (answered before the body is read): still an envelope.
    let huge = "x".repeat(8 << 20);
    app.send(Method::POST, &app.url(PORTRAIT_GET), None, huge.clone())
        .await
        .expect_code(40001);
    let bad_sig = app.raw_url(PORTRAIT_GET, &query(APP, ADMIN, "garbage"));
    app.send(Method::POST, &bad_sig, None, huge)
        .await
        .expect_code(70003);
}

#[tokio::test]
async fn an_unknown_api_path_gets_60009_with_http_200() {
    let app = spawn_app().await;
    let q = query(APP, ADMIN, &sig(APP, KEY, ADMIN));
    for path in [
        "v4/profile/portrait_delete",
        "v4/profile/Portrait_Get",
        "v4/profile/portrait_get/extra",
        "v4/im_open_login_svc/account_import_v2",
        "v4/openim/sendmsg",
        "v5/profile/portrait_get",
        "",
    ] {
        for method in [Method::POST, Method::GET] {
            let url = app.raw_url(path, &q);
            let r = app
                .send(method.clone(), &url, Some("application/json"), "{}")
                .await;
            assert_eq!(r["ErrorCode"], 60009, "{method} /{path}: {r}");
            r.expect_code(60009);
        }
    }
    // Without any query or body either.
    let r = app
        .send(Method::POST, &format!("{}/nope", app.base), None, "")
        .await;
    r.expect_code(60009);
}

#[tokio::test]
async fn responses_carry_permissive_cors_headers() {
    let app = spawn_app().await;
    let resp = app
        .http
        .post(app.url(ACCOUNT_CHECK))
        .header("Origin", "https://console.example.test")
        .body(r#"{"CheckItem":[{"UserID":"x"}]}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(
        resp.headers()
            .get("access-control-allow-origin")
            .map(|v| v.to_str().unwrap()),
        Some("*")
    );
    assert!(
        resp.headers().get("vary").is_none(),
        "the answer is the same for every origin"
    );
    let b: Value = resp.json().await.unwrap();
    b.expect_ok();

    // A browser's preflight is answered before authentication.
    let pre = app
        .http
        .request(Method::OPTIONS, app.url(ACCOUNT_CHECK))
        .header("Origin", "https://console.example.test")
        .header("Access-Control-Request-Method", "POST")
        .header("Access-Control-Request-Headers", "content-type")
        .send()
        .await
        .unwrap();
    assert_eq!(pre.status(), 200);
    for (name, value) in [
        ("access-control-allow-origin", "*"),
        ("access-control-allow-methods", "*"),
        ("access-control-allow-headers", "*"),
    ] {
        assert_eq!(
            pre.headers().get(name).map(|v| v.to_str().unwrap()),
            Some(value),
            "{name}"
        );
    }
}

#[tokio::test]
async fn the_health_endpoint_answers_ok_without_credentials() {
    let app = spawn_app().await;
    let resp = app
        .http
        .get(format!("{}/healthz", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.text().await.unwrap(), "ok");
}
