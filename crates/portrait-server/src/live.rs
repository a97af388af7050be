//! Live apps: the apps this node serves right now, each with its settings, where they come from
//! (the config file or the store's app records) and its run-time [`Tenant`]. Handlers look an
//! app up here on every call; the operator API and the app-record poller replace entries at run
//! time, so a change takes effect without a restart.
//!
//! What must not live here: HTTP, or reading and writing the store (see `crate::operator`).

use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};

use portrait_core::operator::AppSource;

use crate::settings::AppConfig;
use crate::tenant::Tenant;

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
#[derive(Default)]
pub struct Live {
    apps: RwLock<BTreeMap<u64, Arc<LiveApp>>>,
}

impl Live {
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
