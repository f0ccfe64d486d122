//! `[ingest.amqp]` -> [`AmqpSource`] and [`AmqpPublisher`]; listed in
//! [`brokers`](super::brokers).

use std::time::Duration;

use tickcast_core::Hub;
use tickcast_ingest_amqp::{AmqpConfig, AmqpPublisher, AmqpSource, Overflow};

use super::{IngestError, Started};
use crate::config::{AmqpIngest, AmqpOverflow, Config};

/// Starts the source of `[ingest.amqp]` and makes its publisher; nothing
/// to start without the section.
pub(super) fn start(config: &Config, hub: &Hub) -> Result<Started, IngestError> {
    let section = config.ingest.amqp.as_ref();
    let settings = settings(section.ok_or_else(|| IngestError::absent(SECTION))?, config);
    let publisher = AmqpPublisher::new(&settings);
    super::start(SECTION, hub, AmqpSource::new(settings), publisher)
}

/// The section's name in errors.
const SECTION: &str = "ingest.amqp";

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
