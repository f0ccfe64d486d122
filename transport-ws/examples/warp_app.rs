//! An existing warp service that adds tickcast's WebSocket endpoint next to
//! its own routes: `GET /ws` from tickcast, `GET /hello` and
//! `POST /signals` (which publishes into the hub) from the service.
//!
//! ```sh
//! cargo run -p tickcast-transport-ws --example warp_app [-- 127.0.0.1:8082]
//! cargo run -p tickcast-transport-ws --example subscribe -- ws://127.0.0.1:8082/ws '{"symbols":["AAPL"]}'
//! curl -X POST 127.0.0.1:8082/signals -d '{"symbol":"AAPL","pattern":"Doji","confidence":0.8,"tier":"daily"}'
//! ```

use std::net::SocketAddr;

use bytes::Bytes;
use tickcast_core::model::{Event, DEFAULT_MAX_BODY_BYTES};
use tickcast_core::{Hub, HubConfig};
use tickcast_transport_ws::{ws_route, WsConfig};
use warp::http::StatusCode;
use warp::Filter;

#[tokio::main]
async fn main() {
    let addr: SocketAddr = std::env::args()
        .nth(1)
        .as_deref()
        .unwrap_or("127.0.0.1:8082")
        .parse()
        .expect("an address such as 127.0.0.1:8082");
    let hub = Hub::new(HubConfig::default());

    // The service's own routes.
    let hello = warp::path!("hello")
        .and(warp::get())
        .map(|| "hello from my service\n");
    let publisher = hub.clone();
    let signals = warp::path!("signals")
        .and(warp::post())
        .and(warp::body::bytes())
        .map(move |body: Bytes| publish(&publisher, body));

    // tickcast's endpoint composes like any other filter.
    let routes = ws_route(hub, WsConfig::default()).or(hello).or(signals);
    println!("serving ws://{addr}/ws, http://{addr}/hello, POST http://{addr}/signals");
    warp::serve(routes).run(addr).await;
}

/// Decodes a TickStock event and publishes it; the answer says where it
/// went or why it was refused.
fn publish(hub: &Hub, body: Bytes) -> warp::reply::WithStatus<String> {
    let event = match Event::from_json(
        body,
        Some("tickstock.events.patterns"),
        DEFAULT_MAX_BODY_BYTES,
    ) {
        Ok(event) => event,
        Err(error) => {
            return warp::reply::with_status(format!("{error}\n"), StatusCode::BAD_REQUEST)
        }
    };
    match hub.publish(event) {
        Ok(offset) => {
            warp::reply::with_status(format!("published at {offset}\n"), StatusCode::ACCEPTED)
        }
        Err(error) => {
            warp::reply::with_status(format!("{error}\n"), StatusCode::SERVICE_UNAVAILABLE)
        }
    }
}
