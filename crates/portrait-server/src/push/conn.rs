//! A WebSocket connection as the feed sees it: its bounded queue (offering never blocks the
//! feed; a full queue marks the connection *overflowed* until it catches up from the store) and
//! the reason the server closes it. The socket loop itself is in [`crate::api::v1::ws`].

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use portrait_core::ErrorCode;
use tokio::sync::{mpsc, Notify};

use super::Event;

/// Why a connection is being closed by the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CloseReason {
    /// `kick` (code 70001) or `account_delete` (70107) of the connection's user.
    Revoked(ErrorCode),
}

/// A connection as the feed sees it.
pub struct Conn {
    pub(super) id: u64,
    /// The signed-in user.
    pub user: String,
    pub(super) tx: mpsc::Sender<Arc<Event>>,
    pub(super) overflowed: AtomicBool,
    pub(super) closing: Mutex<Option<CloseReason>>,
    /// Unix milliseconds when the connection was registered.
    pub(super) opened_ms: i64,
    /// Woken when the connection must close ([`Conn::close_reason`]), or, without a close
    /// reason, when it must catch up from the store (its `overflowed` flag is set).
    pub close: Notify,
}

impl Conn {
    /// Whether the queue overflowed since the last [`Conn::clear_overflow`].
    pub fn overflowed(&self) -> bool {
        self.overflowed.load(Ordering::Acquire)
    }

    /// Resumes live offers; call *before* catching up from the store.
    pub fn clear_overflow(&self) {
        self.overflowed.store(false, Ordering::Release);
    }

    /// Why the server closes this connection, once it does.
    pub fn close_reason(&self) -> Option<CloseReason> {
        *crate::sync::lock(&self.closing)
    }

    pub(super) fn offer(&self, ev: &Arc<Event>) {
        if self.overflowed.load(Ordering::Acquire) {
            return;
        }
        match self.tx.try_send(ev.clone()) {
            Ok(()) => {}
            Err(mpsc::error::TrySendError::Full(_)) => {
                self.overflowed.store(true, Ordering::Release);
                metrics::counter!("portrait_push_overflows_total").increment(1);
            }
            Err(mpsc::error::TrySendError::Closed(_)) => {}
        }
    }

    pub(super) fn revoke(&self, why: CloseReason) {
        *crate::sync::lock(&self.closing) = Some(why);
        self.close.notify_one();
    }
}
