//! The OpenAPI document (`/openapi.json`, `docs/openapi.json`): served, checked in, and in step
//! with the router. CI also runs schemathesis against a live server with it
//! (`scripts/schemathesis.sh`).

use serde_json::Value;

use crate::helpers::*;

async fn served(app: &TestApp) -> (String, Value) {
    let resp = app
        .http
        .get(format!("{}/openapi.json", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["content-type"], "application/json");
    let text = resp.text().await.unwrap();
    let doc = serde_json::from_str(&text).expect("the document is JSON");
    (text, doc)
}

#[tokio::test]
async fn the_served_document_is_openapi_3_1_and_the_checked_in_copy_matches_it() {
    let app = spawn_app().await;
    let (text, doc) = served(&app).await;
    assert_eq!(doc["openapi"], "3.1.0");
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/openapi.json");
    let checked_in = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        checked_in == text,
        "docs/openapi.json differs from the served document; regenerate it with \
         `cargo run -q -- openapi > docs/openapi.json`"
    );
}

#[tokio::test]
async fn every_route_is_documented_and_every_documented_path_is_routed() {
    let app = spawn_app().await;
    let (_, doc) = served(&app).await;
    let paths = doc["paths"].as_object().expect("paths");
    for route in portrait_server::metrics::http::APIS {
        if route == portrait_server::metrics::http::OPERATOR {
            // One label for the whole operator API: its paths are documented one by one.
            assert!(
                paths.keys().any(|p| p.starts_with("/admin/v1/")),
                "no operator path is documented"
            );
        } else if route != "other" {
            assert!(paths.contains_key(route), "{route} is not documented");
        }
    }
    for (path, ops) in paths {
        let method = ops
            .as_object()
            .unwrap()
            .keys()
            .next()
            .unwrap()
            .to_uppercase();
        let resp = app
            .http
            .request(method.parse().unwrap(), format!("{}{path}", app.base))
            .send()
            .await
            .unwrap();
        let status = resp.status();
        let body = resp.text().await.unwrap();
        assert!(
            !body.contains("\"ErrorCode\":60009"),
            "{method} {path} is documented but not routed: {status} {body}"
        );
    }
    // Every signed operation names its query parameters and the UserSig scheme.
    for (path, ops) in paths {
        let op = ops.as_object().unwrap().values().next().unwrap();
        if path.starts_with("/v4/") || path.starts_with("/v1/") {
            assert_eq!(
                op["security"][0]["UserSig"],
                serde_json::json!([]),
                "{path}"
            );
            let names: Vec<&str> = op["parameters"]
                .as_array()
                .unwrap()
                .iter()
                .map(|p| p["name"].as_str().unwrap())
                .collect();
            assert_eq!(
                names,
                ["sdkappid", "identifier", "random", "contenttype"],
                "{path}"
            );
        }
    }
}
