//! Delivery of the vendor webhook `Profile.CallbackPortraitSet` (spec §5.4) from the change log.
//!
//! One worker per app with `[apps.webhook]`. It keeps a cursor in the store (`cursor(app,
//! "webhook")`): every change up to it has been delivered (or given up on). It reads the changes
//! after the cursor in batches of `concurrency`, POSTs them (concurrently across accounts, in
//! version order within one account), each retried with
//! exponential backoff until it succeeds or is older than `give_up_after_ms`, and only then
//! moves the cursor past the batch. So delivery is **at least once** (a crash between a POST and
//! the cursor write repeats that batch), a restart loses nothing, and writes never wait for it:
//! the worker only reads the log after the write has committed. The first start of a webhook
//! begins at the app's current version (history is not replayed).
//!
//! **Several nodes**: only the holder of the app's `webhook` lease in the store delivers, so each
//! change is sent once in normal operation; when a holder dies, another node takes over after
//! [`LEASE_MS`] from the stored cursor (a batch in flight at the crash may be sent twice — still
//! at least once).
//!
//! Deletes (no profile items) and imports that wrote no Nick/FaceUrl are not sent.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use futures_util::future::join_all;
use portrait_store::{AppId, Change, ChangeKind, Store};
use serde::Serialize;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use crate::settings::WebhookConfig;
use crate::tenant::Tenant;

/// The store cursor holding the delivered position.
pub const CURSOR: &str = "webhook";
/// How long a node's delivery lease lasts without renewal (nodes sharing a database).
pub const LEASE_MS: u64 = 10_000;
/// The callback command.
pub const COMMAND: &str = "Profile.CallbackPortraitSet";

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

/// How one change's delivery ended.
enum Outcome {
    Delivered,
    GaveUp,
    Stopped,
    /// Another node took the delivery lease while this one was retrying.
    LostLease,
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
}

impl Worker {
    /// A worker for `app`.
    ///
    /// # Errors
    /// The HTTP client cannot be built.
    pub fn new(
        app: AppId,
        cfg: WebhookConfig,
        store: Arc<dyn Store>,
        tenant: &Tenant,
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
            holder: crate::lease_holder(),
        })
    }

    /// Delivers until `stop`; woken by `dispatched` (the app's push feed) and by a 1 s poll.
    /// Nodes sharing a database deliver one at a time: a worker works only while it holds the
    /// app's `webhook` lease (renewed every [`LEASE_MS`]` / 3`), and re-reads the cursor whenever
    /// it (re)takes the lease.
    pub async fn run(self, mut dispatched: watch::Receiver<u64>, stop: CancellationToken) {
        let holder = self.holder.clone();
        let mut cursor: Option<u64> = None;
        let mut renewed = std::time::Instant::now();
        loop {
            if cursor.is_none() || renewed.elapsed() > Duration::from_millis(LEASE_MS / 3) {
                match self.store.lease(self.app, CURSOR, &holder, LEASE_MS).await {
                    Ok(true) => {
                        renewed = std::time::Instant::now();
                        if cursor.is_none() {
                            let Some(c) = self.start_cursor(&stop).await else {
                                return;
                            };
                            tracing::info!(app = self.app, url = %self.cfg.url, cursor = c, "webhook delivery: this node delivers");
                            cursor = Some(c);
                        }
                    }
                    Ok(false) => {
                        if cursor.take().is_some() {
                            tracing::info!(
                                app = self.app,
                                "webhook delivery: another node took over"
                            );
                        }
                    }
                    Err(e) => {
                        tracing::warn!(app = self.app, error = %e, "webhook: cannot take the delivery lease");
                        cursor = None;
                    }
                }
            }
            let Some(at) = cursor else {
                tokio::select! {
                    () = tokio::time::sleep(Duration::from_millis(LEASE_MS / 3)) => continue,
                    () = stop.cancelled() => return,
                }
            };
            match self
                .store
                .changes_since(self.app, at, self.cfg.concurrency)
                .await
            {
                Ok(batch) if !batch.is_empty() => {
                    let last = batch.last().map_or(at, |c| c.version);
                    // Concurrent across accounts, in version order within an account.
                    let mut by_account: Vec<Vec<&Change>> = Vec::new();
                    let mut index: HashMap<&str, usize> = HashMap::new();
                    for c in batch.iter().filter(|c| sendable(c)) {
                        let i = *index.entry(&c.user).or_insert_with(|| {
                            by_account.push(Vec::new());
                            by_account.len() - 1
                        });
                        by_account[i].push(c);
                    }
                    let outcomes = join_all(by_account.into_iter().map(|changes| async {
                        for c in changes {
                            match self.deliver(c, &stop).await {
                                Outcome::Delivered | Outcome::GaveUp => {}
                                other => return other,
                            }
                        }
                        Outcome::Delivered
                    }))
                    .await;
                    if outcomes.iter().any(|o| matches!(o, Outcome::Stopped)) {
                        return; // the cursor stays before this batch: it is redelivered
                    }
                    if outcomes.iter().any(|o| matches!(o, Outcome::LostLease)) {
                        tracing::info!(
                            app = self.app,
                            "webhook delivery: another node took over during retries"
                        );
                        cursor = None; // the new holder delivers from the stored cursor
                        continue;
                    }
                    renewed = std::time::Instant::now()
                        .checked_sub(Duration::from_millis(LEASE_MS))
                        .unwrap_or(renewed); // renew before the next batch
                    cursor = Some(last);
                    if let Err(e) = self.store.set_cursor(self.app, CURSOR, last).await {
                        tracing::warn!(app = self.app, error = %e, "webhook: cannot store the cursor (the batch may be delivered again)");
                    }
                    if let Ok(head) = self.store.current_version(self.app).await {
                        metrics::gauge!("portrait_webhook_lag", "app" => self.app.to_string())
                            .set(head.saturating_sub(last) as f64);
                    }
                    continue;
                }
                Ok(_) => {}
                Err(e) => {
                    tracing::warn!(app = self.app, error = %e, "webhook: cannot read the change log");
                }
            }
            tokio::select! {
                _ = dispatched.changed() => {}
                () = tokio::time::sleep(Duration::from_secs(1)) => {}
                () = stop.cancelled() => return,
            }
        }
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

    async fn deliver(&self, c: &Change, stop: &CancellationToken) -> Outcome {
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
            ("ClientIP", ""),
            ("OptPlatform", platform),
        ];
        let mut backoff = Duration::from_millis(self.cfg.initial_backoff_ms);
        let max_backoff = Duration::from_millis(self.cfg.max_backoff_ms);
        loop {
            let sent = self
                .http
                .post(&self.cfg.url)
                .query(&query)
                .json(&body)
                .send()
                .await;
            let failure = match sent {
                Ok(resp) if resp.status().is_success() => {
                    metrics::counter!("portrait_webhook_deliveries_total", "app" => app.clone(), "outcome" => "ok")
                        .increment(1);
                    return Outcome::Delivered;
                }
                Ok(resp) => format!("HTTP {}", resp.status()),
                Err(e) => e.to_string(),
            };
            metrics::counter!("portrait_webhook_deliveries_total", "app" => app.clone(), "outcome" => "failed_attempt")
                .increment(1);
            let age_ms = crate::now_ms().saturating_sub(c.at_ms);
            if age_ms > i64::try_from(self.cfg.give_up_after_ms).unwrap_or(i64::MAX) {
                tracing::error!(app = self.app, version = c.version, url = %self.cfg.url, error = %failure, "webhook: giving up on a change");
                metrics::counter!("portrait_webhook_deliveries_total", "app" => app.clone(), "outcome" => "dropped")
                    .increment(1);
                return Outcome::GaveUp;
            }
            tracing::warn!(app = self.app, version = c.version, url = %self.cfg.url, error = %failure, retry_in = ?backoff, "webhook: delivery failed");
            // Retries can outlast the lease: keep it, or leave the change to the new holder.
            match self
                .store
                .lease(self.app, CURSOR, &self.holder, LEASE_MS)
                .await
            {
                Ok(true) => {}
                Ok(false) => return Outcome::LostLease,
                Err(e) => {
                    tracing::warn!(app = self.app, error = %e, "webhook: cannot renew the delivery lease")
                }
            }
            tokio::select! {
                () = tokio::time::sleep(backoff) => {}
                () = stop.cancelled() => return Outcome::Stopped,
            }
            backoff = (backoff * 2).min(max_backoff);
        }
    }
}

/// Whether a change is a profile change the vendor would call back for.
fn sendable(c: &Change) -> bool {
    match c.kind {
        ChangeKind::Set => true,
        ChangeKind::Import => !c.items.is_empty(),
        ChangeKind::Delete => false,
    }
}
