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
//! * **body**: the request body is read whole (up to the configured limit) before routing, so
//!   that a route that refuses a call early (bad UserSig, not an admin, rate limit) leaves no
//!   unread bytes on the connection and the client's next request on the same kept-alive socket
//!   works. A body over the limit is refused (40001 / 70402) and the answer says
//!   `Connection: close`, since the rest of it is never read;
//! * **metrics**: per route and vendor code, a counter, a latency histogram and the requests in
//!   flight ([`crate::metrics::http`]);
//! * **deadline**: a request still unanswered after the configured time is answered with the
//!   family's internal error (40006 / 70500) in the vendor envelope, never a bare HTTP error.
//!   An app move between shards has a longer one ([`crate::operator::shards::deadline_of`]).
//!   The timer is armed only when the request first has to wait, so a request answered from
//!   memory in one poll never touches the timer wheel.
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

use axum::body::{Body, HttpBody};
use axum::extract::Request;
use axum::http::{header, request, HeaderName, HeaderValue, Method};
use axum::response::Response;
use bytes::{Bytes, BytesMut};
use tokio::time::{Instant, Sleep};

use crate::error::{refuse, ApiError, Family};
use crate::metrics::http::{Api, InFlight, Outcome, RequestMetrics};

/// The request-id header.
pub const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

const ANY: HeaderValue = HeaderValue::from_static("*");

/// Wraps `inner` (the router) with the edge; `timeout` is the request deadline and `max_body`
/// the largest request body read.
pub fn wrap<S>(inner: S, timeout: Duration, max_body: usize) -> Edge<S> {
    Edge {
        inner,
        shared: Arc::new(Shared {
            ids: SequentialIds::default(),
            timeout,
            max_body,
            metrics: RequestMetrics::new(),
        }),
        conn: None,
    }
}

/// The edge service (see the module docs).
#[derive(Clone)]
pub struct Edge<S> {
    inner: S,
    shared: Arc<Shared>,
    /// The connection served (through the connection layer).
    conn: Option<crate::conn::ConnHandle>,
}

impl<S: Clone> crate::conn::PerConnection for Edge<S> {
    fn for_connection(&self, conn: crate::conn::ConnHandle) -> Self {
        Self {
            inner: self.inner.clone(),
            shared: self.shared.clone(),
            conn: Some(conn),
        }
    }
}

struct Shared {
    ids: SequentialIds,
    timeout: Duration,
    max_body: usize,
    metrics: RequestMetrics,
}

impl<S> tower::Service<Request> for Edge<S>
where
    S: tower::Service<Request, Response = Response, Error = Infallible> + Clone,
{
    type Response = Response;
    type Error = Infallible;
    type Future = EdgeFuture<S>;

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
        let api = Api::of_path(req.uri().path());
        let in_flight = self.shared.metrics.start();
        let mut future = EdgeFuture {
            inner: None,
            reading: None,
            preflight: false,
            close: false,
            sleep: None,
            start,
            timeout: crate::operator::shards::deadline_of(req.method(), req.uri().path())
                .map_or(self.shared.timeout, |long| long.max(self.shared.timeout)),
            family,
            id,
            span,
            api,
            shared: self.shared.clone(),
            _in_flight: in_flight,
        };
        if req.method() == Method::OPTIONS {
            future.preflight = true;
        } else if req.body().is_end_stream() {
            future.inner = Some(self.inner.call(req));
        } else if req.body().size_hint().lower() > self.shared.max_body as u64 {
            // Declared too large: the route refuses it without reading it all.
            future.close = true;
            future.inner = Some(self.inner.call(req));
        } else {
            let (parts, body) = req.into_parts();
            future.reading = Some(Reading {
                parts,
                body,
                first: Bytes::new(),
                more: None,
                max: self.shared.max_body,
                route: self.inner.clone(),
                conn: self.conn.clone(),
            });
        }
        future
    }
}

/// A request whose body is being read before routing.
pub struct Reading<S> {
    parts: request::Parts,
    body: Body,
    first: Bytes,
    more: Option<BytesMut>,
    max: usize,
    route: S,
    conn: Option<crate::conn::ConnHandle>,
}

impl<S> Reading<S> {
    /// Reads what has arrived: `Ready(Ok(request))` with the whole body, or `Ready(Err(why))`.
    fn poll_body(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), String>> {
        loop {
            match std::task::ready!(Pin::new(&mut self.body).poll_frame(cx)) {
                None => return Poll::Ready(Ok(())),
                Some(Err(e)) => return Poll::Ready(Err(format!("request body unreadable: {e}"))),
                Some(Ok(frame)) => {
                    let Ok(data) = frame.into_data() else {
                        continue; // trailers
                    };
                    let len = self.more.as_ref().map_or(self.first.len(), BytesMut::len);
                    if len + data.len() > self.max {
                        return Poll::Ready(Err(format!(
                            "request body is larger than {} bytes",
                            self.max
                        )));
                    }
                    if self.first.is_empty() && self.more.is_none() {
                        self.first = data;
                    } else {
                        let more = self.more.get_or_insert_with(|| {
                            let mut m = BytesMut::with_capacity(len + data.len());
                            m.extend_from_slice(&self.first);
                            m
                        });
                        more.extend_from_slice(&data);
                    }
                }
            }
        }
    }

    /// The request with its body read.
    fn into_request(self) -> (Request, S) {
        if let Some(conn) = &self.conn {
            conn.body_read();
        }
        let body = match self.more {
            Some(m) => m.freeze(),
            None => self.first,
        };
        (
            Request::from_parts(self.parts, Body::from(body)),
            self.route,
        )
    }
}

pin_project_lite::pin_project! {
    /// The answer of [`Edge`]: the route's, or the preflight's, or the deadline's.
    pub struct EdgeFuture<S: tower::Service<Request>> {
        // The route's answer, once the body is read.
        #[pin]
        inner: Option<S::Future>,
        // The body being read before routing.
        reading: Option<Reading<S>>,
        // An `OPTIONS` request, answered without routing.
        preflight: bool,
        // The request body is not read whole: the answer closes the connection.
        close: bool,
        // Armed on the first `Pending`.
        #[pin]
        sleep: Option<Sleep>,
        start: Instant,
        timeout: Duration,
        family: Family,
        id: HeaderValue,
        span: tracing::Span,
        // The route, for the request metrics.
        api: Api,
        shared: Arc<Shared>,
        // Counts this request in flight until the future is dropped.
        _in_flight: InFlight,
    }
}

impl<S> Future for EdgeFuture<S>
where
    S: tower::Service<Request, Response = Response, Error = Infallible>,
{
    type Output = Result<Response, Infallible>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut this = self.project();
        let _entered = this.span.enter();
        let preflight = *this.preflight;
        let mut early = None;
        if let Some(reading) = this.reading.as_mut() {
            match reading.poll_body(cx) {
                Poll::Pending => {}
                Poll::Ready(Ok(())) => {
                    let (req, mut route) = this.reading.take().expect("reading").into_request();
                    this.inner.set(Some(route.call(req)));
                }
                Poll::Ready(Err(why)) => {
                    *this.reading = None;
                    *this.close = true;
                    early = Some(refuse(*this.family, ApiError::BadRequest(why)));
                }
            }
        }
        let answered = match (early, this.inner.as_mut().as_pin_mut()) {
            (Some(response), _) => Poll::Ready(response),
            (None, Some(inner)) => inner.poll(cx).map(|Ok(response)| response),
            (None, None) if preflight => Poll::Ready(Response::default()),
            (None, None) => Poll::Pending, // the body is still arriving
        };
        let mut response = match answered {
            Poll::Ready(response) => response,
            Poll::Pending => {
                if this.sleep.is_none() {
                    let at = *this.start + *this.timeout;
                    this.sleep.set(Some(tokio::time::sleep_until(at)));
                }
                let sleep = this.sleep.as_pin_mut().expect("armed above");
                if sleep.poll(cx).is_pending() {
                    return Poll::Pending;
                }
                let error = if this.reading.is_some() {
                    // The client's fault: its body did not arrive in time.
                    *this.close = true;
                    ApiError::BadRequest(format!(
                        "request body did not arrive within {:?}",
                        this.timeout
                    ))
                } else {
                    ApiError::Internal(anyhow::anyhow!("request exceeded {:?}", this.timeout))
                };
                refuse(*this.family, error)
            }
        };
        let headers = response.headers_mut();
        if *this.close {
            headers.insert(header::CONNECTION, HeaderValue::from_static("close"));
        }
        headers.insert(REQUEST_ID, this.id.clone());
        headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, ANY);
        if preflight {
            headers.insert(header::ACCESS_CONTROL_ALLOW_METHODS, ANY);
            headers.insert(header::ACCESS_CONTROL_ALLOW_HEADERS, ANY);
        } else {
            headers.insert(header::ACCESS_CONTROL_EXPOSE_HEADERS, ANY);
        }
        let status = response.status();
        this.shared.metrics.finish(
            *this.api,
            response.extensions().get::<Outcome>().copied(),
            status,
            this.start.elapsed(),
        );
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
            1 << 10,
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
    async fn operator_api_refusals_at_the_edge_are_its_own_json_errors() {
        let req = Request::get("/admin/v1/apps").body(Body::empty()).unwrap();
        let resp = slow(Duration::from_secs(5)).oneshot(req).await.unwrap();
        assert_eq!(resp.status(), 500);
        let body = body_json(resp).await;
        assert_eq!(body["error"]["code"], "internal", "{body}");
        let chunk = Ok::<_, std::io::Error>(Bytes::from(vec![b' '; 2 << 10]));
        let req = Request::post("/admin/v1/apps")
            .body(Body::from_stream(futures_util::stream::iter([chunk])))
            .unwrap();
        let resp = slow(Duration::ZERO).oneshot(req).await.unwrap();
        assert_eq!(resp.status(), 400);
        let body = body_json(resp).await;
        assert_eq!(body["error"]["code"], "invalid", "{body}");
        assert!(body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("larger than"));
    }

    // A move answers by itself within two minutes; the ordinary deadline (100 ms here) would
    // answer 500 while it runs. Other operator paths keep the ordinary deadline.
    #[tokio::test(start_paused = true)]
    async fn an_app_move_has_a_deadline_of_its_own() {
        let req = Request::post("/admin/v1/apps/1400000001/move")
            .body(Body::empty())
            .unwrap();
        let resp = slow(Duration::from_secs(60)).oneshot(req).await.unwrap();
        assert_eq!(&body(resp).await[..], b"late");
        let req = Request::post("/admin/v1/apps/1400000001/move")
            .body(Body::empty())
            .unwrap();
        let resp = slow(Duration::from_secs(600)).oneshot(req).await.unwrap();
        assert_eq!(resp.status(), 500);
        for req in [
            Request::get("/admin/v1/apps/1400000001/move"),
            Request::post("/admin/v1/apps/1400000001/fields/move"),
        ] {
            let resp = slow(Duration::from_secs(5))
                .oneshot(req.body(Body::empty()).unwrap())
                .await
                .unwrap();
            assert_eq!(resp.status(), 500);
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
