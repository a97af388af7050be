//! Every route × method (issue #15, defect 10): under `/v4` and `/v1` every answer is the vendor
//! envelope with HTTP 200, whatever the method; no bare 405. The vendor and client API routes
//! take any method with the same body; `/v1/ws` without a handshake, or with another method than
//! GET, answers an envelope error; unknown paths get 60009. The operational routes `/healthz` and
//! `/metrics` take GET and answer other methods with 405, an `Allow` header and a text body.

use reqwest::Method;
use serde_json::{json, Value};

use crate::helpers::*;

const METHODS: [Method; 5] = [
    Method::GET,
    Method::PUT,
    Method::DELETE,
    Method::PATCH,
    Method::POST,
];

/// The client API routes with a body each accepts for `alice`.
fn client_endpoints() -> Vec<(&'static str, Value)> {
    vec![
        ("v1/profile/get_my_profile", json!({"TagList": [NICK]})),
        (
            "v1/profile/get_user_profile",
            json!({"To_Account": ["alice"], "TagList": [NICK]}),
        ),
        (
            "v1/profile/update_my_profile",
            json!({"ProfileItem": [{"Tag": NICK, "Value": "A"}]}),
        ),
    ]
}

#[tokio::test]
async fn every_v4_route_answers_every_method_with_the_envelope() {
    let app = spawn_app().await;
    for method in METHODS {
        for (api, body) in every_endpoint() {
            app.import(&["alice"]).await;
            // `send` asserts HTTP 200, a JSON Content-Type and the envelope's fields.
            let r = app
                .send(method.clone(), &app.url(api), None, body.to_string())
                .await;
            assert_eq!(r["ErrorCode"], 0, "{method} /{api}: {r}");
            r.expect_ok();
        }
    }
}

#[tokio::test]
async fn every_v1_profile_route_answers_every_method_with_the_envelope() {
    let app = spawn_app().await;
    app.import(&["alice"]).await;
    let q = query(APP, "alice", &sig(APP, KEY, "alice"));
    for method in METHODS {
        for (api, body) in client_endpoints() {
            let r = app
                .send(
                    method.clone(),
                    &app.raw_url(api, &q),
                    Some("application/json"),
                    body.to_string(),
                )
                .await;
            assert_eq!(r["ErrorCode"], 0, "{method} /{api}: {r}");
            r.expect_ok();
            // Without a UserSig: the envelope's authentication error, not an HTTP error.
            let r = app
                .send(
                    method.clone(),
                    &format!("{}/{api}", app.base),
                    None,
                    body.to_string(),
                )
                .await;
            assert_eq!(
                r["ErrorCode"], 60012,
                "{method} /{api} without a query: {r}"
            );
        }
    }
}

#[tokio::test]
async fn v1_ws_without_a_handshake_answers_every_method_with_the_envelope() {
    let app = spawn_app().await;
    app.import(&["alice"]).await;
    let q = query(APP, "alice", &sig(APP, KEY, "alice"));
    for method in METHODS {
        let r = app
            .send(method.clone(), &app.raw_url("v1/ws", &q), None, "")
            .await;
        r.expect_code(40001);
        let info = r["ErrorInfo"].as_str().unwrap();
        assert!(info.contains("WebSocket"), "{method} /v1/ws: {r}");
    }
}

#[tokio::test]
async fn unknown_paths_answer_every_method_with_60009() {
    let app = spawn_app().await;
    let q = query(APP, ADMIN, &sig(APP, KEY, ADMIN));
    for method in METHODS {
        for path in [
            "v4/profile/nope",
            "v1/profile/nope",
            "v1/nope",
            "v1",
            "nope",
        ] {
            let r = app
                .send(method.clone(), &app.raw_url(path, &q), None, "{}")
                .await;
            assert_eq!(r["ErrorCode"], 60009, "{method} /{path}: {r}");
            r.expect_code(60009);
        }
    }
}

#[tokio::test]
async fn healthz_and_metrics_take_get_and_refuse_other_methods_with_a_described_405() {
    let app = spawn_app().await;
    for path in ["healthz", "metrics"] {
        let url = format!("{}/{path}", app.base);
        let ok = app.http.get(&url).send().await.unwrap();
        assert_eq!(ok.status(), 200, "GET /{path}");
        let head = app.http.head(&url).send().await.unwrap();
        assert_eq!(head.status(), 200, "HEAD /{path}");
        for method in [Method::PUT, Method::DELETE, Method::PATCH, Method::POST] {
            let resp = app.http.request(method.clone(), &url).send().await.unwrap();
            assert_eq!(resp.status(), 405, "{method} /{path}");
            let allow = resp
                .headers()
                .get("allow")
                .map(|v| v.to_str().unwrap().to_owned())
                .unwrap_or_default();
            assert!(allow.contains("GET"), "{method} /{path}: Allow {allow:?}");
            let body = resp.text().await.unwrap();
            assert!(
                body.contains("not allowed"),
                "{method} /{path}: the 405 says why: {body:?}"
            );
        }
    }
}
