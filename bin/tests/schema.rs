//! The `[schema]` section: an operator serves another schema than
//! TickStock's (the IoT sensors of examples/iot-sensors/tickcast.toml), and
//! WebSocket and SSE clients filter on its dimensions end to end.

mod common;

use std::ffi::OsString;
use std::path::Path;

use futures_util::SinkExt;
use serde_json::{json, Value};
use tickcast::config::{load, Overrides};
use tickcast_testkit::sse::SseStream;
use tickcast_testkit::ws::next_json;
use tokio_tungstenite::tungstenite::Message;

use common::TestServer;

const IOT: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../examples/iot-sensors/tickcast.toml"
);

fn no_env() -> Vec<(OsString, OsString)> {
    Vec::new()
}

async fn iot_server() -> TestServer {
    let mut config = load(Some(Path::new(IOT)), no_env(), Overrides::default())
        .expect("the example config loads")
        .config;
    config.listen = "127.0.0.1:0".to_owned();
    config.delivery.batch_window_ms = 0;
    TestServer::start(config).await
}

fn sensor(frame: &Value) -> (&str, &str) {
    let event_type = frame["event_type"].as_str().unwrap_or_default();
    (
        event_type,
        frame["data"]["sensor"].as_str().unwrap_or_default(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_declared_schema_is_served_over_websocket_and_sse() {
    let server = iot_server().await;
    let addr = server.addr();
    let (mut ws, _) = tokio_tungstenite::connect_async(format!("ws://{addr}/ws"))
        .await
        .expect("a WebSocket");
    assert_eq!(next_json(&mut ws).await["type"], "welcome");
    let op = json!({"op": "subscribe", "id": "hot",
        "filter": {"sites": ["north"], "min_celsius": 30, "event_types": ["reading", "alarm"]}});
    ws.send(Message::text(op.to_string())).await.expect("send");
    assert_eq!(next_json(&mut ws).await["type"], "subscribed");
    let mut sse = SseStream::open(addr, "/sse?id=dry&sensors=T-2&max_humidity=40").await;
    assert_eq!(sse.next().await.event, "welcome");
    assert_eq!(sse.next().await.event, "subscribed");

    let readings = [
        (
            None,
            json!({"sensor": "t-1", "site": "north", "celsius": 31}),
        ),
        (
            None,
            json!({"sensor": "t-2", "site": "south", "celsius": 20, "humidity": 35}),
        ),
        (
            None,
            json!({"sensor": "t-2", "site": "north", "celsius": 29, "humidity": 50}),
        ),
        (
            Some("iot.alarms"),
            json!({"sensor": "t-9", "site": "north", "celsius": 80}),
        ),
        (
            None,
            json!({"sensor": "T-2", "site": "lab", "celsius": 21, "humidity": 5}),
        ),
    ];
    for (channel, body) in readings {
        let path = match channel {
            Some(c) => format!("/api/publish?channel={c}"),
            None => "/api/publish".to_owned(),
        };
        let answer = server.post(&path, body.to_string()).await;
        assert_eq!(answer.status, 202, "{}", answer.text());
    }
    let ws_frames = [next_json(&mut ws).await, next_json(&mut ws).await];
    let got: Vec<(&str, &str)> = ws_frames.iter().map(sensor).collect();
    assert_eq!(got, [("reading", "t-1"), ("alarm", "t-9")], "{ws_frames:?}");
    let sse_frames = [sse.next().await.data, sse.next().await.data];
    let got: Vec<(&str, &str)> = sse_frames.iter().map(sensor).collect();
    assert_eq!(
        got,
        [("reading", "t-2"), ("reading", "T-2")],
        "{sse_frames:?}"
    );

    let bad = server.post("/api/publish", r#"{"site":"north"}"#).await;
    assert_eq!(bad.status, 400, "a reading names its sensor");
    assert_eq!(bad.json()["errors"][0]["reason"], "missing_field");
    let bad = server
        .post("/api/publish", r#"{"sensor":"x","celsius":500}"#)
        .await;
    assert_eq!(bad.json()["errors"][0]["reason"], "celsius_out_of_range");
    let tickstock_query = server.get("/sse?symbols=AAPL").await;
    assert_eq!(tickstock_query.status, 400, "{}", tickstock_query.text());
    server.stop().await;
}

#[test]
fn a_schema_that_cannot_work_is_refused_at_load_naming_the_problem() {
    let dir = std::env::temp_dir().join(format!("tickcast-schema-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("a temp dir");
    let file = dir.join("bad.toml");
    let bad = "[schema]\nname = \"x\"\n[[schema.dimensions]]\nname = \"level\"\nkind = \"number\"\nmin = 5.0\nmax = 1.0\n";
    std::fs::write(&file, bad).expect("write");
    let error = match load(Some(&file), no_env(), Overrides::default()) {
        Ok(_) => panic!("a schema with min > max loaded"),
        Err(e) => e.to_string(),
    };
    assert!(
        error.contains("schema") && error.contains("level"),
        "{error}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
