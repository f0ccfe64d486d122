//! [`Event`]: one published event, decoded once at ingest.
//!
//! The schema's dimensions are pulled out into [`Value`]s; the body is kept
//! as the exact bytes that were published, because clients receive it
//! verbatim (`data`) and re-serializing it would both cost time and change
//! it.

use std::sync::Arc;

use bytes::Bytes;
use smallvec::SmallVec;

use super::error::DecodeError;
use super::schema::{tickstock, DimId, Schema};
use super::values::{Priority, Value};

/// Longest accepted `user_id`, and the default longest text value, in
/// characters.
pub const MAX_NAME_CHARS: usize = 128;
/// Deepest accepted nesting of arrays and objects in a body.
pub const MAX_DEPTH: usize = 64;
/// Default of `limits.max_publish_bytes`.
pub const DEFAULT_MAX_BODY_BYTES: usize = 1 << 20;

/// A decoded event: its dimensions plus the body as published.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    schema: Arc<Schema>,
    /// One per dimension of the schema, in [`DimId`] order; the event type
    /// is always there.
    values: Values,
    event_id: Option<Box<str>>,
    /// An idempotency key that travelled beside the body (see
    /// [`Event::with_idempotency_key`]).
    side_key: Option<Box<str>>,
    user_id: Option<Box<str>>,
    priority: Priority,
    body: Bytes,
}

/// An event's values, inline for schemas of up to six dimensions
/// (TickStock has six): the event is one allocation, which matters when
/// the history frees events long after they were made and their memory
/// has gone cold.
pub(crate) type Values = SmallVec<[Option<Value>; 6]>;

/// What the decoder found besides the body.
#[derive(Debug, Default)]
pub(crate) struct EventParts {
    pub(crate) values: Values,
    pub(crate) event_id: Option<Box<str>>,
    pub(crate) user_id: Option<Box<str>>,
    pub(crate) priority: Priority,
}

/// The subject of a rate-limited event: the values of the schema's
/// conflation dimensions. A newer event with the same key supersedes an
/// older one still held.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct ConflationKey(SmallVec<[KeyPart; 3]>);

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum KeyPart {
    Text(Box<str>),
    Choice(u8),
    Number(u64),
}

impl Event {
    /// Decodes a body with the default schema, TickStock's
    /// ([`tickstock::schema`]); see [`Schema::decode`].
    pub fn from_json(
        body: Bytes,
        channel: Option<&str>,
        max_bytes: usize,
    ) -> Result<Self, DecodeError> {
        tickstock::schema().decode(body, channel, max_bytes)
    }

    pub(crate) fn from_parts(schema: Arc<Schema>, parts: EventParts, body: Bytes) -> Self {
        Self {
            schema,
            values: parts.values,
            event_id: parts.event_id,
            side_key: None,
            user_id: parts.user_id,
            priority: parts.priority,
            body,
        }
    }

    /// The schema it was decoded with.
    pub fn schema(&self) -> &Arc<Schema> {
        &self.schema
    }

    /// Every dimension's value, in [`DimId`] order.
    pub fn values(&self) -> &[Option<Value>] {
        &self.values
    }

    /// One dimension's value.
    pub fn value(&self, dim: DimId) -> Option<&Value> {
        self.values.get(dim.index())?.as_ref()
    }

    /// The value of the dimension called `name`, as text: a text value, or
    /// a choice's wire name.
    pub fn text(&self, name: &str) -> Option<&str> {
        let dim = self.schema.dim(name)?;
        match self.value(dim)? {
            Value::Text(t) => Some(t),
            Value::Choice(c) => self.schema.dimension(dim).choice_name(*c),
            Value::Number(_) => None,
        }
    }

    /// The value of the number dimension called `name`.
    pub fn number(&self, name: &str) -> Option<f64> {
        self.value(self.schema.dim(name)?)?.number()
    }

    /// The event type (`pattern_detected`, `system_health`, ...).
    pub fn event_type(&self) -> &str {
        self.value(DimId::EVENT_TYPE)
            .and_then(Value::text)
            .unwrap_or_default()
    }
    /// The producer's event id, if it sent one.
    pub fn event_id(&self) -> Option<&str> {
        self.event_id.as_deref()
    }
    /// Gives the event the idempotency key that travelled beside its body
    /// (an `Idempotency-Key` header, a stream entry's `id` field), for when
    /// the body has no `event_id` of its own, which always wins. An empty
    /// key is none.
    pub fn with_idempotency_key(mut self, key: impl Into<Box<str>>) -> Self {
        let key = key.into();
        if !key.is_empty() {
            self.side_key = Some(key);
        }
        self
    }
    /// The key the hub de-duplicates on: the body's `event_id`, else the
    /// key given by [`with_idempotency_key`](Self::with_idempotency_key);
    /// `None` when the event has neither (it is never taken for a copy).
    pub fn idempotency_key(&self) -> Option<&str> {
        self.event_id
            .as_deref()
            .filter(|id| !id.is_empty())
            .or(self.side_key.as_deref())
    }
    /// The one user a private event is for; `None` for public events.
    pub fn user_id(&self) -> Option<&str> {
        self.user_id.as_deref()
    }
    /// Priority: as sent, else derived as the schema says.
    pub fn priority(&self) -> Priority {
        self.priority
    }
    /// The body exactly as published (a JSON object).
    pub fn body(&self) -> &Bytes {
        &self.body
    }

    /// Whether the event has every conflation dimension of its schema (and
    /// the schema has some), without building the key.
    pub fn conflates(&self) -> bool {
        let dims = self.schema.conflation();
        !dims.is_empty() && dims.iter().all(|d| self.value(*d).is_some())
    }

    /// The event's conflation key, when it [`conflates`](Self::conflates).
    pub(crate) fn conflation_key(&self) -> Option<ConflationKey> {
        if !self.conflates() {
            return None;
        }
        let parts = self.schema.conflation().iter().filter_map(|d| {
            Some(match self.value(*d)? {
                Value::Text(t) => KeyPart::Text(t.clone()),
                Value::Choice(c) => KeyPart::Choice(*c),
                Value::Number(n) => KeyPart::Number((n + 0.0).to_bits()),
            })
        });
        Some(ConflationKey(parts.collect()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::schema::tickstock::TickStockEvent;
    use crate::model::{MarketRegime, Tier};

    fn decode(json: &str, channel: Option<&str>) -> Result<Event, DecodeError> {
        Event::from_json(
            Bytes::copy_from_slice(json.as_bytes()),
            channel,
            DEFAULT_MAX_BODY_BYTES,
        )
    }

    #[test]
    fn decodes_a_pattern_event_and_keeps_the_body() {
        let json = r#"{"source":"TickStockPL","pattern":"BreakoutBO","symbol":"aapl","confidence":0.95,"tier":"daily","metadata":{"x":[1,2]}}"#;
        let e = decode(json, Some("tickstock.events.patterns")).unwrap();
        assert_eq!(e.event_type(), "pattern_detected");
        assert_eq!(e.symbol(), Some("AAPL"));
        assert_eq!(e.pattern(), Some("BreakoutBO"));
        assert_eq!(e.tier(), Some(Tier::Daily));
        assert_eq!(e.priority(), Priority::Critical);
        assert_eq!(e.body().as_ref(), json.as_bytes());
    }

    #[test]
    fn channel_gives_the_type_unless_the_body_names_one() {
        let health = decode(r#"{"status":"healthy"}"#, Some("tickstock.health.status")).unwrap();
        assert_eq!(health.event_type(), "system_health");
        assert_eq!(health.priority(), Priority::Medium);
        let named = decode(
            r#"{"event_type":"market_state","priority":"low"}"#,
            Some("tickstock.health.status"),
        )
        .unwrap();
        assert_eq!(named.event_type(), "market_state");
        assert_eq!(named.priority(), Priority::Low);
    }

    #[test]
    fn pattern_name_is_an_alias_and_private_events_keep_their_user() {
        let e = decode(
            r#"{"pattern_name":"Doji","symbol":"X","user_id":"u1","market_regime":"bear"}"#,
            None,
        )
        .unwrap();
        assert_eq!(e.pattern(), Some("Doji"));
        assert_eq!(e.user_id(), Some("u1"));
        assert_eq!(e.market_regime(), Some(MarketRegime::Bear));
        assert_eq!(e.conflation_key(), None);
    }

    #[test]
    fn rejects_each_rule_with_its_reason() {
        let cases = [
            ("{", "not_json"),
            ("", "not_json"),
            ("[1]", "not_an_object"),
            ("\"x\"", "not_an_object"),
            (r#"{"pattern":"P"}"#, "missing_field"),
            (r#"{"symbol":"S"}"#, "missing_field"),
            (r#"{"symbol":"","pattern":"P"}"#, "empty_field"),
            (
                r#"{"symbol":"S","pattern":"P","confidence":-0.1}"#,
                "confidence_out_of_range",
            ),
            (
                r#"{"symbol":"S","pattern":"P","confidence":"x"}"#,
                "wrong_type",
            ),
            (
                r#"{"symbol":"S","pattern":"P","tier":"weekly"}"#,
                "unknown_tier",
            ),
            (
                r#"{"symbol":"S","pattern":"P","priority":"urgent"}"#,
                "unknown_priority",
            ),
            (
                r#"{"symbol":"S","pattern":"P","market_regime":"up"}"#,
                "unknown_market_regime",
            ),
            (r#"{"symbol":5,"pattern":"P"}"#, "wrong_type"),
        ];
        for (json, reason) in cases {
            assert_eq!(decode(json, None).unwrap_err().reason(), reason, "{json}");
        }
    }

    #[test]
    fn limits_size_depth_and_lengths() {
        let long_symbol = format!(r#"{{"symbol":"{}","pattern":"P"}}"#, "A".repeat(33));
        assert_eq!(decode(&long_symbol, None).unwrap_err().reason(), "too_long");
        let ok_symbol = format!(r#"{{"symbol":"{}","pattern":"P"}}"#, "é".repeat(32));
        assert!(decode(&ok_symbol, None).is_ok());
        let deep = format!("{}{}", "[".repeat(65), "]".repeat(65));
        assert_eq!(decode(&deep, None).unwrap_err().reason(), "too_deep");
        let brackets_in_strings = format!(r#"{{"symbol":"S","pattern":"{}"}}"#, "[".repeat(100));
        assert!(decode(&brackets_in_strings, None).is_ok());
        let err = Event::from_json(Bytes::from_static(b"{}"), None, 1).unwrap_err();
        assert_eq!(err.reason(), "too_large");
        let err = Event::from_json(Bytes::from_static(b"\xff{}"), None, 100).unwrap_err();
        assert_eq!(err, DecodeError::NotUtf8);
    }
}
