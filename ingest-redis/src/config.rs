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
    /// Server URL (`redis://host:port/db`, `rediss://`, `unix://`). Not
    /// used when `cluster` names seed nodes.
    pub url: String,
    /// Redis Cluster: URLs of some of its nodes (`redis://host:port`), the
    /// seeds the slot map is asked from; empty: one server at `url`. In a
    /// cluster, pub/sub is sharded (SSUBSCRIBE / SPUBLISH, Redis >= 7), so
    /// `channels` must be plain channel names, and each stream shard is
    /// read from the master that owns its slot.
    pub cluster: Vec<String>,
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
    /// Streams mode: how many stream keys the events are spread over. 1
    /// (the default) is the single key `stream`; `n > 1` are the keys
    /// `<stream>:{0}` .. `<stream>:{n-1}` (hash tags, so in a cluster they
    /// fall in different slots), which the publisher fills in turn and
    /// the source reads all of, merged into one order (see
    /// [`shard_key`](Self::shard_key) and the offsets of
    /// `docs/architecture.md`). `stream_maxlen` and `backfill` apply to
    /// each key.
    pub stream_shards: usize,
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
    /// Streams mode: the consumer name inside the group (reads are NOACK,
    /// so Redis records nothing under it; the node's place is the group's
    /// cursor).
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
            cluster: Vec::new(),
            mode: RedisMode::PubSub,
            channels: tickcast_core::model::schema::tickstock::KNOWN_CHANNELS
                .iter()
                .map(|(channel, _)| (*channel).to_owned())
                .collect(),
            stream: "tickstock:events".to_owned(),
            stream_shards: 1,
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
    /// Cluster mode with a glob pattern among the channels.
    #[error(
        "channel {pattern:?} is a glob pattern: Redis Cluster has no sharded pattern \
         subscription (SSUBSCRIBE takes channel names only, and a cluster-wide PSUBSCRIBE \
         could not tell a publisher whether any node received an event), so list the \
         channels by name"
    )]
    PatternInCluster {
        /// The pattern given.
        pattern: String,
    },
    /// `stream_shards` is 0, or the stream name cannot carry a shard's
    /// hash tag.
    #[error("invalid stream sharding: {0}")]
    Shards(String),
    /// Cluster mode with a stream name whose braces make no hash tag: the
    /// node's cursor key could not share the stream's slot.
    #[error(
        "stream {stream:?} has a brace but no hash tag ({{<non-empty>}}): in Redis Cluster \
         the node's cursor key must share the stream's slot, so use a hash tag or no braces"
    )]
    StreamKeyInCluster {
        /// The stream name given.
        stream: String,
    },
}

impl RedisConfig {
    /// Everything [`RedisSource`](crate::RedisSource) and
    /// [`RedisPublisher`](crate::RedisPublisher) refuse up front: a URL
    /// that does not parse, a pattern in cluster mode, no shards, a
    /// sharded stream name with a `{` (its own hash tag would put every
    /// shard in one slot), a stream name in a cluster whose braces make no
    /// hash tag.
    pub fn check(&self) -> Result<(), ConfigError> {
        if self.cluster.is_empty() {
            self.client()?;
        } else {
            self.seeds()?;
            let (stream, tagged) = (&self.stream, has_hash_tag(&self.stream));
            if self.mode == RedisMode::Streams && stream.contains(['{', '}']) && !tagged {
                return Err(ConfigError::StreamKeyInCluster {
                    stream: stream.clone(),
                });
            }
            if self.mode == RedisMode::PubSub {
                if let Some(pattern) = self.channels.iter().find(|c| is_pattern(c)) {
                    return Err(ConfigError::PatternInCluster {
                        pattern: pattern.clone(),
                    });
                }
            }
        }
        if self.stream_shards == 0 {
            return Err(ConfigError::Shards(
                "stream_shards must be at least 1".into(),
            ));
        }
        if self.stream_shards > 1 && self.stream.contains(['{', '}']) {
            return Err(ConfigError::Shards(format!(
                "stream {:?} has a brace: a sharded stream's keys are <stream>:{{<i>}}, \
                 whose hash tag must be the shard number",
                self.stream
            )));
        }
        Ok(())
    }

    /// True when `cluster` names seed nodes.
    pub fn is_cluster(&self) -> bool {
        !self.cluster.is_empty()
    }

    /// The stream key of shard `index`: `stream` itself when there is one
    /// shard, `<stream>:{<index>}` otherwise.
    pub fn shard_key(&self, index: usize) -> String {
        match self.stream_shards {
            0 | 1 => self.stream.clone(),
            _ => format!("{}:{{{index}}}", self.stream),
        }
    }

    /// The Redis client for `url`; checked once at construction so a typo
    /// fails at start instead of looping in reconnects.
    pub(crate) fn client(&self) -> Result<redis::Client, ConfigError> {
        redis::Client::open(self.url.as_str()).map_err(|e| ConfigError::InvalidUrl {
            url: self.url.clone(),
            reason: e.to_string(),
        })
    }

    /// The parsed seed nodes of `cluster`.
    pub(crate) fn seeds(&self) -> Result<Vec<redis::ConnectionInfo>, ConfigError> {
        use redis::IntoConnectionInfo;
        self.cluster
            .iter()
            .map(|url| {
                url.as_str()
                    .into_connection_info()
                    .map_err(|e| ConfigError::InvalidUrl {
                        url: url.clone(),
                        reason: e.to_string(),
                    })
            })
            .collect()
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

    /// The most one read's reply may hold: COUNT entries of the largest
    /// body accepted, plus room for their ids and other fields.
    pub(crate) fn max_read_bytes(&self) -> usize {
        self.count()
            .saturating_mul(self.max_body_bytes.saturating_add(4096))
    }
}

/// Redis Cluster's rule: the key's slot is that of the text between its
/// first `{` and the next `}`, when that text is not empty.
pub(crate) fn has_hash_tag(key: &str) -> bool {
    key.split_once('{')
        .and_then(|(_, rest)| rest.split_once('}'))
        .is_some_and(|(tag, _)| !tag.is_empty())
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
    fn cluster_mode_refuses_patterns_and_bad_seeds() {
        let cluster = RedisConfig {
            cluster: vec!["redis://127.0.0.1:7100".into()],
            channels: vec!["a.b".into(), "tickstock.*".into()],
            ..RedisConfig::default()
        };
        assert!(matches!(
            cluster.check(),
            Err(ConfigError::PatternInCluster { pattern }) if pattern == "tickstock.*"
        ));
        let streams = RedisConfig {
            mode: RedisMode::Streams,
            ..cluster.clone()
        };
        assert!(streams.check().is_ok(), "streams mode ignores channels");
        let bad_seed = RedisConfig {
            cluster: vec!["redis://127.0.0.1:7100".into(), "http://x".into()],
            channels: vec!["a.b".into()],
            ..cluster
        };
        assert!(matches!(
            bad_seed.check(),
            Err(ConfigError::InvalidUrl { url, .. }) if url == "http://x"
        ));
        // Outside a cluster a pattern is a PSUBSCRIBE, as before.
        let single = RedisConfig {
            channels: vec!["tickstock.*".into()],
            ..RedisConfig::default()
        };
        assert!(single.check().is_ok());
    }

    #[test]
    fn shard_keys_carry_the_shard_as_hash_tag() {
        let one = RedisConfig::default();
        assert_eq!(one.shard_key(0), "tickstock:events");
        let four = RedisConfig {
            stream_shards: 4,
            ..RedisConfig::default()
        };
        assert_eq!(four.shard_key(0), "tickstock:events:{0}");
        assert_eq!(four.shard_key(3), "tickstock:events:{3}");
        assert!(four.check().is_ok());
        let braced = RedisConfig {
            stream: "s{x}".into(),
            ..four.clone()
        };
        assert!(matches!(braced.check(), Err(ConfigError::Shards(_))));
        let none = RedisConfig {
            stream_shards: 0,
            ..four
        };
        assert!(matches!(none.check(), Err(ConfigError::Shards(_))));
    }

    #[test]
    fn a_cluster_stream_needs_a_hash_tag_or_no_braces() {
        let stream = |name: &str| RedisConfig {
            stream: name.into(),
            mode: RedisMode::Streams,
            cluster: vec!["redis://127.0.0.1:7100".into()],
            ..RedisConfig::default()
        };
        assert!(stream("tickstock:events").check().is_ok());
        assert!(stream("{tickstock}:events").check().is_ok());
        for bad in ["a{}b", "a}b", "a{b"] {
            assert!(
                matches!(
                    stream(bad).check(),
                    Err(ConfigError::StreamKeyInCluster { .. })
                ),
                "{bad}"
            );
        }
        // On one server the cursor key's slot does not matter.
        let single = RedisConfig {
            cluster: Vec::new(),
            ..stream("a}b")
        };
        assert!(single.check().is_ok());
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
