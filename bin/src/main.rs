//! The `tickcast` binary: parse the command line, load the configuration,
//! then serve or check it. Everything else lives in the library.

use std::process::ExitCode;

use anyhow::Context;
use clap::Parser;
use tickcast::cli::{Cli, Command};
use tickcast::config::{ConfigWarning, Loaded};
use tickcast::http::auth::PublishAccess;
use tickcast::{logging, shutdown, Config};

/// The server allocates and frees small buffers on every worker thread
/// (frames, decoded events, broker replies); see the `mimalloc` feature.
#[cfg(feature = "mimalloc")]
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[cfg(all(feature = "mimalloc", target_os = "linux"))]
mod allocator;

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
    let Loaded { config, warnings } = cli.config.load()?;
    match cli.command {
        Some(Command::CheckConfig { show_secrets }) => {
            for warning in &warnings {
                eprintln!("tickcast: warning: {warning}");
            }
            let shown = if show_secrets {
                config.clone()
            } else {
                config.redacted()
            };
            // Who may publish follows from several keys; say it outright.
            println!(
                "# POST /api/publish: {}",
                PublishAccess::of(&config).describe()
            );
            print!(
                "{}",
                shown.to_toml().context("cannot print the configuration")?
            );
            Ok(())
        }
        Some(Command::Demo { rate, seed }) => {
            anyhow::ensure!(
                rate.is_finite() && rate > 0.0,
                "--rate must be a positive number of events per second"
            );
            anyhow::ensure!(
                config.hub_config().offsets == tickcast_core::hub::OffsetMode::Node,
                "tickcast demo publishes straight to this node's hub, but in Redis Streams \
                 mode every offset comes from the stream: run the demo without \
                 ingest.redis.mode = \"streams\""
            );
            serve(config, &warnings, Some((rate, seed)))
        }
        None => serve(config, &warnings, None),
    }
}

/// Serves until a signal; with `demo = Some((rate, seed))`, also runs the
/// demo generator. `warnings` are logged first.
fn serve(
    config: Config,
    warnings: &[ConfigWarning],
    demo: Option<(f64, u64)>,
) -> anyhow::Result<()> {
    logging::init(config.log_format)?;
    for warning in warnings {
        warning.log();
    }
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
        if let Some((rate, seed)) = demo {
            tracing::info!(
                rate,
                "demo: generating pattern detections; open http://{}/",
                server.addr()
            );
            tokio::spawn(tickcast::demo::generate(server.hub().clone(), rate, seed));
        }
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
