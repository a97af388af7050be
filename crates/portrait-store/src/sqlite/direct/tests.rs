//! Batches and one-account reads answered from the walk must answer what SQLite answers in the
//! same snapshot: on a file whose WAL is empty, while this process writes, and when another
//! process writes.

use std::collections::HashMap;
use std::path::Path;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use portrait_core::schema::StandardTag;
use portrait_core::{Identifier, ProfileValue, Tag};
use rusqlite::Connection;

use crate::sqlite::lookup::{Commits, Lookups};
use crate::sqlite::SqliteStore;
use crate::{NewAccount, Store};

const APP: u64 = 1_400_000_001;
const OTHER_APP: u64 = 1_400_000_002;

/// (user_id, profile, version, updated_at_ms) of a row.
type Row = (String, String, i64, i64);

fn id(app: u64, i: usize) -> String {
    format!("{app}-{i}")
}

fn nick(text: &str) -> Vec<(Tag, ProfileValue)> {
    // About 300 bytes a row, as in the benchmarks: several levels of pages for a few thousand.
    vec![(
        Tag::Standard(StandardTag::Nick),
        ProfileValue::Str(format!("{text} ").repeat(40)),
    )]
}

/// A store at `dir` with `n` accounts in each of two apps.
async fn store_with(dir: &Path, n: usize) -> SqliteStore {
    let url = format!("sqlite://{}", dir.join("p.db").display());
    let store = SqliteStore::open(&url).await.unwrap();
    for app in [APP, OTHER_APP] {
        let accounts: Vec<NewAccount> = (0..n)
            .map(|i| {
                let mut a = NewAccount::new(Identifier::parse(&id(app, i)).unwrap());
                a.items = nick(&format!("n{i}"));
                a
            })
            .collect();
        store
            .import_accounts(app, &accounts, "admin".into())
            .await
            .unwrap();
    }
    store
}

/// What SQLite answers for each of `ids`, through a connection of its own.
fn reference(path: &Path, app: u64, ids: &[String]) -> HashMap<String, Row> {
    let conn = Connection::open(path).unwrap();
    let mut stmt = conn
        .prepare(
            "select user_id, profile, version, updated_at_ms from accounts \
             where app_id = ?1 and user_id = ?2",
        )
        .unwrap();
    ids.iter()
        .filter_map(|u| {
            stmt.query_row((app as i64, u), |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
            })
            .ok()
            .map(|row: Row| (u.clone(), row))
        })
        .collect()
}

async fn batch(lookups: &Lookups, app: u64, ids: &[String]) -> HashMap<String, Row> {
    let keys: Vec<&str> = ids.iter().map(String::as_str).collect();
    let rows = lookups.accounts(app, &keys).await.unwrap();
    rows.into_iter()
        .map(|r| {
            (
                r.user_id.clone(),
                (r.user_id, r.profile, r.version, r.updated_at_ms),
            )
        })
        .collect()
}

/// Each of `ids` read alone (the one-account path: a connection that keeps its snapshot while
/// the store commits nothing).
async fn one_by_one(lookups: &Lookups, app: u64, ids: &[String]) -> HashMap<String, Row> {
    let mut all = HashMap::new();
    for id in ids {
        all.extend(batch(lookups, app, std::slice::from_ref(id)).await);
    }
    all
}

fn answered(lookups: &Lookups) -> u64 {
    lookups.tree.answered.load(Ordering::Relaxed)
}

/// Batches of existing and missing ids of both apps, `step` apart.
fn batches(n: usize, step: usize) -> Vec<(u64, Vec<String>)> {
    let mut out = Vec::new();
    for app in [APP, OTHER_APP] {
        for start in 0..step {
            let mut ids: Vec<String> = (start..n + 50).step_by(step).map(|i| id(app, i)).collect();
            ids.push(id(if app == APP { OTHER_APP } else { APP }, start)); // the other app's
            ids.push(format!("{}x", id(app, start))); // a prefix of it exists
            out.push((app, ids));
        }
    }
    out
}

#[tokio::test]
async fn a_file_with_an_empty_wal_is_answered_from_the_walk_as_sqlite_answers() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("p.db");
    store_with(dir.path(), 3000).await.close().await; // its close empties the WAL
    let lookups = Lookups::open(&path, Arc::default()).unwrap();
    let mut asked = 0;
    for (app, ids) in batches(3000, 7) {
        assert_eq!(
            batch(&lookups, app, &ids).await,
            reference(&path, app, &ids),
            "{app}"
        );
        assert_eq!(
            one_by_one(&lookups, app, &ids).await,
            reference(&path, app, &ids),
            "{app}, one by one"
        );
        asked += 2 * ids.len() as u64;
    }
    assert_eq!(answered(&lookups), asked, "every id answered from the walk");
    lookups.close().await;
}

/// This process writes through the store while batches and one-account reads read: each sees
/// every write acknowledged before it (pages in the WAL are searched by SQLite), and most ids
/// are still answered from the walk.
#[tokio::test]
async fn batches_see_every_write_this_process_acknowledged_before_them() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("p.db");
    let store = store_with(dir.path(), 3000).await;
    let lookups = &store.0.lookups;
    let before = answered(lookups);
    let mut x = 0x9e37_79b9_7f4a_7c15u64;
    let mut asked = 0;
    for round in 0..40 {
        for _ in 0..20 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let user = Identifier::parse(&id(APP, (x % 3000) as usize)).unwrap();
            store
                .set_profile(APP, &user, &nick(&format!("r{round}")), "admin".into())
                .await
                .unwrap();
        }
        let ids: Vec<String> = (round % 5..3050).step_by(5).map(|i| id(APP, i)).collect();
        // (One by one first, while the writes are in the WAL: the store checkpoints soon after.)
        let some = &ids[..60];
        assert_eq!(
            one_by_one(lookups, APP, some).await,
            reference(&path, APP, some),
            "round {round}, one by one"
        );
        assert_eq!(
            batch(lookups, APP, &ids).await,
            reference(&path, APP, &ids),
            "round {round}"
        );
        asked += (ids.len() + some.len()) as u64;
    }
    let from_walk = answered(lookups) - before;
    assert!(
        from_walk > asked / 2,
        "{from_walk} of {asked} answered from the walk"
    );
    assert!(
        from_walk < asked,
        "no id was left to SQLite, though pages were in the WAL"
    );
    store.close().await;
}

/// A writer and readers at once: no batch or one-account read returns a version older than one
/// acknowledged before it began, nor a profile that was never written with the version it
/// comes with.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn batches_beside_a_writer_never_go_back() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(store_with(dir.path(), 2000).await);
    // Acknowledged (version, profile text) by account.
    let acked: Arc<std::sync::Mutex<HashMap<String, (i64, String)>>> = Arc::default();
    let writer = {
        let (store, acked) = (store.clone(), acked.clone());
        tokio::spawn(async move {
            for w in 0..1500usize {
                let who = id(APP, (w * 7919) % 2000);
                let text = format!("w{w}");
                let user = Identifier::parse(&who).unwrap();
                let v = store
                    .set_profile(APP, &user, &nick(&text), "admin".into())
                    .await
                    .unwrap();
                acked.lock().unwrap().insert(who, (v as i64, text));
            }
        })
    };
    let mut reads = 0;
    while !writer.is_finished() {
        let before = acked.lock().unwrap().clone();
        let ids: Vec<String> = (reads % 3..2000).step_by(3).map(|i| id(APP, i)).collect();
        // Some read alone, each after what was acknowledged before, then a batch.
        let alone = &ids[reads % 50..][..20];
        let ones = one_by_one(&store.0.lookups, APP, alone).await;
        assert_eq!(ones.len(), alone.len());
        let mut rows = batch(&store.0.lookups, APP, &ids).await;
        assert_eq!(rows.len(), ids.len());
        rows.extend(
            ones.into_iter()
                .map(|(who, row)| (format!("{who} alone"), row)),
        );
        for (who, (_, profile, version, _)) in &rows {
            let who = who.trim_end_matches(" alone");
            if let Some((v, text)) = before.get(who) {
                assert!(
                    version >= v,
                    "{who}: version {version} after {v} was acknowledged"
                );
                if version == v {
                    assert!(
                        profile.contains(&format!("{text} ")),
                        "{who} v{version}: {profile}"
                    );
                }
            }
        }
        reads += 1;
    }
    writer.await.unwrap();
    assert!(reads > 5, "only {reads} batches ran beside the writer");
    assert!(answered(&store.0.lookups) > 0);
    Arc::into_inner(store).unwrap().close().await;
}

/// Lookups (their snapshots kept at most `max_age`, else as the store keeps them) and their
/// commit count, on the file of a closed store with `n` accounts in each of two apps (its close
/// empties the WAL).
async fn lookups_on(
    n: usize,
    max_age: Option<std::time::Duration>,
) -> (tempfile::TempDir, std::path::PathBuf, Arc<Commits>, Lookups) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("p.db");
    store_with(dir.path(), n).await.close().await;
    let commits = Arc::new(Commits::default());
    let lookups = match max_age {
        Some(age) => Lookups::open_with(&path, commits.clone(), age),
        None => Lookups::open(&path, commits.clone()),
    }
    .unwrap();
    (dir, path, commits, lookups)
}

/// Checkpoints the whole WAL into the file and restarts it, through `outside`, once the
/// sweeper has ended the one-account reads' kept snapshots (which hold the checkpoint back; a
/// counted commit makes them stale).
fn empty_the_wal(outside: &Connection, commits: &Commits) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        commits.counted();
        let busy: i64 = outside
            .query_row("pragma wal_checkpoint(truncate)", [], |r| r.get(0))
            .unwrap();
        if busy == 0 {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the WAL was never emptied"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

/// The salts of the WAL-index header of the database at `path` (its first copy, in the
/// `-shm` file).
fn shm_salt(path: &Path) -> [u8; 8] {
    let shm = std::fs::read(path.with_extension("db-shm")).unwrap();
    shm[32..40].try_into().unwrap()
}

/// A connection of the store's VFS: its writes to the WAL pass through this process's set.
fn of_this_process(path: &Path) -> Connection {
    Connection::open_with_flags_and_vfs(
        path,
        rusqlite::OpenFlags::SQLITE_OPEN_READ_WRITE,
        crate::sqlite::shared_map::NAME,
    )
    .unwrap()
}

/// `ids` read as a batch and one by one, the latter in a new snapshot (a commit counted, as
/// the store's writer would after committing; another process's writes are seen within a kept
/// snapshot's age, `lookup/inline.rs`): both must answer alike.
async fn both_ways(lookups: &Lookups, commits: &Commits, ids: &[String]) -> HashMap<String, Row> {
    let rows = batch(lookups, APP, ids).await;
    commits.counted();
    assert_eq!(one_by_one(lookups, APP, ids).await, rows, "one by one");
    rows
}

/// Another process's writes are not in this process's set of WAL pages: whether the WAL was
/// empty or held this process's frames, a batch after them sees them, and so does a
/// one-account read in a snapshot taken after them.
#[tokio::test]
async fn reads_see_what_another_process_wrote() {
    let (_dir, path, commits, lookups) = lookups_on(2000, None).await;
    let ids: Vec<String> = (0..2000).step_by(3).map(|i| id(APP, i)).collect();
    assert_eq!(
        both_ways(&lookups, &commits, &ids).await,
        reference(&path, APP, &ids)
    );
    // (SQLite's own VFS: its writes do not pass through this process's set, as another
    // process's would not.)
    let outside = Connection::open(&path).unwrap();
    let bump = |n: i64| {
        outside
            .execute(
                "update accounts set version = version + ?1, profile = 'p' || ?1 \
                 where app_id = ?2 and user_id like '%3'",
                (n, APP as i64),
            )
            .unwrap();
    };
    bump(1000); // into an empty WAL
    let after = both_ways(&lookups, &commits, &ids).await;
    assert_eq!(after, reference(&path, APP, &ids));
    assert!(after.values().any(|r| r.1 == "p1000"));
    // Frames of this process first (a connection of the store's VFS), then another's after them.
    let ours = of_this_process(&path);
    // The WAL emptied, so that this process's frames come first.
    empty_the_wal(&outside, &commits);
    ours.execute(
        "update accounts set version = version + 1 where app_id = ?1 and user_id like '%5'",
        [APP as i64],
    )
    .unwrap();
    assert_eq!(
        both_ways(&lookups, &commits, &ids).await,
        reference(&path, APP, &ids)
    );
    bump(2000);
    let after = both_ways(&lookups, &commits, &ids).await;
    assert_eq!(after, reference(&path, APP, &ids));
    assert!(after.values().any(|r| r.1 == "p2000"));
    lookups.close().await;
}

/// A one-account read in a kept snapshot, while this process writes through a connection of
/// the store's VFS without the store counting a commit: a page written to the WAL is read by
/// SQLite in the snapshot (not from the file, which is older, nor from a newer frame); a page
/// that was not is still answered from the walk; a checkpoint during the snapshot changes
/// nothing it reads.
#[tokio::test]
async fn a_kept_snapshot_reads_pages_this_process_wrote_through_sqlite() {
    let (_dir, path, commits, lookups) =
        lookups_on(2000, Some(std::time::Duration::from_secs(600))).await;
    let (near, far) = (id(APP, 3), id(APP, 1500));
    let read = |who: &String| {
        let lookups = &lookups;
        let who = who.clone();
        async move {
            let before = answered(lookups);
            let rows = batch(lookups, APP, std::slice::from_ref(&who)).await;
            let walked = answered(lookups) - before == 1;
            (rows[&who].2, walked)
        }
    };
    let (imported, walked) = read(&near).await;
    assert!(walked, "an empty WAL: from the walk");
    let ours = of_this_process(&path);
    let set = |v: i64| {
        ours.execute(
            "update accounts set version = ?1 where app_id = ?2 and user_id = ?3",
            (v, APP as i64, &near),
        )
        .unwrap();
    };
    set(77);
    // (Its leaf was written after the snapshot began: SQLite reads it, in the snapshot.)
    assert_eq!(read(&near).await, (imported, false), "the kept snapshot");
    commits.counted();
    assert_eq!(
        read(&near).await,
        (77, false),
        "its leaf is in the WAL: SQLite"
    );
    assert!(read(&far).await.1, "another leaf: from the walk");
    set(78); // not counted: the snapshot is kept
    assert_eq!(read(&near).await, (77, false));
    ours.execute_batch("pragma wal_checkpoint(passive)")
        .unwrap();
    assert_eq!(
        read(&near).await,
        (77, false),
        "after a checkpoint, the same snapshot"
    );
    assert!(read(&far).await.1);
    commits.counted();
    assert_eq!(read(&near).await.0, 78);
    lookups.close().await;
}

/// Once the schema changed under the lookups (its version moved past the one the root was read
/// at), nothing is walked: every read, batch or one account, is SQLite's, and right.
#[tokio::test]
async fn after_a_schema_change_nothing_is_walked() {
    let (_dir, path, commits, lookups) = lookups_on(500, None).await;
    let ids: Vec<String> = (0..520).step_by(7).map(|i| id(APP, i)).collect();
    Connection::open(&path)
        .unwrap()
        .execute_batch("create table elsewhere (x integer)")
        .unwrap();
    commits.counted();
    let before = answered(&lookups);
    assert_eq!(
        both_ways(&lookups, &commits, &ids).await,
        reference(&path, APP, &ids)
    );
    assert_eq!(
        answered(&lookups),
        before,
        "an id was answered from the walk"
    );
    lookups.close().await;
}

/// Inserts, in one transaction through `conn`, for each even account of [`APP`] below 3,000,
/// an account whose UserID is its own followed by `suffix` (spread over the whole tree), and
/// adds them to `all`.
fn insert_after_each(conn: &Connection, suffix: &str, all: &mut Vec<String>) {
    conn.execute_batch("begin").unwrap();
    for i in (0..3000).step_by(2) {
        let user = format!("{}{suffix}", id(APP, i));
        conn.execute(
            "insert into accounts (app_id, user_id, profile, version, updated_at_ms) \
             values (?1, ?2, ?3, 1, 0)",
            (APP as i64, &user, "{}".repeat(60)),
        )
        .unwrap();
        all.push(user);
    }
    conn.execute_batch("commit").unwrap();
}

/// One-account reads go down the spine's copies of the inner pages (`tree_ahead/spine.rs`),
/// and answer as SQLite does when the tree changes under them: while pages that were copied
/// are rewritten in the WAL (inserts that split them), and after a checkpoint has copied them
/// into the file and restarted the WAL (the copies are of another generation: they were the
/// file's pages, no longer are, and are not in the new WAL). Twice: the second time, the WAL's
/// generation before the checkpoint is the one the copies were made in.
#[tokio::test]
async fn the_spine_is_used_only_for_pages_as_the_snapshot_sees_them() {
    let (_dir, path, commits, lookups) =
        lookups_on(3000, Some(std::time::Duration::from_secs(600))).await;
    let mut all: Vec<String> = (0..3000).step_by(2).map(|i| id(APP, i)).collect();
    assert_eq!(
        one_by_one(&lookups, APP, &all).await,
        reference(&path, APP, &all)
    );
    let copied = lookups.spine_pages();
    assert!(copied > 3, "{copied} inner pages copied");
    // A second pass, the copies made, is answered from the walk.
    let before = answered(&lookups);
    assert_eq!(
        one_by_one(&lookups, APP, &all).await,
        reference(&path, APP, &all)
    );
    assert_eq!(answered(&lookups) - before, all.len() as u64);
    let ours = of_this_process(&path);
    let mut made_under = None;
    for suffix in ["a", "b"] {
        // New accounts between the old ones, through a connection of this process: leaves
        // and inner pages split, in the WAL.
        insert_after_each(&ours, suffix, &mut all);
        commits.counted();
        if let Some(salt) = made_under {
            // (`ours` restarted the WAL itself: its frames went on in the generation the
            // copies were made in, with the same salts.)
            assert_eq!(shm_salt(&path), salt, "the same generation");
        }
        let expected = reference(&path, APP, &all);
        assert_eq!(expected.len(), all.len());
        assert_eq!(
            one_by_one(&lookups, APP, &all).await,
            expected,
            "{suffix}: the tree's pages in the WAL"
        );
        // The WAL checkpointed into the file and restarted: every page is the file's again,
        // and the copied pages changed.
        empty_the_wal(&ours, &commits);
        commits.counted();
        let before = answered(&lookups);
        assert_eq!(
            one_by_one(&lookups, APP, &all).await,
            expected,
            "{suffix}: after the checkpoint"
        );
        assert_eq!(
            answered(&lookups) - before,
            all.len() as u64,
            "{suffix}: every id answered from the walk (the file is the snapshot's)"
        );
        made_under = Some(shm_salt(&path));
    }
    assert!(lookups.spine_pages() > copied, "the grown tree copied");
    lookups.close().await;
}

/// A spine whose copies were made in an earlier generation of the WAL, of pages that have
/// changed since (inserts split them, and a checkpoint copied them into the file): each
/// account read with it, in a new read transaction, is answered as SQLite answers, not from
/// where the old copies lead.
#[tokio::test]
async fn copies_of_another_generation_are_not_gone_by() {
    let (_dir, path, _commits, lookups) = lookups_on(3000, None).await;
    let reader = crate::sqlite::lookup::connect(&path).unwrap();
    let tree = super::Tree::of(&reader).unwrap();
    // What was found of the file, kept from the first read to the last, across the checkpoint
    // that empties the WAL (as an inline connection keeps it).
    let kept = std::cell::RefCell::new(crate::sqlite::shared_map::Kept::default());
    let read = |spine: &mut super::Spine, who: &str| {
        reader.execute_batch("begin").unwrap();
        let schema = super::schema_version(&reader).unwrap();
        let mut kept = kept.borrow_mut();
        // SAFETY: `kept` is used with `reader` alone, which stays open in WAL mode.
        let rows = unsafe { super::one(&reader, &mut kept, &tree, spine, schema, APP, who) };
        let rows = rows.unwrap();
        reader.execute_batch("commit").unwrap();
        rows.into_iter()
            .map(|r| {
                (
                    r.user_id.clone(),
                    (r.user_id, r.profile, r.version, r.updated_at_ms),
                )
            })
            .collect::<HashMap<String, Row>>()
    };
    let mut all: Vec<String> = (0..3000).step_by(2).map(|i| id(APP, i)).collect();
    let mut spine = super::Spine::default();
    for who in &all {
        read(&mut spine, who);
    }
    assert!(spine.len() > 3);
    let ours = of_this_process(&path);
    insert_after_each(&ours, "a", &mut all);
    let busy: i64 = ours
        .query_row("pragma wal_checkpoint(truncate)", [], |r| r.get(0))
        .unwrap();
    assert_eq!(busy, 0, "the checkpoint was held back");
    let expected = reference(&path, APP, &all);
    assert_eq!(expected.len(), all.len());
    let before = tree.answered.load(Ordering::Relaxed);
    for who in &all {
        let mut stale = spine.clone();
        let mut rows = read(&mut stale, who);
        assert_eq!(rows.remove(who).as_ref(), expected.get(who), "{who}");
    }
    assert_eq!(
        tree.answered.load(Ordering::Relaxed) - before,
        all.len() as u64,
        "every id answered from the walk"
    );
    lookups.close().await;
}
