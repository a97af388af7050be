//! Which pages of a database file this process has written to its WAL since the WAL last
//! restarted: the pages a lookup must not read from the file (`direct.rs`).
//!
//! **Why.** A read transaction sees each page either in the WAL (the newest frame of the page
//! up to the snapshot's last frame) or, if the page has no such frame, in the database file.
//! SQLite tells nobody which; but the store's connections write every frame through its VFS
//! (`shared_map.rs`), which hands each write to the WAL to [`WalPages::wrote`]. A page with no
//! frame in the snapshot is read right from the file, and stays as the snapshot sees it while
//! the transaction is open: a checkpoint copies into the file only frames at or before every
//! open snapshot's last frame (and, while a reader reads the file alone, none), and the WAL
//! restarts only once every frame is in the file and no reader uses one.
//!
//! **When the set is trusted** ([`WalPages::trusted`]), given the WAL-index header as the reader
//! finds it within its transaction (at or past its snapshot: the same generation, since a
//! reader that uses frames keeps the WAL from restarting, or a reader of the file alone, for
//! which every page is as the file holds it):
//! * the WAL holds no committed frame: every page is read from the file;
//! * or this process wrote the header of the WAL's current generation (same salts), the last
//!   committed frame's checksum is the one this process wrote for it (SQLite's checksums run
//!   over every frame before, so every frame up to it is one this process wrote), and it
//!   understood every write it saw.
//!
//! Anything else means a frame this process did not see (another process wrote, a WAL left by
//! a crash was recovered, another writer wrote where this process's frames were rolled back, a
//! write was split where a frame header was): the set is not trusted until this process writes
//! the header of a new generation, which SQLite does only once every frame of the old one is in
//! the file (or, for frames written over, until this process writes them again).

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
    /// The checksum in the header of each frame written here, frame `n` at `n - 1` (a frame
    /// past the last one plus one is a gap). SQLite's frame checksums run over every frame
    /// before: a committed last frame whose checksum is the one written here means every frame
    /// up to it is the one written here (and not one of another writer's, written where this
    /// process's rolled-back frames were).
    sums: Vec<u64>,
    pages: HashSet<u32, foldhash::fast::FixedState>,
}

/// The WAL-index header as a reader finds it within its transaction: the last committed frame,
/// that frame's checksum, and the generation's salts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct WalHeader {
    pub(super) last_frame: u32,
    pub(super) last_sum: u64,
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
        let written = usize::try_from(header.last_frame)
            .ok()
            .and_then(|n| seen.sums.get(n.checked_sub(1)?));
        (seen.known && seen.salt == header.salt && written == Some(&header.last_sum))
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
                    self.sums.clear();
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
            // The page number (bytes 0..4) and the frame's checksum (16..24, two big-endian
            // words); SQLite writes a frame's header whole.
            let from = usize::try_from(at - offset).unwrap_or(usize::MAX);
            let Some(header) = buf.get(from..from.saturating_add(FRAME_HEADER as usize)) else {
                self.known = false;
                return;
            };
            let word =
                |at: usize| u32::from_be_bytes(header[at..at + 4].try_into().unwrap_or_default());
            let sum = (u64::from(word(16)) << 32) | u64::from(word(20));
            // Frame `index + 1` (counted from 1) starts at `at`.
            let n = usize::try_from(index).unwrap_or(usize::MAX);
            match n.cmp(&self.sums.len()) {
                std::cmp::Ordering::Less => self.sums[n] = sum, // written again
                std::cmp::Ordering::Equal => self.sums.push(sum),
                std::cmp::Ordering::Greater => {
                    self.known = false; // a frame written elsewhere came before it
                    return;
                }
            }
            self.pages.insert(word(0));
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

    /// The checksum a frame `n` of page `page` gets here (by `writer`): any value that differs
    /// between frames and writers.
    fn sum(writer: u8, n: u64, page: u32) -> u64 {
        (u64::from(writer) << 56) | (n << 32) | u64::from(page)
    }

    /// Frame `n` (from 1) of page `page`, written by this process as SQLite writes it: header,
    /// then page.
    fn frame(set: &WalPages, n: u64, page: u32) {
        let at = HEADER + (n - 1) * (FRAME_HEADER + PAGE);
        set.wrote(&frame_header(sum(0, n, page), page), at);
        set.wrote(&vec![7u8; PAGE as usize], at + FRAME_HEADER);
    }

    fn frame_header(sum: u64, page: u32) -> Vec<u8> {
        let mut h = vec![0u8; 24];
        h[..4].copy_from_slice(&page.to_be_bytes());
        h[16..24].copy_from_slice(&sum.to_be_bytes());
        h
    }

    /// The pages 1–5 a reader may read from the file with the WAL index at `last_frame`, whose
    /// checksum is `last_sum`.
    fn view_summed(set: &WalPages, last_frame: u32, last_sum: u64, salt: u8) -> Option<Vec<bool>> {
        let clean = set.trusted(WalHeader {
            last_frame,
            last_sum,
            salt: [salt; 8],
        })?;
        Some((1..=5).map(|p| clean.page(p)).collect())
    }

    /// [`view_summed`] with the checksum this process wrote for `last_frame` of `page`.
    fn view(set: &WalPages, last_frame: u32, page: u32, salt: u8) -> Option<Vec<bool>> {
        view_summed(set, last_frame, sum(0, u64::from(last_frame), page), salt)
    }

    #[test]
    fn the_pages_of_the_frames_written_here_are_not_read_from_the_file() {
        let set = WalPages::default();
        assert_eq!(
            view(&set, 0, 0, 1),
            Some(vec![true; 5]),
            "an empty WAL: every page"
        );
        assert_eq!(
            view(&set, 1, 2, 1),
            None,
            "frames of a generation not seen here"
        );
        set.wrote(&header(1), 0);
        frame(&set, 1, 2);
        frame(&set, 2, 4);
        frame(&set, 2, 4); // a frame written again within its transaction
        let clean = Some(vec![true, false, true, false, true]);
        assert_eq!(view(&set, 2, 4, 1), clean);
        assert_eq!(
            view(&set, 1, 2, 1),
            clean,
            "a snapshot before the last frame"
        );
        assert_eq!(
            view(&set, 3, 5, 1),
            None,
            "a committed frame not written here"
        );
        assert_eq!(view(&set, 2, 4, 9), None, "another generation's salts");
        // A new generation: the old pages are in the file.
        set.wrote(&header(2), 0);
        frame(&set, 1, 5);
        assert_eq!(
            view(&set, 1, 5, 2),
            Some(vec![true, true, true, true, false])
        );
    }

    /// Frames this process wrote and rolled back, then another writer's frames in their place
    /// (same generation, same frame numbers): their checksums differ, so the set is not
    /// trusted until this process writes those frames again.
    #[test]
    fn frames_another_writer_wrote_over_rolled_back_ones_are_not_trusted() {
        let set = WalPages::default();
        set.wrote(&header(1), 0);
        frame(&set, 1, 2);
        frame(&set, 2, 3); // spilled, then rolled back
        let theirs = sum(1, 2, 4); // another writer's frames 1 and 2 (page 4), committed
        assert_eq!(view_summed(&set, 2, theirs, 1), None);
        assert_eq!(
            view(&set, 2, 3, 1),
            Some(vec![true, false, false, true, true])
        );
        // This process writes frame 2 again (its next transaction): trusted with its checksum.
        set.wrote(&frame_header(theirs, 4), HEADER + FRAME_HEADER + PAGE);
        assert_eq!(
            view_summed(&set, 2, theirs, 1),
            Some(vec![true, false, false, false, true])
        );
    }

    #[test]
    fn a_write_it_cannot_follow_distrusts_the_set_until_the_next_generation() {
        // A frame after a gap (another process wrote the frames between).
        let set = WalPages::default();
        set.wrote(&header(1), 0);
        frame(&set, 1, 2);
        frame(&set, 3, 3);
        assert_eq!(view(&set, 1, 2, 1), None);
        set.wrote(&header(3), 0);
        frame(&set, 1, 2);
        assert_eq!(
            view(&set, 1, 2, 3),
            Some(vec![true, false, true, true, true])
        );
        // A write that begins inside a frame header's page number, a frame header cut short,
        // and a torn WAL header.
        set.wrote(&[0u8; 22], HEADER + FRAME_HEADER + PAGE + 2);
        assert_eq!(view(&set, 1, 2, 3), None);
        set.wrote(&header(4), 0);
        frame(&set, 1, 2);
        set.wrote(&[0u8; 16], HEADER + FRAME_HEADER + PAGE);
        assert_eq!(view(&set, 1, 2, 4), None);
        set.wrote(&header(4)[..16], 0);
        assert_eq!(view(&set, 1, 2, 4), None);
        // One write of two whole frames is followed.
        set.wrote(&header(5), 0);
        let mut two = vec![0u8; 2 * (FRAME_HEADER + PAGE) as usize];
        two[..24].copy_from_slice(&frame_header(sum(0, 1, 1), 1));
        two[(FRAME_HEADER + PAGE) as usize..][..24].copy_from_slice(&frame_header(sum(0, 2, 3), 3));
        set.wrote(&two, HEADER);
        assert_eq!(
            view(&set, 2, 3, 5),
            Some(vec![false, true, false, true, true])
        );
    }
}
