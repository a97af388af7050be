//! Realtime fan-out of each app's change log to WebSocket connections (docs/client-api.md).
//!
//! The change log in the store is the only source of truth. Per app, one **feed** task tails it:
//! woken after every local write (and by the node's head poll, `poll`, for changes written by
//! other processes or nodes), it reads `changes_since(last dispatched)` and offers each change,
//! serialized once, to the connections subscribed to its account. Because the store makes
//! versions visible in order, the feed dispatches every version exactly once, in order.
//!
//! A connection ([`crate::api::v1::ws`]) registers with the feed *before* it reads its catch-up
//! from the store, so the union of "read from the store" and "offered live" has no gap; it drops
//! what it has already sent by per-account version (so no duplicate). Offering never blocks the
//! feed: each connection has a bounded queue, and a connection whose queue is full is marked
//! *overflowed*, gets nothing more until it has caught up from the store from its cursor, and
//! then resumes live. Versions have no gaps, so a page that starts after `last + 1` means the
//! change log was pruned ([`crate::retention`]) before the feed read it; then every connection
//! is switched to that catch-up, which tells its client (49005).
//!
//! **Several nodes** share one store. A node's own writes wake its feeds directly; with
//! `push.nats_url` set, it also publishes a wake-up on `<nats_subject>.<sdkappid>` and every
//! node wakes that app's feed when one arrives, so a change reaches subscribers on every node at
//! once. NATS carries nothing but these wake-ups (and kicks): a lost one (NATS down, a node
//! disconnected) only delays delivery until the next head poll (`push.poll_interval_ms`), and the
//! async-nats client reconnects and resubscribes by itself when NATS is back. The head poll is one
//! query per node (per shard) for every app, so an app where nothing happens costs nothing.
//!
//! Layout: `frame` (a change as users see it, serialized once), `conn` (a connection as the
//! feed sees it: bounded queue, overflow, close reason), `feed` (one app's subscriptions and
//! the task tailing its change log), `bus` (NATS wake-ups and kicks between nodes), `poll` (the
//! node's one read of every app's head, which wakes the feeds whose app moved), `hub` (every
//! app's feed and the node's background tasks). The WebSocket protocol itself is in
//! [`crate::api::v1::ws`]; nothing here reads a socket.

mod bus;
mod conn;
mod feed;
mod frame;
mod hub;
mod poll;

pub use conn::{CloseReason, Conn};
pub use feed::{Feed, Refused, PAGE};
pub use frame::Event;
pub(crate) use hub::load_kicks;
pub use hub::Hub;
