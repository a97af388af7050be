//! `[operator]`: the operator API's token (given, or generated into a file on first start) and
//! how often nodes read app records without a NATS wake-up.

use std::path::PathBuf;

use anyhow::Context;
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};

/// `[operator]`: the operator API (`/admin/v1`, docs/operator-api.md). Off unless `token` or
/// `token_file` is set; then every `/admin/v1/*` call needs `Authorization: Bearer <token>`.
#[derive(Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct OperatorSettings {
    /// The operator token (env `PORTRAIT_OPERATOR__TOKEN`); never logged.
    #[serde(serialize_with = "expose_opt", skip_serializing_if = "Option::is_none")]
    pub token: Option<SecretString>,
    /// A file holding the token. When set and missing, 64 random hex digits are written there
    /// (mode 0600) on start and its path (never the token) is logged.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token_file: Option<PathBuf>,
    /// How often every node reads the app records of the store even without a NATS wake-up, ms.
    pub poll_ms: u64,
}

impl Default for OperatorSettings {
    fn default() -> Self {
        Self {
            token: None,
            token_file: None,
            poll_ms: 2_000,
        }
    }
}

impl std::fmt::Debug for OperatorSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OperatorSettings")
            .field("token", &self.token.as_ref().map(|_| "[redacted]"))
            .field("token_file", &self.token_file)
            .field("poll_ms", &self.poll_ms)
            .finish()
    }
}

impl OperatorSettings {
    /// The operator token: `token`, else the content of `token_file` (created with a random
    /// token when missing); `None` when neither is set (the operator API is off).
    ///
    /// # Errors
    /// The token file cannot be read or created, or holds an empty token.
    pub fn resolve_token(&self) -> anyhow::Result<Option<SecretString>> {
        if let Some(t) = &self.token {
            anyhow::ensure!(!t.expose_secret().is_empty(), "operator: token is empty");
            return Ok(Some(t.clone()));
        }
        let Some(path) = &self.token_file else {
            return Ok(None);
        };
        if !path.exists() {
            if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                std::fs::create_dir_all(dir)
                    .with_context(|| format!("operator: creating {}", dir.display()))?;
            }
            let token = crate::devapp::random_key();
            crate::devapp::write_private(path, format!("{token}\n").as_bytes())
                .with_context(|| format!("operator: creating token_file {}", path.display()))?;
            tracing::info!(path = %path.display(), "operator: generated an operator token; read it from this file");
        }
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("operator: reading token_file {}", path.display()))?;
        let token = text.trim();
        anyhow::ensure!(
            !token.is_empty(),
            "operator: token_file {} is empty",
            path.display()
        );
        Ok(Some(SecretString::from(token.to_owned())))
    }
}

fn expose_opt<S: serde::Serializer>(s: &Option<SecretString>, ser: S) -> Result<S::Ok, S::Error> {
    match s {
        Some(s) => ser.serialize_str(s.expose_secret()),
        None => ser.serialize_none(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_operator_api_is_off_by_default_and_a_token_file_is_created_once_privately() {
        assert!(OperatorSettings::default()
            .resolve_token()
            .unwrap()
            .is_none());
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/operator-token");
        let settings = OperatorSettings {
            token_file: Some(path.clone()),
            ..OperatorSettings::default()
        };
        let first = settings.resolve_token().unwrap().unwrap();
        let token = first.expose_secret().to_owned();
        assert_eq!(token.len(), 64);
        assert!(token.bytes().all(|b| b.is_ascii_hexdigit()));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        let again = settings.resolve_token().unwrap().unwrap();
        assert_eq!(again.expose_secret(), token, "an existing file is reused");
        assert!(!format!("{settings:?}").contains(&token));
        let given = OperatorSettings {
            token: Some(SecretString::from("given")),
            token_file: Some(path),
            ..OperatorSettings::default()
        };
        assert_eq!(
            given.resolve_token().unwrap().unwrap().expose_secret(),
            "given"
        );
        assert!(!format!("{given:?}").contains("given"));
    }
}
