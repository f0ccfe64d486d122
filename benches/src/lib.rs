//! Synthetic subscribers and events for tickcast's benchmarks, shared by
//! the criterion benches and the `tickcast-load` load generator.
//!
//! # Layout
//!
//! - [`universe`]: the symbols and pattern names events and filters are drawn
//!   from; symbol popularity follows Zipf's law, as in TickStockPL's traffic.
//! - [`population`]: who subscribes to what: users with watchlist-style
//!   subscriptions, a few broad (pattern-only, tier-only) ones, and a probe
//!   symbol with a fixed audience whatever the population size.
//! - [`events`]: TickStockPL pattern detections shaped like
//!   `testdata/fixtures/tickstockpl_events.jsonl`, decoded into core [`Event`]s.
//! - [`latency`]: per-call percentiles, because the design's targets are p99 of
//!   single calls while criterion reports means of samples.
//! - [`load`]: `tickcast-load`, the end-to-end load generator (WebSocket
//!   clients, HTTP publisher, delivery check, report), callable as
//!   [`load::run`].
//! - [`floor`]: `tickcast-floor`, the simplest server that writes the same
//!   frames to the same sockets, whose cost `tickcast-load floor` reports
//!   tickcast's against.
//!
//! Everything is seeded: the same spec gives the same population and the
//! same events on every run, so figures are comparable across commits.
//!
//! [`Event`]: tickcast_core::model::Event
#![warn(missing_docs)]

pub mod floor;
pub mod latency;
pub mod load;
pub mod population;

pub use tickcast_core::sample::{events, universe};
