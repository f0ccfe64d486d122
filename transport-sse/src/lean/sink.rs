//! [`BodySink`]: the lean path's writer. Each chunk the session hands over
//! goes out in one vectored write: the chunk-size line (built on the
//! stack), the chunk's own bytes and the closing CRLF, without copying the
//! chunk into a per-connection buffer. The response head rides on the
//! first write, so it too is under the session's write deadline.

use std::io::{self, IoSlice, Write as _};
use std::pin::Pin;
use std::task::{ready, Context, Poll};

use bytes::Bytes;
use futures_util::Sink;
use tokio::io::AsyncWrite;

/// The end of a chunked body.
const LAST_CHUNK: &[u8] = b"0\r\n\r\n";

/// How the body is delimited on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum BodyFraming {
    /// Each chunk framed, a last chunk at the end (HTTP/1.1).
    Chunked,
    /// Bytes as they are; the end is the connection's (HTTP/1.0).
    UntilClose,
}

/// One write: what is left of the head, the size line, the chunk and its
/// CRLF.
#[derive(Debug)]
struct Pending {
    head: Bytes,
    size: [u8; 18],
    size_len: usize,
    payload: Bytes,
    tail: &'static [u8],
    /// Bytes of the four parts already written.
    written: usize,
}

impl Pending {
    fn new(head: Bytes, payload: Bytes, framing: BodyFraming) -> Self {
        let mut pending = Self {
            head,
            size: [0; 18],
            size_len: 0,
            payload,
            tail: b"",
            written: 0,
        };
        if framing == BodyFraming::Chunked && !pending.payload.is_empty() {
            let mut line = &mut pending.size[..];
            // 16 hex digits and CRLF fit in 18 bytes.
            let _ = write!(line, "{:X}\r\n", pending.payload.len());
            pending.size_len = 18 - line.len();
            pending.tail = b"\r\n";
        }
        pending
    }

    /// The parts not yet written, as slices for one vectored write;
    /// returns how many.
    fn slices<'a>(&'a self, out: &mut [IoSlice<'a>; 4]) -> usize {
        let parts: [&'a [u8]; 4] = [
            &self.head,
            &self.size[..self.size_len],
            &self.payload,
            self.tail,
        ];
        let mut skip = self.written;
        let mut used = 0;
        for part in parts {
            if skip >= part.len() {
                skip -= part.len();
                continue;
            }
            out[used] = IoSlice::new(&part[skip..]);
            skip = 0;
            used += 1;
        }
        used
    }
}

/// A `Sink` of body chunks over the write half of the socket. Closing it
/// writes the last chunk (chunked bodies) and shuts the socket's write
/// side.
#[derive(Debug)]
pub(crate) struct BodySink<W> {
    io: W,
    framing: BodyFraming,
    /// The response head, until the first write takes it.
    head: Bytes,
    pending: Option<Pending>,
    /// The body's end was queued.
    ended: bool,
}

impl<W> BodySink<W> {
    /// A body after `head` on `io`.
    pub(crate) fn new(io: W, framing: BodyFraming, head: Bytes) -> Self {
        Self {
            io,
            framing,
            head,
            pending: None,
            ended: false,
        }
    }
}

impl<W: AsyncWrite + Unpin> BodySink<W> {
    /// Writes until nothing is pending.
    fn poll_drain(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let Self { io, pending, .. } = self;
        while let Some(current) = pending {
            let mut slices = [IoSlice::new(&[]); 4];
            let used = current.slices(&mut slices);
            if used == 0 {
                break;
            }
            let n = ready!(Pin::new(&mut *io).poll_write_vectored(cx, &slices[..used]))?;
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            current.written += n;
        }
        *pending = None;
        Poll::Ready(Ok(()))
    }
}

impl<W: AsyncWrite + Unpin> Sink<Bytes> for BodySink<W> {
    type Error = io::Error;

    fn poll_ready(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.get_mut().poll_drain(cx)
    }

    fn start_send(self: Pin<&mut Self>, chunk: Bytes) -> io::Result<()> {
        let this = self.get_mut();
        // An empty chunk would end a chunked body.
        if chunk.is_empty() {
            return Ok(());
        }
        let head = std::mem::take(&mut this.head);
        this.pending = Some(Pending::new(head, chunk, this.framing));
        Ok(())
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        ready!(this.poll_drain(cx))?;
        Pin::new(&mut this.io).poll_flush(cx)
    }

    fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        ready!(this.poll_drain(cx))?;
        if !this.ended {
            this.ended = true;
            let last = match this.framing {
                BodyFraming::Chunked => Bytes::from_static(LAST_CHUNK),
                BodyFraming::UntilClose => Bytes::new(),
            };
            let head = std::mem::take(&mut this.head);
            // Written as is: the last chunk has no framing of its own.
            this.pending = Some(Pending::new(head, last, BodyFraming::UntilClose));
            ready!(this.poll_drain(cx))?;
        }
        Pin::new(&mut this.io).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures_util::SinkExt;

    use tickcast_testkit::io::Trickle;

    async fn written(framing: BodyFraming, step: usize, chunks: &[&str]) -> String {
        let io = Trickle::new(step);
        let mut sink = BodySink::new(io, framing, Bytes::from_static(b"HEAD\r\n\r\n"));
        for chunk in chunks {
            sink.feed(Bytes::from(chunk.to_string())).await.unwrap();
        }
        sink.close().await.unwrap();
        assert!(sink.io.shut);
        String::from_utf8(sink.io.out).unwrap()
    }

    #[tokio::test]
    async fn chunks_are_framed_whatever_the_socket_takes_per_write() {
        let big = "x".repeat(300);
        for step in [1, 2, 5, 7, 64, 4096] {
            assert_eq!(
                written(BodyFraming::Chunked, step, &["hello", "", &big]).await,
                format!("HEAD\r\n\r\n5\r\nhello\r\n12C\r\n{big}\r\n0\r\n\r\n"),
                "step {step}"
            );
            assert_eq!(
                written(BodyFraming::UntilClose, step, &["hello", &big]).await,
                format!("HEAD\r\n\r\nhello{big}"),
                "step {step}"
            );
        }
    }

    #[tokio::test]
    async fn the_head_goes_out_even_without_a_chunk() {
        assert_eq!(
            written(BodyFraming::Chunked, 3, &[]).await,
            "HEAD\r\n\r\n0\r\n\r\n"
        );
    }
}
