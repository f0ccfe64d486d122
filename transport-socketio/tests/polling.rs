//! Socket.IO over HTTP long-polling, its limits, and its upgrade to
//! WebSocket, through real sockets.

mod common;

use std::time::Duration;

use serde_json::{json, Value};
use tickcast_core::Hub;
use tickcast_transport_socketio::SocketIoConfig;

use common::{http, hub_config, packets, pattern, server, Eio};

/// A polling handshake: the sid.
async fn handshake(addr: std::net::SocketAddr) -> String {
    let (status, body) = http(addr, "GET", "/socket.io/?EIO=4&transport=polling&t=a", b"").await;
    assert_eq!(status, 200, "{body}");
    let open: Value = serde_json::from_str(body.strip_prefix('0').unwrap()).unwrap();
    assert_eq!(open["upgrades"], json!(["websocket"]));
    open["sid"].as_str().unwrap().to_owned()
}

fn path(sid: &str) -> String {
    format!("/socket.io/?EIO=4&transport=polling&sid={sid}")
}

/// GETs until `want` packets came (pings answered by POST).
async fn poll(addr: std::net::SocketAddr, sid: &str, want: usize) -> Vec<String> {
    let mut got = Vec::new();
    while got.len() < want {
        let (status, body) = http(addr, "GET", &path(sid), b"").await;
        assert_eq!(status, 200, "{body}");
        for packet in packets(&body) {
            match packet.as_str() {
                "2" => {
                    http(addr, "POST", &path(sid), b"3").await;
                }
                "6" => {}
                _ => got.push(packet),
            }
        }
    }
    got
}

#[tokio::test]
async fn polling_connects_subscribes_and_receives_then_upgrades_to_websocket() {
    let hub = Hub::new(hub_config());
    let addr = server(hub.clone(), SocketIoConfig::default()).await;
    let sid = handshake(addr).await;
    // Two packets in one POST, joined with the record separator.
    let (status, body) = http(
        addr,
        "POST",
        &path(&sid),
        "40\u{1e}421[\"subscribe\",{\"id\":\"s1\",\"filter\":{\"symbols\":[\"AAPL\"]}}]".as_bytes(),
    )
    .await;
    assert_eq!((status, body.as_str()), (200, "ok"));
    let got = poll(addr, &sid, 3).await;
    assert!(got[0].starts_with("40{"), "{got:?}");
    assert!(got[1].starts_with(r#"42["welcome","#), "{got:?}");
    assert_eq!(
        got[2],
        r#"431[{"type":"subscribed","id":"s1","recovered":0}]"#
    );
    let offset = hub.publish(pattern("AAPL", 0.9)).unwrap();
    let got = poll(addr, &sid, 1).await;
    let args: Vec<Value> = serde_json::from_str(got[0].strip_prefix("42").unwrap()).unwrap();
    assert_eq!(args[0], "pattern_detected");
    assert_eq!(args[2], offset.to_string());

    // The upgrade: a GET waiting when the probe comes is answered at once.
    let get_path = path(&sid);
    let waiting = tokio::spawn(async move { http(addr, "GET", &get_path, b"").await });
    tokio::time::sleep(Duration::from_millis(100)).await;
    let mut ws = Eio::connect(addr, &format!("&sid={sid}")).await;
    ws.send("2probe").await;
    assert_eq!(ws.next().await, "3probe");
    let (status, body) = waiting.await.unwrap();
    assert_eq!((status, body.as_str()), (200, "6"));
    // Published before the client's `5`: written on the WebSocket first.
    let early = hub.publish(pattern("AAPL", 0.9)).unwrap();
    ws.send("5").await;
    let late = hub.publish(pattern("AAPL", 0.9)).unwrap();
    for offset in [early, late] {
        let args = ws.event().await;
        assert_eq!(args[1]["offset"], offset.to_string());
    }
    // Polling is over for this sid.
    let (status, _) = http(addr, "GET", &path(&sid), b"").await;
    assert_eq!(status, 400);
    ws.send(r#"422["unsubscribe",{"id":"s1"}]"#).await;
    assert_eq!(ws.ack(2).await, json!({"type":"unsubscribed","id":"s1"}));
}

#[tokio::test]
async fn bad_handshakes_get_engine_io_errors() {
    let hub = Hub::new(hub_config());
    let addr = server(hub, SocketIoConfig::default()).await;
    let (status, body) = http(addr, "GET", "/socket.io/?EIO=3&transport=polling", b"").await;
    assert_eq!(status, 400);
    assert_eq!(serde_json::from_str::<Value>(&body).unwrap()["code"], 5);
    let (status, body) = http(
        addr,
        "GET",
        "/socket.io/?EIO=4&transport=carrier-pigeon",
        b"",
    )
    .await;
    assert_eq!(status, 400);
    assert_eq!(serde_json::from_str::<Value>(&body).unwrap()["code"], 0);
    let (status, body) = http(addr, "GET", &path("unknown"), b"").await;
    assert_eq!(status, 400);
    assert_eq!(serde_json::from_str::<Value>(&body).unwrap()["code"], 1);
    let (status, _) = http(addr, "POST", &path("unknown"), b"40").await;
    assert_eq!(status, 400);
}

#[tokio::test]
async fn an_oversized_post_is_refused() {
    let hub = Hub::new(hub_config());
    let config = SocketIoConfig::default().with_max_payload(1024);
    let addr = server(hub, config).await;
    let sid = handshake(addr).await;
    let big = format!("42[\"subscribe\",{{\"id\":\"{}\"}}]", "x".repeat(2000));
    let (status, _) = http(addr, "POST", &path(&sid), big.as_bytes()).await;
    assert_eq!(status, 413);
    // The connection goes on.
    let (status, body) = http(addr, "POST", &path(&sid), b"40").await;
    assert_eq!((status, body.as_str()), (200, "ok"));
    let got = poll(addr, &sid, 1).await;
    assert!(got[0].starts_with("40{"), "{got:?}");
}

#[tokio::test]
async fn a_second_concurrent_get_is_refused_and_closes_the_connection() {
    let hub = Hub::new(hub_config());
    let addr = server(hub.clone(), SocketIoConfig::default()).await;
    let sid = handshake(addr).await;
    http(addr, "POST", &path(&sid), b"40").await;
    let got = poll(addr, &sid, 2).await;
    assert!(got[1].starts_with(r#"42["welcome""#), "{got:?}");
    let first_path = path(&sid);
    let first = tokio::spawn(async move { http(addr, "GET", &first_path, b"").await });
    tokio::time::sleep(Duration::from_millis(100)).await;
    let (status, _) = http(addr, "GET", &path(&sid), b"").await;
    assert_eq!(status, 400);
    // The waiting GET gets the end of the connection: Engine.IO's close.
    let (status, body) = first.await.unwrap();
    assert_eq!(status, 200);
    assert_eq!(
        packets(&body).last().map(String::as_str),
        Some("1"),
        "{body}"
    );
    for _ in 0..100 {
        if hub.connection_count() == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(hub.connection_count(), 0);
}

#[tokio::test]
async fn a_post_body_that_does_not_arrive_in_time_is_refused() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let hub = Hub::new(hub_config());
    let config = SocketIoConfig::default().with_body_timeout(Duration::from_millis(200));
    let addr = server(hub, config).await;
    let sid = handshake(addr).await;
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let head = format!(
        "POST {} HTTP/1.1\r\nhost: x\r\ncontent-length: 10\r\n\r\n40",
        path(&sid)
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    let mut answer = vec![0u8; 12];
    tokio::time::timeout(Duration::from_secs(10), stream.read_exact(&mut answer))
        .await
        .expect("an answer before the client sends the rest")
        .unwrap();
    assert_eq!(&answer, b"HTTP/1.1 408");
}

#[tokio::test]
async fn a_client_that_stops_polling_is_dropped_and_its_next_poll_says_so() {
    let hub = Hub::new(hub_config());
    let mut config = SocketIoConfig::default();
    config.session.write_timeout = Duration::from_millis(200);
    let addr = server(hub.clone(), config).await;
    let sid = handshake(addr).await;
    http(
        addr,
        "POST",
        &path(&sid),
        b"40\x1e421[\"subscribe\",{\"id\":\"s1\",\"filter\":{}}]",
    )
    .await;
    poll(addr, &sid, 3).await;
    // Far more than a polling connection buffers, never polled.
    let padding = "x".repeat(2000);
    for _ in 0..400 {
        hub.publish(common::event(
            json!({"symbol": "AAPL", "pattern": "Doji", "tier": "daily", "confidence": 0.5, "note": padding}),
        ))
        .unwrap();
    }
    for _ in 0..500 {
        if hub.connection_count() == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(hub.connection_count(), 0, "dropped at the write deadline");
    let (status, body) = http(addr, "GET", &path(&sid), b"").await;
    assert_eq!(status, 200);
    let got = packets(&body);
    assert_eq!(got.last().map(String::as_str), Some("1"));
    assert!(body.len() < 2 * polling_buffer(), "{} bytes", body.len());
}

/// What a polling connection buffers at most (docs/protocol.md).
fn polling_buffer() -> usize {
    256 * 1024
}
