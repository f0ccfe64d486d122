//! [`BodyDecoder`]: how a source turns raw broker bodies into events.

use std::sync::Arc;

use bytes::Bytes;

use crate::model::schema::{tickstock, Schema};
use crate::model::{DecodeError, Envelope, Event, BINCODE_MARKER};

/// Decodes bodies with a schema, up to a size: a bincode [`Envelope`]
/// after the [`BINCODE_MARKER`] byte, else JSON. A source builds one with
/// its configured `max_bytes` and TickStock's schema, and takes the hub's
/// schema when [`run_source`](super::run_source) attaches it
/// ([`IngestSource::attach`](super::IngestSource::attach)), so it decodes
/// what the hub's clients filter on.
#[derive(Debug, Clone)]
pub struct BodyDecoder {
    schema: Arc<Schema>,
    max_bytes: usize,
}

impl BodyDecoder {
    /// TickStock's schema (until [`set_schema`](Self::set_schema)), bodies
    /// up to `max_bytes`.
    pub fn new(max_bytes: usize) -> Self {
        Self {
            schema: tickstock::schema(),
            max_bytes,
        }
    }

    /// Decodes with `schema` from now on.
    pub fn set_schema(&mut self, schema: Arc<Schema>) {
        self.schema = schema;
    }

    /// The schema it decodes with.
    pub fn schema(&self) -> &Arc<Schema> {
        &self.schema
    }

    /// `body` as published on `channel` (a Redis channel or an AMQP
    /// routing key, which gives the event type when the body has none).
    pub fn decode(&self, body: Bytes, channel: Option<&str>) -> Result<Event, DecodeError> {
        match body.first() {
            Some(&BINCODE_MARKER) => self.decode_envelope(&body[1..], channel),
            _ => self.schema.decode(body, channel, self.max_bytes),
        }
    }

    /// An unmarked bincode [`Envelope`].
    pub fn decode_envelope(
        &self,
        bytes: &[u8],
        channel: Option<&str>,
    ) -> Result<Event, DecodeError> {
        Envelope::decode_with(&self.schema, bytes, channel, self.max_bytes)
    }
}
