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
//! - [`frame`]: cheap parsing of server frames.
//! - [`publisher`]: pacing, stamping, HTTP publishing.
//! - [`broker`]: publishing into Redis or RabbitMQ instead (`--via`).
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
pub mod procstat;
pub mod publisher;
pub mod report;
pub mod scenario;
pub mod sse;
mod stamp;
pub mod stats;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use tokio::sync::{mpsc, watch};

pub use self::broker::BrokerTarget;
use self::churn::Churn;
use self::clients::ClientContext;
use self::expect::Audience;
use self::filters::Filters;
use self::floor::{FloorPlan, FloorSend, FloorTarget};
use self::publisher::Prepared;
pub use self::report::Report;
use self::report::{
    ConnectionsReport, DeliveriesReport, GeneratorProcess, LatencyReport, Progress, PublishReport,
    ServerProcess, SubscriptionsReport,
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
    let mut warnings = Vec::new();
    if let Some(w) = options
        .server_pid
        .and_then(|pid| limits::check_server_nofile(pid, count))
    {
        warnings.push(w);
    }
    let sources = limits::source_addresses(options.server, count, scenario.connections.source_ips)?;
    if let Err(e) = tokio::net::TcpStream::connect(options.server).await {
        return Err(LoadError::Unreachable {
            addr: options.server,
            reason: e.to_string(),
        });
    }
    if options.progress {
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
        for w in &warnings {
            eprintln!("tickcast-load: warning: {w}");
        }
    }

    let shared = Arc::new(Shared::new());
    let ticker = options.progress.then(|| {
        let shared = shared.clone();
        tokio::spawn(async move {
            let mut progress = Progress::default();
            let mut tick = tokio::time::interval(Duration::from_secs(1));
            tick.tick().await;
            loop {
                tick.tick().await;
                let interval = shared.merge_latencies();
                eprintln!("{}", progress.line(&shared, &interval, count));
            }
        })
    });
    let server_pid = options.server_pid;
    let server_before = server_pid.and_then(procstat::sample);
    let floor = options.floor.clone();
    // The floor server has no HTTP API.
    let stats_before = match floor {
        None => fetch_stats(options.server).await,
        Some(_) => None,
    };

    // 1. Ramp.
    let ctx = Arc::new(ClientContext {
        server: options.server,
        sources: sources.clone(),
        filters: filters.clone(),
        shared: shared.clone(),
        connect_timeout: Duration::from_secs_f64(scenario.connections.connect_timeout_s),
        // tungstenite zeroes up to this much before every read (even one
        // that finds nothing), and it is resident per connection: small.
        read_buffer: 4 * 1024,
        sse_share: scenario.connections.sse_share,
        floor: floor.is_some(),
    });
    let (ready_tx, mut ready_rx) = mpsc::unbounded_channel();
    let (stop_tx, stop_rx) = watch::channel(false);
    let ramp_start = Instant::now();
    let mut handles = Vec::with_capacity(count);
    for conn in 0..count {
        let at =
            ramp_start + Duration::from_secs_f64(conn as f64 / scenario.connections.ramp_per_s);
        if at > Instant::now() {
            tokio::time::sleep_until(at.into()).await;
        }
        handles.push(tokio::spawn(clients::run(
            ctx.clone(),
            conn as u32,
            ready_tx.clone(),
            stop_rx.clone(),
        )));
    }
    drop(ready_tx);
    let mut active = vec![0u64; count];
    let mut established = vec![false; count];
    let mut failures: BTreeMap<String, u64> = BTreeMap::new();
    while let Some(ready) = ready_rx.recv().await {
        match ready.result {
            Ok(mask) => {
                active[ready.conn as usize] = mask;
                established[ready.conn as usize] = true;
            }
            Err(reason) => *failures.entry(reason).or_default() += 1,
        }
    }
    let ramp_s = ramp_start.elapsed().as_secs_f64();
    let server_after_ramp = server_pid.and_then(procstat::sample);

    // 2. Prepare.
    shared.set_phase(Phase::Prepare);
    let (prepared, plan) = {
        let (filters, active) = (filters.clone(), active.clone());
        let scenario = scenario.clone();
        let with_plan = floor.is_some();
        tokio::task::spawn_blocking(move || {
            prepare_with_plan(&scenario, filters, &active, with_plan)
        })
        .await
        .expect("preparing events does not panic")
    };
    // 3. Publish.
    let target = publisher::Target {
        server: options.server,
        api_key: options.api_key.clone(),
        broker,
        floor: floor.zip(plan).map(|(floor, plan)| FloorSend {
            link: floor.link,
            frames: floor.frames,
            plan: Arc::new(plan),
            channel: scenario.publish.channel.clone(),
            // As wide as tickcast's node epoch: start ms and a 6-digit nonce.
            epoch: tickcast_core::hub::epoch::compose(stats::epoch_ns() / 1_000_000, 0),
        }),
    };
    shared.set_phase(Phase::Publish);
    let me = std::process::id();
    let (server_cpu_start, own_cpu_start) =
        (server_pid.and_then(procstat::sample), procstat::sample(me));
    let churning = scenario
        .churn
        .as_ref()
        .map(|section| Churn::start(churn::context(&ctx, section), section, server_pid));
    let published = publisher::run(&scenario.publish, &target, prepared, shared.clone()).await;
    let (server_cpu_end, own_cpu_end) =
        (server_pid.and_then(procstat::sample), procstat::sample(me));
    let churn = match churning {
        Some(churning) => Some(churning.finish(server_pid).await),
        None => None,
    };

    // 4. Grace.
    shared.set_phase(Phase::Grace);
    let expected_total = published.ledger.total();
    let grace_end = Instant::now() + Duration::from_secs_f64(scenario.run.grace_s);
    loop {
        if Shared::get(&shared.received) >= expected_total {
            // Everything is in: a short wait still catches duplicates.
            tokio::time::sleep(
                Duration::from_millis(100).min(grace_end - Instant::now().min(grace_end)),
            )
            .await;
            break;
        }
        if Instant::now() >= grace_end {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let server_end = server_pid.and_then(procstat::sample);
    let server_stats = match target.floor {
        None => fetch_stats(options.server).await,
        Some(_) => None,
    };

    // 5. Count.
    shared.set_phase(Phase::Done);
    let _ = stop_tx.send(true);
    let mut received: Vec<Option<roaring::RoaringBitmap>> = vec![None; count];
    let mut early_closes: BTreeMap<String, u64> = BTreeMap::new();
    for handle in handles {
        match tokio::time::timeout(Duration::from_secs(30), handle).await {
            Ok(Ok(outcome)) => {
                let conn = outcome.conn as usize;
                if established[conn] {
                    if let Some(reason) = outcome.ended_early {
                        *early_closes.entry(reason).or_default() += 1;
                    }
                    received[conn] = Some(outcome.received);
                }
            }
            Ok(Err(e)) => *early_closes.entry(format!("task failed: {e}")).or_default() += 1,
            Err(_) => {
                *early_closes
                    .entry("did not stop in 30 s".to_owned())
                    .or_default() += 1
            }
        }
    }
    let tally = published.ledger.compare(&received);
    let latencies = shared.latencies();
    if let Some(ticker) = ticker {
        ticker.abort();
    }

    let publish_s = published
        .finished
        .duration_since(published.started)
        .as_secs_f64()
        .max(1e-9);
    let delivery_s = (shared.last_delivery_us() as f64 / 1e6
        - published
            .started
            .duration_since(shared.started())
            .as_secs_f64())
    .max(1e-9);
    let deliveries = DeliveriesReport {
        expected: tally.expected,
        received: Shared::get(&shared.received),
        missing: tally.missing,
        duplicates: Shared::get(&shared.duplicates),
        unexpected: tally.unexpected,
        connections_missing: tally.connections_missing,
        missing_examples: tally.missing_examples,
        dropped_notices: Shared::get(&shared.dropped_notices),
        dropped_events: Shared::get(&shared.dropped_events),
        error_frames: Shared::get(&shared.error_frames),
        bad_frames: Shared::get(&shared.bad_frames),
        frames: Shared::get(&shared.frames),
        event_frames: Shared::get(&shared.event_frames),
        event_frame_bytes: Shared::get(&shared.event_bytes),
        foreign_events: Shared::get(&shared.foreign),
        delivered_per_s: Shared::get(&shared.received) as f64 / delivery_s,
        expected_per_s: tally.expected as f64 / publish_s,
    };
    let established_count = established.iter().filter(|e| **e).count() as u64;
    let connections = ConnectionsReport {
        target: count as u64,
        established: established_count,
        failed: count as u64 - established_count,
        closed_early: early_closes.values().sum(),
        failures,
        early_closes,
        ramp_s,
        source_addresses: sources.len().max(1),
    };
    let requested: u64 = (0..count)
        .filter(|&c| established[c])
        .map(|c| ctx.requested(c as u32) as u64)
        .sum();
    let active_subs: u64 = active.iter().map(|m| u64::from(m.count_ones())).sum();
    let subscriptions = SubscriptionsReport {
        requested,
        active: active_subs,
        refused: requested - active_subs,
    };
    let publish = PublishReport {
        via: scenario.publish.via,
        nominal_events: scenario.publish.total_events(),
        events_sent: published.sent,
        events_accepted: published.accepted,
        events_rejected: published.rejected,
        requests: published.requests,
        failed_requests: published.failed_requests,
        errors: published.errors,
        duration_s: publish_s,
        events_per_s: published.accepted as f64 / publish_s,
    };
    let server_process = server_pid.map(|pid| ServerProcess {
        pid,
        nofile: limits::nofile_of(pid),
        rss_before_kib: server_before.map(|s| s.rss_kib),
        rss_after_ramp_kib: server_after_ramp.map(|s| s.rss_kib),
        rss_end_kib: server_end.map(|s| s.rss_kib),
        rss_per_connection_bytes: per_connection(
            server_before,
            server_after_ramp,
            established_count,
        ),
        rss_per_connection_end_bytes: per_connection(server_before, server_end, established_count),
        cpu_percent_publish: match (server_cpu_start, server_cpu_end) {
            (Some(a), Some(b)) => Some(procstat::cpu_percent(&a, &b)),
            _ => None,
        },
        cpu_percent_ramp: match (server_before, server_after_ramp) {
            (Some(a), Some(b)) => Some(procstat::cpu_percent(&a, &b)),
            _ => None,
        },
        cpu_s_delivering: match (server_cpu_start, server_end) {
            (Some(a), Some(b)) => Some((b.cpu_s - a.cpu_s).max(0.0)),
            _ => None,
        },
        cpu_us_per_delivery: match (server_cpu_start, server_end) {
            (Some(a), Some(b)) => procstat::cpu_us_per(&a, &b, deliveries.received),
            _ => None,
        },
    });
    let generator = GeneratorProcess {
        threads: options.threads,
        rss_end_kib: procstat::rss_kib(me),
        cpu_percent_publish: match (own_cpu_start, own_cpu_end) {
            (Some(a), Some(b)) => Some(procstat::cpu_percent(&a, &b)),
            _ => None,
        },
        nofile,
    };

    let mut problems = Vec::new();
    let mut problem = |n: u64, what: &str| {
        if n > 0 {
            problems.push(format!("{n} {what}"));
        }
    };
    problem(deliveries.missing, "deliveries missing");
    problem(deliveries.duplicates, "duplicate deliveries");
    problem(deliveries.unexpected, "unexpected deliveries");
    problem(connections.failed, "connections failed");
    problem(connections.closed_early, "connections closed early");
    problem(subscriptions.refused, "subscriptions refused");
    problem(publish.failed_requests, "publish requests failed");
    problem(publish.events_rejected, "events rejected");
    problem(deliveries.bad_frames, "frames did not parse");
    if let Some(churn) = &churn {
        problem(churn.cycles.failed, "churn connections failed");
        for (what, trend) in [("RSS", churn.rss_kib), ("open files", churn.fds)] {
            if let Some(trend) = trend.filter(|t| !t.flat) {
                warnings.push(format!(
                    "the server's {what} kept growing under churn after warm-up: {:+.0} over the \
                     run ({:+.1} per minute), more than the {:.0} called flat",
                    trend.growth, trend.slope_per_min, trend.tolerance
                ));
            }
        }
        if server_pid.is_none() {
            warnings.push("churn without --server-pid: RSS and open files not sampled".into());
        }
    }
    if let Some(note) = server_losses(stats_before.as_ref(), server_stats.as_ref()) {
        warnings.push(note);
    }
    if deliveries.dropped_notices > 0 {
        warnings.push(format!(
            "{} dropped notices ({} events): the server's rate limit or a full queue dropped \
             deliveries; for exact counts run the server as the scenario says ({})",
            deliveries.dropped_notices,
            deliveries.dropped_events,
            scenario
                .server
                .env
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join(" ")
        ));
    }
    if deliveries.expected == 0 {
        warnings.push("no delivery was expected: the filters match none of the events".into());
    }
    if publish.events_sent + publish.events_sent / 50 < publish.nominal_events {
        warnings.push(format!(
            "published {} of the {} events the rate calls for: the publisher or the server \
             could not keep up{}",
            publish.events_sent,
            publish.nominal_events,
            if scenario.publish.max_outstanding > 0 {
                " (or max_outstanding held it back)"
            } else {
                ""
            }
        ));
    }
    if connections.failed > 0 && count > 1000 {
        warnings.push(format!(
            "connections failed: check the server's open-file limit (`ulimit -n` of its shell \
             must be above {})",
            count as u64 + limits::SERVER_SLACK_FILES
        ));
    }
    Ok(Report {
        scenario: options.scenario_name.clone(),
        server: options.server.to_string(),
        dry_run: false,
        ok: problems.is_empty(),
        problems,
        warnings,
        connections,
        subscriptions,
        publish,
        deliveries,
        latency_us: LatencyReport::of(&latencies),
        server_process,
        generator,
        server_stats,
        settings: scenario.clone(),
        churn,
    })
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
