//! Delivery counters shared by every connection queue of a hub.

use std::sync::atomic::{AtomicU64, Ordering};

use serde::Serialize;

use crate::stats::LatencyHistogram;

/// Counts of what happened to events on their way out. Updated with
/// relaxed atomics, off the common path where possible.
#[derive(Debug, Default)]
pub struct DeliveryCounters {
    /// Events pushed to connection queues by fan-out.
    pub enqueued: AtomicU64,
    /// Events handed to transports (in `event` or `batch` frames).
    pub delivered: AtomicU64,
    /// Events replayed from history.
    pub replayed: AtomicU64,
    /// `batch` frames produced.
    pub batches: AtomicU64,
    /// Events over a user's rate limit (conflated or dropped).
    pub rate_limited: AtomicU64,
    /// Rate-limited events superseded by a newer one with the same key.
    pub conflated: AtomicU64,
    /// Events dropped by the rate limit (no conflation key).
    pub dropped_rate_limit: AtomicU64,
    /// Low-priority events dropped from full queues.
    pub dropped_low: AtomicU64,
    /// Medium-priority events dropped from full queues.
    pub dropped_medium: AtomicU64,
    /// Connections closed with 4008.
    pub slow_consumer_closes: AtomicU64,
    /// Connections dropped because their socket took no data for the
    /// write timeout.
    pub write_timeouts: AtomicU64,
    /// Time from acceptance by the hub to hand-off to the transport.
    pub queue_latency: LatencyHistogram,
}

impl DeliveryCounters {
    pub(crate) fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }

    /// A point-in-time copy.
    pub fn snapshot(&self) -> DeliveryCounts {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        DeliveryCounts {
            enqueued: get(&self.enqueued),
            delivered: get(&self.delivered),
            replayed: get(&self.replayed),
            batches: get(&self.batches),
            rate_limited: get(&self.rate_limited),
            conflated: get(&self.conflated),
            dropped_rate_limit: get(&self.dropped_rate_limit),
            dropped_low: get(&self.dropped_low),
            dropped_medium: get(&self.dropped_medium),
            slow_consumer_closes: get(&self.slow_consumer_closes),
            write_timeouts: get(&self.write_timeouts),
        }
    }
}

/// What happened to events on their way out, counted since the hub
/// started (a copy of the hub's counters).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct DeliveryCounts {
    /// Events pushed to connection queues.
    pub enqueued: u64,
    /// Events handed to transports.
    pub delivered: u64,
    /// Events replayed from history.
    pub replayed: u64,
    /// `batch` frames produced.
    pub batches: u64,
    /// Events over a rate limit.
    pub rate_limited: u64,
    /// Events superseded under the rate limit.
    pub conflated: u64,
    /// Events dropped by the rate limit.
    pub dropped_rate_limit: u64,
    /// Low events dropped from full queues.
    pub dropped_low: u64,
    /// Medium events dropped from full queues.
    pub dropped_medium: u64,
    /// Connections closed as slow consumers.
    pub slow_consumer_closes: u64,
    /// Connections dropped at the write deadline.
    pub write_timeouts: u64,
}
