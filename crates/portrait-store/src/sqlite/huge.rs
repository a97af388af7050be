//! Huge pages for the lookups' shared map of the database file (`shared_map.rs`): 2 MiB pages
//! instead of 4 KiB, so that the CPU's TLB covers the whole file and a search's pages cost a
//! cache miss each instead of a page-table walk and a cache miss.
//!
//! **Why.** With 10M accounts the file is 2.8 GB, 700,000 pages of 4 KiB; the pages a batch's
//! searches touch are almost never in the TLB, and each first touch walked the page tables
//! before it could load the line. Mapped in 2 MiB pages, the file is 1,400 TLB entries. At 10M,
//! with the searches walked ahead (`tree_ahead.rs`), W2 +3 to +8 % and W1 +8 % in interleaved
//! runs (BENCHMARKS.md, "2026-12-06 (session 17)").
//!
//! **How.** Linux maps a file's pages huge when the page cache holds them in 2 MiB folios and
//! the mapping asked for it (`MADV_HUGEPAGE`, on a map aligned to 2 MiB): a fault then reads a
//! whole 2 MiB folio. That needs a filesystem with large folios (XFS since Linux 5.18, ext4
//! since 6.16); elsewhere the advice changes nothing. Pages that are already cached in small
//! folios (written by the writer, or read before the node started) stay small, so a
//! [`Rehouser`] thread goes through the file once, 2 MiB at a time, and for each chunk of which
//! some page is cached and that is not mapped huge already, writes out its dirty pages, drops
//! the map's entries and the cached copy of the chunk (`POSIX_FADV_DONTNEED` drops clean pages
//! only) and reads it back, now as one folio. It stops at once if the first chunks do not come
//! back huge. A chunk it has passed is not looked at again.
//!
//! **When.** Unless `[store] huge_pages = false`, and only while the file fits in half of the
//! memory (the machine's or the cgroup's limit): a fault reads 2 MiB, which for a file much
//! larger than memory would read 512 times what a lookup needs. A file that grows past it has
//! the advice taken back (new faults map small pages; folios already huge stay so).
//!
//! **The price.** Sets are dearer: W3 at 10M −10 to −12 % in the same interleaved runs. (The
//! kernel counts a whole 2 MiB folio dirty for the one page a checkpoint writes in it, so
//! writeback throttling comes sooner; that is the likely cause, not measured.) For a profile
//! service, where reads outnumber sets many times, that is the better side; `huge_pages =
//! false` turns it off.
//!
//! **Safety.** Dropping the map's entries of a chunk changes no byte anyone reads: the next
//! touch faults the same file page back in (the map is read-only and shared), and only clean
//! pages are dropped (the chunk's dirty ones are written out first, as the kernel's writeback
//! would; SQLite syncs the WAL before a checkpoint writes any page to the file). The chunk is
//! read back within the file's size, which never shrinks while the store is open (the store
//! runs no `VACUUM`; docs/deployment.md says not to write a running node's file from outside).

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use rusqlite::Connection;

use crate::{Result, StoreError};

/// Bytes per huge page (x86-64 and arm64 with 4 KiB base pages).
pub(super) const CHUNK: usize = 2 << 20;

/// Chunks rehoused per step, and the pause between steps: at most 160 MB/s of re-reading.
const STEP_CHUNKS: usize = 8;
const STEP_PAUSE: Duration = Duration::from_millis(100);

/// How often a rehouser that has reached the file's end looks again (the file grows).
const IDLE_PAUSE: Duration = Duration::from_secs(5);

/// Chunks of cached pages rehoused before the rehouser checks that they came back huge.
const PROBE_CHUNKS: usize = 8;

/// Whether files may be mapped in huge pages at all (`[store] huge_pages`).
static ALLOWED: AtomicBool = AtomicBool::new(true);

/// Allows (the default) or forbids mapping database files in huge pages, for the files this
/// process maps from then on (`[store] huge_pages`). Their maps are shared by the whole process,
/// so the choice is too.
pub fn allow_huge_pages(allowed: bool) {
    ALLOWED.store(allowed, Ordering::Relaxed);
}

/// Whether a file of `len` bytes is to be mapped in huge pages: they are allowed and it fits in
/// half the memory.
pub(super) fn wanted(len: u64) -> bool {
    ALLOWED.load(Ordering::Relaxed) && memory().is_some_and(|m| len <= m / 2)
}

/// The memory this process may use, read once (the rehouser asks at every step; a limit
/// changed while the node runs is seen at its next start).
fn memory() -> Option<u64> {
    static MEMORY: std::sync::OnceLock<Option<u64>> = std::sync::OnceLock::new();
    *MEMORY.get_or_init(read_memory)
}

/// The memory this process may use: the machine's, or its cgroup's limit if lower.
fn read_memory() -> Option<u64> {
    // SAFETY: sysconf reads system constants.
    let (pages, size) = unsafe {
        (
            libc::sysconf(libc::_SC_PHYS_PAGES),
            libc::sysconf(libc::_SC_PAGESIZE),
        )
    };
    let machine = u64::try_from(pages)
        .ok()?
        .checked_mul(u64::try_from(size).ok()?)?;
    // cgroup v2: this process's group (`0::/path` in /proc/self/cgroup) and its `memory.max`.
    let cgroup = std::fs::read_to_string("/proc/self/cgroup")
        .ok()
        .and_then(|groups| {
            let path = groups
                .lines()
                .find_map(|l| l.strip_prefix("0::"))?
                .to_owned();
            std::fs::read_to_string(format!("/sys/fs/cgroup{}/memory.max", path.trim_end())).ok()
        })
        .and_then(|s| s.trim().parse::<u64>().ok());
    Some(cgroup.map_or(machine, |c| c.min(machine)))
}

/// A read-only shared map of the first `len` bytes of the file open as `fd`, starting on a 2 MiB
/// boundary, which huge pages need: an anonymous reservation of `len` + 2 MiB, the file mapped
/// over its first aligned address, and the slack around it given back.
///
/// # Safety
/// `fd` is an open file descriptor. The map stays until unmapped (`munmap` of `len` bytes).
pub(super) unsafe fn map_aligned(fd: libc::c_int, len: usize) -> std::io::Result<*const u8> {
    // SAFETY: a new anonymous mapping that reserves address space only.
    let spare = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            len + CHUNK,
            libc::PROT_NONE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE,
            -1,
            0,
        )
    };
    if spare == libc::MAP_FAILED {
        return Err(std::io::Error::last_os_error());
    }
    let start = (spare as usize).next_multiple_of(CHUNK);
    // SAFETY: a read-only shared mapping of an open file over our own reservation.
    let base = unsafe {
        libc::mmap(
            start as *mut libc::c_void,
            len,
            libc::PROT_READ,
            libc::MAP_SHARED | libc::MAP_FIXED,
            fd,
            0,
        )
    };
    let error = (base == libc::MAP_FAILED).then(std::io::Error::last_os_error);
    // SAFETY: the reservation's slack before and after the map is ours and unused. (If the
    // file's map failed, what it left of the reservation is address space only.)
    unsafe {
        let head = start - spare as usize;
        if head > 0 {
            libc::munmap(spare, head);
        }
        if CHUNK - head > 0 {
            libc::munmap((start + len) as *mut libc::c_void, CHUNK - head);
        }
    }
    match error {
        Some(e) => Err(e),
        None => Ok(base.cast::<u8>().cast_const()),
    }
}

/// Asks (`on`) or stops asking the kernel to map the `len` bytes at `base` in huge pages.
///
/// # Safety
/// `base` is the start of a mapping of `len` bytes of this process.
pub(super) unsafe fn advise(base: *const u8, len: usize, on: bool) -> bool {
    let advice = if on {
        libc::MADV_HUGEPAGE
    } else {
        libc::MADV_NOHUGEPAGE
    };
    // SAFETY: advice on a mapping of ours, per the caller.
    unsafe { libc::madvise(base.cast_mut().cast(), len, advice) == 0 }
}

/// What a map needs for rehousing: whether it is (still) huge and how far it has got.
#[derive(Default)]
pub(super) struct Progress {
    pub(super) on: AtomicBool,
    /// Chunks from the start of the file that have been looked at.
    pub(super) next: AtomicUsize,
}

impl Progress {
    /// Claims the next chunk below `chunks`, if any is left.
    pub(super) fn claim(&self, chunks: usize) -> Option<usize> {
        self.next
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |c| {
                (c < chunks).then_some(c + 1)
            })
            .ok()
    }
}

/// What became of a chunk.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Chunk {
    /// Nothing of it was cached, or it was mapped huge already: left alone.
    Left,
    /// Moved; whether it came back huge (`None`: the kernel cannot say).
    Moved(Option<bool>),
}

/// Rehouses chunk `c` of the map at `base` of the file open as `fd`, if any of its pages is
/// cached and it is not mapped huge already.
///
/// # Safety
/// `base` is a 2 MiB-aligned read-only shared map of the file of `fd`, which stays open for the
/// call, and the chunk lies within the file.
pub(super) unsafe fn rehouse_chunk(base: *const u8, c: usize, fd: libc::c_int) -> Chunk {
    let at = base.wrapping_add(c * CHUNK).cast_mut();
    let mut cached = [0u8; CHUNK / 4096];
    // SAFETY: a chunk of our map; `mincore` writes one byte per 4 KiB page into `cached`.
    let rc = unsafe { libc::mincore(at.cast(), CHUNK, cached.as_mut_ptr()) };
    if rc != 0 || cached.iter().all(|b| b & 1 == 0) {
        return Chunk::Left; // none cached: a fault will read it in huge
    }
    // SAFETY: a touch within the file maps the chunk, huge if its folio is (a node restarted on
    // a page cache it left in huge folios then reads nothing again).
    unsafe { std::ptr::read_volatile(at) };
    if mapped_huge(at) == Some(true) {
        return Chunk::Left;
    }
    let offset = libc::off_t::try_from(c * CHUNK).unwrap_or(libc::off_t::MAX);
    // SAFETY: writes the chunk's dirty pages out (pages a checkpoint has written to the file,
    // which its own sync or the kernel's writeback would write anyway), drops this process's
    // entries for a chunk of a read-only shared file map (no data is lost: the next touch
    // faults the file's page back in), then the now clean cached pages of the same range of
    // the file, then touches the chunk within the file's size.
    unsafe {
        libc::sync_file_range(
            fd,
            offset,
            CHUNK as libc::off_t,
            libc::SYNC_FILE_RANGE_WAIT_BEFORE
                | libc::SYNC_FILE_RANGE_WRITE
                | libc::SYNC_FILE_RANGE_WAIT_AFTER,
        );
        libc::madvise(at.cast(), CHUNK, libc::MADV_DONTNEED);
        libc::posix_fadvise(fd, offset, CHUNK as libc::off_t, libc::POSIX_FADV_DONTNEED);
        std::ptr::read_volatile(at);
    }
    Chunk::Moved(mapped_huge(at))
}

/// Whether the chunk at `at` of this process's memory is mapped as one huge page, asked with
/// `PAGEMAP_SCAN` (Linux 6.7 and later; `None` where the kernel cannot say).
fn mapped_huge(at: *const u8) -> Option<bool> {
    /// `struct pm_scan_arg` (linux/fs.h).
    #[repr(C)]
    #[derive(Default)]
    struct ScanArg {
        size: u64,
        flags: u64,
        start: u64,
        end: u64,
        walk_end: u64,
        vec: u64,
        vec_len: u64,
        max_pages: u64,
        category_inverted: u64,
        category_mask: u64,
        category_anyof_mask: u64,
        return_mask: u64,
    }
    /// `struct page_region`.
    #[repr(C)]
    #[derive(Default)]
    struct Region {
        start: u64,
        end: u64,
        categories: u64,
    }
    /// `_IOWR('f', 16, struct pm_scan_arg)` and `PAGE_IS_HUGE`.
    const PAGEMAP_SCAN: libc::c_ulong = 0xc060_6610;
    const PAGE_IS_HUGE: u64 = 1 << 6;
    static PAGEMAP: std::sync::OnceLock<Option<std::fs::File>> = std::sync::OnceLock::new();
    let pagemap = PAGEMAP
        .get_or_init(|| std::fs::File::open("/proc/self/pagemap").ok())
        .as_ref()?;
    let mut region = Region::default();
    let start = at as u64;
    let mut arg = ScanArg {
        size: std::mem::size_of::<ScanArg>() as u64,
        start,
        end: start + CHUNK as u64,
        vec: (&raw mut region) as u64,
        vec_len: 1,
        category_mask: PAGE_IS_HUGE,
        return_mask: PAGE_IS_HUGE,
        ..ScanArg::default()
    };
    use std::os::fd::AsRawFd;
    // SAFETY: the ioctl reads `arg` and writes at most `vec_len` regions to `region`.
    let found = unsafe { libc::ioctl(pagemap.as_raw_fd(), PAGEMAP_SCAN, &raw mut arg) };
    (found >= 0).then(|| found == 1 && region.start == start && region.end == start + CHUNK as u64)
}

/// Bytes of files this process maps in huge pages (`FilePmdMapped`), if the kernel says.
pub(super) fn file_huge_bytes() -> Option<u64> {
    let rollup = std::fs::read_to_string("/proc/self/smaps_rollup").ok()?;
    let line = rollup.lines().find(|l| l.starts_with("FilePmdMapped:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

/// Chunks moved by a step of rehousing, and how many of them came back huge.
#[derive(Default, Clone, Copy)]
pub(super) struct Moved {
    pub(super) chunks: usize,
    pub(super) huge: usize,
    /// Moved chunks of which the kernel could not say whether they are huge.
    pub(super) unknown: usize,
}

impl Moved {
    fn merge(&mut self, other: Moved) {
        self.chunks += other.chunks;
        self.huge += other.huge;
        self.unknown += other.unknown;
    }

    pub(super) fn add(&mut self, chunk: Chunk) {
        if let Chunk::Moved(huge) = chunk {
            self.chunks += 1;
            match huge {
                Some(true) => self.huge += 1,
                Some(false) => {}
                None => self.unknown += 1,
            }
        }
    }
}

/// How a step of rehousing went.
pub(super) enum Step {
    /// It moved these chunks, and has more to look at.
    More(Moved),
    /// It has looked at the whole file, as far as its size was known.
    AtEnd(Moved),
    /// The map is not (or no longer) in huge pages.
    Off,
}

/// The thread that rehouses the file's cached pages (see the module docs), with a lookup
/// connection of its own that keeps the file, and so its descriptor, open.
pub(super) struct Rehouser {
    stop: flume::Sender<()>,
    thread: JoinHandle<()>,
}

impl Rehouser {
    /// Starts one for `conn`'s file if its map is in huge pages.
    pub(super) fn start(conn: Connection) -> Result<Option<Rehouser>> {
        if !super::shared_map::is_huge(&conn) {
            return Ok(None);
        }
        let (stop, stopped) = flume::bounded::<()>(1);
        let thread = std::thread::Builder::new()
            .name("portrait-sqlite-huge".into())
            .spawn(move || run(&conn, &stopped))
            .map_err(|e| StoreError::Unavailable(Box::new(e)))?;
        Ok(Some(Rehouser { stop, thread }))
    }

    /// Stops the thread and waits for it.
    pub(super) fn stop(self) {
        drop(self.stop);
        let _ = self.thread.join();
    }
}

fn run(conn: &Connection, stopped: &flume::Receiver<()>) {
    let mut moved = Moved::default();
    let mut checked = false;
    loop {
        let pause = match super::shared_map::rehouse(conn, STEP_CHUNKS) {
            Step::More(m) => {
                moved.merge(m);
                STEP_PAUSE
            }
            Step::AtEnd(m) => {
                moved.merge(m);
                IDLE_PAUSE
            }
            Step::Off => return,
        };
        if !checked && moved.chunks >= PROBE_CHUNKS {
            checked = true;
            // The chunks' own mappings where the kernel says, else this process's file maps.
            let huge = moved.huge > 0 || (moved.unknown > 0 && file_huge_bytes() > Some(0));
            if !huge {
                tracing::info!(
                    "the kernel maps no page of the database file huge (a filesystem without \
                     large folios?); lookups use small pages"
                );
                super::shared_map::stop_huge(conn);
                return;
            }
            tracing::info!("the database file's pages are mapped in huge pages");
        }
        if !matches!(
            stopped.recv_timeout(pause),
            Err(flume::RecvTimeoutError::Timeout)
        ) {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Instant;

    use portrait_core::schema::StandardTag;
    use portrait_core::{Identifier, ProfileValue, Tag};

    use crate::NewAccount;

    const APP: u64 = 1_400_000_001;

    /// `FilePmdMapped` of this process's maps of the file at `path`, in bytes.
    fn huge_bytes_of(path: &std::path::Path) -> u64 {
        let smaps = std::fs::read_to_string("/proc/self/smaps").unwrap();
        let mut ours = false;
        let mut bytes = 0;
        for line in smaps.lines() {
            let first = line.split_whitespace().next().unwrap_or("");
            if first.contains('-') && !first.ends_with(':') {
                ours = line.ends_with(path.to_str().unwrap());
            } else if ours && first == "FilePmdMapped:" {
                bytes += line
                    .split_whitespace()
                    .nth(1)
                    .unwrap()
                    .parse::<u64>()
                    .unwrap()
                    * 1024;
            }
        }
        bytes
    }

    /// Whether this kernel and the filesystem of `dir` map a file huge at all: a 4 MiB file,
    /// written out and dropped from the cache, then read through an aligned map that asks for
    /// huge pages. (XFS, or ext4 since Linux 6.16; not tmpfs without `huge=`.)
    fn huge_file_pages_work_in(dir: &std::path::Path) -> bool {
        use std::os::fd::AsRawFd;
        let path = dir.join("probe");
        let file = std::fs::File::options()
            .create(true)
            .truncate(true)
            .read(true)
            .write(true)
            .open(&path)
            .unwrap();
        std::io::Write::write_all(&mut &file, &vec![7u8; 2 * super::CHUNK]).unwrap();
        file.sync_all().unwrap();
        let len = 2 * super::CHUNK;
        // SAFETY: the file mapped at an aligned address, read, then unmapped.
        unsafe {
            libc::posix_fadvise(file.as_raw_fd(), 0, 0, libc::POSIX_FADV_DONTNEED);
            let map = super::map_aligned(file.as_raw_fd(), len).unwrap();
            super::advise(map, len, true);
            std::ptr::read_volatile(map);
            let huge = huge_bytes_of(&path) > 0;
            libc::munmap(map.cast_mut().cast(), len);
            huge
        }
    }

    fn nick(i: usize, round: usize) -> ProfileValue {
        ProfileValue::Str(format!("nick {i} {round} ").repeat(30))
    }

    /// Accounts written through the store (so cached in small pages) end up mapped in huge
    /// pages by the rehouser, while sets go on; every account reads back what was written last.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn written_pages_move_into_huge_pages_and_reads_see_every_write() {
        let (store, dir) = crate::testkit::fresh_sqlite().await;
        if !huge_file_pages_work_in(dir.path()) {
            eprintln!("skipped: this kernel or filesystem maps no file page huge");
            return;
        }
        let path = dir.path().join("portrait.db");
        let ids: Vec<Identifier> = (0..30_000)
            .map(|i| Identifier::parse(&format!("acct-{i:06}")).unwrap())
            .collect();
        for chunk in ids.chunks(5_000) {
            let accounts: Vec<NewAccount> = chunk
                .iter()
                .enumerate()
                .map(|(i, id)| {
                    let mut a = NewAccount::new(id.clone());
                    a.items.push((Tag::Standard(StandardTag::Nick), nick(i, 0)));
                    a
                })
                .collect();
            store
                .import_accounts(APP, &accounts, "admin".into())
                .await
                .unwrap();
        }
        assert!(
            std::fs::metadata(&path).unwrap().len() > 8 * super::CHUNK as u64,
            "the file spans many huge pages"
        );
        // Sets to every 7th account while the rehouser works, then read all back.
        let mut last = std::collections::HashMap::new();
        let deadline = Instant::now() + std::time::Duration::from_secs(30);
        let mut round = 0;
        while huge_bytes_of(&path) < 4 * super::CHUNK as u64 {
            assert!(
                Instant::now() < deadline,
                "after 30 s, {} bytes of the file are mapped huge",
                huge_bytes_of(&path)
            );
            round += 1;
            for i in (round % 7..ids.len()).step_by(7 * 50) {
                let value = nick(i, round);
                store
                    .set_profile(
                        APP,
                        &ids[i],
                        &[(Tag::Standard(StandardTag::Nick), value.clone())],
                        "admin".into(),
                    )
                    .await
                    .unwrap();
                last.insert(i, value);
            }
            tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        }
        for chunk in ids.chunks(100).enumerate() {
            let (c, chunk) = chunk;
            let got = store.get_profiles(APP, chunk).await.unwrap();
            for (k, p) in got.into_iter().enumerate() {
                let i = c * 100 + k;
                let want = last.get(&i).cloned().unwrap_or_else(|| nick(i % 5_000, 0));
                assert_eq!(
                    p.expect("every account is there").fields["Tag_Profile_IM_Nick"],
                    want,
                    "account {i}"
                );
            }
        }
        store.close().await;
    }
}
