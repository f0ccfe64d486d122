//! Encoded event frames.
//!
//! An accepted event is encoded once into a [`PreparedEvent`]: its frame's
//! JSON object up to and including `data`, open at the end. A recipient's
//! frame is that object, then its own `subs` field, then its own `resume`
//! field and the closing brace:
//!
//! ```text
//! {"type":"event","offset":"..","priority":"..","event_type":"..","data":<body>   shared
//! ,"subs":["s1"]                                                              per subs list
//! ,"resume":".."}                                                            per connection
//! ```
//!
//! Nothing is copied per recipient: the `subs` field is encoded once per
//! [`Recipient`](crate::index::Recipient) (and a cached route keeps it for
//! the events that follow), and the resume tail is built on the stack.
//! Writers that take slices ([`EventFrame::parts`]) send the pieces as
//! they are; the others join them ([`EventFrame::to_json`]). A `batch`
//! frame is always joined ([`encode_batch`]): its pieces are many and
//! small, and the kernel copies each slice of a vectored write on its own.

use std::sync::Arc;
use std::time::Instant;

use bytes::{BufMut, Bytes, BytesMut};

use crate::model::{Event, Offset, Priority, SubId};
use crate::protocol::{subs_field, subs_field_len};

/// The opening of every single-event frame; a batch element is the same
/// object without it.
const EVENT_PREFIX: &[u8] = br#"{"type":"event","#;

/// An accepted event with its offset and the shared part of its frames.
#[derive(Debug)]
pub struct PreparedEvent {
    /// The event.
    pub event: Event,
    /// Its offset.
    pub offset: Offset,
    /// When the hub accepted it (start of the delivery latency).
    pub accepted_at: Instant,
    /// `{"type":"event","offset":"..","priority":"..","event_type":"..","data":<body>`
    object: Bytes,
}

impl PreparedEvent {
    /// Encodes the shared part of `event`'s frames.
    pub fn new(event: Event, offset: Offset) -> Self {
        let mut object = Vec::with_capacity(96 + event.body().len());
        object.extend_from_slice(EVENT_PREFIX);
        object.extend_from_slice(br#""offset":""#);
        offset.write_to(&mut object);
        object.extend_from_slice(br#"","priority":""#);
        object.extend_from_slice(event.priority().as_str().as_bytes());
        object.extend_from_slice(br#"","event_type":"#);
        // Event types are validated strings; serde escapes what needs it,
        // and writing into a `Vec` cannot fail.
        let _ = serde_json::to_writer(&mut object, event.event_type());
        object.extend_from_slice(br#","data":"#);
        object.extend_from_slice(event.body());
        Self {
            event,
            offset,
            accepted_at: Instant::now(),
            object: object.into(),
        }
    }

    /// The priority of the event.
    pub fn priority(&self) -> Priority {
        self.event.priority()
    }

    /// The shared part of the event's frames: the frame object up to and
    /// including `data`, without its closing brace.
    pub fn object(&self) -> &Bytes {
        &self.object
    }

    /// The length of a frame for a recipient whose matching subscriptions
    /// are `subs`, without its resume field ([`EventFrame::encoded_len`]), without
    /// building it: what a queue counts for a frame it has yet to build.
    pub(crate) fn frame_len(&self, subs: &[SubId]) -> usize {
        (self.object.len() + 1).saturating_add(subs_field_len(subs))
    }
}

/// One event frame ready for one connection.
#[derive(Debug, Clone)]
pub struct EventFrame {
    /// The event (offset, type, priority) and the shared part of the frame.
    pub prepared: Arc<PreparedEvent>,
    /// The recipient's `subs` field (`,"subs":[..]`), shared by every
    /// recipient with the same list.
    subs: Bytes,
    /// The connection's safe resume offset once this frame, and those
    /// before it in the same [`Outbound`](super::Outbound), are delivered:
    /// every event for the connection at or before it has been delivered,
    /// or announced in a `dropped` notice. Set by the queue when it hands
    /// the frame out; the frame's own offset until then.
    pub resume: Offset,
}

impl EventFrame {
    /// A frame of `prepared` for a recipient whose matching subscriptions
    /// are `subs`.
    pub fn new(prepared: Arc<PreparedEvent>, subs: &[SubId]) -> Self {
        Self::with_subs_field(prepared, subs_field(subs))
    }

    /// A frame of `prepared` whose `subs` field, encoded by
    /// [`subs_field`](crate::protocol::subs_field), is `subs`.
    pub fn with_subs_field(prepared: Arc<PreparedEvent>, subs: Bytes) -> Self {
        let resume = prepared.offset;
        Self {
            prepared,
            subs,
            resume,
        }
    }

    /// The frame's text, in order, with `tail` (this frame's
    /// [`ResumeTail`]) closing it: what a vectored write sends.
    pub fn parts<'a>(&'a self, tail: &'a ResumeTail) -> [&'a [u8]; 3] {
        [self.prepared.object(), &self.subs, tail.as_bytes()]
    }

    /// The recipient's `subs` field: `,"subs":[..]`.
    pub fn subs_field(&self) -> &[u8] {
        &self.subs
    }

    /// The length of the frame without its resume field: what queues
    /// count it as.
    pub fn encoded_len(&self) -> usize {
        self.prepared.object.len() + self.subs.len() + 1
    }

    /// The whole `event` frame with its `resume`, in one buffer (for
    /// sinks that take one contiguous message).
    pub fn to_json(&self) -> Bytes {
        let tail = ResumeTail::new(self.resume);
        join(self.parts(&tail))
    }

    /// The offset of the event.
    pub fn offset(&self) -> Offset {
        self.prepared.offset
    }

    /// The event type (SSE's `event:` field).
    pub fn event_type(&self) -> &str {
        self.prepared.event.event_type()
    }

    /// The priority.
    pub fn priority(&self) -> Priority {
        self.prepared.priority()
    }

    /// The event object as a `batch` element (without `"type"` and
    /// without `resume`), in order.
    fn element_parts(&self, first: bool) -> [&[u8]; 4] {
        let open: &[u8] = if first { b"{" } else { b",{" };
        let object = self.prepared.object();
        [open, &object[EVENT_PREFIX.len()..], &self.subs, b"}"]
    }
}

fn join<'a>(parts: impl IntoIterator<Item = &'a [u8]> + Clone) -> Bytes {
    let size = parts.clone().into_iter().map(<[u8]>::len).sum();
    let mut out = BytesMut::with_capacity(size);
    for part in parts {
        out.put_slice(part);
    }
    out.freeze()
}

/// `,"resume":"<offset>"}`: the end of an `event` frame, the connection's
/// own part of it, built on the stack.
#[derive(Debug, Clone, Copy)]
pub struct ResumeTail(StackText<{ ResumeTail::CAPACITY }>);

impl ResumeTail {
    const OPEN: &'static [u8] = br#","resume":""#;
    const CLOSE: &'static [u8] = br#""}"#;
    const CAPACITY: usize = Self::OPEN.len() + MAX_OFFSET_LEN + Self::CLOSE.len();

    /// The tail for `resume`.
    pub fn new(resume: Offset) -> Self {
        Self(StackText::around(Self::OPEN, resume, Self::CLOSE))
    }

    /// The tail's bytes.
    pub fn as_bytes(&self) -> &[u8] {
        self.0.as_bytes()
    }
}

/// `{"type":"batch","resume":"<offset>","events":[`: the opening of a
/// `batch` frame, built on the stack.
#[derive(Debug, Clone, Copy)]
struct BatchHead(StackText<{ BatchHead::CAPACITY }>);

impl BatchHead {
    const OPEN: &'static [u8] = br#"{"type":"batch","resume":""#;
    const CLOSE: &'static [u8] = br#"","events":["#;
    const CAPACITY: usize = Self::OPEN.len() + MAX_OFFSET_LEN + Self::CLOSE.len();

    /// The opening of a batch whose resume offset is `resume` (the last
    /// frame's).
    fn new(resume: Offset) -> Self {
        Self(StackText::around(Self::OPEN, resume, Self::CLOSE))
    }

    /// The head's bytes.
    fn as_bytes(&self) -> &[u8] {
        self.0.as_bytes()
    }
}

/// The longest offset's text: two `u64`s and a dash.
const MAX_OFFSET_LEN: usize = 20 + 1 + 20;

/// Up to `N` (< 256) bytes of text on the stack: the per-connection parts
/// of frames, which must not allocate.
#[derive(Debug, Clone, Copy)]
struct StackText<const N: usize> {
    bytes: [u8; N],
    len: u8,
}

impl<const N: usize> StackText<N> {
    /// `open`, then `offset`'s wire form, then `close`; the callers size
    /// `N` for the longest offset, so it always fits.
    fn around(open: &[u8], offset: Offset, close: &[u8]) -> Self {
        let mut text = Self {
            bytes: [0; N],
            len: 0,
        };
        text.extend(open.iter().copied());
        offset.write_to(&mut text);
        text.extend(close.iter().copied());
        text
    }

    fn as_bytes(&self) -> &[u8] {
        &self.bytes[..usize::from(self.len)]
    }
}

impl<const N: usize> Extend<u8> for StackText<N> {
    /// Appends what fits (everything, as sized by the callers).
    fn extend<I: IntoIterator<Item = u8>>(&mut self, bytes: I) {
        for byte in bytes {
            let Some(slot) = self.bytes.get_mut(usize::from(self.len)) else {
                return;
            };
            *slot = byte;
            self.len += 1;
        }
    }
}

/// The text of a `batch` frame of `frames` opened by `head`, in order:
/// `{"type":"batch","resume":"..","events":[{...},{...}]}`, each element
/// being an event object without its `"type"` and `resume` fields, the
/// batch's `resume` the last frame's (the connection's safe resume offset
/// once the batch is delivered).
fn batch_parts<'a>(
    head: &'a BatchHead,
    frames: &'a [EventFrame],
) -> impl Iterator<Item = &'a [u8]> + 'a {
    let elements = frames
        .iter()
        .enumerate()
        .flat_map(|(i, f)| f.element_parts(i == 0));
    std::iter::once(head.as_bytes())
        .chain(elements)
        .chain(std::iter::once(&b"]}"[..]))
}

/// The head of a batch of `frames`: its resume offset is the last frame's.
fn batch_head(frames: &[EventFrame]) -> BatchHead {
    BatchHead::new(frames.last().map_or(Offset::new(0, 0), |f| f.resume))
}

/// Encodes several event frames as one `batch` frame, in one buffer:
/// `{"type":"batch","resume":"..","events":[{...},{...}]}`, each element
/// an event object without its `"type"` and `resume` fields, the batch's
/// `resume` the last frame's.
pub fn encode_batch(frames: &[EventFrame]) -> Bytes {
    let head = batch_head(frames);
    // Each element: its frame without the `"type"` field, and a comma.
    let elements: usize = frames
        .iter()
        .map(|f| f.encoded_len() - EVENT_PREFIX.len() + 2)
        .sum();
    let mut out = BytesMut::with_capacity(head.as_bytes().len() + elements + 2);
    for part in batch_parts(&head, frames) {
        out.put_slice(part);
    }
    out.freeze()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    fn prepared() -> Arc<PreparedEvent> {
        let body = r#"{"symbol":"AAPL","pattern":"Doji","confidence":0.85,"extra":{"k":[1]}}"#;
        let event = Event::from_json(Bytes::from_static(body.as_bytes()), None, 1 << 20).unwrap();
        Arc::new(PreparedEvent::new(event, Offset::new(7, 3)))
    }

    #[test]
    fn event_frame_has_the_protocol_shape_and_the_exact_body() {
        let mut frame = EventFrame::new(prepared(), &["s1".into(), "a\"b".into()]);
        frame.resume = Offset::new(7, 9);
        let json = frame.to_json();
        let v: Value = serde_json::from_slice(&json).unwrap();
        assert_eq!(v["type"], "event");
        assert_eq!(v["offset"], "7-3");
        assert_eq!(v["subs"], serde_json::json!(["s1", "a\"b"]));
        assert_eq!(v["priority"], "high");
        assert_eq!(v["event_type"], "pattern_detected");
        assert_eq!(v["resume"], "7-9");
        let text = std::str::from_utf8(&json).unwrap();
        assert!(text.contains(
            r#""data":{"symbol":"AAPL","pattern":"Doji","confidence":0.85,"extra":{"k":[1]}},"subs""#
        ));
        let tail = ResumeTail::new(frame.resume);
        assert_eq!(frame.parts(&tail).concat(), json.to_vec());
    }

    #[test]
    fn frame_len_is_the_length_of_the_frame_without_its_resume() {
        let p = prepared();
        let cases: [&[SubId]; 3] = [
            &[],
            &["s1".into()],
            &["s1".into(), "a\"b\\c\n\u{1}é".into(), "".into()],
        ];
        for subs in cases {
            let frame = EventFrame::new(p.clone(), subs);
            let tail = ResumeTail::new(frame.resume);
            assert_eq!(p.frame_len(subs), frame.encoded_len(), "{subs:?}");
            assert_eq!(
                frame.encoded_len(),
                frame.to_json().len() - tail.as_bytes().len() + 1,
                "{subs:?}"
            );
        }
    }

    #[test]
    fn frames_share_the_event_object() {
        let p = prepared();
        let a = EventFrame::new(p.clone(), &["s1".into()]);
        let b = EventFrame::new(p.clone(), &[]);
        let tail = ResumeTail::new(a.resume);
        assert_eq!(a.parts(&tail)[0].as_ptr(), b.parts(&tail)[0].as_ptr());
        assert_eq!(&b.subs[..], br#","subs":[]"#);
    }

    #[test]
    fn batch_wraps_event_objects() {
        let p = prepared();
        let mut frames = [
            EventFrame::new(p.clone(), &["s1".into()]),
            EventFrame::new(p, &[]),
        ];
        frames[1].resume = Offset::new(7, 12);
        let encoded = encode_batch(&frames);
        let head = batch_head(&frames);
        assert_eq!(
            batch_parts(&head, &frames).collect::<Vec<_>>().concat(),
            encoded.to_vec()
        );
        let v: Value = serde_json::from_slice(&encoded).unwrap();
        assert_eq!(v["type"], "batch");
        assert_eq!(v["resume"], "7-12");
        let events = v["events"].as_array().unwrap();
        assert_eq!(events.len(), 2);
        assert_eq!(events[0]["offset"], "7-3");
        assert_eq!(events[0]["subs"], serde_json::json!(["s1"]));
        assert!(events[0].get("type").is_none());
        assert!(events[0].get("resume").is_none());
        assert_eq!(events[1]["subs"], serde_json::json!([]));
        assert_eq!(events[1]["data"]["extra"]["k"][0], 1);
    }

    #[test]
    fn heads_and_tails_fit_the_longest_offsets() {
        let max = Offset::new(u64::MAX, u64::MAX);
        let tail = ResumeTail::new(max);
        let v: Value = serde_json::from_slice(&[b"{\"a\":1", tail.as_bytes()].concat()).unwrap();
        assert_eq!(v["resume"], max.to_string());
        let head = BatchHead::new(max);
        let v: Value = serde_json::from_slice(&[head.as_bytes(), b"]}"].concat()).unwrap();
        assert_eq!(v["resume"], max.to_string());
    }
}
