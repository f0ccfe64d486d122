//! [`RawEntry`]: a stream entry as Redis returned it, with only the
//! fields tickcast reads, moved out of the reply.
//!
//! Ingest reads every entry this way, at up to 100,000 entries a second:
//! the reply's `Value` tree is walked once and its byte buffers are moved,
//! not copied, and no per-entry map or field-name strings are built (what
//! `redis::streams::StreamId` would cost: a `HashMap` and a `String` per
//! field, for three known names).

use std::fmt::Debug;

use bytes::Bytes;
use redis::Value;
use redis_protocol::resp2::types::BytesFrame;

/// The field holding the event's channel (gives its type).
pub(crate) const CHANNEL_FIELD: &str = "channel";
/// The field holding the event body, byte for byte as published.
pub(crate) const BODY_FIELD: &str = "body";
/// The optional field holding the event's idempotency key, for events
/// whose body has no `event_id` (an HTTP publish's `Idempotency-Key`).
pub(crate) const ID_FIELD: &str = "id";

/// One stream entry: its id and its known fields' values.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(crate) struct RawEntry {
    /// The entry id (`<ms>-<seq>`).
    pub(crate) id: String,
    /// The [`BODY_FIELD`] value.
    pub(crate) body: Option<Bytes>,
    /// The [`CHANNEL_FIELD`] value.
    pub(crate) channel: Option<Bytes>,
    /// The [`ID_FIELD`] value.
    pub(crate) key: Option<Bytes>,
    /// Redis returned no fields at all: an entry deleted from the stream
    /// (XDEL, MAXLEN trimming) while a read had it.
    pub(crate) deleted: bool,
}

/// A RESP reply as the entry walker takes it apart: redis-rs's `Value`
/// (the control connection's reads) or redis-protocol's `BytesFrame` (the
/// live reads of [`WireReader`](super::wire::WireReader)).
pub(crate) trait Reply: Sized + Debug {
    /// A RESP nil.
    fn is_nil(&self) -> bool;
    /// An array's items, or the reply back.
    fn into_items(self) -> Result<Vec<Self>, Self>;
    /// A RESP3 map's pairs (only redis-rs speaks RESP3), or the reply back.
    fn into_pairs(self) -> Result<Vec<(Self, Self)>, Self> {
        Err(self)
    }
    /// A string's bytes, borrowed.
    fn text(&self) -> Option<&[u8]>;
    /// A string's bytes, moved out.
    fn into_bytes(self) -> Option<Bytes>;
}

impl Reply for Value {
    fn is_nil(&self) -> bool {
        matches!(self, Value::Nil)
    }
    fn into_items(self) -> Result<Vec<Self>, Self> {
        match self {
            Value::Array(items) => Ok(items),
            other => Err(other),
        }
    }
    fn into_pairs(self) -> Result<Vec<(Self, Self)>, Self> {
        match self {
            Value::Map(pairs) => Ok(pairs),
            other => Err(other),
        }
    }
    fn text(&self) -> Option<&[u8]> {
        match self {
            Value::BulkString(bytes) => Some(bytes),
            Value::SimpleString(text) => Some(text.as_bytes()),
            _ => None,
        }
    }
    fn into_bytes(self) -> Option<Bytes> {
        match self {
            Value::BulkString(bytes) => Some(bytes.into()),
            Value::SimpleString(text) => Some(text.into_bytes().into()),
            _ => None,
        }
    }
}

impl Reply for BytesFrame {
    fn is_nil(&self) -> bool {
        matches!(self, BytesFrame::Null)
    }
    fn into_items(self) -> Result<Vec<Self>, Self> {
        match self {
            BytesFrame::Array(items) => Ok(items),
            other => Err(other),
        }
    }
    fn text(&self) -> Option<&[u8]> {
        match self {
            BytesFrame::BulkString(bytes) | BytesFrame::SimpleString(bytes) => Some(bytes),
            _ => None,
        }
    }
    fn into_bytes(self) -> Option<Bytes> {
        match self {
            BytesFrame::BulkString(bytes) | BytesFrame::SimpleString(bytes) => Some(bytes),
            _ => None,
        }
    }
}

/// The entries of an XREADGROUP reply: nil (BLOCK ran out), or per
/// stream (an array of `[key, entries]` pairs in RESP2, a map in RESP3)
/// an array of entries.
pub(crate) fn entries_of_read<R: Reply>(reply: R) -> redis::RedisResult<Vec<RawEntry>> {
    if reply.is_nil() {
        return Ok(Vec::new());
    }
    let per_stream = match reply.into_items() {
        Ok(streams) => streams
            .into_iter()
            .map(|stream| match stream.into_items() {
                Ok(mut pair) if pair.len() == 2 => Ok(pair.pop()),
                Ok(pair) => Err(unexpected("XREADGROUP stream", &pair)),
                Err(other) => Err(unexpected("XREADGROUP stream", &other)),
            })
            .collect::<redis::RedisResult<Vec<_>>>()?,
        Err(reply) => match reply.into_pairs() {
            Ok(pairs) => pairs
                .into_iter()
                .map(|(_, entries)| Some(entries))
                .collect(),
            Err(other) => return Err(unexpected("XREADGROUP reply", &other)),
        },
    };
    let mut out = Vec::new();
    for entries in per_stream.into_iter().flatten() {
        out.extend(entries_of_range(entries)?);
    }
    Ok(out)
}

/// The entries of one stream's array (an XRANGE/XREVRANGE reply, or one
/// stream of an XREADGROUP reply): `[id, [field, value, ...]]` each, the
/// fields nil for an entry deleted from the stream.
pub(crate) fn entries_of_range<R: Reply>(reply: R) -> redis::RedisResult<Vec<RawEntry>> {
    match reply.into_items() {
        Ok(entries) => entries.into_iter().map(entry_of).collect(),
        Err(other) => Err(unexpected("stream entries", &other)),
    }
}

fn entry_of<R: Reply>(entry: R) -> redis::RedisResult<RawEntry> {
    let mut parts = match entry.into_items() {
        Ok(parts) => parts.into_iter(),
        Err(other) => return Err(unexpected("stream entry", &other)),
    };
    let id = match parts.next().and_then(R::into_bytes) {
        Some(id) => String::from_utf8(id.into()).map_err(|_| {
            redis::RedisError::from((redis::ErrorKind::Parse, "entry id is not UTF-8"))
        })?,
        None => {
            return Err(redis::RedisError::from((
                redis::ErrorKind::Parse,
                "stream entry without id",
            )))
        }
    };
    let mut raw = RawEntry {
        id,
        ..RawEntry::default()
    };
    let fields = parts
        .next()
        .and_then(|f| f.into_items().ok())
        .unwrap_or_default();
    raw.deleted = fields.is_empty();
    let mut fields = fields.into_iter();
    while let (Some(name), Some(value)) = (fields.next(), fields.next()) {
        let slot = match name.text() {
            Some(name) if name == BODY_FIELD.as_bytes() => &mut raw.body,
            Some(name) if name == CHANNEL_FIELD.as_bytes() => &mut raw.channel,
            Some(name) if name == ID_FIELD.as_bytes() => &mut raw.key,
            _ => continue,
        };
        *slot = value.into_bytes();
    }
    Ok(raw)
}

fn unexpected(what: &str, got: &impl Debug) -> redis::RedisError {
    redis::RedisError::from((
        redis::ErrorKind::Parse,
        "unexpected reply",
        format!("{what}: {:.200}", format!("{got:?}")),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bulk(s: &str) -> Value {
        Value::BulkString(s.as_bytes().to_vec())
    }

    fn entries() -> Value {
        Value::Array(vec![
            Value::Array(vec![
                bulk("5-1"),
                Value::Array(vec![
                    bulk("channel"),
                    bulk("c"),
                    bulk("other"),
                    bulk("x"),
                    bulk("body"),
                    bulk("{}"),
                    bulk("id"),
                    bulk("k"),
                ]),
            ]),
            // An entry deleted from the stream.
            Value::Array(vec![bulk("5-2"), Value::Nil]),
            // Fields tickcast does not know only.
            Value::Array(vec![bulk("5-3"), Value::Array(vec![bulk("x"), bulk("y")])]),
        ])
    }

    fn check(got: &[RawEntry]) {
        assert_eq!(got.len(), 3);
        assert_eq!(got[0].id, "5-1");
        assert_eq!(got[0].body.as_deref(), Some(&b"{}"[..]));
        assert_eq!(got[0].channel.as_deref(), Some(&b"c"[..]));
        assert_eq!(got[0].key.as_deref(), Some(&b"k"[..]));
        assert!(!got[0].deleted);
        assert_eq!(got[1].id, "5-2");
        assert!(got[1].deleted && got[1].body.is_none());
        assert!(!got[2].deleted && got[2].body.is_none());
    }

    #[test]
    fn entries_are_moved_out_of_every_reply_shape() {
        let resp2 = Value::Array(vec![Value::Array(vec![bulk("s"), entries()])]);
        let resp3 = Value::Map(vec![(bulk("s"), entries())]);
        for reply in [resp2, resp3] {
            check(&entries_of_read(reply).unwrap());
        }
        check(&entries_of_range(entries()).unwrap());
        assert!(entries_of_read(Value::Nil).unwrap().is_empty());
    }

    #[test]
    fn malformed_replies_are_errors_not_panics() {
        assert!(entries_of_read(Value::Int(1)).is_err());
        let stream = |entries| Value::Array(vec![Value::Array(vec![bulk("s"), entries])]);
        assert!(entries_of_read(stream(Value::Int(3))).is_err());
        assert!(entries_of_read(stream(Value::Array(vec![Value::Int(3)]))).is_err());
        assert!(entries_of_range(Value::Array(vec![Value::Array(vec![])])).is_err());
        let bad_id = Value::Array(vec![Value::Array(vec![Value::BulkString(vec![0xff])])]);
        assert!(entries_of_range(bad_id).is_err());
        // An odd field list: the last name without value is ignored.
        let odd = Value::Array(vec![Value::Array(vec![
            bulk("1-1"),
            Value::Array(vec![bulk("body")]),
        ])]);
        let got = entries_of_range(odd).unwrap();
        assert!(got[0].body.is_none() && !got[0].deleted);
    }
}
