//! tickcast-transport-sse: the Server-Sent Events endpoint of tickcast as a
//! warp [`Filter`] that any warp service can mount.
//!
//! `GET /sse?<filter>` answers `text/event-stream`: one subscription (id
//! `sse` unless `id=` says otherwise) whose filter is the query string,
//! then the events it matches, as they are published.
//!
//! # Query string
//!
//! | key | value |
//! | --- | --- |
//! | `event_types`, `symbols`, `patterns` | lists of names |
//! | `tiers` | list of `daily`, `intraday`, `combo` |
//! | `market_regimes` | list of `bull`, `bear`, `neutral`, `consolidation` |
//! | `min_confidence` | number in 0..1 |
//! | `min_priority` | `low`, `medium`, `high` or `critical` |
//! | `token` | a JWT (or the `Authorization: Bearer` header; the query wins), read by [`presented_token`] as on every transport |
//! | `last_event_id` | resume after this offset (the `Last-Event-ID` header wins) |
//! | `id` | the subscription id, listed in each event's `subs` (default `sse`) |
//!
//! Lists take comma-separated values, repeated keys, or both:
//! `symbols=AAPL,MSFT&symbols=TSLA`. Values are percent-decoded before they
//! are split, so an encoded comma (`symbols=AAPL%2CMSFT`, as a browser's
//! `URLSearchParams` writes it) separates items too. Items are trimmed and
//! empty ones skipped (`symbols=` means any symbol). The filter means exactly what the WebSocket subscribe filter with
//! the same fields means. Unknown keys and bad values are refused.
//!
//! # Responses
//!
//! Errors are JSON, `{"error":"<code>","message":"..."}`, with the
//! WebSocket protocol's error codes:
//!
//! | status | `error` | when |
//! | --- | --- | --- |
//! | 400 | `bad_request` | unknown key, bad value, bad filter, bad last event id |
//! | 401 | `unauthorized` | auth is on and the token is missing or invalid |
//! | 401 | `token_expired` | the token has expired |
//! | 403 | `forbidden` | the `Origin` is not in [`SseConfig::allowed_origins`] (checked first) |
//! | 403 | `forbidden` | the filter asks for tiers the token's `tiers` claim does not grant |
//! | 414 | `bad_request` | a query string over [`SseConfig::max_query_bytes`] |
//! | 429 | `limit_exceeded` | the user holds `max_connections_per_user` connections |
//! | 503 | `shutting_down` | the hub is shutting down |
//!
//! Otherwise 200 and the stream:
//!
//! ```text
//! event: welcome
//! data: {"type":"welcome","conn":"c-3","user":null,"offset":"1732460000123-41","server":"tickcast/0.1.0"}
//!
//! event: subscribed
//! data: {"type":"subscribed","id":"sse","recovered":0}
//!
//! id: 1732460000123-42
//! event: pattern_detected
//! data: {"type":"event","offset":"1732460000123-42","subs":["sse"],"priority":"high","event_type":"pattern_detected","data":{...}}
//!
//! : ping
//!
//! ```
//!
//! - Events: `id:` is the offset, `event:` the event type, `data:` the same
//!   event object a WebSocket client gets (encoded once per event by core).
//!   A batch is written as its events, in one chunk.
//! - Protocol messages are named events without `id:`: `welcome`,
//!   `subscribed` (with `recovered`), `dropped`, `error`, and
//!   `history_gone` (the WebSocket `error` with that code).
//! - `: ping` every `ping_interval` of [`SseConfig::session`].
//! - When the server closes the connection (slow consumer 4008, token
//!   expiry 4002, shutdown 1001) the last event is `event: close` with
//!   `{"code":..,"reason":".."}`, after the `error` that explains it, and
//!   the stream ends.
//!
//! # Resume
//!
//! `Last-Event-ID` (what `EventSource` sends when it reconnects) or
//! `last_event_id` resumes like the WebSocket `since`: every matching
//! event after that offset, then live ones, with no gap and no duplicate.
//! An offset the history no longer holds gets `event: history_gone`, and
//! the stream continues live.
//!
//! # Example
//!
//! ```no_run
//! use tickcast_core::{Hub, HubConfig};
//! use tickcast_transport_sse::{sse_route, SseConfig};
//! use warp::Filter;
//!
//! # async fn run() {
//! let hub = Hub::new(HubConfig::default());
//! let health = warp::path("health").map(|| "ok");
//! let routes = sse_route(hub, SseConfig::default()).or(health);
//! warp::serve(routes).run(([127, 0, 0, 1], 8080)).await;
//! # }
//! ```
#![warn(missing_docs)]

mod body;
mod query;
mod service;
mod session;
mod wire;

use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;
use tickcast_core::auth::{presented_token, AllowedOrigins};
use tickcast_core::hub::{ConnectError, SubscribeError};
use tickcast_core::protocol::ErrorCode;
use tickcast_core::session::{OpenError, SessionConfig, SocketAbort};
use tickcast_core::Hub;
use warp::http::header::{self, HeaderMap, HeaderValue};
use warp::http::StatusCode;
use warp::reply::Response;
use warp::{Filter, Rejection, Reply};

pub use query::{QueryError, SseQuery};
pub use service::{sse_service, SseService};

/// The subscription id when the query has no `id`.
pub const DEFAULT_SUBSCRIPTION_ID: &str = "sse";

/// Settings of the SSE endpoint.
#[derive(Debug, Clone)]
pub struct SseConfig {
    /// Token, limits, the `: ping` comment every `ping_interval`, and the
    /// write timeout. `idle_timeout` and `max_frame_bytes` do not apply:
    /// an SSE client never writes.
    pub session: SessionConfig,
    /// Longest query string served (414 beyond).
    pub max_query_bytes: usize,
    /// When set, the stream opens with `retry: <ms>`, the delay a browser's
    /// `EventSource` waits before reconnecting.
    pub retry: Option<Duration>,
    /// Browser origins allowed to open a stream (the `Origin` header);
    /// others get 403. Requests without `Origin` (not browsers) always
    /// pass. A listed origin also gets `Access-Control-Allow-Origin` (and
    /// `Vary: Origin`), so its pages can read the stream cross-origin;
    /// [`AllowedOrigins::Any`] adds no CORS header. Default: any.
    pub allowed_origins: AllowedOrigins,
}

impl Default for SseConfig {
    fn default() -> Self {
        Self {
            session: SessionConfig {
                ping_interval: Duration::from_secs(15),
                idle_timeout: None,
                ..SessionConfig::default()
            },
            max_query_bytes: 64 * 1024,
            retry: None,
            allowed_origins: AllowedOrigins::Any,
        }
    }
}

/// `GET /sse?<filter>[&token=JWT][&last_event_id=OFFSET][&id=ID]`: serves
/// one subscription of `hub` as `text/event-stream` (see the crate docs).
/// Every request to `GET /sse` is answered here, errors included (JSON);
/// other requests are rejected, for the next filter.
pub fn sse_route(
    hub: Hub,
    config: SseConfig,
) -> impl Filter<Extract = (Response,), Error = Rejection> + Clone {
    let config = Arc::new(config);
    warp::path("sse")
        .and(warp::path::end())
        .and(warp::get())
        .and(warp::query::raw().or(warp::any().map(String::new)).unify())
        .and(warp::header::headers_cloned())
        .and(warp::ext::optional::<SocketAbort>())
        .map(
            move |query: String, headers: HeaderMap, abort: Option<SocketAbort>| {
                let origin = headers
                    .get(header::ORIGIN)
                    .map(|v| String::from_utf8_lossy(v.as_bytes()));
                let request = Request {
                    origin: origin.as_deref(),
                    raw_query: &query,
                    headers: &headers,
                    abort,
                };
                let mut response = match open(&hub, &config, request) {
                    Ok(response) => response,
                    Err(error) => error.into_response(),
                };
                allow_cross_origin(&mut response, &config.allowed_origins, origin.as_deref());
                response
            },
        )
}

/// Lets a listed origin's pages read the answer (stream or error).
fn allow_cross_origin(response: &mut Response, allowed: &AllowedOrigins, origin: Option<&str>) {
    let Some(origin) = allowed.cors_origin(origin) else {
        return;
    };
    // A normalized origin is ASCII: always a valid header value.
    if let Ok(value) = HeaderValue::from_str(origin.as_str()) {
        let headers = response.headers_mut();
        headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, value);
        headers.append(header::VARY, HeaderValue::from_static("origin"));
    }
}

/// What [`open`] reads of a request.
struct Request<'a> {
    /// The `Origin` header (lossily decoded: a value that is not text is
    /// refused by any list).
    origin: Option<&'a str>,
    raw_query: &'a str,
    headers: &'a HeaderMap,
    /// The server's switch to drop this socket (see [`SocketAbort`]).
    abort: Option<SocketAbort>,
}

/// Checks the request, registers the connection and subscribes it.
fn open(hub: &Hub, config: &Arc<SseConfig>, request: Request<'_>) -> Result<Response, HttpError> {
    let Request {
        origin,
        raw_query,
        headers,
        abort,
    } = request;
    if !config.allowed_origins.allows(origin) {
        let shown: String = origin.unwrap_or_default().chars().take(128).collect();
        return Err(HttpError::new(
            StatusCode::FORBIDDEN,
            ErrorCode::Forbidden.as_str(),
            format!("origin {shown} is not allowed"),
        ));
    }
    if raw_query.len() > config.max_query_bytes {
        return Err(HttpError::new(
            StatusCode::URI_TOO_LONG,
            ErrorCode::BadRequest.as_str(),
            format!(
                "the query string is limited to {} bytes",
                config.max_query_bytes
            ),
        ));
    }
    let query = SseQuery::parse(raw_query)?;
    let since = match header_str(headers, "last-event-id")? {
        Some(value) if !value.trim().is_empty() => Some(query::parse_offset(value)?),
        _ => query.last_event_id,
    };
    let token = presented_token(
        Some(raw_query),
        headers
            .get(header::AUTHORIZATION)
            .map(HeaderValue::as_bytes),
    );
    let opened = tickcast_core::session::open(hub, &config.session, token.as_deref())?;
    let id = query.id.as_deref().unwrap_or(DEFAULT_SUBSCRIPTION_ID);
    // Dropping the connection on error disconnects it again.
    opened
        .connection
        .handle
        .subscribe(id, query.filter, since)?;

    let body = session::body(opened, config.clone(), abort);
    let mut response = warp::reply::stream(body).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/event-stream"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    // Tells nginx-style proxies not to buffer the stream.
    headers.insert("x-accel-buffering", HeaderValue::from_static("no"));
    Ok(response)
}

/// A header's value as text; `None` when absent.
fn header_str<'a>(headers: &'a HeaderMap, name: &str) -> Result<Option<&'a str>, HttpError> {
    headers
        .get(name)
        .map(|v| {
            v.to_str()
                .map_err(|_| HttpError::bad_request(format!("the {name} header is not text")))
        })
        .transpose()
}

/// An error answered with a status and `{"error":"<code>","message":"..."}`.
#[derive(Debug, Clone, PartialEq, Eq)]
struct HttpError {
    status: StatusCode,
    code: &'static str,
    message: String,
}

#[derive(Serialize)]
struct ErrorBody<'a> {
    error: &'a str,
    message: &'a str,
}

impl HttpError {
    fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
        }
    }

    fn bad_request(message: impl Into<String>) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            ErrorCode::BadRequest.as_str(),
            message,
        )
    }

    fn into_response(self) -> Response {
        let body = ErrorBody {
            error: self.code,
            message: &self.message,
        };
        let mut response =
            warp::reply::with_status(warp::reply::json(&body), self.status).into_response();
        if self.status == StatusCode::UNAUTHORIZED {
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        response
    }
}

impl From<QueryError> for HttpError {
    fn from(error: QueryError) -> Self {
        Self::bad_request(error.0)
    }
}

impl From<OpenError> for HttpError {
    fn from(error: OpenError) -> Self {
        let status = match &error {
            OpenError::Auth(_) => StatusCode::UNAUTHORIZED,
            OpenError::Connect(ConnectError::TooManyConnections) => StatusCode::TOO_MANY_REQUESTS,
            OpenError::Connect(ConnectError::ShuttingDown) => StatusCode::SERVICE_UNAVAILABLE,
        };
        Self::new(status, error.error_code().as_str(), error.to_string())
    }
}

impl From<SubscribeError> for HttpError {
    fn from(error: SubscribeError) -> Self {
        let status = match error.code() {
            ErrorCode::Forbidden => StatusCode::FORBIDDEN,
            ErrorCode::LimitExceeded => StatusCode::TOO_MANY_REQUESTS,
            _ => StatusCode::BAD_REQUEST,
        };
        Self::new(status, error.code().as_str(), error.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tickcast_core::auth::AuthError;

    #[test]
    fn refusals_map_to_statuses() {
        let missing: HttpError = OpenError::Auth(AuthError::Missing).into();
        assert_eq!(missing.status, StatusCode::UNAUTHORIZED);
        assert_eq!(missing.code, "unauthorized");
        let expired: HttpError = OpenError::Auth(AuthError::Expired).into();
        assert_eq!(expired.code, "token_expired");
        let full: HttpError = OpenError::Connect(ConnectError::TooManyConnections).into();
        assert_eq!(full.status, StatusCode::TOO_MANY_REQUESTS);
        let leaving: HttpError = OpenError::Connect(ConnectError::ShuttingDown).into();
        assert_eq!(leaving.status, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(leaving.code, "shutting_down");
    }

    #[test]
    fn subscribe_errors_map_to_statuses() {
        let forbidden: HttpError = SubscribeError::Forbidden(vec![]).into();
        assert_eq!(forbidden.status, StatusCode::FORBIDDEN);
        assert_eq!(forbidden.code, "forbidden");
        let bad: HttpError = SubscribeError::BadId.into();
        assert_eq!(bad.status, StatusCode::BAD_REQUEST);
        assert_eq!(bad.code, "bad_request");
    }
}
