//! Hostile and slow clients at the edge (issue #15): connection timeouts and the connection cap,
//! kept-alive sockets after early refusals, WebSocket message and op limits, clients that stop
//! reading, client-API rate limits and UserSigs dated in the future. Everything over real
//! sockets against the real server.

use std::time::{Duration, Instant};

use futures_util::StreamExt;
use portrait_client::user::{Frame, Incoming, UserClient};
use portrait_server::settings::{PushSettings, ServerSettings};
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::helpers::*;

const WAIT: Duration = Duration::from_secs(5);

fn addr(app: &TestApp) -> String {
    app.base.trim_start_matches("http://").to_owned()
}

/// One HTTP/1.1 answer read off a raw socket: status, head, body. `None` if the server closed
/// the connection before a whole answer.
async fn read_answer(s: &mut TcpStream) -> Option<(u16, String, String)> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let head_end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        let n = tokio::time::timeout(WAIT, s.read(&mut chunk))
            .await
            .expect("an answer within 5 s")
            .ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).to_string();
    let status: u16 = head[9..12].parse().unwrap();
    let len: usize = head
        .lines()
        .find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case("content-length")
                .then(|| v.trim().parse().unwrap())
        })
        .unwrap_or(0);
    while buf.len() < head_end + len {
        let n = tokio::time::timeout(WAIT, s.read(&mut chunk))
            .await
            .expect("the body within 5 s")
            .ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    let body = String::from_utf8_lossy(&buf[head_end..head_end + len]).to_string();
    Some((status, head, body))
}

/// Whether the server closes `s` within `within` (reads return EOF or an error).
async fn closed_within(s: &mut TcpStream, within: Duration) -> bool {
    let mut chunk = [0u8; 1024];
    let deadline = Instant::now() + within;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, s.read(&mut chunk)).await {
            Err(_) => return false,
            Ok(Ok(0)) | Ok(Err(_)) => return true,
            Ok(Ok(_)) => {}
        }
    }
}

fn post(path_and_query: &str, body: &str) -> Vec<u8> {
    format!(
        "POST {path_and_query} HTTP/1.1\r\nhost: portrait\r\ncontent-type: application/json\r\n\
         content-length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

fn short_timeouts() -> ServerSettings {
    ServerSettings {
        header_timeout_ms: 400,
        keepalive_timeout_ms: 800,
        ..server_settings()
    }
}

#[tokio::test]
async fn connections_that_send_nothing_or_half_a_head_are_closed_after_the_header_timeout() {
    let app = spawn_app_server(short_timeouts(), PushSettings::default()).await;
    let mut silent = TcpStream::connect(addr(&app)).await.unwrap();
    let mut slow = TcpStream::connect(addr(&app)).await.unwrap();
    slow.write_all(b"GET /healthz HTTP/1.1\r\nhost: portrait\r\n")
        .await
        .unwrap();
    // A slowloris keeps adding header lines, never finishing the head.
    let trickle = async {
        for i in 0..8 {
            tokio::time::sleep(Duration::from_millis(100)).await;
            if slow
                .write_all(format!("x-slow-{i}: 1\r\n").as_bytes())
                .await
                .is_err()
            {
                break;
            }
        }
    };
    let started = Instant::now();
    let (silent_closed, ()) = tokio::join!(closed_within(&mut silent, WAIT), trickle);
    assert!(silent_closed, "a silent connection stays open");
    assert!(
        started.elapsed() >= Duration::from_millis(300),
        "closed before the header timeout"
    );
    assert!(
        closed_within(&mut slow, WAIT).await,
        "a connection sending its head slowly stays open"
    );
    // The server still answers.
    let r = app
        .http
        .get(format!("{}/healthz", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(r.text().await.unwrap(), "ok");
}

#[tokio::test]
async fn an_idle_kept_alive_connection_is_closed_after_the_keepalive_timeout() {
    let app = spawn_app_server(short_timeouts(), PushSettings::default()).await;
    let mut s = TcpStream::connect(addr(&app)).await.unwrap();
    for _ in 0..3 {
        // Requests on one connection, each within the timeout of the previous one.
        s.write_all(b"GET /healthz HTTP/1.1\r\nhost: portrait\r\n\r\n")
            .await
            .unwrap();
        let (status, _, body) = read_answer(&mut s).await.expect("an answer");
        assert_eq!((status, body.as_str()), (200, "ok"));
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    let idle = Instant::now();
    assert!(
        closed_within(&mut s, WAIT).await,
        "an idle keep-alive stays open"
    );
    assert!(
        idle.elapsed() >= Duration::from_millis(400),
        "closed too early"
    );
}

#[tokio::test]
async fn with_the_cap_held_by_idle_and_slow_clients_health_and_admin_reads_still_answer() {
    let server = ServerSettings {
        max_connections: 20,
        ..server_settings()
    };
    let app = spawn_app_server(server, PushSettings::default()).await;
    app.import(&["alice"]).await;
    let mut held = Vec::new();
    for i in 0..60 {
        let mut s = TcpStream::connect(addr(&app)).await.unwrap();
        match i % 3 {
            // Half a head.
            0 => s
                .write_all(b"POST /v4/profile/portrait_get HTTP/1.1\r\nhost: x\r\n")
                .await
                .unwrap(),
            // A whole head, then a body that never ends.
            1 => s
                .write_all(b"POST /v4/profile/portrait_get HTTP/1.1\r\nhost: x\r\ncontent-length: 1000\r\n\r\n{\"To_")
                .await
                .unwrap(),
            // Nothing at all.
            _ => {}
        }
        held.push(s);
    }
    for _ in 0..5 {
        let r = reqwest::Client::new()
            .get(format!("{}/healthz", app.base))
            .timeout(WAIT)
            .send()
            .await
            .expect("/healthz answers while idle clients hold the cap");
        assert_eq!(r.text().await.unwrap(), "ok");
        let r = app
            .admin
            .portrait_get(&["alice"], &[NICK])
            .await
            .expect("an authenticated read answers while idle clients hold the cap");
        assert_eq!(r.code(), 0, "{:?}", r.0);
    }
    // The oldest idle ones made room.
    let mut evicted = 0;
    for s in &mut held[..30] {
        if closed_within(s, Duration::from_millis(200)).await {
            evicted += 1;
        }
    }
    assert!(evicted > 0, "no idle connection was evicted");
}

#[tokio::test]
async fn when_every_connection_is_busy_a_new_one_is_answered_503_at_once() {
    let server = ServerSettings {
        max_connections: 3,
        ..server_settings()
    };
    let app = spawn_app_server(server, PushSettings::default()).await;
    app.import(&["alice"]).await;
    // Upgraded WebSockets are connections in use: never evicted.
    let mut sockets = Vec::new();
    for _ in 0..3 {
        let mut s = app.user("alice").connect(None, &[]).await.unwrap();
        assert!(matches!(s.frame(WAIT).await.unwrap(), Frame::Ready { .. }));
        sockets.push(s);
    }
    let started = Instant::now();
    let mut s = TcpStream::connect(addr(&app)).await.unwrap();
    s.write_all(b"GET /healthz HTTP/1.1\r\nhost: x\r\n\r\n")
        .await
        .unwrap();
    let (status, head, body) = read_answer(&mut s).await.expect("an answer");
    assert!(started.elapsed() < Duration::from_secs(2));
    assert_eq!(status, 503, "{head}");
    assert!(head.to_ascii_lowercase().contains("connection: close"));
    let body: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(body["ErrorCode"], 60007, "{body}");
    // Once a WebSocket goes, connections are served again.
    sockets.pop().unwrap().close().await;
    let deadline = Instant::now() + WAIT;
    loop {
        // While still full, the 503 is written before the request is read: reqwest calls
        // that an error.
        let r = reqwest::Client::new()
            .get(format!("{}/healthz", app.base))
            .send()
            .await;
        if r.is_ok_and(|r| r.status() == 200) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "still refused after a slot freed"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn a_call_refused_before_its_body_is_read_leaves_the_kept_alive_connection_usable() {
    let app = spawn_app().await;
    app.import(&["alice"]).await;
    let good = app.url(PORTRAIT_GET);
    let good = &good[good.find("/v4").unwrap()..];
    let bad_sig = format!(
        "/v4/profile/portrait_get?{}",
        query(APP, ADMIN, "garbage-sig")
    );
    let not_admin = format!(
        "/v4/profile/portrait_get?{}",
        query(APP, "alice", &sig(APP, KEY, "alice"))
    );
    let no_app = "/v4/profile/portrait_get?identifier=x&usersig=y";
    let body = json!({"To_Account": ["alice"], "TagList": [NICK]}).to_string();
    let mut s = TcpStream::connect(addr(&app)).await.unwrap();
    for round in 0..20 {
        for (path, code) in [
            (bad_sig.as_str(), 70003),
            (not_admin.as_str(), 40004),
            (no_app, 60012),
            (good, 0),
        ] {
            s.write_all(&post(path, &body)).await.unwrap();
            let (status, head, answer) = read_answer(&mut s)
                .await
                .unwrap_or_else(|| panic!("round {round}: the socket was closed after {path}"));
            assert_eq!(status, 200, "{head}");
            assert!(!head.to_ascii_lowercase().contains("connection: close"));
            let answer: Value = serde_json::from_str(&answer).unwrap();
            assert_eq!(answer["ErrorCode"], code, "{answer}");
        }
    }
    // A body over the limit is refused and the answer says the connection closes.
    let huge = "x".repeat((1 << 20) + 1);
    s.write_all(&post(good, &huge)).await.unwrap();
    let (_, head, answer) = read_answer(&mut s).await.expect("an answer");
    assert!(
        head.to_ascii_lowercase().contains("connection: close"),
        "{head}"
    );
    let answer: Value = serde_json::from_str(&answer).unwrap();
    assert_eq!(answer["ErrorCode"], 40001, "{answer}");
}

#[tokio::test]
async fn websocket_messages_over_the_limit_close_with_1009_before_and_after_sign_in() {
    let push = PushSettings {
        max_message_bytes: 16 << 10,
        ..PushSettings::default()
    };
    let app = spawn_app_server(server_settings(), push).await;
    app.import(&["alice"]).await;
    // Signed in: ops up to the limit are read, a larger message closes with 1009.
    let mut s = app.user("alice").connect(None, &[]).await.unwrap();
    assert!(matches!(s.frame(WAIT).await.unwrap(), Frame::Ready { .. }));
    s.send(&json!({"op": "ping", "pad": "x".repeat(10 << 10)}))
        .await
        .unwrap();
    assert!(matches!(s.frame(WAIT).await.unwrap(), Frame::Pong));
    let _ = s
        .send(&json!({"op": "ping", "pad": "x".repeat(4 << 20)}))
        .await;
    let closed = tokio::time::timeout(WAIT, s.next()).await.expect("closed");
    assert!(
        matches!(closed, Ok(Some(Incoming::Closed(1009, _))) | Ok(None)),
        "{closed:?}"
    );
    // Refused at sign-in: even 4 KiB is too much while the server waits for the close.
    let refused = UserClient::new(&app.base, APP, "alice", "garbage");
    let mut s = refused.connect(None, &[]).await.unwrap();
    assert!(matches!(
        s.frame(WAIT).await.unwrap(),
        Frame::Error { code: 70003, .. }
    ));
    let _ = s.send(&json!({"pad": "x".repeat(4 << 10)})).await;
    let started = Instant::now();
    while let Ok(Some(Incoming::Frame(_))) =
        tokio::time::timeout(WAIT, s.next()).await.expect("closed")
    {}
    assert!(started.elapsed() < Duration::from_secs(2));
}

#[tokio::test]
async fn a_websocket_client_over_its_op_rate_gets_60007_then_is_closed_1008() {
    let push = PushSettings {
        ops_per_sec: 5,
        ..PushSettings::default()
    };
    let app = spawn_app_server(server_settings(), push).await;
    app.import(&["alice"]).await;
    let mut s = app.user("alice").connect(None, &[]).await.unwrap();
    assert!(matches!(s.frame(WAIT).await.unwrap(), Frame::Ready { .. }));
    for _ in 0..40 {
        if s.send(&json!({"op": "ping"})).await.is_err() {
            break;
        }
    }
    let (mut pongs, mut limited) = (0, 0);
    let close = loop {
        match tokio::time::timeout(WAIT, s.next()).await.expect("frames") {
            Ok(Some(Incoming::Frame(Frame::Pong))) => pongs += 1,
            Ok(Some(Incoming::Frame(Frame::Error { code: 60007, .. }))) => limited += 1,
            Ok(Some(Incoming::Closed(code, _))) => break code,
            other => panic!("{other:?}"),
        }
    };
    assert!((5..=7).contains(&pongs), "{pongs} pongs");
    assert!(limited >= 1, "no 60007");
    assert_eq!(close, 1008);
}

#[tokio::test]
async fn a_websocket_client_that_stops_reading_is_closed_after_the_write_timeout() {
    let server = ServerSettings {
        write_timeout_ms: 1_000,
        ..server_settings()
    };
    let app = spawn_app_server(server, PushSettings::default()).await;
    let users: Vec<String> = (0..1000).map(|i| format!("u{i}")).collect();
    let refs: Vec<&str> = users.iter().map(String::as_str).collect();
    app.import(&["reader"]).await;
    let list: Vec<Value> = refs.iter().map(|u| json!({"UserID": u})).collect();
    app.call(PORTRAIT_IMPORT, &json!({"AccountList": list}))
        .await
        .expect_ok();
    // The client subscribes to 999 accounts over a socket with a small receive buffer, then
    // never reads again.
    let url = app.user("reader").ws_url(None, &refs[..999]);
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    let tcp = socket.connect(addr(&app).parse().unwrap()).await.unwrap();
    let (mut ws, _) = tokio_tungstenite::client_async(url, tcp).await.unwrap();
    let first = ws.next().await.unwrap().unwrap();
    assert!(first.to_text().unwrap().contains("\"ready\""), "{first:?}");
    let nick = "n".repeat(480);
    let started = Instant::now();
    // Far more than the socket buffers hold (about 12 MB): the server's writes block.
    for round in 0..25 {
        let list: Vec<Value> = refs[..999]
            .iter()
            .map(|u| json!({"UserID": u, "ProfileItem": [{"Tag": NICK, "Value": format!("{round:02}{nick}")}]}))
            .collect();
        app.call(PORTRAIT_IMPORT, &json!({"AccountList": list}))
            .await
            .expect_ok();
    }
    tokio::time::sleep(Duration::from_millis(1500)).await;
    // Reading now drains what the buffers held, then the connection ends without a close
    // handshake.
    let ended = tokio::time::timeout(Duration::from_secs(30), async {
        loop {
            match ws.next().await {
                Some(Ok(tokio_tungstenite::tungstenite::Message::Text(_))) => {}
                other => return other,
            }
        }
    })
    .await
    .expect("the connection of a client that stopped reading was never closed");
    assert!(
        !matches!(
            ended,
            Some(Ok(tokio_tungstenite::tungstenite::Message::Close(_)))
        ),
        "{ended:?}"
    );
    assert!(started.elapsed() >= Duration::from_millis(900));
}

#[tokio::test]
async fn the_client_api_holds_each_user_and_the_app_to_their_rates() {
    let mut cfg = test_app();
    cfg.client_rate_limits.user_writes = 3;
    cfg.client_rate_limits.user_reads = 50;
    cfg.client_rate_limits.app_reads = 8;
    let app = spawn_app_with(vec![cfg, other_app()]).await;
    app.import(&["alice", "bob"]).await;
    let alice = app.user("alice");
    let item = |v: &str| vec![(NICK, json!(v))];
    let mut codes = Vec::new();
    for i in 0..6 {
        let r = alice
            .update_my_profile(&item(&format!("a{i}")), None)
            .await
            .unwrap();
        codes.push(r.code());
    }
    assert_eq!(&codes[..3], &[0, 0, 0], "{codes:?}");
    assert!(codes[3..].iter().all(|c| *c == 60007), "{codes:?}");
    // What was refused did nothing.
    assert_eq!(app.value("alice", NICK).await, Some(json!("a2")));
    // Another user has a budget of their own.
    let r = app
        .user("bob")
        .update_my_profile(&item("b"), None)
        .await
        .unwrap();
    assert_eq!(r.code(), 0, "{:?}", r.0);
    // The app's read budget (8/s) is shared by every user.
    let mut refused = 0;
    for i in 0..12 {
        let who = if i % 2 == 0 { "alice" } else { "bob" };
        let r = app.user(who).get_my_profile(None).await.unwrap();
        if r.code() == 60007 {
            assert!(
                r.0["ErrorInfo"].as_str().unwrap().contains("for the app"),
                "{:?}",
                r.0
            );
            refused += 1;
        }
    }
    assert!(refused >= 3, "{refused} of 12 refused");
}

#[tokio::test]
async fn a_usersig_dated_in_the_future_is_refused_beyond_the_skew_and_revoked_by_a_kick_within_it()
{
    let app = spawn_app().await;
    app.import(&["alice"]).await;
    let far = UserClient::new(
        &app.base,
        APP,
        "alice",
        portrait_core::usersig::mint(APP, KEY, "alice", now() + 3600, 86_400),
    );
    let r = far.get_my_profile(None).await.unwrap();
    assert_eq!(r.code(), 70005, "{:?}", r.0);
    // Within the skew (2 s): accepted, and revoked by a kick made now.
    let near = UserClient::new(
        &app.base,
        APP,
        "alice",
        portrait_core::usersig::mint(APP, KEY, "alice", now() + 1, 86_400),
    );
    assert_eq!(near.get_my_profile(None).await.unwrap().code(), 0);
    app.admin.kick("alice").await.unwrap().expect_ok();
    assert_eq!(near.get_my_profile(None).await.unwrap().code(), 70001);
}

#[tokio::test]
async fn a_websocket_client_sending_steadily_over_its_op_rate_is_closed_1008() {
    let push = PushSettings {
        ops_per_sec: 5,
        ..PushSettings::default()
    };
    let app = spawn_app_server(server_settings(), push).await;
    app.import(&["alice"]).await;
    let mut s = app.user("alice").connect(None, &[]).await.unwrap();
    assert!(matches!(s.frame(WAIT).await.unwrap(), Frame::Ready { .. }));
    // About 100 messages a second, spread out: some always pass, the rest are refused.
    let started = Instant::now();
    let close = loop {
        assert!(started.elapsed() < WAIT, "never closed");
        if s.send(&json!({"op": "ping"})).await.is_err() {
            break s.next().await;
        }
        match tokio::time::timeout(Duration::from_millis(10), s.next()).await {
            Ok(Ok(Some(Incoming::Closed(code, why)))) => {
                break Ok(Some(Incoming::Closed(code, why)))
            }
            Ok(Ok(Some(Incoming::Frame(_)))) | Err(_) => {}
            Ok(other) => break other,
        }
    };
    assert!(
        matches!(close, Ok(Some(Incoming::Closed(1008, _))) | Ok(None)),
        "{close:?}"
    );
}

#[tokio::test]
async fn a_request_head_far_over_64_kib_closes_the_connection() {
    let app = spawn_app().await;
    let mut s = TcpStream::connect(addr(&app)).await.unwrap();
    s.write_all(b"GET /healthz HTTP/1.1\r\nhost: x\r\n")
        .await
        .unwrap();
    // 200 KiB in 20 lines (hyper itself would take up to about 400 KiB and 100 lines).
    let line = format!("x-pad: {}\r\n", "p".repeat(10_000));
    for _ in 0..20 {
        if s.write_all(line.as_bytes()).await.is_err() {
            break;
        }
    }
    assert!(closed_within(&mut s, WAIT).await, "a 200 KiB head was kept");
}
