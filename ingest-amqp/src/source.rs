//! [`AmqpSource`]: the node's queue as an [`IngestSource`]; core's
//! [`Reconnecting`] driver reconnects it.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use futures_util::{FutureExt, StreamExt};
use lapin::message::Delivery;
use lapin::{Acker, Channel, Connection, Consumer};
use tickcast_core::ingest::{
    BodyDecoder, Incoming, IngestItem, IngestSource, Link, Reconnecting, SourceContext,
    SourceCounters,
};

use crate::acker::{AckBatch, DeliveryAcker};
use crate::config::{AmqpConfig, Checked, ConfigError};
use crate::decode::decode_delivery;
use crate::dedup::RecentIds;
use crate::topology::{self, SetupError};

/// The source's name in stats and logs.
const SOURCE_NAME: &str = "amqp";

/// Consumes this node's queue on the topic exchange (see [`AmqpConfig`])
/// and yields each delivery as [`IngestItem::Message`] for
/// [`run_source`](tickcast_core::ingest::run_source), which acks it once
/// the hub has it and rejects it when malformed (to the dead-letter
/// exchange, never requeued).
///
/// - Connecting is lazy and never gives up (core's [`Reconnecting`]): the
///   first [`next`] connects, declares the topology and yields
///   [`IngestItem::Connected`]. When the broker cannot be reached or the
///   connection or channel fails, the source yields
///   [`IngestItem::Disconnected`] once, retries with exponential backoff
///   (`reconnect_min` doubling to `reconnect_max`), declares everything
///   again and yields `Connected`.
/// - Its messages carry no offsets: the hub numbers them
///   ([`OffsetMode::Node`](tickcast_core::hub::OffsetMode), which
///   `run_source` checks before it starts the source).
/// - Unacknowledged messages of a lost connection are redelivered by the
///   broker. A message whose `message_id` belongs to an event accepted
///   recently (the last `dedup_capacity` ids) is acked and skipped, not
///   yielded again; this also absorbs a publisher's retry after a lost
///   confirm, which the broker does not flag as redelivered. Skipped copies
///   are counted as duplicates in the counters `run_source` attaches.
///   Messages without a `message_id` may be delivered twice after a fault;
///   producers must give each event an id of its own (a reused id drops
///   the later event as a copy).
///
/// [`next`]: IngestSource::next
pub struct AmqpSource {
    driver: Reconnecting<Queue>,
}

/// The node's queue, one session at a time: the [`Link`] the driver
/// reconnects.
struct Queue {
    config: AmqpConfig,
    /// Decodes bodies (with the hub's schema once attached).
    decoder: BodyDecoder,
    names: Checked,
    session: Option<Session>,
    recent: RecentIds,
    counters: Option<Arc<SourceCounters>>,
    /// With `queue_expires`: how often to renew the dead queue's lease (a
    /// third of the expiry: two renewals may fail in a row)...
    lease_period: Option<Duration>,
    /// ...and when next, once connected.
    lease: Option<tokio::time::Interval>,
    /// Acks of accepted deliveries, sent together (see [`AckBatch`]).
    batch: Arc<AckBatch>,
}

/// Why a session could not start or ended: the text of
/// [`IngestItem::Disconnected`].
#[derive(Debug, thiserror::Error)]
enum SessionError {
    /// Connecting or declaring the topology failed.
    #[error(transparent)]
    Setup(#[from] SetupError),
    /// The connection or channel failed.
    #[error("{0}")]
    Consumer(#[from] lapin::Error),
    /// The broker ended the consumer (the queue was deleted).
    #[error("the broker cancelled the consumer")]
    Cancelled,
    /// Read without a session (the driver does not).
    #[error("not connected")]
    NotConnected,
}

/// A live connection with its consuming channel. Dropping it closes the
/// connection, so the broker requeues whatever was not acked.
struct Session {
    consumer: Consumer,
    channel: Channel,
    connection: Connection,
}

/// Closes a connection this source is done with. lapin keeps a dropped
/// connection open, and the broker redelivers its unacknowledged messages
/// only once it closes: a connection left behind would hold them (and, with
/// a live consumer, take a share of new ones) for as long as it lives.
async fn close(connection: &Connection) {
    let closing = connection.close(200, "tickcast: reconnecting".into());
    if let Ok(Err(error)) = tokio::time::timeout(Duration::from_secs(2), closing).await {
        tracing::debug!(source = SOURCE_NAME, "closing the old connection: {error}");
    }
}

impl AmqpSource {
    /// A source for `config`; it connects on the first
    /// [`next`](IngestSource::next). Fails only for a configuration that
    /// can never work (bad URL or names, `amqps://`, no routing key).
    pub fn new(config: AmqpConfig) -> Result<Self, ConfigError> {
        let names = config.checked()?;
        let batch = Arc::new(AckBatch::new(usize::from(config.prefetch / 2)));
        let lease_period = config
            .queue_expires
            .map(|expires| (expires / 3).max(Duration::from_millis(1)));
        let (min, max) = (config.reconnect_min, config.reconnect_max);
        let queue = Queue {
            recent: RecentIds::new(config.dedup_capacity, config.dedup_max_age),
            decoder: BodyDecoder::new(config.max_body_bytes),
            config,
            names,
            session: None,
            counters: None,
            lease_period,
            lease: None,
            batch,
        };
        Ok(Self {
            driver: Reconnecting::new(queue, SOURCE_NAME, min, max),
        })
    }
}

impl Queue {
    async fn open(&self) -> Result<Session, SetupError> {
        let name = format!("tickcast consumer {}", self.config.queue);
        let limit = self.config.connect_timeout;
        let (connection, channel) =
            topology::within(limit, topology::open(&self.names, &name)).await?;
        let consuming = topology::consume(
            &channel,
            &self.names,
            self.config.durable,
            self.config.prefetch,
        );
        match topology::within(limit, consuming).await {
            Ok(consumer) => Ok(Session {
                consumer,
                channel,
                connection,
            }),
            Err(error) => {
                // A consume the broker registered after we gave up on it
                // must not live on.
                close(&connection).await;
                Err(error)
            }
        }
    }

    /// A delivery as an item, or `None` for a copy of an accepted event
    /// (acked here, never yielded).
    async fn receive(&self, delivery: Delivery) -> Option<IngestItem> {
        let Delivery {
            routing_key,
            properties,
            data,
            acker,
            redelivered,
            ..
        } = delivery;
        let message_id = properties
            .message_id()
            .as_ref()
            .map(|id| id.as_str())
            .filter(|id| !id.is_empty())
            .map(str::to_owned);
        if let Some(id) = &message_id {
            if self.recent.contains(id) {
                self.skip_duplicate(acker, id, redelivered).await;
                return None;
            }
        }
        let content_type = properties.content_type().as_ref().map(|c| c.as_str());
        let decoded = decode_delivery(&self.decoder, content_type, data, routing_key.as_str());
        let acker = DeliveryAcker {
            acker,
            message_id,
            routing_key: routing_key.to_string(),
            recent: self.recent.clone(),
            batch: self.batch.clone(),
        };
        Some(IngestItem::Message(Incoming {
            decoded,
            offset: None,
            acker: Some(Box::new(acker)),
        }))
    }

    async fn skip_duplicate(&self, acker: Acker, id: &str, redelivered: bool) {
        tracing::debug!(
            source = SOURCE_NAME,
            message_id = id,
            redelivered,
            "duplicate skipped"
        );
        if let Some(counters) = &self.counters {
            counters.duplicate();
        }
        self.batch.record(acker);
    }
}

/// A source dropped while connected (its task aborted at shutdown) sends
/// its recorded acks and closes its connection, so the broker redelivers
/// what it had not acked at once and the queue's `x-expires` countdown
/// starts, instead of both waiting for the process to exit.
impl Drop for Queue {
    fn drop(&mut self) {
        let Some(session) = self.session.take() else {
            return;
        };
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            let batch = self.batch.clone();
            runtime.spawn(async move {
                // What the hub accepted is acked before the connection goes.
                batch.flush().await;
                close(&session.connection).await;
            });
        }
    }
}

#[async_trait]
impl Link for Queue {
    type Error = SessionError;

    /// Connects, declares the topology and starts consuming.
    async fn connect(&mut self) -> Result<(), SessionError> {
        let session = self.open().await?;
        tracing::info!(source = SOURCE_NAME, queue = %self.config.queue, "consuming");
        self.session = Some(session);
        self.lease = self.lease_period.map(|period| {
            let start = tokio::time::Instant::now() + period;
            let mut lease = tokio::time::interval_at(start, period);
            lease.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            lease
        });
        Ok(())
    }

    async fn next_item(&mut self) -> Result<IngestItem, SessionError> {
        loop {
            let session = self.session.as_mut().ok_or(SessionError::NotConnected)?;
            // Recorded acks go out when half the prefetch window waits for
            // them, or before waiting for a delivery: the broker sends no
            // more than `prefetch` unacked ones.
            let mut ready = None;
            if self.batch.len() > 0 {
                if !self.batch.is_full() {
                    ready = session.consumer.next().now_or_never();
                }
                if ready.is_none() {
                    self.batch.flush().await;
                }
            }

            // A delivery already taken off the stream must not be dropped
            // for a lease renewal: no select then.
            let next = match ready {
                Some(next) => next,
                None => tokio::select! {
                    next = session.consumer.next() => next,
                    () = lease_due(&mut self.lease) => {
                        let renewing = topology::renew_dead_queue(&session.channel, &self.names);
                        if let Err(error) = topology::within(self.config.connect_timeout, renewing).await {
                            // The channel is closed with it: the consumer
                            // ends and the reconnect declares everything
                            // again.
                            tracing::warn!(source = SOURCE_NAME, "{error}");
                        }
                        continue;
                    }
                },
            };
            match next {
                Some(Ok(delivery)) => {
                    if let Some(item) = self.receive(delivery).await {
                        return Ok(item);
                    }
                }
                Some(Err(error)) => return Err(error.into()),
                None => return Err(SessionError::Cancelled),
            }
        }
    }

    /// Closes the connection; acks recorded for it can no longer be sent
    /// (the broker redelivers those messages, and the recent ids drop the
    /// copies).
    async fn disconnect(&mut self) {
        self.batch.clear();
        self.lease = None;
        if let Some(session) = self.session.take() {
            close(&session.connection).await;
        }
    }
}

#[async_trait]
impl IngestSource for AmqpSource {
    fn name(&self) -> &str {
        SOURCE_NAME
    }

    /// Not ready until it reached the broker.
    fn starts_connected(&self) -> bool {
        false
    }

    /// Decodes with the hub's schema, and counts the copies it skips
    /// itself as duplicates.
    fn attach(&mut self, context: &SourceContext) {
        let queue = self.driver.link_mut();
        queue.decoder.set_schema(context.schema.clone());
        queue.counters = Some(context.counters.clone());
    }

    async fn next(&mut self) -> Option<IngestItem> {
        Some(self.driver.next().await)
    }
}

/// The next lease renewal, or never without an expiry.
async fn lease_due(lease: &mut Option<tokio::time::Interval>) {
    match lease {
        Some(lease) => {
            lease.tick().await;
        }
        None => std::future::pending().await,
    }
}
