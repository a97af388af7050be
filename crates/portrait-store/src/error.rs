//! The store's one error type, [`StoreError`], and the one place where the database drivers'
//! errors become it. The server maps it to API codes in its own one place.

/// Storage failures. A storage failure is never the client's fault: the server maps every variant
/// except [`StoreError::NotFound`] to an internal-error code.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The account (or other row) does not exist.
    #[error("not found")]
    NotFound,
    /// A uniqueness or version conflict.
    #[error("conflict: {what}")]
    Conflict {
        /// What conflicted.
        what: String,
    },
    /// `set_profile` with an expected version that is not the account's current one (another
    /// write got there first); nothing is written.
    #[error("the profile is at version {current}, not the expected one")]
    VersionConflict {
        /// The account's current version.
        current: u64,
    },
    /// The database cannot be reached or failed.
    #[error("storage unavailable: {0}")]
    Unavailable(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// Stored data cannot be decoded.
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
    /// The store URL or settings are wrong.
    #[error("store configuration: {0}")]
    Config(String),
}

/// The account lookups of the SQLite backend (rusqlite, `sqlite/lookup.rs`): an undecodable
/// column is [`StoreError::Corrupt`], everything else [`StoreError::Unavailable`].
#[cfg(feature = "sql")]
impl From<rusqlite::Error> for StoreError {
    fn from(e: rusqlite::Error) -> Self {
        match e {
            rusqlite::Error::FromSqlConversionFailure(..)
            | rusqlite::Error::InvalidColumnType(..)
            | rusqlite::Error::IntegralValueOutOfRange(..) => StoreError::Corrupt(e.to_string()),
            e => StoreError::Unavailable(Box::new(e)),
        }
    }
}

/// The one mapping of sqlx's errors (every backend's other reads and writes): a missing row is
/// [`StoreError::NotFound`], an undecodable column [`StoreError::Corrupt`], a uniqueness violation
/// [`StoreError::Conflict`], and everything else [`StoreError::Unavailable`].
#[cfg(feature = "sql")]
impl From<sqlx::Error> for StoreError {
    fn from(e: sqlx::Error) -> Self {
        match e {
            sqlx::Error::RowNotFound => StoreError::NotFound,
            sqlx::Error::ColumnDecode { .. } | sqlx::Error::Decode(_) => {
                StoreError::Corrupt(e.to_string())
            }
            sqlx::Error::Database(db) if db.is_unique_violation() => StoreError::Conflict {
                what: db.message().to_owned(),
            },
            e => StoreError::Unavailable(Box::new(e)),
        }
    }
}
