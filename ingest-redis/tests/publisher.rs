//! RedisPublisher: what it publishes comes back through RedisSource.

mod common;

use bytes::Bytes;
use common::*;
use tickcast_core::hub::OffsetMode;
use tickcast_core::ingest::{BrokerError, BrokerPublisher};
use tickcast_core::model::Offset;
use tickcast_ingest_redis::{RedisMode, RedisPublisher};
use tickcast_testkit::fixtures::GoodEvent;

fn items(good: &[GoodEvent]) -> Vec<(String, Bytes)> {
    good.iter()
        .map(|g| (g.channel.clone(), Bytes::from(g.raw.clone())))
        .collect()
}

fn public(n: usize) -> Vec<GoodEvent> {
    first_good_events(200)
        .into_iter()
        .filter(|g| !g.is_private())
        .take(n)
        .collect()
}

/// Pub/sub: publish_all PUBLISHes every body (no offsets: the receiving
/// nodes number them), and a bad body is the consumer's to reject.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publish_all_round_trips_through_pubsub() {
    let Some(server) = private_redis() else {
        return;
    };
    let config = source_config(&server.url(), RedisMode::PubSub);
    let hub = hub(OffsetMode::Node);
    let mut conn = client(&hub, None);
    let task = start(&hub, config.clone()).await;
    let publisher = RedisPublisher::new(&config).unwrap();
    assert_eq!(publisher.name(), "redis");

    let good = public(10);
    let mut batch = items(&good);
    batch.insert(
        5,
        ("tickstock.events.patterns".into(), Bytes::from("{not json")),
    );
    let results = publisher.publish_all(batch).await;
    assert_eq!(results.len(), 11);
    assert!(results.iter().all(|r| r == &Ok(None)), "{results:?}");
    let single = br#"{"pattern":"Doji","symbol":"MSFT","confidence":0.5}"#;
    let result = publisher
        .publish("tickstock.events.patterns", Bytes::from_static(single))
        .await;
    assert_eq!(result, Ok(None));

    let events = by_offset(collect(&mut conn.frames, 11).await);
    let data: Vec<_> = events.iter().map(|e| e["data"].clone()).collect();
    let mut expected: Vec<_> = good.iter().map(|g| g.body.clone()).collect();
    expected.push(serde_json::from_slice(single).unwrap());
    assert_eq!(data, expected);
    wait_until("the bad one rejected", || stats(&hub).rejected_total == 1).await;
    stop(task).await;
}

/// Streams: publish_all XADDs every body and answers each entry id, and
/// the source delivers each event under exactly that offset.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publish_all_round_trips_through_streams() {
    let Some(url) = tickcast_testkit::redis_url() else {
        return;
    };
    let config = streams_config(&url, &unique("stream"), &unique("group"));
    let hub = hub(OffsetMode::External);
    let mut conn = client(&hub, None);
    let task = start(&hub, config.clone()).await;
    let publisher = RedisPublisher::new(&config).unwrap();

    let good = public(12);
    let mut offsets_sent: Vec<Offset> = publisher
        .publish_all(items(&good[..11]))
        .await
        .into_iter()
        .map(|r| r.unwrap().expect("XADD gives an offset"))
        .collect();
    let last = &good[11];
    let single = publisher
        .publish(&last.channel, Bytes::from(last.raw.clone()))
        .await
        .unwrap()
        .expect("XADD gives an offset");
    offsets_sent.push(single);
    assert!(offsets_sent.windows(2).all(|w| w[0] < w[1]), "increasing");

    let events = by_offset(collect(&mut conn.frames, 12).await);
    assert_eq!(offsets(&events), offsets_sent);
    for (seen, sent) in events.iter().zip(&good) {
        assert_eq!(seen["data"], sent.body);
    }
    stop(task).await;
    let mut redis = redis_conn(&url).await;
    let _: usize = redis::cmd("DEL")
        .arg(&config.stream)
        .query_async(&mut redis)
        .await
        .unwrap();
}

/// A server that refuses a command refuses that item only; a server that
/// is not there makes every item unavailable.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn errors_say_refused_or_unavailable() {
    let Some(url) = tickcast_testkit::redis_url() else {
        return;
    };
    let key = unique("not-a-stream");
    let mut redis = redis_conn(&url).await;
    let _: () = redis::cmd("SET")
        .arg(&key)
        .arg("x")
        .query_async(&mut redis)
        .await
        .unwrap();
    let config = streams_config(&url, &key, "unused");
    let publisher = RedisPublisher::new(&config).unwrap();
    let body = Bytes::from_static(br#"{"pattern":"Doji","symbol":"AAPL"}"#);
    let results = publisher
        .publish_all(vec![("tickstock.events.patterns".into(), body.clone())])
        .await;
    assert!(
        matches!(&results[..], [Err(BrokerError::Refused(_))]),
        "{results:?}"
    );
    let _: usize = redis::cmd("DEL")
        .arg(&key)
        .query_async(&mut redis)
        .await
        .unwrap();

    let nowhere = format!("redis://127.0.0.1:{}", tickcast_testkit::free_port());
    let publisher = RedisPublisher::new(&source_config(&nowhere, RedisMode::PubSub)).unwrap();
    let result = publisher
        .publish("tickstock.events.patterns", body.clone())
        .await;
    assert!(
        matches!(result, Err(BrokerError::Unavailable(_))),
        "{result:?}"
    );
    let results = publisher
        .publish_all(vec![("a".into(), body.clone()), ("b".into(), body)])
        .await;
    assert!(
        results
            .iter()
            .all(|r| matches!(r, Err(BrokerError::Unavailable(_)))),
        "{results:?}"
    );
}

/// The publisher reconnects by itself after the server comes back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_publisher_reconnects_after_a_server_restart() {
    let Some(mut server) = private_redis() else {
        return;
    };
    let config = source_config(&server.url(), RedisMode::Streams);
    let publisher = RedisPublisher::new(&config).unwrap();
    let body = Bytes::from_static(br#"{"pattern":"Doji","symbol":"AAPL"}"#);
    assert!(publisher.publish("c", body.clone()).await.is_ok());
    server.kill();
    let result = publisher.publish("c", body.clone()).await;
    assert!(
        matches!(result, Err(BrokerError::Unavailable(_))),
        "{result:?}"
    );
    server.restart();
    let deadline = tokio::time::Instant::now() + GIVE_UP;
    while publisher.publish("c", body.clone()).await.is_err() {
        assert!(tokio::time::Instant::now() < deadline, "never reconnected");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

/// Pub/sub: a PUBLISH that no subscriber received is no success (issue
/// 14): it fails as `NoReceiver`, in a pipeline only for its own item.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_publish_no_subscriber_received_fails_as_no_receiver() {
    let Some(url) = tickcast_testkit::redis_url() else {
        return;
    };
    let heard = unique("heard");
    let unheard = unique("unheard");
    let config = tickcast_ingest_redis::RedisConfig {
        channels: vec![heard.clone()],
        ..source_config(&url, RedisMode::PubSub)
    };
    let hub = hub(OffsetMode::Node);
    let mut conn = client(&hub, None);
    let task = start(&hub, config.clone()).await;
    let publisher = RedisPublisher::new(&config).unwrap();
    let body = Bytes::from_static(br#"{"pattern":"Doji","symbol":"AAPL"}"#);

    let result = publisher.publish(&unheard, body.clone()).await;
    assert!(
        matches!(&result, Err(BrokerError::NoReceiver(why)) if why.contains(&unheard)),
        "{result:?}"
    );
    let results = publisher
        .publish_all(vec![
            (unheard.clone(), body.clone()),
            (heard.clone(), body.clone()),
        ])
        .await;
    assert!(
        matches!(&results[..], [Err(BrokerError::NoReceiver(_)), Ok(None)]),
        "{results:?}"
    );
    assert_eq!(publisher.publish(&heard, body).await, Ok(None));
    assert_eq!(collect(&mut conn.frames, 2).await.len(), 2);
    stop(task).await;
}

/// Streams: the publisher trims with `MAXLEN ~`, so the stream stays near
/// `stream_maxlen` however much is published (issue 14).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_stream_stays_bounded() {
    let Some(url) = tickcast_testkit::redis_url() else {
        return;
    };
    let stream = unique("bounded");
    let config = tickcast_ingest_redis::RedisConfig {
        stream_maxlen: Some(200),
        ..streams_config(&url, &stream, "unused")
    };
    let publisher = RedisPublisher::new(&config).unwrap();
    let body = Bytes::from_static(br#"{"pattern":"Doji","symbol":"AAPL"}"#);
    let mut redis = redis_conn(&url).await;
    for _ in 0..20 {
        let batch = vec![("tickstock.events.patterns".to_owned(), body.clone()); 100];
        let results = publisher.publish_all(batch).await;
        assert!(results.iter().all(Result::is_ok), "{results:?}");
        let len: u64 = redis::cmd("XLEN")
            .arg(&stream)
            .query_async(&mut redis)
            .await
            .unwrap();
        // `~` trims whole radix-tree nodes (100 entries by default): never
        // below the bound, at most a node above it.
        assert!(len <= 200 + 100, "XLEN {len}");
    }
    let len: u64 = redis::cmd("XLEN")
        .arg(&stream)
        .query_async(&mut redis)
        .await
        .unwrap();
    assert!(len >= 200, "XLEN {len}");
    let _: usize = redis::cmd("DEL")
        .arg(&stream)
        .query_async(&mut redis)
        .await
        .unwrap();
}
