//! What an answer of `POST /api/publish` promises, through real brokers
//! (issue 14): a 202 means some node receives the event, and a producer
//! that retries (after a 503, or twice by mistake) with the same
//! idempotency key has its event delivered once.
//!
//! Brokers come from `scripts/brokers.sh start` (shared) or are private to
//! a test (tickcast-testkit); without them a test skips, except under
//! `CI=true`, where it fails.

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use futures_util::SinkExt;
use serde_json::{json, Value};
use tickcast::config::RedisMode;
use tickcast_core::model::Offset;
use tickcast_testkit::RedisServer;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use common::{redis_config, test_config, TestServer};
use tickcast_testkit::ws::next_json;

type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// A WebSocket client subscribed to everything.
async fn subscriber(server: &TestServer) -> Ws {
    let url = format!("ws://{}/ws", server.addr());
    let (mut ws, _) = tokio_tungstenite::connect_async(url)
        .await
        .expect("ws connects");
    assert_eq!(next_json(&mut ws).await["type"], "welcome");
    let op = json!({"op": "subscribe", "id": "all", "filter": {}});
    ws.send(Message::text(op.to_string())).await.unwrap();
    assert_eq!(next_json(&mut ws).await["type"], "subscribed");
    ws
}

/// The events that arrive until nothing more comes for `idle`, as data.
async fn events_until_idle(ws: &mut Ws, idle: Duration) -> Vec<Value> {
    let mut seen = Vec::new();
    while let Ok(frame) = tokio::time::timeout(idle, next_json(ws)).await {
        match frame["type"].as_str() {
            Some("event") => seen.push(frame["data"].clone()),
            Some("batch") => seen.extend(
                frame["events"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|e| e["data"].clone()),
            ),
            _ => {}
        }
    }
    seen
}

/// How often each `event_id` arrived.
fn counts(events: &[Value]) -> BTreeMap<String, usize> {
    let mut counts = BTreeMap::new();
    for event in events {
        let id = event["event_id"].as_str().unwrap_or("").to_owned();
        *counts.entry(id).or_default() += 1;
    }
    counts
}

fn event(id: &str) -> Value {
    json!({"pattern": "Doji", "symbol": "AAPL", "confidence": 0.7, "tier": "daily", "event_id": id})
}

/// Pub/sub: a channel no node subscribes to answers 503 `no_receiver`,
/// not 202.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pubsub_publish_no_node_receives_is_503_no_receiver() {
    let Some(url) = tickcast_testkit::redis_url() else {
        return;
    };
    let mut config = redis_config(&url, RedisMode::PubSub, "");
    config.ingest.redis.as_mut().unwrap().channels = vec!["tickstock.health.status".into()];
    let server = TestServer::start(config).await;
    server.wait_ready().await;
    let answer = server
        .post("/api/publish", event("nobody").to_string())
        .await;
    assert_eq!(answer.status, 503, "{}", answer.text());
    let body = answer.json();
    assert_eq!(body["accepted"], 0);
    assert_eq!(body["errors"][0]["reason"], "no_receiver");
    assert!(
        body["errors"][0]["error"]
            .as_str()
            .unwrap()
            .contains("tickstock.events.patterns"),
        "{body}"
    );
    // A channel the node hears: 202.
    let answer = server
        .post(
            "/api/publish",
            json!({"event_type": "system_health", "status": "ok"}).to_string(),
        )
        .await;
    assert_eq!(answer.status, 202, "{}", answer.text());
    server.stop().await;
}

/// Pub/sub through a Redis restart: whatever the node answered 202 while
/// it resubscribed reaches its client (before, ~1.3 s of publishes were
/// answered 202 and lost).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pubsub_every_202_through_a_redis_restart_is_delivered() {
    let mut redis = RedisServer::start();
    let server = TestServer::start(redis_config(&redis.url(), RedisMode::PubSub, "")).await;
    server.wait_ready().await;
    let mut ws = subscriber(&server).await;

    redis.kill();
    redis.restart();
    let mut answered_202 = Vec::new();
    let mut other = 0;
    for n in 0..400 {
        let id = format!("r{n}");
        let answer = server.post("/api/publish", event(&id).to_string()).await;
        match answer.status {
            202 => answered_202.push(id),
            503 => other += 1,
            status => panic!("{status}: {}", answer.text()),
        }
        if answered_202.len() >= 20 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert!(answered_202.len() >= 20, "publishing never recovered");
    let seen = counts(&events_until_idle(&mut ws, Duration::from_secs(2)).await);
    for id in &answered_202 {
        assert_eq!(
            seen.get(id),
            Some(&1),
            "{id} answered 202, delivered {seen:?}"
        );
    }
    eprintln!("{other} publishes answered 503 while the node resubscribed");
    server.stop().await;
}

/// Posts `body` until it is answered 202 (a producer retrying on 503),
/// with `key` as `Idempotency-Key` when given; the answer's JSON.
async fn publish_until_accepted(server: &TestServer, body: &Value, key: Option<&str>) -> Value {
    for _ in 0..400 {
        let answer = match key {
            Some(key) => post_keyed(server, body, key).await,
            None => server.post("/api/publish", body.to_string()).await,
        };
        match answer.status {
            202 => return answer.json(),
            503 => tokio::time::sleep(Duration::from_millis(10)).await,
            status => panic!("{status}: {}", answer.text()),
        }
    }
    panic!("never accepted");
}

async fn post_keyed(server: &TestServer, body: &Value, key: &str) -> common::Answer {
    common::request(
        server.addr(),
        "POST",
        "/api/publish",
        &[("idempotency-key", key)],
        body.to_string().into_bytes(),
    )
    .await
}

/// Every event published twice with one key (in the body, and with
/// `header_keys` also beside it) reaches the client once. Returns the
/// first answer.
async fn check_published_twice_arrives_once(server: &TestServer, header_keys: bool) -> Value {
    let mut ws = subscriber(server).await;
    let mut expected = Vec::new();
    let mut first = None;
    for n in 0..10 {
        let id = format!("twice-{n}");
        let answer = publish_until_accepted(server, &event(&id), None).await;
        first.get_or_insert(answer);
        publish_until_accepted(server, &event(&id), None).await;
        expected.push(id);
        if header_keys {
            let key = format!("header-{n}");
            let body = json!({"pattern": "Doji", "symbol": "MSFT", "n": n});
            publish_until_accepted(server, &body, Some(&key)).await;
            publish_until_accepted(server, &body, Some(&key)).await;
        }
    }
    let events = events_until_idle(&mut ws, Duration::from_secs(2)).await;
    let seen = counts(&events);
    for id in &expected {
        assert_eq!(seen.get(id), Some(&1), "{id}: {seen:?}");
    }
    let keyless = events.iter().filter(|e| e["symbol"] == "MSFT").count();
    assert_eq!(keyless, if header_keys { 10 } else { 0 });
    first.unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn embedded_publish_twice_arrives_once_and_answers_the_first_offset() {
    let mut config = test_config();
    config.delivery.rate_limit_per_user = 0;
    let server = TestServer::start(config).await;
    let first = publish_until_accepted(&server, &event("once"), None).await;
    let second = publish_until_accepted(&server, &event("once"), None).await;
    assert_eq!(second["offsets"], first["offsets"], "{second}");
    assert_eq!(second["duplicates"], 1);
    assert_eq!(first.get("duplicates"), None);
    check_published_twice_arrives_once(&server, true).await;

    // The header names one event, agrees with its event_id, and is sane.
    let answer = post_keyed(&server, &json!([event("a"), event("b")]), "k").await;
    assert_eq!(answer.status, 400);
    assert_eq!(answer.json()["error"], "idempotency_key_with_array");
    let answer = post_keyed(&server, &event("a"), "b").await;
    assert_eq!(answer.status, 400);
    assert_eq!(answer.json()["error"], "idempotency_key_mismatch");
    let answer = post_keyed(&server, &event("a"), &"k".repeat(256)).await;
    assert_eq!(answer.status, 400);
    assert_eq!(answer.json()["error"], "bad_idempotency_key");
    let stats = server.stats().await;
    assert_eq!(common::http_source(&stats)["duplicates"], 21);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pubsub_publish_twice_arrives_once_and_the_header_needs_event_id() {
    let Some(url) = tickcast_testkit::redis_url() else {
        return;
    };
    let server = TestServer::start(redis_config(&url, RedisMode::PubSub, "")).await;
    server.wait_ready().await;
    check_published_twice_arrives_once(&server, false).await;
    let answer = post_keyed(&server, &json!({"pattern": "Doji", "symbol": "A"}), "k").await;
    assert_eq!(answer.status, 400, "{}", answer.text());
    assert_eq!(answer.json()["error"], "idempotency_key_unsupported");
    // The header may repeat the body's own event_id.
    let answer = post_keyed(&server, &event("same"), "same").await;
    assert_eq!(answer.status, 202, "{}", answer.text());
    server.stop().await;
}

/// Pub/sub through a Redis restart, with a producer that retries each
/// event on 503 until it is answered 202: each arrives exactly once (a 503
/// for a PUBLISH whose answer was lost may have been delivered).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pubsub_retries_after_503_through_a_redis_restart_arrive_once() {
    let mut redis = RedisServer::start();
    let server = TestServer::start(redis_config(&redis.url(), RedisMode::PubSub, "")).await;
    server.wait_ready().await;
    let mut ws = subscriber(&server).await;
    redis.kill();
    redis.restart();
    let ids: Vec<String> = (0..30).map(|n| format!("retry-{n}")).collect();
    for id in &ids {
        publish_until_accepted(&server, &event(id), None).await;
    }
    let seen = counts(&events_until_idle(&mut ws, Duration::from_secs(2)).await);
    for id in &ids {
        assert_eq!(seen.get(id), Some(&1), "{id}: {seen:?}");
    }
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streams_publish_twice_arrives_once_on_every_node() {
    let Some(url) = tickcast_testkit::redis_url() else {
        return;
    };
    let stream = format!(
        "tickcast-test:dedup-{}",
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos())
    );
    let mut config = redis_config(&url, RedisMode::Streams, &stream);
    config.node_id = "dedup-a".into();
    let a = TestServer::start(config).await;
    a.wait_ready().await;
    let first = check_published_twice_arrives_once(&a, true).await;
    let first: Offset = first["offsets"][0].as_str().unwrap().parse().unwrap();
    // A node started later loads the stream (both copies of each) into its
    // history: a client replaying all of it gets each event once too.
    let mut config = redis_config(&url, RedisMode::Streams, &stream);
    config.node_id = "dedup-b".into();
    let b = TestServer::start(config).await;
    b.wait_ready().await;
    let url = format!("ws://{}/ws", b.addr());
    let (mut ws, _) = tokio_tungstenite::connect_async(url).await.unwrap();
    let welcome = next_json(&mut ws).await;
    assert_eq!(welcome["type"], "welcome");
    let since = first.predecessor().to_string();
    let op = json!({"op": "subscribe", "id": "all", "filter": {}, "since": since});
    ws.send(Message::text(op.to_string())).await.unwrap();
    let events = events_until_idle(&mut ws, Duration::from_secs(2)).await;
    assert_eq!(events.len(), 20, "{events:?}");
    a.stop().await;
    b.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn amqp_publish_twice_arrives_once() {
    let Some(url) = tickcast_testkit::amqp_url() else {
        return;
    };
    let unique = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let section = tickcast::config::AmqpIngest {
        url: url.clone(),
        exchange: format!("tickcast-test.dedup-{unique}"),
        queue: Some(format!("tickcast-test.dedup-{unique}.node")),
        dead_letter_exchange: format!("tickcast-test.dedup-{unique}.dlx"),
        ..Default::default()
    };
    let mut config = test_config();
    config.delivery.rate_limit_per_user = 0;
    config.ingest.amqp = Some(section);
    let server = TestServer::start(config).await;
    server.wait_ready().await;
    check_published_twice_arrives_once(&server, true).await;
    server.stop().await;
}
