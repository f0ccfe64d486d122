//! The client transports: the one place that lists them (WebSocket, SSE,
//! Socket.IO), each behind its cargo feature, with its settings from the
//! configuration. The routes, the lean upgrade paths and the startup log
//! iterate over [`built`].
//!
//! SSE's lean path, which answers `GET /sse` before hyper sees the
//! connection, is the one transport seam outside this list: it changes the
//! type of the connection hyper serves (`server::listener`).

use warp::filters::BoxedFilter;
use warp::http::Request;
use warp::reply::Response;
#[cfg(any(feature = "ws", feature = "sse", feature = "socketio"))]
use warp::Filter;

use crate::http::state::AppState;

/// The body of the requests the server hands to warp.
pub(crate) type Body = warp::hyper::body::Incoming;

/// One transport built into the binary.
pub struct Transport {
    /// Its cargo feature.
    pub name: &'static str,
    /// What it serves, for the startup log.
    pub endpoint: &'static str,
    /// Its warp filter over the hub.
    pub route: fn(&AppState) -> BoxedFilter<(Response,)>,
    /// Moves a WebSocket upgrade meant for it onto its lean path (small
    /// buffers per connection); true when it took the request.
    pub lean_upgrade: Option<fn(&mut Request<Body>) -> bool>,
}

/// The transports of this build. Socket.IO comes before the WebSocket
/// transport: the latter takes any upgrade, the former only its own path.
pub fn built() -> Vec<Transport> {
    // Without any transport feature, nothing is pushed.
    #[cfg_attr(
        not(any(feature = "ws", feature = "sse", feature = "socketio")),
        allow(unused_mut)
    )]
    let mut transports = Vec::new();
    #[cfg(feature = "socketio")]
    transports.push(Transport {
        name: "socketio",
        endpoint: "/socket.io/ (Socket.IO)",
        route: |state| {
            tickcast_transport_socketio::socketio_route(state.hub.clone(), socketio_config(state))
                .boxed()
        },
        lean_upgrade: Some(tickcast_transport_socketio::prepare_upgrade),
    });
    #[cfg(feature = "ws")]
    transports.push(Transport {
        name: "ws",
        endpoint: "GET /ws (WebSocket)",
        route: |state| {
            tickcast_transport_ws::ws_route(state.hub.clone(), ws_config(state))
                .map(warp::Reply::into_response)
                .boxed()
        },
        lean_upgrade: Some(|request| {
            tickcast_transport_ws::prepare_upgrade(request);
            true
        }),
    });
    #[cfg(feature = "sse")]
    transports.push(Transport {
        name: "sse",
        endpoint: "GET /sse (Server-Sent Events)",
        route: |state| {
            tickcast_transport_sse::sse_route(state.hub.clone(), sse_config(state)).boxed()
        },
        lean_upgrade: None,
    });
    transports
}

/// Moves a WebSocket upgrade onto the lean path of the first transport
/// that takes it.
pub(crate) fn lean_upgrade(transports: &[Transport], request: &mut Request<Body>) {
    let mut hooks = transports.iter().filter_map(|t| t.lean_upgrade);
    let _taken = hooks.any(|take| take(request));
}

/// What the transports serve, for the startup log (`GET /ws (WebSocket),
/// ...`), each followed by a comma and a space.
pub(crate) fn endpoints() -> String {
    built()
        .iter()
        .map(|transport| format!("{}, ", transport.endpoint))
        .collect()
}

/// The Socket.IO endpoint's settings from the configuration (`[socketio]`,
/// and what every transport shares).
#[cfg(feature = "socketio")]
fn socketio_config(state: &AppState) -> tickcast_transport_socketio::SocketIoConfig {
    use std::time::Duration;
    let sio = &state.config.socketio;
    let mut config = tickcast_transport_socketio::SocketIoConfig::default()
        .with_allowed_origins(state.config.transport_origins())
        .with_ping_timeout(Duration::from_millis(sio.ping_timeout_ms))
        .with_max_payload(sio.max_payload_bytes)
        .with_recovery_window(Duration::from_secs(sio.recovery_window_s))
        .with_recovery_capacity(sio.recovery_capacity)
        .with_max_polling_sessions(sio.max_polling_sessions)
        .with_body_timeout(Duration::from_millis(state.config.http.body_timeout_ms));
    config.session.ping_interval = Duration::from_millis(sio.ping_interval_ms);
    config.session.max_frame_bytes = state.config.limits.max_frame_bytes;
    config.session.auth = state.auth.clone();
    config.session.write_timeout = state.config.write_timeout();
    config
}

/// The SSE endpoint's settings from the configuration (the `/sse` filter's
/// and the lean path's).
#[cfg(feature = "sse")]
pub(crate) fn sse_config(state: &AppState) -> tickcast_transport_sse::SseConfig {
    let mut config = tickcast_transport_sse::SseConfig::default()
        .with_allowed_origins(state.config.transport_origins());
    config.session.auth = state.auth.clone();
    config.session.write_timeout = state.config.write_timeout();
    config
}

/// The WebSocket endpoint's settings from the configuration.
#[cfg(feature = "ws")]
fn ws_config(state: &AppState) -> tickcast_transport_ws::WsConfig {
    let mut config = tickcast_transport_ws::WsConfig::default()
        .with_allowed_origins(state.config.transport_origins());
    config.session.max_frame_bytes = state.config.limits.max_frame_bytes;
    config.session.auth = state.auth.clone();
    config.session.write_timeout = state.config.write_timeout();
    config
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_built_feature_is_one_transport() {
        let names: Vec<_> = built().iter().map(|t| t.name).collect();
        let expected: Vec<_> = [
            ("socketio", cfg!(feature = "socketio")),
            ("ws", cfg!(feature = "ws")),
            ("sse", cfg!(feature = "sse")),
        ]
        .into_iter()
        .filter_map(|(name, built)| built.then_some(name))
        .collect();
        assert_eq!(names, expected);
    }
}
