//! Which pages of a database file this process has written to its WAL since the WAL last
//! restarted: the pages a lookup must not read from the file (`direct.rs`).
//!
//! **Why.** A read transaction sees each page either in the WAL (the newest frame of the page
//! up to the snapshot's last frame) or, if the page has no such frame, in the database file.
//! SQLite tells nobody which; but every frame is written by a connection of this process
//! through the store's VFS (`shared_map.rs`), which hands each write to the WAL to
//! [`WalPages::wrote`]. A page absent from the set, in a read transaction, is therefore read
//! right from the file: it has no frame in the snapshot, and SQLite copies no frame into the
//! file while the transaction is open (a checkpoint copies only frames at or before every open
//! snapshot's last frame, and waits for readers of the file alone).
//!
//! **When the set is trusted** ([`WalPages::trusted`]), given the WAL-index header of the
//! reader's transaction (its last committed frame and the salts of the WAL's generation):
//! * the WAL holds no committed frame: every page is read from the file;
//! * or this process wrote the header of the WAL's current generation (same salts), every frame
//!   from the first to the last committed one, and understood every write it saw.
//!
//! Anything else means a frame this process did not see (another process wrote, a WAL left by
//! a crash was recovered, a write was split where no frame header was expected): the set is not
//! trusted until this process writes the header of a new generation, which SQLite does only
//! once every frame of the old one is in the file.

use std::collections::HashSet;
use std::sync::{Arc, Mutex, PoisonError};

use super::per_file::PerFile;

/// Bytes of the WAL's header.
const HEADER: u64 = 32;

/// Bytes of a frame's header (before its page).
const FRAME_HEADER: u64 = 24;

/// The pages of one database file written to its WAL by this process, in the WAL's current
/// generation.
#[derive(Debug, Default)]
pub(super) struct WalPages(Mutex<Seen>);

#[derive(Debug, Default)]
struct Seen {
    /// Whether this process wrote the generation's header and understood every write since.
    known: bool,
    /// The salts of the generation's header.
    salt: [u8; 8],
    /// The page size of the generation's header.
    page_size: u64,
    /// Frames `1..=frames` were written here (a frame past `frames + 1` is a gap).
    frames: u64,
    pages: HashSet<u32, foldhash::fast::FixedState>,
}

/// A reader's view of the WAL-index header: the last committed frame and the generation's salts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct WalHeader {
    pub(super) last_frame: u32,
    pub(super) salt: [u8; 8],
}

impl WalPages {
    /// The set of the database file `db` (shared by every connection of this process that has it
    /// open), or `None` if the file cannot be looked at.
    pub(super) fn of_db(db: &std::path::Path) -> Option<Arc<WalPages>> {
        static SETS: PerFile<WalPages> = PerFile::new();
        let meta = std::fs::metadata(db).ok()?;
        SETS.get_or_make(&meta, || Some(Arc::default()))
    }

    /// Takes note of a write of `buf` at `offset` of the WAL (before it is made).
    pub(super) fn wrote(&self, buf: &[u8], offset: u64) {
        let mut seen = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        seen.wrote(buf, offset);
    }

    /// Which pages a reader whose transaction saw `header` may read from the file: `None` if
    /// the set is not trusted (module docs), else a check that is true of the pages it may.
    pub(super) fn trusted(&self, header: WalHeader) -> Option<Clean<'_>> {
        if header.last_frame == 0 {
            return Some(Clean(None));
        }
        let seen = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        (seen.known && seen.salt == header.salt && u64::from(header.last_frame) <= seen.frames)
            .then_some(Clean(Some(seen)))
    }
}

/// The pages a reader may read from the file (see [`WalPages::trusted`]): every page if the WAL
/// holds no committed frame, else every page not written to it (the set's lock is held).
pub(super) struct Clean<'a>(Option<std::sync::MutexGuard<'a, Seen>>);

impl Clean<'_> {
    pub(super) fn page(&self, page: u32) -> bool {
        self.0
            .as_ref()
            .is_none_or(|seen| !seen.pages.contains(&page))
    }
}

impl Seen {
    fn wrote(&mut self, buf: &[u8], offset: u64) {
        let end = offset + buf.len() as u64;
        if offset == 0 {
            // A new generation's header (SQLite writes it whole, before the generation's first
            // frame, once every frame of the old one is in the database file).
            match (buf.get(8..12), buf.get(16..24)) {
                (Some(size), Some(salt)) if buf.len() as u64 == HEADER => {
                    self.pages.clear();
                    self.frames = 0;
                    self.page_size =
                        u64::from(u32::from_be_bytes(size.try_into().unwrap_or_default()));
                    self.salt.copy_from_slice(salt);
                    self.known = (512..=65_536).contains(&self.page_size);
                }
                _ => self.known = false,
            }
            return;
        }
        if !self.known {
            return;
        }
        let frame = FRAME_HEADER + self.page_size;
        let Some(rel) = offset.checked_sub(HEADER) else {
            self.known = false;
            return;
        };
        // The page number is a frame header's first 4 bytes: a write that starts inside them
        // cannot be read.
        if (1..4).contains(&(rel % frame)) {
            self.known = false;
            return;
        }
        // Every frame header that begins within the write.
        let mut index = rel.div_ceil(frame);
        loop {
            let at = HEADER + index * frame;
            if at >= end {
                break;
            }
            let from = usize::try_from(at - offset).unwrap_or(usize::MAX);
            let Some(number) = buf.get(from..from + 4) else {
                self.known = false;
                return;
            };
            // Frame `index + 1` (counted from 1) starts at `at`.
            let n = index + 1;
            if n > self.frames + 1 {
                self.known = false; // a frame written elsewhere came before it
                return;
            }
            self.frames = self.frames.max(n);
            self.pages
                .insert(u32::from_be_bytes(number.try_into().unwrap_or_default()));
            index += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PAGE: u64 = 4096;

    fn header(salt: u8) -> Vec<u8> {
        let mut h = vec![0u8; 32];
        h[8..12].copy_from_slice(&(PAGE as u32).to_be_bytes());
        h[16..24].fill(salt);
        h
    }

    /// Frame `n` (from 1) of page `page`, written as SQLite writes it: header, then page.
    fn frame(set: &WalPages, n: u64, page: u32) {
        let at = HEADER + (n - 1) * (FRAME_HEADER + PAGE);
        let mut h = vec![0u8; 24];
        h[..4].copy_from_slice(&page.to_be_bytes());
        set.wrote(&h, at);
        set.wrote(&vec![7u8; PAGE as usize], at + FRAME_HEADER);
    }

    fn view(set: &WalPages, last_frame: u32, salt: u8) -> Option<Vec<bool>> {
        let clean = set.trusted(WalHeader {
            last_frame,
            salt: [salt; 8],
        })?;
        Some((1..=5).map(|p| clean.page(p)).collect())
    }

    #[test]
    fn the_pages_of_the_frames_written_here_are_not_read_from_the_file() {
        let set = WalPages::default();
        assert_eq!(
            view(&set, 0, 1),
            Some(vec![true; 5]),
            "an empty WAL: every page"
        );
        assert_eq!(
            view(&set, 1, 1),
            None,
            "frames of a generation not seen here"
        );
        set.wrote(&header(1), 0);
        frame(&set, 1, 2);
        frame(&set, 2, 4);
        frame(&set, 2, 4); // a frame written again within its transaction
        let clean = Some(vec![true, false, true, false, true]);
        assert_eq!(view(&set, 2, 1), clean);
        assert_eq!(view(&set, 1, 1), clean, "a snapshot before the last frame");
        assert_eq!(view(&set, 3, 1), None, "a committed frame not written here");
        assert_eq!(view(&set, 2, 9), None, "another generation's salts");
        // A new generation: the old pages are in the file.
        set.wrote(&header(2), 0);
        frame(&set, 1, 5);
        assert_eq!(view(&set, 1, 2), Some(vec![true, true, true, true, false]));
    }

    #[test]
    fn a_write_it_cannot_follow_distrusts_the_set_until_the_next_generation() {
        // A frame after a gap (another process wrote the frames between).
        let set = WalPages::default();
        set.wrote(&header(1), 0);
        frame(&set, 1, 2);
        frame(&set, 3, 3);
        assert_eq!(view(&set, 1, 1), None);
        set.wrote(&header(3), 0);
        frame(&set, 1, 2);
        assert_eq!(view(&set, 1, 3), Some(vec![true, false, true, true, true]));
        // A write that begins inside a frame header's page number, and a torn WAL header.
        set.wrote(&[0u8; 22], HEADER + FRAME_HEADER + PAGE + 2);
        assert_eq!(view(&set, 1, 3), None);
        set.wrote(&header(4)[..16], 0);
        assert_eq!(view(&set, 1, 4), None);
        // One write of two whole frames is followed.
        set.wrote(&header(5), 0);
        let mut two = vec![0u8; 2 * (FRAME_HEADER + PAGE) as usize];
        two[..4].copy_from_slice(&1u32.to_be_bytes());
        two[(FRAME_HEADER + PAGE) as usize..][..4].copy_from_slice(&3u32.to_be_bytes());
        set.wrote(&two, HEADER);
        assert_eq!(view(&set, 2, 5), Some(vec![false, true, false, true, true]));
    }
}
