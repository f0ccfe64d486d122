//! Server-side subscriptions per user and the per-user hourly limit.

mod common;

use std::num::NonZeroU32;

use bytes::Bytes;
use serde_json::{json, Value};
use tickcast_core::hub::HubConfig;
use tickcast_core::model::{Event, Filter, Tier, UserId, DEFAULT_MAX_BODY_BYTES};
use tickcast_core::protocol::{ErrorCode, ServerMessage};
use tickcast_core::{Connection, Hub};

use common::{drain, offsets};

fn hub() -> Hub {
    let mut config = HubConfig::immediate();
    config.rate_limit_per_user = 0;
    Hub::new(config)
}

fn event(body: Value) -> Event {
    Event::from_json(Bytes::from(body.to_string()), None, DEFAULT_MAX_BODY_BYTES).unwrap()
}

fn pattern(symbol: &str, tier: &str, confidence: f64) -> Event {
    event(json!({"symbol": symbol, "pattern": "Doji", "tier": tier, "confidence": confidence}))
}

fn symbols(list: &[&str]) -> Filter {
    serde_json::from_value(json!({ "symbols": list })).unwrap()
}

fn user(name: &str) -> UserId {
    UserId::from(name)
}

fn connect(hub: &Hub, name: &str) -> Connection {
    hub.connect(Some(user(name)), hub.default_limits()).unwrap()
}

fn subscribed_ids(messages: &[ServerMessage]) -> Vec<String> {
    messages
        .iter()
        .filter_map(|m| match m {
            ServerMessage::Subscribed { id, .. } => Some(id.clone()),
            _ => None,
        })
        .collect()
}

#[test]
fn a_user_subscription_reaches_open_and_later_connections_of_that_user_only() {
    let hub = hub();
    let mut early = connect(&hub, "u1");
    let mut other = connect(&hub, "u2");
    assert_eq!(
        hub.subscribe_user(&user("u1"), "prefs", symbols(&["AAPL"]))
            .unwrap(),
        1
    );
    let mut late = connect(&hub, "u1");
    let seen_late = drain(&mut late.frames);
    assert_eq!(subscribed_ids(&seen_late.messages), ["prefs"]);

    let offset = hub.publish(pattern("AAPL", "daily", 0.7)).unwrap();
    hub.publish(pattern("MSFT", "daily", 0.7)).unwrap();
    for conn in [&mut early, &mut late] {
        let seen = drain(&mut conn.frames);
        assert_eq!(offsets(&seen), [offset.to_string()]);
        assert_eq!(seen.events[0]["subs"], json!(["prefs"]));
    }
    assert!(drain(&mut other.frames).events.is_empty());
    assert_eq!(
        hub.user_subscriptions(&user("u1"))
            .into_iter()
            .map(|(id, _)| id.to_string())
            .collect::<Vec<_>>(),
        ["prefs"]
    );
}

#[test]
fn unsubscribe_user_removes_it_everywhere() {
    let hub = hub();
    hub.subscribe_user(&user("u1"), "prefs", symbols(&["AAPL"]))
        .unwrap();
    let mut conn = connect(&hub, "u1");
    drain(&mut conn.frames);
    assert!(hub.unsubscribe_user(&user("u1"), "prefs"));
    assert!(!hub.unsubscribe_user(&user("u1"), "prefs"));
    let seen = drain(&mut conn.frames);
    assert!(matches!(
        &seen.messages[..],
        [ServerMessage::Unsubscribed { id }] if id == "prefs"
    ));
    hub.publish(pattern("AAPL", "daily", 0.7)).unwrap();
    assert!(drain(&mut conn.frames).events.is_empty());
    let mut later = connect(&hub, "u1");
    assert!(subscribed_ids(&drain(&mut later.frames).messages).is_empty());
    assert!(hub.user_subscriptions(&user("u1")).is_empty());
}

#[test]
fn a_connection_not_entitled_to_the_tiers_gets_an_error_and_others_still_subscribe() {
    let hub = hub();
    let limits = hub
        .default_limits()
        .with_entitled(Some(1 << Tier::Daily as u8));
    let mut limited = hub.connect(Some(user("u1")), limits).unwrap();
    let mut full = connect(&hub, "u1");
    let filter: Filter = serde_json::from_value(json!({"tiers": ["intraday"]})).unwrap();
    assert_eq!(hub.subscribe_user(&user("u1"), "prefs", filter).unwrap(), 1);
    let seen = drain(&mut limited.frames);
    assert!(seen.messages.iter().any(|m| matches!(
        m,
        ServerMessage::Error {
            code: ErrorCode::Forbidden,
            ..
        }
    )));
    assert_eq!(subscribed_ids(&drain(&mut full.frames).messages), ["prefs"]);
}

#[test]
fn a_bad_user_subscription_is_refused_up_front() {
    let hub = hub();
    assert!(hub
        .subscribe_user(&user("u1"), "", Filter::default())
        .is_err());
    let filter: Filter = serde_json::from_value(json!({"min_confidence": 2.0})).unwrap();
    assert!(hub.subscribe_user(&user("u1"), "prefs", filter).is_err());
    assert!(hub.user_subscriptions(&user("u1")).is_empty());
}

#[test]
fn the_hourly_limit_caps_a_user_across_connections_but_not_critical_events() {
    let hub = hub();
    hub.set_user_hourly_limit(&user("u1"), NonZeroU32::new(3));
    let mut a = connect(&hub, "u1");
    let mut b = connect(&hub, "u1");
    for conn in [&a, &b] {
        conn.handle
            .subscribe("all", Filter::default(), None)
            .unwrap();
    }
    drain(&mut a.frames);
    drain(&mut b.frames);
    // Distinct symbols: no conflation, each over the cap is dropped.
    for symbol in ["A", "B", "C", "D"] {
        hub.publish(pattern(symbol, "daily", 0.5)).unwrap();
    }
    let critical = hub.publish(pattern("E", "daily", 0.95)).unwrap();
    let (seen_a, seen_b) = (drain(&mut a.frames), drain(&mut b.frames));
    let regular = |seen: &common::Seen| seen.events.len();
    // 4 events x 2 connections = 8 deliveries asked; 3 allowed, plus the
    // critical one on each connection.
    assert_eq!(regular(&seen_a) + regular(&seen_b), 3 + 2);
    for seen in [&seen_a, &seen_b] {
        assert!(offsets(seen).contains(&critical.to_string()));
    }
    let dropped: usize = [&seen_a, &seen_b]
        .iter()
        .flat_map(|s| &s.messages)
        .map(|m| match m {
            ServerMessage::Dropped { count, .. } => *count as usize,
            _ => 0,
        })
        .sum();
    assert_eq!(dropped, 8 - 3);

    hub.set_user_hourly_limit(&user("u1"), None);
    hub.publish(pattern("F", "daily", 0.5)).unwrap();
    assert_eq!(drain(&mut a.frames).events.len(), 1);
}

#[test]
fn users_without_connections_are_not_counted_and_leave_nothing_behind() {
    let hub = hub();
    hub.subscribe_user(&user("u1"), "prefs", Filter::default())
        .unwrap();
    let conn = connect(&hub, "u1");
    assert_eq!(hub.stats().users, 1);
    drop(conn);
    assert_eq!(hub.stats().users, 0);
    // The subscription is kept for the next connection.
    let mut again = connect(&hub, "u1");
    assert_eq!(
        subscribed_ids(&drain(&mut again.frames).messages),
        ["prefs"]
    );
}
