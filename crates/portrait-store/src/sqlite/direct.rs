//! Lookups by UserID answered from the walk of the accounts B-tree itself, where the pages it
//! went through are the ones the read transaction sees; SQLite searches only for the rest. A
//! batch ([`batch`]) in a read transaction of its own; one account ([`one`]) in the transaction
//! that its connection keeps between lookups (`lookup/inline.rs`).
//!
//! **Why.** The walk ahead (`tree_ahead.rs`) searches the primary key for every id of a batch
//! and ends on each id's row, or on the leaf where it would be. SQLite's searches of the same
//! ids then did all of it again: with 10M accounts that was a fifth of W2's CPU (`perf`,
//! BENCHMARKS.md, 2026-12-06), besides the statement's own work per row.
//!
//! **When the walk's answer is the snapshot's.** The walk reads pages from the file. Within a
//! read transaction, a page that this process has not written to the WAL since the WAL last
//! restarted is, in the file, what the transaction sees (`wal_pages.rs` says which pages those
//! are, and when it knows). If every page from the root to where an id's search ended is such a
//! page, the walk went where SQLite's search would go and read what it would read: a row it
//! found is the row, and an id it did not find at a leaf is not an account. The root is the one
//! read at open, which only a change of the schema could move: the schema's version is checked
//! in the same transaction. Everything else (a page written to the WAL, a row that spills to an
//! overflow page, a record not of the table's shape, the walk cut short) is searched by SQLite
//! in the same transaction, so one batch is still one snapshot. While the schema's version is
//! not the one the root was read at, nothing is walked.
//!
//! **One account down a spine.** A one-account read first goes down its connection's copies of
//! the inner pages ([`Spine`], `tree_ahead/spine.rs`) and walks the file from where they end;
//! the pages it passed are part of its path, checked as any other. Copies made in another
//! generation of the WAL than the view's are not gone by: the walk is done again from the root.

#[cfg(test)]
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};

use rusqlite::Connection;
use smallvec::SmallVec;

use crate::codec::{app_key, AccountRow};
use crate::striped::Striped;
use crate::{AppId, Result};

use super::lookup::{ROWS_SQL, ROW_SQL};
use super::page_ahead;
use super::shared_map::{Kept, Mapped};
use super::sql::json_of;
use super::tree_ahead::{self, Found, Pages, Spine};

/// What a walk needs besides its ids: the accounts table's root page and the schema version it
/// was read at (`None`: never answer from the walk, e.g. a file not in UTF-8), and, in tests,
/// the count of ids answered from the walk (the metric counts both ways).
#[derive(Debug)]
pub(super) struct Tree {
    pub(super) root: u32,
    pub(super) schema: Option<i64>,
    /// (Tests only: an atomic write to a line the cores share is not free on every read.)
    #[cfg(test)]
    pub(super) answered: AtomicU64,
    /// `portrait_store_account_reads_total` by `walk` and `sqlite`, registered at first use (after
    /// the node has installed its recorder).
    counters: OnceLock<(Arc<Striped>, Arc<Striped>)>,
}

impl Tree {
    /// Counts reads by UserID: `walk` answered from the walk, `sqlite` by SQLite.
    pub(super) fn counted(&self, walk: usize, sqlite: usize) {
        let (by_walk, by_sqlite) = self.counters.get_or_init(|| {
            let by = |by: &'static str| {
                Striped::new(metrics::counter!("portrait_store_account_reads_total", "by" => by))
            };
            (by("walk"), by("sqlite"))
        });
        if walk > 0 {
            #[cfg(test)]
            self.answered.fetch_add(walk as u64, Ordering::Relaxed);
            by_walk.increment(walk as u64);
        }
        if sqlite > 0 {
            by_sqlite.increment(sqlite as u64);
        }
    }

    /// The tree of the accounts table of `conn`'s database.
    pub(super) fn of(conn: &Connection) -> Result<Tree> {
        // One statement, one snapshot: the root and the schema version it belongs to.
        let (root, schema): (u32, i64) = conn.query_row(
            "select rootpage, (select schema_version from pragma_schema_version) \
             from sqlite_schema where type = 'table' and name = 'accounts'",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )?;
        let encoding: String = conn.query_row("pragma encoding", [], |r| r.get(0))?;
        Ok(Tree {
            root,
            schema: (encoding == "UTF-8").then_some(schema),
            #[cfg(test)]
            answered: AtomicU64::new(0),
            counters: OnceLock::new(),
        })
    }
}

/// The rows of the app's accounts among `keys` (sorted, distinct), read in one read
/// transaction: from the walk where its pages are the transaction's (module docs), by SQLite
/// for the rest.
pub(super) fn batch(
    conn: &Connection,
    file: &Mapped<'_>,
    pages: &Pages,
    tree: &Tree,
    app: AppId,
    keys: &[&str],
) -> Result<Vec<AccountRow>> {
    read_transaction(conn, || {
        // Reading the schema's version begins the read transaction: what follows sees its snapshot.
        let schema = schema_version(conn)?;
        let (mut rows, rest) = walk(file, pages, tree, schema, app, keys, None);
        if !rest.is_empty() {
            let list = json_of(&rest)?;
            let n = rest.len();
            rows.extend(page_ahead::walked(|| {
                super::lookup::rows(conn, app, ROWS_SQL, list, n)
            })?);
        }
        Ok(rows)
    })
}

/// The row of account `key` of the app, if it exists, read within `conn`'s read transaction,
/// whose snapshot began with reading the schema's version `schema` ([`schema_version`]): from
/// the walk where its pages are the transaction's, else by SQLite. The walk reads the file's
/// pages as far as they were last known to reach (a page past them is left to SQLite). The
/// price of a one-account read that misses the cache is then a search of the file, not a
/// statement's (BENCHMARKS.md, "2026-12-06 (session 20)"). `kept` is what was found of
/// `conn`'s file before ([`Kept`]).
///
/// # Safety
/// As for [`Kept::mapped`]: `kept` is new or has been used only with `conn`, which has stayed
/// open since and kept its `journal_mode`.
pub(super) unsafe fn one(
    conn: &Connection,
    kept: &mut Kept,
    tree: &Tree,
    spine: &mut Spine,
    schema: i64,
    app: AppId,
    key: &str,
) -> Result<Vec<AccountRow>> {
    let by_sqlite = || super::lookup::rows(conn, app, ROW_SQL, key.to_owned(), 1);
    // SAFETY: per the caller.
    let file = unsafe { kept.mapped(conn) };
    let pages = file.as_ref().and_then(|f| f.pages(false));
    let (Some(file), Some(pages)) = (&file, pages) else {
        tree.counted(0, 1);
        return by_sqlite();
    };
    let (rows, rest) = walk(file, &pages, tree, schema, app, &[key], Some(spine));
    kept.keep(file);
    if rest.is_empty() {
        return Ok(rows);
    }
    page_ahead::walked(by_sqlite)
}

/// The schema's version, read in `conn`'s read transaction (the first read of one begins its
/// snapshot).
pub(super) fn schema_version(conn: &Connection) -> Result<i64> {
    Ok(conn
        .prepare_cached("pragma schema_version")?
        .query_row([], |r| r.get(0))?)
}

/// What the walk of `file` answers of `keys` within its connection's read transaction, whose
/// schema version is `schema`: the rows it found where every page of the search is the
/// transaction's, and the keys it cannot answer (for SQLite). Counts both.
fn walk<'k>(
    file: &Mapped<'_>,
    pages: &Pages,
    tree: &Tree,
    schema: i64,
    app: AppId,
    keys: &[&'k str],
    spine: Option<&mut Spine>,
) -> (Vec<AccountRow>, Vec<&'k str>) {
    if tree.schema != Some(schema) {
        // The root may have moved, and the file may have shrunk (a `VACUUM` from outside):
        // nothing to walk.
        tree.counted(0, keys.len());
        return (Vec::new(), keys.to_vec());
    }
    let app_id = app_key(app);
    // One account with a spine: down its copies of the inner pages first.
    let descent = match (spine.as_deref(), keys) {
        (Some(spine), [key]) => Some(spine.descend(tree.root, app_id, key.as_bytes())),
        _ => None,
    };
    // (Walked whatever the view: the walk also brings in the lines SQLite's searches read.)
    let mut walked = match &descent {
        Some(d) => tree_ahead::ahead_from(pages, d.at, d.passed(), app_id, keys),
        None => tree_ahead::ahead(pages, tree.root, app_id, keys),
    };
    // Inner pages the walk went by through their copies.
    let mut by_copies = descent.as_ref().map_or(0, |d| d.passed().len());
    let view = file.wal_view();
    if let (Some(d), Some((_, header))) = (&descent, &view) {
        if !d.passed().is_empty() && d.salt != Some(header.salt) {
            // Copies of another generation of the WAL: walked again from the root.
            walked = tree_ahead::ahead(pages, tree.root, app_id, keys);
            by_copies = 0;
        }
    }
    let mut spine = spine;
    if let (Some(spine), Some((_, header))) = (spine.as_deref_mut(), &view) {
        spine.follow(header.salt);
    }
    let clean: SmallVec<[bool; 1]> = match view.and_then(|(wal, h)| wal.trusted(h)) {
        Some(clean) => walked
            .iter()
            .map(|w| !w.path.is_empty() && w.path.iter().all(|&p| clean.page(p)))
            .collect(),
        None => smallvec::smallvec![false; keys.len()],
    };
    if let (Some(spine), Some((_, header)), [w], [true]) =
        (spine, &view, walked.as_slice(), clean.as_slice())
    {
        // Not when the walk began on the page where the search ended (most often the leaf,
        // every inner page before it gone by through its copy), so that the copies' index is
        // not looked up again for each. (Rarely that page is an inner one with no copy, whose
        // cell holds the key: the next search that goes through it copies it.)
        if w.path.len() > by_copies + 1 {
            spine.learn(pages, header.salt, &w.path);
        }
    }
    let mut rows = Vec::with_capacity(keys.len());
    let mut rest = Vec::new();
    let mut answered = 0usize;
    for ((key, w), clean) in keys.iter().zip(walked).zip(clean) {
        match w.found {
            Found::Row(record) if clean => match account_row(app_id, key, record) {
                Some(row) => {
                    rows.push(row);
                    answered += 1;
                }
                None => rest.push(*key),
            },
            Found::Absent if clean => answered += 1,
            _ => rest.push(*key),
        }
    }
    tree.counted(answered, rest.len());
    (rows, rest)
}

/// What `read` answers, run within one read transaction of `conn` (ended whatever it answers).
fn read_transaction<T>(conn: &Connection, read: impl FnOnce() -> Result<T>) -> Result<T> {
    if !conn.is_autocommit() {
        // (A transaction left open by a failed end would make every later BEGIN fail.)
        conn.execute_batch("ROLLBACK")?;
    }
    conn.prepare_cached("BEGIN")?.execute([])?;
    let read = read();
    let end = conn
        .prepare_cached("COMMIT")
        .and_then(|mut s| s.execute([]))
        .map_err(Into::into);
    let answer = read.and_then(|answer| end.map(|_| answer));
    if answer.is_err() && !conn.is_autocommit() {
        let _ = conn.execute_batch("ROLLBACK");
    }
    answer
}

/// The row of account `key` of app `app` (its `app_id`) from its record (SQLite's record
/// format, with the columns of `accounts`: `app_id`, `user_id`, `profile`, `version`,
/// `updated_at_ms`), or `None` if the record is not of that shape or not that account's.
pub(super) fn account_row(app: i64, key: &str, mut record: Vec<u8>) -> Option<AccountRow> {
    let (header, mut at) = varint(&record, 0)?;
    let header = usize::try_from(header).ok()?;
    let mut types = [0u64; 5];
    for t in &mut types {
        let (v, n) = varint(&record, at)?;
        *t = v;
        at += n;
    }
    if at != header {
        return None; // another number of columns
    }
    // Where each column's value lies.
    let mut spans = [(0usize, 0usize); 5];
    let mut body = header;
    for (span, &serial) in spans.iter_mut().zip(&types) {
        let len = usize::try_from(match serial {
            0 | 8 | 9 => 0,
            1..=4 => serial,
            5 => 6,
            6 | 7 => 8,
            n if n >= 12 => (n - 12) / 2,
            _ => return None,
        })
        .ok()?;
        *span = (body, body.checked_add(len)?);
        body = span.1;
    }
    if body != record.len() {
        return None;
    }
    let value = |i: usize| &record[spans[i].0..spans[i].1];
    let row_app = int(types[0], value(0))?;
    let user_id = text(types[1], value(1))?;
    text(types[2], value(2))?;
    let version = int(types[3], value(3))?;
    let updated_at_ms = int(types[4], value(4))?;
    if row_app != app || user_id != key.as_bytes() {
        return None;
    }
    // The profile's bytes, moved to the start of the record's buffer.
    record.truncate(spans[2].1);
    record.drain(..spans[2].0);
    Some(AccountRow {
        user_id: key.to_owned(),
        profile: String::from_utf8(record).ok()?,
        version,
        updated_at_ms,
    })
}

/// An integer column's value (serial types 1–6, 8 and 9).
fn int(serial: u64, bytes: &[u8]) -> Option<i64> {
    match serial {
        8 => Some(0),
        9 => Some(1),
        1..=6 => {
            let first = i64::from(*bytes.first()? as i8);
            Some(
                bytes[1..]
                    .iter()
                    .fold(first, |v, &b| (v << 8) | i64::from(b)),
            )
        }
        _ => None,
    }
}

/// A text column's bytes (odd serial types from 13).
fn text(serial: u64, bytes: &[u8]) -> Option<&[u8]> {
    (serial >= 13 && serial % 2 == 1).then_some(bytes)
}

/// SQLite's variable-length integer at `at` of `bytes`: its value and length.
fn varint(bytes: &[u8], at: usize) -> Option<(u64, usize)> {
    let mut v = 0u64;
    for i in 0..8 {
        let b = *bytes.get(at + i)?;
        v = (v << 7) | u64::from(b & 0x7f);
        if b & 0x80 == 0 {
            return Some((v, i + 1));
        }
    }
    Some(((v << 8) | u64::from(*bytes.get(at + 8)?), 9))
}

#[cfg(test)]
mod tests;
