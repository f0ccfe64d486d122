//! Delivery: per-connection queues with priorities, batching, rate limits,
//! conflation and the slow-consumer policy, frames encoded once per event
//! ([`PreparedEvent`]), and the fan-out to queues.
//!
//! Public here is what a transport reads and writes: the
//! [`FrameReceiver`] end of a connection's queue, the [`Outbound`] items it
//! yields, their [`EventFrame`]s (with [`ResumeTail`] and
//! [`encode_batch`] to put them on the wire), the [`QueueSettings`] a hub
//! is configured with and the [`DeliveryCounts`] it reports. The queue
//! itself, the fan-out, the rate limiter and the frame encoder are the
//! hub's business: they may change shape between releases.

pub(crate) mod broadcaster;
pub(crate) mod counters;
mod frame;
pub(crate) mod queue;
mod rate;
mod settings;
mod state;
mod wakeup;

pub(crate) use broadcaster::{ShardedBroadcaster, WakeList};
pub(crate) use counters::DeliveryCounters;
pub use counters::DeliveryCounts;
pub use frame::{encode_batch, EventFrame, PreparedEvent, ResumeTail};
pub(crate) use queue::{ConnectionQueue, Polled};
pub use queue::{FrameReceiver, Outbound};
pub(crate) use rate::RateLimiter;
pub use settings::QueueSettings;
pub(crate) use wakeup::Wakeup;

#[cfg(test)]
mod queue_tests;
