//! [`AppState`]: what every route and transport of the server shares.

use std::sync::Arc;

use tickcast_core::auth::TokenVerifier;
use tickcast_core::ingest::BrokerPublisher;
use tickcast_core::Hub;

use super::auth::PublishAccess;
use super::cors::CorsPolicy;
use crate::config::Config;
use crate::metrics::MetricsExporter;

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
