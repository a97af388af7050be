//! The caller's address in the webhook's `ClientIP`: stored with each change, taken from the
//! connection's peer, or — only when the peer is a trusted proxy (`[server] trusted_proxies`) —
//! from `X-Forwarded-For`.

use std::time::Duration;

use serde_json::{json, Value};

use crate::helpers::*;
use crate::webhook::{with_webhook, Receiver};

/// Sends `body` to `url` with `X-Forwarded-For: forwarded` (if given); asserts the call worked.
async fn post(app: &TestApp, url: &str, forwarded: Option<&str>, body: Value) {
    let mut req = app.http.post(url).json(&body);
    if let Some(f) = forwarded {
        req = req.header("x-forwarded-for", f);
    }
    let answer: Value = req.send().await.unwrap().json().await.unwrap();
    assert_eq!(answer["ErrorCode"], 0, "{answer}");
}

/// A signed `update_my_profile` URL for `user` of [`APP`].
fn user_url(app: &TestApp, user: &str) -> String {
    format!(
        "{}/v1/profile/update_my_profile?{}",
        app.base,
        query(APP, user, &sig(APP, KEY, user))
    )
}

/// The `ClientIP` of each callback, by the nick it carried.
async fn client_ips(receiver: &Receiver, n: usize) -> Vec<(String, String)> {
    let mut got: Vec<(String, String)> = receiver
        .wait_for(n)
        .await
        .into_iter()
        .map(|(q, b)| {
            let nick = b["ProfileItem"][0]["Value"]
                .as_str()
                .unwrap_or("")
                .to_owned();
            (nick, q["ClientIP"].clone())
        })
        .collect();
    got.sort();
    got
}

#[tokio::test]
async fn behind_a_trusted_proxy_the_client_ip_is_the_forwarded_address() {
    let receiver = Receiver::default();
    let url = receiver.clone().start("127.0.0.1:0").await;
    let mut server = server_settings();
    server.trusted_proxies = vec!["127.0.0.1".into(), "10.0.0.0/8".into()];
    let app = spawn_app_with_server(vec![with_webhook(&url)], server).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    app.import(&["alice", "bob"]).await;
    let set = |user: &str, nick: &str| json!({"From_Account": user, "ProfileItem": [{"Tag": NICK, "Value": nick}]});
    let update = |nick: &str| json!({"ProfileItem": [{"Tag": NICK, "Value": nick}]});
    // A spoofed left part is skipped: the right-most address that is not a trusted proxy counts.
    post(
        &app,
        &app.url(PORTRAIT_SET),
        Some("192.0.2.1, 198.51.100.7, 10.1.2.3"),
        set("alice", "a1"),
    )
    .await;
    post(
        &app,
        &user_url(&app, "bob"),
        Some("203.0.113.9"),
        update("b1"),
    )
    .await;
    post(&app, &app.url(PORTRAIT_SET), None, set("bob", "b2")).await;
    assert_eq!(
        client_ips(&receiver, 3).await,
        [
            ("a1".to_owned(), "198.51.100.7".to_owned()),
            ("b1".to_owned(), "203.0.113.9".to_owned()),
            ("b2".to_owned(), "127.0.0.1".to_owned()),
        ],
        "forwarded addresses, and the proxy itself when nothing is forwarded"
    );
}

#[tokio::test]
async fn an_untrusted_peers_forwarded_for_is_ignored() {
    let receiver = Receiver::default();
    let url = receiver.clone().start("127.0.0.1:0").await;
    // The default: no trusted proxies.
    let app = spawn_app_with_server(vec![with_webhook(&url)], server_settings()).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    app.import(&["alice"]).await;
    let set = json!({"From_Account": "alice", "ProfileItem": [{"Tag": NICK, "Value": "a1"}]});
    post(&app, &app.url(PORTRAIT_SET), Some("198.51.100.7"), set).await;
    let update = json!({"ProfileItem": [{"Tag": NICK, "Value": "a2"}]});
    post(&app, &user_url(&app, "alice"), Some("198.51.100.7"), update).await;
    assert_eq!(
        client_ips(&receiver, 2).await,
        [
            ("a1".to_owned(), "127.0.0.1".to_owned()),
            ("a2".to_owned(), "127.0.0.1".to_owned()),
        ]
    );
}
