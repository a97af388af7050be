//! Walking the accounts B-tree for every id of a batch ahead of SQLite, one level at a time, so
//! that the pages of all the batch's searches are fetched from memory side by side.
//!
//! **Why.** A batch read (`lookup.rs`'s `ROWS_SQL`) has SQLite search the primary key once per
//! id, one search after the other. With 10M accounts a `WITHOUT ROWID` table of 300-byte rows
//! has about 15 rows per page, inner pages included, so a search goes down five or six levels
//! and the last two or three are not in the CPU's caches: each waits for its page, then for the
//! cells of its binary search, before the next can start. A batch of 100 ids paid some 1,000
//! memory latencies in a row (`perf`: `xFetch`, `sqlite3BtreeIndexMoveto` and `memcmp` were
//! 43 % of W2's CPU at 10M, BENCHMARKS.md, "2026-12-06 (session 17)").
//!
//! **How.** [`ahead`] searches the same B-tree for all the ids at once, level by level: it asks
//! the CPU for the header lines of every page of the level, then for the first lines of their
//! cells, then searches each page for its ids (by then the lines have arrived, all at once),
//! which gives the pages of the next level. A search that finds its row asks for the whole cell.
//! Each binary search reads the cells SQLite's search of the same key reads ([`probe`]), so
//! SQLite's own searches then find their pages and cells in cache. Only the primary key's
//! comparison is needed: `(app_id, user_id)`, an integer then a text in the `binary` collation.
//! With the file in small pages the walk's own loads wait on page-table walks and it gains
//! nothing; with huge pages (`huge.rs`) it adds 7 % to W2 at 10M.
//!
//! **Only a hint.** Every byte is read with a volatile read within the file's mapped pages, and
//! whatever the bytes say, nothing is read past a page, a page past the known end of the file is
//! never read, and the walk ends after [`DEEPEST`] levels. The file is read as the last
//! checkpoint left it: a page whose newer version is in the WAL, a root page that moved, or a
//! page being rewritten only makes a prefetch useless. No answer depends on this walk.

use std::cmp::Ordering;

use super::page_ahead::hint;

/// Bytes per cache line.
const LINE: usize = 64;

/// Levels walked at most (SQLite's own limit on a B-tree's depth is 20).
const DEEPEST: usize = 20;

/// Longest key compared: a longer UserID (or a garbled length) ends that id's walk.
const LONGEST_KEY: usize = 256;

/// Bytes from a cell's start to past its key, as the accounts table's keys go (the payload's
/// length, the record header, the app and a UserID of up to 24 bytes).
const KEY_BYTES: usize = 40;

/// Lines of a found row asked for at most.
const ROW_LINES: usize = 8;

/// The pages of a database file as far as they are mapped.
#[derive(Clone, Copy)]
pub(super) struct Pages {
    base: *const u8,
    /// Bytes readable from `base`.
    len: usize,
    page: usize,
    /// The least number of a cell's payload bytes kept on its page (SQLite's `minLocal` of an
    /// index page): a key within it is never on an overflow page.
    min_local: usize,
    /// The most (`maxLocal`): a payload this long or shorter is all on its page.
    max_local: usize,
}

impl Pages {
    /// The pages of the `len` readable bytes at `base`, whose first page holds the file header,
    /// or `None` if the header is not a SQLite one.
    ///
    /// # Safety
    /// `len` bytes at `base` stay readable for as long as the value is used.
    pub(super) unsafe fn new(base: *const u8, len: usize) -> Option<Pages> {
        if len < 100 {
            return None;
        }
        // SAFETY: within the `len` bytes, per the caller.
        let byte = |at: usize| unsafe { std::ptr::read_volatile(base.add(at)) };
        let page = match u16::from_be_bytes([byte(16), byte(17)]) {
            1 => 65_536,
            n if n >= 512 && n.is_power_of_two() => usize::from(n),
            _ => return None,
        };
        let usable = page.checked_sub(usize::from(byte(20)))?;
        // SQLite's sqlite3BtreeInitPage (btree.c): minLocal and maxLocal of index pages.
        let min_local = ((usable - 12) * 32 / 255).checked_sub(23)?;
        let max_local = ((usable - 12) * 64 / 255).checked_sub(23)?;
        Some(Pages {
            base,
            len,
            page,
            min_local,
            max_local,
        })
    }

    /// Page `n` (counted from 1), if it lies wholly within the readable bytes. The first page,
    /// which starts with the file header, is never part of the accounts B-tree.
    fn get(&self, n: u32) -> Option<Page> {
        let n = usize::try_from(n).ok()?;
        let start = n.checked_sub(1)?.checked_mul(self.page)?;
        if n < 2 || start.checked_add(self.page)? > self.len {
            return None;
        }
        Some(Page {
            // SAFETY: `start + page <= len`: within the readable bytes.
            p: unsafe { self.base.add(start) },
            len: self.page,
        })
    }
}

/// One page; every read of it is bounds-checked and volatile.
#[derive(Clone, Copy)]
struct Page {
    p: *const u8,
    len: usize,
}

/// A B-tree page of the primary key: its kind and cells.
#[derive(Clone, Copy)]
struct Node {
    page: Page,
    inner: bool,
    cells: usize,
}

impl Page {
    fn byte(self, at: usize) -> Option<u8> {
        // SAFETY: within the page, which `Pages::get` checked lies within the readable bytes.
        (at < self.len).then(|| unsafe { std::ptr::read_volatile(self.p.add(at)) })
    }

    fn be16(self, at: usize) -> Option<usize> {
        Some(usize::from(u16::from_be_bytes([
            self.byte(at)?,
            self.byte(at + 1)?,
        ])))
    }

    fn be32(self, at: usize) -> Option<u32> {
        Some(u32::from_be_bytes([
            self.byte(at)?,
            self.byte(at + 1)?,
            self.byte(at + 2)?,
            self.byte(at + 3)?,
        ]))
    }

    /// SQLite's variable-length integer at `at`: its value and length.
    fn varint(self, at: usize) -> Option<(u64, usize)> {
        let mut v = 0u64;
        for i in 0..8 {
            let b = self.byte(at + i)?;
            v = (v << 7) | u64::from(b & 0x7f);
            if b & 0x80 == 0 {
                return Some((v, i + 1));
            }
        }
        Some(((v << 8) | u64::from(self.byte(at + 8)?), 9))
    }

    fn hint(self, at: usize) {
        if at < self.len {
            // SAFETY: within the page.
            unsafe { hint(self.p.add(at)) };
        }
    }

    /// The page as a node of an index B-tree (inner `0x02` or leaf `0x0a`).
    fn node(self) -> Option<Node> {
        let inner = match self.byte(0)? {
            0x02 => true,
            0x0a => false,
            _ => return None,
        };
        Some(Node {
            page: self,
            inner,
            cells: self.be16(3)?,
        })
    }
}

impl Node {
    fn header(self) -> usize {
        if self.inner {
            12
        } else {
            8
        }
    }

    /// Where cell `i` starts.
    fn cell(self, i: usize) -> Option<usize> {
        self.page.be16(self.header() + 2 * i)
    }

    /// Asks for the lines of cell `i` that hold its key.
    fn ask(self, i: usize) {
        if let Some(at) = self.cell(i) {
            self.page.hint(at);
            self.page.hint(at + KEY_BYTES);
        }
    }

    /// Asks for the lines of cell `i` that hold its row (as much as is on the page).
    fn ask_row(self, pages: &Pages, i: usize) {
        let (Some(start), Some((rec, len))) = (self.cell(i), self.payload(i)) else {
            return;
        };
        let end = rec + len.min(pages.max_local);
        let mut line = start;
        for _ in 0..ROW_LINES {
            if line >= end {
                break;
            }
            self.page.hint(line);
            line = (line / LINE + 1) * LINE;
        }
    }

    /// The child page a search that stopped before cell `i` goes on to (the rightmost child
    /// past the last cell).
    fn child(self, i: usize) -> Option<u32> {
        if i < self.cells {
            self.page.be32(self.cell(i)?)
        } else {
            self.page.be32(8)
        }
    }

    /// Where cell `i`'s payload starts, and its length.
    fn payload(self, i: usize) -> Option<(usize, usize)> {
        let at = self.cell(i)? + if self.inner { 4 } else { 0 };
        let (len, n) = self.page.varint(at)?;
        Some((at + n, usize::try_from(len).ok()?))
    }

    /// Cell `i`'s record (its payload), if it lies wholly on its page.
    fn record(self, pages: &Pages, i: usize) -> Option<Vec<u8>> {
        let (rec, len) = self.payload(i)?;
        if len > pages.max_local || rec.checked_add(len)? > self.page.len {
            return None;
        }
        let mut out = vec![0u8; len];
        // SAFETY: `rec..rec + len` lies within the page, which lies within the readable bytes.
        // Bytes that change meanwhile are only bytes a reader does not take (`direct.rs`).
        unsafe { std::ptr::copy_nonoverlapping(self.page.p.add(rec), out.as_mut_ptr(), len) };
        Some(out)
    }

    /// How cell `i`'s key `(app_id, user_id)` compares with `(app, key)`, or `None` if the cell
    /// cannot be read as a row of the accounts table.
    fn compare(self, pages: &Pages, i: usize, app: i64, key: &[u8]) -> Option<Ordering> {
        let (rec, len) = self.payload(i)?;
        let local = if len <= pages.max_local {
            len
        } else {
            pages.min_local
        };
        let page = self.page;
        let (header, n) = page.varint(rec)?;
        let (app_type, a) = page.varint(rec + n)?;
        let (text_type, _) = page.varint(rec + n + a)?;
        if header > 16 {
            return None; // two columns' types take a few bytes
        }
        let mut body = rec + usize::try_from(header).ok()?;
        let width = match app_type {
            1..=4 => usize::try_from(app_type).ok()?,
            5 => 6,
            6 => 8,
            8 | 9 => 0,
            _ => return None,
        };
        let mut cell_app = if app_type == 9 { 1i64 } else { 0 };
        if width > 0 {
            // Big-endian two's complement of `width` bytes.
            let first = page.byte(body)?;
            cell_app = i64::from(first as i8);
            for k in 1..width {
                cell_app = (cell_app << 8) | i64::from(page.byte(body + k)?);
            }
        }
        body += width;
        if text_type < 13 || text_type % 2 == 0 {
            return None;
        }
        let text = usize::try_from((text_type - 13) / 2).ok()?;
        if text > LONGEST_KEY || body + text - rec > local {
            return None;
        }
        let order = cell_app.cmp(&app);
        if order != Ordering::Equal {
            return Some(order);
        }
        for (k, &want) in key.iter().take(text).enumerate() {
            match page.byte(body + k)?.cmp(&want) {
                Ordering::Equal => {}
                other => return Some(other),
            }
        }
        Some(text.cmp(&key.len()))
    }
}

/// One id's search: the page it is on and the cells still in question there.
#[derive(Clone, Copy)]
struct Search {
    /// The page (0: the search has ended).
    at: u32,
    node: Option<Node>,
    lo: usize,
    hi: usize,
    /// The pages it went through, root first (`depth` of them; a deeper search is not told).
    path: [u32; PATH],
    depth: usize,
    /// Whether it ended at a leaf without finding its key (and read every cell it compared).
    absent: bool,
}

impl Search {
    fn end(&mut self) {
        self.at = 0;
        self.node = None;
    }
}

/// Most levels of a search's path told ([`Walked::path`]): 10M accounts take five.
const PATH: usize = 8;

/// What the walk found of one key, read from the file as it is mapped (only an answer for a
/// reader whose snapshot sees every page of `path` as the file holds it: `direct.rs`).
#[derive(Debug)]
pub(super) struct Walked {
    /// The pages from the root to where the search ended; empty if it went deeper than [`PATH`]
    /// levels or was cut short (a page not readable as the accounts B-tree).
    pub(super) path: Vec<u32>,
    pub(super) found: Found,
}

/// See [`Walked`].
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Found {
    /// The row's record (SQLite's record format: the columns of `accounts`), all on its page.
    Row(Vec<u8>),
    /// The search ended at a leaf, without the key.
    Absent,
    /// Not known: the search was cut short, or the row's record spills to overflow pages.
    Unknown,
}

/// The cell a binary search over cells `lo..hi` (not empty) reads next: the one SQLite reads
/// (`sqlite3BtreeIndexMoveto`: `(lwr + upr) / 2` of the inclusive bounds), so that the lines
/// the walk brings into cache are the ones SQLite's search of the same key reads after it.
fn probe(lo: usize, hi: usize) -> usize {
    lo + (hi - 1 - lo) / 2
}

/// Walks the primary key B-tree whose root is page `root` for every key of app `app` (its
/// `app_id`), in the order SQLite will search them (sorted). Each level is searched for all the
/// keys in lockstep: the pages' header lines are asked for together, then each round of the
/// binary searches asks for the next cell of every search before reading any. Answers what it
/// found of each key, in the order of `keys`.
pub(super) fn ahead(pages: &Pages, root: u32, app: i64, keys: &[&str]) -> Vec<Walked> {
    let mut searches = vec![
        Search {
            at: root,
            node: None,
            lo: 0,
            hi: 0,
            path: [0; PATH],
            depth: 0,
            absent: false,
        };
        keys.len()
    ];
    let mut found: Vec<Option<Vec<u8>>> = vec![None; keys.len()];
    for _ in 0..DEEPEST {
        // The pages of this level (sorted keys make a page's ids neighbours): their header and
        // cell pointers, loaded side by side (loads: the search needs the header at once).
        let mut last = 0;
        let mut sink = 0u8;
        for s in &searches {
            if s.at != 0 && s.at != last {
                if let Some(page) = pages.get(s.at) {
                    sink ^= page.byte(0).unwrap_or(0);
                    page.hint(LINE);
                }
                last = s.at;
            }
        }
        std::hint::black_box(sink);
        for s in &mut searches {
            if s.at == 0 {
                continue;
            }
            if let Some(p) = s.path.get_mut(s.depth) {
                *p = s.at;
            }
            s.depth += 1;
            match pages.get(s.at).and_then(Page::node) {
                Some(node) => {
                    (s.node, s.lo, s.hi) = (Some(node), 0, node.cells);
                    if s.lo < s.hi {
                        node.ask(probe(s.lo, s.hi));
                    }
                }
                None => s.end(),
            }
        }
        // Binary searches in lockstep: the first cell whose key is not less than the one sought.
        let mut searching = true;
        while searching {
            searching = false;
            for ((s, key), row) in searches.iter_mut().zip(keys).zip(&mut found) {
                let Some(node) = s.node.filter(|_| s.lo < s.hi) else {
                    continue;
                };
                let mid = probe(s.lo, s.hi);
                match node.compare(pages, mid, app, key.as_bytes()) {
                    Some(Ordering::Less) => s.lo = mid + 1,
                    Some(Ordering::Greater) => s.hi = mid,
                    Some(Ordering::Equal) => {
                        node.ask_row(pages, mid);
                        *row = Some(node.record(pages, mid).unwrap_or_default());
                        s.end();
                        continue;
                    }
                    None => {
                        s.end();
                        continue;
                    }
                }
                if s.lo < s.hi {
                    node.ask(probe(s.lo, s.hi));
                    searching = true;
                }
            }
        }
        let mut deeper = false;
        for s in &mut searches {
            match s.node {
                Some(node) if node.inner => match node.child(s.lo) {
                    Some(child) => {
                        s.at = child;
                        deeper |= child != 0;
                    }
                    None => s.end(),
                },
                Some(_) => {
                    s.absent = true; // a leaf searched to its end
                    s.end();
                }
                None => s.end(),
            }
        }
        if !deeper {
            break;
        }
    }
    searches
        .iter()
        .zip(found)
        .map(|(s, row)| {
            let told = s.at == 0 && s.depth <= PATH;
            let found = match row {
                Some(record) if told && !record.is_empty() => Found::Row(record),
                None if told && s.absent => Found::Absent,
                _ => Found::Unknown,
            };
            Walked {
                path: if told {
                    s.path[..s.depth].to_vec()
                } else {
                    Vec::new()
                },
                found,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use portrait_core::schema::StandardTag;
    use portrait_core::{Identifier, ProfileValue, Tag};

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
        format!("{app}-{i}-{}", "x".repeat(32))[..portrait_core::ident::MAX_IDENTIFIER_BYTES]
            .to_owned()
    }

    fn walked(file: &[u8], root: u32, app: u64, ids: &[String]) -> Vec<Walked> {
        let mut keys: Vec<&str> = ids.iter().map(String::as_str).collect();
        keys.sort_unstable();
        ahead(&pages(file), root, crate::codec::app_key(app), &keys)
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
        for (w, id) in walked(&file, root, APP, &some).iter().zip(&sorted) {
            let Found::Row(record) = &w.found else {
                panic!("{id} not found")
            };
            assert!(record.windows(id.len()).any(|x| x == id.as_bytes()), "{id}");
            assert_eq!(w.path[0], root);
            assert!((1..=depth).contains(&w.path.len()));
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
}
