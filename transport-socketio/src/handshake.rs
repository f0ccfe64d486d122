//! The Engine.IO handshake of a request: its query (`EIO`, `transport`,
//! `sid`), Engine.IO's error answers, and the `Origin` check with the CORS
//! headers a polling page needs.

use tickcast_core::auth::AllowedOrigins;
use tickcast_core::protocol::ErrorCode;
use warp::http::{HeaderValue, StatusCode};
use warp::reply::Response;
use warp::{Filter, Reply};

/// The Engine.IO query: `EIO`, `transport`, `sid`, and the token.
#[derive(Debug, Default)]
pub(crate) struct Handshake {
    eio: Option<String>,
    transport: Option<String>,
    pub(crate) sid: Option<String>,
}

impl Handshake {
    pub(crate) fn parse(query: Option<&str>) -> Self {
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
    pub(crate) fn refusal(&self, websocket: bool) -> Option<Response> {
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
pub(crate) fn origin_refusal(
    allowed: &AllowedOrigins,
    origin: Option<&HeaderValue>,
) -> Option<Response> {
    let origin = origin.map(|v| String::from_utf8_lossy(v.as_bytes()));
    let message = allowed.refusal(origin.as_deref())?;
    let body = serde_json::json!({
        "error": ErrorCode::Forbidden.as_str(),
        "message": message,
    });
    Some(warp::reply::with_status(warp::reply::json(&body), StatusCode::FORBIDDEN).into_response())
}

/// Lets the allowed page that sent `origin` read the answer (polling from
/// a browser on another origin).
pub(crate) fn with_cors(mut response: Response, origin: Option<&HeaderValue>) -> Response {
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
pub(crate) fn optional_header(
    name: &'static str,
) -> impl Filter<Extract = (Option<HeaderValue>,), Error = std::convert::Infallible> + Clone {
    warp::header::value(name)
        .map(Some)
        .or(warp::any().map(|| None))
        .unify()
}

/// The raw query string, if any; never rejects.
pub(crate) fn optional_query(
) -> impl Filter<Extract = (Option<String>,), Error = std::convert::Infallible> + Clone {
    warp::query::raw()
        .map(Some)
        .or(warp::any().map(|| None))
        .unify()
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
}
