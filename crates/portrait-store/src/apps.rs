//! App records ([`Store::app_records`], [`Store::put_app_record`]): the settings of apps made
//! through the operator API, kept so that every node serves the same apps. The store keeps each
//! app's latest record as opaque JSON text with a revision that is global across apps and only
//! grows; it never interprets the body.
//!
//! [`Store::app_records`]: crate::Store::app_records
//! [`Store::put_app_record`]: crate::Store::put_app_record

use crate::{AppId, Result, StoreError};

/// One app's record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppRecord {
    /// The app.
    pub sdkappid: AppId,
    /// Its revision: global across apps, higher for every later write.
    pub revision: u64,
    /// The app's settings as JSON text (not interpreted by the store).
    pub body: String,
    /// When it was written, milliseconds since the Unix epoch.
    pub updated_ms: u64,
}

/// Checks the expectation of a put: `current` is the app's revision now (`None`: no record).
///
/// # Errors
/// [`StoreError::VersionConflict`] with the current revision (0 when there is none).
pub(crate) fn check_expected(current: Option<u64>, expected: Option<u64>) -> Result<()> {
    if current == expected {
        Ok(())
    } else {
        Err(StoreError::VersionConflict {
            current: current.unwrap_or(0),
        })
    }
}

/// Milliseconds since the Unix epoch, for `updated_ms`.
pub(crate) fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// A row `(sdkappid, revision, body, updated_ms)` as read by either backend.
pub(crate) fn record(row: (i64, i64, String, i64)) -> Result<AppRecord> {
    let (app, revision, body, updated_ms) = row;
    Ok(AppRecord {
        sdkappid: crate::codec::app_from_key(app),
        revision: crate::codec::unsigned(revision, "an app revision")?,
        body,
        updated_ms: crate::codec::unsigned(updated_ms, "an app record's time")?,
    })
}

/// The current revision of an app's record (`$1`: the app). The statements of a put are here
/// in PostgreSQL's `$n`; SQLite runs them with `?n`. (The read, [`crate::Store::app_records`],
/// is one of the shared reads, `read.rs`, with its statement in each backend's `sql.rs`.)
pub(crate) const CURRENT_SQL: &str = "select revision from app_records where sdkappid = $1";

/// Writes an app's record with the next revision, returning it (`$1` app, `$2` body, `$3` time).
pub(crate) const PUT_SQL: &str = "insert into app_records (sdkappid, revision, body, updated_ms) \
     values ($1, (select coalesce(max(revision), 0) + 1 from app_records), $2, $3) \
     on conflict (sdkappid) do update set revision = excluded.revision, \
     body = excluded.body, updated_ms = excluded.updated_ms \
     returning revision";
