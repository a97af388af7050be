//! The web console's files (`/console/`): served from the binary with their content types and
//! strict headers, revalidated by ETag, counted under one metrics label. The console itself is
//! tested in a browser by `sdk/js/test/e2e/console.test.mjs`.

use crate::helpers::*;

#[tokio::test]
async fn console_files_are_served_with_their_types_and_strict_headers() {
    let app = spawn_app().await;
    for (path, kind) in [
        ("/console/", "text/html; charset=utf-8"),
        ("/console/console.js", "text/javascript; charset=utf-8"),
        ("/console/api.js", "text/javascript; charset=utf-8"),
        ("/console/dom.js", "text/javascript; charset=utf-8"),
        ("/console/console.css", "text/css; charset=utf-8"),
        ("/console/favicon.svg", "image/svg+xml"),
    ] {
        let resp = app
            .http
            .get(format!("{}{path}", app.base))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200, "{path}");
        let h = resp.headers();
        assert_eq!(h["content-type"], kind, "{path}");
        assert_eq!(h["x-content-type-options"], "nosniff", "{path}");
        assert_eq!(h["cache-control"], "no-cache", "{path}");
        let csp = h["content-security-policy"].to_str().unwrap();
        assert!(csp.starts_with("default-src 'self';"), "{path}: {csp}");
        for loose in ["unsafe", "*", "http:", "https:", "data:"] {
            assert!(!csp.contains(loose), "{path}: {csp}");
        }
        let etag = h["etag"].clone();
        let again = app
            .http
            .get(format!("{}{path}", app.base))
            .header("If-None-Match", etag)
            .send()
            .await
            .unwrap();
        assert_eq!(again.status(), 304, "{path}");
    }
}

#[tokio::test]
async fn console_without_slash_redirects_and_unknown_files_are_404() {
    let app = spawn_app().await;
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let resp = http
        .get(format!("{}/console", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 308);
    assert_eq!(resp.headers()["location"], "/console/");
    let resp = app
        .http
        .get(format!("{}/console/a/b.js", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 404);
    let resp = app
        .http
        .get(format!("{}/console/nope.js", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 404);
    assert_eq!(resp.headers()["x-content-type-options"], "nosniff");
}
