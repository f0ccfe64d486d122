//! The engine's outbound items as WebSocket messages.

use tickcast_core::broadcast::{encode_batch, Outbound};
use warp::ws::Message;

/// The message for one outbound item; `None` for items with nothing to
/// write.
pub(crate) fn message(out: &Outbound) -> Option<Message> {
    let bytes = match out {
        Outbound::Event(frame) => frame.bytes.clone(),
        Outbound::Batch(frames) => encode_batch(frames),
        Outbound::Message(m) => m.to_json(),
        Outbound::Close(code) => return Some(Message::close_with(code.code(), code.reason())),
    };
    // Frames are JSON built from UTF-8 input; a failure here would be a bug
    // in the encoder, reported rather than sent.
    match String::from_utf8(bytes.to_vec()) {
        Ok(text) => Some(Message::text(text)),
        Err(e) => {
            tracing::error!("dropping a frame that is not UTF-8: {e}");
            None
        }
    }
}
