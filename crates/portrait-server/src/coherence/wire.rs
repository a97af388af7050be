//! What coherence sends over NATS, and the per-sender sequence check.
//!
//! Every heartbeat and invalidation a node sends carries the next number of that node's one
//! sequence, and the node sends them one at a time in that order on its one connection. NATS
//! keeps one publisher's order, so a receiver that sees a number other than the last one plus
//! one from a sender has lost something from it (a full subscription channel, or the sender's
//! messages lost in its reconnect) and must stop vouching for its cache.

use std::collections::HashMap;

/// Largest invalidation payload: beyond, "the whole app" is sent instead (NATS refuses payloads
/// over its `max_payload`, 1 MiB by default).
pub(super) const MAX_PAYLOAD: usize = 256 << 10;

/// A heartbeat: `<node> <seq> <server> <sent_ms> <ready> <listed>`, where `ready` is 1 if the
/// sender could trust its cache but for being listed (else 0), and `listed` the nodes it lists:
/// it waits for their acknowledgements until `wait` after this heartbeat, comma-separated (`-`:
/// none). Node ids are hex.
pub(super) fn heartbeat(
    node: &str,
    seq: u64,
    server: &str,
    sent_ms: i64,
    ready: bool,
    listed: &[&str],
) -> String {
    let listed = if listed.is_empty() {
        "-".to_owned()
    } else {
        listed.join(",")
    };
    format!(
        "{node} {seq} {server} {sent_ms} {} {listed}",
        u8::from(ready)
    )
}

/// A parsed heartbeat.
#[derive(Debug, PartialEq, Eq)]
pub(super) struct Beat<'a> {
    pub node: &'a str,
    pub seq: u64,
    pub server: &'a str,
    pub sent_ms: i64,
    pub ready: bool,
    listed: &'a str,
}

impl Beat<'_> {
    /// Whether the sender listed `node`.
    pub(super) fn lists(&self, node: &str) -> bool {
        self.listed != "-" && self.listed.split(',').any(|n| n == node)
    }
}

/// Parses [`heartbeat`].
pub(super) fn parse_heartbeat(text: &str) -> Option<Beat<'_>> {
    let mut parts = text.split(' ');
    let beat = Beat {
        node: parts.next()?,
        seq: parts.next()?.parse().ok()?,
        server: parts.next()?,
        sent_ms: parts.next()?.parse().ok()?,
        ready: match parts.next()? {
            "1" => true,
            "0" => false,
            _ => return None,
        },
        listed: parts.next()?,
    };
    parts.next().is_none().then_some(beat)
}

/// An acknowledgement, sent to the writer's own subject: `<node> <seq>`, this node applied every
/// message of the writer up to `seq`.
pub(super) fn ack(node: &str, seq: u64) -> String {
    format!("{node} {seq}")
}

/// Parses [`ack`].
pub(super) fn parse_ack(text: &str) -> Option<(&str, u64)> {
    let (node, seq) = text.split_once(' ')?;
    Some((node, seq.parse().ok()?))
}

/// An invalidation: `<node> <seq> some` then one user a line, or `<node> <seq> all`. User ids
/// are printable ASCII (no newline).
pub(super) fn invalidation(node: &str, seq: u64, users: Option<&[&str]>) -> String {
    let size: usize = users.map_or(0, |u| u.iter().map(|u| u.len() + 1).sum());
    match users {
        Some(users) if size <= MAX_PAYLOAD => {
            let mut payload = String::with_capacity(size + 32);
            payload.push_str(&format!("{node} {seq} some"));
            for u in users {
                payload.push('\n');
                payload.push_str(u);
            }
            payload
        }
        _ => format!("{node} {seq} all"),
    }
}

/// A parsed invalidation: sender, sequence number, and the users (`None`: all of the app).
pub(super) type Invalidation<'a> = (&'a str, u64, Option<std::str::Split<'a, char>>);

/// Parses [`invalidation`].
pub(super) fn parse_invalidation(text: &str) -> Option<Invalidation<'_>> {
    let (head, rest) = text.split_once('\n').unwrap_or((text, ""));
    let mut parts = head.split(' ');
    let node = parts.next()?;
    let seq = parts.next()?.parse().ok()?;
    match parts.next()? {
        "all" => Some((node, seq, None)),
        "some" => Some((node, seq, Some(rest.split('\n')))),
        _ => None,
    }
}

/// The last sequence number seen from each sender.
#[derive(Default)]
pub(super) struct Sequences(HashMap<String, u64>);

impl Sequences {
    /// Notes `seq` from `node`; false if something from it was missed (a first message from a
    /// sender is never a gap: trust needs its heartbeat anyway).
    pub(super) fn follows(&mut self, node: &str, seq: u64) -> bool {
        match self.0.get_mut(node) {
            Some(last) => {
                let next = seq == *last + 1;
                *last = seq;
                next
            }
            None => {
                self.0.insert(node.to_owned(), seq);
                true
            }
        }
    }

    /// Forgets senders not in `keep`.
    pub(super) fn retain(&mut self, keep: impl Fn(&str) -> bool) {
        self.0.retain(|node, _| keep(node));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_round_trip_and_large_ones_become_whole_app() {
        let hb = heartbeat("n1", 7, "SRV", 1_234, true, &["a1", "b2"]);
        let beat = parse_heartbeat(&hb).unwrap();
        assert_eq!(
            (beat.node, beat.seq, beat.server, beat.sent_ms, beat.ready),
            ("n1", 7, "SRV", 1_234, true)
        );
        assert!(beat.lists("a1") && beat.lists("b2"));
        assert!(!beat.lists("a") && !beat.lists("n1"));
        let alone = heartbeat("n1", 8, "SRV", 1_300, false, &[]);
        assert!(!parse_heartbeat(&alone).unwrap().ready);
        assert!(!parse_heartbeat(&alone).unwrap().lists("-"));
        assert!(!parse_heartbeat(&alone).unwrap().lists(""));
        // A heartbeat of the previous version (no list) is refused: its sender waits for no one.
        assert_eq!(parse_heartbeat("n1 7 SRV 1234"), None);
        assert_eq!(parse_heartbeat("n1 7 SRV 1234 a1,b2"), None);
        assert_eq!(parse_ack(&ack("n2", 41)), Some(("n2", 41)));
        assert_eq!(parse_ack("n2"), None);
        let inv = invalidation("n1", 8, Some(&["a b", "c"]));
        let (node, seq, users) = parse_invalidation(&inv).unwrap();
        assert_eq!((node, seq), ("n1", 8));
        assert_eq!(users.unwrap().collect::<Vec<_>>(), ["a b", "c"]);
        let all = invalidation("n1", 9, None);
        assert!(parse_invalidation(&all).unwrap().2.is_none());
        let many: Vec<String> = (0..20_000).map(|i| format!("user-{i:026}")).collect();
        let many: Vec<&str> = many.iter().map(String::as_str).collect();
        let big = invalidation("n1", 10, Some(&many));
        assert!(big.len() < 64, "sent as the whole app: {}", &big[..20]);
        assert!(parse_invalidation(&big).unwrap().2.is_none());
    }

    #[test]
    fn a_skipped_number_is_a_gap() {
        let mut s = Sequences::default();
        assert!(s.follows("a", 5));
        assert!(s.follows("a", 6));
        assert!(s.follows("b", 1));
        assert!(!s.follows("a", 8), "7 was missed");
        assert!(s.follows("a", 9));
        assert!(!s.follows("a", 9), "a repeat is not in order either");
    }
}
