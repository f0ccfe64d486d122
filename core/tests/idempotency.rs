//! Idempotency keys: an event published again with the same key (its
//! `event_id`, or a key given beside the body) within the window reaches
//! each client once, on every publish path of the hub.

mod common;

use std::time::Duration;

use bytes::Bytes;
use serde_json::{json, Value};
use tickcast_core::hub::{DedupConfig, HubConfig, OffsetMode, PublishError};
use tickcast_core::ingest::{channel_source, run_source};
use tickcast_core::model::{Event, Filter, Offset, DEFAULT_MAX_BODY_BYTES};
use tickcast_core::{Connection, Hub};

use common::{drain, drain_until_idle};

fn config() -> HubConfig {
    let mut config = HubConfig::immediate();
    config.rate_limit_per_user = 0;
    config.queue.capacity = 10_000;
    config
}

fn body(id: Option<&str>, n: u32) -> Value {
    let mut body = json!({"symbol": "AAPL", "pattern": "Doji", "n": n});
    if let Some(id) = id {
        body["event_id"] = json!(id);
    }
    body
}

fn event(id: Option<&str>, n: u32) -> Event {
    Event::from_json(
        Bytes::from(body(id, n).to_string()),
        None,
        DEFAULT_MAX_BODY_BYTES,
    )
    .unwrap()
}

fn subscriber(hub: &Hub) -> Connection {
    let conn = hub.connect(None, hub.default_limits()).unwrap();
    conn.handle
        .subscribe("all", Filter::default(), None)
        .unwrap();
    conn
}

/// The `n` of each event a client saw.
fn ns(events: &[Value]) -> Vec<u64> {
    events
        .iter()
        .map(|e| e["data"]["n"].as_u64().unwrap())
        .collect()
}

#[test]
fn a_repeated_event_id_is_delivered_once_and_answers_the_first_offset() {
    let hub = Hub::new(config());
    let mut conn = subscriber(&hub);
    let first = hub.publish(event(Some("e-1"), 1)).unwrap();
    assert_eq!(
        hub.publish(event(Some("e-1"), 2)),
        Err(PublishError::Duplicate { offset: first })
    );
    // Events without a key are never taken for copies.
    hub.publish(event(None, 3)).unwrap();
    hub.publish(event(None, 3)).unwrap();
    // A burst: a copy inside it and a copy of an earlier one are dropped.
    let results = hub.publish_all(vec![
        event(Some("e-2"), 4),
        event(Some("e-2"), 5),
        event(Some("e-1"), 6),
        event(Some("e-3"), 7),
    ]);
    assert!(results[0].is_ok() && results[3].is_ok(), "{results:?}");
    assert_eq!(
        results[1],
        Err(PublishError::Duplicate {
            offset: *results[0].as_ref().unwrap()
        })
    );
    assert_eq!(results[2], Err(PublishError::Duplicate { offset: first }));
    // A key given beside the body works the same; the body's own
    // event_id wins over it.
    hub.publish(event(None, 8).with_idempotency_key("k-1"))
        .unwrap();
    assert!(hub
        .publish(event(None, 9).with_idempotency_key("k-1"))
        .is_err());
    assert!(hub
        .publish(event(Some("e-3"), 10).with_idempotency_key("k-2"))
        .is_err());
    let seen = drain(&mut conn.frames);
    assert_eq!(ns(&seen.events), vec![1, 3, 3, 4, 7, 8]);
}

#[test]
fn the_window_is_bounded_by_count() {
    let mut config = config();
    config.dedup = DedupConfig::default()
        .with_capacity(2)
        .with_max_age(Duration::from_secs(600));
    let hub = Hub::new(config);
    for id in ["a", "b", "c"] {
        hub.publish(event(Some(id), 0)).unwrap();
    }
    // "a" left the window (the oldest first); "b" and "c" are in it.
    assert!(hub.publish(event(Some("a"), 0)).is_ok());
    assert!(hub.publish(event(Some("c"), 0)).is_err());
    // Capacity 0: no de-duplication at all.
    let mut config = self::config();
    config.dedup.capacity = 0;
    let hub = Hub::new(config);
    assert!(hub.publish(event(Some("a"), 0)).is_ok());
    assert!(hub.publish(event(Some("a"), 0)).is_ok());
}

#[test]
fn stream_entries_with_a_repeated_key_are_dropped_live_and_in_backfill() {
    let mut config = config();
    config.offsets = OffsetMode::External;
    let hub = Hub::new(config);
    hub.remember_at(event(Some("a"), 1), Offset::new(10, 0))
        .unwrap();
    assert!(matches!(
        hub.remember_at(event(Some("a"), 2), Offset::new(11, 0)),
        Err(PublishError::Duplicate { .. })
    ));
    let mut conn = subscriber(&hub);
    // A producer's retry XADDed a second entry: another id, same key.
    assert!(matches!(
        hub.publish_at(event(Some("a"), 3), Offset::new(12, 0)),
        Err(PublishError::Duplicate { .. })
    ));
    hub.publish_at(event(Some("b"), 4), Offset::new(13, 0))
        .unwrap();
    assert!(hub
        .publish_at(event(Some("b"), 5), Offset::new(14, 0))
        .is_err());
    hub.publish_at(event(Some("c"), 6), Offset::new(15, 0))
        .unwrap();
    assert_eq!(ns(&drain(&mut conn.frames).events), vec![4, 6]);
    // A client resuming from before everything gets each event once.
    let Connection { handle, mut frames } = hub.connect(None, hub.default_limits()).unwrap();
    handle
        .subscribe(
            "all",
            Filter::default(),
            Some(Offset::new(10, 0).predecessor()),
        )
        .unwrap();
    assert_eq!(ns(&drain(&mut frames).events), vec![1, 4, 6]);
}

#[tokio::test]
async fn an_ingest_source_drops_copies_and_counts_them() {
    let hub = Hub::new(config());
    let mut conn = subscriber(&hub);
    let (publisher, source) = channel_source("test", 64, DEFAULT_MAX_BODY_BYTES);
    let driver = tokio::spawn(run_source(hub.clone(), source).unwrap());
    for (id, n) in [("x", 1), ("x", 2), ("y", 3), ("x", 4)] {
        let raw = Bytes::from(body(Some(id), n).to_string());
        publisher.send(None, raw).await.unwrap();
    }
    drop(publisher);
    tokio::time::timeout(Duration::from_secs(30), driver)
        .await
        .unwrap()
        .unwrap();
    let seen = drain_until_idle(&mut conn.frames, Duration::from_millis(200)).await;
    assert_eq!(ns(&seen.events), vec![1, 3]);
    let stats = hub.source_stats();
    assert_eq!(stats[0].accepted, 2);
    assert_eq!(stats[0].duplicates, 2);
}
