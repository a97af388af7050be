//! Per-app, per-API rate limits over HTTP (60007). Calls are fired concurrently so that a burst
//! lands within one limiter window; no test asserts timings, only that a burst far over the
//! limit sees some 60007 and that unlimited APIs never do.

use portrait_client::AdminClient;
use portrait_server::settings::AppConfig;
use serde_json::{json, Value};
use tokio::task::JoinSet;

use crate::helpers::*;

/// APP with the given per-API limits.
fn limited(limits: &[(&str, u32)]) -> AppConfig {
    let mut cfg = test_app();
    for (api, n) in limits {
        cfg.rate_limits.per_api.insert((*api).to_owned(), *n);
    }
    cfg
}

fn get_body() -> Value {
    json!({"To_Account": [ADMIN], "TagList": [NICK]})
}

/// One reply of a burst: which app and API it answered.
struct Reply {
    app: u64,
    api: &'static str,
    body: Value,
}

/// Adds `n` concurrent calls of `api` through `client` to `set`.
fn fire(set: &mut JoinSet<Reply>, client: &AdminClient, api: &'static str, body: &Value, n: usize) {
    for _ in 0..n {
        let (client, body) = (client.clone(), body.clone());
        set.spawn(async move {
            Reply {
                app: client_sdkappid(&client),
                api,
                body: client.call(api, &body).await.unwrap().0,
            }
        });
    }
}

/// Which app a client calls (read back from its URL).
fn client_sdkappid(client: &AdminClient) -> u64 {
    let url = client.url("x");
    let q = url.split_once("sdkappid=").unwrap().1;
    q.split('&').next().unwrap().parse().unwrap()
}

async fn collect(mut set: JoinSet<Reply>) -> Vec<Reply> {
    let mut out = Vec::new();
    while let Some(r) = set.join_next().await {
        out.push(r.unwrap());
    }
    out
}

/// `(successes, 60007s)` among the replies that `pick` selects; panics on any other code.
fn tally(replies: &[Reply], pick: impl Fn(&Reply) -> bool) -> (usize, usize) {
    let (mut ok, mut limited) = (0, 0);
    for r in replies.iter().filter(|r| pick(r)).map(|r| &r.body) {
        match r["ErrorCode"].as_u64() {
            Some(0) => ok += 1,
            Some(60007) => {
                r.expect_code(60007);
                limited += 1;
            }
            _ => panic!("expected success or 60007, got {r}"),
        }
    }
    (ok, limited)
}

#[tokio::test]
async fn portrait_get_over_its_limit_fails_with_60007_while_the_other_app_is_unaffected() {
    let app = spawn_app_with(vec![limited(&[("portrait_get", 5)]), other_app()]).await;
    let mut set = JoinSet::new();
    fire(&mut set, &app.admin, PORTRAIT_GET, &get_body(), 30);
    fire(&mut set, &app.other, PORTRAIT_GET, &get_body(), 30);
    let replies = collect(set).await;

    let (ok, limited) = tally(&replies, |r| r.app == APP);
    assert!(
        ok >= 5,
        "the first second's worth (5) is always allowed: {ok} ok"
    );
    assert!(
        limited >= 1,
        "30 concurrent calls against a limit of 5/s: {ok} ok, {limited} limited"
    );
    let limited_reply = &replies
        .iter()
        .find(|r| r.body["ErrorCode"] == 60007)
        .unwrap()
        .body;
    assert!(
        limited_reply["ErrorInfo"]
            .as_str()
            .unwrap()
            .contains("portrait_get"),
        "{limited_reply}"
    );
    assert_eq!(
        limited_reply["ErrorDisplay"], "",
        "a profile API's envelope: {limited_reply}"
    );

    let (other_ok, other_limited) = tally(&replies, |r| r.app == OTHER_APP);
    assert_eq!(
        (other_ok, other_limited),
        (30, 0),
        "OTHER_APP has its own budget"
    );
}

#[tokio::test]
async fn one_api_over_its_limit_does_not_limit_the_other_apis_of_the_app() {
    let app = spawn_app_with(vec![limited(&[("portrait_get", 2)]), other_app()]).await;
    app.import(&["alice"]).await;
    let mut set = JoinSet::new();
    fire(&mut set, &app.admin, PORTRAIT_GET, &get_body(), 20);
    let (_, limited) = tally(&collect(set).await, |_| true);
    assert!(limited >= 1, "20 concurrent calls against 2/s");
    app.set("alice", &[(NICK, json!("still writable"))])
        .await
        .expect_ok();
    assert_eq!(app.statuses(&["alice"]).await, ["Imported"]);
}

#[tokio::test]
async fn account_apis_are_rate_limited_with_60007_too() {
    let app = spawn_app_with(vec![limited(&[("account_check", 3)]), other_app()]).await;
    let mut set = JoinSet::new();
    fire(
        &mut set,
        &app.admin,
        ACCOUNT_CHECK,
        &json!({"CheckItem": [{"UserID": ADMIN}]}),
        30,
    );
    let replies = collect(set).await;
    let (ok, limited) = tally(&replies, |_| true);
    assert!(ok >= 3 && limited >= 1, "{ok} ok, {limited} limited");
    let limited_reply = &replies
        .iter()
        .find(|r| r.body["ErrorCode"] == 60007)
        .unwrap()
        .body;
    assert!(
        limited_reply.get("ErrorDisplay").is_none(),
        "an account API's envelope: {limited_reply}"
    );
}

#[tokio::test]
async fn disabled_rate_limits_never_answer_60007() {
    let mut cfg = limited(&[("portrait_get", 1), ("account_check", 1)]);
    cfg.rate_limits.enabled = false;
    let app = spawn_app_with(vec![cfg, other_app()]).await;
    for _ in 0..6 {
        let mut set = JoinSet::new();
        fire(&mut set, &app.admin, PORTRAIT_GET, &get_body(), 40);
        fire(
            &mut set,
            &app.admin,
            ACCOUNT_CHECK,
            &json!({"CheckItem": [{"UserID": ADMIN}]}),
            10,
        );
        let (ok, limited) = tally(&collect(set).await, |_| true);
        assert_eq!((ok, limited), (50, 0));
    }
}

#[tokio::test]
async fn a_per_api_limit_of_0_turns_off_only_that_api() {
    let app = spawn_app_with(vec![
        limited(&[("portrait_get", 0), ("account_check", 2)]),
        other_app(),
    ])
    .await;
    let mut set = JoinSet::new();
    fire(&mut set, &app.admin, PORTRAIT_GET, &get_body(), 100);
    fire(
        &mut set,
        &app.admin,
        ACCOUNT_CHECK,
        &json!({"CheckItem": [{"UserID": ADMIN}]}),
        30,
    );
    let replies = collect(set).await;
    assert_eq!(
        tally(&replies, |r| r.api == PORTRAIT_GET),
        (100, 0),
        "portrait_get is unlimited"
    );
    let (ok, limited) = tally(&replies, |r| r.api == ACCOUNT_CHECK);
    assert!(
        ok >= 2 && limited >= 1,
        "account_check keeps its limit: {ok} ok, {limited} limited"
    );
}

#[tokio::test]
async fn calls_refused_before_authentication_do_not_use_up_the_budget() {
    let app = spawn_app_with(vec![limited(&[("portrait_get", 3)]), other_app()]).await;
    let bad_sig = app.raw_url(PORTRAIT_GET, &query(APP, ADMIN, "garbage"));
    for _ in 0..20 {
        app.post_json(&bad_sig, &get_body())
            .await
            .expect_code(70003);
    }
    let alice = app.admin.as_identifier("alice");
    for _ in 0..20 {
        alice
            .portrait_get(&[ADMIN], &[NICK])
            .await
            .unwrap()
            .expect_code(40004);
    }
    // The whole burst of 3 is still there for the admin.
    let mut set = JoinSet::new();
    fire(&mut set, &app.admin, PORTRAIT_GET, &get_body(), 3);
    let (ok, limited) = tally(&collect(set).await, |_| true);
    assert_eq!((ok, limited), (3, 0));
}
