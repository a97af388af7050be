//! The change feed of a signed-in user as a [`futures_util::Stream`]: [`Changes`].
//!
//! One background task holds the WebSocket. It reconnects with exponential backoff and jitter,
//! resumes from the last `cursor` with `since` (so nothing is missed), re-subscribes, and drops
//! events it has already delivered (per account, by version), so every change arrives once, in
//! version order per account. Whatever goes wrong is *yielded* as an `Err`, never swallowed:
//! a sign-in refusal, an expired UserSig without a refresh hook, a kick, a gap the server can no
//! longer fill (49005), and each lost connection. [`FeedError::is_terminal`] says whether the
//! stream ends after it.
//!
//! What must not live here: HTTP calls, or frame definitions (those are
//! [`portrait_core::ws`]'s).

use std::collections::{BTreeSet, HashMap};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use portrait_core::ws::{CloseCode, ProfileEvent, ServerFrame};
use portrait_core::ErrorCode;
use tokio::sync::mpsc;

use crate::user::{Heard, Incoming, UserClient};

/// What a refresh hook returns: a new UserSig, or why there is none.
pub type RefreshResult = Result<String, Box<dyn std::error::Error + Send + Sync>>;

/// A caller-supplied source of fresh UserSigs for a user (typically: ask the app's backend).
/// Called when the connection's UserSig expires (close 4004, or error 70001 at sign-in) and,
/// by [`crate::User`], when an HTTP call answers 70001.
pub type SigRefresh =
    Arc<dyn Fn() -> Pin<Box<dyn Future<Output = RefreshResult> + Send>> + Send + Sync>;

/// Wraps an async closure as a [`SigRefresh`].
///
/// ```
/// let hook = portrait_client::refresh_with(|| async {
///     // e.g. reqwest::get("https://backend.example/usersig").await?.text().await
///     Ok::<_, Box<dyn std::error::Error + Send + Sync>>("new-usersig".to_owned())
/// });
/// # drop(hook);
/// ```
pub fn refresh_with<F, Fut>(f: F) -> SigRefresh
where
    F: Fn() -> Fut + Send + Sync + 'static,
    Fut: Future<Output = RefreshResult> + Send + 'static,
{
    Arc::new(move || Box::pin(f()))
}

/// Reconnection delays of a [`Changes`] stream: exponential from `min` to `max`, each delay
/// drawn uniformly from its upper half (jitter, so that clients a restart disconnected do not
/// all come back at once).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    /// First delay after a lost connection.
    pub min: Duration,
    /// Largest delay.
    pub max: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff {
            min: Duration::from_millis(200),
            max: Duration::from_secs(30),
        }
    }
}

impl Backoff {
    /// The delay before attempt `n` (0-based) of a reconnection, with jitter.
    pub fn delay(&self, n: u32) -> Duration {
        let full = self
            .min
            .saturating_mul(2u32.saturating_pow(n.min(20)))
            .min(self.max);
        full.mul_f64(0.5 + rand::random::<f64>() * 0.5)
    }
}

/// A successful item of a [`Changes`] stream.
#[derive(Debug, Clone, PartialEq)]
pub enum FeedEvent {
    /// One change of a watched account (or of the own account).
    Change(ProfileEvent),
    /// The stream is connected and caught up: every change up to `cursor` was delivered, and
    /// live changes follow. Yielded after each (re)connection.
    Live {
        /// Persist it to resume a later stream with `since`.
        cursor: u64,
    },
}

/// A failure a [`Changes`] stream reports. After a terminal one ([`FeedError::is_terminal`])
/// the stream ends; after the others it goes on by itself.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum FeedError {
    /// Sign-in refused (close 4001): bad or revoked UserSig, unknown app or user (70107),
    /// invalid `accounts`. Terminal.
    #[error("sign-in refused ({code}): {message}")]
    Auth {
        /// The vendor code of the server's `error` frame.
        code: ErrorCode,
        /// Its message.
        message: String,
    },
    /// The UserSig expired (close 4004 or error 70001) and there is no refresh hook. Terminal.
    #[error("the UserSig expired and no refresh hook is set: {message}")]
    Expired {
        /// The server's message.
        message: String,
    },
    /// The refresh hook failed. Terminal.
    #[error("the UserSig refresh hook failed: {0}")]
    Refresh(String),
    /// The user was kicked (70001) or the account deleted (70107): close 4002. Terminal.
    #[error("signed out by the server ({code}): {message}")]
    Revoked {
        /// 70001 (kick) or 70107 (deleted).
        code: ErrorCode,
        /// The server's message.
        message: String,
    },
    /// The server closed for a reason the client cannot fix by reconnecting (1008 op rate,
    /// 1009 message size). Terminal.
    #[error("closed by the server ({code}): {reason}")]
    Closed {
        /// The close code.
        code: u16,
        /// The close reason.
        reason: String,
    },
    /// Some changes after `cursor` will not be sent (49005): gone from the server's change log,
    /// or more changes of one account than a catch-up reads. Re-read the profiles shown. The
    /// changes that can be sent follow. Not terminal.
    #[error("changes after {cursor} cannot all be sent; read the profiles again: {message}")]
    Gap {
        /// The stream's cursor when the gap was found.
        cursor: u64,
        /// The server's message.
        message: String,
    },
    /// The server refused something without closing (e.g. 49002: more `accounts` than
    /// `max_subscriptions`, only the own account is watched). Not terminal.
    #[error("refused by the server ({code}): {message}")]
    Refused {
        /// The vendor code.
        code: ErrorCode,
        /// The server's message.
        message: String,
    },
    /// The connection was lost or could not be opened; the stream reconnects after `retry_in`.
    /// Not terminal.
    #[error("disconnected ({reason}); reconnecting in {retry_in:?}")]
    Disconnected {
        /// What happened.
        reason: String,
        /// The delay before the next attempt.
        retry_in: Duration,
    },
}

impl FeedError {
    /// Whether the stream ends after this error.
    pub fn is_terminal(&self) -> bool {
        !matches!(
            self,
            FeedError::Gap { .. } | FeedError::Refused { .. } | FeedError::Disconnected { .. }
        )
    }
}

/// The change feed: a [`futures_util::Stream`] of `Result<FeedEvent, FeedError>`, from
/// [`UserClient::changes`] or [`crate::User::changes`]. Dropping it closes the connection.
pub struct Changes {
    rx: mpsc::Receiver<Result<FeedEvent, FeedError>>,
    task: tokio::task::JoinHandle<()>,
}

impl futures_util::Stream for Changes {
    type Item = Result<FeedEvent, FeedError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.rx.poll_recv(cx)
    }
}

impl Drop for Changes {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// How a [`Changes`] stream runs.
#[derive(Clone)]
pub(crate) struct FeedConfig {
    pub backoff: Backoff,
    pub refresh: Option<SigRefresh>,
    /// Longest wait for a WebSocket handshake.
    pub connect_timeout: Duration,
    /// A connection on which nothing (not even a ping) arrives for this long is replaced.
    pub liveness: Duration,
}

impl Default for FeedConfig {
    fn default() -> Self {
        FeedConfig {
            backoff: Backoff::default(),
            refresh: None,
            connect_timeout: Duration::from_secs(10),
            liveness: Duration::from_secs(60),
        }
    }
}

/// Starts the feed task (needs a Tokio runtime).
pub(crate) fn start(
    client: UserClient,
    accounts: &[&str],
    since: Option<u64>,
    config: FeedConfig,
) -> Changes {
    let (tx, rx) = mpsc::channel(256);
    let accounts: BTreeSet<String> = accounts.iter().map(|a| (*a).to_owned()).collect();
    let task = tokio::spawn(async move {
        let mut feed = Feed {
            client,
            accounts,
            since,
            config,
            tx,
            delivered: HashMap::new(),
        };
        feed.run().await;
    });
    Changes { rx, task }
}

struct Feed {
    client: UserClient,
    accounts: BTreeSet<String>,
    since: Option<u64>,
    config: FeedConfig,
    tx: mpsc::Sender<Result<FeedEvent, FeedError>>,
    /// Per account: the highest version delivered.
    delivered: HashMap<String, u64>,
}

/// How one connection ended.
enum End {
    /// Reconnect after a backoff, telling the consumer why.
    Retry(String),
    /// Get a new UserSig, then reconnect at once.
    Refresh(String),
    /// Report and stop.
    Stop(FeedError),
    /// The consumer dropped the stream.
    Dropped,
}

impl Feed {
    async fn run(&mut self) {
        let mut attempt = 0u32;
        loop {
            let end = self.connection(&mut attempt).await;
            let why = match end {
                End::Dropped => return,
                End::Stop(e) => {
                    let _ = self.tx.send(Err(e)).await;
                    return;
                }
                End::Refresh(message) => match &self.config.refresh {
                    None => {
                        let _ = self.tx.send(Err(FeedError::Expired { message })).await;
                        return;
                    }
                    Some(hook) => match hook().await {
                        Ok(sig) => {
                            self.client.set_usersig(sig);
                            continue;
                        }
                        Err(e) => {
                            let _ = self.tx.send(Err(FeedError::Refresh(e.to_string()))).await;
                            return;
                        }
                    },
                },
                End::Retry(why) => why,
            };
            let retry_in = self.config.backoff.delay(attempt);
            attempt = attempt.saturating_add(1);
            let notice = FeedError::Disconnected {
                reason: why,
                retry_in,
            };
            if self.tx.send(Err(notice)).await.is_err() {
                return;
            }
            tokio::time::sleep(retry_in).await;
        }
    }

    async fn emit(&self, item: Result<FeedEvent, FeedError>) -> Result<(), End> {
        self.tx.send(item).await.map_err(|_| End::Dropped)
    }

    /// One connection, from the handshake to its end.
    async fn connection(&mut self, attempt: &mut u32) -> End {
        let list: Vec<&str> = self.accounts.iter().map(String::as_str).collect();
        let connect = self.client.connect(self.since, &list);
        let mut socket = match tokio::time::timeout(self.config.connect_timeout, connect).await {
            Ok(Ok(s)) => s,
            Ok(Err(e)) => return End::Retry(e.to_string()),
            Err(_) => {
                let t = self.config.connect_timeout;
                return End::Retry(format!("no WebSocket handshake within {t:?}"));
            }
        };
        // The last `error` frame not yet reported: a close that follows explains it.
        let mut pending: Option<(ErrorCode, String)> = None;
        let caught_up_at_ready = self.since.is_none();
        loop {
            let liveness = self.config.liveness;
            let next = tokio::select! {
                n = tokio::time::timeout(liveness, socket.next_heard()) => match n {
                    Ok(n) => n,
                    // The server pings every 20 s (`[push] ping_interval_ms`): a silence this long
                    // is a dead connection (e.g. a network change that left no FIN behind).
                    Err(_) => return End::Retry(format!("nothing heard for {liveness:?}")),
                },
                () = self.tx.closed() => return End::Dropped,
            };
            let frame = match next {
                Ok(Heard::Incoming(Incoming::Frame(f))) => f,
                Ok(Heard::Incoming(Incoming::Closed(code, reason))) => {
                    return classify(CloseCode(code), reason, pending.take())
                }
                Ok(Heard::Heartbeat) => continue,
                Ok(Heard::Gone) => return End::Retry("connection lost".into()),
                // A frame this client does not know (a newer server): skip it, as the protocol
                // only ever adds frames and fields.
                Err(e) => {
                    tracing::warn!(error = %e, "portrait feed: skipping an unknown frame");
                    continue;
                }
            };
            if !matches!(frame, ServerFrame::Error { .. }) {
                if let Some((code, message)) = pending.take() {
                    if let Err(end) = self.emit(Err(FeedError::Refused { code, message })).await {
                        return end;
                    }
                }
            }
            let step = match frame {
                ServerFrame::Ready { version, .. } => {
                    *attempt = 0;
                    let cursor = *self.since.get_or_insert(version);
                    if caught_up_at_ready {
                        self.emit(Ok(FeedEvent::Live { cursor })).await
                    } else {
                        Ok(())
                    }
                }
                ServerFrame::Synced { cursor } => {
                    let cursor = self.since.unwrap_or(cursor).max(cursor);
                    self.since = Some(cursor);
                    self.emit(Ok(FeedEvent::Live { cursor })).await
                }
                ServerFrame::Profile(ev) => {
                    self.since = Some(self.since.unwrap_or(0).max(ev.cursor));
                    let seen = self.delivered.entry(ev.account.clone()).or_default();
                    if ev.version > *seen {
                        *seen = ev.version;
                        self.emit(Ok(FeedEvent::Change(ev))).await
                    } else {
                        Ok(())
                    }
                }
                ServerFrame::Error { code, message, .. }
                    if ErrorCode(code) == ErrorCode::CHANGES_PRUNED =>
                {
                    let cursor = self.since.unwrap_or(0);
                    self.emit(Err(FeedError::Gap { cursor, message })).await
                }
                ServerFrame::Error { code, message, .. } => {
                    if let Some((code, message)) = pending.replace((ErrorCode(code), message)) {
                        self.emit(Err(FeedError::Refused { code, message })).await
                    } else {
                        Ok(())
                    }
                }
                ServerFrame::Subscribed { .. }
                | ServerFrame::Unsubscribed { .. }
                | ServerFrame::Pong => Ok(()),
            };
            if let Err(end) = step {
                return end;
            }
        }
    }
}

/// What a close means for the stream, given the `error` frame that preceded it.
fn classify(code: CloseCode, reason: String, error: Option<(ErrorCode, String)>) -> End {
    let (err_code, message) = error.unwrap_or((ErrorCode::OK, reason.clone()));
    match code {
        CloseCode::EXPIRED => End::Refresh(message),
        CloseCode::AUTH if err_code == ErrorCode::SIG_EXPIRED => End::Refresh(message),
        // Over the user's connect rate: try again later.
        CloseCode::AUTH if err_code == ErrorCode::RATE_LIMITED => End::Retry(message),
        CloseCode::AUTH => End::Stop(FeedError::Auth {
            code: err_code,
            message,
        }),
        CloseCode::REVOKED => End::Stop(FeedError::Revoked {
            code: err_code,
            message,
        }),
        c if c.is_transient() => End::Retry(format!("closed {c}: {message}")),
        c => End::Stop(FeedError::Closed {
            code: c.0,
            reason: message,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_to_its_cap_with_jitter_in_the_upper_half() {
        let b = Backoff {
            min: Duration::from_millis(100),
            max: Duration::from_secs(2),
        };
        for n in 0..30 {
            let full = Duration::from_millis(100 * 2u64.pow(n.min(20))).min(Duration::from_secs(2));
            let d = b.delay(n);
            assert!(d >= full / 2 && d <= full, "attempt {n}: {d:?} vs {full:?}");
        }
        let draws: BTreeSet<Duration> = (0..20).map(|_| b.delay(3)).collect();
        assert!(draws.len() > 1, "jitter varies the delay");
    }

    #[test]
    fn closes_are_classified_by_code_and_preceding_error() {
        let e = |c: ErrorCode| Some((c, "m".to_owned()));
        assert!(matches!(
            classify(CloseCode::EXPIRED, String::new(), e(ErrorCode::SIG_EXPIRED)),
            End::Refresh(_)
        ));
        assert!(matches!(
            classify(CloseCode::AUTH, String::new(), e(ErrorCode::SIG_EXPIRED)),
            End::Refresh(_)
        ));
        assert!(matches!(
            classify(CloseCode::AUTH, String::new(), e(ErrorCode::SIG_BAD_HMAC)),
            End::Stop(FeedError::Auth { code, .. }) if code == ErrorCode::SIG_BAD_HMAC
        ));
        assert!(matches!(
            classify(
                CloseCode::REVOKED,
                String::new(),
                e(ErrorCode::ACCOUNT_NOT_FOUND)
            ),
            End::Stop(FeedError::Revoked { .. })
        ));
        assert!(matches!(
            classify(CloseCode::GOING_AWAY, String::new(), None),
            End::Retry(_)
        ));
        assert!(matches!(
            classify(
                CloseCode::INTERNAL,
                String::new(),
                e(ErrorCode::PROFILE_INTERNAL)
            ),
            End::Retry(_)
        ));
        assert!(matches!(
            classify(CloseCode::TOO_BIG, "big".into(), None),
            End::Stop(FeedError::Closed { code: 1009, .. })
        ));
    }
}
