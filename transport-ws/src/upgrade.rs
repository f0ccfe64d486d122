//! The lean upgrade path.
//!
//! warp's WebSocket gives every connection tungstenite's default buffers:
//! a 128 KiB read buffer that the first read fills with zeros, so each
//! connection costs over 128 KiB of resident memory. A server that runs its
//! own hyper accept loop calls [`prepare_upgrade`] on each request before
//! handing it to warp; [`ws_route`](crate::ws_route) then finishes the
//! upgrade itself with buffers sized for many mostly idle connections. Apps
//! that mount the filter in a plain `warp::serve` keep working, with warp's
//! buffers.

use std::sync::{Arc, Mutex};

use tickcast_core::Hub;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use warp::hyper::upgrade::OnUpgrade;

use crate::{hard_frame_limit, session, WsConfig};

/// Read buffer of a lean connection: tungstenite zeroes this much before
/// every read, so it is resident for every connection that ever sent a
/// frame. Client operations are a few hundred bytes; a larger frame is read
/// in several chunks into a buffer grown for it.
const READ_BUFFER: usize = 1024;

/// The pending upgrade of a request, moved where a warp filter can reach
/// it (request extensions must be `Clone` for `warp::ext`).
#[derive(Clone, Debug)]
pub struct UpgradeSlot(Arc<Mutex<Option<OnUpgrade>>>);

impl UpgradeSlot {
    /// Takes the pending upgrade (once).
    pub(crate) fn take(&self) -> Option<OnUpgrade> {
        match self.0.lock() {
            Ok(mut pending) => pending.take(),
            Err(poisoned) => poisoned.into_inner().take(),
        }
    }
}

/// Prepares a WebSocket upgrade request for the lean path: moves hyper's
/// pending upgrade into an [`UpgradeSlot`] extension. Call it on every
/// request before the warp service (other requests are left alone).
pub fn prepare_upgrade<B>(request: &mut warp::http::Request<B>) {
    let wants_websocket = request
        .headers()
        .get(warp::http::header::UPGRADE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("websocket"));
    if !wants_websocket {
        return;
    }
    let pending = warp::hyper::upgrade::on(&mut *request);
    request
        .extensions_mut()
        .insert(UpgradeSlot(Arc::new(Mutex::new(Some(pending)))));
}

/// Finishes the upgrade in the background and serves the socket.
pub(crate) fn spawn_lean(
    pending: OnUpgrade,
    hub: Hub,
    config: Arc<WsConfig>,
    token: Option<String>,
) {
    tokio::spawn(async move {
        let upgraded = match pending.await {
            Ok(upgraded) => upgraded,
            Err(e) => {
                tracing::debug!("websocket upgrade failed: {e}");
                return;
            }
        };
        let limit = hard_frame_limit(&config);
        let ws_config = WebSocketConfig::default()
            .read_buffer_size(READ_BUFFER)
            // tungstenite only reads on this path: nothing to buffer.
            .write_buffer_size(0)
            .max_message_size(Some(limit))
            .max_frame_size(Some(limit));
        let io = hyper_util::rt::TokioIo::new(upgraded);
        session::run_lean(io, ws_config, hub, config, token).await;
    });
}
