//! What the lease holder keeps in memory while it delivers ([`Delivery`]): per account, the
//! changes read and not yet delivered ([`Queue`], in order, with retry backoff and what was
//! skipped when full), which accounts can send now or are parked until a retry, and the
//! position that is safe to store as the cursor. No I/O here: the worker ([`super::Worker`])
//! reads the log, POSTs and stores the cursor; it hands what it read back by account
//! ([`Delivery::refilled`]) or from the log in order ([`Delivery::scanned`]) to be queued.

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::time::Duration;

use portrait_store::Change;
use tokio::task::JoinSet;
use tokio::time::Instant;

use super::sendable;

/// One account's changes read and not yet delivered, oldest first. The front one is the one
/// being sent or retried.
pub(super) struct Queue {
    pub(super) changes: VecDeque<Change>,
    /// Wait before the next retry after a failure (doubled after each failure).
    pub(super) backoff: Duration,
    /// The front change failed: it is retried at this instant.
    pub(super) retry_at: Option<Instant>,
    /// The queue was full when this change of the account was read: it and the account's later
    /// changes up to the read position were not held, and are read again by account.
    pub(super) skipped_from: Option<u64>,
    /// How many sendable changes were skipped (for the lag).
    pub(super) skipped: usize,
    /// The skipped changes are more than one read by account reaches
    /// ([`portrait_store::MAX_CHAIN_WALK`]): they are read from the log in version order
    /// instead, a page at a time ([`Delivery::scanned`]), until skipping ends.
    pub(super) scan: bool,
}

/// What an attempt task reports: the account, and the failure if it failed.
pub(super) type Attempt = (String, Result<(), String>);

/// What the lease holder keeps in memory while it delivers; dropped when the lease is lost.
pub(super) struct Delivery {
    /// The log has been read up to this version.
    pub(super) read_to: u64,
    /// The cursor last stored.
    pub(super) stored: u64,
    /// When it was stored.
    pub(super) stored_at: Instant,
    /// The log should be read (woken, polled, or the last read was full).
    pub(super) read_now: bool,
    /// When the log was last read.
    pub(super) read_at: Instant,
    /// Reading is paused by `max_pending` (logged once per pause).
    pub(super) paused: bool,
    pub(super) queues: HashMap<String, Queue>,
    /// The versions of every queued change (to find the oldest, for the cursor).
    pub(super) pending: BTreeSet<u64>,
    /// Accounts whose front change can be sent now, by that change's version (oldest first).
    pub(super) ready: BTreeMap<u64, String>,
    /// Parked accounts, by retry time (and their front version, to keep keys unique).
    pub(super) parked: BTreeMap<(Instant, u64), String>,
    /// The oldest skipped change of every account with skipped changes (for the cursor), with
    /// how many accounts hold it: two accounts can hold the same version, as the position a
    /// refill stopped at is not always a change of the account's own.
    pub(super) skipped: BTreeMap<u64, usize>,
    /// Sendable changes skipped, all accounts together (for the lag).
    pub(super) skipped_count: usize,
    /// Accounts with skipped changes and room to read them again.
    pub(super) refill: BTreeSet<String>,
    /// A refill read part of the log and has more to read with room for it: the worker turns
    /// again without waiting for a wake-up (each turn reads one page per account).
    pub(super) refill_now: bool,
    /// The POSTs in flight (one per account at most).
    pub(super) attempts: JoinSet<Attempt>,
}

impl Delivery {
    pub(super) fn new(cursor: u64) -> Self {
        Delivery {
            read_to: cursor,
            stored: cursor,
            stored_at: Instant::now(),
            read_now: true,
            read_at: Instant::now(),
            paused: false,
            queues: HashMap::new(),
            pending: BTreeSet::new(),
            ready: BTreeMap::new(),
            parked: BTreeMap::new(),
            skipped: BTreeMap::new(),
            skipped_count: 0,
            refill: BTreeSet::new(),
            refill_now: false,
            attempts: JoinSet::new(),
        }
    }

    /// The position that may be stored: just below the oldest change not yet delivered (held or
    /// skipped).
    pub(super) fn cursor(&self) -> u64 {
        let held = self.pending.first().copied().unwrap_or(u64::MAX);
        let skipped = self.skipped.keys().next().copied().unwrap_or(u64::MAX);
        match held.min(skipped) {
            u64::MAX => self.read_to,
            oldest => oldest - 1,
        }
    }

    /// Changes written and not delivered yet: those waiting here, plus those after the read
    /// position up to `head` (not read yet; deletes and imports without fields included).
    pub(super) fn lag(&self, head: u64) -> usize {
        let unread = usize::try_from(head.saturating_sub(self.read_to)).unwrap_or(usize::MAX);
        self.pending
            .len()
            .saturating_add(self.skipped_count)
            .saturating_add(unread)
    }

    /// Queues a change read from the log, or skips it if its account already holds `cap`
    /// changes (or skipped some, which must be sent first).
    pub(super) fn push(&mut self, c: Change, initial_backoff: Duration, cap: usize) {
        match self.queues.get_mut(&c.user) {
            Some(q) if q.skipped_from.is_some() || q.changes.len() >= cap => {
                if q.skipped_from.is_none() {
                    q.skipped_from = Some(c.version);
                    *self.skipped.entry(c.version).or_default() += 1;
                }
                q.skipped += 1;
                self.skipped_count += 1;
            }
            Some(q) => {
                self.pending.insert(c.version);
                q.changes.push_back(c);
            }
            None => {
                self.pending.insert(c.version);
                self.ready.insert(c.version, c.user.clone());
                self.queues.insert(
                    c.user.clone(),
                    Queue {
                        changes: VecDeque::from([c]),
                        backoff: initial_backoff,
                        retry_at: None,
                        skipped_from: None,
                        skipped: 0,
                        scan: false,
                    },
                );
            }
        }
    }

    /// Moves the parked accounts whose retry time has come back to `ready`.
    pub(super) fn unpark(&mut self, now: Instant) {
        while let Some(entry) = self.parked.first_entry() {
            if entry.key().0 > now {
                break;
            }
            let ((_, version), user) = entry.remove_entry();
            if let Some(q) = self.queues.get_mut(&user) {
                q.retry_at = None;
            }
            self.ready.insert(version, user);
        }
    }

    /// Removes `user`'s front change (delivered or given up on); the account's next change, if
    /// any, becomes ready. An account with skipped changes is read again once half its queue
    /// (of at most `cap`) has drained.
    pub(super) fn pop(&mut self, user: String, cap: usize) {
        let Some(q) = self.queues.get_mut(&user) else {
            return;
        };
        if let Some(c) = q.changes.pop_front() {
            self.pending.remove(&c.version);
        }
        if q.skipped_from.is_some() && q.changes.len() <= cap / 2 {
            self.refill.insert(user.clone());
        }
        match q.changes.front() {
            Some(next) => {
                self.ready.insert(next.version, user);
            }
            None if q.skipped_from.is_some() => {} // the refill makes it ready again
            None => {
                self.queues.remove(&user);
            }
        }
    }

    /// What a refill of `user` may read now: its oldest skipped change and how many changes to
    /// take, the room in its own queue (`max_pending`) within the room left under `total` for
    /// all accounts together. `None`: nothing to read that the account will not ask for again
    /// (it is not skipping, or its own queue is full: it asks once that has drained to half).
    /// A room of 0: all accounts together hold `total`; the account waits in
    /// [`Delivery::refill`] until deliveries make room.
    pub(super) fn refill_room(
        &self,
        user: &str,
        max_pending: usize,
        total: usize,
    ) -> Option<(u64, usize)> {
        let q = self.queues.get(user)?;
        let from = q.skipped_from?;
        let own = max_pending.saturating_sub(q.changes.len());
        (own > 0).then(|| (from, own.min(total.saturating_sub(self.pending.len()))))
    }

    /// `user`'s skipped changes are more than one read by account reaches: from now on until
    /// skipping ends, they are read from the log in order ([`Delivery::scanned`]).
    pub(super) fn scan(&mut self, user: &str) {
        if let Some(q) = self.queues.get_mut(user) {
            q.scan = true;
        }
    }

    /// Takes `batch` (the account's changes after its oldest skipped one minus one, in order, as
    /// [`portrait_store::Store::changes_of`] answers them, complete, asked for `asked`) back into
    /// `user`'s queue: those up to the read position (later ones come by the log). Skipping ends
    /// once the batch reaches the read position or is short.
    pub(super) fn refilled(&mut self, user: &str, batch: Vec<Change>, asked: usize) {
        let read_to = self.read_to;
        let Some(q) = self.queues.get_mut(user) else {
            return;
        };
        let Some(from) = q.skipped_from else {
            return;
        };
        let mut done = batch.len() < asked;
        let mut last = from - 1;
        let was_empty = q.changes.is_empty();
        for c in batch {
            if c.version > read_to {
                done = true;
                break;
            }
            last = c.version;
            if sendable(&c) {
                q.skipped = q.skipped.saturating_sub(1);
                self.skipped_count = self.skipped_count.saturating_sub(1);
                self.pending.insert(c.version);
                q.changes.push_back(c);
            }
        }
        let next = (!done && last < read_to).then_some(last + 1);
        self.skipped_moved(user, from, next, was_empty);
    }

    /// Takes `user`'s changes from `page` (the app's log after the account's oldest skipped change
    /// minus one, in version order, as [`portrait_store::Store::changes_since`] answers it, asked
    /// for `asked`) into its queue: those up to the read position, at most `room`. Its skipped
    /// changes then start after the last change looked at. Skipping ends once the page reaches
    /// the read position or the log's end; with room left and more to read, the account is read
    /// again at once ([`Delivery::refill_now`]).
    pub(super) fn scanned(&mut self, user: &str, page: Vec<Change>, asked: usize, room: usize) {
        let read_to = self.read_to;
        let Some(q) = self.queues.get_mut(user) else {
            return;
        };
        let Some(from) = q.skipped_from else {
            return;
        };
        let was_empty = q.changes.is_empty();
        // Nothing after a short page: every change up to the read position (visible, as
        // versions become visible in order) was in it.
        let mut done = page.len() < asked;
        let mut full = false;
        let mut taken = 0;
        let mut next = from; // the oldest change not looked at
        for c in page {
            if c.version > read_to {
                done = true;
                break;
            }
            if c.user == user && sendable(&c) {
                if taken == room {
                    // The rest waits for room, whatever the page's length.
                    (full, done) = (true, false);
                    break;
                }
                taken += 1;
                q.skipped = q.skipped.saturating_sub(1);
                self.skipped_count = self.skipped_count.saturating_sub(1);
                self.pending.insert(c.version);
                next = c.version + 1;
                q.changes.push_back(c);
            } else {
                next = c.version + 1;
            }
        }
        let next = (!done && next <= read_to).then_some(next);
        if next.is_some() && !full {
            self.refill_now = true;
            self.refill.insert(user.to_owned());
        }
        self.skipped_moved(user, from, next, was_empty);
    }

    /// `user`'s skipped changes, which started at `from`, start at `next` now (`None`: skipping
    /// has ended, the rest come by the log); its queue was empty before (`was_empty`).
    fn skipped_moved(&mut self, user: &str, from: u64, next: Option<u64>, was_empty: bool) {
        let Some(q) = self.queues.get_mut(user) else {
            return;
        };
        if let Some(held) = self.skipped.get_mut(&from) {
            *held -= 1;
            if *held == 0 {
                self.skipped.remove(&from);
            }
        }
        match next {
            Some(next) => {
                q.skipped_from = Some(next);
                *self.skipped.entry(next).or_default() += 1;
            }
            None => {
                self.skipped_count = self.skipped_count.saturating_sub(q.skipped);
                q.skipped = 0;
                q.skipped_from = None;
                q.scan = false;
            }
        }
        match q.changes.front() {
            Some(front) if was_empty && q.retry_at.is_none() => {
                self.ready.insert(front.version, user.to_owned());
            }
            Some(_) => {}
            None if q.skipped_from.is_none() => {
                self.queues.remove(user);
            }
            None => {
                // Nothing to send yet, and the skipped changes moved on: read on at once.
                self.refill_now = true;
                self.refill.insert(user.to_owned());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use portrait_store::ChangeKind;

    use super::*;

    const BACKOFF: Duration = Duration::from_millis(10);

    fn set(version: u64, user: &str) -> Change {
        Change {
            version,
            user: user.to_owned(),
            operator: "admin".to_owned(),
            client_ip: String::new(),
            kind: ChangeKind::Set,
            items: Vec::new(),
            at_ms: 0,
        }
    }

    /// Reads `changes` as the worker reads the log, with `cap` changes per account.
    fn read(d: &mut Delivery, changes: &[(u64, &str)], cap: usize) {
        for &(v, user) in changes {
            d.read_to = v;
            d.push(set(v, user), BACKOFF, cap);
        }
    }

    fn queued(d: &Delivery, user: &str) -> Vec<u64> {
        d.queues
            .get(user)
            .map(|q| q.changes.iter().map(|c| c.version).collect())
            .unwrap_or_default()
    }

    #[test]
    fn the_cursor_stays_below_a_skipped_change_two_accounts_point_at() {
        let mut d = Delivery::new(0);
        // One change per account: b1 and a2 are held; a3, b4 and a5 are skipped.
        read(
            &mut d,
            &[(1, "b"), (2, "a"), (3, "a"), (4, "b"), (5, "a")],
            1,
        );
        assert_eq!(d.cursor(), 0);
        d.pop("b".into(), 1);
        d.pop("a".into(), 1);
        // a's refill stops after a3: its skipped changes start at 4, where b's start too.
        d.refilled("a", vec![set(3, "a")], 1);
        assert_eq!(d.queues["a"].skipped_from, Some(4));
        d.pop("a".into(), 1);
        // a's next refill reaches the read position: a's skipping ends, b's does not.
        d.refilled("a", vec![set(5, "a")], 1);
        assert_eq!(d.queues["a"].skipped_from, None);
        assert_eq!(d.queues["b"].skipped_from, Some(4));
        assert_eq!(d.cursor(), 3, "b4 is not delivered yet");
    }

    #[test]
    fn a_refill_takes_no_more_than_the_room_left_for_all_accounts_together() {
        let mut d = Delivery::new(0);
        // Two per account: a holds a1, a2 and skips a3, a4; b holds b5, b6.
        read(
            &mut d,
            &[(1, "a"), (2, "a"), (3, "a"), (4, "a"), (5, "b"), (6, "b")],
            2,
        );
        assert_eq!(d.refill_room("b", 2, 10), None, "b skipped nothing");
        assert_eq!(d.refill_room("a", 2, 10), None, "a's own queue is full");
        d.pop("a".into(), 2);
        assert!(d.refill.contains("a"), "a drained to half");
        // a has room for 1; all accounts together hold 3.
        assert_eq!(d.refill_room("a", 2, 10), Some((3, 1)));
        assert_eq!(d.refill_room("a", 2, 4), Some((3, 1)));
        assert_eq!(
            d.refill_room("a", 2, 3),
            Some((3, 0)),
            "the total is reached"
        );
        d.pop("b".into(), 2);
        assert_eq!(
            d.refill_room("a", 2, 3),
            Some((3, 1)),
            "a delivery made room"
        );
    }

    #[test]
    fn a_scan_of_the_log_takes_the_account_s_changes_in_order_within_its_room() {
        let mut d = Delivery::new(0);
        let log: Vec<(u64, &str)> = (1..=12)
            .map(|v| (v, if v % 3 == 0 { "b" } else { "a" }))
            .collect();
        // a holds two (1, 2); from a4 on its changes are skipped.
        read(&mut d, &log, 2);
        assert_eq!(queued(&d, "a"), [1, 2]);
        assert_eq!(d.queues["a"].skipped_from, Some(4));
        d.pop("a".into(), 2);
        d.pop("a".into(), 2);
        let page = |from: u64, n: usize| -> Vec<Change> {
            log.iter()
                .filter(|(v, _)| *v > from)
                .take(n)
                .map(|&(v, u)| set(v, u))
                .collect()
        };
        // A page of 4 after 3 (4..7), room for 2: a4 and a5 are taken, b6 looked at, a7 not.
        d.scanned("a", page(3, 4), 4, 2);
        assert_eq!(queued(&d, "a"), [4, 5]);
        assert_eq!(d.queues["a"].skipped_from, Some(7));
        assert!(!d.refill_now, "no room: read on once the queue drains");
        assert_eq!(d.cursor(), 2, "b3 is held");
        d.pop("b".into(), 2);
        d.pop("b".into(), 2);
        assert_eq!(d.cursor(), 3, "a4 is held");
        d.pop("a".into(), 2);
        d.pop("a".into(), 2);
        assert_eq!(d.cursor(), 6, "a7 is skipped");
        // Room for 5 this time: a7, a8, a10, a11 from the page 7..11, which is full.
        d.scanned("a", page(6, 5), 5, 5);
        assert_eq!(queued(&d, "a"), [7, 8, 10, 11]);
        assert_eq!(d.queues["a"].skipped_from, Some(12));
        assert!(d.refill_now, "room left and more to read");
        assert!(d.refill.contains("a"));
        // The rest is a short page: skipping ends.
        d.scanned("a", page(11, 5), 5, 1);
        assert_eq!(queued(&d, "a"), [7, 8, 10, 11]);
        assert_eq!(d.queues["a"].skipped_from, None);
        assert_eq!(d.queues["a"].skipped, 0);
        assert_eq!(d.skipped_count, 2, "b9 and b12 only");
    }
}
