//! [`DeliveryAcker`]: settles one delivery once the hub has dealt with it;
//! [`AckBatch`]: the acks of accepted deliveries, sent as one `basic.ack`
//! with `multiple`.
//!
//! `run_source` settles each message before it asks for the next one, so
//! one awaited `basic.ack` per message would cap the ingest at one broker
//! round trip per event. An accepted delivery is only recorded instead;
//! one `basic.ack multiple` goes for everything recorded when half the
//! prefetch window is recorded, before any nack, and from the source
//! whenever no delivery is waiting. This needs the source to be driven one
//! item at a time (no read-ahead: `IngestSource::read_ahead` is 0), so that
//! everything recorded was settled in tag order. Deliveries are settled in tag order on one channel, so
//! acking up to the latest tag acks exactly the recorded ones (tags nacked
//! or acked singly before it are already settled and not touched again).
//! An ack lost with the connection means a redelivery, which the duplicate
//! check recognises: never a loss.

use std::sync::Arc;

use async_trait::async_trait;
use lapin::options::{BasicAckOptions, BasicNackOptions};
use lapin::Acker;
use parking_lot::Mutex;
use tickcast_core::ingest::Acknowledger;

use crate::dedup::RecentIds;

/// The accepted deliveries of the current channel not acked yet: the
/// acker of the newest one (acking it with `multiple` acks them all) and
/// how many there are.
pub(crate) struct AckBatch {
    pending: Mutex<Option<(Acker, usize)>>,
    /// Sent once this many are recorded (half the prefetch window).
    flush_at: usize,
}

impl AckBatch {
    /// A batch sent at the latest when `flush_at` acks are recorded.
    pub(crate) fn new(flush_at: usize) -> Self {
        Self {
            pending: Mutex::default(),
            flush_at: flush_at.max(1),
        }
    }

    /// Whether enough is recorded to send it now.
    pub(crate) fn is_full(&self) -> bool {
        self.len() >= self.flush_at
    }

    /// Records an accepted delivery (or a skipped copy).
    pub(crate) fn record(&self, acker: Acker) {
        let mut pending = self.pending.lock();
        let count = pending.as_ref().map_or(0, |(_, n)| *n);
        *pending = Some((acker, count + 1));
    }

    /// Deliveries recorded and not acked yet.
    pub(crate) fn len(&self) -> usize {
        self.pending.lock().as_ref().map_or(0, |(_, n)| *n)
    }

    /// Sends one `basic.ack multiple` for everything recorded.
    pub(crate) async fn flush(&self) {
        let Some((acker, _)) = self.pending.lock().take() else {
            return;
        };
        let multiple = BasicAckOptions { multiple: true };
        settle(acker.ack(multiple).await, "ack");
    }

    /// Forgets what is recorded: its channel is gone, and the broker
    /// redelivers those messages anyway.
    pub(crate) fn clear(&self) {
        self.pending.lock().take();
    }
}

/// Acks (in a batch) or dead-letters one delivery, and remembers the
/// message id of accepted ones for the duplicate check.
pub(crate) struct DeliveryAcker {
    pub(crate) acker: Acker,
    pub(crate) message_id: Option<String>,
    pub(crate) routing_key: String,
    pub(crate) recent: RecentIds,
    pub(crate) batch: Arc<AckBatch>,
}

#[async_trait]
impl Acknowledger for DeliveryAcker {
    async fn ack(self: Box<Self>) {
        // Remembered before the ack leaves: if the ack is lost with the
        // connection, the redelivery that follows is recognised.
        if let Some(id) = &self.message_id {
            self.recent.remember(id);
        }
        self.batch.record(self.acker);
        if self.batch.is_full() {
            self.batch.flush().await;
        }
    }

    async fn reject(self: Box<Self>) {
        tracing::info!(
            source = "amqp",
            routing_key = %self.routing_key,
            message_id = self.message_id.as_deref().unwrap_or(""),
            "malformed message dead-lettered"
        );
        // The recorded acks first: a later `multiple` ack must not cover
        // this one.
        self.batch.flush().await;
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
pub(crate) fn settle(result: lapin::Result<bool>, what: &str) {
    match result {
        Ok(true) => {}
        Ok(false) => tracing::debug!(source = "amqp", "{what} skipped: the channel is gone"),
        Err(error) => tracing::debug!(source = "amqp", "{what} failed: {error}"),
    }
}
