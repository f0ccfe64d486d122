//! The server with broker ingest, end to end through real sockets and real
//! brokers: events published into Redis (pub/sub, Streams) reach WebSocket
//! clients; malformed ones are counted per source and reason in
//! `/api/stats` and `/metrics`; `POST /api/publish` goes through the
//! broker; `/ready` follows the broker's connection.
//!
//! Brokers come from `scripts/brokers.sh start` (shared) or are private to
//! a test (tickcast-testkit); without them a test skips, except under
//! `CI=true`, where it fails.

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use bytes::Bytes;
use futures_util::SinkExt;
use serde_json::{json, Value};
use tickcast::config::RedisMode;
use tickcast::Config;
use tickcast_core::ingest::{BodyDecoder, BrokerPublisher};
use tickcast_ingest_redis::{RedisConfig, RedisPublisher};
use tickcast_testkit::{bad_events, good_events, RedisServer};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use common::{redis_config, test_config, TestServer};
use tickcast_testkit::ws::next_json;

type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// Good fixture events sent per test (enough to interleave every bad one).
const GOOD: usize = 300;

/// A WebSocket client subscribed to everything.
async fn subscriber(server: &TestServer, since: Option<&str>) -> Ws {
    let url = format!("ws://{}/ws", server.addr());
    let (mut ws, _) = tokio_tungstenite::connect_async(url)
        .await
        .expect("ws connects");
    assert_eq!(next_json(&mut ws).await["type"], "welcome");
    let mut op = json!({"op": "subscribe", "id": "all", "filter": {}});
    if let Some(since) = since {
        op["since"] = json!(since);
    }
    ws.send(Message::text(op.to_string())).await.unwrap();
    assert_eq!(next_json(&mut ws).await["type"], "subscribed");
    ws
}

/// Reads until `n` events arrived; each as (offset, data).
async fn events(ws: &mut Ws, n: usize) -> Vec<(String, Value)> {
    let mut seen = Vec::new();
    while seen.len() < n {
        let frame = next_json(ws).await;
        let items = match frame["type"].as_str() {
            Some("event") => vec![frame],
            Some("batch") => frame["events"].as_array().cloned().unwrap_or_default(),
            _ => continue,
        };
        for item in items {
            seen.push((
                item["offset"].as_str().unwrap().to_owned(),
                item["data"].clone(),
            ));
        }
    }
    seen
}

/// The good fixtures (first [`GOOD`]) with every bad one in between:
/// `(channel, body)`, and the expected rejections by reason.
fn mixed_traffic() -> (Vec<(String, Bytes)>, usize, BTreeMap<String, u64>) {
    let good: Vec<_> = good_events().into_iter().take(GOOD).collect();
    let bad = bad_events();
    let mut expected = BTreeMap::new();
    let mut items = Vec::new();
    let stride = GOOD / bad.len().max(1);
    let mut bad = bad.into_iter();
    for (i, event) in good.iter().enumerate() {
        items.push((event.channel.clone(), Bytes::from(event.raw.clone())));
        if i % stride == 0 {
            if let Some(b) = bad.next() {
                let error = BodyDecoder::new(1 << 20)
                    .decode(Bytes::from(b.raw.clone()), Some(&b.channel))
                    .expect_err(&b.why);
                *expected.entry(error.reason().to_owned()).or_default() += 1;
                items.push((b.channel, Bytes::from(b.raw)));
            }
        }
    }
    (items, good.len(), expected)
}

fn source<'a>(stats: &'a Value, name: &str) -> &'a Value {
    stats["ingest"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == name)
        .unwrap_or_else(|| panic!("no source {name} in {stats}"))
}

/// Good events delivered, bad ones counted in stats and metrics.
async fn check_mixed_traffic(server: &TestServer, publisher: &dyn BrokerPublisher, name: &str) {
    let mut ws = subscriber(server, None).await;
    let (items, good, expected) = mixed_traffic();
    for result in publisher.publish_all(items).await {
        result.expect("published into the broker");
    }
    // Private events (with `user_id`) go to their user only, not to this
    // anonymous client.
    let sent: Vec<Value> = good_events()
        .into_iter()
        .take(GOOD)
        .filter(|e| !e.is_private())
        .map(|e| e.body)
        .collect();
    let seen = events(&mut ws, sent.len()).await;
    let mut got: Vec<Value> = seen.into_iter().map(|(_, data)| data).collect();
    let key = |v: &Value| v.to_string();
    got.sort_by_key(key);
    let mut sent_sorted = sent;
    sent_sorted.sort_by_key(key);
    assert_eq!(got, sent_sorted, "every good event, once, as published");

    // Rejections are counted once the source has read past them.
    let mut stats = server.stats().await;
    for _ in 0..100 {
        if source(&stats, name)["rejected_total"] == expected.values().sum::<u64>() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
        stats = server.stats().await;
    }
    let rejected: BTreeMap<String, u64> =
        serde_json::from_value(source(&stats, name)["rejected"].clone()).unwrap();
    assert_eq!(rejected, expected);
    assert_eq!(source(&stats, name)["accepted"], good);
    let metrics = server.get("/metrics").await.text();
    for (reason, n) in &expected {
        let line =
            format!("tickcast_ingest_rejected_total{{source=\"{name}\",reason=\"{reason}\"}} {n}");
        assert!(
            metrics
                .lines()
                .any(|l| l.ends_with(&line[line.find('{').unwrap()..]) || l == line),
            "missing `{line}` in /metrics"
        );
    }
}

fn publisher_for(
    url: &str,
    mode: tickcast_ingest_redis::RedisMode,
    stream: &str,
) -> RedisPublisher {
    RedisPublisher::new(&RedisConfig {
        url: url.to_owned(),
        mode,
        stream: stream.to_owned(),
        ..RedisConfig::default()
    })
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_pubsub_events_reach_clients_and_bad_ones_are_counted() {
    // Private: pub/sub channels are global, and these are the real names.
    let redis = RedisServer::start();
    let server = TestServer::start(redis_config(&redis.url(), RedisMode::PubSub, "unused")).await;
    server.wait_ready().await;
    let publisher = publisher_for(&redis.url(), tickcast_ingest_redis::RedisMode::PubSub, "");
    check_mixed_traffic(&server, &publisher, "redis").await;
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_streams_events_reach_clients_and_bad_ones_are_counted() {
    let redis = RedisServer::start();
    let stream = "tickcast-test:mixed";
    let server = TestServer::start(redis_config(&redis.url(), RedisMode::Streams, stream)).await;
    server.wait_ready().await;
    let publisher = publisher_for(
        &redis.url(),
        tickcast_ingest_redis::RedisMode::Streams,
        stream,
    );
    check_mixed_traffic(&server, &publisher, "redis").await;
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_publish_goes_through_the_stream_and_any_node_can_resume() {
    let redis = RedisServer::start();
    let stream = "tickcast-test:nodes";
    let mut config_a = redis_config(&redis.url(), RedisMode::Streams, stream);
    config_a.node_id = "node-a".into();
    let a = TestServer::start(config_a).await;
    a.wait_ready().await;
    let mut ws_a = subscriber(&a, None).await;

    let body = json!([
        {"pattern": "Doji", "symbol": "AAPL", "confidence": 0.7, "tier": "daily"},
        {"pattern": "Doji", "symbol": "MSFT", "confidence": 0.7, "tier": "daily"},
        {"pattern": "Doji", "symbol": "NVDA", "confidence": 0.7, "tier": "daily"}
    ]);
    let answer = a.post("/api/publish", body.to_string()).await;
    assert_eq!(answer.status, 202, "{}", answer.text());
    let offsets: Vec<String> = serde_json::from_value(answer.json()["offsets"].clone()).unwrap();
    assert_eq!(offsets.len(), 3, "XADD ids are the offsets");
    let seen: Vec<String> = events(&mut ws_a, 3)
        .await
        .into_iter()
        .map(|(o, _)| o)
        .collect();
    assert_eq!(seen, offsets, "clients see the stream ids");

    // A second node (its own consumer group) loads the stream into its
    // history at start: a client resumes there from the first id.
    let mut config_b = redis_config(&redis.url(), RedisMode::Streams, stream);
    config_b.node_id = "node-b".into();
    let b = TestServer::start(config_b).await;
    b.wait_ready().await;
    let mut ws_b = subscriber(&b, Some(&offsets[0])).await;
    let resumed: Vec<String> = events(&mut ws_b, 2)
        .await
        .into_iter()
        .map(|(o, _)| o)
        .collect();
    assert_eq!(resumed, offsets[1..]);
    // And both nodes deliver what is published next, through either.
    let answer = b
        .post(
            "/api/publish",
            json!({"pattern": "Doji", "symbol": "AMD", "confidence": 0.7, "tier": "daily"})
                .to_string(),
        )
        .await;
    assert_eq!(answer.status, 202, "{}", answer.text());
    let next = answer.json()["offsets"][0].as_str().unwrap().to_owned();
    assert_eq!(events(&mut ws_a, 1).await[0].0, next);
    assert_eq!(events(&mut ws_b, 1).await[0].0, next);
    a.stop().await;
    b.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_broker_makes_the_node_unready_and_publishes_fail_503() {
    let mut redis = RedisServer::start();
    let server = TestServer::start(redis_config(&redis.url(), RedisMode::PubSub, "")).await;
    server.wait_ready().await;
    redis.kill();
    let mut answer = server.get("/ready").await;
    for _ in 0..200 {
        if answer.status == 503 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
        answer = server.get("/ready").await;
    }
    assert_eq!(answer.status, 503, "{}", answer.text());
    let publish = server
        .post(
            "/api/publish",
            json!({"pattern": "Doji", "symbol": "AAPL"}).to_string(),
        )
        .await;
    assert_eq!(publish.status, 503, "{}", publish.text());
    assert_eq!(publish.json()["errors"][0]["reason"], "broker_unavailable");

    // Back again: ready, and events flow.
    redis.restart();
    server.wait_ready().await;
    let mut ws = subscriber(&server, None).await;
    let mut delivered = false;
    for _ in 0..50 {
        let answer = server
            .post(
                "/api/publish",
                json!({"pattern": "Doji", "symbol": "AAPL"}).to_string(),
            )
            .await;
        if answer.status == 202 {
            delivered = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(delivered, "publishing works again after Redis is back");
    assert_eq!(events(&mut ws, 1).await[0].1["symbol"], "AAPL");
    server.stop().await;
}

/// `[ingest.amqp]` on the shared RabbitMQ, with names of this test only.
fn amqp_config(url: &str, test: &str) -> (Config, tickcast_ingest_amqp::AmqpConfig) {
    let unique = format!(
        "{test}-{}",
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos())
    );
    let section = tickcast::config::AmqpIngest {
        url: url.to_owned(),
        exchange: format!("tickcast-test.{unique}"),
        queue: Some(format!("tickcast-test.{unique}.node")),
        dead_letter_exchange: format!("tickcast-test.{unique}.dlx"),
        ..Default::default()
    };
    let publisher = tickcast_ingest_amqp::AmqpConfig {
        url: url.to_owned(),
        exchange: section.exchange.clone(),
        ..tickcast_ingest_amqp::AmqpConfig::default()
    };
    let mut config = test_config();
    config.delivery.rate_limit_per_user = 0;
    config.delivery.queue_capacity = 100_000;
    config.ingest.amqp = Some(section);
    (config, publisher)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn amqp_events_reach_clients_and_bad_ones_are_counted() {
    let Some(url) = tickcast_testkit::amqp_url() else {
        return;
    };
    let (config, publisher) = amqp_config(&url, "mixed");
    let server = TestServer::start(config).await;
    server.wait_ready().await;
    let publisher = tickcast_ingest_amqp::AmqpPublisher::new(&publisher).unwrap();
    check_mixed_traffic(&server, &publisher, "amqp").await;
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_publish_goes_through_rabbitmq() {
    let Some(url) = tickcast_testkit::amqp_url() else {
        return;
    };
    let (config, _) = amqp_config(&url, "http");
    let server = TestServer::start(config).await;
    server.wait_ready().await;
    let mut ws = subscriber(&server, None).await;
    let answer = server
        .post(
            "/api/publish?channel=tickstock.events.backtesting.progress",
            json!({"job": 7, "progress": 0.5}).to_string(),
        )
        .await;
    assert_eq!(answer.status, 202, "{}", answer.text());
    assert_eq!(
        answer.json()["offsets"],
        json!([]),
        "offsets come on receipt"
    );
    let frame = loop {
        let frame = next_json(&mut ws).await;
        if frame["type"] == "event" || frame["type"] == "batch" {
            break frame;
        }
    };
    let event = if frame["type"] == "batch" {
        frame["events"][0].clone()
    } else {
        frame
    };
    assert_eq!(
        event["event_type"], "backtest_progress",
        "the routing key gives the type"
    );
    assert_eq!(event["data"]["job"], 7);
    let stats = server.stats().await;
    assert_eq!(source(&stats, "amqp")["accepted"], 1);
    server.stop().await;
}
