//! tickcast-transport-socketio: the Socket.IO endpoint of tickcast
//! (`/socket.io/`, Engine.IO v4, Socket.IO protocol v5) as a warp
//! [`Filter`](warp::Filter), for the unmodified `socket.io-client` (v4) over WebSocket
//! and over HTTP long-polling with upgrade.
//!
//! Implemented from the protocols' specifications on core's
//! [`session`](tickcast_core::session), like `/ws` and `/sse`: the same
//! token rules, limits, queues, priorities, batching, rate limits,
//! slow-consumer policy and deadlines; this crate contributes the
//! handshakes, a codec and the transports.
//!
//! # Layout
//!
//! - [`socketio_route`] (`route`): `/socket.io/`, the filter: the
//!   WebSocket upgrade, polling `GET` and `POST`.
//! - `handshake`: the Engine.IO query (`EIO=4`, `transport`, `sid`), its
//!   error answers, the `Origin` check.
//! - [`prepare_upgrade`]: the lean WebSocket path for servers that run
//!   their own hyper accept loop (small buffers, frames written straight
//!   to the socket).
//! - `packet`: Engine.IO and Socket.IO packets.
//! - `session`: the Socket.IO CONNECT (token, namespace, recovery), then
//!   core's session.
//! - `codec`: engine output as Socket.IO packets (events named after
//!   their `event_type`, acks for the answers to `subscribe` and
//!   `unsubscribe`).
//! - `inbound`: client packets as core's operations.
//! - `state`: the bookkeeping the codec and the reader share (acks,
//!   subscriptions).
//! - `recovery`: disconnected sessions kept for connection state recovery.
//! - `ws`, `raw`: the WebSocket transport and its lean writer.
//! - `polling`: HTTP long-polling sessions and their upgrade to WebSocket.
//!
//! What socket.io-client sees is documented in tickcast's
//! `docs/protocol.md` ("Socket.IO").
#![warn(missing_docs)]

mod codec;
mod handshake;
mod inbound;
mod packet;
mod polling;
mod raw;
mod recovery;
mod route;
mod session;
mod state;
mod ws;

pub use route::socketio_route;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine as _;
use tickcast_core::auth::AllowedOrigins;
use tickcast_core::session::SessionConfig;
use tickcast_core::Hub;
use warp::hyper::upgrade::OnUpgrade;

use crate::packet::Packet;
use crate::recovery::Recovery;

/// Settings of the Socket.IO endpoint.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct SocketIoConfig {
    /// Token, limits, idle and write timeouts, the frame limit, as on
    /// every transport. `ping_interval` is Engine.IO's `pingInterval`
    /// (the server pings that often); `idle_timeout` is replaced by
    /// `ping_interval + ping_timeout`.
    pub session: SessionConfig,
    /// Engine.IO's `pingTimeout`: a client that answers no ping (or sends
    /// nothing else) for `ping_interval + ping_timeout` is gone; also the
    /// deadline of its first Socket.IO CONNECT.
    pub ping_timeout: Duration,
    /// Engine.IO's `maxPayload`: the largest HTTP POST body and WebSocket
    /// message a client may send (larger ones: 413, or close 1009).
    pub max_payload: usize,
    /// How long a disconnected session waits for its client to recover
    /// it (socket.io's `maxDisconnectionDuration`); zero turns connection
    /// state recovery off.
    pub recovery_window: Duration,
    /// Most disconnected sessions kept for recovery (oldest dropped
    /// first); zero turns recovery off.
    pub recovery_capacity: usize,
    /// Most HTTP long-polling sessions open at once; a handshake beyond
    /// it is answered 503.
    pub max_polling_sessions: usize,
    /// A polling POST body must arrive within this (408 otherwise).
    pub body_timeout: Duration,
    /// Browser origins allowed (`Origin` header); others get 403. Default:
    /// any.
    pub allowed_origins: AllowedOrigins,
}

impl SocketIoConfig {
    /// Sets [`session`](Self::session).
    #[must_use]
    pub fn with_session(mut self, session: SessionConfig) -> Self {
        self.session = session;
        self
    }

    /// Sets [`ping_timeout`](Self::ping_timeout).
    #[must_use]
    pub fn with_ping_timeout(mut self, ping_timeout: Duration) -> Self {
        self.ping_timeout = ping_timeout;
        self
    }

    /// Sets [`max_payload`](Self::max_payload).
    #[must_use]
    pub fn with_max_payload(mut self, max_payload: usize) -> Self {
        self.max_payload = max_payload;
        self
    }

    /// Sets [`recovery_window`](Self::recovery_window).
    #[must_use]
    pub fn with_recovery_window(mut self, recovery_window: Duration) -> Self {
        self.recovery_window = recovery_window;
        self
    }

    /// Sets [`recovery_capacity`](Self::recovery_capacity).
    #[must_use]
    pub fn with_recovery_capacity(mut self, recovery_capacity: usize) -> Self {
        self.recovery_capacity = recovery_capacity;
        self
    }

    /// Sets [`max_polling_sessions`](Self::max_polling_sessions).
    #[must_use]
    pub fn with_max_polling_sessions(mut self, max_polling_sessions: usize) -> Self {
        self.max_polling_sessions = max_polling_sessions;
        self
    }

    /// Sets [`body_timeout`](Self::body_timeout).
    #[must_use]
    pub fn with_body_timeout(mut self, body_timeout: Duration) -> Self {
        self.body_timeout = body_timeout;
        self
    }

    /// Sets [`allowed_origins`](Self::allowed_origins).
    #[must_use]
    pub fn with_allowed_origins(mut self, allowed_origins: AllowedOrigins) -> Self {
        self.allowed_origins = allowed_origins;
        self
    }
}

impl Default for SocketIoConfig {
    fn default() -> Self {
        let session = SessionConfig::default().with_ping_interval(Duration::from_secs(25));
        Self {
            session,
            ping_timeout: Duration::from_secs(20),
            max_payload: 64 * 1024,
            recovery_window: Duration::from_secs(120),
            recovery_capacity: 10_000,
            max_polling_sessions: 10_000,
            body_timeout: Duration::from_secs(30),
            allowed_origins: AllowedOrigins::default(),
        }
    }
}

/// What every connection of the endpoint shares.
pub(crate) struct Endpoint {
    hub: Hub,
    config: SocketIoConfig,
    /// `config.session` with the Engine.IO heartbeat as its idle timeout.
    session: SessionConfig,
    recovery: Recovery,
    polling: polling::Table,
}

impl Endpoint {
    pub(crate) fn new(hub: Hub, config: SocketIoConfig) -> Self {
        let mut session = config.session.clone();
        session.idle_timeout = Some(session.ping_interval.saturating_add(config.ping_timeout));
        Self {
            recovery: Recovery::new(config.recovery_window, config.recovery_capacity),
            polling: polling::Table::new(config.max_polling_sessions),
            hub,
            session,
            config,
        }
    }

    /// The heartbeat's deadline: `pingInterval + pingTimeout`.
    fn heartbeat(&self) -> Duration {
        self.session
            .ping_interval
            .saturating_add(self.config.ping_timeout)
    }

    /// Deadline of the client's Socket.IO CONNECT after the open packet.
    fn connect_timeout(&self) -> Duration {
        self.heartbeat()
    }

    fn open_packet(&self, sid: &str, upgrades: bool) -> Packet {
        packet::open_packet(
            sid,
            upgrades,
            self.session.ping_interval.as_millis(),
            self.config.ping_timeout.as_millis(),
            self.config.max_payload,
        )
    }
}

/// A random id (Engine.IO `sid`, Socket.IO `sid` and `pid`): 120 bits,
/// URL-safe base64.
pub(crate) fn new_id() -> String {
    let bytes: [u8; 15] = rand::random();
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// The pending upgrade of a `/socket.io/` request, where the filter can
/// reach it (see [`prepare_upgrade`]).
#[derive(Clone, Debug)]
pub struct UpgradeSlot(Arc<Mutex<Option<OnUpgrade>>>);

impl UpgradeSlot {
    pub(crate) fn take(&self) -> Option<OnUpgrade> {
        match self.0.lock() {
            Ok(mut pending) => pending.take(),
            Err(poisoned) => poisoned.into_inner().take(),
        }
    }
}

/// Prepares a WebSocket upgrade to `/socket.io/` for the lean path: moves
/// hyper's pending upgrade into an [`UpgradeSlot`] extension. Call it on
/// every request before the warp service; true when it took the request
/// (other transports' upgrade paths must then leave it alone).
pub fn prepare_upgrade<B>(request: &mut warp::http::Request<B>) -> bool {
    let path = request.uri().path();
    if path != "/socket.io/" && path != "/socket.io" {
        return false;
    }
    let wants_websocket = request
        .headers()
        .get(warp::http::header::UPGRADE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("websocket"));
    if !wants_websocket {
        return false;
    }
    let pending = warp::hyper::upgrade::on(&mut *request);
    request
        .extensions_mut()
        .insert(UpgradeSlot(Arc::new(Mutex::new(Some(pending)))));
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_random_and_url_safe() {
        let (a, b) = (new_id(), new_id());
        assert_ne!(a, b);
        assert_eq!(a.len(), 20);
        assert!(a
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_'));
    }
}
