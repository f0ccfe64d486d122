//! [`Report`]: the figures of a run, as JSON (`--json FILE`), as a
//! Markdown table, and the live progress line.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use hdrhistogram::Histogram;
use serde::Serialize;

use super::churn::trend::Trend;
use super::churn::ChurnReport;
use super::scenario::{Scenario, Via};
use super::stats::Shared;

/// Everything a run measured.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Report {
    /// Scenario name (or file stem).
    pub scenario: String,
    /// Server address.
    pub server: String,
    /// Only the expectations were computed (`--dry-run`).
    pub dry_run: bool,
    /// No delivery missing, duplicated or unexpected, no failed connection
    /// or publish.
    pub ok: bool,
    /// What makes the run not ok.
    pub problems: Vec<String>,
    /// Things to know that do not fail the run.
    pub warnings: Vec<String>,
    /// Connections.
    pub connections: ConnectionsReport,
    /// Subscriptions.
    pub subscriptions: SubscriptionsReport,
    /// The publish phase.
    pub publish: PublishReport,
    /// Deliveries, expected and received.
    pub deliveries: DeliveriesReport,
    /// End-to-end latency (receive time - `load_sent_ns`) of first
    /// deliveries, in µs.
    pub latency_us: LatencyReport,
    /// The server process (`--server-pid`).
    pub server_process: Option<ServerProcess>,
    /// The generator process.
    pub generator: GeneratorProcess,
    /// The server's `GET /api/stats` at the end.
    pub server_stats: Option<serde_json::Value>,
    /// The effective scenario (after flags).
    pub settings: Scenario,
    /// The churn, for a scenario with `[churn]`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub churn: Option<ChurnReport>,
}

/// Connections of the run.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ConnectionsReport {
    /// Connections asked for.
    pub target: u64,
    /// Connected, welcomed and subscribed.
    pub established: u64,
    /// Failed to get there.
    pub failed: u64,
    /// Established, then ended before the run stopped them.
    pub closed_early: u64,
    /// Failures by reason.
    pub failures: BTreeMap<String, u64>,
    /// Early ends by reason.
    pub early_closes: BTreeMap<String, u64>,
    /// Length of the ramp (first connect to last answer), seconds.
    pub ramp_s: f64,
    /// Loopback source addresses used.
    pub source_addresses: usize,
}

/// Subscriptions of the run.
#[derive(Debug, Clone, Default, Serialize)]
pub struct SubscriptionsReport {
    /// Sent by established connections.
    pub requested: u64,
    /// Acknowledged (`subscribed`).
    pub active: u64,
    /// Refused with an `error` frame.
    pub refused: u64,
}

/// The publish phase.
#[derive(Debug, Clone, Default, Serialize)]
pub struct PublishReport {
    /// Ingest path.
    pub via: Via,
    /// Events the scenario's rate and duration call for.
    pub nominal_events: u64,
    /// Events drawn and sent.
    pub events_sent: u64,
    /// Events the server accepted.
    pub events_accepted: u64,
    /// Events refused one by one.
    pub events_rejected: u64,
    /// Requests sent.
    pub requests: u64,
    /// Requests that failed whole.
    pub failed_requests: u64,
    /// Failures by reason.
    pub errors: BTreeMap<String, u64>,
    /// Length of the phase, seconds.
    pub duration_s: f64,
    /// Accepted events per second.
    pub events_per_s: f64,
}

/// Deliveries.
#[derive(Debug, Clone, Default, Serialize)]
pub struct DeliveriesReport {
    /// Expected from the filters (once per connection and event).
    pub expected: u64,
    /// Received, each (connection, event) once.
    pub received: u64,
    /// Missing: expected, never received.
    pub missing: u64,
    /// Received again.
    pub duplicates: u64,
    /// Received, but no filter of the connection matches.
    pub unexpected: u64,
    /// Connections missing at least one delivery.
    pub connections_missing: u64,
    /// A few (connection, load_seq) that went missing.
    pub missing_examples: Vec<(u32, u32)>,
    /// `dropped` notices received.
    pub dropped_notices: u64,
    /// Events those notices reported dropped.
    pub dropped_events: u64,
    /// `error` frames after subscribing.
    pub error_frames: u64,
    /// Frames that did not parse.
    pub bad_frames: u64,
    /// Text frames received (events per frame = received / frames, about).
    pub frames: u64,
    /// Of them, `event` and `batch` frames.
    pub event_frames: u64,
    /// Their bytes, JSON text without the WebSocket header (the same
    /// events to the same connections give the same bytes from tickcast
    /// and from the floor server).
    pub event_frame_bytes: u64,
    /// Events without this run's stamps (another producer's).
    pub foreign_events: u64,
    /// Received per second, from the first publish to the last delivery.
    pub delivered_per_s: f64,
    /// Expected per second of the publish phase.
    pub expected_per_s: f64,
}

/// Latency percentiles, µs.
#[derive(Debug, Clone, Default, Serialize)]
pub struct LatencyReport {
    /// Samples.
    pub count: u64,
    /// Median.
    pub p50: u64,
    /// 90th percentile.
    pub p90: u64,
    /// 99th percentile.
    pub p99: u64,
    /// 99.9th percentile.
    pub p999: u64,
    /// Largest.
    pub max: u64,
    /// Mean.
    pub mean: f64,
}

impl LatencyReport {
    /// The percentiles of `histogram`.
    pub fn of(histogram: &Histogram<u64>) -> Self {
        if histogram.is_empty() {
            return Self::default();
        }
        Self {
            count: histogram.len(),
            p50: histogram.value_at_quantile(0.5),
            p90: histogram.value_at_quantile(0.9),
            p99: histogram.value_at_quantile(0.99),
            p999: histogram.value_at_quantile(0.999),
            max: histogram.max(),
            mean: histogram.mean(),
        }
    }
}

/// The server process, from /proc.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ServerProcess {
    /// Its pid.
    pub pid: u32,
    /// Open-file limit (soft).
    pub nofile: Option<u64>,
    /// RSS before the ramp, KiB.
    pub rss_before_kib: Option<u64>,
    /// RSS after the ramp (all connections subscribed), KiB.
    pub rss_after_ramp_kib: Option<u64>,
    /// RSS at the end of the grace period, KiB.
    pub rss_end_kib: Option<u64>,
    /// (RSS after ramp - RSS before) / established connections, bytes.
    pub rss_per_connection_bytes: Option<f64>,
    /// (RSS at the end - RSS before) / established connections, bytes:
    /// with the queues and buffers that traffic left behind.
    pub rss_per_connection_end_bytes: Option<f64>,
    /// CPU over the publish phase, % of one core.
    pub cpu_percent_publish: Option<f64>,
    /// CPU over the ramp, % of one core.
    pub cpu_percent_ramp: Option<f64>,
    /// CPU seconds from the first publish to the end of the grace period
    /// (the last delivery, plus at most 100 ms).
    pub cpu_s_delivering: Option<f64>,
    /// Those CPU seconds per delivery received, in µs: the server's cost
    /// per delivery, ingest and routing included.
    pub cpu_us_per_delivery: Option<f64>,
}

/// The generator itself.
#[derive(Debug, Clone, Default, Serialize)]
pub struct GeneratorProcess {
    /// Worker threads of its runtime (0: unknown, e.g. a test's runtime).
    pub threads: usize,
    /// RSS at the end, KiB.
    pub rss_end_kib: Option<u64>,
    /// CPU over the publish phase, % of one core.
    pub cpu_percent_publish: Option<f64>,
    /// Open-file limit it ran with.
    pub nofile: u64,
}

impl Report {
    /// The figures as a Markdown table (what the docs quote).
    pub fn table(&self) -> String {
        if self.dry_run {
            return self.dry_table();
        }
        let mut rows: Vec<(String, String)> = Vec::new();
        let mut row = |k: &str, v: String| rows.push((k.to_owned(), v));
        let c = &self.connections;
        row(
            "scenario",
            format!("{} against {}", self.scenario, self.server),
        );
        row(
            "connections",
            format!(
                "{} established of {}, {} failed, {} closed early (ramp {:.1} s, {} source address{})",
                c.established,
                c.target,
                c.failed,
                c.closed_early,
                c.ramp_s,
                c.source_addresses,
                if c.source_addresses == 1 { "" } else { "es" }
            ),
        );
        let s = &self.subscriptions;
        row(
            "subscriptions",
            format!(
                "{} active of {} sent, {} refused",
                s.active, s.requested, s.refused
            ),
        );
        let p = &self.publish;
        row(
            "published",
            format!(
                "{} events accepted of {} sent ({} nominal) in {:.1} s = {} events/s; {} requests, {} failed, {} events rejected",
                p.events_accepted,
                p.events_sent,
                p.nominal_events,
                p.duration_s,
                rate(p.events_per_s),
                p.requests,
                p.failed_requests,
                p.events_rejected
            ),
        );
        let d = &self.deliveries;
        row(
            "deliveries",
            format!(
                "expected {}, received {}, **missing {}**, **duplicates {}**, unexpected {}",
                d.expected, d.received, d.missing, d.duplicates, d.unexpected
            ),
        );
        row(
            "dropped notices",
            format!("{} ({} events)", d.dropped_notices, d.dropped_events),
        );
        row(
            "delivered events/s",
            format!(
                "{} (expected {} per s of publishing)",
                rate(d.delivered_per_s),
                rate(d.expected_per_s)
            ),
        );
        let l = &self.latency_us;
        row(
            "latency (end to end)",
            format!(
                "p50 {}, p90 {}, p99 {}, p99.9 {}, max {} ({} samples)",
                micros(l.p50),
                micros(l.p90),
                micros(l.p99),
                micros(l.p999),
                micros(l.max),
                l.count
            ),
        );
        if let Some(sp) = &self.server_process {
            row(
                "server RSS",
                format!(
                    "{} before, {} after ramp, {} at end; per connection {} after ramp, {} at end",
                    kib(sp.rss_before_kib),
                    kib(sp.rss_after_ramp_kib),
                    kib(sp.rss_end_kib),
                    per_connection(sp.rss_per_connection_bytes),
                    per_connection(sp.rss_per_connection_end_bytes),
                ),
            );
            row(
                "server CPU",
                format!(
                    "{} during publish, {} during ramp (pid {})",
                    percent(sp.cpu_percent_publish),
                    percent(sp.cpu_percent_ramp),
                    sp.pid
                ),
            );
            row(
                "server CPU per delivery",
                match (sp.cpu_us_per_delivery, sp.cpu_s_delivering) {
                    (Some(us), Some(s)) => format!(
                        "{us:.2} µs ({s:.2} s of CPU from the first publish to the last delivery)"
                    ),
                    _ => "-".to_owned(),
                },
            );
        }
        if let Some(churn) = &self.churn {
            for (k, v) in churn_rows(churn) {
                row(k, v);
            }
        }
        let g = &self.generator;
        row(
            "generator CPU",
            format!(
                "{} during publish (RSS {} at end)",
                percent(g.cpu_percent_publish),
                kib(g.rss_end_kib)
            ),
        );
        row(
            "result",
            if self.ok {
                "OK".to_owned()
            } else {
                format!("FAILED: {}", self.problems.join("; "))
            },
        );
        let mut out = String::from("| metric | value |\n| --- | --- |\n");
        for (k, v) in rows {
            let _ = writeln!(out, "| {k} | {v} |");
        }
        for w in &self.warnings {
            let _ = writeln!(out, "\nwarning: {w}");
        }
        out
    }
}

/// The churn's rows: what the connections did, and the server's RSS and
/// open files after warm-up.
fn churn_rows(churn: &ChurnReport) -> Vec<(&'static str, String)> {
    let s = &churn.settings;
    let c = &churn.cycles;
    let mut rows = vec![(
        "churn",
        format!(
            "{} connections started in {:.0} s = {}/s (hold {} s, {:.0} % leave abruptly): {} completed ({} clean, {} abrupt), {} failed; {} events read",
            c.started,
            churn.duration_s,
            rate(churn.started_per_s),
            s.hold_s,
            s.abrupt_share * 100.0,
            c.completed,
            c.clean,
            c.abrupt,
            c.failed,
            churn.deliveries,
        ),
    )];
    let trend = |t: Option<Trend>, unit: &str, scale: f64| {
        t.map_or_else(
            || format!("not judged ({} samples, warm-up {} s)", churn.samples.len(), s.warmup_s),
            |t| {
                format!(
                    "after {} s warm-up ({} samples): first {:.1}, last {:.1}, max {:.1} {unit}, slope {:+.2} {unit}/min: {}",
                    s.warmup_s,
                    t.samples,
                    t.first / scale,
                    t.last / scale,
                    t.max / scale,
                    t.slope_per_min / scale,
                    if t.flat { "flat" } else { "**growing**" }
                )
            },
        )
    };
    rows.push((
        "server RSS under churn",
        trend(churn.rss_kib, "MiB", 1024.0),
    ));
    rows.push(("server fds under churn", trend(churn.fds, "fds", 1.0)));
    if let (Some(first), Some(after)) = (churn.samples.first(), churn.after) {
        rows.push((
            "server before / after churn",
            format!(
                "RSS {:.1} / {:.1} MiB, fds {} / {} (after: every churning connection gone, {:.0} s later)",
                first.rss_kib as f64 / 1024.0,
                after.rss_kib as f64 / 1024.0,
                first.fds,
                after.fds,
                after.t_s - churn.duration_s,
            ),
        ));
    }
    rows
}

impl Report {
    fn dry_table(&self) -> String {
        let p = &self.publish;
        let d = &self.deliveries;
        let rows = [
            (
                "scenario",
                format!("{} (dry run: no connection made)", self.scenario),
            ),
            ("connections", self.connections.target.to_string()),
            ("subscriptions", self.subscriptions.active.to_string()),
            (
                "events",
                format!(
                    "{} in {:.1} s = {} events/s",
                    p.nominal_events,
                    p.duration_s,
                    rate(p.events_per_s)
                ),
            ),
            (
                "expected deliveries",
                format!(
                    "{} = {:.1} per event = {} per s",
                    d.expected,
                    d.expected as f64 / p.nominal_events.max(1) as f64,
                    rate(d.expected_per_s)
                ),
            ),
        ];
        let mut out = String::from("| metric | value |\n| --- | --- |\n");
        for (k, v) in rows {
            let _ = writeln!(out, "| {k} | {v} |");
        }
        out
    }
}

/// Counters at the previous progress line, for rates.
#[derive(Debug, Default, Clone, Copy)]
pub struct Progress {
    published: u64,
    received: u64,
    at_s: f64,
}

impl Progress {
    /// The progress line for now, given the latencies of the last interval.
    pub fn line(&mut self, shared: &Shared, interval: &Histogram<u64>, target: usize) -> String {
        let at_s = shared.started().elapsed().as_secs_f64();
        let dt = (at_s - self.at_s).max(1e-3);
        let published = Shared::get(&shared.published);
        let received = Shared::get(&shared.received);
        let line = format!(
            "[{at_s:6.1}s] {:<7} conns {}/{} ({} failed, {} closed) subs {} | pub {} ({}/s) | recv {} ({}/s) of {} exp | dup {} | dropped {} | p50 {} p99 {}",
            shared.phase().name(),
            Shared::get(&shared.established),
            target,
            Shared::get(&shared.failed),
            Shared::get(&shared.closed_early),
            Shared::get(&shared.subscribed),
            published,
            rate((published - self.published) as f64 / dt),
            received,
            rate((received - self.received) as f64 / dt),
            Shared::get(&shared.expected),
            Shared::get(&shared.duplicates),
            Shared::get(&shared.dropped_notices),
            if interval.is_empty() { "-".to_owned() } else { micros(interval.value_at_quantile(0.5)) },
            if interval.is_empty() { "-".to_owned() } else { micros(interval.value_at_quantile(0.99)) },
        );
        *self = Self {
            published,
            received,
            at_s,
        };
        line
    }
}

/// A rate, with thousands grouped.
pub fn rate(per_s: f64) -> String {
    if per_s >= 100.0 {
        group(per_s.round() as u64)
    } else {
        format!("{per_s:.1}")
    }
}

fn group(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// µs as ms or µs.
pub fn micros(us: u64) -> String {
    if us >= 1000 {
        format!("{:.2} ms", us as f64 / 1000.0)
    } else {
        format!("{us} µs")
    }
}

fn kib(v: Option<u64>) -> String {
    v.map_or("-".to_owned(), |k| format!("{:.1} MiB", k as f64 / 1024.0))
}

fn per_connection(bytes: Option<f64>) -> String {
    bytes.map_or("-".to_owned(), |b| format!("{:.1} KiB", b / 1024.0))
}

fn percent(v: Option<f64>) -> String {
    v.map_or("-".to_owned(), |p| format!("{p:.0} %"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_read_well() {
        assert_eq!(rate(1_234_567.4), "1,234,567");
        assert_eq!(rate(12.34), "12.3");
        assert_eq!(micros(999), "999 µs");
        assert_eq!(micros(4_560), "4.56 ms");
    }
}
