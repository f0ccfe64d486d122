//! tickcast-transport-sse: the Server-Sent Events endpoint of tickcast as a
//! warp [`Filter`] that any warp service can mount ([`sse_route`]), as a
//! tower service ([`sse_service`]), and on the lean path ([`LeanSse`]):
//! served straight on the socket by a server that runs its own accept
//! loop, without an HTTP server's per-connection buffers (the `tickcast`
//! binary serves `/sse` this way). All three give the same answers: one
//! function checks every request and decides its status, headers and body.
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
//! | `token` | a JWT (or the `Authorization: Bearer` header; the query wins), read by [`presented_token`](tickcast_core::auth::presented_token) as on every transport |
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
//! | 400, 414, 431 | `bad_request` | ([`LeanSse::serve_connection`] only) a request head it cannot read: malformed, a target over 65,534 bytes, over 100 headers or ~400 KiB ([`HeadLimits`]) |
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
//! # The lean path
//!
//! An SSE response lasts as long as its connection, so whatever the HTTP
//! server keeps per connection (hyper: an 8 KiB read buffer, a write
//! buffer, its body machinery) is held by every idle stream. [`LeanSse`]
//! serves a connection whose first request is `GET /sse` itself:
//!
//! ```no_run
//! # async fn run(listener: tokio::net::TcpListener, sse: tickcast_transport_sse::LeanSse) {
//! use tickcast_transport_sse::{FirstBytes, Replay, Served};
//!
//! while let Ok((mut socket, _)) = listener.accept().await {
//!     let sse = sse.clone();
//!     tokio::spawn(async move {
//!         let Ok(first) = FirstBytes::read(&mut socket).await else { return };
//!         let other = if first.is_sse() {
//!             match sse.serve_connection(socket, &first).await {
//!                 Served::Closed => return,
//!                 Served::KeepAlive { io, leftover } => Replay::new(leftover, io),
//!             }
//!         } else {
//!             Replay::new(bytes::Bytes::copy_from_slice(first.as_bytes()), socket)
//!         };
//!         // ... hand `other` to the HTTP server for everything else.
//! #       drop(other);
//!     });
//! }
//! # }
//! ```
//!
//! HTTP/1.1 streams are chunked (HTTP/1.0 ones end with the connection),
//! the connection closes when the stream ends, and bytes the client sends
//! after its request are read and dropped (past 64 KiB the stream ends).
//! The session owns the socket, so a client that stops reading is dropped
//! at the write deadline with no help from the server. A server that wants
//! its own head deadline and answers uses [`LeanSse::read_head`] and
//! [`LeanSse::serve`] instead of [`LeanSse::serve_connection`].
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

mod answer;
mod body;
mod lean;
mod query;
mod service;
mod session;
mod wire;

use std::sync::Arc;
use std::time::Duration;

use tickcast_core::auth::AllowedOrigins;
use tickcast_core::session::{SessionConfig, SocketAbort};
use tickcast_core::Hub;
use warp::http::HeaderMap;
use warp::reply::Response;
use warp::{Filter, Rejection, Reply};

use answer::Answer;
pub use lean::{FirstBytes, HeadError, HeadLimits, LeanSse, Replay, RequestHead, Served};
pub use query::{QueryError, SseQuery};
pub use service::{sse_service, SseService};

/// The subscription id when the query has no `id`.
pub const DEFAULT_SUBSCRIPTION_ID: &str = "sse";

/// Settings of the SSE endpoint.
#[derive(Debug, Clone)]
#[non_exhaustive]
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

impl SseConfig {
    /// Sets [`session`](Self::session).
    #[must_use]
    pub fn with_session(mut self, session: SessionConfig) -> Self {
        self.session = session;
        self
    }

    /// Sets [`max_query_bytes`](Self::max_query_bytes).
    #[must_use]
    pub fn with_max_query_bytes(mut self, max_query_bytes: usize) -> Self {
        self.max_query_bytes = max_query_bytes;
        self
    }

    /// Sets [`retry`](Self::retry).
    #[must_use]
    pub fn with_retry(mut self, retry: Option<Duration>) -> Self {
        self.retry = retry;
        self
    }

    /// Sets [`allowed_origins`](Self::allowed_origins).
    #[must_use]
    pub fn with_allowed_origins(mut self, allowed_origins: AllowedOrigins) -> Self {
        self.allowed_origins = allowed_origins;
        self
    }
}

impl Default for SseConfig {
    fn default() -> Self {
        Self {
            session: SessionConfig::default()
                .with_ping_interval(Duration::from_secs(15))
                .with_idle_timeout(None),
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
                match answer::answer(&hub, &config, &query, &headers) {
                    Answer::Stream { headers, opened } => {
                        let body = session::body(opened, config.clone(), abort);
                        let mut response = warp::reply::stream(body).into_response();
                        *response.headers_mut() = headers;
                        response
                    }
                    Answer::Refused {
                        status,
                        headers,
                        body,
                    } => {
                        let mut response = Response::new(body.into());
                        *response.status_mut() = status;
                        *response.headers_mut() = headers;
                        response
                    }
                }
            },
        )
}
