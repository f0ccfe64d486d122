//! One WebSocket connection on core's session: the WebSocket handshake is
//! done (warp's or the lean path's); this admits the client and hands
//! core its codec ([`crate::wire`]), its sink and its client frames.

use std::sync::Arc;

use futures_util::{Sink, Stream, StreamExt};
use tickcast_core::session::{self, Transport};
use tickcast_core::Hub;

use crate::wire::{self, WsCodec, WsMessage};
use crate::WsConfig;

/// Serves one upgraded socket (warp's or tokio-tungstenite's) until it
/// closes.
pub(crate) async fn run<S, M, E>(socket: S, hub: Hub, config: Arc<WsConfig>, token: Option<String>)
where
    S: Stream<Item = Result<M, E>> + Sink<M, Error = E> + Send + Unpin + 'static,
    M: WsMessage,
    E: std::error::Error + Send + Sync + 'static,
{
    let (mut sink, stream) = socket.split();
    let settings = &config.session;
    let opened = match session::open(&hub, settings, token.as_deref()) {
        Ok(opened) => opened,
        Err(e) => {
            session::refuse(WsCodec::<M>::new(), &mut sink, &e, settings.write_timeout).await;
            return;
        }
    };
    let transport = Transport {
        codec: WsCodec::<M>::new(),
        sink,
        inbound: Some(stream.map(|frame| wire::inbound(frame))),
        abort: None,
    };
    session::serve(opened, transport, settings).await;
}
