//! [`Config::hub_config`]: the engine's share of the configuration.

use std::time::Duration;

use tickcast_core::broadcast::QueueSettings;
use tickcast_core::history::HistoryConfig;
use tickcast_core::hub::{DedupConfig, OffsetMode};
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
        HubConfig::default()
            // `validate` refused a schema that does not build.
            .with_schema(self.schema().unwrap_or_else(|_| defaults.schema.clone()))
            .with_queue(
                QueueSettings::default()
                    .with_capacity(d.queue_capacity)
                    .with_capacity_bytes(d.queue_capacity_bytes)
                    .with_message_capacity(d.message_capacity)
                    .with_message_capacity_bytes(d.message_capacity_bytes)
                    // One full replay of the history must fit, or a client
                    // resuming from its oldest event is closed on every try.
                    .with_replay_capacity(d.replay_capacity.unwrap_or(self.history.capacity).max(1))
                    .with_replay_capacity_bytes(d.replay_capacity_bytes)
                    .with_batch_window(Duration::from_millis(d.batch_window_ms))
                    .with_max_batch(d.max_batch)
                    .with_max_batch_bytes(d.max_batch_bytes),
            )
            .with_rate_limit_per_user(d.rate_limit_per_user)
            .with_limits(
                defaults
                    .limits
                    .with_max_subscriptions_per_connection(
                        self.limits.max_subscriptions_per_connection,
                    )
                    .with_max_connections_per_user(self.limits.max_connections_per_user),
            )
            .with_history(
                HistoryConfig::default()
                    .with_capacity(self.history.capacity)
                    .with_max_age(Duration::from_secs(self.history.max_age_s)),
            )
            .with_rules(self.routing.rules.clone())
            .with_cache(
                CacheConfig::default()
                    .with_capacity(self.routing.cache_capacity)
                    .with_ttl(Duration::from_secs(self.routing.cache_ttl_s)),
            )
            .with_offsets(if streams {
                OffsetMode::External
            } else {
                OffsetMode::Node
            })
            .with_dedup(
                DedupConfig::default()
                    .with_capacity(self.ingest.dedup_capacity)
                    .with_max_age(Duration::from_secs(self.ingest.dedup_window_s)),
            )
            // Streams mode reloads the history from the stream at start.
            .with_await_history(streams)
    }
}
