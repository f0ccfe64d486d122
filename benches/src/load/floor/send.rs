//! The publish side of a floor run: what `POST /api/publish` is to
//! tickcast. Each event is stamped like any published one and encoded by
//! tickcast's own frame encoder (the same JSON, an offset as wide as
//! tickcast's: the node epoch, then the sequence), wrapped in a WebSocket
//! frame and sent with its recipients to the floor server ([`Frames`]:
//! one frame per delivery, or one per connection and request).

use std::sync::Arc;

use bytes::Bytes;
use rustc_hash::FxHashMap;
use serde::Serialize;
use tickcast_core::broadcast::{encode_batch, EventFrame, PreparedEvent};
use tickcast_core::model::{Event, Offset, DEFAULT_MAX_BODY_BYTES};

use super::link::FloorLink;
use super::plan::{sub_ids, FloorPlan};
use crate::floor::control::MessageWriter;
use crate::floor::wire::text_frame;
use crate::load::stamp::stamp_one;
use crate::load::stats::epoch_ns;

/// How deliveries become frames (and writes) in a floor run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Frames {
    /// One `event` frame, one write, per delivery: the one-event-per-write
    /// floor.
    #[default]
    Event,
    /// One frame per connection and publish request: an `event` frame when
    /// it receives one of the request's events, a `batch` frame of its
    /// events when several (what tickcast's writer sends when a request's
    /// events are all queued before it wakes): the fewest writes any
    /// server can do for the traffic.
    Request,
}

/// Where the publisher sends a floor run's events.
#[derive(Debug, Clone)]
pub struct FloorSend {
    /// The floor server.
    pub link: Arc<FloorLink>,
    /// Recipients of every event.
    pub plan: Arc<FloorPlan>,
    /// How deliveries become frames.
    pub frames: Frames,
    /// Channel the events are published on (gives their type).
    pub channel: String,
    /// Major part of the offsets (like tickcast's node epoch).
    pub epoch: u64,
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
        let message = message(&self.plan, first_seq, events, self.epoch, self.frames);
        self.link.send(&message).await
    }
}

/// What one connection receives of a request: (event index in the
/// request, matching subscriptions), in event order.
type Items = Vec<(u32, u64)>;

/// The control message of events `first_seq..` (one request): the
/// WebSocket frames tickcast would send, each with its recipients.
pub fn message(
    plan: &FloorPlan,
    first_seq: u32,
    events: Vec<Event>,
    epoch: u64,
    frames: Frames,
) -> Vec<u8> {
    let prepared: Vec<Arc<PreparedEvent>> = events
        .into_iter()
        .enumerate()
        .map(|(i, event)| {
            let offset = Offset::new(epoch, u64::from(first_seq) + i as u64 + 1);
            Arc::new(PreparedEvent::new(event, offset))
        })
        .collect();
    match frames {
        Frames::Event => per_event(plan, first_seq, &prepared),
        Frames::Request => per_request(plan, first_seq, &prepared),
    }
}

/// One `event` frame per event and distinct subs list.
fn per_event(plan: &FloorPlan, first_seq: u32, prepared: &[Arc<PreparedEvent>]) -> Vec<u8> {
    let mut out = MessageWriter::new();
    for (i, event) in prepared.iter().enumerate() {
        for group in plan.groups(first_seq + i as u32) {
            // Received in offset order: its resume offset is its own.
            let json = EventFrame::new(event.clone(), &sub_ids(group.subs));
            let frame = text_frame(&json.to_json());
            out.push(&frame, &group.conns);
        }
    }
    out.finish()
}

/// One frame per connection: its events of the request, in one `batch`
/// frame when several.
fn per_request(plan: &FloorPlan, first_seq: u32, prepared: &[Arc<PreparedEvent>]) -> Vec<u8> {
    let mut received: FxHashMap<u32, Items> = FxHashMap::default();
    for i in 0..prepared.len() as u32 {
        for group in plan.groups(first_seq + i) {
            for &conn in &group.conns {
                received.entry(conn).or_default().push((i, group.subs));
            }
        }
    }
    // Connections receiving the same events through the same
    // subscriptions share a frame (most single-event ones do).
    let mut by_items: FxHashMap<Items, Vec<u32>> = FxHashMap::default();
    for (conn, items) in received {
        by_items.entry(items).or_default().push(conn);
    }
    let mut frames: Vec<(Items, Vec<u32>)> = by_items.into_iter().collect();
    // Deterministic order: by the first event, then connection.
    for (_, conns) in &mut frames {
        conns.sort_unstable();
    }
    frames.sort_unstable_by(|a, b| (&a.0, &a.1).cmp(&(&b.0, &b.1)));
    let mut out = MessageWriter::new();
    for (items, conns) in &frames {
        out.push(&text_frame(&payload(prepared, items)), conns);
    }
    out.finish()
}

/// The JSON text of one connection's frame: tickcast's `event` frame, or
/// its `batch` frame of several.
fn payload(prepared: &[Arc<PreparedEvent>], items: &[(u32, u64)]) -> Bytes {
    let frame = |&(i, subs): &(u32, u64)| {
        let event = &prepared[i as usize];
        EventFrame::new(event.clone(), &sub_ids(subs))
    };
    match items {
        [one] => frame(one).to_json(),
        many => encode_batch(&many.iter().map(frame).collect::<Vec<_>>()),
    }
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

    /// The floor's frames of a request are tickcast's frames for those
    /// events and subs lists, byte for byte, in unmasked WebSocket frames
    /// that a client reads and checks like tickcast's: one per connection,
    /// a `batch` frame for a connection that gets several events.
    #[test]
    fn floor_frames_are_tickcasts_frames() {
        let mut scenario = Scenario::default();
        scenario.connections.count = 3;
        scenario.connections.subscriptions = [2, 2];
        // s0 of every connection takes every event.
        scenario.filters.firehose_first = true;
        let filters = Arc::new(Filters::generate(&scenario));
        let channel = "tickstock.events.patterns";
        let templates = [
            Bytes::from(PatternDetection::new("S001", "Doji").to_json()),
            Bytes::from(PatternDetection::new("S002", "GapUp").to_json()),
        ];
        // Connection 1 had its s0 refused: it gets at most what s1 matches.
        let active = [u64::MAX, 0b10, u64::MAX];
        let mut audience = Audience::new(filters.clone(), &active);
        let mut plan = FloorPlan::new();
        let mut recipients = Vec::new();
        for template in &templates {
            let event =
                Event::from_json(template.clone(), Some(channel), DEFAULT_MAX_BODY_BYTES).unwrap();
            audience.recipients(&event, &mut recipients);
            plan.record(&filters, &active, &event, &recipients);
        }
        let epoch = 1_764_000_000_000;
        let stamped: Vec<Event> = templates
            .iter()
            .enumerate()
            .map(|(seq, t)| {
                let body = Bytes::from(stamp_one(seq as u32, t, 42));
                Event::from_json(body, Some(channel), DEFAULT_MAX_BODY_BYTES).unwrap()
            })
            .collect();
        let tickcast: Vec<Arc<PreparedEvent>> = stamped
            .iter()
            .enumerate()
            .map(|(i, e)| {
                Arc::new(PreparedEvent::new(
                    e.clone(),
                    Offset::new(epoch, i as u64 + 1),
                ))
            })
            .collect();
        let per_event_bytes = message(&plan, 0, stamped.clone(), epoch, Frames::Event);
        let bytes = message(&plan, 0, stamped, epoch, Frames::Request);
        let groups = read_message(&mut Cursor::new(bytes)).unwrap().unwrap();

        let mut written: Vec<u32> = groups.iter().flat_map(|g| g.conns.clone()).collect();
        written.sort_unstable();
        let mut planned: Vec<u32> = (0..2)
            .flat_map(|seq| plan.groups(seq))
            .flat_map(|g| g.conns.clone())
            .collect();
        planned.sort_unstable();
        planned.dedup();
        assert_eq!(written, planned, "one frame per recipient of the request");
        assert!(written.contains(&0) && written.contains(&2));
        for group in &groups {
            let conn = group.conns[0];
            // What tickcast sends this connection for the two events.
            let frames: Vec<EventFrame> = (0..2u32)
                .filter_map(|seq| {
                    let planned = plan.groups(seq).iter().find(|g| g.conns.contains(&conn))?;
                    let event = &tickcast[seq as usize];
                    Some(EventFrame::new(event.clone(), &sub_ids(planned.subs)))
                })
                .collect();
            let json = match frames.as_slice() {
                [one] => one.to_json(),
                many => encode_batch(many),
            };
            let header = if json.len() >= 126 { 4 } else { 2 };
            assert_eq!(group.frame.len(), json.len() + header);
            let mut client =
                WebSocket::from_raw_socket(Cursor::new(group.frame.to_vec()), Role::Client, None);
            let Ok(Message::Text(text)) = client.read() else {
                panic!("not a text frame");
            };
            assert_eq!(text.as_bytes(), &json[..]);
            let mut stamps = Vec::new();
            assert_eq!(frame::scan(text.as_str(), &mut stamps), Scanned::Events);
            assert_eq!(stamps.len(), frames.len());
            if conn != 1 {
                let seqs: Vec<_> = stamps
                    .iter()
                    .map(|s| s.map(|s| (s.seq, s.sent_ns)))
                    .collect();
                assert_eq!(
                    seqs,
                    vec![Some((0, 42)), Some((1, 42))],
                    "a batch frame for both"
                );
            }
        }

        // One event: a plain `event` frame, the same for equal subs lists.
        let one = message(
            &plan,
            1,
            vec![Event::from_json(
                Bytes::from(stamp_one(1, &templates[1], 7)),
                Some(channel),
                DEFAULT_MAX_BODY_BYTES,
            )
            .unwrap()],
            epoch,
            Frames::Request,
        );
        for group in read_message(&mut Cursor::new(one)).unwrap().unwrap() {
            let mut client =
                WebSocket::from_raw_socket(Cursor::new(group.frame.to_vec()), Role::Client, None);
            let Ok(Message::Text(text)) = client.read() else {
                panic!("not a text frame");
            };
            // tickcast's field order: `subs` after the shared object.
            let text = text.as_str();
            assert!(text.starts_with(r#"{"type":"event","offset":"1764000000000-2","#));
            assert!(text.contains(r#"},"subs":["#), "{text}");
        }

        // Per event: one `event` frame per delivery, each with one stamp.
        let groups = read_message(&mut Cursor::new(per_event_bytes))
            .unwrap()
            .unwrap();
        let writes: usize = groups.iter().map(|g| g.conns.len()).sum();
        assert_eq!(writes as u64, plan.deliveries());
        for group in &groups {
            let mut client =
                WebSocket::from_raw_socket(Cursor::new(group.frame.to_vec()), Role::Client, None);
            let Ok(Message::Text(text)) = client.read() else {
                panic!("not a text frame");
            };
            let mut stamps = Vec::new();
            assert_eq!(frame::scan(text.as_str(), &mut stamps), Scanned::Events);
            assert_eq!(stamps.len(), 1);
            assert!(text.as_str().starts_with(r#"{"type":"event","#));
        }
    }
}
