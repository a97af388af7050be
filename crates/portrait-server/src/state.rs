//! Shared state of a running node, handed to every handler. Nothing here is global: tests build as
//! many independent states as they like.

use std::collections::HashMap;
use std::sync::Arc;

use anyhow::Context;
use portrait_core::Identifier;
use portrait_store::{NewAccount, Store};

use crate::settings::{AppConfig, Settings};
use crate::tenant::Tenant;

/// Cheaply clonable handle to the node's state.
#[derive(Clone)]
pub struct AppState {
    inner: Arc<Inner>,
}

struct Inner {
    store: Arc<dyn Store>,
    tenants: HashMap<u64, Arc<Tenant>>,
    max_body_bytes: usize,
}

impl AppState {
    /// Builds the state: validates apps, makes sure every admin identifier exists as an account
    /// (as the vendor's console does), and loads each app's kick table.
    ///
    /// # Errors
    /// Invalid app configuration or a store failure.
    pub async fn new(
        store: Arc<dyn Store>,
        apps: &[AppConfig],
        max_body_bytes: usize,
    ) -> anyhow::Result<AppState> {
        let mut tenants = HashMap::new();
        for cfg in apps {
            let tenant = Tenant::from_config(cfg)?;
            let admins: Vec<NewAccount> = cfg
                .admins
                .iter()
                .map(|a| {
                    Ok(NewAccount {
                        user: Identifier::parse(a)?,
                        nick: None,
                        face_url: None,
                    })
                })
                .collect::<anyhow::Result<_>>()?;
            store
                .import_accounts(cfg.sdkappid, &admins, "portrait")
                .await
                .context("importing admin accounts")?;
            for (user, not_before) in store.kicks(cfg.sdkappid).await.context("loading kicks")? {
                tenant.set_kick(user, not_before);
            }
            anyhow::ensure!(
                tenants.insert(cfg.sdkappid, Arc::new(tenant)).is_none(),
                "app {} is configured twice",
                cfg.sdkappid
            );
        }
        Ok(AppState {
            inner: Arc::new(Inner {
                store,
                tenants,
                max_body_bytes,
            }),
        })
    }

    /// Builds the state from full settings.
    ///
    /// # Errors
    /// As [`AppState::new`].
    pub async fn from_settings(
        store: Arc<dyn Store>,
        settings: &Settings,
    ) -> anyhow::Result<AppState> {
        Self::new(store, &settings.apps, settings.server.max_body_bytes).await
    }

    /// The store.
    pub fn store(&self) -> &dyn Store {
        self.inner.store.as_ref()
    }

    /// The app with this SDKAppID.
    pub fn tenant(&self, sdkappid: u64) -> Option<&Arc<Tenant>> {
        self.inner.tenants.get(&sdkappid)
    }

    /// Largest request body accepted.
    pub fn max_body_bytes(&self) -> usize {
        self.inner.max_body_bytes
    }
}
