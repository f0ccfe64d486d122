//! [`Config`]: every setting of the server, as design.md's Configuration
//! section lists them.
//!
//! Each key is optional and has the documented default; an unknown key is an
//! error in the file, and a [`ConfigWarning`] in the environment (whose
//! `TICKCAST_*` names deployment tools also use), never silently ignored. Layers, lowest first: the defaults, the
//! TOML file (`--config FILE`), `TICKCAST_*` environment variables (nested
//! keys joined by `__`), command-line flags; see [`load`]. After loading,
//! [`Config::validate`] checks values and names the offending key.

mod env;
mod hub;
mod keys;
mod load;
mod validate;
mod warning;

#[cfg(test)]
mod tests;

pub use load::{load, ConfigError, Loaded, Overrides};
pub use validate::InvalidKey;
pub use warning::ConfigWarning;

use std::path::PathBuf;

use serde::{Deserialize, Serialize};
use tickcast_core::model::schema::tickstock::KNOWN_CHANNELS;
use tickcast_core::model::schema::{tickstock, Schema, SchemaDecl, SchemaError};
use tickcast_core::model::DEFAULT_MAX_BODY_BYTES;
use tickcast_core::routing::RoutingRules;

/// The whole configuration. `Config::default()` is what tickcast runs with
/// when nothing is configured: HTTP publish only, no broker, no auth.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Address the HTTP server (API and transports) listens on.
    pub listen: String,
    /// Names this node: its Redis consumer group and AMQP queue, so that
    /// every node sees every event. Defaults to the hostname.
    pub node_id: String,
    /// Log line format.
    pub log_format: LogFormat,
    /// Per-connection queues, batching and rate limits.
    pub delivery: DeliverySection,
    /// What clients and producers may send.
    pub limits: LimitsSection,
    /// The history ring that `since` replays from.
    pub history: HistorySection,
    /// Route cache and strategy rules.
    pub routing: RoutingSection,
    /// Client authentication for `/ws` and `/sse`.
    pub auth: AuthSection,
    /// Who may call the HTTP API, and from which web pages.
    pub api: ApiSection,
    /// Deadlines and bounds of the HTTP listener; origins of `/ws` and `/sse`.
    pub http: HttpSection,
    /// Broker ingest; none by default (HTTP publish only).
    pub ingest: IngestSection,
    /// The Socket.IO endpoint `/socket.io/` (cargo feature `socketio`).
    pub socketio: SocketIoSection,
    /// The event schema: the dimensions filters may constrain. Absent:
    /// TickStock's.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub schema: Option<SchemaDecl>,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            listen: "127.0.0.1:8080".to_owned(),
            node_id: default_node_id(),
            log_format: LogFormat::Text,
            delivery: DeliverySection::default(),
            limits: LimitsSection::default(),
            history: HistorySection::default(),
            routing: RoutingSection::default(),
            auth: AuthSection::default(),
            api: ApiSection::default(),
            http: HttpSection::default(),
            ingest: IngestSection::default(),
            socketio: SocketIoSection::default(),
            schema: None,
        }
    }
}

impl Config {
    /// The schema the hub serves: the `[schema]` section, else TickStock's.
    pub fn schema(&self) -> Result<std::sync::Arc<Schema>, SchemaError> {
        match &self.schema {
            Some(decl) => decl.build(),
            None => Ok(tickstock::schema()),
        }
    }
}

/// The hostname, or `tickcast` when it cannot be read as UTF-8.
fn default_node_id() -> String {
    gethostname::gethostname()
        .into_string()
        .ok()
        .filter(|name| !name.is_empty())
        .unwrap_or_else(|| "tickcast".to_owned())
}

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Text,
    /// One JSON object per line, for log shippers.
    Json,
}

/// `[delivery]`: how events leave a connection's queue.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DeliverySection {
    /// Longest wait of a batched event for company, in ms; 0 = no added
    /// delay (send what is queued whenever the socket is ready).
    pub batch_window_ms: u64,
    /// Most events in one `batch` frame.
    pub max_batch: usize,
    /// Most event bytes in one `batch` frame.
    pub max_batch_bytes: usize,
    /// Events one connection's queue holds.
    pub queue_capacity: usize,
    /// Event frame bytes one connection's queue holds (the same
    /// slow-consumer policy as `queue_capacity`).
    pub queue_capacity_bytes: usize,
    /// Protocol messages (`subscribed`, `pong`, `error`, ...) waiting for
    /// one connection; a client past it is closed 4008.
    pub message_capacity: usize,
    /// Their bytes, as encoded JSON; a client past it is closed 4008.
    pub message_capacity_bytes: usize,
    /// History events waiting to be replayed to one connection, all its
    /// subscriptions together; a client past it is closed 4008. Unset:
    /// `history.capacity`, so that one full replay always fits.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub replay_capacity: Option<usize>,
    /// Their frame bytes; a client past it is closed 4008.
    pub replay_capacity_bytes: usize,
    /// Events per second per user; 0 = off.
    pub rate_limit_per_user: u32,
}

impl Default for DeliverySection {
    fn default() -> Self {
        Self {
            batch_window_ms: 100,
            max_batch: 50,
            max_batch_bytes: 64 * 1024,
            queue_capacity: 4096,
            queue_capacity_bytes: 16 << 20,
            message_capacity: 4096,
            message_capacity_bytes: 256 << 10,
            replay_capacity: None,
            replay_capacity_bytes: 64 << 20,
            rate_limit_per_user: 100,
        }
    }
}

/// `[limits]`: bounds on what clients and producers may send and hold.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LimitsSection {
    /// Largest client frame (WebSocket) in bytes.
    pub max_frame_bytes: usize,
    /// Subscriptions one connection may hold.
    pub max_subscriptions_per_connection: usize,
    /// Connections one user may hold.
    pub max_connections_per_user: usize,
    /// Largest published body in bytes (one event, or a whole
    /// `POST /api/publish` request).
    pub max_publish_bytes: usize,
    /// Most events in one `POST /api/publish` array: bounds what one request
    /// makes the server hold (decoded events, per-item answers).
    pub max_publish_items: usize,
}

impl Default for LimitsSection {
    fn default() -> Self {
        Self {
            max_frame_bytes: 64 * 1024,
            max_subscriptions_per_connection: 64,
            max_connections_per_user: 16,
            max_publish_bytes: DEFAULT_MAX_BODY_BYTES,
            max_publish_items: 10_000,
        }
    }
}

/// `[history]`: bounds of the replay ring.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HistorySection {
    /// Most events held; 0 keeps none (every `since` is `history_gone`).
    pub capacity: usize,
    /// Oldest event held, in seconds.
    pub max_age_s: u64,
}

impl Default for HistorySection {
    fn default() -> Self {
        Self {
            capacity: 100_000,
            max_age_s: 3600,
        }
    }
}

/// `[routing]`: the route cache and the strategy rules.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RoutingSection {
    /// Route-cache capacity in entries; 0 turns the cache off.
    pub cache_capacity: usize,
    /// Longest life of a cache entry, in seconds.
    pub cache_ttl_s: u64,
    /// `[[routing.rules]]`: first match wins; none means all
    /// `content_based`.
    pub rules: RoutingRules,
}

impl Default for RoutingSection {
    fn default() -> Self {
        Self {
            cache_capacity: 10_000,
            cache_ttl_s: 300,
            rules: RoutingRules::default(),
        }
    }
}

/// `[auth]`: JWT verification for `/ws` and `/sse`; off when neither key is
/// set (everyone is an anonymous user).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuthSection {
    /// HS256 shared secret.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub jwt_secret: Option<String>,
    /// PEM file with the RS256 or ES256 public key.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub jwt_public_key_file: Option<PathBuf>,
}

/// `[api]`: who may call the HTTP API, and from which web pages.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ApiSection {
    /// Bearer token `POST /api/publish` requires.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    /// With `[auth]` on and no `key`, publishing is refused unless this
    /// says anonymous publishing is wanted (it lets anyone who reaches the
    /// port publish, private events into any user's stream included).
    pub allow_anonymous_publish: bool,
    /// Web origins (`https://app.example.com`, or `*`) whose pages may call
    /// the API from a browser (CORS); none by default.
    #[serde(deserialize_with = "one_or_many")]
    pub cors_origins: Vec<String>,
}

/// `[http]`: deadlines and bounds of the HTTP listener, and the web pages
/// that may open `/ws` and `/sse`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HttpSection {
    /// A request head (line and headers) must arrive within this many ms of
    /// its first byte, and a new connection's first request head within
    /// this many ms of the accept; an idle keep-alive connection is closed
    /// after it too.
    pub header_timeout_ms: u64,
    /// A request body must arrive within this many ms (408 otherwise).
    pub body_timeout_ms: u64,
    /// A `/ws` or `/sse` socket that takes no data for this many ms while
    /// the server has data for it is dropped, with everything it held.
    pub write_timeout_ms: u64,
    /// Connections accepted that have not yet sent a whole request head;
    /// beyond this, each new connection closes the oldest waiting one, so
    /// slow clients cannot take every file descriptor. Unset: a quarter of
    /// the process's file-descriptor limit, at most 1024.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_pending_connections: Option<usize>,
    /// Web origins whose pages may open `/ws` and `/sse` (`*`: any, the
    /// default). Requests without an `Origin` header (non-browser clients)
    /// are always served.
    #[serde(deserialize_with = "one_or_many")]
    pub allowed_origins: Vec<String>,
}

impl Default for HttpSection {
    fn default() -> Self {
        Self {
            header_timeout_ms: 10_000,
            body_timeout_ms: 30_000,
            write_timeout_ms: 10_000,
            max_pending_connections: None,
            allowed_origins: vec!["*".to_owned()],
        }
    }
}

/// `[socketio]`: the Socket.IO endpoint (Engine.IO heartbeat, payload
/// limit, connection state recovery). Token, limits, queues and
/// `http.allowed_origins` are those of every transport.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SocketIoSection {
    /// Engine.IO `pingInterval`: the server pings every this many ms.
    pub ping_interval_ms: u64,
    /// Engine.IO `pingTimeout`: a client silent for `ping_interval_ms` +
    /// this many ms is gone (also the deadline of its CONNECT).
    pub ping_timeout_ms: u64,
    /// Engine.IO `maxPayload`: the largest POST body or WebSocket message a
    /// client may send, at most 16 x `limits.max_frame_bytes`.
    pub max_payload_bytes: usize,
    /// How long a disconnected session is kept for connection state
    /// recovery, in seconds; 0 turns recovery off.
    pub recovery_window_s: u64,
    /// Most disconnected sessions kept (oldest dropped first); 0 turns
    /// recovery off.
    pub recovery_capacity: usize,
    /// Most HTTP long-polling connections open at once.
    pub max_polling_sessions: usize,
}

impl Default for SocketIoSection {
    fn default() -> Self {
        Self {
            ping_interval_ms: 25_000,
            ping_timeout_ms: 20_000,
            max_payload_bytes: 64 * 1024,
            recovery_window_s: 120,
            recovery_capacity: 10_000,
            max_polling_sessions: 10_000,
        }
    }
}

/// `[ingest]`: brokers to consume (a present sub-table switches its broker
/// on), and the idempotency window every ingest path shares.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct IngestSection {
    /// Idempotency keys (`event_id`, `Idempotency-Key`, AMQP `message_id`)
    /// remembered to drop a repeated event; 0 turns de-duplication off.
    pub dedup_capacity: usize,
    /// How long a key is remembered, in seconds.
    pub dedup_window_s: u64,
    /// `[ingest.redis]`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub redis: Option<RedisIngest>,
    /// `[ingest.amqp]`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub amqp: Option<AmqpIngest>,
}

impl Default for IngestSection {
    fn default() -> Self {
        Self {
            dedup_capacity: 100_000,
            dedup_window_s: 600,
            redis: None,
            amqp: None,
        }
    }
}

/// `[ingest.redis]`: Redis pub/sub or Streams.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RedisIngest {
    /// Server URL (`redis://`, `redis+unix://`, `unix://`; TLS `rediss://`
    /// is not built in). Not used when `cluster` is set.
    pub url: String,
    /// Redis Cluster: `redis://host:port` of some of its nodes (seeds for
    /// the slot map); empty (the default): the one server at `url`. Pub/sub
    /// becomes sharded (SSUBSCRIBE / SPUBLISH, Redis >= 7; plain channel
    /// names only), and each stream key is read from its master.
    #[serde(deserialize_with = "one_or_many")]
    pub cluster: Vec<String>,
    /// Pub/sub channels or one stream.
    pub mode: RedisMode,
    /// Channels to subscribe to (pub/sub mode).
    #[serde(deserialize_with = "one_or_many")]
    pub channels: Vec<String>,
    /// Stream key (streams mode); each entry has fields `channel` and
    /// `body` (and `id`, an idempotency key, when given).
    pub stream: String,
    /// Streams mode: the stream is spread over this many keys,
    /// `<stream>:{0}` .. `<stream>:{n-1}` (1, the default: the single key
    /// `stream`); every node reads them all, merged in offset order.
    pub stream_shards: usize,
    /// Streams mode: how long one blocking read waits for new entries, in
    /// ms; unset: 5000 with one shard, 1000 with several (an idle shard
    /// whose probes cannot tell holds the others' entries back for up to
    /// this long; each idle shard costs every node `1000 / n` reads a
    /// second).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stream_block_ms: Option<u64>,
    /// Streams mode: `POST /api/publish` trims the stream to about this
    /// many entries (`XADD ... MAXLEN ~ n`); at least `history.capacity`,
    /// so a restarted node can reload its whole history. Applies to each
    /// shard key.
    pub stream_maxlen: u64,
}

impl Default for RedisIngest {
    fn default() -> Self {
        Self {
            url: "redis://127.0.0.1:6379".to_owned(),
            cluster: Vec::new(),
            mode: RedisMode::PubSub,
            channels: KNOWN_CHANNELS
                .iter()
                .map(|(c, _)| (*c).to_owned())
                .collect(),
            stream: "tickstock:events".to_owned(),
            stream_shards: 1,
            stream_block_ms: None,
            stream_maxlen: 1_000_000,
        }
    }
}

/// How events are read from Redis.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum RedisMode {
    /// SUBSCRIBE to channels; offsets are the node's own.
    #[default]
    #[serde(rename = "pubsub")]
    PubSub,
    /// XREADGROUP from one stream; offsets are the stream ids.
    #[serde(rename = "streams")]
    Streams,
}

/// `[ingest.amqp]`: RabbitMQ.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AmqpIngest {
    /// Broker URL (`amqp://`; TLS `amqps://` is not built in).
    pub url: String,
    /// Topic exchange; the routing key plays the Redis channel's part.
    pub exchange: String,
    /// Binding keys of this node's queue.
    #[serde(deserialize_with = "one_or_many")]
    pub routing_keys: Vec<String>,
    /// Unacknowledged messages in flight (basic.qos).
    pub prefetch: u16,
    /// This node's queue; `tickcast.<node_id>` when unset. Never share one
    /// queue between nodes: it would split the events between them.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub queue: Option<String>,
    /// Where malformed messages go (rejected without requeue); a durable
    /// queue `<queue>.dead` is bound to it for inspection.
    pub dead_letter_exchange: String,
    /// Seconds a node's queue (and its `.dead` queue) lives on unused
    /// (`x-expires`) once its node is gone; 0 keeps it forever.
    pub queue_expires_s: u64,
    /// Most messages the node's queue holds (`x-max-length`); 0 is no
    /// bound.
    pub queue_max_length: u64,
    /// What a full queue does with the next message.
    pub queue_overflow: AmqpOverflow,
}

/// `ingest.amqp.queue_overflow`: RabbitMQ's `x-overflow`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum AmqpOverflow {
    /// Drop the oldest message (into the node's `.dead` queue): a node that
    /// is gone or stuck loses its oldest events, publishers never stall.
    #[default]
    #[serde(rename = "drop-head")]
    DropHead,
    /// Refuse the new message: publishers get a nack (400
    /// `broker_refused` on `POST /api/publish`) for as long as any one
    /// node's queue is full.
    #[serde(rename = "reject-publish")]
    RejectPublish,
}

impl Default for AmqpIngest {
    fn default() -> Self {
        Self {
            url: "amqp://guest:guest@127.0.0.1:5672/%2f".to_owned(),
            exchange: "tickstock.events".to_owned(),
            routing_keys: vec!["tickstock.#".to_owned()],
            prefetch: 1000,
            queue: None,
            dead_letter_exchange: "tickstock.events.dlx".to_owned(),
            queue_expires_s: 3600,
            queue_max_length: 1_000_000,
            queue_overflow: AmqpOverflow::DropHead,
        }
    }
}

/// A list, or one string standing for a list of one (handy in environment
/// variables: `TICKCAST_INGEST__AMQP__ROUTING_KEYS=tickstock.#`).
fn one_or_many<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum OneOrMany {
        One(String),
        Many(Vec<String>),
    }
    Ok(match OneOrMany::deserialize(d)? {
        OneOrMany::One(one) => vec![one],
        OneOrMany::Many(many) => many,
    })
}

/// Shown instead of a secret by [`Config::redacted`].
pub const REDACTED: &str = "<redacted>";

impl Config {
    /// `http.allowed_origins` as the transports take it; an entry that does
    /// not parse (validation refuses those) allows no browser origin.
    pub fn transport_origins(&self) -> tickcast_core::auth::AllowedOrigins {
        tickcast_core::auth::AllowedOrigins::parse(&self.http.allowed_origins)
            .unwrap_or_else(|_| tickcast_core::auth::AllowedOrigins::none())
    }

    /// `http.write_timeout_ms` as the transports take it.
    pub fn write_timeout(&self) -> std::time::Duration {
        std::time::Duration::from_millis(self.http.write_timeout_ms)
    }

    /// A copy with the JWT secret and the API key replaced by
    /// [`REDACTED`], for printing.
    pub fn redacted(&self) -> Self {
        let mut copy = self.clone();
        if copy.auth.jwt_secret.is_some() {
            copy.auth.jwt_secret = Some(REDACTED.to_owned());
        }
        if copy.api.key.is_some() {
            copy.api.key = Some(REDACTED.to_owned());
        }
        copy
    }

    /// [`ConfigWarning::LingeringQueue`] when this node's AMQP queue is
    /// named after the hostname and never expires.
    pub fn lingering_queue(&self) -> Option<ConfigWarning> {
        let amqp = self.ingest.amqp.as_ref()?;
        let hostname_queue = amqp.queue.is_none() && self.node_id == default_node_id();
        (hostname_queue && amqp.queue_expires_s == 0).then(|| ConfigWarning::LingeringQueue {
            queue: format!("tickcast.{}", self.node_id),
        })
    }

    /// The configuration as TOML, as `check-config` prints it.
    pub fn to_toml(&self) -> Result<String, toml::ser::Error> {
        toml::to_string_pretty(self)
    }
}
