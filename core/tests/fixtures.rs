//! The decoder against shared/fixtures: every good event accepted, every
//! bad one rejected with a typed error.

mod common;

use std::collections::BTreeSet;

use tickcast_core::model::{DecodeError, Event, Priority, DEFAULT_MAX_BODY_BYTES};

#[test]
fn accepts_every_tickstockpl_event() {
    let events = common::good_events();
    assert_eq!(events.len(), 5000);
    let mut types = BTreeSet::new();
    for fixture in events {
        let event = Event::from_json(
            fixture.raw.clone(),
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
            assert_eq!(event.priority(), Priority::from_confidence(confidence));
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
    let bad = common::bad_events();
    assert!(bad.len() >= 13);
    let mut reasons = BTreeSet::new();
    for (channel, raw, why) in bad {
        let err: DecodeError = Event::from_json(raw, Some(&channel), DEFAULT_MAX_BODY_BYTES)
            .err()
            .unwrap_or_else(|| panic!("accepted a bad event: {why}"));
        reasons.insert(err.reason());
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
