//! Helpers of the Redis ingest tests: fixtures (from
//! `tickcast_testkit::fixtures`), hubs, clients, waiting.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use serde_json::Value;
use tickcast_core::broadcast::{FrameReceiver, Outbound};
use tickcast_core::hub::{HubConfig, OffsetMode};
use tickcast_core::ingest::{run_source, SourceStats};
use tickcast_core::model::{Filter, Offset};
use tickcast_core::{Connection, Hub};
use tickcast_ingest_redis::{RedisConfig, RedisMode, RedisSource};
use tickcast_testkit::{GoodEvent, RedisServer};
use tokio::task::JoinHandle;

/// How long a test waits for something before it gives up (a bound, not
/// a timing assertion).
pub const GIVE_UP: Duration = Duration::from_secs(30);

// ---------------------------------------------------------------- fixtures

/// The first `n` good fixtures, in file order.
pub fn first_good_events(n: usize) -> Vec<GoodEvent> {
    tickcast_testkit::good_events()
        .into_iter()
        .take(n)
        .collect()
}

/// Reason -> count, as `SourceStats::rejected` shows it.
pub fn reason_counts<'a>(reasons: impl IntoIterator<Item = &'a str>) -> BTreeMap<String, u64> {
    let mut counts = BTreeMap::new();
    for reason in reasons {
        *counts.entry(reason.to_owned()).or_insert(0) += 1;
    }
    counts
}

/// `stats.rejected` with owned keys, to compare with [`reason_counts`].
pub fn rejected(stats: &SourceStats) -> BTreeMap<String, u64> {
    stats
        .rejected
        .iter()
        .map(|(k, v)| (k.to_string(), *v))
        .collect()
}

// ---------------------------------------------------------------- redis

/// A private redis-server, only where the shared one of
/// `scripts/brokers.sh` runs (so redis-server is installed); `None` skips
/// the test (`redis_url` fails it under CI).
pub fn private_redis() -> Option<RedisServer> {
    tickcast_testkit::redis_url()?;
    Some(RedisServer::start())
}

/// A name no other test (or earlier run) uses.
pub fn unique(prefix: &str) -> String {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    format!(
        "tickcast-test:{prefix}:{}:{nanos}:{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

/// A plain connection for the test's own commands.
pub async fn redis_conn(url: &str) -> redis::aio::MultiplexedConnection {
    redis::Client::open(url)
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap()
}

/// Source settings for tests: quick reconnects, short blocking reads.
pub fn source_config(url: &str, mode: RedisMode) -> RedisConfig {
    RedisConfig {
        url: url.to_owned(),
        mode,
        block: Duration::from_millis(500),
        reconnect_min: Duration::from_millis(50),
        reconnect_max: Duration::from_millis(500),
        ..RedisConfig::default()
    }
}

/// Streams settings on `stream` for group `group`.
pub fn streams_config(url: &str, stream: &str, group: &str) -> RedisConfig {
    RedisConfig {
        stream: stream.to_owned(),
        group: group.to_owned(),
        consumer: "c1".to_owned(),
        ..source_config(url, RedisMode::Streams)
    }
}

/// XADD `stream * channel <channel> body <body>`; the entry id.
pub async fn xadd(
    conn: &mut redis::aio::MultiplexedConnection,
    stream: &str,
    channel: &str,
    body: &[u8],
) -> Offset {
    let id: String = redis::cmd("XADD")
        .arg(stream)
        .arg("*")
        .arg("channel")
        .arg(channel)
        .arg("body")
        .arg(body)
        .query_async(conn)
        .await
        .unwrap();
    id.parse().unwrap()
}

/// The group's pending count (XPENDING summary).
pub async fn pending(
    conn: &mut redis::aio::MultiplexedConnection,
    stream: &str,
    group: &str,
) -> u64 {
    let reply: Vec<redis::Value> = redis::cmd("XPENDING")
        .arg(stream)
        .arg(group)
        .query_async(conn)
        .await
        .unwrap();
    redis::from_redis_value(reply[0].clone()).unwrap()
}

/// `group`'s last-delivered id (XINFO GROUPS).
pub async fn last_delivered(
    conn: &mut redis::aio::MultiplexedConnection,
    stream: &str,
    group: &str,
) -> String {
    let reply: redis::streams::StreamInfoGroupsReply = redis::cmd("XINFO")
        .arg("GROUPS")
        .arg(stream)
        .query_async(conn)
        .await
        .unwrap();
    reply
        .groups
        .into_iter()
        .find(|g| g.name == group)
        .map(|g| g.last_delivered_id)
        .unwrap_or_default()
}

/// Whether `group`'s cursor (the newest entry its node accepted, as
/// written to Redis) is the last entry of `stream`: the node took and
/// recorded everything.
pub async fn caught_up<C: redis::aio::ConnectionLike + Send>(
    conn: &mut C,
    stream: &str,
    group: &str,
) -> bool {
    let newest: redis::streams::StreamRangeReply = redis::cmd("XREVRANGE")
        .arg(stream)
        .arg("+")
        .arg("-")
        .arg("COUNT")
        .arg(1)
        .query_async(conn)
        .await
        .unwrap();
    let cursor: Option<String> = redis::cmd("GET")
        .arg(tickcast_ingest_redis::cursor_key(stream, group))
        .query_async(conn)
        .await
        .unwrap();
    newest.ids.first().map(|entry| entry.id.clone()) == cursor || newest.ids.is_empty()
}

// ---------------------------------------------------------------- hub

/// A hub that delivers at once, without rate limits, with room for every
/// test event.
pub fn hub(offsets: OffsetMode) -> Hub {
    let mut config = HubConfig::immediate();
    config.rate_limit_per_user = 0;
    config.queue.capacity = 100_000;
    config.offsets = offsets;
    Hub::new(config)
}

/// An anonymous connection subscribed to everything (after `since`).
pub fn client(hub: &Hub, since: Option<Offset>) -> Connection {
    let conn = hub.connect(None, hub.default_limits()).unwrap();
    conn.handle
        .subscribe("all", Filter::default(), since)
        .unwrap();
    conn
}

/// Runs `source` into `hub` (shown disconnected until it says otherwise,
/// with its lag reported, so every streams test also runs XINFO GROUPS),
/// and waits until it is connected.
pub async fn start(hub: &Hub, config: RedisConfig) -> JoinHandle<()> {
    let source = RedisSource::new(config).unwrap();
    let task = tokio::spawn(run_source(hub.clone(), source).unwrap());
    wait_until("source connected", || is_connected(hub)).await;
    task
}

/// Aborts a source task and waits until it is gone.
pub async fn stop(task: JoinHandle<()>) {
    task.abort();
    let _ = task.await;
}

pub fn stats(hub: &Hub) -> SourceStats {
    hub.source_counters("redis")
        .expect("the source was started")
        .snapshot()
}

pub fn is_connected(hub: &Hub) -> bool {
    stats(hub).connected
}

/// Polls `done` until it holds; panics after [`GIVE_UP`].
pub async fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + GIVE_UP;
    while !done() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "gave up waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// [`wait_until`] for an async condition.
pub async fn wait_until_async<F: Future<Output = bool>>(what: &str, mut done: impl FnMut() -> F) {
    let deadline = tokio::time::Instant::now() + GIVE_UP;
    while !done().await {
        assert!(
            tokio::time::Instant::now() < deadline,
            "gave up waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

// ---------------------------------------------------------------- frames

/// The event objects among `out` (single or batched).
fn events_of(out: Outbound) -> Vec<Value> {
    match out {
        Outbound::Event(frame) => vec![serde_json::from_slice(&frame.to_json()).unwrap()],
        Outbound::Batch(frames) => frames
            .iter()
            .map(|f| serde_json::from_slice(&f.to_json()).unwrap())
            .collect(),
        Outbound::Message(_) | Outbound::Close(_) => Vec::new(),
    }
}

/// Reads until `n` events have arrived (panics after [`GIVE_UP`]), then
/// whatever else is already queued, so a duplicate shows as an extra.
pub async fn collect(frames: &mut FrameReceiver, n: usize) -> Vec<Value> {
    let mut events = Vec::new();
    while events.len() < n {
        match tokio::time::timeout(GIVE_UP, frames.recv()).await {
            Ok(Some(out)) => events.extend(events_of(out)),
            Ok(None) => panic!("connection closed after {} events", events.len()),
            Err(_) => panic!("gave up after {} of {n} events", events.len()),
        }
    }
    while let Some(out) = frames.try_recv() {
        events.extend(events_of(out));
    }
    events
}

/// `events` in offset order: a connection gets events in offset order
/// within one priority, but a higher priority may overtake a lower one
/// (critical events are never batched), so the order of ingest shows in
/// the offsets, not in the order of arrival.
pub fn by_offset(mut events: Vec<Value>) -> Vec<Value> {
    events.sort_by_key(|e| e["offset"].as_str().unwrap().parse::<Offset>().unwrap());
    events
}

/// Offsets of events.
pub fn offsets(events: &[Value]) -> Vec<Offset> {
    events
        .iter()
        .map(|e| e["offset"].as_str().unwrap().parse().unwrap())
        .collect()
}
