//! A private Redis killed and restarted under a running source: the source
//! reports the loss, reconnects, and carries on.

mod common;

use common::*;
use tickcast_core::hub::{Hub, OffsetMode};
use tickcast_core::model::Offset;
use tickcast_ingest_redis::RedisMode;
use tickcast_testkit::fixtures::GoodEvent;

/// Waits until the hub shows the source disconnected, then connected.
async fn restart(server: &mut tickcast_testkit::RedisServer, hub: &Hub) {
    server.kill();
    wait_until("source disconnected", || !is_connected(hub)).await;
    server.restart();
}

/// Pub/sub: what is published after the restart is delivered (what was
/// published while Redis was down is legitimately lost).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pubsub_reconnects_after_a_server_restart() {
    let Some(mut server) = private_redis() else {
        return;
    };
    let hub = hub(OffsetMode::Node);
    let mut conn = client(&hub, None);
    let task = start(&hub, source_config(&server.url(), RedisMode::PubSub)).await;
    let good: Vec<GoodEvent> = first_good_events(100)
        .into_iter()
        .filter(|g| !g.is_private())
        .take(20)
        .collect();

    let mut redis = redis_conn(&server.url()).await;
    for event in &good[..10] {
        publish(&mut redis, &event.channel, &event.raw).await;
    }
    let before = collect(&mut conn.frames, 10).await;

    restart(&mut server, &hub).await;
    wait_until("source connected again", || is_connected(&hub)).await;
    let mut redis = redis_conn(&server.url()).await;
    for event in &good[10..] {
        publish(&mut redis, &event.channel, &event.raw).await;
    }
    let after = collect(&mut conn.frames, 10).await;

    let mut all = before;
    all.extend(after);
    for (seen, sent) in by_offset(all).iter().zip(&good) {
        assert_eq!(seen["data"], sent.body);
    }
    assert!(stats(&hub).errors >= 1, "the loss was counted");
    stop(task).await;
}

/// Streams: the restarted server has no data, so the group is gone; the
/// source recreates it from the beginning, so entries added after the
/// restart arrive even when they were added before it reconnected, and
/// nothing is delivered twice.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streams_reconnect_and_recreate_the_group_after_a_server_restart() {
    let Some(mut server) = private_redis() else {
        return;
    };
    let (stream, group) = ("tickstock:events", "tickcast-node");
    let hub = hub(OffsetMode::External);
    let mut conn = client(&hub, None);
    let config = tickcast_ingest_redis::RedisConfig {
        // Slow to come back, so the entries below are most likely added
        // before the group is recreated.
        reconnect_min: std::time::Duration::from_millis(500),
        ..streams_config(&server.url(), stream, group)
    };
    let task = start(&hub, config).await;
    let good: Vec<GoodEvent> = first_good_events(100)
        .into_iter()
        .filter(|g| !g.is_private())
        .take(30)
        .collect();

    let mut redis = redis_conn(&server.url()).await;
    let mut ids: Vec<Offset> = Vec::new();
    for event in &good[..10] {
        ids.push(xadd(&mut redis, stream, &event.channel, &event.raw).await);
    }
    let mut seen = collect(&mut conn.frames, 10).await;

    restart(&mut server, &hub).await;
    // Added before the source is back: the recreated group must start
    // from the beginning to get these.
    let mut redis = redis_conn(&server.url()).await;
    for event in &good[10..20] {
        ids.push(xadd(&mut redis, stream, &event.channel, &event.raw).await);
    }
    wait_until("source connected again", || is_connected(&hub)).await;
    for event in &good[20..] {
        ids.push(xadd(&mut redis, stream, &event.channel, &event.raw).await);
    }
    seen.extend(collect(&mut conn.frames, 20).await);

    let seen = by_offset(seen);
    assert_eq!(offsets(&seen), ids, "each entry exactly once");
    for (seen, sent) in seen.iter().zip(&good) {
        assert_eq!(seen["data"], sent.body);
    }
    assert!(stats(&hub).errors >= 1, "the loss was counted");
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
