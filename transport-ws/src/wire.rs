//! The engine's outbound items as WebSocket messages, for either socket
//! type the endpoint serves: warp's (when mounted in any warp app) or
//! tokio-tungstenite's (the lean path, see [`crate::prepare_upgrade`]).

use std::marker::PhantomData;

use bytes::Bytes;
use tickcast_core::broadcast::{encode_batch, EventFrame, Outbound};
use tickcast_core::protocol::CloseCode;
use tickcast_core::session::{Inbound, WireCodec};
use tokio_tungstenite::tungstenite;

/// What the session needs of a WebSocket message type.
pub(crate) trait WsMessage: Sized + Send + 'static {
    /// A text message of already-encoded JSON; `None` if it is not UTF-8
    /// (which would be an encoder bug).
    fn text(json: Bytes) -> Option<Self>;
    fn close(code: u16, reason: &'static str) -> Self;
    fn ping() -> Self;
    fn is_close(&self) -> bool;
    fn is_binary(&self) -> bool;
    /// The payload of a text message; `None` for other kinds.
    fn into_text(self) -> Option<Bytes>;
}

impl WsMessage for warp::ws::Message {
    fn text(json: Bytes) -> Option<Self> {
        // warp takes a String: one copy per frame on this path.
        String::from_utf8(json.to_vec()).ok().map(Self::text)
    }
    fn close(code: u16, reason: &'static str) -> Self {
        Self::close_with(code, reason)
    }
    fn ping() -> Self {
        Self::ping(Vec::new())
    }
    fn is_close(&self) -> bool {
        self.is_close()
    }
    fn is_binary(&self) -> bool {
        self.is_binary()
    }
    fn into_text(self) -> Option<Bytes> {
        self.is_text().then(|| self.into_bytes())
    }
}

impl WsMessage for tungstenite::Message {
    fn text(json: Bytes) -> Option<Self> {
        // Shares the frame's bytes: no copy per connection.
        tungstenite::Utf8Bytes::try_from(json).ok().map(Self::Text)
    }
    fn close(code: u16, reason: &'static str) -> Self {
        Self::Close(Some(tungstenite::protocol::CloseFrame {
            code: code.into(),
            reason: reason.into(),
        }))
    }
    fn ping() -> Self {
        Self::Ping(Default::default())
    }
    fn is_close(&self) -> bool {
        self.is_close()
    }
    fn is_binary(&self) -> bool {
        self.is_binary()
    }
    fn into_text(self) -> Option<Bytes> {
        match self {
            Self::Text(text) => Some(text.into()),
            _ => None,
        }
    }
}

/// The WebSocket wire format for core's session: one message per outbound
/// item, each event frame's bytes shared, not copied (on the lean path).
pub(crate) struct WsCodec<M>(PhantomData<fn() -> M>);

impl<M> WsCodec<M> {
    pub(crate) fn new() -> Self {
        Self(PhantomData)
    }
}

impl<M: WsMessage> WireCodec for WsCodec<M> {
    type Item = M;

    fn encode(&mut self, out: Outbound, items: &mut Vec<M>) -> usize {
        let size = match &out {
            Outbound::Event(frame) => frame.encoded_len(),
            Outbound::Batch(frames) => frames.iter().map(EventFrame::encoded_len).sum(),
            Outbound::Message(_) | Outbound::Close(_) => 64,
        };
        items.extend(message::<M>(&out));
        size
    }

    fn ping(&mut self) -> M {
        M::ping()
    }
}

/// What a client frame (or a read error) means to the session.
pub(crate) fn inbound<M, E>(frame: Result<M, E>) -> Inbound
where
    M: WsMessage,
    E: std::error::Error + 'static,
{
    match frame {
        Ok(message) if message.is_close() => Inbound::Closed,
        Ok(message) if message.is_binary() => Inbound::Unsupported,
        // Ping and pong frames: tungstenite answers pings itself.
        Ok(message) => message.into_text().map_or(Inbound::Alive, Inbound::Text),
        Err(e) => Inbound::Failed(close_code_for(&e)),
    }
}

/// The close code owed to a peer whose frame could not be read: 1009 for
/// more than the hard limit, 1007 for a text frame (or close reason) that
/// is not UTF-8. `None` for I/O and protocol errors, where the socket is
/// just dropped. warp wraps tungstenite's error, hence the walk down the
/// sources.
fn close_code_for(error: &(dyn std::error::Error + 'static)) -> Option<CloseCode> {
    let mut current = Some(error);
    while let Some(e) = current {
        match e.downcast_ref::<tungstenite::Error>() {
            Some(tungstenite::Error::Capacity(_)) => return Some(CloseCode::TooBig),
            Some(tungstenite::Error::Utf8(_)) => return Some(CloseCode::InvalidUtf8),
            _ => {}
        }
        current = e.source();
    }
    None
}

/// The message for one outbound item; `None` for items with nothing to
/// write.
fn message<M: WsMessage>(out: &Outbound) -> Option<M> {
    let bytes = match out {
        Outbound::Event(frame) => frame.to_json(),
        Outbound::Batch(frames) => encode_batch(frames),
        Outbound::Message(m) => m.to_json(),
        Outbound::Close(code) => return Some(M::close(code.code(), code.reason())),
    };
    // Frames are JSON built from UTF-8 input; a failure here would be a bug
    // in the encoder, reported rather than sent.
    let message = M::text(bytes);
    if message.is_none() {
        tracing::error!("dropping a frame that is not UTF-8");
    }
    message
}
