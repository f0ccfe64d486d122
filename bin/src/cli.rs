//! The command line: `tickcast [FLAGS]` serves, `tickcast check-config`
//! validates and prints the effective configuration.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use crate::config::{self, ConfigError, Loaded, LogFormat, Overrides};

/// tickcast: real-time event fan-out server.
///
/// Producers publish TickStock events over HTTP (or a broker); tickcast
/// matches each one against every client's subscriptions and delivers it
/// over WebSocket or Server-Sent Events.
///
/// Configuration layers, lowest first: defaults, the TOML file (--config),
/// TICKCAST_* environment variables (nested keys joined by `__`, e.g.
/// TICKCAST_DELIVERY__BATCH_WINDOW_MS=0), then these flags. Log level:
/// RUST_LOG (default `info`). Every key is documented in
/// docs/operations.md.
#[derive(Debug, Parser)]
#[command(name = "tickcast", version, about, long_about)]
pub struct Cli {
    /// Configuration sources, shared by every subcommand.
    #[command(flatten)]
    pub config: ConfigArgs,
    /// What to do; serve when absent.
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Validate the configuration and print it, as TOML, with every default
    /// filled in; exits non-zero with the errors when it is invalid.
    CheckConfig {
        /// Print the JWT secret and the API key instead of `<redacted>`.
        #[arg(long)]
        show_secrets: bool,
    },
    /// Serve with a built-in generator of TickStock pattern detections (the
    /// sample fixtures' mix), so the demo page at `http://<listen>/` shows
    /// events streaming without any producer. Publishes straight to this
    /// node's hub.
    Demo {
        /// Pattern detections per second.
        #[arg(long, default_value_t = 20.0, value_name = "PER_S")]
        rate: f64,
        /// Seed of the generated events.
        #[arg(long, default_value_t = 1)]
        seed: u64,
    },
}

/// Where the configuration comes from, and the keys that have a flag.
#[derive(Debug, Clone, Default, Args)]
pub struct ConfigArgs {
    /// TOML configuration file; must exist when given.
    #[arg(short = 'c', long, value_name = "FILE", global = true)]
    pub config: Option<PathBuf>,
    /// Address to listen on (key `listen`; default 127.0.0.1:8080).
    #[arg(long, value_name = "ADDR", global = true)]
    pub listen: Option<String>,
    /// Name of this node (key `node_id`; default: the hostname).
    #[arg(long, value_name = "NAME", global = true)]
    pub node_id: Option<String>,
    /// Log line format (key `log_format`; default text).
    #[arg(long, value_enum, value_name = "FORMAT", global = true)]
    pub log_format: Option<LogFormat>,
}

impl ConfigArgs {
    /// The flags as the top configuration layer.
    pub fn overrides(&self) -> Overrides {
        Overrides {
            listen: self.listen.clone(),
            node_id: self.node_id.clone(),
            log_format: self.log_format,
        }
    }

    /// Loads and validates the configuration from the file, this process's
    /// environment and these flags.
    pub fn load(&self) -> Result<Loaded, ConfigError> {
        config::load(
            self.config.as_deref(),
            std::env::vars_os(),
            self.overrides(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn the_cli_is_well_formed() {
        Cli::command().debug_assert();
    }

    #[test]
    fn flags_work_before_and_after_the_subcommand() {
        let cli = Cli::try_parse_from([
            "tickcast",
            "--listen",
            "127.0.0.1:1",
            "check-config",
            "--config",
            "x.toml",
            "--log-format",
            "json",
        ])
        .unwrap();
        assert!(matches!(
            cli.command,
            Some(Command::CheckConfig {
                show_secrets: false
            })
        ));
        assert_eq!(cli.config.listen.as_deref(), Some("127.0.0.1:1"));
        assert_eq!(cli.config.config, Some(PathBuf::from("x.toml")));
        assert_eq!(cli.config.log_format, Some(LogFormat::Json));
    }
}
