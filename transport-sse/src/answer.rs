//! [`answer`]: what `GET /sse` answers to a request, whichever server read
//! it (warp through [`sse_route`](crate::sse_route), or the lean path of
//! [`LeanSse`](crate::LeanSse)).
//!
//! Both servers hand over the raw query string and the request's headers
//! and get back the status, the response headers and either the admitted
//! connection (to stream) or an error body. The checks, their order, the
//! JSON errors and the headers therefore cannot drift apart between the
//! two.

use bytes::Bytes;
use serde::Serialize;
use tickcast_core::auth::{presented_token, AllowedOrigins};
use tickcast_core::hub::{ConnectError, SubscribeError};
use tickcast_core::protocol::ErrorCode;
use tickcast_core::session::{OpenError, Opened};
use tickcast_core::Hub;
use warp::http::header::{self, HeaderMap, HeaderValue};
use warp::http::StatusCode;

use crate::query::{self, QueryError, SseQuery};
use crate::{SseConfig, DEFAULT_SUBSCRIPTION_ID};

/// The endpoint's answer to one request, before any body byte.
#[derive(Debug)]
pub(crate) enum Answer {
    /// 200: the client is admitted and subscribed; its stream follows.
    Stream {
        /// The response headers (content type, caching, CORS).
        headers: HeaderMap,
        /// The hub connection, welcome and subscribed queued.
        opened: Opened,
    },
    /// A JSON error.
    Refused {
        /// The status.
        status: StatusCode,
        /// The response headers (content type, CORS, `WWW-Authenticate`).
        headers: HeaderMap,
        /// `{"error":"<code>","message":"..."}`
        body: Bytes,
    },
}

impl Answer {
    fn headers_mut(&mut self) -> &mut HeaderMap {
        match self {
            Self::Stream { headers, .. } | Self::Refused { headers, .. } => headers,
        }
    }
}

/// Checks a `GET /sse` request (its still-encoded query string without
/// the `?`, and its headers), registers and subscribes the client, and
/// says what to answer.
pub(crate) fn answer(
    hub: &Hub,
    config: &SseConfig,
    raw_query: &str,
    headers: &HeaderMap,
) -> Answer {
    // Lossily decoded: an origin that is not text is refused by any list.
    let origin = headers
        .get(header::ORIGIN)
        .map(|v| String::from_utf8_lossy(v.as_bytes()));
    let mut answer = match admit(hub, config, origin.as_deref(), raw_query, headers) {
        Ok(opened) => Answer::Stream {
            headers: stream_headers(),
            opened,
        },
        Err(error) => error.into_answer(),
    };
    allow_cross_origin(
        answer.headers_mut(),
        &config.allowed_origins,
        origin.as_deref(),
    );
    answer
}

/// The headers of a 200 answer.
fn stream_headers() -> HeaderMap {
    let mut headers = HeaderMap::with_capacity(3);
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/event-stream"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    // Tells nginx-style proxies not to buffer the stream.
    headers.insert("x-accel-buffering", HeaderValue::from_static("no"));
    headers
}

/// Lets a listed origin's pages read the answer (stream or error).
fn allow_cross_origin(headers: &mut HeaderMap, allowed: &AllowedOrigins, origin: Option<&str>) {
    let Some(origin) = allowed.cors_origin(origin) else {
        return;
    };
    // A normalized origin is ASCII: always a valid header value.
    if let Ok(value) = HeaderValue::from_str(origin.as_str()) {
        headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, value);
        headers.append(header::VARY, HeaderValue::from_static("origin"));
    }
}

/// Checks the request, registers the connection and subscribes it.
fn admit(
    hub: &Hub,
    config: &SseConfig,
    origin: Option<&str>,
    raw_query: &str,
    headers: &HeaderMap,
) -> Result<Opened, HttpError> {
    if let Some(message) = config.allowed_origins.refusal(origin) {
        return Err(HttpError::new(
            StatusCode::FORBIDDEN,
            ErrorCode::Forbidden.as_str(),
            message,
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
    let query = SseQuery::parse(raw_query, &hub.config().schema)?;
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
    Ok(opened)
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
pub(crate) struct HttpError {
    pub(crate) status: StatusCode,
    pub(crate) code: &'static str,
    pub(crate) message: String,
}

#[derive(Serialize)]
struct ErrorBody<'a> {
    error: &'a str,
    message: &'a str,
}

impl HttpError {
    pub(crate) fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
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

    /// The JSON body.
    pub(crate) fn body(&self) -> Bytes {
        let body = ErrorBody {
            error: self.code,
            message: &self.message,
        };
        // Two strings: serializing cannot fail.
        serde_json::to_vec(&body).unwrap_or_default().into()
    }

    pub(crate) fn into_answer(self) -> Answer {
        let (status, headers, body) = self.into_parts();
        Answer::Refused {
            status,
            headers,
            body,
        }
    }

    /// The status, the headers and the body of the answer.
    pub(crate) fn into_parts(self) -> (StatusCode, HeaderMap, Bytes) {
        let mut headers = HeaderMap::with_capacity(2);
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        if self.status == StatusCode::UNAUTHORIZED {
            headers.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        (self.status, headers, self.body())
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
            OpenError::Connect(ConnectError::ShuttingDown | ConnectError::Starting) => {
                StatusCode::SERVICE_UNAVAILABLE
            }
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
    use tickcast_core::HubConfig;

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

    #[test]
    fn errors_are_json_with_auth_and_cors_headers() {
        let hub = Hub::new(HubConfig::immediate());
        let mut config = SseConfig {
            allowed_origins: AllowedOrigins::parse(["https://app.example"]).unwrap(),
            ..SseConfig::default()
        };
        config.session.auth = Some(std::sync::Arc::new(
            tickcast_core::auth::Authenticator::hs256(b"k"),
        ));
        let mut headers = HeaderMap::new();
        headers.insert(
            header::ORIGIN,
            HeaderValue::from_static("https://app.example"),
        );
        let Answer::Refused {
            status,
            headers,
            body,
        } = answer(&hub, &config, "", &headers)
        else {
            panic!("admitted without a token");
        };
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        let names: Vec<&str> = headers.keys().map(|k| k.as_str()).collect();
        assert_eq!(
            names,
            [
                "content-type",
                "www-authenticate",
                "access-control-allow-origin",
                "vary"
            ]
        );
        let json: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(json["error"], "unauthorized");
    }
}
