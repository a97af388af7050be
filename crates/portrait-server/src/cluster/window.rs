//! Calls per second across nodes: one counter per limit and one-second window of Redis's clock
//! (`<prefix>:<what>:<second>`, expiring after 2 s), from which each node takes tokens in chunks.
//!
//! A node admits a call at once while it holds a token of the current window; only when it has
//! none left does it ask Redis for another chunk (one script call: read the count, grant at
//! most what is left under the limit, add it). So the calls of all nodes together never exceed
//! the limit in a window, and the most a window can admit below it is the tokens that nodes
//! took and did not use (less than one chunk per node). A chunk is a hundredth of an app-wide
//! limit (2 of 200/s) and a tenth of a per-user one, at least 1. When Redis says the window is
//! used up, the node refuses locally until the window ends, without asking again.
//!
//! Windows follow Redis's clock (the script reads `TIME` and says how long the window has left),
//! so the nodes' clocks need not agree.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::Link;
use crate::ratelimit::{Api, ClientCall};

/// Grants up to ARGV[2] tokens of the current window of KEYS[1] under the limit ARGV[1];
/// returns `{granted, microseconds left in the window}`.
const TAKE: &str = r"
local t = redis.call('TIME')
local key = KEYS[1] .. ':' .. t[1]
local used = tonumber(redis.call('GET', key) or '0')
local grant = math.min(tonumber(ARGV[2]), tonumber(ARGV[1]) - used)
if grant > 0 then
  redis.call('INCRBY', key, grant)
  redis.call('PEXPIRE', key, 2000)
else
  grant = 0
end
return {grant, 1000000 - tonumber(t[2])}
";

/// What a window counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Key {
    /// An app's REST API.
    Api(u64, Api),
    /// The client API of a whole app.
    Client(u64, ClientCall),
    /// The client API of one user (keyed by a hash of the UserID: two users sharing one would
    /// share the tokens this node holds, never Redis's count).
    User(u64, ClientCall, u64),
}

/// This node's share of one window.
#[derive(Default)]
struct Held {
    /// Tokens left to admit with.
    tokens: u32,
    /// When the window ends (by Redis's clock, as seen here).
    until: Option<Instant>,
    /// Redis said the window is used up: refuse once `tokens` are gone.
    spent: bool,
}

impl Held {
    /// Admits (`Some(true)`) or refuses (`Some(false)`) from what is held, or `None` when Redis
    /// must be asked.
    fn take(&mut self, now: Instant) -> Option<bool> {
        if self.until.is_none_or(|u| now >= u) {
            return None;
        }
        if self.tokens > 0 {
            self.tokens -= 1;
            return Some(true);
        }
        self.spent.then_some(false)
    }
}

struct Slot {
    held: Mutex<Held>,
    /// One chunk request at a time per window; the others wait for it and use its tokens.
    asking: tokio::sync::Mutex<()>,
}

/// Every window this node holds tokens of.
#[derive(Default)]
pub struct Windows {
    slots: RwLock<HashMap<Key, Arc<Slot>, foldhash::fast::RandomState>>,
    script: std::sync::OnceLock<redis::Script>,
}

/// How often windows that ended are forgotten.
const PRUNE_EVERY: Duration = Duration::from_secs(10);

/// Tokens asked for at once under `limit`.
pub fn chunk(key: &Key, limit: u32) -> u32 {
    match key {
        Key::User(..) => (limit / 10).max(1),
        _ => (limit / 100).max(1),
    }
}

impl Windows {
    fn slot(&self, key: Key) -> Arc<Slot> {
        if let Some(s) = crate::sync::read(&self.slots).get(&key) {
            return s.clone();
        }
        crate::sync::write(&self.slots)
            .entry(key)
            .or_insert_with(|| {
                Arc::new(Slot {
                    held: Mutex::new(Held::default()),
                    asking: tokio::sync::Mutex::new(()),
                })
            })
            .clone()
    }

    /// Takes one call from the window of `key` (`redis_key` names its counter) under `limit`
    /// calls per second: `Some(admitted)`, or `None` when Redis did not answer (the caller
    /// counts per node).
    pub(crate) async fn take(
        &self,
        link: &Link,
        key: Key,
        redis_key: impl FnOnce() -> String,
        limit: u32,
    ) -> Option<bool> {
        let slot = self.slot(key);
        if let Some(v) = crate::sync::lock(&slot.held).take(Instant::now()) {
            return Some(v);
        }
        link.conn()?;
        // Queued behind another call's request for at most one reply's time: a slow Redis must
        // not make calls wait without bound (past it, this call counts per node).
        let _asking = tokio::time::timeout(link.timeout, slot.asking.lock())
            .await
            .ok()?;
        // Another call may have fetched a chunk while this one waited.
        if let Some(v) = crate::sync::lock(&slot.held).take(Instant::now()) {
            return Some(v);
        }
        let want = chunk(&key, limit);
        let script = self.script.get_or_init(|| redis::Script::new(TAKE));
        let name = redis_key();
        let asked = Instant::now();
        let (granted, micros_left): (u32, u64) = link
            .call(|mut conn| async move {
                script
                    .key(name)
                    .arg(limit)
                    .arg(want)
                    .invoke_async(&mut conn)
                    .await
            })
            .await?;
        let mut held = crate::sync::lock(&slot.held);
        *held = Held {
            tokens: granted,
            until: Some(asked + Duration::from_micros(micros_left)),
            spent: granted < want,
        };
        // A token Redis granted admits this call even if the window ended during the request.
        if held.tokens > 0 {
            held.tokens -= 1;
            return Some(true);
        }
        Some(false)
    }

    /// Forgets windows that ended, every [`PRUNE_EVERY`], so memory follows the active users.
    pub(crate) async fn prune(&self, stop: CancellationToken) {
        loop {
            tokio::select! {
                () = stop.cancelled() => return,
                () = tokio::time::sleep(PRUNE_EVERY) => {}
            }
            let now = Instant::now();
            crate::sync::write(&self.slots).retain(|_, s| {
                Arc::strong_count(s) > 1
                    || crate::sync::lock(&s.held)
                        .until
                        .is_some_and(|u| u + PRUNE_EVERY > now)
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn held_tokens_admit_until_gone_then_refuse_only_when_the_window_is_spent() {
        let now = Instant::now();
        let mut held = Held {
            tokens: 2,
            until: Some(now + Duration::from_millis(500)),
            spent: false,
        };
        assert_eq!(held.take(now), Some(true));
        assert_eq!(held.take(now), Some(true));
        assert_eq!(held.take(now), None, "ask Redis for more");
        held.spent = true;
        assert_eq!(held.take(now), Some(false), "spent: refuse without asking");
        assert_eq!(
            held.take(now + Duration::from_millis(500)),
            None,
            "a new window: ask again"
        );
        assert_eq!(chunk(&Key::Api(1, Api::PortraitGet), 200), 2);
        assert_eq!(chunk(&Key::Api(1, Api::PortraitGet), 50), 1);
        assert_eq!(chunk(&Key::User(1, ClientCall::Read, 7), 50), 5);
    }
}
