//! A private RabbitMQ node restarted mid-stream: the source reports the
//! outage, reconnects, and every confirmed event reaches the client exactly
//! once.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use common::{Client, Raw};
use parking_lot::Mutex;
use serde_json::json;
use tickcast_core::ingest::{
    run_source, BrokerPublisher, Incoming, IngestItem, IngestSource, SourceContext,
};
use tickcast_ingest_amqp::{AmqpConfig, AmqpPublisher, AmqpSource};
use tickcast_testkit::RabbitNode;

/// Confirmed events wanted in all (the producer goes on until the restart
/// is over and it has this many)...
const EVENTS: usize = 1000;
/// ...of which this many before the restart.
const RESTART_AFTER: usize = 300;
/// Events per `publish_all`, so that many are in flight at the restart.
const BATCH: u64 = 25;
/// The id of the last event, sent after everything else.
const LAST: u64 = u64::MAX;

/// What the publisher learnt about each event it sent.
#[derive(Default)]
struct Ledger {
    confirmed: BTreeSet<u64>,
    /// Failed publishes: the broker may or may not have taken them.
    uncertain: BTreeSet<u64>,
}

fn event(n: u64) -> Bytes {
    let body = json!({"symbol":"AAPL","pattern":"Doji","tier":"daily","event_id":n.to_string()});
    Bytes::from(body.to_string())
}

fn event_ids(data: &[serde_json::Value]) -> Vec<u64> {
    data.iter()
        .filter_map(|d| d["event_id"].as_str()?.parse().ok())
        .collect()
}

// Once intermittent (a run of confirmed events lost in about one CI run in
// three, with one awaited ack per message); since acks go in batches with
// `multiple` it passed 24 runs in a row, so it runs with the others again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broker_restart_loses_and_duplicates_nothing_confirmed() {
    if tickcast_testkit::amqp_url().is_none() {
        return; // no RabbitMQ installed and running here
    }
    let node = tokio::task::spawn_blocking(RabbitNode::start)
        .await
        .unwrap();
    let config = AmqpConfig {
        url: node.url(),
        reconnect_max: Duration::from_millis(500),
        ..AmqpConfig::for_node("faults")
    };
    let raw = Raw::connect(&config.url).await;
    let hub = common::hub();
    let client = Client::subscribe_all(&hub);
    let source = AmqpSource::new(config.clone()).unwrap();
    tokio::spawn(run_source(hub.clone(), source).unwrap());
    let counters = hub.source_counters("amqp").unwrap();
    raw.wait_for_consumer(&config.queue).await;
    drop(raw);

    // Watch the source's state as /ready would.
    let saw_down = Arc::new(AtomicBool::new(false));
    let watcher = {
        let (counters, saw_down) = (counters.clone(), saw_down.clone());
        tokio::spawn(async move {
            loop {
                if !counters.snapshot().connected {
                    saw_down.store(true, Ordering::Relaxed);
                }
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        })
    };

    let ledger = Arc::new(Mutex::new(Ledger::default()));
    let publisher = Arc::new(AmqpPublisher::new(&config).unwrap());
    let restarted = Arc::new(AtomicBool::new(false));
    let producer = {
        let (ledger, publisher) = (ledger.clone(), publisher.clone());
        let restarted = restarted.clone();
        tokio::spawn(async move {
            let mut next = 0;
            let done =
                || restarted.load(Ordering::Relaxed) && ledger.lock().confirmed.len() >= EVENTS;
            while !done() {
                // Each event is sent once: resending a failed one could
                // duplicate it, with a message id of its own.
                let ids: Vec<u64> = (next..next + BATCH).collect();
                next += BATCH;
                let batch = ids
                    .iter()
                    .map(|n| ("tickstock.events.patterns".to_owned(), event(*n)))
                    .collect();
                let results = publisher.publish_all(batch).await;
                let failed = {
                    let mut ledger = ledger.lock();
                    for (n, result) in ids.into_iter().zip(&results) {
                        match result {
                            Ok(_) => ledger.confirmed.insert(n),
                            Err(_) => ledger.uncertain.insert(n),
                        };
                    }
                    results.iter().any(Result::is_err)
                };
                // A producer backs off while the broker is away.
                let pause = if failed { 200 } else { 20 };
                tokio::time::sleep(Duration::from_millis(pause)).await;
            }
        })
    };

    assert!(common::wait_until(|| ledger.lock().confirmed.len() >= RESTART_AFTER).await);
    let started = std::time::Instant::now();
    let mut node = tokio::task::spawn_blocking(move || {
        let mut node = node;
        node.restart();
        node
    })
    .await
    .unwrap();
    eprintln!("restarted in {:?}", started.elapsed());
    restarted.store(true, Ordering::Relaxed);
    tokio::time::timeout(common::GIVE_UP, producer)
        .await
        .expect("the producer finishes")
        .unwrap();

    // A last event, published once everything is up again: the queue is
    // FIFO with one consumer, so when it arrives, everything before it
    // (redeliveries included) has been delivered.
    let mut last = None;
    for _ in 0..100 {
        if publisher
            .publish("tickstock.events.patterns", event(LAST))
            .await
            .is_ok()
        {
            last = Some(LAST);
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(last, Some(LAST), "the publisher reconnects");
    let seen = client
        .wait_for(|seen| event_ids(seen).contains(&LAST))
        .await;
    watcher.abort();

    check_exactly_once(&ledger.lock(), &seen);
    eprintln!("duplicates dropped: {}", counters.snapshot().duplicates);

    // The outage was reported, and the source is back.
    let stats = counters.snapshot();
    assert!(stats.errors >= 1, "a Disconnected was yielded");
    assert!(saw_down.load(Ordering::Relaxed), "shown disconnected");
    assert!(stats.connected, "and connected again");
    tokio::task::spawn_blocking(move || node.stop())
        .await
        .unwrap();
}

/// Every confirmed event delivered, none twice, nothing that was not sent.
fn check_exactly_once(ledger: &Ledger, seen: &[serde_json::Value]) {
    let mut times: BTreeMap<u64, usize> = BTreeMap::new();
    for id in event_ids(seen) {
        *times.entry(id).or_default() += 1;
    }
    let twice: Vec<_> = times.iter().filter(|(_, n)| **n > 1).collect();
    assert!(twice.is_empty(), "delivered more than once: {twice:?}");
    let lost: Vec<_> = ledger
        .confirmed
        .iter()
        .filter(|n| !times.contains_key(n))
        .collect();
    assert!(lost.is_empty(), "confirmed but lost: {lost:?}");
    let unknown: Vec<_> = times
        .keys()
        .filter(|n| **n != LAST && !ledger.confirmed.contains(n) && !ledger.uncertain.contains(n))
        .collect();
    assert!(unknown.is_empty(), "never published: {unknown:?}");
    let uncertain_delivered = ledger
        .uncertain
        .iter()
        .filter(|n| times.contains_key(n))
        .count();
    eprintln!(
        "confirmed {}, failed {} (of which delivered {uncertain_delivered})",
        ledger.confirmed.len(),
        ledger.uncertain.len(),
    );
}

/// The next item, or a panic naming what was expected.
async fn expect(source: &mut AmqpSource, what: &str) -> IngestItem {
    match tokio::time::timeout(common::GIVE_UP, source.next()).await {
        Ok(Some(item)) => item,
        _ => panic!("no {what}"),
    }
}

fn message(item: IngestItem) -> Incoming {
    match item {
        IngestItem::Message(incoming) => incoming,
        _ => panic!("expected a message"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_accepted_message_whose_ack_was_lost_is_not_delivered_again() {
    if tickcast_testkit::amqp_url().is_none() {
        return; // no RabbitMQ installed and running here
    }
    let node = tokio::task::spawn_blocking(RabbitNode::start)
        .await
        .unwrap();
    let config = AmqpConfig {
        url: node.url(),
        reconnect_max: Duration::from_millis(500),
        ..AmqpConfig::for_node("lost-ack")
    };
    let hub = common::hub();
    // Driven by hand: the counters `run_source` would attach.
    let counters = hub.register_source("amqp");
    let mut source = AmqpSource::new(config.clone()).unwrap();
    let schema = hub.config().schema.clone();
    source.attach(&SourceContext::new(counters.clone(), schema));
    assert!(matches!(
        expect(&mut source, "connect").await,
        IngestItem::Connected
    ));
    let publisher = AmqpPublisher::new(&config).unwrap();
    publisher
        .publish("tickstock.events.patterns", event(1))
        .await
        .unwrap();
    let first = message(expect(&mut source, "first delivery").await);
    assert!(first.decoded.is_ok());

    // The hub took it, but the broker goes away before the ack arrives:
    // the ack is lost (quietly), and the broker delivers the message again.
    let node = tokio::task::spawn_blocking(move || {
        let mut node = node;
        node.restart();
        node
    })
    .await
    .unwrap();
    first.acker.expect("an acker").ack().await;

    assert!(matches!(
        expect(&mut source, "disconnect").await,
        IngestItem::Disconnected(_)
    ));
    assert!(matches!(
        expect(&mut source, "reconnect").await,
        IngestItem::Connected
    ));
    let mut published = false;
    for _ in 0..100 {
        if publisher
            .publish("tickstock.events.patterns", event(2))
            .await
            .is_ok()
        {
            published = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(published, "the publisher reconnects");

    // The redelivered copy of event 1 is acked and skipped: next is event 2.
    let second = message(expect(&mut source, "second delivery").await);
    let body: serde_json::Value =
        serde_json::from_slice(second.decoded.expect("event 2").body()).unwrap();
    assert_eq!(body["event_id"], "2");
    assert_eq!(counters.snapshot().duplicates, 1);
    second.acker.expect("an acker").ack().await;
    tokio::task::spawn_blocking(move || drop(node))
        .await
        .unwrap();
}
