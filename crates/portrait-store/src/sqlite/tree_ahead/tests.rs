//! The walk on real store files: what it finds, that it reads the cells SQLite reads, that its
//! quick comparison answers as the slow one, and that any bytes are walked safely.

use portrait_core::schema::StandardTag;
use portrait_core::{Identifier, ProfileValue, Tag};

use super::pages::compare_in;
use super::*;
use crate::NewAccount;

const APP: u64 = 1_400_000_001;
const OTHER_APP: u64 = 1_400_000_002;

/// A store file with `n` accounts of rows of about 300 bytes in each of two apps, read
/// whole after a checkpoint, and the accounts table's root page.
async fn store_file(n: usize) -> (Vec<u8>, u32) {
    store_file_of(n, id).await
}

/// [`store_file`] with the UserIDs `id_of(app, i)`.
async fn store_file_of(n: usize, id_of: fn(u64, usize) -> String) -> (Vec<u8>, u32) {
    let (store, dir) = crate::testkit::fresh_sqlite().await;
    for app in [APP, OTHER_APP] {
        let accounts: Vec<NewAccount> = (0..n)
            .map(|i| {
                let id = id_of(app, i);
                let mut a = NewAccount::new(Identifier::parse(&id).unwrap());
                a.items.push((
                    Tag::Standard(StandardTag::Nick),
                    ProfileValue::Str(format!("nick {i} ").repeat(25)),
                ));
                a
            })
            .collect();
        store
            .import_accounts(app, &accounts, "admin".into())
            .await
            .unwrap();
    }
    store.close().await; // the last connection's close checkpoints the WAL into the file
    let path = dir.path().join("portrait.db");
    let root = rusqlite::Connection::open(&path)
        .unwrap()
        .query_row(
            "select rootpage from sqlite_schema where name = 'accounts'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    (std::fs::read(&path).unwrap(), root)
}

fn pages(file: &[u8]) -> Pages {
    // SAFETY: `file` outlives every use in these tests.
    unsafe { Pages::new(file.as_ptr(), file.len()) }.expect("a SQLite file")
}

/// UserIDs of many lengths, each a prefix of others (`…-1`, `…-10`, `…-100`): the walk must
/// order a key before the longer keys it begins.
fn ids(app: u64, range: std::ops::Range<usize>) -> Vec<String> {
    range.map(|i| id(app, i)).collect()
}

fn id(app: u64, i: usize) -> String {
    format!("{app}-{i}")
}

/// A UserID of the longest length allowed (32 bytes): its key ends past the [`KEY_BYTES`]
/// of a cell that [`Node::ask`] asks for ahead.
fn long_id(app: u64, i: usize) -> String {
    format!("{app}-{i}-{}", "x".repeat(32))[..portrait_core::ident::MAX_IDENTIFIER_BYTES].to_owned()
}

fn walked(file: &[u8], root: u32, app: u64, ids: &[String]) -> Vec<Walked> {
    let mut keys: Vec<&str> = ids.iter().map(String::as_str).collect();
    keys.sort_unstable();
    ahead(&pages(file), root, crate::codec::app_key(app), &keys).into_vec()
}

/// How many of `ids` the walk found a row of.
fn found(file: &[u8], root: u32, app: u64, ids: &[String]) -> usize {
    let walked = walked(file, root, app, ids);
    walked
        .iter()
        .filter(|w| matches!(w.found, Found::Row(_)))
        .count()
}

/// How many of `ids` the walk found absent, having searched a leaf to its end.
fn absent(file: &[u8], root: u32, app: u64, ids: &[String]) -> usize {
    let walked = walked(file, root, app, ids);
    walked.iter().filter(|w| w.found == Found::Absent).count()
}

/// On a real store file of several levels, the walk finds every account of the app it is
/// given, in inner cells and leaves, and none of another app's or of ids that do not exist.
#[tokio::test]
async fn the_walk_finds_exactly_the_apps_accounts() {
    let (file, root) = store_file(3000).await;
    let depth = {
        let p = pages(&file);
        let (mut n, mut depth) = (root, 1);
        while let Some(node) = p.get(n).and_then(Page::node).filter(|node| node.inner) {
            n = node.page.be32(8).unwrap();
            depth += 1;
        }
        depth
    };
    assert!(depth >= 3, "the accounts B-tree has {depth} levels");
    let all = ids(APP, 0..3000);
    assert_eq!(found(&file, root, APP, &all), 3000);
    // Any batch of them, as a read sends it.
    let some: Vec<String> = all.iter().step_by(37).cloned().collect();
    assert_eq!(found(&file, root, APP, &some), some.len());
    // Another app's ids under this app, ids that are not accounts, another app.
    assert_eq!(found(&file, root, APP, &ids(OTHER_APP, 0..100)), 0);
    let missing: Vec<String> = (0..100).map(|i| format!("{APP}-{i}x")).collect();
    assert_eq!(found(&file, root, APP, &missing), 0);
    assert_eq!(found(&file, root, 1_400_000_003, &ids(APP, 0..100)), 0);
    // Each of them searched to a leaf, and told absent.
    assert_eq!(absent(&file, root, APP, &missing), 100);
    assert_eq!(absent(&file, root, 1_400_000_003, &ids(APP, 0..100)), 100);
    assert_eq!(absent(&file, root, APP, &some), 0);
    // Each found row is the account's record, and its path starts at the root and is as
    // deep as the tree at most.
    let mut sorted = some.clone();
    sorted.sort_unstable(); // (the walk answers in the order of its sorted keys)
    let p = pages(&file);
    for (w, id) in walked(&file, root, APP, &some).iter().zip(&sorted) {
        let Found::Row(record) = &w.found else {
            panic!("{id} not found")
        };
        let app = crate::codec::app_key(APP);
        let row = crate::sqlite::direct::account_row(app, id, record.clone());
        assert!(row.is_some(), "{id}: the record is not its row");
        // The path is every page the search read: the root, then each a child of the one
        // before.
        assert_eq!(w.path[0], root);
        assert!((1..=depth).contains(&w.path.len()));
        for pair in w.path.windows(2) {
            let parent = p.get(pair[0]).and_then(Page::node).unwrap();
            assert!(
                parent.inner,
                "{id}: page {} is a leaf with a child",
                pair[0]
            );
            let children: Vec<u32> = (0..=parent.cells).filter_map(|i| parent.child(i)).collect();
            assert!(
                children.contains(&pair[1]),
                "{id}: {pair:?} are not parent and child"
            );
        }
    }
    assert_eq!(
        found(&file, root, OTHER_APP, &ids(OTHER_APP, 0..3000)),
        3000
    );
}

/// The walk's binary search reads the cells SQLite's reads, in the same order, whatever the
/// number of cells and wherever the key falls: SQLite's `sqlite3BtreeIndexMoveto` keeps
/// inclusive bounds, reads `idx = (lwr + upr) >> 1`, and goes on with `upr = idx - 1` past
/// the key or `lwr = idx + 1` before it; the walk keeps `lo..hi` and reads [`probe`]. (With
/// the middle of `lo..hi` instead, every page of an even number of cells was read at other
/// cells than SQLite's.)
#[test]
fn the_walk_reads_the_cells_sqlite_reads() {
    for cells in 1..=64usize {
        // Cell j holds 2j + 1: keys between the cells and equal to each.
        for key in 0..=2 * cells {
            let mut sqlite = Vec::new();
            let (mut lwr, mut upr) = (0i64, cells as i64 - 1);
            let mut idx = upr >> 1;
            loop {
                sqlite.push(idx as usize);
                match (2 * idx as usize + 1).cmp(&key) {
                    Ordering::Less => lwr = idx + 1,
                    Ordering::Greater => upr = idx - 1,
                    Ordering::Equal => break,
                }
                if lwr > upr {
                    break;
                }
                idx = (lwr + upr) >> 1;
            }
            let mut walk = Vec::new();
            let (mut lo, mut hi) = (0, cells);
            while lo < hi {
                let mid = probe(lo, hi);
                walk.push(mid);
                match (2 * mid + 1).cmp(&key) {
                    Ordering::Less => lo = mid + 1,
                    Ordering::Greater => hi = mid,
                    Ordering::Equal => break,
                }
            }
            assert_eq!(walk, sqlite, "{cells} cells, key {key}");
        }
    }
}

/// UserIDs of 32 bytes, whose keys end past the bytes of a cell asked for ahead: found all
/// the same, and an id that differs only in its last byte is not.
#[tokio::test]
async fn the_walk_finds_accounts_with_the_longest_user_ids() {
    let (file, root) = store_file_of(1000, long_id).await;
    let all: Vec<String> = (0..1000).map(|i| long_id(APP, i)).collect();
    assert!(all.iter().all(|id| id.len() == 32));
    assert_eq!(found(&file, root, APP, &all), 1000);
    let near: Vec<String> = all.iter().map(|id| format!("{}y", &id[..31])).collect();
    assert_eq!(found(&file, root, APP, &near), 0);
    let other: Vec<String> = (0..1000).map(|i| long_id(OTHER_APP, i)).collect();
    assert_eq!(found(&file, root, OTHER_APP, &other), 1000);
}

/// Comparing within the first bytes of a cell answers what comparing a byte at a time does,
/// for every cell of every page, with keys equal to, around, and longer than the cells'.
#[tokio::test]
async fn the_quick_comparison_answers_as_the_slow_one() {
    for (file, root) in [store_file(2000).await, store_file_of(500, long_id).await] {
        let p = pages(&file);
        let mut keys: Vec<(i64, Vec<u8>)> = Vec::new();
        for app in [APP, OTHER_APP] {
            for i in (0..2000).step_by(97) {
                for id in [id(app, i), long_id(app, i)] {
                    let app = crate::codec::app_key(app);
                    keys.push((app, id.clone().into_bytes()));
                    keys.push((app, format!("{id}x").into_bytes()));
                    keys.push((app, id.as_bytes()[..id.len() - 1].to_vec()));
                    keys.push((app + 1, id.clone().into_bytes()));
                    // Apps SQLite encodes in other widths than the file's.
                    for other in [0, 1, 5, 300, 70_000, -3, 1 << 40] {
                        keys.push((other, id.clone().into_bytes()));
                    }
                }
            }
        }
        // Every comparison with an app of the files' width (4 bytes) is of the usual shape, and
        // short enough to be decided within the window.
        let four_bytes = |a: i64| (8_388_608..=2_147_483_647).contains(&a);
        let (mut quick, mut cells, mut usual) = (0, 0, 0);
        // The pages of the accounts B-tree (the file's other indexes hold other shapes).
        let mut tree = vec![root];
        let mut at = 0;
        while let Some(&n) = tree.get(at) {
            let node = p.get(n).and_then(Page::node).unwrap();
            if node.inner {
                tree.extend((0..=node.cells).filter_map(|i| node.child(i)));
            }
            at += 1;
        }
        for n in tree {
            let node = p.get(n).and_then(Page::node).unwrap();
            for i in 0..node.cells {
                cells += 1;
                for (app, key) in &keys {
                    usual += usize::from(four_bytes(*app));
                    let slow = node.compare_slowly(&p, i, *app, key);
                    let sought = App::new(*app);
                    assert_eq!(node.compare(&p, i, &sought, key), slow, "page {n} cell {i}");
                    let start = node.cell(i).unwrap() + if node.inner { 4 } else { 0 };
                    if let Some(decided) = node
                        .page
                        .window(start)
                        .and_then(|w| compare_in(&w, &p, &sought, key))
                    {
                        assert_eq!(decided, slow, "page {n} cell {i}");
                        quick += 1;
                    }
                }
            }
        }
        assert!(cells > 100, "{cells} cells (root {root})");
        assert_eq!(
            quick, usual,
            "decided quickly, of {usual} of the usual shape"
        );
    }
}

/// Whatever the pages hold, the walk ends, reads within them and finds nothing it cannot
/// compare: random bytes, a wrong root, a file cut short.
#[tokio::test]
async fn any_bytes_are_walked_safely() {
    let (mut file, root) = store_file(300).await;
    let keys = ids(APP, 0..300);
    assert_eq!(found(&file, root, APP, &keys), 300);
    assert_eq!(found(&file[..file.len() / 2], root, APP, &keys[..10]), 0);
    for wrong_root in [0, 1, u32::MAX, (file.len() / 4096) as u32 + 1] {
        assert_eq!(found(&file, wrong_root, APP, &keys), 0);
        assert_eq!(absent(&file, wrong_root, APP, &keys), 0);
    }
    // Every page but the first overwritten with noise that keeps index page types, so the
    // walk goes on through garbage: it must still end.
    let mut x = 0x2545_f491_4f6c_dd1du64;
    for (i, b) in file.iter_mut().enumerate().skip(4096) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        *b = if i % 4096 == 0 {
            [0x02, 0x0a][(x % 2) as usize]
        } else {
            x as u8
        };
    }
    let _ = found(&file, root, APP, &keys);
}

/// A spine goes down its copies as far as a walk goes down the pages, whichever order its
/// copies were made in: each parent first, as searches pass (a copy links to a child's copy
/// made after it), or the children first, as after writes that gave a page a new parent (a
/// new copy links to its children's copies made before it); and a clone goes as far.
#[tokio::test]
async fn the_spine_goes_down_as_far_as_the_walk_in_any_order_of_copies() {
    let (file, root) = store_file(3000).await;
    let pages = pages(&file);
    let app = crate::codec::app_key(APP);
    let all = ids(APP, 0..3000);
    let paths: Vec<Vec<u32>> = all
        .iter()
        .map(|id| {
            walked(&file, root, APP, std::slice::from_ref(id))[0]
                .path
                .to_vec()
        })
        .collect();
    assert_eq!(
        paths.iter().map(Vec::len).max(),
        Some(4),
        "a tree of four levels"
    );
    let salt = [7; 8];
    let goes_as_far = |spine: &Spine, how: &str| {
        for (id, path) in all.iter().zip(&paths) {
            let descent = spine.descend(root, app, id.as_bytes());
            let (&end, passed) = path.split_last().unwrap();
            assert_eq!((descent.at, descent.passed()), (end, passed), "{how}: {id}");
        }
    };

    let mut parents_first = Spine::default();
    for path in &paths {
        parents_first.learn(&pages, salt, path);
    }
    goes_as_far(&parents_first, "parents first");
    goes_as_far(&parents_first.clone(), "a clone");

    let mut children_first = Spine::default();
    for level in (0..3).rev() {
        for path in &paths {
            // The inner pages of `level` and below alone, as a search that went through
            // another parent would have left them.
            if let Some(below) = path.get(level..path.len() - 1) {
                children_first.learn(&pages, salt, below);
            }
        }
    }
    goes_as_far(&children_first, "children first");

    // Another generation: the copies are gone, and made again.
    children_first.follow([8; 8]);
    assert_eq!(
        children_first
            .descend(root, app, all[0].as_bytes())
            .passed(),
        &[] as &[u32]
    );
    for path in &paths {
        children_first.learn(&pages, [8; 8], path);
    }
    goes_as_far(&children_first, "again");
}
