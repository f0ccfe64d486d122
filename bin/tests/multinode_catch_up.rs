//! Redis Streams: a client resuming on a node that has not read the
//! stream as far as the client's `since` yet, a restarted node reloading
//! its history or a node behind the stream, must still get exactly what it
//! missed (issue 14: "`since` ... replays exactly what the client has not
//! had ... on any node in Streams mode, after a node crash or restart
//! too").
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
    assert_exactly_once, assert_offsets_increase, barrier, publish, publish_until, wait_published,
};

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

// The restarted node answers `/ready` 200 only once the entries it
// reloads (history and its pending ones) are in its hub.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streams_a_client_resuming_once_a_restarted_node_is_ready_misses_nothing() {
    resume_while_a_restarted_node_reloads(true).await;
}

// Before that it refuses clients (close 1013), and they come back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streams_a_client_resuming_as_a_restarted_node_listens_misses_nothing() {
    resume_while_a_restarted_node_reloads(false).await;
}

/// Streams: a node that fell behind the stream (here: SIGSTOPped while
/// 20,000 entries were added) still replays exactly what a client resuming
/// there missed, once it has read that far.
// While the node catches up, a `since` above its latest offset waits for
// the node to pass it, rather than answering `history_gone`.
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
