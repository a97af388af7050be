//! The web console: static files (HTML, CSS, ES modules) built into the binary and served under
//! `GET /console/` (the page) and `GET /console/<file>`, so a packaged binary needs nothing on
//! disk. The console signs in with the operator token and calls the operator API
//! (`/admin/v1/*`) and `/metrics` from the browser; the server does nothing for it beyond
//! serving these files.
//!
//! Every answer carries strict headers: a `Content-Security-Policy` that allows only the node
//! itself (no inline script or style, no other origin, no framing), `X-Content-Type-Options:
//! nosniff`, `Referrer-Policy: no-referrer` and `Cache-Control: no-cache` with an `ETag` (a
//! browser revalidates and gets a 304 while the binary is the same).
//!
//! What must not live here: any API. The console is a client of the operator API like any other;
//! its files live in `crates/portrait-server/console/`.

use axum::extract::Path;
use axum::http::{header, HeaderMap, HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use axum::Router;

use crate::state::AppState;

/// One file of the console.
struct Asset {
    /// Its name under `/console/`.
    name: &'static str,
    content_type: &'static str,
    body: &'static [u8],
    /// `"<hash of body>"`, computed at compile time.
    etag: [u8; 18],
}

macro_rules! asset {
    ($name:literal, $content_type:literal) => {
        Asset {
            name: $name,
            content_type: $content_type,
            body: include_bytes!(concat!("../console/", $name)),
            etag: etag(include_bytes!(concat!("../console/", $name))),
        }
    };
}

/// Every file of the console; `index.html` is also `/console/`.
static ASSETS: [Asset; 6] = [
    asset!("index.html", "text/html; charset=utf-8"),
    asset!("console.css", "text/css; charset=utf-8"),
    asset!("console.js", "text/javascript; charset=utf-8"),
    asset!("api.js", "text/javascript; charset=utf-8"),
    asset!("dom.js", "text/javascript; charset=utf-8"),
    asset!("favicon.svg", "image/svg+xml"),
];

/// Only this node: no inline script or style, no other origin, never framed.
const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self'; \
                   connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'none'; \
                   form-action 'self'; frame-ancestors 'none'";

/// The console's routes.
pub fn router() -> Router<AppState> {
    Router::new()
        .route(
            "/console",
            get(|| async { Redirect::permanent("/console/") }),
        )
        .route("/console/", get(index))
        .route("/console/{*file}", get(file))
}

async fn index(headers: HeaderMap) -> Response {
    serve(&ASSETS[0], &headers)
}

async fn file(Path(name): Path<String>, headers: HeaderMap) -> Response {
    match ASSETS.iter().find(|a| a.name == name) {
        Some(asset) => serve(asset, &headers),
        None => (
            StatusCode::NOT_FOUND,
            [
                (header::CONTENT_TYPE, "text/plain; charset=utf-8"),
                (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
            ],
            format!("/console/{name}: no such file\n"),
        )
            .into_response(),
    }
}

fn serve(asset: &Asset, request: &HeaderMap) -> Response {
    let fresh = request
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim().as_bytes() == asset.etag));
    let mut response = if fresh {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        asset.body.into_response()
    };
    let headers = response.headers_mut();
    let pairs: [(HeaderName, &'static str); 6] = [
        (header::CONTENT_TYPE, asset.content_type),
        (header::CONTENT_SECURITY_POLICY, CSP),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::X_FRAME_OPTIONS, "DENY"),
        (header::REFERRER_POLICY, "no-referrer"),
        (header::CACHE_CONTROL, "no-cache"),
    ];
    for (name, value) in pairs {
        headers.insert(name, HeaderValue::from_static(value));
    }
    if let Ok(etag) = HeaderValue::from_bytes(&asset.etag) {
        headers.insert(header::ETAG, etag);
    }
    response
}

/// `"<16 hex digits>"`: the FNV-1a hash of `body`, as an ETag.
const fn etag(body: &[u8]) -> [u8; 18] {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    let mut i = 0;
    while i < body.len() {
        hash ^= body[i] as u64;
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
        i += 1;
    }
    let digits = b"0123456789abcdef";
    let mut out = [b'"'; 18];
    let mut j = 0;
    while j < 16 {
        out[1 + j] = digits[((hash >> (60 - 4 * j)) & 0xf) as usize];
        j += 1;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_asset_has_a_distinct_quoted_etag() {
        for a in &ASSETS {
            assert!(a.etag[0] == b'"' && a.etag[17] == b'"');
            assert!(a.etag[1..17].iter().all(u8::is_ascii_hexdigit));
            assert!(!a.body.is_empty(), "{} is empty", a.name);
        }
        let mut tags: Vec<_> = ASSETS.iter().map(|a| a.etag).collect();
        tags.sort_unstable();
        tags.dedup();
        assert_eq!(tags.len(), ASSETS.len());
    }
}
