//! [`LatencyHistogram`]: a lock-free log-linear histogram of durations.
//!
//! Recording is one relaxed atomic add, so every connection queue and the
//! publish path can record into a shared histogram without a lock. Buckets
//! are powers of two split into 8 linear steps: a reported percentile is
//! within 12.5 % of the true value.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use serde::Serialize;

const SUB_BITS: u32 = 3;
const SUBS: usize = 1 << SUB_BITS;
/// Covers up to 2^40 ns (about 18 minutes); longer values clamp.
const OCTAVES: usize = 41;
const BUCKETS: usize = OCTAVES * SUBS;

/// Concurrent histogram of nanosecond values.
pub struct LatencyHistogram {
    buckets: Box<[AtomicU64]>,
    max: AtomicU64,
}

impl std::fmt::Debug for LatencyHistogram {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LatencyHistogram")
            .field("summary", &self.summary())
            .finish()
    }
}

impl Default for LatencyHistogram {
    fn default() -> Self {
        Self {
            buckets: (0..BUCKETS).map(|_| AtomicU64::new(0)).collect(),
            max: AtomicU64::new(0),
        }
    }
}

fn bucket_of(ns: u64) -> usize {
    if ns < SUBS as u64 {
        return ns as usize;
    }
    let octave = 63 - ns.leading_zeros(); // >= SUB_BITS
    let sub = (ns >> (octave - SUB_BITS)) as usize & (SUBS - 1);
    let index = (octave - SUB_BITS + 1) as usize * SUBS + sub;
    index.min(BUCKETS - 1)
}

/// The largest value that falls in `index`.
fn upper_bound(index: usize) -> u64 {
    if index < SUBS {
        return index as u64;
    }
    let octave = (index / SUBS) as u32 + SUB_BITS - 1;
    let sub = (index % SUBS) as u64;
    let step = 1u64 << (octave - SUB_BITS);
    (1u64 << octave) + (sub + 1) * step - 1
}

impl LatencyHistogram {
    /// Records one duration.
    pub fn record(&self, d: Duration) {
        self.record_ns(u64::try_from(d.as_nanos()).unwrap_or(u64::MAX));
    }

    /// Records one value in nanoseconds.
    pub fn record_ns(&self, ns: u64) {
        self.buckets[bucket_of(ns)].fetch_add(1, Ordering::Relaxed);
        self.max.fetch_max(ns, Ordering::Relaxed);
    }

    /// Count and percentiles so far.
    pub fn summary(&self) -> LatencySummary {
        let counts: Vec<u64> = self
            .buckets
            .iter()
            .map(|b| b.load(Ordering::Relaxed))
            .collect();
        let count: u64 = counts.iter().sum();
        let max = self.max.load(Ordering::Relaxed);
        let at = |q: f64| -> u64 {
            if count == 0 {
                return 0;
            }
            let rank = ((q * count as f64).ceil() as u64).max(1);
            let mut seen = 0;
            for (i, c) in counts.iter().enumerate() {
                seen += c;
                if seen >= rank {
                    return upper_bound(i).min(max);
                }
            }
            max
        };
        LatencySummary {
            count,
            p50_us: to_us(at(0.50)),
            p90_us: to_us(at(0.90)),
            p99_us: to_us(at(0.99)),
            p999_us: to_us(at(0.999)),
            max_us: to_us(max),
        }
    }
}

fn to_us(ns: u64) -> f64 {
    ns as f64 / 1000.0
}

/// Percentiles of a latency histogram, in microseconds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
#[non_exhaustive]
pub struct LatencySummary {
    /// Values recorded.
    pub count: u64,
    /// Median.
    pub p50_us: f64,
    /// 90th percentile.
    pub p90_us: f64,
    /// 99th percentile.
    pub p99_us: f64,
    /// 99.9th percentile.
    pub p999_us: f64,
    /// Largest value.
    pub max_us: f64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_are_monotonic_and_bound_their_values() {
        let mut last = 0;
        for ns in (0..5000u64).chain([1 << 20, (1 << 20) + 12345, 1 << 39]) {
            let b = bucket_of(ns);
            assert!(b >= last || ns > 5000);
            last = b;
            assert!(upper_bound(b) >= ns, "{ns}");
            assert!(upper_bound(b) as f64 <= ns as f64 * 1.125 + 1.0, "{ns}");
        }
    }

    #[test]
    fn percentiles_are_within_the_bucket_precision() {
        let h = LatencyHistogram::default();
        for us in 1..=1000u64 {
            h.record(Duration::from_micros(us));
        }
        let s = h.summary();
        assert_eq!(s.count, 1000);
        assert!((500.0..=563.0).contains(&s.p50_us), "{s:?}");
        assert!((990.0..=1000.0).contains(&s.p99_us), "{s:?}");
        assert_eq!(s.max_us, 1000.0);
        assert_eq!(LatencyHistogram::default().summary().count, 0);
    }
}
