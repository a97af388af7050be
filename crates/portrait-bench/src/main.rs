//! Benchmark helpers driven by `bench/run.sh`. HTTP load itself comes from `wrk`; this binary
//! does only what no load tool does:
//!
//! * `trivial`: an axum server answering every request with a fixed 321-byte JSON body — the
//!   ceiling that W1 is compared against, measured in the same run with the same wrk parameters;
//! * `load`: imports N accounts through `multiaccount_import` (100 per call, Nick + FaceUrl) with
//!   C concurrent connections, and prints the elapsed time;
//! * `push`: W4, WebSocket push latency (1 subscriber) and fan-out (N subscribers); see [`push`].

use std::time::Instant;

use anyhow::Context;
use clap::{Parser, Subcommand};
use portrait_client::AdminClient;
use serde_json::json;

mod push;

#[derive(Parser)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Serve a fixed 321-byte JSON body on every path.
    Trivial {
        #[arg(long, default_value = "127.0.0.1:8099")]
        listen: std::net::SocketAddr,
    },
    /// Import `--accounts` accounts named `u<N>` through multiaccount_import.
    Load {
        #[arg(long)]
        base: String,
        #[arg(long)]
        sdkappid: u64,
        #[arg(long)]
        key: String,
        #[arg(long, default_value = "administrator")]
        admin: String,
        #[arg(long)]
        accounts: usize,
        #[arg(long, default_value_t = 8)]
        concurrency: usize,
    },
    /// W4: write-ack → event latency for 1 subscriber, then one writer fanned out to
    /// `--subscribers` WebSocket connections (accounts `w4*`, imported here).
    Push {
        #[arg(long)]
        base: String,
        #[arg(long)]
        sdkappid: u64,
        #[arg(long)]
        key: String,
        #[arg(long, default_value = "administrator")]
        admin: String,
        /// Connections of the fan-out phase (0 skips it).
        #[arg(long, default_value_t = 10_000)]
        subscribers: usize,
        /// Sequential writes of the 1-subscriber latency phase (0 skips it).
        #[arg(long, default_value_t = 2000)]
        samples: usize,
        /// Writes of the fan-out phase.
        #[arg(long, default_value_t = 5)]
        writes: usize,
        /// Pause between fan-out writes.
        #[arg(long, default_value_t = 500)]
        spacing_ms: u64,
        /// WebSocket handshakes in flight at once while the subscribers connect.
        #[arg(long, default_value_t = 200)]
        concurrency: usize,
        /// Read buffer of each subscriber socket, in bytes (tungstenite's default is 131072 and
        /// is zero-filled before every read).
        #[arg(long, default_value_t = 4096)]
        read_buffer: usize,
    },
}

/// A 321-byte body shaped like a portrait_get answer.
fn fixed_body() -> String {
    let mut body = String::from(
        r#"{"ActionStatus":"OK","ErrorCode":0,"ErrorInfo":"","ErrorDisplay":"","UserProfileItem":[{"To_Account":"u1","ProfileItem":[{"Tag":"Tag_Profile_IM_Nick","Value":"nick1"},{"Tag":"Tag_Profile_IM_Gender","Value":"Gender_Type_Unknown"},{"Tag":"Tag_Profile_IM_Level","Value":0}],"ResultCode":0,"ResultInfo":""}],"pad":""#,
    );
    while body.len() < 321 - 2 {
        body.push('x');
    }
    body.push_str("\"}");
    assert_eq!(body.len(), 321);
    body
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let rt = tokio::runtime::Runtime::new()?;
    match cli.cmd {
        Cmd::Trivial { listen } => rt.block_on(async move {
            let body: &'static str = Box::leak(fixed_body().into_boxed_str());
            let app = axum::Router::new().fallback(move || async move {
                ([(axum::http::header::CONTENT_TYPE, "application/json")], body)
            });
            let l = tokio::net::TcpListener::bind(listen).await?;
            println!("trivial: listening on http://{}", l.local_addr()?);
            axum::serve(l, app).await?;
            Ok(())
        }),
        Cmd::Load { base, sdkappid, key, admin, accounts, concurrency } => rt.block_on(async move {
            let client = AdminClient::new(base, sdkappid, admin, key);
            let started = Instant::now();
            let batches: Vec<(usize, usize)> =
                (0..accounts).step_by(100).map(|s| (s, (s + 100).min(accounts))).collect();
            let queue = std::sync::Arc::new(std::sync::Mutex::new(batches.into_iter()));
            let mut tasks = Vec::new();
            for _ in 0..concurrency {
                let (client, queue) = (client.clone(), queue.clone());
                tasks.push(tokio::spawn(async move {
                    loop {
                        let next = queue.lock().unwrap().next();
                        let Some((s, e)) = next else { return Ok::<_, anyhow::Error>(()) };
                        let list: Vec<_> = (s..e)
                            .map(|i| json!({"UserID": format!("u{i}"), "Nick": format!("nick{i}"), "FaceUrl": format!("https://img.example.com/a/{i}.png")}))
                            .collect();
                        let r = client.call("v4/im_open_login_svc/multiaccount_import", &json!({"AccountList": list})).await?;
                        anyhow::ensure!(r.code() == 0, "import failed: {:?}", r.0);
                    }
                }));
            }
            for t in tasks {
                t.await.context("loader task")??;
            }
            println!("loaded {accounts} accounts in {:.2} s", started.elapsed().as_secs_f64());
            Ok(())
        }),
        Cmd::Push {
            base,
            sdkappid,
            key,
            admin,
            subscribers,
            samples,
            writes,
            spacing_ms,
            concurrency,
            read_buffer,
        } => rt.block_on(push::run(push::Args {
            base,
            sdkappid,
            key,
            admin,
            subscribers,
            samples,
            writes,
            spacing_ms,
            concurrency,
            read_buffer,
        })),
    }
}
