//! [`AmqpConfig`]: where to consume from and publish to.

use std::time::Duration;

use lapin::types::ShortString;
use lapin::uri::{AMQPScheme, AMQPUri};
use tickcast_core::model::DEFAULT_MAX_BODY_BYTES;

/// Settings of [`AmqpSource`](crate::AmqpSource) and
/// [`AmqpPublisher`](crate::AmqpPublisher). `Default` gives the documented
/// defaults of `[ingest.amqp]`, except the queue name, which must be set per
/// node (see [`AmqpConfig::for_node`]).
#[derive(Debug, Clone, PartialEq)]
pub struct AmqpConfig {
    /// Broker URL, `amqp://user:pass@host:port/vhost` (`%2f` is the vhost
    /// `/`). `amqps://` is refused: this build has no TLS.
    pub url: String,
    /// The topic exchange producers publish to; declared durable. The
    /// routing key plays the Redis channel's part (it gives the event type
    /// when the body has none).
    pub exchange: String,
    /// This node's own queue. Every node needs its own (`tickcast.<node_id>`):
    /// a queue shared by nodes would split the events between them.
    pub queue: String,
    /// Whether the queue survives a broker restart (with persistent
    /// messages, so do the events waiting in it).
    pub durable: bool,
    /// Binding keys of the queue on the exchange (`*` one word, `#` any).
    pub routing_keys: Vec<String>,
    /// Unacknowledged deliveries in flight (`basic.qos`); at least 1.
    pub prefetch: u16,
    /// Where rejected (malformed) messages go, never requeued: a durable
    /// topic exchange with the durable queue `<queue>.dead` bound to it, so
    /// they can be inspected. Each node's rejects reach only its own dead
    /// queue (they are dead-lettered with the node's queue name as routing
    /// key); the original routing key stays in the `x-death` header.
    pub dead_letter_exchange: String,
    /// Largest accepted body (`max_publish_bytes`); larger ones are
    /// rejected as `too_large`.
    pub max_body_bytes: usize,
    /// Message ids remembered to drop redeliveries of events already
    /// accepted (see [`AmqpSource`](crate::AmqpSource)); 0 turns it off.
    pub dedup_capacity: usize,
    /// How long a message id is remembered (the binary passes
    /// `[ingest] dedup_window_s`, the hub's window too).
    pub dedup_max_age: Duration,
    /// First delay before reconnecting; it doubles per failed attempt...
    pub reconnect_min: Duration,
    /// ...up to this, and stays there until a connection succeeds.
    pub reconnect_max: Duration,
    /// Bound on connecting plus declaring, so a broker that accepts the
    /// TCP connection but never answers is retried rather than waited on.
    pub connect_timeout: Duration,
    /// [`AmqpPublisher`](crate::AmqpPublisher): bound on waiting for the
    /// broker's confirm (a broker short of memory or disk blocks
    /// publishers); past it the publish fails as unavailable.
    pub publish_timeout: Duration,
    /// `x-expires` of the queue and of `<queue>.dead`: the broker deletes
    /// them once unused (no consumer, not declared again) this long, so
    /// the queue of a node that is gone for good does not collect events
    /// forever. `None`: they live until deleted. At most `u32::MAX` ms.
    pub queue_expires: Option<Duration>,
    /// `x-max-length` of the queue and of `<queue>.dead`; `None`: no
    /// bound.
    pub queue_max_length: Option<u64>,
    /// What the queue does when it is full (`x-overflow`).
    pub queue_overflow: Overflow,
}

/// RabbitMQ's `x-overflow` for a full queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Overflow {
    /// `drop-head`: the oldest message leaves (dead-lettered into
    /// `<queue>.dead`, itself bounded and dropping its oldest), so a node
    /// that is gone or stuck costs the broker a bounded queue and never
    /// stalls publishers.
    #[default]
    DropHead,
    /// `reject-publish`: the new message is refused; publishers with
    /// confirms get a nack while any bound queue is full.
    RejectPublish,
}

impl Overflow {
    /// The `x-overflow` value.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::DropHead => "drop-head",
            Self::RejectPublish => "reject-publish",
        }
    }
}

impl Default for AmqpConfig {
    fn default() -> Self {
        Self {
            url: "amqp://guest:guest@127.0.0.1:5672/%2f".to_owned(),
            exchange: "tickstock.events".to_owned(),
            queue: "tickcast".to_owned(),
            durable: true,
            routing_keys: vec!["tickstock.#".to_owned()],
            prefetch: 1000,
            dead_letter_exchange: "tickstock.events.dlx".to_owned(),
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
            dedup_capacity: 65_536,
            dedup_max_age: Duration::from_secs(600),
            reconnect_min: Duration::from_millis(100),
            reconnect_max: Duration::from_secs(5),
            connect_timeout: Duration::from_secs(15),
            publish_timeout: Duration::from_secs(15),
            queue_expires: Some(Duration::from_secs(3600)),
            queue_max_length: Some(1_000_000),
            queue_overflow: Overflow::DropHead,
        }
    }
}

impl AmqpConfig {
    /// The defaults with the queue of node `node_id`: `tickcast.<node_id>`.
    pub fn for_node(node_id: &str) -> Self {
        Self {
            queue: format!("tickcast.{node_id}"),
            ..Self::default()
        }
    }

    /// The queue that collects this node's rejected messages.
    pub fn dead_letter_queue(&self) -> String {
        format!("{}.dead", self.queue)
    }

    /// Checks the URL and every name once, so that connecting later can
    /// only fail for reasons of the broker.
    pub(crate) fn checked(&self) -> Result<Checked, ConfigError> {
        let uri: AMQPUri = self
            .url
            .parse()
            .map_err(|why| ConfigError::Url(redact(&self.url), why))?;
        if uri.scheme == AMQPScheme::AMQPS {
            return Err(ConfigError::TlsUnsupported);
        }
        if self.routing_keys.is_empty() {
            return Err(ConfigError::NoRoutingKeys);
        }
        if self.prefetch == 0 {
            return Err(ConfigError::ZeroPrefetch);
        }
        let routing_keys = self
            .routing_keys
            .iter()
            .map(|key| name("routing key", key, true))
            .collect::<Result<_, _>>()?;
        let expires_ms = match self.queue_expires {
            Some(expires) => Some(
                u32::try_from(expires.as_millis())
                    .ok()
                    .filter(|ms| *ms > 0)
                    .ok_or(ConfigError::BadExpiry(expires))?,
            ),
            None => None,
        };
        Ok(Checked {
            limits: QueueLimits {
                expires_ms,
                max_length: self.queue_max_length,
                overflow: self.queue_overflow,
            },
            uri,
            exchange: name("exchange", &self.exchange, false)?,
            queue: name("queue", &self.queue, false)?,
            dead_queue: name("dead-letter queue", &self.dead_letter_queue(), false)?,
            dead_letter_exchange: name("dead-letter exchange", &self.dead_letter_exchange, false)?,
            routing_keys,
        })
    }
}

/// The names of a valid [`AmqpConfig`] as the protocol takes them.
#[derive(Debug, Clone)]
pub(crate) struct Checked {
    pub(crate) uri: AMQPUri,
    pub(crate) exchange: ShortString,
    pub(crate) queue: ShortString,
    pub(crate) dead_queue: ShortString,
    pub(crate) dead_letter_exchange: ShortString,
    pub(crate) routing_keys: Vec<ShortString>,
    pub(crate) limits: QueueLimits,
}

/// The bounds of the node's queues, as the broker takes them.
#[derive(Debug, Clone, Copy)]
pub(crate) struct QueueLimits {
    pub(crate) expires_ms: Option<u32>,
    pub(crate) max_length: Option<u64>,
    pub(crate) overflow: Overflow,
}

/// An [`AmqpConfig`] that cannot work.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// The URL does not parse (the password, if any, is not shown).
    #[error("invalid AMQP URL {0}: {1}")]
    Url(String, String),
    /// `amqps://` needs TLS, which this build does not include.
    #[error("amqps:// (TLS) is not supported by this build; use amqp://")]
    TlsUnsupported,
    /// A name is empty or over the protocol's 255 bytes.
    #[error("{what} {name:?} must be 1 to 255 bytes")]
    BadName {
        /// Which name.
        what: &'static str,
        /// The name given.
        name: String,
    },
    /// Without a binding key the queue would receive nothing.
    #[error("at least one routing key is needed")]
    NoRoutingKeys,
    /// `basic.qos` 0 means unlimited, which a slow hub cannot bound.
    #[error("prefetch must be at least 1")]
    ZeroPrefetch,
    /// `x-expires` must be 1 ms to `u32::MAX` ms.
    #[error("queue expiry {0:?} must be 1 ms to {max} ms", max = u32::MAX)]
    BadExpiry(Duration),
}

/// A protocol short string (at most 255 bytes); empty only where allowed
/// (an empty routing key is a valid binding).
fn name(what: &'static str, value: &str, empty_ok: bool) -> Result<ShortString, ConfigError> {
    let bad = || ConfigError::BadName {
        what,
        name: value.to_owned(),
    };
    if value.is_empty() && !empty_ok {
        return Err(bad());
    }
    ShortString::try_new(value).map_err(|_| bad())
}

/// The URL without its password, for errors and logs.
pub(crate) fn redact(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    match authority.rsplit_once('@') {
        Some((credentials, host)) => {
            let user = credentials.split(':').next().unwrap_or_default();
            format!("{scheme}://{user}:***@{host}{path}")
        }
        None => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_follow_the_design() {
        let config = AmqpConfig::for_node("n1");
        assert_eq!(config.queue, "tickcast.n1");
        assert_eq!(config.dead_letter_queue(), "tickcast.n1.dead");
        assert_eq!(config.exchange, "tickstock.events");
        assert_eq!(config.routing_keys, ["tickstock.#"]);
        assert_eq!(config.prefetch, 1000);
        assert!(config.checked().is_ok());
    }

    #[test]
    fn refuses_what_cannot_work() {
        let with = |f: fn(&mut AmqpConfig)| {
            let mut config = AmqpConfig::for_node("n1");
            f(&mut config);
            config.checked().err()
        };
        assert_eq!(
            with(|c| c.url = "amqps://h:5671/%2f".into()),
            Some(ConfigError::TlsUnsupported)
        );
        assert!(matches!(
            with(|c| c.url = "not a url".into()),
            Some(ConfigError::Url(..))
        ));
        assert_eq!(
            with(|c| c.routing_keys.clear()),
            Some(ConfigError::NoRoutingKeys)
        );
        assert_eq!(with(|c| c.prefetch = 0), Some(ConfigError::ZeroPrefetch));
        assert_eq!(
            with(|c| c.queue_expires = Some(Duration::ZERO)),
            Some(ConfigError::BadExpiry(Duration::ZERO))
        );
        let long = Duration::from_millis(u64::from(u32::MAX) + 1);
        assert_eq!(
            with(|c| c.queue_expires = Some(Duration::from_millis(u64::from(u32::MAX) + 1))),
            Some(ConfigError::BadExpiry(long))
        );
        assert!(matches!(
            with(|c| c.queue = "q".repeat(256)),
            Some(ConfigError::BadName { what: "queue", .. })
        ));
        // `<queue>.dead` must fit too.
        assert!(matches!(
            with(|c| c.queue = "q".repeat(252)),
            Some(ConfigError::BadName {
                what: "dead-letter queue",
                ..
            })
        ));
        assert!(matches!(
            with(|c| c.exchange.clear()),
            Some(ConfigError::BadName { .. })
        ));
    }

    #[test]
    fn redacts_passwords() {
        assert_eq!(
            redact("amqp://guest:secret@127.0.0.1:5672/%2f"),
            "amqp://guest:***@127.0.0.1:5672/%2f"
        );
        assert_eq!(redact("amqp://h:1/v"), "amqp://h:1/v");
    }
}
