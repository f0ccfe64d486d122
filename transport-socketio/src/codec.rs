//! [`SioCodec`]: the engine's outbound items as Socket.IO packets.
//!
//! - An event: `42["<event_type>",<event object>,"<resume>"]`. The object
//!   is the frame core encoded once for the event (the native `event`
//!   frame without its `resume`), shared, not copied; the last argument is
//!   the connection's safe resume offset once this event is received,
//!   which socket.io-client keeps as its recovery offset.
//! - A batch: its events in order, each with its own resume offset.
//! - `subscribed`, `unsubscribed` and `error` answering a client request:
//!   the acknowledgement `43<ack>[<message>]` of that request; otherwise
//!   (and `dropped`, `pong`, `history_gone`) an event named after the
//!   message's `type`. `welcome` is an event too, with the hub's offset
//!   as its last argument: a safe recovery offset before any event.
//! - A close: `42["close",{"code":..,"reason":..}]`, then the end of the
//!   transport (no Socket.IO DISCONNECT, so that the client reconnects).
//! - The keep-alive is the Engine.IO ping `2`.

use std::sync::Arc;

use bytes::Bytes;
use smallvec::SmallVec;
use tickcast_core::broadcast::{EventFrame, Outbound};
use tickcast_core::protocol::{ErrorCode, ServerMessage};
use tickcast_core::session::WireCodec;

use crate::packet::{ack_packet, event_packet, put_json_string, Out, Packet};
use crate::state::{Answer, Shared};

/// The Socket.IO codec of one connection.
pub(crate) struct SioCodec {
    shared: Arc<Shared>,
    /// Dropped with the codec, when the session ends: what must happen
    /// then (the session left for recovery) without a task of its own
    /// waiting for the end.
    _on_end: Option<Box<dyn Send>>,
}

impl SioCodec {
    #[cfg(test)]
    pub(crate) fn new(shared: Arc<Shared>) -> Self {
        Self {
            shared,
            _on_end: None,
        }
    }

    /// A codec that drops `on_end` when the session ends.
    pub(crate) fn with_end(shared: Arc<Shared>, on_end: impl Send + 'static) -> Self {
        Self {
            shared,
            _on_end: Some(Box::new(on_end)),
        }
    }

    fn message(&self, message: &ServerMessage) -> Packet {
        let json = message.to_json();
        let answer = match message {
            ServerMessage::Subscribed { id, .. } => self.shared.answered(id, true),
            ServerMessage::Unsubscribed { id } => match self.shared.answered(id, true) {
                Answer::Event => {
                    // Not asked for here: a server-side unsubscribe.
                    self.shared.removed(id);
                    Answer::Event
                }
                ack => ack,
            },
            // `history_gone` follows the `subscribed` that answered the
            // request: it never answers one.
            ServerMessage::Error {
                code, id: Some(id), ..
            } if *code != ErrorCode::HistoryGone => self.shared.answered(id, false),
            _ => Answer::Event,
        };
        match answer {
            Answer::Ack(ack) => ack_packet(ack, &json),
            Answer::Event => {
                let mut packet = event_packet(message_name(message), &json);
                if let ServerMessage::Welcome {
                    offset: Some(offset),
                    ..
                } = message
                {
                    packet = with_offset(packet, &offset.to_string());
                }
                packet
            }
        }
    }
}

/// The event name of a protocol message: its `type`.
fn message_name(message: &ServerMessage) -> &'static str {
    match message {
        ServerMessage::Welcome { .. } => "welcome",
        ServerMessage::Subscribed { .. } => "subscribed",
        ServerMessage::Unsubscribed { .. } => "unsubscribed",
        ServerMessage::Dropped { .. } => "dropped",
        ServerMessage::Pong { .. } => "pong",
        ServerMessage::Error { .. } => "error",
    }
}

/// `42["welcome",{..}]` with a last string argument: `42["welcome",{..},"<offset>"]`.
fn with_offset(packet: Packet, offset: &str) -> Packet {
    let text = packet.to_bytes();
    let open = text.slice(..text.len().saturating_sub(1));
    let mut tail = SmallVec::<[u8; 48]>::new();
    tail.push(b',');
    put_json_string(&mut tail, offset);
    tail.push(b']');
    Packet::parts_of(&[], open, &tail)
}

/// `42["<event_type>",` + the event's shared object, its subs and `}` +
/// `,"<resume>"]`.
pub(crate) fn event(frame: &EventFrame) -> Packet {
    let mut head = SmallVec::<[u8; 48]>::new();
    head.extend_from_slice(b"42[");
    put_json_string(&mut head, frame.event_type());
    head.push(b',');
    let mut tail = SmallVec::<[u8; 48]>::new();
    tail.extend_from_slice(frame.subs_field());
    tail.extend_from_slice(b"},\"");
    frame.resume.write_to(&mut tail);
    tail.extend_from_slice(b"\"]");
    Packet::parts_of(&head, frame.prepared.object().clone(), &tail)
}

impl WireCodec for SioCodec {
    type Item = Out;

    fn encode(&mut self, out: Outbound, items: &mut Vec<Out>) -> usize {
        let before = items.len();
        match out {
            Outbound::Event(frame) => items.push(Out::Packet(event(&frame))),
            Outbound::Batch(frames) => {
                items.extend(frames.iter().map(|f| Out::Packet(event(f))));
            }
            Outbound::Message(message) => items.push(Out::Packet(self.message(&message))),
            Outbound::Close(code) => {
                let json = serde_json::json!({"code": code.code(), "reason": code.reason()});
                let json = Bytes::from(json.to_string());
                items.push(Out::Packet(event_packet("close", &json)));
                items.push(Out::Close(code.code(), code.reason()));
            }
        }
        items[before..].iter().map(Out::len).sum()
    }

    fn ping(&mut self) -> Out {
        Out::Packet(Packet::fixed("2"))
    }

    /// The reader's own replies (see [`Shared::reply`]): it asks for them
    /// to be written with an empty "ping".
    fn pong(&mut self, _payload: Bytes) -> Option<Out> {
        let replies = self.shared.take_replies();
        (!replies.is_empty()).then_some(Out::Many(replies))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tickcast_core::broadcast::PreparedEvent;
    use tickcast_core::model::{Event, Filter, Offset, SubId};

    fn frame(offset: Offset, resume: Offset) -> EventFrame {
        let body = br#"{"symbol":"AAPL","pattern":"Doji","confidence":0.85}"#;
        let event = Event::from_json(Bytes::from_static(body), None, 1 << 20).unwrap();
        let prepared = Arc::new(PreparedEvent::new(event, offset));
        let subs: Vec<SubId> = vec!["s1".into()];
        let mut frame = EventFrame::new(prepared, &subs);
        frame.resume = resume;
        frame
    }

    fn texts(items: &[Out]) -> Vec<String> {
        items
            .iter()
            .flat_map(|o| match o {
                Out::Packet(p) => vec![p.to_bytes()],
                Out::Many(ps) => ps.iter().map(Packet::to_bytes).collect(),
                Out::Close(code, _) => vec![Bytes::from(format!("close {code}"))],
            })
            .map(|b| String::from_utf8(b.to_vec()).unwrap())
            .collect()
    }

    #[test]
    fn a_batch_is_one_event_per_element_with_its_own_resume_sharing_the_bytes() {
        let mut codec = SioCodec::new(Arc::default());
        let a = frame(Offset::new(1, 1), Offset::new(1, 1));
        let b = frame(Offset::new(1, 2), Offset::new(1, 5));
        let mut items = Vec::new();
        codec.encode(Outbound::Batch(vec![a.clone(), b]), &mut items);
        let texts = texts(&items);
        assert_eq!(texts.len(), 2);
        let args: serde_json::Value = serde_json::from_str(&texts[1][2..]).unwrap();
        assert_eq!(args[0], "pattern_detected");
        assert_eq!(args[1]["offset"], "1-2");
        assert_eq!(args[1]["subs"], serde_json::json!(["s1"]));
        assert_eq!(args[1]["data"]["symbol"], "AAPL");
        assert_eq!(args[2], "1-5");
        assert!(texts[0].ends_with(r#","1-1"]"#));
        match &items[0] {
            Out::Packet(p) => assert_eq!(p.parts()[1].as_ptr(), a.prepared.object().as_ptr()),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn answers_to_requests_are_acks_and_the_rest_events() {
        let shared = Arc::new(Shared::default());
        let mut codec = SioCodec::new(shared.clone());
        shared.expect("s1", Some(4), Some(Filter::default()));
        shared.expect("s2", Some(5), Some(Filter::default()));
        let mut items = Vec::new();
        let subscribed = |id: &str| {
            Outbound::Message(ServerMessage::Subscribed {
                id: id.into(),
                recovered: 0,
            })
        };
        codec.encode(subscribed("s1"), &mut items);
        let gone = ServerMessage::error(ErrorCode::HistoryGone, "gone", Some("s1".into()));
        codec.encode(Outbound::Message(gone), &mut items);
        let refused = ServerMessage::error(ErrorCode::Forbidden, "no", Some("s2".into()));
        codec.encode(Outbound::Message(refused), &mut items);
        codec.encode(subscribed("s3"), &mut items);
        let welcome = ServerMessage::Welcome {
            conn: "c-1".into(),
            user: None,
            offset: Some(Offset::new(9, 0)),
            server: "t",
        };
        codec.encode(Outbound::Message(welcome), &mut items);
        let texts = texts(&items);
        assert_eq!(
            texts[0],
            r#"434[{"type":"subscribed","id":"s1","recovered":0}]"#
        );
        assert!(texts[1].starts_with(r#"42["error",{"type":"error","code":"history_gone""#));
        assert!(texts[2].starts_with(r#"435[{"type":"error","code":"forbidden""#));
        assert!(texts[3].starts_with(r#"42["subscribed","#));
        assert!(texts[4].starts_with(r#"42["welcome",{"#) && texts[4].ends_with(r#"},"9-0"]"#));
        let subs: Vec<String> = shared
            .subscriptions()
            .into_iter()
            .map(|(id, _)| id)
            .collect();
        assert_eq!(subs, ["s1"]);
    }

    #[test]
    fn a_close_is_an_event_then_the_end() {
        let mut codec = SioCodec::new(Arc::default());
        let mut items = Vec::new();
        codec.encode(
            Outbound::Close(tickcast_core::protocol::CloseCode::SlowConsumer),
            &mut items,
        );
        assert_eq!(
            texts(&items),
            [
                r#"42["close",{"code":4008,"reason":"slow consumer"}]"#,
                "close 4008"
            ]
        );
    }
}
