//! Target `envelope`: a raw broker body through
//! [`tickcast_core::ingest::BodyDecoder::decode`], which picks the
//! bincode [`Envelope`] decoder after a leading `0x00` byte and the JSON
//! decoder otherwise.
//!
//! Input: the raw body, marker byte included. Properties: a JSON body
//! decodes exactly as [`Event::from_json`] decodes it; an envelope decodes
//! exactly as [`Envelope::decode_event`] decodes it, to an event whose body
//! decodes as JSON to the same event, whose fields are the envelope's
//! (read back here with bincode independently), and only when the
//! envelope's numbers are finite and its `extra_json` is an object.

use arbitrary::{Result, Unstructured};
use bytes::Bytes;
use serde_json::Value;
use tickcast_core::ingest::BodyDecoder;
use tickcast_core::model::schema::tickstock::TickStockEvent;
use tickcast_core::model::{Envelope, Event, BINCODE_MARKER};

use super::event_json::{self, JSON_REASONS, MAX_BYTES};
use super::{sample, FIXTURE_SAMPLE};
use crate::gen;
use crate::Target;

/// The target.
pub const TARGET: Target = Target {
    name: "envelope",
    about: "BodyDecoder::decode: bincode envelopes after 0x00, else JSON (Redis/RabbitMQ bodies)",
    run,
    generate,
    built_seeds,
    dictionary: &[
        "\u{0}", "\u{1}", "\u{fb}", "\u{fc}", "\u{fd}", "\u{ff}", "{}", "AAPL",
    ],
};

/// Runs one input.
pub fn run(data: &[u8]) {
    let decoded = BodyDecoder::new(MAX_BYTES).decode(Bytes::copy_from_slice(data), None);
    let Some((&BINCODE_MARKER, envelope_bytes)) = data.split_first() else {
        let direct = Event::from_json(Bytes::copy_from_slice(data), None, MAX_BYTES);
        assert_eq!(
            decoded, direct,
            "a JSON body decodes as Event::from_json does"
        );
        return;
    };
    let direct = Envelope::decode_event(envelope_bytes, None, MAX_BYTES);
    assert_eq!(
        decoded, direct,
        "an envelope decodes as Envelope::decode_event does"
    );
    let envelope = read_envelope(envelope_bytes);
    match decoded {
        Ok(event) => {
            // The JSON the envelope became is an event like any other.
            let body = event.body().clone();
            let as_json = event_json::check(&body, None);
            assert_eq!(
                as_json.as_ref(),
                Some(&event),
                "envelope JSON decodes differently"
            );
            let Some(envelope) = envelope else {
                panic!("accepted bytes that are not one whole envelope");
            };
            check_fields(&envelope, &event);
        }
        Err(error) => {
            let reason = error.reason();
            assert!(
                reason == "bad_bincode" || JSON_REASONS.contains(&reason),
                "unexpected reason {reason}"
            );
            if envelope.is_none() {
                assert!(reason == "bad_bincode" || reason == "too_large", "{error}");
            }
        }
    }
}

/// The envelope in `bytes` if they are exactly one, decoded here with
/// bincode (standard configuration) rather than by the code under test.
fn read_envelope(bytes: &[u8]) -> Option<Envelope> {
    let config = bincode::config::standard().with_limit::<{ 16 << 20 }>();
    match bincode::serde::decode_from_slice::<Envelope, _>(bytes, config) {
        Ok((envelope, used)) if used == bytes.len() => Some(envelope),
        _ => None,
    }
}

/// An accepted envelope's fields are the event's.
fn check_fields(envelope: &Envelope, event: &Event) {
    for (name, number) in [
        ("timestamp", envelope.timestamp),
        ("confidence", envelope.confidence),
        ("detection_timestamp", envelope.detection_timestamp),
    ] {
        assert!(
            number.is_none_or(f64::is_finite),
            "accepted a non-finite {name}"
        );
    }
    if let Some(symbol) = &envelope.symbol {
        assert_eq!(event.symbol(), Some(symbol.to_uppercase().as_str()));
    }
    if let Some(pattern) = &envelope.pattern {
        assert_eq!(event.pattern(), Some(pattern.as_str()));
    }
    if let Some(tier) = &envelope.tier {
        assert_eq!(event.tier().map(|t| t.as_str()), Some(tier.as_str()));
    }
    if let Some(user) = &envelope.user_id {
        assert_eq!(event.user_id(), Some(user.as_str()));
    }
    if let Some(event_type) = &envelope.event_type {
        assert_eq!(event.event_type(), event_type);
    }
    if let (Some(sent), Some(got)) = (envelope.confidence, event.confidence()) {
        // Through JSON text and back: serde_json's default float parser
        // may land one ulp off.
        assert!(
            (sent - got).abs() <= sent.abs() * 4.0 * f64::EPSILON,
            "{sent} became {got}"
        );
    } else {
        assert_eq!(event.confidence().is_some(), envelope.confidence.is_some());
    }
    if let Some(extra) = envelope.extra_json.as_deref().filter(|e| !e.is_empty()) {
        let parsed = serde_json::from_str::<Value>(extra);
        assert!(
            matches!(parsed, Ok(Value::Object(_))),
            "accepted extra_json that is not an object"
        );
    }
}

/// An envelope with hostile fields, encoded as producers encode it, then
/// sometimes cut short or followed by stray bytes.
pub fn generate(u: &mut Unstructured<'_>) -> Result<Vec<u8>> {
    let text = |u: &mut Unstructured<'_>| -> Result<Option<String>> {
        Ok(if u.ratio(1, 3)? {
            None
        } else {
            Some(gen::string(u)?)
        })
    };
    let number = |u: &mut Unstructured<'_>| -> Result<Option<f64>> {
        Ok(match u.int_in_range(0..=5)? {
            0 => None,
            1 => Some(*u.choose(&[
                f64::NAN,
                f64::INFINITY,
                f64::NEG_INFINITY,
                -0.0,
                1.0 + f64::EPSILON,
            ])?),
            2 => Some(u.arbitrary()?),
            _ => Some(f64::from(u.int_in_range(0..=100)?) / 100.0),
        })
    };
    let extra_json = match u.int_in_range(0..=4)? {
        0 => None,
        1 => Some(String::new()),
        2 => Some(gen::nested(u, "1")?),
        3 => Some(gen::value(u, 3)?.to_string()),
        _ => Some(format!(
            r#"{{"metadata":{},"symbol":"X"}}"#,
            gen::value(u, 2)?
        )),
    };
    let envelope = Envelope {
        event_type: text(u)?,
        event_id: text(u)?,
        source: text(u)?,
        timestamp: number(u)?,
        symbol: text(u)?,
        pattern: text(u)?,
        tier: text(u)?,
        confidence: number(u)?,
        priority: text(u)?,
        user_id: text(u)?,
        market_regime: text(u)?,
        detection_timestamp: number(u)?,
        extra_json,
    };
    let mut bytes = marked(&envelope);
    match u.int_in_range(0..=7)? {
        0 => {
            let keep = u.int_in_range(1..=bytes.len())?;
            bytes.truncate(keep);
        }
        1 => bytes.extend(u.arbitrary::<[u8; 3]>()?),
        _ => {}
    }
    Ok(bytes)
}

/// Envelopes with non-finite numbers and odd `extra_json`, the fixture
/// events as envelopes (their fields, the rest of the body as
/// `extra_json`), and the bad fixture bodies behind the marker and as JSON.
fn built_seeds() -> Vec<Vec<u8>> {
    let base = Envelope {
        symbol: Some("aapl".into()),
        pattern: Some("Doji".into()),
        tier: Some("daily".into()),
        ..Envelope::default()
    };
    let edges = [
        Envelope {
            confidence: Some(f64::NAN),
            ..base.clone()
        },
        Envelope {
            timestamp: Some(f64::INFINITY),
            ..base.clone()
        },
        Envelope {
            detection_timestamp: Some(f64::NEG_INFINITY),
            ..base.clone()
        },
        Envelope {
            confidence: Some(1.0 + f64::EPSILON),
            ..base.clone()
        },
        Envelope {
            extra_json: Some("[]".into()),
            ..base.clone()
        },
        Envelope {
            extra_json: Some("{".into()),
            ..base.clone()
        },
        Envelope {
            extra_json: Some(format!("{{\"m\":{}1{}}}", "[".repeat(100), "]".repeat(100))),
            ..base.clone()
        },
        Envelope {
            extra_json: Some(r#"{"symbol":"X","user_id":"victim"}"#.into()),
            ..base.clone()
        },
        Envelope {
            symbol: Some("ß".repeat(32)),
            ..base.clone()
        },
        Envelope {
            tier: Some("weekly".into()),
            ..base.clone()
        },
        base,
    ];
    let mut seeds: Vec<Vec<u8>> = edges.iter().map(marked).collect();
    let good = sample(tickcast_testkit::good_events(), FIXTURE_SAMPLE);
    seeds.extend(good.iter().map(|e| envelope_seed(&e.body)));
    for bad in tickcast_testkit::bad_events() {
        let mut marked = vec![BINCODE_MARKER];
        marked.extend_from_slice(&bad.raw);
        seeds.push(marked);
        seeds.push(bad.raw);
    }
    seeds
}

fn envelope_seed(body: &Value) -> Vec<u8> {
    let mut rest = body.as_object().cloned().unwrap_or_default();
    let mut take_text = |key: &str| match rest.remove(key) {
        Some(Value::String(s)) => Some(s),
        _ => None,
    };
    let mut envelope = Envelope {
        event_type: take_text("event_type"),
        event_id: take_text("event_id"),
        source: take_text("source"),
        symbol: take_text("symbol"),
        pattern: take_text("pattern"),
        tier: take_text("tier"),
        priority: take_text("priority"),
        user_id: take_text("user_id"),
        market_regime: take_text("market_regime"),
        ..Envelope::default()
    };
    let mut take_number = |key: &str| rest.remove(key).and_then(|v| v.as_f64());
    envelope.timestamp = take_number("timestamp");
    envelope.confidence = take_number("confidence");
    envelope.detection_timestamp = take_number("detection_timestamp");
    if !rest.is_empty() {
        envelope.extra_json = Some(Value::Object(rest).to_string());
    }
    marked(&envelope)
}

/// The marker byte and the envelope's bincode.
fn marked(envelope: &Envelope) -> Vec<u8> {
    let mut bytes = vec![BINCODE_MARKER];
    bytes.extend(envelope.to_bincode());
    bytes
}
