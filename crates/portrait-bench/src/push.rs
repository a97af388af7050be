//! W4, "push: a change reaches subscribers" (issue #6). No load tool measures WebSocket fan-out,
//! so this module does: `portrait-client` makes the writes (HTTP) and the subscriber URLs, and the
//! subscribers are tokio-tungstenite sockets. It runs two phases against a running server:
//!
//! 1. **Latency, 1 subscriber.** A subscriber connects to `/v1/ws?accounts=<writer>` and waits
//!    for `ready`; its socket is read in its own task, which stamps every `profile` event of the
//!    writer with the instant it was decoded. The writer then calls `update_my_profile` `samples`
//!    times, one after the other (the next write starts once the previous event arrived). Per
//!    write: *ack → event* = event decoded − HTTP answer decoded, and *write → event* = event
//!    decoded − request started. The server dispatches the event on its own task as soon as the
//!    write commits, so the event can beat the HTTP answer: those samples count as 0 and are
//!    reported (`early=`).
//! 2. **Fan-out.** `subscribers` users, each with its own UserSig, connect (at most `concurrency`
//!    handshakes at a time), all subscribed to one writer. Once every one said `ready`, the
//!    writer makes `writes` changes, `spacing_ms` apart; per change, the time from the ack until
//!    the last subscriber decoded the event, and the spread across subscribers.
//!
//! The figures include the client's own work (10,000 sockets read by the same process, on the
//! same cores as the server): they are what an observer outside the server sees. To keep that
//! share small the subscribers are opened here (not with `UserClient::connect`) with a small read
//! buffer (`read_buffer`): tungstenite zero-fills its whole read buffer (128 KiB by default)
//! before every read attempt, which with one small frame per read costs as much CPU as everything
//! else the client does (measured: BENCHMARKS.md).
//!
//! What it must not do: assert on timings (`--quick` runs in CI), or touch accounts other than
//! its own (`w4*`), so that it can run after the other workloads on the same data.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context};
use futures_util::StreamExt;
use portrait_client::user::{Frame, UserClient};
use portrait_client::AdminClient;
use serde_json::json;
use tokio::net::TcpStream;
use tokio::sync::{mpsc, Semaphore};
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// What the `push` subcommand was asked to do.
pub struct Args {
    /// Server base URL (`http://host:port`).
    pub base: String,
    /// The app.
    pub sdkappid: u64,
    /// The app's secret key (every UserSig is minted from it).
    pub key: String,
    /// An admin identifier of the app (imports the accounts).
    pub admin: String,
    /// Connections of the fan-out phase (0 skips it).
    pub subscribers: usize,
    /// Writes of the latency phase (0 skips it).
    pub samples: usize,
    /// Writes of the fan-out phase.
    pub writes: usize,
    /// Pause between two fan-out writes, so that each one meets idle sockets.
    pub spacing_ms: u64,
    /// WebSocket handshakes in flight at once while the subscribers connect.
    pub concurrency: usize,
    /// Read buffer of each subscriber socket (tungstenite's default: 128 KiB).
    pub read_buffer: usize,
}

/// The writer of both phases; subscribers are `w4s` (latency) and `w4f<i>` (fan-out).
const WRITER: &str = "w4writer";
const LATENCY_SUB: &str = "w4s";
/// Writes made before the latency samples, not recorded (connection set-up, caches).
const WARMUP: usize = 20;
/// How long one event may take before the run is declared broken.
const EVENT_TIMEOUT: Duration = Duration::from_secs(10);

/// Runs the phases and prints a readable report plus `RESULT …` lines for bench/run.sh.
///
/// # Errors
/// The server refuses an account import, a write or a connection, or an event never arrives.
pub async fn run(a: Args) -> anyhow::Result<()> {
    check_fd_limit(a.subscribers)?;
    let admin = AdminClient::new(a.base.clone(), a.sdkappid, a.admin.clone(), a.key.clone());
    let fanout_users: Vec<String> = (0..a.subscribers).map(|i| format!("w4f{i}")).collect();
    let mut all = vec![WRITER.to_owned(), LATENCY_SUB.to_owned()];
    all.extend(fanout_users.iter().cloned());
    import(&admin, &all).await?;
    let writer = UserClient::new(a.base.clone(), a.sdkappid, WRITER, mint(&a, WRITER));

    if a.samples > 0 {
        let sub = UserClient::new(
            a.base.clone(),
            a.sdkappid,
            LATENCY_SUB,
            mint(&a, LATENCY_SUB),
        );
        latency(&writer, &sub, a.samples, a.read_buffer).await?;
    }
    if a.subscribers > 0 {
        fanout(&a, &writer, &fanout_users).await?;
    }
    Ok(())
}

fn mint(a: &Args, user: &str) -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    portrait_core::usersig::mint(a.sdkappid, &a.key, user, now, 86_400)
}

/// 10,000 client sockets need 10,000 descriptors in this process (and as many in the server).
fn check_fd_limit(subscribers: usize) -> anyhow::Result<()> {
    let Ok(limits) = std::fs::read_to_string("/proc/self/limits") else {
        return Ok(());
    };
    let soft = limits
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .and_then(|l| l.split_whitespace().nth(3))
        .and_then(|v| v.parse::<usize>().ok());
    if let Some(soft) = soft {
        ensure!(
            subscribers + 100 <= soft,
            "{subscribers} subscribers need more than the {soft} open files allowed (ulimit -n); \
             raise it (the server needs as many) or pass fewer --subscribers"
        );
    }
    Ok(())
}

/// Imports `users` (bare accounts) 100 per call, 8 calls in flight.
async fn import(admin: &AdminClient, users: &[String]) -> anyhow::Result<()> {
    let chunks: Vec<Vec<String>> = users.chunks(100).map(<[String]>::to_vec).collect();
    let queue = Arc::new(std::sync::Mutex::new(chunks.into_iter()));
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let (admin, queue) = (admin.clone(), queue.clone());
        tasks.push(tokio::spawn(async move {
            loop {
                let next = queue.lock().expect("queue lock").next();
                let Some(chunk) = next else {
                    return Ok::<_, anyhow::Error>(());
                };
                let ids: Vec<&str> = chunk.iter().map(String::as_str).collect();
                let r = admin.multiaccount_import(&ids).await?;
                ensure!(r.code() == 0, "multiaccount_import failed: {:?}", r.0);
            }
        }));
    }
    for t in tasks {
        t.await.context("import task")??;
    }
    Ok(())
}

/// Connects `client` subscribed to the writer and waits for `ready`.
async fn subscribe(client: &UserClient, read_buffer: usize) -> anyhow::Result<Socket> {
    let config = WebSocketConfig::default().read_buffer_size(read_buffer);
    let (mut socket, _) = tokio_tungstenite::connect_async_with_config(
        client.ws_url(None, &[WRITER]),
        Some(config),
        true,
    )
    .await
    .with_context(|| format!("{} cannot connect", client.user()))?;
    match tokio::time::timeout(Duration::from_secs(30), next_frame(&mut socket)).await {
        Ok(Ok(Some(Frame::Ready { .. }))) => Ok(socket),
        Ok(other) => bail!("{}: expected ready, got {other:?}", client.user()),
        Err(_) => bail!("{}: no ready within 30 s", client.user()),
    }
}

/// The next JSON frame; `None` once the connection is closed or gone.
async fn next_frame(socket: &mut Socket) -> anyhow::Result<Option<Frame>> {
    while let Some(msg) = socket.next().await {
        match msg {
            Ok(Message::Text(t)) => {
                let frame = serde_json::from_str(t.as_str())
                    .with_context(|| format!("bad frame {}", t.as_str()))?;
                return Ok(Some(frame));
            }
            Ok(Message::Close(_)) | Err(_) => return Ok(None),
            Ok(_) => {} // pings are answered by tungstenite
        }
    }
    Ok(None)
}

/// Reads `socket` until it closes, sending `(version, decoded at)` of every event of the writer.
async fn read_events(mut socket: Socket, tx: mpsc::UnboundedSender<(u64, Instant)>) {
    while let Ok(Some(frame)) = next_frame(&mut socket).await {
        if let Frame::Profile(ev) = frame {
            let at = Instant::now();
            if ev.account == WRITER && tx.send((ev.version, at)).is_err() {
                return;
            }
        }
    }
}

/// One `update_my_profile` of the writer: (request started, answer decoded, new version).
async fn write(writer: &UserClient, n: usize) -> anyhow::Result<(Instant, Instant, u64)> {
    let sent = Instant::now();
    let r = writer
        .update_my_profile(&[("Tag_Profile_IM_Nick", json!(format!("w4 {n}")))], None)
        .await?;
    let acked = Instant::now();
    ensure!(r.code() == 0, "update_my_profile failed: {:?}", r.0);
    let version = r.0["Version"]
        .as_u64()
        .context("update_my_profile answered without a Version")?;
    Ok((sent, acked, version))
}

/// Waits for the event of `version` on `rx` (older ones are skipped).
async fn event_of(
    rx: &mut mpsc::UnboundedReceiver<(u64, Instant)>,
    version: u64,
) -> anyhow::Result<Instant> {
    let deadline = tokio::time::Instant::now() + EVENT_TIMEOUT;
    loop {
        match tokio::time::timeout_at(deadline, rx.recv()).await {
            Ok(Some((v, at))) if v == version => return Ok(at),
            Ok(Some((v, _))) if v < version => {}
            Ok(Some((v, _))) => bail!("event {v} arrived while waiting for {version}"),
            Ok(None) => bail!("the subscriber's connection closed"),
            Err(_) => bail!("no event for version {version} within {EVENT_TIMEOUT:?}"),
        }
    }
}

async fn latency(
    writer: &UserClient,
    sub: &UserClient,
    samples: usize,
    read_buffer: usize,
) -> anyhow::Result<()> {
    let socket = subscribe(sub, read_buffer).await?;
    let (tx, mut rx) = mpsc::unbounded_channel();
    let reader = tokio::spawn(read_events(socket, tx));
    let mut ack_to_event = Vec::with_capacity(samples);
    let mut write_to_event = Vec::with_capacity(samples);
    let mut write_to_ack = Vec::with_capacity(samples);
    let mut early = 0usize;
    for i in 0..WARMUP + samples {
        let (sent, acked, version) = write(writer, i).await?;
        let got = event_of(&mut rx, version).await?;
        if i < WARMUP {
            continue;
        }
        if got < acked {
            early += 1;
        }
        ack_to_event.push(got.saturating_duration_since(acked));
        write_to_event.push(got - sent);
        write_to_ack.push(acked - sent);
    }
    reader.abort();
    let (a, w, k) = (
        Stats::of(&mut ack_to_event),
        Stats::of(&mut write_to_event),
        Stats::of(&mut write_to_ack),
    );
    println!("### W4 latency: 1 subscriber, {samples} sequential update_my_profile writes\n");
    println!("| interval | p50 ms | p90 ms | p99 ms | max ms |");
    println!("|---|---|---|---|---|");
    for (name, s) in [
        ("write ack → event (target p99 ≤ 5 ms)", &a),
        ("write sent → event", &w),
        ("write sent → ack", &k),
    ] {
        println!(
            "| {name} | {:.3} | {:.3} | {:.3} | {:.3} |",
            ms(s.p50),
            ms(s.p90),
            ms(s.p99),
            ms(s.max)
        );
    }
    println!(
        "\n{early} of {samples} events arrived before the HTTP answer (counted as 0 ms ack → event).\n"
    );
    println!(
        "RESULT w4_latency samples={samples} p50_ms={:.3} p90_ms={:.3} p99_ms={:.3} max_ms={:.3} early={early} sent_to_event_p50={:.3} sent_to_event_p99={:.3} sent_to_ack_p50={:.3} sent_to_ack_p99={:.3}",
        ms(a.p50),
        ms(a.p90),
        ms(a.p99),
        ms(a.max),
        ms(w.p50),
        ms(w.p99),
        ms(k.p50),
        ms(k.p99)
    );
    Ok(())
}

async fn fanout(a: &Args, writer: &UserClient, users: &[String]) -> anyhow::Result<()> {
    let n = users.len();
    let (tx, mut rx) = mpsc::unbounded_channel();
    let (ready_tx, mut ready_rx) = mpsc::channel::<anyhow::Result<()>>(n);
    let gate = Arc::new(Semaphore::new(a.concurrency.max(1)));
    let read_buffer = a.read_buffer;
    let started = Instant::now();
    let mut readers = tokio::task::JoinSet::new();
    for user in users {
        let client = UserClient::new(a.base.clone(), a.sdkappid, user.clone(), mint(a, user));
        let (tx, ready_tx, gate) = (tx.clone(), ready_tx.clone(), gate.clone());
        readers.spawn(async move {
            let permit = gate.acquire_owned().await.expect("gate open");
            let socket = match subscribe(&client, read_buffer).await {
                Ok(s) => s,
                Err(e) => {
                    let _ = ready_tx.send(Err(e)).await;
                    return;
                }
            };
            drop(permit);
            let _ = ready_tx.send(Ok(())).await;
            read_events(socket, tx).await;
        });
    }
    drop((tx, ready_tx));
    for _ in 0..n {
        match ready_rx.recv().await {
            Some(Ok(())) => {}
            Some(Err(e)) => return Err(e.context("a fan-out subscriber failed to connect")),
            None => bail!("subscriber tasks ended early"),
        }
    }
    let connect_s = started.elapsed().as_secs_f64();
    println!(
        "### W4 fan-out: {n} connected subscribers of one writer, {} writes {} ms apart\n",
        a.writes, a.spacing_ms
    );
    println!(
        "{n} WebSocket connections opened and `ready` in {connect_s:.2} s ({:.0}/s, {} handshakes in flight, client read buffer {} bytes).\n",
        n as f64 / connect_s,
        a.concurrency,
        a.read_buffer
    );
    println!(
        "| write | delivered | ack → first ms | ack → p50 ms | ack → p99 ms | ack → last (all) ms | write sent → last ms | write sent → ack ms |"
    );
    println!("|---|---|---|---|---|---|---|---|");
    // Let the handshakes' after-effects (the server's register/ready work) settle.
    tokio::time::sleep(Duration::from_millis(a.spacing_ms)).await;
    let mut all_last = Vec::new();
    let mut pooled = Vec::new();
    let mut early = 0usize;
    for k in 0..a.writes {
        let (sent, acked, version) = write(writer, k).await?;
        let mut got = Vec::with_capacity(n);
        let deadline = tokio::time::Instant::now() + EVENT_TIMEOUT;
        while got.len() < n {
            match tokio::time::timeout_at(deadline, rx.recv()).await {
                Ok(Some((v, at))) if v == version => got.push(at),
                Ok(Some(_)) => {}
                Ok(None) | Err(_) => break,
            }
        }
        ensure!(
            got.len() == n,
            "write {k} (version {version}): only {} of {n} subscribers received it within {EVENT_TIMEOUT:?}",
            got.len()
        );
        early += got.iter().filter(|t| **t < acked).count();
        let last = got.iter().max().copied().unwrap_or(acked);
        let mut lat: Vec<Duration> = got
            .iter()
            .map(|t| t.saturating_duration_since(acked))
            .collect();
        let s = Stats::of(&mut lat);
        println!(
            "| {k} | {n} | {:.1} | {:.1} | {:.1} | {:.1} | {:.1} | {:.2} |",
            ms(lat[0]),
            ms(s.p50),
            ms(s.p99),
            ms(s.max),
            ms(last - sent),
            ms(acked - sent)
        );
        all_last.push(s.max);
        pooled.extend(lat);
        tokio::time::sleep(Duration::from_millis(a.spacing_ms)).await;
    }
    readers.abort_all();
    let last = Stats::of(&mut all_last);
    let sub = Stats::of(&mut pooled);
    println!(
        "\nack → last: median {:.1} ms, worst {:.1} ms over {} writes (target: all delivered ≤ 200 ms). {early} deliveries beat the HTTP answer (counted as 0).\n",
        ms(last.p50),
        ms(last.max),
        a.writes
    );
    println!(
        "RESULT w4_fanout subscribers={n} writes={} connect_s={connect_s:.2} all_p50_ms={:.1} all_max_ms={:.1} sub_p50_ms={:.1} sub_p99_ms={:.1} early={early}",
        a.writes,
        ms(last.p50),
        ms(last.max),
        ms(sub.p50),
        ms(sub.p99)
    );
    Ok(())
}

/// Nearest-rank percentiles of a sample.
struct Stats {
    p50: Duration,
    p90: Duration,
    p99: Duration,
    max: Duration,
}

impl Stats {
    /// Sorts `v` (which must not be empty) and reads its percentiles.
    fn of(v: &mut [Duration]) -> Stats {
        v.sort_unstable();
        let at = |p: f64| v[((p * v.len() as f64).ceil() as usize).clamp(1, v.len()) - 1];
        Stats {
            p50: at(0.50),
            p90: at(0.90),
            p99: at(0.99),
            max: v[v.len() - 1],
        }
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_use_the_nearest_rank() {
        let mut v: Vec<Duration> = (1..=100).rev().map(Duration::from_millis).collect();
        let s = Stats::of(&mut v);
        assert_eq!(s.p50, Duration::from_millis(50));
        assert_eq!(s.p90, Duration::from_millis(90));
        assert_eq!(s.p99, Duration::from_millis(99));
        assert_eq!(s.max, Duration::from_millis(100));
        let s = Stats::of(&mut [Duration::from_millis(7)]);
        assert_eq!(
            (s.p50, s.p99),
            (Duration::from_millis(7), Duration::from_millis(7))
        );
    }
}
