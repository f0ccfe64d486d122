//! [`RedisConfig`]: where and how the Redis source reads and the publisher
//! writes.

use std::time::Duration;

use tickcast_core::model::DEFAULT_MAX_BODY_BYTES;

/// How events travel through Redis.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RedisMode {
    /// SUBSCRIBE / PSUBSCRIBE to channels. Fire and forget: what is
    /// published while a node is disconnected is lost for that node, and
    /// the node numbers events itself.
    #[default]
    PubSub,
    /// XREADGROUP from one stream, one consumer group per node. Nothing
    /// acknowledged is lost, and the stream ids are the offsets, so a
    /// client can resume on any node.
    Streams,
}

/// Settings of [`RedisSource`](crate::RedisSource) and
/// [`RedisPublisher`](crate::RedisPublisher). `RedisConfig::default()` is
/// the `[ingest.redis]` default of the design.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RedisConfig {
    /// Server URL (`redis://host:port/db`, `rediss://`, `unix://`).
    pub url: String,
    /// Pub/sub or Streams.
    pub mode: RedisMode,
    /// Pub/sub mode: channels to consume. An entry with a glob character
    /// (`*`, `?` or `[`) is a PSUBSCRIBE pattern, any other a SUBSCRIBE
    /// channel; either way the event type comes from the channel the
    /// message was actually published on.
    pub channels: Vec<String>,
    /// Streams mode: the stream key. Each entry carries field `channel`
    /// (gives the event type like a pub/sub channel) and field `body` (the
    /// event bytes exactly as published on a channel).
    pub stream: String,
    /// Streams mode: the publisher trims the stream to about this many
    /// entries with every XADD (`MAXLEN ~ n`, trimmed in whole radix-tree
    /// nodes, so the stream may hold a little more), and the source with
    /// `XTRIM ~` once a second (entries producers added without MAXLEN);
    /// `None`: no trimming.
    /// Keep it at least the history a resume needs (the binary refuses
    /// less than `history.capacity`).
    pub stream_maxlen: Option<u64>,
    /// Streams mode: this node's own consumer group. Every node must have
    /// its own, because each node must see every event; the binary passes
    /// `tickcast-<node_id>`.
    pub group: String,
    /// Streams mode: the consumer name inside the group. Keep it stable
    /// across restarts: entries read but not acknowledged are pending for
    /// this name, and a restart re-reads them only under the same name.
    pub consumer: String,
    /// Bodies larger than this are rejected as `too_large`
    /// (`limits.max_publish_bytes`).
    pub max_body_bytes: usize,
    /// Streams mode: at start, how many entries this group had already
    /// consumed (up to its last-delivered id) are loaded into the hub's
    /// history, so clients can resume from before the restart. The binary
    /// passes the history capacity; 0 turns backfill off.
    pub backfill: usize,
    /// Streams mode: entries per XREADGROUP / XREVRANGE call (COUNT).
    pub read_count: usize,
    /// Streams mode: how long one XREADGROUP waits for new entries
    /// (BLOCK). Short enough that lag reports stay fresh, long enough
    /// that an idle source does not spin.
    pub block: Duration,
    /// First delay before reconnecting after the connection was lost.
    pub reconnect_min: Duration,
    /// The delay doubles after every failed attempt up to this bound; the
    /// source never gives up.
    pub reconnect_max: Duration,
    /// How long connecting or one non-blocking command may take before the
    /// connection is considered lost.
    pub command_timeout: Duration,
    /// Pub/sub mode: a quiet subscription is PINGed this often, so a
    /// connection that died without a reset (a dropped NAT entry, a
    /// vanished host) is noticed instead of waiting forever.
    pub keepalive: Duration,
}

impl Default for RedisConfig {
    fn default() -> Self {
        Self {
            url: "redis://127.0.0.1:6379".to_owned(),
            mode: RedisMode::PubSub,
            channels: tickcast_core::model::KNOWN_CHANNELS
                .iter()
                .map(|(channel, _)| (*channel).to_owned())
                .collect(),
            stream: "tickstock:events".to_owned(),
            stream_maxlen: Some(1_000_000),
            group: "tickcast".to_owned(),
            consumer: "tickcast".to_owned(),
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
            backfill: 10_000,
            read_count: 500,
            block: Duration::from_secs(5),
            reconnect_min: Duration::from_millis(100),
            reconnect_max: Duration::from_secs(5),
            command_timeout: Duration::from_secs(5),
            keepalive: Duration::from_secs(15),
        }
    }
}

/// A configuration the source or publisher cannot work with.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The URL does not parse as a Redis URL.
    #[error("invalid Redis URL {url:?}: {reason}")]
    InvalidUrl {
        /// The URL given.
        url: String,
        /// What the Redis client said.
        reason: String,
    },
}

impl RedisConfig {
    /// The Redis client for `url`; checked once at construction so a typo
    /// fails at start instead of looping in reconnects.
    pub(crate) fn client(&self) -> Result<redis::Client, ConfigError> {
        redis::Client::open(self.url.as_str()).map_err(|e| ConfigError::InvalidUrl {
            url: self.url.clone(),
            reason: e.to_string(),
        })
    }

    /// `channels` split into plain channels and glob patterns.
    pub(crate) fn subscriptions(&self) -> (Vec<&str>, Vec<&str>) {
        self.channels
            .iter()
            .map(String::as_str)
            .partition(|c| !is_pattern(c))
    }

    /// COUNT for reads: at least one entry per call.
    pub(crate) fn count(&self) -> usize {
        self.read_count.max(1)
    }
}

/// True when `channel` is a PSUBSCRIBE glob rather than a channel name.
pub(crate) fn is_pattern(channel: &str) -> bool {
    channel.contains(['*', '?', '['])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn glob_entries_are_patterns() {
        let config = RedisConfig {
            channels: vec![
                "tickstock.events.patterns".into(),
                "tickstock.*".into(),
                "h?llo".into(),
                "t[ab]".into(),
            ],
            ..RedisConfig::default()
        };
        let (channels, patterns) = config.subscriptions();
        assert_eq!(channels, ["tickstock.events.patterns"]);
        assert_eq!(patterns, ["tickstock.*", "h?llo", "t[ab]"]);
    }

    #[test]
    fn defaults_follow_the_design() {
        let config = RedisConfig::default();
        assert_eq!(config.url, "redis://127.0.0.1:6379");
        assert_eq!(config.mode, RedisMode::PubSub);
        assert_eq!(config.channels.len(), 4);
        assert_eq!(config.stream, "tickstock:events");
        assert!(config.client().is_ok());
    }

    #[test]
    fn a_bad_url_is_refused_up_front() {
        let config = RedisConfig {
            url: "http://nope".into(),
            ..RedisConfig::default()
        };
        assert!(matches!(
            config.client(),
            Err(ConfigError::InvalidUrl { .. })
        ));
    }
}
