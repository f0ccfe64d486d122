//! The engine's parts, for tickcast's own benches and fuzz targets only.
//!
//! Compiled with cargo feature `internals` and hidden from the docs: these
//! are the hub's private pieces (its connection queues, fan-out, router
//! and history ring), measured and fuzzed one by one. They are **not**
//! part of the stable API and change shape without notice; an embedder
//! reaches them through [`Hub`](crate::Hub) only.

pub use crate::broadcast::broadcaster::ShardedBroadcaster;
pub use crate::broadcast::counters::DeliveryCounters;
pub use crate::broadcast::queue::{ConnectionQueue, Urgency};
pub use crate::history::ring::History;
pub use crate::routing::router::{IndexRouter, Route};
