//! [`Envelope`]: the compact bincode ingest encoding for Rust producers.
//!
//! An envelope carries the same fields as the TickStockPL JSON. It is turned
//! into that JSON once at ingest and then decoded by the one JSON path, so
//! both encodings obey exactly the same rules and clients always receive a
//! JSON `data` object.

use bytes::Bytes;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use std::sync::Arc;

use super::error::DecodeError;
use super::event::Event;
use super::schema::{tickstock, Schema};

/// The first byte that marks a bincode envelope on Redis (JSON never starts
/// with it).
pub const BINCODE_MARKER: u8 = 0x00;

/// An event as a Rust producer sends it with bincode 2 (serde, standard
/// config). `None` fields are omitted from the JSON body.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Envelope {
    /// Event type; else the channel's, else `pattern_detected`.
    pub event_type: Option<String>,
    /// Producer-side id.
    pub event_id: Option<String>,
    /// Producer name (`TickStockPL`).
    pub source: Option<String>,
    /// Publish time, seconds since the epoch.
    pub timestamp: Option<f64>,
    /// Ticker symbol.
    pub symbol: Option<String>,
    /// Pattern name.
    pub pattern: Option<String>,
    /// `daily`, `intraday` or `combo`.
    pub tier: Option<String>,
    /// Detection confidence, 0..=1.
    pub confidence: Option<f64>,
    /// `low`, `medium`, `high` or `critical`.
    pub priority: Option<String>,
    /// The one user a private event is for.
    pub user_id: Option<String>,
    /// `bull`, `bear`, `neutral` or `consolidation`.
    pub market_regime: Option<String>,
    /// Detection time, seconds since the epoch.
    pub detection_timestamp: Option<f64>,
    /// Any other fields, as the text of one JSON object (e.g. `metadata`).
    pub extra_json: Option<String>,
}

impl Envelope {
    /// Encodes this envelope with bincode's standard configuration.
    pub fn to_bincode(&self) -> Vec<u8> {
        // Serializing plain strings and numbers cannot fail.
        bincode::serde::encode_to_vec(self, bincode::config::standard()).unwrap_or_default()
    }

    /// Decodes a bincode envelope into a TickStock [`Event`] under the same
    /// rules as JSON bodies.
    pub fn decode_event(
        bytes: &[u8],
        channel: Option<&str>,
        max_bytes: usize,
    ) -> Result<Event, DecodeError> {
        Self::decode_with(&tickstock::schema(), bytes, channel, max_bytes)
    }

    /// Decodes a bincode envelope into an event of `schema`: the
    /// envelope's fields become a JSON body that `schema` decodes.
    pub fn decode_with(
        schema: &Arc<Schema>,
        bytes: &[u8],
        channel: Option<&str>,
        max_bytes: usize,
    ) -> Result<Event, DecodeError> {
        if bytes.len() > max_bytes {
            return Err(DecodeError::TooLarge {
                size: bytes.len(),
                max: max_bytes,
            });
        }
        let config = bincode::config::standard().with_limit::<{ 16 << 20 }>();
        let (envelope, used): (Envelope, usize) = bincode::serde::decode_from_slice(bytes, config)
            .map_err(|e| DecodeError::Bincode(e.to_string()))?;
        if used != bytes.len() {
            return Err(DecodeError::Bincode(format!(
                "{} trailing bytes",
                bytes.len() - used
            )));
        }
        let json = envelope.into_json()?;
        schema.decode(Bytes::from(json), channel, max_bytes)
    }

    fn into_json(self) -> Result<Vec<u8>, DecodeError> {
        let mut map = match self.extra_json.as_deref() {
            None | Some("") => Map::new(),
            Some(text) => match serde_json::from_str::<Value>(text) {
                Ok(Value::Object(map)) => map,
                Ok(_) => return Err(DecodeError::NotAnObject),
                Err(e) => return Err(DecodeError::NotJson(e.to_string())),
            },
        };
        let strings = [
            ("event_type", self.event_type),
            ("event_id", self.event_id),
            ("source", self.source),
            ("symbol", self.symbol),
            ("pattern", self.pattern),
            ("tier", self.tier),
            ("priority", self.priority),
            ("user_id", self.user_id),
            ("market_regime", self.market_regime),
        ];
        for (key, value) in strings {
            if let Some(v) = value {
                map.insert(key.into(), Value::String(v));
            }
        }
        let numbers = [
            ("timestamp", self.timestamp),
            ("confidence", self.confidence),
            ("detection_timestamp", self.detection_timestamp),
        ];
        for (key, value) in numbers {
            if let Some(v) = value {
                let number = serde_json::Number::from_f64(v).ok_or(DecodeError::WrongType {
                    field: key.into(),
                    expected: "a finite number",
                })?;
                map.insert(key.into(), Value::Number(number));
            }
        }
        serde_json::to_vec(&map).map_err(|e| DecodeError::NotJson(e.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::schema::tickstock::TickStockEvent;
    use crate::model::{Priority, Tier};

    #[test]
    fn round_trips_through_bincode_into_an_event() {
        let envelope = Envelope {
            symbol: Some("msft".into()),
            pattern: Some("Doji".into()),
            tier: Some("combo".into()),
            confidence: Some(0.85),
            extra_json: Some(r#"{"metadata":{"price":1.5}}"#.into()),
            ..Envelope::default()
        };
        let event = Envelope::decode_event(&envelope.to_bincode(), None, 1 << 20).unwrap();
        assert_eq!(event.symbol(), Some("MSFT"));
        assert_eq!(event.tier(), Some(Tier::Combo));
        assert_eq!(event.priority(), Priority::High);
        let body: Value = serde_json::from_slice(event.body()).unwrap();
        assert_eq!(body["metadata"]["price"], 1.5);
    }

    #[test]
    fn rejects_garbage_and_invalid_fields() {
        assert_eq!(
            Envelope::decode_event(&[0xff, 0xff, 0xff], None, 1 << 20)
                .unwrap_err()
                .reason(),
            "bad_bincode"
        );
        let bad_tier = Envelope {
            symbol: Some("A".into()),
            pattern: Some("P".into()),
            tier: Some("weekly".into()),
            ..Envelope::default()
        };
        assert_eq!(
            Envelope::decode_event(&bad_tier.to_bincode(), None, 1 << 20)
                .unwrap_err()
                .reason(),
            "unknown_tier"
        );
    }
}
