//! Measurements: the [`LatencySummary`] a hub's stats report (recorded in
//! lock-free histograms of the crate's own).

mod histogram;

pub(crate) use histogram::LatencyHistogram;
pub use histogram::LatencySummary;
