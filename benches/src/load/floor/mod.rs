//! `tickcast-load floor`: tickcast's server CPU per delivery as a multiple
//! of the physical floor's, measured in the same run.
//!
//! The same scenario runs, one after the other, against:
//!
//! 1. tickcast at `--server` (`--server-pid` for its CPU), as `tickcast-load`
//!    always does;
//! 2. the floor: a `tickcast-floor --variant plain` child process that
//!    writes each delivery with one `write` in a plain loop (one loop per
//!    core, each over its share of the connections);
//! 3. the tokio reference: `tickcast-floor --variant tasks`, one writer task
//!    per connection woken once per delivery.
//!
//! Same number of connections from the same clients, same filters and
//! events (seeded), same publish rate and request bursts, the same frames
//! (tickcast's encoder, sized as tickcast's, [`send`]) to the same
//! recipients ([`plan`]), every delivery checked by the clients; one
//! frame and one write per delivery, or with `--floor-frames request` one
//! per connection and request ([`Frames`]). Each
//! server's CPU (utime + stime of its process, /proc) from the first
//! publish to the last delivery, divided by the deliveries, is its cost
//! per delivery ([`report`]).
//!
//! # Layout
//!
//! - [`plan`]: who gets which frame of each event.
//! - [`send`]: the publish side: stamp, encode, send to the floor server.
//! - [`link`]: the floor server as a child process.
//! - [`report`]: the runs side by side and the ratios.

pub mod link;
pub mod plan;
pub mod report;
pub mod send;

use std::path::PathBuf;
use std::sync::Arc;

pub use self::link::FloorLink;
pub use self::plan::FloorPlan;
pub use self::report::{Comparison, FloorReport, FloorRun, RunKind};
pub use self::send::{FloorSend, Frames};
use super::{LoadError, Options};
use crate::floor::Variant;

/// A floor server to run a scenario against.
#[derive(Debug, Clone)]
pub struct FloorTarget {
    /// The server.
    pub link: Arc<FloorLink>,
    /// How deliveries become frames.
    pub frames: Frames,
}

/// What `tickcast-load floor` runs.
#[derive(Debug, Clone)]
pub struct FloorSettings {
    /// The `tickcast-floor` executable.
    pub bin: PathBuf,
    /// The runs, in order.
    pub runs: Vec<RunKind>,
    /// Writer loops of the plain variant, worker threads of the tasks
    /// variant (`None`: one per core).
    pub threads: Option<usize>,
    /// How the floor servers get deliveries as frames.
    pub frames: Frames,
}

impl Default for FloorSettings {
    fn default() -> Self {
        Self {
            bin: link::default_bin(),
            runs: vec![RunKind::Tickcast, RunKind::Plain, RunKind::Tasks],
            threads: None,
            frames: Frames::Event,
        }
    }
}

/// Runs `options`' scenario against each server of `settings.runs`.
pub async fn compare(options: Options, settings: &FloorSettings) -> Result<FloorReport, LoadError> {
    let scenario = &options.scenario;
    if scenario.connections.sse_share > 0.0 {
        return Err(LoadError::Scenario(
            "the floor server speaks WebSocket only: run the comparison with --sse-share 0".into(),
        ));
    }
    if scenario.churn.is_some() {
        return Err(LoadError::Scenario(
            "the floor server has no subscriptions to churn: choose a scenario without [churn]"
                .into(),
        ));
    }
    let mut runs = Vec::with_capacity(settings.runs.len());
    for &kind in &settings.runs {
        let variant = match kind {
            RunKind::Tickcast => {
                let report = super::run(options.clone()).await?;
                runs.push(FloorRun::new(kind, report, Ok(None)));
                continue;
            }
            RunKind::Plain => Variant::Plain,
            RunKind::Tasks => Variant::Tasks,
        };
        let link = FloorLink::spawn(&settings.bin, variant, settings.threads)
            .await
            .map_err(LoadError::Floor)?;
        let link = Arc::new(link);
        let floor_options = Options {
            server: link.addr,
            server_pid: Some(link.pid),
            api_key: None,
            floor: Some(FloorTarget {
                link: link.clone(),
                frames: settings.frames,
            }),
            ..options.clone()
        };
        let report = super::run(floor_options).await;
        let tally = link.finish().await;
        runs.push(FloorRun::new(kind, report?, tally.map(Some)));
    }
    Ok(FloorReport::new(&options.scenario_name, runs))
}
