//! The reads both SQL backends make alike, written once over sqlx's [`Database`] as [`Reads`],
//! the methods of a backend's pool of reading connections: the change log
//! ([`Reads::changes_since`], [`Reads::changes_of`]), versions and cursors, kicks, the apps with
//! data, every app's head ([`Reads::app_heads`]), the snapshot of one app that
//! [`crate::Store::dump_app`] answers, a page of accounts ([`crate::scan`]), the app records and
//! the liveness check. Each backend gives its statements in its own dialect ([`Dialect`], in its `sql.rs`) and how it binds a list of UserIDs; what a
//! read answers and how rows become answers are here, once. The one [`crate::Store`]
//! implementation (`backend.rs`) calls them on [`crate::backend::Backend::readers`].
//!
//! Also here: putting rows read by UserID back in request order ([`profiles_in_order`],
//! [`exist_in_order`]), for the account reads whose statements differ too much to share.
//!
//! What must not live here: writes (each backend's writer or batch engine), and anything that
//! depends on one dialect.

use std::collections::{HashMap, HashSet};
use std::future::Future;

use portrait_core::Identifier;
use sqlx::database::Database;
use sqlx::{ColumnIndex, Decode, Encode, Executor, FromRow, IntoArguments, Pool, Type};

use crate::apps::{record, AppRecord};
use crate::codec::{app_from_key, app_key, changes_of_args, stored_account, unsigned};
use crate::codec::{version_key, AccountRow, ChangeOfRow, ChangeRow, MAX_CHAIN_WALK};
use crate::{AppDump, AppHead, AppId, Change, ChangesOf, PackedProfile, Profile, Result};

/// A backend's dialect: its read statements and how it binds a list of UserIDs.
pub(crate) trait Dialect: Database {
    /// The read statements, in this dialect.
    const READS: ReadSql;

    /// A list of distinct UserIDs as bound to [`ReadSql::changes_of`].
    type Ids<'a>: Encode<'a, Self> + Type<Self> + Send + 'a;

    /// Encodes `ids` for [`ReadSql::changes_of`].
    ///
    /// # Errors
    /// [`crate::StoreError::Corrupt`] if they cannot be encoded.
    fn user_ids(ids: Vec<&str>) -> Result<Self::Ids<'_>>;
}

/// The read statements of a dialect. Parameters, in order of binding: the app first, then what
/// each statement's doc says.
pub(crate) struct ReadSql {
    /// Changes after a version (`2`), in version order, at most `3`.
    pub(crate) changes_since: &'static str,
    /// The changes of some accounts (`2`, [`Dialect::Ids`]) after a version (`3`), at most `4`,
    /// in version order, walking each account's chain of changes at most `5` steps back; each
    /// row also has `complete_after`: the highest version an account's walk stopped above
    /// (its `5`th change back links to it and it is after `3`), else `3`.
    pub(crate) changes_of: &'static str,
    /// The app's version (no row: 0).
    pub(crate) app_version: &'static str,
    /// The version of the cursor named `2`.
    pub(crate) cursor: &'static str,
    /// The app's kicks, by UserID (read by every push feed every few seconds: never a scan of
    /// the app's accounts).
    pub(crate) kicks: &'static str,
    /// The apps with data (no parameter).
    pub(crate) apps: &'static str,
    /// Every app's version and kicks revision (no parameter): `app_id, version, kicks`.
    pub(crate) app_heads: &'static str,
    /// How the snapshot of [`Reads::dump_app`] begins: one snapshot for every read of the dump.
    pub(crate) begin_snapshot: &'static str,
    /// Every account of the app, by UserID: `user_id, profile, version, updated_at_ms`.
    pub(crate) dump_accounts: &'static str,
    /// Every change of the app, in version order.
    pub(crate) dump_changes: &'static str,
    /// Every cursor of the app, by name: `name, version`.
    pub(crate) dump_cursors: &'static str,
    /// A page of the app's UserIDs ([`crate::scan::scan`]): from `2`, below `3`, at most `4`.
    pub(crate) scan_accounts: &'static str,
    /// The app records with a revision above `1` (no app parameter), by revision:
    /// `sdkappid, revision, body, updated_ms`.
    pub(crate) app_records: &'static str,
}

/// The shared reads, as methods of a backend's pool of reading connections: one per read method
/// of [`crate::Store`] that both backends answer alike. Implemented once, below, for the pool of
/// every database whose driver can run them (the bounds are written there only, so a caller needs
/// nothing but `Reads`).
pub(crate) trait Reads: Send + Sync {
    /// [`crate::Store::changes_since`].
    fn changes_since(
        &self,
        app: AppId,
        since: u64,
        limit: usize,
    ) -> impl Future<Output = Result<Vec<Change>>> + Send;

    /// [`crate::Store::changes_of`].
    fn changes_of(
        &self,
        app: AppId,
        users: &[Identifier],
        since: u64,
        limit: usize,
    ) -> impl Future<Output = Result<ChangesOf>> + Send;

    /// [`crate::Store::current_version`].
    fn current_version(&self, app: AppId) -> impl Future<Output = Result<u64>> + Send;

    /// [`crate::Store::cursor`].
    fn cursor(&self, app: AppId, name: &str) -> impl Future<Output = Result<Option<u64>>> + Send;

    /// [`crate::Store::kicks`].
    fn kicks(&self, app: AppId) -> impl Future<Output = Result<Vec<(String, u64)>>> + Send;

    /// [`crate::Store::apps`].
    fn apps(&self) -> impl Future<Output = Result<Vec<AppId>>> + Send;

    /// [`crate::Store::app_heads`].
    fn app_heads(&self) -> impl Future<Output = Result<Vec<AppHead>>> + Send;

    /// [`crate::Store::dump_app`]: every read in one snapshot.
    fn dump_app(&self, app: AppId) -> impl Future<Output = Result<AppDump>> + Send;

    /// [`crate::Store::scan_accounts`].
    fn scan_accounts(
        &self,
        app: AppId,
        prefix: &str,
        after: Option<&Identifier>,
        limit: usize,
    ) -> impl Future<Output = Result<Vec<Identifier>>> + Send;

    /// [`crate::Store::app_records`].
    fn app_records(&self, after: u64) -> impl Future<Output = Result<Vec<AppRecord>>> + Send;

    /// [`crate::Store::ping`]: one trivial statement.
    fn ping(&self) -> impl Future<Output = Result<()>> + Send;
}

impl<DB> Reads for Pool<DB>
where
    DB: Dialect,
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    for<'q> DB::Arguments<'q>: IntoArguments<'q, DB>,
    for<'q> i64: Encode<'q, DB> + Decode<'q, DB> + Type<DB>,
    for<'q> &'q str: Encode<'q, DB> + Type<DB>,
    for<'q> String: Encode<'q, DB> + Decode<'q, DB> + Type<DB>,
    usize: ColumnIndex<DB::Row>,
    for<'r> ChangeRow: FromRow<'r, DB::Row>,
    for<'r> ChangeOfRow: FromRow<'r, DB::Row>,
    for<'r> (String, i64): FromRow<'r, DB::Row>,
    for<'r> (String, String, i64, i64): FromRow<'r, DB::Row>,
    for<'r> (i64, i64, String, i64): FromRow<'r, DB::Row>,
    for<'r> (i64, i64, i64): FromRow<'r, DB::Row>,
{
    async fn changes_since(&self, app: AppId, since: u64, limit: usize) -> Result<Vec<Change>> {
        let Ok(since) = i64::try_from(since) else {
            return Ok(Vec::new()); // no version is that large
        };
        if limit == 0 {
            return Ok(Vec::new());
        }
        let rows: Vec<ChangeRow> = sqlx::query_as(DB::READS.changes_since)
            .bind(app_key(app))
            .bind(since)
            .bind(i64::try_from(limit).unwrap_or(i64::MAX))
            .fetch_all(self)
            .await?;
        rows.into_iter().map(ChangeRow::into_change).collect()
    }

    async fn changes_of(
        &self,
        app: AppId,
        users: &[Identifier],
        since: u64,
        limit: usize,
    ) -> Result<ChangesOf> {
        let nothing = ChangesOf {
            changes: Vec::new(),
            complete_after: since,
        };
        let Some((since_key, ids)) = changes_of_args(users, since, limit) else {
            return Ok(nothing);
        };
        let rows: Vec<ChangeOfRow> = sqlx::query_as(DB::READS.changes_of)
            .bind(app_key(app))
            .bind(DB::user_ids(ids)?)
            .bind(since_key)
            .bind(i64::try_from(limit).unwrap_or(i64::MAX))
            .bind(MAX_CHAIN_WALK)
            .fetch_all(self)
            .await?;
        // No row: no account has a change after `since` that its walk reached, so none stopped.
        let Some(first) = rows.first() else {
            return Ok(nothing);
        };
        let complete_after = unsigned(first.complete_after, "a version")?.max(since);
        Ok(ChangesOf {
            changes: rows
                .into_iter()
                .map(|r| r.change.into_change())
                .collect::<Result<_>>()?,
            complete_after,
        })
    }

    async fn current_version(&self, app: AppId) -> Result<u64> {
        app_version(self, app).await
    }

    async fn cursor(&self, app: AppId, name: &str) -> Result<Option<u64>> {
        let version: Option<i64> = sqlx::query_scalar(DB::READS.cursor)
            .bind(app_key(app))
            .bind(name)
            .fetch_optional(self)
            .await?;
        version.map(|v| unsigned(v, "a cursor")).transpose()
    }

    async fn kicks(&self, app: AppId) -> Result<Vec<(String, u64)>> {
        kicks(self, app).await
    }

    async fn apps(&self) -> Result<Vec<AppId>> {
        let keys: Vec<i64> = sqlx::query_scalar(DB::READS.apps).fetch_all(self).await?;
        let mut apps: Vec<AppId> = keys.into_iter().map(app_from_key).collect();
        apps.sort_unstable();
        Ok(apps)
    }

    async fn app_heads(&self) -> Result<Vec<AppHead>> {
        let rows: Vec<(i64, i64, i64)> =
            sqlx::query_as(DB::READS.app_heads).fetch_all(self).await?;
        let mut heads = rows
            .into_iter()
            .map(|(app, version, kicks)| {
                Ok(AppHead {
                    app: app_from_key(app),
                    version: unsigned(version, "an app version")?,
                    kicks: unsigned(kicks, "a kicks revision")?,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        heads.sort_unstable_by_key(|h| h.app);
        Ok(heads)
    }

    async fn dump_app(&self, app: AppId) -> Result<AppDump> {
        let mut tx = self.begin_with(DB::READS.begin_snapshot).await?;
        let version = app_version(&mut *tx, app).await?;
        let accounts: Vec<(String, String, i64, i64)> = sqlx::query_as(DB::READS.dump_accounts)
            .bind(app_key(app))
            .fetch_all(&mut *tx)
            .await?;
        let kicks = kicks(&mut *tx, app).await?;
        let changes: Vec<ChangeRow> = sqlx::query_as(DB::READS.dump_changes)
            .bind(app_key(app))
            .fetch_all(&mut *tx)
            .await?;
        let cursors: Vec<(String, i64)> = sqlx::query_as(DB::READS.dump_cursors)
            .bind(app_key(app))
            .fetch_all(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(AppDump {
            app,
            version,
            accounts: accounts
                .into_iter()
                .map(|(user, profile, version, updated_at_ms)| {
                    stored_account(user, &profile, version, updated_at_ms)
                })
                .collect::<Result<_>>()?,
            kicks,
            changes: changes
                .into_iter()
                .map(ChangeRow::into_change)
                .collect::<Result<_>>()?,
            cursors: cursors
                .into_iter()
                .map(|(name, v)| Ok((name, unsigned(v, "a cursor")?)))
                .collect::<Result<_>>()?,
        })
    }

    async fn scan_accounts(
        &self,
        app: AppId,
        prefix: &str,
        after: Option<&Identifier>,
        limit: usize,
    ) -> Result<Vec<Identifier>> {
        crate::scan::scan(self, DB::READS.scan_accounts, app, prefix, after, limit).await
    }

    async fn app_records(&self, after: u64) -> Result<Vec<AppRecord>> {
        let rows: Vec<(i64, i64, String, i64)> = sqlx::query_as(DB::READS.app_records)
            .bind(version_key(after)?)
            .fetch_all(self)
            .await?;
        rows.into_iter().map(record).collect()
    }

    async fn ping(&self) -> Result<()> {
        sqlx::query("select 1").execute(self).await?;
        Ok(())
    }
}

/// The app's version (0 before its first write).
async fn app_version<'c, DB, E>(conn: E, app: AppId) -> Result<u64>
where
    DB: Dialect,
    E: Executor<'c, Database = DB>,
    for<'q> DB::Arguments<'q>: IntoArguments<'q, DB>,
    for<'q> i64: Encode<'q, DB> + Decode<'q, DB> + Type<DB>,
    usize: ColumnIndex<DB::Row>,
{
    let version: Option<i64> = sqlx::query_scalar(DB::READS.app_version)
        .bind(app_key(app))
        .fetch_optional(conn)
        .await?;
    version.map_or(Ok(0), |v| unsigned(v, "an app version"))
}

/// The app's kicks, by UserID.
async fn kicks<'c, DB, E>(conn: E, app: AppId) -> Result<Vec<(String, u64)>>
where
    DB: Dialect,
    E: Executor<'c, Database = DB>,
    for<'q> DB::Arguments<'q>: IntoArguments<'q, DB>,
    for<'q> i64: Encode<'q, DB> + Type<DB>,
    for<'r> (String, i64): FromRow<'r, DB::Row>,
{
    let rows: Vec<(String, i64)> = sqlx::query_as(DB::READS.kicks)
        .bind(app_key(app))
        .fetch_all(conn)
        .await?;
    rows.into_iter()
        .map(|(user, t)| Ok((user, unsigned(t, "a kick's not_before")?)))
        .collect()
}

/// The profiles of `users`, in request order, from the `rows` read of them (`None`: no row).
pub(crate) fn profiles_in_order(
    users: &[Identifier],
    rows: Vec<AccountRow>,
) -> Result<Vec<Option<Profile>>> {
    in_order(users, rows, AccountRow::into_profile)
}

/// The profiles of `users`, packed, in request order, from the `rows` read of them (`None`: no
/// row): the read cache's form, made from the stored column without decoding it into a map.
pub(crate) fn packed_in_order(
    users: &[Identifier],
    rows: Vec<AccountRow>,
) -> Result<Vec<Option<PackedProfile>>> {
    in_order(users, rows, AccountRow::into_packed)
}

/// What `each` makes of the `rows` read of `users`, in request order (`None`: no row; a UserID
/// asked twice is answered twice).
fn in_order<T: Clone>(
    users: &[Identifier],
    rows: Vec<AccountRow>,
    each: fn(AccountRow) -> Result<(String, T)>,
) -> Result<Vec<Option<T>>> {
    if let [user] = users {
        // One account (most reads that miss the cache): no map.
        let row = rows.into_iter().find(|r| r.user_id == user.as_str());
        return Ok(vec![row.map(each).transpose()?.map(|(_, t)| t)]);
    }
    let mut found: HashMap<String, T, foldhash::fast::RandomState> =
        HashMap::with_capacity_and_hasher(rows.len(), Default::default());
    for row in rows {
        let (id, t) = each(row)?;
        found.insert(id, t);
    }
    Ok(users
        .iter()
        .map(|u| found.get(u.as_str()).cloned())
        .collect())
}

/// Whether each of `users` is among `existing`, in request order.
pub(crate) fn exist_in_order(users: &[Identifier], existing: &HashSet<String>) -> Vec<bool> {
    users
        .iter()
        .map(|u| existing.contains(u.as_str()))
        .collect()
}
