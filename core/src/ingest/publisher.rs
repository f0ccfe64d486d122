//! [`BrokerPublisher`]: publishing into a broker, so that every node
//! consuming it delivers the event (the HTTP API's path when a broker is
//! configured).

use async_trait::async_trait;
use bytes::Bytes;

use crate::model::Offset;

/// A broker refused or could not take a publish.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BrokerError {
    /// The broker is not reachable right now (retrying in the background).
    #[error("broker unavailable: {0}")]
    Unavailable(String),
    /// The broker answered with an error for this message.
    #[error("broker refused the message: {0}")]
    Refused(String),
    /// The broker took the message but handed it to no consumer, so no node
    /// will deliver it (Redis pub/sub: PUBLISH answered 0 receivers, e.g.
    /// while the nodes resubscribe after a Redis restart). Nothing was
    /// delivered: publishing it again is safe.
    #[error("no receiver: {0}")]
    NoReceiver(String),
}

/// One body to publish, with the idempotency key to send beside it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outgoing {
    /// The Redis channel, the stream entry's `channel` field, or the AMQP
    /// routing key.
    pub channel: String,
    /// The body, passed on byte for byte.
    pub body: Bytes,
    /// The event's idempotency key (its `event_id`, or a producer's
    /// `Idempotency-Key`), sent where the broker has a place for it beside
    /// the body (AMQP `message_id`, a stream entry's `id` field) so every
    /// consuming node de-duplicates on it; `None`: the event has none.
    pub key: Option<String>,
}

impl Outgoing {
    /// `(channel, body)` items without idempotency keys: what
    /// [`BrokerPublisher::publish_all`] hands to
    /// [`publish_keyed`](BrokerPublisher::publish_keyed) in a publisher
    /// that implements the latter.
    pub fn unkeyed(items: Vec<(String, Bytes)>) -> Vec<Self> {
        items
            .into_iter()
            .map(|(channel, body)| Self {
                channel,
                body,
                key: None,
            })
            .collect()
    }
}

/// Publishes raw event bodies into a broker.
///
/// Bodies are passed on byte for byte (consumers decode them exactly as
/// TickStockPL's own publishes); `channel` is the Redis channel, the field
/// `channel` of a stream entry, or the AMQP routing key.
#[async_trait]
pub trait BrokerPublisher: Send + Sync {
    /// The broker's name (`redis`, `amqp`), for logs and errors.
    fn name(&self) -> &str;

    /// Publishes one body. Returns the offset the broker assigned where
    /// offsets are the broker's (Redis Streams entry ids), else `None`.
    async fn publish(&self, channel: &str, body: Bytes) -> Result<Option<Offset>, BrokerError>;

    /// Publishes several bodies in order, one result per item. The default
    /// publishes one at a time; brokers that can pipeline override it.
    async fn publish_all(
        &self,
        items: Vec<(String, Bytes)>,
    ) -> Vec<Result<Option<Offset>, BrokerError>> {
        let mut results = Vec::with_capacity(items.len());
        for (channel, body) in items {
            results.push(self.publish(&channel, body).await);
        }
        results
    }

    /// Whether [`publish_keyed`](Self::publish_keyed) sends keys beside
    /// the bodies. When false (Redis pub/sub: a message is its body), only
    /// a key inside the body (`event_id`) reaches the consumers.
    fn carries_keys(&self) -> bool {
        false
    }

    /// [`publish_all`](Self::publish_all) with each item's idempotency key
    /// sent beside its body where the broker can carry it. The default
    /// drops the keys.
    async fn publish_keyed(
        &self,
        items: Vec<Outgoing>,
    ) -> Vec<Result<Option<Offset>, BrokerError>> {
        let items = items
            .into_iter()
            .map(|item| (item.channel, item.body))
            .collect();
        self.publish_all(items).await
    }
}
