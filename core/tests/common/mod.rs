//! Helpers shared by the integration tests: fixtures and frame decoding.
#![allow(dead_code)]

use std::path::PathBuf;
use std::time::Duration;

use bytes::Bytes;
use serde_json::Value;
use tickcast_core::broadcast::{encode_batch, FrameReceiver, Outbound};
use tickcast_core::protocol::ServerMessage;

/// shared/fixtures beside the project (or `TICKCAST_FIXTURES`). Missing
/// fixtures fail the test: they are part of the contract.
pub fn fixtures_dir() -> PathBuf {
    if let Ok(dir) = std::env::var("TICKCAST_FIXTURES") {
        return PathBuf::from(dir);
    }
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/fixtures")
}

/// One line of tickstockpl_events.jsonl.
pub struct FixtureEvent {
    pub channel: String,
    pub body: Value,
    pub raw: Bytes,
}

pub fn good_events() -> Vec<FixtureEvent> {
    let path = fixtures_dir().join("tickstockpl_events.jsonl");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    text.lines()
        .map(|line| {
            let v: Value = serde_json::from_str(line).unwrap();
            FixtureEvent {
                channel: v["channel"].as_str().unwrap().to_owned(),
                raw: Bytes::from(serde_json::to_vec(&v["body"]).unwrap()),
                body: v["body"].clone(),
            }
        })
        .collect()
}

/// One line of bad_events.jsonl: the channel, the raw bytes, the reason.
pub fn bad_events() -> Vec<(String, Bytes, String)> {
    let path = fixtures_dir().join("bad_events.jsonl");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    text.lines()
        .map(|line| {
            let v: Value = serde_json::from_str(line).unwrap();
            let raw = v["raw"].as_str().unwrap();
            // The raw text is latin-1 where it holds a lone 0xFF byte.
            let bytes: Vec<u8> = if raw.chars().all(|c| (c as u32) < 256) {
                raw.chars().map(|c| c as u32 as u8).collect()
            } else {
                raw.as_bytes().to_vec()
            };
            (
                v["channel"].as_str().unwrap().to_owned(),
                Bytes::from(bytes),
                v["why"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

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
        Outbound::Event(f) => seen.events.push(serde_json::from_slice(&f.bytes).unwrap()),
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
