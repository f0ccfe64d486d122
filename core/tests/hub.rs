//! The hub end to end: fixtures published to connections with different
//! filters, checked against an independent reading of the filter rules.

mod common;
#[path = "common/oracle.rs"]
mod oracle;

use oracle::{dims, wants};

use std::collections::BTreeMap;
use std::time::Duration;

use bytes::Bytes;
use serde_json::{json, Value};
use tickcast_core::hub::HubConfig;
use tickcast_core::model::{Event, Filter, Offset, DEFAULT_MAX_BODY_BYTES};
use tickcast_core::protocol::{CloseCode, ErrorCode, ServerMessage};
use tickcast_core::{Connection, Hub};

use common::{drain, offsets};

fn config() -> HubConfig {
    let mut config = HubConfig::immediate();
    config.rate_limit_per_user = 0;
    config.queue.capacity = 10_000;
    config
}

fn decode(raw: &[u8], channel: &str) -> Event {
    Event::from_json(
        Bytes::copy_from_slice(raw),
        Some(channel),
        DEFAULT_MAX_BODY_BYTES,
    )
    .unwrap()
}

fn filter(v: Value) -> Filter {
    serde_json::from_value(v).unwrap()
}

/// A subscription id and its filter as JSON.
type NamedFilter = (&'static str, Value);

struct Client {
    conn: Connection,
    user: Option<String>,
    subs: Vec<NamedFilter>,
    seen: Vec<Value>,
}

#[test]
fn every_client_gets_exactly_its_matching_events_once_in_order() {
    let hub = Hub::new(config());
    let specs: Vec<(Option<&str>, Vec<NamedFilter>)> = vec![
        (
            Some("user-4"),
            vec![
                ("a", json!({"symbols":["aapl","MSFT"]})),
                ("b", json!({"tiers":["daily"],"min_confidence":0.8})),
            ],
        ),
        (
            None,
            vec![(
                "c",
                json!({"event_types":["system_health","backtest_progress"]}),
            )],
        ),
        (
            Some("user-40"),
            vec![
                (
                    "d",
                    json!({"patterns":["BreakoutBO"],"market_regimes":["bull"]}),
                ),
                ("e", json!({"min_priority":"high"})),
            ],
        ),
        (None, vec![("f", json!({}))]),
        (
            Some("user-4"),
            vec![(
                "g",
                json!({"tiers":["intraday"],"symbols":["MSFT","NVDA"],"min_priority":"medium"}),
            )],
        ),
    ];
    let mut clients: Vec<Client> = specs
        .into_iter()
        .map(|(user, subs)| {
            let conn = hub
                .connect(user.map(Into::into), hub.default_limits())
                .unwrap();
            for (id, f) in &subs {
                conn.handle.subscribe(id, filter(f.clone()), None).unwrap();
            }
            Client {
                conn,
                user: user.map(str::to_owned),
                subs,
                seen: Vec::new(),
            }
        })
        .collect();
    for c in &mut clients {
        let first = drain(&mut c.conn.frames);
        assert!(matches!(first.messages[0], ServerMessage::Welcome { .. }));
        assert_eq!(first.messages.len(), 1 + c.subs.len());
    }

    let fixtures = tickcast_testkit::good_events();
    let mut expected: Vec<Vec<(String, Vec<&str>)>> = vec![Vec::new(); clients.len()];
    for fx in &fixtures {
        let offset = hub
            .publish(decode(&fx.raw, &fx.channel))
            .unwrap()
            .to_string();
        let d = dims(&fx.body, &fx.channel);
        for (i, c) in clients.iter_mut().enumerate() {
            let private_ok = d.user.is_none() || d.user == c.user;
            let subs: Vec<&str> = c
                .subs
                .iter()
                .filter(|(_, f)| wants(f, &d))
                .map(|(id, _)| *id)
                .collect();
            if private_ok && !subs.is_empty() {
                expected[i].push((offset.clone(), subs));
            }
            c.seen.extend(drain(&mut c.conn.frames).events);
        }
    }
    for (i, c) in clients.iter().enumerate() {
        let got: Vec<(String, Vec<&str>)> = c
            .seen
            .iter()
            .map(|e| {
                let subs = e["subs"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|s| s.as_str().unwrap())
                    .collect();
                (e["offset"].as_str().unwrap().to_owned(), subs)
            })
            .collect();
        assert!(!expected[i].is_empty(), "client {i} should get something");
        assert_eq!(got, expected[i], "client {i}");
    }
    // The body is delivered exactly as published.
    let by_offset: BTreeMap<String, &Value> = clients[3]
        .seen
        .iter()
        .map(|e| (e["offset"].as_str().unwrap().to_owned(), &e["data"]))
        .collect();
    assert_eq!(by_offset.len(), clients[3].seen.len());
    let private: usize = fixtures.iter().filter(|f| f.is_private()).count();
    assert_eq!(
        clients[3].seen.len(),
        fixtures.len() - private,
        "anonymous users never get private events"
    );
    let stats = hub.stats();
    assert_eq!(stats.published, 5000);
    assert_eq!(stats.connections, 5);
    assert_eq!(stats.users, 2);
    assert_eq!(stats.subscriptions, 7);
}

fn pattern(symbol: &str, confidence: f64) -> Event {
    let body =
        json!({"symbol": symbol, "pattern": "Doji", "tier": "daily", "confidence": confidence});
    Event::from_json(Bytes::from(body.to_string()), None, DEFAULT_MAX_BODY_BYTES).unwrap()
}

#[test]
fn since_replays_what_was_missed_then_continues_live() {
    let hub = Hub::new(config());
    let Connection { handle, mut frames } = hub
        .connect(Some("u1".into()), hub.default_limits())
        .unwrap();
    handle
        .subscribe("s1", filter(json!({"symbols":["AAPL"]})), None)
        .unwrap();
    hub.publish(pattern("AAPL", 0.5)).unwrap();
    let seen = drain(&mut frames);
    let last: Offset = offsets(&seen)[0].parse().unwrap();
    drop((handle, frames));

    // Published while the client was away: two match, one does not.
    let missed = [
        hub.publish(pattern("AAPL", 0.6)).unwrap(),
        hub.publish(pattern("AAPL", 0.7)).unwrap(),
    ];
    hub.publish(pattern("MSFT", 0.7)).unwrap();

    let Connection { handle, mut frames } = hub
        .connect(Some("u1".into()), hub.default_limits())
        .unwrap();
    let recovered = handle
        .subscribe("s1", filter(json!({"symbols":["AAPL"]})), Some(last))
        .unwrap();
    assert_eq!(recovered, 2);
    let live = hub.publish(pattern("AAPL", 0.95)).unwrap();
    let seen = drain(&mut frames);
    assert!(matches!(
        seen.messages[1],
        ServerMessage::Subscribed { recovered: 2, .. }
    ));
    let expected: Vec<String> = missed
        .iter()
        .chain([&live])
        .map(Offset::to_string)
        .collect();
    assert_eq!(offsets(&seen), expected, "no gap, no duplicate");
    assert_eq!(seen.events[0]["subs"], json!(["s1"]));
}

#[test]
fn can_replay_says_whether_a_since_would_be_history_gone() {
    let mut config = config();
    config.history.capacity = 2;
    let hub = Hub::new(config);
    let first = hub.publish(pattern("AAPL", 0.5)).unwrap();
    let second = hub.publish(pattern("AAPL", 0.5)).unwrap();
    assert!(hub.can_replay(first));
    assert!(hub.can_replay(second));
    hub.publish(pattern("AAPL", 0.5)).unwrap();
    hub.publish(pattern("AAPL", 0.5)).unwrap();
    // Evicted, from another epoch, or newer than the latest.
    assert!(!hub.can_replay(first));
    assert!(!hub.can_replay(Offset::new(1, 1)));
    assert!(!hub.can_replay(Offset::new(u64::MAX, 0)));
    assert!(hub.can_replay(hub.latest_offset().unwrap()));
}

#[test]
fn a_stale_offset_is_history_gone_and_the_subscription_stays_live() {
    let mut config = config();
    config.history.capacity = 2;
    let hub = Hub::new(config);
    let first = hub.publish(pattern("AAPL", 0.5)).unwrap();
    for _ in 0..3 {
        hub.publish(pattern("AAPL", 0.5)).unwrap();
    }
    let Connection { handle, mut frames } = hub.connect(None, hub.default_limits()).unwrap();
    assert_eq!(
        handle
            .subscribe("s1", Filter::default(), Some(first))
            .unwrap(),
        0
    );
    let other_epoch = Offset::new(1, 1);
    handle
        .subscribe("s2", Filter::default(), Some(other_epoch))
        .unwrap();
    hub.publish(pattern("AAPL", 0.5)).unwrap();
    let seen = drain(&mut frames);
    let gone = seen
        .messages
        .iter()
        .filter(|m| {
            matches!(
                m,
                ServerMessage::Error {
                    code: ErrorCode::HistoryGone,
                    ..
                }
            )
        })
        .count();
    assert_eq!(gone, 2);
    assert_eq!(seen.events.len(), 1);
    assert_eq!(seen.events[0]["subs"], json!(["s1", "s2"]));
}

#[test]
fn private_events_reach_only_their_users_matching_connections() {
    let hub = Hub::new(config());
    let mut alice = hub
        .connect(Some("alice".into()), hub.default_limits())
        .unwrap();
    let mut alice_idle = hub
        .connect(Some("alice".into()), hub.default_limits())
        .unwrap();
    let mut bob = hub
        .connect(Some("bob".into()), hub.default_limits())
        .unwrap();
    let mut anon = hub.connect(None, hub.default_limits()).unwrap();
    alice.conn_subscribe_all();
    bob.conn_subscribe_all();
    anon.conn_subscribe_all();
    alice_idle
        .handle
        .subscribe("only-msft", filter(json!({"symbols":["MSFT"]})), None)
        .unwrap();
    let body = json!({"symbol":"AAPL","pattern":"Doji","user_id":"alice"});
    hub.publish(Event::from_json(Bytes::from(body.to_string()), None, 1 << 20).unwrap())
        .unwrap();
    assert_eq!(drain(&mut alice.frames).events.len(), 1);
    assert_eq!(drain(&mut alice_idle.frames).events.len(), 0);
    assert_eq!(drain(&mut bob.frames).events.len(), 0);
    assert_eq!(drain(&mut anon.frames).events.len(), 0);
}

trait SubscribeAll {
    fn conn_subscribe_all(&mut self);
}

impl SubscribeAll for Connection {
    fn conn_subscribe_all(&mut self) {
        self.handle
            .subscribe("all", Filter::default(), None)
            .unwrap();
    }
}

#[test]
fn limits_and_entitlements_are_enforced() {
    let mut config = config();
    config.limits.max_connections_per_user = 2;
    config.limits.max_subscriptions_per_connection = 2;
    let hub = Hub::new(config);
    let limits = hub
        .default_limits()
        .with_entitled(hub.config().schema.entitled(&["daily".into()]).unwrap());
    let mut c1 = hub.connect(Some("u".into()), limits.clone()).unwrap();
    let _c2 = hub.connect(Some("u".into()), limits).unwrap();
    let refused = hub
        .connect(Some("u".into()), hub.default_limits())
        .unwrap_err();
    assert_eq!(refused.close_code(), CloseCode::LimitExceeded);

    let h = &c1.handle;
    let forbidden = h
        .subscribe("x", filter(json!({"tiers":["intraday"]})), None)
        .unwrap_err();
    assert_eq!(forbidden.code(), ErrorCode::Forbidden);
    h.subscribe("s1", Filter::default(), None).unwrap();
    h.subscribe("s2", Filter::default(), None).unwrap();
    h.subscribe("s2", filter(json!({"tiers":["daily"]})), None)
        .unwrap(); // replacing is fine
    assert_eq!(
        h.subscribe("s3", Filter::default(), None)
            .unwrap_err()
            .code(),
        ErrorCode::LimitExceeded
    );
    assert_eq!(
        h.unsubscribe("nope").unwrap_err().code(),
        ErrorCode::UnknownSubscription
    );
    assert_eq!(
        h.subscribe("", Filter::default(), None).unwrap_err().code(),
        ErrorCode::BadRequest
    );
    h.unsubscribe("s1").unwrap();

    // The entitlement also holds for a filter without tiers.
    let intraday = json!({"symbol":"A","pattern":"P","tier":"intraday"});
    hub.publish(Event::from_json(Bytes::from(intraday.to_string()), None, 1 << 20).unwrap())
        .unwrap();
    let daily = json!({"symbol":"A","pattern":"P","tier":"daily"});
    hub.publish(Event::from_json(Bytes::from(daily.to_string()), None, 1 << 20).unwrap())
        .unwrap();
    let health = json!({"event_type":"system_health"});
    hub.publish(Event::from_json(Bytes::from(health.to_string()), None, 1 << 20).unwrap())
        .unwrap();
    let seen = drain(&mut c1.frames);
    let tiers: Vec<Value> = seen
        .events
        .iter()
        .map(|e| e["data"]["tier"].clone())
        .collect();
    assert_eq!(
        tiers,
        vec![json!("daily")],
        "s2 (daily only) got the daily event; health has no tier"
    );
    assert!(seen
        .messages
        .iter()
        .any(|m| matches!(m, ServerMessage::Unsubscribed { .. })));

    drop(c1);
    assert!(hub.connect(Some("u".into()), hub.default_limits()).is_ok());
}

#[tokio::test]
async fn shutdown_flushes_queued_events_then_closes() {
    let mut config = config();
    config.queue.batch_window = Duration::from_secs(3600);
    let hub = Hub::new(config);
    let Connection { handle, mut frames } = hub.connect(None, hub.default_limits()).unwrap();
    handle.subscribe("s", Filter::default(), None).unwrap();
    hub.publish(pattern("AAPL", 0.5)).unwrap();
    hub.publish(pattern("MSFT", 0.5)).unwrap();
    hub.shutdown();
    assert!(hub.publish(pattern("AAPL", 0.5)).is_err());
    assert!(hub.connect(None, hub.default_limits()).is_err());
    let seen = common::drain_until_idle(&mut frames, Duration::from_secs(5)).await;
    assert_eq!(seen.events.len(), 2);
    assert_eq!(seen.closed, Some(1001));
}

#[test]
fn publish_all_accepts_a_burst_in_order_and_delivers_it_together() {
    let hub = Hub::new(config());
    let mut conn = hub.connect(None, hub.default_limits()).unwrap();
    conn.handle.subscribe("s", Filter::default(), None).unwrap();
    drain(&mut conn.frames);
    let results = hub.publish_all(vec![
        pattern("A", 0.5),
        pattern("B", 0.5),
        pattern("C", 0.5),
    ]);
    let offsets: Vec<String> = results
        .into_iter()
        .map(|r| r.unwrap().to_string())
        .collect();
    let seen = drain(&mut conn.frames);
    assert_eq!(seen.batches, 1, "one write for the burst");
    assert_eq!(common::offsets(&seen), offsets);
}

#[test]
fn remembered_events_are_resumable_but_not_delivered_live() {
    let mut config = config();
    config.offsets = tickcast_core::hub::OffsetMode::External;
    let hub = Hub::new(config);
    let Connection { handle, mut frames } = hub.connect(None, hub.default_limits()).unwrap();
    handle.subscribe("live", Filter::default(), None).unwrap();
    let at = |s: &str| -> Offset { s.parse().unwrap() };
    hub.remember_at(pattern("AAPL", 0.5), at("100-0")).unwrap();
    hub.remember_at(pattern("AAPL", 0.6), at("100-1")).unwrap();
    assert!(matches!(
        hub.remember_at(pattern("AAPL", 0.6), at("100-1")),
        Err(tickcast_core::hub::PublishError::Stale { .. })
    ));
    hub.publish_at(pattern("AAPL", 0.7), at("101-0")).unwrap();
    assert_eq!(
        offsets(&drain(&mut frames)),
        ["101-0"],
        "backfill is not live"
    );

    let resumed = handle
        .subscribe("resume", Filter::default(), Some(at("100-0")))
        .unwrap();
    assert_eq!(resumed, 2);
    assert_eq!(offsets(&drain(&mut frames)), ["100-1", "101-0"]);
}
