//! A service that serves only SSE: a core [`Hub`], the `/sse` route, and a
//! tiny in-process publisher that emits a pattern event every second.
//!
//! ```sh
//! cargo run -p tickcast-transport-sse --example sse_only [-- 127.0.0.1:8081]
//! curl -N 'http://127.0.0.1:8081/sse?symbols=AAPL,MSFT&min_confidence=0.7'
//! ```
//!
//! Reconnect with `-H 'Last-Event-ID: <an id you saw>'` to resume.

use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use tickcast_core::model::Event;
use tickcast_core::{Hub, HubConfig};
use tickcast_transport_sse::{sse_route, SseConfig};

#[tokio::main]
async fn main() {
    let addr: SocketAddr = std::env::args()
        .nth(1)
        .as_deref()
        .unwrap_or("127.0.0.1:8081")
        .parse()
        .expect("an address such as 127.0.0.1:8081");
    let hub = Hub::new(HubConfig::default());

    let publisher = hub.clone();
    tokio::spawn(async move {
        let symbols = ["AAPL", "MSFT", "NVDA", "TSLA"];
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        for n in 0u64.. {
            tick.tick().await;
            let body = serde_json::json!({
                "source": "sse_only example",
                "symbol": symbols[(n % 4) as usize],
                "pattern": "BreakoutBO",
                "tier": "daily",
                "confidence": 0.6 + (n % 4) as f64 / 10.0,
            });
            let event = Event::from_json(
                Bytes::from(body.to_string()),
                Some("tickstock.events.patterns"),
                1 << 20,
            )
            .expect("a valid event");
            if publisher.publish(event).is_err() {
                break;
            }
        }
    });

    println!("serving http://{addr}/sse (try: curl -N 'http://{addr}/sse?symbols=AAPL')");
    warp::serve(sse_route(hub, SseConfig::default()))
        .run(addr)
        .await;
}
