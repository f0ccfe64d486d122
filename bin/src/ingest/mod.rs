//! Broker ingest: the sources of `[ingest.redis]` and `[ingest.amqp]`,
//! started beside the server, and the broker `POST /api/publish` goes
//! through when one is configured.
//!
//! Each source runs in a task of its own ([`run_source`]): it acknowledges
//! a message only after the hub accepted it, and shows in `/ready` as
//! disconnected until it has reached its broker.

#[cfg(feature = "amqp")]
mod amqp;
#[cfg(feature = "redis")]
mod redis;

use std::sync::Arc;

use tickcast_core::ingest::BrokerPublisher;
#[cfg(any(feature = "redis", feature = "amqp"))]
use tickcast_core::ingest::{run_source, IngestSource};
use tickcast_core::Hub;
use tokio::task::JoinHandle;

use crate::config::Config;

/// A broker section the broker's crate cannot use.
#[derive(Debug, thiserror::Error)]
#[error("[{section}]: {reason}")]
pub struct IngestError {
    section: &'static str,
    reason: String,
}

impl IngestError {
    #[cfg(any(feature = "redis", feature = "amqp"))]
    fn new(section: &'static str, reason: impl std::fmt::Display) -> Self {
        Self {
            section,
            reason: reason.to_string(),
        }
    }
}

/// The running broker sources and the publisher of the HTTP API.
#[derive(Default)]
pub struct Brokers {
    /// Where `POST /api/publish` goes: Redis when configured, else AMQP,
    /// else `None` (straight to the hub).
    pub publisher: Option<Arc<dyn BrokerPublisher>>,
    tasks: Vec<JoinHandle<()>>,
}

impl Brokers {
    /// Starts a source for each configured broker that is built in, and
    /// warns about each that is configured but not built. Fails on settings
    /// a broker crate refuses (a URL it cannot use).
    pub fn start(config: &Config, hub: &Hub) -> Result<Self, IngestError> {
        #[cfg_attr(not(any(feature = "redis", feature = "amqp")), allow(unused_mut))]
        let mut brokers = Self::default();
        if let Some(section) = &config.ingest.redis {
            #[cfg(feature = "redis")]
            {
                let (source, publisher) = redis::source(section, config, hub)?;
                brokers.spawn(hub, source);
                brokers.publisher.get_or_insert(publisher);
            }
            #[cfg(not(feature = "redis"))]
            not_built(hub, "redis", "[ingest.redis]", "Redis", &section.url);
        }
        if let Some(section) = &config.ingest.amqp {
            #[cfg(feature = "amqp")]
            {
                let (source, publisher) = amqp::source(section, config, hub)?;
                brokers.spawn(hub, source);
                brokers.publisher.get_or_insert(publisher);
            }
            #[cfg(not(feature = "amqp"))]
            not_built(hub, "amqp", "[ingest.amqp]", "RabbitMQ", &section.url);
        }
        Ok(brokers)
    }

    #[cfg(any(feature = "redis", feature = "amqp"))]
    fn spawn<S: IngestSource + 'static>(&mut self, hub: &Hub, source: S) {
        // Not ready until the source says it reached its broker.
        hub.source(source.name()).set_connected(false);
        self.tasks
            .push(tokio::spawn(run_source(hub.clone(), source)));
    }

    /// Stops the sources. Messages they had not handed to the hub stay
    /// unacknowledged at the broker, which redelivers them to the next run.
    pub fn stop(self) {
        for task in self.tasks {
            task.abort();
        }
    }
}

/// Says loudly that a configured broker is not consumed, and shows it as a
/// disconnected source (so `/ready` answers 503 rather than pretend).
#[cfg(any(not(feature = "redis"), not(feature = "amqp")))]
fn not_built(hub: &Hub, source: &str, section: &str, broker: &str, url: &str) {
    tracing::warn!(
        "{section} is configured ({url}), but this binary was built without the `{source}` \
         feature: nothing is consumed from {broker}, POST /api/publish goes straight to this \
         node, and /ready reports the source disconnected"
    );
    hub.source(source).set_connected(false);
}
