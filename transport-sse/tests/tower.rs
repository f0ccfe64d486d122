//! The SSE endpoint mounted as a tower service in an axum app: the stream
//! opens, subscribes and delivers as on warp, beside the app's own routes.

mod client;

use bytes::Bytes;
use tickcast_core::model::Event;
use tickcast_core::{Hub, HubConfig};
use tickcast_transport_sse::{sse_service, SseConfig};

use client::get;

#[tokio::test]
async fn the_endpoint_serves_streams_inside_an_axum_router() {
    let hub = Hub::new(HubConfig::immediate());
    let app = axum::Router::new()
        .route("/hello", axum::routing::get(|| async { "hello" }))
        .route_service("/sse", sse_service(hub.clone(), SseConfig::default()));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });

    let mut sse = get(addr, "/sse?symbols=AAPL", &[]).await;
    assert_eq!(sse.status, 200);
    sse.expect("welcome").await;
    sse.expect("subscribed").await;
    let body = r#"{"pattern":"Doji","symbol":"AAPL","confidence":0.7,"tier":"daily"}"#;
    let event = Event::from_json(Bytes::from_static(body.as_bytes()), None, 1 << 20).unwrap();
    let offset = hub.publish(event).unwrap();
    let block = sse.expect("pattern_detected").await;
    assert_eq!(block.id, Some(offset.to_string()));
    assert_eq!(block.json()["subs"], serde_json::json!(["sse"]));

    let hello = get(addr, "/hello", &[]).await;
    assert_eq!(hello.status, 200);
}
