//! [`Schema::decode`]: a JSON body into an [`Event`], reading only the
//! fields the schema declares.
//!
//! The top-level object is walked once: a declared field's value is kept
//! as borrowed raw JSON, every other field is skipped by the parser. The
//! body itself is kept byte for byte; clients receive it verbatim.

use std::borrow::Cow;
use std::fmt;
use std::sync::Arc;

use bytes::Bytes;
use serde::de::{DeserializeSeed, Deserializer, IgnoredAny, MapAccess, Visitor};
use serde_json::value::RawValue;
use smallvec::SmallVec;

use super::dimension::{Case, DimId, DimKind, Dimension};
use super::{FieldRole, Schema};
use crate::model::event::{EventParts, Values, MAX_DEPTH, MAX_NAME_CHARS};
use crate::model::{DecodeError, Event, Priority, Value};

/// The raw value of each declared body field, by its position in
/// [`Schema::field_roles`].
type Found<'de> = SmallVec<[Option<&'de RawValue>; 16]>;

impl Schema {
    /// Decodes a JSON body into an event of this schema.
    ///
    /// `channel` is the Redis channel, AMQP routing key or `?channel=` the
    /// body arrived on; it gives the event type when the body has none
    /// (else the schema's default type). `max_bytes` is
    /// `limits.max_publish_bytes`.
    pub fn decode(
        self: &Arc<Self>,
        body: Bytes,
        channel: Option<&str>,
        max_bytes: usize,
    ) -> Result<Event, DecodeError> {
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
        if !text.trim_start().starts_with('{') {
            // Tell "JSON but not an object" from "not JSON at all".
            return Err(match serde_json::from_str::<IgnoredAny>(text) {
                Ok(_) => DecodeError::NotAnObject,
                Err(e) => DecodeError::NotJson(e.to_string()),
            });
        }
        let mut de = serde_json::Deserializer::from_str(text);
        let found = FieldSeed(self.field_roles())
            .deserialize(&mut de)
            .and_then(|found| de.end().map(|()| found))
            .map_err(|e| DecodeError::NotJson(e.to_string()))?;
        let parts = self.parts(&found, channel)?;
        Ok(Event::from_parts(self.clone(), parts, body.clone()))
    }

    fn parts(&self, found: &Found<'_>, channel: Option<&str>) -> Result<EventParts, DecodeError> {
        let mut values: Values = SmallVec::from_elem(None, self.dimensions().len());
        let mut parts = EventParts::default();
        let mut priority = None;
        for ((field, role), raw) in self.field_roles().iter().zip(found) {
            let Some(raw) = raw.filter(|r| r.get() != "null") else {
                continue;
            };
            match *role {
                FieldRole::Dim(dim, _) => {
                    // Aliases come in rank order: the first present wins.
                    if values[dim.index()].is_none() {
                        values[dim.index()] = Some(dim_value(self.dimension(dim), raw)?);
                    }
                }
                FieldRole::EventId => parts.event_id = Some((*string(raw, field)?).into()),
                FieldRole::UserId => parts.user_id = Some(name(raw, field, MAX_NAME_CHARS)?.into()),
                FieldRole::Priority => priority = Some(string(raw, field)?.parse::<Priority>()?),
            }
        }
        let event_type = match &values[DimId::EVENT_TYPE.index()] {
            Some(Value::Text(t)) => t.clone(),
            _ => channel
                .and_then(|c| self.event_type_for_channel(c))
                .unwrap_or(self.default_event_type())
                .into(),
        };
        for dim in self.required_for(&event_type) {
            if values[dim.index()].is_none() {
                return Err(DecodeError::MissingField {
                    event_type: event_type.clone(),
                    field: self.dimension(*dim).name().into(),
                });
            }
        }
        values[DimId::EVENT_TYPE.index()] = Some(Value::Text(event_type));
        parts.priority = priority.unwrap_or_else(|| self.derived_priority(&values));
        parts.values = values;
        Ok(parts)
    }
}

fn dim_value(dim: &Dimension, raw: &RawValue) -> Result<Value, DecodeError> {
    match &dim.kind {
        DimKind::Text { case, max_chars } => {
            let text = name(raw, dim.name(), *max_chars)?;
            Ok(Value::Text(match case {
                Case::Exact => text.into(),
                _ => case.apply(&text),
            }))
        }
        DimKind::Choice { .. } => Ok(Value::Choice(dim.choice(&string(raw, dim.name())?)?)),
        DimKind::Number { min, max } => {
            let value: f64 =
                serde_json::from_str(raw.get()).map_err(|_| DecodeError::WrongType {
                    field: dim.name().into(),
                    expected: "a number",
                })?;
            if !(*min..=*max).contains(&value) {
                return Err(DecodeError::OutOfRange {
                    field: dim.name().into(),
                    value,
                    min: *min,
                    max: *max,
                    reason: dim.range_reason.clone(),
                });
            }
            Ok(Value::Number(value))
        }
    }
}

/// The string `raw` holds: borrowed from the body unless it has escapes.
fn string<'a>(raw: &'a RawValue, field: &str) -> Result<Cow<'a, str>, DecodeError> {
    let json = raw.get();
    // The parser has checked the value: a string without a backslash is
    // its text between the quotes.
    if let Some(text) = json.strip_prefix('"').and_then(|s| s.strip_suffix('"')) {
        if !text.contains('\\') {
            return Ok(Cow::Borrowed(text));
        }
    }
    serde_json::from_str::<String>(json)
        .map(Cow::Owned)
        .map_err(|_| DecodeError::WrongType {
            field: field.into(),
            expected: "a string",
        })
}

/// A string of 1 to `max` characters.
fn name<'a>(raw: &'a RawValue, field: &str, max: usize) -> Result<Cow<'a, str>, DecodeError> {
    let s = string(raw, field)?;
    if s.is_empty() {
        return Err(DecodeError::EmptyField(field.into()));
    }
    // Byte length bounds char count from above: skip counting when short.
    if s.len() > max && s.chars().count() > max {
        return Err(DecodeError::TooLong {
            field: field.into(),
            max,
        });
    }
    Ok(s)
}

/// Walks the top-level object, keeping the raw value of each declared
/// field.
struct FieldSeed<'s>(&'s [(Box<str>, FieldRole)]);

impl<'de> DeserializeSeed<'de> for FieldSeed<'_> {
    type Value = Found<'de>;

    fn deserialize<D: Deserializer<'de>>(self, de: D) -> Result<Self::Value, D::Error> {
        de.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for FieldSeed<'_> {
    type Value = Found<'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut found: Found<'de> = SmallVec::from_elem(None, self.0.len());
        while let Some(Key(key)) = map.next_key()? {
            match self.0.iter().position(|(f, _)| **f == *key) {
                Some(i) if found[i].is_some() => {
                    return Err(serde::de::Error::custom(format_args!(
                        "duplicate field `{key}`"
                    )));
                }
                Some(i) => found[i] = Some(map.next_value::<&'de RawValue>()?),
                None => _ = map.next_value::<IgnoredAny>()?,
            }
        }
        Ok(found)
    }
}

/// A key, borrowed from the body unless it has escapes.
struct Key<'de>(Cow<'de, str>);

impl<'de> serde::Deserialize<'de> for Key<'de> {
    fn deserialize<D: Deserializer<'de>>(de: D) -> Result<Self, D::Error> {
        struct KeyVisitor;
        impl<'de> Visitor<'de> for KeyVisitor {
            type Value = Key<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a key")
            }
            fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(Key(Cow::Borrowed(v)))
            }
            fn visit_str<E>(self, v: &str) -> Result<Self::Value, E> {
                Ok(Key(Cow::Owned(v.to_owned())))
            }
        }
        de.deserialize_str(KeyVisitor)
    }
}

/// True when arrays/objects nest deeper than `max`. A linear scan that skips
/// string contents, so hostile nesting is refused before the parser recurses.
fn exceeds_depth(bytes: &[u8], max: usize) -> bool {
    // No body can nest deeper than it has openings: counting them (SIMD)
    // settles nearly every body without the byte-by-byte walk below, which
    // was most of the decoding's own time.
    if memchr::memchr2_iter(b'{', b'[', bytes).count() <= max {
        return false;
    }
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
    use super::{exceeds_depth, string};
    use serde_json::value::RawValue;
    use std::borrow::Cow;

    #[test]
    fn strings_borrow_unless_escaped_and_only_strings_are_strings() {
        let raw = |json: &str| RawValue::from_string(json.to_owned()).unwrap();
        let plain = raw(r#""AAPL""#);
        assert!(matches!(
            string(&plain, "symbol"),
            Ok(Cow::Borrowed("AAPL"))
        ));
        let escaped = raw(r#""A\u0041P\"L""#);
        assert_eq!(string(&escaped, "symbol").unwrap(), "AAP\"L");
        for not_a_string in ["1", "true", "[\"a\"]", "{\"a\":\"b\"}"] {
            assert!(
                string(&raw(not_a_string), "symbol").is_err(),
                "{not_a_string}"
            );
        }
    }

    #[test]
    fn depth_counts_nesting_not_openings_or_strings() {
        let nested = |n: usize| format!("{}{}", "[".repeat(n), "]".repeat(n));
        assert!(!exceeds_depth(nested(64).as_bytes(), 64));
        assert!(exceeds_depth(nested(65).as_bytes(), 64));
        // Many openings, none deep: past the count, the walk decides.
        let wide = format!("[{}]", vec!["[]"; 100].join(","));
        assert!(!exceeds_depth(wide.as_bytes(), 64));
        // Brackets inside strings (escaped quotes included) do not nest.
        let quoted = format!(r#"{{"a":"\"{}"}}"#, "[".repeat(100));
        assert!(!exceeds_depth(quoted.as_bytes(), 64));
    }
}
