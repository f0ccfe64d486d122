//! Pub/sub mode: [`PubSubConsumer`] SUBSCRIBEs to channels and
//! PSUBSCRIBEs to patterns on a dedicated connection.
//!
//! Pub/sub has no acknowledgements and no replay: a message published
//! while the node is disconnected is lost for this node. The node numbers
//! what it receives itself.

use std::time::{Duration, Instant};

use bytes::Bytes;
use futures_util::StreamExt;
use redis::aio::{PubSubSink, PubSubStream};
use redis::Msg;
use tickcast_core::ingest::{BodyDecoder, Incoming, IngestItem};
use tokio::time::{interval_at, Interval, MissedTickBehavior};

use crate::config::RedisConfig;
use crate::link::{bounded, LinkError};

/// The shortest keepalive period (a zero one would ping without pause).
const MIN_KEEPALIVE: Duration = Duration::from_secs(1);

/// One subscribed connection.
struct Subscription {
    /// Sends PING (and would send further SUBSCRIBEs).
    sink: PubSubSink,
    /// The messages; ends when the connection closes.
    messages: PubSubStream,
    keepalive: Interval,
    last_message: Instant,
}

/// The state of a pub/sub consumer, kept across sessions.
pub(crate) struct PubSubConsumer {
    client: redis::Client,
    config: RedisConfig,
    pub(crate) decoder: BodyDecoder,
    subscription: Option<Subscription>,
}

impl PubSubConsumer {
    /// A consumer of `config.channels`; connects on
    /// [`connect`](Self::connect).
    pub(crate) fn new(client: redis::Client, config: RedisConfig) -> Self {
        let (channels, patterns) = config.subscriptions();
        if channels.is_empty() && patterns.is_empty() {
            tracing::warn!("redis pub/sub source has no channels: it will receive nothing");
        }
        Self {
            client,
            decoder: BodyDecoder::new(config.max_body_bytes),
            config,
            subscription: None,
        }
    }

    /// Opens the connection and subscribes to every channel and pattern.
    pub(crate) async fn connect(&mut self) -> Result<(), LinkError> {
        self.subscription = None;
        let timeout = self.config.command_timeout;
        let pubsub = bounded("connect", timeout, self.client.get_async_pubsub()).await?;
        let (mut sink, messages) = pubsub.split();
        let (channels, patterns) = self.config.subscriptions();
        if !channels.is_empty() {
            bounded("SUBSCRIBE", timeout, sink.subscribe(channels.as_slice())).await?;
        }
        if !patterns.is_empty() {
            bounded("PSUBSCRIBE", timeout, sink.psubscribe(patterns.as_slice())).await?;
        }
        let period = self.config.keepalive.max(MIN_KEEPALIVE);
        let mut keepalive = interval_at(tokio::time::Instant::now() + period, period);
        keepalive.set_missed_tick_behavior(MissedTickBehavior::Delay);
        self.subscription = Some(Subscription {
            sink,
            messages,
            keepalive,
            last_message: Instant::now(),
        });
        Ok(())
    }

    /// Closes the connection.
    pub(crate) fn disconnect(&mut self) {
        self.subscription = None;
    }

    /// The next message; an error ends the session.
    pub(crate) async fn next_item(&mut self) -> Result<IngestItem, LinkError> {
        let timeout = self.config.command_timeout;
        let sub = self.subscription.as_mut().ok_or(LinkError::Closed)?;
        loop {
            tokio::select! {
                message = sub.messages.next() => {
                    let message = message.ok_or(LinkError::Closed)?;
                    sub.last_message = Instant::now();
                    return Ok(IngestItem::Message(incoming(&message, &self.decoder)));
                }
                _ = sub.keepalive.tick() => {
                    // Only a quiet connection needs proof of life.
                    if sub.last_message.elapsed() >= sub.keepalive.period() {
                        bounded("PING", timeout, sub.sink.ping::<redis::Value>()).await?;
                    }
                }
            }
        }
    }
}

/// The message as the hub takes it. For a pattern subscription the
/// channel is the one the message was published on, not the pattern, so
/// it gives the event type as usual.
fn incoming(message: &Msg, decoder: &BodyDecoder) -> Incoming {
    let body = Bytes::copy_from_slice(message.get_payload_bytes());
    Incoming {
        decoded: decoder.decode(body, Some(message.get_channel_name())),
        offset: None,
        acker: None,
    }
}
