//! The HTTP surface: the API (publish, health, ready, metrics, stats) and
//! the transports' endpoints, assembled into one warp filter by [`routes`].
//!
//! Every route yields a [`Response`], so routes compose with `.or()` and
//! `.unify()`; [`error::recover`] turns every rejection into a JSON error at
//! the very end, after the transports, so their rejections get JSON bodies
//! too.

pub mod auth;
pub mod client_js;
pub mod cors;
pub mod demo;
pub mod error;
pub mod health;
pub mod metrics;
pub mod publish;
pub mod stats;

use std::sync::Arc;

use tickcast_core::auth::TokenVerifier;
use tickcast_core::ingest::BrokerPublisher;
use tickcast_core::Hub;
use warp::filters::BoxedFilter;
use warp::reply::Response;
use warp::Filter;

use crate::config::Config;
use crate::metrics::MetricsExporter;
use auth::PublishAccess;
use cors::CorsPolicy;

/// What the routes share: the hub, the configuration and the metrics
/// exporter. Cheap to clone.
#[derive(Clone)]
pub struct AppState {
    /// The engine.
    pub hub: Hub,
    /// The validated configuration the server runs with.
    pub config: Arc<Config>,
    /// Who may `POST /api/publish`.
    pub publish_access: PublishAccess,
    /// Which web pages may call the API (`[api] cors_origins`).
    pub cors: Arc<CorsPolicy>,
    /// Renders `/metrics`.
    pub metrics: Arc<MetricsExporter>,
    /// Verifies client tokens of the transports; `None`: anonymous access.
    pub auth: Option<Arc<dyn TokenVerifier>>,
    /// The broker `POST /api/publish` goes through, when one is configured.
    pub broker: Option<Arc<dyn BrokerPublisher>>,
}

impl std::fmt::Debug for AppState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppState")
            .field("config", &self.config)
            .field("auth", &self.auth.is_some())
            .field("broker", &self.broker.as_ref().map(|b| b.name().to_owned()))
            .finish_non_exhaustive()
    }
}

impl AppState {
    /// State for `hub` under `config`, with the transports' token verifier.
    pub fn new(
        hub: Hub,
        config: Config,
        auth: Option<Arc<dyn TokenVerifier>>,
        broker: Option<Arc<dyn BrokerPublisher>>,
    ) -> Self {
        Self {
            auth,
            broker,
            publish_access: PublishAccess::of(&config),
            cors: Arc::new(CorsPolicy::new(&config.api.cors_origins)),
            metrics: Arc::new(MetricsExporter::new(&config.node_id)),
            config: Arc::new(config),
            hub,
        }
    }
}

/// Every endpoint of the server, with JSON errors for anything that does
/// not match.
pub fn routes(state: &AppState) -> BoxedFilter<(Response,)> {
    let api = publish::route(state)
        .or(health::health(state))
        .unify()
        .or(health::ready(state))
        .unify()
        .or(metrics::route(state))
        .unify()
        .or(stats::route(state))
        .unify()
        .boxed();
    let pages = cors::wrap(state.cors.clone(), api)
        .or(demo::route())
        .unify()
        .or(client_js::route())
        .unify()
        .boxed();
    mount_transports(pages, state)
        .recover(error::recover)
        .unify()
        .boxed()
}

/// The one place where transports join the routes, each behind its cargo
/// feature. A transport crate exposes a warp
/// filter over the hub; it is mapped to [`Response`] and `.or()`-ed in here.
/// Transports answer their own errors (bad query, auth) themselves; what
/// they reject goes on to [`error::recover`].
pub fn mount_transports(
    routes: BoxedFilter<(Response,)>,
    state: &AppState,
) -> BoxedFilter<(Response,)> {
    #[cfg(feature = "ws")]
    let routes = routes
        .or(
            tickcast_transport_ws::ws_route(state.hub.clone(), ws_config(state))
                .map(warp::Reply::into_response),
        )
        .unify()
        .boxed();
    #[cfg(feature = "sse")]
    let routes = routes
        .or(tickcast_transport_sse::sse_route(
            state.hub.clone(),
            sse_config(state),
        ))
        .unify()
        .boxed();
    #[cfg(feature = "socketio")]
    let routes = routes
        .or(tickcast_transport_socketio::socketio_route(
            state.hub.clone(),
            socketio_config(state),
        ))
        .unify()
        .boxed();
    #[cfg(not(any(feature = "ws", feature = "sse", feature = "socketio")))]
    let _ = state;
    routes
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
