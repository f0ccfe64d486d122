//! How long an event waits between its XADD and its delivery from the hub,
//! for one stream key against several shards, at a low rate (shards idle
//! most of the time, so the merge waits on their blocking reads).
//!
//! ```text
//! scripts/brokers.sh cluster start && eval "$(scripts/brokers.sh cluster env)"
//! cargo run -p tickcast-ingest-redis --example shard_latency -- [events] [gap_ms]
//! ```
//!
//! Without `TESTKIT_REDIS_CLUSTER_URLS` it runs against `TESTKIT_REDIS_URL`
//! (default `redis://127.0.0.1:6390`). Prints p50/p99/max per setting.

use std::time::{Duration, Instant};

use bytes::Bytes;
use tickcast_core::broadcast::Outbound;
use tickcast_core::hub::{HubConfig, OffsetMode};
use tickcast_core::ingest::{run_source, BrokerPublisher};
use tickcast_core::model::Filter;
use tickcast_core::Hub;
use tickcast_ingest_redis::{RedisConfig, RedisMode, RedisPublisher, RedisSource};

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let mut args = std::env::args().skip(1);
    let events: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(200);
    let gap = Duration::from_millis(args.next().and_then(|a| a.parse().ok()).unwrap_or(20));
    let cluster: Vec<String> = std::env::var("TESTKIT_REDIS_CLUSTER_URLS")
        .unwrap_or_default()
        .split(',')
        .filter(|u| !u.is_empty())
        .map(str::to_owned)
        .collect();
    let url =
        std::env::var("TESTKIT_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6390".to_owned());
    println!(
        "{} , {events} events {gap:?} apart",
        if cluster.is_empty() {
            "one server"
        } else {
            "cluster"
        }
    );
    for (shards, block_ms) in [(1, 5000), (4, 100), (4, 1000)] {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        let config = RedisConfig {
            url: url.clone(),
            cluster: cluster.clone(),
            mode: RedisMode::Streams,
            stream: format!("tickcast-latency:{nanos}"),
            stream_shards: shards,
            group: "latency".to_owned(),
            consumer: "latency".to_owned(),
            block: Duration::from_millis(block_ms),
            ..RedisConfig::default()
        };
        let mut latencies = measure(config, events, gap).await;
        latencies.sort();
        let at = |q: f64| latencies[((latencies.len() - 1) as f64 * q) as usize];
        println!(
            "shards {shards} block {block_ms:>4} ms: p50 {:>7.1?} p99 {:>7.1?} max {:>7.1?}",
            at(0.5),
            at(0.99),
            at(1.0)
        );
    }
}

async fn measure(config: RedisConfig, events: usize, gap: Duration) -> Vec<Duration> {
    let mut hub_config = HubConfig::immediate();
    hub_config.offsets = OffsetMode::External;
    hub_config.rate_limit_per_user = 0;
    let hub = Hub::new(hub_config);
    let mut conn = hub.connect(None, hub.default_limits()).unwrap();
    conn.handle
        .subscribe("all", Filter::default(), None)
        .unwrap();
    let source = RedisSource::new(config.clone()).unwrap();
    let task = tokio::spawn(run_source(hub.clone(), source).unwrap());
    let publisher = RedisPublisher::new(&config).unwrap();
    // Let the groups exist before the first XADD.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let mut latencies = Vec::with_capacity(events);
    for i in 0..events {
        let body = format!(r#"{{"pattern":"Doji","symbol":"S{i}","tier":"daily"}}"#);
        let sent = Instant::now();
        publisher
            .publish("tickstock.events.patterns", Bytes::from(body))
            .await
            .unwrap();
        loop {
            match conn.frames.recv().await {
                Some(Outbound::Event(_) | Outbound::Batch(_)) => break,
                Some(_) => continue,
                None => panic!("connection closed"),
            }
        }
        latencies.push(sent.elapsed());
        tokio::time::sleep(gap).await;
    }
    task.abort();
    latencies
}
