//! `[ingest.amqp]` -> [`AmqpSource`] and [`AmqpPublisher`].

use std::sync::Arc;
use std::time::Duration;

use tickcast_core::ingest::BrokerPublisher;
use tickcast_core::Hub;
use tickcast_ingest_amqp::{AmqpConfig, AmqpPublisher, AmqpSource, Overflow};

use super::IngestError;
use crate::config::{AmqpIngest, AmqpOverflow, Config};

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

/// The crate's settings: the section's keys, the node's own queue, the
/// body limit and the idempotency window.
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
        dedup_capacity: config.ingest.dedup_capacity,
        dedup_max_age: Duration::from_secs(config.ingest.dedup_window_s),
        queue_expires: (section.queue_expires_s > 0)
            .then(|| Duration::from_secs(section.queue_expires_s)),
        queue_max_length: (section.queue_max_length > 0).then_some(section.queue_max_length),
        queue_overflow: match section.queue_overflow {
            AmqpOverflow::DropHead => Overflow::DropHead,
            AmqpOverflow::RejectPublish => Overflow::RejectPublish,
        },
        ..defaults
    }
}
