//! Resume across transports while publishing never stops: a client moves
//! WebSocket -> SSE -> WebSocket, each time resuming from the last offset
//! it saw (`since`, then `Last-Event-ID`, then `since`), and ends up with
//! every matching event exactly once, in order.

mod common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use http_body_util::{BodyExt, Empty};
use hyper::Request;
use hyper_util::rt::TokioIo;
use serde_json::{json, Value};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;

use common::{test_config, TestServer, STEP};

const FILTER: &str = r#"{"symbols":["AAPL"]}"#;

/// Publishes AAPL and MSFT events every few ms until `stop`; returns the
/// offsets of the AAPL ones.
async fn publish_until(server: std::net::SocketAddr, stop: Arc<AtomicBool>) -> Vec<String> {
    let mut aapl = Vec::new();
    let mut n = 0u32;
    while !stop.load(Ordering::Relaxed) {
        n += 1;
        let body = json!([
            {"pattern": "Doji", "symbol": "AAPL", "confidence": 0.7, "tier": "daily", "n": n},
            {"pattern": "Doji", "symbol": "MSFT", "confidence": 0.7, "tier": "daily", "n": n}
        ]);
        let answer = common::request(
            server,
            "POST",
            "/api/publish",
            &[],
            body.to_string().into_bytes(),
        )
        .await;
        assert_eq!(answer.status, 202, "{}", answer.text());
        aapl.push(answer.json()["offsets"][0].as_str().unwrap().to_owned());
        tokio::time::sleep(Duration::from_millis(3)).await;
    }
    aapl
}

/// Reads `n` events over WebSocket, resuming from `since`.
async fn over_websocket(server: &TestServer, since: Option<&str>, n: usize) -> Vec<String> {
    let (mut ws, _) = tokio_tungstenite::connect_async(format!("ws://{}/ws", server.addr()))
        .await
        .unwrap();
    let mut op = json!({"op": "subscribe", "id": "s", "filter": serde_json::from_str::<Value>(FILTER).unwrap()});
    if let Some(since) = since {
        op["since"] = json!(since);
    }
    ws.send(Message::text(op.to_string())).await.unwrap();
    let mut offsets = Vec::new();
    while offsets.len() < n {
        let message = tokio::time::timeout(STEP, ws.next())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        let Message::Text(text) = message else {
            continue;
        };
        let frame: Value = serde_json::from_str(&text).unwrap();
        let events = match frame["type"].as_str() {
            Some("event") => vec![frame],
            Some("batch") => frame["events"].as_array().unwrap().clone(),
            Some("error") => panic!("{frame}"),
            _ => continue,
        };
        offsets.extend(
            events
                .iter()
                .map(|e| e["offset"].as_str().unwrap().to_owned()),
        );
    }
    // Dropped mid-stream, as a client that loses its network.
    offsets.truncate(n);
    offsets
}

/// Reads `n` events over SSE, resuming with `Last-Event-ID`.
async fn over_sse(server: &TestServer, last_event_id: &str, n: usize) -> Vec<String> {
    let stream = TcpStream::connect(server.addr()).await.unwrap();
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .unwrap();
    tokio::spawn(connection);
    let request = Request::get("/sse?symbols=AAPL")
        .header("host", server.addr().to_string())
        .header("last-event-id", last_event_id)
        .body(Empty::<Bytes>::new())
        .unwrap();
    let response = sender.send_request(request).await.unwrap();
    assert_eq!(response.status(), 200);
    let mut body = response.into_body();
    let mut text = String::new();
    let mut offsets = Vec::new();
    while offsets.len() < n {
        let frame = tokio::time::timeout(STEP, body.frame())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        let Ok(chunk) = frame.into_data() else {
            continue;
        };
        text.push_str(std::str::from_utf8(&chunk).unwrap());
        while let Some(end) = text.find("\n\n") {
            let block: String = text.drain(..end + 2).collect();
            if let Some(id) = block.lines().find_map(|l| l.strip_prefix("id: ")) {
                offsets.push(id.to_owned());
            }
            assert!(!block.contains("history_gone"), "{block}");
        }
    }
    offsets.truncate(n);
    offsets
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_resumes_across_transports_without_gap_or_duplicate() {
    let server = TestServer::start(test_config()).await;
    let stop = Arc::new(AtomicBool::new(false));
    let publisher = tokio::spawn(publish_until(server.addr(), stop.clone()));

    let mut seen = over_websocket(&server, None, 20).await;
    seen.extend(over_sse(&server, seen.last().unwrap(), 20).await);
    seen.extend(over_websocket(&server, Some(seen.last().unwrap()), 20).await);
    stop.store(true, Ordering::Relaxed);
    let published = publisher.await.unwrap();

    // The client's view is a gapless prefix of what was published: the
    // first event it saw, then every later one up to where it stopped.
    let start = published
        .iter()
        .position(|o| *o == seen[0])
        .expect("seen was published");
    assert_eq!(seen, published[start..start + seen.len()]);
    server.stop().await;
}
