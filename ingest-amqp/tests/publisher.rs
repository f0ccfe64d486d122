//! AmqpPublisher through AmqpSource against the shared RabbitMQ.

mod common;

use bytes::Bytes;
use common::{Client, Raw};
use serde_json::json;
use tickcast_core::ingest::{run_source, BrokerError, BrokerPublisher};
use tickcast_core::model::{Envelope, BINCODE_MARKER};
use tickcast_ingest_amqp::{AmqpConfig, AmqpPublisher, AmqpSource};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn published_events_reach_the_source() {
    let Some(url) = tickcast_testkit::amqp_url() else {
        return;
    };
    let config = common::config(&url, "publisher");
    let raw = Raw::connect(&url).await;
    let hub = common::hub();
    let client = Client::subscribe_all(&hub);
    tokio::spawn(run_source(hub.clone(), AmqpSource::new(config.clone()).unwrap()).unwrap());
    raw.wait_for_consumer(&config.queue).await;

    let publisher = AmqpPublisher::new(&config).unwrap();
    assert_eq!(publisher.name(), "amqp");
    let events: Vec<_> = tickcast_testkit::good_events()
        .into_iter()
        .filter(|e| !e.is_private())
        .take(60)
        .collect();
    // One at a time, then the rest as one batch.
    for event in &events[..10] {
        let offset = publisher
            .publish(&event.channel, Bytes::from(event.raw.clone()))
            .await
            .unwrap();
        assert_eq!(offset, None, "offsets are assigned on receipt");
    }
    let batch = events[10..]
        .iter()
        .map(|e| (e.channel.clone(), Bytes::from(e.raw.clone())))
        .collect();
    let results = publisher.publish_all(batch).await;
    assert_eq!(results.len(), 50);
    assert!(results.iter().all(|r| r == &Ok(None)), "{results:?}");
    // A bincode envelope with the marker travels as it is.
    let mut body = vec![BINCODE_MARKER];
    body.extend(
        Envelope {
            symbol: Some("aapl".into()),
            pattern: Some("Doji".into()),
            ..Envelope::default()
        }
        .to_bincode(),
    );
    publisher
        .publish("tickstock.events.patterns", body.into())
        .await
        .unwrap();

    let mut expected: Vec<_> = events.iter().map(|e| e.body.clone()).collect();
    expected.push(json!({"symbol":"aapl","pattern":"Doji"}));
    let seen = client.wait_for(|seen| seen.len() >= expected.len()).await;
    assert_eq!(common::sorted(seen), common::sorted(expected));
    // Every publish got a message id of its own: none was taken for a copy.
    let counters = hub.source_counters("amqp").unwrap();
    common::wait_until(|| counters.snapshot().accepted >= 61).await;
    assert_eq!(counters.snapshot().duplicates, 0);
    raw.remove(&config).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn messages_nobody_receives_are_refused() {
    let Some(url) = tickcast_testkit::amqp_url() else {
        return;
    };
    let config = common::config(&url, "unroutable");
    let raw = Raw::connect(&url).await;
    let publisher = AmqpPublisher::new(&config).unwrap();
    let body = Bytes::from_static(br#"{"symbol":"AAPL","pattern":"Doji"}"#);
    // No queue is bound to this fresh exchange.
    let result = publisher
        .publish("tickstock.events.patterns", body.clone())
        .await;
    assert!(matches!(result, Err(BrokerError::Refused(_))), "{result:?}");
    let long = "k".repeat(300);
    let results = publisher
        .publish_all(vec![(long, body.clone()), ("x".into(), body)])
        .await;
    assert!(matches!(results[0], Err(BrokerError::Refused(_))));
    assert!(matches!(results[1], Err(BrokerError::Refused(_))));
    raw.remove(&config).await;
}

#[tokio::test]
async fn an_unreachable_broker_is_unavailable() {
    let config = AmqpConfig {
        url: format!(
            "amqp://guest:guest@127.0.0.1:{}/%2f",
            tickcast_testkit::free_port()
        ),
        ..AmqpConfig::for_node("nobody")
    };
    let publisher = AmqpPublisher::new(&config).unwrap();
    let body = Bytes::from_static(b"{}");
    for _ in 0..2 {
        let result = publisher
            .publish("tickstock.events.patterns", body.clone())
            .await;
        assert!(
            matches!(result, Err(BrokerError::Unavailable(_))),
            "{result:?}"
        );
    }
    let results = publisher
        .publish_all(vec![("a".into(), body.clone()), ("b".into(), body)])
        .await;
    assert!(results
        .iter()
        .all(|r| matches!(r, Err(BrokerError::Unavailable(_)))));
}
