//! `[ingest.redis]` -> [`RedisSource`] and [`RedisPublisher`]; listed in
//! [`brokers`](super::brokers).

use std::time::Duration;

use tickcast_core::Hub;
use tickcast_ingest_redis::{RedisConfig, RedisMode, RedisPublisher, RedisSource};

use super::{IngestError, Started};
use crate::config::{self, Config, RedisIngest};

/// Starts the source of `[ingest.redis]` (its lag reported in stats) and
/// makes its publisher; nothing to start without the section.
pub(super) fn start(config: &Config, hub: &Hub) -> Result<Started, IngestError> {
    let section = config.ingest.redis.as_ref();
    let settings = settings(section.ok_or_else(|| IngestError::absent(SECTION))?, config);
    let publisher = RedisPublisher::new(&settings);
    super::start(SECTION, hub, RedisSource::new(settings), publisher)
}

/// The section's name in errors.
const SECTION: &str = "ingest.redis";

/// BLOCK of a stream's reads when `stream_block_ms` is unset: long for one
/// stream (nothing waits on it), shorter for several (an idle shard whose
/// probes cannot tell holds the merge back until its read returns).
const BLOCK_MS_ONE_SHARD: u64 = 5000;
const BLOCK_MS_SHARDED: u64 = 1000;

/// The crate's settings: the section's keys, the node's consumer group
/// and name, the body limit, and as much backfill as the history holds.
fn settings(section: &RedisIngest, config: &Config) -> RedisConfig {
    let block_ms = section
        .stream_block_ms
        .unwrap_or(match section.stream_shards {
            0 | 1 => BLOCK_MS_ONE_SHARD,
            _ => BLOCK_MS_SHARDED,
        });
    RedisConfig {
        url: section.url.clone(),
        cluster: section.cluster.clone(),
        stream_shards: section.stream_shards,
        block: Duration::from_millis(block_ms),
        mode: match section.mode {
            config::RedisMode::PubSub => RedisMode::PubSub,
            config::RedisMode::Streams => RedisMode::Streams,
        },
        channels: section.channels.clone(),
        stream: section.stream.clone(),
        stream_maxlen: Some(section.stream_maxlen),
        group: format!("tickcast-{}", config.node_id),
        consumer: config.node_id.clone(),
        max_body_bytes: config.limits.max_publish_bytes,
        backfill: config.history.capacity,
        ..RedisConfig::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cluster_keys_reach_the_crate_and_block_follows_the_shards() {
        let config = Config::default();
        let one = settings(&RedisIngest::default(), &config);
        assert!(one.cluster.is_empty());
        assert_eq!(one.stream_shards, 1);
        assert_eq!(one.block, Duration::from_millis(BLOCK_MS_ONE_SHARD));

        let section = RedisIngest {
            cluster: vec!["redis://10.0.0.1:7000".into()],
            mode: config::RedisMode::Streams,
            stream_shards: 4,
            ..RedisIngest::default()
        };
        let sharded = settings(&section, &config);
        assert_eq!(sharded.cluster, ["redis://10.0.0.1:7000"]);
        assert_eq!(sharded.stream_shards, 4);
        assert_eq!(sharded.block, Duration::from_millis(BLOCK_MS_SHARDED));

        let chosen = RedisIngest {
            stream_block_ms: Some(250),
            ..section
        };
        assert_eq!(settings(&chosen, &config).block, Duration::from_millis(250));
    }
}
