//! Logging: `tracing` with an `EnvFilter` (`RUST_LOG` overrides the configured filter), written to
//! standard output in the configured [`LogFormat`]. Request spans are made by the
//! [`crate::edge`]; UserSigs and profile values are never logged above `debug`.

use std::io::IsTerminal;

use serde::{Deserialize, Serialize};
use tracing_subscriber::EnvFilter;

/// How log lines are written (`[log] format`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Text, in colour only when standard output is a terminal and `NO_COLOR` is unset: a file,
    /// a pipe or the journal gets plain text.
    #[default]
    Auto,
    /// Plain text, never colours.
    Text,
    /// One JSON object per line: `timestamp`, `level`, `message`, the event's fields, `target`,
    /// and `span` / `spans` (the request span's method, path and request id).
    Json,
}

/// Installs the global subscriber with the default format ([`LogFormat::Auto`]); see
/// [`init_format`].
pub fn init(filter: &str) {
    init_format(filter, LogFormat::Auto);
}

/// Installs the global subscriber (once per process; later calls are no-ops).
pub fn init_format(filter: &str, format: LogFormat) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(filter));
    let builder = tracing_subscriber::fmt().with_env_filter(filter);
    let _ = match format {
        LogFormat::Auto => builder
            .with_target(false)
            .with_ansi(colour_wanted())
            .try_init(),
        LogFormat::Text => builder.with_target(false).with_ansi(false).try_init(),
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .with_span_list(true)
            .try_init(),
    };
}

/// Colours for [`LogFormat::Auto`]: standard output is a terminal and `NO_COLOR` is unset or
/// empty (<https://no-color.org>).
fn colour_wanted() -> bool {
    let no_color = matches!(std::env::var_os("NO_COLOR"), Some(v) if !v.is_empty());
    std::io::stdout().is_terminal() && !no_color
}
