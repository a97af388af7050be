//! High availability on the engines Portrait already uses: two nodes on a PostgreSQL primary
//! with a synchronous streaming-replication standby (one multi-host URL with
//! `target_session_attrs=read-write`) and a three-server NATS cluster (`replicas.rs`). Under
//! continuous writes through both nodes, one NATS server dies, then the PostgreSQL primary is
//! SIGKILLed and the standby promoted, with no node restarted. Afterwards:
//!
//! * every acknowledged write is in the change log and the last one of each account is what
//!   `portrait_get` reads through both nodes;
//! * writes resumed (the time from the kill to the first acknowledged write begun after it is
//!   measured and printed: `cargo test -p portrait --test multinode ha_ -- --nocapture`);
//! * a WebSocket subscriber received exactly the change log of its accounts (every acknowledged
//!   change, in version order, nothing twice), reconnecting with `since=<cursor>` when its
//!   connection was closed during the failover, as any client does;
//! * the webhook delivered every acknowledged change, its first deliveries in write order per
//!   account (at least once: a redelivery after the failover is allowed);
//! * both nodes reconnected to the surviving NATS servers.
//!
//! Writes are sequential per account (one writer task each), so each account's acknowledged
//! writes have a total order. A write that failed during the failover may still have committed
//! (its answer was lost); such writes may show up, but nothing that was never attempted may.

use std::collections::BTreeMap;

use super::replicas::{NatsCluster, PgPair};
use super::webhooks_and_kicks::{webhook_receiver, Posts};
use super::*;

/// Accounts written, one writer each; writer `k` writes through node `k % 2`.
const ACCOUNTS: [&str; 4] = ["acct0", "acct1", "acct2", "acct3"];
/// How long writes must take to resume after the primary is killed before the test fails.
const RESUME_BOUND: Duration = Duration::from_secs(15);

/// One write a writer attempted.
#[derive(Clone, Debug)]
struct Attempt {
    account: &'static str,
    nick: String,
    started: Instant,
    /// When it was acknowledged; `None` if it failed.
    acked: Option<Instant>,
}

/// The attempts of every writer.
type Attempts = Arc<Mutex<Vec<Attempt>>>;

/// Two nodes on the replicated services. Fields drop in order: nodes first, then services.
struct HaNodes {
    nodes: Vec<common::Node>,
    _dirs: Vec<tempfile::TempDir>,
}

impl HaNodes {
    fn start(store_url: &str, nats_url: &str, webhook: &str) -> HaNodes {
        let options = Options {
            webhook: Some(webhook.to_owned()),
            ..Options::default()
        };
        let mut nodes = Vec::new();
        let mut dirs = Vec::new();
        for node in 0..2 {
            let dir = tempfile::tempdir().unwrap();
            let config = dir.path().join("portrait.toml");
            std::fs::write(
                &config,
                config_text(store_url, nats_url, "ha", &options, node),
            )
            .unwrap();
            let mut cmd = common::serve_command(dir.path());
            cmd.arg("--config").arg(&config);
            nodes.push(common::launch(cmd));
            dirs.push(dir);
        }
        HaNodes { nodes, _dirs: dirs }
    }

    fn admin(&self, node: usize) -> AdminClient {
        AdminClient::new(&self.nodes[node].base, APP, ADMIN, KEY)
    }

    fn user(&self, node: usize, user: &str) -> UserClient {
        UserClient::with_key(&self.nodes[node].base, APP, user, KEY)
    }
}

/// Writer `k`: `portrait_set` of a new Nick on `ACCOUNTS[k]` through `admin`, one at a time,
/// until `stop`.
async fn writer(k: usize, admin: AdminClient, stop: Arc<AtomicBool>, attempts: Attempts) {
    let account = ACCOUNTS[k];
    let mut n = 0usize;
    while !stop.load(Ordering::Relaxed) {
        let nick = format!("w{k}-{n}");
        n += 1;
        let started = Instant::now();
        let reply = admin.portrait_set(account, &[(NICK, json!(nick))]).await;
        let acked = matches!(&reply, Ok(r) if r.code() == 0).then(Instant::now);
        attempts.lock().unwrap().push(Attempt {
            account,
            nick,
            started,
            acked,
        });
        let pause = if acked.is_some() { 5 } else { 50 };
        tokio::time::sleep(Duration::from_millis(pause)).await;
    }
}

/// Follows `ACCOUNTS` as wendy on `client`'s node until `stop`, then [`QUIET`] longer;
/// reconnects with `since=<cursor>` whenever the connection ends. Returns every profile event
/// and the number of reconnections.
async fn subscriber(
    client: UserClient,
    since: u64,
    events: Arc<Mutex<Vec<ProfileEvent>>>,
    stop: Arc<AtomicBool>,
) -> usize {
    let mut cursor = since;
    let mut reconnects = 0;
    let mut quiet_from: Option<Instant> = None;
    'connect: loop {
        let mut socket = match client.connect(Some(cursor), &ACCOUNTS).await {
            Ok(s) => s,
            Err(_) => {
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        loop {
            if stop.load(Ordering::Relaxed) {
                let from = *quiet_from.get_or_insert_with(Instant::now);
                if from.elapsed() >= QUIET {
                    return reconnects;
                }
            }
            match tokio::time::timeout(Duration::from_millis(100), socket.next()).await {
                Err(_) => {}
                Ok(Ok(Some(Incoming::Frame(Frame::Profile(ev))))) => {
                    cursor = cursor.max(ev.cursor);
                    events.lock().unwrap().push(ev);
                }
                Ok(Ok(Some(Incoming::Frame(Frame::Synced { cursor: c })))) => {
                    cursor = cursor.max(c);
                }
                Ok(Ok(Some(Incoming::Frame(_)))) => {}
                Ok(Ok(None | Some(Incoming::Closed(..))) | Err(_)) => {
                    reconnects += 1;
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue 'connect;
                }
            }
        }
    }
}

/// Waits until at least `n` writes have been acknowledged in all, or panics after `wait`.
async fn acks_reach(attempts: &Attempts, n: usize, wait: Duration, what: &str) {
    let deadline = Instant::now() + wait;
    loop {
        let acked = attempts
            .lock()
            .unwrap()
            .iter()
            .filter(|a| a.acked.is_some())
            .count();
        if acked >= n {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{what}: only {acked} of {n} writes acknowledged within {wait:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// `(account, nick)` of an event.
fn pair(ev: &ProfileEvent) -> (String, String) {
    let (account, nick, _) = key_of(ev);
    (account, nick)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ha_a_primary_failover_under_writes_loses_no_acknowledged_write() {
    let began = Instant::now();
    let pg = tokio::task::spawn_blocking(PgPair::start).await.unwrap();
    let mut nats = NatsCluster::start().await;
    let (hook, posts) = webhook_receiver().await;
    let url = pg.url();
    let c = {
        let (url, nats_url) = (url.clone(), nats.url());
        tokio::task::spawn_blocking(move || HaNodes::start(&url, &nats_url, &hook))
            .await
            .unwrap()
    };
    let store = portrait_store::open(&url).await.expect("open the HA store");
    let deadline = Instant::now() + PUSH_WAIT;
    while store.cursor(APP, "webhook").await.unwrap().is_none() {
        assert!(Instant::now() < deadline, "no webhook worker started");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let mut accounts = ACCOUNTS.to_vec();
    accounts.push("wendy");
    ok(c.admin(0).multiaccount_import(&accounts).await, "import");
    let since = store.current_version(APP).await.unwrap();
    let events: Arc<Mutex<Vec<ProfileEvent>>> = Arc::default();
    let (stop_sub, stop_writes) = (
        Arc::new(AtomicBool::new(false)),
        Arc::new(AtomicBool::new(false)),
    );
    let sub = tokio::spawn(subscriber(
        c.user(1, "wendy"),
        since,
        events.clone(),
        stop_sub.clone(),
    ));
    let attempts: Attempts = Arc::default();
    let writers: Vec<_> = (0..ACCOUNTS.len())
        .map(|k| {
            tokio::spawn(writer(
                k,
                c.admin(k % 2),
                stop_writes.clone(),
                attempts.clone(),
            ))
        })
        .collect();
    acks_reach(&attempts, 40, PUSH_WAIT, "before any failure").await;

    // One NATS server dies: the one most node connections use (each node has one for push
    // wake-ups, and one for cache coherence when that is on). They all reconnect elsewhere.
    let clients = nats.clients().await;
    let total: u64 = clients.iter().flatten().sum();
    assert!(total >= 2, "every node is connected to NATS: {clients:?}");
    let victim = (0..3).max_by_key(|n| clients[*n].unwrap_or(0)).unwrap();
    let nats_killed = Instant::now();
    nats.kill(victim);
    loop {
        let now = nats.clients().await;
        if now.iter().flatten().sum::<u64>() == total {
            break;
        }
        // async-nats backs off between reconnect attempts (up to a few seconds each); on a
        // loaded 2-core machine one connection of five once took longer than 10 s.
        assert!(
            nats_killed.elapsed() < Duration::from_secs(20),
            "the nodes' {total} NATS connections did not all move to the surviving servers \
             within 20 s: {now:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    println!(
        "ha: NATS server {victim} killed ({} of {total} connections); all on the survivors \
         after {:?}",
        clients[victim].unwrap_or(0),
        nats_killed.elapsed()
    );
    let so_far = attempts.lock().unwrap().len();
    acks_reach(&attempts, so_far + 20, PUSH_WAIT, "after the NATS kill").await;

    // The PostgreSQL primary dies; the failover manager (this test) promotes the standby.
    let killed = Instant::now();
    pg.kill_primary();
    tokio::task::block_in_place(|| pg.promote_standby());
    let promoted = killed.elapsed();
    let resumed = loop {
        let first = attempts
            .lock()
            .unwrap()
            .iter()
            .filter(|a| a.started > killed)
            .filter_map(|a| a.acked)
            .min();
        if let Some(at) = first {
            break at - killed;
        }
        assert!(
            killed.elapsed() < RESUME_BOUND,
            "no write acknowledged within {RESUME_BOUND:?} of killing the primary"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    println!(
        "ha: primary killed; standby promoted after {promoted:?}; first acknowledged write \
         begun after the kill: {resumed:?} after it"
    );
    let so_far = attempts.lock().unwrap().len();
    acks_reach(&attempts, so_far + 40, PUSH_WAIT, "after the failover").await;
    stop_writes.store(true, Ordering::Relaxed);
    for w in writers {
        w.await.unwrap();
    }
    let attempts = std::mem::take(&mut *attempts.lock().unwrap());
    let acked: Vec<&Attempt> = attempts.iter().filter(|a| a.acked.is_some()).collect();
    let attempted: HashSet<(String, String)> = attempts
        .iter()
        .map(|a| (a.account.to_owned(), a.nick.clone()))
        .collect();
    let failed = attempts.len() - acked.len();

    // The change log on the new primary holds every acknowledged write, and nothing that was
    // never attempted.
    let log: Vec<portrait_store::Change> = store
        .changes_since(APP, since, 100_000)
        .await
        .expect("the change log after the failover");
    let logged: Vec<(String, String)> = log
        .iter()
        .filter_map(|ch| {
            let (_, nick) = ch.items.iter().find(|(t, _)| t == NICK)?;
            Some((ch.user.clone(), nick.to_json().as_str()?.to_owned()))
        })
        .collect();
    let logged_set: HashSet<&(String, String)> = logged.iter().collect();
    for a in &acked {
        assert!(
            logged_set.contains(&(a.account.to_owned(), a.nick.clone())),
            "acknowledged write {a:?} is not in the change log after the failover"
        );
    }
    for l in &logged {
        assert!(attempted.contains(l), "{l:?} in the log was never written");
    }

    // Both nodes read each account's last acknowledged write, or a later attempt that
    // committed although its answer was lost.
    for node in 0..2 {
        let r = ok(
            c.admin(node).portrait_get(&ACCOUNTS, &[NICK]).await,
            "portrait_get after the failover",
        );
        for (i, account) in ACCOUNTS.iter().enumerate() {
            let mine: Vec<&Attempt> = attempts.iter().filter(|a| a.account == *account).collect();
            let last = mine.iter().rposition(|a| a.acked.is_some()).unwrap();
            let allowed: Vec<Value> = mine[last..].iter().map(|a| json!(a.nick)).collect();
            let got = item(&r, i, NICK);
            assert!(
                allowed.contains(&got),
                "node {node} reads {account}'s Nick {got}; the last acknowledged was {}",
                mine[last].nick
            );
        }
    }

    // The subscriber: exactly the change log of its accounts, in version order, nothing twice.
    let deadline = Instant::now() + PUSH_WAIT;
    while events.lock().unwrap().len() < log.len() && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    stop_sub.store(true, Ordering::Relaxed);
    let reconnects = sub.await.unwrap();
    let events = std::mem::take(&mut *events.lock().unwrap());
    assert_strictly_increasing(&events, "wendy's events across the failover");
    assert_eq!(
        events
            .iter()
            .map(|e| (e.version, pair(e)))
            .collect::<Vec<_>>(),
        log.iter()
            .map(|ch| ch.version)
            .zip(logged.iter().cloned())
            .collect::<Vec<_>>(),
        "the subscriber's events are the change log ({reconnects} reconnections)"
    );

    // The webhook: every acknowledged write, first deliveries in write order per account.
    let deadline = Instant::now() + PUSH_WAIT;
    let delivered = |posts: &Posts| -> HashSet<(String, String)> {
        posts
            .lock()
            .unwrap()
            .iter()
            .map(|(a, n, _)| (a.clone(), n.clone()))
            .collect()
    };
    while acked
        .iter()
        .any(|a| !delivered(&posts).contains(&(a.account.to_owned(), a.nick.clone())))
    {
        assert!(
            Instant::now() < deadline,
            "the webhook did not deliver every acknowledged write within {PUSH_WAIT:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let posts = posts.lock().unwrap().clone();
    let mut first_seen: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (account, nick, _) in &posts {
        assert!(
            attempted.contains(&(account.clone(), nick.clone())),
            "webhook posted {account} {nick}, never written"
        );
        let seen = first_seen.entry(account.clone()).or_default();
        if !seen.contains(nick) {
            seen.push(nick.clone());
        }
    }
    for account in ACCOUNTS {
        let written: Vec<&String> = attempts
            .iter()
            .filter(|a| a.account == account)
            .map(|a| &a.nick)
            .collect();
        let order: Vec<usize> = first_seen[account]
            .iter()
            .map(|n| written.iter().position(|w| *w == n).unwrap())
            .collect();
        assert!(
            order.windows(2).all(|w| w[0] < w[1]),
            "webhook deliveries of {account} out of write order: {:?}",
            first_seen[account]
        );
    }
    let failed_but_applied = attempts
        .iter()
        .filter(|a| a.acked.is_none())
        .filter(|a| logged_set.contains(&(a.account.to_owned(), a.nick.clone())))
        .count();
    println!(
        "ha: {} writes acknowledged, {failed} failed during the failover ({failed_but_applied} of \
         them applied: the answer was lost, not the write); {} events pushed ({reconnects} \
         reconnections), {} webhook posts; {:?} in all",
        acked.len(),
        events.len(),
        posts.len(),
        began.elapsed()
    );
    store.close().await;
}
