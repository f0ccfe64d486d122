//! [`LagSink`]: where a stream consumer reports its group's lag.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use tickcast_core::ingest::SourceCounters;

/// The source's lag counter, whole (one stream) or shared by the shards
/// of a sharded stream, which report their sum.
#[derive(Clone)]
pub(crate) enum LagSink {
    /// The lag of the only stream.
    Whole(Arc<SourceCounters>),
    /// Shard `.1`'s part of a sum.
    Shard(Arc<ShardLags>, usize),
}

impl LagSink {
    /// Records the group's lag on this stream.
    pub(crate) fn set(&self, lag: u64) {
        match self {
            Self::Whole(counters) => counters.set_lag(lag),
            Self::Shard(lags, index) => lags.set(*index, lag),
        }
    }
}

/// Every shard's last lag, summed into the counters.
pub(crate) struct ShardLags {
    counters: Arc<SourceCounters>,
    lags: Vec<AtomicU64>,
}

impl ShardLags {
    /// Room for `shards` shards.
    pub(crate) fn new(counters: Arc<SourceCounters>, shards: usize) -> Self {
        Self {
            counters,
            lags: (0..shards).map(|_| AtomicU64::new(0)).collect(),
        }
    }

    fn set(&self, index: usize, lag: u64) {
        if let Some(slot) = self.lags.get(index) {
            slot.store(lag, Ordering::Relaxed);
        }
        let total = self
            .lags
            .iter()
            .fold(0u64, |sum, l| sum.saturating_add(l.load(Ordering::Relaxed)));
        self.counters.set_lag(total);
    }
}
