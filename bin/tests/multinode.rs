//! Several nodes behind one broker, as real `tickcast` processes (issue
//! 14), in each ingest mode (Redis pub/sub, Redis Streams, RabbitMQ):
//!
//! - three nodes, WebSocket and SSE clients spread over them, events
//!   published through every node: each client gets each matching event
//!   exactly once;
//! - a node SIGKILLed while critical events overtake batched ones: its
//!   clients move to another node with `since` = the last `resume` they
//!   saw. Streams: no gap, no duplicate over the whole run. Pub/sub and
//!   RabbitMQ (node offsets): `history_gone`, as operations.md's guarantee
//!   table says, and still no duplicate;
//! - the same node restarted (same `node_id`, same port) and its clients
//!   back on it: the same promises (Streams: replayed from the history it
//!   reloads; the others: a new epoch, `history_gone`).
//!
//! Brokers come from `scripts/brokers.sh start`; without them a test
//! skips, except under `CI=true`, where it fails.

mod common;

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{json, Value};
use tickcast_core::model::Offset;

use common::nodes::{http, Group, Mode, Node};
use common::roaming::{Roamer, Transport, WAIT};

const SYMBOLS: [&str; 3] = ["AAPL", "MSFT", "TSLA"];

/// An event of `symbol` with its own `event_id`.
fn event(id: &str, symbol: &str, priority: &str) -> Value {
    json!({"pattern": "Doji", "symbol": symbol, "confidence": 0.7, "tier": "daily",
           "priority": priority, "event_id": id})
}

/// `addrs` starting at `first`: a client's node list, its own node first.
fn from(addrs: &[SocketAddr], first: usize) -> Vec<SocketAddr> {
    (0..addrs.len())
        .map(|i| addrs[(first + i) % addrs.len()])
        .collect()
}

/// Publishes `items` (id, symbol, priority) through `node` in one request
/// and fails the test unless it is answered 202.
async fn publish(group: &Group, node: SocketAddr, items: &[(String, &str, &str)]) {
    let body = Value::Array(items.iter().map(|(id, s, p)| event(id, s, p)).collect());
    let (status, answer) = http(node, "POST", &group.publish_path(), Some(&body))
        .await
        .unwrap_or_else(|e| panic!("publish through {node}: {e}"));
    assert_eq!(status, 202, "publish through {node}: {answer}");
}

/// Fails unless `client` received exactly the `published` events it
/// matches, each once.
fn assert_exactly_once(client: &Roamer, published: &[(String, String)]) {
    let expected: BTreeSet<&str> = published
        .iter()
        .filter(|(_, symbol)| client.wants(symbol))
        .map(|(id, _)| id.as_str())
        .collect();
    let log = client.log();
    let counts = log.counts();
    let twice: Vec<_> = counts.iter().filter(|(_, n)| **n > 1).collect();
    assert!(twice.is_empty(), "{}: duplicates {twice:?}", client.name);
    let missing: Vec<_> = expected
        .iter()
        .filter(|id| !counts.contains_key(**id))
        .collect();
    assert!(
        missing.is_empty(),
        "{}: {} of {} events missing: {missing:?}; sessions {:?}",
        client.name,
        missing.len(),
        expected.len(),
        log.sessions
    );
    let unexpected: Vec<_> = counts
        .keys()
        .filter(|id| !expected.contains(id.as_str()))
        .collect();
    assert!(unexpected.is_empty(), "{}: {unexpected:?}", client.name);
}

/// Publishes a last event of each symbol through `node` and waits until
/// every client has those it matches: the events published before them
/// through any node have then reached every client they will reach (each
/// node consumes the broker in order, each connection gets its events in
/// offset order). Returns them, as published.
async fn barrier(group: &Group, node: SocketAddr, clients: &[&Roamer]) -> Vec<(String, String)> {
    let items: Vec<(String, &str, &str)> = SYMBOLS
        .iter()
        .map(|s| (format!("{}-last-{s}", group.tag), *s, "low"))
        .collect();
    publish(group, node, &items).await;
    for client in clients {
        for (id, symbol, _) in &items {
            if client.wants(symbol) {
                client.wait_for(id).await;
            }
        }
    }
    items
        .into_iter()
        .map(|(id, s, _)| (id, s.to_owned()))
        .collect()
}

async fn every_client_gets_every_event_once(mode: Mode) {
    let Some(url) = mode.shared_broker() else {
        return;
    };
    let group = Group::new(mode, &url, "once").with("DELIVERY__BATCH_WINDOW_MS", 20);
    let nodes = group.start_nodes(3).await;
    let addrs: Vec<SocketAddr> = nodes.iter().map(Node::addr).collect();
    let mut clients = Vec::new();
    for i in 0..nodes.len() {
        let list = from(&addrs, i);
        let sse_symbol = (i % 2 == 1).then_some("AAPL");
        clients.push(Roamer::spawn(
            &format!("ws-all@{i}"),
            Transport::Ws,
            None,
            list.clone(),
        ));
        clients.push(Roamer::spawn(
            &format!("ws-aapl@{i}"),
            Transport::Ws,
            Some("AAPL"),
            list.clone(),
        ));
        clients.push(Roamer::spawn(
            &format!("sse@{i}"),
            Transport::Sse,
            sse_symbol,
            list,
        ));
    }
    for client in &clients {
        client.wait_sessions(1).await;
    }

    let mut published = Vec::new();
    let priorities = ["low", "medium", "high", "critical"];
    for request in 0..30 {
        let items: Vec<(String, &str, &str)> = (0..10)
            .map(|k| {
                let n = request * 10 + k;
                (
                    format!("{}-{n}", group.tag),
                    SYMBOLS[n % 3],
                    priorities[n % 4],
                )
            })
            .collect();
        publish(&group, addrs[request % addrs.len()], &items).await;
        published.extend(items.into_iter().map(|(id, s, _)| (id, s.to_owned())));
    }
    let everyone: Vec<&Roamer> = clients.iter().collect();
    published.extend(barrier(&group, addrs[2], &everyone).await);

    for client in &clients {
        assert_exactly_once(client, &published);
        assert_offsets_increase(client);
        assert_eq!(client.log().sessions.len(), 1, "{}", client.name);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pubsub_three_nodes_every_client_gets_every_event_once() {
    every_client_gets_every_event_once(Mode::PubSub).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streams_three_nodes_every_client_gets_every_event_once() {
    every_client_gets_every_event_once(Mode::Streams).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn amqp_three_nodes_every_client_gets_every_event_once() {
    every_client_gets_every_event_once(Mode::Amqp).await;
}

/// Publishes single events through `nodes` in turn until `stop`: mostly
/// batched priorities, every 7th critical (which goes out at once and
/// takes the batched ones before it along). Returns (id, symbol) of each.
async fn publish_until(
    group: Group,
    nodes: Vec<SocketAddr>,
    published: Arc<Mutex<Vec<(String, String)>>>,
    stop: Arc<AtomicBool>,
) {
    let priorities = ["low", "high", "medium", "low", "high", "medium", "critical"];
    let mut n = 0;
    while !stop.load(Ordering::Relaxed) {
        let id = format!("{}-{n}", group.tag);
        let symbol = SYMBOLS[n % 3];
        publish(
            &group,
            nodes[n % nodes.len()],
            &[(id.clone(), symbol, priorities[n % 7])],
        )
        .await;
        published.lock().unwrap().push((id, symbol.to_owned()));
        n += 1;
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

/// Offsets in the order a client received them must strictly increase.
fn assert_offsets_increase(client: &Roamer) {
    let log = client.log();
    let offsets: Vec<Offset> = log
        .events
        .iter()
        .map(|g| {
            g.offset
                .parse()
                .unwrap_or_else(|_| panic!("offset {}", g.offset))
        })
        .collect();
    for (i, pair) in offsets.windows(2).enumerate() {
        assert!(
            pair[0] < pair[1],
            "{}: {} then {} (events {i}, {})",
            client.name,
            pair[0],
            pair[1],
            i + 1
        );
    }
}

/// Waits until `n` more events were published.
async fn wait_published(
    published: &Mutex<Vec<(String, String)>>,
    n: usize,
    publisher: &tokio::task::JoinHandle<()>,
) {
    let target = published.lock().unwrap().len() + n;
    let deadline = std::time::Instant::now() + WAIT;
    while published.lock().unwrap().len() < target {
        assert!(!publisher.is_finished(), "the publisher failed");
        assert!(std::time::Instant::now() < deadline, "publishing stalled");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The clients of node 0 (the victim) and of the others, after node 0 was
/// SIGKILLed mid-stream and its clients resumed on nodes 1 and 2; every
/// event published, and the group.
struct Crash {
    victims: Vec<Roamer>,
    others: Vec<Roamer>,
    published: Vec<(String, String)>,
    _nodes: Vec<Node>,
}

/// Whether the victim's clients resume on the other nodes or on the
/// victim, restarted (same `node_id`, same port).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Then {
    Elsewhere,
    Restart,
}

async fn crash_a_node(mode: Mode, then: Then) -> Option<Crash> {
    let url = mode.shared_broker()?;
    // A batch window long enough that batched events are always waiting
    // when a critical one flushes them, and when the node dies.
    let group = Group::new(mode, &url, "crash").with("DELIVERY__BATCH_WINDOW_MS", 150);
    let mut nodes = group.start_nodes(3).await;
    let addrs: Vec<SocketAddr> = nodes.iter().map(Node::addr).collect();
    let victims: Vec<Roamer> = [
        ("ws-all", Transport::Ws, None),
        ("ws-all-b", Transport::Ws, None),
        ("ws-aapl", Transport::Ws, Some("AAPL")),
        ("sse-all", Transport::Sse, None),
        ("sse-msft", Transport::Sse, Some("MSFT")),
    ]
    .into_iter()
    .enumerate()
    .map(|(i, (name, transport, symbol))| {
        // Half move to node 1, half to node 2; or they wait for node 0.
        let list = match then {
            Then::Restart => vec![addrs[0]],
            Then::Elsewhere if i % 2 == 0 => vec![addrs[0], addrs[1], addrs[2]],
            Then::Elsewhere => vec![addrs[0], addrs[2], addrs[1]],
        };
        Roamer::spawn(&format!("{name}@0"), transport, symbol, list)
    })
    .collect();
    let others = vec![
        Roamer::spawn("ws-all@1", Transport::Ws, None, from(&addrs, 1)),
        Roamer::spawn("sse-all@2", Transport::Sse, None, from(&addrs, 2)),
    ];
    for client in victims.iter().chain(&others) {
        client.wait_sessions(1).await;
    }

    let published = Arc::new(Mutex::new(Vec::new()));
    let stop = Arc::new(AtomicBool::new(false));
    let publisher = tokio::spawn(publish_until(
        group.clone(),
        addrs[1..].to_vec(),
        published.clone(),
        stop.clone(),
    ));
    // Mid-stream: every victim has had events.
    for client in &victims {
        client
            .wait_until("30 events", |log| log.events.len() >= 30)
            .await;
    }
    nodes[0].kill().await;
    if then == Then::Restart {
        // Events published while it is down, then it is back.
        wait_published(&published, 50, &publisher).await;
        nodes[0].restart().await;
    }
    for client in &victims {
        client.wait_sessions(2).await;
    }
    // Live traffic after the move, then the end.
    wait_published(&published, 150, &publisher).await;
    stop.store(true, Ordering::Relaxed);
    publisher.await.expect("the publisher");
    let everyone: Vec<&Roamer> = victims.iter().chain(&others).collect();
    let last = barrier(&group, addrs[1], &everyone).await;
    let mut published = std::mem::take(&mut *published.lock().unwrap());
    published.extend(last);
    for client in &victims {
        let log = client.log();
        let after = log.events.iter().filter(|g| g.session > 0).count();
        eprintln!(
            "{}: {} events, {after} after the crash; sessions {:?}",
            client.name,
            log.events.len(),
            log.sessions
        );
    }
    Some(Crash {
        victims,
        others,
        published,
        _nodes: nodes,
    })
}

/// Streams: the victim's clients resume from their last `resume` (on
/// another node, or on the victim once it is back) and end up with every
/// event exactly once, in offset order.
async fn streams_crash(then: Then) {
    let Some(crash) = crash_a_node(Mode::Streams, then).await else {
        return;
    };
    for client in crash.victims.iter().chain(&crash.others) {
        assert_exactly_once(client, &crash.published);
        assert_offsets_increase(client);
    }
    for client in &crash.victims {
        let log = client.log();
        assert_eq!(log.sessions.len(), 2, "{}: {:?}", client.name, log.sessions);
        let resumed = &log.sessions[1];
        assert!(!resumed.history_gone, "{}: {:?}", client.name, log.sessions);
        assert!(
            resumed.since.is_some(),
            "{}: {:?}",
            client.name,
            log.sessions
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streams_a_crashed_nodes_clients_resume_elsewhere_without_gap_or_duplicate() {
    streams_crash(Then::Elsewhere).await;
}

// Fails about one run in five (issue 14), as the two tests at the end:
// a client back before the restarted node has its history reloaded.
#[ignore = "issue 14: a restarted Streams node serves resumes before its history is reloaded"]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streams_a_crashed_nodes_clients_resume_on_it_restarted_without_gap_or_duplicate() {
    streams_crash(Then::Restart).await;
}

/// Node offsets (pub/sub, RabbitMQ): a resume on another node answers
/// `history_gone` (operations.md, "Which mode gives which guarantee"), the
/// client goes on live, and nothing arrives twice; the other nodes'
/// clients get everything once.
async fn node_offsets_crash(mode: Mode, then: Then) {
    let Some(crash) = crash_a_node(mode, then).await else {
        return;
    };
    for client in &crash.others {
        assert_exactly_once(client, &crash.published);
        assert_offsets_increase(client);
    }
    for client in &crash.victims {
        let log = client.log();
        assert_eq!(log.sessions.len(), 2, "{}: {:?}", client.name, log.sessions);
        let resumed = &log.sessions[1];
        assert!(
            resumed.since.is_some(),
            "{}: {:?}",
            client.name,
            log.sessions
        );
        assert!(
            resumed.history_gone && resumed.recovered == 0,
            "{}: a foreign offset was taken: {:?}",
            client.name,
            log.sessions
        );
        let twice: Vec<_> = log.counts().into_iter().filter(|(_, n)| *n > 1).collect();
        assert!(twice.is_empty(), "{}: duplicates {twice:?}", client.name);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pubsub_a_crashed_nodes_clients_get_history_gone_elsewhere() {
    node_offsets_crash(Mode::PubSub, Then::Elsewhere).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn amqp_a_crashed_nodes_clients_get_history_gone_elsewhere() {
    node_offsets_crash(Mode::Amqp, Then::Elsewhere).await;
}

/// A node restarted with the same `node_id` starts a new epoch in these
/// modes: its clients get `history_gone` (operations.md: "resume after the
/// node restarts").
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pubsub_a_restarted_nodes_clients_get_history_gone() {
    node_offsets_crash(Mode::PubSub, Then::Restart).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn amqp_a_restarted_nodes_clients_get_history_gone() {
    node_offsets_crash(Mode::Amqp, Then::Restart).await;
}

/// Streams: a restarted node reloads its group's history (up to
/// `history.capacity` entries) as it starts; a client resuming there as
/// soon as it may (`ready`: as soon as `/ready` answers 200, the load
/// balancer's view; else as soon as it accepts connections) still gets
/// exactly what it missed.
async fn resume_while_a_restarted_node_reloads(ready: bool) {
    let Some(url) = Mode::Streams.shared_broker() else {
        return;
    };
    let group = Group::new(Mode::Streams, &url, "reload").with("DELIVERY__BATCH_WINDOW_MS", 150);
    let mut nodes = group.start_nodes(2).await;
    let addrs: Vec<SocketAddr> = nodes.iter().map(Node::addr).collect();
    let spawn = if ready {
        Roamer::spawn_ready
    } else {
        Roamer::spawn
    };
    let victims = vec![
        spawn("ws-aapl@0", Transport::Ws, Some("AAPL"), vec![addrs[0]]),
        spawn("sse-aapl@0", Transport::Sse, Some("AAPL"), vec![addrs[0]]),
    ];
    for client in &victims {
        client.wait_sessions(1).await;
    }
    // A long history, of events these clients do not match.
    for request in 0..16 {
        let items: Vec<(String, &str, &str)> = (0..2500)
            .map(|k| (format!("{}-bulk-{request}-{k}", group.tag), "ZZZ", "low"))
            .collect();
        publish(&group, addrs[1], &items).await;
    }
    let published = Arc::new(Mutex::new(Vec::new()));
    let stop = Arc::new(AtomicBool::new(false));
    let publisher = tokio::spawn(publish_until(
        group.clone(),
        vec![addrs[1]],
        published.clone(),
        stop.clone(),
    ));
    for client in &victims {
        client
            .wait_until("10 events", |log| log.events.len() >= 10)
            .await;
    }
    nodes[0].kill().await;
    wait_published(&published, 30, &publisher).await;
    nodes[0].restart().await;
    for client in &victims {
        client.wait_sessions(2).await;
    }
    wait_published(&published, 60, &publisher).await;
    stop.store(true, Ordering::Relaxed);
    publisher.await.expect("the publisher");
    let everyone: Vec<&Roamer> = victims.iter().collect();
    let last = barrier(&group, addrs[1], &everyone).await;
    let mut published = std::mem::take(&mut *published.lock().unwrap());
    published.extend(last);
    for client in &victims {
        eprintln!("{}: sessions {:?}", client.name, client.log().sessions);
        assert_exactly_once(client, &published);
        assert_offsets_increase(client);
        let log = client.log();
        assert!(
            !log.sessions[1].history_gone,
            "{}: {:?}",
            client.name, log.sessions
        );
    }
}

// Fails (issue 14): the restarted node answers `/ready` 200 before the
// entries it reloads (history and its pending ones) are in its hub; a
// resume meanwhile gets `history_gone`, then the pending entries live,
// the client's own among them (duplicates). See the multinode report.
#[ignore = "issue 14: a restarted Streams node is ready before its history is reloaded"]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streams_a_client_resuming_once_a_restarted_node_is_ready_misses_nothing() {
    resume_while_a_restarted_node_reloads(true).await;
}

// Fails (issue 14), as above, and for longer: the node accepts clients
// before it has even connected to Redis.
#[ignore = "issue 14: a restarted Streams node serves resumes before its history is reloaded"]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streams_a_client_resuming_as_a_restarted_node_listens_misses_nothing() {
    resume_while_a_restarted_node_reloads(false).await;
}

/// Streams: a node that fell behind the stream (here: SIGSTOPped while
/// 20,000 entries were added) still replays exactly what a client resuming
/// there missed, once it has read that far.
// Fails (issue 14): while the node catches up, a `since` above its latest
// offset answers `history_gone`, though the stream holds every event after
// it and the node is ready.
#[ignore = "issue 14: a Streams node behind the stream answers history_gone"]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streams_a_client_resuming_on_a_node_behind_the_stream_misses_nothing() {
    let Some(url) = Mode::Streams.shared_broker() else {
        return;
    };
    let group = Group::new(Mode::Streams, &url, "behind").with("DELIVERY__BATCH_WINDOW_MS", 20);
    let mut nodes = group.start_nodes(3).await;
    let addrs: Vec<SocketAddr> = nodes.iter().map(Node::addr).collect();
    let client = Roamer::spawn_ready(
        "ws-aapl@0",
        Transport::Ws,
        Some("AAPL"),
        vec![addrs[0], addrs[1]],
    );
    client.wait_sessions(1).await;
    nodes[1].pause(true);
    let mut published = Vec::new();
    for request in 0..8 {
        let items: Vec<(String, &str, &str)> = (0..2500)
            .map(|k| (format!("{}-bulk-{request}-{k}", group.tag), "ZZZ", "low"))
            .collect();
        publish(&group, addrs[2], &items).await;
    }
    let items: Vec<(String, &str, &str)> = (0..30)
        .map(|k| {
            (
                format!("{}-{k}", group.tag),
                "AAPL",
                if k % 7 == 6 { "critical" } else { "low" },
            )
        })
        .collect();
    publish(&group, addrs[2], &items).await;
    published.extend(items.iter().map(|(id, s, _)| (id.clone(), s.to_string())));
    client.wait_for(&items[29].0).await;
    nodes[0].kill().await;
    nodes[1].pause(false);
    client.wait_sessions(2).await;
    let everyone = [&client];
    published.extend(barrier(&group, addrs[2], &everyone).await);
    eprintln!("sessions {:?}", client.log().sessions);
    assert_exactly_once(&client, &published);
    assert!(
        !client.log().sessions[1].history_gone,
        "{:?}",
        client.log().sessions
    );
}
