//! The source against the shared RabbitMQ: fixtures through `run_source`
//! into a real hub, bincode bodies, one queue per node, duplicates, and a
//! broker that is not there.

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use bytes::Bytes;
use common::{Client, Raw};
use lapin::BasicProperties;
use serde_json::{json, Value};
use tickcast_core::ingest::{run_source, IngestItem, IngestSource};
use tickcast_core::model::{Envelope, BINCODE_MARKER};
use tickcast_ingest_amqp::{AmqpConfig, AmqpSource, BINCODE_CONTENT_TYPE};

const GOOD: usize = 300;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fixtures_are_delivered_in_order_and_bad_ones_dead_lettered() {
    let Some(url) = tickcast_testkit::amqp_url() else {
        return;
    };
    let config = common::config(&url, "fixtures");
    let raw = Raw::connect(&url).await;
    let hub = common::hub();
    let client = Client::subscribe_all(&hub);
    let source = AmqpSource::new(config.clone()).unwrap();
    tokio::spawn(run_source(hub.clone(), source).unwrap());
    raw.wait_for_consumer(&config.queue).await;

    let good = tickcast_testkit::good_events();
    let bad = tickcast_testkit::bad_events();
    assert!(bad.len() >= 13);
    for (i, event) in good.iter().take(GOOD).enumerate() {
        let properties = common::json_properties();
        raw.publish(&config.exchange, &event.channel, &event.raw, properties)
            .await;
        // Every bad line, spread over the first good ones; some without a
        // content type at all.
        if let Some(bad) = bad.get(i) {
            let properties = match i % 2 {
                0 => common::json_properties(),
                _ => BasicProperties::default(),
            };
            raw.publish(&config.exchange, &bad.channel, &bad.raw, properties)
                .await;
        }
    }

    let expected: Vec<_> = good
        .iter()
        .take(GOOD)
        .filter(|e| !e.is_private())
        .map(|e| e.body.clone())
        .collect();
    let seen = client.wait_for(|seen| seen.len() >= expected.len()).await;
    assert_eq!(
        common::sorted(seen),
        common::sorted(expected),
        "every public good event, once, as published"
    );

    let counters = hub.source_counters("amqp").unwrap();
    common::wait_until(|| {
        let stats = counters.snapshot();
        stats.accepted >= GOOD as u64 && stats.rejected_total >= bad.len() as u64
    })
    .await;
    let stats = counters.snapshot();
    assert_eq!(stats.accepted, GOOD as u64);
    let mut reasons: BTreeMap<Box<str>, u64> = BTreeMap::new();
    for bad in &bad {
        *reasons.entry(bad.expected_reason().into()).or_default() += 1;
    }
    assert_eq!(stats.rejected, reasons);
    assert!(stats.connected);

    // Rejected without requeue: every bad message waits in <queue>.dead.
    let dead = config.dead_letter_queue();
    let mut count = 0;
    for _ in 0..500 {
        count = raw.queue_state(&dead).await.map_or(0, |(ready, _)| ready);
        if count >= bad.len() as u32 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(count, bad.len() as u32);
    // ...and none is left in the node's queue.
    assert_eq!(raw.queue_state(&config.queue).await.map(|s| s.0), Some(0));
    raw.remove(&config).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bincode_envelopes_are_delivered() {
    let Some(url) = tickcast_testkit::amqp_url() else {
        return;
    };
    let config = common::config(&url, "bincode");
    let raw = Raw::connect(&url).await;
    let hub = common::hub();
    let client = Client::subscribe_all(&hub);
    tokio::spawn(run_source(hub.clone(), AmqpSource::new(config.clone()).unwrap()).unwrap());
    raw.wait_for_consumer(&config.queue).await;

    let envelope = |symbol: &str| Envelope {
        symbol: Some(symbol.into()),
        pattern: Some("Doji".into()),
        tier: Some("daily".into()),
        confidence: Some(0.85),
        extra_json: Some(r#"{"metadata":{"price":1.5}}"#.into()),
        ..Envelope::default()
    };
    let bincode = BasicProperties::default().with_content_type(BINCODE_CONTENT_TYPE.into());
    let patterns = "tickstock.events.patterns";
    // Plain, as a Rust producer on AMQP sends it.
    let body = envelope("aapl").to_bincode();
    raw.publish(&config.exchange, patterns, &body, bincode.clone())
        .await;
    // With the Redis marker, as forwarded from Redis.
    let mut marked = vec![BINCODE_MARKER];
    marked.extend(envelope("msft").to_bincode());
    raw.publish(&config.exchange, patterns, &marked, bincode.clone())
        .await;
    // The marker alone tells it apart, without a content type.
    let mut marked = vec![BINCODE_MARKER];
    marked.extend(envelope("nvda").to_bincode());
    raw.publish(
        &config.exchange,
        patterns,
        &marked,
        BasicProperties::default(),
    )
    .await;
    // Garbage labelled bincode is rejected, not delivered.
    raw.publish(&config.exchange, patterns, &[1, 2, 3], bincode)
        .await;

    let seen = client.wait_for(|seen| seen.len() >= 3).await;
    let symbols: Vec<_> = seen.iter().map(|d| d["symbol"].clone()).collect();
    assert_eq!(symbols, [json!("aapl"), json!("msft"), json!("nvda")]);
    assert_eq!(seen[0]["metadata"]["price"], 1.5);
    let counters = hub.source_counters("amqp").unwrap();
    common::wait_until(|| counters.snapshot().rejected_total == 1).await;
    assert_eq!(counters.snapshot().rejected.get("bad_bincode"), Some(&1));
    raw.remove(&config).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_node_has_its_own_queue_and_gets_every_event() {
    let Some(url) = tickcast_testkit::amqp_url() else {
        return;
    };
    let first = common::config(&url, "node-a");
    let second = AmqpConfig {
        queue: format!("{}.b", first.queue),
        ..first.clone()
    };
    let raw = Raw::connect(&url).await;
    let mut clients = Vec::new();
    for config in [&first, &second] {
        let hub = common::hub();
        clients.push(Client::subscribe_all(&hub));
        tokio::spawn(run_source(hub, AmqpSource::new(config.clone()).unwrap()).unwrap());
        raw.wait_for_consumer(&config.queue).await;
    }

    let events: Vec<_> = tickcast_testkit::good_events()
        .into_iter()
        .filter(|e| !e.is_private())
        .take(100)
        .collect();
    for event in &events {
        raw.publish(
            &first.exchange,
            &event.channel,
            &event.raw,
            common::json_properties(),
        )
        .await;
    }
    let expected: Vec<_> = events.iter().map(|e| e.body.clone()).collect();
    for client in &clients {
        let seen = client.wait_for(|seen| seen.len() >= expected.len()).await;
        assert_eq!(common::sorted(seen), common::sorted(expected.clone()));
    }
    raw.remove(&first).await;
    raw.remove(&second).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_id_already_accepted_is_not_delivered_again() {
    let Some(url) = tickcast_testkit::amqp_url() else {
        return;
    };
    let config = common::config(&url, "dedup");
    let raw = Raw::connect(&url).await;
    let hub = common::hub();
    let client = Client::subscribe_all(&hub);
    let source = AmqpSource::new(config.clone()).unwrap();
    tokio::spawn(run_source(hub.clone(), source).unwrap());
    raw.wait_for_consumer(&config.queue).await;

    let body = |n: u32| json!({"symbol":"AAPL","pattern":"Doji","event_id":n.to_string()});
    let with_id = |id: &str| common::json_properties().with_message_id(id.into());
    let key = "tickstock.events.patterns";
    let publish = |n: u32, properties: BasicProperties| {
        let raw = &raw;
        let exchange = config.exchange.clone();
        async move {
            let bytes = Bytes::from(body(n).to_string());
            raw.publish(&exchange, key, &bytes, properties).await;
        }
    };
    publish(1, with_id("m-1")).await;
    client.wait_for(|seen| !seen.is_empty()).await;
    // The same message again (a publisher retrying after a lost confirm),
    // then new ones; two without message_id, recognised by the body's
    // event_id (the hub's idempotency key), and one without either.
    publish(1, with_id("m-1")).await;
    publish(2, with_id("m-2")).await;
    publish(3, common::json_properties()).await;
    publish(3, common::json_properties()).await;
    publish(4, with_id("m-4")).await;
    let anonymous = Bytes::from(json!({"symbol":"AAPL","pattern":"Doji"}).to_string());
    for _ in 0..2 {
        raw.publish(&config.exchange, key, &anonymous, common::json_properties())
            .await;
    }

    let seen = client.wait_for(|seen| seen.len() >= 6).await;
    let ids: Vec<_> = seen.iter().map(|d| d["event_id"].clone()).collect();
    assert_eq!(
        ids,
        [
            json!("1"),
            json!("2"),
            json!("3"),
            json!("4"),
            Value::Null,
            Value::Null
        ]
    );
    let counters = hub.source_counters("amqp").unwrap();
    common::wait_until(|| counters.snapshot().accepted >= 6).await;
    let stats = counters.snapshot();
    assert_eq!((stats.accepted, stats.duplicates), (6, 2));
    raw.remove(&config).await;
}

#[tokio::test]
async fn an_unreachable_broker_is_reported_once_and_retried() {
    let port = tickcast_testkit::free_port();
    let config = AmqpConfig {
        url: format!("amqp://guest:guest@127.0.0.1:{port}/%2f"),
        reconnect_min: Duration::from_millis(10),
        reconnect_max: Duration::from_millis(20),
        ..AmqpConfig::for_node("nobody")
    };
    let mut source = AmqpSource::new(config).unwrap();
    match source.next().await {
        Some(IngestItem::Disconnected(why)) => assert!(why.contains("connect"), "{why}"),
        _ => panic!("expected Disconnected first"),
    }
    // Then it keeps retrying quietly: no second Disconnected, no end.
    let next = tokio::time::timeout(Duration::from_millis(300), source.next()).await;
    assert!(next.is_err(), "the source must keep retrying");
}

#[test]
fn amqps_is_refused_up_front() {
    let config = AmqpConfig {
        url: "amqps://guest:guest@127.0.0.1:5671/%2f".into(),
        ..AmqpConfig::for_node("n")
    };
    assert!(AmqpSource::new(config.clone()).is_err());
    assert!(tickcast_ingest_amqp::AmqpPublisher::new(&config).is_err());
}

/// AMQP messages carry no offsets: into a hub that takes its offsets from
/// its ingest, every one would be refused and dead-lettered, so the source
/// is refused at start, before it connects (no broker needed).
#[tokio::test]
async fn a_hub_that_wants_stream_offsets_refuses_the_source_at_start() {
    use tickcast_core::hub::{HubConfig, OffsetMode};
    use tickcast_core::ingest::SourceOffsets;
    use tickcast_core::Hub;
    let mut hub_config = HubConfig::immediate();
    hub_config.offsets = OffsetMode::External;
    let hub = Hub::new(hub_config);
    let config = common::config("amqp://127.0.0.1:1/%2f", "offsets");
    let Err(refused) = run_source(hub.clone(), AmqpSource::new(config).unwrap()) else {
        panic!("the AMQP source ran on an External hub");
    };
    assert_eq!(refused.source_name, "amqp");
    assert_eq!(refused.offsets, SourceOffsets::Hub);
    assert!(refused.to_string().contains("OffsetMode::External"));
    assert!(hub.source_stats().is_empty());
}
