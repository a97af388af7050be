//! What the two backends' batch engines share: [`BatchFailed`], why a whole batch of write jobs
//! was not committed. Each backend's engine is its own (`sqlite/batch.rs`, `postgres/batch.rs`);
//! nothing here touches a connection.

use std::fmt;
use std::sync::Arc;

use crate::StoreError;

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
