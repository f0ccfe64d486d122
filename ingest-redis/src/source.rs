//! [`RedisSource`]: the [`IngestSource`] over Redis, in either mode; core's
//! [`Reconnecting`] driver reconnects it.

use async_trait::async_trait;
use tickcast_core::ingest::{
    IngestItem, IngestSource, Link, Reconnecting, SourceContext, SourceOffsets,
};

use crate::config::{ConfigError, RedisConfig, RedisMode};
use crate::link::LinkError;
use crate::pubsub::PubSubConsumer;
use crate::sharded_pubsub::ShardedPubSub;
use crate::streams::{ShardedConsumer, StreamConsumer};

/// The source's name in stats and logs.
pub const SOURCE_NAME: &str = "redis";

/// One mode's consumer: all connect, yield items and disconnect alike.
enum Consumer {
    PubSub(PubSubConsumer),
    /// Pub/sub in a cluster: SSUBSCRIBE.
    ShardedPubSub(ShardedPubSub),
    Streams(StreamConsumer),
    /// Several stream keys, or a stream in a cluster.
    ShardedStreams(ShardedConsumer),
}

#[async_trait]
impl Link for Consumer {
    type Error = LinkError;

    async fn connect(&mut self) -> Result<(), LinkError> {
        match self {
            Self::PubSub(c) => c.connect().await,
            Self::ShardedPubSub(c) => c.connect().await,
            Self::Streams(c) => c.connect().await,
            Self::ShardedStreams(c) => c.connect().await,
        }
    }

    async fn next_item(&mut self) -> Result<IngestItem, LinkError> {
        match self {
            Self::PubSub(c) => c.next_item().await,
            Self::ShardedPubSub(c) => c.next_item().await,
            Self::Streams(c) => c.next_item().await,
            Self::ShardedStreams(c) => c.next_item().await,
        }
    }

    async fn disconnect(&mut self) {
        match self {
            Self::PubSub(c) => c.disconnect(),
            Self::ShardedPubSub(c) => c.disconnect(),
            Self::Streams(c) => c.disconnect(),
            Self::ShardedStreams(c) => c.disconnect(),
        }
    }

    /// Streams, first session: ready (and clients admitted,
    /// `HubConfig::await_history`) only once the history it reloads is in
    /// the hub, which the consumer says itself.
    fn reports_connected_later(&self) -> bool {
        match self {
            Self::PubSub(_) | Self::ShardedPubSub(_) => false,
            Self::Streams(c) => c.is_reloading(),
            Self::ShardedStreams(c) => c.is_reloading(),
        }
    }
}

/// Events from Redis pub/sub or a Redis stream, for
/// [`run_source`](tickcast_core::ingest::run_source).
///
/// It connects on the first [`next`](IngestSource::next) and yields
/// [`IngestItem::Connected`]. When the server goes away it yields
/// [`IngestItem::Disconnected`] once, then retries with exponential
/// backoff (`reconnect_min` doubling up to `reconnect_max`) for as long as
/// it runs, and yields `Connected` again when back (core's
/// [`Reconnecting`]). It never ends by itself.
///
/// Streams mode: each entry is yielded with its id as offset (the hub must
/// be in [`OffsetMode::External`](tickcast_core::hub::OffsetMode), which
/// `run_source` checks) and an acknowledger that moves the node's cursor
/// past it (a rejected entry too, so it is not read again forever). The
/// cursor is written to Redis with the next read; every session starts by
/// putting the group back at it, so nothing read but not accepted is
/// skipped (after a reconnect or a crash); the hub recognises any entry it
/// already had by offset. The lag
/// (entries of the stream not yet delivered to this node's group, from
/// XINFO GROUPS on Redis 7) goes to the counters `run_source` attaches,
/// checked at most once a second while reading.
pub struct RedisSource {
    driver: Reconnecting<Consumer>,
    offsets: SourceOffsets,
}

impl std::fmt::Debug for RedisSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisSource")
            .field("driver", &self.driver)
            .finish_non_exhaustive()
    }
}

impl RedisSource {
    /// A source for `config`; nothing connects until the first `next()`.
    /// Fails only on what [`RedisConfig::check`] refuses.
    ///
    /// In a cluster (`config.cluster`), pub/sub SSUBSCRIBEs to each channel
    /// on its shard, and Streams reads each of the `stream_shards` keys
    /// from the master that owns it; several keys (in a cluster or not)
    /// are merged into one offset order.
    pub fn new(config: RedisConfig) -> Result<Self, ConfigError> {
        config.check()?;
        let (min, max) = (config.reconnect_min, config.reconnect_max);
        let sharded = config.is_cluster() || config.stream_shards > 1;
        let offsets = match config.mode {
            RedisMode::PubSub => SourceOffsets::Hub,
            RedisMode::Streams => SourceOffsets::Broker,
        };
        let consumer = match config.mode {
            RedisMode::PubSub if config.is_cluster() => {
                Consumer::ShardedPubSub(ShardedPubSub::new(config.seeds()?, config))
            }
            RedisMode::PubSub => Consumer::PubSub(PubSubConsumer::new(config.client()?, config)),
            RedisMode::Streams if sharded => {
                Consumer::ShardedStreams(ShardedConsumer::new(config)?)
            }
            RedisMode::Streams => Consumer::Streams(StreamConsumer::new(config.client()?, config)),
        };
        Ok(Self {
            driver: Reconnecting::new(consumer, SOURCE_NAME, min, max),
            offsets,
        })
    }
}

/// Items [`run_source`](tickcast_core::ingest::run_source) may read ahead
/// of the hub: one XREADGROUP batch (500) and some.
const READ_AHEAD: usize = 1024;

#[async_trait]
impl IngestSource for RedisSource {
    fn name(&self) -> &str {
        SOURCE_NAME
    }

    /// Both modes may read ahead: pub/sub has no acks, and a stream
    /// entry moves the node's cursor only once the hub recorded it
    /// (through its acker).
    fn read_ahead(&self) -> usize {
        READ_AHEAD
    }

    /// Stream ids in Streams mode; none in pub/sub mode.
    fn offsets(&self) -> SourceOffsets {
        self.offsets
    }

    /// Not ready until it reached Redis.
    fn starts_connected(&self) -> bool {
        false
    }

    /// Bodies are decoded with the hub's schema; Streams mode reports its
    /// lag in the counters (summed over the shards), pub/sub has none.
    fn attach(&mut self, context: &SourceContext) {
        let (counters, schema) = (context.counters.clone(), context.schema.clone());
        match self.driver.link_mut() {
            Consumer::Streams(consumer) => {
                consumer.decoder.set_schema(schema);
                consumer.report_lag(counters);
            }
            Consumer::ShardedStreams(consumer) => {
                consumer.decoder.set_schema(schema);
                consumer.report_lag(counters);
            }
            Consumer::PubSub(consumer) => consumer.decoder.set_schema(schema),
            Consumer::ShardedPubSub(consumer) => consumer.decoder.set_schema(schema),
        }
    }

    async fn next(&mut self) -> Option<IngestItem> {
        Some(self.driver.next().await)
    }
}
