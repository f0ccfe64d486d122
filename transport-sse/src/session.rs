//! One SSE connection: the response body, a stream of `Bytes` chunks pulled
//! by hyper whenever the socket can take more.
//!
//! Each chunk is whatever the connection's queue has ready (a batch is
//! always one chunk, and items ready together are coalesced), a `: ping`
//! comment, or the final close. The body owns the hub connection: when the
//! client goes away hyper drops the body, and with it the connection.
//! Since the socket is only written when hyper pulls, a client that does
//! not read leaves its events in the hub's queue, where the slow-consumer
//! policy applies as on WebSocket.

use std::convert::Infallible;
use std::pin::Pin;
use std::sync::Mutex;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use futures_util::stream::{BoxStream, Stream, StreamExt};
use tickcast_core::auth::Identity;
use tickcast_core::broadcast::{FrameReceiver, Outbound};
use tickcast_core::protocol::{CloseCode, ErrorCode, ServerMessage};
use tickcast_core::{Connection, ConnectionHandle};
use tokio::time::{Instant, Interval, MissedTickBehavior, Sleep};

use crate::wire;

/// Most outbound items coalesced into one chunk.
const MAX_ITEMS_PER_CHUNK: usize = 64;
/// A chunk stops taking more items beyond this size.
const MAX_CHUNK_BYTES: usize = 256 * 1024;

/// The state of one connection's body.
struct Session {
    /// Kept for its lifetime: dropping it disconnects from the hub.
    handle: ConnectionHandle,
    frames: FrameReceiver,
    ping: Interval,
    /// Token expiry; `None` without a token or once it fired.
    expiry: Option<Pin<Box<Sleep>>>,
    /// Written before the first item (the `retry:` line).
    preamble: Option<Bytes>,
    /// The close was written: the body ends.
    finished: bool,
}

impl Session {
    /// The next chunk to write; `None` ends the body.
    async fn next_chunk(&mut self) -> Option<Bytes> {
        if self.finished {
            return None;
        }
        loop {
            tokio::select! {
                out = self.frames.recv() => return Some(self.encode(out?)),
                _ = self.ping.tick() => return Some(Bytes::from_static(wire::PING)),
                () = until(&mut self.expiry) => {
                    self.expiry = None;
                    let error = ServerMessage::error(ErrorCode::TokenExpired, "token expired", None);
                    // The queue yields the error, then Close(4002).
                    self.handle.close(CloseCode::TokenExpired, Some(error));
                }
            }
        }
    }

    /// `first` and whatever else is ready right now, as one chunk.
    fn encode(&mut self, first: Outbound) -> Bytes {
        let preamble = self.preamble.take().unwrap_or_default();
        let mut buf = BytesMut::with_capacity(preamble.len() + wire::size_hint(&first));
        buf.extend_from_slice(&preamble);
        let mut next = Some(first);
        let mut items = 0;
        while let Some(out) = next.take() {
            if wire::write(&mut buf, &out) {
                self.finished = true;
                break;
            }
            items += 1;
            if items < MAX_ITEMS_PER_CHUNK && buf.len() < MAX_CHUNK_BYTES {
                next = self.frames.try_recv();
            }
        }
        buf.freeze()
    }
}

/// Resolves when the deadline passes; never without one.
async fn until(deadline: &mut Option<Pin<Box<Sleep>>>) {
    match deadline {
        Some(sleep) => sleep.as_mut().await,
        None => std::future::pending().await,
    }
}

/// The body stream of a connection registered with the hub and subscribed.
pub(crate) fn body(
    connection: Connection,
    identity: Option<&Identity>,
    ping_interval: Duration,
    retry: Option<Duration>,
) -> SyncStream {
    let Connection { handle, frames } = connection;
    let ping_interval = ping_interval.max(Duration::from_millis(1));
    let mut ping = tokio::time::interval_at(Instant::now() + ping_interval, ping_interval);
    ping.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let expiry = identity.map(|i| Box::pin(tokio::time::sleep(i.time_left())));
    let preamble = retry.map(|r| Bytes::from(format!("retry: {}\n\n", r.as_millis())));
    let session = Session {
        handle,
        frames,
        ping,
        expiry,
        preamble,
        finished: false,
    };
    let stream = futures_util::stream::unfold(session, |mut session| async move {
        let chunk = session.next_chunk().await?;
        Some((Ok::<Bytes, Infallible>(chunk), session))
    });
    SyncStream(Mutex::new(stream.boxed()))
}

/// A `Send` stream made `Sync`, as `warp::reply::stream` requires. The
/// mutex is never locked: polling has `&mut` access already.
pub(crate) struct SyncStream(Mutex<BoxStream<'static, Result<Bytes, Infallible>>>);

impl Stream for SyncStream {
    type Item = Result<Bytes, Infallible>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let inner = match self.get_mut().0.get_mut() {
            Ok(inner) => inner,
            Err(poisoned) => poisoned.into_inner(),
        };
        inner.poll_next_unpin(cx)
    }
}
