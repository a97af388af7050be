//! Opening a store by URL ([`open`]), and the URL's password kept out of every message
//! ([`redact_url`]); the one mapping of migration failures the backends run on open.

#[cfg(feature = "sql")]
use std::sync::Arc;

#[cfg(feature = "sql")]
use crate::{postgres, sqlite, Store};
use crate::{Result, StoreError};

/// Opens a store by URL scheme: `sqlite://PATH` (created if missing) or `postgres://…` /
/// `postgresql://…` (the database must exist; Portrait creates its tables).
///
/// # Errors
/// [`StoreError::Config`] for unknown schemes, or the backend's open error. Error messages never
/// contain the URL's password.
#[cfg(feature = "sql")]
pub async fn open(url: &str) -> Result<Arc<dyn Store>> {
    match url.split_once(':').map(|(scheme, _)| scheme) {
        Some("sqlite") => Ok(Arc::new(sqlite::SqliteStore::open(url).await?)),
        Some("postgres" | "postgresql") => Ok(Arc::new(postgres::PgStore::open(url).await?)),
        _ => Err(StoreError::Config(format!(
            "store url {:?}: use sqlite://PATH or postgres://USER@HOST/DATABASE",
            redact_url(url)
        ))),
    }
}

/// `url` with the password (if any) replaced by `***`, for messages and logs.
pub fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    // The authority ends at the first `/`, `?` or `#`; its userinfo at the last `@` in it.
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(end);
    let Some(at) = authority.rfind('@') else {
        return url.to_owned();
    };
    let (userinfo, host) = authority.split_at(at);
    match userinfo.split_once(':') {
        Some((user, _password)) => format!("{scheme}://{user}:***{host}{tail}"),
        None => url.to_owned(),
    }
}

/// The one mapping of migration failures (both backends run theirs on open).
#[cfg(feature = "sql")]
pub(crate) fn migrate_error(e: sqlx::migrate::MigrateError) -> StoreError {
    match e {
        sqlx::migrate::MigrateError::VersionMissing(v) => StoreError::Config(format!(
            "the database was migrated by a newer Portrait (migration {v} is unknown to this build); upgrade Portrait"
        )),
        sqlx::migrate::MigrateError::Execute(e) => e.into(),
        e => StoreError::Unavailable(Box::new(e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redact_url_hides_only_the_password() {
        assert_eq!(
            redact_url("postgres://u:pw@h:5432/db"),
            "postgres://u:***@h:5432/db"
        );
        assert_eq!(
            redact_url("postgres://u:p@ss:w@rd@h/db?sslmode=disable"),
            "postgres://u:***@h/db?sslmode=disable"
        );
        assert_eq!(redact_url("postgres://u@h/db"), "postgres://u@h/db");
        assert_eq!(redact_url("postgres://h/db?x=a@b"), "postgres://h/db?x=a@b");
        assert_eq!(
            redact_url("postgres://u:p,w@h1:5433,h2:5434/db?target_session_attrs=read-write"),
            "postgres://u:***@h1:5433,h2:5434/db?target_session_attrs=read-write",
            "a host list"
        );
        assert_eq!(redact_url("sqlite://data/p.db"), "sqlite://data/p.db");
        assert_eq!(redact_url("nonsense"), "nonsense");
    }

    #[tokio::test]
    async fn open_refuses_unknown_schemes_without_echoing_the_password() {
        let err = open("postgress://u:secret@h/db").await.err().unwrap();
        assert!(matches!(err, StoreError::Config(_)), "{err:?}");
        let msg = err.to_string();
        assert!(!msg.contains("secret"), "{msg}");
        assert!(msg.contains("postgres://"), "says what works: {msg}");
    }
}
