//! App records on PostgreSQL ([`crate::apps`]): the put (the read is one of the shared reads,
//! `read.rs`). Puts serialize on a transaction-scoped advisory lock, so revisions are taken and
//! committed in order: a reader that sees revision r sees every lower one, which the nodes'
//! polling (`after = highest seen`) relies on.

use sqlx::postgres::PgPool;

use crate::apps::{check_expected, CURRENT_SQL, PUT_SQL};
use crate::codec::{app_key, unsigned};
use crate::{AppId, Result};

/// The advisory lock key of app-record puts ("portrait.app_records").
const LOCK: i64 = 0x706f_7274_7261_6974;

/// [`crate::Store::put_app_record`].
pub(in crate::postgres) async fn put_app_record(
    pool: &PgPool,
    app: AppId,
    expected: Option<u64>,
    body: &str,
) -> Result<u64> {
    let mut tx = pool.begin().await?;
    sqlx::query("select pg_advisory_xact_lock($1)")
        .bind(LOCK)
        .execute(&mut *tx)
        .await?;
    let current: Option<i64> = sqlx::query_scalar(CURRENT_SQL)
        .bind(app_key(app))
        .fetch_optional(&mut *tx)
        .await?;
    check_expected(
        current
            .map(|r| unsigned(r, "an app revision"))
            .transpose()?,
        expected,
    )?;
    let revision: i64 = sqlx::query_scalar(PUT_SQL)
        .bind(app_key(app))
        .bind(body)
        .bind(crate::apps::now_ms())
        .fetch_one(&mut *tx)
        .await?;
    tx.commit().await?;
    unsigned(revision, "an app revision")
}
