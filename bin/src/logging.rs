//! Log output: text or JSON lines (`log_format`), level from `RUST_LOG`
//! (default `info`).

use std::io::IsTerminal;

use tracing_subscriber::filter::LevelFilter;
use tracing_subscriber::EnvFilter;

use crate::config::LogFormat;

/// The global logger could not be installed (one already is).
#[derive(Debug, thiserror::Error)]
#[error("cannot install the logger: {0}")]
pub struct LoggingError(String);

/// Installs the global `tracing` subscriber.
pub fn init(format: LogFormat) -> Result<(), LoggingError> {
    let filter = EnvFilter::builder()
        .with_default_directive(LevelFilter::INFO.into())
        .from_env_lossy();
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stdout().is_terminal());
    let installed = match format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
    };
    installed.map_err(|e| LoggingError(e.to_string()))
}
