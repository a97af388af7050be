//! App records on SQLite ([`crate::apps`]): puts as a job of the writer task (the only writer),
//! so revisions are taken and committed one at a time (the read is one of the shared reads,
//! `read.rs`, on the reader pool).

use sqlx::sqlite::SqliteConnection;

use crate::apps::{check_expected, CURRENT_SQL, PUT_SQL};
use crate::codec::{app_key, unsigned};
use crate::{AppId, Result};

/// [`CURRENT_SQL`] and [`PUT_SQL`] with SQLite's placeholders.
static CURRENT: std::sync::LazyLock<String> =
    std::sync::LazyLock::new(|| CURRENT_SQL.replace('$', "?"));
static PUT: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| PUT_SQL.replace('$', "?"));

/// A put of an app record, run by the writer.
pub(in crate::sqlite) struct AppRecordJob {
    pub(in crate::sqlite) app: AppId,
    pub(in crate::sqlite) expected: Option<u64>,
    pub(in crate::sqlite) body: String,
}

/// [`crate::Store::put_app_record`], on the writer's connection inside the job's savepoint.
pub(in crate::sqlite) async fn apply_put(
    conn: &mut SqliteConnection,
    job: &AppRecordJob,
) -> Result<u64> {
    let current: Option<i64> = sqlx::query_scalar(CURRENT.as_str())
        .bind(app_key(job.app))
        .fetch_optional(&mut *conn)
        .await?;
    check_expected(
        current
            .map(|r| unsigned(r, "an app revision"))
            .transpose()?,
        job.expected,
    )?;
    let revision: i64 = sqlx::query_scalar(PUT.as_str())
        .bind(app_key(job.app))
        .bind(job.body.as_str())
        .bind(crate::apps::now_ms())
        .fetch_one(&mut *conn)
        .await?;
    unsigned(revision, "an app revision")
}
