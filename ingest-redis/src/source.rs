//! [`RedisSource`]: the [`IngestSource`] over Redis, in either mode, with
//! reconnects.

use std::sync::Arc;
use std::time::Instant;

use async_trait::async_trait;
use tickcast_core::ingest::{IngestItem, IngestSource, SourceCounters};

use crate::config::{ConfigError, RedisConfig, RedisMode};
use crate::link::LinkError;
use crate::pubsub::PubSubConsumer;
use crate::sharded_pubsub::ShardedPubSub;
use crate::streams::{ShardedConsumer, StreamConsumer};
use tickcast_core::ingest::Backoff;

/// The source's name in stats and logs.
pub const SOURCE_NAME: &str = "redis";

/// One mode's consumer: both connect, yield items and disconnect alike.
enum Consumer {
    PubSub(PubSubConsumer),
    /// Pub/sub in a cluster: SSUBSCRIBE.
    ShardedPubSub(ShardedPubSub),
    Streams(StreamConsumer),
    /// Several stream keys, or a stream in a cluster.
    ShardedStreams(ShardedConsumer),
}

impl Consumer {
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

    fn disconnect(&mut self) {
        match self {
            Self::PubSub(c) => c.disconnect(),
            Self::ShardedPubSub(c) => c.disconnect(),
            Self::Streams(c) => c.disconnect(),
            Self::ShardedStreams(c) => c.disconnect(),
        }
    }

    /// Whether the consumer reports `Connected` itself, once the entries
    /// it reloads at start are handed out (Streams, first session), rather
    /// than as soon as it is connected.
    fn reports_connected_later(&self) -> bool {
        match self {
            Self::PubSub(_) | Self::ShardedPubSub(_) => false,
            Self::Streams(c) => c.is_reloading(),
            Self::ShardedStreams(c) => c.is_reloading(),
        }
    }
}

/// Where the source stands with its server.
#[derive(Debug, Clone, Copy)]
enum Link {
    /// Never tried: the first attempt goes at once.
    Fresh,
    /// Connected since then.
    Up(Instant),
    /// Disconnected and already reported so; retrying with backoff.
    Down,
}

/// Events from Redis pub/sub or a Redis stream, for
/// [`run_source`](tickcast_core::ingest::run_source).
///
/// It connects on the first [`next`](IngestSource::next) and yields
/// [`IngestItem::Connected`]. When the server goes away it yields
/// [`IngestItem::Disconnected`] once, then retries with exponential
/// backoff (`reconnect_min` doubling up to `reconnect_max`) for as long as
/// it runs, and yields `Connected` again when back. It never ends by
/// itself.
///
/// Streams mode: each entry is yielded with its id as offset and an
/// acknowledger (XACK; a rejected entry is acknowledged too, so it is not
/// redelivered forever). XACKs are batched and sent before the next read.
/// After a reconnect the consumer's pending entries are read again before
/// new ones, so nothing unacknowledged is skipped; the hub recognises any
/// it already had by offset.
pub struct RedisSource {
    consumer: Consumer,
    link: Link,
    backoff: Backoff,
    /// A session that lasted this long earns a fresh backoff; one that
    /// fails at once (a server answering every read with an error) keeps
    /// backing off instead of spinning.
    stable_after: std::time::Duration,
}

impl std::fmt::Debug for RedisSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisSource")
            .field("link", &self.link)
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
        let backoff = Backoff::new(config.reconnect_min, config.reconnect_max);
        let stable_after = config.reconnect_max;
        let sharded = config.is_cluster() || config.stream_shards > 1;
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
            consumer,
            link: Link::Fresh,
            backoff,
            stable_after,
        })
    }

    /// Streams mode: keep `counters`' lag (entries of the stream not yet
    /// delivered to this node's group, from XINFO GROUPS on Redis 7) up to
    /// date, checked at most once a second while reading. Pass
    /// `hub.source("redis")`. No effect in pub/sub mode, which has no lag.
    pub fn with_lag_reporting(mut self, counters: Arc<SourceCounters>) -> Self {
        match &mut self.consumer {
            Consumer::Streams(consumer) => consumer.report_lag(counters),
            // The sum over the shards.
            Consumer::ShardedStreams(consumer) => consumer.report_lag(counters),
            Consumer::PubSub(_) | Consumer::ShardedPubSub(_) => {}
        }
        self
    }

    /// Ends the session after `error`; the caller reports it.
    fn lose(&mut self, since: Instant, error: &LinkError) -> IngestItem {
        self.consumer.disconnect();
        if since.elapsed() >= self.stable_after {
            self.backoff.reset();
        }
        self.link = Link::Down;
        tracing::warn!(source = SOURCE_NAME, "lost redis: {error}; reconnecting");
        IngestItem::Disconnected(error.to_string())
    }

    /// One connection attempt (after the backoff delay unless it is the
    /// first). `None`: failed again while already reported down.
    async fn attempt(&mut self) -> Option<IngestItem> {
        let first = matches!(self.link, Link::Fresh);
        if !first {
            tokio::time::sleep(self.backoff.next_delay()).await;
        }
        match self.consumer.connect().await {
            Ok(()) => {
                self.link = Link::Up(Instant::now());
                tracing::info!(source = SOURCE_NAME, "connected to redis");
                // Streams, first session: ready (and clients admitted,
                // `HubConfig::await_history`) only once the history it
                // reloads is in the hub.
                (!self.consumer.reports_connected_later()).then_some(IngestItem::Connected)
            }
            Err(error) if first => {
                self.consumer.disconnect();
                self.link = Link::Down;
                tracing::warn!(
                    source = SOURCE_NAME,
                    "cannot reach redis: {error}; retrying"
                );
                Some(IngestItem::Disconnected(error.to_string()))
            }
            Err(error) => {
                self.consumer.disconnect();
                tracing::debug!(source = SOURCE_NAME, "redis still unreachable: {error}");
                None
            }
        }
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

    /// Both modes may read ahead: pub/sub has no acks, and a stream entry
    /// is only XACKed once the hub recorded it (through its acker).
    fn read_ahead(&self) -> usize {
        READ_AHEAD
    }

    async fn next(&mut self) -> Option<IngestItem> {
        loop {
            match self.link {
                Link::Up(since) => match self.consumer.next_item().await {
                    Ok(item) => return Some(item),
                    Err(error) => return Some(self.lose(since, &error)),
                },
                Link::Fresh | Link::Down => {
                    if let Some(item) = self.attempt().await {
                        return Some(item);
                    }
                }
            }
        }
    }
}
