//! [`QueueSettings`]: batching, and the bounds of everything one
//! connection's queue may hold.
//!
//! Each part of the queue is bounded twice, in items and in bytes: items
//! bound the bookkeeping a client can make the server keep (a `pong` is a
//! few bytes on the wire but a whole message in memory), bytes bound what
//! the items carry (a `pong` can echo a 60 KB `ts`). A part that is empty
//! always takes one item whatever its size, so a single large event or
//! message is never refused for its size alone: each bound is its limit
//! plus at most one item.

use std::time::Duration;

/// Batching settings of a queue and the bounds of what it holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct QueueSettings {
    /// Most events held (urgent, batched and rate-limit-held together).
    /// Over it, the slow-consumer policy applies: low then medium events
    /// are dropped, and an incoming high or critical event with nothing
    /// left to drop closes the connection (4008).
    pub capacity: usize,
    /// Most event frame bytes held, under the same policy as
    /// [`capacity`](Self::capacity). 16 MiB by default: a client must fall
    /// that far behind before anything is dropped for size, while 4096
    /// events of typical size (a few hundred bytes) weigh about 2 MiB, so
    /// the item bound governs ordinary traffic.
    pub capacity_bytes: usize,
    /// Most protocol messages (`subscribed`, `pong`, `error`, ...) waiting
    /// to be sent. They answer what the client sends, so only a client that
    /// sends without reading fills them; over it the connection is closed
    /// (4008). 4096 by default, far more than a burst of subscribes at the
    /// default 64 subscriptions per connection produces.
    pub message_capacity: usize,
    /// Most protocol-message bytes (as encoded JSON) waiting to be sent;
    /// over it the connection is closed (4008). 256 KiB by default: four
    /// `pong`s echoing the largest `ts` a 64 KiB frame can carry.
    pub message_capacity_bytes: usize,
    /// Most history events waiting to be replayed, all subscriptions
    /// together; over it the connection is closed (4008). A reconnecting
    /// client would be closed again on every resume that needs more, so it
    /// must hold one full replay: 100,000 by default, the default history
    /// capacity.
    pub replay_capacity: usize,
    /// Most replay frame bytes waiting to be sent (estimated from the
    /// events' encoded size); over it the connection is closed (4008).
    /// 64 MiB by default: one full replay of the default history at up to
    /// about 670 bytes per event. The events themselves are shared with the
    /// history; this bounds what one connection keeps alive after the
    /// history has let them go.
    pub replay_capacity_bytes: usize,
    /// How long the first batched event may wait for company; zero sends
    /// whatever is queued whenever the writer is ready.
    pub batch_window: Duration,
    /// Most events in one batch frame.
    pub max_batch: usize,
    /// Most event bytes in one batch frame (at least one event per batch).
    pub max_batch_bytes: usize,
}

setters!(QueueSettings {
    with_capacity => capacity: usize,
    with_capacity_bytes => capacity_bytes: usize,
    with_message_capacity => message_capacity: usize,
    with_message_capacity_bytes => message_capacity_bytes: usize,
    with_replay_capacity => replay_capacity: usize,
    with_replay_capacity_bytes => replay_capacity_bytes: usize,
    with_batch_window => batch_window: Duration,
    with_max_batch => max_batch: usize,
    with_max_batch_bytes => max_batch_bytes: usize,
});

impl Default for QueueSettings {
    fn default() -> Self {
        Self {
            capacity: 4096,
            capacity_bytes: 16 << 20,
            message_capacity: 4096,
            message_capacity_bytes: 256 << 10,
            replay_capacity: 100_000,
            replay_capacity_bytes: 64 << 20,
            batch_window: Duration::from_millis(100),
            max_batch: 50,
            max_batch_bytes: 64 * 1024,
        }
    }
}
