//! [`Timed`]: a [`Store`] wrapper that measures every call into the backend — the store latency an
//! operator watches (`portrait_store_duration_seconds{op}`, `portrait_store_errors_total{op}`;
//! docs/operations.md). The server puts it directly around the backend, inside the read cache, so
//! cache hits are not counted as store calls (they are `portrait_cache_hits_total`).
//!
//! The metric handles are registered when the wrapper is made, with whatever `metrics` recorder
//! the process has installed by then: install it first (the server does).

use std::future::Future;
use std::sync::Arc;
use std::time::Instant;

use async_trait::async_trait;
use metrics::{Counter, Histogram};
use portrait_core::{Identifier, ProfileValue, Tag};

use crate::{
    AppDump, AppId, AppRecord, Change, NewAccount, Origin, PackedProfile, Profile, Result, Store,
};

/// The store operations measured, one `op` label each (a fixed set: the [`Store`] methods).
const OPS: [&str; 24] = [
    "import_accounts",
    "delete_accounts",
    "accounts_exist",
    "scan_accounts",
    "kick",
    "kicks",
    "set_profile",
    "get_profiles",
    "changes_since",
    "changes_of",
    "current_version",
    "cursor",
    "set_cursor",
    "prune_changes",
    "lease",
    "members",
    "apps",
    "app_heads",
    "dump_app",
    "restore_app",
    "app_records",
    "put_app_record",
    "ping",
    "close",
];

/// Index of `name` in [`OPS`]; evaluated at compile time (`const { op("…") }`), so a name not in
/// the list does not compile.
const fn op(name: &str) -> usize {
    let mut i = 0;
    while i < OPS.len() {
        if str_eq(OPS[i], name) {
            return i;
        }
        i += 1;
    }
    panic!("unknown store op");
}

const fn str_eq(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    if a.len() != b.len() {
        return false;
    }
    let mut i = 0;
    while i < a.len() {
        if a[i] != b[i] {
            return false;
        }
        i += 1;
    }
    true
}

/// A backend whose every call is timed.
pub struct Timed {
    inner: Arc<dyn Store>,
    duration: Vec<Histogram>,
    errors: Vec<Counter>,
}

impl Timed {
    /// Measures the calls into `inner`.
    pub fn new(inner: Arc<dyn Store>) -> Self {
        Self {
            inner,
            duration: OPS
                .iter()
                .map(|op| metrics::histogram!("portrait_store_duration_seconds", "op" => *op))
                .collect(),
            errors: OPS
                .iter()
                .map(|op| metrics::counter!("portrait_store_errors_total", "op" => *op))
                .collect(),
        }
    }

    /// Runs `call`, recording its time (failed calls too) and counting its failure.
    async fn time<T>(&self, op: usize, call: impl Future<Output = Result<T>>) -> Result<T> {
        let start = Instant::now();
        let result = call.await;
        self.duration[op].record(start.elapsed().as_secs_f64());
        if result.is_err() {
            self.errors[op].increment(1);
        }
        result
    }
}

#[async_trait]
impl Store for Timed {
    async fn import_accounts(
        &self,
        app: AppId,
        accounts: &[NewAccount],
        origin: Origin<'_>,
    ) -> Result<()> {
        let call = self.inner.import_accounts(app, accounts, origin);
        self.time(const { op("import_accounts") }, call).await
    }

    async fn delete_accounts(
        &self,
        app: AppId,
        users: &[Identifier],
        origin: Origin<'_>,
    ) -> Result<Vec<bool>> {
        let call = self.inner.delete_accounts(app, users, origin);
        self.time(const { op("delete_accounts") }, call).await
    }

    async fn accounts_exist(&self, app: AppId, users: &[Identifier]) -> Result<Vec<bool>> {
        let call = self.inner.accounts_exist(app, users);
        self.time(const { op("accounts_exist") }, call).await
    }

    async fn scan_accounts(
        &self,
        app: AppId,
        prefix: &str,
        after: Option<&Identifier>,
        limit: usize,
    ) -> Result<Vec<Identifier>> {
        let call = self.inner.scan_accounts(app, prefix, after, limit);
        self.time(const { op("scan_accounts") }, call).await
    }

    async fn kick(&self, app: AppId, user: &Identifier, not_before: u64) -> Result<bool> {
        self.time(const { op("kick") }, self.inner.kick(app, user, not_before))
            .await
    }

    async fn kicks(&self, app: AppId) -> Result<Vec<(String, u64)>> {
        self.time(const { op("kicks") }, self.inner.kicks(app))
            .await
    }

    async fn set_profile_expecting(
        &self,
        app: AppId,
        user: &Identifier,
        items: &[(Tag, ProfileValue)],
        origin: Origin<'_>,
        expected: Option<u64>,
    ) -> Result<u64> {
        let call = self
            .inner
            .set_profile_expecting(app, user, items, origin, expected);
        self.time(const { op("set_profile") }, call).await
    }

    async fn get_profiles(&self, app: AppId, users: &[Identifier]) -> Result<Vec<Option<Profile>>> {
        let call = self.inner.get_profiles(app, users);
        self.time(const { op("get_profiles") }, call).await
    }

    async fn get_profiles_shared(
        &self,
        app: AppId,
        users: &[Identifier],
    ) -> Result<Vec<Option<PackedProfile>>> {
        let call = self.inner.get_profiles_shared(app, users);
        self.time(const { op("get_profiles") }, call).await
    }

    async fn changes_since(&self, app: AppId, since: u64, limit: usize) -> Result<Vec<Change>> {
        let call = self.inner.changes_since(app, since, limit);
        self.time(const { op("changes_since") }, call).await
    }

    async fn changes_of(
        &self,
        app: AppId,
        users: &[Identifier],
        since: u64,
        limit: usize,
    ) -> Result<crate::ChangesOf> {
        let call = self.inner.changes_of(app, users, since, limit);
        self.time(const { op("changes_of") }, call).await
    }

    async fn current_version(&self, app: AppId) -> Result<u64> {
        let call = self.inner.current_version(app);
        self.time(const { op("current_version") }, call).await
    }

    async fn cursor(&self, app: AppId, name: &str) -> Result<Option<u64>> {
        self.time(const { op("cursor") }, self.inner.cursor(app, name))
            .await
    }

    async fn set_cursor(&self, app: AppId, name: &str, version: u64) -> Result<()> {
        let call = self.inner.set_cursor(app, name, version);
        self.time(const { op("set_cursor") }, call).await
    }

    async fn prune_changes(&self, app: AppId, through: u64, limit: usize) -> Result<usize> {
        let call = self.inner.prune_changes(app, through, limit);
        self.time(const { op("prune_changes") }, call).await
    }

    async fn members(&self, node: &str, ttl_ms: u64) -> Result<Vec<String>> {
        let call = self.inner.members(node, ttl_ms);
        self.time(const { op("members") }, call).await
    }

    async fn lease(&self, app: AppId, name: &str, holder: &str, ttl_ms: u64) -> Result<bool> {
        let call = self.inner.lease(app, name, holder, ttl_ms);
        self.time(const { op("lease") }, call).await
    }

    async fn apps(&self) -> Result<Vec<AppId>> {
        self.time(const { op("apps") }, self.inner.apps()).await
    }

    async fn app_heads(&self) -> Result<Vec<crate::AppHead>> {
        self.time(const { op("app_heads") }, self.inner.app_heads())
            .await
    }

    async fn dump_app(&self, app: AppId) -> Result<AppDump> {
        self.time(const { op("dump_app") }, self.inner.dump_app(app))
            .await
    }

    async fn restore_app(&self, dump: AppDump) -> Result<()> {
        self.time(const { op("restore_app") }, self.inner.restore_app(dump))
            .await
    }

    async fn app_records(&self, after_revision: u64) -> Result<Vec<AppRecord>> {
        let call = self.inner.app_records(after_revision);
        self.time(const { op("app_records") }, call).await
    }

    async fn put_app_record(&self, app: AppId, expected: Option<u64>, body: &str) -> Result<u64> {
        let call = self.inner.put_app_record(app, expected, body);
        self.time(const { op("put_app_record") }, call).await
    }

    async fn ping(&self) -> Result<()> {
        self.time(const { op("ping") }, self.inner.ping()).await
    }

    async fn close(&self) {
        let start = Instant::now();
        self.inner.close().await;
        self.duration[const { op("close") }].record(start.elapsed().as_secs_f64());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_op_has_one_label() {
        for (i, name) in OPS.iter().enumerate() {
            assert_eq!(op(name), i);
        }
        let mut sorted = OPS.to_vec();
        sorted.sort_unstable();
        sorted.dedup();
        assert_eq!(sorted.len(), OPS.len(), "labels are distinct");
    }
}
