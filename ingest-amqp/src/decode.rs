//! Turning an AMQP delivery's body into an [`Event`].

use bytes::Bytes;
use tickcast_core::ingest::BodyDecoder;
use tickcast_core::model::{DecodeError, Event, BINCODE_MARKER};

/// The content type of a bincode [`Envelope`](tickcast_core::model::Envelope) body.
pub const BINCODE_CONTENT_TYPE: &str = "application/x-bincode";
/// The content type of a TickStockPL JSON body.
pub const JSON_CONTENT_TYPE: &str = "application/json";

/// Decodes one body. `routing_key` gives the event type when the body has
/// none, as a Redis channel does.
///
/// With content type [`BINCODE_CONTENT_TYPE`] the body is a bincode
/// envelope, with or without the leading [`BINCODE_MARKER`] of the Redis
/// encoding (bodies forwarded from Redis keep it). Both forms can start
/// with `0x00` (an envelope without `event_type` does), so the other form
/// is tried when the first does not decode: a shifted envelope that still
/// uses up every byte exactly is not a practical risk. Any other content
/// type (or none) is JSON, or a marked envelope, as on Redis.
pub(crate) fn decode_delivery(
    decoder: &BodyDecoder,
    content_type: Option<&str>,
    body: Vec<u8>,
    routing_key: &str,
) -> Result<Event, DecodeError> {
    if !is_bincode(content_type) {
        return decoder.decode(Bytes::from(body), Some(routing_key));
    }
    let raw = |bytes: &[u8]| decoder.decode_envelope(bytes, Some(routing_key));
    match body.split_first() {
        Some((&BINCODE_MARKER, unmarked)) => {
            raw(unmarked).or_else(|first| raw(&body).map_err(|_| first))
        }
        _ => raw(&body),
    }
}

/// `application/x-bincode`, ignoring case and parameters (`; v=2`).
fn is_bincode(content_type: Option<&str>) -> bool {
    content_type.is_some_and(|value| {
        let essence = value.split(';').next().unwrap_or_default().trim();
        essence.eq_ignore_ascii_case(BINCODE_CONTENT_TYPE)
    })
}

/// The content type a published body gets: bincode where it starts with
/// the marker (the body is sent as it is; [`decode_delivery`] accepts the
/// marker), else JSON.
pub(crate) fn content_type_of(body: &[u8]) -> &'static str {
    match body.first() {
        Some(&BINCODE_MARKER) => BINCODE_CONTENT_TYPE,
        _ => JSON_CONTENT_TYPE,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tickcast_core::model::schema::tickstock::TickStockEvent as _;
    use tickcast_core::model::Envelope;

    const MAX: usize = 1 << 20;
    const PATTERNS: &str = "tickstock.events.patterns";

    fn envelope(event_type: Option<&str>) -> Envelope {
        Envelope {
            event_type: event_type.map(str::to_owned),
            symbol: Some("aapl".into()),
            pattern: Some("Doji".into()),
            ..Envelope::default()
        }
    }

    fn marked(envelope: &Envelope) -> Vec<u8> {
        let mut body = vec![BINCODE_MARKER];
        body.extend(envelope.to_bincode());
        body
    }

    #[test]
    fn bincode_with_and_without_marker() {
        for event_type in [None, Some("pattern_detected")] {
            let envelope = envelope(event_type);
            for body in [envelope.to_bincode(), marked(&envelope)] {
                let event = decode_delivery(
                    &BodyDecoder::new(MAX),
                    Some(BINCODE_CONTENT_TYPE),
                    body,
                    PATTERNS,
                )
                .unwrap();
                assert_eq!(event.symbol(), Some("AAPL"));
                assert_eq!(event.event_type(), "pattern_detected");
            }
        }
    }

    #[test]
    fn routing_key_gives_the_event_type() {
        let body = br#"{"status":"ok"}"#.to_vec();
        let event = decode_delivery(
            &BodyDecoder::new(MAX),
            None,
            body,
            "tickstock.health.status",
        )
        .unwrap();
        assert_eq!(event.event_type(), "system_health");
        let event = decode_delivery(
            &BodyDecoder::new(MAX),
            Some("Application/X-Bincode; v=1"),
            envelope(None).to_bincode(),
            "tickstock.health.status",
        )
        .unwrap();
        assert_eq!(event.event_type(), "system_health");
    }

    #[test]
    fn json_and_marked_bincode_without_content_type() {
        let json = br#"{"symbol":"msft","pattern":"Doji"}"#.to_vec();
        let event = decode_delivery(
            &BodyDecoder::new(MAX),
            Some(JSON_CONTENT_TYPE),
            json,
            PATTERNS,
        )
        .unwrap();
        assert_eq!(event.symbol(), Some("MSFT"));
        let event = decode_delivery(
            &BodyDecoder::new(MAX),
            None,
            marked(&envelope(None)),
            PATTERNS,
        )
        .unwrap();
        assert_eq!(event.symbol(), Some("AAPL"));
    }

    #[test]
    fn garbage_is_rejected_with_a_reason() {
        let bad = decode_delivery(
            &BodyDecoder::new(MAX),
            Some(BINCODE_CONTENT_TYPE),
            vec![0, 0xff, 0xff],
            PATTERNS,
        );
        assert_eq!(bad.unwrap_err().reason(), "bad_bincode");
        let bad = decode_delivery(
            &BodyDecoder::new(MAX),
            None,
            b"{not json".to_vec(),
            PATTERNS,
        );
        assert_eq!(bad.unwrap_err().reason(), "not_json");
        let big = decode_delivery(
            &BodyDecoder::new(16),
            Some(BINCODE_CONTENT_TYPE),
            vec![1; 64],
            PATTERNS,
        );
        assert_eq!(big.unwrap_err().reason(), "too_large");
    }

    #[test]
    fn published_content_types() {
        assert_eq!(content_type_of(b"{}"), JSON_CONTENT_TYPE);
        assert_eq!(content_type_of(&[0, 1]), BINCODE_CONTENT_TYPE);
        assert_eq!(content_type_of(b""), JSON_CONTENT_TYPE);
    }
}
