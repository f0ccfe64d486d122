//! The lean WebSocket writer: server frames written straight to the
//! socket's write half.
//!
//! A server frame is not masked, so an event's bytes are the same for
//! every recipient: each frame is its header (built here), the packet's
//! head and tail (a few dozen bytes of its own: `42["<type>",` and
//! `,"<resume>"]`) and the event's shared bytes between them, written with
//! one vectored write per round, without copying the event into a
//! per-connection buffer. tungstenite only reads ([`ReadOnly`]).

use std::collections::VecDeque;
use std::io::{self, IoSlice};
use std::pin::Pin;
use std::task::{ready, Context, Poll};

use bytes::Bytes;
use futures_util::Sink;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use crate::packet::{Out, Packet};

/// Frames written per vectored write (up to four slices each): a whole
/// round of the session (64 items) in one system call.
const FRAMES_PER_WRITE: usize = 64;
/// Bytes buffered before the sink asks to be flushed.
const HIGH_WATER: usize = 64 * 1024;

const TEXT: u8 = 0x1;
const CLOSE: u8 = 0x8;

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

/// A frame being written, and how much of it is.
struct Pending {
    header: Header,
    packet: Packet,
    written: usize,
}

impl Pending {
    fn text(packet: Packet) -> Self {
        Self {
            header: Header::new(TEXT, packet.len()),
            packet,
            written: 0,
        }
    }

    fn close(code: u16, reason: &str) -> Self {
        let mut payload = code.to_be_bytes().to_vec();
        payload.extend_from_slice(reason.as_bytes());
        let packet = Packet::whole(Bytes::from(payload));
        Self {
            header: Header::new(CLOSE, packet.len()),
            packet,
            written: 0,
        }
    }

    fn total(&self) -> usize {
        usize::from(self.header.len) + self.packet.len()
    }

    fn remaining(&self) -> usize {
        self.total() - self.written
    }

    /// Puts what is left to write, in order, into `out` from `used` on;
    /// returns the new count.
    fn slices<'a>(&'a self, out: &mut [IoSlice<'a>], mut used: usize) -> usize {
        let mut skip = self.written;
        let [head, body, tail] = self.packet.parts();
        for part in [self.header.as_bytes(), head, body, tail] {
            if skip >= part.len() {
                skip -= part.len();
                continue;
            }
            if let Some(slot) = out.get_mut(used) {
                *slot = IoSlice::new(&part[skip..]);
                used += 1;
            }
            skip = 0;
        }
        used
    }

    /// Marks up to `n` bytes written; returns what `n` had beyond this frame.
    fn advance(&mut self, n: usize) -> usize {
        let here = self.remaining().min(n);
        self.written += here;
        n - here
    }
}

/// A `Sink` of [`Out`] items over the write half of the socket. Closing
/// it sends a close frame (1000) unless one was sent.
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

    fn push(&mut self, frame: Pending) {
        self.buffered += frame.remaining();
        self.pending.push_back(frame);
    }
}

impl<W: AsyncWrite + Unpin> RawSink<W> {
    /// Writes until nothing is pending.
    fn poll_drain(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while !self.pending.is_empty() {
            // On the stack: no allocation per write.
            let mut slices = [IoSlice::new(&[]); 4 * FRAMES_PER_WRITE];
            let mut used = 0;
            for frame in self.pending.iter().take(FRAMES_PER_WRITE) {
                used = frame.slices(&mut slices, used);
            }
            let written = ready!(Pin::new(&mut self.io).poll_write_vectored(cx, &slices[..used]))?;
            if written == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            self.buffered = self.buffered.saturating_sub(written);
            let mut left = written;
            while left > 0 {
                let Some(front) = self.pending.front_mut() else {
                    break;
                };
                left = front.advance(left);
                if front.remaining() == 0 {
                    self.pending.pop_front();
                }
            }
        }
        // Mostly idle connections keep no buffer between rounds.
        self.pending = VecDeque::new();
        Poll::Ready(Ok(()))
    }
}

impl<W: AsyncWrite + Unpin> Sink<Out> for RawSink<W> {
    type Error = io::Error;

    fn poll_ready(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if this.buffered >= HIGH_WATER {
            ready!(this.poll_drain(cx))?;
        }
        Poll::Ready(Ok(()))
    }

    fn start_send(self: Pin<&mut Self>, out: Out) -> io::Result<()> {
        let this = self.get_mut();
        if this.close_sent {
            return Ok(());
        }
        match out {
            Out::Packet(packet) => this.push(Pending::text(packet)),
            Out::Many(packets) => packets
                .into_iter()
                .for_each(|p| this.push(Pending::text(p))),
            Out::Close(code, reason) => {
                this.close_sent = true;
                this.push(Pending::close(code, reason));
            }
        }
        Ok(())
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        ready!(this.poll_drain(cx))?;
        Pin::new(&mut this.io).poll_flush(cx)
    }

    fn poll_close(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if !self.close_sent {
            self.as_mut().start_send(Out::Close(1000, ""))?;
        }
        let this = self.get_mut();
        ready!(this.poll_drain(cx))?;
        Pin::new(&mut this.io).poll_shutdown(cx)
    }
}

/// The read half of the socket as tungstenite's stream: what tungstenite
/// would write (its automatic pong and close replies) is discarded; the
/// session writes on the write half, between whole frames.
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
    use futures_util::{SinkExt, StreamExt};
    use tickcast_testkit::io::Trickle;
    use tokio_tungstenite::tungstenite::protocol::Role;
    use tokio_tungstenite::tungstenite::Message;

    #[tokio::test]
    async fn packets_in_three_parts_read_back_whole_even_cut_short() {
        let long = "x".repeat(70_000);
        let packets = [
            Packet::parts_of(b"42[\"a\",", Bytes::from_static(b"{}"), b",\"1-2\"]"),
            Packet::whole(long.clone()),
            Packet::fixed("2"),
        ];
        let (client, server) = tokio::io::duplex(7);
        let writer = tokio::spawn(async move {
            let mut sink = RawSink::new(server);
            sink.feed(Out::Many(packets.to_vec())).await.unwrap();
            sink.feed(Out::Close(4008, "slow consumer")).await.unwrap();
            sink.close().await.unwrap();
        });
        let mut ws =
            tokio_tungstenite::WebSocketStream::from_raw_socket(client, Role::Client, None).await;
        let mut got = Vec::new();
        while let Some(Ok(message)) = ws.next().await {
            got.push(message);
        }
        writer.await.unwrap();
        assert_eq!(got[0], Message::text(r#"42["a",{},"1-2"]"#));
        assert_eq!(got[1], Message::text(long));
        assert_eq!(got[2], Message::text("2"));
        match &got[3] {
            Message::Close(Some(close)) => assert_eq!(u16::from(close.code), 4008),
            other => panic!("{other:?}"),
        }
    }

    #[tokio::test]
    async fn partial_writes_resume_anywhere_in_a_frame() {
        for step in [1, 3, 7, 64] {
            let mut sink = RawSink::new(Trickle::new(step));
            let packet = Packet::parts_of(b"ab", Bytes::from("c".repeat(300)), b"de");
            sink.feed(Out::Packet(packet.clone())).await.unwrap();
            sink.flush().await.unwrap();
            let mut expected = Header::new(TEXT, packet.len()).as_bytes().to_vec();
            expected.extend_from_slice(&packet.to_bytes());
            assert_eq!(sink.io.out, expected, "step {step}");
        }
    }
}
