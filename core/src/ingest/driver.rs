//! [`run_source`]: feeds a source into a hub.

use super::{Acknowledger, Incoming, IngestItem, IngestSource};
use crate::hub::{Hub, PublishError};

/// Publishes everything `source` yields into `hub` until the source ends
/// or the hub shuts down. Each message is acknowledged after the hub took
/// it, rejected when malformed, and counted under the source's name.
pub async fn run_source<S: IngestSource>(hub: Hub, mut source: S) {
    let counters = hub.source(source.name());
    while let Some(item) = source.next().await {
        match item {
            IngestItem::Connected => counters.set_connected(true),
            IngestItem::Disconnected(why) => {
                counters.set_connected(false);
                counters.error();
                tracing::warn!(source = source.name(), "ingest disconnected: {why}");
            }
            IngestItem::Message(incoming) => {
                if !handle(&hub, source.name(), &counters, incoming).await {
                    break;
                }
            }
            IngestItem::Backfill(incoming) => backfill(&hub, source.name(), incoming),
        }
    }
}

/// Returns false when the hub is shutting down (the message stays
/// unacknowledged, so the broker redelivers it to the next run).
async fn handle(
    hub: &Hub,
    source: &str,
    counters: &super::SourceCounters,
    incoming: Incoming,
) -> bool {
    let event = match incoming.decoded {
        Ok(event) => event,
        Err(error) => {
            counters.rejected(error.reason());
            tracing::warn!(
                source,
                reason = error.reason(),
                "rejected malformed event: {error}"
            );
            settle(incoming.acker, false).await;
            return true;
        }
    };
    let published = match incoming.offset {
        Some(offset) => hub.publish_at(event, offset),
        None => hub.publish(event),
    };
    match published {
        Ok(_) => counters.accepted(),
        Err(PublishError::Stale { .. } | PublishError::Duplicate { .. }) => counters.duplicate(),
        Err(PublishError::ShuttingDown) => return false,
        Err(error) => {
            // A source/hub offset-mode mismatch: a configuration error that
            // would refuse every message, so say it loudly once per message.
            counters.error();
            tracing::error!(source, "cannot publish: {error}");
            settle(incoming.acker, false).await;
            return true;
        }
    }
    settle(incoming.acker, true).await;
    true
}

/// History-only: malformed or offset-less entries are skipped (they were
/// counted when first consumed, or never will be delivered anyway).
fn backfill(hub: &Hub, source: &str, incoming: Incoming) {
    let (Ok(event), Some(offset)) = (incoming.decoded, incoming.offset) else {
        return;
    };
    if let Err(error) = hub.remember_at(event, offset) {
        tracing::debug!(source, "backfill entry {offset} skipped: {error}");
    }
}

async fn settle(acker: Option<Box<dyn Acknowledger>>, ok: bool) {
    if let Some(acker) = acker {
        if ok {
            acker.ack().await;
        } else {
            acker.reject().await;
        }
    }
}
