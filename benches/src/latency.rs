//! [`LatencySummary`]: percentiles of single calls.
//!
//! Criterion times batches of calls and reports statistics of the batch
//! means; it never sees one slow call. The design's targets are p99 of
//! single calls, so the benches also time calls one by one with this probe.

use std::fmt;
use std::time::{Duration, Instant};

/// Percentiles of `calls` timed calls. Each time includes the cost of
/// reading the clock once (some tens of nanoseconds).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LatencySummary {
    /// Number of calls timed.
    pub calls: usize,
    /// Median.
    pub p50: Duration,
    /// 99th percentile.
    pub p99: Duration,
    /// 99.9th percentile.
    pub p999: Duration,
    /// Slowest call.
    pub max: Duration,
}

impl LatencySummary {
    /// Times `calls` calls of `f` one by one, after `calls / 10` untimed
    /// warm-up calls.
    ///
    /// # Panics
    /// When `calls` is 0.
    pub fn measure(calls: usize, mut f: impl FnMut()) -> Self {
        assert!(calls > 0, "measure at least one call");
        for _ in 0..calls / 10 {
            f();
        }
        let mut times: Vec<Duration> = (0..calls)
            .map(|_| {
                let start = Instant::now();
                f();
                start.elapsed()
            })
            .collect();
        times.sort_unstable();
        let at = |q: f64| times[((calls as f64 * q) as usize).min(calls - 1)];
        Self {
            calls,
            p50: at(0.5),
            p99: at(0.99),
            p999: at(0.999),
            max: times[calls - 1],
        }
    }
}

impl fmt::Display for LatencySummary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} calls: p50 {:.2?}, p99 {:.2?}, p99.9 {:.2?}, max {:.2?}",
            self.calls, self.p50, self.p99, self.p999, self.max
        )
    }
}
