//! The `portrait` binary: parses the command line, initialises logging and calls library code.
//!
//! * `portrait serve [--listen ADDR] [--data-dir DIR] [--config FILE]` — run a node;
//! * `portrait usersig --sdkappid N --key K --user U [--expire S]` — mint a UserSig;
//! * `portrait config example` — print the commented example configuration;
//! * `portrait openapi` — print the OpenAPI document of the HTTP APIs (`docs/openapi.json`);
//! * `portrait export --store URL [--app ID]… > dump.jsonl` — write a store's data as a dump;
//! * `portrait import --store URL < dump.jsonl` — restore a dump into a store;
//! * `portrait migrate --from URL --to URL [--app ID]…` — copy a store into another one;
//! * `portrait app|field|account …` — the operator API from a shell (`ops.rs`).
//!
//! The last three move data with every version preserved (`portrait_store::dump`), e.g. from the
//! embedded SQLite store to PostgreSQL. Stop the nodes using the source store first.

use std::path::PathBuf;

mod ops;

/// mimalloc: the request path allocates many small, short-lived objects on two worker threads,
/// where glibc's malloc spends measurable time in arena locks (see BENCHMARKS.md).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use anyhow::Context;
use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "portrait",
    version,
    about = "Self-hosted user-profile service, wire-compatible with Tencent Cloud IM"
)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Run a Portrait node (embedded SQLite store by default).
    Serve {
        /// Address to listen on (overrides server.listen).
        #[arg(long)]
        listen: Option<std::net::SocketAddr>,
        /// Data directory (overrides server.data_dir).
        #[arg(long)]
        data_dir: Option<PathBuf>,
        /// Configuration file (default: ./portrait.toml if present).
        #[arg(long, short)]
        config: Option<PathBuf>,
    },
    /// Mint a TLSSigAPIv2 UserSig, as Tencent's official generators do.
    Usersig {
        /// The app's SDKAppID.
        #[arg(long)]
        sdkappid: u64,
        /// The app's secret key (or set PORTRAIT_SIG_KEY).
        #[arg(long, env = "PORTRAIT_SIG_KEY", hide_env_values = true)]
        key: String,
        /// The UserID (identifier) to sign for.
        #[arg(long)]
        user: String,
        /// Validity in seconds (default 180 days).
        #[arg(long, default_value_t = portrait_core::usersig::DEFAULT_EXPIRE_SECS)]
        expire: u64,
    },
    /// Write a store's data to stdout as a JSON Lines dump, versions preserved.
    Export {
        /// The store: sqlite://PATH or postgres://USER@HOST/DB (the password can come from
        /// PGPASSWORD or ~/.pgpass rather than the command line).
        #[arg(long)]
        store: String,
        /// Export only this app (repeatable; default: every app).
        #[arg(long = "app", value_name = "SDKAPPID")]
        apps: Vec<u64>,
    },
    /// Restore a dump written by `export` (read from stdin) into a store that holds none of its
    /// apps; the whole dump is checked before anything is written.
    Import {
        /// The store: sqlite://PATH or postgres://USER@HOST/DB.
        #[arg(long)]
        store: String,
    },
    /// Copy every app (or the --app ones) from one store to another that holds none of them,
    /// versions preserved, and verify the copy.
    Migrate {
        /// The store to copy from, e.g. sqlite://portrait-data/portrait.db.
        #[arg(long)]
        from: String,
        /// The store to copy into, e.g. postgres://portrait@db.internal/portrait.
        #[arg(long)]
        to: String,
        /// Copy only this app (repeatable; default: every app).
        #[arg(long = "app", value_name = "SDKAPPID")]
        apps: Vec<u64>,
    },
    /// Configuration helpers.
    Config {
        #[command(subcommand)]
        cmd: ConfigCmd,
    },
    /// Print the OpenAPI 3.1 document of every HTTP API (also served at /openapi.json).
    Openapi,
    /// Manage apps through a server's operator API: create, list, show, update, keys, webhook.
    App {
        #[command(flatten)]
        conn: ops::Conn,
        #[command(subcommand)]
        cmd: ops::AppCmd,
    },
    /// Manage an app's custom fields through a server's operator API.
    Field {
        #[command(flatten)]
        conn: ops::Conn,
        #[command(subcommand)]
        cmd: ops::FieldCmd,
    },
    /// Look up, kick and delete an app's accounts through a server's operator API.
    Account {
        #[command(flatten)]
        conn: ops::Conn,
        #[command(subcommand)]
        cmd: ops::AccountCmd,
    },
}

#[derive(Subcommand)]
enum ConfigCmd {
    /// Print the commented example configuration (portrait.example.toml).
    Example,
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.cmd {
        Cmd::Serve {
            listen,
            data_dir,
            config,
        } => {
            let mut settings = portrait_server::Settings::load(config.as_deref())?;
            if let Some(l) = listen {
                settings.server.listen = l;
            }
            if let Some(d) = data_dir {
                settings.server.data_dir = d;
            }
            portrait_server::telemetry::init_format(&settings.log.filter, settings.log.format);
            let rt = tokio::runtime::Runtime::new().context("starting the tokio runtime")?;
            rt.block_on(async move { portrait_server::run(settings, shutdown_signal()?).await })
        }
        Cmd::Openapi => {
            use std::io::Write;
            std::io::stdout().write_all(portrait_server::openapi::bytes())?;
            Ok(())
        }
        Cmd::Usersig {
            sdkappid,
            key,
            user,
            expire,
        } => {
            portrait_core::Identifier::parse(&user).context("--user")?;
            let now = portrait_server::auth::now_secs();
            println!(
                "{}",
                portrait_core::usersig::mint(sdkappid, &key, &user, now, expire)
            );
            Ok(())
        }
        Cmd::Export { store, apps } => block_on(async move {
            let store = open_source(&store).await?;
            let mut out = std::io::BufWriter::new(std::io::stdout().lock());
            let result = portrait_store::dump::export(&*store, only(&apps), &mut out).await;
            drop(out);
            store.close().await;
            let summary = result.context("exporting")?;
            eprintln!("portrait: exported {}", describe(&summary));
            Ok(())
        }),
        Cmd::Import { store } => block_on(async move {
            let store = open_store(&store).await?;
            let mut input = std::io::stdin().lock();
            let result = portrait_store::dump::import(&*store, &mut input).await;
            store.close().await;
            let summary = result.context("importing")?;
            eprintln!("portrait: imported {}", describe(&summary));
            Ok(())
        }),
        Cmd::Migrate { from, to, apps } => block_on(async move {
            let source = open_source(&from).await?;
            let target = match open_store(&to).await {
                Ok(target) => target,
                Err(e) => {
                    source.close().await;
                    return Err(e);
                }
            };
            let result = portrait_store::dump::migrate(&*source, &*target, only(&apps)).await;
            source.close().await;
            target.close().await;
            let summary = result.with_context(|| {
                format!(
                    "migrating {} to {}",
                    portrait_store::redact_url(&from),
                    portrait_store::redact_url(&to)
                )
            })?;
            eprintln!(
                "portrait: copied and verified {} from {} to {}",
                describe(&summary),
                portrait_store::redact_url(&from),
                portrait_store::redact_url(&to)
            );
            Ok(())
        }),
        Cmd::App { conn, cmd } => operator(ops::app(&conn, cmd)),
        Cmd::Field { conn, cmd } => operator(ops::field(&conn, cmd)),
        Cmd::Account { conn, cmd } => operator(ops::account(&conn, cmd)),
        Cmd::Config {
            cmd: ConfigCmd::Example,
        } => {
            print!("{}", portrait_server::settings::EXAMPLE);
            Ok(())
        }
    }
}

/// Runs `f` to completion on a new tokio runtime.
fn block_on(f: impl std::future::Future<Output = anyhow::Result<()>>) -> anyhow::Result<()> {
    tokio::runtime::Runtime::new()
        .context("starting the tokio runtime")?
        .block_on(f)
}

/// Runs an operator command (`ops`). A failure is one line on stderr — for a refusal the
/// API's HTTP status, code and message (`portrait: HTTP 404 app_not_found: no app …`) — and exit
/// code 1, without the backtrace `main`'s error would print.
fn operator(f: impl std::future::Future<Output = anyhow::Result<()>>) -> anyhow::Result<()> {
    if let Err(e) = block_on(f) {
        eprintln!("portrait: {e:#}");
        std::process::exit(1);
    }
    Ok(())
}

/// Opens a store by URL; the error names the URL without its password.
async fn open_store(url: &str) -> anyhow::Result<std::sync::Arc<dyn portrait_store::Store>> {
    portrait_store::open(url)
        .await
        .with_context(|| format!("opening store {}", portrait_store::redact_url(url)))
}

/// Opens a store to read from: unlike [`open_store`], a SQLite file that does not exist is an
/// error (a mistyped path would otherwise be created, and read as an empty store).
async fn open_source(url: &str) -> anyhow::Result<std::sync::Arc<dyn portrait_store::Store>> {
    let sqlite_path = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"));
    if let Some(path) = sqlite_path {
        anyhow::ensure!(
            std::path::Path::new(path).is_file(),
            "opening store {url}: no such file"
        );
    }
    open_store(url).await
}

/// `--app` values: `None` (every app) when none were given.
fn only(apps: &[u64]) -> Option<&[u64]> {
    (!apps.is_empty()).then_some(apps)
}

/// "2 apps (10 accounts, 25 changes, 1 cursor)".
fn describe(s: &portrait_store::dump::Summary) -> String {
    let plural = |n: u64, one: &str, many: &str| format!("{n} {}", if n == 1 { one } else { many });
    format!(
        "{} ({}, {}, {})",
        plural(s.apps, "app", "apps"),
        plural(s.accounts, "account", "accounts"),
        plural(s.changes, "change", "changes"),
        plural(s.cursors, "cursor", "cursors")
    )
}

/// Registers SIGINT and SIGTERM handlers now (before the server announces itself, so no signal
/// is lost to the default handler) and returns a future that resolves on either.
fn shutdown_signal() -> anyhow::Result<impl std::future::Future<Output = ()>> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        let mut int = signal(SignalKind::interrupt()).context("installing the SIGINT handler")?;
        let mut term = signal(SignalKind::terminate()).context("installing the SIGTERM handler")?;
        Ok(async move {
            tokio::select! { _ = int.recv() => {}, _ = term.recv() => {} }
            tracing::info!("shutdown signal received, draining");
        })
    }
    #[cfg(not(unix))]
    {
        Ok(async move {
            let _ = tokio::signal::ctrl_c().await;
            tracing::info!("shutdown signal received, draining");
        })
    }
}
