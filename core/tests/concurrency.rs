//! The hub under concurrent publish, subscribe and disconnect: no deadlock,
//! per-connection order kept, nothing delivered to a closed connection, no
//! leak once everyone is gone.

mod common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use serde_json::json;
use tickcast_core::hub::HubConfig;
use tickcast_core::model::{Event, Filter, Offset};
use tickcast_core::routing::{RoutingRule, RoutingRules, Strategy};
use tickcast_core::Hub;

fn event(i: u64) -> Event {
    let symbols = ["AAPL", "MSFT", "NVDA", "TSLA"];
    let body = json!({"symbol": symbols[(i % 4) as usize], "pattern": "Doji", "tier": "daily",
        "confidence": (i % 10) as f64 / 10.0, "seq": i});
    Event::from_json(Bytes::from(body.to_string()), None, 1 << 20).unwrap()
}

fn config(strategy: Strategy) -> HubConfig {
    let mut config = HubConfig::immediate();
    config.rate_limit_per_user = 0;
    config.queue.capacity = 100_000;
    config.shards = 3;
    config.rules = RoutingRules(vec![RoutingRule::new(strategy)]);
    config
}

/// Offsets per priority must increase for one connection.
fn assert_ordered(events: &[serde_json::Value]) {
    let mut last: std::collections::HashMap<String, Offset> = Default::default();
    for e in events {
        let offset: Offset = e["offset"].as_str().unwrap().parse().unwrap();
        let prio = e["priority"].as_str().unwrap().to_owned();
        if let Some(prev) = last.insert(prio, offset) {
            assert!(prev < offset, "out of order: {prev} then {offset}");
        }
    }
}

async fn churn(strategy: Strategy) {
    let hub = Hub::new(config(strategy));
    let stop = Arc::new(AtomicBool::new(false));
    let mut tasks = Vec::new();
    // Readers that stay for the whole run and count everything.
    let mut stayers = Vec::new();
    for i in 0..8 {
        let conn = hub
            .connect(Some(format!("stay-{i}").into()), hub.default_limits())
            .unwrap();
        conn.handle
            .subscribe("all", Filter::default(), None)
            .unwrap();
        stayers.push(tokio::spawn(async move {
            let mut conn = conn;
            let seen = common::drain_until_idle(&mut conn.frames, Duration::from_secs(2)).await;
            (conn, seen)
        }));
    }
    // Clients that come and go while events flow.
    for t in 0..6 {
        let hub = hub.clone();
        let stop = stop.clone();
        tasks.push(tokio::spawn(async move {
            let mut n = 0u64;
            while !stop.load(Ordering::Relaxed) {
                let user = format!("churn-{}", n % 3);
                let Ok(mut conn) = hub.connect(Some(user.into()), hub.default_limits()) else {
                    tokio::task::yield_now().await;
                    continue;
                };
                let f: Filter = serde_json::from_value(json!({"symbols":["AAPL","NVDA"]})).unwrap();
                conn.handle.subscribe("s", f, None).unwrap();
                if n.is_multiple_of(2) {
                    conn.handle.unsubscribe("s").unwrap();
                }
                tokio::task::yield_now().await;
                let seen = common::drain(&mut conn.frames);
                assert_ordered(&seen.events);
                n += 1;
                let _ = t;
            }
        }));
    }
    // Publishers.
    let mut publishers = Vec::new();
    for p in 0..3u64 {
        let hub = hub.clone();
        publishers.push(tokio::spawn(async move {
            for i in 0..2000 {
                hub.publish(event(p * 10_000 + i)).unwrap();
                if i.is_multiple_of(50) {
                    tokio::task::yield_now().await;
                }
            }
        }));
    }
    for p in publishers {
        tokio::time::timeout(Duration::from_secs(60), p)
            .await
            .expect("publisher stuck")
            .unwrap();
    }
    stop.store(true, Ordering::Relaxed);
    for t in tasks {
        tokio::time::timeout(Duration::from_secs(60), t)
            .await
            .expect("client stuck")
            .unwrap();
    }
    let mut kept = Vec::new();
    for s in stayers {
        let (conn, seen) = tokio::time::timeout(Duration::from_secs(60), s)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            seen.events.len(),
            6000,
            "a connection that stayed got every event once"
        );
        assert_ordered(&seen.events);
        kept.push(conn);
    }
    let stats = hub.stats();
    assert_eq!(stats.connections, 8);
    assert_eq!(stats.subscriptions, 8);
    drop(kept);
    let stats = hub.stats();
    assert_eq!(
        (stats.connections, stats.subscriptions, stats.users),
        (0, 0, 0),
        "nothing leaks"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn content_based_under_churn() {
    churn(Strategy::ContentBased).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn load_balanced_under_churn() {
    churn(Strategy::LoadBalanced).await;
}

#[tokio::test]
async fn nothing_is_delivered_to_a_closed_connection() {
    let hub = Hub::new(config(Strategy::ContentBased));
    let conn = hub.connect(None, hub.default_limits()).unwrap();
    conn.handle.subscribe("s", Filter::default(), None).unwrap();
    let tickcast_core::Connection { handle, mut frames } = conn;
    drop(handle);
    hub.publish(event(1)).unwrap();
    let seen = common::drain(&mut frames);
    assert!(seen.events.is_empty());
    assert_eq!(hub.stats().delivery.enqueued, 0);
}
