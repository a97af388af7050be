//! Request metrics, recorded by the edge ([`crate::edge`]) once per HTTP request:
//!
//! * `portrait_http_requests_total{api,code}`: answered requests by route and by the vendor
//!   `ErrorCode` of the answer (`0` = success; `60007` = refused by a rate limit; answers without
//!   an envelope — `/healthz`, `/metrics`, a WebSocket upgrade, a CORS preflight — carry
//!   `http_<status>`);
//! * `portrait_http_request_duration_seconds{api}`: time from the request head to the answer;
//! * `portrait_http_requests_in_flight`: requests being read or answered now.
//!
//! `api` is the route's path (`/v4/profile/portrait_get`, `/v1/ws`, …), `/console/` for every
//! file of the web console, `/admin/v1` for every path of the operator API (its answers carry
//! `http_<status>`), or `other` for any path that is not a route, so a client cannot grow the
//! label set. The hot path pays a path match, the in-flight gauge's two atomic adds, an add to
//! the success counter's slot of this core ([`Striped`]) and a histogram sample: the handles of
//! the success counter and of each route's histogram are registered once, up front; only error
//! answers look their counter up.

use std::sync::Arc;
use std::time::Duration;

use axum::http::StatusCode;
use metrics::{Gauge, Histogram};
use portrait_store::striped::Striped;

/// The vendor `ErrorCode` of an answer, put in the response's extensions by
/// [`crate::error::reply`] so the edge can count it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Outcome(pub u32);

/// Every route, as the `api` label; the last one is for paths that are not routes.
pub const APIS: [&str; 18] = [
    "/v4/profile/portrait_set",
    "/v4/profile/portrait_get",
    "/v4/profile/portrait_import",
    "/v4/im_open_login_svc/account_import",
    "/v4/im_open_login_svc/multiaccount_import",
    "/v4/im_open_login_svc/account_delete",
    "/v4/im_open_login_svc/account_check",
    "/v4/im_open_login_svc/kick",
    "/v1/profile/get_my_profile",
    "/v1/profile/get_user_profile",
    "/v1/profile/update_my_profile",
    "/v1/ws",
    "/healthz",
    "/metrics",
    "/openapi.json",
    "/console/",
    OPERATOR,
    "other",
];

/// The one label of every operator API path (`/admin/v1/*`): the label set stays bounded
/// whatever the path parameters.
pub const OPERATOR: &str = "/admin/v1";

/// A route, as an index into [`APIS`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Api(usize);

impl Api {
    /// The route of a request path (`other` when it is none of them).
    pub fn of_path(path: &str) -> Api {
        if path
            .strip_prefix(OPERATOR)
            .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
        {
            return Api(APIS.len() - 2);
        }
        // Every file of the web console counts under `/console/`.
        let path = if path == "/console" || path.starts_with("/console/") {
            "/console/"
        } else {
            path
        };
        Api(APIS[..APIS.len() - 1]
            .iter()
            .position(|api| *api == path)
            .unwrap_or(APIS.len() - 1))
    }

    /// The `api` label.
    pub fn label(self) -> &'static str {
        APIS[self.0]
    }
}

/// The registered handles of the request metrics.
pub struct RequestMetrics {
    /// (Striped: every request counts, on every core.)
    ok: Vec<Arc<Striped>>,
    duration: Vec<Histogram>,
    in_flight: Gauge,
}

impl Default for RequestMetrics {
    fn default() -> Self {
        Self::new()
    }
}

impl RequestMetrics {
    /// Registers the handles with the process's recorder (installing it if needed).
    pub fn new() -> Self {
        super::handle();
        Self {
            ok: APIS
                .iter()
                .map(|api| {
                    Striped::new(metrics::counter!(
                        "portrait_http_requests_total", "api" => *api, "code" => "0"
                    ))
                })
                .collect(),
            duration: APIS
                .iter()
                .map(|api| metrics::histogram!("portrait_http_request_duration_seconds", "api" => *api))
                .collect(),
            in_flight: metrics::gauge!("portrait_http_requests_in_flight"),
        }
    }

    /// A request has started; it is in flight until the returned guard is dropped.
    pub fn start(&self) -> InFlight {
        self.in_flight.increment(1.0);
        InFlight(self.in_flight.clone())
    }

    /// A request of `api` was answered with `status` (and the vendor code `outcome`, if the answer
    /// is an envelope) after `elapsed`.
    pub fn finish(
        &self,
        api: Api,
        outcome: Option<Outcome>,
        status: StatusCode,
        elapsed: Duration,
    ) {
        match outcome {
            Some(Outcome(0)) => self.ok[api.0].increment(1),
            Some(Outcome(code)) => metrics::counter!(
                "portrait_http_requests_total",
                "api" => api.label(),
                "code" => code.to_string()
            )
            .increment(1),
            None => metrics::counter!(
                "portrait_http_requests_total",
                "api" => api.label(),
                "code" => format!("http_{}", status.as_u16())
            )
            .increment(1),
        }
        self.duration[api.0].record(elapsed.as_secs_f64());
    }
}

/// A request in flight: the in-flight gauge goes down when it is dropped, answered or not (a
/// client that disconnects mid-request drops it too).
pub struct InFlight(Gauge);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.decrement(1.0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_route_has_its_label_and_anything_else_is_other() {
        for api in &APIS[..APIS.len() - 1] {
            assert_eq!(Api::of_path(api).label(), *api);
        }
        for path in ["/admin/v1/apps", "/admin/v1/apps/1/fields/x", "/admin/v1"] {
            assert_eq!(Api::of_path(path).label(), OPERATOR, "{path}");
        }
        for path in [
            "/admin/v1x",
            "/",
            "/v4/profile/portrait_gett",
            "/v4/profile/",
            "/healthz/x",
            "/consolex/",
            "other",
        ] {
            assert_eq!(Api::of_path(path).label(), "other", "{path}");
        }
        for path in ["/console", "/console/console.js", "/console/nope"] {
            assert_eq!(Api::of_path(path).label(), "/console/", "{path}");
        }
    }
}
