//! [`MetricsExporter`]: the hub's stats in the Prometheus text format.
//!
//! The hub keeps its own lock-free counters and histograms; copying them
//! into a `metrics` recorder on every event would cost the hot path for
//! nothing. Instead each scrape takes one [`Hub::stats`] snapshot and sets
//! the gauges and counters from it, then renders. The recorder is this
//! server's own (never installed globally), so several servers can live in
//! one process, as in the tests.

use metrics::{counter, describe_counter, describe_gauge, gauge, Unit};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle, PrometheusRecorder};
use tickcast_core::stats::LatencySummary;
use tickcast_core::Hub;

/// Every metric name this exporter writes, for docs and tests.
pub const METRIC_NAMES: &[&str] = &[
    "tickcast_build_info",
    "tickcast_connections",
    "tickcast_users",
    "tickcast_subscriptions",
    "tickcast_published_events_total",
    "tickcast_history_events",
    "tickcast_route_cache_hits_total",
    "tickcast_route_cache_misses_total",
    "tickcast_route_cache_hit_ratio",
    "tickcast_delivery_enqueued_total",
    "tickcast_delivery_delivered_total",
    "tickcast_delivery_replayed_total",
    "tickcast_delivery_batches_total",
    "tickcast_delivery_rate_limited_total",
    "tickcast_delivery_conflated_total",
    "tickcast_delivery_dropped_rate_limit_total",
    "tickcast_delivery_dropped_low_total",
    "tickcast_delivery_dropped_medium_total",
    "tickcast_delivery_slow_consumer_closes_total",
    "tickcast_delivery_write_timeouts_total",
    "tickcast_latency_seconds",
    "tickcast_latency_samples_total",
    "tickcast_ingest_accepted_total",
    "tickcast_ingest_duplicates_total",
    "tickcast_ingest_rejected_total",
    "tickcast_ingest_errors_total",
    "tickcast_ingest_lag",
    "tickcast_ingest_connected",
];

/// A Prometheus recorder fed from hub snapshots at scrape time.
pub struct MetricsExporter {
    recorder: PrometheusRecorder,
    handle: PrometheusHandle,
    node_id: String,
}

impl std::fmt::Debug for MetricsExporter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MetricsExporter")
            .field("node_id", &self.node_id)
            .finish_non_exhaustive()
    }
}

impl MetricsExporter {
    /// An exporter whose `tickcast_build_info` names `node_id`.
    pub fn new(node_id: &str) -> Self {
        let recorder = PrometheusBuilder::new().build_recorder();
        let handle = recorder.handle();
        let exporter = Self {
            recorder,
            handle,
            node_id: node_id.to_owned(),
        };
        metrics::with_local_recorder(&exporter.recorder, describe_all);
        exporter
    }

    /// The exposition text for `hub` right now.
    pub fn render(&self, hub: &Hub) -> String {
        let stats = hub.stats();
        metrics::with_local_recorder(&self.recorder, || {
            gauge!(
                "tickcast_build_info",
                "version" => env!("CARGO_PKG_VERSION"),
                "node_id" => self.node_id.clone()
            )
            .set(1.0);
            gauge!("tickcast_connections").set(stats.connections as f64);
            gauge!("tickcast_users").set(stats.users as f64);
            gauge!("tickcast_subscriptions").set(stats.subscriptions as f64);
            counter!("tickcast_published_events_total").absolute(stats.published);
            gauge!("tickcast_history_events").set(stats.history_len as f64);

            let cache = &stats.route_cache;
            counter!("tickcast_route_cache_hits_total").absolute(cache.hits);
            counter!("tickcast_route_cache_misses_total").absolute(cache.misses);
            gauge!("tickcast_route_cache_hit_ratio").set(cache.hit_rate);

            let d = &stats.delivery;
            counter!("tickcast_delivery_enqueued_total").absolute(d.enqueued);
            counter!("tickcast_delivery_delivered_total").absolute(d.delivered);
            counter!("tickcast_delivery_replayed_total").absolute(d.replayed);
            counter!("tickcast_delivery_batches_total").absolute(d.batches);
            counter!("tickcast_delivery_rate_limited_total").absolute(d.rate_limited);
            counter!("tickcast_delivery_conflated_total").absolute(d.conflated);
            counter!("tickcast_delivery_dropped_rate_limit_total").absolute(d.dropped_rate_limit);
            counter!("tickcast_delivery_dropped_low_total").absolute(d.dropped_low);
            counter!("tickcast_delivery_dropped_medium_total").absolute(d.dropped_medium);
            counter!("tickcast_delivery_slow_consumer_closes_total")
                .absolute(d.slow_consumer_closes);
            counter!("tickcast_delivery_write_timeouts_total").absolute(d.write_timeouts);

            let l = &stats.latency;
            for (layer, summary) in [
                ("index", &l.index),
                ("route", &l.route),
                ("fanout", &l.fanout),
                ("publish", &l.publish),
                ("queue", &l.queue),
            ] {
                latency(layer, summary);
            }

            for source in &stats.ingest {
                let name = source.name.clone();
                counter!("tickcast_ingest_accepted_total", "source" => name.clone())
                    .absolute(source.accepted);
                counter!("tickcast_ingest_duplicates_total", "source" => name.clone())
                    .absolute(source.duplicates);
                for (reason, count) in &source.rejected {
                    counter!(
                        "tickcast_ingest_rejected_total",
                        "source" => name.clone(),
                        "reason" => reason.to_string()
                    )
                    .absolute(*count);
                }
                counter!("tickcast_ingest_errors_total", "source" => name.clone())
                    .absolute(source.errors);
                gauge!("tickcast_ingest_lag", "source" => name.clone()).set(source.lag as f64);
                gauge!("tickcast_ingest_connected", "source" => name).set(if source.connected {
                    1.0
                } else {
                    0.0
                });
            }
        });
        self.handle.render()
    }
}

/// Quantiles of one layer, in seconds, plus its sample count.
fn latency(layer: &'static str, summary: &LatencySummary) {
    for (quantile, us) in [
        ("0.5", summary.p50_us),
        ("0.9", summary.p90_us),
        ("0.99", summary.p99_us),
        ("0.999", summary.p999_us),
        ("1", summary.max_us),
    ] {
        gauge!("tickcast_latency_seconds", "layer" => layer, "quantile" => quantile)
            .set(us / 1_000_000.0);
    }
    counter!("tickcast_latency_samples_total", "layer" => layer).absolute(summary.count);
}

/// HELP lines.
fn describe_all() {
    describe_gauge!(
        "tickcast_build_info",
        "Always 1; labels give the version and node id."
    );
    describe_gauge!("tickcast_connections", "Open client connections.");
    describe_gauge!(
        "tickcast_users",
        "Users with an open connection (anonymous ones not counted)."
    );
    describe_gauge!("tickcast_subscriptions", "Subscriptions in the index.");
    describe_counter!(
        "tickcast_published_events_total",
        "Events accepted by the hub."
    );
    describe_gauge!(
        "tickcast_history_events",
        "Events held in the history ring."
    );
    describe_counter!(
        "tickcast_route_cache_hits_total",
        "Route lookups answered by the cache."
    );
    describe_counter!(
        "tickcast_route_cache_misses_total",
        "Route lookups that asked the index."
    );
    describe_gauge!(
        "tickcast_route_cache_hit_ratio",
        "Route-cache hits / lookups since start."
    );
    describe_counter!(
        "tickcast_delivery_enqueued_total",
        "Events pushed to connection queues."
    );
    describe_counter!(
        "tickcast_delivery_delivered_total",
        "Events handed to transports."
    );
    describe_counter!(
        "tickcast_delivery_replayed_total",
        "Events replayed from history."
    );
    describe_counter!("tickcast_delivery_batches_total", "Batch frames produced.");
    describe_counter!(
        "tickcast_delivery_rate_limited_total",
        "Events over a user's rate limit."
    );
    describe_counter!(
        "tickcast_delivery_conflated_total",
        "Rate-limited events superseded by a newer one."
    );
    describe_counter!(
        "tickcast_delivery_dropped_rate_limit_total",
        "Events dropped by the rate limit."
    );
    describe_counter!(
        "tickcast_delivery_dropped_low_total",
        "Low-priority events dropped from full queues."
    );
    describe_counter!(
        "tickcast_delivery_dropped_medium_total",
        "Medium-priority events dropped from full queues."
    );
    describe_counter!(
        "tickcast_delivery_slow_consumer_closes_total",
        "Connections closed as slow consumers (4008)."
    );
    describe_counter!(
        "tickcast_delivery_write_timeouts_total",
        "Connections dropped because their socket took no data for http.write_timeout_ms."
    );
    describe_gauge!("tickcast_latency_seconds", Unit::Seconds, "Latency quantiles per layer (index, route, fanout, publish, queue); quantile 1 is the maximum.");
    describe_counter!(
        "tickcast_latency_samples_total",
        "Latency samples per layer."
    );
    describe_counter!(
        "tickcast_ingest_accepted_total",
        "Events accepted per ingest source."
    );
    describe_counter!(
        "tickcast_ingest_duplicates_total",
        "Redeliveries already accepted, per source."
    );
    describe_counter!(
        "tickcast_ingest_rejected_total",
        "Malformed messages per source and reason."
    );
    describe_counter!("tickcast_ingest_errors_total", "Broker errors per source.");
    describe_gauge!(
        "tickcast_ingest_lag",
        "Messages waiting at the broker per source."
    );
    describe_gauge!(
        "tickcast_ingest_connected",
        "1 while the source is connected to its broker."
    );
}
