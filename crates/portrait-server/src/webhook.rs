//! Delivery of the vendor webhook `Profile.CallbackPortraitSet` (spec §5.4) from the change log.
//!
//! One worker per app with `[apps.webhook]`. It reads the app's change log ahead of delivery into
//! one in-memory queue per account and POSTs the front of each queue: up to `concurrency`
//! accounts at once, one change at a time per account, so **per-account order holds** (a later
//! change of an account is never sent before an earlier one of it). A failed POST **parks** only
//! its account: the account's front change is retried with its own exponential backoff, and its
//! later changes wait behind it, while every other account keeps being delivered. A change still
//! failing `give_up_after_ms` after it was made is dropped (logged and counted) and its account
//! moves on.
//!
//! **At least once.** The store keeps a cursor (`cursor(app, "webhook")`) that only ever sits just
//! below the oldest change read but not yet delivered (or given up on), or at the read position
//! when nothing waits. A crash or `kill -9` therefore re-delivers what came after that point —
//! including changes of other accounts already delivered past a parked one — and loses nothing.
//! Writes never wait for delivery: the worker only reads the log after the write has committed.
//! The first start of a webhook begins at the app's current version (history is not replayed).
//!
//! **Bounded, per account.** At most `max_pending` changes of one account are held in memory
//! (queued, in flight or waiting to be retried). Further changes of a full account are read past
//! and not held: the account remembers the oldest it skipped (the stored cursor stays below it),
//! and once its queue has drained to half, its skipped changes are read again, by account
//! ([`Store::changes_of`]), in order; nothing is lost and other accounts never wait for a full
//! one. An account that skipped more changes than that read reaches
//! ([`portrait_store::MAX_CHAIN_WALK`], its answer then says it is not complete) has them read
//! from the log in version order instead, one page per turn, filtered to it, until it is back
//! at the read position. In all, at most [`TOTAL_PENDING_FACTOR`] × `max_pending` changes are
//! held; past that the worker reads neither the log nor skipped changes until some are
//! delivered or given up on, and then skipped changes first (they are the older ones).
//!
//! **Several nodes**: only the holder of the app's `webhook` lease in the store delivers, so each
//! change is sent once in normal operation; when a holder dies, another node takes over after
//! the lease (`[apps.webhook] lease_ms`, default [`LEASE_MS`]) from the stored cursor (what was delivered after it is sent again — still at least
//! once). A worker that loses the lease drops everything it held in memory.
//!
//! Deletes and imports that wrote no profile field are not sent (the vendor calls back profile
//! changes with the items written); see [`sendable`].
//!
//! Layout: this file is the worker (lease, reading the log, POSTing, storing the cursor);
//! `webhook/delivery.rs` is the in-memory state it keeps while it holds the lease (per-account
//! queues, retry parking, the safe cursor), with no I/O; `webhook/status.rs` is what the worker
//! shows of itself to the operator API (lease held, cursor, the latest failed attempts).

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use portrait_core::operator::WebhookFailure;
use portrait_store::{AppId, Change, ChangeKind, Store};
use serde::Serialize;
use tokio::sync::watch;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

mod delivery;
pub mod status;

use delivery::Delivery;
use status::Status;

use crate::settings::WebhookConfig;
use crate::tenant::Tenant;

/// The store cursor holding the delivered position.
pub const CURSOR: &str = "webhook";
/// How long a node's delivery lease lasts without renewal (nodes sharing a database), unless
/// `[apps.webhook] lease_ms` says otherwise.
pub const LEASE_MS: u64 = 10_000;
/// The callback command.
pub const COMMAND: &str = "Profile.CallbackPortraitSet";
/// Most changes read from the log at once.
const READ_BATCH: usize = 1_000;
/// The log is read at least this often when the app's feed has seen changes beyond the read
/// position (also when no wake-up came), and the stored cursor is written at most this often
/// while changes wait.
const POLL: Duration = Duration::from_secs(1);
/// Least time between two cursor writes while changes wait (none when nothing waits).
const CURSOR_EVERY: Duration = Duration::from_millis(200);
/// The changes held in memory for all accounts together: at most this many times `max_pending`
/// (the cap per account).
pub const TOTAL_PENDING_FACTOR: usize = 10;

/// The callback body (spec §5.4).
#[derive(Serialize)]
struct Body<'a> {
    #[serde(rename = "CallbackCommand")]
    callback_command: &'static str,
    #[serde(rename = "Operator_Account")]
    operator_account: &'a str,
    #[serde(rename = "From_Account")]
    from_account: &'a str,
    #[serde(rename = "EventTime")]
    event_time: i64,
    #[serde(rename = "ProfileItem")]
    profile_item: Vec<portrait_core::wire::ProfileItem>,
}

/// One app's webhook delivery.
pub struct Worker {
    app: AppId,
    cfg: WebhookConfig,
    store: Arc<dyn Store>,
    http: reqwest::Client,
    admins: HashSet<String>,
    /// This worker's name in the delivery lease.
    holder: String,
    /// What it shows of itself to the operator API.
    status: Arc<Status>,
}

impl Worker {
    /// A worker for `app`, showing itself in `status` (the app's, from
    /// [`crate::push::Hub::webhooks`]).
    ///
    /// # Errors
    /// The HTTP client cannot be built.
    pub fn new(
        app: AppId,
        cfg: WebhookConfig,
        store: Arc<dyn Store>,
        tenant: &Tenant,
        status: Arc<Status>,
    ) -> anyhow::Result<Worker> {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_millis(cfg.timeout_ms))
            .build()?;
        Ok(Worker {
            app,
            cfg,
            store,
            http,
            admins: tenant.admins.clone(),
            holder: crate::lease::holder(),
            status,
        })
    }

    /// Gives up the delivery lease on a graceful stop, so that another node (or this app's next
    /// worker, with new settings) delivers at once instead of after the lease expires. Best
    /// effort: if it fails, the lease simply runs out.
    async fn release(&self, holder: &str) {
        if let Err(e) = self.store.lease(self.app, CURSOR, holder, 0).await {
            tracing::debug!(app = self.app, error = %e, "webhook: cannot release the delivery lease");
        }
    }

    /// Delivers until `stop`; woken by `dispatched` (the app's push feed, whose value is the
    /// app's version as this node last saw it) and by a 1 s poll while the feed is ahead of it.
    /// Nodes sharing a database deliver one at a time: a worker works only while it holds the
    /// app's `webhook` lease (renewed every third of `lease_ms`), and starts from the stored
    /// cursor whenever it (re)takes the lease.
    pub async fn run(self, mut dispatched: watch::Receiver<u64>, stop: CancellationToken) {
        let holder = self.holder.clone();
        let mut state: Option<Delivery> = None;
        let mut renewed = std::time::Instant::now();
        let mut feed_open = true;
        let lease_ms = self.cfg.lease_ms;
        loop {
            if state.is_none() || renewed.elapsed() > Duration::from_millis(lease_ms / 3) {
                match self.store.lease(self.app, CURSOR, &holder, lease_ms).await {
                    Ok(true) => {
                        renewed = std::time::Instant::now();
                        if state.is_none() {
                            let Some(c) = self.start_cursor(&stop).await else {
                                return;
                            };
                            tracing::info!(app = self.app, url = %self.cfg.url, cursor = c, "webhook delivery: this node delivers");
                            self.status.set_cursor(c);
                            self.status.set_delivering(true);
                            state = Some(Delivery::new(c));
                        }
                    }
                    Ok(false) => {
                        if state.take().is_some() {
                            tracing::info!(
                                app = self.app,
                                "webhook delivery: another node took over"
                            );
                            self.status.set_delivering(false);
                            self.set_lag(0);
                        }
                    }
                    Err(e) => {
                        tracing::warn!(app = self.app, error = %e, "webhook: cannot take the delivery lease");
                        if state.take().is_some() {
                            self.status.set_delivering(false);
                            self.set_lag(0);
                        }
                    }
                }
            }
            let Some(d) = state.as_mut() else {
                tokio::select! {
                    () = tokio::time::sleep(Duration::from_millis(lease_ms / 3)) => continue,
                    () = stop.cancelled() => {
                        self.status.set_delivering(false);
                        return;
                    }
                }
            };

            // The poll reads only what the feed has seen beyond the read position (the feed's
            // own head poll finds every change), or everything when the feed is gone.
            let behind = !feed_open || *dispatched.borrow() > d.read_to;
            if d.read_at.elapsed() >= POLL && behind {
                d.read_now = true;
            }
            // Skipped changes first: they are older than what the log has after the read
            // position, and both share the total bound.
            if !d.refill.is_empty() {
                self.refill(d).await;
            }
            if d.read_now {
                self.read(d).await;
            }
            d.unpark(Instant::now());
            self.dispatch(d);
            self.set_lag(d.lag((*dispatched.borrow()).max(d.read_to)));
            // Every turn: a worker that replaced this app's previous one (new settings) may have
            // been told by it, as it stopped, that nobody delivers.
            self.status.set_cursor(d.cursor());
            self.status.set_delivering(true);
            if d.cursor() > d.stored
                && (d.pending.is_empty() || d.stored_at.elapsed() >= CURSOR_EVERY)
            {
                self.store_cursor(d).await;
            }

            let read_more = d.read_now && d.pending.len() < self.total_pending();
            let retry_at = d.parked.first_key_value().map(|((at, _), _)| *at);
            tokio::select! {
                biased;
                () = stop.cancelled() => {
                    // Best effort: fewer repeats after a restart (the cursor is correct either way).
                    if d.cursor() > d.stored {
                        self.store_cursor(d).await;
                    }
                    self.release(&holder).await;
                    self.status.set_delivering(false);
                    return;
                }
                done = d.attempts.join_next(), if !d.attempts.is_empty() => match done {
                    Some(Ok((user, result))) => self.finish(d, user, result),
                    Some(Err(e)) => {
                        // An attempt task panicked: its account is unknown, so start over from
                        // the stored cursor (at least once).
                        tracing::error!(app = self.app, error = %e, "webhook: a delivery task failed; restarting from the stored cursor");
                        self.status.set_delivering(false);
                        state = None;
                    }
                    None => {}
                },
                () = std::future::ready(()), if read_more => {}
                () = std::future::ready(()), if d.refill_now => {}
                () = sleep_until_opt(retry_at) => {}
                changed = dispatched.changed(), if feed_open => {
                    if changed.is_ok() {
                        d.read_now = true;
                    } else {
                        feed_open = false;
                    }
                }
                () = tokio::time::sleep(POLL) => {
                    d.read_now |= !feed_open || *dispatched.borrow() > d.read_to;
                }
            }
        }
    }

    /// The most changes held in memory, all accounts together.
    fn total_pending(&self) -> usize {
        self.cfg.max_pending.saturating_mul(TOTAL_PENDING_FACTOR)
    }

    /// Reads the skipped changes of the accounts in `d.refill` back into their queues: by
    /// account ([`Store::changes_of`]), or, for an account whose skipped changes are more than
    /// that read reaches (its answer is not complete), one page of the log in version order
    /// ([`Store::changes_since`], [`READ_BATCH`]) per turn, filtered to the account, until it has
    /// caught up with the read position. Either way, at most one bounded read per account and
    /// turn, within the room its own queue and the total bound leave (at the total bound it
    /// waits), and no skipped change is passed over. A failed read is retried at the next turn.
    async fn refill(&self, d: &mut Delivery) {
        d.refill_now = false;
        for user in std::mem::take(&mut d.refill) {
            let (from, room) =
                match d.refill_room(&user, self.cfg.max_pending, self.total_pending()) {
                    None => continue,
                    Some((_, 0)) => {
                        // At the total bound: read at a turn after deliveries made room.
                        d.refill.insert(user);
                        continue;
                    }
                    Some(read) => read,
                };
            let Ok(id) = portrait_core::Identifier::parse(&user) else {
                continue;
            };
            if !d.queues.get(&user).is_some_and(|q| q.scan) {
                match self
                    .store
                    .changes_of(self.app, std::slice::from_ref(&id), from - 1, room)
                    .await
                {
                    Ok(answer) if answer.is_complete(from - 1) => {
                        d.refilled(&user, answer.changes, room);
                        continue;
                    }
                    Ok(answer) => {
                        tracing::info!(app = self.app, account = %user, from, complete_after = answer.complete_after, "webhook: an account skipped more changes than one read by account reaches; reading them from the log in order");
                        d.scan(&user);
                    }
                    Err(e) => {
                        tracing::warn!(app = self.app, error = %e, "webhook: cannot read an account's skipped changes; retrying");
                        d.refill.insert(user);
                        continue;
                    }
                }
            }
            match self
                .store
                .changes_since(self.app, from - 1, READ_BATCH)
                .await
            {
                Ok(page) => d.scanned(&user, page, READ_BATCH, room),
                Err(e) => {
                    tracing::warn!(app = self.app, error = %e, "webhook: cannot read the change log for an account's skipped changes; retrying");
                    d.refill.insert(user);
                }
            }
        }
    }

    /// Reads the log after the read position into the queues, as far as the total bound allows.
    async fn read(&self, d: &mut Delivery) {
        let room = self.total_pending().saturating_sub(d.pending.len());
        if room == 0 {
            if !d.paused {
                d.paused = true;
                tracing::warn!(
                    app = self.app,
                    max_pending = self.total_pending(),
                    "webhook: this many changes wait for delivery; reading the change log paused until some are delivered"
                );
            }
            return; // `read_now` stays set: read as soon as there is room
        }
        if d.paused {
            d.paused = false;
            tracing::info!(app = self.app, "webhook: reading the change log again");
        }
        let limit = room.min(READ_BATCH);
        d.read_at = Instant::now();
        match self.store.changes_since(self.app, d.read_to, limit).await {
            Ok(batch) => {
                d.read_now = batch.len() == limit; // a full batch: more may follow
                let initial = Duration::from_millis(self.cfg.initial_backoff_ms);
                for c in batch {
                    d.read_to = d.read_to.max(c.version);
                    if sendable(&c) {
                        d.push(c, initial, self.cfg.max_pending);
                    }
                }
            }
            Err(e) => {
                d.read_now = false; // retried at the next wake-up or poll
                tracing::warn!(app = self.app, error = %e, "webhook: cannot read the change log");
            }
        }
    }

    /// Starts a POST for each ready account, oldest front change first, up to `concurrency`.
    fn dispatch(&self, d: &mut Delivery) {
        while d.attempts.len() < self.cfg.concurrency {
            let Some((_, user)) = d.ready.pop_first() else {
                return;
            };
            let Some(c) = d.queues.get(&user).and_then(|q| q.changes.front()) else {
                continue;
            };
            let request = self.request(c);
            d.attempts.spawn(async move {
                let result = match request.send().await {
                    Ok(resp) if resp.status().is_success() => Ok(()),
                    Ok(resp) => Err(format!("HTTP {}", resp.status())),
                    Err(e) => Err(e.to_string()),
                };
                (user, result)
            });
        }
    }

    /// Records how `user`'s front change's attempt ended: delivered, given up on, or parked
    /// until its retry time.
    fn finish(&self, d: &mut Delivery, user: String, result: Result<(), String>) {
        let app = self.app.to_string();
        let Some(q) = d.queues.get_mut(&user) else {
            return;
        };
        let Some(c) = q.changes.front() else {
            return;
        };
        let failure = match result {
            Ok(()) => {
                metrics::counter!("portrait_webhook_deliveries_total", "app" => app, "outcome" => "ok")
                    .increment(1);
                q.backoff = Duration::from_millis(self.cfg.initial_backoff_ms);
                d.pop(user, self.cfg.max_pending);
                return;
            }
            Err(failure) => failure,
        };
        metrics::counter!("portrait_webhook_deliveries_total", "app" => app.clone(), "outcome" => "failed_attempt")
            .increment(1);
        let now = portrait_store::now_ms();
        let age_ms = now.saturating_sub(c.at_ms);
        let give_up = age_ms > i64::try_from(self.cfg.give_up_after_ms).unwrap_or(i64::MAX);
        self.status.failed(WebhookFailure {
            at_ms: u64::try_from(now).unwrap_or(0),
            user_id: user.clone(),
            version: c.version,
            error: if give_up {
                format!("{failure} (given up)")
            } else {
                failure.clone()
            },
        });
        if give_up {
            tracing::error!(app = self.app, version = c.version, url = %self.cfg.url, error = %failure, "webhook: giving up on a change");
            metrics::counter!("portrait_webhook_deliveries_total", "app" => app, "outcome" => "dropped")
                .increment(1);
            d.pop(user, self.cfg.max_pending);
            return;
        }
        let backoff = q.backoff;
        tracing::warn!(app = self.app, version = c.version, account = %user, url = %self.cfg.url, error = %failure, retry_in = ?backoff, "webhook: delivery failed; the account's changes wait, others go on");
        let at = Instant::now() + backoff;
        q.retry_at = Some(at);
        q.backoff = (backoff * 2).min(Duration::from_millis(self.cfg.max_backoff_ms));
        d.parked.insert((at, c.version), user);
    }

    async fn store_cursor(&self, d: &mut Delivery) {
        let cursor = d.cursor();
        match self.store.set_cursor(self.app, CURSOR, cursor).await {
            Ok(()) => {
                d.stored = cursor;
                d.stored_at = Instant::now();
            }
            Err(e) => {
                tracing::warn!(app = self.app, error = %e, "webhook: cannot store the cursor (changes may be delivered again)");
            }
        }
    }

    fn set_lag(&self, lag: usize) {
        metrics::gauge!("portrait_webhook_lag", "app" => self.app.to_string()).set(lag as f64);
    }

    async fn start_cursor(&self, stop: &CancellationToken) -> Option<u64> {
        loop {
            let got = match self.store.cursor(self.app, CURSOR).await {
                Ok(Some(c)) => Ok(c),
                Ok(None) => match self.store.current_version(self.app).await {
                    Ok(head) => self
                        .store
                        .set_cursor(self.app, CURSOR, head)
                        .await
                        .map(|()| head),
                    Err(e) => Err(e),
                },
                Err(e) => Err(e),
            };
            match got {
                Ok(c) => return Some(c),
                Err(e) => {
                    tracing::warn!(app = self.app, error = %e, "webhook: cannot read the cursor; retrying");
                    tokio::select! {
                        () = tokio::time::sleep(Duration::from_secs(1)) => {}
                        () = stop.cancelled() => return None,
                    }
                }
            }
        }
    }

    /// The POST of one change (query and body per spec §5.4).
    fn request(&self, c: &Change) -> reqwest::RequestBuilder {
        let body = Body {
            callback_command: COMMAND,
            operator_account: &c.operator,
            from_account: &c.user,
            event_time: c.at_ms,
            profile_item: c
                .items
                .iter()
                .map(|(tag, value)| portrait_core::wire::ProfileItem {
                    tag: tag.clone(),
                    value: value.to_json(),
                })
                .collect(),
        };
        let platform = if self.admins.contains(&c.operator) || c.operator == "portrait" {
            "RESTAPI"
        } else {
            "Web"
        };
        let app = self.app.to_string();
        let query = [
            ("SdkAppid", app.as_str()),
            ("CallbackCommand", COMMAND),
            ("contenttype", "json"),
            ("ClientIP", c.client_ip.as_str()),
            ("OptPlatform", platform),
        ];
        self.http.post(&self.cfg.url).query(&query).json(&body)
    }
}

/// Sleeps until `at`, or forever without one.
async fn sleep_until_opt(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// Whether a change is a profile change the vendor would call back for: every change that wrote
/// profile items — `portrait_set`, a client update, and any import that wrote fields
/// (`account_import` / `multiaccount_import` with Nick/FaceUrl, `portrait_import` with any
/// field), with the items written. Deletes and imports of bare accounts wrote none.
fn sendable(c: &Change) -> bool {
    match c.kind {
        ChangeKind::Set => true,
        ChangeKind::Import => !c.items.is_empty(),
        ChangeKind::Delete => false,
    }
}
