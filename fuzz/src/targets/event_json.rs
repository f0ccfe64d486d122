//! Target `event_json`: one published body through
//! [`Event::from_json`], the decoder every ingest (HTTP, Redis, RabbitMQ)
//! shares.
//!
//! Input: the body. Properties: an accepted event keeps the body byte for
//! byte, the body is a JSON object, the routing fields obey the documented
//! rules (symbol upper-cased and at most 32 characters, names at most 128,
//! confidence in 0..1, a pattern event has a symbol and a pattern) and
//! agree with an independent reading of the body; decoding is
//! deterministic; a refusal names one of the documented reasons (and
//! `too_large` exactly when the body is over the limit).

use arbitrary::{Result, Unstructured};
use bytes::Bytes;
use std::collections::BTreeMap;

use serde_json::value::RawValue;
use tickcast_core::model::schema::tickstock::{
    self, priority_from_confidence, TickStockEvent, MAX_SYMBOL_CHARS, PATTERN_DETECTED,
};
use tickcast_core::model::{Event, MarketRegime, Tier, MAX_NAME_CHARS};

use super::{sample, FIXTURE_SAMPLE};
use crate::gen::{self, Field};
use crate::Target;

/// The target.
pub const TARGET: Target = Target {
    name: "event_json",
    about: "Event::from_json: one TickStockPL JSON body (HTTP, Redis, RabbitMQ ingest)",
    run,
    generate,
    built_seeds,
    dictionary: DICTIONARY,
};

/// Field names and values of the event format, for the mutator.
pub(crate) const DICTIONARY: &[&str] = &[
    "\"symbol\":",
    "\"pattern\":",
    "\"pattern_name\":",
    "\"tier\":",
    "\"confidence\":",
    "\"priority\":",
    "\"user_id\":",
    "\"event_type\":",
    "\"market_regime\":",
    "\"event_id\":",
    "\"daily\"",
    "\"critical\"",
    "null",
    "1e400",
    "-0",
    "\\u0000",
    "\\ud800",
    "[[[[[[[[",
    "{\"a\":",
    "\u{e9}",
];

/// The body limit the server starts with (`limits.max_publish_bytes`).
pub(crate) const MAX_BYTES: usize = tickcast_core::model::DEFAULT_MAX_BODY_BYTES;

/// Every reason code [`tickcast_core::model::DecodeError::reason`] may
/// give for a JSON body.
pub(crate) const JSON_REASONS: &[&str] = &[
    "too_large",
    "not_utf8",
    "too_deep",
    "not_json",
    "not_an_object",
    "missing_field",
    "empty_field",
    "too_long",
    "wrong_type",
    "confidence_out_of_range",
    "unknown_tier",
    "unknown_priority",
    "unknown_market_regime",
];

/// Runs one input, without a channel and on the health channel.
pub fn run(data: &[u8]) {
    for channel in [None, Some("tickstock.health.status")] {
        check(data, channel);
    }
}

/// Decodes `data` as published on `channel` and checks every property;
/// the result, for callers that check more.
pub(crate) fn check(data: &[u8], channel: Option<&str>) -> Option<Event> {
    let result = Event::from_json(Bytes::copy_from_slice(data), channel, MAX_BYTES);
    let again = Event::from_json(Bytes::copy_from_slice(data), channel, MAX_BYTES);
    assert_eq!(result, again, "decoding is not deterministic");
    match result {
        Err(error) => {
            let reason = error.reason();
            assert!(JSON_REASONS.contains(&reason), "unexpected reason {reason}");
            assert_eq!(reason == "too_large", data.len() > MAX_BYTES, "{error}");
            assert!(!error.to_string().is_empty());
            None
        }
        Ok(event) => {
            check_event(&event, data, channel);
            Some(event)
        }
    }
}

/// The properties of an accepted event decoded from `data`.
pub(crate) fn check_event(event: &Event, data: &[u8], channel: Option<&str>) {
    assert_eq!(event.body().as_ref(), data, "body not kept verbatim");
    assert!(data.len() <= MAX_BYTES);
    // Raw values: a body may hold numbers no `Value` can (`1e400`) in
    // fields tickcast does not read, and still be valid JSON.
    let body: BTreeMap<String, &RawValue> = match serde_json::from_slice(data) {
        Ok(map) => map,
        Err(e) => panic!("accepted a body that is not a JSON object: {e}"),
    };
    let text = |key: &str| -> Option<String> {
        body.get(key)
            .and_then(|raw| serde_json::from_str(raw.get()).ok())
    };
    let is_null = |key: &str| body.get(key).is_none_or(|raw| raw.get() == "null");
    let chars = |s: &str| s.chars().count();
    let event_type = event.event_type();
    assert!((1..=MAX_NAME_CHARS).contains(&chars(event_type)));
    match text("event_type") {
        Some(named) => assert_eq!(event_type, named),
        None => {
            let schema = tickstock::schema();
            let implied = channel.and_then(|c| schema.event_type_for_channel(c));
            assert_eq!(event_type, implied.unwrap_or(PATTERN_DETECTED));
        }
    }
    if let Some(symbol) = event.symbol() {
        // The limit applies to the symbol as sent; upper-casing may
        // lengthen it ("ß" is "SS").
        let sent = text("symbol").unwrap_or_default();
        assert!((1..=MAX_SYMBOL_CHARS).contains(&chars(&sent)), "{sent:?}");
        assert_eq!(symbol, sent.to_uppercase(), "symbol not upper-cased");
    } else {
        assert!(is_null("symbol"));
    }
    if let Some(pattern) = event.pattern() {
        assert!((1..=MAX_NAME_CHARS).contains(&chars(pattern)));
        let sent = if is_null("pattern") {
            text("pattern_name")
        } else {
            text("pattern")
        };
        assert_eq!(Some(pattern), sent.as_deref());
    }
    if event_type == PATTERN_DETECTED {
        assert!(event.symbol().is_some() && event.pattern().is_some());
    }
    if let Some(user) = event.user_id() {
        assert!((1..=MAX_NAME_CHARS).contains(&chars(user)));
        assert_eq!(text("user_id").as_deref(), Some(user));
    }
    if let Some(confidence) = event.confidence() {
        assert!((0.0..=1.0).contains(&confidence), "confidence {confidence}");
    }
    assert_eq!(event.tier().map(Tier::as_str), text("tier").as_deref());
    assert_eq!(
        event.market_regime().map(MarketRegime::as_str),
        text("market_regime").as_deref()
    );
    match text("priority") {
        Some(sent) => assert_eq!(event.priority().as_str(), sent),
        None => assert_eq!(
            event.priority(),
            priority_from_confidence(event.confidence())
        ),
    }
}

/// A body of the event format with hostile field values, or deep nesting,
/// or a body around the size limit.
pub fn generate(u: &mut Unstructured<'_>) -> Result<Vec<u8>> {
    Ok(match u.int_in_range(0..=39)? {
        0..=3 => gen::nested(u, "{}")?.into_bytes(),
        4 => {
            // At, just under and just over the size limit.
            let size = MAX_BYTES - 1 + u.int_in_range(0..=2)?;
            let mut body = br#"{"symbol":"A","pattern":"P","pad":""#.to_vec();
            body.resize(size - 2, b'x');
            body.extend_from_slice(b"\"}");
            body
        }
        _ => event_object(u)?.into_bytes(),
    })
}

/// The JSON text of one event object with hostile values.
pub(crate) fn event_object(u: &mut Unstructured<'_>) -> Result<String> {
    const STRING_FIELDS: [&str; 9] = [
        "symbol",
        "pattern",
        "pattern_name",
        "tier",
        "priority",
        "user_id",
        "event_type",
        "market_regime",
        "event_id",
    ];
    let mut fields = Vec::new();
    for name in STRING_FIELDS {
        if u.ratio(1, 2)? {
            fields.push((name.to_owned(), gen::string_field(u)?));
        }
    }
    if u.ratio(2, 3)? {
        fields.push(("confidence".to_owned(), gen::numeric_field(u)?));
    }
    for _ in 0..u.int_in_range(0..=2)? {
        let key = (*u.choose(&["metadata", "timestamp", "source", "symbol", "x"])?).to_owned();
        fields.push((key, Field::Json(gen::value(u, 3)?)));
    }
    Ok(gen::object_text(&fields))
}

/// The good and bad fixture bodies.
fn built_seeds() -> Vec<Vec<u8>> {
    let good = tickcast_testkit::good_events().into_iter().map(|e| e.raw);
    let bad = tickcast_testkit::bad_events().into_iter().map(|e| e.raw);
    sample(good.collect(), FIXTURE_SAMPLE)
        .into_iter()
        .chain(bad)
        .collect()
}
