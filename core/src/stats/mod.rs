//! Measurements: lock-free latency histograms and the hub's stats snapshot.

mod histogram;

pub use histogram::{LatencyHistogram, LatencySummary};
