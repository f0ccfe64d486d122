//! [`serve`]: the server, started in-process, and the [`Server`] handle it
//! returns.

mod head_errors;
mod listener;
mod pending;
pub mod shutdown;

pub use listener::HTTP_DRAIN;

use std::future::Future;
use std::net::SocketAddr;
use std::time::{Duration, SystemTime};

use tickcast_core::Hub;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

use crate::config::{Config, InvalidKey};
use crate::http::auth::PublishAccess;
use crate::http::{self, publish, AppState};
use crate::ingest::{self, Brokers};
use crate::transports;

/// Why the server did not start, or stopped badly.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// The configuration is invalid.
    #[error("invalid configuration: {}", .0.iter().map(ToString::to_string).collect::<Vec<_>>().join("; "))]
    Config(Vec<InvalidKey>),
    /// The listen address could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address from `listen`.
        addr: SocketAddr,
        /// Why.
        source: std::io::Error,
    },
    /// A broker section cannot be used.
    #[error("{0}")]
    Ingest(#[from] crate::ingest::IngestError),
    /// The JWT key could not be loaded.
    #[error("auth: {0}")]
    Auth(String),
    /// The server task panicked.
    #[error("the server task failed: {0}")]
    Crashed(#[from] tokio::task::JoinError),
}

/// A running server.
#[derive(Debug)]
pub struct Server {
    addr: SocketAddr,
    hub: Hub,
    task: JoinHandle<()>,
}

impl Server {
    /// The address the server listens on (the actual port when `listen`
    /// asked for port 0).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The hub behind the server.
    pub fn hub(&self) -> &Hub {
        &self.hub
    }

    /// Waits until the server has shut down (after the shutdown signal
    /// passed to [`serve`], and the drain).
    pub async fn wait(self) -> Result<(), ServeError> {
        self.task.await?;
        Ok(())
    }
}

/// Starts the server for `config` and returns once it listens. It runs on
/// the current Tokio runtime until `shutdown` resolves, then stops
/// accepting, shuts the hub down and drains connections for at most
/// [`shutdown::DRAIN_TIMEOUT`]; [`Server::wait`] awaits the end.
///
/// The binary passes a future of [`shutdown::signal`] (SIGINT or SIGTERM);
/// tests pass a channel.
pub async fn serve<F>(config: Config, shutdown: F) -> Result<Server, ServeError>
where
    F: Future<Output = ()> + Send + 'static,
{
    serve_started_at(config, None, shutdown).await
}

/// [`serve`] for a run that counts as started at `started_at`: the time
/// its offsets' epoch is made from ([`HubConfig::started_at`](tickcast_core::HubConfig::started_at); `None`, as
/// in [`serve`], is now). Not a configuration key: tests use it to start
/// nodes in the same millisecond, which real nodes do by chance.
pub async fn serve_started_at<F>(
    config: Config,
    started_at: Option<SystemTime>,
    shutdown: F,
) -> Result<Server, ServeError>
where
    F: Future<Output = ()> + Send + 'static,
{
    config.validate().map_err(ServeError::Config)?;
    let addr = config
        .listen_addr()
        .map_err(|invalid| ServeError::Config(vec![invalid]))?;
    let hub = Hub::new(ingest::hub_config(&config).with_started_at(started_at));
    // Shown in stats and /ready from the start, not from the first publish.
    hub.register_source(publish::SOURCE);

    let listener = TcpListener::bind(addr)
        .await
        .map_err(|source| ServeError::Bind { addr, source })?;
    let addr = listener
        .local_addr()
        .map_err(|source| ServeError::Bind { addr, source })?;
    let auth = authenticator(&config.auth)?;
    tracing::info!(
        %addr,
        node_id = %config.node_id,
        auth = auth.is_some(),
        publish = PublishAccess::of(&config).describe(),
        "tickcast {} listening: GET / (demo page), {}POST /api/publish, GET /health /ready /metrics /api/stats",
        env!("CARGO_PKG_VERSION"),
        transports::endpoints(),
    );
    let brokers = Brokers::start(&config, &hub)?;
    let state = AppState::new(hub.clone(), config, auth, brokers.publisher.clone());
    let endpoints = listener::Endpoints {
        routes: http::routes(&state),
        #[cfg(feature = "sse")]
        sse: tickcast_transport_sse::LeanSse::new(hub.clone(), transports::sse_config(&state)),
    };
    let limits = listener::ListenerLimits {
        header_timeout: Duration::from_millis(state.config.http.header_timeout_ms),
        max_pending: listener::max_pending(state.config.http.max_pending_connections),
    };
    let drained = shutdown::run(
        listener,
        endpoints,
        limits,
        hub.clone(),
        shutdown,
        shutdown::DRAIN_TIMEOUT,
    );
    let task = tokio::spawn(async move {
        drained.await;
        brokers.stop();
    });
    Ok(Server { addr, hub, task })
}

/// The token verifier of `[auth]`, if one is configured.
fn authenticator(
    auth: &crate::config::AuthSection,
) -> Result<Option<std::sync::Arc<dyn tickcast_core::auth::TokenVerifier>>, ServeError> {
    use std::sync::Arc;
    use tickcast_core::auth::Authenticator;
    if let Some(secret) = &auth.jwt_secret {
        return Ok(Some(Arc::new(Authenticator::hs256(secret.as_bytes()))));
    }
    let Some(file) = &auth.jwt_public_key_file else {
        return Ok(None);
    };
    let pem = std::fs::read(file)
        .map_err(|e| ServeError::Auth(format!("cannot read {}: {e}", file.display())))?;
    let verifier = Authenticator::from_public_key_pem(&pem)
        .map_err(|e| ServeError::Auth(format!("{}: {e}", file.display())))?;
    Ok(Some(Arc::new(verifier)))
}
