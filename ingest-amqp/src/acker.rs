//! [`DeliveryAcker`]: settles one delivery once the hub has dealt with it.

use async_trait::async_trait;
use lapin::options::{BasicAckOptions, BasicNackOptions};
use lapin::Acker;
use tickcast_core::ingest::Acknowledger;

use crate::dedup::RecentIds;

/// Acks or dead-letters one delivery, and remembers the message id of
/// accepted ones for the duplicate check.
pub(crate) struct DeliveryAcker {
    pub(crate) acker: Acker,
    pub(crate) message_id: Option<String>,
    pub(crate) routing_key: String,
    pub(crate) recent: RecentIds,
}

#[async_trait]
impl Acknowledger for DeliveryAcker {
    async fn ack(self: Box<Self>) {
        // Remembered before the ack leaves: if the ack is lost with the
        // connection, the redelivery that follows is recognised.
        if let Some(id) = &self.message_id {
            self.recent.remember(id);
        }
        settle(self.acker.ack(BasicAckOptions::default()).await, "ack");
    }

    async fn reject(self: Box<Self>) {
        tracing::info!(
            source = "amqp",
            routing_key = %self.routing_key,
            message_id = self.message_id.as_deref().unwrap_or(""),
            "malformed message dead-lettered"
        );
        // requeue = false: to the dead-letter exchange, never back into the
        // queue, where it would come back forever.
        let options = BasicNackOptions {
            requeue: false,
            ..BasicNackOptions::default()
        };
        settle(self.acker.nack(options).await, "nack");
    }
}

/// An ack for a delivery of a channel that has died cannot arrive (the
/// broker redelivers the message instead): nothing to do but note it.
fn settle(result: lapin::Result<bool>, what: &str) {
    match result {
        Ok(true) => {}
        Ok(false) => tracing::debug!(source = "amqp", "{what} skipped: the channel is gone"),
        Err(error) => tracing::debug!(source = "amqp", "{what} failed: {error}"),
    }
}
