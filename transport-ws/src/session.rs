//! One WebSocket connection on core's session: the WebSocket handshake is
//! done (warp's or the lean path's); this admits the client and hands core
//! a codec, a sink and the client's frames.
//!
//! - warp's socket (the filter in any warp app): one `warp::ws::Message`
//!   per item through warp's sink; warp answers pings.
//! - the lean path: [`raw`](crate::raw) frames written straight to the
//!   socket's write half; tungstenite only reads, and the session answers
//!   pings.

use std::sync::Arc;

use futures_util::{Sink, Stream, StreamExt};
use tickcast_core::session::{self, Inbound, Transport, WireCodec};
use tickcast_core::Hub;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio_tungstenite::tungstenite::{self, protocol::Role, protocol::WebSocketConfig};
use tokio_tungstenite::WebSocketStream;

use crate::raw::{RawCodec, RawSink, ReadOnly};
use crate::wire::{self, WsCodec, WsMessage};
use crate::WsConfig;

/// Serves one socket upgraded by warp until it closes.
pub(crate) async fn run<S, M, E>(socket: S, hub: Hub, config: Arc<WsConfig>, token: Option<String>)
where
    S: Stream<Item = Result<M, E>> + Sink<M, Error = E> + Send + Unpin + 'static,
    M: WsMessage,
    E: std::error::Error + Send + Sync + 'static,
{
    let (sink, stream) = socket.split();
    let inbound = stream.map(wire::inbound);
    serve(WsCodec::<M>::new(), sink, inbound, hub, config, token).await;
}

/// Serves one upgraded connection on the lean path until it closes.
pub(crate) async fn run_lean<T>(
    io: T,
    ws_config: WebSocketConfig,
    hub: Hub,
    config: Arc<WsConfig>,
    token: Option<String>,
) where
    T: AsyncRead + AsyncWrite + Send + 'static,
{
    let (read, write) = tokio::io::split(io);
    let reader =
        WebSocketStream::from_raw_socket(ReadOnly(read), Role::Server, Some(ws_config)).await;
    // Boxed: passed down through three futures, each of which would
    // otherwise reserve room for the whole tungstenite stream.
    let inbound = Box::pin(reader.map(lean_inbound));
    serve(RawCodec, RawSink::new(write), inbound, hub, config, token).await;
}

/// What a client frame means on the lean path, where pings are the
/// session's to answer.
fn lean_inbound(frame: Result<tungstenite::Message, tungstenite::Error>) -> Inbound {
    match frame {
        Ok(tungstenite::Message::Ping(payload)) => Inbound::Ping(payload),
        other => wire::inbound(other),
    }
}

/// Admits the client, or refuses it with an error and a close.
///
/// An admitted session runs in a task of its own: the task that did the
/// handshake ends, and the session's task holds only the session, not the
/// handshake's state beside it (a few hundred bytes per idle connection).
async fn serve<C, K, R>(
    mut codec: C,
    mut sink: K,
    inbound: R,
    hub: Hub,
    config: Arc<WsConfig>,
    token: Option<String>,
) where
    C: WireCodec,
    K: Sink<C::Item> + Unpin + Send + 'static,
    K::Error: Send,
    R: Stream<Item = Inbound> + Send + Unpin + 'static,
{
    let settings = &config.session;
    let opened = match session::open(&hub, settings, token.as_deref()) {
        Ok(opened) => opened,
        Err(e) => {
            session::refuse(&mut codec, &mut sink, &e, settings.write_timeout).await;
            return;
        }
    };
    let transport = Transport {
        codec,
        sink,
        inbound: Some(inbound),
        abort: None,
    };
    tokio::spawn(session::serve(opened, transport, &config.session));
}
