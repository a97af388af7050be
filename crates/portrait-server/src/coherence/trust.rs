//! When a node may vouch for its read cache: the epoch rule.
//!
//! A node trusts its cache (is *in an epoch*) while all of these hold:
//! * its NATS connection is up, and has not been re-established since the epoch began (a
//!   reconnect may have lost messages);
//! * it read the cluster's members from the store less than `lease` ago;
//! * it heard a heartbeat from every member, itself included, sent less than `lease` ago by the
//!   sender's clock, and every one names the NATS server this node is connected to; its own
//!   was sent on the current connection (heartbeats arrive on the invalidations' subscription,
//!   so this proves the client has subscribed again after a reconnect);
//! * every other member **listed this node** in a heartbeat sent less than `lease` ago: that
//!   member waits for this node's acknowledgement of each invalidation it publishes until
//!   `wait` after that heartbeat ([`super`]), so whatever it acknowledged to a client meanwhile
//!   is applied here already (a later heartbeat that skips this node changes nothing before
//!   the lease runs out);
//! * it is not muted (an invalidation of its own it could not confirm, see [`super`], or for
//!   good once it stops).
//!
//! A node whose every condition but the listing holds is *ready*, and says so in its heartbeat:
//! the others list only ready nodes, so they do not wait for a node that cannot trust anyway.
//!
//! A message that breaks a condition (a gap in a sender's numbers, a sender silent for longer
//! than the lease) ends the epoch at once, in the task that applies messages, before it
//! acknowledges anything later. Other conditions (a member on another server, a reconnect
//! noticed by the client) end it at the next check. The conditions that lapse with
//! time are folded into one deadline ([`Trust::trusted`]), so a read checks a few atomics; past
//! the deadline (or every [`TICK`]) they are checked again. When all hold again a new epoch
//! begins, and each app's first read in it catches up from the change log.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use super::wire::Beat;

/// How often the trust conditions are re-checked.
pub(super) const TICK: Duration = Duration::from_millis(25);

/// A heartbeat heard from a node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Heard {
    /// When the sender sent it, by its clock (Unix ms).
    pub sent_ms: i64,
    /// The NATS server it went through (the sender's `server_info().server_id`).
    pub server: String,
    /// When the sender's last heartbeat that listed this node (among those whose
    /// acknowledgements it waits for) was sent, by its clock (Unix ms). It waits for this
    /// node's acknowledgements until `wait` after that, so a heartbeat that skips this node
    /// (the sender saw it not ready for a moment) ends nothing before the lease does.
    pub listed_me_ms: Option<i64>,
    /// Whether the sender said it was ready (see [`Trust::ready`]): only then is it listed.
    pub ready: bool,
}

/// The members last read from the store.
#[derive(Debug, Default)]
pub(super) struct Members {
    pub list: Vec<String>,
    pub read_at: Option<Instant>,
}

/// A node's view of the cluster and its current epoch.
pub(super) struct Trust {
    /// 0: not trusted; else the current epoch.
    epoch: AtomicU64,
    /// Unix ms (this node's clock) after which the conditions that lapse with time must be
    /// checked again before the epoch may be used.
    until_ms: AtomicI64,
    next_epoch: AtomicU64,
    /// The connection's generation (NATS connects so far) when the epoch began.
    epoch_generation: AtomicU64,
    pub heard: Mutex<HashMap<String, Heard>>,
    pub members: Mutex<Members>,
    /// Unix ms until which this node sends no heartbeat and does not trust its cache (an
    /// unconfirmed write of its own, or for good once it stops).
    pub muted_until_ms: AtomicI64,
    /// Whether every condition but being listed held at the last check: the node's heartbeat
    /// says so, and only such nodes are listed (a node that cannot trust anyway, say one that
    /// hears NATS late, is not waited for).
    pub ready: AtomicBool,
    /// How many times an epoch was ended; an epoch begins only if none ended while the check
    /// that begins it was looking (so a check cannot undo an end it did not see).
    ends: Mutex<u64>,
    /// The connection generation last seen by [`Trust::check`], and when it was first seen.
    connection: Mutex<(u64, i64)>,
}

/// What [`Trust::check`] needs to know of the connection.
pub(super) struct Link<'a> {
    pub connected: bool,
    pub generation: u64,
    pub server: &'a str,
}

impl Trust {
    pub(super) fn new() -> Trust {
        Trust {
            epoch: AtomicU64::new(0),
            until_ms: AtomicI64::new(0),
            next_epoch: AtomicU64::new(1),
            epoch_generation: AtomicU64::new(0),
            heard: Mutex::new(HashMap::new()),
            members: Mutex::new(Members::default()),
            muted_until_ms: AtomicI64::new(0),
            ready: AtomicBool::new(false),
            ends: Mutex::new(0),
            connection: Mutex::new((0, 0)),
        }
    }

    /// The current epoch, if trusted and the connection is the one the epoch began on.
    pub(super) fn epoch(&self, generation: u64) -> Option<u64> {
        let e = self.epoch.load(Ordering::SeqCst);
        (e != 0 && self.epoch_generation.load(Ordering::SeqCst) == generation).then_some(e)
    }

    /// The current epoch if it may be used at `now_ms` without checking again: trusted, on the
    /// connection the epoch began on, and before the deadline of the last check.
    pub(super) fn trusted(&self, generation: u64, now_ms: i64) -> Option<u64> {
        let e = self.epoch(generation)?;
        // The epoch again, last: the generation read above is the one it began on.
        (now_ms <= self.until_ms.load(Ordering::SeqCst) && self.epoch.load(Ordering::SeqCst) == e)
            .then_some(e)
    }

    /// Notes a heartbeat (`lists_me`: it listed this node); ends the epoch if it came
    /// more than `lease_ms` after the sender's previous one (the sender may have written
    /// unconfirmed meanwhile).
    pub(super) fn hear(&self, beat: &Beat<'_>, lists_me: bool, lease_ms: i64) {
        let node = beat.node;
        let mut heard = crate::sync::lock(&self.heard);
        let previous = heard.get(node).map(|p| (p.sent_ms, p.listed_me_ms));
        let listed_me_ms = if lists_me {
            Some(beat.sent_ms)
        } else {
            previous.and_then(|(_, listed)| listed)
        };
        let silent = previous.is_some_and(|(sent, _)| beat.sent_ms - sent > lease_ms);
        heard.insert(
            node.to_owned(),
            Heard {
                sent_ms: beat.sent_ms,
                server: beat.server.to_owned(),
                listed_me_ms,
                ready: beat.ready,
            },
        );
        drop(heard);
        if silent {
            tracing::debug!(
                node,
                "coherence: a member was silent for longer than the lease"
            );
            self.end();
        }
    }

    /// Ends the epoch (if any): something may have been missed. Returns the count of ends.
    pub(super) fn end(&self) -> u64 {
        let mut ends = crate::sync::lock(&self.ends);
        *ends += 1;
        self.epoch.store(0, Ordering::SeqCst);
        *ends
    }

    /// Re-checks the conditions at `now_ms` with `lease_ms`: ends the epoch if one fails,
    /// begins a new one if all hold and none is current. Returns whether trusted.
    pub(super) fn check(&self, me: &str, link: &Link<'_>, now_ms: i64, lease_ms: i64) -> bool {
        let mut ends = *crate::sync::lock(&self.ends);
        let since_ms = {
            let mut seen = crate::sync::lock(&self.connection);
            if seen.0 != link.generation {
                *seen = (link.generation, now_ms);
            }
            seen.1
        };
        let (ready, until) =
            if link.connected && self.muted_until_ms.load(Ordering::SeqCst) <= now_ms {
                self.all_heard(me, since_ms, link.server, now_ms, lease_ms)
            } else {
                (false, None)
            };
        self.ready.store(ready, Ordering::SeqCst);
        let Some(until) = until else {
            if self.epoch.load(Ordering::SeqCst) != 0 && tracing::enabled!(tracing::Level::DEBUG) {
                let why = self.describe(me, link, now_ms);
                tracing::debug!(%why, "coherence: the read cache is no longer trusted");
            }
            self.end();
            return false;
        };
        if self.epoch.load(Ordering::SeqCst) != 0
            && self.epoch_generation.load(Ordering::SeqCst) != link.generation
        {
            // This check's own end does not stop it from beginning the next epoch.
            if self.end() == ends + 1 {
                ends += 1;
            }
        }
        // The deadline and a new epoch only from a check that no end overtook (under the lock
        // that ends take), so a stale check cannot set either for an epoch it did not see.
        let ended = crate::sync::lock(&self.ends);
        if *ended != ends {
            return false; // ended meanwhile, for a reason this check may not have seen
        }
        self.until_ms.store(until, Ordering::SeqCst);
        if self.epoch.load(Ordering::SeqCst) == 0 {
            let e = self.next_epoch.fetch_add(1, Ordering::SeqCst);
            self.epoch_generation
                .store(link.generation, Ordering::SeqCst);
            self.epoch.store(e, Ordering::SeqCst);
            metrics::counter!("portrait_coherence_epochs_total").increment(1);
            tracing::debug!(epoch = e, "coherence: the read cache is trusted again");
        }
        true
    }

    /// What the conditions look like at `now_ms`, for the log.
    fn describe(&self, me: &str, link: &Link<'_>, now_ms: i64) -> String {
        let members = crate::sync::lock(&self.members);
        let heard = crate::sync::lock(&self.heard);
        let mut out = format!(
            "connected {}, muted {}, members read {:?} ago;",
            link.connected,
            self.muted_until_ms.load(Ordering::SeqCst) > now_ms,
            members.read_at.map(|t| t.elapsed())
        );
        for m in &members.list {
            match heard.get(m) {
                Some(h) => out.push_str(&format!(
                    " {m}{}: heard {} ms ago, same server {}, ready {}, listed me {:?} ms ago;",
                    if m == me { " (me)" } else { "" },
                    now_ms - h.sent_ms,
                    h.server == link.server,
                    h.ready,
                    h.listed_me_ms.map(|t| now_ms - t),
                )),
                None => out.push_str(&format!(" {m}: never heard;")),
            }
        }
        out
    }

    /// Members read recently, each heard recently through `server`, and `me` heard since the
    /// connection began (`since_ms`): whether that holds (*ready*), and if every other member
    /// also lists `me`, until when all of it holds (Unix ms).
    fn all_heard(
        &self,
        me: &str,
        since_ms: i64,
        server: &str,
        now_ms: i64,
        lease_ms: i64,
    ) -> (bool, Option<i64>) {
        let members = crate::sync::lock(&self.members);
        let lease = Duration::from_millis(lease_ms.unsigned_abs());
        let Some(read_for) = members.read_at.map(|t| t.elapsed()).filter(|e| *e <= lease) else {
            return (false, None);
        };
        let heard = crate::sync::lock(&self.heard);
        if !members.list.iter().any(|m| m == me)
            || heard.get(me).is_none_or(|h| h.sent_ms < since_ms)
        {
            return (false, None);
        }
        let read_ms = i64::try_from((lease - read_for).as_millis()).unwrap_or(i64::MAX / 4);
        let mut until = Some(now_ms + read_ms);
        for m in &members.list {
            match heard.get(m) {
                Some(h) if now_ms - h.sent_ms <= lease_ms && h.server == server => {
                    let listed = if m == me {
                        Some(h.sent_ms)
                    } else {
                        h.listed_me_ms.filter(|t| now_ms - t <= lease_ms)
                    };
                    until = until.zip(listed).map(|(u, t)| u.min(t + lease_ms));
                }
                _ => return (false, None),
            }
        }
        (true, until)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn trust(members: &[&str]) -> Trust {
        let t = Trust::new();
        *crate::sync::lock(&t.members) = Members {
            list: members.iter().map(|m| (*m).to_owned()).collect(),
            read_at: Some(Instant::now()),
        };
        t
    }

    fn hear(t: &Trust, node: &str, sent_ms: i64, server: &str) {
        hear_listing(t, node, sent_ms, server, true);
    }

    fn hear_listing(t: &Trust, node: &str, sent_ms: i64, server: &str, lists_me: bool) {
        let text = super::super::wire::heartbeat(node, 1, server, sent_ms, true, &[]);
        let beat = super::super::wire::parse_heartbeat(&text).unwrap();
        t.hear(&beat, lists_me, 1_000_000);
    }

    const LINK: Link<'static> = Link {
        connected: true,
        generation: 1,
        server: "S1",
    };

    #[test]
    fn every_member_must_be_heard_recently_through_the_same_server() {
        let t = trust(&["a", "b"]);
        hear(&t, "a", 1_000, "S1");
        assert!(!t.check("a", &LINK, 1_000, 500), "b never heard");
        hear(&t, "b", 900, "S2");
        assert!(!t.check("a", &LINK, 1_000, 500), "b is on another server");
        hear(&t, "b", 950, "S1");
        assert!(t.check("a", &LINK, 1_000, 500));
        let first = t.epoch(1).unwrap();
        assert!(t.check("a", &LINK, 1_400, 500), "the same epoch goes on");
        assert_eq!(t.epoch(1), Some(first));
        assert!(
            !t.check("a", &LINK, 1_451, 500),
            "b's heartbeat is older than the lease"
        );
        assert_eq!(t.epoch(1), None);
        hear(&t, "a", 1_450, "S1");
        hear(&t, "b", 1_450, "S1");
        assert!(t.check("a", &LINK, 1_460, 500));
        assert!(
            t.epoch(1).unwrap() > first,
            "a new epoch, never the old one"
        );
    }

    /// Every other member must list this node (it waits for this node's acknowledgements), and
    /// a read may use the epoch without checking again until the first condition lapses.
    #[test]
    fn every_other_member_must_list_this_node_and_the_epoch_lasts_until_a_deadline() {
        let t = trust(&["a", "b", "c"]);
        hear(&t, "a", 1_000, "S1");
        hear(&t, "b", 900, "S1");
        hear_listing(&t, "c", 950, "S1", false);
        assert!(!t.check("a", &LINK, 1_000, 500), "c never listed a");
        assert_eq!(t.trusted(1, 1_000), None);
        assert!(
            t.ready.load(Ordering::SeqCst),
            "ready: every condition but the listing holds"
        );
        // Its own heartbeat need not list itself.
        hear_listing(&t, "a", 1_000, "S1", false);
        hear(&t, "c", 940, "S1");
        // A later heartbeat of c that skips a: c still waits for a until `wait` after 940.
        hear_listing(&t, "c", 950, "S1", false);
        assert!(t.check("a", &LINK, 1_000, 500));
        let e = t.epoch(1).unwrap();
        assert_eq!(
            t.until_ms.load(Ordering::SeqCst),
            1_400,
            "b's heartbeat (900) lapses first"
        );
        // b's heartbeat, the oldest, lapses first: at 900 + 500.
        assert_eq!(t.trusted(1, 1_400), Some(e));
        assert_eq!(t.trusted(1, 1_401), None, "past the deadline: check again");
        assert_eq!(t.trusted(2, 1_000), None, "another connection");
        hear(&t, "b", 1_300, "S1");
        assert!(t.check("a", &LINK, 1_401, 500));
        assert_eq!(
            t.trusted(1, 1_401),
            Some(e),
            "the same epoch, a later deadline"
        );
        assert_eq!(
            t.trusted(1, 1_441),
            None,
            "c's listing of a lapses at 1440, though its heartbeat of 950 has not"
        );
        assert!(
            !t.check("a", &LINK, 1_441, 500),
            "c has not listed a since 940"
        );
        // The members' list lapses a lease after it was read.
        crate::sync::lock(&t.members).read_at = Some(Instant::now() - Duration::from_millis(450));
        hear(&t, "a", 1_400, "S1");
        hear(&t, "c", 1_400, "S1");
        assert!(t.check("a", &LINK, 1_450, 500));
        assert!(t.epoch(1).unwrap() > e, "a new epoch");
        let until = t.until_ms.load(Ordering::SeqCst);
        assert!(
            (1_490..=1_500).contains(&until),
            "about 50 ms left on the members' list: {until}"
        );
        crate::sync::lock(&t.members).read_at = Some(Instant::now() - Duration::from_millis(600));
        assert!(!t.check("a", &LINK, 1_450, 500));
        assert!(
            !t.ready.load(Ordering::SeqCst),
            "not ready: the members' list is too old"
        );
    }

    #[test]
    fn a_reconnect_a_mute_or_stale_members_end_the_epoch() {
        let t = trust(&["a"]);
        hear(&t, "a", 1_000, "S1");
        assert!(t.check("a", &LINK, 1_000, 500));
        let e = t.epoch(1).unwrap();
        assert_eq!(t.epoch(2), None, "the connection was re-established");
        let again = Link {
            generation: 2,
            ..LINK
        };
        assert!(
            !t.check("a", &again, 1_010, 500),
            "not before its own heartbeat came back on the new connection"
        );
        hear(&t, "a", 1_020, "S1");
        assert!(t.check("a", &again, 1_030, 500));
        assert!(t.epoch(2).unwrap() > e, "a new epoch on the new connection");
        t.muted_until_ms.store(1_100, Ordering::SeqCst);
        assert!(!t.check("a", &again, 1_050, 500), "muted");
        assert!(t.check("a", &again, 1_100, 500));
        crate::sync::lock(&t.members).read_at = Some(Instant::now() - Duration::from_millis(600));
        assert!(
            !t.check("a", &again, 1_100, 500),
            "members not read for longer than the lease"
        );
        let down = Link {
            connected: false,
            ..again
        };
        crate::sync::lock(&t.members).read_at = Some(Instant::now());
        assert!(!t.check("a", &down, 1_100, 500), "disconnected");
        assert!(
            !trust(&["b"]).check("a", &LINK, 0, 500),
            "not a member itself"
        );
    }
}
