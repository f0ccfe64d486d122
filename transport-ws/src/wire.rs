//! The engine's outbound items as WebSocket messages, for either socket
//! type the endpoint serves: warp's (when mounted in any warp app) or
//! tokio-tungstenite's (the lean path, see [`crate::prepare_upgrade`]).

use bytes::Bytes;
use tickcast_core::broadcast::{encode_batch, Outbound};
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
    /// The text of a text message; `None` for other kinds.
    fn as_text(&self) -> Option<&str>;
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
    fn as_text(&self) -> Option<&str> {
        self.to_str().ok()
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
    fn as_text(&self) -> Option<&str> {
        match self {
            Self::Text(text) => Some(text.as_str()),
            _ => None,
        }
    }
}

/// The message for one outbound item; `None` for items with nothing to
/// write.
pub(crate) fn message<M: WsMessage>(out: &Outbound) -> Option<M> {
    let bytes = match out {
        Outbound::Event(frame) => frame.bytes.clone(),
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
