//! The operator API's apps and custom fields (`/admin/v1/apps…`): authentication, and apps
//! created and changed at run time used through `/v4` and `/v1` without a restart.

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
    let (status, body) = op(&app, "GET", "/admin/v1/secret", None).await;
    assert_eq!(
        (status, &body["error"]["code"]),
        (StatusCode::NOT_FOUND, &json!("not_found"))
    );
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
