//! Helpers shared by the integration tests: frame decoding. The fixtures
//! come from `tickcast_testkit::fixtures`.
#![allow(dead_code)]

use std::time::Duration;

use serde_json::Value;
use tickcast_core::broadcast::{encode_batch, FrameReceiver, Outbound};
use tickcast_core::protocol::ServerMessage;

/// What a client saw.
#[derive(Debug, Default)]
pub struct Seen {
    pub events: Vec<Value>,
    pub messages: Vec<ServerMessage>,
    pub batches: usize,
    pub closed: Option<u16>,
}

/// Decodes one outbound item as the WebSocket transport would write it.
pub fn record(seen: &mut Seen, out: Outbound) {
    match out {
        Outbound::Event(f) => seen
            .events
            .push(serde_json::from_slice(&f.to_json()).unwrap()),
        Outbound::Batch(frames) => {
            seen.batches += 1;
            let v: Value = serde_json::from_slice(&encode_batch(&frames)).unwrap();
            seen.events
                .extend(v["events"].as_array().unwrap().iter().cloned());
        }
        Outbound::Message(m) => seen.messages.push(m),
        Outbound::Close(code) => seen.closed = Some(code.code()),
    }
}

/// Everything available now.
pub fn drain(rx: &mut FrameReceiver) -> Seen {
    let mut seen = Seen::default();
    while let Some(out) = rx.try_recv() {
        record(&mut seen, out);
    }
    seen
}

/// Reads until nothing arrives for `idle`.
pub async fn drain_until_idle(rx: &mut FrameReceiver, idle: Duration) -> Seen {
    let mut seen = Seen::default();
    while let Ok(Some(out)) = tokio::time::timeout(idle, rx.recv()).await {
        record(&mut seen, out);
    }
    seen
}

/// Offsets of the events seen.
pub fn offsets(seen: &Seen) -> Vec<String> {
    seen.events
        .iter()
        .map(|e| e["offset"].as_str().unwrap().to_owned())
        .collect()
}

/// An immediate hub without the per-user rate limit, and one anonymous
/// connection subscribed to everything (as `all`).
pub fn hub_with_catch_all() -> (tickcast_core::Hub, tickcast_core::hub::Connection) {
    let mut config = tickcast_core::hub::HubConfig::immediate();
    config.rate_limit_per_user = 0;
    let hub = tickcast_core::Hub::new(config);
    let conn = hub.connect(None, hub.default_limits()).unwrap();
    conn.handle
        .subscribe("all", tickcast_core::model::Filter::default(), None)
        .unwrap();
    (hub, conn)
}
