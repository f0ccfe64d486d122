//! [`Config::validate`]: value checks that types alone cannot express.

use std::net::SocketAddr;

use tickcast_core::auth::AllowedOrigins;

use super::{AmqpIngest, Config, RedisIngest, RedisMode};

/// One key with a value it does not accept.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{key}` {message}")]
pub struct InvalidKey {
    /// Dotted key, as in the TOML file (`delivery.max_batch`).
    pub key: String,
    /// What is wrong, with the value where it helps.
    pub message: String,
}

/// Longest batch window accepted, in ms: beyond this, "batching" is a
/// misconfiguration.
const MAX_BATCH_WINDOW_MS: u64 = 60_000;

/// Longest node id (it names an AMQP queue: at most 255 bytes, with a
/// suffix).
const MAX_NODE_ID_BYTES: usize = 200;

/// Collects invalid keys.
#[derive(Default)]
struct Checks(Vec<InvalidKey>);

impl Checks {
    fn fail(&mut self, key: &str, message: impl Into<String>) {
        self.0.push(InvalidKey {
            key: key.to_owned(),
            message: message.into(),
        });
    }

    fn at_least(&mut self, key: &str, value: u64, min: u64) {
        if value < min {
            self.fail(key, format!("must be at least {min} (got {value})"));
        }
    }

    fn non_blank(&mut self, key: &str, value: &str) {
        if value.trim().is_empty() {
            self.fail(key, "must not be empty");
        }
    }

    /// A token that travels in a header or a name: no spaces, no control
    /// characters.
    fn token(&mut self, key: &str, value: &str) {
        if value.is_empty() {
            self.fail(key, "must not be empty");
        } else if value.chars().any(|c| c.is_whitespace() || c.is_control()) {
            self.fail(key, "must not contain spaces or control characters");
        }
    }

    /// Each entry is `*` or a web origin, `scheme://host[:port]`.
    fn origins(&mut self, key: &str, origins: &[String]) {
        if let Err(e) = AllowedOrigins::parse(origins) {
            self.fail(key, format!("has an {e}"));
        }
    }

    fn scheme(&mut self, key: &str, url: &str, schemes: &[&str]) {
        let ok = url
            .split_once("://")
            .is_some_and(|(scheme, rest)| schemes.contains(&scheme) && !rest.is_empty());
        if !ok {
            let expected: Vec<String> = schemes.iter().map(|s| format!("{s}://")).collect();
            self.fail(
                key,
                format!(
                    "must be a URL starting with {} (got {url:?})",
                    expected.join(" or ")
                ),
            );
        }
    }
}

impl Config {
    /// Checks every value; the error lists each invalid key.
    pub fn validate(&self) -> Result<(), Vec<InvalidKey>> {
        let mut checks = Checks::default();
        if let Err(invalid) = self.listen_addr() {
            checks.0.push(invalid);
        }
        if let Err(e) = self.schema() {
            checks.fail("schema", e.to_string());
        }
        checks.token("node_id", &self.node_id);
        if self.node_id.len() > MAX_NODE_ID_BYTES {
            checks.fail(
                "node_id",
                format!("must be at most {MAX_NODE_ID_BYTES} bytes"),
            );
        }

        let d = &self.delivery;
        if d.batch_window_ms > MAX_BATCH_WINDOW_MS {
            checks.fail(
                "delivery.batch_window_ms",
                format!(
                    "must be at most {MAX_BATCH_WINDOW_MS} (got {})",
                    d.batch_window_ms
                ),
            );
        }
        checks.at_least("delivery.max_batch", d.max_batch as u64, 1);
        checks.at_least("delivery.max_batch_bytes", d.max_batch_bytes as u64, 1);
        checks.at_least("delivery.queue_capacity", d.queue_capacity as u64, 1);
        checks.at_least(
            "delivery.queue_capacity_bytes",
            d.queue_capacity_bytes as u64,
            1,
        );
        checks.at_least("delivery.message_capacity", d.message_capacity as u64, 1);
        checks.at_least(
            "delivery.message_capacity_bytes",
            d.message_capacity_bytes as u64,
            1,
        );
        if let Some(replay) = d.replay_capacity {
            checks.at_least("delivery.replay_capacity", replay as u64, 1);
        }
        checks.at_least(
            "delivery.replay_capacity_bytes",
            d.replay_capacity_bytes as u64,
            1,
        );

        let l = &self.limits;
        checks.at_least("limits.max_frame_bytes", l.max_frame_bytes as u64, 1);
        checks.at_least(
            "limits.max_subscriptions_per_connection",
            l.max_subscriptions_per_connection as u64,
            1,
        );
        checks.at_least(
            "limits.max_connections_per_user",
            l.max_connections_per_user as u64,
            1,
        );
        checks.at_least("limits.max_publish_bytes", l.max_publish_bytes as u64, 1);
        checks.at_least("limits.max_publish_items", l.max_publish_items as u64, 1);

        let h = &self.http;
        checks.at_least("http.header_timeout_ms", h.header_timeout_ms, 1);
        checks.at_least("http.write_timeout_ms", h.write_timeout_ms, 1);
        checks.at_least("http.body_timeout_ms", h.body_timeout_ms, 1);
        if let Some(max) = h.max_pending_connections {
            checks.at_least("http.max_pending_connections", max as u64, 1);
        }
        checks.origins("http.allowed_origins", &h.allowed_origins);

        let sio = &self.socketio;
        checks.at_least("socketio.ping_interval_ms", sio.ping_interval_ms, 1);
        checks.at_least("socketio.ping_timeout_ms", sio.ping_timeout_ms, 1);
        checks.at_least(
            "socketio.max_payload_bytes",
            sio.max_payload_bytes as u64,
            1024,
        );
        let hard_limit = l.max_frame_bytes.saturating_mul(16);
        if sio.max_payload_bytes > hard_limit {
            checks.fail(
                "socketio.max_payload_bytes",
                format!(
                    "must be at most 16 x limits.max_frame_bytes = {hard_limit} (got {})",
                    sio.max_payload_bytes
                ),
            );
        }
        checks.at_least(
            "socketio.max_polling_sessions",
            sio.max_polling_sessions as u64,
            1,
        );
        checks.origins("api.cors_origins", &self.api.cors_origins);

        checks.at_least("history.max_age_s", self.history.max_age_s, 1);
        checks.at_least("routing.cache_ttl_s", self.routing.cache_ttl_s, 1);

        self.validate_auth(&mut checks);
        checks.at_least("ingest.dedup_window_s", self.ingest.dedup_window_s, 1);
        if let Some(redis) = &self.ingest.redis {
            validate_redis(redis, self.history.capacity, &mut checks);
        }
        if let Some(amqp) = &self.ingest.amqp {
            validate_amqp(amqp, &mut checks);
        }
        let streams = self
            .ingest
            .redis
            .as_ref()
            .is_some_and(|r| r.mode == RedisMode::Streams);
        if streams && self.ingest.amqp.is_some() {
            // In Streams mode every offset is a stream id; AMQP messages
            // have none, so the two cannot share one node's history.
            checks.fail(
                "ingest",
                "ingest.redis.mode = \"streams\" takes every offset from the stream: \
                 it cannot run beside [ingest.amqp] (use Redis pub/sub with AMQP, or Streams alone)",
            );
        }
        match checks.0.is_empty() {
            true => Ok(()),
            false => Err(checks.0),
        }
    }

    /// `listen` as a socket address.
    pub fn listen_addr(&self) -> Result<SocketAddr, InvalidKey> {
        self.listen.parse().map_err(|_| InvalidKey {
            key: "listen".to_owned(),
            message: format!(
                "must be an IP address and port such as 127.0.0.1:8080 or [::]:8080 (got {:?})",
                self.listen
            ),
        })
    }

    fn validate_auth(&self, checks: &mut Checks) {
        let auth = &self.auth;
        if let Some(secret) = &auth.jwt_secret {
            checks.non_blank("auth.jwt_secret", secret);
        }
        if let Some(file) = &auth.jwt_public_key_file {
            if !file.is_file() {
                checks.fail(
                    "auth.jwt_public_key_file",
                    format!("is not a readable file: {}", file.display()),
                );
            }
        }
        if auth.jwt_secret.is_some() && auth.jwt_public_key_file.is_some() {
            checks.fail(
                "auth",
                "set one of auth.jwt_secret (HS256) and auth.jwt_public_key_file (RS256/ES256), not both",
            );
        }
        if let Some(key) = &self.api.key {
            checks.token("api.key", key);
        }
    }
}

/// Longest `ingest.amqp.queue_expires_s`: RabbitMQ takes `x-expires` in
/// ms as a 32-bit value.
const MAX_QUEUE_EXPIRES_S: u64 = (u32::MAX / 1000) as u64;

fn validate_redis(redis: &RedisIngest, history: usize, checks: &mut Checks) {
    checks.scheme(
        "ingest.redis.url",
        &redis.url,
        // rediss:// would need the redis crate's TLS stack; not built in.
        &["redis", "redis+unix", "unix"],
    );
    for seed in &redis.cluster {
        // Cluster nodes are reached over TCP.
        checks.scheme("ingest.redis.cluster", seed, &["redis"]);
    }
    match redis.mode {
        RedisMode::PubSub => {
            if redis.channels.is_empty() {
                checks.fail("ingest.redis.channels", "must list at least one channel");
            }
            if redis.channels.iter().any(|c| c.trim().is_empty()) {
                checks.fail("ingest.redis.channels", "must not contain an empty channel");
            }
            let pattern = redis.channels.iter().find(|c| c.contains(['*', '?', '[']));
            if let (false, Some(pattern)) = (redis.cluster.is_empty(), pattern) {
                checks.fail(
                    "ingest.redis.channels",
                    format!(
                        "{pattern:?} is a glob pattern, which Redis Cluster cannot subscribe \
                         to by shard (there is no sharded PSUBSCRIBE, and a cluster-wide \
                         PUBLISH could not tell whether any node received an event): list \
                         the channels by name"
                    ),
                );
            }
        }
        RedisMode::Streams => {
            checks.non_blank("ingest.redis.stream", &redis.stream);
            checks.at_least("ingest.redis.stream_shards", redis.stream_shards as u64, 1);
            if redis.stream_shards > 1 && redis.stream.contains(['{', '}']) {
                checks.fail(
                    "ingest.redis.stream",
                    "must not contain `{` or `}` when stream_shards > 1: the shard keys \
                     are <stream>:{<i>}, whose hash tag must be the shard number",
                );
            }
            if let Some(block) = redis.stream_block_ms {
                checks.at_least("ingest.redis.stream_block_ms", block, 1);
            }
            // A restarted node reloads up to history.capacity entries from
            // the stream: trimming below that would cut resumes short.
            let needed = (history as u64).max(1);
            if redis.stream_maxlen < needed {
                checks.fail(
                    "ingest.redis.stream_maxlen",
                    format!(
                        "must be at least history.capacity = {needed}, the entries a \
                         restarted node reloads for resumes (got {})",
                        redis.stream_maxlen
                    ),
                );
            }
        }
    }
}

fn validate_amqp(amqp: &AmqpIngest, checks: &mut Checks) {
    // amqps:// would need lapin's TLS stack; not built in (docs/operations.md).
    checks.scheme("ingest.amqp.url", &amqp.url, &["amqp"]);
    checks.non_blank("ingest.amqp.exchange", &amqp.exchange);
    if amqp.routing_keys.is_empty() {
        checks.fail("ingest.amqp.routing_keys", "must list at least one key");
    }
    if amqp.routing_keys.iter().any(|k| k.trim().is_empty()) {
        checks.fail("ingest.amqp.routing_keys", "must not contain an empty key");
    }
    checks.at_least("ingest.amqp.prefetch", u64::from(amqp.prefetch), 1);
    if let Some(queue) = &amqp.queue {
        checks.token("ingest.amqp.queue", queue);
    }
    checks.token(
        "ingest.amqp.dead_letter_exchange",
        &amqp.dead_letter_exchange,
    );
    if amqp.queue_expires_s > MAX_QUEUE_EXPIRES_S {
        checks.fail(
            "ingest.amqp.queue_expires_s",
            format!(
                "must be at most {MAX_QUEUE_EXPIRES_S} (got {})",
                amqp.queue_expires_s
            ),
        );
    }
}
