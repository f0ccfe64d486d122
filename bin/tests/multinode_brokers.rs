//! Three `tickcast` processes while their broker is SIGKILLed and
//! restarted under load (issue 14), each on a private broker of its own:
//!
//! - Redis Streams (a Redis that keeps its data, as production's does)
//!   and RabbitMQ: every event answered 202 reaches every client exactly
//!   once, the producer retrying what was not answered 202 with the same
//!   `event_id`;
//! - Redis pub/sub: every event answered 202 reached some node's clients
//!   (but those whose PUBLISH was in flight at the very kill: Redis answers
//!   a PUBLISH before it writes to the subscribers), and none answered 503
//!   `no_receiver` reached anyone.
//!
//! Without the broker programs a test fails (as testkit's private brokers
//! do); the shared brokers are never touched.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use tickcast_testkit::{RabbitNode, RedisServer};

use common::group::{Group, Mode};
use common::keepalive::{http, KeepAlive};
use common::nodes::Node;
use common::roaming::{Roamer, Transport, WAIT};

/// Events answered 202 before the broker is killed.
const BEFORE: usize = 60;
/// ...and after it is back.
const AFTER: usize = 60;
/// How long a killed Redis stays down.
const DOWN: Duration = Duration::from_secs(1);

fn event(id: &str, n: usize) -> Value {
    let priority = if n % 7 == 6 { "critical" } else { "low" };
    json!({"pattern": "Doji", "symbol": "AAPL", "confidence": 0.7, "tier": "daily",
           "priority": priority, "event_id": id})
}

/// What the producer was answered, per event id.
#[derive(Debug, Default)]
struct Ledger {
    /// Answered 202 (at the last attempt).
    accepted: Vec<String>,
    /// Of those, the ones whose request was sent before the broker was
    /// killed and answered after: in flight at the kill.
    in_flight: BTreeSet<String>,
    /// When the broker was about to be killed.
    killed_at: Option<Instant>,
    /// Answered 503 `no_receiver` at some attempt.
    no_receiver: BTreeSet<String>,
    /// Other answers (503 `broker_unavailable`, no answer), counted.
    other: BTreeMap<String, usize>,
}

/// Producers publishing at once, so that requests are in flight whenever
/// the broker dies.
const PRODUCERS: usize = 3;

/// Producer `who`: one event per request, through the nodes in turn; with
/// `retry`, an event not answered 202 is sent again (same `event_id`,
/// through the next node) until it is. Stops once `stop` is set.
async fn produce(
    who: usize,
    group: Group,
    nodes: Vec<SocketAddr>,
    retry: bool,
    ledger: Arc<Mutex<Ledger>>,
    stop: Arc<AtomicBool>,
) {
    let mut nodes: Vec<KeepAlive> = nodes.into_iter().map(KeepAlive::new).collect();
    let mut attempt = who;
    let mut n = 0;
    while !stop.load(Ordering::Relaxed) {
        let id = format!("{}-p{who}-{n}", group.tag);
        loop {
            let count = nodes.len();
            let node = &mut nodes[attempt % count];
            attempt += 1;
            let sent_at = Instant::now();
            let answer = node
                .request("POST", &group.publish_path(), Some(&event(&id, n)))
                .await;
            if record(&ledger, &id, sent_at, answer) || !retry {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        n += 1;
        tokio::time::sleep(Duration::from_millis(3)).await;
    }
}

/// Notes the answer to publishing `id`; true when it was 202.
fn record(
    ledger: &Mutex<Ledger>,
    id: &str,
    sent_at: Instant,
    answer: Result<(u16, Value), String>,
) -> bool {
    let mut ledger = ledger.lock().unwrap();
    match answer {
        Ok((202, _)) => {
            ledger.accepted.push(id.to_owned());
            if ledger.killed_at.is_some_and(|killed| sent_at < killed) {
                ledger.in_flight.insert(id.to_owned());
            }
            return true;
        }
        Ok((503, body)) if body["errors"][0]["reason"] == "no_receiver" => {
            ledger.no_receiver.insert(id.to_owned());
        }
        Ok((503, body)) => {
            let reason = body["errors"][0]["reason"].as_str().unwrap_or("?");
            *ledger.other.entry(reason.to_owned()).or_default() += 1;
        }
        Ok((status, body)) => panic!("{status}: {body}"),
        Err(e) => *ledger.other.entry(e).or_default() += 1,
    }
    false
}

/// Waits until the producers have `n` events answered 202.
async fn wait_accepted(
    ledger: &Mutex<Ledger>,
    n: usize,
    producers: &[tokio::task::JoinHandle<()>],
) {
    let deadline = Instant::now() + WAIT;
    while ledger.lock().unwrap().accepted.len() < n {
        assert!(
            producers.iter().all(|p| !p.is_finished()),
            "a producer failed"
        );
        assert!(
            Instant::now() < deadline,
            "only {:?} answered",
            ledger.lock().unwrap()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Three nodes of `group`, two WebSocket clients and one SSE client on
/// each, [`PRODUCERS`] producers; `crash` kills and restarts the broker once
/// [`BEFORE`] events were accepted. Returns the clients and the ledger
/// once [`AFTER`] more were accepted and a last event reached everyone.
async fn under_load(
    group: &Group,
    retry: bool,
    crash: impl FnOnce() + Send + 'static,
) -> (Vec<Roamer>, Ledger, Vec<Node>) {
    let nodes = group.start_nodes(3).await;
    let addrs: Vec<SocketAddr> = nodes.iter().map(Node::addr).collect();
    let mut clients = Vec::new();
    for (i, addr) in addrs.iter().enumerate() {
        // A client stays on its node: the node, not the client, rides out
        // the broker's restart.
        let on = vec![*addr];
        clients.push(Roamer::spawn(
            &format!("ws@{i}"),
            Transport::Ws,
            None,
            on.clone(),
        ));
        clients.push(Roamer::spawn(
            &format!("ws-b@{i}"),
            Transport::Ws,
            None,
            on.clone(),
        ));
        clients.push(Roamer::spawn(&format!("sse@{i}"), Transport::Sse, None, on));
    }
    for client in &clients {
        client.wait_sessions(1).await;
    }
    let ledger = Arc::new(Mutex::new(Ledger::default()));
    let stop = Arc::new(AtomicBool::new(false));
    let producers: Vec<_> = (0..PRODUCERS)
        .map(|who| {
            tokio::spawn(produce(
                who,
                group.clone(),
                addrs.clone(),
                retry,
                ledger.clone(),
                stop.clone(),
            ))
        })
        .collect();
    wait_accepted(&ledger, BEFORE, &producers).await;
    ledger.lock().unwrap().killed_at = Some(Instant::now());
    tokio::task::spawn_blocking(crash)
        .await
        .expect("the broker restarts");
    let restarted = ledger.lock().unwrap().accepted.len();
    wait_accepted(&ledger, restarted + AFTER, &producers).await;
    stop.store(true, Ordering::Relaxed);
    for producer in producers {
        producer.await.expect("a producer");
    }
    for node in &nodes {
        node.wait_ready().await;
    }
    // The end: one more event, retried until every node has it (pub/sub:
    // a node may still be resubscribing).
    let last = format!("{}-last", group.tag);
    let deadline = Instant::now() + WAIT;
    loop {
        let answer = http(
            addrs[0],
            "POST",
            &group.publish_path(),
            Some(&event(&last, 0)),
        )
        .await;
        if matches!(answer, Ok((202, _))) && clients_have(&clients, &last).await {
            break;
        }
        assert!(Instant::now() < deadline, "the last event: {answer:?}");
    }
    for client in &clients {
        assert_eq!(client.log().sessions.len(), 1, "{}", client.name);
    }
    let ledger = std::mem::take(&mut *ledger.lock().unwrap());
    eprintln!(
        "{} accepted ({} in flight at the kill); {} answered no_receiver; other answers {:?}",
        ledger.accepted.len(),
        ledger.in_flight.len(),
        ledger.no_receiver.len(),
        ledger.other
    );
    (clients, ledger, nodes)
}

/// Whether every client gets `id` within a second (a bounded wait: the
/// caller publishes it again otherwise).
async fn clients_have(clients: &[Roamer], id: &str) -> bool {
    let deadline = Instant::now() + Duration::from_secs(1);
    loop {
        if clients
            .iter()
            .all(|c| c.log().events.iter().any(|g| g.id == id))
        {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Every accepted event reached every client exactly once, and nothing
/// else arrived (the producer retried until each was accepted).
fn assert_all_exactly_once(clients: &[Roamer], ledger: &Ledger, last: &str) {
    let expected: BTreeSet<&str> = ledger
        .accepted
        .iter()
        .map(String::as_str)
        .chain([last])
        .collect();
    for client in clients {
        let counts = client.log().counts();
        let twice: Vec<_> = counts.iter().filter(|(_, n)| **n > 1).collect();
        let missing: Vec<_> = expected
            .iter()
            .filter(|id| !counts.contains_key(**id))
            .collect();
        let unexpected: Vec<_> = counts
            .keys()
            .filter(|id| !expected.contains(id.as_str()))
            .collect();
        assert!(
            twice.is_empty() && missing.is_empty() && unexpected.is_empty(),
            "{}: of {} accepted, missing {missing:?}, duplicated {twice:?}, unexpected {unexpected:?}",
            client.name,
            expected.len()
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streams_broker_killed_under_load_every_202_reaches_every_client_once() {
    let mut redis = RedisServer::start_durable();
    let url = redis.url();
    let group =
        Group::new(Mode::Streams, &url, "redis-crash").with("DELIVERY__BATCH_WINDOW_MS", 20);
    let (redis_tx, redis_rx) = std::sync::mpsc::channel();
    let (clients, ledger, _nodes) = under_load(&group, true, move || {
        redis.kill();
        // Down for a while: the nodes back off, publishes fail meanwhile.
        std::thread::sleep(DOWN);
        redis.restart();
        let _ = redis_tx.send(redis);
    })
    .await;
    let _redis = redis_rx.recv().expect("the broker");
    assert_all_exactly_once(&clients, &ledger, &format!("{}-last", group.tag));
}

// Known (issue 14, ingest-amqp `a_broker_restart_loses_and_duplicates_
// nothing_confirmed`): confirmed events lost across a RabbitMQ restart in
// about one run in three; this test fails the same way until that is fixed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn amqp_broker_killed_under_load_every_202_reaches_every_client_once() {
    let rabbit = tokio::task::spawn_blocking(RabbitNode::start)
        .await
        .expect("a private RabbitMQ");
    let group =
        Group::new(Mode::Amqp, &rabbit.url(), "amqp-crash").with("DELIVERY__BATCH_WINDOW_MS", 20);
    let (rabbit_tx, rabbit_rx) = std::sync::mpsc::channel();
    let mut rabbit = Some(rabbit);
    let (clients, ledger, _nodes) = under_load(&group, true, move || {
        if let Some(mut rabbit) = rabbit.take() {
            rabbit.crash_and_restart();
            let _ = rabbit_tx.send(rabbit);
        }
    })
    .await;
    let rabbit = rabbit_rx.recv().expect("the broker");
    assert_all_exactly_once(&clients, &ledger, &format!("{}-last", group.tag));
    drop(_nodes);
    tokio::task::spawn_blocking(move || drop(rabbit))
        .await
        .expect("the broker stops");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pubsub_broker_killed_under_load_no_202_reaches_no_node() {
    let mut redis = RedisServer::start();
    let url = redis.url();
    let group =
        Group::new(Mode::PubSub, &url, "pubsub-crash").with("DELIVERY__BATCH_WINDOW_MS", 20);
    let (redis_tx, redis_rx) = std::sync::mpsc::channel();
    let (clients, ledger, _nodes) = under_load(&group, false, move || {
        redis.kill();
        // Down for a while: the nodes back off, publishes fail meanwhile.
        std::thread::sleep(DOWN);
        redis.restart();
        let _ = redis_tx.send(redis);
    })
    .await;
    let _redis = redis_rx.recv().expect("the broker");
    let mut reached: BTreeMap<String, usize> = BTreeMap::new();
    for client in &clients {
        let counts = client.log().counts();
        let twice: Vec<_> = counts.iter().filter(|(_, n)| **n > 1).collect();
        assert!(twice.is_empty(), "{}: duplicates {twice:?}", client.name);
        for id in counts.into_keys() {
            *reached.entry(id).or_default() += 1;
        }
    }
    // A PUBLISH answered in the instant Redis is SIGKILLed may reach no
    // subscriber although Redis counted them: it answers the publisher
    // first and writes to the subscribers' sockets after (seen with a
    // plain Redis client too). Only requests in flight at the kill may
    // be lost so; not one answered 202 before it, nor one while Redis was
    // down or resubscribing.
    let nowhere: Vec<_> = ledger
        .accepted
        .iter()
        .filter(|id| !reached.contains_key(*id) && !ledger.in_flight.contains(*id))
        .collect();
    if !nowhere.is_empty() {
        // Whether the nodes took more events than their clients got: the
        // redis source's counters of each node, beside its clients' count.
        let mut nodes = String::new();
        for (i, node) in _nodes.iter().enumerate() {
            let stats = http(node.addr(), "GET", "/api/stats", None).await;
            let redis = stats.as_ref().ok().and_then(|(_, s)| {
                s["ingest"]
                    .as_array()?
                    .iter()
                    .find(|x| x["name"] == "redis")
                    .cloned()
            });
            let got = clients[3 * i].log().events.len();
            nodes.push_str(&format!("\nnode {i}: clients got {got}; source {redis:?}"));
        }
        panic!("answered 202, reached no node: {nowhere:?}{nodes}");
    }
    // `no_receiver` means delivered nowhere (operations.md).
    let delivered: Vec<_> = ledger
        .no_receiver
        .iter()
        .filter(|id| reached.contains_key(*id))
        .collect();
    assert!(
        delivered.is_empty(),
        "answered no_receiver, delivered: {delivered:?}"
    );
}
