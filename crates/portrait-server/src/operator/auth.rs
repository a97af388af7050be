//! Authentication of the operator API: `Authorization: Bearer <token>`, compared in constant
//! time with `[operator] token`. App UserSigs never authenticate here.
//!
//! Failed attempts are bounded per caller address (the peer, or behind a trusted proxy the
//! forwarded client, as [`crate::client_ip`] resolves it): after [`MAX_FAILURES_PER_SEC`]
//! failures from one address within one second, every further attempt from it in that second is
//! refused with 429 without looking at its token, so guessing is slow and costs the node
//! nothing, while an operator calling from another address is not locked out by someone else's
//! guesses. At most [`MAX_ADDRESSES`] addresses are counted per second; beyond that, attempts
//! from addresses not counted yet share one count (a flood from very many addresses can then
//! slow everyone's sign-in for the rest of that second, never more).

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::extract::{Request, State};
use axum::http::{header, HeaderMap};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use secrecy::{ExposeSecret, SecretString};
use subtle::ConstantTimeEq;

use crate::error::OpError;
use crate::state::AppState;

/// Failed attempts per second from one address after which its attempts are refused unchecked.
pub const MAX_FAILURES_PER_SEC: u32 = 10;

/// Most caller addresses whose failures are counted apart within one second.
pub const MAX_ADDRESSES: usize = 4096;

/// The operator token and this node's count of failed attempts.
pub struct OperatorAuth {
    token: SecretString,
    failures: Mutex<Failures>,
}

/// The current one-second window: when it began, failures per address, and the shared count of
/// addresses past [`MAX_ADDRESSES`] (`None` in the map's key).
struct Failures {
    since: Instant,
    by_address: HashMap<Option<IpAddr>, u32>,
}

impl Failures {
    /// The count `address` is kept under in the window starting at or after `now`.
    fn slot(&mut self, now: Instant, address: Option<IpAddr>) -> &mut u32 {
        if now.duration_since(self.since) >= Duration::from_secs(1) {
            self.since = now;
            self.by_address.clear();
        }
        let key = if self.by_address.contains_key(&address) || self.by_address.len() < MAX_ADDRESSES
        {
            address
        } else {
            None
        };
        self.by_address.entry(key).or_insert(0)
    }
}

impl OperatorAuth {
    /// Checks with `token`.
    pub fn new(token: SecretString) -> Self {
        Self {
            token,
            failures: Mutex::new(Failures {
                since: Instant::now(),
                by_address: HashMap::new(),
            }),
        }
    }

    /// Checks the `Authorization` header of a call from `address` (`None`: unknown).
    ///
    /// # Errors
    /// [`OpError::TooManyAttempts`] while `address` is over the failure bound, else
    /// [`OpError::Unauthorized`] for a missing or wrong token.
    pub fn check(&self, headers: &HeaderMap, address: Option<IpAddr>) -> Result<(), OpError> {
        let now = Instant::now();
        if *crate::sync::lock(&self.failures).slot(now, address) >= MAX_FAILURES_PER_SEC {
            return Err(OpError::TooManyAttempts);
        }
        let presented = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(str::trim);
        let ok = presented
            .is_some_and(|p| bool::from(p.as_bytes().ct_eq(self.token.expose_secret().as_bytes())));
        if ok {
            return Ok(());
        }
        let mut failures = crate::sync::lock(&self.failures);
        let count = failures.slot(now, address);
        *count += 1;
        if *count == MAX_FAILURES_PER_SEC {
            let who = address.map_or_else(|| "unknown addresses".to_owned(), |a| a.to_string());
            tracing::warn!(
                "operator API: {MAX_FAILURES_PER_SEC} failed sign-ins from {who} within a second; \
                 refusing its attempts for the rest of it"
            );
        }
        Err(OpError::Unauthorized)
    }
}

/// Checks a request to the operator API of `state`.
///
/// # Errors
/// [`OpError::NotFound`] when the API is off, else [`OperatorAuth::check`]'s.
pub fn check(state: &AppState, headers: &HeaderMap) -> Result<(), OpError> {
    match state.operator() {
        None => Err(OpError::NotFound(
            "the operator API is off on this node ([operator] token)".into(),
        )),
        Some(auth) => auth.check(
            headers,
            crate::conn::peer_addr()
                .map(|peer| state.trusted_proxies().client_of(peer.ip(), headers)),
        ),
    }
}

/// The layer around every operator route.
pub async fn require(State(state): State<AppState>, req: Request, next: Next) -> Response {
    match check(&state, req.headers()) {
        Ok(()) => next.run(req).await,
        Err(e) => e.into_response(),
    }
}
