//! The end of a run: what the phases measured, as a [`Report`] with its
//! problems (errors that fail the run) and warnings (what may explain a
//! figure).

use serde_json::Value;

use super::phases::{Counted, Publishing, Ramp};
use super::procstat::{self, Sample};
use super::report::{
    ConnectionsReport, DeliveriesReport, GeneratorProcess, LatencyReport, PublishReport, Report,
    ServerProcess, SubscriptionsReport,
};
use super::stats::Shared;
use super::{limits, per_connection, server_losses, Options};

/// Everything the phases measured.
pub(super) struct Measured {
    pub ramp: Ramp,
    pub publishing: Publishing,
    pub counted: Counted,
    /// The server's /proc samples before the ramp, after it, and after
    /// the grace period.
    pub server: [Option<Sample>; 3],
    /// The server's `/api/stats` before the ramp and at the end.
    pub stats: [Option<Value>; 2],
    /// Loopback source addresses the connections were spread over.
    pub sources: usize,
    /// The generator's open-file limit.
    pub nofile: u64,
    /// Warnings from before the run.
    pub warnings: Vec<String>,
}

/// The report of a run that was made.
pub(super) fn report(options: &Options, shared: &Shared, mut m: Measured) -> Report {
    let deliveries = deliveries(shared, &m);
    let connections = connections(&m);
    let subscriptions = subscriptions(&m);
    let publish = publish(options, &m.publishing);
    let server_process = server_process(options, &m, deliveries.received);
    let generator = GeneratorProcess {
        threads: options.threads,
        rss_end_kib: procstat::rss_kib(std::process::id()),
        cpu_percent_publish: cpu_percent(m.publishing.own_cpu),
        nofile: m.nofile,
    };
    let problems = problems(&deliveries, &connections, &subscriptions, &publish, &m);
    let mut warnings = std::mem::take(&mut m.warnings);
    warnings.extend(warnings_of(
        options,
        &deliveries,
        &connections,
        &publish,
        &m,
    ));
    Report {
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
        latency_us: LatencyReport::of(&shared.latencies()),
        server_process,
        generator,
        server_stats: m.stats[1].clone(),
        settings: options.scenario.clone(),
        churn: m.publishing.churn,
    }
}

fn cpu_percent((from, to): (Option<Sample>, Option<Sample>)) -> Option<f64> {
    Some(procstat::cpu_percent(&from?, &to?))
}

fn deliveries(shared: &Shared, m: &Measured) -> DeliveriesReport {
    let published = &m.publishing.published;
    let tally = published.ledger.compare(&m.counted.received);
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
    DeliveriesReport {
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
    }
}

fn connections(m: &Measured) -> ConnectionsReport {
    let target = m.ramp.established.len() as u64;
    let established = m.ramp.established_count();
    ConnectionsReport {
        target,
        established,
        failed: target - established,
        closed_early: m.counted.early_closes.values().sum(),
        failures: m.ramp.failures.clone(),
        early_closes: m.counted.early_closes.clone(),
        ramp_s: m.ramp.ramp_s,
        source_addresses: m.sources.max(1),
    }
}

fn subscriptions(m: &Measured) -> SubscriptionsReport {
    let ramp = &m.ramp;
    let requested: u64 = (0..ramp.established.len())
        .filter(|&c| ramp.established[c])
        .map(|c| ramp.ctx.requested(c as u32) as u64)
        .sum();
    let active: u64 = ramp.active.iter().map(|m| u64::from(m.count_ones())).sum();
    SubscriptionsReport {
        requested,
        active,
        refused: requested - active,
    }
}

fn publish(options: &Options, publishing: &Publishing) -> PublishReport {
    let scenario = &options.scenario;
    let published = &publishing.published;
    let duration_s = published
        .finished
        .duration_since(published.started)
        .as_secs_f64()
        .max(1e-9);
    PublishReport {
        via: scenario.publish.via,
        nominal_events: scenario.publish.total_events(),
        events_sent: published.sent,
        events_accepted: published.accepted,
        events_rejected: published.rejected,
        requests: published.requests,
        failed_requests: published.failed_requests,
        errors: published.errors.clone(),
        duration_s,
        events_per_s: published.accepted as f64 / duration_s,
    }
}

fn server_process(options: &Options, m: &Measured, received: u64) -> Option<ServerProcess> {
    let pid = options.server_pid?;
    let [before, after_ramp, end] = m.server;
    let established = m.ramp.established_count();
    let (publish_start, publish_end) = m.publishing.server_cpu;
    Some(ServerProcess {
        pid,
        nofile: limits::nofile_of(pid),
        rss_before_kib: before.map(|s| s.rss_kib),
        rss_after_ramp_kib: after_ramp.map(|s| s.rss_kib),
        rss_end_kib: end.map(|s| s.rss_kib),
        rss_per_connection_bytes: per_connection(before, after_ramp, established),
        rss_per_connection_end_bytes: per_connection(before, end, established),
        cpu_percent_publish: cpu_percent((publish_start, publish_end)),
        cpu_percent_ramp: cpu_percent((before, after_ramp)),
        cpu_s_delivering: publish_start
            .zip(end)
            .map(|(a, b)| (b.cpu_s - a.cpu_s).max(0.0)),
        cpu_us_per_delivery: publish_start
            .zip(end)
            .and_then(|(a, b)| procstat::cpu_us_per(&a, &b, received)),
    })
}

/// What fails the run.
fn problems(
    deliveries: &DeliveriesReport,
    connections: &ConnectionsReport,
    subscriptions: &SubscriptionsReport,
    publish: &PublishReport,
    m: &Measured,
) -> Vec<String> {
    let mut counts = vec![
        (deliveries.missing, "deliveries missing"),
        (deliveries.duplicates, "duplicate deliveries"),
        (deliveries.unexpected, "unexpected deliveries"),
        (connections.failed, "connections failed"),
        (connections.closed_early, "connections closed early"),
        (subscriptions.refused, "subscriptions refused"),
        (publish.failed_requests, "publish requests failed"),
        (publish.events_rejected, "events rejected"),
        (deliveries.bad_frames, "frames did not parse"),
    ];
    if let Some(churn) = &m.publishing.churn {
        counts.push((churn.cycles.failed, "churn connections failed"));
    }
    counts
        .into_iter()
        .filter(|(n, _)| *n > 0)
        .map(|(n, what)| format!("{n} {what}"))
        .collect()
}

/// What may explain a figure without failing the run.
fn warnings_of(
    options: &Options,
    deliveries: &DeliveriesReport,
    connections: &ConnectionsReport,
    publish: &PublishReport,
    m: &Measured,
) -> Vec<String> {
    let scenario = &options.scenario;
    let mut warnings = churn_warnings(options, m);
    if let Some(note) = server_losses(m.stats[0].as_ref(), m.stats[1].as_ref()) {
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
    if connections.failed > 0 && connections.target > 1000 {
        warnings.push(format!(
            "connections failed: check the server's open-file limit (`ulimit -n` of its shell \
             must be above {})",
            connections.target + limits::SERVER_SLACK_FILES
        ));
    }
    warnings
}

/// Whether the server's RSS and open files stayed flat under churn.
fn churn_warnings(options: &Options, m: &Measured) -> Vec<String> {
    let Some(churn) = &m.publishing.churn else {
        return Vec::new();
    };
    let mut warnings = Vec::new();
    for (what, trend) in [("RSS", churn.rss_kib), ("open files", churn.fds)] {
        if let Some(trend) = trend.filter(|t| !t.flat) {
            warnings.push(format!(
                "the server's {what} kept growing under churn after warm-up: {:+.0} over the \
                 run ({:+.1} per minute), more than the {:.0} called flat",
                trend.growth, trend.slope_per_min, trend.tolerance
            ));
        }
    }
    if options.server_pid.is_none() {
        warnings.push("churn without --server-pid: RSS and open files not sampled".into());
    }
    warnings
}
