//! Tenants: the apps this node serves, each with its secret key (and, during a rotation's grace,
//! the previous one), admins, profile schema, rate limiters and kick (UserSig revocation) table.
//! Built from an app's settings at start and again whenever they change (`crate::live`): the
//! new tenant shares the kick table of the one it replaces (rate limiters start afresh). The
//! kick table is loaded from the store and kept current by the `kick` handler.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};

use anyhow::Context;
use portrait_core::schema::Schema;
use portrait_core::usersig::VerifiedSig;
use secrecy::{ExposeSecret, SecretString};

use crate::ratelimit::{AppLimits, ClientLimits};
use crate::settings::AppConfig;

/// One app at run time.
pub struct Tenant {
    /// The SDKAppID.
    pub sdkappid: u64,
    /// Secret key for UserSigs; never logged.
    key: SecretString,
    /// The key before the last rotation and the Unix second until which it still verifies.
    previous_key: Option<(SecretString, u64)>,
    /// Admin identifiers.
    pub admins: HashSet<String>,
    /// Standard + custom fields, sensitive words.
    pub schema: Schema,
    /// Per-API rate limiters.
    pub limits: AppLimits,
    /// Client-API rate limiters.
    pub client_limits: ClientLimits,
    /// Seconds a UserSig may be dated ahead of this server's clock.
    pub clock_skew: u64,
    /// user → Unix second at or before which that user's UserSigs are revoked (by `kick`).
    /// Shared with the tenants that replace this one when the app's settings change.
    kicks: Arc<RwLock<HashMap<String, u64>>>,
    /// Whether `kicks` holds the app's kicks: false while they could not be read (the app's
    /// database was down when the node took the app on), and no UserSig is accepted then.
    /// Shared like `kicks`.
    kicks_loaded: Arc<AtomicBool>,
    /// UserSigs whose form and HMAC were already verified: usersig → its decoded fields. Clients
    /// reuse one sig for many calls, so the zlib + JSON + HMAC work is done once per distinct sig;
    /// expiry and kicks are still checked on every call. Bounded by [`SIG_CACHE_MAX`]. Only
    /// verified sigs become keys, so a fast seeded hash is safe here.
    sigs: RwLock<HashMap<String, Arc<VerifiedSig>, foldhash::fast::RandomState>>,
}

/// Most verified UserSigs remembered per app; the cache is emptied when it is full.
pub const SIG_CACHE_MAX: usize = 10_000;

impl Tenant {
    /// Builds a tenant from config.
    ///
    /// # Errors
    /// Invalid custom fields or sensitive-word list.
    pub fn from_config(cfg: &AppConfig) -> anyhow::Result<Tenant> {
        Self::replacing(cfg, None)
    }

    /// Builds a tenant from config that takes over the kick table of `old` (the tenant it
    /// replaces), if any.
    ///
    /// # Errors
    /// Invalid custom fields or sensitive-word list.
    pub fn replacing(cfg: &AppConfig, old: Option<&Tenant>) -> anyhow::Result<Tenant> {
        // A hidden field is left out of the schema: every API then treats it as unknown. (The
        // limit of 20 counts it: `AppConfig::validate`.)
        let fields = cfg
            .custom_fields
            .iter()
            .filter(|f| !f.hidden)
            .map(|f| f.to_field())
            .collect::<Result<Vec<_>, _>>()?;
        let schema = Schema::new(fields, &cfg.sensitive_words)
            .with_context(|| format!("app {}", cfg.sdkappid))?;
        Ok(Tenant {
            sdkappid: cfg.sdkappid,
            key: cfg.key.clone(),
            previous_key: cfg
                .previous_key
                .as_ref()
                .map(|p| (p.key.clone(), p.valid_until)),
            admins: cfg.admins.iter().cloned().collect(),
            schema,
            limits: AppLimits::new(&cfg.rate_limits),
            client_limits: ClientLimits::new(&cfg.client_rate_limits),
            clock_skew: cfg.usersig_clock_skew_secs,
            kicks: old.map_or_else(Default::default, |o| o.kicks.clone()),
            kicks_loaded: old.map_or_else(
                || Arc::new(AtomicBool::new(true)),
                |o| o.kicks_loaded.clone(),
            ),
            sigs: RwLock::new(HashMap::default()),
        })
    }

    /// The secret key.
    pub fn key(&self) -> &str {
        self.key.expose_secret()
    }

    /// The key before the last rotation, if it still verifies at `now` (Unix seconds).
    pub fn previous_key(&self, now: u64) -> Option<&str> {
        self.previous_key
            .as_ref()
            .filter(|(_, until)| now <= *until)
            .map(|(k, _)| k.expose_secret())
    }

    /// Whether `identifier` is an admin of this app.
    pub fn is_admin(&self, identifier: &str) -> bool {
        self.admins.contains(identifier)
    }

    /// The revocation second for `user`, if kicked.
    pub fn kicked_before(&self, user: &str) -> Option<u64> {
        crate::sync::read(&self.kicks).get(user).copied()
    }

    /// Whether the app's kicks are loaded (see the field); until they are, calls fail as when
    /// the store is down.
    pub fn kicks_loaded(&self) -> bool {
        self.kicks_loaded.load(Ordering::Acquire)
    }

    /// Says whether the app's kicks are loaded (set after loading them into the table).
    pub fn set_kicks_loaded(&self, loaded: bool) {
        self.kicks_loaded.store(loaded, Ordering::Release);
    }

    /// Records a kick (also used to load the table at start).
    pub fn set_kick(&self, user: String, not_before: u64) {
        crate::sync::write(&self.kicks).insert(user, not_before);
    }

    /// The decoded fields of `usersig` if it was verified before.
    pub fn cached_sig(&self, usersig: &str) -> Option<Arc<VerifiedSig>> {
        crate::sync::read(&self.sigs).get(usersig).cloned()
    }

    /// Remembers a verified `usersig`.
    pub fn cache_sig(&self, usersig: &str, sig: Arc<VerifiedSig>) {
        let mut sigs = crate::sync::write(&self.sigs);
        if sigs.len() >= SIG_CACHE_MAX {
            sigs.clear();
        }
        sigs.insert(usersig.to_owned(), sig);
    }
}
