//! Traffic for multi-node tests: events of a few symbols and priorities
//! published through the nodes' `POST /api/publish`, a barrier that says
//! when every client has had what was published before it, and the checks
//! on what each client received.

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{json, Value};
use tickcast_core::model::Offset;

use super::group::Group;
use super::keepalive::http;
use super::roaming::{Roamer, WAIT};

/// The symbols events are spread over (clients filter on some).
pub const SYMBOLS: [&str; 3] = ["AAPL", "MSFT", "TSLA"];

/// An event of `symbol` with its own `event_id`.
pub fn event(id: &str, symbol: &str, priority: &str) -> Value {
    json!({"pattern": "Doji", "symbol": symbol, "confidence": 0.7, "tier": "daily",
           "priority": priority, "event_id": id})
}

/// `addrs` starting at `first`: a client's node list, its own node first.
pub fn from(addrs: &[SocketAddr], first: usize) -> Vec<SocketAddr> {
    (0..addrs.len())
        .map(|i| addrs[(first + i) % addrs.len()])
        .collect()
}

/// Publishes `items` (id, symbol, priority) through `node` in one request
/// and fails the test unless it is answered 202.
pub async fn publish(group: &Group, node: SocketAddr, items: &[(String, &str, &str)]) {
    let body = Value::Array(items.iter().map(|(id, s, p)| event(id, s, p)).collect());
    let (status, answer) = http(node, "POST", &group.publish_path(), Some(&body))
        .await
        .unwrap_or_else(|e| panic!("publish through {node}: {e}"));
    assert_eq!(status, 202, "publish through {node}: {answer}");
}

/// Fails unless `client` received exactly the `published` events it
/// matches, each once.
pub fn assert_exactly_once(client: &Roamer, published: &[(String, String)]) {
    let expected: BTreeSet<&str> = published
        .iter()
        .filter(|(_, symbol)| client.wants(symbol))
        .map(|(id, _)| id.as_str())
        .collect();
    let log = client.log();
    let counts = log.counts();
    let twice: Vec<_> = counts.iter().filter(|(_, n)| **n > 1).collect();
    assert!(twice.is_empty(), "{}: duplicates {twice:?}", client.name);
    let missing: Vec<_> = expected
        .iter()
        .filter(|id| !counts.contains_key(**id))
        .collect();
    assert!(
        missing.is_empty(),
        "{}: {} of {} events missing: {missing:?}; sessions {:?}",
        client.name,
        missing.len(),
        expected.len(),
        log.sessions
    );
    let unexpected: Vec<_> = counts
        .keys()
        .filter(|id| !expected.contains(id.as_str()))
        .collect();
    assert!(unexpected.is_empty(), "{}: {unexpected:?}", client.name);
}

/// Publishes a last event of each symbol through `node` and waits until
/// every client has those it matches: the events published before them
/// through any node have then reached every client they will reach (each
/// node consumes the broker in order, each connection gets its events in
/// offset order). Returns them, as published.
pub async fn barrier(
    group: &Group,
    node: SocketAddr,
    clients: &[&Roamer],
) -> Vec<(String, String)> {
    let items: Vec<(String, &str, &str)> = SYMBOLS
        .iter()
        .map(|s| (format!("{}-last-{s}", group.tag), *s, "low"))
        .collect();
    publish(group, node, &items).await;
    for client in clients {
        for (id, symbol, _) in &items {
            if client.wants(symbol) {
                client.wait_for(id).await;
            }
        }
    }
    items
        .into_iter()
        .map(|(id, s, _)| (id, s.to_owned()))
        .collect()
}

/// Publishes single events through `nodes` in turn until `stop`: mostly
/// batched priorities, every 7th critical (which goes out at once and
/// takes the batched ones before it along). Returns (id, symbol) of each.
pub async fn publish_until(
    group: Group,
    nodes: Vec<SocketAddr>,
    published: Arc<Mutex<Vec<(String, String)>>>,
    stop: Arc<AtomicBool>,
) {
    let priorities = ["low", "high", "medium", "low", "high", "medium", "critical"];
    let mut n = 0;
    while !stop.load(Ordering::Relaxed) {
        let id = format!("{}-{n}", group.tag);
        let symbol = SYMBOLS[n % 3];
        publish(
            &group,
            nodes[n % nodes.len()],
            &[(id.clone(), symbol, priorities[n % 7])],
        )
        .await;
        published.lock().unwrap().push((id, symbol.to_owned()));
        n += 1;
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

/// Offsets in the order a client received them must strictly increase.
pub fn assert_offsets_increase(client: &Roamer) {
    let log = client.log();
    let offsets: Vec<Offset> = log
        .events
        .iter()
        .map(|g| {
            g.offset
                .parse()
                .unwrap_or_else(|_| panic!("offset {}", g.offset))
        })
        .collect();
    for (i, pair) in offsets.windows(2).enumerate() {
        assert!(
            pair[0] < pair[1],
            "{}: {} then {} (events {i}, {})",
            client.name,
            pair[0],
            pair[1],
            i + 1
        );
    }
}

/// Waits until `n` more events were published.
pub async fn wait_published(
    published: &Mutex<Vec<(String, String)>>,
    n: usize,
    publisher: &tokio::task::JoinHandle<()>,
) {
    let target = published.lock().unwrap().len() + n;
    let deadline = std::time::Instant::now() + WAIT;
    while published.lock().unwrap().len() < target {
        assert!(!publisher.is_finished(), "the publisher failed");
        assert!(std::time::Instant::now() < deadline, "publishing stalled");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
