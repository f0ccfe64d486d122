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
//! | `token` | a JWT (or the `Authorization: Bearer` header; the query wins) |
//! | `last_event_id` | resume after this offset (the `Last-Event-ID` header wins) |
//! | `id` | the subscription id, listed in each event's `subs` (default `sse`) |
//!
//! Lists take comma-separated values, repeated keys, or both:
//! `symbols=AAPL,MSFT&symbols=TSLA`. Items are trimmed and empty ones
//! skipped (`symbols=` means any symbol); a comma inside a value is written
//! `%2C`. The filter means exactly what the WebSocket subscribe filter with
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
//! - `: ping` every [`SseConfig::ping_interval`].
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

mod query;
mod session;
mod wire;

use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;
use tickcast_core::auth::{AuthError, Authenticator, Identity};
use tickcast_core::hub::{ConnectError, ConnectionLimits, SubscribeError};
use tickcast_core::protocol::ErrorCode;
use tickcast_core::Hub;
use warp::http::header::{self, HeaderMap, HeaderValue};
use warp::http::StatusCode;
use warp::reply::Response;
use warp::{Filter, Rejection, Reply};

pub use query::{QueryError, SseQuery};

/// The subscription id when the query has no `id`.
pub const DEFAULT_SUBSCRIPTION_ID: &str = "sse";

/// Settings of the SSE endpoint.
#[derive(Debug, Clone)]
pub struct SseConfig {
    /// Token verification; `None` serves everyone as anonymous.
    pub auth: Option<Authenticator>,
    /// How often a `: ping` comment is written.
    pub ping_interval: Duration,
    /// What one connection may do; `None`: the hub's defaults
    /// ([`Hub::default_limits`]). A token's `tiers` claim replaces
    /// `allowed_tiers`.
    pub limits: Option<ConnectionLimits>,
    /// Longest query string served (414 beyond).
    pub max_query_bytes: usize,
    /// When set, the stream opens with `retry: <ms>`, the delay a browser's
    /// `EventSource` waits before reconnecting.
    pub retry: Option<Duration>,
}

impl Default for SseConfig {
    fn default() -> Self {
        Self {
            auth: None,
            ping_interval: Duration::from_secs(15),
            limits: None,
            max_query_bytes: 64 * 1024,
            retry: None,
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
        .map(
            move |query: String, headers: HeaderMap| match open(&hub, &config, &query, &headers) {
                Ok(response) => response,
                Err(error) => error.into_response(),
            },
        )
}

/// Checks the request, registers the connection and subscribes it.
fn open(
    hub: &Hub,
    config: &SseConfig,
    raw_query: &str,
    headers: &HeaderMap,
) -> Result<Response, HttpError> {
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
    let token = match query.token {
        Some(token) => Some(token),
        None => bearer(headers)?,
    };
    let identity = identify(config.auth.as_ref(), token.as_deref())?;

    let mut limits = config
        .limits
        .clone()
        .unwrap_or_else(|| hub.default_limits());
    if let Some(tiers) = identity.as_ref().and_then(|i| i.tiers.clone()) {
        limits.allowed_tiers = Some(tiers);
    }
    let user = identity.as_ref().map(|i| i.user.clone());
    let connection = hub.connect(user, limits)?;
    let id = query.id.as_deref().unwrap_or(DEFAULT_SUBSCRIPTION_ID);
    // Dropping the connection on error disconnects it again.
    connection.handle.subscribe(id, query.filter, since)?;

    let body = session::body(
        connection,
        identity.as_ref(),
        config.ping_interval,
        config.retry,
    );
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

/// The token of `Authorization: Bearer <token>`, if any.
fn bearer(headers: &HeaderMap) -> Result<Option<String>, HttpError> {
    let Some(value) = header_str(headers, "authorization")? else {
        return Ok(None);
    };
    let value = value.trim();
    let token = value
        .get(..7)
        .filter(|scheme| scheme.eq_ignore_ascii_case("bearer "))
        .map(|_| value[7..].trim())
        .filter(|t| !t.is_empty());
    Ok(token.map(str::to_owned))
}

/// The client's identity: anonymous when auth is off, else the verified
/// token's.
fn identify(
    auth: Option<&Authenticator>,
    token: Option<&str>,
) -> Result<Option<Identity>, HttpError> {
    let Some(auth) = auth else { return Ok(None) };
    let token = token.ok_or(AuthError::Missing)?;
    Ok(Some(auth.verify(token)?))
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

impl From<AuthError> for HttpError {
    fn from(error: AuthError) -> Self {
        let code = match error {
            AuthError::Expired => ErrorCode::TokenExpired,
            _ => ErrorCode::Unauthorized,
        };
        Self::new(StatusCode::UNAUTHORIZED, code.as_str(), error.to_string())
    }
}

impl From<ConnectError> for HttpError {
    fn from(error: ConnectError) -> Self {
        match error {
            ConnectError::TooManyConnections => Self::new(
                StatusCode::TOO_MANY_REQUESTS,
                ErrorCode::LimitExceeded.as_str(),
                error.to_string(),
            ),
            ConnectError::ShuttingDown => Self::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "shutting_down",
                error.to_string(),
            ),
        }
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

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.insert(*name, HeaderValue::from_str(value).unwrap());
        }
        map
    }

    #[test]
    fn reads_bearer_tokens() {
        let h = headers(&[("authorization", "Bearer abc.def")]);
        assert_eq!(bearer(&h).unwrap().as_deref(), Some("abc.def"));
        let h = headers(&[("authorization", "bearer  xyz ")]);
        assert_eq!(bearer(&h).unwrap().as_deref(), Some("xyz"));
        let h = headers(&[("authorization", "Basic dXNlcg==")]);
        assert_eq!(bearer(&h).unwrap(), None);
        assert_eq!(bearer(&HeaderMap::new()).unwrap(), None);
    }

    #[test]
    fn anonymous_when_auth_is_off() {
        assert_eq!(identify(None, Some("whatever")).unwrap(), None);
        let auth = Authenticator::hs256(b"k");
        let err = identify(Some(&auth), None).unwrap_err();
        assert_eq!(err.status, StatusCode::UNAUTHORIZED);
        assert_eq!(err.code, "unauthorized");
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
