//! Encoded event frames.
//!
//! An accepted event is encoded once into a [`PreparedEvent`]: the bytes
//! before and after its `subs` list. A recipient's frame is those two parts
//! around its subs list; recipients with the same list (most of them: ids
//! such as `"s1"` repeat across connections) share one [`Bytes`], built once
//! per event by [`FrameEncoder`].

use std::sync::Arc;
use std::time::Instant;

use bytes::{BufMut, Bytes, BytesMut};
use rustc_hash::FxHashMap;

use crate::model::{Event, Offset, Priority, SubId};

/// The opening of every single-event frame; a batch element is the same
/// object without it.
const EVENT_PREFIX: &[u8] = br#"{"type":"event","#;

/// An accepted event with its offset and the shared parts of its frames.
#[derive(Debug)]
pub struct PreparedEvent {
    /// The event.
    pub event: Arc<Event>,
    /// Its offset.
    pub offset: Offset,
    /// When the hub accepted it (start of the delivery latency).
    pub accepted_at: Instant,
    /// `{"type":"event","offset":"..","subs":`
    head: Bytes,
    /// `,"priority":"..","event_type":"..","data":<body>}`
    tail: Bytes,
}

impl PreparedEvent {
    /// Encodes the shared parts of `event`'s frames.
    pub fn new(event: Arc<Event>, offset: Offset) -> Self {
        let mut head = Vec::with_capacity(48);
        head.extend_from_slice(EVENT_PREFIX);
        head.extend_from_slice(br#""offset":""#);
        offset.write_to(&mut head);
        head.extend_from_slice(br#"","subs":"#);
        let mut tail = Vec::with_capacity(64 + event.body().len());
        tail.extend_from_slice(br#","priority":""#);
        tail.extend_from_slice(event.priority().as_str().as_bytes());
        tail.extend_from_slice(br#"","event_type":"#);
        // Event types are validated strings; serde escapes what needs it.
        tail.extend_from_slice(&serde_json::to_vec(event.event_type()).unwrap_or_default());
        tail.extend_from_slice(br#","data":"#);
        tail.extend_from_slice(event.body());
        tail.push(b'}');
        Self {
            event,
            offset,
            accepted_at: Instant::now(),
            head: head.into(),
            tail: tail.into(),
        }
    }

    /// The priority of the event.
    pub fn priority(&self) -> Priority {
        self.event.priority()
    }

    /// The full `event` frame for a recipient whose matching subscriptions
    /// are `subs`.
    pub fn frame_for(&self, subs: &[SubId]) -> Bytes {
        let mut out =
            BytesMut::with_capacity(self.head.len() + self.tail.len() + 8 + 8 * subs.len());
        out.put_slice(&self.head);
        write_subs(&mut out, subs);
        out.put_slice(&self.tail);
        out.freeze()
    }

    /// The length of [`frame_for(subs)`](Self::frame_for), without
    /// building it: what a queue counts for a frame it has yet to build.
    pub(crate) fn frame_len(&self, subs: &[SubId]) -> usize {
        let ids = subs
            .iter()
            .fold(0usize, |sum, id| sum.saturating_add(json_len(&**id)));
        // Brackets and the commas between ids.
        let punctuation = 2 + subs.len().saturating_sub(1);
        (self.head.len() + self.tail.len() + punctuation).saturating_add(ids)
    }
}

/// The length of `value` as JSON, counted without building the text.
pub(super) fn json_len<T: serde::Serialize + ?Sized>(value: &T) -> usize {
    struct Counter(usize);
    impl std::io::Write for Counter {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0 = self.0.saturating_add(buf.len());
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut counter = Counter(0);
    // Only a failing writer or a non-string map key can make serde_json
    // fail; this writer never fails and these types have neither.
    let _ = serde_json::to_writer(&mut counter, value);
    counter.0
}

fn write_subs(out: &mut BytesMut, subs: &[SubId]) {
    out.put_u8(b'[');
    for (i, id) in subs.iter().enumerate() {
        if i > 0 {
            out.put_u8(b',');
        }
        // Sub ids are client strings: escape them properly.
        out.put_slice(&serde_json::to_vec(&**id).unwrap_or_default());
    }
    out.put_u8(b']');
}

/// One event frame ready for one connection.
#[derive(Debug, Clone)]
pub struct EventFrame {
    /// The event (offset, type, priority).
    pub prepared: Arc<PreparedEvent>,
    /// The complete `{"type":"event",...}` JSON text, shared by every
    /// recipient with the same subs list (without `resume`, which is the
    /// connection's own).
    pub bytes: Bytes,
    /// The connection's safe resume offset once this frame, and those
    /// before it in the same [`Outbound`](super::Outbound), are delivered:
    /// every event for the connection at or before it has been delivered,
    /// or announced in a `dropped` notice. Set by the queue when it hands
    /// the frame out; the frame's own offset until then.
    pub resume: Offset,
}

impl EventFrame {
    /// A frame of `prepared` whose JSON text is `bytes`.
    pub fn new(prepared: Arc<PreparedEvent>, bytes: Bytes) -> Self {
        let resume = prepared.offset;
        Self {
            prepared,
            bytes,
            resume,
        }
    }

    /// The frame's JSON object without its closing brace: followed by
    /// [`ResumeTail`], the whole `event` frame, written without a copy.
    pub fn open_object(&self) -> Bytes {
        self.bytes.slice(..self.bytes.len().saturating_sub(1))
    }

    /// The whole `event` frame with its `resume`, in one buffer (for
    /// sinks that take one contiguous message).
    pub fn to_json(&self) -> Bytes {
        let tail = ResumeTail::new(self.resume);
        let open = self.open_object();
        let mut out = BytesMut::with_capacity(open.len() + tail.as_bytes().len());
        out.put_slice(&open);
        out.put_slice(tail.as_bytes());
        out.freeze()
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
}

/// Builds the frames of one event for many recipients, sharing the bytes
/// between recipients with equal subs lists.
pub struct FrameEncoder<'a> {
    prepared: &'a Arc<PreparedEvent>,
    by_subs: FxHashMap<&'a [SubId], Bytes>,
}

impl<'a> FrameEncoder<'a> {
    /// An encoder for `prepared`.
    pub fn new(prepared: &'a Arc<PreparedEvent>) -> Self {
        Self {
            prepared,
            by_subs: FxHashMap::default(),
        }
    }

    /// The frame for a recipient with matching subscriptions `subs`.
    pub fn frame(&mut self, subs: &'a [SubId]) -> EventFrame {
        let bytes = self
            .by_subs
            .entry(subs)
            .or_insert_with(|| self.prepared.frame_for(subs))
            .clone();
        EventFrame::new(self.prepared.clone(), bytes)
    }
}

/// `,"resume":"<offset>"}`: the end of an `event` frame, the connection's
/// own part of it, built on the stack.
#[derive(Debug, Clone, Copy)]
pub struct ResumeTail {
    bytes: [u8; Self::CAPACITY],
    len: u8,
}

impl ResumeTail {
    /// `,"resume":"` + two `u64`s and a dash + `"}`.
    const CAPACITY: usize = 11 + 20 + 1 + 20 + 2;

    /// The tail for `resume`.
    pub fn new(resume: Offset) -> Self {
        let mut tail = Self {
            bytes: [0; Self::CAPACITY],
            len: 0,
        };
        let mut numbers = itoa::Buffer::new();
        tail.push(br#","resume":""#);
        tail.push(numbers.format(resume.major).as_bytes());
        tail.push(b"-");
        tail.push(numbers.format(resume.minor).as_bytes());
        tail.push(br#""}"#);
        tail
    }

    fn push(&mut self, part: &[u8]) {
        let start = usize::from(self.len);
        // Sized for the longest offset: always fits.
        if let Some(room) = self.bytes.get_mut(start..start + part.len()) {
            room.copy_from_slice(part);
            self.len += part.len() as u8;
        }
    }

    /// The tail's bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes[..usize::from(self.len)]
    }
}

/// Encodes several event frames as one `batch` frame:
/// `{"type":"batch","resume":"..","events":[{...},{...}]}`, each element
/// being the event object without its `"type"` field, and `resume` the
/// last frame's (the connection's safe resume offset once the batch is
/// delivered).
pub fn encode_batch(frames: &[EventFrame]) -> Bytes {
    let size: usize = frames.iter().map(|f| f.bytes.len()).sum();
    let mut out = BytesMut::with_capacity(size + 80);
    out.put_slice(br#"{"type":"batch","resume":""#);
    if let Some(last) = frames.last() {
        let mut resume = Vec::with_capacity(41);
        last.resume.write_to(&mut resume);
        out.put_slice(&resume);
    }
    out.put_slice(br#"","events":["#);
    for (i, f) in frames.iter().enumerate() {
        if i > 0 {
            out.put_u8(b',');
        }
        out.put_u8(b'{');
        out.put_slice(&f.bytes[EVENT_PREFIX.len()..]);
    }
    out.put_slice(b"]}");
    out.freeze()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    fn prepared() -> Arc<PreparedEvent> {
        let body = r#"{"symbol":"AAPL","pattern":"Doji","confidence":0.85,"extra":{"k":[1]}}"#;
        let event = Event::from_json(Bytes::from_static(body.as_bytes()), None, 1 << 20).unwrap();
        Arc::new(PreparedEvent::new(Arc::new(event), Offset::new(7, 3)))
    }

    #[test]
    fn event_frame_has_the_protocol_shape_and_the_exact_body() {
        let p = prepared();
        let frame = p.frame_for(&["s1".into(), "a\"b".into()]);
        let v: Value = serde_json::from_slice(&frame).unwrap();
        assert_eq!(v["type"], "event");
        assert_eq!(v["offset"], "7-3");
        assert_eq!(v["subs"], serde_json::json!(["s1", "a\"b"]));
        assert_eq!(v["priority"], "high");
        assert_eq!(v["event_type"], "pattern_detected");
        let text = std::str::from_utf8(&frame).unwrap();
        assert!(text.ends_with(
            r#""data":{"symbol":"AAPL","pattern":"Doji","confidence":0.85,"extra":{"k":[1]}}}"#
        ));
    }

    #[test]
    fn frame_len_is_the_length_of_the_frame() {
        let p = prepared();
        let cases: [&[SubId]; 3] = [
            &[],
            &["s1".into()],
            &["s1".into(), "a\"b\\c\n\u{1}é".into(), "".into()],
        ];
        for subs in cases {
            assert_eq!(p.frame_len(subs), p.frame_for(subs).len(), "{subs:?}");
        }
    }

    #[test]
    fn equal_subs_share_one_encoding() {
        let p = prepared();
        let subs_a: Vec<SubId> = vec!["s1".into()];
        let subs_b: Vec<SubId> = vec!["s1".into()];
        let mut enc = FrameEncoder::new(&p);
        let a = enc.frame(&subs_a);
        let b = enc.frame(&subs_b);
        assert_eq!(a.bytes.as_ptr(), b.bytes.as_ptr());
    }

    #[test]
    fn batch_wraps_event_objects() {
        let p = prepared();
        let mut enc = FrameEncoder::new(&p);
        let subs: Vec<SubId> = vec!["s1".into()];
        let frames = [enc.frame(&subs), enc.frame(&[])];
        let v: Value = serde_json::from_slice(&encode_batch(&frames)).unwrap();
        assert_eq!(v["type"], "batch");
        let events = v["events"].as_array().unwrap();
        assert_eq!(events.len(), 2);
        assert_eq!(events[0]["offset"], "7-3");
        assert!(events[0].get("type").is_none());
        assert_eq!(events[1]["subs"], serde_json::json!([]));
        assert_eq!(events[1]["data"]["extra"]["k"][0], 1);
    }
}
