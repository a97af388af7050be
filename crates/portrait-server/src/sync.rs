//! The server's one lock-poison policy: **a poisoned lock is recovered, not propagated.**
//!
//! Every `Mutex`/`RwLock` of the server (the connection registry, a feed's subscriptions, a
//! connection's close reason, a tenant's kick table and UserSig cache) is taken through
//! `lock`, `read` or `write`. None of them holds state that a panic half-way through an
//! update could make dangerous to read: no code awaits or calls out while holding one, and the
//! worst a torn update leaves is a stale cache entry or a registration that the next sweep or
//! disconnect removes. Propagating the poison instead (`.expect("… lock")`) would turn one
//! panicking request into a panic in every later request, session or feed that touches the same
//! lock, which is the outage the policy exists to avoid. The panic itself is still reported where
//! it happened. Do not call `.lock()`, `.read()` or `.write()` on these directly.

use std::sync::{Mutex, MutexGuard, PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};

/// Locks `m`, recovering it if a holder panicked.
pub fn lock<T: ?Sized>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Read-locks `l`, recovering it if a writer panicked.
pub fn read<T: ?Sized>(l: &RwLock<T>) -> RwLockReadGuard<'_, T> {
    l.read().unwrap_or_else(PoisonError::into_inner)
}

/// Write-locks `l`, recovering it if a holder panicked.
pub fn write<T: ?Sized>(l: &RwLock<T>) -> RwLockWriteGuard<'_, T> {
    l.write().unwrap_or_else(PoisonError::into_inner)
}
