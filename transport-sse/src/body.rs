//! [`channel`]: the hand-off between an SSE session and its response body.
//!
//! One chunk at a time, like a channel of capacity one, but a slot and
//! three wakers instead of a channel's first block: every idle stream
//! holds one. The session's end is a `Sink` (ready when the body has taken
//! the last chunk); the body's end is the response's `Stream`; a third end,
//! [`Gone`], tells the session when hyper dropped the body (the client
//! left).

use std::convert::Infallible;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use futures_util::task::AtomicWaker;
use futures_util::{Sink, Stream};
use parking_lot::Mutex;
use tickcast_core::session::Inbound;

#[derive(Default)]
struct Slot {
    chunk: Mutex<Option<Bytes>>,
    /// The session is done: the body ends after the last chunk.
    sender_done: AtomicBool,
    /// hyper dropped the body.
    body_gone: AtomicBool,
    body_waker: AtomicWaker,
    sender_waker: AtomicWaker,
    gone_waker: AtomicWaker,
}

/// The session's end.
pub(crate) struct ChunkSink(Arc<Slot>);
/// The response body.
pub(crate) struct Body(Arc<Slot>);
/// Says [`Inbound::Closed`] once hyper has dropped the body.
pub(crate) struct Gone(Arc<Slot>);

/// A new hand-off.
pub(crate) fn channel() -> (ChunkSink, Body, Gone) {
    let slot = Arc::new(Slot::default());
    (ChunkSink(slot.clone()), Body(slot.clone()), Gone(slot))
}

fn gone_error() -> io::Error {
    io::Error::new(io::ErrorKind::BrokenPipe, "the client left")
}

impl Sink<Bytes> for ChunkSink {
    type Error = io::Error;

    fn poll_ready(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let slot = &self.0;
        for attempt in 0..2 {
            if slot.body_gone.load(Ordering::Acquire) {
                return Poll::Ready(Err(gone_error()));
            }
            if slot.chunk.lock().is_none() {
                return Poll::Ready(Ok(()));
            }
            if attempt == 0 {
                // Registered before the second look: a take in between
                // wakes us.
                slot.sender_waker.register(cx.waker());
            }
        }
        Poll::Pending
    }

    fn start_send(self: Pin<&mut Self>, chunk: Bytes) -> io::Result<()> {
        let slot = &self.0;
        if slot.body_gone.load(Ordering::Acquire) {
            return Err(gone_error());
        }
        *slot.chunk.lock() = Some(chunk);
        slot.body_waker.wake();
        Ok(())
    }

    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        // The slot is the buffer: a chunk in it is handed over. A body that
        // takes nothing shows at the next `poll_ready`.
        if self.0.body_gone.load(Ordering::Acquire) {
            return Poll::Ready(Err(gone_error()));
        }
        Poll::Ready(Ok(()))
    }

    fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        // The body ends once it has taken the last chunk and the sink is
        // dropped.
        self.poll_flush(cx)
    }
}

impl Drop for ChunkSink {
    fn drop(&mut self) {
        self.0.sender_done.store(true, Ordering::Release);
        self.0.body_waker.wake();
    }
}

impl Stream for Body {
    type Item = Result<Bytes, Infallible>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let slot = &self.0;
        for attempt in 0..2 {
            if let Some(chunk) = slot.chunk.lock().take() {
                slot.sender_waker.wake();
                return Poll::Ready(Some(Ok(chunk)));
            }
            if slot.sender_done.load(Ordering::Acquire) {
                return Poll::Ready(None);
            }
            if attempt == 0 {
                slot.body_waker.register(cx.waker());
            }
        }
        Poll::Pending
    }
}

impl Drop for Body {
    fn drop(&mut self) {
        self.0.body_gone.store(true, Ordering::Release);
        self.0.sender_waker.wake();
        self.0.gone_waker.wake();
    }
}

impl Stream for Gone {
    type Item = Inbound;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Inbound>> {
        let slot = &self.0;
        if slot.body_gone.load(Ordering::Acquire) {
            return Poll::Ready(Some(Inbound::Closed));
        }
        slot.gone_waker.register(cx.waker());
        if slot.body_gone.load(Ordering::Acquire) {
            return Poll::Ready(Some(Inbound::Closed));
        }
        Poll::Pending
    }
}

#[cfg(test)]
mod tests {
    use futures_util::{SinkExt, StreamExt};

    use super::*;

    #[tokio::test]
    async fn chunks_pass_one_at_a_time_and_the_body_ends_with_the_session() {
        let (mut sink, mut body, _gone) = channel();
        sink.send(Bytes::from_static(b"a")).await.unwrap();
        let waker = futures_util::task::noop_waker();
        let mut cx = Context::from_waker(&waker);
        // The slot is full until the body takes it.
        assert!(Pin::new(&mut sink).poll_ready(&mut cx).is_pending());
        assert_eq!(body.next().await, Some(Ok(Bytes::from_static(b"a"))));
        sink.send(Bytes::from_static(b"b")).await.unwrap();
        drop(sink);
        assert_eq!(body.next().await, Some(Ok(Bytes::from_static(b"b"))));
        assert_eq!(body.next().await, None);
    }

    #[tokio::test]
    async fn a_dropped_body_fails_the_sink_and_says_closed() {
        let (mut sink, body, mut gone) = channel();
        drop(body);
        assert_eq!(gone.next().await, Some(Inbound::Closed));
        assert!(sink.send(Bytes::from_static(b"a")).await.is_err());
    }
}
