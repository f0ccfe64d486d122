//! [`socketio_route`]: `/socket.io/` as a warp filter: the WebSocket
//! upgrade (lean or warp's), polling `GET` and `POST`.

use std::sync::Arc;

use tickcast_core::auth::presented_token;
use tickcast_core::Hub;
use warp::http::{HeaderValue, StatusCode};
use warp::hyper::upgrade::OnUpgrade;
use warp::reply::Response;
use warp::{Filter, Rejection, Reply};

use crate::handshake::{
    engine_error, engine_error_with, optional_header, optional_query, origin_refusal, with_cors,
    Handshake,
};
use crate::{polling, ws, Endpoint, SocketIoConfig, UpgradeSlot};

/// `/socket.io/`: Engine.IO v4 over WebSocket (`GET` with an upgrade,
/// `transport=websocket`, with `sid` to upgrade a polling session) and
/// HTTP long-polling (`GET` and `POST`, `transport=polling`), serving
/// Socket.IO v5 against `hub`. An `Origin` not in
/// [`SocketIoConfig::allowed_origins`] gets 403 before anything else.
/// Upgrades passed through [`prepare_upgrade`](crate::prepare_upgrade) take the lean path.
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
