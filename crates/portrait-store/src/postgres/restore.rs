//! [`crate::Store::restore_app`] for [`super::PgStore`]: a dump written back into an app that
//! has no data, in one transaction under the app's write lock, each table's rows in chunks (one
//! `unnest` statement per chunk).

use crate::codec::{app_key, encode_items, encode_profile, version_key};
use crate::{restore_conflict, AppDump, Result};

use super::write::abort;
use super::PgBackend;

/// Rows per statement when restoring a dump.
const RESTORE_CHUNK: usize = 5_000;

impl PgBackend {
    /// [`crate::Store::restore_app`] of a checked dump: its rows in chunks of [`RESTORE_CHUNK`],
    /// one transaction, under the app's write lock.
    pub(super) async fn write_dump(&self, dump: AppDump) -> Result<()> {
        let app = dump.app;
        // Under the app's write lock, like any write: no write of the app can slip in between
        // the emptiness check and the COMMIT.
        let (mut tx, version) = self.begin_write(app).await?;
        let taken: bool = sqlx::query_scalar(
            "select exists (select 1 from accounts where app_id = $1) \
                 or exists (select 1 from changes where app_id = $1) \
                 or exists (select 1 from cursors where app_id = $1) \
                 or exists (select 1 from kicks where app_id = $1)",
        )
        .bind(app_key(app))
        .fetch_one(&mut *tx)
        .await?;
        if taken || version > 0 {
            return abort(tx, restore_conflict(app)).await;
        }
        for chunk in dump.accounts.chunks(RESTORE_CHUNK) {
            let mut users = Vec::with_capacity(chunk.len());
            let mut profiles = Vec::with_capacity(chunk.len());
            let mut versions = Vec::with_capacity(chunk.len());
            let mut times = Vec::with_capacity(chunk.len());
            for a in chunk {
                users.push(a.user.as_str());
                profiles.push(encode_profile(&a.profile.fields)?);
                versions.push(version_key(a.profile.version)?);
                times.push(a.profile.updated_at_ms);
            }
            sqlx::query(
                "insert into accounts (app_id, user_id, profile, version, updated_at_ms) \
                 select $1, t.* from unnest($2::text[], $3::text[], $4::bigint[], $5::bigint[]) as t",
            )
            .bind(app_key(app))
            .bind(&users)
            .bind(&profiles)
            .bind(&versions)
            .bind(&times)
            .execute(&mut *tx)
            .await?;
        }
        for chunk in dump.kicks.chunks(RESTORE_CHUNK) {
            let users: Vec<&str> = chunk.iter().map(|(u, _)| u.as_str()).collect();
            let times: Vec<i64> = chunk
                .iter()
                .map(|(_, t)| i64::try_from(*t).unwrap_or(i64::MAX))
                .collect();
            sqlx::query(
                "insert into kicks (app_id, user_id, not_before) \
                 select $1, t.* from unnest($2::text[], $3::bigint[]) as t",
            )
            .bind(app_key(app))
            .bind(&users)
            .bind(&times)
            .execute(&mut *tx)
            .await?;
        }
        let chains = crate::codec::chains(&dump);
        for (chunk, prev) in dump
            .changes
            .chunks(RESTORE_CHUNK)
            .zip(chains.prev.chunks(RESTORE_CHUNK))
        {
            let prev = prev
                .iter()
                .map(|v| version_key(*v))
                .collect::<Result<Vec<i64>>>()?;
            let mut versions = Vec::with_capacity(chunk.len());
            let mut users = Vec::with_capacity(chunk.len());
            let mut operators = Vec::with_capacity(chunk.len());
            let mut ips = Vec::with_capacity(chunk.len());
            let mut kinds = Vec::with_capacity(chunk.len());
            let mut items = Vec::with_capacity(chunk.len());
            let mut times = Vec::with_capacity(chunk.len());
            for c in chunk {
                versions.push(version_key(c.version)?);
                users.push(c.user.as_str());
                operators.push(c.operator.as_str());
                ips.push(c.client_ip.as_str());
                kinds.push(c.kind.as_str());
                items.push(encode_items(c.items.iter().map(|(t, v)| (t.as_str(), v)))?);
                times.push(c.at_ms);
            }
            sqlx::query(
                "insert into changes (app_id, version, user_id, operator, kind, items, at_ms, client_ip, prev_version) \
                 select $1, t.* from unnest($2::bigint[], $3::text[], $4::text[], $5::text[], $6::text[], $7::bigint[], $8::text[], $9::bigint[]) as t",
            )
            .bind(app_key(app))
            .bind(&versions)
            .bind(&users)
            .bind(&operators)
            .bind(&kinds)
            .bind(&items)
            .bind(&times)
            .bind(&ips)
            .bind(&prev)
            .execute(&mut *tx)
            .await?;
        }
        if !chains.deleted.is_empty() {
            let users: Vec<&str> = chains.deleted.iter().map(|d| d.0).collect();
            let versions = chains
                .deleted
                .iter()
                .map(|d| version_key(d.1))
                .collect::<Result<Vec<i64>>>()?;
            sqlx::query(
                "insert into deleted_accounts (app_id, user_id, version) \
                 select $1, t.* from unnest($2::text[], $3::bigint[]) as t",
            )
            .bind(app_key(app))
            .bind(&users)
            .bind(&versions)
            .execute(&mut *tx)
            .await?;
        }
        if !dump.cursors.is_empty() {
            let names: Vec<&str> = dump.cursors.iter().map(|(n, _)| n.as_str()).collect();
            let versions = dump
                .cursors
                .iter()
                .map(|(_, v)| version_key(*v))
                .collect::<Result<Vec<i64>>>()?;
            sqlx::query(
                "insert into cursors (app_id, name, version) \
                 select $1, t.* from unnest($2::text[], $3::bigint[]) as t",
            )
            .bind(app_key(app))
            .bind(&names)
            .bind(&versions)
            .execute(&mut *tx)
            .await?;
        }
        // Restored kicks move the kicks revision (`Store::app_heads`).
        sqlx::query("update app_versions set version = $2, kicks = kicks + $3 where app_id = $1")
            .bind(app_key(app))
            .bind(version_key(dump.version)?)
            .bind(i64::from(!dump.kicks.is_empty()))
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }
}
