//! `catchup`: the cost of a WebSocket `subscribe` with `since` (issue #15, defect 5) against the
//! size of the app's change log.
//!
//! 1. **Fill** (unless `--skip-fill`): imports `--changes` accounts `<prefix><N>` with one field
//!    each through `v4/profile/portrait_import`, 1000 per call: one change-log entry each, so
//!    the app's log holds at least `--changes` entries.
//! 2. **Measure**: one connection (as `<prefix>0`) sends `--ops` times `subscribe` of
//!    `--accounts` accounts spread over the log with `since` 0, waits for `synced` (timed), then
//!    `unsubscribe`s them (not timed). Prints p50 / p99 / max and a `RESULT catchup` line.
//!
//! Ops run one after another on one connection, so each time is the server's work for one op
//! plus one round trip. Note: the server writes `subscribed`, the events and `synced` as separate
//! small TCP segments without `TCP_NODELAY`, so with a client that delays its ACKs (Linux does)
//! an op takes at least ~40 ms end to end whatever the catch-up costs; the store's share is what
//! the `catchup_cost` example of portrait-store times.

use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context};
use futures_util::{SinkExt, StreamExt};
use portrait_client::user::UserClient;
use portrait_client::AdminClient;
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::Message;

/// What `catchup` is given.
pub struct Args {
    pub base: String,
    pub sdkappid: u64,
    pub key: String,
    pub admin: String,
    pub changes: usize,
    pub ops: usize,
    pub accounts: usize,
    pub prefix: String,
    pub skip_fill: bool,
}

/// Fills the log (unless told not to), then times the ops.
///
/// # Errors
/// The server refuses an import or the connection, or an op gets no `synced` within 60 s.
pub async fn run(a: Args) -> anyhow::Result<()> {
    ensure!(
        a.changes >= 1 && a.ops >= 1 && a.accounts >= 1,
        "positive sizes please"
    );
    if !a.skip_fill {
        fill(&a).await?;
    }
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let me = format!("{}0", a.prefix);
    let sig = portrait_core::usersig::mint(a.sdkappid, &a.key, &me, now, 86_400);
    let client = UserClient::new(a.base.clone(), a.sdkappid, &me, sig);
    // Nagle off: else each small op frame waits for the server's delayed ACK (~40 ms).
    let (mut socket, _) =
        tokio_tungstenite::connect_async_with_config(client.ws_url(None, &[]), None, true)
            .await
            .context("cannot connect")?;
    wait_for(&mut socket, "ready").await?;
    let mut times = Vec::with_capacity(a.ops);
    for op in 0..a.ops {
        // Accounts spread over the whole log, different for every op.
        let accounts: Vec<String> = (0..a.accounts)
            .map(|k| {
                let i = (op * 7919 + k * (a.changes / a.accounts).max(1)) % a.changes;
                format!("{}{}", a.prefix, i.max(1))
            })
            .collect();
        let started = Instant::now();
        let sub = json!({"op": "subscribe", "accounts": accounts, "since": 0});
        socket.send(Message::text(sub.to_string())).await?;
        wait_for(&mut socket, "synced").await?;
        times.push(started.elapsed());
        let unsub = json!({"op": "unsubscribe", "accounts": accounts});
        socket.send(Message::text(unsub.to_string())).await?;
        wait_for(&mut socket, "unsubscribed").await?;
    }
    times.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    let pick = |q: f64| times[((times.len() as f64 * q).ceil() as usize).clamp(1, times.len()) - 1];
    println!(
        "subscribe with since 0 of {} accounts, log of >= {} changes, {} ops: p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
        a.accounts,
        a.changes,
        a.ops,
        ms(pick(0.5)),
        ms(pick(0.99)),
        ms(times[times.len() - 1])
    );
    println!(
        "RESULT catchup changes={} accounts={} ops={} p50_ms={:.2} p99_ms={:.2} max_ms={:.2}",
        a.changes,
        a.accounts,
        a.ops,
        ms(pick(0.5)),
        ms(pick(0.99)),
        ms(times[times.len() - 1])
    );
    Ok(())
}

/// Reads frames until one of type `kind` (events and other frames are skipped).
async fn wait_for<S>(socket: &mut S, kind: &str) -> anyhow::Result<()>
where
    S: StreamExt<Item = Result<Message, tokio_tungstenite::tungstenite::Error>> + Unpin,
{
    let deadline = tokio::time::sleep(Duration::from_secs(60));
    tokio::pin!(deadline);
    loop {
        tokio::select! {
            () = &mut deadline => bail!("no {kind} frame within 60 s"),
            msg = socket.next() => match msg {
                Some(Ok(Message::Text(t))) => {
                    let frame: Value = serde_json::from_str(t.as_str())?;
                    if frame["type"] == kind {
                        return Ok(());
                    }
                    ensure!(frame["type"] != "error", "error frame: {frame}");
                }
                Some(Ok(_)) => {}
                Some(Err(e)) => bail!("connection failed: {e}"),
                None => bail!("connection closed"),
            },
        }
    }
}

/// Imports `changes` accounts with one field each, 1000 per call, 4 calls in flight.
async fn fill(a: &Args) -> anyhow::Result<()> {
    let admin = AdminClient::new(a.base.clone(), a.sdkappid, a.admin.clone(), a.key.clone());
    let started = Instant::now();
    let batches: Vec<(usize, usize)> = (0..a.changes)
        .step_by(1000)
        .map(|s| (s, (s + 1000).min(a.changes)))
        .collect();
    let queue = std::sync::Arc::new(std::sync::Mutex::new(batches.into_iter()));
    let mut tasks = Vec::new();
    for _ in 0..4 {
        let (admin, queue, prefix) = (admin.clone(), queue.clone(), a.prefix.clone());
        tasks.push(tokio::spawn(async move {
            loop {
                let next = queue.lock().expect("queue lock").next();
                let Some((s, e)) = next else {
                    return Ok::<_, anyhow::Error>(());
                };
                let list: Vec<Value> = (s..e)
                    .map(|i| {
                        json!({"UserID": format!("{prefix}{i}"), "ProfileItem": [
                            {"Tag": "Tag_Profile_IM_Level", "Value": i % 100}]})
                    })
                    .collect();
                let r = admin
                    .call("v4/profile/portrait_import", &json!({"AccountList": list}))
                    .await?;
                ensure!(r.code() == 0, "portrait_import failed: {:?}", r.0);
            }
        }));
    }
    for t in tasks {
        t.await.context("import task")??;
    }
    println!(
        "filled the log with {} imports in {:.1} s",
        a.changes,
        started.elapsed().as_secs_f64()
    );
    Ok(())
}
