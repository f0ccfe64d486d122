//! What a WebSocket client that sends without reading can make the server
//! hold, over real sockets: re-subscribing with `since` in a loop holds one
//! replay, and a flood of large pings is closed 4008 instead of queueing
//! every pong.
//!
//! The server's writer only falls behind once the kernel's socket buffers
//! between it and the client are full (a few MiB on loopback), so these
//! tests move a few MiB: anything less would be written out before any
//! queue grew.

mod common;

use std::net::SocketAddr;

use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio::net::{TcpSocket, TcpStream};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::WebSocketStream;

use common::{test_config, TestServer, STEP};
use tickcast_testkit::ws::next_json;

type Ws = WebSocketStream<TcpStream>;

/// A WebSocket client with a small receive buffer, so that the server's
/// writes back up soon after the client stops reading.
async fn connect(addr: SocketAddr) -> Ws {
    let socket = TcpSocket::new_v4().expect("socket");
    socket.set_recv_buffer_size(8 * 1024).expect("SO_RCVBUF");
    let stream = socket.connect(addr).await.expect("connect");
    let (mut ws, _) = tokio_tungstenite::client_async(format!("ws://{addr}/ws"), stream)
        .await
        .expect("ws handshake");
    assert_eq!(next_json(&mut ws).await["type"], "welcome");
    ws
}

/// The next message, failing the test after [`STEP`].
async fn next(ws: &mut Ws) -> Option<Message> {
    tokio::time::timeout(STEP, ws.next())
        .await
        .expect("a frame in time")
        .and_then(Result::ok)
}

/// Offsets of the events in an `event` or `batch` frame.
fn event_offsets(frame: &Value) -> Vec<String> {
    let events = match frame["type"].as_str() {
        Some("event") => vec![frame.clone()],
        Some("batch") => frame["events"].as_array().cloned().unwrap_or_default(),
        _ => Vec::new(),
    };
    events
        .iter()
        .filter_map(|e| e["offset"].as_str().map(str::to_owned))
        .collect()
}

async fn publish(server: &TestServer, body: String) -> Vec<String> {
    let answer = server.post("/api/publish", body).await;
    assert_eq!(answer.status, 202, "{}", answer.text());
    answer.json()["offsets"]
        .as_array()
        .expect("offsets")
        .iter()
        .filter_map(|o| o.as_str().map(str::to_owned))
        .collect()
}

#[tokio::test]
async fn re_subscribing_with_since_without_reading_holds_one_replay() {
    const EVENTS: usize = 800;
    const SUBSCRIBES: usize = 1_000;
    let mut config = test_config();
    config.limits.max_publish_bytes = 16 << 20;
    let server = TestServer::start(config).await;
    // 8 MB of history: one replay of it is more than the socket buffers
    // hold, so the writer is stuck inside the first replay or so.
    let pad = "x".repeat(10_000);
    let events: Vec<Value> = (0..EVENTS)
        .map(|n| json!({"symbol":"AAPL","pattern":"Doji","tier":"daily","n":n,"pad":pad}))
        .collect();
    let history = publish(&server, Value::from(events).to_string()).await;
    assert_eq!(history.len(), EVENTS);
    let replay = &history[1..];

    let mut ws = connect(server.addr()).await;
    let subscribe = json!({"op":"subscribe","id":"s1","filter":{},"since":history[0]}).to_string();
    for _ in 0..SUBSCRIBES {
        ws.send(Message::text(subscribe.clone()))
            .await
            .expect("send subscribe");
    }

    // Read it all back. Each `subscribe` is answered; once the last answer
    // is in, its replay is queued (both under the publish lock), so an
    // event published then comes after it.
    let mut subscribed = 0;
    let mut received: Vec<String> = Vec::new();
    let mut live: Option<String> = None;
    loop {
        let text = match next(&mut ws).await {
            Some(Message::Text(text)) => text,
            Some(Message::Close(frame)) => panic!("closed: {frame:?}"),
            Some(_) => continue,
            None => panic!("the connection ended"),
        };
        let frame: Value = serde_json::from_str(&text).expect("JSON");
        if frame["type"] == "subscribed" {
            subscribed += 1;
            if subscribed == SUBSCRIBES {
                let offsets = publish(
                    &server,
                    json!({"symbol":"AAPL","pattern":"Doji","tier":"daily","n":-1}).to_string(),
                )
                .await;
                live = offsets.into_iter().next();
            }
            continue;
        }
        let offsets = event_offsets(&frame);
        assert!(!offsets.is_empty(), "unexpected frame: {frame}");
        let done = live.as_ref().is_some_and(|l| offsets.contains(l));
        received.extend(offsets);
        // Without the replacement, every subscribe queues a whole replay.
        assert!(
            received.len() <= 3 * replay.len() + 1,
            "{} events replayed for {} subscribes: the replays pile up",
            received.len(),
            subscribed
        );
        if done {
            break;
        }
    }
    assert_eq!(subscribed, SUBSCRIBES);
    let live = live.expect("published");
    // The last subscribe's replay in full and in order, then the live
    // event: no gap, no duplicate.
    let expected: Vec<&String> = replay.iter().chain([&live]).collect();
    assert!(received.len() >= expected.len(), "{received:?}");
    let tail: Vec<&String> = received[received.len() - expected.len()..].iter().collect();
    assert_eq!(tail, expected);
    let stats = server.stats().await;
    assert_eq!(stats["delivery"]["slow_consumer_closes"], 0);
    server.stop().await;
}

#[tokio::test]
async fn a_flood_of_large_pings_without_reading_is_closed_4008() {
    const PINGS: usize = 2_500;
    let server = TestServer::start(test_config()).await;
    let mut ws = connect(server.addr()).await;
    // 10 MB of pongs: a few MiB fill the socket buffers, then the pongs
    // queue until `delivery.message_capacity_bytes` (256 KiB).
    let ts = "t".repeat(4 * 1024);
    let ping = json!({"op":"ping","ts":ts}).to_string();
    for _ in 0..PINGS {
        // The server may end the connection before the last ones.
        if ws.send(Message::text(ping.clone())).await.is_err() {
            break;
        }
    }

    let mut pongs = 0;
    let mut last_error = None;
    let close = loop {
        match next(&mut ws).await {
            Some(Message::Text(text)) => {
                let frame: Value = serde_json::from_str(&text).expect("JSON");
                match frame["type"].as_str() {
                    Some("pong") => pongs += 1,
                    Some("error") => last_error = Some(frame["code"].clone()),
                    _ => panic!("unexpected frame: {frame}"),
                }
            }
            Some(Message::Close(frame)) => break frame.map(|f| u16::from(f.code)),
            Some(_) => {}
            None => panic!("the connection ended without a close frame after {pongs} pongs"),
        }
    };
    assert_eq!(close, Some(4008));
    assert_eq!(last_error, Some(json!("slow_consumer")));
    assert!(pongs < PINGS, "every pong was queued");
    let stats = server.stats().await;
    assert_eq!(stats["delivery"]["slow_consumer_closes"], 1);
    // The server is still there for everyone else.
    let mut other = connect(server.addr()).await;
    other
        .send(Message::text(r#"{"op":"ping","ts":1}"#))
        .await
        .expect("ping");
    assert_eq!(next_json(&mut other).await, json!({"type":"pong","ts":1}));
    server.stop().await;
}
