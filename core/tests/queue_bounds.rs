//! The queue bounds through the hub: what a client that subscribes,
//! re-subscribes and unsubscribes without reading makes the server hold.

mod common;

use bytes::Bytes;
use serde_json::json;
use tickcast_core::hub::HubConfig;
use tickcast_core::model::{Event, Filter, Offset, DEFAULT_MAX_BODY_BYTES};
use tickcast_core::protocol::{ErrorCode, ServerMessage};
use tickcast_core::{Connection, Hub};

use common::{drain, offsets};

fn config() -> HubConfig {
    let mut config = HubConfig::immediate();
    config.rate_limit_per_user = 0;
    config
}

fn event(n: u32) -> Event {
    let body = json!({"symbol": "AAPL", "pattern": "Doji", "tier": "daily", "n": n});
    Event::from_json(Bytes::from(body.to_string()), None, DEFAULT_MAX_BODY_BYTES).unwrap()
}

fn publish(hub: &Hub, n: u32) -> Vec<Offset> {
    (0..n).map(|i| hub.publish(event(i)).unwrap()).collect()
}

#[test]
fn re_subscribing_with_since_in_a_loop_holds_one_replay() {
    let hub = Hub::new(config());
    let history = publish(&hub, 20);
    let Connection { handle, mut frames } = hub.connect(None, hub.default_limits()).unwrap();
    for _ in 0..1000 {
        let recovered = handle
            .subscribe("s1", Filter::default(), Some(history[0]))
            .unwrap();
        assert_eq!(recovered, 19);
    }
    // Another subscription's replay, dropped by its unsubscribe.
    handle
        .subscribe("s2", Filter::default(), Some(history[0]))
        .unwrap();
    handle.unsubscribe("s2").unwrap();
    let live = hub.publish(event(99)).unwrap();

    let seen = drain(&mut frames);
    assert!(!handle.is_closed());
    let subscribed = seen
        .messages
        .iter()
        .filter(|m| matches!(m, ServerMessage::Subscribed { .. }))
        .count();
    assert_eq!(subscribed, 1001);
    // One replay of s1, then the live event: no gap, no duplicate.
    let expected: Vec<String> = history[1..]
        .iter()
        .chain([&live])
        .map(Offset::to_string)
        .collect();
    assert_eq!(offsets(&seen), expected);
    assert!(seen.events[..19].iter().all(|e| e["subs"] == json!(["s1"])));
    assert_eq!(hub.stats().delivery.replayed, 19);
}

#[test]
fn a_subscribe_without_since_drops_the_pending_replay_of_its_id() {
    let hub = Hub::new(config());
    let history = publish(&hub, 5);
    let Connection { handle, mut frames } = hub.connect(None, hub.default_limits()).unwrap();
    handle
        .subscribe("s1", Filter::default(), Some(history[0]))
        .unwrap();
    handle.subscribe("s1", Filter::default(), None).unwrap();
    let seen = drain(&mut frames);
    assert!(seen.events.is_empty(), "{:?}", seen.events);
}

#[test]
fn replays_of_several_subscriptions_past_the_bound_close_4008() {
    let mut config = config();
    // One full replay of this history fits; two do not.
    config.queue.replay_capacity = 30;
    let hub = Hub::new(config);
    let history = publish(&hub, 20);
    let Connection { handle, mut frames } = hub.connect(None, hub.default_limits()).unwrap();
    handle
        .subscribe("s1", Filter::default(), Some(history[0]))
        .unwrap();
    assert!(!handle.is_closed());
    handle
        .subscribe("s2", Filter::default(), Some(history[0]))
        .unwrap();
    assert!(handle.is_closed());

    let seen = drain(&mut frames);
    assert!(seen.events.is_empty(), "everything held was dropped");
    match seen.messages.last() {
        Some(ServerMessage::Error { code, .. }) => assert_eq!(*code, ErrorCode::SlowConsumer),
        other => panic!("{other:?}"),
    }
    assert_eq!(seen.closed, Some(4008));
    assert_eq!(hub.stats().delivery.slow_consumer_closes, 1);
}
