//! [`ChannelSource`]: an in-process ingest source over a Tokio channel.

use async_trait::async_trait;
use bytes::Bytes;
use tokio::sync::mpsc;

use super::{BodyDecoder, Incoming, IngestItem, IngestSource, SourceContext};

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
    /// Sends one raw body as if published on `channel`: JSON of the hub's
    /// schema, or a bincode [`Envelope`](crate::model::Envelope) after a
    /// leading `0x00` byte. Waits while
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
    decoder: BodyDecoder,
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
        decoder: BodyDecoder::new(max_bytes),
    };
    (ChannelPublisher { tx }, source)
}

#[async_trait]
impl IngestSource for ChannelSource {
    fn name(&self) -> &str {
        &self.name
    }

    /// Decodes with the hub's schema.
    fn attach(&mut self, context: &SourceContext) {
        self.decoder.set_schema(context.schema.clone());
    }

    async fn next(&mut self) -> Option<IngestItem> {
        let (channel, body) = self.rx.recv().await?;
        Some(IngestItem::Message(Incoming {
            decoded: self.decoder.decode(body, channel.as_deref()),
            offset: None,
            acker: None,
        }))
    }
}
