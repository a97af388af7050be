//! Logging: `tracing` with an `EnvFilter` (`RUST_LOG` overrides the configured filter). Request
//! spans are made by the [`crate::edge`]; UserSigs and profile values are never logged above
//! `debug`.

use tracing_subscriber::EnvFilter;

/// Installs the global subscriber (once per process; later calls are no-ops).
pub fn init(filter: &str) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(filter));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(false)
        .try_init();
}
