//! [`Event`]: one published event, decoded once at ingest.
//!
//! The indexed dimensions are pulled out into typed fields; the body is kept
//! as the exact bytes that were published, because clients receive it
//! verbatim (`data`) and re-serializing it would both cost time and change it.

use bytes::Bytes;
use serde::Deserialize;
use serde_json::value::RawValue;

use super::channel::{event_type_for_channel, PATTERN_DETECTED};
use super::error::DecodeError;
use super::values::{MarketRegime, Priority, Tier};

/// Longest accepted `symbol`, in characters.
pub const MAX_SYMBOL_CHARS: usize = 32;
/// Longest accepted `pattern`, `event_type` or `user_id`, in characters.
pub const MAX_NAME_CHARS: usize = 128;
/// Deepest accepted nesting of arrays and objects in a body.
pub const MAX_DEPTH: usize = 64;
/// Default of `limits.max_publish_bytes`.
pub const DEFAULT_MAX_BODY_BYTES: usize = 1 << 20;

/// A decoded event: its routing dimensions plus the body as published.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    event_type: Box<str>,
    event_id: Option<Box<str>>,
    /// An idempotency key that travelled beside the body (see
    /// [`Event::with_idempotency_key`]).
    side_key: Option<Box<str>>,
    symbol: Option<Box<str>>,
    pattern: Option<Box<str>>,
    tier: Option<Tier>,
    market_regime: Option<MarketRegime>,
    user_id: Option<Box<str>>,
    confidence: Option<f64>,
    priority: Priority,
    body: Bytes,
}

/// The fields of a body that tickcast reads; everything else is skipped by
/// the parser and survives in the raw body.
#[derive(Deserialize)]
struct KnownFields<'a> {
    #[serde(borrow)]
    event_type: Option<&'a RawValue>,
    #[serde(borrow)]
    event_id: Option<&'a RawValue>,
    #[serde(borrow)]
    symbol: Option<&'a RawValue>,
    #[serde(borrow)]
    pattern: Option<&'a RawValue>,
    #[serde(borrow)]
    pattern_name: Option<&'a RawValue>,
    #[serde(borrow)]
    tier: Option<&'a RawValue>,
    #[serde(borrow)]
    market_regime: Option<&'a RawValue>,
    #[serde(borrow)]
    user_id: Option<&'a RawValue>,
    #[serde(borrow)]
    confidence: Option<&'a RawValue>,
    #[serde(borrow)]
    priority: Option<&'a RawValue>,
}

impl Event {
    /// Decodes a TickStockPL JSON body.
    ///
    /// `channel` is the Redis channel, AMQP routing key or `?channel=` the body
    /// arrived on; it gives the event type when the body has no `event_type`
    /// (else `pattern_detected`). `max_bytes` is `limits.max_publish_bytes`.
    pub fn from_json(
        body: Bytes,
        channel: Option<&str>,
        max_bytes: usize,
    ) -> Result<Self, DecodeError> {
        if body.len() > max_bytes {
            return Err(DecodeError::TooLarge {
                size: body.len(),
                max: max_bytes,
            });
        }
        let text = std::str::from_utf8(&body).map_err(|_| DecodeError::NotUtf8)?;
        if exceeds_depth(text.as_bytes(), MAX_DEPTH) {
            return Err(DecodeError::TooDeep { max: MAX_DEPTH });
        }
        let trimmed = text.trim_start();
        if !trimmed.starts_with('{') {
            // Tell "JSON but not an object" from "not JSON at all".
            return Err(match serde_json::from_str::<serde::de::IgnoredAny>(text) {
                Ok(_) => DecodeError::NotAnObject,
                Err(e) => DecodeError::NotJson(e.to_string()),
            });
        }
        let known: KnownFields<'_> =
            serde_json::from_str(text).map_err(|e| DecodeError::NotJson(e.to_string()))?;
        let event = Self::from_known(&known, channel, body.clone())?;
        Ok(event)
    }

    fn from_known(
        known: &KnownFields<'_>,
        channel: Option<&str>,
        body: Bytes,
    ) -> Result<Self, DecodeError> {
        let event_type = match name_field(known.event_type, "event_type", MAX_NAME_CHARS)? {
            Some(t) => t,
            None => channel
                .and_then(event_type_for_channel)
                .unwrap_or(PATTERN_DETECTED)
                .into(),
        };
        let pattern = match known.pattern {
            Some(_) => name_field(known.pattern, "pattern", MAX_NAME_CHARS)?,
            None => name_field(known.pattern_name, "pattern", MAX_NAME_CHARS)?,
        };
        let symbol = name_field(known.symbol, "symbol", MAX_SYMBOL_CHARS)?
            .map(|s| s.to_uppercase().into_boxed_str());
        if &*event_type == PATTERN_DETECTED {
            if symbol.is_none() {
                return Err(DecodeError::MissingField("symbol"));
            }
            if pattern.is_none() {
                return Err(DecodeError::MissingField("pattern"));
            }
        }
        let confidence = confidence_field(known.confidence)?;
        let priority = match enum_field::<Priority>(known.priority, "priority")? {
            Some(p) => p,
            None => Priority::from_confidence(confidence),
        };
        Ok(Self {
            event_type,
            event_id: string_field(known.event_id, "event_id")?.map(String::into_boxed_str),
            side_key: None,
            symbol,
            pattern,
            tier: enum_field(known.tier, "tier")?,
            market_regime: enum_field(known.market_regime, "market_regime")?,
            user_id: name_field(known.user_id, "user_id", MAX_NAME_CHARS)?,
            confidence,
            priority,
            body,
        })
    }

    /// The event type (`pattern_detected`, `system_health`, ...).
    pub fn event_type(&self) -> &str {
        &self.event_type
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
    /// The symbol, upper-cased.
    pub fn symbol(&self) -> Option<&str> {
        self.symbol.as_deref()
    }
    /// The pattern name (`pattern` or its alias `pattern_name`).
    pub fn pattern(&self) -> Option<&str> {
        self.pattern.as_deref()
    }
    /// The tier.
    pub fn tier(&self) -> Option<Tier> {
        self.tier
    }
    /// The market regime.
    pub fn market_regime(&self) -> Option<MarketRegime> {
        self.market_regime
    }
    /// The one user a private event is for; `None` for public events.
    pub fn user_id(&self) -> Option<&str> {
        self.user_id.as_deref()
    }
    /// Detection confidence in 0..=1.
    pub fn confidence(&self) -> Option<f64> {
        self.confidence
    }
    /// Priority: as sent, else derived from confidence.
    pub fn priority(&self) -> Priority {
        self.priority
    }
    /// The body exactly as published (a JSON object).
    pub fn body(&self) -> &Bytes {
        &self.body
    }
    /// Conflation key (symbol + pattern + tier) for rate limiting, when the
    /// event has all three: a newer event with the same key supersedes it.
    pub fn conflation_key(&self) -> Option<(&str, &str, Tier)> {
        Some((self.symbol()?, self.pattern()?, self.tier?))
    }
}

fn too_long(field: &'static str, max: usize, s: &str) -> Result<(), DecodeError> {
    // Byte length bounds char count from above: skip counting when short.
    if s.len() > max && s.chars().count() > max {
        return Err(DecodeError::TooLong { field, max });
    }
    Ok(())
}

fn string_field(
    raw: Option<&RawValue>,
    field: &'static str,
) -> Result<Option<String>, DecodeError> {
    match raw {
        None => Ok(None),
        Some(raw) if raw.get() == "null" => Ok(None),
        Some(raw) => serde_json::from_str::<String>(raw.get())
            .map(Some)
            .map_err(|_| DecodeError::WrongType {
                field,
                expected: "a string",
            }),
    }
}

fn name_field(
    raw: Option<&RawValue>,
    field: &'static str,
    max: usize,
) -> Result<Option<Box<str>>, DecodeError> {
    let Some(s) = string_field(raw, field)? else {
        return Ok(None);
    };
    if s.is_empty() {
        return Err(DecodeError::EmptyField(field));
    }
    too_long(field, max, &s)?;
    Ok(Some(s.into_boxed_str()))
}

fn enum_field<T>(raw: Option<&RawValue>, field: &'static str) -> Result<Option<T>, DecodeError>
where
    T: std::str::FromStr<Err = super::UnknownValue>,
{
    match string_field(raw, field)? {
        None => Ok(None),
        Some(s) => Ok(Some(s.parse::<T>()?)),
    }
}

fn confidence_field(raw: Option<&RawValue>) -> Result<Option<f64>, DecodeError> {
    let Some(raw) = raw.filter(|r| r.get() != "null") else {
        return Ok(None);
    };
    let value: f64 = serde_json::from_str(raw.get()).map_err(|_| DecodeError::WrongType {
        field: "confidence",
        expected: "a number",
    })?;
    if !(0.0..=1.0).contains(&value) {
        return Err(DecodeError::ConfidenceOutOfRange(value));
    }
    Ok(Some(value))
}

/// True when arrays/objects nest deeper than `max`. A linear scan that skips
/// string contents, so hostile nesting is refused before the parser recurses.
fn exceeds_depth(bytes: &[u8], max: usize) -> bool {
    let (mut depth, mut in_string, mut escaped) = (0usize, false, false);
    for &b in bytes {
        if in_string {
            match (escaped, b) {
                (true, _) => escaped = false,
                (false, b'\\') => escaped = true,
                (false, b'"') => in_string = false,
                _ => {}
            }
            continue;
        }
        match b {
            b'"' => in_string = true,
            b'{' | b'[' => {
                depth += 1;
                if depth > max {
                    return true;
                }
            }
            b'}' | b']' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

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
