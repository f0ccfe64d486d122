//! One SSE connection on core's session: the codec both servers use, and
//! the response body of the warp filter.
//!
//! On warp, the response body is the receiving end of a one-chunk channel; core's
//! session writes into the other end from a task of its own. hyper pulls
//! the next chunk whenever the socket can take more, so a client that does
//! not read stops the pulls, the session's write stalls, and the write
//! deadline applies as on WebSocket: the session ends, frees the hub
//! connection, and fires the request's [`SocketAbort`] (when the server
//! provides one) so that the socket is dropped too. When hyper drops the
//! body (the client left), the session sees the channel close and ends.

use std::convert::Infallible;
use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use futures_util::Stream;
use tickcast_core::broadcast::Outbound;
use tickcast_core::session::{self, Opened, SocketAbort, Transport, WireCodec};

use crate::{body, wire, SseConfig};

/// The SSE codec: every item of a round coalesced into one chunk.
pub(crate) struct SseCodec {
    chunk: BytesMut,
    /// Written before the first item (the `retry:` line).
    preamble: Option<Bytes>,
}

impl SseCodec {
    /// A codec for a new stream under `config` (its `retry:` line first).
    pub(crate) fn new(config: &SseConfig) -> Self {
        Self {
            chunk: BytesMut::new(),
            preamble: config
                .retry
                .map(|r| Bytes::from(format!("retry: {}\n\n", r.as_millis()))),
        }
    }

    fn take_preamble(&mut self) {
        if let Some(preamble) = self.preamble.take() {
            self.chunk.extend_from_slice(&preamble);
        }
    }
}

impl WireCodec for SseCodec {
    type Item = Bytes;

    fn encode(&mut self, out: Outbound, _: &mut Vec<Bytes>) -> usize {
        self.take_preamble();
        let before = self.chunk.len();
        self.chunk.reserve(wire::size_hint(&out));
        wire::write(&mut self.chunk, &out);
        self.chunk.len() - before
    }

    fn seal(&mut self, items: &mut Vec<Bytes>) {
        if !self.chunk.is_empty() {
            // A fresh buffer each round: an idle stream keeps none.
            items.push(std::mem::take(&mut self.chunk).freeze());
        }
    }

    fn ping(&mut self) -> Bytes {
        if self.preamble.is_none() {
            return Bytes::from_static(wire::PING);
        }
        self.take_preamble();
        self.chunk.extend_from_slice(wire::PING);
        std::mem::take(&mut self.chunk).freeze()
    }
}

/// Starts the session of an admitted, subscribed connection and returns
/// its response body.
pub(crate) fn body(
    opened: Opened,
    config: Arc<SseConfig>,
    abort: Option<SocketAbort>,
) -> impl Stream<Item = Result<Bytes, Infallible>> + Send + Sync + 'static {
    let (sink, body, gone) = body::channel();
    let codec = SseCodec::new(&config);
    tokio::spawn(async move {
        // The client cannot speak on SSE; the only thing to hear is hyper
        // dropping the body when the client leaves.
        let transport = Transport {
            codec,
            sink,
            inbound: Some(gone),
            abort,
        };
        session::serve(opened, transport, &config.session).await;
    });
    body
}
