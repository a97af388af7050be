//! The operator API's accounts and webhook state (`/admin/v1/apps/{sdkappid}/accounts…`,
//! `…/webhook`), driven through the client crate's `Operator`: listing by prefix a page at a
//! time, an account's version and changes with who made them and from where, kick and delete
//! with the REST API's effects, the webhook's lag and failures, and the token.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use portrait_client::operator::{AccountList, WebhookState};
use portrait_client::user::{Frame, Incoming, UserClient};
use portrait_client::{ClientError, Operator};
use portrait_core::usersig::mint;
use portrait_server::settings::PushSettings;
use portrait_store::ChangeKind;
use serde_json::json;
use tokio::net::TcpListener;

use crate::helpers::*;

/// The operator client of `app`, signed in with `token`.
fn operator_as(app: &TestApp, token: &str) -> Operator {
    Operator::builder(&app.base, token)
        .timeout(Duration::from_secs(5))
        .build()
        .unwrap()
}

/// The operator client of `app`.
pub fn operator(app: &TestApp) -> Operator {
    operator_as(app, OPERATOR_TOKEN)
}

/// The HTTP status and code of an operator refusal.
fn refused<T: std::fmt::Debug>(r: Result<T, ClientError>) -> (u16, String) {
    match r {
        Err(ClientError::Operator { status, code, .. }) => (status, code),
        other => panic!("expected a refusal, got {other:?}"),
    }
}

#[tokio::test]
async fn accounts_are_listed_by_literal_prefix_a_page_at_a_time() {
    let app = spawn_operator().await;
    app.import(&["ub", "u%1", "ua", "u_1", "uc", "v1"]).await;
    app.admin.account_delete(&["uc"]).await.unwrap().expect_ok();
    let op = operator(&app);

    let mut pages: Vec<AccountList> = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let page = op
            .accounts(APP, "u", after.as_deref(), Some(2))
            .await
            .unwrap();
        after = page.next.clone();
        pages.push(page);
        if after.is_none() {
            break;
        }
    }
    let listed: Vec<Vec<&str>> = pages
        .iter()
        .map(|p| p.accounts.iter().map(String::as_str).collect())
        .collect();
    assert_eq!(
        listed,
        [vec!["u%1", "u_1"], vec!["ua", "ub"]],
        "bytewise order, the deleted account left out, no empty last page"
    );
    assert_eq!(pages[0].next.as_deref(), Some("u_1"));

    let all = op.accounts(APP, "", None, None).await.unwrap();
    assert_eq!(
        all.accounts,
        ["admin2", ADMIN, "u%1", "u_1", "ua", "ub", "v1"],
        "every account (the admins' too) with the default limit"
    );
    assert_eq!(all.next, None);
    let literal = op.accounts(APP, "u%", None, None).await.unwrap();
    assert_eq!(literal.accounts, ["u%1"], "% is no wildcard");
    let literal = op.accounts(APP, "u_", None, None).await.unwrap();
    assert_eq!(literal.accounts, ["u_1"], "_ is no wildcard");
    assert!(op
        .accounts(OTHER_APP, "u", None, None)
        .await
        .unwrap()
        .accounts
        .is_empty());

    for limit in [0, 1001] {
        assert_eq!(
            refused(op.accounts(APP, "", None, Some(limit)).await),
            (400, "invalid".to_owned()),
            "limit {limit}"
        );
    }
    assert_eq!(
        op.accounts(APP, "", None, Some(1000))
            .await
            .unwrap()
            .accounts
            .len(),
        7
    );
    assert_eq!(
        refused(op.accounts(APP, "", Some("\u{e9}"), None).await),
        (400, "invalid".to_owned()),
        "after must be a UserID"
    );
    assert_eq!(
        refused(op.accounts(1_499_999_999, "", None, None).await),
        (404, "app_not_found".to_owned())
    );
}

#[tokio::test]
async fn an_account_shows_its_version_and_changes_with_operator_and_client_ip() {
    let app = spawn_operator().await;
    app.import(&["alice"]).await;
    app.admin
        .portrait_set("alice", &[(NICK, json!("Alice")), (LEVEL, json!(7))])
        .await
        .unwrap()
        .expect_ok();
    app.user("alice")
        .update_my_profile(&[(HOBBY, json!("chess"))], None)
        .await
        .unwrap()
        .expect_ok();
    let op = operator(&app);

    let view = op.account(APP, "alice").await.unwrap();
    assert_eq!(view.user_id, "alice");
    let log = app.store.changes_since(APP, 0, 100).await.unwrap();
    let mine: Vec<_> = log.iter().filter(|c| c.user == "alice").collect();
    assert_eq!(
        view.version,
        mine.last().unwrap().version,
        "the newest change"
    );
    assert_eq!(view.profile[NICK], json!("Alice"));
    assert_eq!(view.profile[LEVEL], json!(7));
    assert_eq!(view.profile[HOBBY], json!("chess"));
    assert_eq!(view.kicked_until, None);
    let summary: Vec<(u64, &str, &str, Option<&str>)> = view
        .changes
        .iter()
        .map(|c| {
            (
                c.version,
                c.kind.as_str(),
                c.operator.as_str(),
                c.client_ip.as_deref(),
            )
        })
        .collect();
    let expected: Vec<(u64, &str, &str, Option<&str>)> = mine
        .iter()
        .rev()
        .map(|c| {
            (
                c.version,
                c.kind.as_str(),
                c.operator.as_str(),
                Some("127.0.0.1"),
            )
        })
        .collect();
    assert_eq!(summary, expected, "newest first, with who and from where");
    assert_eq!(summary[0].2, "alice", "the user's own change");
    assert_eq!(summary[1].2, ADMIN);
    assert_eq!(summary[2].1, "import");
    assert_eq!(
        view.changes[0].items,
        BTreeMap::from([(HOBBY.to_owned(), json!("chess"))])
    );
    assert_eq!(
        view.changes[1].items,
        BTreeMap::from([
            (NICK.to_owned(), json!("Alice")),
            (LEVEL.to_owned(), json!(7))
        ])
    );
    assert!(view.changes[0].at_ms >= view.changes[1].at_ms);

    // Only the newest 50 changes.
    for i in 0..55 {
        app.admin
            .portrait_set("alice", &[(LEVEL, json!(i))])
            .await
            .unwrap()
            .expect_ok();
    }
    let view = op.account(APP, "alice").await.unwrap();
    assert_eq!(view.changes.len(), 50);
    assert_eq!(view.changes[0].version, view.version);
    assert_eq!(view.changes[0].items[LEVEL], json!(54));
    assert!(view.changes.windows(2).all(|w| w[0].version > w[1].version));

    for missing in ["nobody", "\u{e9}"] {
        assert_eq!(
            refused(op.account(APP, missing).await),
            (404, "account_not_found".to_owned()),
            "{missing}"
        );
    }
    assert_eq!(
        refused(op.account(1_499_999_999, "alice").await),
        (404, "app_not_found".to_owned())
    );
}

#[tokio::test]
async fn an_odd_user_id_is_reached_through_the_path() {
    let app = spawn_operator().await;
    let odd = "a/b?c#d%e f";
    app.import(&[odd]).await;
    let op = operator(&app);
    assert_eq!(op.account(APP, odd).await.unwrap().user_id, odd);
    op.delete_account(APP, odd).await.unwrap();
    assert_eq!(app.statuses(&[odd]).await, ["NotImported"]);
}

#[tokio::test]
async fn a_kick_through_the_operator_api_refuses_the_users_old_usersig() {
    let app = spawn_operator().await;
    app.import(&["alice"]).await;
    let old = mint(APP, KEY, "alice", now() - 10, 3600);
    let code = |sig: String| {
        let base = app.base.clone();
        async move {
            UserClient::new(&base, APP, "alice", sig)
                .get_my_profile(None)
                .await
                .unwrap()
                .code()
        }
    };
    assert_eq!(code(old.clone()).await, 0);
    let op = operator(&app);
    let before = now();
    op.kick(APP, "alice").await.unwrap();
    assert_eq!(code(old).await, 70001, "revoked, as by the REST kick");
    let until = op.account(APP, "alice").await.unwrap().kicked_until;
    assert!(
        until.is_some_and(|t| t >= before && t <= now() + 10),
        "{until:?}"
    );
    assert_eq!(
        app.store.kicks(APP).await.unwrap()[0].0,
        "alice",
        "stored, for every node"
    );
    assert_eq!(
        refused(op.kick(APP, "nobody").await),
        (404, "account_not_found".to_owned())
    );
}

#[tokio::test]
async fn a_kick_through_the_operator_api_closes_the_users_connections() {
    let app = spawn_operator().await;
    app.import(&["alice"]).await;
    let mut alice = app.user("alice").connect(None, &[]).await.unwrap();
    crate::push::ready(&mut alice).await;
    operator(&app).kick(APP, "alice").await.unwrap();
    assert!(matches!(
        alice.frame(crate::push::WAIT).await.unwrap(),
        Frame::Error { code: 70001, .. }
    ));
    assert!(matches!(
        alice.next().await.unwrap(),
        Some(Incoming::Closed(4002, _))
    ));
}

#[tokio::test]
async fn a_delete_through_the_operator_api_is_recorded_and_the_account_is_gone() {
    let app = spawn_operator().await;
    app.import(&["alice", "bob"]).await;
    let op = operator(&app);
    op.delete_account(APP, "alice").await.unwrap();

    let r = app.admin.portrait_get(&["alice"], &[NICK]).await.unwrap();
    let b = r.expect_ok();
    assert_eq!(b["Fail_Account"], json!(["alice"]));
    assert_eq!(b["UserProfileItem"][0]["ResultCode"], 40003);
    let log = app.store.changes_since(APP, 0, 100).await.unwrap();
    let delete = log.last().unwrap();
    assert_eq!(
        (delete.user.as_str(), delete.kind, delete.operator.as_str()),
        ("alice", ChangeKind::Delete, "portrait"),
        "recorded as made by Portrait's operator"
    );
    assert_eq!(delete.client_ip, "127.0.0.1");
    assert_eq!(
        op.accounts(APP, "", None, None).await.unwrap().accounts,
        ["admin2", ADMIN, "bob"]
    );
    assert_eq!(
        refused(op.delete_account(APP, "alice").await),
        (404, "account_not_found".to_owned()),
        "already gone"
    );
    assert_eq!(
        refused(op.account(APP, "alice").await),
        (404, "account_not_found".to_owned())
    );
}

/// A callback receiver that accepts everything, or refuses (500) while `refusing`.
async fn receiver(refusing: Arc<AtomicBool>) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/callback", listener.local_addr().unwrap());
    let app = axum::Router::new().route(
        "/callback",
        axum::routing::post(move || {
            let refusing = refusing.clone();
            async move {
                if refusing.load(Ordering::SeqCst) {
                    axum::http::StatusCode::INTERNAL_SERVER_ERROR
                } else {
                    axum::http::StatusCode::OK
                }
            }
        }),
    );
    tokio::spawn(async move { axum::serve(listener, app).await });
    url
}

/// Polls the webhook state of [`APP`] (at most 10 s) until `done` holds; returns it.
async fn webhook_until(
    op: &Operator,
    what: &str,
    done: impl Fn(&WebhookState) -> bool,
) -> WebhookState {
    let mut last = None;
    for _ in 0..200 {
        let state = op.webhook(APP).await.unwrap();
        if done(&state) {
            return state;
        }
        last = Some(state);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("webhook state never showed {what}: {last:?}");
}

#[tokio::test]
async fn webhook_state_shows_the_lag_and_failures_then_no_lag_after_delivery() {
    let refusing = Arc::new(AtomicBool::new(true));
    let url = receiver(refusing.clone()).await;
    let app = spawn_operator_with(
        vec![crate::webhook::with_webhook(&url), other_app()],
        PushSettings::default(),
    )
    .await;
    let op = operator(&app);
    let ready = webhook_until(&op, "the lease taken", |s| s.delivering_here).await;
    assert!(ready.configured);
    assert_eq!(ready.lag, 0);
    assert!(ready.recent_failures.is_empty());

    app.import(&["alice"]).await;
    app.admin
        .portrait_set("alice", &[(NICK, json!("Alice"))])
        .await
        .unwrap()
        .expect_ok();
    let version = app.store.current_version(APP).await.unwrap();
    let failing = webhook_until(&op, "a failure", |s| !s.recent_failures.is_empty()).await;
    assert_eq!(failing.head, version);
    assert!(failing.lag >= 1, "{failing:?}");
    assert_eq!(failing.lag, failing.head - failing.cursor);
    let f = &failing.recent_failures[0];
    assert_eq!((f.user_id.as_str(), f.version), ("alice", version));
    assert!(f.error.contains("500"), "{f:?}");

    refusing.store(false, Ordering::SeqCst);
    let delivered = webhook_until(&op, "no lag", |s| s.lag == 0).await;
    assert_eq!((delivered.cursor, delivered.head), (version, version));
    assert!(
        !delivered.recent_failures.is_empty(),
        "the failures stay listed"
    );

    let none = op.webhook(OTHER_APP).await.unwrap();
    assert!(!none.configured && !none.delivering_here, "{none:?}");
    assert_eq!(none.lag, 0);
}

#[tokio::test]
async fn account_endpoints_refuse_a_missing_or_wrong_token() {
    let app = spawn_operator().await;
    app.import(&["alice"]).await;
    let wrong = operator_as(&app, "not-the-operator-token");
    let unauthorized = (401, "unauthorized".to_owned());
    assert_eq!(
        refused(wrong.accounts(APP, "", None, None).await),
        unauthorized
    );
    assert_eq!(refused(wrong.account(APP, "alice").await), unauthorized);
    assert_eq!(refused(wrong.kick(APP, "alice").await), unauthorized);
    assert_eq!(
        refused(wrong.delete_account(APP, "alice").await),
        unauthorized
    );
    assert_eq!(refused(wrong.webhook(APP).await), unauthorized);
    let resp = app
        .http
        .delete(format!("{}/admin/v1/apps/{APP}/accounts/alice", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401, "no token at all");
    assert_eq!(app.statuses(&["alice"]).await, ["Imported"], "not deleted");
    assert!(app.store.kicks(APP).await.unwrap().is_empty(), "not kicked");

    // And the same node's API is off without a token configured.
    let off = spawn_app().await;
    assert_eq!(
        refused(operator(&off).accounts(APP, "", None, None).await),
        (404, "not_found".to_owned())
    );
}
