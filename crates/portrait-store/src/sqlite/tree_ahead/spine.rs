//! A compact copy of the accounts B-tree's inner pages, kept by a connection that reads one
//! account at a time (`lookup/inline.rs`), so that a search goes down to its leaf without
//! reading the inner pages from the file: [`Spine`].
//!
//! **Why.** The accounts table is a `WITHOUT ROWID` table, whose inner cells hold whole rows:
//! with 10M accounts an inner page holds about 32 of them, the tree is five levels deep, and its
//! lowest inner level alone (some 8,800 pages, 36 MB) does not fit in the CPU's caches. A
//! one-account read that missed the read cache spent as long on that level as on its leaf
//! (about 2,000 cycles each, measured with `rdtsc` around each level of the walk). The keys of
//! all inner pages, copied without their rows, take a quarter of that room and are searched
//! without decoding a record per probe.
//!
//! **When a copy is the page.** A copy of inner page P is made within a read transaction whose
//! view of the WAL ([`super::super::wal_pages`]) is trusted and says P is read from the file: P
//! then has no frame in the WAL's current generation (the salts of the WAL-index header), and
//! its file version stays put while the transaction is open (a checkpoint copies no frame past
//! an open snapshot's last one). The file changes only when a checkpoint copies a frame into it,
//! and a frame of P in this generation would make P unclean in every later trusted view of the
//! generation (this process's frames are in its set; another's make the view untrusted); a new
//! generation has new salts. So the copy is P as long as the WAL's salts are the ones it was
//! made under and P is clean: a search takes its path from the copies tagged with the salts it
//! last saw, `direct.rs` checks the view after the walk as for any walk (every page of the path,
//! copies included, must be clean), and a walk that used copies of another generation is done
//! again from the root; every read that sees other salts than the copies' (its view trusted or
//! not) drops them, and they are made again as searches pass.
//!
//! **Salts that repeat.** SQLite zeroes the WAL-index header when it rebuilds the index from an
//! empty WAL: at a node's start, and while it runs only if another process crashed while
//! writing the index. Copies made under zero salts and gone by again under zero salts after
//! the file changed would need another process to write to the running node's file, checkpoint
//! and empty the WAL, then crash mid-header, with no one-account read of this node seeing the
//! salts in between; docs/deployment.md says never to write a running node's file from outside.
//!
//! **Bounded.** At most [`MOST_BYTES`] of copies and [`MOST_COPIES`] pages per spine (8.4 MB
//! and 8,856 pages for 10M accounts, 949 bytes a copy), mapped only when the first copy is made
//! and taken as written; past that, no more pages are copied (the upper levels, which every
//! search passes, are copied first). Copies are made only of pages a search went through, from
//! the map it read them from.
//!
//! **Measured** (BENCHMARKS.md, "session 21"): the store's cost of a one-account read at 10M
//! (`examples/batch_cost.rs ... 1`) 2.83–2.88 → 2.21–2.30 µs. Under W1 the gain is smaller and
//! needs the copies in huge pages: in 4 KiB pages, and without asking for the whole leaf at
//! once, the spine made W1 at 10M 8 % slower than no spine. Each copy links to its children's
//! ([`Link`]), so that a descent looks up only the root's: the descent's own time under W1 at
//! 10M went from 0.77 to 0.44 µs a request, and W1 up 1.3 % (session 23).

use std::collections::HashMap;

use super::pages::{Pages, LINE, LONGEST_KEY};
use super::PATH;
use crate::sqlite::page_ahead::hint;

/// Bytes of copies a spine holds at most.
pub(in crate::sqlite) const MOST_BYTES: usize = 32 << 20;

/// Copies a spine holds at most (10M accounts take 8,856), which bounds its index of them
/// whatever the pages' sizes.
const MOST_COPIES: usize = 1 << 18;

/// The copies of inner pages one connection has made (see the module docs), one after another
/// in one buffer: a search asks for all the lines of a copy at once, then searches it.
#[derive(Default, Clone)]
pub(in crate::sqlite) struct Spine {
    /// The WAL-index header's salts the copies were made under (`None`: none yet).
    salt: Option<[u8; 8]>,
    /// Where each page's copy is in `copies` (a search looks up only the root here: each copy
    /// links to its children's).
    at: HashMap<u32, Link, foldhash::fast::FixedState>,
    /// Each copy, starting on a line of its own: its number of keys `n` (4 bytes); for the
    /// child left of each key and the rightmost child (`n + 1`), its page number and the
    /// [`Link`] to its copy (0: none yet); where each key ends past the start of the keys (`n`
    /// offsets); then the keys ([`encode`]) one after another; numbers little-endian.
    copies: Buffer,
}

/// Where a copy is in [`Spine::copies`]: its first line, shifted left by [`LINES_BITS`], and
/// its number of lines, so that a search goes from a copy to its child's and asks for all of
/// the child's lines without a lookup. (Before, a search looked each page up in [`Spine::at`]
/// on its way down: under W1 at 10M those lookups waited on memory for 45 % of the descent,
/// BENCHMARKS.md "session 23".) Never 0: a copy has a line at least.
type Link = u32;

/// Bits of a [`Link`] that hold its number of lines (a copy of a 64 KiB page takes at most
/// about 3,600).
const LINES_BITS: u32 = 13;

// Every line of the buffer can be a copy's first.
const _: () = assert!(MOST_BYTES / LINE <= 1 << (32 - LINES_BITS));

/// The link to a copy of `len` bytes at `start` (a line's start), if its lines fit.
fn link_to(start: usize, len: usize) -> Option<Link> {
    let lines = u32::try_from(len.div_ceil(LINE)).ok()?;
    let first = u32::try_from(start / LINE).ok()?;
    (lines > 0 && lines < 1 << LINES_BITS).then_some(first << LINES_BITS | lines)
}

/// [`Spine::copies`]: [`MOST_BYTES`] of anonymous memory, mapped at the first copy and advised
/// to be backed by huge pages, so that the copies a search goes through are under a few TLB
/// entries, as the file's pages are (`huge.rs`; in 4 KiB pages, and without the whole leaf
/// asked for at once, the spine measured slower than no spine at all under W1, BENCHMARKS.md
/// "session 21"). Pages are taken as first written.
#[derive(Default)]
struct Buffer {
    map: Option<memmap2::MmapMut>,
    len: usize,
}

impl Buffer {
    fn bytes(&self) -> &[u8] {
        self.map.as_deref().map_or(&[], |m| &m[..self.len])
    }

    /// Appends `bytes` from the start of a line: where, if there was room (and memory to map).
    fn push(&mut self, bytes: &[u8]) -> Option<usize> {
        let start = self.len.next_multiple_of(LINE);
        if start + bytes.len() > MOST_BYTES {
            return None;
        }
        let map = match &mut self.map {
            Some(map) => map,
            None => {
                let Ok(map) = memmap2::MmapMut::map_anon(MOST_BYTES) else {
                    return None;
                };
                // (Only advice: without huge pages the copies still serve.)
                let _ = map.advise(memmap2::Advice::HugePage);
                self.map.insert(map)
            }
        };
        map[start..start + bytes.len()].copy_from_slice(bytes);
        self.len = start + bytes.len();
        Some(start)
    }

    /// Where the copy `link` leads to is (a copy ends within its last line), if it is within
    /// what was written (not after a clone that could not map its copy).
    fn span(&self, link: Link) -> Option<std::ops::Range<usize>> {
        let start = (link >> LINES_BITS) as usize * LINE;
        let end = start + (link & ((1 << LINES_BITS) - 1)) as usize * LINE;
        (start < self.len).then(|| start..end.min(self.len))
    }

    /// The bytes of the copy `link` leads to.
    fn linked(&self, link: Link) -> Option<&[u8]> {
        let span = self.span(link)?;
        self.bytes().get(span)
    }

    /// As [`Buffer::linked`], to write.
    fn linked_mut(&mut self, link: Link) -> Option<&mut [u8]> {
        let span = self.span(link)?;
        self.map.as_deref_mut()?.get_mut(span)
    }

    fn clear(&mut self) {
        self.len = 0;
    }
}

impl Clone for Buffer {
    fn clone(&self) -> Buffer {
        let mut copy = Buffer::default();
        if self.len > 0 {
            // (Copied from the start, every link stays right.)
            let _ = copy.push(self.bytes());
        }
        copy
    }
}

/// A copy of an inner page, within [`Spine::copies`].
struct PageCopy<'a> {
    n: usize,
    /// The whole copy: `n`, `n + 1` children with their links, `n` ends, then the keys.
    bytes: &'a [u8],
}

/// The little-endian word `i` of `bytes`.
fn word(bytes: &[u8], i: usize) -> u32 {
    let at = 4 * i;
    u32::from_le_bytes([bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]])
}

fn set_word(bytes: &mut [u8], i: usize, value: u32) {
    bytes[4 * i..4 * i + 4].copy_from_slice(&value.to_le_bytes());
}

/// The word of a copy that holds child `i`'s page number (its link is the next).
fn child_word(i: usize) -> usize {
    1 + 2 * i
}

impl PageCopy<'_> {
    fn of(bytes: &[u8]) -> PageCopy<'_> {
        PageCopy {
            n: word(bytes, 0) as usize,
            bytes,
        }
    }

    fn child(&self, i: usize) -> u32 {
        word(self.bytes, child_word(i))
    }

    fn link(&self, i: usize) -> Option<Link> {
        Some(word(self.bytes, child_word(i) + 1)).filter(|&link| link != 0)
    }

    fn key(&self, i: usize) -> &[u8] {
        let ends = child_word(self.n + 1);
        let keys = 4 * (ends + self.n);
        let start = i
            .checked_sub(1)
            .map_or(0, |j| word(self.bytes, ends + j) as usize);
        &self.bytes[keys + start..keys + word(self.bytes, ends + i) as usize]
    }

    /// The index of the first key not less than `key` (`n` if none).
    fn partition(&self, key: &[u8]) -> usize {
        let (mut lo, mut hi) = (0, self.n);
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            if self.key(mid) < key {
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }
        lo
    }
}

/// `(app, user)` as bytes whose order is the primary key's: the app's `app_id` with its sign
/// bit flipped, big-endian, then the UserID's bytes (SQLite's `binary` collation).
fn encode(app: i64, user: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(8 + user.len());
    out.extend_from_slice(&app_bytes(app));
    out.extend_from_slice(user);
    out
}

/// The first 8 bytes of [`encode`]: `app` with its sign bit flipped, big-endian.
fn app_bytes(app: i64) -> [u8; 8] {
    ((app as u64) ^ (1 << 63)).to_be_bytes()
}

/// Where a search may go on from without reading the pages it passed ([`Spine::descend`]).
pub(in crate::sqlite) struct Descent {
    /// The page to walk from.
    pub(in crate::sqlite) at: u32,
    /// The inner pages passed, root first: the first `depth`.
    passed: [u32; PATH],
    depth: usize,
    /// The salts of the copies passed.
    pub(in crate::sqlite) salt: Option<[u8; 8]>,
}

impl Descent {
    /// The inner pages passed, root first.
    pub(in crate::sqlite) fn passed(&self) -> &[u32] {
        &self.passed[..self.depth]
    }
}

impl Spine {
    /// How far a search for account `user` of app `app` (its `app_id`) goes from `root`
    /// through the copies: it stops at the first page with no copy, or whose copy holds the
    /// key itself (the row is in that inner cell, which the walk reads), or after [`PATH`] - 1
    /// pages.
    pub(in crate::sqlite) fn descend(&self, root: u32, app: i64, user: &[u8]) -> Descent {
        let mut descent = Descent {
            at: root,
            passed: [0; PATH],
            depth: 0,
            salt: self.salt,
        };
        let mut sought = [0u8; 8 + LONGEST_KEY];
        let Some(key) = sought.get_mut(..8 + user.len()) else {
            return descent;
        };
        key[..8].copy_from_slice(&app_bytes(app));
        key[8..].copy_from_slice(user);
        let key = &*key;
        let mut link = self.at.get(&root).copied();
        while descent.depth < PATH - 1 {
            let Some(copy) = link.and_then(|link| self.copy(link)) else {
                break;
            };
            let i = copy.partition(key);
            if i < copy.n && copy.key(i) == key {
                break;
            }
            descent.passed[descent.depth] = descent.at;
            descent.depth += 1;
            descent.at = copy.child(i);
            link = copy.link(i);
        }
        descent
    }

    /// The copy `link` leads to, its lines asked for at once.
    fn copy(&self, link: Link) -> Option<PageCopy<'_>> {
        let bytes = self.copies.linked(link)?;
        for line in bytes.chunks(LINE) {
            // SAFETY: a prefetch of a line of `bytes` (it reads nothing and never faults).
            unsafe { hint(line.as_ptr()) };
        }
        Some(PageCopy::of(bytes))
    }

    /// After a walk whose every page of `path` is clean in a trusted view with `salt` (the
    /// module docs): drops the copies of another generation, and copies the inner pages of
    /// `path` it has no copy of, as `pages` (the map the walk read, within the same read
    /// transaction) holds them, while there is room.
    pub(in crate::sqlite) fn learn(&mut self, pages: &Pages, salt: [u8; 8], path: &[u32]) {
        self.follow(salt);
        // The link to the copy of the page before in `path` (its parent).
        let mut parent: Option<Link> = None;
        for &page in path {
            let link = match self.at.get(&page) {
                Some(&link) => link,
                None => {
                    if self.at.len() >= MOST_COPIES {
                        return;
                    }
                    // (None: a leaf, with nothing below it, or not of the accounts table's shape.)
                    let Some(copy) = copy_of(pages, page) else {
                        return;
                    };
                    let Some(link) = self
                        .copies
                        .push(&copy)
                        .and_then(|start| link_to(start, copy.len()))
                    else {
                        return; // no more room
                    };
                    self.at.insert(page, link);
                    link
                }
            };
            // The parent's link to this copy, whichever of the two was made first (a page may
            // have been copied under another parent, before writes gave it this one).
            if let Some(bytes) = parent.and_then(|p| self.copies.linked_mut(p)) {
                for i in 0..=word(bytes, 0) as usize {
                    if word(bytes, child_word(i)) == page {
                        set_word(bytes, child_word(i) + 1, link);
                    }
                }
            }
            parent = Some(link);
        }
    }

    /// After a read saw the WAL-index header with `salt` (trusted or not): drops the copies if
    /// they were made under other salts.
    pub(in crate::sqlite) fn follow(&mut self, salt: [u8; 8]) {
        if self.salt != Some(salt) {
            self.at.clear();
            self.copies.clear();
            self.salt = Some(salt);
        }
    }

    /// Inner pages copied.
    #[cfg(test)]
    pub(in crate::sqlite) fn len(&self) -> usize {
        self.at.len()
    }
}

/// A copy of inner page `page` (as [`Spine::copies`] holds them, with no links yet), if it is
/// one whose every cell reads as a row of the accounts table, in order, and a [`Link`] can
/// hold its lines.
fn copy_of(pages: &Pages, page: u32) -> Option<Vec<u8>> {
    let node = pages.get(page)?.node().filter(|n| n.inner)?;
    let n = node.cells;
    let mut children = Vec::with_capacity(n + 1);
    let mut keys: Vec<u8> = Vec::new();
    let mut ends = Vec::with_capacity(n);
    let mut last = 0..0;
    for i in 0..n {
        let (app, user) = node.key(pages, i)?;
        let key = encode(app, &user);
        if i > 0 && key.as_slice() <= &keys[last.clone()] {
            return None; // out of order: not a page to go by
        }
        last = keys.len()..keys.len() + key.len();
        keys.extend_from_slice(&key);
        ends.push(u32::try_from(keys.len()).ok()?);
        children.push(node.child(i)?);
    }
    children.push(node.child(n)?);
    let mut out = Vec::with_capacity(4 * (child_word(n + 1) + n) + keys.len());
    out.extend_from_slice(&u32::try_from(n).ok()?.to_le_bytes());
    for child in children {
        out.extend_from_slice(&child.to_le_bytes());
        out.extend_from_slice(&0u32.to_le_bytes()); // no link yet
    }
    for end in ends {
        out.extend_from_slice(&end.to_le_bytes());
    }
    out.extend_from_slice(&keys);
    (out.len().div_ceil(LINE) < 1 << LINES_BITS).then_some(out)
}
