//! The main database file as a walk of its B-tree reads it (`tree_ahead.rs`, `direct.rs`):
//! its pages through the shared map, and the WAL-index header that says which of them a read
//! transaction may take from the file (`wal_pages.rs`).

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
}

/// `conn`'s main database file, or `None` if `conn` was not opened with this VFS or its file
/// has no map.
pub(in crate::sqlite) fn mapped(conn: &rusqlite::Connection) -> Option<Mapped<'_>> {
    let (file, map) = file_and_map(conn)?;
    Some(Mapped { file, map })
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
        let mut region: *mut c_void = std::ptr::null_mut();
        // SAFETY: `unix`'s xShmMap of the WAL index's first region, which a connection in WAL
        // mode within a read transaction has mapped (`bExtend` 0: nothing is made); the region
        // stays mapped while the connection stays open.
        let rc = unsafe {
            match (*state.unix).xShmMap {
                Some(shm_map) => shm_map(self.file, 0, 32 * 1024, 0, &raw mut region),
                None => ffi::SQLITE_ERROR,
            }
        };
        if rc != ffi::SQLITE_OK || region.is_null() {
            return None;
        }
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
}
