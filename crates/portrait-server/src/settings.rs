//! Configuration: one [`Settings`] struct, layered defaults → `portrait.toml` → `PORTRAIT_*`
//! environment → command-line flags (applied by the binary). Uses figment so that an error names
//! the source of the bad value.
//!
//! `portrait config example` prints `portrait.example.toml` from the repository root, which
//! documents every setting; a test keeps that file parseable.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anyhow::Context;
use figment::providers::{Env, Format, Serialized, Toml};
use figment::Figment;
use portrait_core::schema::{CustomField, CustomKind, Perms};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};

pub use crate::ratelimit::{ClientRateLimitConfig, RateLimitConfig};
pub use cluster::ClusterSettings;
pub use coherence::CoherenceSettings;
pub use operator::OperatorSettings;
pub use store::StoreSettings;
pub use webhook::WebhookConfig;

mod cluster;
mod coherence;
pub mod nats;
mod operator;
mod store;
mod webhook;

/// The commented example configuration.
pub const EXAMPLE: &str = include_str!("../../../portrait.example.toml");

/// Every setting of a Portrait node.
#[derive(Debug, Clone, Deserialize, Serialize, Default)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    /// Listener and limits of the HTTP server.
    #[serde(default)]
    pub server: ServerSettings,
    /// Where data lives.
    #[serde(default)]
    pub store: StoreSettings,
    /// Logging.
    #[serde(default)]
    pub log: LogSettings,
    /// Realtime push (WebSocket) limits and timers.
    #[serde(default)]
    pub push: PushSettings,
    /// The operator API (`/admin/v1`): off unless a token is configured.
    #[serde(default)]
    pub operator: OperatorSettings,
    /// Limits counted across nodes (Redis); empty = per node.
    #[serde(default)]
    pub cluster: ClusterSettings,
    /// Read-cache coherence between nodes sharing PostgreSQL.
    #[serde(default)]
    pub coherence: CoherenceSettings,
    /// The apps (tenants) this node serves. Empty ⇒ a development app is created on first start.
    /// Apps in the store (made through the operator API) are served too and win over these.
    #[serde(default)]
    pub apps: Vec<AppConfig>,
}

/// `[server]`.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServerSettings {
    /// Address to listen on.
    pub listen: SocketAddr,
    /// Directory for the embedded database and the development app.
    pub data_dir: PathBuf,
    /// Largest request body accepted, in bytes.
    pub max_body_bytes: usize,
    /// A request taking longer than this is answered with an internal error (vendor: 3 s);
    /// an app move has a longer deadline (`operator::shards::MOVE_DEADLINE`).
    pub request_timeout_ms: u64,
    /// Open connections at most (WebSockets included); 0 = three quarters of the process's
    /// open-file limit (at most 65,536), which the server raises to its hard limit at start. At the cap, the
    /// connection idle the longest is closed to make room ([`crate::conn`]).
    pub max_connections: usize,
    /// A connection must send a whole request head, and then its body, within this time (of
    /// connecting, or of the first byte of a later request on a kept-alive connection);
    /// otherwise it is closed. A head over 64 KiB closes it at once.
    pub header_timeout_ms: u64,
    /// A kept-alive connection with no request in progress is closed after this long.
    pub keepalive_timeout_ms: u64,
    /// A connection (WebSocket included) whose writes stay blocked this long — the client stopped
    /// reading — is closed.
    pub write_timeout_ms: u64,
    /// Reverse proxies (IP addresses or CIDR networks) whose `X-Forwarded-For` is believed: for a
    /// call from one of them, the caller's address recorded with its changes (the webhook's
    /// `ClientIP`) is the right-most forwarded address that is not a trusted proxy
    /// ([`crate::client_ip`]). Empty: the peer is the caller, and `X-Forwarded-For` is ignored.
    pub trusted_proxies: Vec<String>,
}

impl Default for ServerSettings {
    fn default() -> Self {
        Self {
            listen: "127.0.0.1:8080".parse().expect("valid address"),
            data_dir: PathBuf::from("portrait-data"),
            max_body_bytes: 1 << 20,
            request_timeout_ms: 3_000,
            max_connections: 0,
            header_timeout_ms: 10_000,
            keepalive_timeout_ms: 60_000,
            write_timeout_ms: 15_000,
            trusted_proxies: Vec::new(),
        }
    }
}

/// `[log]`.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct LogSettings {
    /// `tracing` EnvFilter directive; `RUST_LOG` overrides it.
    pub filter: String,
    /// `auto` (colours only on a terminal), `text` (never colours) or `json` (one object a line).
    pub format: crate::telemetry::LogFormat,
}

impl Default for LogSettings {
    fn default() -> Self {
        Self {
            filter: "portrait=info,portrait_server=info,portrait_store=info".into(),
            format: crate::telemetry::LogFormat::Auto,
        }
    }
}

/// `[push]`: the WebSocket API (docs/client-api.md).
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct PushSettings {
    /// Subscribed accounts per connection, the own account included.
    pub max_subscriptions: usize,
    /// Open connections per user.
    pub max_connections_per_user: usize,
    /// Events buffered per connection before it is switched to catch-up from the change log.
    pub queue: usize,
    /// How often the server pings each connection.
    pub ping_interval_ms: u64,
    /// A connection that sends nothing (not even a pong) for this long is closed.
    pub idle_timeout_ms: u64,
    /// How often the node reads every app's head (version and kicks revision) in one query and
    /// wakes the feeds whose app moved (picks up changes and kicks written through other nodes,
    /// and covers a bus outage); `push/poll.rs`.
    pub poll_interval_ms: u64,
    /// NATS server shared by the nodes of a cluster (`nats://127.0.0.1:4222`), or the
    /// comma-separated servers of a NATS cluster (`nats://h1:4222,nats://h2:4222`, followed
    /// when one dies; [`nats::servers`]); empty = none (single node). Nodes publish a wake-up
    /// per write on `<nats_subject>.<sdkappid>` so that every node's feed reads the change log
    /// at once; the change log stays the source of truth.
    pub nats_url: String,
    /// Subject prefix of the wake-ups.
    pub nats_subject: String,
    /// Largest WebSocket message (and frame) a signed-in client may send, in bytes; a larger one
    /// closes the connection with 1009. (A connection refused at sign-in may send 1 KiB.)
    pub max_message_bytes: usize,
    /// Messages a client may send per second on one connection (ops, pings; bursts of as many);
    /// over it each op is answered with error 60007, and a connection with more than twice that
    /// many refused within one second is closed with 1008. 0 = no limit.
    pub ops_per_sec: u32,
}

impl Default for PushSettings {
    fn default() -> Self {
        Self {
            max_subscriptions: 1000,
            max_connections_per_user: 10,
            queue: 1024,
            ping_interval_ms: 20_000,
            idle_timeout_ms: 60_000,
            poll_interval_ms: 1_000,
            nats_url: String::new(),
            nats_subject: "portrait.changes".into(),
            max_message_bytes: 64 << 10,
            ops_per_sec: 20,
        }
    }
}

/// One app (`[[apps]]`).
#[derive(Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct AppConfig {
    /// The SDKAppID.
    pub sdkappid: u64,
    /// Secret key used to sign and verify UserSigs.
    #[serde(serialize_with = "expose")]
    pub key: SecretString,
    /// Admin identifiers (at least one).
    pub admins: Vec<String>,
    /// Custom profile fields (at most 20).
    #[serde(default)]
    pub custom_fields: Vec<CustomFieldConfig>,
    /// Words refused in free-text profile values (case-insensitive substring match).
    #[serde(default)]
    pub sensitive_words: Vec<String>,
    /// Per-API calls per second.
    #[serde(default)]
    pub rate_limits: RateLimitConfig,
    /// Calls per second of the client API (`/v1`), per user and for the whole app.
    #[serde(default)]
    pub client_rate_limits: ClientRateLimitConfig,
    /// How far ahead of this server's clock a UserSig's `TLS.time` may be, in seconds (the
    /// clock of the server that mints them may run a little fast). A sig dated further ahead is
    /// refused (70005) until then; a kick revokes every sig dated up to this long after it.
    #[serde(default = "default_clock_skew")]
    pub usersig_clock_skew_secs: u64,
    /// `Profile.CallbackPortraitSet` delivery; none if absent.
    #[serde(default)]
    pub webhook: Option<WebhookConfig>,
    /// A disabled app refuses every call (70020, as an unknown SDKAppID); its data is kept.
    #[serde(default)]
    pub disabled: bool,
    /// The key in use before the last rotation, which still verifies UserSigs until
    /// `valid_until`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous_key: Option<PreviousKey>,
    /// The shard (`[store] shards`) the app's data lives on; none: the home shard (`[store]
    /// url`). Chosen when the app is made; changed only by a move (docs/deployment.md, "Shards").
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shard: Option<String>,
    /// Set (to the target shard) while a move announced by the operator API is switching the
    /// app: every node holds the app's writes until a record without it (never set by hand).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub moving: Option<String>,
}

/// `[apps.previous_key]`: a rotated-out key during its grace period.
#[derive(Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct PreviousKey {
    /// The old secret key.
    #[serde(serialize_with = "expose")]
    pub key: SecretString,
    /// Unix second after which it no longer verifies.
    pub valid_until: u64,
}

impl std::fmt::Debug for PreviousKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PreviousKey")
            .field("key", &"[redacted]")
            .field("valid_until", &self.valid_until)
            .finish()
    }
}

impl AppConfig {
    /// Checks one app's settings (also those made through the operator API).
    ///
    /// # Errors
    /// Names the app and the offending setting.
    pub fn validate(&self) -> anyhow::Result<()> {
        anyhow::ensure!(
            !self.key.expose_secret().is_empty(),
            "app {}: key is empty",
            self.sdkappid
        );
        anyhow::ensure!(
            !self.admins.is_empty(),
            "app {}: at least one admin identifier is required",
            self.sdkappid
        );
        for a in &self.admins {
            portrait_core::Identifier::parse(a)
                .with_context(|| format!("app {}: admin {a:?}", self.sdkappid))?;
        }
        anyhow::ensure!(
            self.usersig_clock_skew_secs <= 86_400,
            "app {}: usersig_clock_skew_secs must be at most 86400 (a day)",
            self.sdkappid
        );
        let fields = self
            .custom_fields
            .iter()
            .map(CustomFieldConfig::to_field)
            .collect::<Result<Vec<_>, _>>()
            .with_context(|| format!("app {}", self.sdkappid))?;
        // Hidden fields count: the limit of 20 and the uniqueness of names cover them too.
        portrait_core::schema::Schema::new(fields, &self.sensitive_words)
            .with_context(|| format!("app {}", self.sdkappid))?;
        self.rate_limits
            .validate()
            .with_context(|| format!("app {}", self.sdkappid))?;
        if let Some(w) = &self.webhook {
            let url = reqwest::Url::parse(&w.url)
                .with_context(|| format!("app {}: webhook url {:?}", self.sdkappid, w.url))?;
            anyhow::ensure!(
                matches!(url.scheme(), "http" | "https"),
                "app {}: webhook url must be http(s)",
                self.sdkappid
            );
            anyhow::ensure!(
                w.concurrency > 0 && w.timeout_ms > 0 && w.max_pending > 0,
                "app {}: webhook concurrency, max_pending and timeout_ms must be positive",
                self.sdkappid
            );
            anyhow::ensure!(
                w.lease_ms >= 100,
                "app {}: webhook lease_ms must be at least 100",
                self.sdkappid
            );
            // Bounds that keep every timer and counter of the worker far from overflow (the
            // operator API takes these from a request body).
            const DAY_MS: u64 = 86_400_000;
            anyhow::ensure!(
                [w.timeout_ms, w.initial_backoff_ms, w.max_backoff_ms, w.lease_ms]
                    .iter()
                    .all(|&ms| ms <= DAY_MS)
                    && w.give_up_after_ms <= 366 * DAY_MS,
                "app {}: webhook timeout_ms, initial_backoff_ms, max_backoff_ms and lease_ms must be at most a day (86400000), give_up_after_ms at most a year",
                self.sdkappid
            );
            anyhow::ensure!(
                w.concurrency <= 1024 && w.max_pending <= 1_000_000,
                "app {}: webhook concurrency must be at most 1024 and max_pending at most 1000000",
                self.sdkappid
            );
        }
        Ok(())
    }
}

/// The default of `usersig_clock_skew_secs`.
pub fn default_clock_skew() -> u64 {
    2
}

fn expose<S: serde::Serializer>(s: &SecretString, ser: S) -> Result<S::Ok, S::Error> {
    ser.serialize_str(s.expose_secret())
}

impl std::fmt::Debug for AppConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppConfig")
            .field("sdkappid", &self.sdkappid)
            .field("key", &"[redacted]")
            .field("admins", &self.admins)
            .field("custom_fields", &self.custom_fields)
            .field("sensitive_words", &self.sensitive_words.len())
            .field("rate_limits", &self.rate_limits)
            .field("client_rate_limits", &self.client_rate_limits)
            .field("usersig_clock_skew_secs", &self.usersig_clock_skew_secs)
            .field("webhook", &self.webhook)
            .field("disabled", &self.disabled)
            .field("previous_key", &self.previous_key)
            .field("shard", &self.shard)
            .field("moving", &self.moving)
            .finish()
    }
}

/// Who a permission allows: the operator API's type (same names in the file).
pub use portrait_core::operator::Who;

fn perms(who: &[Who]) -> Perms {
    Perms {
        user: who.contains(&Who::User),
        admin: who.contains(&Who::Admin),
    }
}

/// One custom field (`[[apps.custom_fields]]`).
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct CustomFieldConfig {
    /// A custom tag name (`portrait_core::schema::custom_name`): `Tag_Profile_Custom_Test1`, or
    /// the legacy `Tag_Profile_Custom_888888_Test`.
    pub name: String,
    /// `string` or `integer`.
    #[serde(rename = "type")]
    pub kind: CustomKind,
    /// Byte limit for strings (1–500).
    #[serde(default = "default_max_length")]
    pub max_length: usize,
    /// Who may read it.
    #[serde(default = "both")]
    pub read: Vec<Who>,
    /// Who may write it.
    #[serde(default = "both")]
    pub write: Vec<Who>,
    /// A hidden field is treated by every API as an unknown one; its stored values are kept and
    /// come back when it is shown again. It still counts towards the 20 custom fields.
    #[serde(default)]
    pub hidden: bool,
}

fn default_max_length() -> usize {
    500
}
fn both() -> Vec<Who> {
    vec![Who::User, Who::Admin]
}

impl CustomFieldConfig {
    /// Validates into a schema field.
    ///
    /// # Errors
    /// Invalid name, limit or permissions.
    pub fn to_field(&self) -> Result<CustomField, portrait_core::schema::SchemaError> {
        CustomField::new(
            &self.name,
            self.kind,
            self.max_length,
            perms(&self.read),
            perms(&self.write),
        )
    }
}

impl Settings {
    /// Loads settings: defaults, then `config` (if given, it must exist; otherwise
    /// `./portrait.toml` if present), then `PORTRAIT_*` environment variables (`__` separates
    /// levels: `PORTRAIT_SERVER__LISTEN=0.0.0.0:8080`, `PORTRAIT_STORE__URL=…`, and
    /// `PORTRAIT_APPS='[{sdkappid=1400000001, key="…", admins=["administrator"]}]'`).
    ///
    /// # Errors
    /// A message naming the file or variable that holds a bad value.
    pub fn load(config: Option<&Path>) -> anyhow::Result<Settings> {
        let mut fig = Figment::from(Serialized::defaults(Settings::default()));
        match config {
            Some(path) => {
                anyhow::ensure!(
                    path.exists(),
                    "config file {} does not exist",
                    path.display()
                );
                fig = fig.merge(Toml::file_exact(path));
            }
            None if Path::new("portrait.toml").exists() => {
                fig = fig.merge(Toml::file_exact("portrait.toml"))
            }
            None => {}
        }
        fig = fig.merge(Env::prefixed("PORTRAIT_").split("__").filter(|k| {
            // Only settings sections: other PORTRAIT_* variables (e.g. PORTRAIT_TEST_STORE) are not ours.
            let k = k.as_str().to_ascii_lowercase();
            [
                "server",
                "store",
                "log",
                "push",
                "operator",
                "coherence",
                "cluster",
                "apps",
            ]
            .iter()
            .any(|s| k == *s || k.starts_with(&format!("{s}.")) || k.starts_with(&format!("{s}__")))
        }));
        let settings: Settings = fig.extract().context("invalid configuration")?;
        settings.validate()?;
        Ok(settings)
    }

    /// Cross-field checks figment cannot express.
    ///
    /// # Errors
    /// Names the offending app or field.
    pub fn validate(&self) -> anyhow::Result<()> {
        crate::client_ip::TrustedProxies::parse(&self.server.trusted_proxies)
            .map_err(|e| anyhow::anyhow!("server: trusted_proxies: {e}"))?;
        self.coherence.validate()?;
        let p = &self.push;
        anyhow::ensure!(
            p.max_subscriptions > 0 && p.max_connections_per_user > 0 && p.queue > 0,
            "push: max_subscriptions, max_connections_per_user and queue must be positive"
        );
        anyhow::ensure!(
            p.ping_interval_ms > 0 && p.idle_timeout_ms > 0 && p.poll_interval_ms > 0,
            "push: intervals must be positive"
        );
        nats::servers(&p.nats_url)?;
        let hours = self.store.change_retention_hours;
        anyhow::ensure!(
            (0.0..=24.0 * 365.0 * 100.0).contains(&hours),
            "store: change_retention_hours must be a number of hours from 0 (keep forever) to 876000, not {hours}"
        );
        self.store.validate_shards(&self.store_url(), &self.apps)?;
        anyhow::ensure!(
            self.operator.poll_ms > 0,
            "operator: poll_ms must be positive"
        );
        self.cluster.validate()?;
        let mut seen = std::collections::HashSet::new();
        for app in &self.apps {
            anyhow::ensure!(
                seen.insert(app.sdkappid),
                "app {} is configured twice",
                app.sdkappid
            );
            app.validate()?;
        }
        Ok(())
    }

    /// The store URL, defaulting to the embedded database in the data directory.
    pub fn store_url(&self) -> String {
        if self.store.url.is_empty() {
            format!(
                "sqlite://{}",
                self.server.data_dir.join("portrait.db").display()
            )
        } else {
            self.store.url.clone()
        }
    }
}

#[cfg(test)]
#[allow(clippy::result_large_err)] // figment::Jail's closure signature
mod tests {
    use super::*;
    use crate::ratelimit::Api;

    #[test]
    fn the_example_config_parses_and_validates() {
        let s: Settings = Figment::from(Serialized::defaults(Settings::default()))
            .merge(Toml::string(EXAMPLE))
            .extract()
            .unwrap();
        s.validate().unwrap();
        assert!(!s.apps.is_empty());
    }

    #[test]
    fn env_overrides_file_and_file_overrides_defaults() {
        figment::Jail::expect_with(|jail| {
            jail.create_file(
                "portrait.toml",
                "[server]\nlisten = \"127.0.0.1:7000\"\ndata_dir = \"from-file\"\n",
            )?;
            jail.set_env("PORTRAIT_SERVER__LISTEN", "127.0.0.1:7001");
            jail.set_env(
                "PORTRAIT_APPS",
                "[{sdkappid=1400000009, key=\"k\", admins=[\"root\"]}]",
            );
            jail.set_env("PORTRAIT_TEST_STORE", "ignored: not a settings key");
            let s = Settings::load(None).map_err(|e| e.to_string())?;
            assert_eq!(s.server.listen.port(), 7001);
            assert_eq!(s.server.data_dir, PathBuf::from("from-file"));
            assert_eq!(s.apps[0].sdkappid, 1_400_000_009);
            assert_eq!(s.apps[0].rate_limits.limit(Api::PortraitGet), Some(200));
            assert!(
                !format!("{:?}", s.apps[0]).contains("\"k\""),
                "the key is redacted in Debug"
            );
            Ok(())
        });
    }

    /// Settings from defaults and `toml`, validated; the error as text (also used by the
    /// tests of the settings' submodules).
    pub(super) fn parse(toml: &str) -> Result<Settings, String> {
        Figment::from(Serialized::defaults(Settings::default()))
            .merge(Toml::string(toml))
            .extract::<Settings>()
            .map_err(|e| e.to_string())
            .and_then(|s| s.validate().map(|()| s).map_err(|e| format!("{e:#}")))
    }

    #[test]
    fn per_api_rate_limits_parse_and_unknown_apis_are_refused_by_name() {
        let app = "[[apps]]\nsdkappid = 1\nkey = \"k\"\nadmins = [\"root\"]\n[apps.rate_limits]\n";
        let s = parse(&format!(
            "{app}enabled = true\nportrait_get = 5\nkick = 0\n"
        ))
        .unwrap();
        assert_eq!(s.apps[0].rate_limits.limit(Api::PortraitGet), Some(5));
        assert_eq!(s.apps[0].rate_limits.limit(Api::Kick), None);
        assert_eq!(s.apps[0].rate_limits.limit(Api::AccountCheck), Some(100));
        let e = parse(&format!("{app}portrait_gett = 5\n")).unwrap_err();
        assert!(e.contains("portrait_gett"), "{e}");
    }

    #[test]
    fn custom_field_names_of_the_vendor_documents_load_and_names_outside_the_rule_do_not() {
        let app = "[[apps]]\nsdkappid = 1\nkey = \"k\"\nadmins = [\"root\"]\n";
        let field =
            |name: &str| format!("[[apps.custom_fields]]\nname = \"{name}\"\ntype = \"string\"\n");
        let names = [
            "Tag_Profile_Custom_Test",
            "Tag_Profile_Custom_Test1",
            "Tag_Profile_Custom_Test2",
            "Tag_Profile_Custom_888888_Test",
        ];
        let toml = names.iter().fold(app.to_owned(), |t, n| t + &field(n));
        let s = parse(&toml).unwrap();
        let loaded: Vec<&str> = s.apps[0]
            .custom_fields
            .iter()
            .map(|f| f.name.as_str())
            .collect();
        assert_eq!(loaded, names);
        for (bad, why) in [
            ("Tag_Profile_Custom_Abcdefghi", "found 9 bytes"),
            ("Tag_Profile_Custom_Test_1", "start with a letter"),
            ("Tag_Profile_Custom_1Test", "start with a letter"),
            ("Tag_Profile_Custom_12345678901_Test", "1 to 10 digits"),
            (
                "Tag_Profile_custom_Test",
                "must start with Tag_Profile_Custom_",
            ),
        ] {
            let e = parse(&format!("{app}{}", field(bad))).unwrap_err();
            assert!(e.contains(bad) && e.contains(why), "{bad}: {e}");
        }
    }

    #[test]
    fn change_retention_takes_fractional_hours_and_refuses_negative_ones() {
        assert_eq!(Settings::default().store.change_retention_hours, 168.0);
        let s = parse("[store]\nchange_retention_hours = 0.5\n").unwrap();
        assert_eq!(s.store.change_retention_hours, 0.5);
        assert_eq!(
            parse("[store]\nchange_retention_hours = 0\n")
                .unwrap()
                .store
                .change_retention_hours,
            0.0
        );
        for bad in ["-1", "nan", "inf", "1e9"] {
            let e = parse(&format!("[store]\nchange_retention_hours = {bad}\n")).unwrap_err();
            assert!(e.contains("change_retention_hours"), "{bad}: {e}");
        }
    }

    #[test]
    fn a_bad_value_names_its_source() {
        figment::Jail::expect_with(|jail| {
            jail.set_env("PORTRAIT_SERVER__LISTEN", "not-an-address");
            let e = format!("{:#}", Settings::load(None).unwrap_err());
            assert!(
                e.contains("PORTRAIT_SERVER__LISTEN") || e.contains("environment"),
                "{e}"
            );
            Ok(())
        });
    }
}
