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

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use common::group::{Group, Mode};
use common::nodes::Node;
use common::roaming::{Roamer, Transport};
use common::traffic::{
    assert_exactly_once, assert_offsets_increase, barrier, from, publish, publish_until,
    wait_published, SYMBOLS,
};

/// Three nodes, three clients on each (WebSocket: everything and AAPL;
/// SSE), 300 events of mixed symbols and priorities published 10 at a time
/// through the nodes in turn.
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streams_a_crashed_nodes_clients_resume_on_it_restarted_without_gap_or_duplicate() {
    streams_crash(Then::Restart).await;
}

/// Node offsets (pub/sub, RabbitMQ): a resume on another node, or on the
/// restarted one, answers `history_gone` (operations.md, "Which mode gives
/// which guarantee"), the client goes on live, and no connection gets an
/// event twice; the other nodes' clients get everything once.
///
/// Across the crash a victim may get an event again: `history_gone` makes
/// no promise there, and operations.md says delivery from RabbitMQ is at
/// least once (a message the dead node had not acknowledged comes again,
/// and a restarted node's de-duplication window starts empty). Seen with
/// RabbitMQ after a restart, once in about ten runs.
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
        for session in 0..log.sessions.len() {
            let mut seen = std::collections::BTreeSet::new();
            let twice: Vec<_> = log
                .events
                .iter()
                .filter(|g| g.session == session && !seen.insert(&g.id))
                .map(|g| &g.id)
                .collect();
            assert!(
                twice.is_empty(),
                "{}: session {session} got {twice:?} twice",
                client.name
            );
        }
        let again = log.counts().into_values().filter(|n| *n > 1).count();
        eprintln!("{}: {again} events again after the crash", client.name);
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
