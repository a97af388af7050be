//! Metrics: the `metrics` facade with a Prometheus recorder, rendered at `GET /metrics`.
//!
//! One recorder per process (the first node state to ask installs it; tests that start several
//! servers in one process share it). Every metric, its labels and what it counts are listed in
//! `docs/operations.md` (an API test checks that everything served is listed there), and
//! `docs/grafana-dashboard.json` draws them. Request metrics are recorded by the edge ([`http`]);
//! store latency by [`portrait_store::timed::Timed`] around the backend ([`measured`]).
//!
//! Histograms (names ending in `_duration_seconds`) have fixed buckets from 100 µs to 10 s. Their
//! samples are folded into the buckets every [`UPKEEP`] by a thread of the recorder's own, so
//! memory stays bounded whether or not anything scrapes `/metrics`.

use std::sync::OnceLock;
use std::time::Duration;

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

pub mod http;

/// `backend`, its every call measured (`portrait_store_duration_seconds{op}`,
/// `portrait_store_errors_total{op}`), with the recorder installed first so the handles are live.
/// Goes directly around the backend, inside the read cache, so only real store calls count.
pub fn measured(
    backend: std::sync::Arc<dyn portrait_store::Store>,
) -> std::sync::Arc<dyn portrait_store::Store> {
    handle();
    std::sync::Arc::new(portrait_store::timed::Timed::new(backend))
}

static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();

/// How often histogram samples are folded into their buckets.
pub const UPKEEP: Duration = Duration::from_secs(5);

/// Bucket bounds of every `*_duration_seconds` histogram, in seconds.
pub const DURATION_BUCKETS: [f64; 16] = [
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
    5.0, 10.0,
];

/// The process's recorder handle, installing it on first use (`None` if another recorder was
/// installed by the embedding program).
pub fn handle() -> Option<&'static PrometheusHandle> {
    HANDLE
        .get_or_init(|| {
            let handle = PrometheusBuilder::new()
                .set_buckets_for_metric(
                    Matcher::Suffix("_duration_seconds".into()),
                    &DURATION_BUCKETS,
                )
                .ok()?
                .install_recorder()
                .ok()?;
            let upkeep = handle.clone();
            std::thread::Builder::new()
                .name("metrics-upkeep".into())
                .spawn(move || loop {
                    std::thread::sleep(UPKEEP);
                    upkeep.run_upkeep();
                })
                .ok()?;
            Some(handle)
        })
        .as_ref()
}

/// The current metrics in the Prometheus text format (the striped counters brought up to date
/// first: [`portrait_store::striped`]).
pub fn render() -> String {
    portrait_store::striped::flush();
    handle().map(PrometheusHandle::render).unwrap_or_default()
}
