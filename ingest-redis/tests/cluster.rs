//! Redis Cluster (3 masters, `scripts/brokers.sh cluster start` or a
//! private one) and sharded streams: sharded pub/sub delivers every event
//! once whatever shard its channel lives on; a publish no node receives
//! answers `no_receiver`; a sharded stream reaches the hub exactly once in
//! offset order, and a client's offset resumes exactly on another node and
//! on a restarted one; a master killed and restarted, the source carries
//! on.

mod common;

use std::collections::BTreeSet;

use bytes::Bytes;
use common::*;
use serde_json::Value;
use tickcast_core::hub::OffsetMode;
use tickcast_core::ingest::{BrokerError, BrokerPublisher, Outgoing};
use tickcast_core::model::Offset;
use tickcast_ingest_redis::{RedisConfig, RedisMode, RedisPublisher};
use tickcast_testkit::{redis_cluster_urls, GoodEvent, RedisCluster};

/// Settings for a cluster of `urls` in `mode`.
fn cluster_config(urls: &[String], mode: RedisMode) -> RedisConfig {
    RedisConfig {
        cluster: urls.to_vec(),
        ..source_config(&urls[0], mode)
    }
}

/// A sharded stream of `shards` keys, read as `group`, BLOCK short enough
/// that an idle shard holds the others back only briefly.
fn sharded(mut config: RedisConfig, stream: &str, group: &str, shards: usize) -> RedisConfig {
    config.mode = RedisMode::Streams;
    config.stream = stream.to_owned();
    config.stream_shards = shards;
    config.group = group.to_owned();
    config.consumer = "c1".to_owned();
    config.block = std::time::Duration::from_millis(100);
    config
}

/// Public fixtures (a client without a user gets exactly these).
fn public(n: usize) -> Vec<GoodEvent> {
    first_good_events(4 * n)
        .into_iter()
        .filter(|g| !g.is_private())
        .take(n)
        .collect()
}

fn outgoing(events: &[GoodEvent]) -> Vec<Outgoing> {
    Outgoing::unkeyed(
        events
            .iter()
            .map(|e| (e.channel.clone(), Bytes::from(e.raw.clone())))
            .collect(),
    )
}

/// Publishes `events` in calls of `batch` (each call one shard key);
/// the offsets answered, in order.
async fn publish(publisher: &RedisPublisher, events: &[GoodEvent], batch: usize) -> Vec<Offset> {
    let mut offsets = Vec::new();
    for chunk in events.chunks(batch) {
        for result in publisher.publish_keyed(outgoing(chunk)).await {
            offsets.push(result.expect("published").expect("a stream offset"));
        }
    }
    offsets
}

/// Bodies as text, sorted: delivery compared as a multiset.
fn bodies(events: &[Value]) -> Vec<String> {
    let mut out: Vec<String> = events.iter().map(|e| e["data"].to_string()).collect();
    out.sort();
    out
}

fn sent_bodies(events: &[GoodEvent]) -> Vec<String> {
    let mut out: Vec<String> = events.iter().map(|e| e.body.to_string()).collect();
    out.sort();
    out
}

/// Every known channel SSUBSCRIBEd on the master of its slot: fixtures of
/// all four channels (spread over the three masters) arrive exactly once,
/// published through the cluster publisher (SPUBLISH, one pipeline per
/// channel). A channel no node subscribes to answers `no_receiver`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sharded_pubsub_delivers_every_event_once_across_shards() {
    // A private cluster: shard channels are per cluster, and these are the
    // real channel names other tests may publish on.
    if redis_cluster_urls().is_none() {
        return;
    }
    let cluster = RedisCluster::start(3);
    let config = cluster_config(&cluster.urls(), RedisMode::PubSub);
    let good = first_good_events(600);
    let masters: BTreeSet<usize> = good.iter().map(|g| cluster.master_of(&g.channel)).collect();
    assert!(masters.len() >= 2, "the channels span several masters");

    let hub = hub(OffsetMode::Node);
    let mut conn = client(&hub, None);
    let task = start(&hub, config.clone()).await;
    let publisher = RedisPublisher::new(&config).unwrap();
    for chunk in good.chunks(100) {
        for result in publisher.publish_keyed(outgoing(chunk)).await {
            assert_eq!(result.unwrap(), None, "pub/sub has no offsets");
        }
    }
    let public: Vec<GoodEvent> = good.iter().filter(|g| !g.is_private()).cloned().collect();
    let events = collect(&mut conn.frames, public.len()).await;
    assert_eq!(events.len(), public.len(), "no event twice");
    assert_eq!(bodies(&events), sent_bodies(&public));
    wait_until("every message counted", || {
        stats(&hub).accepted == good.len() as u64
    })
    .await;

    let nobody = publisher
        .publish("tickcast-test.nobody.listens", Bytes::from_static(b"{}"))
        .await;
    assert!(
        matches!(nobody, Err(BrokerError::NoReceiver(_))),
        "{nobody:?}"
    );
    stop(task).await;
}

/// Against the shared cluster: a publish on a channel no node subscribes
/// to is a 503 `no_receiver`, never a success.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spublish_without_a_subscriber_is_no_receiver() {
    let Some(urls) = redis_cluster_urls() else {
        return;
    };
    let publisher = RedisPublisher::new(&cluster_config(&urls, RedisMode::PubSub)).unwrap();
    let channel = unique("nobody");
    let single = publisher.publish(&channel, Bytes::from_static(b"{}")).await;
    assert!(
        matches!(single, Err(BrokerError::NoReceiver(_))),
        "{single:?}"
    );
    let items = Outgoing::unkeyed(vec![
        (channel.clone(), Bytes::from_static(b"{}")),
        (unique("nobody"), Bytes::from_static(b"{}")),
    ]);
    for result in publisher.publish_keyed(items).await {
        assert!(
            matches!(result, Err(BrokerError::NoReceiver(_))),
            "{result:?}"
        );
    }
}

/// A stream of four shards (on all three masters) read by two nodes: each
/// delivers every event exactly once in offset order (the hub refuses an
/// offset below one it has, so anything out of order would be missing);
/// a client's offset from node A resumes on node B with exactly the rest;
/// node A restarted (new hub, same group) after more events were added
/// while it was down replays exactly the rest from that offset too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sharded_stream_is_delivered_once_in_order_and_resumes_on_any_node() {
    let Some(urls) = redis_cluster_urls() else {
        return;
    };
    sharded_stream_round_trip(cluster_config(&urls, RedisMode::Streams)).await;
}

/// The same on one server: shards need no cluster (they only spread load
/// in one).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sharded_stream_on_one_server_behaves_alike() {
    let Some(url) = tickcast_testkit::redis_url() else {
        return;
    };
    sharded_stream_round_trip(source_config(&url, RedisMode::Streams)).await;
}

async fn sharded_stream_round_trip(base: RedisConfig) {
    let stream = unique("sharded");
    let node_a = sharded(base.clone(), &stream, &unique("group-a"), 4);
    let node_b = sharded(base, &stream, &unique("group-b"), 4);
    let good = public(400);

    let hub_a = hub(OffsetMode::External);
    let hub_b = hub(OffsetMode::External);
    let mut client_a = client(&hub_a, None);
    let task_a = start(&hub_a, node_a.clone()).await;
    let task_b = start(&hub_b, node_b.clone()).await;

    let publisher = RedisPublisher::new(&node_a).unwrap();
    let mut sent = publish(&publisher, &good[..300], 7).await;
    let distinct: BTreeSet<Offset> = sent.iter().copied().collect();
    assert_eq!(
        distinct.len(),
        sent.len(),
        "offsets are unique across shards"
    );

    let seen = collect(&mut client_a.frames, 300).await;
    let mut order = sent.clone();
    order.sort();
    assert_eq!(offsets(&by_offset(seen.clone())), order, "every event once");
    wait_until("node A took all in order", || stats(&hub_a).accepted == 300).await;
    assert_eq!(stats(&hub_a).duplicates, 0, "nothing arrived out of order");
    wait_until("node B took all in order", || stats(&hub_b).accepted == 300).await;
    assert_eq!(stats(&hub_b).duplicates, 0);

    // Resume on node B from the 120th offset node A delivered.
    let resume_from = order[119];
    let mut resumed = client(&hub_b, Some(resume_from));
    let rest = by_offset(collect(&mut resumed.frames, 180).await);
    assert_eq!(offsets(&rest), order[120..], "zero gap, zero duplicate");
    let by_id: std::collections::HashMap<Offset, &GoodEvent> =
        sent.iter().copied().zip(&good).collect();
    for event in &rest {
        let offset: Offset = event["offset"].as_str().unwrap().parse().unwrap();
        assert_eq!(event["data"], by_id[&offset].body);
    }

    // Node A restarts once its cursors record everything handed to its
    // hub (a batch past a cursor would be delivered live again: at least
    // once, as on one stream).
    wait_until_async("node A's cursors on every shard's last entry", || {
        let node_a = node_a.clone();
        async move { every_shard_caught_up(&node_a).await }
    })
    .await;
    stop(task_a).await;
    hub_a.shutdown();
    sent.extend(publish(&publisher, &good[300..], 9).await);
    let mut order: Vec<Offset> = sent.clone();
    order.sort();

    let hub_a = hub(OffsetMode::External);
    let task_a = start(&hub_a, node_a).await;
    // The history is loaded before the new entries are delivered live.
    wait_until("restarted node A took the new entries", || {
        stats(&hub_a).accepted == 100
    })
    .await;
    let mut resumed = client(&hub_a, Some(resume_from));
    let rest = by_offset(collect(&mut resumed.frames, 280).await);
    assert_eq!(offsets(&rest), order[120..], "after a restart too");
    stop(task_a).await;
    stop(task_b).await;
}

/// Entries an earlier version of tickcast (reading without NOACK) read
/// from every shard but never acknowledged are delivered live by the next
/// start, merged in offset order across shards; the pending lists are
/// dropped and the cursors end on each shard's last entry.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_earlier_versions_pending_entries_of_every_shard_are_recovered_in_order() {
    let Some(urls) = redis_cluster_urls() else {
        return;
    };
    let config = sharded(
        cluster_config(&urls, RedisMode::Streams),
        &unique("pending"),
        &unique("group"),
        3,
    );
    let client_of_cluster = redis::cluster::ClusterClient::new(urls.clone()).unwrap();
    let mut redis = client_of_cluster.get_async_connection().await.unwrap();
    for i in 0..3 {
        let _: () = redis::cmd("XGROUP")
            .arg("CREATE")
            .arg(config.shard_key(i))
            .arg(&config.group)
            .arg("$")
            .arg("MKSTREAM")
            .query_async(&mut redis)
            .await
            .unwrap();
    }
    let good = public(30);
    let publisher = RedisPublisher::new(&config).unwrap();
    let mut sent = publish(&publisher, &good, 4).await;
    // The crashed run: read as this node's consumer, never acknowledged.
    for i in 0..3 {
        let _: redis::Value = redis::cmd("XREADGROUP")
            .arg("GROUP")
            .arg(&config.group)
            .arg(&config.consumer)
            .arg("COUNT")
            .arg(100)
            .arg("STREAMS")
            .arg(config.shard_key(i))
            .arg(">")
            .query_async(&mut redis)
            .await
            .unwrap();
    }
    assert_eq!(pending_total(&config).await, 30);

    let hub = hub(OffsetMode::External);
    let mut conn = client(&hub, None);
    let task = start(&hub, config.clone()).await;
    let events = by_offset(collect(&mut conn.frames, 30).await);
    sent.sort();
    assert_eq!(offsets(&events), sent, "each pending entry once");
    wait_until("all taken in order", || stats(&hub).accepted == 30).await;
    assert_eq!(stats(&hub).duplicates, 0);
    assert_eq!(
        pending_total(&config).await,
        0,
        "the pending lists are dropped"
    );
    wait_until_async("the cursors on every shard's last entry", || {
        let config = config.clone();
        async move { every_shard_caught_up(&config).await }
    })
    .await;
    stop(task).await;
}

/// Reads that block for two minutes on idle shards do not hold the other
/// shards' events back that long: while a read waits, a probe of its
/// shard (no lag, nothing handed to the read) lets the merge go on. The
/// events arrive well within the test's give-up bound of 30 s, in order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_shards_do_not_hold_events_for_their_block_time() {
    let Some(urls) = redis_cluster_urls() else {
        return;
    };
    let mut config = sharded(
        cluster_config(&urls, RedisMode::Streams),
        &unique("idle"),
        &unique("group"),
        4,
    );
    config.block = std::time::Duration::from_secs(120);
    let hub = hub(OffsetMode::External);
    let mut conn = client(&hub, None);
    let task = start(&hub, config.clone()).await;
    let publisher = RedisPublisher::new(&config).unwrap();
    let good = public(12);
    let mut sent = Vec::new();
    for event in &good {
        // One at a time: three of the four shards idle at every event.
        sent.extend(publish(&publisher, std::slice::from_ref(event), 1).await);
        let seen = collect(&mut conn.frames, 1).await;
        assert_eq!(offsets(&seen), [*sent.last().unwrap()]);
    }
    assert_eq!(stats(&hub).duplicates, 0);
    stop(task).await;
}

/// A master of the cluster SIGKILLed and restarted (empty: the test
/// cluster keeps no data), in both modes: the source reconnects by itself
/// and delivers what is published once the cluster is whole again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_source_resumes_after_a_master_is_killed_and_restarted() {
    if redis_cluster_urls().is_none() {
        return;
    }
    let mut cluster = RedisCluster::start(3);
    let good = public(60);

    let streams = sharded(
        cluster_config(&cluster.urls(), RedisMode::Streams),
        &unique("killed"),
        &unique("group"),
        4,
    );
    let pubsub = RedisConfig {
        channels: vec!["tickstock.events.patterns".to_owned()],
        ..cluster_config(&cluster.urls(), RedisMode::PubSub)
    };
    let streams_hub = hub(OffsetMode::External);
    let pubsub_hub = hub(OffsetMode::Node);
    let mut streams_client = client(&streams_hub, None);
    let mut pubsub_client = client(&pubsub_hub, None);
    let streams_task = start(&streams_hub, streams.clone()).await;
    let pubsub_task = start(&pubsub_hub, pubsub.clone()).await;
    let streams_out = RedisPublisher::new(&streams).unwrap();
    let pubsub_out = RedisPublisher::new(&pubsub).unwrap();
    let patterns: Vec<GoodEvent> = good
        .iter()
        .filter(|g| g.channel == "tickstock.events.patterns")
        .cloned()
        .collect();

    publish(&streams_out, &good[..30], 5).await;
    assert_eq!(collect(&mut streams_client.frames, 30).await.len(), 30);
    for event in &patterns[..5] {
        pubsub_out
            .publish(&event.channel, Bytes::from(event.raw.clone()))
            .await
            .unwrap();
    }
    assert_eq!(collect(&mut pubsub_client.frames, 5).await.len(), 5);

    let victim = cluster.master_of("tickstock.events.patterns");
    cluster.kill(victim);
    wait_until("both sources saw the master go", || {
        !is_connected(&streams_hub) && !is_connected(&pubsub_hub)
    })
    .await;
    cluster.restart(victim);
    cluster.wait_ok();
    wait_until("both sources back", || {
        is_connected(&streams_hub) && is_connected(&pubsub_hub)
    })
    .await;

    // Streams: every event answered with an offset is delivered.
    let mut later = Vec::new();
    for event in &good[30..] {
        later.push(publish_until_accepted(&streams_out, event).await);
    }
    let events = by_offset(collect(&mut streams_client.frames, later.len()).await);
    later.sort();
    assert_eq!(offsets(&events), later);
    // Pub/sub: the channel's shard is subscribed again (an event
    // published while it is not answers no_receiver and is sent again).
    for event in &patterns[5..] {
        publish_until_accepted(&pubsub_out, event).await;
    }
    let events = collect(&mut pubsub_client.frames, patterns.len() - 5).await;
    assert_eq!(bodies(&events), sent_bodies(&patterns[5..]));
    assert!(stats(&streams_hub).errors >= 1, "the loss was counted");
    stop(streams_task).await;
    stop(pubsub_task).await;
}

/// A slot moved to another master under running sources (a resharding):
/// the pub/sub source is dropped from the channel by Redis (`sunsubscribe`)
/// and subscribes again on the new master; the streams source is told
/// MOVED and reads the key where it now lives. Both deliver what is
/// published afterwards, nothing twice.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_moved_slot_is_followed() {
    if redis_cluster_urls().is_none() {
        return;
    }
    let cluster = RedisCluster::start(3);
    let good = public(40);
    let channel = "tickstock.events.patterns";
    let patterns: Vec<GoodEvent> = good
        .iter()
        .filter(|g| g.channel == channel)
        .cloned()
        .collect();
    let streams = sharded(
        cluster_config(&cluster.urls(), RedisMode::Streams),
        &unique("moved"),
        &unique("group"),
        2,
    );
    let pubsub = RedisConfig {
        channels: vec![channel.to_owned()],
        ..cluster_config(&cluster.urls(), RedisMode::PubSub)
    };
    let streams_hub = hub(OffsetMode::External);
    let pubsub_hub = hub(OffsetMode::Node);
    let mut streams_client = client(&streams_hub, None);
    let mut pubsub_client = client(&pubsub_hub, None);
    let streams_task = start(&streams_hub, streams.clone()).await;
    let pubsub_task = start(&pubsub_hub, pubsub.clone()).await;
    let streams_out = RedisPublisher::new(&streams).unwrap();
    let pubsub_out = RedisPublisher::new(&pubsub).unwrap();

    let mut sent = publish(&streams_out, &good[..20], 5).await;
    assert_eq!(collect(&mut streams_client.frames, 20).await.len(), 20);
    for event in &patterns[..3] {
        publish_until_accepted(&pubsub_out, event).await;
    }
    assert_eq!(collect(&mut pubsub_client.frames, 3).await.len(), 3);

    let key = streams.shard_key(0);
    let to = (cluster.master_of(&key) + 1) % 3;
    cluster.move_slot_of(&key, to);
    let to = (cluster.master_of(channel) + 1) % 3;
    cluster.move_slot_of(channel, to);

    for event in &good[20..] {
        sent.push(publish_until_accepted(&streams_out, event).await);
    }
    let events = by_offset(collect(&mut streams_client.frames, 20).await);
    let mut later = sent[20..].to_vec();
    later.sort();
    assert_eq!(offsets(&events), later, "each later event once");
    for event in &patterns[3..] {
        publish_until_accepted(&pubsub_out, event).await;
    }
    let events = collect(&mut pubsub_client.frames, patterns.len() - 3).await;
    assert_eq!(bodies(&events), sent_bodies(&patterns[3..]));
    // Both noticed the move (a session ended) rather than missing it.
    assert!(stats(&streams_hub).errors >= 1, "streams saw MOVED");
    assert!(stats(&pubsub_hub).errors >= 1, "pub/sub saw sunsubscribe");
    stop(streams_task).await;
    stop(pubsub_task).await;
}

/// Whether the node's cursor is on the last entry of every shard key of
/// `config`.
async fn every_shard_caught_up(config: &RedisConfig) -> bool {
    for i in 0..config.stream_shards {
        let key = config.shard_key(i);
        let done = match config.cluster.is_empty() {
            true => caught_up(&mut redis_conn(&config.url).await, &key, &config.group).await,
            false => {
                let client = redis::cluster::ClusterClient::new(config.cluster.clone()).unwrap();
                let mut conn = client.get_async_connection().await.unwrap();
                caught_up(&mut conn, &key, &config.group).await
            }
        };
        if !done {
            return false;
        }
    }
    true
}

/// The group's pending entries over every shard key of `config`.
async fn pending_total(config: &RedisConfig) -> u64 {
    let mut total = 0;
    for i in 0..config.stream_shards {
        let cmd = redis::cmd("XPENDING")
            .arg(config.shard_key(i))
            .arg(&config.group)
            .take();
        let reply: Vec<redis::Value> = match config.cluster.is_empty() {
            true => cmd.query_async(&mut redis_conn(&config.url).await).await,
            false => {
                let client = redis::cluster::ClusterClient::new(config.cluster.clone()).unwrap();
                cmd.query_async(&mut client.get_async_connection().await.unwrap())
                    .await
            }
        }
        .unwrap();
        total += redis::from_redis_value::<u64>(reply[0].clone()).unwrap();
    }
    total
}

/// Publishes `event` until the cluster takes it (it answers unavailable
/// or no_receiver while it heals); the offset, if any.
async fn publish_until_accepted(publisher: &RedisPublisher, event: &GoodEvent) -> Offset {
    let deadline = tokio::time::Instant::now() + GIVE_UP;
    loop {
        match publisher
            .publish(&event.channel, Bytes::from(event.raw.clone()))
            .await
        {
            Ok(offset) => return offset.unwrap_or_default(),
            Err(BrokerError::Unavailable(_) | BrokerError::NoReceiver(_)) => {
                assert!(
                    tokio::time::Instant::now() < deadline,
                    "the cluster never healed"
                );
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            }
            Err(other) => panic!("refused: {other:?}"),
        }
    }
}
