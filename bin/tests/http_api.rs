//! The HTTP API of the real server, over real sockets: publish (one, array,
//! mixed, every bad fixture, limits, auth), health, ready, metrics, stats,
//! JSON errors.

mod common;

use std::collections::BTreeMap;

use bytes::Bytes;
use common::{http_source, request, test_config, TestServer};
use serde_json::{json, Value};
use tickcast_core::broadcast::Outbound;
use tickcast_core::model::{Event, Filter, Offset};
use tickcast_testkit::{bad_events, good_events};

const AAPL: &str = r#"{"source":"TickStockPL","timestamp":1732460000.123,"pattern":"BreakoutBO","symbol":"AAPL","confidence":0.95,"tier":"daily","detection_timestamp":1732459999.9,"metadata":{}}"#;
const MSFT: &str = r#"{"pattern":"Doji","symbol":"msft","confidence":0.7,"tier":"intraday"}"#;
const NO_SYMBOL: &str = r#"{"pattern":"Doji","confidence":0.7,"tier":"daily"}"#;

fn offsets(answer: &Value) -> Vec<Offset> {
    answer["offsets"]
        .as_array()
        .expect("offsets is a list")
        .iter()
        .map(|o| o.as_str().expect("offset string").parse().expect("offset"))
        .collect()
}

#[tokio::test]
async fn publishing_one_event_answers_202_with_its_offset() {
    let server = TestServer::start(test_config()).await;
    let answer = server.post("/api/publish", AAPL).await;
    assert_eq!(answer.status, 202, "{}", answer.text());
    let body = answer.json();
    assert_eq!(body["accepted"], 1);
    assert_eq!(offsets(&body).len(), 1);
    assert!(body.get("errors").is_none(), "{body}");
    assert_eq!(
        body.as_object().map(|o| o.len()),
        Some(2),
        "exactly accepted and offsets: {body}"
    );

    let stats = server.stats().await;
    assert_eq!(stats["published"], 1);
    assert_eq!(http_source(&stats)["accepted"], 1);
    server.stop().await;
}

#[tokio::test]
async fn publishing_an_array_publishes_every_fixture_in_order() {
    let server = TestServer::start(test_config()).await;
    // One request, one channel: the pattern events (90 % of the fixture).
    let channel = "tickstock.events.patterns";
    let events: Vec<_> = good_events()
        .into_iter()
        .filter(|e| e.channel == channel)
        .take(500)
        .collect();
    assert_eq!(events.len(), 500, "the fixture holds 4,500 pattern events");
    let mut body = b"[".to_vec();
    for (i, event) in events.iter().enumerate() {
        if i > 0 {
            body.extend_from_slice(b",\n ");
        }
        body.extend_from_slice(&event.raw);
    }
    body.push(b']');

    let answer = server
        .post(&format!("/api/publish?channel={channel}"), body)
        .await;
    assert_eq!(answer.status, 202, "{}", answer.text());
    let reply = answer.json();
    assert_eq!(reply["accepted"], 500);
    let offsets = offsets(&reply);
    assert_eq!(offsets.len(), 500);
    assert!(offsets.windows(2).all(|w| w[0] < w[1]), "offsets increase");
    let stats = server.stats().await;
    assert_eq!(stats["published"], 500);
    assert_eq!(stats["latest_offset"], reply["offsets"][499]);
    server.stop().await;
}

#[tokio::test]
async fn a_mixed_array_publishes_the_good_and_reports_the_bad() {
    let server = TestServer::start(test_config()).await;
    let body = format!("[{AAPL}, {NO_SYMBOL}, {MSFT}, 17]");
    let answer = server.post("/api/publish", body).await;
    assert_eq!(answer.status, 400, "{}", answer.text());
    let reply = answer.json();
    assert_eq!(reply["accepted"], 2);
    assert_eq!(offsets(&reply).len(), 2);
    let errors = reply["errors"].as_array().expect("errors");
    assert_eq!(errors.len(), 2, "{reply}");
    assert_eq!(errors[0]["index"], 1);
    assert_eq!(errors[0]["reason"], "missing_field");
    assert!(errors[0]["error"].as_str().unwrap().contains("symbol"));
    assert_eq!(errors[1]["index"], 3);
    assert_eq!(errors[1]["reason"], "not_an_object");

    let stats = server.stats().await;
    assert_eq!(stats["published"], 2);
    let http = http_source(&stats);
    assert_eq!(http["accepted"], 2);
    assert_eq!(http["rejected"]["missing_field"], 1);
    assert_eq!(http["rejected"]["not_an_object"], 1);
    assert_eq!(http["rejected_total"], 2);
    server.stop().await;
}

#[tokio::test]
async fn the_channel_gives_the_event_type() {
    let server = TestServer::start(test_config()).await;
    let health = r#"{"status":"ok","component":"detector"}"#;
    // Without a channel the event is a pattern event, which needs a symbol.
    let answer = server.post("/api/publish", health).await;
    assert_eq!(answer.status, 400, "{}", answer.text());
    assert_eq!(answer.json()["errors"][0]["reason"], "missing_field");
    let answer = server
        .post("/api/publish?channel=tickstock.health.status", health)
        .await;
    assert_eq!(answer.status, 202, "{}", answer.text());
    server.stop().await;
}

#[tokio::test]
async fn subscribers_receive_each_item_exactly_as_published() {
    let server = TestServer::start(test_config()).await;
    let hub = server.server.hub().clone();
    let mut conn = hub.connect(None, hub.default_limits()).expect("connect");
    let filter: Filter = serde_json::from_str(r#"{"symbols":["AAPL"]}"#).unwrap();
    conn.handle
        .subscribe("s1", filter, None)
        .expect("subscribe");

    let item = r#"{ "symbol" : "aapl",  "pattern":"P", "x": 1.50, "tier":"daily" }"#;
    let answer = server
        .post("/api/publish", format!("[{MSFT},\n  {item} ]"))
        .await;
    assert_eq!(answer.status, 202, "{}", answer.text());

    let frame = tokio::time::timeout(common::STEP, async {
        loop {
            match conn.frames.recv().await {
                Some(Outbound::Event(frame)) => return frame,
                Some(Outbound::Batch(mut frames)) if !frames.is_empty() => return frames.remove(0),
                Some(_) => continue,
                None => panic!("connection closed"),
            }
        }
    })
    .await
    .expect("event delivered");
    let text = String::from_utf8(frame.to_json().to_vec()).unwrap();
    assert!(text.contains(&format!(r#""data":{item}"#)), "{text}");
    // A transport drops its connection once the client is gone; the drain
    // on shutdown waits for that.
    drop(conn);
    server.stop().await;
}

#[tokio::test]
async fn every_bad_fixture_is_refused_and_counted_under_its_reason() {
    let server = TestServer::start(test_config()).await;
    let max = test_config().limits.max_publish_bytes;
    let bad = bad_events();
    assert!(bad.len() >= 10, "the fixture holds one of each rule");
    let mut expected: BTreeMap<String, u64> = BTreeMap::new();
    for event in &bad {
        assert!(
            event
                .channel
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'.'),
            "channel needs no escaping"
        );
        // What the engine says about these bytes is what HTTP must count.
        let reason =
            match Event::from_json(Bytes::from(event.raw.clone()), Some(&event.channel), max) {
                Ok(_) => panic!("fixture {:?} decodes", event.why),
                Err(error) => error.reason().to_owned(),
            };
        let path = format!("/api/publish?channel={}", event.channel);
        let answer = server.post(&path, event.raw.clone()).await;
        let body = answer.json();
        if reason == "too_large" {
            assert_eq!(answer.status, 413, "{}: {body}", event.why);
            assert_eq!(body["error"], "too_large", "{}: {body}", event.why);
            *expected.entry(reason.to_owned()).or_default() += 1;
            continue;
        }
        assert_eq!(answer.status, 400, "{}: {body}", event.why);
        assert_eq!(body["accepted"], 0, "{}: {body}", event.why);
        let errors = body["errors"].as_array().expect("errors");
        assert!(!errors.is_empty(), "{}: {body}", event.why);
        for error in errors {
            assert_eq!(error["reason"], reason, "{}: {body}", event.why);
            *expected.entry(reason.to_owned()).or_default() += 1;
        }
    }
    assert!(
        expected.len() >= 9,
        "the fixtures break many different rules: {expected:?}"
    );

    let stats = server.stats().await;
    assert_eq!(stats["published"], 0);
    let http = http_source(&stats);
    let counted: BTreeMap<String, u64> =
        serde_json::from_value(http["rejected"].clone()).expect("rejected by reason");
    assert_eq!(counted, expected);
    assert_eq!(http["rejected_total"], expected.values().sum::<u64>());

    // ... and the server goes on publishing.
    let answer = server.post("/api/publish", AAPL).await;
    assert_eq!(answer.status, 202, "{}", answer.text());
    server.stop().await;
}

#[tokio::test]
async fn whole_body_errors_are_json() {
    let mut config = test_config();
    config.limits.max_publish_bytes = 1000;
    let server = TestServer::start(config).await;

    let answer = server.post("/api/publish", vec![b' '; 1001]).await;
    assert_eq!(answer.status, 413);
    assert_eq!(answer.json()["error"], "too_large");

    let answer = server.post("/api/publish", "[{\"symbol\":").await;
    assert_eq!(answer.status, 400);
    assert_eq!(answer.json()["error"], "not_json");

    let answer = server.post("/api/publish", "{not json").await;
    assert_eq!(answer.status, 400);
    assert_eq!(answer.json()["errors"][0]["reason"], "not_json");

    // A chunked body has no content-length: the limit still holds.
    let head = "POST /api/publish HTTP/1.1\r\nhost: test\r\ncontent-type: application/json\r\ntransfer-encoding: chunked\r\nconnection: close\r\n\r\n";
    let chunk = format!("800\r\n{}\r\n0\r\n\r\n", "x".repeat(0x800));
    let response = common::raw_exchange(server.addr(), format!("{head}{chunk}").as_bytes()).await;
    assert!(response.starts_with("HTTP/1.1 413"), "{response}");
    assert!(response.contains(r#""error":"too_large""#), "{response}");

    let stats = server.stats().await;
    let http = http_source(&stats);
    assert_eq!(http["rejected"]["too_large"], 2);
    assert_eq!(http["rejected"]["not_json"], 2);
    server.stop().await;
}

#[tokio::test]
async fn unknown_routes_and_methods_get_json_errors() {
    let server = TestServer::start(test_config()).await;
    let answer = server.get("/nope").await;
    assert_eq!(answer.status, 404);
    assert_eq!(answer.json()["error"], "not_found");

    let answer = server.get("/api/publish").await;
    assert_eq!(answer.status, 405);
    assert_eq!(answer.json()["error"], "method_not_allowed");

    let answer = server.post("/health", "").await;
    assert_eq!(answer.status, 405);
    assert!(answer.header("content-type").unwrap().contains("json"));

    let answer = server.post("/api/publish?channel=a&channel=b", AAPL).await;
    assert_eq!(answer.status, 400, "{}", answer.text());
    assert_eq!(answer.json()["error"], "bad_query");
    server.stop().await;
}

#[tokio::test]
async fn the_api_key_is_required_when_configured() {
    let mut config = test_config();
    config.api.key = Some("s3cret-key".to_owned());
    let server = TestServer::start(config).await;
    let addr = server.addr();

    let answer = server.post("/api/publish", AAPL).await;
    assert_eq!(answer.status, 401);
    assert_eq!(answer.json()["error"], "unauthorized");
    assert_eq!(answer.header("www-authenticate"), Some("Bearer"));

    for wrong in [
        "Bearer nope",
        "Basic s3cret-key",
        "Bearer s3cret-ke",
        "s3cret-key",
    ] {
        let answer = request(
            addr,
            "POST",
            "/api/publish",
            &[("authorization", wrong)],
            AAPL.into(),
        )
        .await;
        assert_eq!(answer.status, 401, "{wrong}");
    }
    let answer = request(
        addr,
        "POST",
        "/api/publish",
        &[("authorization", "Bearer s3cret-key")],
        AAPL.into(),
    )
    .await;
    assert_eq!(answer.status, 202, "{}", answer.text());

    // Only publishing needs the key.
    assert_eq!(server.get("/health").await.status, 200);
    assert_eq!(server.get("/api/stats").await.status, 200);
    let stats = server.stats().await;
    assert_eq!(stats["published"], 1);
    server.stop().await;
}

#[tokio::test]
async fn health_and_ready() {
    let server = TestServer::start(test_config()).await;
    let answer = server.get("/health").await;
    assert_eq!(answer.status, 200);
    let health = answer.json();
    assert_eq!(health["status"], "ok");
    assert_eq!(health["node_id"], "test-node");

    let answer = server.get("/ready").await;
    assert_eq!(answer.status, 200, "{}", answer.text());
    assert_eq!(
        answer.json(),
        json!({"ready": true, "shutting_down": false,
               "sources": [{"name": "http", "connected": true}]})
    );

    server
        .server
        .hub()
        .register_source("redis")
        .set_connected(false);
    let answer = server.get("/ready").await;
    assert_eq!(answer.status, 503);
    let ready = answer.json();
    assert_eq!(ready["ready"], false);
    assert_eq!(
        ready["sources"][1],
        json!({"name": "redis", "connected": false})
    );
    server.stop().await;
}

#[tokio::test]
async fn a_configured_broker_is_reported_not_connected() {
    let mut config = test_config();
    config.ingest.amqp = Some(Default::default());
    let server = TestServer::start(config).await;
    let answer = server.get("/ready").await;
    assert_eq!(answer.status, 503, "{}", answer.text());
    let sources = answer.json()["sources"].clone();
    assert!(
        sources
            .as_array()
            .unwrap()
            .contains(&json!({"name": "amqp", "connected": false})),
        "{sources}"
    );
    // Publishes go through the broker, which is not there: 503, said why.
    let answer = server.post("/api/publish", AAPL).await;
    assert_eq!(answer.status, 503, "{}", answer.text());
    assert_eq!(answer.json()["errors"][0]["reason"], "broker_unavailable");
    server.stop().await;
}

#[tokio::test]
async fn stats_have_the_documented_shape() {
    let server = TestServer::start(test_config()).await;
    assert_eq!(server.post("/api/publish", AAPL).await.status, 202);
    let stats = server.stats().await;
    for key in [
        "connections",
        "users",
        "subscriptions",
        "published",
        "history_len",
        "latest_offset",
        "route_cache",
        "delivery",
        "latency",
        "ingest",
    ] {
        assert!(stats.get(key).is_some(), "{key} missing: {stats}");
    }
    assert_eq!(stats["history_len"], 1);
    for key in ["hits", "misses", "hit_rate"] {
        assert!(stats["route_cache"][key].is_number(), "{key}: {stats}");
    }
    for key in [
        "enqueued",
        "delivered",
        "replayed",
        "batches",
        "rate_limited",
        "conflated",
        "dropped_rate_limit",
        "dropped_low",
        "dropped_medium",
        "slow_consumer_closes",
    ] {
        assert!(stats["delivery"][key].is_u64(), "{key}: {stats}");
    }
    for layer in ["index", "route", "fanout", "publish", "queue"] {
        for key in ["count", "p50_us", "p90_us", "p99_us", "p999_us", "max_us"] {
            assert!(stats["latency"][layer][key].is_number(), "{layer}.{key}");
        }
    }
    assert_eq!(stats["latency"]["publish"]["count"], 1);
    let http = http_source(&stats);
    for key in [
        "name",
        "connected",
        "accepted",
        "duplicates",
        "rejected_total",
        "rejected",
        "errors",
        "lag",
    ] {
        assert!(http.get(key).is_some(), "{key}: {http}");
    }
    server.stop().await;
}

#[tokio::test]
async fn metrics_are_prometheus_text_with_every_name() {
    let server = TestServer::start(test_config()).await;
    assert_eq!(server.post("/api/publish", AAPL).await.status, 202);
    assert_eq!(server.post("/api/publish", NO_SYMBOL).await.status, 400);

    let answer = server.get("/metrics").await;
    assert_eq!(answer.status, 200);
    assert!(answer
        .header("content-type")
        .unwrap()
        .starts_with("text/plain; version=0.0.4"));
    let text = answer.text();
    for name in tickcast::metrics::METRIC_NAMES {
        assert!(
            text.lines().any(|l| l.starts_with(name)),
            "{name} missing from:\n{text}"
        );
    }
    assert!(text.contains("tickcast_published_events_total 1"), "{text}");
    assert!(
        text.contains(r#"tickcast_ingest_rejected_total{source="http",reason="missing_field"} 1"#),
        "{text}"
    );
    assert!(
        text.contains(r#"tickcast_ingest_accepted_total{source="http"} 1"#),
        "{text}"
    );
    assert!(
        text.contains(r#"tickcast_latency_seconds{layer="publish",quantile="0.99"}"#),
        "{text}"
    );
    assert!(
        text.contains("# TYPE tickcast_published_events_total counter"),
        "{text}"
    );

    // A second scrape sees the new values, not a stale copy.
    assert_eq!(server.post("/api/publish", MSFT).await.status, 202);
    let text = server.get("/metrics").await.text();
    assert!(text.contains("tickcast_published_events_total 2"), "{text}");
    server.stop().await;
}
