//! The `portrait` binary: parses the command line, initialises logging and calls library code.
//!
//! * `portrait serve [--listen ADDR] [--data-dir DIR] [--config FILE]` — run a node;
//! * `portrait usersig --sdkappid N --key K --user U [--expire S]` — mint a UserSig;
//! * `portrait config example` — print the commented example configuration.

use std::path::PathBuf;

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
    /// Configuration helpers.
    Config {
        #[command(subcommand)]
        cmd: ConfigCmd,
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
            portrait_server::telemetry::init(&settings.log.filter);
            let rt = tokio::runtime::Runtime::new().context("starting the tokio runtime")?;
            rt.block_on(async move { portrait_server::run(settings, shutdown_signal()?).await })
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
        Cmd::Config {
            cmd: ConfigCmd::Example,
        } => {
            print!("{}", portrait_server::settings::EXAMPLE);
            Ok(())
        }
    }
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
