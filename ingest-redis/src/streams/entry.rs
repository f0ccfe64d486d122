//! [`Entry`]: one stream entry on its way to becoming an
//! [`IngestItem`].

use std::sync::Arc;

use tickcast_core::ingest::{BodyDecoder, Incoming, IngestItem};
use tickcast_core::model::{DecodeError, Offset};

use super::cursor::{Cursor, StreamAcker};
use super::raw::{RawEntry, BODY_FIELD};
use super::shard::Shard;

/// How an entry reaches the hub.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Delivery {
    /// Delivered to this consumer: published live, then acknowledged.
    Live,
    /// Consumed before this node started: history only, no ack.
    Backfill,
}

/// A read entry, decoded only when it is handed out.
#[derive(Debug)]
pub(crate) struct Entry {
    pub(crate) raw: RawEntry,
    pub(crate) delivery: Delivery,
    /// The shard it was read from, which makes its offset.
    pub(crate) shard: Shard,
}

impl Entry {
    /// Wraps a read entry of an unsharded stream.
    pub(crate) fn new(raw: RawEntry, delivery: Delivery) -> Self {
        Self {
            raw,
            delivery,
            shard: Shard::SOLE,
        }
    }

    /// The same entry, read from `shard`.
    pub(crate) fn in_shard(self, shard: Shard) -> Self {
        Self { shard, ..self }
    }

    /// The entry's offset (its id, spread by its shard); `None` only for
    /// an id Redis would never produce.
    pub(crate) fn offset(&self) -> Option<Offset> {
        self.shard.offset(&self.raw.id)
    }

    /// The item for the hub, or `None` for an entry Redis returned without
    /// fields (an entry deleted from the stream, XDEL or MAXLEN trimming,
    /// while a read had it): there is nothing to deliver, so the cursor
    /// only moves past it.
    pub(crate) fn into_item(
        self,
        decoder: &BodyDecoder,
        cursor: &Arc<Cursor>,
    ) -> Option<IngestItem> {
        let Self {
            raw:
                RawEntry {
                    id,
                    body,
                    channel,
                    key,
                    deleted,
                },
            delivery,
            shard,
        } = self;
        if deleted && delivery == Delivery::Live {
            tracing::debug!(entry = %id, "stream entry was deleted; moving past it");
            cursor.advance(id);
            return None;
        }
        let offset = shard.offset(&id);
        if offset.is_none() {
            tracing::warn!(entry = %id, "stream entry id is not <ms>-<seq>; no offset");
        }
        let channel = text(channel.as_deref());
        let decoded = match body {
            Some(body) => decoder.decode(body, channel),
            None => Err(DecodeError::NotJson(format!(
                "stream entry has no `{BODY_FIELD}` field"
            ))),
        };
        let decoded = match text(key.as_deref()) {
            Some(key) => decoded.map(|event| event.with_idempotency_key(key)),
            None => decoded,
        };
        let incoming = Incoming {
            decoded,
            offset,
            acker: None,
        };
        Some(match delivery {
            Delivery::Live => IngestItem::Message(Incoming {
                acker: Some(Box::new(StreamAcker::new(id, cursor.clone()))),
                ..incoming
            }),
            Delivery::Backfill => IngestItem::Backfill(incoming),
        })
    }
}

/// A field's value as text, if it is UTF-8.
fn text(value: Option<&[u8]>) -> Option<&str> {
    std::str::from_utf8(value?).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(id: &str, fields: &[(&str, &[u8])], delivery: Delivery) -> Entry {
        let field = |name: &str| {
            fields
                .iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| bytes::Bytes::copy_from_slice(v))
        };
        Entry::new(
            RawEntry {
                id: id.to_owned(),
                body: field("body"),
                channel: field("channel"),
                key: field("id"),
                deleted: fields.is_empty(),
            },
            delivery,
        )
    }

    #[test]
    fn a_live_entry_becomes_a_message_with_offset_and_acker() {
        let cursor = Arc::new(Cursor::default());
        let body = br#"{"pattern":"Doji","symbol":"AAPL","tier":"daily"}"#;
        let fields: &[(&str, &[u8])] = &[("channel", b"tickstock.events.patterns"), ("body", body)];
        let item =
            entry("5-1", fields, Delivery::Live).into_item(&BodyDecoder::new(1 << 20), &cursor);
        let Some(IngestItem::Message(incoming)) = item else {
            panic!("not a message");
        };
        assert_eq!(incoming.offset, Some(Offset::new(5, 1)));
        assert_eq!(incoming.decoded.unwrap().event_type(), "pattern_detected");
        assert!(incoming.acker.is_some());
    }

    #[test]
    fn the_id_field_is_the_key_of_an_event_without_event_id() {
        let cursor = Arc::new(Cursor::default());
        let key = |body: &[u8]| {
            let fields: &[(&str, &[u8])] = &[("body", body), ("id", b"k-1")];
            let Some(IngestItem::Message(incoming)) =
                entry("5-1", fields, Delivery::Live).into_item(&BodyDecoder::new(1 << 20), &cursor)
            else {
                panic!("not a message");
            };
            incoming
                .decoded
                .unwrap()
                .idempotency_key()
                .map(str::to_owned)
        };
        assert_eq!(
            key(br#"{"pattern":"Doji","symbol":"AAPL"}"#).as_deref(),
            Some("k-1")
        );
        let own = br#"{"pattern":"Doji","symbol":"AAPL","event_id":"e-1"}"#;
        assert_eq!(key(own).as_deref(), Some("e-1"));
    }

    #[test]
    fn an_entry_without_body_is_malformed() {
        let cursor = Arc::new(Cursor::default());
        let fields: &[(&str, &[u8])] = &[("channel", b"tickstock.events.patterns")];
        let item =
            entry("5-2", fields, Delivery::Live).into_item(&BodyDecoder::new(1 << 20), &cursor);
        let Some(IngestItem::Message(incoming)) = item else {
            panic!("not a message");
        };
        assert_eq!(incoming.decoded.unwrap_err().reason(), "not_json");
    }

    #[test]
    fn a_deleted_entry_only_moves_the_cursor() {
        let cursor = Arc::new(Cursor::default());
        assert!(entry("5-3", &[], Delivery::Live)
            .into_item(&BodyDecoder::new(1 << 20), &cursor)
            .is_none());
        assert_eq!(cursor.unwritten(), 1);
    }

    #[test]
    fn a_backfill_entry_has_no_acker() {
        let cursor = Arc::new(Cursor::default());
        let body = br#"{"pattern":"Doji","symbol":"AAPL"}"#;
        let fields: &[(&str, &[u8])] = &[("body", body)];
        let item =
            entry("7-0", fields, Delivery::Backfill).into_item(&BodyDecoder::new(1 << 20), &cursor);
        let Some(IngestItem::Backfill(incoming)) = item else {
            panic!("not a backfill item");
        };
        assert!(incoming.acker.is_none());
        assert_eq!(incoming.offset, Some(Offset::new(7, 0)));
    }
}
