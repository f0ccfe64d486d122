//! The lean path's writer: server WebSocket frames written straight to the
//! socket.
//!
//! A server frame is not masked, so an event's bytes are the same for
//! every recipient: an `event` frame is its header (2 to 10 bytes, built
//! here on the stack), the event's shared object as core encoded it, and
//! a short tail of its own (the recipient's `subs` field and the
//! connection's resume offset), and a round of frames goes out in one
//! vectored write, without copying an event's object per connection. A
//! `batch` frame is encoded into one buffer: the kernel copies each slice
//! of a vectored write separately, and a batch's pieces are many and
//! small, so one copy here costs less than handing it dozens of slices.
//! tungstenite still reads the client's frames ([`ReadOnly`]); it never
//! writes.

use std::collections::VecDeque;
use std::io::{self, IoSlice};
use std::pin::Pin;
use std::task::{ready, Context, Poll};

use bytes::Bytes;
use futures_util::Sink;
use smallvec::SmallVec;
use tickcast_core::broadcast::{encode_batch, EventFrame, Outbound, ResumeTail};
use tickcast_core::session::WireCodec;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// Slices per vectored write (well under every system's `IOV_MAX`).
const SLICES_PER_WRITE: usize = 128;
/// Bytes buffered before the sink asks to be flushed.
const HIGH_WATER: usize = 64 * 1024;

/// One server frame: opcode and payload.
#[derive(Debug, Clone)]
pub(crate) struct RawFrame {
    opcode: u8,
    payload: Payload,
}

/// A frame's payload.
#[derive(Debug, Clone)]
enum Payload {
    Bytes(Bytes),
    /// An `event` frame: the event's shared object, then its tail.
    Event(EventFrame, EventTail),
}

/// The end of an `event` frame: the recipient's `subs` field and the
/// connection's resume offset, in one slice (on the stack unless the subs
/// list is long).
type EventTail = SmallVec<[u8; 96]>;

impl Payload {
    /// Calls `f` with each slice of the payload, in order, until it
    /// returns false.
    fn each_part<'a>(&'a self, mut f: impl FnMut(&'a [u8]) -> bool) {
        match self {
            Self::Bytes(bytes) => {
                f(bytes);
            }
            Self::Event(frame, tail) => {
                let _ = f(frame.prepared.object()) && f(tail);
            }
        }
    }

    fn len(&self) -> usize {
        let mut len = 0;
        self.each_part(|part| {
            len += part.len();
            true
        });
        len
    }
}

const TEXT: u8 = 0x1;
const CLOSE: u8 = 0x8;
const PING: u8 = 0x9;
const PONG: u8 = 0xA;

impl RawFrame {
    pub(crate) fn text(payload: Bytes) -> Self {
        Self::new(TEXT, payload)
    }

    fn new(opcode: u8, payload: Bytes) -> Self {
        Self {
            opcode,
            payload: Payload::Bytes(payload),
        }
    }

    /// An `event` frame: the event's shared object, then the
    /// recipient's subs and this connection's resume offset.
    fn event(frame: EventFrame) -> Self {
        let resume = ResumeTail::new(frame.resume);
        let mut tail = EventTail::new();
        tail.extend_from_slice(frame.subs_field());
        tail.extend_from_slice(resume.as_bytes());
        Self {
            opcode: TEXT,
            payload: Payload::Event(frame, tail),
        }
    }

    pub(crate) fn close(code: u16, reason: &str) -> Self {
        let mut payload = code.to_be_bytes().to_vec();
        payload.extend_from_slice(reason.as_bytes());
        Self::new(CLOSE, payload.into())
    }
}

/// A frame header, final fragment, unmasked.
#[derive(Debug, Clone, Copy)]
struct Header {
    bytes: [u8; 10],
    len: u8,
}

impl Header {
    fn new(opcode: u8, payload: usize) -> Self {
        let mut bytes = [0u8; 10];
        bytes[0] = 0x80 | opcode;
        let len = if payload < 126 {
            bytes[1] = payload as u8;
            2
        } else if let Ok(short) = u16::try_from(payload) {
            bytes[1] = 126;
            bytes[2..4].copy_from_slice(&short.to_be_bytes());
            4
        } else {
            bytes[1] = 127;
            bytes[2..10].copy_from_slice(&(payload as u64).to_be_bytes());
            10
        };
        Self { bytes, len }
    }

    fn as_bytes(&self) -> &[u8] {
        &self.bytes[..usize::from(self.len)]
    }
}

/// A frame being written: its header and payload, and how much of them
/// is written.
struct Pending {
    header: Header,
    payload: Payload,
    len: usize,
    sent: usize,
}

impl Pending {
    fn new(frame: RawFrame) -> Self {
        let payload_len = frame.payload.len();
        let header = Header::new(frame.opcode, payload_len);
        Self {
            len: header.as_bytes().len() + payload_len,
            header,
            payload: frame.payload,
            sent: 0,
        }
    }

    fn remaining(&self) -> usize {
        self.len - self.sent
    }

    /// Adds what is left to write to `slices`; false once they are full.
    fn add_to<'a>(&'a self, slices: &mut Slices<'a>) -> bool {
        let mut skip = self.sent;
        let mut add = |part: &'a [u8]| {
            let cut = skip.min(part.len());
            skip -= cut;
            slices.push(&part[cut..])
        };
        if !add(self.header.as_bytes()) {
            return false;
        }
        let mut room = true;
        self.payload.each_part(|part| {
            room = add(part);
            room
        });
        room
    }

    /// Marks `n` bytes written; returns what `n` had beyond this frame.
    fn advance(&mut self, n: usize) -> usize {
        let here = self.remaining().min(n);
        self.sent += here;
        n - here
    }
}

/// The slices of one vectored write.
struct Slices<'a> {
    slices: [IoSlice<'a>; SLICES_PER_WRITE],
    used: usize,
}

impl<'a> Slices<'a> {
    fn new() -> Self {
        Self {
            slices: [IoSlice::new(&[]); SLICES_PER_WRITE],
            used: 0,
        }
    }

    /// Adds `part` unless it is empty; false once full.
    fn push(&mut self, part: &'a [u8]) -> bool {
        if part.is_empty() {
            return true;
        }
        let Some(slot) = self.slices.get_mut(self.used) else {
            return false;
        };
        *slot = IoSlice::new(part);
        self.used += 1;
        true
    }

    fn as_slice(&self) -> &[IoSlice<'a>] {
        &self.slices[..self.used]
    }
}

/// A `Sink` of [`RawFrame`]s over the write half of the socket. Closing
/// it sends a close frame (1000) first unless one was sent: the answer a
/// client that closed is owed (RFC 6455 section 5.5.1).
pub(crate) struct RawSink<W> {
    io: W,
    pending: VecDeque<Pending>,
    buffered: usize,
    close_sent: bool,
}

impl<W> RawSink<W> {
    pub(crate) fn new(io: W) -> Self {
        Self {
            io,
            pending: VecDeque::new(),
            buffered: 0,
            close_sent: false,
        }
    }
}

impl<W: AsyncWrite + Unpin> RawSink<W> {
    /// Writes until nothing is pending.
    fn poll_drain(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while !self.pending.is_empty() {
            let mut slices = Slices::new();
            for frame in &self.pending {
                if !frame.add_to(&mut slices) {
                    break;
                }
            }
            let written =
                ready!(Pin::new(&mut self.io).poll_write_vectored(cx, slices.as_slice()))?;
            if written == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            self.consume(written);
        }
        // Mostly idle connections keep no buffer between rounds.
        self.pending = VecDeque::new();
        Poll::Ready(Ok(()))
    }

    fn consume(&mut self, mut written: usize) {
        self.buffered = self.buffered.saturating_sub(written);
        while written > 0 {
            let Some(front) = self.pending.front_mut() else {
                return;
            };
            written = front.advance(written);
            if front.remaining() == 0 {
                self.pending.pop_front();
            }
        }
    }
}

impl<W: AsyncWrite + Unpin> Sink<RawFrame> for RawSink<W> {
    type Error = io::Error;

    fn poll_ready(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if this.buffered >= HIGH_WATER {
            ready!(this.poll_drain(cx))?;
        }
        Poll::Ready(Ok(()))
    }

    fn start_send(self: Pin<&mut Self>, frame: RawFrame) -> io::Result<()> {
        let this = self.get_mut();
        this.close_sent |= frame.opcode == CLOSE;
        let pending = Pending::new(frame);
        this.buffered += pending.remaining();
        this.pending.push_back(pending);
        Ok(())
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        ready!(this.poll_drain(cx))?;
        Pin::new(&mut this.io).poll_flush(cx)
    }

    fn poll_close(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if !self.close_sent {
            self.as_mut().start_send(RawFrame::close(1000, ""))?;
        }
        let this = self.get_mut();
        ready!(this.poll_drain(cx))?;
        Pin::new(&mut this.io).poll_shutdown(cx)
    }
}

/// The WebSocket codec of the lean path: event frames keep their shared
/// bytes, pings are answered by the session.
pub(crate) struct RawCodec;

impl WireCodec for RawCodec {
    type Item = RawFrame;

    fn encode(&mut self, out: Outbound, items: &mut Vec<RawFrame>) -> usize {
        let frame = match out {
            Outbound::Event(frame) => RawFrame::event(frame),
            Outbound::Batch(frames) => RawFrame::text(encode_batch(&frames)),
            Outbound::Message(message) => RawFrame::text(message.to_json()),
            Outbound::Close(code) => RawFrame::close(code.code(), code.reason()),
        };
        let size = frame.payload.len();
        items.push(frame);
        size
    }

    fn ping(&mut self) -> RawFrame {
        RawFrame::new(PING, Bytes::new())
    }

    fn pong(&mut self, payload: Bytes) -> Option<RawFrame> {
        Some(RawFrame::new(PONG, payload))
    }
}

/// The read half of the socket as tungstenite's stream: tungstenite reads
/// client frames through it, and what it would write (its automatic pong
/// and close replies) is discarded, since the session answers those on
/// the write half, between whole frames.
pub(crate) struct ReadOnly<R>(pub(crate) R);

impl<R: AsyncRead + Unpin> AsyncRead for ReadOnly<R> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().0).poll_read(cx, buf)
    }
}

impl<R: Unpin> AsyncWrite for ReadOnly<R> {
    fn poll_write(
        self: Pin<&mut Self>,
        _: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures_util::SinkExt;
    use tokio_tungstenite::tungstenite::protocol::Role;
    use tokio_tungstenite::tungstenite::Message;

    /// Frames written by [`RawSink`] as a tungstenite client reads them.
    async fn read_back(frames: Vec<RawFrame>) -> Vec<Message> {
        read_back_through(frames, 1 << 20).await
    }

    /// The same through a pipe of `capacity` bytes: writes are cut short
    /// anywhere, inside a header, a payload or a tail.
    async fn read_back_through(frames: Vec<RawFrame>, capacity: usize) -> Vec<Message> {
        let (client, server) = tokio::io::duplex(capacity);
        let (read_all, done) = tokio::sync::oneshot::channel::<()>();
        let writer = tokio::spawn(async move {
            let mut sink = RawSink::new(server);
            for frame in frames {
                sink.feed(frame).await.unwrap();
            }
            sink.close().await.unwrap();
            // The client answers pings and the close: keep its peer open.
            let _ = done.await;
        });
        let mut ws =
            tokio_tungstenite::WebSocketStream::from_raw_socket(client, Role::Client, None).await;
        let mut messages = Vec::new();
        while let Some(Ok(message)) = futures_util::StreamExt::next(&mut ws).await {
            messages.push(message);
        }
        let _ = read_all.send(());
        writer.await.unwrap();
        messages
    }

    fn event_frame(seq: u64, subs: &[&str], resume: u64) -> EventFrame {
        use tickcast_core::model::{Event, Offset, SubId};
        let body = br#"{"symbol":"AAPL","pattern":"Doji"}"#;
        let event = Event::from_json(Bytes::from_static(body), None, 1 << 20).unwrap();
        let prepared = std::sync::Arc::new(tickcast_core::broadcast::PreparedEvent::new(
            event,
            Offset::new(7, seq),
        ));
        let subs: Vec<SubId> = subs.iter().map(|s| SubId::from(*s)).collect();
        let mut frame = EventFrame::new(prepared, &subs);
        frame.resume = Offset::new(7, resume);
        frame
    }

    fn text(json: &Bytes) -> Message {
        Message::text(String::from_utf8(json.to_vec()).unwrap())
    }

    #[tokio::test]
    async fn an_event_frame_is_its_shared_object_then_its_resume_even_cut_short() {
        let frame = event_frame(3, &["s1"], 9);
        let mut items = Vec::new();
        RawCodec.encode(Outbound::Event(frame.clone()), &mut items);
        RawCodec.encode(Outbound::Event(frame.clone()), &mut items);
        let messages = read_back_through(items, 3).await;
        let expected = text(&frame.to_json());
        assert_eq!(messages[..2], [expected.clone(), expected]);
        let json: serde_json::Value = serde_json::from_slice(&frame.to_json()).unwrap();
        assert_eq!(
            (json["offset"].as_str(), json["resume"].as_str()),
            (Some("7-3"), Some("7-9"))
        );
    }

    #[tokio::test]
    async fn batches_and_events_read_back_as_encoded_even_cut_short() {
        // More frames than one vectored write has slices for.
        let frames: Vec<EventFrame> = (1..=80)
            .map(|i| event_frame(i, if i % 2 == 0 { &["s1", "s2"] } else { &[] }, i))
            .collect();
        let expected = text(&tickcast_core::broadcast::encode_batch(&frames));
        for capacity in [5, 4096, 1 << 20] {
            let mut items = Vec::new();
            RawCodec.encode(Outbound::Batch(frames.clone()), &mut items);
            for frame in &frames {
                RawCodec.encode(Outbound::Event(frame.clone()), &mut items);
            }
            let messages = read_back_through(items, capacity).await;
            assert_eq!(messages[0], expected, "capacity {capacity}");
            for (message, frame) in messages[1..].iter().zip(&frames) {
                assert_eq!(message, &text(&frame.to_json()), "capacity {capacity}");
            }
            // Then the close the sink sends when it is closed.
            assert!(matches!(messages[1 + frames.len()], Message::Close(_)));
        }
    }

    #[tokio::test]
    async fn frames_of_every_length_class_read_back_as_sent() {
        let sizes = [0usize, 1, 125, 126, 65_535, 65_536, 200_000];
        let texts: Vec<String> = sizes.iter().map(|n| "x".repeat(*n)).collect();
        let mut frames: Vec<RawFrame> = texts
            .iter()
            .map(|t| RawFrame::text(Bytes::from(t.clone())))
            .collect();
        frames.push(RawCodec.ping());
        frames.extend(RawCodec.pong(Bytes::from_static(b"p")));
        frames.push(RawFrame::close(4008, "slow consumer"));
        let messages = read_back(frames).await;
        for (message, text) in messages.iter().zip(&texts) {
            assert_eq!(message, &Message::text(text.clone()));
        }
        assert_eq!(messages[sizes.len()], Message::Ping(Bytes::new()));
        assert_eq!(
            messages[sizes.len() + 1],
            Message::Pong(Bytes::from_static(b"p"))
        );
        match &messages[sizes.len() + 2] {
            Message::Close(Some(close)) => {
                assert_eq!(u16::from(close.code), 4008);
                assert_eq!(close.reason.as_str(), "slow consumer");
            }
            other => panic!("{other:?}"),
        }
    }

    use tickcast_testkit::io::Trickle;

    #[tokio::test]
    async fn partial_writes_resume_mid_header_and_mid_payload() {
        let payloads = ["a", &"b".repeat(300), "c"];
        for step in [1, 3, 7, 64] {
            let mut sink = RawSink::new(Trickle::new(step));
            for p in payloads {
                sink.feed(RawFrame::text(Bytes::from(p.to_owned())))
                    .await
                    .unwrap();
            }
            sink.flush().await.unwrap();
            let mut expected = Vec::new();
            for p in payloads {
                let header = Header::new(TEXT, p.len());
                expected.extend_from_slice(&header.bytes[..header.len as usize]);
                expected.extend_from_slice(p.as_bytes());
            }
            assert_eq!(sink.io.out, expected, "step {step}");
            assert_eq!(sink.buffered, 0);
        }
    }
}
