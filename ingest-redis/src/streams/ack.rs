//! Acknowledgements: [`StreamAcker`] records an XACK, [`AckQueue`] sends
//! them in batches.
//!
//! `run_source` awaits every ack before it asks for the next entry, so one
//! XACK round trip per entry would cap the ingest at the round-trip rate.
//! Instead an ack only records the id, and the consumer sends one XACK for
//! all recorded ids with each read from Redis, in the read's pipeline (and
//! on its own whenever a read batch's worth has piled up). An ack lost to a crash leaves the entry
//! pending: it is read again after the restart, the hub recognises its
//! offset as already seen, and it is acknowledged then. So batching costs
//! at most one redelivery per entry, never a loss.

use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use async_trait::async_trait;
use redis::aio::MultiplexedConnection;
use redis::AsyncCommands;
use tickcast_core::ingest::Acknowledger;

/// Entry ids whose XACK has not been sent yet.
#[derive(Debug, Default)]
pub(crate) struct AckQueue {
    ids: Mutex<Vec<String>>,
}

impl AckQueue {
    fn ids(&self) -> MutexGuard<'_, Vec<String>> {
        // A panic while pushing an id cannot leave the Vec inconsistent.
        self.ids.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Records `id` for the next XACK.
    pub(crate) fn push(&self, id: String) {
        self.ids().push(id);
    }

    /// Ids waiting.
    pub(crate) fn len(&self) -> usize {
        self.ids().len()
    }

    /// Takes every recorded id, to be acknowledged by the caller (in a
    /// pipeline); on failure it gives them [`back`](Self::put_back).
    pub(crate) fn take(&self) -> Vec<String> {
        std::mem::take(&mut *self.ids())
    }

    /// Puts ids whose XACK failed back in front of any recorded meanwhile.
    pub(crate) fn put_back(&self, ids: Vec<String>) {
        let mut waiting = self.ids();
        let newer = std::mem::replace(&mut *waiting, ids);
        waiting.extend(newer);
    }

    /// Sends one XACK for every recorded id. On failure the ids stay
    /// recorded, to be sent on the next connection.
    pub(crate) async fn flush(
        &self,
        conn: &mut MultiplexedConnection,
        stream: &str,
        group: &str,
    ) -> redis::RedisResult<()> {
        let ids = self.take();
        if ids.is_empty() {
            return Ok(());
        }
        match conn.xack::<_, _, _, usize>(stream, group, &ids).await {
            Ok(_acked) => Ok(()),
            Err(error) => {
                self.put_back(ids);
                Err(error)
            }
        }
    }

    /// Best effort when the consumer goes away: XACK what is recorded on a
    /// task of its own (if a runtime is still there), so a clean stop does
    /// not leave a batch to be redelivered.
    pub(crate) fn flush_detached(
        self: &Arc<Self>,
        conn: MultiplexedConnection,
        stream: String,
        group: String,
    ) {
        if self.len() == 0 {
            return;
        }
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let queue = self.clone();
        runtime.spawn(async move {
            let mut conn = conn;
            if let Err(error) = queue.flush(&mut conn, &stream, &group).await {
                tracing::debug!("final XACK failed (entries will be redelivered): {error}");
            }
        });
    }
}

/// Settles one stream entry. Both outcomes XACK it: a malformed entry
/// redelivered forever would only be rejected forever.
pub(crate) struct StreamAcker {
    id: String,
    queue: Arc<AckQueue>,
}

impl StreamAcker {
    /// The acker of entry `id`.
    pub(crate) fn new(id: String, queue: Arc<AckQueue>) -> Self {
        Self { id, queue }
    }
}

#[async_trait]
impl Acknowledger for StreamAcker {
    async fn ack(self: Box<Self>) {
        self.queue.push(self.id);
    }

    async fn reject(self: Box<Self>) {
        // run_source has logged the reason; the id is what finds the entry
        // in the stream (it stays there: XACK only removes it from the
        // group's pending list).
        tracing::debug!(entry = %self.id, "acknowledging rejected stream entry");
        self.queue.push(self.id);
    }
}
