//! `tickcast-load`, the end-to-end load generator, as a library: [`run`]
//! takes [`Options`] and returns a [`Report`]; the binary
//! (`src/bin/tickcast-load.rs`) is its command line.
//!
//! A run, in phases:
//!
//! 1. **ramp**: `connections.count` WebSocket clients connect at
//!    `ramp_per_s`, spread over loopback source addresses, each reads its
//!    welcome and subscribes with filters drawn from the scenario
//!    ([`filters`]), and reports which subscriptions were acknowledged.
//! 2. **prepare**: the phase's events are drawn from the fixtures'
//!    distribution and, for each, the connections it must reach are worked
//!    out from the acknowledged filters ([`expect`]), before publishing so
//!    that this work does not compete with the server during it.
//! 3. **publish**: the events are POSTed to `/api/publish` at the
//!    scenario's rate ([`publisher`]), each stamped with `load_seq` and
//!    `load_sent_ns` just before its request is written.
//! 4. **grace**: wait for in-flight deliveries (until all expected ones
//!    arrived, at most `run.grace_s`).
//! 5. **count**: connections close; per connection, what arrived is
//!    compared with what was expected: a missing, duplicated or unexpected
//!    delivery is an error ([`Report::ok`]).
//!
//! Two variations: `tickcast-load floor` ([`floor`]) runs the same phases
//! against a floor server as well, and reports tickcast's CPU per delivery
//! against the floor's; a scenario with a `[churn]` section
//! (`tickcast-load churn`, [`churn`]) has connections come and go during
//! the publish phase while it samples the server's RSS and open files.
//!
//! # Layout
//!
//! - [`scenario`]: the TOML scenarios and their defaults.
//! - [`filters`]: the subscriptions of every connection.
//! - [`clients`]: the connection tasks.
//! - [`sse`]: the SSE side of a connection.
//! - [`ws`]: the WebSocket side of a connection (a lean client).
//! - [`frame`]: cheap parsing of server frames.
//! - [`publisher`]: pacing, stamping, HTTP publishing.
//! - [`broker`]: publishing into Redis or RabbitMQ instead (`--via`).
//! - [`xadd`]: the lean XADD pipelines of `--via redis` into a stream.
//! - [`expect`]: recipients of each event, and the ledger of who must
//!   receive what, compared with what arrived.
//! - [`stats`]: live counters and latency histograms.
//! - [`report`]: the final report (table, JSON) and the progress line.
//! - [`procstat`]: RSS and CPU from /proc.
//! - [`limits`]: open files and ephemeral ports.
//! - [`floor`]: the floor comparison.
//! - [`churn`]: the churn scenario.
//! - [`cli`]: the command line.

pub mod broker;
pub mod churn;
pub mod cli;
pub mod clients;
pub mod expect;
pub mod filters;
pub mod floor;
pub mod frame;
pub mod limits;
mod phases;
pub mod procstat;
pub mod publisher;
pub mod report;
pub mod scenario;
pub mod sse;
mod stamp;
pub mod stats;
mod verdict;
pub mod ws;
pub mod xadd;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};

pub use self::broker::{Broker, BrokerTarget};
use self::expect::Audience;
use self::filters::Filters;
use self::floor::{FloorPlan, FloorTarget};
use self::publisher::Prepared;
pub use self::report::Report;
use self::report::{
    ConnectionsReport, DeliveriesReport, GeneratorProcess, LatencyReport, PublishReport,
    SubscriptionsReport,
};
pub use self::scenario::{Scenario, Via};
use self::stats::{Phase, Shared};
use crate::events::DetectionStream;
use crate::universe::SymbolUniverse;

/// What [`run`] needs.
#[derive(Debug, Clone)]
pub struct Options {
    /// Name of the scenario (for the report).
    pub scenario_name: String,
    /// The scenario, flags applied.
    pub scenario: Scenario,
    /// The server (`/ws` and `/api/publish`).
    pub server: SocketAddr,
    /// The server's pid, for RSS and CPU from /proc.
    pub server_pid: Option<u32>,
    /// Bearer token of `POST /api/publish` (the server's `api.key`).
    pub api_key: Option<String>,
    /// The broker of `--via redis|amqp`.
    pub broker: BrokerTarget,
    /// Print a progress line each second (stderr).
    pub progress: bool,
    /// Only compute the expected deliveries, without a server.
    pub dry_run: bool,
    /// Worker threads of the runtime the run is on (for the report).
    pub threads: usize,
    /// Run against this floor server instead of tickcast (`server` and
    /// `server_pid` are then the floor server's).
    pub floor: Option<FloorTarget>,
}

impl Options {
    /// Options for `scenario` against `server`, defaults elsewhere.
    pub fn new(scenario_name: &str, scenario: Scenario, server: SocketAddr) -> Self {
        Self {
            scenario_name: scenario_name.to_owned(),
            scenario,
            server,
            server_pid: None,
            api_key: None,
            broker: BrokerTarget::default(),
            progress: false,
            dry_run: false,
            threads: 0,
            floor: None,
        }
    }
}

/// Why a run could not be made (a run that was made but found errors
/// returns a [`Report`] that is not [`ok`](Report::ok)).
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// The scenario cannot be loaded or is invalid.
    #[error("scenario: {0}")]
    Scenario(String),
    /// An operating-system limit is in the way; the message says what to
    /// raise.
    #[error("{0}")]
    Limits(String),
    /// The broker publisher cannot be made (a bad URL).
    #[error("--via {via}: {reason}")]
    Broker {
        /// The ingest path.
        via: &'static str,
        /// Why.
        reason: String,
    },
    /// The floor server cannot be started or run.
    #[error("floor: {0}")]
    Floor(String),
    /// The server cannot be reached.
    #[error("cannot reach the server at {addr}: {reason} (start it with `cargo run --release -p tickcast`, see docs/benchmarks.md)")]
    Unreachable {
        /// Address tried.
        addr: SocketAddr,
        /// Why.
        reason: String,
    },
}

/// Runs `options` to the end and reports.
pub async fn run(options: Options) -> Result<Report, LoadError> {
    let scenario = &options.scenario;
    scenario.validate().map_err(LoadError::Scenario)?;
    let via = scenario.publish.via;
    let broker = options
        .broker
        .publisher(via)
        .map_err(|reason| LoadError::Broker {
            via: via.name(),
            reason,
        })?;
    let filters = Arc::new(Filters::generate(scenario));
    if options.dry_run {
        return Ok(dry_run(&options, filters));
    }
    let count = scenario.connections.count;
    let needed = count as u64 + scenario.publish.publishers as u64 + limits::SLACK_FILES;
    let nofile = limits::raise_nofile(needed, count)?;
    let warnings: Vec<String> = options
        .server_pid
        .and_then(|pid| limits::check_server_nofile(pid, count))
        .into_iter()
        .collect();
    let sources = limits::source_addresses(options.server, count, scenario.connections.source_ips)?;
    if let Err(e) = tokio::net::TcpStream::connect(options.server).await {
        return Err(LoadError::Unreachable {
            addr: options.server,
            reason: e.to_string(),
        });
    }
    if options.progress {
        announce(&options, &warnings);
    }

    let shared = Arc::new(Shared::new());
    let ticker = options.progress.then(|| phases::ticker(&shared, count));
    let server_pid = options.server_pid;
    let server_before = server_pid.and_then(procstat::sample);
    // The floor server has no HTTP API.
    let with_api = options.floor.is_none();
    let stats_before = match with_api {
        true => fetch_stats(options.server).await,
        false => None,
    };

    let mut ramp = phases::ramp(&options, &filters, &sources, &shared).await;
    let server_after_ramp = server_pid.and_then(procstat::sample);
    shared.set_phase(Phase::Prepare);
    let (prepared, plan) =
        phases::prepare(scenario, &filters, &ramp.active, options.floor.is_some()).await;
    let publishing = phases::publish(&options, &ramp, prepared, plan, broker, &shared).await;
    let expected = publishing.published.ledger.total();
    phases::grace(&shared, expected, scenario.run.grace_s).await;
    let server_end = server_pid.and_then(procstat::sample);
    let stats_end = match with_api {
        true => fetch_stats(options.server).await,
        false => None,
    };
    let counted = phases::count(&mut ramp, &shared).await;
    if let Some(ticker) = ticker {
        ticker.abort();
    }

    let measured = verdict::Measured {
        ramp,
        publishing,
        counted,
        server: [server_before, server_after_ramp, server_end],
        stats: [stats_before, stats_end],
        sources: sources.len(),
        nofile,
        warnings,
    };
    Ok(verdict::report(&options, &shared, measured))
}

/// The scenario, the server settings it expects, and the warnings so far,
/// on stderr.
fn announce(options: &Options, warnings: &[String]) {
    let scenario = &options.scenario;
    eprintln!(
        "tickcast-load: scenario {}: {}",
        options.scenario_name,
        scenario.description.trim()
    );
    if !scenario.server.env.is_empty() {
        let env: Vec<_> = scenario
            .server
            .env
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        eprintln!(
            "tickcast-load: expects the server to run with {}",
            env.join(" ")
        );
    }
    for w in warnings {
        eprintln!("tickcast-load: warning: {w}");
    }
}

/// `--dry-run`: the expected deliveries of the scenario's events, as if
/// every connection were established with all its subscriptions.
fn dry_run(options: &Options, filters: Arc<Filters>) -> Report {
    let scenario = &options.scenario;
    let count = scenario.connections.count;
    let prepared = prepare(scenario, filters.clone(), &vec![u64::MAX; count]);
    let events = prepared.len() as u64;
    let expected = prepared.ledger().total();
    let duration = scenario.publish.duration_s.max(1e-9);
    Report {
        scenario: options.scenario_name.clone(),
        server: options.server.to_string(),
        dry_run: true,
        ok: true,
        problems: Vec::new(),
        warnings: Vec::new(),
        connections: ConnectionsReport {
            target: count as u64,
            ..ConnectionsReport::default()
        },
        subscriptions: SubscriptionsReport {
            requested: filters.len() as u64,
            active: filters.len() as u64,
            refused: 0,
        },
        publish: PublishReport {
            via: scenario.publish.via,
            nominal_events: events,
            events_sent: events,
            duration_s: duration,
            events_per_s: events as f64 / duration,
            ..PublishReport::default()
        },
        deliveries: DeliveriesReport {
            expected,
            expected_per_s: expected as f64 / duration,
            ..DeliveriesReport::default()
        },
        latency_us: LatencyReport::default(),
        server_process: None,
        generator: GeneratorProcess {
            threads: options.threads,
            ..GeneratorProcess::default()
        },
        server_stats: None,
        settings: scenario.clone(),
        churn: None,
    }
}

/// RSS growth from `from` to `to` per connection, in bytes.
fn per_connection(
    from: Option<procstat::Sample>,
    to: Option<procstat::Sample>,
    connections: u64,
) -> Option<f64> {
    let (from, to) = (from?, to?);
    (connections > 0)
        .then(|| (to.rss_kib as f64 - from.rss_kib as f64) * 1024.0 / connections as f64)
}

/// The events of `scenario` and their recipients among the subscriptions
/// `active` (see [`Audience::new`]).
fn prepare(scenario: &Scenario, filters: Arc<Filters>, active: &[u64]) -> Prepared {
    prepare_with_plan(scenario, filters, active, false).0
}

/// [`prepare`], and with `with_plan` the frames' recipients for the floor
/// server.
fn prepare_with_plan(
    scenario: &Scenario,
    filters: Arc<Filters>,
    active: &[u64],
    with_plan: bool,
) -> (Prepared, Option<FloorPlan>) {
    let audience = Audience::new(filters.clone(), active);
    let universe = SymbolUniverse::new(scenario.filters.symbols, scenario.filters.zipf_exponent);
    let stream = DetectionStream::new(universe, scenario.run.seed ^ 0xE7E4_7500);
    let mut plan = with_plan.then(FloorPlan::new);
    let prepared = Prepared::observed(&scenario.publish, audience, stream, |event, recipients| {
        if let Some(plan) = &mut plan {
            plan.record(&filters, active, event, recipients);
        }
    });
    (prepared, plan)
}

/// What the server says it held back or dropped during the run (its
/// `/api/stats` delivery counters, end minus start), when anything: the
/// likely reason of missing deliveries. Rate-limited events with a
/// conflation key are conflated (latest per symbol + pattern + tier wins)
/// without any `dropped` notice, so the client alone cannot tell.
fn server_losses(
    before: Option<&serde_json::Value>,
    after: Option<&serde_json::Value>,
) -> Option<String> {
    let after = after?;
    let counter = |stats: Option<&serde_json::Value>, key: &str| {
        stats.and_then(|s| s["delivery"][key].as_u64()).unwrap_or(0)
    };
    let keys = [
        "rate_limited",
        "conflated",
        "dropped_rate_limit",
        "dropped_low",
        "dropped_medium",
        "slow_consumer_closes",
    ];
    let seen: Vec<String> = keys
        .iter()
        .map(|k| {
            (
                k,
                counter(Some(after), k).saturating_sub(counter(before, k)),
            )
        })
        .filter(|(_, n)| *n > 0)
        .map(|(k, n)| format!("{k} {n}"))
        .collect();
    (!seen.is_empty()).then(|| {
        format!(
            "the server's /api/stats counted during the run: {}; rate-limited events are \
             conflated (latest per symbol + pattern + tier, no `dropped` notice) or dropped, \
             and full queues drop low and medium events: such deliveries are legitimately \
             missing. Run the server as the scenario says (--show-scenario), e.g. \
             TICKCAST_DELIVERY__RATE_LIMIT_PER_USER=0",
            seen.join(", ")
        )
    })
}

/// `GET /api/stats` of the server, best effort.
async fn fetch_stats(server: SocketAddr) -> Option<serde_json::Value> {
    let exchange = async {
        let stream = tokio::net::TcpStream::connect(server).await.ok()?;
        let (mut get, connection) =
            hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
                .await
                .ok()?;
        tokio::spawn(async move {
            let _ = connection.await;
        });
        let request = hyper::Request::get("/api/stats")
            .header("host", server.to_string())
            .body(Empty::<Bytes>::new())
            .ok()?;
        let response = get.send_request(request).await.ok()?;
        let body = response.into_body().collect().await.ok()?.to_bytes();
        serde_json::from_slice(&body).ok()
    };
    tokio::time::timeout(Duration::from_secs(5), exchange)
        .await
        .ok()
        .flatten()
}
