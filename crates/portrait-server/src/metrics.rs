//! Metrics: the `metrics` facade with a Prometheus recorder, rendered at `GET /metrics`.
//!
//! One recorder per process (the first node state to ask installs it; tests that start several
//! servers in one process share it). Names: `portrait_ws_connections`,
//! `portrait_push_changes_total`, `portrait_push_events_sent_total`, `portrait_push_overflows_total`,
//! `portrait_push_resyncs_total`, `portrait_push_feed_errors_total`,
//! `portrait_push_pruned_catch_ups_total` (catch-ups told 49005), `portrait_changes_pruned_total{app}`,
//! `portrait_webhook_deliveries_total{app,outcome}`, `portrait_webhook_lag{app}`,
//! `portrait_api_ok_total`, `portrait_api_errors_total{code}`, `portrait_bus_connected`,
//! `portrait_bus_published_total`, `portrait_bus_received_total`.

use std::sync::OnceLock;

use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};

static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();

/// The process's recorder handle, installing it on first use (`None` if another recorder was
/// installed by the embedding program).
pub fn handle() -> Option<&'static PrometheusHandle> {
    HANDLE
        .get_or_init(|| PrometheusBuilder::new().install_recorder().ok())
        .as_ref()
}

/// The current metrics in the Prometheus text format.
pub fn render() -> String {
    handle().map(PrometheusHandle::render).unwrap_or_default()
}
