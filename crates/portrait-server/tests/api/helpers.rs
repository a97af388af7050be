//! `spawn_app()`: a real Portrait server for one test.

use std::collections::BTreeMap;
use std::sync::{Arc, OnceLock};

use portrait_client::user::UserClient;
use portrait_client::AdminClient;
use portrait_server::settings::{AppConfig, CustomFieldConfig, PushSettings, RateLimitConfig, Who};
use portrait_server::AppState;
use portrait_store::Store;
use secrecy::SecretString;
use serde_json::{json, Value};
use tokio::net::TcpListener;

pub const APP: u64 = 1_400_000_001;
pub const OTHER_APP: u64 = 1_400_000_002;
pub const KEY: &str = "5bd2850fff3ecb11d7c805251c51ee463a25727bddc2385f3fa8bfee1bb93b5e";
pub const OTHER_KEY: &str = "other-app-secret-key";
pub const ADMIN: &str = "administrator";
/// The operator token of servers spawned with the operator API on.
pub const OPERATOR_TOKEN: &str = "test-operator-token-0123456789abcdef";

/// Initialises tracing once; logs are printed only with `TEST_LOG=1`.
fn init_tracing() {
    static ONCE: OnceLock<()> = OnceLock::new();
    ONCE.get_or_init(|| {
        if std::env::var_os("TEST_LOG").is_some() {
            portrait_server::telemetry::init("debug");
        }
    });
}

/// Client-API rate limits high enough never to be reached by a test.
pub fn unlimited_clients() -> portrait_server::settings::ClientRateLimitConfig {
    portrait_server::settings::ClientRateLimitConfig {
        user_reads: 0,
        user_writes: 0,
        app_reads: 0,
        app_writes: 0,
    }
}

/// The main test app: custom fields of every kind/permission, sensitive words, vendor rate limits.
pub fn test_app() -> AppConfig {
    let field =
        |name: &str, kind: &str, max: usize, read: Vec<Who>, write: Vec<Who>| CustomFieldConfig {
            name: name.into(),
            kind: serde_json::from_value(serde_json::json!(kind)).unwrap(),
            max_length: max,
            read,
            write,
            hidden: false,
        };
    AppConfig {
        sdkappid: APP,
        key: SecretString::from(KEY),
        admins: vec![ADMIN.into(), "admin2".into()],
        custom_fields: vec![
            field(
                "Tag_Profile_Custom_Hobby",
                "string",
                20,
                vec![Who::User, Who::Admin],
                vec![Who::User, Who::Admin],
            ),
            field(
                "Tag_Profile_Custom_Score",
                "integer",
                500,
                vec![Who::User, Who::Admin],
                vec![Who::Admin],
            ),
            field(
                "Tag_Profile_Custom_UserOnly",
                "string",
                500,
                vec![Who::User],
                vec![Who::User],
            ),
        ],
        sensitive_words: vec!["badword".into(), "违禁".into()],
        rate_limits: RateLimitConfig::default(),
        // The tests of other things write and read fast; `hostile.rs` tests these limits.
        client_rate_limits: unlimited_clients(),
        usersig_clock_skew_secs: portrait_server::settings::default_clock_skew(),
        webhook: None,
        disabled: false,
        previous_key: None,
        shard: None,
        moving: None,
    }
}

/// A second app with its own key and no custom fields.
pub fn other_app() -> AppConfig {
    AppConfig {
        sdkappid: OTHER_APP,
        key: SecretString::from(OTHER_KEY),
        admins: vec![ADMIN.into()],
        custom_fields: vec![],
        sensitive_words: vec![],
        rate_limits: RateLimitConfig::default(),
        client_rate_limits: Default::default(),
        usersig_clock_skew_secs: portrait_server::settings::default_clock_skew(),
        webhook: None,
        disabled: false,
        previous_key: None,
        shard: None,
        moving: None,
    }
}

pub struct TestApp {
    /// `http://127.0.0.1:PORT`
    pub base: String,
    /// Admin client for [`APP`].
    pub admin: AdminClient,
    /// Admin client for [`OTHER_APP`].
    pub other: AdminClient,
    /// Raw HTTP client for sloppy-client tests.
    pub http: reqwest::Client,
    pub store: Arc<dyn Store>,
    _dir: Option<tempfile::TempDir>,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    server: Option<tokio::task::JoinHandle<anyhow::Result<()>>>,
}

/// Spawns a server with the two default apps.
pub async fn spawn_app() -> TestApp {
    spawn_app_with(vec![test_app(), other_app()]).await
}

/// Spawns a server with the given apps on a fresh store and an ephemeral port.
pub async fn spawn_app_with(apps: Vec<AppConfig>) -> TestApp {
    spawn_app_opts(apps, PushSettings::default()).await
}

/// Spawns a server with the given apps and push settings on a fresh store.
pub async fn spawn_app_opts(apps: Vec<AppConfig>, push: PushSettings) -> TestApp {
    let (store, dir) = portrait_store::testkit::fresh_store_from_env().await;
    let mut app = spawn_on(store, apps, push, "127.0.0.1:0").await;
    app._dir = dir;
    app
}

/// Spawns a server on `store` (wrapped in the read cache), listening on `addr`.
pub async fn spawn_on(
    store: Arc<dyn Store>,
    apps: Vec<AppConfig>,
    push: PushSettings,
    addr: &str,
) -> TestApp {
    // The production shape: the read cache in front of the backend.
    let store: Arc<dyn Store> = Arc::new(portrait_store::cache::CachedStore::new(
        measured(store),
        10_000,
    ));
    spawn_cached(store, apps, push, addr, server_settings()).await
}

/// Spawns a server with the two default apps and the given `[server]` and `[push]` settings.
pub async fn spawn_app_server(
    server: portrait_server::settings::ServerSettings,
    push: PushSettings,
) -> TestApp {
    let (store, dir) = portrait_store::testkit::fresh_store_from_env().await;
    let store: Arc<dyn Store> = Arc::new(portrait_store::cache::CachedStore::new(
        measured(store),
        10_000,
    ));
    let mut app = spawn_cached(
        store,
        vec![test_app(), other_app()],
        push,
        "127.0.0.1:0",
        server,
    )
    .await;
    app._dir = dir;
    app
}

/// Spawns a server with the given apps and `[server]` settings on a fresh store.
pub async fn spawn_app_with_server(
    apps: Vec<AppConfig>,
    server: portrait_server::settings::ServerSettings,
) -> TestApp {
    let (store, dir) = portrait_store::testkit::fresh_store_from_env().await;
    let store: Arc<dyn Store> = Arc::new(portrait_store::cache::CachedStore::new(
        measured(store),
        10_000,
    ));
    let mut app = spawn_cached(store, apps, PushSettings::default(), "127.0.0.1:0", server).await;
    app._dir = dir;
    app
}

/// Spawns one node of a cluster sharing `store` with others (its cache in shared mode).
pub async fn spawn_node(
    store: Arc<dyn Store>,
    apps: Vec<AppConfig>,
    push: PushSettings,
) -> TestApp {
    let store: Arc<dyn Store> = Arc::new(portrait_store::cache::CachedStore::shared(
        measured(store),
        10_000,
    ));
    spawn_cached(store, apps, push, "127.0.0.1:0", server_settings()).await
}

/// The `[server]` settings of test servers: the defaults (request deadline 3 s).
pub fn server_settings() -> portrait_server::settings::ServerSettings {
    portrait_server::settings::ServerSettings::default()
}

async fn spawn_cached(
    store: Arc<dyn Store>,
    apps: Vec<AppConfig>,
    push: PushSettings,
    addr: &str,
    server: portrait_server::settings::ServerSettings,
) -> TestApp {
    spawn_full(store, apps, push, addr, server, None).await
}

/// Spawns a server with the two default apps on a fresh store, with the operator API on
/// ([`OPERATOR_TOKEN`]).
pub async fn spawn_operator() -> TestApp {
    spawn_operator_with(vec![test_app(), other_app()], PushSettings::default()).await
}

/// Spawns a server with `apps` on a fresh store, with the operator API on.
pub async fn spawn_operator_with(apps: Vec<AppConfig>, push: PushSettings) -> TestApp {
    let (store, dir) = portrait_store::testkit::fresh_store_from_env().await;
    let store: Arc<dyn Store> = Arc::new(portrait_store::cache::CachedStore::new(
        measured(store),
        10_000,
    ));
    let mut app = spawn_full(
        store,
        apps,
        push,
        "127.0.0.1:0",
        server_settings(),
        Some(OPERATOR_TOKEN),
    )
    .await;
    app._dir = dir;
    app
}

/// Spawns a server with the operator API on and `server` settings (e.g. trusted proxies).
pub async fn spawn_operator_with_server(
    server: portrait_server::settings::ServerSettings,
) -> TestApp {
    let (store, dir) = portrait_store::testkit::fresh_store_from_env().await;
    let store: Arc<dyn Store> = Arc::new(portrait_store::cache::CachedStore::new(
        measured(store),
        10_000,
    ));
    let mut app = spawn_full(
        store,
        vec![test_app(), other_app()],
        PushSettings::default(),
        "127.0.0.1:0",
        server,
        Some(OPERATOR_TOKEN),
    )
    .await;
    app._dir = dir;
    app
}

/// Spawns a server on `store` (wrapped in the read cache) with the operator API on.
pub async fn spawn_operator_on(store: Arc<dyn Store>, apps: Vec<AppConfig>) -> TestApp {
    let store: Arc<dyn Store> = Arc::new(portrait_store::cache::CachedStore::new(
        measured(store),
        10_000,
    ));
    spawn_full(
        store,
        apps,
        PushSettings::default(),
        "127.0.0.1:0",
        server_settings(),
        Some(OPERATOR_TOKEN),
    )
    .await
}

/// The backend as a node runs it: every call measured (store latency metrics).
fn measured(store: Arc<dyn Store>) -> Arc<dyn Store> {
    portrait_server::metrics::measured(store)
}

async fn spawn_full(
    store: Arc<dyn Store>,
    apps: Vec<AppConfig>,
    push: PushSettings,
    addr: &str,
    server: portrait_server::settings::ServerSettings,
    operator: Option<&str>,
) -> TestApp {
    init_tracing();
    let proxies = portrait_server::client_ip::TrustedProxies::parse(&server.trusted_proxies)
        .expect("trusted_proxies");
    let state = AppState::with_push(store.clone(), &apps, 1 << 20, &push)
        .await
        .expect("state")
        .with_trusted_proxies(proxies)
        .with_operator(operator.map(SecretString::from));
    let listener = TcpListener::bind(addr).await.expect("bind");
    let base = format!("http://{}", listener.local_addr().unwrap());
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(portrait_server::serve(
        listener,
        state,
        &server,
        async move {
            let _ = rx.await;
        },
    ));
    TestApp {
        admin: AdminClient::new(&base, APP, ADMIN, KEY),
        other: AdminClient::new(&base, OTHER_APP, ADMIN, OTHER_KEY),
        http: reqwest::Client::new(),
        base,
        store,
        _dir: None,
        shutdown: Some(tx),
        server: Some(server),
    }
}

impl TestApp {
    /// A user client of [`APP`] signed in as `user`.
    pub fn user(&self, user: &str) -> UserClient {
        UserClient::with_key(&self.base, APP, user, KEY)
    }

    /// Shuts the server down gracefully and waits for it (the store stays open).
    pub async fn stop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(server) = self.server.take() {
            server.await.expect("server task").expect("server");
        }
    }

    /// Whether the server runs on the embedded store (a fresh file of its own).
    pub fn is_embedded(&self) -> bool {
        self._dir.is_some()
    }

    /// Imports `users` into [`APP`], asserting success.
    pub async fn import(&self, users: &[&str]) {
        let r = self.admin.multiaccount_import(users).await.unwrap();
        assert_eq!(r.code(), 0, "{:?}", r.0);
    }

    /// A signed URL for `api` of [`APP`] as the admin.
    pub fn url(&self, api: &str) -> String {
        self.admin.url(api)
    }

    /// POSTs raw bytes with no Content-Type and returns the JSON body (asserting HTTP 200).
    pub async fn post_raw(&self, url: &str, body: impl Into<reqwest::Body>) -> serde_json::Value {
        let resp = self.http.post(url).body(body).send().await.unwrap();
        assert_eq!(resp.status(), 200, "HTTP status is always 200");
        resp.json().await.unwrap()
    }
}

// ---- additions for the endpoint tests -----------------------------------------------------------

pub const NICK: &str = "Tag_Profile_IM_Nick";
pub const IMAGE: &str = "Tag_Profile_IM_Image";
pub const GENDER: &str = "Tag_Profile_IM_Gender";
pub const LEVEL: &str = "Tag_Profile_IM_Level";
pub const LOCATION: &str = "Tag_Profile_IM_Location";
pub const HOBBY: &str = "Tag_Profile_Custom_Hobby";
pub const SCORE: &str = "Tag_Profile_Custom_Score";
pub const USER_ONLY: &str = "Tag_Profile_Custom_UserOnly";

pub const PORTRAIT_SET: &str = "v4/profile/portrait_set";
pub const PORTRAIT_GET: &str = "v4/profile/portrait_get";
pub const PORTRAIT_IMPORT: &str = "v4/profile/portrait_import";
pub const ACCOUNT_IMPORT: &str = "v4/im_open_login_svc/account_import";
pub const MULTIACCOUNT_IMPORT: &str = "v4/im_open_login_svc/multiaccount_import";
pub const ACCOUNT_DELETE: &str = "v4/im_open_login_svc/account_delete";
pub const ACCOUNT_CHECK: &str = "v4/im_open_login_svc/account_check";
pub const KICK: &str = "v4/im_open_login_svc/kick";

/// Every endpoint with a body it accepts once `alice` is imported; used by tests that must
/// reach all of them.
pub fn every_endpoint() -> Vec<(&'static str, Value)> {
    vec![
        (
            PORTRAIT_SET,
            json!({"From_Account": "alice", "ProfileItem": [{"Tag": NICK, "Value": "A"}]}),
        ),
        (
            PORTRAIT_GET,
            json!({"To_Account": ["alice"], "TagList": [NICK]}),
        ),
        (ACCOUNT_IMPORT, json!({"UserID": "alice"})),
        (
            PORTRAIT_IMPORT,
            json!({"AccountList": [{"UserID": "alice"}]}),
        ),
        (MULTIACCOUNT_IMPORT, json!({"Accounts": ["alice"]})),
        (ACCOUNT_CHECK, json!({"CheckItem": [{"UserID": "alice"}]})),
        (KICK, json!({"UserID": "alice"})),
        (
            ACCOUNT_DELETE,
            json!({"DeleteItem": [{"UserID": "nobody"}]}),
        ),
    ]
}

/// Whether `api` is a profile API (40xxx codes, `ErrorDisplay` in the envelope).
pub fn is_profile_api(api: &str) -> bool {
    api.starts_with("v4/profile/")
}

/// Current Unix time in seconds.
pub fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// A UserSig minted now, valid for an hour.
pub fn sig(sdkappid: u64, key: &str, identifier: &str) -> String {
    portrait_core::usersig::mint(sdkappid, key, identifier, now(), 3600)
}

/// A full REST query string for `identifier` of `sdkappid` with the given UserSig.
pub fn query(sdkappid: u64, identifier: &str, usersig: &str) -> String {
    format!(
        "sdkappid={sdkappid}&identifier={identifier}&usersig={usersig}&random=42&contenttype=json"
    )
}

/// Assertions on a response envelope.
pub trait Envelope {
    /// The whole JSON body.
    fn body(&self) -> &Value;

    /// Asserts success (`ActionStatus OK`, `ErrorCode 0`, empty `ErrorInfo`) and returns the body.
    #[track_caller]
    fn expect_ok(&self) -> &Value {
        let b = self.body();
        assert_eq!(b["ErrorCode"], 0, "expected success, got {b}");
        assert_eq!(b["ActionStatus"], "OK", "{b}");
        assert_eq!(b["ErrorInfo"], "", "{b}");
        b
    }

    /// Asserts a failure with `code` (`ActionStatus FAIL`, a non-empty `ErrorInfo`).
    #[track_caller]
    fn expect_code(&self, code: u64) -> &Value {
        let b = self.body();
        assert_eq!(b["ErrorCode"], code, "expected ErrorCode {code}, got {b}");
        assert_eq!(b["ActionStatus"], "FAIL", "{b}");
        assert!(
            b["ErrorInfo"].as_str().is_some_and(|s| !s.is_empty()),
            "a failure explains itself: {b}"
        );
        b
    }
}

impl Envelope for Value {
    fn body(&self) -> &Value {
        self
    }
}

impl Envelope for portrait_client::Reply {
    fn body(&self) -> &Value {
        &self.0
    }
}

impl TestApp {
    /// `base/api?query` (a raw query, for tests that need to control it).
    pub fn raw_url(&self, api: &str, query: &str) -> String {
        format!("{}/{}?{}", self.base, api, query)
    }

    /// POSTs `body` as `application/json` to a full URL and returns the JSON body (asserting
    /// HTTP 200 and a JSON `Content-Type`).
    pub async fn post_json(&self, url: &str, body: &Value) -> Value {
        let resp = self.http.post(url).json(body).send().await.unwrap();
        decode(resp).await
    }

    /// Sends `body` with `method` and optional `Content-Type` to a full URL; returns the JSON body
    /// (asserting HTTP 200 and a JSON `Content-Type`).
    pub async fn send(
        &self,
        method: reqwest::Method,
        url: &str,
        content_type: Option<&str>,
        body: impl Into<reqwest::Body>,
    ) -> Value {
        let mut req = self.http.request(method, url).body(body);
        if let Some(ct) = content_type {
            req = req.header(reqwest::header::CONTENT_TYPE, ct);
        }
        decode(req.send().await.unwrap()).await
    }

    /// Calls `api` of [`APP`] as the admin with a JSON body.
    pub async fn call(&self, api: &str, body: &Value) -> Value {
        self.admin.call(api, body).await.unwrap().0
    }

    /// `portrait_set` of [`APP`] with raw `{Tag, Value}` pairs.
    pub async fn set(&self, user: &str, items: &[(&str, Value)]) -> Value {
        self.admin.portrait_set(user, items).await.unwrap().0
    }

    /// `portrait_get` of one user of [`APP`]: asserts success and that the tags come back in
    /// request order, and returns `tag → value` for the tags that were returned.
    pub async fn profile(&self, user: &str, tags: &[&str]) -> BTreeMap<String, Value> {
        let r = self.admin.portrait_get(&[user], tags).await.unwrap();
        let b = r.expect_ok();
        let users = b["UserProfileItem"]
            .as_array()
            .unwrap_or_else(|| panic!("UserProfileItem: {b}"));
        assert_eq!(users.len(), 1, "{b}");
        assert_eq!(users[0]["To_Account"], user, "{b}");
        assert_eq!(users[0]["ResultCode"], 0, "{b}");
        let items = users[0]["ProfileItem"]
            .as_array()
            .unwrap_or_else(|| panic!("ProfileItem: {b}"));
        let got: Vec<&str> = items.iter().map(|i| i["Tag"].as_str().unwrap()).collect();
        let expected: Vec<&str> = tags.iter().copied().filter(|t| got.contains(t)).collect();
        assert_eq!(got, expected, "tags come back in request order: {b}");
        items
            .iter()
            .map(|i| (i["Tag"].as_str().unwrap().to_owned(), i["Value"].clone()))
            .collect()
    }

    /// The value of one tag of `user` in [`APP`] (`None` when omitted).
    pub async fn value(&self, user: &str, tag: &str) -> Option<Value> {
        self.profile(user, &[tag]).await.remove(tag)
    }

    /// `account_check` statuses of `users` in [`APP`], in request order.
    pub async fn statuses(&self, users: &[&str]) -> Vec<String> {
        let r = self.admin.account_check(users).await.unwrap();
        let b = r.expect_ok();
        let items = b["ResultItem"]
            .as_array()
            .unwrap_or_else(|| panic!("ResultItem: {b}"));
        let ids: Vec<&str> = items
            .iter()
            .map(|i| i["UserID"].as_str().unwrap())
            .collect();
        assert_eq!(ids, users, "one item per requested user, in order: {b}");
        items
            .iter()
            .map(|i| i["AccountStatus"].as_str().unwrap().to_owned())
            .collect()
    }
}

async fn decode(resp: reqwest::Response) -> Value {
    assert_eq!(resp.status(), 200, "HTTP status is always 200");
    let ct = resp
        .headers()
        .get(reqwest::header::CONTENT_TYPE)
        .map(|v| v.to_str().unwrap().to_owned());
    let text = resp.text().await.unwrap();
    assert_eq!(ct.as_deref(), Some("application/json"), "body: {text}");
    let v: Value = serde_json::from_str(&text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"));
    assert!(
        v.get("ErrorCode").is_some() && v.get("ActionStatus").is_some(),
        "not an envelope: {text}"
    );
    v
}

/// Sets `user`'s nick in [`APP`] `n` times (`w0`, `w1`, …) straight through `store`, many writes
/// at once so that they are committed in groups: the quick way to give one account a long
/// history. Returns the nicks of all the account's sets in version order (the order a webhook
/// must send them in).
pub async fn set_nicks_in_store(store: &Arc<dyn Store>, user: &str, n: usize) -> Vec<String> {
    use portrait_core::schema::StandardTag;
    use portrait_core::{Identifier, ProfileValue, Tag};
    let id = Identifier::parse(user).unwrap();
    let mut writers = tokio::task::JoinSet::new();
    for i in 0..n {
        let (store, id) = (store.clone(), id.clone());
        writers.spawn(async move {
            let nick = ProfileValue::Str(format!("w{i}"));
            let items = [(Tag::Standard(StandardTag::Nick), nick)];
            store.set_profile(APP, &id, &items, "admin".into()).await
        });
        while writers.len() >= 64 {
            writers.join_next().await.unwrap().unwrap().unwrap();
        }
    }
    while let Some(done) = writers.join_next().await {
        done.unwrap().unwrap();
    }
    let log = store.changes_since(APP, 0, usize::MAX).await.unwrap();
    log.into_iter()
        .filter(|c| c.user == user && c.kind == portrait_store::ChangeKind::Set)
        .map(|c| match &c.items[0].1 {
            portrait_core::ProfileValue::Str(s) => s.clone(),
            other => panic!("a nick: {other:?}"),
        })
        .collect()
}
