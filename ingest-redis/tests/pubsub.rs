//! Pub/sub mode against a real Redis: fixtures in, frames out.

mod common;

use common::*;
use tickcast_core::hub::OffsetMode;
use tickcast_ingest_redis::RedisMode;
use tickcast_testkit::fixtures::bad_events;

/// Good fixtures interleaved with every bad one, through PUBLISH: every
/// good event arrives in order, every bad one is counted under its reason.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn good_events_arrive_in_order_and_bad_ones_are_counted() {
    // A private server: pub/sub channels are global, and these are the
    // real channel names other tests may publish on.
    let Some(server) = private_redis() else {
        return;
    };
    let hub = hub(OffsetMode::Node);
    let mut conn = client(&hub, None);
    let task = start(&hub, source_config(&server.url(), RedisMode::PubSub)).await;

    let good = first_good_events(300);
    let bad = bad_events();
    let mut redis = redis_conn(&server.url()).await;
    for (i, event) in good.iter().enumerate() {
        publish(&mut redis, &event.channel, &event.raw).await;
        if let Some(bad) = bad.get(i) {
            publish(&mut redis, &bad.channel, &bad.raw).await;
        }
    }

    let public: Vec<_> = good.iter().filter(|g| !g.is_private()).collect();
    let events = by_offset(collect(&mut conn.frames, public.len()).await);
    assert_eq!(events.len(), public.len(), "no event twice");
    for (seen, sent) in events.iter().zip(&public) {
        assert_eq!(seen["data"], sent.body);
    }
    wait_until("every message counted", || {
        let s = stats(&hub);
        s.accepted + s.rejected_total == (good.len() + bad.len()) as u64
    })
    .await;
    let stats = stats(&hub);
    assert_eq!(stats.accepted, good.len() as u64);
    assert_eq!(
        rejected(&stats),
        reason_counts(bad.iter().map(|b| b.expected_reason()))
    );
    stop(task).await;
}

/// A PSUBSCRIBE pattern receives every matching channel, and the channel
/// the message came on (not the pattern) gives the event type.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pattern_subscription_takes_the_type_from_the_channel() {
    let Some(server) = private_redis() else {
        return;
    };
    let hub = hub(OffsetMode::Node);
    let mut conn = client(&hub, None);
    let config = tickcast_ingest_redis::RedisConfig {
        channels: vec!["tickstock.*".into()],
        ..source_config(&server.url(), RedisMode::PubSub)
    };
    let task = start(&hub, config).await;

    let mut redis = redis_conn(&server.url()).await;
    let pattern = br#"{"pattern":"Doji","symbol":"AAPL","confidence":0.7,"tier":"daily"}"#;
    let progress = br#"{"job_id":"bt-1","progress":0.5,"status":"running"}"#;
    let health = br#"{"status":"healthy"}"#;
    publish(&mut redis, "tickstock.events.patterns", pattern).await;
    publish(
        &mut redis,
        "tickstock.events.backtesting.progress",
        progress,
    )
    .await;
    publish(&mut redis, "elsewhere.events.patterns", pattern).await;
    publish(&mut redis, "tickstock.health.status", health).await;

    let events = by_offset(collect(&mut conn.frames, 3).await);
    let types: Vec<&str> = events
        .iter()
        .map(|e| e["event_type"].as_str().unwrap())
        .collect();
    assert_eq!(
        types,
        ["pattern_detected", "backtest_progress", "system_health"]
    );
    // Counted just after the hub took it, so possibly after delivery.
    wait_until("three accepted", || stats(&hub).accepted == 3).await;
    stop(task).await;
}

/// A quiet subscription is kept alive with PINGs that do not disturb it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_quiet_subscription_survives_its_keepalive_pings() {
    let Some(server) = private_redis() else {
        return;
    };
    let hub = hub(OffsetMode::Node);
    let mut conn = client(&hub, None);
    let config = tickcast_ingest_redis::RedisConfig {
        keepalive: std::time::Duration::from_secs(1),
        ..source_config(&server.url(), RedisMode::PubSub)
    };
    let task = start(&hub, config).await;
    let mut redis = redis_conn(&server.url()).await;
    // The subscriber's last command, as the server lists its clients.
    let pings = || async {
        let clients: String = redis::cmd("CLIENT")
            .arg("LIST")
            .query_async(&mut redis_conn(&server.url()).await)
            .await
            .unwrap();
        clients
            .lines()
            .any(|c| c.contains(" sub=4 ") && c.contains(" cmd=ping "))
    };
    wait_until_async("a keepalive PING", pings).await;

    let body = br#"{"pattern":"Doji","symbol":"AAPL","confidence":0.7}"#;
    publish(&mut redis, "tickstock.events.patterns", body).await;
    let events = collect(&mut conn.frames, 1).await;
    assert_eq!(events[0]["data"]["symbol"], "AAPL");
    let stats = stats(&hub);
    assert!(stats.connected);
    assert_eq!(stats.errors, 0, "the pings never broke the subscription");
    stop(task).await;
}

/// A source whose Redis is not there says so and keeps trying; it does
/// not end and does not panic.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_server_is_reported_and_retried() {
    let port = tickcast_testkit::free_port();
    let hub = hub(OffsetMode::Node);
    let source = tickcast_ingest_redis::RedisSource::new(source_config(
        &format!("redis://127.0.0.1:{port}"),
        RedisMode::PubSub,
    ))
    .unwrap();
    let task = tokio::spawn(tickcast_core::ingest::run_source(hub.clone(), source).unwrap());
    wait_until("reported disconnected", || {
        let s = stats(&hub);
        !s.connected && s.errors >= 1
    })
    .await;
    assert!(!task.is_finished());
    stop(task).await;
}

async fn publish(conn: &mut redis::aio::MultiplexedConnection, channel: &str, body: &[u8]) {
    let _receivers: usize = redis::cmd("PUBLISH")
        .arg(channel)
        .arg(body)
        .query_async(conn)
        .await
        .unwrap();
}
