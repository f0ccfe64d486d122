//! [`ChannelSource`]: an in-process ingest source over a Tokio channel.

use async_trait::async_trait;
use bytes::Bytes;
use tokio::sync::mpsc;

use super::{Incoming, IngestItem, IngestSource};
use crate::model::{Envelope, Event, BINCODE_MARKER};

/// The sending side of a [`ChannelSource`].
#[derive(Debug, Clone)]
pub struct ChannelPublisher {
    tx: mpsc::Sender<(Option<String>, Bytes)>,
}

/// The source was dropped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the ingest source is gone")]
pub struct SourceClosed;

impl ChannelPublisher {
    /// Sends one raw body as if published on `channel`: TickStockPL JSON,
    /// or a bincode [`Envelope`] after a leading `0x00` byte. Waits while
    /// the channel is full.
    pub async fn send(&self, channel: Option<&str>, body: Bytes) -> Result<(), SourceClosed> {
        self.tx
            .send((channel.map(str::to_owned), body))
            .await
            .map_err(|_| SourceClosed)
    }
}

/// An [`IngestSource`] fed by [`ChannelPublisher`]s in the same process.
pub struct ChannelSource {
    name: String,
    rx: mpsc::Receiver<(Option<String>, Bytes)>,
    max_bytes: usize,
}

/// A source named `name` holding up to `capacity` undelivered messages and
/// accepting bodies up to `max_bytes`.
pub fn channel_source(
    name: &str,
    capacity: usize,
    max_bytes: usize,
) -> (ChannelPublisher, ChannelSource) {
    let (tx, rx) = mpsc::channel(capacity.max(1));
    let source = ChannelSource {
        name: name.to_owned(),
        rx,
        max_bytes,
    };
    (ChannelPublisher { tx }, source)
}

/// Decodes a raw broker body: a bincode [`Envelope`] after the
/// [`BINCODE_MARKER`] byte, else TickStockPL JSON. `channel` (a Redis
/// channel or an AMQP routing key) gives the event type when the body has
/// none.
pub fn decode_body(
    body: Bytes,
    channel: Option<&str>,
    max_bytes: usize,
) -> Result<Event, crate::model::DecodeError> {
    match body.first() {
        Some(&BINCODE_MARKER) => Envelope::decode_event(&body[1..], channel, max_bytes),
        _ => Event::from_json(body, channel, max_bytes),
    }
}

#[async_trait]
impl IngestSource for ChannelSource {
    fn name(&self) -> &str {
        &self.name
    }

    async fn next(&mut self) -> Option<IngestItem> {
        let (channel, body) = self.rx.recv().await?;
        Some(IngestItem::Message(Incoming {
            decoded: decode_body(body, channel.as_deref(), self.max_bytes),
            offset: None,
            acker: None,
        }))
    }
}
