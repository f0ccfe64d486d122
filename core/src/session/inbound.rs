//! What a client sends: [`Inbound`] items from the transport's reader,
//! applied to the connection by one read loop for every transport.

use std::sync::Arc;

use bytes::Bytes;
use futures_util::{Stream, StreamExt};

use super::activity::Activity;
use super::reader_link::ReaderSide;
use crate::protocol::{ClientOp, CloseCode, ErrorCode, ServerMessage};
use crate::ConnectionHandle;

/// One thing a transport read from its client, decoded as far as the
/// transport's own framing goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Inbound {
    /// A client operation, as JSON text (checked for UTF-8 here: a
    /// transport may pass bytes it has not validated).
    Text(Bytes),
    /// A frame the transport answered itself (a WebSocket pong, or a ping
    /// its library answers): it only shows the client is there.
    Alive,
    /// A ping the session must answer with the codec's
    /// [`pong`](super::WireCodec::pong) for this payload (a WebSocket ping
    /// read by a reader that cannot write). Only the latest unanswered
    /// ping is answered, as RFC 6455 allows.
    Ping(Bytes),
    /// A message of a kind the protocol does not take (a binary WebSocket
    /// frame): the connection is closed with 1003.
    Unsupported,
    /// The client closed the connection.
    Closed,
    /// Reading failed. `Some(code)` when the client is owed a close (1009
    /// for a frame over the hard limit, 1007 for text that is not UTF-8);
    /// `None` when the socket is gone.
    Failed(Option<CloseCode>),
}

/// Reads the client until it leaves; pings to answer go to the writer
/// through `writer`, and dropping it tells the writer the reader is done.
pub(crate) async fn read_loop<R>(
    handle: Arc<ConnectionHandle>,
    mut inbound: R,
    max_frame_bytes: usize,
    activity: Activity,
    writer: ReaderSide,
) where
    R: Stream<Item = Inbound> + Unpin,
{
    while let Some(item) = inbound.next().await {
        activity.touch();
        match item {
            Inbound::Text(text) => on_text(&handle, max_frame_bytes, &text),
            Inbound::Alive => {}
            Inbound::Ping(payload) => writer.ping(payload),
            Inbound::Unsupported => handle.close(CloseCode::Unsupported, None),
            Inbound::Closed | Inbound::Failed(None) => return,
            Inbound::Failed(Some(code)) => {
                handle.close(code, None);
                // The writer sends the close and ends the connection.
                std::future::pending::<()>().await;
            }
        }
    }
}

/// Parses and applies one client operation.
fn on_text(handle: &ConnectionHandle, max_frame_bytes: usize, text: &[u8]) {
    if text.len() > max_frame_bytes {
        handle.send(ServerMessage::error(
            ErrorCode::FrameTooLarge,
            format!("frames are limited to {max_frame_bytes} bytes"),
            None,
        ));
        return;
    }
    let Ok(text) = std::str::from_utf8(text) else {
        handle.close(CloseCode::InvalidUtf8, None);
        return;
    };
    match ClientOp::parse(text) {
        Ok(op) => apply(handle, op),
        Err(e) => handle.send(ServerMessage::error(e.code, e.message, e.id)),
    }
}

/// Carries out one client operation; refusals become `error` messages.
pub(crate) fn apply(handle: &ConnectionHandle, op: ClientOp) {
    match op {
        ClientOp::Subscribe { id, filter, since } => {
            if let Err(e) = handle.subscribe(&id, filter, since) {
                handle.send(e.to_message(&id));
            }
        }
        ClientOp::Unsubscribe { id } => {
            if let Err(e) = handle.unsubscribe(&id) {
                handle.send(e.to_message(&id));
            }
        }
        ClientOp::Ping { ts } => handle.send(ServerMessage::Pong { ts }),
    }
}
