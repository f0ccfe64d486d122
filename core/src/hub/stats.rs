//! [`HubStats`]: a snapshot of a hub's state and counters.

use std::sync::atomic::Ordering;

use serde::Serialize;

use super::Hub;
use crate::broadcast::DeliveryCounts;
use crate::ingest::SourceStats;
use crate::model::Offset;
use crate::stats::LatencySummary;

/// Everything `/api/stats` shows.
#[derive(Debug, Clone, Serialize)]
#[non_exhaustive]
pub struct HubStats {
    /// Open connections.
    pub connections: usize,
    /// Users with an open connection (anonymous ones not counted).
    pub users: usize,
    /// Subscriptions in the index.
    pub subscriptions: usize,
    /// Events accepted.
    pub published: u64,
    /// Events in the history.
    pub history_len: usize,
    /// The newest offset.
    pub latest_offset: Option<Offset>,
    /// Route cache.
    pub route_cache: RouteCacheStats,
    /// Delivery counters.
    pub delivery: DeliveryCounts,
    /// Latency of each layer.
    pub latency: LayerLatency,
    /// Per ingest source.
    pub ingest: Vec<SourceStats>,
}

/// Route-cache effectiveness.
#[derive(Debug, Clone, Copy, Serialize)]
#[non_exhaustive]
pub struct RouteCacheStats {
    /// Lookups answered from the cache.
    pub hits: u64,
    /// Lookups that asked the index.
    pub misses: u64,
    /// hits / (hits + misses).
    pub hit_rate: f64,
}

/// Latency percentiles per layer, in microseconds.
#[derive(Debug, Clone, Copy, Serialize)]
#[non_exhaustive]
pub struct LayerLatency {
    /// Index match (route-cache misses only).
    pub index: LatencySummary,
    /// Routing, cache included.
    pub route: LatencySummary,
    /// Fan-out to the recipients' queues.
    pub fanout: LatencySummary,
    /// Acceptance to all queues filled.
    pub publish: LatencySummary,
    /// Acceptance to hand-off to the transport writer, per event.
    pub queue: LatencySummary,
}

impl Hub {
    /// A snapshot of the hub's state and counters.
    pub fn stats(&self) -> HubStats {
        let inner = &*self.inner;
        let cache = inner.router.cache_counts();
        let (history_len, latest_offset) = {
            let seq = inner.sequencer.lock();
            (seq.history.len(), seq.history.latest())
        };
        HubStats {
            connections: inner.broadcaster.connection_count(),
            users: inner.users.count(),
            subscriptions: inner.router.subscription_count(),
            published: inner.published.load(Ordering::Relaxed),
            history_len,
            latest_offset,
            route_cache: RouteCacheStats {
                hits: cache.hits,
                misses: cache.misses,
                hit_rate: cache.hit_rate(),
            },
            delivery: inner.counters.snapshot(),
            latency: LayerLatency {
                index: inner.router.index_latency(),
                route: inner.route_latency.summary(),
                fanout: inner.fanout_latency.summary(),
                publish: inner.publish_latency.summary(),
                queue: inner.counters.queue_latency.summary(),
            },
            ingest: self.source_stats(),
        }
    }
}
