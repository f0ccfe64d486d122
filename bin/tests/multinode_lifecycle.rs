//! Node runs, as other nodes and the broker see them (issue 14):
//!
//! - two nodes started in the same millisecond have offsets of their own:
//!   a client resuming on one with the other's offset gets `history_gone`,
//!   never a partial replay that silently skips events;
//! - a departed node's RabbitMQ queues expire (`queue_expires_s`), while a
//!   live node's do not.
//!
//! Brokers come from `scripts/brokers.sh start`; without them a test
//! skips, except under `CI=true`, where it fails.

mod common;

use std::net::SocketAddr;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use http_body_util::{BodyExt, Empty};
use hyper_util::rt::TokioIo;
use lapin::options::QueueDeclareOptions;
use lapin::types::FieldTable;
use lapin::{Connection, ConnectionProperties};
use serde_json::{json, Value};
use tickcast_core::hub::epoch;
use tickcast_core::model::Offset;
use tokio::sync::oneshot;
use tokio_tungstenite::tungstenite::Message;

use common::group::{Group, Mode};
use common::keepalive::http;
use common::nodes::Node;
use common::STEP;

/// A node of this process (no broker: it numbers its events itself)
/// whose run counts as started at `at`; stopped when the sender drops.
async fn node_started_at(at: SystemTime) -> (SocketAddr, oneshot::Sender<()>) {
    let mut config = common::test_config();
    config.delivery.rate_limit_per_user = 0;
    let (stop, stopped) = oneshot::channel::<()>();
    let server = tickcast::server::serve_started_at(config, Some(at), async move {
        let _ = stopped.await;
    })
    .await
    .expect("the server starts");
    (server.addr(), stop)
}

/// Publishes `n` events (`<prefix>-<i>`) to `addr` and returns their offsets.
async fn publish(addr: SocketAddr, prefix: &str, n: usize) -> Vec<Offset> {
    let body = Value::Array(
        (0..n)
            .map(|i| json!({"pattern": "Doji", "symbol": "AAPL", "event_id": format!("{prefix}-{i}")}))
            .collect(),
    );
    let (status, answer) = http(addr, "POST", "/api/publish", Some(&body))
        .await
        .expect("published");
    assert_eq!(status, 202, "{answer}");
    answer["offsets"]
        .as_array()
        .expect("offsets")
        .iter()
        .map(|o| o.as_str().and_then(|o| o.parse().ok()).expect("an offset"))
        .collect()
}

/// Subscribes over WebSocket with `since`: (`recovered`, whether
/// `history_gone` came). A `ping` after the `subscribe` bounds the wait:
/// protocol messages keep their order, so a `history_gone` comes before
/// the `pong`.
async fn resume_ws(addr: SocketAddr, since: Offset) -> (u64, bool) {
    let (mut ws, _) = tokio_tungstenite::connect_async(format!("ws://{addr}/ws"))
        .await
        .expect("ws connects");
    let op = json!({"op": "subscribe", "id": "s", "filter": {}, "since": since.to_string()});
    ws.send(Message::text(op.to_string())).await.unwrap();
    ws.send(Message::text(r#"{"op":"ping","ts":1}"#))
        .await
        .unwrap();
    let (mut recovered, mut gone) = (None, false);
    loop {
        let message = tokio::time::timeout(STEP, ws.next())
            .await
            .expect("a frame in time")
            .expect("open")
            .expect("a frame");
        let Message::Text(text) = message else {
            continue;
        };
        let frame: Value = serde_json::from_str(&text).unwrap();
        match frame["type"].as_str() {
            Some("subscribed") => recovered = frame["recovered"].as_u64(),
            Some("error") if frame["code"] == "history_gone" => gone = true,
            Some("pong") => return (recovered.expect("subscribed before pong"), gone),
            _ => {}
        }
    }
}

/// Opens `/sse` with `Last-Event-ID: since`: (`recovered`, whether
/// `history_gone` came right after `subscribed`).
async fn resume_sse(addr: SocketAddr, since: Offset) -> (u64, bool) {
    let stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .unwrap();
    tokio::spawn(connection);
    let request = hyper::Request::get("/sse")
        .header("host", addr.to_string())
        .header("last-event-id", since.to_string())
        .body(Empty::<Bytes>::new())
        .unwrap();
    let response = sender.send_request(request).await.unwrap();
    assert_eq!(response.status(), 200);
    let mut body = response.into_body();
    let mut text = String::new();
    let mut recovered = None;
    loop {
        while let Some(end) = text.find("\n\n") {
            let block: String = text.drain(..end + 2).collect();
            let data = block
                .lines()
                .find_map(|l| l.strip_prefix("data: "))
                .and_then(|d| serde_json::from_str::<Value>(d).ok())
                .unwrap_or(Value::Null);
            if block.contains("event: subscribed") {
                recovered = data["recovered"].as_u64();
                if recovered != Some(0) {
                    return (recovered.unwrap_or(0), false);
                }
            } else if let Some(recovered) = recovered {
                // The message right after `subscribed`.
                return (recovered, block.contains("event: history_gone"));
            }
        }
        // With nothing replayed and no `history_gone`, nothing would come:
        // a bounded wait, then "not gone" (which fails the callers).
        let limit = if recovered.is_some() {
            Duration::from_secs(2)
        } else {
            STEP
        };
        match tokio::time::timeout(limit, body.frame()).await {
            Ok(Some(Ok(frame))) => {
                if let Ok(chunk) = frame.into_data() {
                    text.push_str(&String::from_utf8_lossy(&chunk));
                }
            }
            _ => return (recovered.expect("subscribed"), false),
        }
    }
}

/// `since` on the node at `addr` is someone else's: no replay at all, and
/// `history_gone`, over WebSocket and SSE.
async fn assert_foreign(addr: SocketAddr, since: Offset, what: &str) {
    assert_eq!(resume_ws(addr, since).await, (0, true), "ws: {what}");
    assert_eq!(resume_sse(addr, since).await, (0, true), "sse: {what}");
}

/// Two nodes whose runs started in the same millisecond, each numbering
/// its own 300 events: each one's offsets are foreign to the other (before
/// epochs carried a nonce, a client resuming with the other node's 40th
/// offset got `recovered: 260` and silently skipped 40 events).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nodes_started_in_the_same_millisecond_never_take_each_others_offsets() {
    let at = SystemTime::now();
    let (a, _stop_a) = node_started_at(at).await;
    let (b, _stop_b) = node_started_at(at).await;
    let a_offsets = publish(a, "a", 300).await;
    let b_offsets = publish(b, "b", 300).await;
    let ms = at.duration_since(UNIX_EPOCH).unwrap().as_millis() as u64;
    assert_eq!(epoch::start_ms(a_offsets[0].major), ms);
    assert_eq!(epoch::start_ms(b_offsets[0].major), ms);
    assert_ne!(a_offsets[0].major, b_offsets[0].major);

    // A client that had 40 events from one node moves to the other.
    assert_foreign(b, a_offsets[39], "b took a's offset").await;
    assert_foreign(a, b_offsets[39], "a took b's offset").await;
    // The same offsets on their own node: the 260 events after them.
    assert_eq!(resume_ws(a, a_offsets[39]).await, (260, false));
    assert_eq!(resume_sse(b, b_offsets[39]).await, (260, false));
}

/// The same with two processes started together (whether they share the
/// millisecond is up to the OS; the offsets must be foreign either way).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_processes_started_together_never_take_each_others_offsets() {
    let (a, b) = tokio::join!(
        Node::start("together-a", &[]),
        Node::start("together-b", &[])
    );
    let a_offsets = publish(a.addr(), "a", 100).await;
    let b_offsets = publish(b.addr(), "b", 100).await;
    let (ea, eb) = (a_offsets[0].major, b_offsets[0].major);
    eprintln!(
        "epochs {ea} and {eb}: started {} ms apart",
        epoch::start_ms(ea).abs_diff(epoch::start_ms(eb))
    );
    assert_ne!(ea, eb);
    assert_foreign(b.addr(), a_offsets[39], "b took a's offset").await;
    assert_foreign(a.addr(), b_offsets[39], "a took b's offset").await;
    assert_eq!(resume_ws(a.addr(), a_offsets[39]).await, (60, false));
}

/// Whether `queue` exists (a passive declare, on a channel of its own: a
/// failed one closes the channel). Looking renews a queue's lease.
async fn queue_exists(connection: &Connection, queue: &str) -> bool {
    let Ok(channel) = connection.create_channel().await else {
        panic!("cannot open a channel");
    };
    let passive = QueueDeclareOptions {
        passive: true,
        ..QueueDeclareOptions::default()
    };
    let exists = channel
        .queue_declare(queue.into(), passive, FieldTable::default())
        .await
        .is_ok();
    let _ = channel.close(200, "OK".into()).await;
    exists
}

/// A node's queue and its `<queue>.dead` outlive `queue_expires_s` while
/// the node runs, and are deleted by the broker after it is SIGKILLed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_departed_nodes_queues_expire_and_a_live_ones_do_not() {
    let Some(url) = Mode::Amqp.shared_broker() else {
        return;
    };
    const EXPIRES: Duration = Duration::from_secs(2);
    let group = Group::new(Mode::Amqp, &url, "expiry")
        .with("INGEST__AMQP__QUEUE_EXPIRES_S", EXPIRES.as_secs());
    let mut node = group.start("n").await;
    let queue = group.queue("n");
    let dead = format!("{queue}.dead");
    let connection = Connection::connect(&url, ConnectionProperties::default())
        .await
        .expect("RabbitMQ");
    assert!(queue_exists(&connection, &queue).await, "{queue}");
    assert!(queue_exists(&connection, &dead).await, "{dead}");
    // Alive: nobody consumes `<queue>.dead`, yet the node keeps it.
    tokio::time::sleep(EXPIRES * 2).await;
    assert!(queue_exists(&connection, &queue).await, "{queue}");
    assert!(queue_exists(&connection, &dead).await, "{dead}");

    node.kill().await;
    // Looking renews the lease, so look less often than it expires.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        tokio::time::sleep(EXPIRES + Duration::from_secs(1)).await;
        let left = (
            queue_exists(&connection, &queue).await,
            queue_exists(&connection, &dead).await,
        );
        if left == (false, false) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "still there (queue, dead): {left:?}"
        );
    }
}
