//! `[coherence]`: how nodes sharing PostgreSQL keep their read caches coherent without a
//! database round trip per read (`crate::coherence`, docs/deployment.md "Read caches").

use serde::{Deserialize, Serialize};

/// `[coherence]`. Used only when the store is shared (PostgreSQL) and `push.nats_url` is set.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct CoherenceSettings {
    /// `false`: every read asks PostgreSQL for the app's version first (the behaviour without
    /// NATS), even with NATS.
    pub enabled: bool,
    /// How long a node keeps trusting its cache after the last heartbeat it heard from another
    /// node, ms. A node that cannot publish its invalidation waits about this long (plus twice
    /// the clock skew and one heartbeat) before answering its write; so does a write for a node
    /// that does not acknowledge it (a node that died), at most.
    pub lease_ms: u64,
    /// The most the nodes' clocks may differ, ms (heartbeats carry their send time).
    pub max_clock_skew_ms: u64,
}

impl Default for CoherenceSettings {
    fn default() -> Self {
        Self {
            enabled: true,
            lease_ms: 500,
            max_clock_skew_ms: 100,
        }
    }
}

impl CoherenceSettings {
    /// Checks the timers.
    ///
    /// # Errors
    /// Names the offending setting.
    pub fn validate(&self) -> anyhow::Result<()> {
        anyhow::ensure!(
            (200..=60_000).contains(&self.lease_ms),
            "coherence: lease_ms must be within 200..=60000 (it is {})",
            self.lease_ms
        );
        anyhow::ensure!(
            self.max_clock_skew_ms <= 10_000,
            "coherence: max_clock_skew_ms must be at most 10000 (it is {})",
            self.max_clock_skew_ms
        );
        Ok(())
    }
}
