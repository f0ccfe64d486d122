//! tickcast-transport-ws: the WebSocket endpoint of tickcast as a warp
//! [`Filter`] that any warp service can mount.
//!
//! # Layout
//!
//! - [`ws_route`]: `GET /ws`, the filter: handshake, subprotocol, token.
//! - [`prepare_upgrade`]: the lean path for servers that run their own
//!   hyper accept loop (the `tickcast` binary does): WebSocket buffers sized
//!   for 100k connections instead of warp's fixed 128 KiB read buffer.
//! - [`ws_service`]: the same endpoint as a tower `Service`, for hyper
//!   and axum apps.
//! - [`serve`]: such an accept loop (hyper, graceful shutdown) for any warp
//!   filter.
//! - `handshake`: where the client comes from (`Origin`) and who it is
//!   (anonymous or a verified JWT).
//! - `session`: admits the client and runs core's
//!   [`session`](tickcast_core::session) (client ops in, frames out, pings,
//!   idle timeout, token expiry, write deadline) on the socket.
//! - `wire`: the WebSocket codec: how the engine's
//!   [`Outbound`](tickcast_core::broadcast::Outbound) items become
//!   WebSocket messages, and client frames become core's `Inbound`.
//!
//! The protocol itself (ops, messages, codes) lives in
//! [`tickcast_core::protocol`]; this crate maps it onto WebSocket frames.
//!
//! ```no_run
//! use tickcast_core::{Hub, HubConfig};
//! use tickcast_transport_ws::{ws_route, WsConfig};
//! use warp::Filter;
//!
//! # async fn run() {
//! let hub = Hub::new(HubConfig::default());
//! let health = warp::path("health").map(|| "ok");
//! let routes = ws_route(hub, WsConfig::default()).or(health);
//! warp::serve(routes).run(([127, 0, 0, 1], 8080)).await;
//! # }
//! ```
#![warn(missing_docs)]

mod handshake;
mod raw;
mod server;
mod service;
mod session;
mod upgrade;
mod wire;

pub use server::{serve, HTTP_DRAIN};
pub use service::{ws_service, WsService};
pub use upgrade::{prepare_upgrade, UpgradeSlot};

use std::sync::Arc;

use tickcast_core::auth::AllowedOrigins;
use tickcast_core::protocol::SUBPROTOCOL;
use tickcast_core::session::SessionConfig;
use tickcast_core::Hub;
use warp::{Filter, Rejection, Reply};

/// Settings of the WebSocket endpoint.
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct WsConfig {
    /// Token, limits, pings (a WebSocket ping every `ping_interval`), idle
    /// and write timeouts. A client frame over `max_frame_bytes` (up to 16
    /// times it) gets a `frame_too_large` error and is skipped; beyond
    /// that the connection is closed with 1009.
    pub session: SessionConfig,
    /// Browser origins allowed to open a socket (the handshake's `Origin`
    /// header); others get 403 before the upgrade. Requests without
    /// `Origin` (not browsers) always pass. Default: any.
    pub allowed_origins: AllowedOrigins,
}

impl WsConfig {
    /// Sets [`session`](Self::session).
    #[must_use]
    pub fn with_session(mut self, session: SessionConfig) -> Self {
        self.session = session;
        self
    }

    /// Sets [`allowed_origins`](Self::allowed_origins).
    #[must_use]
    pub fn with_allowed_origins(mut self, allowed_origins: AllowedOrigins) -> Self {
        self.allowed_origins = allowed_origins;
        self
    }
}

/// `GET /ws[?token=JWT]`: upgrades to WebSocket and serves the client
/// protocol against `hub`. Echoes `Sec-WebSocket-Protocol: tickcast.v1.json`
/// when offered; a client that offers none is served the same. Requests
/// passed through [`prepare_upgrade`] take the lean path. An `Origin` not
/// in [`WsConfig::allowed_origins`] gets 403
/// `{"error":"forbidden","message":"origin ... is not allowed"}` instead of
/// the upgrade.
pub fn ws_route(
    hub: Hub,
    config: WsConfig,
) -> impl Filter<Extract = (impl Reply,), Error = Rejection> + Clone {
    let config = Arc::new(config);
    warp::path("ws")
        .and(warp::path::end())
        .and(warp::get())
        .and(warp::ws())
        .and(handshake::credentials())
        .and(warp::header::optional::<String>("sec-websocket-protocol"))
        .and(warp::ext::optional::<UpgradeSlot>())
        .and(handshake::optional_header("origin"))
        .map(
            move |ws: warp::ws::Ws,
                  token: Option<String>,
                  offered: Option<String>,
                  slot: Option<UpgradeSlot>,
                  origin: Option<warp::http::HeaderValue>| {
                if let Some(refusal) =
                    handshake::origin_refusal(&config.allowed_origins, origin.as_ref())
                {
                    return refusal;
                }
                let hub = hub.clone();
                let config = config.clone();
                let response = match slot.and_then(|s| s.take()) {
                    // warp's `Ws` still checks the handshake and answers it;
                    // with the upgrade taken it has nothing to spawn.
                    Some(pending) => {
                        upgrade::spawn_lean(pending, hub, config, token);
                        ws.on_upgrade(|_| async {}).into_response()
                    }
                    None => {
                        let limit = hard_frame_limit(&config);
                        ws.max_message_size(limit)
                            .max_frame_size(limit)
                            .on_upgrade(move |socket| session::run(socket, hub, config, token))
                            .into_response()
                    }
                };
                with_subprotocol(response, offered.as_deref())
            },
        )
}

/// Echoes `tickcast.v1.json` when the client offered it.
fn with_subprotocol(
    mut response: warp::reply::Response,
    offered: Option<&str>,
) -> warp::reply::Response {
    let echo = offered.is_some_and(|o| o.split(',').any(|p| p.trim() == SUBPROTOCOL));
    if echo {
        response.headers_mut().insert(
            "sec-websocket-protocol",
            warp::http::HeaderValue::from_static(SUBPROTOCOL),
        );
    }
    response
}

/// The hard limit on a client frame: larger ones close the connection with
/// 1009; between `max_frame_bytes` and this, they get `frame_too_large`.
fn hard_frame_limit(config: &WsConfig) -> usize {
    config.session.max_frame_bytes.saturating_mul(16).max(1024)
}
