//! Delivery: per-connection queues with priorities, batching, rate limits,
//! conflation and the slow-consumer policy ([`ConnectionQueue`]), frames
//! encoded once per event ([`PreparedEvent`]), and the fan-out to queues
//! ([`Broadcaster`]).

mod broadcaster;
mod counters;
mod frame;
mod queue;
mod rate;
mod settings;
mod state;
mod wakeup;

pub use broadcaster::{Broadcaster, ShardedBroadcaster, WakeList};
pub use counters::{DeliveryCounters, DeliveryCounts};
pub use frame::{encode_batch, EventFrame, FrameEncoder, PreparedEvent, ResumeTail};
pub(crate) use queue::Polled;
pub use queue::{ConnectionQueue, FrameReceiver, Outbound, PushOutcome, Urgency};
pub use rate::RateLimiter;
pub use settings::QueueSettings;
pub use state::Held;
pub(crate) use wakeup::Wakeup;

#[cfg(test)]
mod queue_tests;
