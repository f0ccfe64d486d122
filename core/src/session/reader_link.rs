//! [`ReaderLink`]: what the reader task tells the writer: a ping to
//! answer, and that it has ended.
//!
//! Every connection has one, so it is a flag, a slot and a waker rather
//! than a channel (whose first block alone costs a kilobyte per idle
//! connection).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use parking_lot::Mutex;

use crate::broadcast::Wakeup;

/// What the writer hears from the reader.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum FromReader {
    /// Answer this ping (the latest one not answered yet).
    Ping(Bytes),
    /// The reader ended: the client left or its socket failed.
    Ended,
}

#[derive(Debug, Default)]
struct Shared {
    ping: Mutex<Option<Bytes>>,
    ended: AtomicBool,
    wakeup: Wakeup,
}

/// The reader's end; dropping it tells the writer the reader ended.
#[derive(Debug)]
pub(crate) struct ReaderSide(Arc<Shared>);

/// The writer's end.
#[derive(Debug)]
pub(crate) struct WriterSide(Arc<Shared>);

/// A new link between a reader and a writer.
pub(crate) fn link() -> (ReaderSide, WriterSide) {
    let shared = Arc::new(Shared::default());
    (ReaderSide(shared.clone()), WriterSide(shared))
}

impl ReaderSide {
    /// Asks the writer to answer `payload`; replaces a ping not answered
    /// yet (RFC 6455 lets a server answer only the latest).
    pub(crate) fn ping(&self, payload: Bytes) {
        *self.0.ping.lock() = Some(payload);
        self.0.wakeup.wake();
    }
}

impl Drop for ReaderSide {
    fn drop(&mut self) {
        self.0.ended.store(true, Ordering::Release);
        self.0.wakeup.wake();
    }
}

impl WriterSide {
    /// The next thing the reader has to say.
    #[cfg(test)]
    pub(crate) async fn recv(&self) -> FromReader {
        std::future::poll_fn(|cx| self.poll_recv(cx)).await
    }

    /// Polls for the next thing the reader has to say.
    pub(crate) fn poll_recv(&self, cx: &mut Context<'_>) -> Poll<FromReader> {
        loop {
            if let Some(payload) = self.0.ping.lock().take() {
                return Poll::Ready(FromReader::Ping(payload));
            }
            if self.0.ended.load(Ordering::Acquire) {
                return Poll::Ready(FromReader::Ended);
            }
            // Woken for nothing new: look again (and register) until
            // truly pending.
            if self.0.wakeup.poll_woken(cx).is_pending() {
                return Poll::Pending;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn pings_then_the_end_reach_the_writer() {
        let (reader, writer) = link();
        reader.ping(Bytes::from_static(b"a"));
        reader.ping(Bytes::from_static(b"b"));
        assert_eq!(
            writer.recv().await,
            FromReader::Ping(Bytes::from_static(b"b"))
        );
        drop(reader);
        assert_eq!(writer.recv().await, FromReader::Ended);
        assert_eq!(writer.recv().await, FromReader::Ended);
    }
}
