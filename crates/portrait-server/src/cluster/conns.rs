//! Per-user WebSocket connection caps across nodes: a sorted set per user,
//! `<prefix>:conns:<app>:<user>`, of the connections open on every node (`<node>:<conn>`), each
//! scored by the Redis time (ms) until which it counts.
//!
//! A connect runs one script: drop the members that expired, refuse when `cap` remain, else add
//! this one. Each node refreshes the score of its own live connections every third of
//! `conn_ttl_ms` and removes a connection when it closes (and again at its next refresh, if that
//! removal failed or raced the refresh), so a node that dies stops counting
//! after at most `conn_ttl_ms`. A set holds at most `cap` members (plus, just after Redis came
//! back, the connections the nodes admitted per node meanwhile, re-added by the next refresh),
//! and expires with its last member.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::Link;

/// Drops expired members of KEYS[1]; adds ARGV[1] (expiring in ARGV[3] ms) unless ARGV[2]
/// members remain. 1 = added, 0 = refused.
const ACQUIRE: &str = r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[2]) then
  return 0
end
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[3]), ARGV[1])
redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[3]))
return 1
";

/// For every i, (re)adds ARGV[i + 1] to KEYS[i], expiring in ARGV[1] ms.
const REFRESH: &str = r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local ttl = tonumber(ARGV[1])
for i, key in ipairs(KEYS) do
  redis.call('ZADD', key, now + ttl, ARGV[i + 1])
  redis.call('PEXPIRE', key, ttl)
end
return #KEYS
";

/// Connections refreshed per script call.
const REFRESH_BATCH: usize = 500;

/// A connection in Redis: its user's set and its member name.
type Member = (String, String);

/// Closed connections remembered for removal from Redis while it does not answer.
const MAX_GONE: usize = 10_000;

/// This node's connections as Redis knows them: (set, member) by a node-wide id.
struct Live {
    next: u64,
    conns: HashMap<u64, Member>,
    /// Closed connections to remove from Redis at the next refresh (their removal on close may
    /// have failed, or raced a refresh that added them again).
    gone: Vec<Member>,
}

/// A refused connect: the user has the cap's number of connections on the nodes together.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OverCap;

/// The connections of this node counted in Redis.
pub struct Conns {
    ttl: Duration,
    /// Tells this node's members from other nodes'.
    node: String,
    live: Arc<Mutex<Live>>,
    acquire: redis::Script,
}

/// A connection counted across nodes; dropping it stops counting it (here at once, in Redis
/// within the link's timeout).
pub struct ConnSlot {
    id: u64,
    live: Arc<Mutex<Live>>,
    link: Arc<Link>,
}

impl Drop for ConnSlot {
    fn drop(&mut self) {
        let (set, member) = {
            let mut live = crate::sync::lock(&self.live);
            let Some(gone) = live.conns.remove(&self.id) else {
                return;
            };
            if live.gone.len() < MAX_GONE {
                live.gone.push(gone.clone());
            }
            gone
        };
        let link = self.link.clone();
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            rt.spawn(async move {
                link.call(|mut conn| async move {
                    redis::cmd("ZREM")
                        .arg(set)
                        .arg(member)
                        .query_async::<i64>(&mut conn)
                        .await
                })
                .await;
            });
        }
    }
}

impl Conns {
    pub(super) fn new(ttl: Duration) -> Self {
        Self {
            ttl,
            node: format!("{}-{:016x}", std::process::id(), rand::random::<u64>()),
            live: Arc::new(Mutex::new(Live {
                next: 0,
                conns: HashMap::new(),
                gone: Vec::new(),
            })),
            acquire: redis::Script::new(ACQUIRE),
        }
    }

    /// Counts a new connection of `user` under `cap`; while Redis does not answer it is
    /// admitted (the node's own cap already held) and counted once Redis is back.
    pub(super) async fn acquire(
        &self,
        link: &Arc<Link>,
        app: u64,
        user: &str,
        cap: usize,
    ) -> Result<ConnSlot, OverCap> {
        let id = {
            let mut live = crate::sync::lock(&self.live);
            live.next += 1;
            live.next
        };
        let set = format!("{}conns:{app}:{user}", link.prefix);
        let member = format!("{}:{id}", self.node);
        let ttl = self.ttl.as_millis() as u64;
        let added = link
            .call(|mut c| {
                let (set, member) = (set.clone(), member.clone());
                async move {
                    self.acquire
                        .key(set)
                        .arg(member)
                        .arg(cap)
                        .arg(ttl)
                        .invoke_async::<i64>(&mut c)
                        .await
                }
            })
            .await;
        if added == Some(0) {
            return Err(OverCap);
        }
        crate::sync::lock(&self.live)
            .conns
            .insert(id, (set, member));
        Ok(ConnSlot {
            id,
            live: self.live.clone(),
            link: link.clone(),
        })
    }

    /// Refreshes this node's connections in Redis every third of the ttl, and at once when Redis
    /// comes back (it may have lost them, and those admitted meanwhile were never added).
    pub(super) async fn refresh(&self, link: &Arc<Link>, stop: CancellationToken) {
        let every = self.ttl / 3;
        let script = redis::Script::new(REFRESH);
        loop {
            tokio::select! {
                () = stop.cancelled() => return,
                () = tokio::time::sleep(every) => {}
                () = link.back.notified() => {}
            }
            let (all, mut gone): (Vec<(u64, String, String)>, Vec<Member>) = {
                let mut live = crate::sync::lock(&self.live);
                let all = live
                    .conns
                    .iter()
                    .map(|(id, (set, member))| (*id, set.clone(), member.clone()))
                    .collect();
                (all, std::mem::take(&mut live.gone))
            };
            let ttl = self.ttl.as_millis() as u64;
            let mut reached = true;
            for batch in all.chunks(REFRESH_BATCH) {
                let done = link
                    .call(|mut c| {
                        let mut call = script.prepare_invoke();
                        call.arg(ttl);
                        for (_, set, member) in batch {
                            call.key(set).arg(member);
                        }
                        async move { call.invoke_async::<i64>(&mut c).await }
                    })
                    .await;
                if done.is_none() {
                    reached = false;
                    break;
                }
                // Closed while this batch was on its way: it may have added them back.
                let live = crate::sync::lock(&self.live);
                gone.extend(
                    batch
                        .iter()
                        .filter(|(id, _, _)| !live.conns.contains_key(id))
                        .map(|(_, set, member)| (set.clone(), member.clone())),
                );
            }
            if reached && !gone.is_empty() {
                let removed = link
                    .call(|mut c| {
                        let mut pipe = redis::pipe();
                        for (set, member) in &gone {
                            pipe.cmd("ZREM").arg(set).arg(member).ignore();
                        }
                        async move { pipe.query_async::<()>(&mut c).await }
                    })
                    .await;
                if removed.is_some() {
                    gone.clear();
                }
            }
            if !gone.is_empty() {
                // Not reached: keep them for the next refresh (bounded).
                let mut live = crate::sync::lock(&self.live);
                let room = MAX_GONE.saturating_sub(live.gone.len());
                live.gone.extend(gone.into_iter().take(room));
            }
        }
    }
}
