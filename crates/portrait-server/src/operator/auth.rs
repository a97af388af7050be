//! Authentication of the operator API: `Authorization: Bearer <token>`, compared in constant
//! time with `[operator] token`. App UserSigs never authenticate here. Failed attempts are
//! bounded per node: after [`MAX_FAILURES_PER_SEC`] failures within one second, every further
//! attempt of that second is refused with 429 without looking at its token, so guessing is slow
//! and costs the node nothing.

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

/// Failed attempts per second on one node after which attempts are refused unchecked.
pub const MAX_FAILURES_PER_SEC: u32 = 10;

/// The operator token and this node's count of failed attempts.
pub struct OperatorAuth {
    token: SecretString,
    /// Start of the current one-second window and its failures.
    failures: Mutex<(Instant, u32)>,
}

impl OperatorAuth {
    /// Checks with `token`.
    pub fn new(token: SecretString) -> Self {
        Self {
            token,
            failures: Mutex::new((Instant::now(), 0)),
        }
    }

    /// Checks the `Authorization` header.
    ///
    /// # Errors
    /// [`OpError::TooManyAttempts`] while over the failure bound, else
    /// [`OpError::Unauthorized`] for a missing or wrong token.
    pub fn check(&self, headers: &HeaderMap) -> Result<(), OpError> {
        let now = Instant::now();
        {
            let mut f = crate::sync::lock(&self.failures);
            if now.duration_since(f.0) >= Duration::from_secs(1) {
                *f = (now, 0);
            }
            if f.1 >= MAX_FAILURES_PER_SEC {
                return Err(OpError::TooManyAttempts);
            }
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
        let mut f = crate::sync::lock(&self.failures);
        f.1 += 1;
        if f.1 == MAX_FAILURES_PER_SEC {
            tracing::warn!("operator API: {MAX_FAILURES_PER_SEC} failed sign-ins within a second; refusing attempts for the rest of it");
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
        Some(auth) => auth.check(headers),
    }
}

/// The layer around every operator route.
pub async fn require(State(state): State<AppState>, req: Request, next: Next) -> Response {
    match check(&state, req.headers()) {
        Ok(()) => next.run(req).await,
        Err(e) => e.into_response(),
    }
}
