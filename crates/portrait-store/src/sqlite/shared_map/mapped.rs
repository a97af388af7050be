//! The main database file as a walk of its B-tree reads it (`tree_ahead.rs`, `direct.rs`):
//! its pages through the shared map, and the WAL-index header that says which of them a read
//! transaction may take from the file (`wal_pages.rs`).

use std::cell::Cell;
use std::ffi::c_void;
use std::sync::atomic::Ordering;

use rusqlite::ffi;

use super::super::wal_pages::{WalHeader, WalPages};
use super::{file_and_map, refresh_size, state, SharedMap, State, RESERVED};

/// The main database file of a connection opened with this VFS, and its map: what a walk of
/// the file reads ([`Mapped::pages`]) and checks against ([`Mapped::wal_view`]). Both stay
/// valid while the connection stays open.
pub(in crate::sqlite) struct Mapped<'c> {
    file: *mut ffi::sqlite3_file,
    map: &'c SharedMap,
    /// The WAL index's first region, once `unix`'s `xShmMap` has answered it (else null).
    region: Cell<*mut c_void>,
}

/// `conn`'s main database file, or `None` if `conn` was not opened with this VFS or its file
/// has no map.
pub(in crate::sqlite) fn mapped(conn: &rusqlite::Connection) -> Option<Mapped<'_>> {
    let (file, map) = file_and_map(conn)?;
    Some(Mapped {
        file,
        map,
        region: Cell::new(std::ptr::null_mut()),
    })
}

/// What [`mapped`] and [`Mapped::wal_view`] find of one connection, kept beside it by a
/// connection that reads one account after another (`lookup/inline.rs`), so that a read makes
/// no call into SQLite to find them again: two file controls (each looks the schema up by
/// name) and `unix`'s `xShmMap` (a mutex and a `sysconf`) measured about 0.5 µs of a W1 read
/// that misses the cache (`perf`, BENCHMARKS.md "session 22").
///
/// Both stay valid while the connection stays open and keeps its `journal_mode`: SQLite keeps
/// the main database file object from open to close; `unix` unmaps the WAL index's regions only
/// when the last connection of the process lets go of it (`unixShmPurge`, from `unixShmUnmap`,
/// which a connection reaches only when it closes its WAL: at its close, or when it changes its
/// own `journal_mode`); a checkpoint, a WAL restart or another connection's close rewrites the
/// index in place. No other connection can take a file out of WAL mode while this one reads it
/// (that needs an exclusive lock, which its shared lock refuses). An inline connection runs
/// nothing but its reads.
#[derive(Default)]
pub(in crate::sqlite) struct Kept {
    /// The connection they were found for (`sqlite3*`; null: nothing found yet).
    db: usize,
    file: usize,
    region: usize,
}

impl Kept {
    /// `conn`'s main database file as [`mapped`] finds it, from what was kept if it was kept
    /// for a connection at `conn`'s address (else found anew and kept).
    ///
    /// # Safety
    /// `self` is new, or has been used only with `conn`, which has stayed open since and has
    /// not changed its `journal_mode` (a connection opened after another closed may have its
    /// address; a change of `journal_mode` unmaps the WAL index). Keep it beside `conn`.
    pub(in crate::sqlite) unsafe fn mapped<'c>(
        &mut self,
        conn: &'c rusqlite::Connection,
    ) -> Option<Mapped<'c>> {
        // SAFETY: only the handle's address is taken, as the connection's identity.
        let db = unsafe { conn.handle() } as usize;
        if self.db != db || self.file == 0 {
            let found = mapped(conn)?;
            *self = Kept {
                db,
                file: found.file as usize,
                region: 0,
            };
            return Some(found);
        }
        let file = self.file as *mut ffi::sqlite3_file;
        // SAFETY: per the caller, `file` is `conn`'s main database file object, found by
        // `mapped` (so of this VFS, with a map), which SQLite keeps while `conn` is open.
        let map = unsafe { state(file) }.map.as_deref()?;
        Some(Mapped {
            file,
            map,
            region: Cell::new(self.region as *mut c_void),
        })
    }

    /// Keeps the WAL index's region that `file` (made by [`Kept::mapped`]) found, if any.
    pub(in crate::sqlite) fn keep(&mut self, file: &Mapped<'_>) {
        if file.file as usize == self.file {
            self.region = file.region.get() as usize;
        }
    }
}

impl<'c> Mapped<'c> {
    /// The mapped pages, as far as the file's size is now (`look`: an `fstat`) or was when
    /// last looked at (else: a page past it is one that walks leave to SQLite), for
    /// [`super::super::tree_ahead::ahead`]. The file never shrinks while it is open here (the store
    /// runs no `VACUUM` and has no `auto_vacuum`).
    pub(in crate::sqlite) fn pages(&self, look: bool) -> Option<super::super::tree_ahead::Pages> {
        let size = match look {
            // SAFETY: `file` is an open main database file, of this VFS, with this map.
            true => unsafe { refresh_size(self.file, state(self.file), self.map) },
            false => self.map.size.load(Ordering::Acquire),
        };
        let len = usize::try_from(size).unwrap_or(0).min(RESERVED);
        // SAFETY: the first `len` bytes of the map lie within the file, which stays open (and
        // so mapped) while the connection is, and never shrinks.
        unsafe { super::super::tree_ahead::Pages::new(self.map.base, len) }
    }

    /// The file's [`WalPages`] and the WAL-index header as the connection finds it now (call
    /// it within a read transaction: the header is then at or past the transaction's
    /// snapshot), or `None` if either is not to be had or the header is being written.
    pub(in crate::sqlite) fn wal_view(&self) -> Option<(&'c WalPages, WalHeader)> {
        // SAFETY: an open main database file of this VFS, whose state lives while it is open.
        let state: &'c State = unsafe { state(self.file) };
        let wal = state.wal.as_deref()?;
        let region = self.region()?;
        // The header (walformat.html: the "WAL-index header") twice, 48 bytes each, in the
        // machine's byte order. SQLite writes the second copy, then (after a barrier) the
        // first, and reads them in the other order (`walIndexTryHdr`): two equal copies are
        // whole.
        let mut copies = [0u8; 96];
        for (i, b) in copies.iter_mut().enumerate() {
            if i == 48 {
                std::sync::atomic::fence(Ordering::Acquire);
            }
            // SAFETY: within the mapped region (32 KiB).
            *b = unsafe { std::ptr::read_volatile(region.cast::<u8>().add(i)) };
        }
        let (first, second) = copies.split_at(48);
        let word = |at: usize| u32::from_ne_bytes(first[at..at + 4].try_into().unwrap_or_default());
        if first != second || word(0) != 3_007_000 || first[12] != 1 {
            return None;
        }
        Some((
            wal,
            WalHeader {
                last_frame: word(16),
                last_sum: (u64::from(word(24)) << 32) | u64::from(word(28)),
                salt: first[32..40].try_into().ok()?,
            },
        ))
    }

    /// The WAL index's first region: the one found before, or `unix`'s `xShmMap` of it.
    fn region(&self) -> Option<*mut c_void> {
        if !self.region.get().is_null() {
            return Some(self.region.get());
        }
        // SAFETY: an open main database file of this VFS, whose state lives while it is open.
        let state: &'c State = unsafe { state(self.file) };
        let mut region: *mut c_void = std::ptr::null_mut();
        // SAFETY: `unix`'s xShmMap of the WAL index's first region, which a connection in WAL
        // mode within a read transaction has mapped (`bExtend` 0: nothing is made); the region
        // stays mapped while the connection stays open and keeps its `journal_mode` ([`Kept`]).
        let rc = unsafe {
            match (*state.unix).xShmMap {
                Some(shm_map) => shm_map(self.file, 0, 32 * 1024, 0, &raw mut region),
                None => ffi::SQLITE_ERROR,
            }
        };
        if rc != ffi::SQLITE_OK || region.is_null() {
            return None;
        }
        self.region.set(region);
        Some(region)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A [`Kept`] found once keeps answering what SQLite answers: the same file object, and
    /// the same WAL-index region and header as a fresh `xShmMap`, after other connections
    /// closed and opened, the WAL grew over several regions, and a checkpoint emptied it.
    #[test]
    fn what_is_kept_stays_what_sqlite_finds() {
        super::super::register().unwrap();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("k.db");
        let write = |from: i64, to: i64, truncate: bool| {
            let writer = rusqlite::Connection::open(&path).unwrap();
            writer
                .execute_batch(
                    "pragma journal_mode = wal; pragma wal_autocheckpoint = 0;
                     create table if not exists t (k integer primary key, v blob not null);",
                )
                .unwrap();
            super::super::tests::insert_rows(&writer, from, to);
            if truncate {
                writer
                    .execute_batch("pragma wal_checkpoint(truncate)")
                    .unwrap();
            }
        };
        write(1, 100, true);
        let reader = crate::sqlite::lookup::connect(&path).unwrap();
        let other = crate::sqlite::lookup::connect(&path).unwrap();
        // What a fresh look finds, and what the kept one does, in one read transaction.
        let look = |kept: &mut Kept| {
            reader
                .execute_batch("begin; select count(*) from t;")
                .unwrap();
            let fresh = mapped(&reader).unwrap();
            let fresh_view = fresh.wal_view().map(|(_, h)| h);
            // SAFETY: `kept` is used with `reader` alone, which stays open in WAL mode.
            let kept_file = unsafe { kept.mapped(&reader) }.unwrap();
            let kept_view = kept_file.wal_view().map(|(_, h)| h);
            kept.keep(&kept_file);
            assert_eq!(kept_file.file, fresh.file);
            assert_eq!(kept_file.region.get(), fresh.region.get());
            assert!(fresh_view.is_some());
            assert_eq!(kept_view, fresh_view);
            reader.execute_batch("commit").unwrap();
            kept_view.unwrap()
        };
        let mut kept = Kept::default();
        let first = look(&mut kept);
        assert_ne!(kept.region, 0, "the region is kept");
        // Another connection closes; writers come and go; the WAL grows past its first
        // regions (32 KiB of index each: 4,096 frames), then is checkpointed and emptied.
        drop(other);
        write(101, 120_000, false);
        let grown = look(&mut kept);
        assert!(grown.last_frame > 8_192, "{} frames", grown.last_frame);
        write(120_001, 120_010, true);
        let emptied = look(&mut kept);
        assert_eq!(emptied.last_frame, 0);
        assert_ne!(emptied.salt, first.salt, "a new generation of the WAL");
        // Kept for another connection: found anew for this one.
        let third = crate::sqlite::lookup::connect(&path).unwrap();
        // SAFETY: `kept` was used with `reader`, which is open; `third` is another connection.
        let found = unsafe { kept.mapped(&third) }.unwrap();
        assert_eq!(found.file, mapped(&third).unwrap().file);
        assert_ne!(found.file, mapped(&reader).unwrap().file);
        assert_eq!(
            kept.region, 0,
            "nothing kept of the other connection's index yet"
        );
    }
}
