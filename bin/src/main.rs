//! The `tickcast` binary: parse the command line, load the configuration,
//! then serve or check it. Everything else lives in the library.

use std::process::ExitCode;

use anyhow::Context;
use clap::Parser;
use tickcast::cli::{Cli, Command};
use tickcast::{logging, shutdown, Config};

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("tickcast: {error:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<()> {
    let config = cli.config.load()?;
    match cli.command {
        Some(Command::CheckConfig { show_secrets }) => {
            let shown = if show_secrets {
                config
            } else {
                config.redacted()
            };
            print!(
                "{}",
                shown.to_toml().context("cannot print the configuration")?
            );
            Ok(())
        }
        None => serve(config),
    }
}

fn serve(config: Config) -> anyhow::Result<()> {
    logging::init(config.log_format)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the Tokio runtime")?;
    runtime.block_on(async {
        // Listen for signals before listening for clients.
        let first = shutdown::signal();
        let second = shutdown::signal();
        let stop = async move {
            let signal = first.await;
            tracing::info!("{signal} received");
        };
        let server = tickcast::serve(config, stop).await?;
        tokio::spawn(exit_on_second_signal(second));
        server.wait().await?;
        Ok(())
    })
}

/// A second SIGINT/SIGTERM during the drain exits at once. `first` is a
/// listener of its own for the signal that starts the shutdown.
async fn exit_on_second_signal(first: impl std::future::Future<Output = &'static str>) {
    first.await;
    shutdown::signal().await;
    tracing::warn!("second signal: exiting without waiting for the drain");
    std::process::exit(130);
}
