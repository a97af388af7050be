//! Reading the pages of the accounts B-tree as they are mapped, for the walk (`tree_ahead.rs`):
//! a page's header, its cells, a cell's key compared with a sought one, and a found row's
//! record. Every read is bounds-checked against the page and the readable bytes. Single bytes
//! are read with volatile reads; the first bytes of a cell and a found record are copied at
//! once, as SQLite reads the same map: bytes that change meanwhile belong to a page whose
//! findings `direct.rs` does not take.

use std::cmp::Ordering;

use super::super::page_ahead::hint;

/// Bytes per cache line.
pub(super) const LINE: usize = 64;

/// Longest key compared: a longer UserID (or a garbled length) ends that id's walk.
pub(super) const LONGEST_KEY: usize = 256;

/// Bytes from a cell's start to past its key, as the accounts table's keys go (the payload's
/// length, the record header, the app and a UserID of up to 24 bytes).
pub(super) const KEY_BYTES: usize = 40;

/// Lines of a found row asked for at most.
pub(super) const ROW_LINES: usize = 8;

/// The pages of a database file as far as they are mapped.
#[derive(Clone, Copy)]
pub(in crate::sqlite) struct Pages {
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
    pub(in crate::sqlite) unsafe fn new(base: *const u8, len: usize) -> Option<Pages> {
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
    pub(super) fn get(&self, n: u32) -> Option<Page> {
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

/// One page; every read of it is bounds-checked.
#[derive(Clone, Copy)]
pub(super) struct Page {
    pub(super) p: *const u8,
    pub(super) len: usize,
}

/// A B-tree page of the primary key: its kind and cells.
#[derive(Clone, Copy)]
pub(super) struct Node {
    pub(super) page: Page,
    pub(super) inner: bool,
    pub(super) cells: usize,
}

impl Page {
    pub(super) fn byte(self, at: usize) -> Option<u8> {
        // SAFETY: within the page, which `Pages::get` checked lies within the readable bytes.
        (at < self.len).then(|| unsafe { std::ptr::read_volatile(self.p.add(at)) })
    }

    pub(super) fn be16(self, at: usize) -> Option<usize> {
        Some(usize::from(u16::from_be_bytes([
            self.byte(at)?,
            self.byte(at + 1)?,
        ])))
    }

    pub(super) fn be32(self, at: usize) -> Option<u32> {
        Some(u32::from_be_bytes([
            self.byte(at)?,
            self.byte(at + 1)?,
            self.byte(at + 2)?,
            self.byte(at + 3)?,
        ]))
    }

    /// SQLite's variable-length integer at `at`: its value and length.
    pub(super) fn varint(self, at: usize) -> Option<(u64, usize)> {
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

    /// The [`WINDOW`] bytes from `at`, copied at once, if they lie within the page. (A plain
    /// copy, as SQLite reads the same map; the walk's answers are checked, `direct.rs`.)
    pub(super) fn window(self, at: usize) -> Option<[u8; WINDOW]> {
        if at.checked_add(WINDOW)? > self.len {
            return None;
        }
        let mut out = [0u8; WINDOW];
        // SAFETY: within the page (checked above), into a local array of as many bytes.
        unsafe { std::ptr::copy_nonoverlapping(self.p.add(at), out.as_mut_ptr(), WINDOW) };
        Some(out)
    }

    pub(super) fn hint(self, at: usize) {
        if at < self.len {
            // SAFETY: within the page.
            unsafe { hint(self.p.add(at)) };
        }
    }

    /// The page as a node of an index B-tree (inner `0x02` or leaf `0x0a`).
    pub(super) fn node(self) -> Option<Node> {
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
    pub(super) fn header(self) -> usize {
        if self.inner {
            12
        } else {
            8
        }
    }

    /// Where cell `i` starts.
    pub(super) fn cell(self, i: usize) -> Option<usize> {
        self.page.be16(self.header() + 2 * i)
    }

    /// Asks for the lines of cell `i` that hold its key.
    pub(super) fn ask(self, i: usize) {
        if let Some(at) = self.cell(i) {
            self.page.hint(at);
            self.page.hint(at + KEY_BYTES);
        }
    }

    /// Asks for every line a binary search of the page may read: on a leaf, the first line of
    /// each cell, as `page_ahead.rs` does for SQLite's searches (its rows are long, and only
    /// their keys are compared); on an inner page, the whole cell content area (short cells,
    /// packed: its lines, asked for without reading a pointer each). Whether it asked for any.
    pub(super) fn ask_all(self) -> bool {
        if self.inner {
            // Where the cell content area begins (0: at 65,536, an empty page of that size).
            let start = match self.page.be16(5) {
                Some(0) | None => return false,
                Some(start) => start,
            };
            let mut line = start - start % LINE;
            while line < self.page.len {
                self.page.hint(line);
                line += LINE;
            }
            true
        } else {
            // SAFETY: the page's `len` bytes are readable (`Pages::get`), and it is not the first.
            unsafe { super::super::page_ahead::leaf(self.page.p, self.page.len) }
        }
    }

    /// Asks for the lines of cell `i` that hold its row (as much as is on the page).
    pub(super) fn ask_row(self, pages: &Pages, i: usize) {
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
    pub(super) fn child(self, i: usize) -> Option<u32> {
        if i < self.cells {
            self.page.be32(self.cell(i)?)
        } else {
            self.page.be32(8)
        }
    }

    /// Where cell `i`'s payload starts, and its length.
    pub(super) fn payload(self, i: usize) -> Option<(usize, usize)> {
        let at = self.cell(i)? + if self.inner { 4 } else { 0 };
        let (len, n) = self.page.varint(at)?;
        Some((at + n, usize::try_from(len).ok()?))
    }

    /// Cell `i`'s record (its payload), if it lies wholly on its page.
    pub(super) fn record(self, pages: &Pages, i: usize) -> Option<Vec<u8>> {
        let (rec, len) = self.payload(i)?;
        if len > pages.max_local || rec.checked_add(len)? > self.page.len {
            return None;
        }
        let mut out = Vec::with_capacity(len);
        // SAFETY: `rec..rec + len` lies within the page, which lies within the readable bytes,
        // and `out` has room for `len` bytes, all written before its length is set. (A plain
        // copy, as SQLite reads the same map: bytes that change meanwhile are bytes of a page
        // whose row a reader does not take, `direct.rs`.)
        unsafe {
            std::ptr::copy_nonoverlapping(self.page.p.add(rec), out.as_mut_ptr(), len);
            out.set_len(len);
        }
        Some(out)
    }

    /// How cell `i`'s key `(app_id, user_id)` compares with `(app, key)`, or `None` if the cell
    /// cannot be read as a row of the accounts table.
    pub(super) fn compare(
        self,
        pages: &Pages,
        i: usize,
        app: &App,
        key: &[u8],
    ) -> Option<Ordering> {
        // Most keys are decided within the first bytes of the cell's payload, read at once.
        let start = self.cell(i)? + if self.inner { 4 } else { 0 };
        if let Some(decided) = self
            .page
            .window(start)
            .and_then(|w| compare_in(&w, pages, app, key))
        {
            return decided;
        }
        self.compare_slowly(pages, i, app.value, key)
    }

    /// [`Node::compare`] a byte at a time.
    pub(super) fn compare_slowly(
        self,
        pages: &Pages,
        i: usize,
        app: i64,
        key: &[u8],
    ) -> Option<Ordering> {
        let (cell_app, user) = self.key(pages, i)?;
        Some(cell_app.cmp(&app).then_with(|| user.as_slice().cmp(key)))
    }

    /// Cell `i`'s key: its `app_id` and the bytes of its `user_id` (at most [`LONGEST_KEY`]),
    /// read a byte at a time, or `None` if the cell cannot be read as a row of the accounts
    /// table.
    pub(super) fn key(self, pages: &Pages, i: usize) -> Option<(i64, Vec<u8>)> {
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
        let user = (0..text)
            .map(|k| page.byte(body + k))
            .collect::<Option<Vec<u8>>>()?;
        Some((cell_app, user))
    }
}

/// Bytes of a cell's payload read at once by [`Node::compare`].
pub(super) const WINDOW: usize = 48;

/// The app whose keys are sought: its `app_id`, and the serial type and width SQLite gives it
/// in a record (`sqlite3VdbeSerialType`, file format 4).
#[derive(Clone, Copy)]
pub(super) struct App {
    value: i64,
    serial: u8,
    width: usize,
}

impl App {
    pub(super) fn new(value: i64) -> App {
        let u = if value < 0 { !value } else { value };
        let (serial, width) = match value {
            0 => (8, 0),
            1 => (9, 0),
            _ if u <= 127 => (1, 1),
            _ if u <= 32_767 => (2, 2),
            _ if u <= 8_388_607 => (3, 3),
            _ if u <= 2_147_483_647 => (4, 4),
            _ if u <= 140_737_488_355_327 => (5, 6),
            _ => (6, 8),
        };
        App {
            value,
            serial,
            width,
        }
    }
}

/// [`Node::compare`] within the first [`WINDOW`] bytes of a cell's payload, for cells of the
/// usual shape: `Some` of its answer if they decide it, `None` if the cell is of another shape
/// or the answer needs bytes past them ([`Node::compare_slowly`] then answers).
pub(super) fn compare_in(
    w: &[u8; WINDOW],
    pages: &Pages,
    app: &App,
    key: &[u8],
) -> Option<Option<Ordering>> {
    // The usual shape first: a payload length of one or two bytes, a record header whose
    // length takes a byte and is followed by the app's type as SQLite encodes this app and the
    // type of a UserID of up to 57 bytes (then the other columns' types), the app, the UserID.
    let (len, rec) = if w[0] < 0x80 {
        (usize::from(w[0]), 1)
    } else if w[1] < 0x80 {
        ((usize::from(w[0] & 0x7f) << 7) | usize::from(w[1]), 2)
    } else {
        (0, 0)
    };
    let header = usize::from(w[rec]);
    if rec > 0 && (3..=16).contains(&header) && w[rec + 1] == app.serial {
        let text_type = w[rec + 2];
        let local = if len <= pages.max_local {
            len
        } else {
            pages.min_local
        };
        let mut body = rec + header;
        let text = usize::from(text_type.wrapping_sub(13) / 2);
        if (13..0x80).contains(&text_type)
            && text_type % 2 == 1
            && body + app.width + text - rec <= local
        {
            let mut cell_app = if app.serial == 9 { 1i64 } else { 0 };
            if app.width > 0 {
                cell_app = i64::from(w[body] as i8);
                for &b in &w[body + 1..body + app.width] {
                    cell_app = (cell_app << 8) | i64::from(b);
                }
            }
            let order = cell_app.cmp(&app.value);
            if order != Ordering::Equal {
                return Some(Some(order));
            }
            body += app.width;
            let common = text.min(key.len());
            for (k, &want) in key[..common].iter().enumerate() {
                let Some(&b) = w.get(body + k) else {
                    return None; // the rest of the key is past the window
                };
                if b != want {
                    return Some(Some(b.cmp(&want)));
                }
            }
            return Some(Some(text.cmp(&key.len())));
        }
    }
    None
}
