//! App records on SQLite ([`crate::apps`]): reads on the reader pool, puts as a job of the
//! writer task (the only writer), so revisions are taken and committed one at a time.

use sqlx::sqlite::{SqliteConnection, SqlitePool};

use crate::apps::{check_expected, record, AppRecord, SELECT_SQL};
use crate::codec::{app_key, unsigned, version_key};
use crate::{AppId, Result};

/// A put of an app record, run by the writer.
pub(in crate::sqlite) struct AppRecordJob {
    pub(in crate::sqlite) app: AppId,
    pub(in crate::sqlite) expected: Option<u64>,
    pub(in crate::sqlite) body: String,
}

/// [`crate::Store::app_records`].
pub(in crate::sqlite) async fn app_records(
    reader: &SqlitePool,
    after: u64,
) -> Result<Vec<AppRecord>> {
    let rows: Vec<(i64, i64, String, i64)> = sqlx::query_as(&SELECT_SQL.replace("$1", "?1"))
        .bind(version_key(after)?)
        .fetch_all(reader)
        .await?;
    rows.into_iter().map(record).collect()
}

/// [`crate::Store::put_app_record`], on the writer's connection inside the job's savepoint.
pub(in crate::sqlite) async fn apply_put(
    conn: &mut SqliteConnection,
    job: &AppRecordJob,
) -> Result<u64> {
    let current: Option<i64> =
        sqlx::query_scalar("select revision from app_records where sdkappid = ?1")
            .bind(app_key(job.app))
            .fetch_optional(&mut *conn)
            .await?;
    check_expected(
        current
            .map(|r| unsigned(r, "an app revision"))
            .transpose()?,
        job.expected,
    )?;
    let revision: i64 = sqlx::query_scalar(
        "insert into app_records (sdkappid, revision, body, updated_ms) \
         values (?1, (select coalesce(max(revision), 0) + 1 from app_records), ?2, ?3) \
         on conflict (sdkappid) do update set revision = excluded.revision, \
         body = excluded.body, updated_ms = excluded.updated_ms \
         returning revision",
    )
    .bind(app_key(job.app))
    .bind(job.body.as_str())
    .bind(crate::apps::now_ms())
    .fetch_one(&mut *conn)
    .await?;
    unsigned(revision, "an app revision")
}
