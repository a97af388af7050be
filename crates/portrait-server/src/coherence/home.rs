//! Returning to the home NATS server: the first server of `push.nats_url`, in the listed
//! order, that accepts a connection.
//!
//! Trust needs every member's heartbeat through the server this node is connected to
//! ([`super::trust`]), so nodes on different servers of a NATS cluster never trust their caches.
//! The coherence client connects in the listed order (`retain_servers_order`, never a server
//! the cluster announces), so nodes that start together meet on the first server that answers.
//! They can still end up apart: a node that moved on when its server died stays where it went
//! when that server comes back, while a node that starts or reconnects later takes the server
//! back. So every [`PROBE_EVERY`] this task connects to the listed servers in order, the first
//! that answers being the home one, and compares its server id with the one the node is
//! connected to. A node away from home for [`HOME_AFTER`] (the same home server, not restarted,
//! answering all along, and the node's own server answering further down the list: a node
//! never moves down the list on a failed probe's word) reconnects (`Client::force_reconnect`),
//! which takes the list in order again. Nodes configured alike all choose the same home, so two
//! nodes never each pull towards a different server; only a node that cannot reach the home
//! server others reach stays apart, and its cluster reads ask the database meanwhile, as with
//! any split.
//!
//! A move is an ordinary reconnect as far as trust goes: the client drops the connection and
//! opens another, the connection's generation changes, the epoch ends and the node's writes
//! wait once as after any reconnect ([`super`]). Moves must not flap. A node waits
//! [`HOME_AFTER`] before it moves, twice as long for each of these in the last [`RECENT`]:
//! * a listed server that came back as home with a new id (restarted), beyond the first: a
//!   server that keeps dying is trusted less each time. Every node probes the same servers and
//!   sees the same comebacks, so nodes still move at about the same time (a node that started
//!   while the server was down counts one comeback less);
//! * a move of this node that did not land on the home server (it answers probes but not the
//!   client, say).
//!
//! The wait is at most [`PATIENCE_MAX`].
//!
//! Not here: the heartbeats and the trust rule (`coherence.rs`, `trust.rs`).

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

use async_nats::ServerAddr;
use tokio_util::sync::CancellationToken;

/// How often the home server is looked for.
pub(super) const PROBE_EVERY: Duration = Duration::from_secs(1);
/// How long a node stays away from an answering home server before it moves there.
pub(super) const HOME_AFTER: Duration = Duration::from_secs(3);
/// The longest a node waits before moving home, however often its home restarted or it missed.
pub(super) const PATIENCE_MAX: Duration = Duration::from_secs(60);
/// Restarts of a home server and missed moves this recent make the next move wait longer.
pub(super) const RECENT: Duration = Duration::from_secs(300);
/// Longest a probe of one server may take (connection and handshake).
const PROBE_TIMEOUT: Duration = Duration::from_secs(1);
/// The name of probe connections (in the servers' `/connz`).
pub const PROBE_NAME: &str = "portrait-coherence-probe";

/// When to move, from what the probes saw (no I/O: the task below feeds it).
#[derive(Debug, Default)]
pub(super) struct Homing {
    /// The home server's id while the node is elsewhere, and since when it has been seen.
    away: Option<(String, Instant)>,
    /// A move was asked for and where it landed is not known yet.
    moving: bool,
    /// The id last seen of each listed server that was home, by its position in the list.
    ids: HashMap<usize, String>,
    /// When a listed server came back as home with a new id (within [`RECENT`]).
    restarts: VecDeque<Instant>,
    /// When a move of this node landed elsewhere than home (within [`RECENT`]).
    missed: VecDeque<Instant>,
}

impl Homing {
    /// Notes what a probe found at `now`: the id of the server the node is connected to
    /// (`None`: not connected) and the home server's position in the list and id (`None`: none
    /// known). True when the node should move home now.
    pub(super) fn observe(
        &mut self,
        now: Instant,
        current: Option<&str>,
        home: Option<(usize, &str)>,
    ) -> bool {
        for events in [&mut self.restarts, &mut self.missed] {
            while events
                .front()
                .is_some_and(|t| now.duration_since(*t) > RECENT)
            {
                events.pop_front();
            }
        }
        if let Some((n, id)) = home {
            if self
                .ids
                .insert(n, id.to_owned())
                .is_some_and(|old| old != id)
            {
                self.restarts.push_back(now);
            }
        }
        let (Some(current), Some((_, home))) = (current, home) else {
            // Reconnecting, maybe after a move: where it lands is judged once connected.
            self.away = None;
            return false;
        };
        if current == home {
            self.away = None;
            self.moving = false;
            return false;
        }
        if std::mem::take(&mut self.moving) {
            self.missed.push_back(now);
        }
        let since = match &self.away {
            // The same home server (a restarted one has a new id) answered all along.
            Some((id, since)) if id == home => *since,
            _ => {
                self.away = Some((home.to_owned(), now));
                now
            }
        };
        if now.duration_since(since) < self.patience() {
            return false;
        }
        // If the move lands elsewhere, the next wait counts from now.
        self.away = Some((home.to_owned(), now));
        self.moving = true;
        true
    }

    /// How long the home server must answer before the node moves there.
    fn patience(&self) -> Duration {
        let events = self.missed.len() + self.restarts.len().saturating_sub(1);
        let doublings = u32::try_from(events).unwrap_or(u32::MAX).min(16);
        HOME_AFTER.saturating_mul(1 << doublings).min(PATIENCE_MAX)
    }
}

/// The id of the server at `server`, if it accepts a connection within [`PROBE_TIMEOUT`].
async fn probe(server: &ServerAddr) -> Option<String> {
    let connect = async_nats::ConnectOptions::new()
        .name(PROBE_NAME)
        .connection_timeout(PROBE_TIMEOUT)
        .ignore_discovered_servers()
        .connect(server.clone());
    let probe = tokio::time::timeout(PROBE_TIMEOUT * 2, connect)
        .await
        .ok()?
        .ok()?;
    let id = probe.server_info().server_id;
    drop(probe); // closes the connection
    (!id.is_empty()).then_some(id)
}

/// The position and id of the home server, the first of `servers` that answers a probe, as
/// seen by a node connected to the server `current`: `current` itself, or an earlier server
/// when `current` answers too, further down the list. `None` when the node's own server does
/// not answer (the probe, not the server, may be what fails: a node never moves down the list
/// on a probe's word).
async fn home(servers: &[ServerAddr], current: &str) -> Option<(usize, String)> {
    let mut home = None;
    for (n, server) in servers.iter().enumerate() {
        let Some(id) = probe(server).await else {
            continue;
        };
        if id == current {
            return Some(home.unwrap_or((n, id)));
        }
        home.get_or_insert((n, id));
    }
    None
}

/// The id of the server `client` is connected to, if connected.
fn current(client: &async_nats::Client) -> Option<String> {
    if client.connection_state() != async_nats::connection::State::Connected {
        return None;
    }
    Some(client.server_info().server_id).filter(|id| !id.is_empty())
}

/// Moves `client` to the home server of `servers` when it has been elsewhere long enough, until
/// `stop`.
pub(super) async fn run(
    client: async_nats::Client,
    servers: Vec<ServerAddr>,
    stop: CancellationToken,
) {
    let mut homing = Homing::default();
    let mut every = tokio::time::interval(PROBE_EVERY);
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            () = stop.cancelled() => return,
            _ = every.tick() => {}
        }
        let Some(current) = current(&client) else {
            homing.observe(Instant::now(), None, None);
            continue;
        };
        // Probes of unreachable servers take up to a few seconds: shutdown does not wait.
        let home = tokio::select! {
            () = stop.cancelled() => return,
            home = home(&servers, &current) => home,
        };
        // Reconnected meanwhile: what the probes saw may not hold for the new connection.
        if self::current(&client).as_ref() != Some(&current) {
            homing.observe(Instant::now(), None, None);
            continue;
        }
        let home = home.as_ref().map(|(n, id)| (*n, id.as_str()));
        if homing.observe(Instant::now(), Some(&current), home) {
            tracing::info!(
                from = %current,
                to = home.map(|(_, id)| id),
                "coherence: moving to the first listed NATS server that answers, where the \
                 other nodes meet"
            );
            if let Err(e) = client.force_reconnect().await {
                tracing::warn!(error = %e, "coherence: could not reconnect to the home NATS server");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Observes `current` and `home` (first listed server `A…`, second `B…`) once a second from
    /// `start`, over `secs` seconds; the seconds at which a move was asked for.
    fn moves_over(
        h: &mut Homing,
        start: Instant,
        secs: std::ops::Range<u64>,
        current: Option<&str>,
        home: Option<&str>,
    ) -> Vec<u64> {
        let home = home.map(|id| (usize::from(!id.starts_with('A')), id));
        secs.filter(|s| h.observe(start + Duration::from_secs(*s), current, home))
            .collect()
    }

    const AFTER: u64 = HOME_AFTER.as_secs();

    #[test]
    fn a_node_at_home_or_with_no_home_in_sight_stays() {
        let mut h = Homing::default();
        let t = Instant::now();
        assert!(moves_over(&mut h, t, 0..30, Some("A"), Some("A")).is_empty());
        assert!(moves_over(&mut h, t, 30..60, Some("B"), None).is_empty());
        assert!(moves_over(&mut h, t, 60..90, None, Some("A")).is_empty());
    }

    #[test]
    fn a_node_away_from_an_answering_home_moves_after_home_after_once() {
        let mut h = Homing::default();
        let t = Instant::now();
        assert_eq!(
            moves_over(&mut h, t, 0..AFTER + 1, Some("B"), Some("A")),
            [AFTER],
            "moves once the same home answered for {HOME_AFTER:?}"
        );
        // Reconnecting, then arrived: nothing more.
        assert!(moves_over(&mut h, t, AFTER + 1..AFTER + 2, None, Some("A")).is_empty());
        assert!(moves_over(&mut h, t, AFTER + 2..AFTER + 60, Some("A"), Some("A")).is_empty());
    }

    #[test]
    fn a_restarted_or_lost_home_starts_the_wait_over() {
        let mut h = Homing::default();
        let t = Instant::now();
        assert!(moves_over(&mut h, t, 0..2, Some("B"), Some("A")).is_empty());
        // The home server restarted (a new id): it must answer for the whole wait again.
        assert!(moves_over(&mut h, t, 2..4, Some("B"), Some("A2")).is_empty());
        // Unreachable for a moment, or this node disconnected: again from the start.
        assert!(moves_over(&mut h, t, 4..5, Some("B"), None).is_empty());
        assert!(moves_over(&mut h, t, 5..7, Some("B"), Some("A2")).is_empty());
        assert!(moves_over(&mut h, t, 7..8, None, Some("A2")).is_empty());
        let back = 8 + AFTER;
        assert_eq!(
            moves_over(&mut h, t, 8..back + 1, Some("B"), Some("A2")),
            [back],
            "one restart is every failover's: no longer wait"
        );
    }

    /// A failover, over and over: the home server dies (the node reconnects to the second
    /// server, its home meanwhile) and comes back with a new id 10 s later, every 50 s from
    /// `from`. How long the node waited before moving back, after each comeback.
    fn flapping(h: &mut Homing, t: Instant, from: u64, comebacks: usize) -> Vec<u64> {
        let mut waits = Vec::new();
        for k in 0..comebacks {
            let died = from + k as u64 * 50;
            let id = format!("A{k}");
            assert!(moves_over(h, t, died..died + 10, Some("B"), Some("B")).is_empty());
            let back = died + 10;
            // The node moves, and lands home.
            let mut current = "B";
            for s in back..back + 40 {
                let now = t + Duration::from_secs(s);
                if h.observe(now, Some(current), Some((0, &id))) {
                    assert_eq!(current, "B", "moved again once home");
                    waits.push(s - back);
                    current = &id;
                }
            }
        }
        waits
    }

    #[test]
    fn a_home_server_that_keeps_restarting_is_awaited_longer_each_time() {
        let t = Instant::now();
        // A node that saw the first server before it first died.
        let mut h = Homing::default();
        assert!(moves_over(&mut h, t, 0..5, Some("Aorig"), Some("Aorig")).is_empty());
        assert_eq!(
            flapping(&mut h, t, 5, 4),
            [AFTER, 2 * AFTER, 4 * AFTER, 8 * AFTER],
            "the first comeback is every failover's; later ones wait twice as long each"
        );
        // Quiet for longer than RECENT: forgotten.
        let later = 205 + RECENT.as_secs() + 1;
        assert!(moves_over(&mut h, t, 205..later, Some("A3"), Some("A3")).is_empty());
        assert_eq!(flapping(&mut h, t, later, 1), [AFTER]);
        // A node that started while the server was down never saw it before: one comeback less.
        assert_eq!(
            flapping(&mut Homing::default(), t, 5, 3),
            [AFTER, AFTER, 2 * AFTER]
        );
    }

    #[test]
    fn moves_that_land_elsewhere_wait_longer_each_time_up_to_the_cap_then_forget() {
        let mut h = Homing::default();
        let t = Instant::now();
        // A home that keeps accepting probes while the node keeps landing elsewhere.
        let got = moves_over(&mut h, t, 0..200, Some("B"), Some("A"));
        let gaps: Vec<u64> = std::iter::once(got[0])
            .chain(got.windows(2).map(|w| w[1] - w[0]))
            .collect();
        assert_eq!(
            &gaps[..4],
            [AFTER, 2 * AFTER, 4 * AFTER, 8 * AFTER],
            "{got:?}"
        );
        assert!(
            gaps.iter().all(|g| *g <= PATIENCE_MAX.as_secs()),
            "never longer than the cap: {gaps:?}"
        );
        // Long at home: past misses are forgotten, the next move waits the least again.
        let later = 200 + RECENT.as_secs() + 1;
        assert!(moves_over(&mut h, t, 200..later, Some("A"), Some("A")).is_empty());
        assert_eq!(
            moves_over(&mut h, t, later..later + AFTER + 1, Some("B"), Some("A")),
            [later + AFTER]
        );
    }
}
