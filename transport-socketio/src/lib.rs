//! tickcast-transport-socketio: the Socket.IO endpoint of tickcast
//! (`/socket.io/`, Engine.IO v4, Socket.IO protocol v5) as a warp
//! [`Filter`], for the unmodified `socket.io-client` (v4) over WebSocket
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
//! - [`socketio_route`]: `/socket.io/`, the filter: the Engine.IO handshake
//!   (`EIO=4`, `transport`, `sid`), the `Origin` check, the WebSocket
//!   upgrade, polling `GET` and `POST`.
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
mod inbound;
mod packet;
mod polling;
mod raw;
mod recovery;
mod session;
mod state;
mod ws;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine as _;
use tickcast_core::auth::{presented_token, AllowedOrigins};
use tickcast_core::protocol::ErrorCode;
use tickcast_core::session::SessionConfig;
use tickcast_core::Hub;
use warp::http::{HeaderValue, StatusCode};
use warp::hyper::upgrade::OnUpgrade;
use warp::reply::Response;
use warp::{Filter, Rejection, Reply};

use crate::packet::Packet;
use crate::recovery::Recovery;

/// Settings of the Socket.IO endpoint.
#[derive(Debug, Clone)]
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

impl Default for SocketIoConfig {
    fn default() -> Self {
        let session = SessionConfig {
            ping_interval: Duration::from_secs(25),
            ..SessionConfig::default()
        };
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
    fn new(hub: Hub, config: SocketIoConfig) -> Self {
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
    fn take(&self) -> Option<OnUpgrade> {
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

/// The Engine.IO query: `EIO`, `transport`, `sid`, and the token.
#[derive(Debug, Default)]
struct Handshake {
    eio: Option<String>,
    transport: Option<String>,
    sid: Option<String>,
}

impl Handshake {
    fn parse(query: Option<&str>) -> Self {
        let mut out = Self::default();
        for (key, value) in form_urlencoded::parse(query.unwrap_or_default().as_bytes()) {
            let slot = match &*key {
                "EIO" => &mut out.eio,
                "transport" => &mut out.transport,
                "sid" => &mut out.sid,
                _ => continue,
            };
            slot.get_or_insert_with(|| value.into_owned());
        }
        out
    }

    /// Engine.IO's answer to a request it cannot serve, if this is one.
    fn refusal(&self, websocket: bool) -> Option<Response> {
        if self.eio.as_deref() != Some("4") {
            return Some(engine_error(5, "Unsupported protocol version"));
        }
        match (self.transport.as_deref(), websocket) {
            (Some("websocket"), true) | (Some("polling"), false) => None,
            (Some("websocket"), false) => Some(engine_error(3, "Bad request")),
            _ => Some(engine_error(0, "Transport unknown")),
        }
    }
}

/// `400 {"code":<code>,"message":"<message>"}`, Engine.IO's error answer.
pub(crate) fn engine_error(code: u8, message: &str) -> Response {
    engine_error_with(StatusCode::BAD_REQUEST, code, message)
}

pub(crate) fn engine_error_with(status: StatusCode, code: u8, message: &str) -> Response {
    let body = serde_json::json!({ "code": code, "message": message });
    warp::reply::with_status(warp::reply::json(&body), status).into_response()
}

/// The 403 answer for a refused `Origin`; `None` when it may proceed.
fn origin_refusal(allowed: &AllowedOrigins, origin: Option<&HeaderValue>) -> Option<Response> {
    let origin = origin.map(|v| String::from_utf8_lossy(v.as_bytes()));
    if allowed.allows(origin.as_deref()) {
        return None;
    }
    let shown: String = origin
        .as_deref()
        .unwrap_or_default()
        .chars()
        .take(128)
        .collect();
    let body = serde_json::json!({
        "error": ErrorCode::Forbidden.as_str(),
        "message": format!("origin {shown} is not allowed"),
    });
    Some(warp::reply::with_status(warp::reply::json(&body), StatusCode::FORBIDDEN).into_response())
}

/// Lets the allowed page that sent `origin` read the answer (polling from
/// a browser on another origin).
fn with_cors(mut response: Response, origin: Option<&HeaderValue>) -> Response {
    if let Some(origin) = origin {
        let headers = response.headers_mut();
        headers.insert("access-control-allow-origin", origin.clone());
        headers.insert(
            "access-control-allow-credentials",
            HeaderValue::from_static("true"),
        );
        headers.insert("vary", HeaderValue::from_static("origin"));
    }
    response
}

/// A header's raw value, if present; never rejects.
fn optional_header(
    name: &'static str,
) -> impl Filter<Extract = (Option<HeaderValue>,), Error = std::convert::Infallible> + Clone {
    warp::header::value(name)
        .map(Some)
        .or(warp::any().map(|| None))
        .unify()
}

/// The raw query string, if any; never rejects.
fn optional_query(
) -> impl Filter<Extract = (Option<String>,), Error = std::convert::Infallible> + Clone {
    warp::query::raw()
        .map(Some)
        .or(warp::any().map(|| None))
        .unify()
}

/// `/socket.io/`: Engine.IO v4 over WebSocket (`GET` with an upgrade,
/// `transport=websocket`, with `sid` to upgrade a polling session) and
/// HTTP long-polling (`GET` and `POST`, `transport=polling`), serving
/// Socket.IO v5 against `hub`. An `Origin` not in
/// [`SocketIoConfig::allowed_origins`] gets 403 before anything else.
/// Upgrades passed through [`prepare_upgrade`] take the lean path.
pub fn socketio_route(
    hub: Hub,
    config: SocketIoConfig,
) -> impl Filter<Extract = (Response,), Error = Rejection> + Clone {
    let endpoint = Arc::new(Endpoint::new(hub, config));
    let base = warp::path("socket.io")
        .and(warp::path::end())
        .and(optional_query())
        .and(optional_header("origin"));
    let ws_endpoint = endpoint.clone();
    let websocket = base
        .clone()
        .and(warp::get())
        .and(warp::ws())
        .and(optional_header("authorization"))
        .and(warp::ext::optional::<UpgradeSlot>())
        .map(
            move |query: Option<String>,
                  origin: Option<HeaderValue>,
                  ws: warp::ws::Ws,
                  authorization: Option<HeaderValue>,
                  slot: Option<UpgradeSlot>| {
                let endpoint = ws_endpoint.clone();
                if let Some(refusal) =
                    origin_refusal(&endpoint.config.allowed_origins, origin.as_ref())
                {
                    return refusal;
                }
                let handshake = Handshake::parse(query.as_deref());
                if let Some(refusal) = handshake.refusal(true) {
                    return refusal;
                }
                if let Some(sid) = &handshake.sid {
                    if !endpoint.polling.contains(sid) {
                        return engine_error(1, "Session ID unknown");
                    }
                }
                let token = presented_token(
                    query.as_deref(),
                    authorization.as_ref().map(HeaderValue::as_bytes),
                );
                let sid = handshake.sid;
                match slot.and_then(|s| s.take()) {
                    Some(pending) => {
                        spawn_lean(pending, endpoint, sid, token);
                        // warp still checks the handshake and answers it.
                        ws.on_upgrade(|_| async {}).into_response()
                    }
                    None => {
                        let limit = endpoint.config.max_payload.max(1024);
                        ws.max_message_size(limit)
                            .max_frame_size(limit)
                            .on_upgrade(move |socket| ws::run_warp(socket, endpoint, sid, token))
                            .into_response()
                    }
                }
            },
        );
    let get_endpoint = endpoint.clone();
    let poll_get = base
        .clone()
        .and(warp::get())
        .and(optional_header("authorization"))
        .then(
            move |query: Option<String>,
                  origin: Option<HeaderValue>,
                  authorization: Option<HeaderValue>| {
                let endpoint = get_endpoint.clone();
                async move {
                    if let Some(refusal) =
                        origin_refusal(&endpoint.config.allowed_origins, origin.as_ref())
                    {
                        return refusal;
                    }
                    let handshake = Handshake::parse(query.as_deref());
                    if let Some(refusal) = handshake.refusal(false) {
                        return with_cors(refusal, origin.as_ref());
                    }
                    let response = match handshake.sid {
                        Some(sid) => polling::get(&endpoint, &sid).await,
                        None => {
                            let token = presented_token(
                                query.as_deref(),
                                authorization.as_ref().map(HeaderValue::as_bytes),
                            );
                            polling::open(&endpoint, token)
                        }
                    };
                    with_cors(response, origin.as_ref())
                }
            },
        );
    let post_endpoint = endpoint;
    let max_payload = u64::try_from(post_endpoint.config.max_payload).unwrap_or(u64::MAX);
    let poll_post = base
        .and(warp::post())
        .and(warp::body::content_length_limit(max_payload))
        .and(warp::body::stream())
        .then(
            move |query: Option<String>, origin: Option<HeaderValue>, body| {
                let endpoint = post_endpoint.clone();
                async move {
                    let Some(body) = read_body(body, &endpoint.config).await else {
                        let timeout = StatusCode::REQUEST_TIMEOUT;
                        return engine_error_with(timeout, 3, "Bad request");
                    };
                    if let Some(refusal) =
                        origin_refusal(&endpoint.config.allowed_origins, origin.as_ref())
                    {
                        return refusal;
                    }
                    let handshake = Handshake::parse(query.as_deref());
                    if let Some(refusal) = handshake.refusal(false) {
                        return with_cors(refusal, origin.as_ref());
                    }
                    let response = match handshake.sid {
                        Some(sid) => polling::post(&endpoint, &sid, body).await,
                        None => engine_error(1, "Session ID unknown"),
                    };
                    with_cors(response, origin.as_ref())
                }
            },
        );
    websocket.or(poll_get).unify().or(poll_post).unify()
}

/// A POST body, read within [`SocketIoConfig::body_timeout`] and at most
/// `max_payload` bytes (its `Content-Length` was checked already);
/// `None` when it is late, too long or cut.
async fn read_body<S, B>(body: S, config: &SocketIoConfig) -> Option<bytes::Bytes>
where
    S: futures_util::Stream<Item = Result<B, warp::Error>>,
    B: bytes::Buf,
{
    use futures_util::StreamExt;
    let read = async {
        let mut body = std::pin::pin!(body);
        let mut out = bytes::BytesMut::new();
        while let Some(chunk) = body.next().await {
            let mut chunk = chunk.ok()?;
            if out.len().saturating_add(chunk.remaining()) > config.max_payload {
                return None;
            }
            while chunk.has_remaining() {
                let part = chunk.chunk();
                let n = part.len();
                out.extend_from_slice(part);
                chunk.advance(n);
            }
        }
        Some(out.freeze())
    };
    tokio::time::timeout(config.body_timeout, read)
        .await
        .ok()
        .flatten()
}

/// Finishes the upgrade in the background and serves the socket.
fn spawn_lean(
    pending: OnUpgrade,
    endpoint: Arc<Endpoint>,
    sid: Option<String>,
    token: Option<String>,
) {
    tokio::spawn(async move {
        let upgraded = match pending.await {
            Ok(upgraded) => upgraded,
            Err(e) => {
                tracing::debug!("socket.io upgrade failed: {e}");
                return;
            }
        };
        let io = hyper_util::rt::TokioIo::new(upgraded);
        ws::run_lean(io, endpoint, sid, token).await;
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn handshakes_are_checked_like_engine_io_does() {
        let ok = Handshake::parse(Some("EIO=4&transport=polling&t=x"));
        assert!(ok.refusal(false).is_none());
        assert!(ok.sid.is_none());
        let ws = Handshake::parse(Some("EIO=4&transport=websocket&sid=abc"));
        assert!(ws.refusal(true).is_none());
        assert_eq!(ws.sid.as_deref(), Some("abc"));
        for bad in [
            "EIO=3&transport=polling",
            "transport=polling",
            "EIO=4&transport=flash",
        ] {
            assert!(
                Handshake::parse(Some(bad)).refusal(false).is_some(),
                "{bad}"
            );
        }
    }

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
