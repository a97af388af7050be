//! Walking the accounts B-tree for every id of a batch at once, one level at a time, so that the
//! pages of all the batch's searches are fetched from memory side by side; where the pages it
//! went through are the read transaction's, its findings are the batch's answer (`direct.rs`).
//!
//! **Why.** A batch read (`lookup.rs`'s `ROWS_SQL`) has SQLite search the primary key once per
//! id, one search after the other. With 10M accounts a search goes down five levels and the
//! last two or three are not in the CPU's caches: each waits for its page, then for the cells
//! of its binary search, before the next can start. A batch of 100 ids paid some 1,000 memory
//! latencies in a row (`perf`: `xFetch`, `sqlite3BtreeIndexMoveto` and `memcmp` were 43 % of
//! W2's CPU at 10M, BENCHMARKS.md, "2026-12-06 (session 17)").
//!
//! **How.** [`ahead`] searches the B-tree for all the ids at once, level by level: it asks the
//! CPU for the header lines of every page of the level, then for the first lines of their
//! cells, then searches each page for its ids (by then the lines have arrived, all at once),
//! which gives the pages of the next level. A search that finds its row asks for the whole
//! cell, and the row's record is copied once every search has ended. Each binary search reads
//! the cells SQLite's search of the same key reads ([`probe`]), so that SQLite's searches of
//! the ids the walk cannot answer find their cells in cache. Only the primary key's comparison
//! is needed: `(app_id, user_id)`, an integer then a text in the `binary` collation (`pages.rs`
//! reads the pages and compares). With the file in small pages the walk's own loads wait on
//! page-table walks; with huge pages (`huge.rs`) they overlap.
//!
//! **Any bytes.** Whatever the bytes say, nothing is read past a page, a page past the known end
//! of the file is never read, and the walk ends after [`DEEPEST`] levels. The file is read as
//! the last checkpoint left it: a page whose newer version is in the WAL, a root page that moved,
//! or a page being rewritten gives a wrong finding, which is why each finding comes with the
//! pages it was read from ([`Walked::path`]), and `direct.rs` takes it only if every one of them
//! is, in the file, what its transaction sees (a page a [`Spine`] went through for it is on the path too).

use std::cmp::Ordering;

use smallvec::SmallVec;

pub(in crate::sqlite) use pages::Pages;
use pages::{App, Node, Page, LINE};
pub(in crate::sqlite) use spine::Spine;

mod pages;
mod spine;

/// Levels walked at most (SQLite's own limit on a B-tree's depth is 20).
const DEEPEST: usize = 20;

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
pub(super) const PATH: usize = 8;

/// What the walk found of one key, read from the file as it is mapped (only an answer for a
/// reader whose snapshot sees every page of `path` as the file holds it: `direct.rs`).
#[derive(Debug)]
pub(super) struct Walked {
    /// The pages from the root to where the search ended; empty if it went deeper than [`PATH`]
    /// levels or than [`DEEPEST`] (a search that ends on a page it cannot read keeps its path,
    /// and [`Found::Unknown`]).
    pub(super) path: Path,
    pub(super) found: Found,
}

/// Pages from the root down, at most [`PATH`], held in place (a one-account read that misses
/// the read cache allocates for nothing it can do without: at 10M accounts each allocation
/// waits on a line the walk has pushed out of the CPU's caches).
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct Path {
    pages: [u32; PATH],
    len: usize,
}

impl std::ops::Deref for Path {
    type Target = [u32];

    fn deref(&self) -> &[u32] {
        &self.pages[..self.len]
    }
}

/// What a walk found of each key, in the order of the keys (one key: held in place).
pub(super) type Walks = SmallVec<[Walked; 1]>;

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
pub(super) fn ahead(pages: &Pages, root: u32, app: i64, keys: &[&str]) -> Walks {
    ahead_from(pages, root, &[], app, keys)
}

/// [`ahead`] from page `start`, below the inner pages `passed` (root first, fewer than
/// [`PATH`]), which every search has gone through already (a [`Spine`] went through them):
/// each finding's path begins with them.
pub(super) fn ahead_from(
    pages: &Pages,
    start: u32,
    passed: &[u32],
    app: i64,
    keys: &[&str],
) -> Walks {
    let app = App::new(app);
    let alone = keys.len() == 1;
    // Whether the first page searched has had all of its lines asked for.
    let mut whole = false;
    if alone && !passed.is_empty() {
        // The page a spine's descent ends on (most often the leaf): all of its lines at once,
        // so that its header, cell pointers and cells arrive together, not one after another.
        if let Some(page) = pages.get(start) {
            for at in (0..page.len).step_by(LINE) {
                page.hint(at);
            }
            whole = true;
        }
    }
    let mut path = [0; PATH];
    let depth = passed.len().min(PATH - 1);
    path[..depth].copy_from_slice(&passed[..depth]);
    let mut searches: SmallVec<[Search; 1]> = smallvec::smallvec![
        Search {
            at: if passed.len() < PATH { start } else { 0 },
            node: None,
            lo: 0,
            hi: 0,
            path,
            depth,
            absent: false,
        };
        keys.len()
    ];
    // Where each found row is: its records are copied once the walk is done, by when the lines
    // of every row asked for have arrived side by side.
    let mut found: SmallVec<[Option<(Node, usize)>; 1]> = smallvec::smallvec![None; keys.len()];
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
                    // One search has no other to overlap with: its binary search would wait for
                    // each cell in turn (`page_ahead.rs`). (On a page asked for whole, that
                    // would read its cell pointers only to ask again for lines on their way.)
                    if !(whole || alone && node.ask_all()) && s.lo < s.hi {
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
                match node.compare(pages, mid, &app, key.as_bytes()) {
                    Some(Ordering::Less) => s.lo = mid + 1,
                    Some(Ordering::Greater) => s.hi = mid,
                    Some(Ordering::Equal) => {
                        node.ask_row(pages, mid);
                        *row = Some((node, mid));
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
        whole = false;
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
            let found = match row.and_then(|(node, i)| node.record(pages, i)) {
                Some(record) if told => Found::Row(record),
                None if told && s.absent => Found::Absent,
                _ => Found::Unknown,
            };
            Walked {
                path: Path {
                    pages: s.path,
                    len: if told { s.depth } else { 0 },
                },
                found,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests;
