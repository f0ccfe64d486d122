//! The node's queues are bounded (issue 14): a departed node's queue
//! expires (`x-expires`), and a queue nobody consumes holds at most
//! `queue_max_length` messages, dropping its oldest.

mod common;

use std::time::{Duration, Instant};

use common::*;
use serde_json::json;
use tickcast_core::ingest::run_source;
use tickcast_ingest_amqp::{AmqpConfig, AmqpSource, Overflow};

/// Runs a source for `config` until it consumes, then drops it (a node
/// that goes away).
async fn run_then_leave(raw: &Raw, config: &AmqpConfig) {
    let hub = hub();
    let task = tokio::spawn(run_source(hub, AmqpSource::new(config.clone()).unwrap()).unwrap());
    raw.wait_for_consumer(&config.queue).await;
    task.abort();
    let _ = task.await;
    let deadline = Instant::now() + GIVE_UP;
    while !matches!(raw.queue_state(&config.queue).await, Some((_, 0)) | None) {
        assert!(Instant::now() < deadline, "the consumer never left");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_departed_nodes_queues_expire_and_a_live_ones_do_not() {
    let Some(url) = tickcast_testkit::amqp_url() else {
        return;
    };
    let expires = Duration::from_millis(1500);
    let config = AmqpConfig {
        queue_expires: Some(expires),
        ..config(&url, "expires")
    };
    let raw = Raw::connect(&url).await;
    let hub = hub();
    let task = tokio::spawn(run_source(hub, AmqpSource::new(config.clone()).unwrap()).unwrap());
    raw.wait_for_consumer(&config.queue).await;
    // Consumed: it lives past its expiry.
    tokio::time::sleep(expires * 2).await;
    assert!(raw.queue_state(&config.queue).await.is_some());
    assert!(raw.queue_state(&config.dead_letter_queue()).await.is_some());
    task.abort();
    let _ = task.await;
    // Gone: both queues disappear. Looking (a passive declare) renews a
    // queue's lease, so look less often than it expires.
    let deadline = Instant::now() + GIVE_UP;
    loop {
        tokio::time::sleep(expires + Duration::from_secs(1)).await;
        let queue = raw.queue_state(&config.queue).await;
        let dead = raw.queue_state(&config.dead_letter_queue()).await;
        if queue.is_none() && dead.is_none() {
            break;
        }
        assert!(Instant::now() < deadline, "still there: {queue:?} {dead:?}");
    }
    raw.remove(&config).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_queue_drops_its_oldest_and_its_dead_queue_is_bounded_too() {
    let Some(url) = tickcast_testkit::amqp_url() else {
        return;
    };
    let config = AmqpConfig {
        queue_max_length: Some(5),
        queue_overflow: Overflow::DropHead,
        ..config(&url, "maxlen")
    };
    let raw = Raw::connect(&url).await;
    run_then_leave(&raw, &config).await;
    for n in 0..12 {
        let body = json!({"pattern": "Doji", "symbol": "AAPL", "n": n}).to_string();
        raw.publish(
            &config.exchange,
            "tickstock.events.patterns",
            body.as_bytes(),
            json_properties(),
        )
        .await;
    }
    assert_eq!(raw.queue_state(&config.queue).await, Some((5, 0)));
    let deadline = Instant::now() + GIVE_UP;
    while raw.queue_state(&config.dead_letter_queue()).await != Some((5, 0)) {
        assert!(
            Instant::now() < deadline,
            "the dead queue is not at its bound"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // The node back: it gets the newest five.
    let hub = hub();
    let client = Client::subscribe_all(&hub);
    let task = tokio::spawn(run_source(hub, AmqpSource::new(config.clone()).unwrap()).unwrap());
    let events = client.wait_for(|seen| seen.len() >= 5).await;
    let mut ns: Vec<u64> = events.iter().map(|e| e["n"].as_u64().unwrap()).collect();
    ns.sort_unstable();
    assert_eq!(ns, vec![7, 8, 9, 10, 11]);
    task.abort();
    raw.remove(&config).await;
}
