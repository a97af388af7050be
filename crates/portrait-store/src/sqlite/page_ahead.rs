//! Asking the CPU ahead of time for the cells of a B-tree leaf that SQLite is about to search.
//!
//! **Why.** With 10M accounts most reads miss the read cache and search the primary key, and
//! the leaf of that search is almost never in the CPU's caches. SQLite's binary search within a
//! page reads a cell, compares its key, then reads the next: each read waits for the one before,
//! so a cold leaf of about 14 accounts cost four or five memory latencies one after another
//! (BENCHMARKS.md, "what did not make a miss at 10M cheaper", and "cells of a leaf ahead").
//!
//! **How.** The shared map's `xFetch` (`shared_map.rs`) is where SQLite asks for each page of a
//! search, just before it reads it. There [`leaf`] reads the page's header and, for a leaf,
//! issues a prefetch for the first line of every cell (found from the cell pointer array, which
//! begins in the header's line), so the memory system fetches them side by side and the binary
//! search finds them in cache. Pages of any other kind (inner pages, overflow, free-list, the
//! first page with the file header) are left alone: prefetching every line of an inner page
//! measured no better.
//!
//! A prefetch is only a hint: it never faults and changes no byte, and a wrong guess costs a
//! line of bandwidth. The header read is one SQLite makes right after.
//!
//! **Not after a walk.** A batch's statement runs after `tree_ahead.rs` has walked its searches
//! and brought the very cells they read into cache; there (within [`walked`]) this is off, since
//! it would only fetch the other cells of each leaf (W2 at 10M spent 5.7 % of its CPU in
//! `xFetch` doing so; BENCHMARKS.md, "session 18"). Nor after a one-account read's walk
//! (`direct.rs`), which asked for every cell of its leaf itself; SQLite's searches that no walk
//! went ahead of keep it (a connection without the shared map, e.g.).

/// Bytes per cache line.
const LINE: usize = 64;

/// Bytes of a leaf page's B-tree header (before the cell pointer array).
const LEAF_HEADER: usize = 8;

/// A leaf with more cells than this is left alone (small rows: the pointer array alone spans
/// lines, and a few probes find the cell).
const MOST_CELLS: usize = 48;

thread_local! {
    /// Whether this thread runs a statement whose searches [`walked`] went ahead of.
    static WALKED: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Runs `f` (a batch's statement) with [`leaf`] off on this thread: `tree_ahead.rs` has just
/// walked the batch's searches and brought the cells they read into cache, and prefetching every
/// cell of each leaf again would fetch lines that no search reads.
pub(super) fn walked<R>(f: impl FnOnce() -> R) -> R {
    struct Reset;
    impl Drop for Reset {
        fn drop(&mut self) {
            WALKED.set(false);
        }
    }
    WALKED.set(true);
    let _reset = Reset;
    f()
}

/// Hints the CPU to fetch the start of every cell of the `len`-byte page at `page` if it is a
/// B-tree leaf (not within [`walked`]); whether it asked for any. Also what a lone walk asks
/// for on a leaf (`tree_ahead.rs`).
///
/// # Safety
/// `page` points to `len` readable bytes, a page other than the file's first.
pub(super) unsafe fn leaf(page: *const u8, len: usize) -> bool {
    if WALKED.get() {
        return false;
    }
    // SAFETY (all reads): within the `len` bytes at `page`. Volatile: the map is shared with
    // the file, which other connections and processes write (a page SQLite reads from the file
    // is not rewritten while its snapshot lasts, but nothing here relies on that), so nothing is
    // assumed of the values read: they only choose which lines to prefetch.
    let byte = |at: usize| unsafe { std::ptr::read_volatile(page.add(at)) };
    let mut asked = false;
    for cell in cell_starts(len, byte) {
        // SAFETY: within the page.
        unsafe { hint(page.add(cell)) };
        asked = true;
    }
    asked
}

/// Where the cells of a `len`-byte page start, if it is a leaf of at most [`MOST_CELLS`] cells;
/// `byte(i)` reads its byte `i`. Whatever the bytes, every offset is below `len`.
fn cell_starts(len: usize, byte: impl Fn(usize) -> u8) -> impl Iterator<Item = usize> {
    // Leaf pages of index B-trees (`WITHOUT ROWID` tables) and of table B-trees.
    let leaf = len >= LINE && matches!(byte(0), 0x0a | 0x0d);
    let cells = if leaf {
        usize::from(u16::from_be_bytes([byte(3), byte(4)]))
    } else {
        0
    };
    let cells = if cells <= MOST_CELLS && LEAF_HEADER + 2 * cells <= len {
        cells
    } else {
        0
    };
    (0..cells)
        .map(move |i| {
            let at = LEAF_HEADER + 2 * i;
            usize::from(u16::from_be_bytes([byte(at), byte(at + 1)]))
        })
        .filter(move |&cell| cell < len)
}

/// A prefetch of the line at `p` into every cache level.
#[inline(always)]
pub(super) unsafe fn hint(p: *const u8) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: a prefetch reads nothing and never faults.
    unsafe {
        std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T0 }>(p.cast());
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = p;
}

#[cfg(test)]
mod tests {
    use portrait_core::schema::StandardTag;
    use portrait_core::{Identifier, ProfileValue, Tag};

    use super::*;
    use crate::NewAccount;

    /// On the leaves of a real store file, the offsets picked are the starts of the accounts'
    /// cells: each account's UserID is in the first line of exactly one of them, or in an inner
    /// cell.
    #[tokio::test]
    async fn the_lines_picked_are_the_starts_of_every_accounts_cell() {
        let (store, dir) = crate::testkit::fresh_sqlite().await;
        let accounts: Vec<NewAccount> = (0..600)
            .map(|i| {
                let mut a = NewAccount::new(Identifier::parse(&format!("acct-{i:05}")).unwrap());
                a.items.push((
                    Tag::Standard(StandardTag::Nick),
                    ProfileValue::Str(format!("nick {i} ").repeat(20)),
                ));
                a
            })
            .collect();
        store
            .import_accounts(1_400_000_001, &accounts, "admin".into())
            .await
            .unwrap();
        store.close().await; // the last connection's close checkpoints the WAL into the file
        let path = dir.path().join("portrait.db");
        let root: usize = rusqlite::Connection::open(&path)
            .unwrap()
            .query_row(
                "select rootpage from sqlite_schema where name = 'accounts'",
                [],
                |r| r.get(0),
            )
            .unwrap();
        let file = std::fs::read(&path).unwrap();
        let page_size = usize::from(u16::from_be_bytes([file[16], file[17]]));
        let page = |n: usize| &file[(n - 1) * page_size..n * page_size];
        let be32 = |b: &[u8]| u32::from_be_bytes([b[0], b[1], b[2], b[3]]) as usize;
        let id_at = |p: &[u8], at: usize| {
            let line = &p[at..(at + LINE).min(p.len())];
            let from = line.windows(5).position(|w| w == b"acct-")?;
            Some(String::from_utf8(line[from..from + 10].to_vec()).unwrap())
        };
        // The accounts table's leaves, found by walking its B-tree from the root. (In an index
        // B-tree, which a `WITHOUT ROWID` table is, inner cells hold rows too.)
        let mut found = std::collections::BTreeSet::new();
        let (mut leaves, mut inner) = (Vec::new(), vec![root]);
        while let Some(n) = inner.pop() {
            let p = page(n);
            match p[0] {
                0x0a => leaves.push(n),
                0x02 => {
                    inner.push(be32(&p[8..]));
                    for i in 0..usize::from(u16::from_be_bytes([p[3], p[4]])) {
                        let cell = usize::from(u16::from_be_bytes([p[12 + 2 * i], p[13 + 2 * i]]));
                        inner.push(be32(&p[cell..]));
                        found.insert(id_at(p, cell).expect("a row in an inner cell"));
                    }
                }
                other => panic!("page {n} of the accounts B-tree has type {other:#x}"),
            }
        }
        assert!(
            leaves.len() > 20,
            "{} leaves: the rows span many pages",
            leaves.len()
        );
        for n in leaves {
            let p = page(n);
            let starts: Vec<usize> = cell_starts(p.len(), |i| p[i]).collect();
            assert_eq!(starts.len(), usize::from(u16::from_be_bytes([p[3], p[4]])));
            for at in starts {
                let id = id_at(p, at).unwrap_or_else(|| panic!("no UserID at {at} of page {n}"));
                assert!(found.insert(id.clone()), "{id} found twice");
            }
        }
        let all: std::collections::BTreeSet<String> =
            (0..600).map(|i| format!("acct-{i:05}")).collect();
        assert_eq!(found, all);
    }

    #[test]
    fn only_leaves_and_only_offsets_within_the_page() {
        let mut page = vec![0xffu8; 4096];
        page[0] = 0x0d;
        page[3..5].copy_from_slice(&3u16.to_be_bytes());
        page[8..10].copy_from_slice(&4000u16.to_be_bytes());
        page[10..12].copy_from_slice(&9000u16.to_be_bytes()); // past the page: skipped
        page[12..14].copy_from_slice(&3000u16.to_be_bytes());
        let starts = |page: &[u8]| cell_starts(page.len(), |i| page[i]).collect::<Vec<_>>();
        assert_eq!(starts(&page), [4000, 3000]);
        page[0] = 0x0a;
        assert_eq!(starts(&page), [4000, 3000]);
        page[0] = 0x02; // an inner page
        assert!(starts(&page).is_empty());
        page[0] = 0x0d;
        page[3..5].copy_from_slice(&(MOST_CELLS as u16 + 1).to_be_bytes());
        assert!(starts(&page).is_empty(), "too many cells");
        assert!(starts(&page[..32]).is_empty(), "shorter than a line");
    }
}
