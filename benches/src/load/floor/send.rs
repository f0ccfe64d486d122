//! The publish side of a floor run: what `POST /api/publish` is to
//! tickcast. Each event is stamped like any published one, encoded by
//! tickcast's own frame encoder (the same JSON, an offset as wide as
//! tickcast's: the epoch in ms, then the sequence), wrapped in a WebSocket
//! frame, and sent with its recipients to the floor server.

use std::sync::Arc;

use bytes::Bytes;
use tickcast_core::broadcast::PreparedEvent;
use tickcast_core::model::{Event, Offset, DEFAULT_MAX_BODY_BYTES};

use super::link::FloorLink;
use super::plan::{sub_ids, FloorPlan};
use crate::floor::control::MessageWriter;
use crate::floor::wire::text_frame;
use crate::load::publisher::stamp_one;
use crate::load::stats::epoch_ns;

/// Where the publisher sends a floor run's events.
#[derive(Debug, Clone)]
pub struct FloorSend {
    /// The floor server.
    pub link: Arc<FloorLink>,
    /// Recipients of every event.
    pub plan: Arc<FloorPlan>,
    /// Channel the events are published on (gives their type).
    pub channel: String,
    /// Major part of the offsets (like tickcast's node epoch, in ms).
    pub epoch_ms: u64,
}

impl FloorSend {
    /// Stamps events `first_seq..` (bodies `templates`) and has the floor
    /// server write their frames.
    pub async fn publish(&self, first_seq: u32, templates: &[Bytes]) -> Result<(), String> {
        let sent_ns = epoch_ns();
        let mut events = Vec::with_capacity(templates.len());
        for (i, template) in templates.iter().enumerate() {
            let seq = first_seq + i as u32;
            let body = Bytes::from(stamp_one(seq, template, sent_ns));
            let event = Event::from_json(body, Some(&self.channel), DEFAULT_MAX_BODY_BYTES)
                .map_err(|e| format!("event {seq}: {e}"))?;
            events.push(event);
        }
        let message = message(&self.plan, first_seq, events, self.epoch_ms);
        self.link.send(&message).await
    }
}

/// The control message of events `first_seq..`: per event and group, the
/// WebSocket frame tickcast would send that group, and the group.
pub fn message(plan: &FloorPlan, first_seq: u32, events: Vec<Event>, epoch_ms: u64) -> Vec<u8> {
    let mut out = MessageWriter::new();
    for (i, event) in events.into_iter().enumerate() {
        let seq = first_seq + i as u32;
        let prepared =
            PreparedEvent::new(Arc::new(event), Offset::new(epoch_ms, u64::from(seq) + 1));
        for group in plan.groups(seq) {
            let frame = text_frame(&prepared.frame_for(&sub_ids(group.subs)));
            out.push(&frame, &group.conns);
        }
    }
    out.finish()
}

#[cfg(test)]
mod tests {
    use std::io::Cursor;

    use tokio_tungstenite::tungstenite::protocol::{Role, WebSocket};
    use tokio_tungstenite::tungstenite::Message;

    use super::*;
    use crate::events::PatternDetection;
    use crate::floor::control::read_message;
    use crate::load::expect::Audience;
    use crate::load::filters::Filters;
    use crate::load::frame::{self, Scanned};
    use crate::load::scenario::Scenario;

    /// The floor's frame of a stamped event is tickcast's frame for that
    /// event and subs list, byte for byte, in an unmasked WebSocket frame
    /// that a client reads and checks like tickcast's.
    #[test]
    fn floor_frames_are_tickcasts_frames() {
        let mut scenario = Scenario::default();
        scenario.connections.count = 3;
        scenario.connections.subscriptions = [2, 2];
        // s0 of every connection takes every event.
        scenario.filters.firehose_first = true;
        let filters = Arc::new(Filters::generate(&scenario));
        let channel = "tickstock.events.patterns";
        let template = Bytes::from(PatternDetection::new("S001", "Doji").to_json());
        let event =
            Event::from_json(template.clone(), Some(channel), DEFAULT_MAX_BODY_BYTES).unwrap();
        // Connection 1 had its s0 refused.
        let active = [u64::MAX, 0b10, u64::MAX];
        let mut recipients = Vec::new();
        Audience::new(filters.clone(), &active).recipients(&event, &mut recipients);
        let mut plan = FloorPlan::new();
        plan.record(&filters, &active, &event, &recipients);
        assert!(!plan.groups(0).is_empty());
        let epoch_ms = 1_764_000_000_000;
        let stamped = Bytes::from(stamp_one(0, &template, 42));
        let stamped_event =
            Event::from_json(stamped, Some(channel), DEFAULT_MAX_BODY_BYTES).unwrap();
        let bytes = message(&plan, 0, vec![stamped_event.clone()], epoch_ms);
        let groups = read_message(&mut Cursor::new(bytes)).unwrap().unwrap();
        assert_eq!(groups.len(), plan.groups(0).len());
        let tickcast = PreparedEvent::new(Arc::new(stamped_event), Offset::new(epoch_ms, 1));
        for (group, planned) in groups.iter().zip(plan.groups(0)) {
            assert_eq!(group.conns, planned.conns);
            let json = tickcast.frame_for(&sub_ids(planned.subs));
            assert_eq!(
                group.frame.len(),
                json.len() + 2 + if json.len() >= 126 { 2 } else { 0 }
            );
            let mut client =
                WebSocket::from_raw_socket(Cursor::new(group.frame.to_vec()), Role::Client, None);
            let Ok(Message::Text(text)) = client.read() else {
                panic!("not a text frame");
            };
            assert_eq!(text.as_bytes(), &json[..]);
            let mut stamps = Vec::new();
            assert_eq!(frame::scan(text.as_str(), &mut stamps), Scanned::Events);
            assert_eq!(stamps.len(), 1);
            assert_eq!(stamps[0].map(|s| (s.seq, s.sent_ns)), Some((0, 42)));
        }
    }
}
