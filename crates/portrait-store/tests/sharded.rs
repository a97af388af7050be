//! The [`Sharded`] store over two real backends (SQLite files here, for speed; the multinode
//! test runs it over two PostgreSQL clusters): routing by app, and a move under concurrent
//! writes that ends with both shards holding the same history.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use portrait_core::schema::StandardTag;
use portrait_core::{Identifier, ProfileValue, Tag};
use portrait_store::sharded::{Sharded, HOME};
use portrait_store::{testkit, NewAccount, Store, StoreError};

const APP: u64 = 1_400_000_100;
const OTHER: u64 = 1_400_000_200;

fn id(s: &str) -> Identifier {
    Identifier::parse(s).unwrap()
}

fn nick(v: &str) -> Vec<(Tag, ProfileValue)> {
    vec![(
        Tag::Standard(StandardTag::Nick),
        ProfileValue::Str(v.into()),
    )]
}

/// A sharded store over two fresh SQLite stores: `home` and `b`; both returned too.
async fn two_shards() -> (
    Arc<Sharded>,
    Arc<dyn Store>,
    Arc<dyn Store>,
    Vec<tempfile::TempDir>,
) {
    let (home, d1) = testkit::fresh_sqlite().await;
    let (b, d2) = testkit::fresh_sqlite().await;
    let sharded = Sharded::new(home.clone(), vec![("b".into(), b.clone())]).unwrap();
    (Arc::new(sharded), home, b, vec![d1, d2])
}

#[tokio::test]
async fn each_app_is_written_only_on_its_shard() {
    let (s, home, b, _dirs) = two_shards().await;
    s.place(APP, Some("b")).unwrap();
    for app in [APP, OTHER] {
        s.import_accounts(app, &[NewAccount::new(id("u"))], "t".into())
            .await
            .unwrap();
        s.set_profile(app, &id("u"), &nick("x"), "t".into())
            .await
            .unwrap();
    }
    assert_eq!(b.current_version(APP).await.unwrap(), 2);
    assert_eq!(
        home.current_version(APP).await.unwrap(),
        0,
        "APP is not on home"
    );
    assert_eq!(home.current_version(OTHER).await.unwrap(), 2);
    assert_eq!(
        b.current_version(OTHER).await.unwrap(),
        0,
        "OTHER is not on b"
    );
    assert_eq!(
        s.apps().await.unwrap(),
        vec![APP, OTHER],
        "apps: every shard's"
    );
    assert_eq!(s.shard_of(APP), "b");
    assert_eq!(s.shard_of(OTHER), HOME);
    assert_eq!(s.least_loaded(), HOME, "b holds one placed app, home none");
    s.place(OTHER, Some(HOME)).unwrap();
    s.place(OTHER + 1, Some(HOME)).unwrap();
    assert_eq!(s.least_loaded(), "b", "home holds two placed apps, b one");
    assert_eq!(s.shard_of(OTHER), HOME);
    // App records live on the home shard.
    s.put_app_record(APP, None, "{}").await.unwrap();
    assert_eq!(home.app_records(0).await.unwrap().len(), 1);
    assert!(b.app_records(0).await.unwrap().is_empty());
}

#[tokio::test]
async fn placing_on_an_unknown_shard_or_a_bad_name_is_refused() {
    let (s, _home, _b, _dirs) = two_shards().await;
    let e = s.place(APP, Some("c")).unwrap_err();
    assert!(
        matches!(&e, StoreError::Config(m) if m.contains("\"c\"") && m.contains("b, home")),
        "{e}"
    );
    assert_eq!(s.shard_of(APP), HOME, "unchanged");
    let (x, _d) = testkit::fresh_sqlite().await;
    for bad in ["", "B", "1a", "a b", HOME] {
        let e = Sharded::new(x.clone(), vec![(bad.into(), x.clone())]).err();
        assert!(matches!(e, Some(StoreError::Config(_))), "{bad:?}: {e:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_move_under_writes_keeps_every_write_and_the_versions() {
    let (s, home, b, _dirs) = two_shards().await;
    move_under_writes(s, home, b).await;
}

// The same between two PostgreSQL databases (schemas of the tests' database).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_move_between_postgres_shards_keeps_every_write_and_the_versions() {
    let (home, b) = (
        testkit::fresh_postgres().await,
        testkit::fresh_postgres().await,
    );
    let s = Arc::new(Sharded::new(home.clone(), vec![("b".into(), b.clone())]).unwrap());
    move_under_writes(s.clone(), home, b).await;
    s.close().await;
}

/// Moves [`APP`] from home to `b` and back while a task writes it; checks both shards' history.
async fn move_under_writes(s: Arc<Sharded>, home: Arc<dyn Store>, b: Arc<dyn Store>) {
    let users: Vec<Identifier> = (0..50).map(|i| id(&format!("u{i}"))).collect();
    let accounts: Vec<NewAccount> = users.iter().cloned().map(NewAccount::new).collect();
    s.import_accounts(APP, &accounts, "t".into()).await.unwrap();
    s.set_cursor(APP, "webhook", 10).await.unwrap();
    s.kick(APP, &users[0], 12345).await.unwrap();

    let stop = Arc::new(AtomicBool::new(false));
    let writer = tokio::spawn({
        let (s, users, stop) = (s.clone(), users.clone(), stop.clone());
        async move {
            let (mut n, mut slowest) = (0usize, Duration::ZERO);
            while !stop.load(Ordering::Relaxed) {
                let t = Instant::now();
                let user = &users[n % users.len()];
                if n % 13 == 12 {
                    s.delete_accounts(APP, std::slice::from_ref(user), "w".into())
                        .await
                        .unwrap();
                } else {
                    match s
                        .set_profile(APP, user, &nick(&format!("n{n}")), "w".into())
                        .await
                    {
                        Err(StoreError::NotFound) => {
                            // Deleted earlier: import it again (an import to replay too).
                            let again = NewAccount::new(user.clone());
                            s.import_accounts(APP, &[again], "w".into()).await.unwrap();
                        }
                        r => {
                            r.unwrap();
                        }
                    }
                }
                slowest = slowest.max(t.elapsed());
                n += 1;
                // Light writes: a move converges only while the app is written more slowly
                // than its changes replay.
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
            (n, slowest)
        }
    });
    tokio::time::sleep(Duration::from_millis(200)).await;
    let moving = s.begin_move(APP, "b", || async { Ok(()) }).await.unwrap();
    let report = moving.switch();
    tokio::time::sleep(Duration::from_millis(200)).await;
    stop.store(true, Ordering::Relaxed);
    let (writes, slowest) = writer.await.unwrap();
    println!("sharded move: {report:?}; {writes} writes, slowest {slowest:?}");
    assert_eq!(s.shard_of(APP), "b");
    assert!(
        report.caught_up_changes > 0,
        "writes ran during the copy: {report:?}"
    );
    assert!(report.paused_ms <= 1_000, "{report:?}");

    // Everything up to the switch is on both shards alike; what followed is on b only.
    let at = report.version;
    let old = home.changes_since(APP, 0, 100_000).await.unwrap();
    let new = b.changes_since(APP, 0, 100_000).await.unwrap();
    assert_eq!(
        old.last().unwrap().version,
        at,
        "nothing written to home after the switch"
    );
    assert!(new.len() > old.len(), "writes went on on b");
    for (x, y) in old.iter().zip(&new) {
        assert_eq!(
            (x.version, &x.user, x.kind, &x.items, &x.operator),
            (y.version, &y.user, y.kind, &y.items, &y.operator)
        );
    }
    assert_eq!(
        s.current_version(APP).await.unwrap(),
        new.last().unwrap().version
    );
    // Per-account histories agree too (their chains were rebuilt by the replay).
    let some = &users[..5];
    let a = home.changes_of(APP, some, 0, 10_000).await.unwrap().changes;
    let c = b.changes_of(APP, some, 0, 10_000).await.unwrap().changes;
    let upto: Vec<_> = c
        .iter()
        .filter(|ch| ch.version <= at)
        .map(|ch| (ch.version, ch.kind))
        .collect();
    assert_eq!(
        a.iter().map(|ch| (ch.version, ch.kind)).collect::<Vec<_>>(),
        upto
    );
    assert_eq!(b.cursor(APP, "webhook").await.unwrap(), Some(10));
    assert_eq!(b.kicks(APP).await.unwrap(), vec![("u0".to_owned(), 12345)]);

    // Moving back catches up from the copy left on home (no second dump).
    let back = s
        .begin_move(APP, HOME, || async { Ok(()) })
        .await
        .unwrap()
        .switch();
    assert_eq!(back.copied_accounts, 0, "{back:?}");
    assert_eq!(back.version, s.current_version(APP).await.unwrap());
    assert_eq!(s.shard_of(APP), HOME);
    let e = s
        .begin_move(APP, HOME, || async { Ok(()) })
        .await
        .err()
        .unwrap();
    assert!(matches!(e, StoreError::Config(_)), "{e}");
}

#[tokio::test]
async fn an_abandoned_move_leaves_the_app_where_it_was() {
    let (s, home, _b, _dirs) = two_shards().await;
    s.import_accounts(APP, &[NewAccount::new(id("u"))], "t".into())
        .await
        .unwrap();
    let moving = s.begin_move(APP, "b", || async { Ok(()) }).await.unwrap();
    drop(moving);
    assert_eq!(s.shard_of(APP), HOME);
    s.set_profile(APP, &id("u"), &nick("after"), "t".into())
        .await
        .unwrap();
    assert_eq!(
        home.current_version(APP).await.unwrap(),
        2,
        "writes resumed on home"
    );
}

/// A target shard that hangs while the app's writes are paused (here another connection holds
/// its write lock; on PostgreSQL a lock wait has no end) does not hold the writes for long: the
/// move gives up at its limit, the app stays where it was, and its writes go on there.
#[tokio::test]
async fn a_target_that_hangs_in_the_pause_abandons_the_move_not_the_writes() {
    use sqlx::Connection;
    let (s, home, _b, dirs) = two_shards().await;
    s.import_accounts(APP, &[NewAccount::new(id("u"))], "t".into())
        .await
        .unwrap();
    let target = format!("sqlite://{}", dirs[1].path().join("portrait.db").display());
    let lock = Arc::new(tokio::sync::Mutex::new(
        sqlx::SqliteConnection::connect(&target).await.unwrap(),
    ));
    let started = Instant::now();
    let moved = s
        .begin_move(APP, "b", || {
            let (home, lock) = (home.clone(), lock.clone());
            async move {
                // Every node holds the app's writes now. A change for the last catch-up (made on
                // the source itself: writes through `s` wait), then the target hangs.
                home.set_profile(APP, &id("u"), &nick("during"), "t".into())
                    .await?;
                sqlx::query("begin immediate")
                    .execute(&mut *lock.lock().await)
                    .await
                    .map_err(|e| StoreError::Unavailable(Box::new(e)))?;
                Ok(())
            }
        })
        .await;
    let took = started.elapsed();
    let e = moved.err().expect("the move is abandoned");
    assert!(matches!(e, StoreError::Unavailable(_)), "{e:?}");
    assert!(
        took < Duration::from_secs(4),
        "given up at the move's limit, not at the lock's busy timeout (5 s): {took:?}"
    );
    assert_eq!(s.shard_of(APP), HOME, "the app stays where it was");
    let t = Instant::now();
    s.set_profile(APP, &id("u"), &nick("after"), "t".into())
        .await
        .unwrap();
    assert!(t.elapsed() < Duration::from_secs(1), "writes resumed");
    assert_eq!(home.current_version(APP).await.unwrap(), 3);
    sqlx::query("rollback")
        .execute(&mut *lock.lock().await)
        .await
        .unwrap();
}

#[tokio::test]
async fn app_heads_reads_each_app_from_the_shard_it_is_placed_on() {
    let (s, home, b, _dirs) = two_shards().await;
    s.place(APP, Some("b")).unwrap();
    for app in [APP, OTHER] {
        s.import_accounts(app, &[NewAccount::new(id("u"))], "t".into())
            .await
            .unwrap();
    }
    s.kick(APP, &id("u"), 7).await.unwrap();
    // What a move leaves behind on the shard the app left: rows of its own, not the app's head.
    home.import_accounts(
        APP,
        &[NewAccount::new(id("v")), NewAccount::new(id("w"))],
        "t".into(),
    )
    .await
    .unwrap();
    let heads = s.app_heads().await.unwrap();
    let b_heads = b.app_heads().await.unwrap();
    let home_heads = home.app_heads().await.unwrap();
    let of = |heads: &[portrait_store::AppHead], app| heads.iter().find(|h| h.app == app).copied();
    assert_eq!(heads.len(), 2, "each app once: {heads:?}");
    assert_eq!(of(&heads, APP), of(&b_heads, APP), "APP from b");
    assert_eq!(of(&heads, OTHER), of(&home_heads, OTHER), "OTHER from home");
    assert_ne!(of(&heads, APP), of(&home_heads, APP));
}

// The whole conformance suite through the router, half of its apps on each shard: every method
// is forwarded, and the gate of writes costs nothing when no move runs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sharded_store_conforms_with_apps_on_both_shards() {
    let (s, _home, _b, _dirs) = two_shards().await;
    for app in (1_400_000_001..=1_400_000_410).chain(1_900_000_100..=1_900_000_110) {
        if app % 2 == 1 {
            s.place(app, Some("b")).unwrap();
        }
    }
    testkit::run_all(s.clone()).await;
    s.close().await;
}
