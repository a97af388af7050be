//! Call-rate limits. Admin REST APIs: per app, per API (vendor: 200 calls/s for most APIs, 100/s
//! for batch account APIs; spec §1.4, §4). Client API: per user and per app ([`ClientLimits`]).
//! Each app has its own limiters, so one app going over its limit never affects another. Over
//! the limit → 60007. These limiters count per node; with `[cluster] redis_url` the same limits
//! are counted across nodes by [`crate::cluster`], which falls back to these while Redis does
//! not answer.
//!
//! The limits' settings (`[apps.rate_limits]`, `[apps.client_rate_limits]`) are defined here,
//! next to the [`Api`] names they are keyed by, and re-exported by [`crate::settings`]: settings
//! depend on this module, never the other way round.

use std::collections::BTreeMap;
use std::hash::BuildHasher;
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use governor::{DefaultDirectRateLimiter, DefaultKeyedRateLimiter, Quota, RateLimiter};

use serde::{Deserialize, Serialize};

/// The REST APIs that are rate limited, one limiter each per app.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Api {
    /// `v4/profile/portrait_set`
    PortraitSet,
    /// `v4/profile/portrait_get`
    PortraitGet,
    /// `v4/profile/portrait_import` (Portrait extension)
    PortraitImport,
    /// `v4/im_open_login_svc/account_import`
    AccountImport,
    /// `v4/im_open_login_svc/multiaccount_import`
    MultiaccountImport,
    /// `v4/im_open_login_svc/account_delete`
    AccountDelete,
    /// `v4/im_open_login_svc/account_check`
    AccountCheck,
    /// `v4/im_open_login_svc/kick`
    Kick,
}

impl Api {
    /// Every API.
    pub const ALL: [Api; 8] = [
        Api::PortraitSet,
        Api::PortraitGet,
        Api::PortraitImport,
        Api::AccountImport,
        Api::MultiaccountImport,
        Api::AccountDelete,
        Api::AccountCheck,
        Api::Kick,
    ];

    /// The last path segment, as used in config keys.
    pub fn name(self) -> &'static str {
        match self {
            Api::PortraitSet => "portrait_set",
            Api::PortraitGet => "portrait_get",
            Api::PortraitImport => "portrait_import",
            Api::AccountImport => "account_import",
            Api::MultiaccountImport => "multiaccount_import",
            Api::AccountDelete => "account_delete",
            Api::AccountCheck => "account_check",
            Api::Kick => "kick",
        }
    }

    /// Looks up [`Api::name`].
    pub fn from_name(name: &str) -> Option<Api> {
        Api::ALL.into_iter().find(|a| a.name() == name)
    }

    /// All names, comma-separated (for error messages).
    pub fn names() -> String {
        Api::ALL.map(Api::name).join(", ")
    }

    /// The vendor's documented default rate, calls per second.
    pub fn vendor_rate(self) -> u32 {
        match self {
            Api::MultiaccountImport
            | Api::PortraitImport
            | Api::AccountDelete
            | Api::AccountCheck => 100,
            _ => 200,
        }
    }
}

/// One app's limiters.
pub struct AppLimits {
    limiters: [Option<DefaultDirectRateLimiter>; Api::ALL.len()],
    /// Calls per second of each API (`None`: unlimited), for counting across nodes.
    rates: [Option<u32>; Api::ALL.len()],
}

impl AppLimits {
    /// Builds limiters from an app's config (burst = one second's worth).
    pub fn new(cfg: &RateLimitConfig) -> Self {
        Self {
            limiters: Api::ALL.map(|api| {
                cfg.limit(api)
                    .and_then(NonZeroU32::new)
                    .map(|n| RateLimiter::direct(Quota::per_second(n)))
            }),
            rates: Api::ALL.map(|api| cfg.limit(api)),
        }
    }

    /// Calls per second allowed to `api`, `None` when unlimited.
    pub fn limit(&self, api: Api) -> Option<u32> {
        self.rates[Self::index(api)]
    }

    fn index(api: Api) -> usize {
        Api::ALL
            .iter()
            .position(|a| *a == api)
            .expect("every Api is in ALL")
    }

    /// Takes one call from `api`'s budget; `false` when over the limit.
    pub fn check(&self, api: Api) -> bool {
        self.limiters[Self::index(api)]
            .as_ref()
            .is_none_or(|l| l.check().is_ok())
    }
}

/// What a client-API call costs: a read or a write.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ClientCall {
    /// `get_my_profile`, `get_user_profile`, a WebSocket connect.
    Read,
    /// `update_my_profile`.
    Write,
}

/// Which limit a client-API call went over.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Over {
    /// The user's own rate.
    User(u32),
    /// The whole app's rate.
    App(u32),
}

/// Idle users' limiter state is dropped this often.
const PRUNE_EVERY: Duration = Duration::from_secs(10);

/// One app's client-API limiters (`[apps.client_rate_limits]`). Users are keyed by a hash of
/// their UserID (no allocation per call; two users sharing a hash would share a budget), and
/// the state of users idle for a while is pruned, so memory follows the active users.
pub struct ClientLimits {
    cfg: ClientRateLimitConfig,
    user_reads: Option<DefaultKeyedRateLimiter<u64>>,
    user_writes: Option<DefaultKeyedRateLimiter<u64>>,
    app_reads: Option<DefaultDirectRateLimiter>,
    app_writes: Option<DefaultDirectRateLimiter>,
    hasher: foldhash::fast::RandomState,
    /// Milliseconds since `started` of the last prune.
    pruned: AtomicU64,
    started: std::time::Instant,
}

fn per_second(n: u32) -> Option<Quota> {
    NonZeroU32::new(n).map(Quota::per_second)
}

impl ClientLimits {
    /// Builds the limiters of one app.
    pub fn new(cfg: &ClientRateLimitConfig) -> Self {
        Self {
            cfg: cfg.clone(),
            user_reads: per_second(cfg.user_reads).map(RateLimiter::keyed),
            user_writes: per_second(cfg.user_writes).map(RateLimiter::keyed),
            app_reads: per_second(cfg.app_reads).map(RateLimiter::direct),
            app_writes: per_second(cfg.app_writes).map(RateLimiter::direct),
            hasher: foldhash::fast::RandomState::default(),
            pruned: AtomicU64::new(0),
            started: std::time::Instant::now(),
        }
    }

    /// Takes one `call` of `user` from the user's and the app's budgets.
    ///
    /// # Errors
    /// The limit that was exceeded.
    pub fn check(&self, user: &str, call: ClientCall) -> Result<(), Over> {
        self.prune_now_and_then();
        let key = self.hasher.hash_one(user);
        let (per_user, per_app, user_rate, app_rate) = match call {
            ClientCall::Read => (
                &self.user_reads,
                &self.app_reads,
                self.cfg.user_reads,
                self.cfg.app_reads,
            ),
            ClientCall::Write => (
                &self.user_writes,
                &self.app_writes,
                self.cfg.user_writes,
                self.cfg.app_writes,
            ),
        };
        if per_user
            .as_ref()
            .is_some_and(|l| l.check_key(&key).is_err())
        {
            return Err(Over::User(user_rate));
        }
        if per_app.as_ref().is_some_and(|l| l.check().is_err()) {
            return Err(Over::App(app_rate));
        }
        Ok(())
    }

    /// Takes one `call` from the app's budget only (the user's was taken across nodes).
    ///
    /// # Errors
    /// [`Over::App`].
    pub fn check_app(&self, call: ClientCall) -> Result<(), Over> {
        let (per_app, rate) = match call {
            ClientCall::Read => (&self.app_reads, self.cfg.app_reads),
            ClientCall::Write => (&self.app_writes, self.cfg.app_writes),
        };
        if per_app.as_ref().is_some_and(|l| l.check().is_err()) {
            return Err(Over::App(rate));
        }
        Ok(())
    }

    /// The limits.
    pub fn config(&self) -> &ClientRateLimitConfig {
        &self.cfg
    }

    /// The key of `user` in this node's per-user state (a hash of the UserID).
    pub fn user_key(&self, user: &str) -> u64 {
        self.hasher.hash_one(user)
    }

    fn prune_now_and_then(&self) {
        let now = self.started.elapsed().as_millis() as u64;
        let last = self.pruned.load(Ordering::Relaxed);
        if now.saturating_sub(last) < PRUNE_EVERY.as_millis() as u64
            || self
                .pruned
                .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
                .is_err()
        {
            return;
        }
        for l in [&self.user_reads, &self.user_writes].into_iter().flatten() {
            l.retain_recent();
            l.shrink_to_fit();
        }
    }
}

/// `[apps.rate_limits]`: calls per second per API for this app; `0` turns one API's limit off,
/// `enabled = false` all of them. Defaults are the vendor's.
///
/// No `deny_unknown_fields` here: serde does not support it together with `flatten` (every
/// per-API key would be refused). Unknown keys are refused by name in [`RateLimitConfig::validate`].
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default)]
pub struct RateLimitConfig {
    /// Master switch.
    pub enabled: bool,
    /// Per-API overrides, keyed by the API's last path segment (`portrait_get`, `kick`, …).
    #[serde(flatten)]
    pub per_api: BTreeMap<String, u32>,
}

impl Default for RateLimitConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            per_api: BTreeMap::new(),
        }
    }
}

impl RateLimitConfig {
    /// Calls per second for `api`, or `None` when unlimited.
    pub fn limit(&self, api: Api) -> Option<u32> {
        if !self.enabled {
            return None;
        }
        let n = self
            .per_api
            .get(api.name())
            .copied()
            .unwrap_or(api.vendor_rate());
        (n > 0).then_some(n)
    }

    /// Checks that every key names an API.
    ///
    /// # Errors
    /// Names the unknown key.
    pub fn validate(&self) -> anyhow::Result<()> {
        for k in self.per_api.keys() {
            anyhow::ensure!(
                Api::from_name(k).is_some(),
                "rate_limits: unknown API {k:?}; use one of {}",
                Api::names()
            );
        }
        Ok(())
    }
}

/// `[apps.client_rate_limits]`: calls per second of the client API (`/v1`, signed in with the
/// user's own UserSig), counted across nodes with `[cluster] redis_url`, else on each node
/// (`crate::cluster`). A user's calls are held to the `user_*` rate and
/// the whole app's to the `app_*` rate; over either, the call is answered 60007 and does nothing
/// (no change, push or webhook). Reads are `get_my_profile`, `get_user_profile` and WebSocket
/// connects; writes are `update_my_profile`. Bursts of one second's worth are allowed; 0 turns
/// one limit off. (WebSocket ops are limited per connection: `[push] ops_per_sec`.)
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct ClientRateLimitConfig {
    /// Reads of one user per second.
    pub user_reads: u32,
    /// Writes of one user per second.
    pub user_writes: u32,
    /// Reads of all users of the app together per second.
    pub app_reads: u32,
    /// Writes of all users of the app together per second.
    pub app_writes: u32,
}

impl Default for ClientRateLimitConfig {
    fn default() -> Self {
        Self {
            user_reads: 50,
            user_writes: 10,
            app_reads: 20_000,
            app_writes: 2_000,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_user_over_their_rate_does_not_use_up_another_users() {
        let limits = ClientLimits::new(&ClientRateLimitConfig {
            user_reads: 3,
            user_writes: 1,
            app_reads: 5,
            app_writes: 0,
        });
        for _ in 0..3 {
            assert_eq!(limits.check("alice", ClientCall::Read), Ok(()));
        }
        assert_eq!(limits.check("alice", ClientCall::Read), Err(Over::User(3)));
        assert_eq!(limits.check("bob", ClientCall::Read), Ok(()));
        assert_eq!(limits.check("carol", ClientCall::Read), Ok(()));
        assert_eq!(limits.check("dave", ClientCall::Read), Err(Over::App(5)));
        assert_eq!(limits.check("alice", ClientCall::Write), Ok(()));
        assert_eq!(limits.check("alice", ClientCall::Write), Err(Over::User(1)));
        assert_eq!(
            limits.check("bob", ClientCall::Write),
            Ok(()),
            "no app write limit"
        );
    }
}
