//! Benchmark helpers driven by `bench/run.sh`. HTTP load itself comes from `wrk`; this binary
//! does only what no load tool does:
//!
//! * `trivial`: an axum server answering every request with a fixed 321-byte JSON body — the
//!   ceiling that W1 is compared against, measured in the same run with the same wrk parameters;
//! * `load`: imports N accounts through `multiaccount_import` (100 per call, Nick + FaceUrl) with
//!   C concurrent connections, and prints the elapsed time;
//! * `push`: W4, WebSocket push latency (1 subscriber) and fan-out (N subscribers); see [`push`];
//! * `edge`: the hardening figures of issue #15 (held connections, oversized WebSocket
//!   messages, one user's call rate); see [`edge`];
//! * `catchup`: the time of a WebSocket `subscribe` with `since` against the size of the app's
//!   change log; see [`catchup`].

use std::time::Instant;

use anyhow::Context;
use clap::{Parser, Subcommand};
use portrait_client::AdminClient;
use serde_json::json;

mod catchup;
mod edge;
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
    /// Import `--accounts` accounts named `<prefix><N>`: with `--fields 5` (Nick, Image, Gender,
    /// Level, Custom_Hobby) through `portrait_import`, 1000 per call; with `--fields 2` (Nick,
    /// FaceUrl) through the vendor's `multiaccount_import`, 100 per call.
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
        /// 5 (portrait_import) or 2 (multiaccount_import).
        #[arg(long, default_value_t = 5)]
        fields: u8,
        /// Account names are this prefix followed by a number from 0.
        #[arg(long, default_value = "u")]
        prefix: String,
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
    /// Issue #15's figures against a running node whose process id is `--pid`.
    Edge {
        #[arg(long)]
        base: String,
        #[arg(long)]
        sdkappid: u64,
        #[arg(long)]
        key: String,
        #[arg(long, default_value = "administrator")]
        admin: String,
        #[arg(long)]
        pid: u32,
        /// Idle and half-sent connections held while /healthz and portrait_get are timed.
        #[arg(long, default_value_t = 1000)]
        held: usize,
        /// Seconds one user sends update_my_profile as fast as it can.
        #[arg(long, default_value_t = 5)]
        rate_secs: u64,
    },
    /// Fill the app's change log with `--changes` imports, then time `--ops` WebSocket
    /// `subscribe`s with `since` 0 of `--accounts` accounts each (p50/p99).
    Catchup {
        #[arg(long)]
        base: String,
        #[arg(long)]
        sdkappid: u64,
        #[arg(long)]
        key: String,
        #[arg(long, default_value = "administrator")]
        admin: String,
        #[arg(long, default_value_t = 100_000)]
        changes: usize,
        #[arg(long, default_value_t = 50)]
        ops: usize,
        #[arg(long, default_value_t = 3)]
        accounts: usize,
        /// Account names are this prefix followed by a number from 0.
        #[arg(long, default_value = "cu")]
        prefix: String,
        /// Measure only (the log was filled by an earlier run).
        #[arg(long)]
        skip_fill: bool,
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
                (
                    [(axum::http::header::CONTENT_TYPE, "application/json")],
                    body,
                )
            });
            let l = tokio::net::TcpListener::bind(listen).await?;
            println!("trivial: listening on http://{}", l.local_addr()?);
            axum::serve(l, app).await?;
            Ok(())
        }),
        Cmd::Load {
            base,
            sdkappid,
            key,
            admin,
            accounts,
            concurrency,
            fields,
            prefix,
        } => {
            anyhow::ensure!(fields == 2 || fields == 5, "--fields is 2 or 5");
            rt.block_on(load(
                AdminClient::new(base, sdkappid, admin, key),
                accounts,
                concurrency,
                fields,
                prefix,
            ))
        }
        Cmd::Edge {
            base,
            sdkappid,
            key,
            admin,
            pid,
            held,
            rate_secs,
        } => rt.block_on(edge::run(
            &edge::Target {
                base,
                sdkappid,
                key,
                admin,
                pid,
            },
            held,
            rate_secs,
        )),
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
        Cmd::Catchup {
            base,
            sdkappid,
            key,
            admin,
            changes,
            ops,
            accounts,
            prefix,
            skip_fill,
        } => rt.block_on(catchup::run(catchup::Args {
            base,
            sdkappid,
            key,
            admin,
            changes,
            ops,
            accounts,
            prefix,
            skip_fill,
        })),
    }
}

/// The `load` command: `concurrency` tasks take batches from one queue until all are imported.
async fn load(
    client: AdminClient,
    accounts: usize,
    concurrency: usize,
    fields: u8,
    prefix: String,
) -> anyhow::Result<()> {
    let (api, batch) = if fields == 5 {
        ("v4/profile/portrait_import", 1000)
    } else {
        ("v4/im_open_login_svc/multiaccount_import", 100)
    };
    let started = Instant::now();
    let batches: Vec<(usize, usize)> = (0..accounts)
        .step_by(batch)
        .map(|s| (s, (s + batch).min(accounts)))
        .collect();
    let queue = std::sync::Arc::new(std::sync::Mutex::new(batches.into_iter()));
    let prefix = std::sync::Arc::new(prefix);
    let mut tasks = Vec::new();
    for _ in 0..concurrency {
        let (client, queue, prefix) = (client.clone(), queue.clone(), prefix.clone());
        tasks.push(tokio::spawn(async move {
            loop {
                let next = queue.lock().unwrap().next();
                let Some((s, e)) = next else {
                    return Ok::<_, anyhow::Error>(());
                };
                let list: Vec<_> = (s..e)
                    .map(|i| {
                        let (user, nick) = (format!("{prefix}{i}"), format!("nick{i}"));
                        let face = format!("https://img.example.com/a/{i}.png");
                        if fields == 5 {
                            let gender = ["Gender_Type_Male", "Gender_Type_Female"][i % 2];
                            json!({"UserID": user, "ProfileItem": [
                                {"Tag": "Tag_Profile_IM_Nick", "Value": nick},
                                {"Tag": "Tag_Profile_IM_Image", "Value": face},
                                {"Tag": "Tag_Profile_IM_Gender", "Value": gender},
                                {"Tag": "Tag_Profile_IM_Level", "Value": i % 100},
                                {"Tag": "Tag_Profile_Custom_Hobby", "Value": format!("hobby{}", i % 50)},
                            ]})
                        } else {
                            json!({"UserID": user, "Nick": nick, "FaceUrl": face})
                        }
                    })
                    .collect();
                let r = client.call(api, &json!({"AccountList": list})).await?;
                anyhow::ensure!(r.code() == 0, "import failed: {:?}", r.0);
                if let Some(items) = r.0.get("ResultItem").and_then(|v| v.as_array()) {
                    let failed = items.iter().filter(|i| i["ResultCode"] != 0).count();
                    anyhow::ensure!(failed == 0, "{failed} accounts refused: {:?}", items.first());
                }
            }
        }));
    }
    for t in tasks {
        t.await.context("loader task")??;
    }
    println!(
        "loaded {accounts} accounts ({fields} fields via {api}) in {:.2} s",
        started.elapsed().as_secs_f64()
    );
    Ok(())
}
