//! The decoder against testdata/fixtures: every good event accepted, every
//! bad one rejected with a typed error.

use std::collections::BTreeSet;

use bytes::Bytes;
use tickcast_core::model::schema::tickstock::{priority_from_confidence, TickStockEvent};
use tickcast_core::model::{DecodeError, Event, DEFAULT_MAX_BODY_BYTES};

#[test]
fn accepts_every_tickstockpl_event() {
    let events = tickcast_testkit::good_events();
    assert_eq!(events.len(), 5000);
    let mut types = BTreeSet::new();
    for fixture in events {
        let event = Event::from_json(
            Bytes::from(fixture.raw.clone()),
            Some(&fixture.channel),
            DEFAULT_MAX_BODY_BYTES,
        )
        .unwrap_or_else(|e| panic!("{e}: {}", fixture.body));
        types.insert(event.event_type().to_owned());
        assert_eq!(event.body(), &fixture.raw, "body kept as published");
        if let Some(symbol) = fixture.body["symbol"].as_str() {
            assert_eq!(event.symbol(), Some(symbol.to_uppercase().as_str()));
        }
        if fixture.body.get("priority").is_none() {
            let confidence = fixture.body["confidence"].as_f64();
            assert_eq!(event.priority(), priority_from_confidence(confidence));
        }
        assert_eq!(event.user_id(), fixture.body["user_id"].as_str());
    }
    let expected: BTreeSet<String> = [
        "backtest_progress",
        "backtest_result",
        "pattern_detected",
        "system_health",
    ]
    .into_iter()
    .map(String::from)
    .collect();
    assert_eq!(types, expected);
}

#[test]
fn rejects_every_bad_event_with_a_typed_error() {
    let bad = tickcast_testkit::bad_events();
    assert!(bad.len() >= 13);
    let mut reasons = BTreeSet::new();
    for event in bad {
        let err: DecodeError = Event::from_json(
            Bytes::from(event.raw),
            Some(&event.channel),
            DEFAULT_MAX_BODY_BYTES,
        )
        .err()
        .unwrap_or_else(|| panic!("accepted a bad event: {}", event.why));
        reasons.insert(err.reason().to_owned());
    }
    // Each rule of the format is exercised by the fixture.
    for reason in [
        "not_json",
        "missing_field",
        "confidence_out_of_range",
        "wrong_type",
        "unknown_tier",
        "unknown_priority",
        "not_an_object",
        "too_long",
        "not_utf8",
        "too_large",
        "too_deep",
    ] {
        assert!(
            reasons.contains(reason),
            "no fixture rejected as {reason}: {reasons:?}"
        );
    }
}
