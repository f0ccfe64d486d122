//! The WebSocket endpoint mounted as a tower service in an axum app: the
//! handshake, subscribe and delivery work as on warp, beside the app's own
//! routes.

use bytes::Bytes;
use futures_util::SinkExt;
use serde_json::json;
use tickcast_core::model::Event;
use tickcast_core::{Hub, HubConfig};
use tickcast_testkit::ws::next_json;
use tickcast_transport_ws::{ws_service, WsConfig};
use tokio_tungstenite::tungstenite::Message;

#[tokio::test]
async fn the_endpoint_serves_clients_inside_an_axum_router() {
    let hub = Hub::new(HubConfig::immediate());
    let app = axum::Router::new()
        .route("/hello", axum::routing::get(|| async { "hello" }))
        .route_service("/ws", ws_service(hub.clone(), WsConfig::default()));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });

    let (mut client, _) = tokio_tungstenite::connect_async(format!("ws://{addr}/ws"))
        .await
        .unwrap();
    assert_eq!(next_json(&mut client).await["type"], "welcome");
    let subscribe = json!({"op":"subscribe","id":"s1","filter":{"symbols":["AAPL"]}});
    client
        .send(Message::text(subscribe.to_string()))
        .await
        .unwrap();
    assert_eq!(next_json(&mut client).await["type"], "subscribed");

    let body = r#"{"pattern":"Doji","symbol":"AAPL","confidence":0.7,"tier":"daily"}"#;
    let event = Event::from_json(Bytes::from_static(body.as_bytes()), None, 1 << 20).unwrap();
    let offset = hub.publish(event).unwrap();
    let frame = next_json(&mut client).await;
    assert_eq!(frame["type"], "event");
    assert_eq!(frame["offset"], offset.to_string());
    assert_eq!(frame["subs"], json!(["s1"]));
}
