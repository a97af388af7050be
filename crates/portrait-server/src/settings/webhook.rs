//! `[apps.webhook]`: the settings of an app's `Profile.CallbackPortraitSet` delivery and their
//! defaults (the worker is [`crate::webhook`]).

use serde::{Deserialize, Serialize};

/// `[apps.webhook]`: where and how `Profile.CallbackPortraitSet` is delivered.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookConfig {
    /// The app's callback URL (http or https).
    pub url: String,
    /// Timeout of one delivery attempt.
    #[serde(default = "WebhookConfig::default_timeout_ms")]
    pub timeout_ms: u64,
    /// Deliveries in flight at once, each to a different account (one account's changes go one
    /// at a time, in order).
    #[serde(default = "WebhookConfig::default_concurrency")]
    pub concurrency: usize,
    /// Most changes of one account read from the change log and not yet delivered that are held
    /// in memory (queued, in flight or waiting to be retried); the account's further changes are
    /// read again by account once half of these are delivered ([`crate::webhook`]). All accounts
    /// together hold at most [`crate::webhook::TOTAL_PENDING_FACTOR`] times this; when reached,
    /// reading the log pauses until some are delivered or given up on.
    #[serde(default = "WebhookConfig::default_max_pending")]
    pub max_pending: usize,
    /// First retry delay; doubled after each failure up to `max_backoff_ms`.
    #[serde(default = "WebhookConfig::default_initial_backoff_ms")]
    pub initial_backoff_ms: u64,
    /// Longest retry delay.
    #[serde(default = "WebhookConfig::default_max_backoff_ms")]
    pub max_backoff_ms: u64,
    /// A change still undelivered this long after it was made is dropped (logged and counted).
    #[serde(default = "WebhookConfig::default_give_up_after_ms")]
    pub give_up_after_ms: u64,
    /// How long a node's delivery lease lasts without renewal when nodes share a database
    /// (renewed every third of it): when the delivering node dies, another takes over after at
    /// most this long ([`crate::webhook`]). At least 100.
    #[serde(default = "WebhookConfig::default_lease_ms")]
    pub lease_ms: u64,
}

impl WebhookConfig {
    fn default_timeout_ms() -> u64 {
        3_000
    }
    fn default_concurrency() -> usize {
        16
    }
    fn default_max_pending() -> usize {
        10_000
    }
    fn default_initial_backoff_ms() -> u64 {
        500
    }
    fn default_max_backoff_ms() -> u64 {
        60_000
    }
    fn default_give_up_after_ms() -> u64 {
        24 * 3600 * 1000
    }
    fn default_lease_ms() -> u64 {
        crate::webhook::LEASE_MS
    }

    /// A webhook to `url` with every other setting at its default.
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            timeout_ms: Self::default_timeout_ms(),
            concurrency: Self::default_concurrency(),
            max_pending: Self::default_max_pending(),
            initial_backoff_ms: Self::default_initial_backoff_ms(),
            max_backoff_ms: Self::default_max_backoff_ms(),
            give_up_after_ms: Self::default_give_up_after_ms(),
            lease_ms: Self::default_lease_ms(),
        }
    }
}
