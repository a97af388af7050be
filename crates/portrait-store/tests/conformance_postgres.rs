//! The conformance suite on the PostgreSQL backend (bare and behind the read cache), plus what only
//! a database server can show: data moving between SQLite and PostgreSQL, opening by URL and reopening, several nodes writing one app, a
//! database that goes away (calls fail fast, the pool recovers by itself) and one that was never
//! there.
//!
//! Every test gets a schema of its own in the database at `PORTRAIT_TEST_PG_URL` (default
//! `postgres://postgres@127.0.0.1:5432/test`). If PostgreSQL is not running these tests fail and
//! say how to start it; they never pass silently.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use portrait_core::schema::StandardTag;
use portrait_core::{Identifier, ProfileValue, Tag};
use portrait_store::cache::CachedStore;
use portrait_store::postgres::{PgStore, PoolSettings};
use portrait_store::{dump, testkit, NewAccount, Store, StoreError};
use tokio::net::{TcpSocket, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinHandle;

const APP: u64 = 1_400_000_000;

fn id(s: &str) -> Identifier {
    Identifier::parse(s).unwrap()
}

fn account(user: &str) -> NewAccount {
    NewAccount::with_nick_face(id(user), Some(user.to_uppercase()), None)
}

fn level(n: u64) -> [(Tag, ProfileValue); 1] {
    [(Tag::Standard(StandardTag::Level), ProfileValue::Int(n))]
}

// Multi-threaded, so that the suite's concurrent writers really run in parallel.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_store_conforms() {
    let store = testkit::fresh_postgres().await;
    testkit::run_all(store.clone()).await;
    store.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cached_postgres_store_conforms() {
    let inner = testkit::fresh_postgres().await;
    let store: Arc<dyn Store> = Arc::new(CachedStore::new(inner, 100_000));
    testkit::run_all(store.clone()).await;
    store.close().await;
}

/// Every app of `from`, read back from `to`, is identical.
async fn assert_same_apps(from: &dyn Store, to: &dyn Store) -> usize {
    let apps = from.apps().await.unwrap();
    assert_eq!(to.apps().await.unwrap(), apps, "the same apps");
    for app in &apps {
        assert_eq!(
            to.dump_app(*app).await.unwrap(),
            from.dump_app(*app).await.unwrap(),
            "app {app}"
        );
    }
    apps.len()
}

// The whole conformance suite's data (many apps, u64::MAX ids and values, NULs and unicode,
// deletes, kicks, cursors) moves SQLite → PostgreSQL → SQLite, and through a dump file, exactly.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn data_moves_between_sqlite_and_postgres_with_every_version_preserved() {
    let (sqlite, _dir) = testkit::fresh_sqlite().await;
    testkit::run_all(sqlite.clone()).await;
    let pg = testkit::fresh_postgres().await;

    let moved = dump::migrate(&*sqlite, &*pg, None).await.expect("migrate");
    let apps = assert_same_apps(&*sqlite, &*pg).await;
    assert!(apps > 20, "the suite wrote {apps} apps");
    assert_eq!(moved.apps, apps as u64);
    assert!(moved.accounts > 700 && moved.changes > 1000, "{moved:?}");

    let (back, _dir2) = testkit::fresh_sqlite().await;
    dump::migrate(&*pg, &*back, None).await.expect("and back");
    assert_same_apps(&*pg, &*back).await;

    let mut file = Vec::new();
    let exported = dump::export(&*sqlite, None, &mut file).await.unwrap();
    assert_eq!(exported, moved);
    let pg2 = testkit::fresh_postgres().await;
    let imported = dump::import(&*pg2, &mut file.as_slice()).await.unwrap();
    assert_eq!(imported, moved);
    assert_same_apps(&*sqlite, &*pg2).await;

    // The moved store carries on where the old one stopped.
    let app = 1_400_000_013; // the delete check's app: accounts a, c deleted, b kept at 6
    let next = sqlite.current_version(app).await.unwrap() + 1;
    for store in [&pg, &back, &pg2] {
        assert_eq!(
            store
                .set_profile(app, &id("b"), &level(1), "b".into())
                .await
                .unwrap(),
            next
        );
    }

    // A target that already holds one of the apps is refused before anything is written.
    let (partial, _dir3) = testkit::fresh_sqlite().await;
    partial
        .import_accounts(app, &[account("someone")], "admin".into())
        .await
        .unwrap();
    let err = dump::migrate(&*sqlite, &*partial, None)
        .await
        .expect_err("the target holds an app");
    assert!(
        matches!(&err, dump::DumpError::TargetNotEmpty(clash) if clash == &vec![app]),
        "{err:?}"
    );
    assert_eq!(
        partial.apps().await.unwrap(),
        vec![app],
        "nothing else written"
    );
    for store in [sqlite, pg, back, pg2, partial] {
        store.close().await;
    }
}

#[tokio::test]
async fn open_accepts_both_schemes_and_data_persists_across_reopen() {
    let url = testkit::fresh_postgres_url().await;
    let store = portrait_store::open(&url).await.expect("postgres://");
    store
        .import_accounts(APP, &[account("alice")], "admin".into())
        .await
        .unwrap();
    store
        .set_profile(APP, &id("alice"), &level(9), "alice".into())
        .await
        .unwrap();
    store.kick(APP, &id("alice"), 1_700_000_000).await.unwrap();
    store.set_cursor(APP, "webhook", 2).await.unwrap();
    let before = store.get_profiles(APP, &[id("alice")]).await.unwrap();
    store.close().await;
    assert!(
        matches!(store.ping().await, Err(StoreError::Unavailable(_))),
        "a closed store refuses further calls"
    );

    let again = url.replacen("postgres://", "postgresql://", 1);
    assert_ne!(again, url);
    let store = portrait_store::open(&again)
        .await
        .expect("postgresql://, and migrations already applied");
    assert_eq!(
        store.get_profiles(APP, &[id("alice")]).await.unwrap(),
        before
    );
    assert_eq!(store.current_version(APP).await.unwrap(), 2);
    assert_eq!(store.changes_since(APP, 0, 10).await.unwrap().len(), 2);
    assert_eq!(
        store.kicks(APP).await.unwrap(),
        vec![("alice".to_owned(), 1_700_000_000)]
    );
    assert_eq!(store.cursor(APP, "webhook").await.unwrap(), Some(2));
    assert_eq!(
        store
            .set_profile(APP, &id("alice"), &level(10), "alice".into())
            .await
            .unwrap(),
        3,
        "versions continue where they left off"
    );
    store.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_nodes_on_one_database_share_one_gapless_version_sequence() {
    let url = testkit::fresh_postgres_url().await;
    let nodes = [
        Arc::new(PgStore::open(&url).await.unwrap()),
        Arc::new(PgStore::open(&url).await.unwrap()),
    ];
    nodes[0]
        .import_accounts(APP, &[account("a"), account("b")], "admin".into())
        .await
        .unwrap();
    let mut tasks = Vec::new();
    for (n, node) in nodes.iter().enumerate() {
        for t in 0..4u64 {
            let node = node.clone();
            tasks.push(tokio::spawn(async move {
                let mut versions = Vec::new();
                for i in 0..25u64 {
                    let user = if (t + i) % 2 == 0 { "a" } else { "b" };
                    let v = node
                        .set_profile(APP, &id(user), &level(i), (&format!("node{n}")).into())
                        .await
                        .expect("set_profile on either node");
                    versions.push(v);
                }
                versions
            }));
        }
    }
    let mut versions = Vec::new();
    for t in tasks {
        versions.extend(t.await.unwrap());
    }
    versions.sort_unstable();
    assert_eq!(
        versions,
        (3..=202).collect::<Vec<u64>>(),
        "200 writes through two pools got versions 3..=202, each once"
    );
    for node in &nodes {
        assert_eq!(node.current_version(APP).await.unwrap(), 202);
        let log: Vec<u64> = node
            .changes_since(APP, 0, 1000)
            .await
            .unwrap()
            .iter()
            .map(|c| c.version)
            .collect();
        assert_eq!(log, (1..=202).collect::<Vec<u64>>());
    }
    for node in &nodes {
        node.close().await;
    }
}

// Group commit across processes: two nodes each batch their own concurrent writes to one app, and
// a third pool keeps reading the change log. Versions are gapless and unique across both nodes,
// become visible in version order (each node's batch holds the app's lock to its COMMIT), and
// every write composes with those before it, whichever node or batch it was in.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_nodes_batching_one_app_stay_gapless_ordered_and_lose_no_write() {
    const NODES: usize = 2;
    const TASKS: u64 = 32;
    const WRITES: u64 = 25;
    const USERS: u64 = 20;
    let url = testkit::fresh_postgres_url().await;
    let nodes: Vec<Arc<PgStore>> = vec![
        Arc::new(PgStore::open(&url).await.unwrap()),
        Arc::new(PgStore::open(&url).await.unwrap()),
    ];
    let reader = Arc::new(PgStore::open(&url).await.unwrap());
    let accounts: Vec<NewAccount> = (0..USERS).map(|u| account(&format!("u{u}"))).collect();
    nodes[0]
        .import_accounts(APP, &accounts, "admin".into())
        .await
        .unwrap();

    let done = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let polling = {
        let (reader, done) = (reader.clone(), done.clone());
        tokio::spawn(async move {
            let mut seen = 0;
            loop {
                let finished = done.load(std::sync::atomic::Ordering::SeqCst);
                for c in reader.changes_since(APP, seen, 100_000).await.unwrap() {
                    assert_eq!(
                        c.version,
                        seen + 1,
                        "version {} became visible before {}",
                        c.version,
                        seen + 1
                    );
                    seen = c.version;
                }
                if finished {
                    return seen;
                }
                tokio::task::yield_now().await;
            }
        })
    };

    let start = Arc::new(tokio::sync::Barrier::new(NODES * TASKS as usize));
    let mut tasks = Vec::new();
    for (n, node) in nodes.iter().enumerate() {
        for t in 0..TASKS {
            let (node, start) = (node.clone(), start.clone());
            tasks.push(tokio::spawn(async move {
                start.wait().await;
                let mut written = Vec::new(); // (version, user, i)
                for i in 0..WRITES {
                    let user = format!("u{}", (t * 7 + i * 3 + n as u64) % USERS);
                    let items = [
                        (
                            Tag::Custom(format!("Tag_Profile_Custom_N{n}T{t}")),
                            ProfileValue::Int(i),
                        ),
                        (
                            Tag::Custom("Tag_Profile_Custom_Last".into()),
                            ProfileValue::Str(format!("{n}/{t}/{i}")),
                        ),
                    ];
                    let v = node
                        .set_profile(APP, &id(&user), &items, (&format!("node{n}")).into())
                        .await
                        .expect("set_profile");
                    written.push((v, user, format!("{n}/{t}/{i}"), (n, t, i)));
                }
                written
            }));
        }
    }
    let mut written = Vec::new();
    for t in tasks {
        written.extend(t.await.unwrap());
    }
    done.store(true, std::sync::atomic::Ordering::SeqCst);
    let total = NODES as u64 * TASKS * WRITES;
    written.sort();
    assert_eq!(
        written.iter().map(|w| w.0).collect::<Vec<_>>(),
        (USERS + 1..=USERS + total).collect::<Vec<_>>(),
        "{total} writes through two nodes got contiguous versions, each once"
    );
    assert_eq!(
        polling.await.unwrap(),
        USERS + total,
        "the reader saw them all, in order"
    );

    let log = reader.changes_since(APP, USERS, 100_000).await.unwrap();
    for (c, (v, user, last, _)) in log.iter().zip(&written) {
        assert_eq!((c.version, &c.user), (*v, user));
        assert_eq!(
            c.items[1],
            (
                "Tag_Profile_Custom_Last".to_owned(),
                ProfileValue::Str(last.clone())
            ),
            "version {v} records its own write"
        );
    }
    for u in 0..USERS {
        let user = format!("u{u}");
        let mine: Vec<_> = written.iter().filter(|w| w.1 == user).collect();
        let profile = reader.get_profiles(APP, &[id(&user)]).await.unwrap()[0]
            .clone()
            .unwrap();
        let last = mine.last().unwrap();
        assert_eq!(profile.version, last.0, "{user}: at its last write");
        assert_eq!(
            profile.fields["Tag_Profile_Custom_Last"],
            ProfileValue::Str(last.2.clone()),
            "{user}: the highest version wins"
        );
        // Every task's own field holds that task's last write to the account: no write lost.
        for w in &mine {
            let (n, t, _) = w.3;
            let latest = mine
                .iter()
                .filter(|w| (w.3 .0, w.3 .1) == (n, t))
                .map(|w| w.3 .2)
                .max()
                .unwrap();
            assert_eq!(
                profile.fields[&format!("Tag_Profile_Custom_N{n}T{t}")],
                ProfileValue::Int(latest),
                "{user}: field of node {n} task {t}"
            );
        }
    }
    for node in nodes.iter().chain([&reader]) {
        node.close().await;
    }
}

#[tokio::test]
async fn a_database_migrated_by_a_newer_portrait_is_refused() {
    let url = testkit::fresh_postgres_url().await;
    let store = PgStore::open(&url).await.unwrap();
    store.close().await;
    let mut conn: sqlx::PgConnection =
        sqlx::ConnectOptions::connect(&PgStore::connect_options(&url).unwrap())
            .await
            .unwrap();
    sqlx::query(
        "insert into _sqlx_migrations (version, description, success, checksum, execution_time) \
         values (9999, 'from the future', true, '\\x00', 0)",
    )
    .execute(&mut conn)
    .await
    .unwrap();
    let err = PgStore::open(&url).await.expect_err("an unknown migration");
    assert!(
        matches!(&err, StoreError::Config(m) if m.contains("newer Portrait")),
        "{err:?}"
    );
}

#[tokio::test]
async fn opening_an_unreachable_database_fails_fast_without_showing_the_password() {
    let started = Instant::now();
    let Err(err) = portrait_store::open("postgres://portrait:hunter2@127.0.0.1:1/portrait").await
    else {
        panic!("nothing listens on port 1, yet open succeeded");
    };
    let took = started.elapsed();
    assert!(matches!(err, StoreError::Unavailable(_)), "{err:?}");
    assert!(
        took < Duration::from_secs(5),
        "open gave up after {took:?}, not within the acquire timeout"
    );
    let mut shown = format!("{err} / {err:?}");
    let mut source = std::error::Error::source(&err);
    while let Some(s) = source {
        shown.push_str(&format!(" / {s}"));
        source = s.source();
    }
    assert!(!shown.contains("hunter2"), "{shown}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_fail_fast_while_the_database_is_down_and_the_pool_recovers_by_itself() {
    let url = testkit::fresh_postgres_url().await;
    let options = PgStore::connect_options(&url).unwrap();
    let upstream = tokio::net::lookup_host((options.get_host(), options.get_port()))
        .await
        .unwrap()
        .next()
        .expect("the test database's address");
    // The store reaches the database through a proxy this test can cut and restore.
    let mut proxy = Proxy::start(0, upstream).await;
    let port = proxy.port;
    let settings = PoolSettings {
        max_connections: 4,
        acquire_timeout: Duration::from_secs(2),
    };
    let store = PgStore::open_with(options.host("127.0.0.1").port(port), settings)
        .await
        .unwrap();
    store
        .import_accounts(APP, &[account("alice")], "admin".into())
        .await
        .unwrap();
    store
        .set_profile(APP, &id("alice"), &level(1), "alice".into())
        .await
        .unwrap();
    let before = store.get_profiles(APP, &[id("alice")]).await.unwrap();

    proxy.stop().await;
    let (alice, two) = ([id("alice")], level(2));
    let (ping, read, write, log) = tokio::join!(
        timed(store.ping()),
        timed(store.get_profiles(APP, &alice)),
        timed(store.set_profile(APP, &alice[0], &two, "alice".into())),
        timed(store.changes_since(APP, 0, 10)),
    );
    for (what, (result, took)) in [
        ("ping", ping),
        ("get_profiles", read),
        ("set_profile", write),
        ("changes_since", log),
    ] {
        assert!(
            matches!(result, Err(StoreError::Unavailable(_))),
            "{what} while the database is down: {result:?}"
        );
        assert!(
            took < Duration::from_secs(4),
            "{what} took {took:?} to fail; the acquire timeout is 2 s"
        );
    }

    let _proxy = Proxy::start(port, upstream).await;
    store
        .ping()
        .await
        .expect("the first call after the database is back succeeds");
    assert_eq!(
        store.get_profiles(APP, &[id("alice")]).await.unwrap(),
        before
    );
    assert_eq!(
        store
            .set_profile(APP, &id("alice"), &level(3), "alice".into())
            .await
            .unwrap(),
        3,
        "the write that failed took no version"
    );
    store.close().await;
}

/// Awaits `call`; its outcome (the value dropped) and how long it took.
async fn timed<T>(
    call: impl std::future::Future<Output = Result<T, StoreError>>,
) -> (Result<(), StoreError>, Duration) {
    let started = Instant::now();
    let result = call.await.map(drop);
    (result, started.elapsed())
}

/// A TCP proxy to the test database that can be cut (listener closed, every connection dropped)
/// and started again on the same port.
struct Proxy {
    port: u16,
    stop: watch::Sender<bool>,
    task: Option<JoinHandle<()>>,
}

impl Proxy {
    /// Listens on `127.0.0.1:port` (0: any free port) and forwards to `upstream`.
    async fn start(port: u16, upstream: SocketAddr) -> Self {
        let socket = TcpSocket::new_v4().unwrap();
        socket.set_reuseaddr(true).unwrap();
        socket
            .bind(SocketAddr::from(([127, 0, 0, 1], port)))
            .unwrap();
        let listener = socket.listen(64).unwrap();
        let port = listener.local_addr().unwrap().port();
        let (stop, mut stopped) = watch::channel(false);
        let task = tokio::spawn(async move {
            let mut links = tokio::task::JoinSet::new();
            loop {
                tokio::select! {
                    _ = stopped.changed() => break,
                    accepted = listener.accept() => {
                        let Ok((mut inbound, _)) = accepted else { continue };
                        links.spawn(async move {
                            if let Ok(mut outbound) = TcpStream::connect(upstream).await {
                                let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                            }
                        });
                    }
                }
            }
            drop(listener);
            links.shutdown().await; // drops both ends of every link
        });
        Self {
            port,
            stop,
            task: Some(task),
        }
    }

    /// Closes the listener and every proxied connection.
    async fn stop(&mut self) {
        let _ = self.stop.send(true);
        if let Some(task) = self.task.take() {
            task.await.unwrap();
        }
    }
}

/// A database migrated up to 0004 (changes not yet chained, the index `changes_by_user` in use)
/// opens with every earlier change chained: catch-ups by account read all of them.
#[tokio::test]
async fn changes_written_before_chains_existed_are_chained_on_open() {
    use sqlx::Connection;
    let url = testkit::fresh_postgres_url().await;
    let dir = tempfile::tempdir().unwrap();
    let all = concat!(env!("CARGO_MANIFEST_DIR"), "/migrations/postgres");
    for f in [
        "0001_init.sql",
        "0002_leases.sql",
        "0003_kicks_and_changes_by_user.sql",
        "0004_change_client_ip.sql",
    ] {
        std::fs::copy(format!("{all}/{f}"), dir.path().join(f)).unwrap();
    }
    let mut conn = sqlx::PgConnection::connect_with(&PgStore::connect_options(&url).unwrap())
        .await
        .unwrap();
    sqlx::migrate::Migrator::new(dir.path())
        .await
        .unwrap()
        .run(&mut conn)
        .await
        .unwrap();
    sqlx::raw_sql(testkit::EARLIER_LOG_SQL)
        .execute(&mut conn)
        .await
        .unwrap();
    conn.close().await.unwrap();

    let store = PgStore::open(&url).await.expect("migrates to chains");
    testkit::changes_written_before_chains_are_chained(&store).await;
    store.close().await;
}
