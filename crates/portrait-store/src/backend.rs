//! The one [`Store`] implementation of the SQL backends: [`Engine`], generic over a [`Backend`].
//!
//! Each method of [`Store`] is written here once for both backends: its signature and its
//! tracing span; what both backends do alike before they part (nothing to do for an empty
//! request, a kick's time and the bounds of a prune saturated into the database's range, a
//! cursor's version converted, a set's job built and checked, a dump checked before it is
//! restored, profiles put back in request order); and the reads both make alike, forwarded to
//! [`Reads`] on the backend's reading connections. A [`Backend`] holds only what genuinely
//! differs: the writes (SQLite's writer thread and its group commit, PostgreSQL's transactions
//! under the app's lock and its group commit per app), the account lookups whose statements
//! differ too much to share, leases, and closing.
//!
//! [`SqliteStore`](crate::sqlite::SqliteStore) and [`PgStore`](crate::postgres::PgStore) are
//! `Engine`s of their backend. A new method of [`Store`] is written here once and, if the
//! backends carry it out differently, added to [`Backend`] and implemented by each backend.
//! Dispatch to the backend is static: an `Engine` costs nothing over the backend itself.
//!
//! What must not live here: SQL (each backend's own, or the shared reads' in `read.rs`), or
//! anything one backend does differently from the other.

use std::collections::HashSet;
use std::fmt;
use std::future::Future;

use async_trait::async_trait;
use portrait_core::{Identifier, ProfileValue, Tag};

use crate::batch::SetJob;
use crate::codec::{distinct, version_key, AccountRow};
use crate::read::{exist_in_order, packed_in_order, profiles_in_order, Reads};
use crate::{
    AppDump, AppHead, AppId, AppRecord, Change, NewAccount, Origin, PackedProfile, Profile, Result,
    Store,
};

/// What a SQL backend does its own way; [`Engine`] makes a [`Store`] of it. Each method is named
/// apart from the [`Store`] method it serves, so that a call never means the other one.
pub(crate) trait Backend: Send + Sync + 'static {
    /// The backend's pool of reading connections, on which the shared reads run.
    type Readers: Reads;

    /// The reading connections.
    fn readers(&self) -> &Self::Readers;

    /// [`Store::import_accounts`] of at least one account.
    fn import(
        &self,
        app: AppId,
        accounts: &[NewAccount],
        origin: Origin<'_>,
    ) -> impl Future<Output = Result<()>> + Send;

    /// [`Store::delete_accounts`] of at least one user.
    fn delete(
        &self,
        app: AppId,
        users: &[Identifier],
        origin: Origin<'_>,
    ) -> impl Future<Output = Result<Vec<bool>>> + Send;

    /// Which of `ids` (distinct, at least one) are accounts of the app, read from one snapshot.
    fn existing(
        &self,
        app: AppId,
        ids: &[&str],
    ) -> impl Future<Output = Result<HashSet<String>>> + Send;

    /// The stored rows of the accounts of the app among `ids` (distinct, at least one), read
    /// from one snapshot, in no particular order.
    fn account_rows(
        &self,
        app: AppId,
        ids: &[&str],
    ) -> impl Future<Output = Result<Vec<AccountRow>>> + Send;

    /// [`Store::kick`], `not_before` saturated into the database's range.
    fn revoke(
        &self,
        app: AppId,
        user: &Identifier,
        not_before: i64,
    ) -> impl Future<Output = Result<bool>> + Send;

    /// [`Store::set_profile_expecting`] of a job already built and checked; answered after the
    /// `COMMIT` that holds it.
    fn set(&self, job: SetJob) -> impl Future<Output = Result<u64>> + Send;

    /// [`Store::set_cursor`], the version as stored.
    fn move_cursor(
        &self,
        app: AppId,
        name: &str,
        version: i64,
    ) -> impl Future<Output = Result<()>> + Send;

    /// [`Store::prune_changes`], `through` and `limit` (at least 1) saturated into the
    /// database's range.
    fn prune(
        &self,
        app: AppId,
        through: i64,
        limit: i64,
    ) -> impl Future<Output = Result<usize>> + Send;

    /// [`Store::lease`].
    fn take_lease(
        &self,
        app: AppId,
        name: &str,
        holder: &str,
        ttl_ms: u64,
    ) -> impl Future<Output = Result<bool>> + Send;

    /// [`Store::members`].
    fn register(&self, node: &str, ttl_ms: u64)
        -> impl Future<Output = Result<Vec<String>>> + Send;

    /// [`Store::put_app_record`].
    fn put_record(
        &self,
        app: AppId,
        expected: Option<u64>,
        body: &str,
    ) -> impl Future<Output = Result<u64>> + Send;

    /// [`Store::restore_app`] of a dump already checked ([`AppDump::check`]).
    fn restore(&self, dump: AppDump) -> impl Future<Output = Result<()>> + Send;

    /// [`Store::close`].
    fn shut(&self) -> impl Future<Output = ()> + Send;
}

/// A [`Store`] on one of the SQL backends: [`SqliteStore`](crate::sqlite::SqliteStore) and
/// [`PgStore`](crate::postgres::PgStore) are `Engine`s of theirs, made by their `open`. Cloning
/// it clones the backend, whose clones share its connections and queues.
#[derive(Clone)]
pub struct Engine<B>(pub(crate) B);

/// The backend's own `Debug`, which keeps the connect options (and their password) out.
impl<B: fmt::Debug> fmt::Debug for Engine<B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

#[async_trait]
impl<B: Backend> Store for Engine<B> {
    #[tracing::instrument(skip_all, fields(app = app, accounts = accounts.len()))]
    async fn import_accounts(
        &self,
        app: AppId,
        accounts: &[NewAccount],
        origin: Origin<'_>,
    ) -> Result<()> {
        if accounts.is_empty() {
            return Ok(());
        }
        self.0.import(app, accounts, origin).await
    }

    #[tracing::instrument(skip_all, fields(app = app, users = users.len()))]
    async fn delete_accounts(
        &self,
        app: AppId,
        users: &[Identifier],
        origin: Origin<'_>,
    ) -> Result<Vec<bool>> {
        if users.is_empty() {
            return Ok(Vec::new());
        }
        self.0.delete(app, users, origin).await
    }

    #[tracing::instrument(skip_all, fields(app = app, users = users.len()))]
    async fn accounts_exist(&self, app: AppId, users: &[Identifier]) -> Result<Vec<bool>> {
        if users.is_empty() {
            return Ok(Vec::new());
        }
        let ids = distinct(users.iter().map(Identifier::as_str));
        let existing = self.0.existing(app, &ids).await?;
        Ok(exist_in_order(users, &existing))
    }

    #[tracing::instrument(skip_all, fields(app = app, limit = limit))]
    async fn scan_accounts(
        &self,
        app: AppId,
        prefix: &str,
        after: Option<&Identifier>,
        limit: usize,
    ) -> Result<Vec<Identifier>> {
        self.0
            .readers()
            .scan_accounts(app, prefix, after, limit)
            .await
    }

    #[tracing::instrument(skip_all, fields(app = app))]
    async fn kick(&self, app: AppId, user: &Identifier, not_before: u64) -> Result<bool> {
        // Saturating: a `not_before` past year 292 billion revokes everything either way.
        let not_before = i64::try_from(not_before).unwrap_or(i64::MAX);
        self.0.revoke(app, user, not_before).await
    }

    #[tracing::instrument(skip_all, fields(app = app))]
    async fn kicks(&self, app: AppId) -> Result<Vec<(String, u64)>> {
        self.0.readers().kicks(app).await
    }

    #[tracing::instrument(skip_all, fields(app = app, items = items.len()))]
    async fn set_profile_expecting(
        &self,
        app: AppId,
        user: &Identifier,
        items: &[(Tag, ProfileValue)],
        origin: Origin<'_>,
        expected: Option<u64>,
    ) -> Result<u64> {
        self.0
            .set(SetJob::new(app, user, items, origin, expected)?)
            .await
    }

    #[tracing::instrument(skip_all, fields(app = app, users = users.len()))]
    async fn get_profiles(&self, app: AppId, users: &[Identifier]) -> Result<Vec<Option<Profile>>> {
        if users.is_empty() {
            return Ok(Vec::new());
        }
        let ids = distinct(users.iter().map(Identifier::as_str));
        let rows = self.0.account_rows(app, &ids).await?;
        profiles_in_order(users, rows)
    }

    #[tracing::instrument(skip_all, fields(app = app, users = users.len()))]
    async fn get_profiles_shared(
        &self,
        app: AppId,
        users: &[Identifier],
    ) -> Result<Vec<Option<PackedProfile>>> {
        if users.is_empty() {
            return Ok(Vec::new());
        }
        let ids = distinct(users.iter().map(Identifier::as_str));
        let rows = self.0.account_rows(app, &ids).await?;
        packed_in_order(users, rows)
    }

    #[tracing::instrument(skip_all, fields(app = app, since = since, limit = limit))]
    async fn changes_since(&self, app: AppId, since: u64, limit: usize) -> Result<Vec<Change>> {
        self.0.readers().changes_since(app, since, limit).await
    }

    #[tracing::instrument(skip_all, fields(app = app, users = users.len(), since = since, limit = limit))]
    async fn changes_of(
        &self,
        app: AppId,
        users: &[Identifier],
        since: u64,
        limit: usize,
    ) -> Result<crate::ChangesOf> {
        self.0.readers().changes_of(app, users, since, limit).await
    }

    #[tracing::instrument(skip_all, fields(app = app))]
    async fn current_version(&self, app: AppId) -> Result<u64> {
        self.0.readers().current_version(app).await
    }

    #[tracing::instrument(skip_all, fields(app = app, name = name))]
    async fn cursor(&self, app: AppId, name: &str) -> Result<Option<u64>> {
        self.0.readers().cursor(app, name).await
    }

    #[tracing::instrument(skip_all, fields(app = app, name = name, version = version))]
    async fn set_cursor(&self, app: AppId, name: &str, version: u64) -> Result<()> {
        let version = version_key(version)?;
        self.0.move_cursor(app, name, version).await
    }

    #[tracing::instrument(skip_all, fields(app = app, through = through))]
    async fn prune_changes(&self, app: AppId, through: u64, limit: usize) -> Result<usize> {
        if limit == 0 {
            return Ok(0);
        }
        let through = i64::try_from(through).unwrap_or(i64::MAX);
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        self.0.prune(app, through, limit).await
    }

    #[tracing::instrument(skip_all, fields(app = app, name = name))]
    async fn lease(&self, app: AppId, name: &str, holder: &str, ttl_ms: u64) -> Result<bool> {
        self.0.take_lease(app, name, holder, ttl_ms).await
    }

    #[tracing::instrument(skip_all)]
    async fn members(&self, node: &str, ttl_ms: u64) -> Result<Vec<String>> {
        self.0.register(node, ttl_ms).await
    }

    #[tracing::instrument(skip_all)]
    async fn apps(&self) -> Result<Vec<AppId>> {
        self.0.readers().apps().await
    }

    #[tracing::instrument(skip_all)]
    async fn app_heads(&self) -> Result<Vec<AppHead>> {
        self.0.readers().app_heads().await
    }

    #[tracing::instrument(skip_all, fields(app = app))]
    async fn dump_app(&self, app: AppId) -> Result<AppDump> {
        self.0.readers().dump_app(app).await
    }

    #[tracing::instrument(skip_all, fields(app = dump.app))]
    async fn restore_app(&self, dump: AppDump) -> Result<()> {
        // Checked here, off SQLite's writer thread and before PostgreSQL takes the app's lock.
        dump.check()?;
        self.0.restore(dump).await
    }

    async fn app_records(&self, after_revision: u64) -> Result<Vec<AppRecord>> {
        self.0.readers().app_records(after_revision).await
    }

    async fn put_app_record(&self, app: AppId, expected: Option<u64>, body: &str) -> Result<u64> {
        self.0.put_record(app, expected, body).await
    }

    #[tracing::instrument(skip_all)]
    async fn ping(&self) -> Result<()> {
        self.0.readers().ping().await
    }

    #[tracing::instrument(skip_all)]
    async fn close(&self) {
        self.0.shut().await;
    }
}
