//! [`Config::hub_config`]: the engine's share of the configuration.

use std::time::Duration;

use tickcast_core::broadcast::QueueSettings;
use tickcast_core::history::HistoryConfig;
use tickcast_core::hub::{DedupConfig, Limits, OffsetMode};
use tickcast_core::routing::CacheConfig;
use tickcast_core::HubConfig;

use super::{Config, RedisMode};

impl Config {
    /// The [`HubConfig`] this configuration describes. Keys the hub does not
    /// read (`listen`, `limits.max_frame_bytes`, `limits.max_publish_bytes`,
    /// auth, api, brokers' addresses) belong to the transports and ingests;
    /// `shards` keeps the hub's default (one per core).
    ///
    /// Redis Streams mode makes the stream ids the offsets
    /// ([`OffsetMode::External`]); every other setup numbers events on the
    /// node.
    pub fn hub_config(&self) -> HubConfig {
        let defaults = HubConfig::default();
        let d = &self.delivery;
        let streams = self
            .ingest
            .redis
            .as_ref()
            .is_some_and(|r| r.mode == RedisMode::Streams);
        HubConfig {
            // `validate` refused a schema that does not build.
            schema: self.schema().unwrap_or_else(|_| defaults.schema.clone()),
            queue: QueueSettings {
                capacity: d.queue_capacity,
                capacity_bytes: d.queue_capacity_bytes,
                message_capacity: d.message_capacity,
                message_capacity_bytes: d.message_capacity_bytes,
                // One full replay of the history must fit, or a client
                // resuming from its oldest event is closed on every try.
                replay_capacity: d.replay_capacity.unwrap_or(self.history.capacity).max(1),
                replay_capacity_bytes: d.replay_capacity_bytes,
                batch_window: Duration::from_millis(d.batch_window_ms),
                max_batch: d.max_batch,
                max_batch_bytes: d.max_batch_bytes,
            },
            rate_limit_per_user: d.rate_limit_per_user,
            limits: Limits {
                max_subscriptions_per_connection: self.limits.max_subscriptions_per_connection,
                max_connections_per_user: self.limits.max_connections_per_user,
                ..defaults.limits
            },
            history: HistoryConfig {
                capacity: self.history.capacity,
                max_age: Duration::from_secs(self.history.max_age_s),
            },
            rules: self.routing.rules.clone(),
            cache: CacheConfig {
                capacity: self.routing.cache_capacity,
                ttl: Duration::from_secs(self.routing.cache_ttl_s),
            },
            shards: defaults.shards,
            offsets: if streams {
                OffsetMode::External
            } else {
                OffsetMode::Node
            },
            dedup: DedupConfig {
                capacity: self.ingest.dedup_capacity,
                max_age: Duration::from_secs(self.ingest.dedup_window_s),
            },
            started_at: None,
            // Streams mode reloads the history from the stream at start.
            await_history: streams,
        }
    }
}
