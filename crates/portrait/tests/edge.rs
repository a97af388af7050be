//! The real binary under a descriptor shortage (issue #15, defect 1): with an open-file limit of
//! 256, a thousand idle and half-sent connections used to make `/healthz` time out. The server
//! raises its soft limit to the hard one, sizes its connection cap from it, and evicts the
//! connections idle the longest, so health checks and authenticated calls keep answering.

mod common;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use portrait_client::AdminClient;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

fn p99(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[(v.len() * 99 / 100).min(v.len() - 1)]
}

#[tokio::test]
async fn with_1000_idle_and_half_sent_connections_on_256_descriptors_health_and_reads_answer() {
    let dir = tempfile::tempdir().unwrap();
    // `ulimit -n` sets the soft and the hard limit: the server cannot raise it past 256.
    let mut cmd = Command::new("sh");
    cmd.arg("-c")
        .arg("ulimit -n 256 && exec \"$0\" \"$@\"")
        .arg(env!("CARGO_BIN_EXE_portrait"))
        .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(dir.path())
        .current_dir(dir.path())
        .env("RUST_LOG", "error")
        .env("PORTRAIT_APPS", common::apps_env())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit());
    for (k, _) in std::env::vars_os() {
        if k.to_string_lossy().starts_with("PORTRAIT_") && k != "PORTRAIT_APPS" {
            cmd.env_remove(k);
        }
    }
    let node = common::launch(cmd);
    let addr = node.base.trim_start_matches("http://").to_owned();
    let admin = AdminClient::new(&node.base, common::APP, "administrator", common::KEY);
    assert_eq!(
        admin
            .account_import("alice", Some("Alice"), None)
            .await
            .unwrap()
            .code(),
        0
    );

    let mut held = Vec::new();
    for i in 0..1000 {
        let Ok(mut s) = TcpStream::connect(&addr).await else {
            continue; // the backlog may be full for a moment
        };
        if i % 2 == 1 {
            let _ = s
                .write_all(b"POST /v4/profile/portrait_get HTTP/1.1\r\nhost: x\r\n")
                .await;
        }
        held.push(s);
    }
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()
        .unwrap();
    let (mut health, mut reads) = (Vec::new(), Vec::new());
    for _ in 0..50 {
        let t = Instant::now();
        let r = http
            .get(format!("{}/healthz", node.base))
            .send()
            .await
            .expect("/healthz answers while 1000 connections are held");
        assert_eq!(r.text().await.unwrap(), "ok");
        health.push(t.elapsed());
        let t = Instant::now();
        let r = admin
            .portrait_get(&["alice"], &["Tag_Profile_IM_Nick"])
            .await
            .expect("portrait_get answers while 1000 connections are held");
        assert_eq!(
            r.0["UserProfileItem"][0]["ProfileItem"][0]["Value"],
            "Alice"
        );
        reads.push(t.elapsed());
    }
    println!(
        "held {} connections on 256 descriptors: /healthz p99 {:?}, portrait_get p99 {:?}",
        held.len(),
        p99(health),
        p99(reads)
    );
}
