//! Portrait's HTTP server: a Tencent-Cloud-IM-compatible REST API (`/v4/profile/*`,
//! `/v4/im_open_login_svc/*`) over a [`portrait_store::Store`].
//!
//! Layout:
//! * [`api`]: routes, one module per vendor endpoint group;
//! * [`accounts`]: kick and delete, shared by the REST and the operator APIs;
//! * [`auth`]: URL query + UserSig → authenticated admin;
//! * [`error`]: `ApiError` and the only mapping to vendor codes and envelopes;
//! * [`settings`]: layered configuration; [`devapp`]: the zero-config development app;
//! * [`profiles`]: profile reads/writes shared by the admin and client APIs;
//! * [`ids`]: the UserID lists of multi-account requests, parsed per entry;
//! * [`push`]: change-log feeds fanning changes out to WebSocket sessions (`api::v1::ws`);
//! * [`coherence`]: read caches of nodes sharing PostgreSQL kept coherent over NATS;
//! * [`webhook`]: `Profile.CallbackPortraitSet` delivery from the change log;
//! * [`metrics`]: the Prometheus recorder behind `/metrics`;
//! * [`openapi`]: the OpenAPI document behind `/openapi.json`;
//! * [`operator`]: the operator API (`/admin/v1`: apps, custom fields, accounts);
//! * [`live`]: the apps served now, replaced at run time by the operator API;
//! * [`tenant`], [`ratelimit`], [`state`]: per-app runtime state;
//! * [`cluster`]: rate limits and connection caps counted across nodes (Redis);
//! * [`lease`]: the holder names of this node's store leases;
//! * [`conn`]: what every connection gets (cap, header/keep-alive/write timeouts, peer address);
//! * [`client_ip`]: the caller's address for the change log, through trusted proxies;
//! * [`edge`]: what every request gets (request id, span, CORS, body, deadline), around the router;
//! * [`telemetry`]: the log subscriber;
//! * [`sync`]: the one lock-poison policy (recover) for every lock of the server.
//!
//! Entry points: [`serve`] (a bound listener + shutdown future; used by tests) and [`run`] (the
//! whole node from settings; used by the binary).

use std::future::Future;
use std::time::Duration;

use anyhow::Context;
use secrecy::ExposeSecret;
use tokio::net::TcpListener;

pub mod accounts;
pub mod api;
pub mod auth;
pub mod client_ip;
pub mod cluster;
pub mod coherence;
pub mod conn;
pub mod console;
pub mod devapp;
pub mod edge;
pub mod error;
pub mod ids;
pub mod lease;
pub mod live;
pub mod metrics;
pub mod openapi;
pub mod operator;
pub mod profiles;
pub mod push;
pub mod ratelimit;
pub mod retention;
pub mod settings;
pub mod state;
pub mod sync;
pub mod telemetry;
pub mod tenant;
pub mod webhook;

pub use settings::Settings;
pub use state::AppState;

/// The full service of a node: the router for `state` inside the [`edge`].
pub fn app(state: AppState, request_timeout: Duration) -> edge::Edge<axum::Router> {
    let max_body = state.max_body_bytes();
    edge::wrap(
        api::router(&state).with_state(state),
        request_timeout,
        max_body,
    )
}

/// Serves the API on `listener` through the connection layer ([`conn`]) with the limits of
/// `server` until `shutdown` resolves, then drains in-flight requests.
///
/// # Errors
/// Listener failures.
pub fn serve(
    listener: TcpListener,
    state: AppState,
    server: &settings::ServerSettings,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> impl Future<Output = anyhow::Result<()>> + Send + 'static {
    let request_timeout = Duration::from_millis(server.request_timeout_ms);
    let limits = conn::ConnLimits::from_settings(server);
    async move {
        tracing::debug!(?limits, "connection limits");
        let hub = state.hub().clone();
        let stop = hub.stopping();
        // Every node follows the app records other nodes write (crate::live).
        hub.spawn(live::apply::run_sync(state.clone(), stop.clone()));
        // WebSocket sessions are told to close (1001) as soon as shutdown begins: upgraded
        // connections are not drained by axum's graceful shutdown.
        let shutdown = async move {
            shutdown.await;
            stop.cancel();
        };
        let listener = conn::Guarded::new(listener, limits);
        axum::serve(listener, conn::MakeConn::new(app(state, request_timeout)))
            .with_graceful_shutdown(shutdown)
            .await?;
        hub.shutdown(Duration::from_secs(5)).await;
        Ok(())
    }
}

/// Runs a node: opens the store, creates the development app if no app is configured, binds,
/// prints how to reach it, and serves until `shutdown` resolves; then closes the store.
///
/// # Errors
/// Configuration, store or listener failures, with context.
pub async fn run(
    mut settings: Settings,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let fds = conn::raise_fd_limit();
    tracing::debug!(open_file_limit = fds, "raised the open-file limit");
    let dev = if settings.apps.is_empty() {
        let (app, created) = devapp::load_or_create(&settings.server.data_dir)?;
        settings.apps.push(app);
        Some(created)
    } else {
        None
    };
    std::fs::create_dir_all(&settings.server.data_dir)
        .with_context(|| format!("creating data dir {}", settings.server.data_dir.display()))?;
    let url = settings.store_url();
    let (backend, shards) = open_store(&settings).await?;
    let mut store = metrics::measured(backend);
    let mut coherence = None;
    let mut bystander = None;
    let shared = !url.starts_with("sqlite:");
    if settings.store.cache_entries > 0 {
        use portrait_store::cache::CachedStore;
        let entries = settings.store.cache_entries;
        if shared {
            // A database other nodes may write: a read first catches up with their changes,
            // asking the database unless NATS lets the node vouch for its cache (`coherence`).
            let cache = std::sync::Arc::new(CachedStore::shared(store, entries));
            coherence = coherence::Coherence::start(&settings, &cache).await?;
            if let Some(c) = &coherence {
                cache.set_coherence(c.clone());
            } else {
                // Without NATS the node still counts as a member, so that nodes with NATS
                // never trust their caches while it may write.
                let b = coherence::Bystander::start(&settings, cache.clone()).await?;
                cache.set_coherence(b.clone());
                bystander = Some(b);
            }
            store = cache;
        } else {
            store = std::sync::Arc::new(CachedStore::new(store, entries));
        }
    } else if shared {
        bystander = Some(coherence::Bystander::start(&settings, store.clone()).await?);
    }
    // The node's member id, with which it acknowledges holding an app's writes for a move.
    let node = match (&coherence, &bystander) {
        (Some(c), _) => Some(c.node().to_owned()),
        (None, Some(b)) => Some(b.node().to_owned()),
        (None, None) => None,
    };
    let state = AppState::from_settings_sharded(store.clone(), shards, &settings)
        .await?
        .with_node(node);
    let listener = TcpListener::bind(settings.server.listen)
        .await
        .with_context(|| format!("binding {}", settings.server.listen))?;
    let addr = listener.local_addr()?;
    tracing::info!(%addr, store = %portrait_store::redact_url(&url), apps = settings.apps.len(), "portrait listening");
    if let Some(created) = dev {
        print_dev_banner(&settings.apps[0], addr, created, &settings.server.data_dir);
    }
    // A stable line on stdout for people and scripts (the tests read the port from it).
    println!("portrait: listening on http://{addr}");
    serve(listener, state, &settings.server, shutdown).await?;
    if let Some(c) = coherence {
        c.shutdown(&*store).await;
    }
    if let Some(b) = bystander {
        b.shutdown(&*store).await;
    }
    store.close().await;
    tracing::info!("portrait stopped");
    Ok(())
}

/// The node's store: the one database of `[store] url`, or, with `[store] shards`, the
/// [`Sharded`](portrait_store::sharded::Sharded) store over it and the shards (returned twice:
/// as the store, and for placing and moving apps).
///
/// # Errors
/// A store that does not open, named without its password.
async fn open_store(
    settings: &Settings,
) -> anyhow::Result<(
    std::sync::Arc<dyn portrait_store::Store>,
    Option<std::sync::Arc<portrait_store::sharded::Sharded>>,
)> {
    let url = settings.store_url();
    let redacted = portrait_store::redact_url(&url);
    portrait_store::sqlite::allow_huge_pages(settings.store.huge_pages);
    if settings.store.shards.is_empty() {
        let store = portrait_store::open(&url)
            .await
            .with_context(|| format!("opening store {redacted}"))?;
        return Ok((store, None));
    }
    let sharded = portrait_store::sharded::Sharded::open(&url, &settings.store.shards)
        .await
        .with_context(|| format!("opening the shards (home: {redacted})"))?;
    let sharded = std::sync::Arc::new(sharded);
    tracing::info!(shards = ?sharded.names(), "store: apps spread over shards");
    Ok((sharded.clone(), Some(sharded)))
}

fn print_dev_banner(
    app: &settings::AppConfig,
    addr: std::net::SocketAddr,
    created: bool,
    data_dir: &std::path::Path,
) {
    let admin = &app.admins[0];
    let now = auth::now_secs();
    let sig =
        portrait_core::usersig::mint(app.sdkappid, app.key.expose_secret(), admin, now, 86_400);
    let verb = if created { "created" } else { "reusing" };
    println!(
        "\nportrait: no apps configured, {verb} the development app in {dir}/{file}\n\
         \x20 sdkappid   {id}\n\
         \x20 admin      {admin}\n\
         \x20 secret key {key}\n\
         \x20 a UserSig for {admin} (valid 24 h) — mint more with `portrait usersig --sdkappid {id} --key <key> --user <id>`:\n\
         \x20   {sig}\n\n\
         try it:\n\
         curl -s 'http://{addr}/v4/im_open_login_svc/account_import?sdkappid={id}&identifier={admin}&usersig={sig}&random=1&contenttype=json' -d '{{\"UserID\":\"alice\",\"Nick\":\"Alice\"}}'\n\
         curl -s 'http://{addr}/v4/profile/portrait_get?sdkappid={id}&identifier={admin}&usersig={sig}&random=2&contenttype=json' -d '{{\"To_Account\":[\"alice\"],\"TagList\":[\"Tag_Profile_IM_Nick\"]}}'\n",
        dir = data_dir.display(),
        file = devapp::FILE,
        id = app.sdkappid,
        key = app.key.expose_secret(),
    );
}
