//! tickcast-transport-ws: the WebSocket endpoint of tickcast as a warp
//! [`Filter`](warp::Filter) that any warp service can mount.
//!
//! # Layout
//!
//! - [`ws_route`]: `GET /ws`, the filter: handshake, subprotocol, token.
//! - `handshake`: who the client is (anonymous or a verified JWT).
//! - `session`: one connection's loop: client ops in, frames out, server
//!   pings, idle timeout, token expiry.
//! - `wire`: how the engine's [`Outbound`](tickcast_core::broadcast::Outbound)
//!   items become WebSocket messages.
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
mod session;
mod wire;

use std::sync::Arc;
use std::time::Duration;

use tickcast_core::auth::Authenticator;
use tickcast_core::protocol::SUBPROTOCOL;
use tickcast_core::Hub;
use warp::{Filter, Rejection, Reply};

/// Settings of the WebSocket endpoint.
#[derive(Debug, Clone)]
pub struct WsConfig {
    /// Largest client frame handled; a larger one (up to 16 times this)
    /// gets a `frame_too_large` error and is skipped, beyond that the
    /// connection is closed with 1009.
    pub max_frame_bytes: usize,
    /// How often the server pings.
    pub ping_interval: Duration,
    /// A peer silent this long is closed.
    pub idle_timeout: Duration,
    /// Token verification; `None` serves everyone as anonymous.
    pub auth: Option<Authenticator>,
}

impl Default for WsConfig {
    fn default() -> Self {
        Self {
            max_frame_bytes: 64 * 1024,
            ping_interval: Duration::from_secs(20),
            idle_timeout: Duration::from_secs(60),
            auth: None,
        }
    }
}

/// `GET /ws[?token=JWT]`: upgrades to WebSocket and serves the client
/// protocol against `hub`. Echoes `Sec-WebSocket-Protocol: tickcast.v1.json`
/// when offered; a client that offers none is served the same.
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
        .map(
            move |ws: warp::ws::Ws, token: Option<String>, offered: Option<String>| {
                let hub = hub.clone();
                let config = config.clone();
                let hard_limit = config.max_frame_bytes.saturating_mul(16).max(1024);
                let reply = ws
                    .max_message_size(hard_limit)
                    .max_frame_size(hard_limit)
                    .on_upgrade(move |socket| session::run(socket, hub, config, token));
                let echo = offered.is_some_and(|o| o.split(',').any(|p| p.trim() == SUBPROTOCOL));
                let protocol = if echo { SUBPROTOCOL } else { "" };
                let reply = warp::reply::with_header(reply, "sec-websocket-protocol", protocol);
                // An empty header would be a protocol error: drop it when not echoing.
                if echo {
                    reply.into_response()
                } else {
                    let mut response = reply.into_response();
                    response.headers_mut().remove("sec-websocket-protocol");
                    response
                }
            },
        )
}
