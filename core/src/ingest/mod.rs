//! Ingest: where events come from.
//!
//! An [`IngestSource`] yields decoded events (or the reason a message was
//! malformed) with an optional acknowledgement hook; [`run_source`] feeds
//! them to a [`Hub`](crate::hub::Hub) and acknowledges each message only
//! after the hub accepted it, so a broker with acks loses nothing.
//! [`ChannelSource`] is the in-process source (tests, embedding).
//!
//! A broker source implements a [`Link`] (connect, next item, disconnect)
//! and leaves reconnecting to [`Reconnecting`]. `run_source` registers the
//! source's counters with the hub and hands them to the source
//! ([`IngestSource::attach`]), and refuses to start a source whose
//! [`offsets`](IngestSource::offsets) do not fit the hub's
//! [`OffsetMode`](crate::hub::OffsetMode) ([`OffsetMismatch`]).

mod backoff;
mod channel;
mod counters;
mod decoder;
mod driver;
mod offsets;
mod publisher;
mod reconnect;

pub use backoff::Backoff;
pub use channel::{channel_source, ChannelPublisher, ChannelSource, SourceClosed};
pub use counters::{SourceCounters, SourceStats};
pub use decoder::BodyDecoder;
pub use driver::run_source;
pub use offsets::{OffsetMismatch, SourceOffsets};
pub use publisher::{BrokerError, BrokerPublisher, Outgoing};
pub use reconnect::{Link, Reconnecting};

use std::sync::Arc;

use async_trait::async_trait;

use crate::model::schema::Schema;
use crate::model::{DecodeError, Offset};

/// Settles one broker message after the hub has dealt with it.
#[async_trait]
pub trait Acknowledger: Send {
    /// The hub accepted the event (or already had it): remove it from the
    /// broker.
    async fn ack(self: Box<Self>);
    /// The message is malformed: reject it without requeue (to the
    /// dead-letter exchange where there is one).
    async fn reject(self: Box<Self>);
}

/// One message from a source.
pub struct Incoming {
    /// The decoded event, or why the body is malformed.
    pub decoded: Result<crate::model::Event, DecodeError>,
    /// The broker's offset for it (Redis Streams id), if it has one.
    pub offset: Option<Offset>,
    /// How to settle the message; `None` for sources without acks.
    pub acker: Option<Box<dyn Acknowledger>>,
}

/// What a source reports.
pub enum IngestItem {
    /// A message arrived.
    Message(Incoming),
    /// An event from before this node started, for the history only
    /// ([`Hub::remember_at`](crate::Hub::remember_at)): clients may resume
    /// from it, nobody receives it live. Needs an offset; no acker.
    Backfill(Incoming),
    /// The source is connected to its broker (initially or again). A
    /// source that reloads the history at start ([`Backfill`](Self::Backfill)
    /// items, and entries it re-delivers live) yields it once those are
    /// all handed out: it also opens a hub built with
    /// [`HubConfig::await_history`](crate::HubConfig::await_history) to
    /// clients.
    Connected,
    /// The source lost its broker and is retrying; the text says why.
    Disconnected(String),
}

/// What [`run_source`] hands a source before its first item
/// ([`IngestSource::attach`]).
#[derive(Clone)]
#[non_exhaustive]
pub struct SourceContext {
    /// The counters registered under the source's name.
    pub counters: Arc<SourceCounters>,
    /// The hub's schema: what bodies are decoded with.
    pub schema: Arc<Schema>,
}

impl SourceContext {
    /// What a source driven by hand (not by [`run_source`]) is handed.
    pub fn new(counters: Arc<SourceCounters>, schema: Arc<Schema>) -> Self {
        Self { counters, schema }
    }
}

/// A stream of events from a broker or another producer.
#[async_trait]
pub trait IngestSource: Send {
    /// The name shown in stats and logs (`redis`, `amqp`, ...).
    fn name(&self) -> &str;
    /// The next item; `None` when the source has ended for good.
    async fn next(&mut self) -> Option<IngestItem>;

    /// How many items [`run_source`] may read ahead of the hub, on a task
    /// of its own, so that reading and decoding overlap with publishing.
    /// 0 (the default) drives the source one item at a time: the next
    /// [`next`](Self::next) only after the hub settled the previous item,
    /// which a source whose acks must follow its reads in order (AMQP's
    /// batched `multiple` acks) needs.
    fn read_ahead(&self) -> usize {
        0
    }

    /// Which offsets its messages carry; [`run_source`] refuses to start
    /// it on a hub whose [`OffsetMode`](crate::hub::OffsetMode) does not
    /// take them. [`SourceOffsets::Hub`] (the default): none, the hub
    /// numbers the events.
    fn offsets(&self) -> SourceOffsets {
        SourceOffsets::Hub
    }

    /// Whether the source counts as connected before its first item.
    /// `true` (the default) for a source that has no broker to reach; a
    /// broker source that reports [`IngestItem::Connected`] says `false`,
    /// so `/ready` waits for it from the moment [`run_source`] registers
    /// it.
    fn starts_connected(&self) -> bool {
        true
    }

    /// Takes what [`run_source`] hands it before the first
    /// [`next`](Self::next): the hub's schema, to decode bodies with (a
    /// source that decodes must use it, or its events carry other fields
    /// than the hub's clients filter on), and the counters registered under
    /// the source's name, for what only the source sees (the broker's lag,
    /// copies it drops itself; `run_source` counts what the hub does with
    /// each item). The default ignores both.
    fn attach(&mut self, context: &SourceContext) {
        let _ = context;
    }
}
