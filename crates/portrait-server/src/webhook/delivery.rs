//! What the lease holder keeps in memory while it delivers ([`Delivery`]): per account, the
//! changes read and not yet delivered ([`Queue`], in order, with retry backoff and what was
//! skipped when full), which accounts can send now or are parked until a retry, and the
//! position that is safe to store as the cursor. No I/O here: the worker ([`super::Worker`])
//! reads the log, POSTs and stores the cursor.

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
    /// The oldest skipped change of every account with skipped changes (for the cursor).
    pub(super) skipped: BTreeSet<u64>,
    /// Sendable changes skipped, all accounts together (for the lag).
    pub(super) skipped_count: usize,
    /// Accounts with skipped changes and room to read them again.
    pub(super) refill: BTreeSet<String>,
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
            skipped: BTreeSet::new(),
            skipped_count: 0,
            refill: BTreeSet::new(),
            attempts: JoinSet::new(),
        }
    }

    /// The position that may be stored: just below the oldest change not yet delivered (held or
    /// skipped).
    pub(super) fn cursor(&self) -> u64 {
        let held = self.pending.first().copied().unwrap_or(u64::MAX);
        let skipped = self.skipped.first().copied().unwrap_or(u64::MAX);
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
                    self.skipped.insert(c.version);
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

    /// Takes `batch` (the account's changes after its oldest skipped one minus one, in order, as
    /// [`Store::changes_of`] answers them, asked for `asked`) back into `user`'s queue: those up
    /// to the read position (later ones come by the log). Skipping ends once the batch reaches
    /// the read position or is short.
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
        self.skipped.remove(&from);
        if done || last >= read_to {
            self.skipped_count = self.skipped_count.saturating_sub(q.skipped);
            q.skipped = 0;
            q.skipped_from = None;
        } else {
            q.skipped_from = Some(last + 1);
            self.skipped.insert(last + 1);
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
                self.refill.insert(user.to_owned());
            }
        }
    }
}
