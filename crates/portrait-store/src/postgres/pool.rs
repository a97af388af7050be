//! Following the primary of a replicated PostgreSQL cluster: the libpq-style multi-host URL
//! (`postgres://USER@H1:5433,H2:5434/DB?target_session_attrs=read-write`), which sqlx 0.8 does
//! not parse, and the task that keeps the store's one pool pointed at whichever host is the
//! read-write primary, so that a node follows a failover without a restart.
//!
//! * **The URL**: hosts are comma-separated in the authority (`HOST[:PORT]`, IPv6 in brackets);
//!   everything else (user, password, database, `sslmode`, …) is shared by every host.
//!   `target_session_attrs` takes `read-write` (or its synonym here, `primary`); `any`, the libpq
//!   default, is accepted only with one host, because Portrait writes and a standby refuses
//!   writes. With one host and no `target_session_attrs` none of this applies (plain pool).
//! * **Finding the primary**: every host is tried at once, each within [`CONNECT_TIMEOUT`]; the
//!   first host in URL order whose session is writable (`not pg_is_in_recovery()` and
//!   `transaction_read_only` off) wins, and the pool's connect options are set to it
//!   (`Pool::set_connect_options`). No host writable: try again after a backoff from
//!   [`BACKOFF_MIN`] doubling to [`BACKOFF_MAX`], for as long as the store is open. Meanwhile
//!   every store call fails within the pool's acquire timeout ([`crate::StoreError::Unavailable`]).
//! * **Noticing a failover**: the follower keeps a connection of its own to the current primary
//!   and asks it every [`CHECK_INTERVAL`] whether it is still writable. A refused, reset or
//!   silent connection ([`CHECK_TIMEOUT`]) or a host that turned read-only starts the search.
//! * **Fencing old connections**: each search moves a fence; a pooled connection opened before
//!   the fence is closed instead of being handed out (`before_acquire`), and a new connection is
//!   checked to be writable before it joins the pool (`after_connect`), so no call runs on a
//!   standby or a demoted primary. A write that was in flight when the primary went away fails
//!   with an error and is never acknowledged; what PostgreSQL acknowledged is on the standby only
//!   if replication is synchronous (`docs/deployment.md`, "High availability").
//!
//! The follower stops when the pool is closed ([`crate::Store::close`]), or when the last
//! handle of the store is dropped without closing it ([`Follower`]: the task holds the pool, so
//! it would otherwise keep the pool, its connections and its own probe connection open for as
//! long as the process runs). It never logs the password: hosts are named by `HOST:PORT` only.
//! Not here: the pool's bounds and session settings (`open.rs`).

use std::str::FromStr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use sqlx::postgres::{PgConnectOptions, PgConnection, PgPool};
use sqlx::Connection;

use crate::{redact_url, Result, StoreError};

/// How often the follower asks the current primary whether it still is one.
pub const CHECK_INTERVAL: Duration = Duration::from_millis(200);
/// Longest the follower waits for that answer before it looks for another primary.
pub const CHECK_TIMEOUT: Duration = Duration::from_secs(1);
/// Longest a host may take to accept a connection while the follower searches.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(1);
/// First pause between two searches that found no primary.
pub const BACKOFF_MIN: Duration = Duration::from_millis(50);
/// Longest pause between two searches.
pub const BACKOFF_MAX: Duration = Duration::from_secs(1);

/// The hosts of a `[store] url` that asks to follow the primary.
#[derive(Clone)]
pub struct Targets {
    /// One set of connect options per host, in URL order (the preferred host first).
    hosts: Vec<PgConnectOptions>,
    /// `HOST:PORT` of each, for logs and errors (never the password).
    labels: Vec<String>,
}

impl Targets {
    /// Parses `url`. `Ok(None)` for a plain URL (one host, no `target_session_attrs`, or
    /// `target_session_attrs=any`), which the ordinary pool handles.
    ///
    /// # Errors
    /// [`StoreError::Config`] naming what is wrong (an empty host, an unparsable port, an
    /// unsupported `target_session_attrs`, several hosts without `read-write`). The message never
    /// contains the password.
    pub fn parse(url: &str) -> Result<Option<Self>> {
        let bad =
            |why: String| StoreError::Config(format!("store url {:?}: {why}", redact_url(url)));
        let Some((scheme, rest)) = url.split_once("://") else {
            return Ok(None);
        };
        let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
        let (authority, tail) = rest.split_at(end);
        let (userinfo, hostlist) = match authority.rfind('@') {
            Some(at) => (&authority[..=at], &authority[at + 1..]),
            None => ("", authority),
        };
        let (path, query) = match tail.split_once('?') {
            Some((path, query)) => (path, query.split('#').next().unwrap_or_default()),
            None => (tail.split('#').next().unwrap_or_default(), ""),
        };
        let mut attrs = None;
        let mut kept = Vec::new();
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            match pair.split_once('=') {
                Some(("target_session_attrs", value)) => attrs = Some(value),
                _ => kept.push(pair),
            }
        }
        let read_write = match attrs {
            None | Some("any") => false,
            Some("read-write" | "primary") => true,
            Some(other) => {
                return Err(bad(format!(
                    "target_session_attrs={other} is not supported: use read-write \
                     (Portrait writes, so it needs the primary)"
                )))
            }
        };
        let entries: Vec<&str> = hostlist.split(',').collect();
        if entries.len() == 1 && !read_write {
            return Ok(None);
        }
        if !read_write {
            return Err(bad(format!(
                "{} hosts need target_session_attrs=read-write, so that Portrait connects to \
                 the primary and follows it when another host is promoted",
                entries.len()
            )));
        }
        let query = if kept.is_empty() {
            String::new()
        } else {
            format!("?{}", kept.join("&"))
        };
        let mut hosts = Vec::with_capacity(entries.len());
        let mut labels = Vec::with_capacity(entries.len());
        for (n, entry) in entries.iter().enumerate() {
            // One empty host: the URL names none (`postgres:///db?host=/run/postgresql`).
            if entry.is_empty() && entries.len() > 1 {
                return Err(bad(format!("host {} of the list is empty", n + 1)));
            }
            let one = format!("{scheme}://{userinfo}{entry}{path}{query}");
            let options = PgConnectOptions::from_str(&one)
                .map_err(|e| bad(format!("host {} ({entry}): {e}", n + 1)))?;
            labels.push(format!("{}:{}", options.get_host(), options.get_port()));
            hosts.push(options);
        }
        Ok(Some(Self { hosts, labels }))
    }

    /// The connect options of the first host (the pool's target until the follower finds the
    /// primary).
    pub fn first(&self) -> &PgConnectOptions {
        &self.hosts[0]
    }

    /// `HOST:PORT` of every host, in URL order.
    pub fn labels(&self) -> &[String] {
        &self.labels
    }

    /// Each host's options with `f` applied (the application name, say).
    pub(super) fn map(mut self, f: impl Fn(PgConnectOptions) -> PgConnectOptions) -> Self {
        self.hosts = self.hosts.into_iter().map(f).collect();
        self
    }
}

/// The moment of the last search for a primary: pooled connections opened before it are closed
/// rather than used.
#[derive(Debug)]
pub(super) struct Fence {
    epoch: Instant,
    /// Microseconds after `epoch` of the last search.
    moved_us: AtomicU64,
}

impl Fence {
    pub(super) fn new() -> Self {
        Self {
            epoch: Instant::now(),
            moved_us: AtomicU64::new(0),
        }
    }

    fn now_us(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_micros()).unwrap_or(u64::MAX)
    }

    fn advance(&self) {
        self.moved_us.fetch_max(self.now_us(), Ordering::SeqCst);
    }

    /// Whether a connection of this `age` was opened after the last search.
    pub(super) fn admits(&self, age: Duration) -> bool {
        let opened = self
            .now_us()
            .saturating_sub(u64::try_from(age.as_micros()).unwrap_or(u64::MAX));
        opened >= self.moved_us.load(Ordering::SeqCst)
    }
}

/// Whether the session on `conn` may write: the server is not a standby and the session is not
/// read-only.
pub(super) async fn writable(conn: &mut PgConnection) -> std::result::Result<bool, sqlx::Error> {
    sqlx::query_scalar(
        "select not pg_is_in_recovery() and current_setting('transaction_read_only') = 'off'",
    )
    .fetch_one(conn)
    .await
}

/// A connection to host `n` if it accepts one within [`CONNECT_TIMEOUT`] and is writable.
async fn try_host(options: PgConnectOptions) -> Option<PgConnection> {
    let attempt = async {
        let mut conn = PgConnection::connect_with(&options).await.ok()?;
        match writable(&mut conn).await {
            Ok(true) => Some(conn),
            _ => {
                let _ = conn.close().await;
                None
            }
        }
    };
    tokio::time::timeout(CONNECT_TIMEOUT, attempt)
        .await
        .ok()
        .flatten()
}

/// The first writable host in URL order, with a connection to it; every host is tried at once.
async fn find_primary(targets: &Targets) -> Option<(usize, PgConnection)> {
    let mut tries = tokio::task::JoinSet::new();
    for (n, options) in targets.hosts.iter().enumerate() {
        let options = options.clone();
        tries.spawn(async move { (n, try_host(options).await) });
    }
    let mut best: Option<(usize, PgConnection)> = None;
    let mut writable_hosts = 0;
    while let Some(done) = tries.join_next().await {
        let Ok((n, Some(conn))) = done else { continue };
        writable_hosts += 1;
        match &best {
            Some((b, _)) if *b < n => {
                let _ = conn.close().await;
            }
            _ => best = Some((n, conn)),
        }
    }
    if writable_hosts > 1 {
        // Two primaries: an old one came back writable beside the promoted one. Nodes may now
        // write to different databases; an operator must stop one.
        tracing::error!(
            writable_hosts,
            "postgres: more than one host of store.url accepts writes; using the first listed — stop the old primary"
        );
        metrics::counter!("portrait_store_split_brain_total").increment(1);
    }
    best
}

/// The follower task, owned by the store that started it: aborted when dropped, that is when
/// the last clone of the store goes (the store holds it in an `Arc`).
#[derive(Debug)]
pub(super) struct Follower(tokio::task::AbortHandle);

impl Drop for Follower {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Points `pool` at the primary (searching for at most `first_search`, so that opening the store
/// does not start on a standby), then starts the follower, which replaces the pool's connect
/// options as primaries come and go until the pool is closed or the returned [`Follower`] is
/// dropped.
pub(super) async fn follow(
    pool: PgPool,
    targets: Targets,
    fence: Arc<Fence>,
    first_search: Duration,
) -> Follower {
    let deadline = Instant::now() + first_search;
    let mut current: Option<usize> = None;
    let mut probe: Option<PgConnection> = None;
    let mut backoff = BACKOFF_MIN;
    while Instant::now() < deadline {
        if let Some((n, conn)) = find_primary(&targets).await {
            pool.set_connect_options(targets.hosts[n].clone());
            tracing::info!(host = %targets.labels[n], "postgres: following the primary");
            current = Some(n);
            probe = Some(conn);
            break;
        }
        tokio::time::sleep(backoff.min(deadline.saturating_duration_since(Instant::now()))).await;
        backoff = (backoff * 2).min(BACKOFF_MAX);
    }
    let task = tokio::spawn(async move {
        let mut backoff = BACKOFF_MIN;
        while !pool.is_closed() {
            if let Some(conn) = probe.as_mut() {
                tokio::time::sleep(CHECK_INTERVAL).await;
                if matches!(
                    tokio::time::timeout(CHECK_TIMEOUT, writable(conn)).await,
                    Ok(Ok(true))
                ) {
                    continue;
                }
                let host = current.map(|n| targets.labels[n].as_str());
                tracing::warn!(
                    host,
                    "postgres: the primary is gone or read-only; looking for the new one"
                );
                probe = None;
                fence.advance();
            }
            match find_primary(&targets).await {
                Some((n, conn)) => {
                    if current != Some(n) {
                        pool.set_connect_options(targets.hosts[n].clone());
                        tracing::info!(host = %targets.labels[n], "postgres: following the primary");
                    }
                    fence.advance();
                    current = Some(n);
                    probe = Some(conn);
                    backoff = BACKOFF_MIN;
                }
                None => {
                    tracing::warn!(hosts = ?targets.labels, "postgres: no host is a writable primary yet");
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(BACKOFF_MAX);
                }
            }
        }
        if let Some(conn) = probe {
            let _ = conn.close().await;
        }
    });
    Follower(task.abort_handle())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hosts(url: &str) -> Vec<String> {
        Targets::parse(url).unwrap().unwrap().labels().to_vec()
    }

    #[test]
    fn plain_urls_are_left_to_the_ordinary_pool() {
        assert!(Targets::parse("postgres://u@h/db").unwrap().is_none());
        assert!(Targets::parse("postgres://u@h:1/db?sslmode=disable")
            .unwrap()
            .is_none());
        assert!(Targets::parse("postgres://u@h/db?target_session_attrs=any")
            .unwrap()
            .is_none());
    }

    #[test]
    fn a_host_list_gives_one_target_per_host_in_order() {
        assert_eq!(
            hosts("postgres://u:pw@h1:5433,h2:5434/db?target_session_attrs=read-write"),
            ["h1:5433", "h2:5434"]
        );
        assert_eq!(
            hosts("postgresql://u@a,b:7,[::1]:9/db?sslmode=disable&target_session_attrs=primary"),
            ["a:5432", "b:7", "[::1]:9"]
        );
        // One host asking for the primary is followed too (it may turn read-only).
        assert_eq!(
            hosts("postgres://u@h:1/db?target_session_attrs=read-write"),
            ["h:1"]
        );
        assert_eq!(
            hosts("postgres:///db?host=h2&port=3&target_session_attrs=read-write"),
            ["h2:3"],
            "a host given as a parameter"
        );
    }

    #[test]
    fn every_host_shares_the_user_password_database_and_parameters() {
        let t = Targets::parse(
            "postgres://me:s%40cret@h1:1,h2:2/things?sslmode=disable&target_session_attrs=read-write&application_name=x",
        )
        .unwrap()
        .unwrap();
        for o in &t.hosts {
            assert_eq!(o.get_username(), "me");
            assert_eq!(o.get_database(), Some("things"));
            assert_eq!(o.get_application_name(), Some("x"));
            assert!(matches!(
                o.get_ssl_mode(),
                sqlx::postgres::PgSslMode::Disable
            ));
        }
        assert_eq!(t.first().get_host(), "h1");
    }

    #[test]
    fn bad_host_lists_are_refused_by_name_without_the_password() {
        for (url, says) in [
            (
                "postgres://u:hunter2@h1,h2/db",
                "target_session_attrs=read-write",
            ),
            (
                "postgres://u:hunter2@h1,h2/db?target_session_attrs=any",
                "target_session_attrs=read-write",
            ),
            (
                "postgres://u:hunter2@h1/db?target_session_attrs=standby",
                "standby is not supported",
            ),
            (
                "postgres://u:hunter2@h1,,h2/db?target_session_attrs=read-write",
                "host 2 of the list is empty",
            ),
            (
                "postgres://u:hunter2@h1,h2:port/db?target_session_attrs=read-write",
                "host 2 (h2:port)",
            ),
        ] {
            let err = Targets::parse(url).err().unwrap();
            assert!(matches!(err, StoreError::Config(_)), "{url}: {err:?}");
            let msg = err.to_string();
            assert!(msg.contains(says), "{url}: {msg}");
            assert!(!msg.contains("hunter2"), "{url}: {msg}");
        }
    }

    #[test]
    fn the_fence_admits_only_connections_opened_after_it_moved() {
        let fence = Fence::new();
        std::thread::sleep(Duration::from_millis(5));
        fence.advance();
        assert!(!fence.admits(Duration::from_millis(3)), "opened before");
        assert!(fence.admits(Duration::ZERO), "opened now");
    }

    /// A loopback port where nothing listens (bound, then released).
    #[cfg(feature = "testkit")]
    fn dead_host() -> String {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        format!("127.0.0.1:{}", l.local_addr().unwrap().port())
    }

    /// `url` with `hosts` in front of its host and `target_session_attrs=read-write`.
    #[cfg(feature = "testkit")]
    fn with_hosts_before(url: &str, hosts: &[String]) -> String {
        let (scheme, rest) = url.split_once("://").unwrap();
        let end = rest.find(['/', '?']).unwrap_or(rest.len());
        let at = rest[..end].rfind('@').map_or(0, |a| a + 1);
        let sep = if url.contains('?') { '&' } else { '?' };
        format!(
            "{scheme}://{}{},{}{sep}target_session_attrs=read-write",
            &rest[..at],
            hosts.join(","),
            &rest[at..]
        )
    }

    #[cfg(feature = "testkit")]
    #[tokio::test]
    async fn a_host_list_opens_on_the_writable_host_whichever_answers() {
        use crate::Store;
        let fresh = crate::testkit::fresh_postgres_url().await;
        let live = super::super::PgStore::connect_options(&fresh)
            .unwrap()
            .get_port();
        let url = with_hosts_before(&fresh, &[dead_host()]);
        let store = super::super::PgStore::open(&url).await.unwrap();
        store.set_cursor(1, "ha", 7).await.unwrap();
        assert_eq!(store.cursor(1, "ha").await.unwrap(), Some(7));
        assert_eq!(
            store.0.pool.connect_options().get_port(),
            live,
            "the pool points at the live host, not the dead first one"
        );
        store.close().await;
    }

    /// The backends connected to this database under `application_name`.
    #[cfg(feature = "testkit")]
    async fn sessions_named(url: &str, name: &str) -> i64 {
        use sqlx::ConnectOptions;
        let mut conn = super::super::PgStore::connect_options(url)
            .unwrap()
            .application_name("follower-test-observer")
            .connect()
            .await
            .unwrap();
        let n =
            sqlx::query_scalar("select count(*) from pg_stat_activity where application_name = $1")
                .bind(name)
                .fetch_one(&mut conn)
                .await
                .unwrap();
        let _ = conn.close().await;
        n
    }

    /// A store on a host list dropped without `close()`: the follower stops with it, so its
    /// probe connection (and the pool it held) is gone, not left open for the process's life.
    #[cfg(feature = "testkit")]
    #[tokio::test]
    async fn a_store_dropped_without_close_stops_following_the_primary() {
        use crate::Store;
        let fresh = crate::testkit::fresh_postgres_url().await;
        let name = format!("follower_drop_{}_{}", std::process::id(), crate::now_ms());
        let sep = if fresh.contains('?') { '&' } else { '?' };
        let named = format!("{fresh}{sep}application_name={name}");
        let url = with_hosts_before(&named, &[dead_host()]);
        let store = super::super::PgStore::open(&url).await.unwrap();
        store.set_cursor(1, "ha", 7).await.unwrap();
        let clone = store.clone();
        drop(store);
        assert!(
            sessions_named(&fresh, &name).await >= 1,
            "the follower's probe connection is open while a clone of the store lives"
        );
        drop(clone);
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let left = sessions_named(&fresh, &name).await;
            if left == 0 {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "{left} connection(s) of the dropped store still open after 5 s: the follower \
                 outlived its store"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    #[cfg(feature = "testkit")]
    #[tokio::test]
    async fn a_host_list_without_a_writable_host_fails_within_the_acquire_timeout() {
        use super::super::{PgStore, PoolSettings};
        let url = format!(
            "postgres://u:hunter2@{},{}/db?target_session_attrs=read-write",
            dead_host(),
            dead_host()
        );
        let targets = Targets::parse(&url).unwrap().unwrap();
        let started = Instant::now();
        let settings = PoolSettings {
            acquire_timeout: Duration::from_millis(300),
            ..PoolSettings::default()
        };
        let err = PgStore::open_following(targets, settings)
            .await
            .unwrap_err();
        assert!(matches!(err, StoreError::Unavailable(_)), "{err:?}");
        assert!(!format!("{err:?}").contains("hunter2"), "{err:?}");
        assert!(
            started.elapsed() < Duration::from_secs(3),
            "{:?}",
            started.elapsed()
        );
    }
}
