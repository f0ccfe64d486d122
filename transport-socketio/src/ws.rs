//! The WebSocket transport: a socket opened with `transport=websocket`,
//! on the lean path (raw frames on the socket's write half, small read
//! buffers) or on warp's socket (any warp app).
//!
//! Without `sid` the socket is a new Engine.IO connection: the open packet,
//! then the Socket.IO session. With the `sid` of a polling connection it is
//! that connection's upgrade ([`crate::polling`]).

use std::sync::Arc;

use bytes::Bytes;
use futures_util::{SinkExt, Stream, StreamExt};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio_tungstenite::tungstenite::{self, protocol::Role, protocol::WebSocketConfig};
use tokio_tungstenite::WebSocketStream;

use crate::packet::{EngineIn, Out, Packet};
use crate::raw::{RawSink, ReadOnly};
use crate::{new_id, polling, session, Endpoint};

/// Read buffer of a lean connection: client packets are small; a larger
/// one is read in several chunks into a buffer grown for it.
const READ_BUFFER: usize = 1024;

/// tungstenite's settings for a socket of `endpoint`: client messages up
/// to `max_payload`.
pub(crate) fn socket_config(endpoint: &Endpoint) -> WebSocketConfig {
    let limit = endpoint.config.max_payload.max(1024);
    WebSocketConfig::default()
        .read_buffer_size(READ_BUFFER)
        .write_buffer_size(0)
        .max_message_size(Some(limit))
        .max_frame_size(Some(limit))
}

/// What a client frame means.
pub(crate) fn engine_in(
    frame: Result<tungstenite::Message, tungstenite::Error>,
) -> Option<EngineIn> {
    Some(match frame {
        Ok(tungstenite::Message::Text(text)) => EngineIn::Text(Bytes::from(text)),
        Ok(tungstenite::Message::Binary(_)) => EngineIn::Binary,
        Ok(tungstenite::Message::Close(_)) => EngineIn::Closed,
        // Pings and pongs of the WebSocket itself: not Engine.IO packets.
        Ok(_) => return None,
        Err(tungstenite::Error::Capacity(_)) => EngineIn::Failed(Some(1009)),
        Err(tungstenite::Error::Utf8(_)) => EngineIn::Failed(Some(1007)),
        Err(_) => EngineIn::Failed(None),
    })
}

/// Serves an upgraded socket on the lean path until it closes.
pub(crate) async fn run_lean<T>(
    io: T,
    endpoint: Arc<Endpoint>,
    sid: Option<String>,
    token: Option<String>,
) where
    T: AsyncRead + AsyncWrite + Send + 'static,
{
    let (read, write) = tokio::io::split(io);
    let reader = WebSocketStream::from_raw_socket(
        ReadOnly(read),
        Role::Server,
        Some(socket_config(&endpoint)),
    )
    .await;
    // Boxed: the stream is moved through several futures.
    let packets = Box::pin(reader.filter_map(|f| std::future::ready(engine_in(f))));
    let sink = RawSink::new(write);
    match sid {
        Some(sid) => polling::upgrade(&endpoint, &sid, sink, packets).await,
        None => fresh(endpoint, sink, packets, token).await,
    }
}

/// A new Engine.IO connection over WebSocket: the open packet, then the
/// session.
async fn fresh<K, S>(endpoint: Arc<Endpoint>, mut sink: K, packets: S, token: Option<String>)
where
    K: futures_util::Sink<Out> + Unpin + Send + 'static,
    K::Error: Send,
    S: Stream<Item = EngineIn> + Unpin + Send + 'static,
{
    let open = endpoint.open_packet(&new_id(), false);
    let sent = tokio::time::timeout(endpoint.session.write_timeout, sink.send(Out::Packet(open)));
    if !matches!(sent.await, Ok(Ok(()))) {
        return;
    }
    // The session goes on in a task of its own.
    let _ = session::run(endpoint, sink, packets, token).await;
}

/// Serves a socket warp upgraded (an app that mounts the filter without
/// the lean path): each packet is copied into a warp message.
pub(crate) async fn run_warp(
    socket: warp::ws::WebSocket,
    endpoint: Arc<Endpoint>,
    sid: Option<String>,
    token: Option<String>,
) {
    let (sink, stream) = socket.split();
    let sink = sink.with_flat_map(|out: Out| {
        let messages: Vec<Result<warp::ws::Message, warp::Error>> =
            warp_messages(out).into_iter().map(Ok).collect();
        futures_util::stream::iter(messages)
    });
    let packets = Box::pin(stream.filter_map(|frame| {
        std::future::ready(match frame {
            Ok(m) if m.is_text() => Some(EngineIn::Text(m.into_bytes())),
            Ok(m) if m.is_binary() => Some(EngineIn::Binary),
            Ok(m) if m.is_close() => Some(EngineIn::Closed),
            Ok(_) => None,
            Err(_) => Some(EngineIn::Failed(None)),
        })
    }));
    let sink = Box::pin(sink);
    match sid {
        Some(sid) => polling::upgrade(&endpoint, &sid, sink, packets).await,
        None => fresh(endpoint, sink, packets, token).await,
    }
}

fn warp_messages(out: Out) -> Vec<warp::ws::Message> {
    let text =
        |p: Packet| warp::ws::Message::text(String::from_utf8_lossy(&p.to_bytes()).into_owned());
    match out {
        Out::Packet(p) => vec![text(p)],
        Out::Many(ps) => ps.into_iter().map(text).collect(),
        Out::Close(code, reason) => vec![warp::ws::Message::close_with(code, reason)],
    }
}
