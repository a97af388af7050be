//! Live apps: the apps this node serves right now, each with its settings, where they come from
//! (the config file or the store's app records) and its run-time [`Tenant`]. Handlers look an
//! app up here on every call; the operator API and the app-record sync ([`apply`]) replace
//! entries at run time, so a change takes effect without a restart.
//!
//! **Which source wins.** At start a node serves the file's apps, then the store's app records,
//! which win: a file app with a record is served from the record (a warning names it). An app
//! created through the operator API exists only in the store; the first change of a file app
//! through the API copies the file's settings into the store ("adopts" it), and from then on the
//! file's entry for it is ignored.
//!
//! **Propagation.** A node that writes a record applies it at once and publishes a wake-up on
//! NATS (`<push.nats_subject>.apps`); every node, on a wake-up and every `[operator] poll_ms`,
//! reads the records above the highest revision it has applied and applies them in order.
//!
//! What must not live here: HTTP (see `crate::operator`).

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use anyhow::Context;
use portrait_core::operator::AppSource;
use portrait_store::{AppRecord, Store};
use tokio_util::sync::CancellationToken;

use crate::settings::AppConfig;
use crate::tenant::Tenant;

pub mod apply;

/// One app as this node serves it.
pub struct LiveApp {
    /// Its run-time state (key, schema, limiters, kicks).
    pub tenant: Arc<Tenant>,
    /// Its settings, as in the file or the store's record.
    pub config: AppConfig,
    /// Where the settings come from.
    pub source: AppSource,
    /// The revision of its store record (0 for an app only in the file).
    pub revision: u64,
}

/// Every app of the node, by SDKAppID.
pub struct Live {
    apps: RwLock<BTreeMap<u64, Arc<LiveApp>>>,
    /// The highest app-record revision read and applied by the sync (not by a direct apply,
    /// which may skip revisions of other apps written meanwhile).
    applied: AtomicU64,
    /// Milliseconds between two reads of the app records without a wake-up.
    poll_ms: AtomicU64,
    /// One apply at a time on this node.
    apply_lock: tokio::sync::Mutex<()>,
    /// One sync at a time on this node.
    sync_lock: tokio::sync::Mutex<()>,
    /// One operator change at a time on this node (so they do not race each other).
    change_lock: tokio::sync::Mutex<()>,
    /// Each app's background workers (webhook delivery, retention), stopped by this token.
    workers: Mutex<HashMap<u64, CancellationToken>>,
    /// The apps whose admin import waits for their database (`AppState::import_admins_later`).
    admins_waiting: Mutex<std::collections::HashSet<u64>>,
    /// How long changes stay in the change log (`None`: forever, no pruner).
    retention: Option<Duration>,
}

impl Live {
    /// No apps yet; change-log retention `retention` for apps added later.
    pub fn new(retention: Option<Duration>) -> Self {
        Self {
            apps: RwLock::default(),
            applied: AtomicU64::new(0),
            poll_ms: AtomicU64::new(2_000),
            apply_lock: tokio::sync::Mutex::new(()),
            sync_lock: tokio::sync::Mutex::new(()),
            change_lock: tokio::sync::Mutex::new(()),
            workers: Mutex::default(),
            admins_waiting: Mutex::default(),
            retention,
        }
    }

    /// Notes that app `id`'s admin import waits; whether it did not already.
    pub(crate) fn admins_deferred(&self, id: u64) -> bool {
        crate::sync::lock(&self.admins_waiting).insert(id)
    }

    /// Notes that app `id`'s admin import no longer waits (done, or given up).
    pub(crate) fn admins_done(&self, id: u64) {
        crate::sync::lock(&self.admins_waiting).remove(&id);
    }

    /// After app `id`'s admins `imported` were imported: whether they are still its admins, in
    /// which case its import no longer waits. Decided under the same lock as
    /// [`Live::admins_deferred`], so that admins changed meanwhile are either seen here or get a
    /// task of their own.
    pub(crate) fn admins_imported(&self, id: u64, imported: &[String]) -> bool {
        let mut waiting = crate::sync::lock(&self.admins_waiting);
        if self.get(id).is_some_and(|a| a.config.admins != imported) {
            return false;
        }
        waiting.remove(&id);
        true
    }

    /// Waits for this node's other operator changes: held from reading an app's settings to
    /// applying its change. (Changes through other nodes are caught by the store's
    /// compare-and-set.)
    pub async fn changing(&self) -> tokio::sync::MutexGuard<'_, ()> {
        self.change_lock.lock().await
    }

    /// The highest revision the sync has applied.
    pub fn applied(&self) -> u64 {
        self.applied.load(Ordering::Acquire)
    }

    /// Records that every revision up to `revision` is applied.
    pub fn set_applied(&self, revision: u64) {
        self.applied.fetch_max(revision, Ordering::AcqRel);
    }

    /// How often the app records are read without a wake-up.
    pub fn poll_ms(&self) -> u64 {
        self.poll_ms.load(Ordering::Relaxed)
    }

    /// Sets how often the app records are read without a wake-up (`[operator] poll_ms`).
    pub fn set_poll_ms(&self, ms: u64) {
        self.poll_ms.store(ms.max(1), Ordering::Relaxed);
    }

    /// The tenant serving calls for `sdkappid`: `None` when there is no such app or it is
    /// disabled (both answered 70020).
    pub fn tenant(&self, sdkappid: u64) -> Option<Arc<Tenant>> {
        crate::sync::read(&self.apps)
            .get(&sdkappid)
            .filter(|a| !a.config.disabled)
            .map(|a| a.tenant.clone())
    }

    /// The app `sdkappid`, disabled or not.
    pub fn get(&self, sdkappid: u64) -> Option<Arc<LiveApp>> {
        crate::sync::read(&self.apps).get(&sdkappid).cloned()
    }

    /// Every app, by SDKAppID.
    pub fn all(&self) -> Vec<Arc<LiveApp>> {
        crate::sync::read(&self.apps).values().cloned().collect()
    }

    /// Puts `app` in place of the app with its SDKAppID; returns the one it replaced.
    pub fn insert(&self, app: LiveApp) -> Option<Arc<LiveApp>> {
        crate::sync::write(&self.apps).insert(app.tenant.sdkappid, Arc::new(app))
    }
}

/// The file's apps merged with the store's records (which win; a warning names each file app a
/// record overrides), by SDKAppID, each with its source and revision; and the highest revision
/// read. A record that cannot be read as an app is logged and skipped.
///
/// # Errors
/// The store cannot be read.
pub async fn merge(
    store: &dyn Store,
    file: &[AppConfig],
) -> anyhow::Result<(Vec<(AppConfig, AppSource, u64)>, u64)> {
    let mut apps: BTreeMap<u64, (AppConfig, AppSource, u64)> = BTreeMap::new();
    for cfg in file {
        anyhow::ensure!(
            apps.insert(cfg.sdkappid, (cfg.clone(), AppSource::File, 0))
                .is_none(),
            "app {} is configured twice",
            cfg.sdkappid
        );
    }
    let records = store.app_records(0).await.context("reading app records")?;
    let highest = records.last().map_or(0, |r| r.revision);
    for r in records {
        match parse_record(&r) {
            Ok(cfg) => {
                if apps.contains_key(&r.sdkappid) {
                    tracing::warn!(
                        sdkappid = r.sdkappid,
                        revision = r.revision,
                        "app {} of the config file is overridden by its record in the store (changed through the operator API); the file's entry is ignored",
                        r.sdkappid
                    );
                }
                apps.insert(r.sdkappid, (cfg, AppSource::Store, r.revision));
            }
            Err(e) => {
                tracing::error!(sdkappid = r.sdkappid, revision = r.revision, error = %format!("{e:#}"), "skipping an app record that is not a valid app")
            }
        }
    }
    Ok((apps.into_values().collect(), highest))
}

/// An app record's body as settings, checked.
///
/// # Errors
/// Not an app's settings, another app's, or invalid settings.
pub fn parse_record(r: &AppRecord) -> anyhow::Result<AppConfig> {
    let cfg: AppConfig = serde_json::from_str(&r.body).context("decoding the app record")?;
    anyhow::ensure!(
        cfg.sdkappid == r.sdkappid,
        "the record of app {} holds app {}",
        r.sdkappid,
        cfg.sdkappid
    );
    cfg.validate()?;
    Ok(cfg)
}

/// An app's settings as the body of its record.
///
/// # Errors
/// Serialization failure (a bug).
pub fn record_body(cfg: &AppConfig) -> anyhow::Result<String> {
    serde_json::to_string(cfg).context("encoding an app record")
}
