//! The edge of the HTTP server: one tower layer around the whole router that does, for every
//! request, what every route needs, in one place and without per-route service clones:
//!
//! * **request id**: the client's `x-request-id` is kept, otherwise the node assigns
//!   `<process>-<sequence>`; either way it is on the request (for handlers and spans) and on the
//!   response;
//! * **span**: when `info` is enabled, a `http` span with the method, the path (never the query,
//!   which holds the UserSig) and the request id; 5xx answers are logged at `error`;
//! * **CORS**: any origin, method and header, answered with `*` (no `Vary`: the answer does not
//!   depend on the request). Every `OPTIONS` request is a preflight, answered here before routing
//!   and authentication;
//! * **deadline**: a request still unanswered after the configured time is answered with the
//!   family's internal error (40006 / 70500) in the vendor envelope, never a bare HTTP error.
//!   The timer is armed only when the route first has to wait, so a request answered from memory
//!   in one poll never touches the timer wheel.
//!
//! This replaced tower-http's request-id, trace and CORS layers plus a `from_fn` deadline, which
//! were applied per route and cost a fifth of W1's server CPU (BENCHMARKS.md).

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::extract::Request;
use axum::http::{header, HeaderName, HeaderValue, Method};
use axum::response::Response;
use tokio::time::{Instant, Sleep};

use crate::error::{reply, ApiError, Family};

/// The request-id header.
pub const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

const ANY: HeaderValue = HeaderValue::from_static("*");

/// Wraps `inner` (the router) with the edge; `timeout` is the request deadline.
pub fn wrap<S>(inner: S, timeout: Duration) -> Edge<S> {
    Edge {
        inner,
        shared: Arc::new(Shared {
            ids: SequentialIds::default(),
            timeout,
        }),
    }
}

/// The edge service (see the module docs).
#[derive(Clone)]
pub struct Edge<S> {
    inner: S,
    shared: Arc<Shared>,
}

struct Shared {
    ids: SequentialIds,
    timeout: Duration,
}

impl<S> tower::Service<Request> for Edge<S>
where
    S: tower::Service<Request, Response = Response, Error = Infallible>,
{
    type Response = Response;
    type Error = Infallible;
    type Future = EdgeFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: Request) -> Self::Future {
        let start = Instant::now();
        let id = match req.headers().get(&REQUEST_ID) {
            Some(id) => id.clone(),
            None => {
                let id = self.shared.ids.next();
                req.headers_mut().insert(REQUEST_ID, id.clone());
                id
            }
        };
        let span = make_span(&req, &id);
        let family = Family::of_path(req.uri().path());
        let inner = (req.method() != Method::OPTIONS).then(|| self.inner.call(req));
        EdgeFuture {
            inner,
            sleep: None,
            start,
            timeout: self.shared.timeout,
            family,
            id,
            span,
        }
    }
}

pin_project_lite::pin_project! {
    /// The answer of [`Edge`]: the route's, or the preflight's, or the deadline's.
    pub struct EdgeFuture<F> {
        // `None`: a preflight, answered without routing.
        #[pin]
        inner: Option<F>,
        // Armed on the route's first `Pending`.
        #[pin]
        sleep: Option<Sleep>,
        start: Instant,
        timeout: Duration,
        family: Family,
        id: HeaderValue,
        span: tracing::Span,
    }
}

impl<F> Future for EdgeFuture<F>
where
    F: Future<Output = Result<Response, Infallible>>,
{
    type Output = Result<Response, Infallible>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut this = self.project();
        let _entered = this.span.enter();
        let preflight = this.inner.is_none();
        let mut response = match this.inner.as_pin_mut() {
            None => Response::default(),
            Some(inner) => match inner.poll(cx) {
                Poll::Ready(Ok(response)) => response,
                Poll::Pending => {
                    if this.sleep.is_none() {
                        let at = *this.start + *this.timeout;
                        this.sleep.set(Some(tokio::time::sleep_until(at)));
                    }
                    let sleep = this.sleep.as_pin_mut().expect("armed above");
                    if sleep.poll(cx).is_pending() {
                        return Poll::Pending;
                    }
                    reply::<()>(
                        *this.family,
                        Err(ApiError::Internal(anyhow::anyhow!(
                            "request exceeded {:?}",
                            this.timeout
                        ))),
                    )
                }
            },
        };
        let headers = response.headers_mut();
        headers.insert(REQUEST_ID, this.id.clone());
        headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, ANY);
        if preflight {
            headers.insert(header::ACCESS_CONTROL_ALLOW_METHODS, ANY);
            headers.insert(header::ACCESS_CONTROL_ALLOW_HEADERS, ANY);
        } else {
            headers.insert(header::ACCESS_CONTROL_EXPOSE_HEADERS, ANY);
        }
        let status = response.status();
        if status.is_server_error() {
            tracing::error!(%status, latency = ?this.start.elapsed(), "request failed");
        } else {
            tracing::debug!(%status, latency = ?this.start.elapsed(), "request answered");
        }
        Poll::Ready(Ok(response))
    }
}

/// The span for one HTTP request (none unless `info` is enabled).
fn make_span(req: &Request, id: &HeaderValue) -> tracing::Span {
    if !tracing::enabled!(tracing::Level::INFO) {
        return tracing::Span::none();
    }
    tracing::info_span!(
        "http",
        method = %req.method(),
        path = %req.uri().path(),
        request_id = %id.to_str().unwrap_or(""),
    )
}

/// Request ids `<process>-<sequence>`: unique per node without a random draw (a syscall) per
/// request, as a UUID would need.
struct SequentialIds {
    prefix: String,
    next: AtomicU64,
}

impl Default for SequentialIds {
    fn default() -> Self {
        Self {
            prefix: format!("{:08x}-", rand::random::<u32>()),
            next: AtomicU64::new(1),
        }
    }
}

impl SequentialIds {
    fn next(&self) -> HeaderValue {
        let n = self.next.fetch_add(1, Ordering::Relaxed);
        let mut digits = itoa::Buffer::new();
        let mut id = String::with_capacity(self.prefix.len() + 20);
        id.push_str(&self.prefix);
        id.push_str(digits.format(n));
        HeaderValue::try_from(id).expect("hex, '-' and digits are valid header bytes")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Body;
    use tower::{Service, ServiceExt};

    /// A route that answers after `wait` (in paused tokio time).
    fn slow(
        wait: Duration,
    ) -> Edge<tower::util::BoxCloneSyncService<Request, Response, Infallible>> {
        let route = tower::service_fn(move |_req: Request| async move {
            tokio::time::sleep(wait).await;
            Ok::<_, Infallible>(Response::new(Body::from("late")))
        });
        wrap(
            tower::util::BoxCloneSyncService::new(route),
            Duration::from_millis(100),
        )
    }

    async fn body(resp: Response) -> axum::body::Bytes {
        axum::body::to_bytes(resp.into_body(), 1 << 16)
            .await
            .unwrap()
    }

    async fn body_json(resp: Response) -> serde_json::Value {
        serde_json::from_slice(&body(resp).await).unwrap_or(serde_json::Value::Null)
    }

    #[tokio::test(start_paused = true)]
    async fn a_request_over_the_deadline_gets_the_family_internal_error() {
        for (path, code) in [
            ("/v4/profile/portrait_get", 40006),
            ("/v4/im_open_login_svc/account_check", 70500),
        ] {
            let req = Request::post(path).body(Body::empty()).unwrap();
            let resp = slow(Duration::from_secs(5)).oneshot(req).await.unwrap();
            assert!(resp.headers().contains_key(REQUEST_ID));
            let body = body_json(resp).await;
            assert_eq!(body["ErrorCode"], code, "{path}: {body}");
            assert_eq!(body["ActionStatus"], "FAIL");
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_request_within_the_deadline_gets_the_route_answer() {
        let req = Request::post("/v4/profile/portrait_get")
            .header(REQUEST_ID, "mine")
            .body(Body::empty())
            .unwrap();
        let resp = slow(Duration::from_millis(50)).oneshot(req).await.unwrap();
        assert_eq!(resp.headers()[REQUEST_ID], "mine");
        assert_eq!(resp.headers()[header::ACCESS_CONTROL_ALLOW_ORIGIN], "*");
        assert_eq!(&body(resp).await[..], b"late");
    }

    #[tokio::test]
    async fn ids_are_sequential_per_node_and_options_is_a_preflight() {
        let mut edge = slow(Duration::ZERO);
        let mut ids = Vec::new();
        for _ in 0..3 {
            let req = Request::get("/healthz").body(Body::empty()).unwrap();
            let resp = edge.ready().await.unwrap().call(req).await.unwrap();
            ids.push(resp.headers()[REQUEST_ID].to_str().unwrap().to_owned());
        }
        let (prefix, first) = ids[0].rsplit_once('-').unwrap();
        let first: u64 = first.parse().unwrap();
        for (i, id) in ids.iter().enumerate() {
            assert_eq!(*id, format!("{prefix}-{}", first + i as u64));
        }
        let pre = Request::options("/v4/profile/portrait_set")
            .body(Body::empty())
            .unwrap();
        let resp = edge.oneshot(pre).await.unwrap();
        assert_eq!(resp.status(), 200);
        assert_eq!(resp.headers()[header::ACCESS_CONTROL_ALLOW_METHODS], "*");
        assert!(
            body(resp).await.is_empty(),
            "the route is not called for a preflight"
        );
    }
}
