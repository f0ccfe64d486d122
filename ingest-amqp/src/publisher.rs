//! [`AmqpPublisher`]: publishing into the exchange, so that every node's
//! queue gets the event (the HTTP API's path when AMQP is configured).

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use bytes::Bytes;
use lapin::options::BasicPublishOptions;
use lapin::types::ShortString;
use lapin::{BasicProperties, Channel, Confirmation, Connection, PublisherConfirm};
use tickcast_core::ingest::{BrokerError, BrokerPublisher, Outgoing as Item};
use tickcast_core::model::Offset;
use tokio::sync::Mutex;

use crate::config::{AmqpConfig, Checked, ConfigError};
use crate::decode::content_type_of;
use crate::topology::{self, SetupError};
use tickcast_core::ingest::Backoff;

/// Publishes bodies to the exchange with the channel as routing key,
/// persistent (delivery mode 2), with the event's idempotency key as
/// `message_id` (the consumers' duplicate check), or a fresh unique one for
/// an event without a key (or with one over 255 bytes, AMQP's limit) and content type `application/json`, or
/// `application/x-bincode` for a body that starts with the bincode marker
/// (sent as it is). Returns once the broker confirmed the message
/// (publisher confirms), with no offset: nodes number events on receipt.
///
/// Connects on first use and again after a failure, at most as often as
/// the reconnect backoff allows; meanwhile publishes fail at once with
/// [`BrokerError::Unavailable`]. A publish whose connection dies before
/// the confirm is sent once more with the same `message_id` on a new
/// connection, so a copy that did reach the broker is dropped by the
/// consumers. A message no queue is bound for is [`BrokerError::Refused`]
/// (it is published `mandatory`), as is one the broker nacks.
pub struct AmqpPublisher {
    names: Checked,
    connect_timeout: Duration,
    publish_timeout: Duration,
    link: Mutex<LinkState>,
    ids: MessageIds,
}

/// The connection in use, or when the next attempt is allowed.
struct LinkState {
    link: Option<Link>,
    backoff: Backoff,
    /// After a failed attempt: not before this instant, and why it failed.
    retry_at: Option<(Instant, String)>,
}

/// A connection with its channel in confirm mode. Dropping it closes both.
struct Link {
    channel: Channel,
    connection: Connection,
}

/// One message ready to go.
struct Outgoing {
    routing_key: ShortString,
    body: Bytes,
    message_id: ShortString,
}

/// Why an attempt failed: worth one more try on a new connection, or not.
enum Failure {
    /// The connection or channel failed (the message may or may not have
    /// reached the broker).
    Retry(String),
    /// The broker's answer about this message; retrying changes nothing.
    Final(BrokerError),
}

impl AmqpPublisher {
    /// A publisher to `config.exchange` at `config.url` (the queue settings
    /// are not used); it connects on the first publish.
    pub fn new(config: &AmqpConfig) -> Result<Self, ConfigError> {
        Ok(Self {
            names: config.checked()?,
            connect_timeout: config.connect_timeout,
            publish_timeout: config.publish_timeout,
            link: Mutex::new(LinkState {
                link: None,
                backoff: Backoff::new(config.reconnect_min, config.reconnect_max),
                retry_at: None,
            }),
            ids: MessageIds::new(),
        })
    }

    /// The live channel, connecting when there is none and the backoff
    /// allows.
    async fn channel(&self) -> Result<Channel, BrokerError> {
        let mut state = self.link.lock().await;
        if let Some(link) = &state.link {
            if link.connection.status().blocked() {
                // Short of memory or disk: the broker would hold every
                // publish until it recovers; say so at once instead.
                return Err(BrokerError::Unavailable(
                    "the broker blocks publishers (resource alarm)".to_owned(),
                ));
            }
            if link.channel.status().connected() {
                return Ok(link.channel.clone());
            }
            state.link = None;
        }
        if let Some((at, why)) = &state.retry_at {
            if Instant::now() < *at {
                return Err(BrokerError::Unavailable(why.clone()));
            }
        }
        match topology::within(self.connect_timeout, self.open()).await {
            Ok(link) => {
                let channel = link.channel.clone();
                state.link = Some(link);
                state.backoff.reset();
                state.retry_at = None;
                Ok(channel)
            }
            Err(error) => {
                let delay = state.backoff.next_delay();
                tracing::warn!("AMQP publisher cannot connect ({error}); next try in {delay:?}");
                state.retry_at = Some((Instant::now() + delay, error.to_string()));
                Err(BrokerError::Unavailable(error.to_string()))
            }
        }
    }

    async fn open(&self) -> Result<Link, SetupError> {
        let (connection, channel) = topology::open(&self.names, "tickcast publisher").await?;
        topology::confirm(&channel).await?;
        // Publishing to a missing exchange would close the channel.
        topology::declare_exchange(&channel, &self.names).await?;
        Ok(Link {
            channel,
            connection,
        })
    }

    /// Hands one message to the broker; the returned future resolves with
    /// its confirm.
    async fn send(&self, channel: &Channel, out: &Outgoing) -> Result<PublisherConfirm, Failure> {
        let properties = BasicProperties::default()
            .with_content_type(content_type_of(&out.body).into())
            .with_delivery_mode(2)
            .with_message_id(out.message_id.clone());
        let options = BasicPublishOptions {
            mandatory: true,
            ..BasicPublishOptions::default()
        };
        channel
            .basic_publish(
                self.names.exchange.clone(),
                out.routing_key.clone(),
                options,
                &out.body,
                properties,
            )
            .await
            .map_err(failure)
    }

    /// Waits for the broker's answer to one message, until `deadline` (one
    /// for a whole batch, so a silent broker costs one timeout, not one
    /// per message).
    async fn confirmed(
        &self,
        confirm: PublisherConfirm,
        out: &Outgoing,
        deadline: tokio::time::Instant,
    ) -> Result<(), Failure> {
        // A broker that does not answer at all would not answer a second
        // try either: no retry (the message may still arrive later).
        let answer = tokio::time::timeout_at(deadline, confirm)
            .await
            .map_err(|_| {
                let why = format!("no confirm within {:?}", self.publish_timeout);
                Failure::Final(BrokerError::Unavailable(why))
            })?;
        match answer.map_err(failure)? {
            Confirmation::Ack(None) => Ok(()),
            // Every channel of this publisher is in confirm mode: no answer
            // here means the channel went away, not that the broker has it.
            Confirmation::NotRequested => Err(Failure::Retry(
                "the channel closed before the broker confirmed".to_owned(),
            )),
            Confirmation::Ack(Some(_)) => Err(Failure::Final(BrokerError::Refused(format!(
                "no queue is bound for routing key {:?} on exchange {}",
                out.routing_key.as_str(),
                self.names.exchange
            )))),
            Confirmation::Nack(_) => Err(Failure::Final(BrokerError::Refused(
                "the broker nacked the message".to_owned(),
            ))),
        }
    }

    /// One more try on a (new, if needed) connection with the same
    /// message id.
    async fn retry(&self, out: &Outgoing, why: String) -> Result<(), BrokerError> {
        tracing::debug!(message_id = %out.message_id, "publishing again after: {why}");
        let channel = self.channel().await?;
        let attempt = async {
            let confirm = self.send(&channel, out).await?;
            self.confirmed(confirm, out, self.deadline()).await
        };
        attempt.await.map_err(|failure| match failure {
            Failure::Retry(why) => BrokerError::Unavailable(why),
            Failure::Final(error) => error,
        })
    }

    /// When confirms asked for now are given up on.
    fn deadline(&self) -> tokio::time::Instant {
        tokio::time::Instant::now() + self.publish_timeout
    }

    fn prepare(&self, item: Item) -> Result<Outgoing, BrokerError> {
        let routing_key = ShortString::try_new(item.channel)
            .map_err(|e| BrokerError::Refused(format!("routing key: {e}")))?;
        let message_id = item
            .key
            .filter(|key| !key.is_empty())
            .and_then(|key| ShortString::try_new(key).ok())
            .unwrap_or_else(|| self.ids.next());
        Ok(Outgoing {
            routing_key,
            body: item.body,
            message_id,
        })
    }

    /// Sends every message, then awaits every confirm: one round trip for
    /// the batch rather than one per message.
    async fn publish_batch(&self, items: Vec<Item>) -> Vec<Result<(), BrokerError>> {
        let channel = self.channel().await;
        let prepared: Vec<_> = items.into_iter().map(|item| self.prepare(item)).collect();
        let mut steps = Vec::with_capacity(prepared.len());
        let mut prepared = prepared.into_iter().peekable();
        while prepared.peek().is_some() {
            let chunk: Vec<_> = prepared.by_ref().take(SEND_TOGETHER).collect();
            steps.extend(self.send_chunk(chunk, &channel).await);
        }
        let deadline = self.deadline();
        let mut results = Vec::with_capacity(steps.len());
        for step in steps {
            results.push(match step {
                Step::Done(result) => result,
                Step::Sent(out, confirm) => {
                    let answer = self.confirmed(confirm, &out, deadline).await;
                    self.settle(&out, answer).await
                }
                Step::Failed(out, failure) => self.settle(&out, Err(failure)).await,
            });
        }
        results
    }

    /// Hands up to [`SEND_TOGETHER`] messages to the connection at once:
    /// `basic_publish` queues a message's frames (and takes its confirm
    /// sequence number) when first polled and then waits until the
    /// connection has written them, and `join_all` polls a short list in
    /// order, so the messages keep their order and the batch waits for one
    /// write instead of one per message.
    async fn send_chunk(
        &self,
        chunk: Vec<Result<Outgoing, BrokerError>>,
        channel: &Result<Channel, BrokerError>,
    ) -> Vec<Step> {
        let channel = match channel {
            Ok(channel) => channel,
            Err(error) => {
                return chunk
                    .into_iter()
                    .map(|out| Step::Done(Err(out.err().unwrap_or_else(|| error.clone()))))
                    .collect();
            }
        };
        let sends = chunk.iter().map(|out| async move {
            match out {
                Ok(out) => Some(self.send(channel, out).await),
                Err(_) => None,
            }
        });
        let sent = futures_util::future::join_all(sends).await;
        chunk
            .into_iter()
            .zip(sent)
            .map(|(out, sent)| match (out, sent) {
                (Ok(out), Some(Ok(confirm))) => Step::Sent(out, confirm),
                (Ok(out), Some(Err(failure))) => Step::Failed(out, failure),
                (Err(error), _) => Step::Done(Err(error)),
                (Ok(out), None) => Step::Failed(out, Failure::Retry("not sent".to_owned())),
            })
            .collect()
    }

    /// The final result of one message: a connection failure gets its one
    /// more try.
    async fn settle(&self, out: &Outgoing, result: Result<(), Failure>) -> Result<(), BrokerError> {
        match result {
            Ok(()) => Ok(()),
            Err(Failure::Final(error)) => Err(error),
            Err(Failure::Retry(why)) => self.retry(out, why).await,
        }
    }
}

/// Messages handed to the connection together: at most the length
/// `futures_util::future::join_all` still polls as a plain list, in order.
const SEND_TOGETHER: usize = 30;

/// Where one message of a batch stands.
enum Step {
    /// Failed before sending (bad routing key, no connection).
    Done(Result<(), BrokerError>),
    /// With the broker; its confirm is pending.
    Sent(Outgoing, PublisherConfirm),
    /// Sending failed.
    Failed(Outgoing, Failure),
}

/// lapin errors: a channel-level (soft) error is the broker refusing this
/// message; anything else is the connection.
fn failure(error: lapin::Error) -> Failure {
    if error.is_amqp_soft_error() {
        Failure::Final(BrokerError::Refused(error.to_string()))
    } else {
        Failure::Retry(error.to_string())
    }
}

#[async_trait]
impl BrokerPublisher for AmqpPublisher {
    fn name(&self) -> &str {
        "amqp"
    }

    async fn publish(&self, channel: &str, body: Bytes) -> Result<Option<Offset>, BrokerError> {
        let item = Item {
            channel: channel.to_owned(),
            body,
            key: None,
        };
        let mut results = self.publish_batch(vec![item]).await;
        match results.pop() {
            Some(result) => result.map(|()| None),
            None => Err(BrokerError::Unavailable("nothing was published".to_owned())),
        }
    }

    async fn publish_all(
        &self,
        items: Vec<(String, Bytes)>,
    ) -> Vec<Result<Option<Offset>, BrokerError>> {
        self.publish_keyed(Item::unkeyed(items)).await
    }

    /// The key is the message's `message_id`.
    fn carries_keys(&self) -> bool {
        true
    }

    async fn publish_keyed(&self, items: Vec<Item>) -> Vec<Result<Option<Offset>, BrokerError>> {
        let results = self.publish_batch(items).await;
        results.into_iter().map(|r| r.map(|()| None)).collect()
    }
}

/// Message ids unique across processes and restarts: a random prefix per
/// publisher (process id, start time, and the standard library's per-process
/// random hash keys) and a counter.
struct MessageIds {
    prefix: String,
    next: AtomicU64,
}

impl MessageIds {
    fn new() -> Self {
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        let mut hasher = RandomState::new().build_hasher();
        hasher.write_u128(nanos);
        hasher.write_u32(std::process::id());
        Self {
            prefix: format!("tc-{:016x}", hasher.finish()),
            next: AtomicU64::new(1),
        }
    }

    fn next(&self) -> ShortString {
        let n = self.next.fetch_add(1, Ordering::Relaxed);
        // At most 3 + 16 + 1 + 20 bytes: always a valid short string.
        ShortString::try_new(format!("{}-{n}", self.prefix)).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn message_ids_are_unique() {
        let a = MessageIds::new();
        let b = MessageIds::new();
        let ids: std::collections::HashSet<String> = (0..1000)
            .flat_map(|_| [a.next().to_string(), b.next().to_string()])
            .collect();
        assert_eq!(ids.len(), 2000);
    }

    #[test]
    fn refuses_routing_keys_over_255_bytes() {
        let publisher = AmqpPublisher::new(&AmqpConfig::default()).unwrap();
        let item = |channel: String, key: Option<String>| Item {
            channel,
            body: Bytes::new(),
            key,
        };
        let long = publisher.prepare(item("k".repeat(256), None));
        assert!(matches!(long, Err(BrokerError::Refused(_))));
    }

    #[test]
    fn the_key_is_the_message_id_when_it_fits() {
        let publisher = AmqpPublisher::new(&AmqpConfig::default()).unwrap();
        let id = |key: Option<String>| {
            let item = Item {
                channel: "c".into(),
                body: Bytes::new(),
                key,
            };
            publisher.prepare(item).unwrap().message_id.to_string()
        };
        assert_eq!(id(Some("e-1".into())), "e-1");
        assert!(id(None).starts_with("tc-"));
        assert!(id(Some(String::new())).starts_with("tc-"));
        assert!(id(Some("k".repeat(256))).starts_with("tc-"));
    }
}
