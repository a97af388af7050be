//! Applying app settings on this node at run time: a new [`Tenant`] (keeping the kick table),
//! the app's push feed, its webhook worker and retention pruner (restarted when their settings
//! change), and the app-record sync that every node runs ([`run_sync`]).

use std::sync::Arc;
use std::time::Duration;

use portrait_core::operator::AppSource;
use portrait_core::ErrorCode;
use tokio_util::sync::CancellationToken;

use super::{parse_record, LiveApp};
use crate::settings::AppConfig;
use crate::state::AppState;
use crate::tenant::Tenant;

impl AppState {
    /// Serves `cfg` from now on (the app's record at `revision`, or the file's settings at 0).
    /// A record no newer than the one served is ignored.
    ///
    /// # Errors
    /// Invalid settings or a store failure (the app is then served as before).
    pub async fn apply_app(
        &self,
        cfg: AppConfig,
        source: AppSource,
        revision: u64,
    ) -> anyhow::Result<()> {
        let _one = self.live().apply_lock.lock().await;
        let id = cfg.sdkappid;
        let old = self.live().get(id);
        if let Some(o) = &old {
            if o.source == AppSource::Store && source == AppSource::Store && o.revision >= revision
            {
                return Ok(());
            }
        }
        self.place(&cfg)?;
        self.honour_move(&cfg, revision).await;
        let tenant = Arc::new(Tenant::replacing(&cfg, old.as_ref().map(|o| &*o.tenant))?);
        // An app whose database is down is taken on all the same (one shard's outage must not
        // hold back the other apps' records): its feed loads the kicks once it can, and no
        // UserSig of it passes before (`Tenant::kicks_loaded`); its admins are imported then.
        if old.is_none() {
            if let Err(e) = crate::push::load_kicks(self.store(), &tenant).await {
                if !matches!(e, portrait_store::StoreError::Unavailable(_)) {
                    return Err(e.into());
                }
                tenant.set_kicks_loaded(false);
            }
        }
        let admins_changed = old.as_ref().is_none_or(|o| o.config.admins != cfg.admins);
        let admins_later =
            admins_changed && !crate::state::import_admins_now(self.store(), &cfg).await?;
        let feed = self.hub().serve(&self.store_arc(), tenant.clone()).await?;
        let restart = old.as_ref().is_none_or(|o| {
            admins_changed
                || serde_json::to_value(&o.config.webhook).ok()
                    != serde_json::to_value(&cfg.webhook).ok()
        });
        if restart {
            self.start_workers(&cfg, &tenant)?;
        }
        if cfg.disabled && !old.as_ref().is_some_and(|o| o.config.disabled) {
            feed.revoke_all(ErrorCode::SDKAPPID_NOT_FOUND);
        }
        tracing::info!(
            sdkappid = id,
            revision,
            ?source,
            disabled = cfg.disabled,
            "app applied"
        );
        self.live().insert(LiveApp {
            tenant,
            config: cfg,
            source,
            revision,
        });
        if admins_later {
            // Once the app is in the registry: the import reads the admins from there.
            self.import_admins_later(id);
        }
        Ok(())
    }

    /// Reads the app records above the highest revision applied and applies them in order.
    ///
    /// # Errors
    /// A store failure (the rest is applied at the next sync).
    pub async fn sync_apps(&self) -> anyhow::Result<()> {
        let _one = self.live().sync_lock.lock().await;
        let records = self.store().app_records(self.live().applied()).await?;
        for r in records {
            match parse_record(&r) {
                Ok(cfg) => match self.apply_app(cfg, AppSource::Store, r.revision).await {
                    // A shard this node lacks: its configuration differs from the others'. The
                    // app is served as before here; later records (of other apps) still apply.
                    Err(e)
                        if matches!(
                            e.downcast_ref(),
                            Some(portrait_store::StoreError::Config(_))
                        ) =>
                    {
                        tracing::error!(sdkappid = r.sdkappid, revision = r.revision, error = %format!("{e:#}"), "skipping an app record this node cannot apply; check [store] shards")
                    }
                    other => other?,
                },
                Err(e) => {
                    tracing::error!(sdkappid = r.sdkappid, revision = r.revision, error = %format!("{e:#}"), "skipping an app record that is not a valid app")
                }
            }
            self.live().set_applied(r.revision);
        }
        Ok(())
    }

    /// (Re)starts the app's webhook worker (if it has a webhook) and change-log pruner (if
    /// retention is on), stopping those it had.
    ///
    /// # Errors
    /// Invalid webhook settings.
    pub(crate) fn start_workers(&self, cfg: &AppConfig, tenant: &Tenant) -> anyhow::Result<()> {
        let id = cfg.sdkappid;
        let stop = self.hub().stopping().child_token();
        if let Some(webhook) = &cfg.webhook {
            let feed = self.hub().feed(id).expect("a feed per app");
            let status = self.hub().webhooks().of(id);
            let worker =
                crate::webhook::Worker::new(id, webhook.clone(), self.store_arc(), tenant, status)?;
            self.hub().spawn(worker.run(feed.watch(), stop.clone()));
        }
        if let Some(keep) = self.live().retention {
            let pruner =
                crate::retention::Pruner::new(id, self.store_arc(), keep, cfg.webhook.is_some());
            self.hub().spawn(pruner.run(stop.clone()));
        }
        if let Some(old) = crate::sync::lock(&self.live().workers).insert(id, stop) {
            old.cancel();
        }
        Ok(())
    }
}

/// Every node's app-record sync: on another node's wake-up and every `poll_ms`, until `stop`.
pub async fn run_sync(state: AppState, stop: CancellationToken) {
    let woken = state.hub().apps_notified();
    loop {
        let poll = Duration::from_millis(state.live().poll_ms());
        tokio::select! {
            () = woken.notified() => {}
            () = tokio::time::sleep(poll) => {}
            () = stop.cancelled() => return,
        }
        if let Err(e) = state.sync_apps().await {
            tracing::warn!(error = %format!("{e:#}"), "reading app records failed; retrying at the next poll");
        }
    }
}
