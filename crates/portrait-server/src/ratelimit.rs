//! Per-app, per-API call-rate limits (vendor: 200 calls/s for most APIs, 100/s for batch account
//! APIs; spec §1.4, §4). Each app has its own limiters, so one app going over its limit never
//! affects another. Over the limit → 60007.

use std::num::NonZeroU32;

use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};

use crate::settings::RateLimitConfig;

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
        }
    }

    /// Takes one call from `api`'s budget; `false` when over the limit.
    pub fn check(&self, api: Api) -> bool {
        let i = Api::ALL
            .iter()
            .position(|a| *a == api)
            .expect("every Api is in ALL");
        self.limiters[i].as_ref().is_none_or(|l| l.check().is_ok())
    }
}
