//! `[ingest.amqp]` -> [`AmqpSource`] and [`AmqpPublisher`].

use std::sync::Arc;

use tickcast_core::ingest::BrokerPublisher;
use tickcast_core::Hub;
use tickcast_ingest_amqp::{AmqpConfig, AmqpPublisher, AmqpSource};

use super::IngestError;
use crate::config::{AmqpIngest, Config};

/// The source's name in stats, metrics and `/ready`.
const SOURCE_NAME: &str = "amqp";

/// The source and the publisher of `section`.
pub(super) fn source(
    section: &AmqpIngest,
    config: &Config,
    hub: &Hub,
) -> Result<(AmqpSource, Arc<dyn BrokerPublisher>), IngestError> {
    let settings = settings(section, config);
    let invalid = |e: tickcast_ingest_amqp::ConfigError| IngestError::new("ingest.amqp", e);
    let publisher = AmqpPublisher::new(&settings).map_err(invalid)?;
    let source = AmqpSource::new(settings)
        .map_err(invalid)?
        .with_counters(hub.source(SOURCE_NAME));
    Ok((source, Arc::new(publisher)))
}

/// The crate's settings: the section's keys, the node's own queue, and the
/// body limit.
fn settings(section: &AmqpIngest, config: &Config) -> AmqpConfig {
    let defaults = AmqpConfig::for_node(&config.node_id);
    AmqpConfig {
        url: section.url.clone(),
        exchange: section.exchange.clone(),
        queue: section.queue.clone().unwrap_or(defaults.queue.clone()),
        routing_keys: section.routing_keys.clone(),
        prefetch: section.prefetch,
        dead_letter_exchange: section.dead_letter_exchange.clone(),
        max_body_bytes: config.limits.max_publish_bytes,
        ..defaults
    }
}
