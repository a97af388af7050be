//! The zero-configuration development app: when no app is configured, the first start creates one
//! (random SDKAppID in the vendor's 14xxxxxxxx range, admin `administrator`, random 64-hex-digit
//! key), saves it to `<data_dir>/dev-app.toml` (mode 0600), and later starts reuse it.

use std::path::Path;

use anyhow::Context;
use rand::Rng;
use secrecy::SecretString;

use crate::settings::{AppConfig, RateLimitConfig};

/// File name of the persisted development app, inside the data directory.
pub const FILE: &str = "dev-app.toml";

/// Loads the development app from `data_dir`, creating it if missing. Returns the app and whether
/// it was created now.
///
/// # Errors
/// I/O errors, or a corrupt file.
pub fn load_or_create(data_dir: &Path) -> anyhow::Result<(AppConfig, bool)> {
    let path = data_dir.join(FILE);
    if path.exists() {
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("reading {}", path.display()))?;
        let app: AppConfig =
            toml::from_str(&text).with_context(|| format!("parsing {}", path.display()))?;
        return Ok((app, false));
    }
    let mut rng = rand::rng();
    let app = AppConfig {
        sdkappid: rng.random_range(1_400_000_000..1_500_000_000),
        key: SecretString::from(random_key()),
        admins: vec!["administrator".into()],
        custom_fields: Vec::new(),
        sensitive_words: Vec::new(),
        rate_limits: RateLimitConfig::default(),
        client_rate_limits: Default::default(),
        usersig_clock_skew_secs: crate::settings::default_clock_skew(),
        webhook: None,
        disabled: false,
        previous_key: None,
        shard: None,
        moving: None,
    };
    std::fs::create_dir_all(data_dir)
        .with_context(|| format!("creating {}", data_dir.display()))?;
    let text = format!(
        "# Development app created by the first start of portrait with no [[apps]] configured.\n\
         # Configure your own apps in portrait.toml to stop using it.\n{}",
        toml::to_string(&app).context("serializing the development app")?
    );
    let tmp = data_dir.join(format!("{FILE}.tmp"));
    write_private(&tmp, text.as_bytes()).with_context(|| format!("writing {}", tmp.display()))?;
    std::fs::rename(&tmp, &path).with_context(|| format!("writing {}", path.display()))?;
    Ok((app, true))
}

/// 64 random hex digits: a new app's secret key, or an operator token.
pub fn random_key() -> String {
    let mut rng = rand::rng();
    (0..32)
        .map(|_| format!("{:02x}", rng.random::<u8>()))
        .collect()
}

/// Writes `bytes` to `path`, readable only by its owner (mode 0600 on Unix), and syncs it.
///
/// # Errors
/// I/O errors.
#[cfg(unix)]
pub fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)?;
    f.write_all(bytes)?;
    f.sync_all()
}

/// Writes `bytes` to `path`.
///
/// # Errors
/// I/O errors.
#[cfg(not(unix))]
pub fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    std::fs::write(path, bytes)
}
