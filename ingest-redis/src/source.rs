//! [`RedisSource`]: the [`IngestSource`] over Redis, in either mode, with
//! reconnects.

use std::sync::Arc;
use std::time::Instant;

use async_trait::async_trait;
use tickcast_core::ingest::{IngestItem, IngestSource, SourceCounters};

use crate::config::{ConfigError, RedisConfig, RedisMode};
use crate::link::LinkError;
use crate::pubsub::PubSubConsumer;
use crate::streams::StreamConsumer;
use tickcast_core::ingest::Backoff;

/// The source's name in stats and logs.
pub const SOURCE_NAME: &str = "redis";

/// One mode's consumer: both connect, yield items and disconnect alike.
enum Consumer {
    PubSub(PubSubConsumer),
    Streams(StreamConsumer),
}

impl Consumer {
    async fn connect(&mut self) -> Result<(), LinkError> {
        match self {
            Self::PubSub(c) => c.connect().await,
            Self::Streams(c) => c.connect().await,
        }
    }

    async fn next_item(&mut self) -> Result<IngestItem, LinkError> {
        match self {
            Self::PubSub(c) => c.next_item().await,
            Self::Streams(c) => c.next_item().await,
        }
    }

    fn disconnect(&mut self) {
        match self {
            Self::PubSub(c) => c.disconnect(),
            Self::Streams(c) => c.disconnect(),
        }
    }

    /// Whether the consumer reports `Connected` itself, once the entries
    /// it reloads at start are handed out (Streams, first session), rather
    /// than as soon as it is connected.
    fn reports_connected_later(&self) -> bool {
        match self {
            Self::PubSub(_) => false,
            Self::Streams(c) => c.is_reloading(),
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
    /// Fails only on a URL that does not parse.
    pub fn new(config: RedisConfig) -> Result<Self, ConfigError> {
        let client = config.client()?;
        let backoff = Backoff::new(config.reconnect_min, config.reconnect_max);
        let stable_after = config.reconnect_max;
        let consumer = match config.mode {
            RedisMode::PubSub => Consumer::PubSub(PubSubConsumer::new(client, config)),
            RedisMode::Streams => Consumer::Streams(StreamConsumer::new(client, config)),
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
        if let Consumer::Streams(consumer) = &mut self.consumer {
            consumer.report_lag(counters);
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
