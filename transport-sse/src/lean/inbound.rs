//! [`Discard`]: the read half of a lean stream. An SSE client has nothing
//! to say after its request; reading still tells when it leaves.

use std::pin::Pin;
use std::task::{ready, Context, Poll};

use futures_util::Stream;
use tickcast_core::session::Inbound;
use tokio::io::{AsyncRead, ReadBuf};

/// Most bytes a client may send after its request head (a pipelined
/// request, a keep-alive probe) before its stream is ended: they are read
/// and dropped, never kept, and a client streaming data at an SSE endpoint
/// is not one.
pub(crate) const MAX_DISCARDED: usize = 64 * 1024;

/// Bytes read (and dropped) per read call: a stack buffer, so an idle
/// stream holds none.
const SCRATCH: usize = 512;

/// The client's side of a lean stream, as core's session reads it: one
/// [`Inbound::Closed`] once the client closes, its socket fails, or it has
/// sent more than [`MAX_DISCARDED`] bytes; nothing before.
#[derive(Debug)]
pub(crate) struct Discard<R> {
    io: R,
    discarded: usize,
    ended: bool,
}

impl<R> Discard<R> {
    /// Reads `io`; `already` bytes were sent after the head and count
    /// toward the bound.
    pub(crate) fn new(io: R, already: usize) -> Self {
        Self {
            io,
            discarded: already,
            ended: false,
        }
    }
}

impl<R: AsyncRead + Unpin> Stream for Discard<R> {
    type Item = Inbound;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Inbound>> {
        if self.ended {
            return Poll::Ready(None);
        }
        let mut scratch = [0u8; SCRATCH];
        while self.discarded <= MAX_DISCARDED {
            let mut buf = ReadBuf::new(&mut scratch);
            match ready!(Pin::new(&mut self.io).poll_read(cx, &mut buf)) {
                Ok(()) if buf.filled().is_empty() => break,
                Ok(()) => self.discarded = self.discarded.saturating_add(buf.filled().len()),
                Err(_) => break,
            }
        }
        self.ended = true;
        Poll::Ready(Some(Inbound::Closed))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures_util::StreamExt;
    use tokio::io::AsyncWriteExt;

    #[tokio::test]
    async fn bytes_are_dropped_until_the_client_closes() {
        let (mut client, server) = tokio::io::duplex(1024);
        let mut inbound = Discard::new(server, 0);
        client
            .write_all(b"GET /health HTTP/1.1\r\n\r\n")
            .await
            .unwrap();
        let waker = futures_util::task::noop_waker();
        let mut cx = Context::from_waker(&waker);
        assert!(inbound.poll_next_unpin(&mut cx).is_pending());
        drop(client);
        assert_eq!(inbound.next().await, Some(Inbound::Closed));
        assert_eq!(inbound.next().await, None);
    }

    #[tokio::test]
    async fn a_client_that_keeps_sending_is_ended_past_the_bound() {
        let (mut client, server) = tokio::io::duplex(4096);
        let mut inbound = Discard::new(server, MAX_DISCARDED - 10);
        let writer = tokio::spawn(async move {
            // Stops once the reader is gone.
            while client.write_all(&[b'x'; 100]).await.is_ok() {}
        });
        assert_eq!(inbound.next().await, Some(Inbound::Closed));
        drop(inbound);
        writer.await.unwrap();
    }
}
