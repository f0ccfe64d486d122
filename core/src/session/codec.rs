//! [`WireCodec`]: what a transport contributes to the session on the way
//! out.

use crate::broadcast::Outbound;

/// Turns the engine's [`Outbound`] items into what a transport's sink
/// takes (a WebSocket message, a chunk of an HTTP body).
///
/// The session calls [`encode`](Self::encode) for every item it takes
/// from the connection's queue in one round (up to its per-write limits),
/// then [`seal`](Self::seal) once: a codec that coalesces items into one
/// write (SSE) emits its chunk there.
pub trait WireCodec: Send + 'static {
    /// The unit the transport's sink takes.
    type Item: Send + 'static;

    /// Appends the wire form of `out` to `items` (nothing for an item that
    /// has no wire form on this transport); returns about how many bytes
    /// it produced (emitted now or at [`seal`](Self::seal)), which bounds
    /// the round.
    fn encode(&mut self, out: Outbound, items: &mut Vec<Self::Item>) -> usize;

    /// Ends a round of [`encode`](Self::encode) calls.
    fn seal(&mut self, items: &mut Vec<Self::Item>) {
        let _ = items;
    }

    /// The keep-alive written every ping interval while the connection
    /// has nothing else to say.
    fn ping(&mut self) -> Self::Item;

    /// The answer to a client's [`Inbound::Ping`](super::Inbound::Ping);
    /// `None` where the transport answers pings itself.
    fn pong(&mut self, payload: bytes::Bytes) -> Option<Self::Item> {
        let _ = payload;
        None
    }
}
