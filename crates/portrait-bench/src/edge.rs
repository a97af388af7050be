//! `edge`: the figures of issue #15 against a running node (`bench/edge.sh` starts one):
//!
//! * held connections: with N idle and half-sent connections open, the p50/p99 of `/healthz`
//!   and of an authenticated `portrait_get`;
//! * an oversized WebSocket message: the node's RSS before and after a client sends a 60 MiB
//!   text message in four fragments, signed in and with a bad UserSig;
//! * one user's call rate: `update_my_profile` as fast as one user can send it, answered 0 and
//!   answered 60007 per second.

use std::time::{Duration, Instant};

use anyhow::Context;
use futures_util::SinkExt;
use portrait_client::user::UserClient;
use portrait_client::AdminClient;
use serde_json::json;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::protocol::frame::coding::{Data, OpCode};
use tokio_tungstenite::tungstenite::protocol::frame::Frame;
use tokio_tungstenite::tungstenite::Message;

/// Where the node is and who to be.
pub struct Target {
    pub base: String,
    pub sdkappid: u64,
    pub key: String,
    pub admin: String,
    /// The node's process id (for its RSS).
    pub pid: u32,
}

fn rss_kib(pid: u32) -> anyhow::Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .context("no VmRSS")
}

fn percentile(v: &mut [Duration], p: usize) -> Duration {
    v.sort();
    v[(v.len() * p / 100).min(v.len() - 1)]
}

/// Runs the three measurements and prints one line each.
pub async fn run(t: &Target, held: usize, rate_secs: u64) -> anyhow::Result<()> {
    let admin = AdminClient::new(&t.base, t.sdkappid, &t.admin, &t.key);
    let r = admin.account_import("edge-user", Some("e"), None).await?;
    anyhow::ensure!(r.code() == 0, "import: {:?}", r.0);

    // Held connections.
    let addr = t.base.trim_start_matches("http://").to_owned();
    let mut sockets = Vec::with_capacity(held);
    for i in 0..held {
        let mut s = TcpStream::connect(&addr).await?;
        if i % 2 == 1 {
            s.write_all(b"POST /v4/profile/portrait_get HTTP/1.1\r\nhost: x\r\n")
                .await?;
        }
        sockets.push(s);
    }
    let http = reqwest::Client::new();
    let (mut health, mut reads) = (Vec::new(), Vec::new());
    for _ in 0..200 {
        let at = Instant::now();
        let r = http.get(format!("{}/healthz", t.base)).send().await?;
        anyhow::ensure!(r.status() == 200, "/healthz {}", r.status());
        health.push(at.elapsed());
        let at = Instant::now();
        let r = admin
            .portrait_get(&["edge-user"], &["Tag_Profile_IM_Nick"])
            .await?;
        anyhow::ensure!(r.code() == 0, "portrait_get {:?}", r.0);
        reads.push(at.elapsed());
    }
    println!(
        "held {} idle/half-sent connections: /healthz p50 {:?} p99 {:?}; portrait_get p50 {:?} p99 {:?}",
        sockets.len(),
        percentile(&mut health, 50),
        percentile(&mut health, 99),
        percentile(&mut reads, 50),
        percentile(&mut reads, 99)
    );
    drop(sockets);

    // Oversized WebSocket messages.
    let sig = portrait_core::usersig::mint(
        t.sdkappid,
        &t.key,
        "edge-user",
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)?
            .as_secs(),
        3600,
    );
    for (label, usersig) in [("signed in", sig.as_str()), ("bad UserSig", "garbage")] {
        let before = rss_kib(t.pid)?;
        let user = UserClient::new(&t.base, t.sdkappid, "edge-user", usersig);
        let (mut ws, _) = tokio_tungstenite::connect_async(user.ws_url(None, &[])).await?;
        let fragment = vec![b'x'; 15 << 20];
        let started = Instant::now();
        let mut sent = 0usize;
        for i in 0..4 {
            let opcode = if i == 0 {
                OpCode::Data(Data::Text)
            } else {
                OpCode::Data(Data::Continue)
            };
            let frame = Frame::message(fragment.clone(), opcode, i == 3);
            if ws.send(Message::Frame(frame)).await.is_err() {
                break;
            }
            sent += fragment.len();
        }
        // Let the server read whatever it will, then look at its memory.
        tokio::time::sleep(Duration::from_millis(500)).await;
        let peak = rss_kib(t.pid)?;
        drop(ws);
        println!(
            "60 MiB WebSocket message ({label}): accepted {} MiB before the server closed, RSS {} → {} KiB (+{} KiB) in {:?}",
            sent >> 20,
            before,
            peak,
            peak.saturating_sub(before),
            started.elapsed()
        );
    }

    // One user's write rate.
    let user = UserClient::new(&t.base, t.sdkappid, "edge-user", &sig);
    let (mut ok, mut limited, mut other) = (0u64, 0u64, 0u64);
    let started = Instant::now();
    let mut i = 0u64;
    while started.elapsed() < Duration::from_secs(rate_secs) {
        i += 1;
        let r = user
            .update_my_profile(&[("Tag_Profile_IM_Nick", json!(format!("n{i}")))], None)
            .await?;
        match r.code() {
            0 => ok += 1,
            60007 => limited += 1,
            _ => other += 1,
        }
    }
    let secs = started.elapsed().as_secs_f64();
    println!(
        "one user's update_my_profile over {secs:.1} s: {:.1}/s answered 0, {:.0}/s answered 60007, {other} other",
        ok as f64 / secs,
        limited as f64 / secs
    );
    Ok(())
}
