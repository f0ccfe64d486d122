//! The IoT schema end to end through real sockets: readings POSTed over
//! HTTP reach a WebSocket dashboard and an SSE dashboard exactly as their
//! filters on the schema's own dimensions say.

use std::net::SocketAddr;
use std::time::Duration;

use futures_util::SinkExt;
use serde_json::{json, Value};
use tickcast_core::Hub;
use tickcast_testkit::sse::SseStream;
use tickcast_testkit::ws::next_json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;

const PATIENCE: Duration = Duration::from_secs(20);

async fn serve() -> (Hub, SocketAddr) {
    let hub = tickcast_example_iot::hub().expect("the IoT schema is valid");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("a port");
    let addr = listener.local_addr().expect("an address");
    let routes = tickcast_example_iot::routes(hub.clone());
    tokio::spawn(warp::serve(routes).incoming(listener).run());
    (hub, addr)
}

/// One HTTP/1.0 request; the status line's code and the body.
async fn request(addr: SocketAddr, head: &str, body: &str) -> (u16, String) {
    let mut stream = TcpStream::connect(addr).await.expect("connect");
    let request = format!(
        "{head} HTTP/1.0\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(request.as_bytes()).await.expect("write");
    let mut answer = String::new();
    tokio::time::timeout(PATIENCE, stream.read_to_string(&mut answer))
        .await
        .expect("an answer in time")
        .expect("read");
    let status = answer[9..12].parse().expect("a status code");
    let body = answer
        .split("\r\n\r\n")
        .nth(1)
        .unwrap_or_default()
        .to_owned();
    (status, body)
}

async fn publish(addr: SocketAddr, reading: Value) -> u16 {
    request(addr, "POST /readings", &reading.to_string())
        .await
        .0
}

async fn wait_for_connections(hub: &Hub, n: usize) {
    tokio::time::timeout(PATIENCE, async {
        while hub.connection_count() != n {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
    .expect("the dashboards connect");
}

fn sensors(events: &[Value]) -> Vec<(String, f64)> {
    events
        .iter()
        .map(|e| {
            let data = &e["data"];
            let sensor = data["sensor"].as_str().unwrap_or_default().to_owned();
            (sensor, data["celsius"].as_f64().unwrap_or(f64::NAN))
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readings_reach_dashboards_by_site_sensor_and_bands() {
    let (hub, addr) = serve().await;
    let (mut ws, _) = tokio_tungstenite::connect_async(format!("ws://{addr}/ws"))
        .await
        .expect("a WebSocket");
    assert_eq!(next_json(&mut ws).await["type"], "welcome");
    let hot_north = json!({"op": "subscribe", "id": "hot-north",
        "filter": {"sites": ["north"], "min_celsius": 30}});
    ws.send(Message::text(hot_north.to_string()))
        .await
        .expect("send");
    assert_eq!(next_json(&mut ws).await["type"], "subscribed");
    // Sensors fold to lower case on both sides: `T-2` is `t-2`.
    let mut sse = SseStream::open(addr, "/sse?id=dry&sensors=T-2&max_humidity=40").await;
    assert_eq!(sse.next().await.event, "welcome");
    assert_eq!(sse.next().await.event, "subscribed");
    wait_for_connections(&hub, 2).await;

    for reading in [
        json!({"sensor": "t-1", "site": "north", "celsius": 31}),
        json!({"sensor": "t-2", "site": "south", "celsius": 20, "humidity": 35}),
        json!({"sensor": "t-2", "site": "north", "celsius": 29, "humidity": 50}),
        json!({"sensor": "T-2", "site": "north", "celsius": 46, "humidity": 10}),
    ] {
        assert_eq!(publish(addr, reading).await, 202);
    }
    let ws_events = [next_json(&mut ws).await, next_json(&mut ws).await];
    assert_eq!(
        sensors(&ws_events),
        [("t-1".to_owned(), 31.0), ("T-2".to_owned(), 46.0)]
    );
    assert!(ws_events.iter().all(|e| e["subs"] == json!(["hot-north"])));
    let mut sse_events = Vec::new();
    for _ in 0..2 {
        let message = sse.next().await;
        assert_eq!(message.event, "reading", "the schema's default event type");
        sse_events.push(message.data);
    }
    assert_eq!(
        sensors(&sse_events),
        [("t-2".to_owned(), 20.0), ("T-2".to_owned(), 46.0)]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn what_breaks_the_schema_is_refused() {
    let (_hub, addr) = serve().await;
    let (status, body) = request(addr, "POST /readings", r#"{"site":"north","celsius":1}"#).await;
    assert_eq!(status, 400, "a reading names its sensor: {body}");
    assert_eq!(
        publish(addr, json!({"sensor": "x", "site": "west"})).await,
        400
    );
    assert_eq!(
        publish(addr, json!({"sensor": "x", "celsius": 900})).await,
        400
    );

    let (status, body) = request(addr, "GET /sse?tiers=daily", "").await;
    assert_eq!(status, 400, "TickStock's keys mean nothing here: {body}");
    assert!(body.contains("tiers"), "{body}");

    let (mut ws, _) = tokio_tungstenite::connect_async(format!("ws://{addr}/ws"))
        .await
        .expect("a WebSocket");
    assert_eq!(next_json(&mut ws).await["type"], "welcome");
    let west = json!({"op": "subscribe", "id": "w", "filter": {"sites": ["west"]}});
    ws.send(Message::text(west.to_string()))
        .await
        .expect("send");
    let error = next_json(&mut ws).await;
    assert_eq!(error["type"], "error", "{error}");
    assert_eq!(error["id"], "w", "{error}");
}
