//! What the two backends' batch engines share: the job of one `set_profile` ([`SetJob`]) and how
//! it is staged onto the account as the batch knows it ([`SetJob::apply`]), how versions are
//! handed out after the app's last one ([`take_versions`]), and [`BatchFailed`], why a whole
//! batch of write jobs was not committed. Each backend's engine is its own (`sqlite/batch.rs`,
//! `postgres/batch.rs`); nothing here touches a connection.

use std::fmt;
use std::sync::Arc;

use portrait_core::{Identifier, ProfileValue, Tag};

use crate::codec::{encode_items, merge_items, OwnedOrigin};
use crate::{AppId, Origin, Result, StoreError};

/// One `set_profile` call, with everything it needs owned (it outlives the caller's borrow).
pub(crate) struct SetJob {
    pub(crate) app: AppId,
    pub(crate) user: String,
    /// The items as given; applied in order, so later items win.
    pub(crate) items: Vec<(Tag, ProfileValue)>,
    /// The change-log `items` column, encoded by the caller (off the writer task or lane).
    pub(crate) change_items: String,
    pub(crate) origin: OwnedOrigin,
    /// Written only if the account's version is this one.
    pub(crate) expected: Option<u64>,
}

impl SetJob {
    /// The job of [`crate::Store::set_profile_expecting`].
    ///
    /// # Errors
    /// [`StoreError::Corrupt`] if the items cannot be encoded for the change log.
    pub(crate) fn new(
        app: AppId,
        user: &Identifier,
        items: &[(Tag, ProfileValue)],
        origin: Origin<'_>,
        expected: Option<u64>,
    ) -> Result<Self> {
        Ok(Self {
            app,
            user: user.as_str().to_owned(),
            change_items: encode_items(items.iter().map(|(t, v)| (t.name(), v)))?,
            items: items.to_vec(),
            origin: OwnedOrigin::from(origin),
            expected,
        })
    }

    /// The account's profile after this job: `stored` (packed, see `codec.rs`) with the job's
    /// items written in order, if the account is at the expected version (`current`, when one
    /// is expected).
    ///
    /// # Errors
    /// [`StoreError::VersionConflict`] if the account is not at the expected version;
    /// [`StoreError::Corrupt`] if `stored` does not decode.
    pub(crate) fn apply(&self, stored: &str, current: u64) -> Result<String> {
        match self.expected {
            Some(expected) if expected != current => Err(StoreError::VersionConflict { current }),
            _ => merge_items(stored, &self.user, &self.items),
        }
    }
}

/// The first of `n` (≥ 1) versions of `app` following `last`; the last of them is `last + n`.
///
/// # Errors
/// [`StoreError::Conflict`] if the last would not fit a database integer.
pub(crate) fn take_versions(app: AppId, last: u64, n: usize) -> Result<u64> {
    u64::try_from(n)
        .ok()
        .and_then(|n| last.checked_add(n))
        .filter(|v| i64::try_from(*v).is_ok())
        .map(|_| last + 1)
        .ok_or_else(|| StoreError::Conflict {
            what: format!("{n} more changes overflow the version of app {app}"),
        })
}

/// Why a whole batch was not committed; every job of the batch gets its error, so the cause is
/// shared.
#[derive(Debug, Clone)]
pub(crate) struct BatchFailed {
    /// The step that failed.
    step: &'static str,
    cause: Arc<StoreError>,
    /// What became of the batch, as the message says it: SQLite rolls its transaction back;
    /// PostgreSQL's batch did not commit.
    outcome: &'static str,
}

impl BatchFailed {
    /// A batch whose transaction was rolled back (SQLite).
    pub(crate) fn rolled_back(step: &'static str, cause: impl Into<StoreError>) -> Self {
        Self::with_outcome(step, cause, "rolled back")
    }

    /// A batch that was not committed (PostgreSQL).
    pub(crate) fn not_committed(step: &'static str, cause: impl Into<StoreError>) -> Self {
        Self::with_outcome(step, cause, "not committed")
    }

    fn with_outcome(
        step: &'static str,
        cause: impl Into<StoreError>,
        outcome: &'static str,
    ) -> Self {
        Self {
            step,
            cause: Arc::new(cause.into()),
            outcome,
        }
    }

    /// The error of each job, always [`StoreError::Unavailable`] (SQLite).
    pub(crate) fn unavailable(&self) -> StoreError {
        StoreError::Unavailable(Box::new(self.clone()))
    }

    /// The error of each job: a configuration or data problem keeps its kind, anything else is
    /// [`StoreError::Unavailable`] (never a client error) (PostgreSQL).
    pub(crate) fn error(&self) -> StoreError {
        match &*self.cause {
            StoreError::Corrupt(m) => StoreError::Corrupt(m.clone()),
            StoreError::Config(m) => StoreError::Config(m.clone()),
            StoreError::Conflict { what } => StoreError::Conflict { what: what.clone() },
            _ => self.unavailable(),
        }
    }
}

impl fmt::Display for BatchFailed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "the write batch was {} ({} failed: {})",
            self.outcome, self.step, self.cause
        )
    }
}

impl std::error::Error for BatchFailed {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&*self.cause)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_are_taken_after_the_last_and_never_overflow() {
        assert_eq!(take_versions(1, 0, 1).unwrap(), 1);
        assert_eq!(take_versions(1, 41, 3).unwrap(), 42);
        assert!(take_versions(1, i64::MAX as u64 - 1, 1).is_ok());
        assert!(matches!(
            take_versions(1, i64::MAX as u64 - 1, 2),
            Err(StoreError::Conflict { .. })
        ));
        assert!(matches!(
            take_versions(1, u64::MAX, 1),
            Err(StoreError::Conflict { .. })
        ));
    }
}
