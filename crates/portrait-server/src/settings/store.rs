//! `[store]`: where the data lives — one database (`url`), or several PostgreSQL clusters
//! (`shards`, docs/deployment.md "Shards") — the read cache and the change log's retention.

use serde::{Deserialize, Serialize};

use super::AppConfig;

/// `[store]`.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct StoreSettings {
    /// `sqlite://PATH`; empty ⇒ `sqlite://<data_dir>/portrait.db`.
    pub url: String,
    /// Accounts kept in the in-memory read cache; 0 turns the cache off.
    pub cache_entries: usize,
    /// Hours a change stays in the change log (the catch-up of `/v1/ws` and webhook delivery read
    /// it); older ones are pruned ([`crate::retention`]). Fractions are allowed (0.5 = 30
    /// minutes); 0 keeps every change forever.
    pub change_retention_hours: f64,
    /// More PostgreSQL clusters apps can be placed on, by name (`{ b = "postgres://…" }`); the
    /// `url` is the *home* shard, named `home`, which also holds the app records. Empty: one
    /// database (docs/deployment.md, "Shards"). Needs `url` to be PostgreSQL.
    pub shards: std::collections::BTreeMap<String, String>,
    /// The embedded store's file mapped in huge pages while it fits in half the memory: reads
    /// that miss the cache are cheaper, sets a little dearer (docs/deployment.md, "Huge pages").
    pub huge_pages: bool,
}

impl Default for StoreSettings {
    fn default() -> Self {
        Self {
            url: String::new(),
            cache_entries: 200_000,
            change_retention_hours: 168.0,
            shards: std::collections::BTreeMap::new(),
            huge_pages: true,
        }
    }
}

impl StoreSettings {
    /// `[store] shards`: names, PostgreSQL URLs, and a PostgreSQL home (`url`, or `store_url`
    /// in messages: the effective one); every `[[apps]] shard` one of them.
    ///
    /// # Errors
    /// Names the setting; never shows a password.
    pub(super) fn validate_shards(&self, url: &str, apps: &[AppConfig]) -> anyhow::Result<()> {
        let shards = &self.shards;
        let pg = |u: &str| u.starts_with("postgres://") || u.starts_with("postgresql://");
        if !shards.is_empty() {
            anyhow::ensure!(
                pg(&self.url),
                "store: shards need [store] url to be a PostgreSQL database (the home shard), not {:?}; the embedded store has no shards",
                portrait_store::redact_url(url)
            );
        }
        for (name, url) in shards {
            portrait_store::sharded::check_shard_name(name)
                .map_err(|e| anyhow::anyhow!("store: shards: {e}"))?;
            anyhow::ensure!(
                name != portrait_store::sharded::HOME,
                "store: shards: {name:?} is the name of [store] url; choose another"
            );
            anyhow::ensure!(
                pg(url),
                "store: shards: {name:?} = {:?} is not a PostgreSQL URL (postgres://USER@HOST/DATABASE)",
                portrait_store::redact_url(url)
            );
        }
        for app in apps {
            if let Some(shard) = &app.shard {
                anyhow::ensure!(
                    shard == portrait_store::sharded::HOME || shards.contains_key(shard),
                    "app {}: shard {shard:?} is not in [store] shards",
                    app.sdkappid
                );
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use crate::settings::tests::parse;

    #[test]
    fn shards_are_checked_with_clear_errors() {
        let pg = "[store]\nurl = \"postgres://u:secret@h/db\"\n";
        let s = parse(&format!("{pg}shards = {{ b = \"postgres://u@h2/db\" }}\n")).unwrap();
        assert_eq!(s.store.shards["b"], "postgres://u@h2/db");
        for (text, says) in [
            (
                "[store]\nshards = { b = \"postgres://u@h2/db\" }\n".to_owned(),
                "need [store] url to be a PostgreSQL",
            ),
            (
                format!("{pg}shards = {{ B = \"postgres://h/db\" }}\n"),
                "shard name \"B\"",
            ),
            (
                format!("{pg}shards = {{ home = \"postgres://h/db\" }}\n"),
                "is the name of [store] url",
            ),
            (
                format!("{pg}shards = {{ b = \"sqlite://x.db\" }}\n"),
                "not a PostgreSQL URL",
            ),
            (
                format!("{pg}shards = {{ b = \"mysql://u:secret@h/db\" }}\n"),
                "not a PostgreSQL URL",
            ),
        ] {
            let e = format!("{:#}", parse(&text).unwrap_err());
            assert!(e.contains(says), "{text}: {e}");
            assert!(!e.contains("secret"), "no password in {e}");
        }
        let app = "[[apps]]\nsdkappid = 1\nkey = \"k\"\nadmins = [\"a\"]\nshard = \"c\"\n";
        let e = format!(
            "{:#}",
            parse(&format!(
                "{pg}shards = {{ b = \"postgres://h/db\" }}\n{app}"
            ))
            .unwrap_err()
        );
        assert!(
            e.contains("app 1: shard \"c\" is not in [store] shards"),
            "{e}"
        );
    }
}
