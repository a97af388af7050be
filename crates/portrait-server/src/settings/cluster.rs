//! `[cluster]`: where the nodes of one deployment count their limits together — per-app rate
//! limits, client-API limits and per-user WebSocket connection caps ([`crate::cluster`]). Empty
//! `redis_url` (the default) keeps every limit per node.

use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};

/// `[cluster]`: the Redis that the nodes share their limits through.
#[derive(Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct ClusterSettings {
    /// `redis://[:password@]host:port[/db]` (or `rediss://…`, `unix:///path`); env
    /// `PORTRAIT_CLUSTER__REDIS_URL`. Empty: every limit is counted per node. Never logged (it
    /// may hold a password).
    #[serde(serialize_with = "expose")]
    pub redis_url: SecretString,
    /// Every key this cluster writes starts with `<key_prefix>:`, so that several clusters can
    /// share one Redis (give each its own prefix).
    pub key_prefix: String,
    /// Longest wait for one Redis reply, ms. Past it (or on any error) the node counts per node
    /// at once, logs it once, and tries Redis again every `retry_ms`.
    pub timeout_ms: u64,
    /// How often a node that lost Redis tries to reach it again, ms.
    pub retry_ms: u64,
    /// How long a WebSocket connection is counted in Redis without being refreshed, ms (each node
    /// refreshes its live connections every third of it): the connections of a node that died
    /// stop counting after at most this long.
    pub conn_ttl_ms: u64,
}

impl Default for ClusterSettings {
    fn default() -> Self {
        Self {
            redis_url: SecretString::from(String::new()),
            key_prefix: "portrait".into(),
            timeout_ms: 50,
            retry_ms: 1_000,
            conn_ttl_ms: 30_000,
        }
    }
}

impl std::fmt::Debug for ClusterSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClusterSettings")
            .field("redis_url", &"[redacted]")
            .field("key_prefix", &self.key_prefix)
            .field("timeout_ms", &self.timeout_ms)
            .field("retry_ms", &self.retry_ms)
            .field("conn_ttl_ms", &self.conn_ttl_ms)
            .finish()
    }
}

impl ClusterSettings {
    /// Whether limits are shared (a Redis URL is set).
    pub fn enabled(&self) -> bool {
        !self.redis_url.expose_secret().trim().is_empty()
    }

    /// Checks the values (the URL's form too, without ever echoing it).
    ///
    /// # Errors
    /// Names the bad setting.
    pub fn validate(&self) -> anyhow::Result<()> {
        anyhow::ensure!(
            !self.key_prefix.is_empty()
                && self.key_prefix.len() <= 64
                && self
                    .key_prefix
                    .bytes()
                    .all(|b| b.is_ascii_graphic() && b != b'{' && b != b'}'),
            "cluster: key_prefix must be 1 to 64 printable ASCII characters without spaces or braces, not {:?}",
            self.key_prefix
        );
        anyhow::ensure!(
            (1..=10_000).contains(&self.timeout_ms) && (1..=600_000).contains(&self.retry_ms),
            "cluster: timeout_ms must be 1 to 10000 and retry_ms 1 to 600000"
        );
        anyhow::ensure!(
            (1_000..=3_600_000).contains(&self.conn_ttl_ms),
            "cluster: conn_ttl_ms must be 1000 to 3600000"
        );
        if self.enabled() {
            redis::Client::open(self.redis_url.expose_secret().trim()).map_err(|e| {
                anyhow::anyhow!(
                    "cluster: redis_url is not a Redis URL (redis://[:password@]host:port[/db], \
                     rediss://… or unix:///path): {:?}",
                    e.kind()
                )
            })?;
        }
        Ok(())
    }
}

fn expose<S: serde::Serializer>(s: &SecretString, ser: S) -> Result<S::Ok, S::Error> {
    ser.serialize_str(s.expose_secret())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bad_cluster_setting_is_named_and_the_url_is_never_echoed() {
        assert!(!ClusterSettings::default().enabled());
        ClusterSettings::default().validate().unwrap();
        let bad_url = ClusterSettings {
            redis_url: SecretString::from("http://user:hunter2@host".to_owned()),
            ..ClusterSettings::default()
        };
        let e = format!("{:#}", bad_url.validate().unwrap_err());
        assert!(e.contains("redis_url") && !e.contains("hunter2"), "{e}");
        assert!(!format!("{bad_url:?}").contains("hunter2"));
        let spaced = ClusterSettings {
            key_prefix: "a b".into(),
            ..ClusterSettings::default()
        };
        assert!(format!("{:#}", spaced.validate().unwrap_err()).contains("key_prefix"));
        let fast = ClusterSettings {
            conn_ttl_ms: 10,
            ..ClusterSettings::default()
        };
        assert!(format!("{:#}", fast.validate().unwrap_err()).contains("conn_ttl_ms"));
        let good = ClusterSettings {
            redis_url: SecretString::from("redis://:pw@127.0.0.1:6379/0".to_owned()),
            ..ClusterSettings::default()
        };
        assert!(good.enabled());
        good.validate().unwrap();
    }

    #[test]
    #[allow(clippy::result_large_err)] // figment::Jail's closure signature
    fn the_redis_url_comes_from_the_environment_too() {
        figment::Jail::expect_with(|jail| {
            jail.create_file("portrait.toml", "[cluster]\nkey_prefix = \"east\"\n")?;
            jail.set_env(
                "PORTRAIT_CLUSTER__REDIS_URL",
                "redis://:s3cret@10.0.0.9:6379",
            );
            let s = crate::Settings::load(None).map_err(|e| e.to_string())?;
            assert!(s.cluster.enabled());
            assert_eq!(
                s.cluster.redis_url.expose_secret(),
                "redis://:s3cret@10.0.0.9:6379"
            );
            assert_eq!(s.cluster.key_prefix, "east");
            assert!(!format!("{s:?}").contains("s3cret"), "redacted in Debug");
            Ok(())
        });
    }
}
