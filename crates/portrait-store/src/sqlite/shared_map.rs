//! A SQLite VFS for every connection of the store: SQLite's own `unix` VFS, except that
//! database pages are read through **one memory map of the file per process, kept for as long as
//! a connection has the file open**, instead of one map per connection that SQLite drops after
//! every commit.
//!
//! **Why.** With `mmap_size` set, each SQLite connection maps the database file itself, and at
//! the start of every read transaction that follows a commit (any write by any connection) it
//! unmaps the whole file and maps it again (`pagerBeginReadTransaction` → `xUnfetch(0)`). The
//! kernel then tears down the page tables of the whole mapping, and every page the next
//! lookups touch faults in again. With 10M accounts (a 2.8 GB file) and one writer making 560
//! sets/s, W2 fell from 4,300 to 760 requests/s, with the server's time in `unmap_page_range`
//! and page faults (BENCHMARKS.md, 2026-12-05 night). Here the map stays, so writes cost the
//! readers nothing but the pages that changed, and the connections share one set of page
//! tables instead of faulting the file in once each. One map is also what lets the file be
//! mapped in huge pages (`huge.rs`): a page that another map holds cannot be moved.
//!
//! **How.** [`register`] registers the VFS [`NAME`]: a copy of `unix` whose `xOpen` opens the
//! file with `unix` and then swaps in a copy of its I/O methods with four replaced:
//! * `xFetch` hands out a pointer into the shared map when the page lies within the file's
//!   known size (refreshed from `xFileSize` when a page lies beyond it; SQLite reads a page it
//!   cannot fetch with `xRead`, as it does past its own map), and has the cells of a leaf
//!   fetched into the CPU's caches ahead of SQLite's search of it (`page_ahead.rs`);
//! * `xUnfetch` of everything (SQLite's "the file may have changed") only refreshes the known
//!   size, so a file that shrank is never read past its end;
//! * `xClose` releases the file's share of the map;
//! * `xFileControl` keeps `mmap_size` from `unix` for a file with a map, so that `unix` never
//!   maps the file on its own (it would when a checkpoint hints at the file's size);
//!
//! and a WAL file's `xWrite` tells the database's [`WalPages`] of every write first
//! (`wal_pages.rs`), which [`Mapped::wal_view`] pairs with the WAL index's header for a
//! lookup.
//!
//! Every other method is `unix`'s, called with `unix`'s own file object, which sits at the start
//! of ours. The map is `PROT_READ` and `MAP_SHARED`: the kernel keeps it coherent with writes made
//! through the file (the writer's commits and the WAL checkpoints), exactly as for SQLite's own
//! maps. Pages that changed since a snapshot are read from the WAL, never from the map, as
//! before. Maps are shared by file identity (device and inode), so a file replaced under the
//! same path gets a map of its own. A map is made from SQLite's own descriptor of the file,
//! never from one of ours: closing any descriptor of a file releases all of the process's POSIX
//! locks on it, SQLite's included. The map starts on a 2 MiB boundary, so that it can be mapped
//! in huge pages (`huge.rs`).

use std::ffi::{c_char, c_int, c_void, CStr};
use std::os::unix::fs::MetadataExt;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, PoisonError};

use rusqlite::ffi;

use crate::{Result, StoreError};

use super::per_file::PerFile;
use super::wal_pages::WalPages;

mod mapped;

pub(super) use mapped::{mapped, Kept, Mapped};

/// The VFS's name, for `Connection::open_with_flags_and_vfs`.
pub(super) const NAME: &str = "portrait-shared-map";
const NAME_C: &CStr = c"portrait-shared-map";

/// Address space reserved for each file's map: the largest file read through it (pages beyond
/// are read with `pread`). Address space only; the kernel's page cache holds the pages.
const RESERVED: usize = super::open::MMAP_BYTES as usize;

/// Registers the VFS (once per process).
///
/// # Errors
/// [`StoreError::Unavailable`] if SQLite has no default VFS or refuses the registration.
pub(super) fn register() -> Result<()> {
    static REGISTERED: OnceLock<std::result::Result<(), String>> = OnceLock::new();
    REGISTERED
        .get_or_init(|| {
            // SAFETY: sqlite3_vfs_find only reads SQLite's VFS list; a null name asks for the
            // default VFS, which SQLite never unregisters.
            let unix = unsafe { ffi::sqlite3_vfs_find(std::ptr::null()) };
            if unix.is_null() {
                return Err("SQLite has no default VFS".into());
            }
            UNIX.get_or_init(|| Unix(unix));
            // SAFETY: `unix` points to a registered VFS, which lives as long as the process.
            let mut vfs = unsafe { *unix };
            let own = c_int::try_from(state_offset(vfs.szOsFile) + std::mem::size_of::<State>())
                .map_err(|e| e.to_string())?;
            vfs.szOsFile = own;
            vfs.pNext = std::ptr::null_mut();
            vfs.zName = NAME_C.as_ptr();
            vfs.xOpen = Some(open);
            // The other methods stay `unix`'s: none of them reads the VFS object it is given.
            let vfs: &'static mut ffi::sqlite3_vfs = Box::leak(Box::new(vfs));
            // SAFETY: `vfs` lives for the rest of the process, as SQLite requires.
            let rc = unsafe { ffi::sqlite3_vfs_register(vfs, 0) };
            if rc == ffi::SQLITE_OK {
                Ok(())
            } else {
                Err(format!("sqlite3_vfs_register failed ({rc})"))
            }
        })
        .clone()
        .map_err(|e| StoreError::Unavailable(format!("the {NAME} VFS: {e}").into()))
}

/// SQLite's `unix` VFS.
struct Unix(*mut ffi::sqlite3_vfs);
// SAFETY: a registered VFS is immutable and SQLite's VFS methods are thread-safe.
unsafe impl Send for Unix {}
unsafe impl Sync for Unix {}
static UNIX: OnceLock<Unix> = OnceLock::new();

/// What we keep after `unix`'s file object, in the memory SQLite allocates for each file.
struct State {
    /// `unix`'s I/O methods for this file.
    unix: *const ffi::sqlite3_io_methods,
    /// The shared map, for a main database file.
    map: Option<Arc<SharedMap>>,
    /// The `mmap_size` SQLite last set for the file (see [`file_control`]).
    mmap_limit: AtomicI64,
    /// The pages written to the database's WAL (`wal_pages.rs`), for a main database file and
    /// its WAL file.
    wal: Option<Arc<WalPages>>,
}

/// Where [`State`] lies in a file object: after `unix`'s `sz_os_file` bytes, aligned.
fn state_offset(sz_os_file: c_int) -> usize {
    let align = std::mem::align_of::<State>();
    usize::try_from(sz_os_file).unwrap_or(0).div_ceil(align) * align
}

/// # Safety
/// `file` must be a file object of this VFS whose [`State`] has been written.
unsafe fn state<'a>(file: *mut ffi::sqlite3_file) -> &'a State {
    let unix = UNIX.get().expect("registered before any open").0;
    // SAFETY: per the caller, the state lies at this offset of the object SQLite allocated.
    unsafe {
        &*file
            .cast::<u8>()
            .add(state_offset((*unix).szOsFile))
            .cast::<State>()
    }
}

/// One file's map, shared by all of this process's connections that have the file open.
struct SharedMap {
    base: *const u8,
    /// The file's size as last seen: pages up to it are fetched from the map.
    size: AtomicI64,
    /// Huge pages (`huge.rs`).
    huge: super::huge::Progress,
}
// SAFETY: the map is read-only and lives until the last `Arc` is dropped.
unsafe impl Send for SharedMap {}
unsafe impl Sync for SharedMap {}

impl Drop for SharedMap {
    fn drop(&mut self) {
        // SAFETY: `base` is the start of a mapping of `RESERVED` bytes that nothing else unmaps;
        // no connection holds a pointer into it any more (each holds the `Arc` while open).
        unsafe { libc::munmap(self.base.cast_mut().cast(), RESERVED) };
    }
}

/// The maps by file.
static MAPS: PerFile<SharedMap> = PerFile::new();

/// The descriptor `unix` opened for `file`: the field after three pointers in its `unixFile`
/// (`pMethod`, `pVfs`, `pInode`, then `int h`, unchanged for many releases). Checked by the
/// caller against the path before use.
///
/// # Safety
/// `file` is a file object `unix`'s xOpen has just opened.
unsafe fn descriptor_of(file: *mut ffi::sqlite3_file) -> c_int {
    // SAFETY: per the caller, `file` starts with a `unixFile`, at least this large.
    unsafe {
        file.cast::<u8>()
            .add(3 * std::mem::size_of::<*const c_void>())
            .cast::<c_int>()
            .read()
    }
}

/// The map of the database file SQLite opened as descriptor `fd` at `path` (shared with the
/// other connections that have it open), or `None` if it cannot be mapped (pages are then read
/// with `pread`).
///
/// The map is made from SQLite's own descriptor: opening and closing another descriptor of the
/// file would release every POSIX lock this process holds on it (SQLite's locks, for all its
/// connections). The descriptor is used only if it is the file at `path`.
fn map_of(fd: c_int, path: &CStr) -> Option<Arc<SharedMap>> {
    use std::os::unix::ffi::OsStrExt;
    use std::os::unix::io::FromRawFd;
    let path = std::path::Path::new(std::ffi::OsStr::from_bytes(path.to_bytes()));
    // SAFETY: borrowed for `fstat` only; `ManuallyDrop` never closes SQLite's descriptor.
    let file = std::mem::ManuallyDrop::new(unsafe { std::fs::File::from_raw_fd(fd) });
    let meta = file.metadata().ok()?;
    let named = std::fs::metadata(path).ok()?;
    if !meta.is_file() || (meta.dev(), meta.ino()) != (named.dev(), named.ino()) {
        tracing::warn!(path = %path.display(), "cannot find the database file's descriptor; lookups read it with pread");
        return None;
    }
    MAPS.get_or_make(&meta, || new_map(fd, path, meta.len()))
}

/// A new map of `len` bytes of the file open as `fd` at `path` (for the log), or `None`.
fn new_map(fd: c_int, path: &std::path::Path, len: u64) -> Option<Arc<SharedMap>> {
    // SAFETY: `fd` is the file's open descriptor; bytes past the file's end are never handed
    // out (see `fetch`). The mapping outlives the descriptor, as mmap allows.
    let base = match unsafe { super::huge::map_aligned(fd, RESERVED) } {
        Ok(base) => base,
        Err(error) => {
            tracing::warn!(%error, path = %path.display(),
                "cannot map the database file; lookups read it with pread");
            return None;
        }
    };
    let huge = super::huge::Progress::default();
    // SAFETY: `base` is the map just made, of `RESERVED` bytes.
    let on = super::huge::wanted(len) && unsafe { super::huge::advise(base, RESERVED, true) };
    huge.on.store(on, Ordering::Release);
    Some(Arc::new(SharedMap {
        base,
        size: AtomicI64::new(i64::try_from(len).unwrap_or(0)),
        huge,
    }))
}

/// The I/O methods of files opened by this VFS: `unix`'s (`orig`), with [`fetch`], [`unfetch`],
/// [`close`] and [`file_control`], and for a WAL file (`wal`) [`write_wal`]. One leaked copy
/// per distinct `orig` and kind.
fn methods_for(orig: *const ffi::sqlite3_io_methods, wal: bool) -> *const ffi::sqlite3_io_methods {
    struct Table(
        *const ffi::sqlite3_io_methods,
        bool,
        *const ffi::sqlite3_io_methods,
    );
    // SAFETY: both point to immutable tables that live for the rest of the process.
    unsafe impl Send for Table {}
    static TABLES: Mutex<Vec<Table>> = Mutex::new(Vec::new());
    let mut tables = TABLES.lock().unwrap_or_else(PoisonError::into_inner);
    if let Some(t) = tables.iter().find(|t| t.0 == orig && t.1 == wal) {
        return t.2;
    }
    // SAFETY: `orig` is the methods table `unix` just gave an open file; it is static.
    let mut ours = unsafe { *orig };
    ours.xClose = Some(close);
    ours.xFileControl = Some(file_control);
    if ours.iVersion >= 3 {
        ours.xFetch = Some(fetch);
        ours.xUnfetch = Some(unfetch);
    }
    if wal {
        ours.xWrite = Some(write_wal);
    }
    let ours: &'static ffi::sqlite3_io_methods = Box::leak(Box::new(ours));
    tables.push(Table(orig, wal, ours));
    ours
}

/// `unix`'s write, after telling the database's [`WalPages`] of it.
unsafe extern "C" fn write_wal(
    file: *mut ffi::sqlite3_file,
    buf: *const c_void,
    amount: c_int,
    offset: ffi::sqlite3_int64,
) -> c_int {
    // SAFETY: SQLite passes a WAL file of this VFS and `amount` readable bytes at `buf`.
    unsafe {
        let state = state(file);
        if let (Some(wal), Ok(len), Ok(at)) =
            (&state.wal, usize::try_from(amount), u64::try_from(offset))
        {
            wal.wrote(std::slice::from_raw_parts(buf.cast::<u8>(), len), at);
        }
        match (*state.unix).xWrite {
            Some(unix_write) => unix_write(file, buf, amount, offset),
            None => ffi::SQLITE_IOERR_WRITE,
        }
    }
}

unsafe extern "C" fn open(
    _vfs: *mut ffi::sqlite3_vfs,
    name: *const c_char,
    file: *mut ffi::sqlite3_file,
    flags: c_int,
    out_flags: *mut c_int,
) -> c_int {
    let unix = UNIX.get().expect("registered before any open").0;
    // SAFETY: `file` has room for `unix`'s file object (at its start) and our state after it;
    // `unix`'s xOpen is called with its own VFS object, as it expects.
    unsafe {
        let Some(unix_open) = (*unix).xOpen else {
            return ffi::SQLITE_ERROR;
        };
        let rc = unix_open(unix, name, file, flags, out_flags);
        let orig = (*file).pMethods;
        if rc != ffi::SQLITE_OK || orig.is_null() {
            return rc;
        }
        let main = flags & ffi::SQLITE_OPEN_MAIN_DB != 0 && !name.is_null();
        let is_wal = flags & ffi::SQLITE_OPEN_WAL != 0 && !name.is_null();
        let map = if main {
            map_of(descriptor_of(file), CStr::from_ptr(name))
        } else {
            None
        };
        let wal = if main || is_wal {
            wal_pages_of(CStr::from_ptr(name), is_wal)
        } else {
            None
        };
        if map.is_some() {
            // `unix` starts from SQLite's default `mmap_size`; with none it never maps the file
            // (see `file_control`, which keeps later settings from it).
            if let Some(control) = (*orig).xFileControl {
                let mut none: i64 = 0;
                control(file, ffi::SQLITE_FCNTL_MMAP_SIZE, (&raw mut none).cast());
            }
        }
        let at = file.cast::<u8>().add(state_offset((*unix).szOsFile));
        at.cast::<State>().write(State {
            unix: orig,
            map,
            mmap_limit: AtomicI64::new(0),
            wal,
        });
        (*file).pMethods = methods_for(orig, is_wal);
        rc
    }
}

unsafe extern "C" fn close(file: *mut ffi::sqlite3_file) -> c_int {
    // SAFETY: SQLite closes each file it opened through `open` once; the state was written
    // there and is read out (dropped) here, after `unix` has closed the file.
    unsafe {
        let unix = UNIX.get().expect("registered before any open").0;
        let at = file.cast::<u8>().add(state_offset((*unix).szOsFile));
        let state = at.cast::<State>().read();
        match (*state.unix).xClose {
            Some(unix_close) => unix_close(file),
            None => ffi::SQLITE_OK,
        }
    }
}

/// Whether `conn`'s main database file is mapped in huge pages (`huge.rs`).
pub(super) fn is_huge(conn: &rusqlite::Connection) -> bool {
    file_and_map(conn).is_some_and(|(_, map)| map.huge.on.load(Ordering::Acquire))
}

/// Takes back the advice of huge pages for `conn`'s file.
pub(super) fn stop_huge(conn: &rusqlite::Connection) {
    if let Some((_, map)) = file_and_map(conn) {
        map.huge.on.store(false, Ordering::Release);
        // SAFETY: the whole map, made by `new_map`.
        unsafe { super::huge::advise(map.base, RESERVED, false) };
    }
}

/// One step of rehousing `conn`'s file in huge pages: at most `budget` chunks of cached pages
/// (`huge.rs`). Also takes back the advice for a file grown past what huge pages are for.
pub(super) fn rehouse(conn: &rusqlite::Connection, budget: usize) -> super::huge::Step {
    use super::huge::{Step, CHUNK};
    let Some((file, map)) = file_and_map(conn) else {
        return Step::Off;
    };
    if !map.huge.on.load(Ordering::Acquire) {
        return Step::Off;
    }
    // SAFETY: `file` is `conn`'s open main database file, of this VFS, with this map.
    let size = u64::try_from(unsafe { refresh_size(file, state(file), map) }).unwrap_or(0);
    if !super::huge::wanted(size) {
        tracing::info!(
            bytes = size,
            "the database file no longer fits in half the memory; lookups map it in small pages"
        );
        stop_huge(conn);
        return Step::Off;
    }
    let chunks = usize::try_from(size).unwrap_or(usize::MAX).min(RESERVED) / CHUNK;
    // SAFETY: `file` is `conn`'s open main database file, opened by `unix`.
    let fd = unsafe { descriptor_of(file) };
    let mut moved = super::huge::Moved::default();
    while moved.chunks < budget {
        let Some(c) = map.huge.claim(chunks) else {
            return Step::AtEnd(moved);
        };
        // SAFETY: the map is aligned to a chunk (`new_map`), the chunk lies within the file's
        // known size, and `fd` stays open while `conn` is (the caller's thread holds it).
        moved.add(unsafe { super::huge::rehouse_chunk(map.base, c, fd) });
    }
    Step::More(moved)
}

/// `conn`'s main database file object and its shared map, if `conn` was opened with this VFS
/// and the file has a map.
fn file_and_map(conn: &rusqlite::Connection) -> Option<(*mut ffi::sqlite3_file, &SharedMap)> {
    let control = |op: c_int, out: *mut c_void| {
        // SAFETY: `conn.handle()` is an open connection used only on this thread; the file
        // controls used here write one pointer to `out`.
        unsafe { ffi::sqlite3_file_control(conn.handle(), c"main".as_ptr(), op, out) }
    };
    let mut vfs: *mut ffi::sqlite3_vfs = std::ptr::null_mut();
    let mut file: *mut ffi::sqlite3_file = std::ptr::null_mut();
    if control(ffi::SQLITE_FCNTL_VFS_POINTER, (&raw mut vfs).cast()) != ffi::SQLITE_OK
        || control(ffi::SQLITE_FCNTL_FILE_POINTER, (&raw mut file).cast()) != ffi::SQLITE_OK
        || vfs.is_null()
        || file.is_null()
    {
        return None;
    }
    // SAFETY: a registered VFS, whose name lives as long as it; a file of this VFS, whose state
    // its `open` wrote and which lives as long as `conn` keeps it open.
    unsafe {
        if (*vfs).zName.is_null() || CStr::from_ptr((*vfs).zName) != NAME_C {
            return None;
        }
        Some((file, state(file).map.as_deref()?))
    }
}

/// The [`WalPages`] of the database at `name`, or of the WAL file at `name` (`wal`: the
/// database's path and `-wal`).
fn wal_pages_of(name: &CStr, wal: bool) -> Option<Arc<WalPages>> {
    use std::os::unix::ffi::OsStrExt;
    let mut path = name.to_bytes();
    if wal {
        path = path.strip_suffix(b"-wal")?;
    }
    WalPages::of_db(std::path::Path::new(std::ffi::OsStr::from_bytes(path)))
}

/// The file's size from `unix`, stored as the map's known size.
///
/// # Safety
/// `file` is an open file of this VFS with a map.
unsafe fn refresh_size(file: *mut ffi::sqlite3_file, state: &State, map: &SharedMap) -> i64 {
    let mut size: ffi::sqlite3_int64 = 0;
    // SAFETY: `unix`'s xFileSize on its own open file object.
    let rc = unsafe {
        match (*state.unix).xFileSize {
            Some(file_size) => file_size(file, &mut size),
            None => ffi::SQLITE_ERROR,
        }
    };
    // Unknown: fetch nothing more from the map until a later look succeeds.
    let size = if rc == ffi::SQLITE_OK { size } else { 0 };
    map.size.store(size, Ordering::Release);
    size
}

unsafe extern "C" fn fetch(
    file: *mut ffi::sqlite3_file,
    offset: ffi::sqlite3_int64,
    amount: c_int,
    out: *mut *mut c_void,
) -> c_int {
    // SAFETY: SQLite passes a file of this VFS and a place for the pointer; a pointer is handed
    // out only for bytes within both the reserved map and the file's size.
    unsafe {
        *out = std::ptr::null_mut();
        let state = state(file);
        let Some(map) = &state.map else {
            return ffi::SQLITE_OK;
        };
        let end = offset + ffi::sqlite3_int64::from(amount);
        let within_map = offset >= 0 && usize::try_from(end).is_ok_and(|e| e <= RESERVED);
        if within_map
            && (end <= map.size.load(Ordering::Acquire) || end <= refresh_size(file, state, map))
        {
            let page = map.base.add(offset as usize);
            if offset > 0 {
                // (The first page holds the file header; it is never a leaf of an account.)
                let _ = super::page_ahead::leaf(page, amount as usize);
            }
            *out = page.cast_mut().cast();
        }
        ffi::SQLITE_OK
    }
}

/// `unix`'s file controls, except that a file with a shared map keeps `mmap_size` to itself:
/// given to `unix`, a writer's connection would map the file again on its own (`unix` maps it
/// when a checkpoint hints at the file's size, and then reads pages from that map), which would
/// hold the pages that `huge.rs` moves into huge pages, and is torn down after commits. SQLite's
/// pager decides to fetch pages from its own setting, so fetches still reach [`fetch`].
unsafe extern "C" fn file_control(
    file: *mut ffi::sqlite3_file,
    op: c_int,
    arg: *mut c_void,
) -> c_int {
    // SAFETY: SQLite passes a file of this VFS and the control's argument; `SQLITE_FCNTL_MMAP_SIZE`'s
    // is an `i64` to read and, for a negative value (a question), to answer.
    unsafe {
        let state = state(file);
        if op == ffi::SQLITE_FCNTL_MMAP_SIZE && state.map.is_some() && !arg.is_null() {
            let limit = arg.cast::<i64>();
            if *limit >= 0 {
                state.mmap_limit.store(*limit, Ordering::Relaxed);
            }
            *limit = state.mmap_limit.load(Ordering::Relaxed);
            return ffi::SQLITE_OK;
        }
        match (*state.unix).xFileControl {
            Some(control) => control(file, op, arg),
            None => ffi::SQLITE_NOTFOUND,
        }
    }
}

unsafe extern "C" fn unfetch(
    file: *mut ffi::sqlite3_file,
    _offset: ffi::sqlite3_int64,
    page: *mut c_void,
) -> c_int {
    // SAFETY: as in `fetch`. A page handed out needs no release; "release everything" (a null
    // page) means the file may have changed size since: look again.
    unsafe {
        if page.is_null() {
            let state = state(file);
            if let Some(map) = &state.map {
                refresh_size(file, state, map);
            }
        }
    }
    ffi::SQLITE_OK
}

#[cfg(test)]
mod tests {
    use super::*;

    /// How many mappings of `path` this process has, and how many KiB of them are resident.
    fn mappings_of(path: &std::path::Path) -> (usize, u64) {
        let path = path.canonicalize().unwrap();
        let smaps = std::fs::read_to_string("/proc/self/smaps").unwrap();
        let (mut count, mut rss, mut ours) = (0, 0, false);
        for line in smaps.lines() {
            if line.contains('-') && line.split_whitespace().count() >= 5 {
                ours = line.ends_with(path.to_str().unwrap());
                count += usize::from(ours);
            } else if let Some(kib) = line.strip_prefix("Rss:").filter(|_| ours) {
                rss += kib.trim().trim_end_matches(" kB").parse::<u64>().unwrap();
            }
        }
        (count, rss)
    }

    /// Inserts rows `from..=to` of 300 random bytes each into table `t (k, v)`.
    pub(super) fn insert_rows(writer: &rusqlite::Connection, from: i64, to: i64) {
        writer
            .execute(
                "with recursive n(k) as (select ?1 union all select k + 1 from n where k < ?2)
                 insert into t select k, randomblob(300) from n",
                [from, to],
            )
            .unwrap();
    }

    #[test]
    fn connections_share_one_map_that_follows_the_file_as_it_grows() {
        register().unwrap();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("m.db");
        let writer = rusqlite::Connection::open(&path).unwrap();
        writer
            .execute_batch(
                "pragma journal_mode = wal;
                 create table t (k integer primary key, v blob not null);",
            )
            .unwrap();
        let insert = |from: i64, to: i64| {
            insert_rows(&writer, from, to);
            writer
                .execute_batch("pragma wal_checkpoint(truncate)")
                .unwrap();
        };
        insert(1, 1000);
        let flags = rusqlite::OpenFlags::SQLITE_OPEN_READ_WRITE;
        let readers: Vec<rusqlite::Connection> = (0..3)
            .map(|_| {
                let c = rusqlite::Connection::open_with_flags_and_vfs(&path, flags, NAME).unwrap();
                c.pragma_update(None, "mmap_size", 1i64 << 30).unwrap();
                c
            })
            .collect();
        let sum = |c: &rusqlite::Connection| -> (i64, i64) {
            c.query_row("select count(*), sum(length(v)) from t", [], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })
            .unwrap()
        };
        for r in &readers {
            assert_eq!(sum(r), (1000, 300_000));
        }
        let (maps, resident) = mappings_of(&path);
        assert_eq!(
            maps, 1,
            "three connections, one map (the writer's own connection maps nothing: mmap_size 0)"
        );
        assert!(resident > 0, "the pages were read through the map");
        // The file grows (the checkpoint copies the new pages into it): the readers see every
        // row, the new pages through the same map.
        insert(1001, 5000);
        for r in &readers {
            assert_eq!(sum(r), (5000, 1_500_000));
        }
        assert_eq!(mappings_of(&path).0, 1);
        drop(readers);
        assert_eq!(
            mappings_of(&path).0,
            0,
            "the last connection closed, the map is gone"
        );
    }

    #[test]
    fn a_file_replaced_under_the_same_path_gets_a_map_of_its_own() {
        register().unwrap();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("r.db");
        let flags =
            rusqlite::OpenFlags::SQLITE_OPEN_READ_WRITE | rusqlite::OpenFlags::SQLITE_OPEN_CREATE;
        let value = |c: &rusqlite::Connection| -> String {
            c.query_row("select v from t", [], |r| r.get(0)).unwrap()
        };
        // A new file at `path` holding `v`, through this VFS and its map.
        let create = |v: &str| {
            let c = rusqlite::Connection::open_with_flags_and_vfs(&path, flags, NAME).unwrap();
            c.pragma_update(None, "mmap_size", 1i64 << 30).unwrap();
            c.execute_batch("create table t (v text)").unwrap();
            c.execute("insert into t values (?1)", [v]).unwrap();
            c
        };
        let first = create("first");
        assert_eq!(value(&first), "first");
        // Another file takes the path while `first` keeps the old one (and its map) open.
        std::fs::rename(&path, dir.path().join("old.db")).unwrap();
        let second = create("second");
        assert_eq!(value(&second), "second");
        assert_eq!(value(&first), "first");
    }
}
