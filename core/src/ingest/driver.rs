//! [`run_source`]: feeds a source into a hub.

use std::future::Future;
use std::sync::Arc;

use tokio::sync::mpsc;

use super::offsets::{self, OffsetMismatch};
use super::{Acknowledger, Incoming, IngestItem, IngestSource, SourceContext, SourceCounters};
use crate::hub::{Burst, Hub, PublishError};

/// Publishes everything `source` yields into `hub` until the source ends
/// or the hub shuts down. Each message is acknowledged after the hub took
/// it, rejected when malformed, and counted under the source's name.
///
/// Before anything is read, and before the returned future is first
/// polled: the source's [`offsets`](IngestSource::offsets) are checked
/// against the hub's [`OffsetMode`](crate::hub::OffsetMode) (a mismatch is
/// an [`OffsetMismatch`], and nothing runs), the source is registered with
/// the hub ([`Hub::register_source`]; disconnected until it reports
/// [`Connected`](IngestItem::Connected) unless it
/// [`starts_connected`](IngestSource::starts_connected)), and it is handed
/// its counters ([`IngestSource::attach`]). Spawn the future.
///
/// A source with a [`read_ahead`](IngestSource::read_ahead) runs on a task
/// of its own, up to that many items ahead, so reading and decoding (one
/// core) overlap with routing and queueing (another); the hub still takes
/// the items in order, each acknowledged only once the hub has it, up to
/// 256 already read at a time as one [`Burst`] (writers woken once
/// per burst). Dropping the returned future (aborting its task) drops the
/// source.
pub fn run_source<S: IngestSource + 'static>(
    hub: Hub,
    mut source: S,
) -> Result<impl Future<Output = ()> + Send + 'static, OffsetMismatch> {
    let name = source.name().to_owned();
    offsets::check(&name, source.offsets(), hub.config().offsets)?;
    let counters = hub.register_source(&name);
    counters.set_connected(source.starts_connected());
    source.attach(&SourceContext {
        counters: counters.clone(),
        schema: hub.config().schema.clone(),
    });
    Ok(drive(hub, source, name, counters))
}

/// The loop of [`run_source`].
async fn drive<S: IngestSource + 'static>(
    hub: Hub,
    mut source: S,
    name: String,
    counters: Arc<SourceCounters>,
) {
    let ahead = source.read_ahead();
    if ahead == 0 {
        while let Some(item) = source.next().await {
            if !dispatch(&hub, &name, &counters, std::iter::once(item)).await {
                break;
            }
        }
        return;
    }
    let (tx, mut rx) = mpsc::channel(ahead);
    let _reader = AbortOnDrop(tokio::spawn(async move {
        while let Some(item) = source.next().await {
            if tx.send(item).await.is_err() {
                break;
            }
        }
    }));
    let mut items = Vec::with_capacity(BURST);
    while rx.recv_many(&mut items, BURST).await > 0 {
        if !dispatch(&hub, &name, &counters, items.drain(..)).await {
            break;
        }
    }
}

/// Items read ahead that the hub takes as one [`Burst`]: their recipients'
/// writers are woken once for all of them, so a client gets what a broker
/// read brought it in one write instead of one write per event.
const BURST: usize = 256;

/// Deals with `items` in order, in one burst, then settles their messages;
/// false when the hub is shutting down (the items not taken yet stay
/// unacknowledged, so the broker redelivers them to the next run).
async fn dispatch(
    hub: &Hub,
    name: &str,
    counters: &SourceCounters,
    items: impl Iterator<Item = IngestItem>,
) -> bool {
    let mut settled = Vec::new();
    let mut open = true;
    {
        let mut burst = hub.burst();
        for item in items {
            match item {
                IngestItem::Connected => {
                    counters.set_connected(true);
                    // Whatever the source reloads at start came before
                    // this item.
                    hub.history_loaded();
                }
                IngestItem::Disconnected(why) => {
                    counters.set_connected(false);
                    counters.error();
                    tracing::warn!(source = name, "ingest disconnected: {why}");
                }
                IngestItem::Message(incoming) => match handle(&mut burst, name, counters, incoming)
                {
                    Some(settle) => settled.push(settle),
                    None => {
                        open = false;
                        break;
                    }
                },
                IngestItem::Backfill(incoming) => backfill(hub, name, incoming),
            }
        }
    }
    for (acker, ok) in settled {
        settle(acker, ok).await;
    }
    open
}

/// Aborts the source's task when `run_source` ends or is dropped, which
/// drops the source (closing its connections) and the items read ahead
/// (unacknowledged: the broker delivers them again).
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Publishes one message into `burst`: how to settle it (acknowledge, or
/// reject a malformed one), or `None` when the hub is shutting down (the
/// message stays unacknowledged, so the broker redelivers it to the next
/// run).
fn handle(
    burst: &mut Burst<'_>,
    source: &str,
    counters: &SourceCounters,
    incoming: Incoming,
) -> Option<(Option<Box<dyn Acknowledger>>, bool)> {
    let event = match incoming.decoded {
        Ok(event) => event,
        Err(error) => {
            counters.rejected(error.reason());
            tracing::warn!(
                source,
                reason = error.reason(),
                "rejected malformed event: {error}"
            );
            return Some((incoming.acker, false));
        }
    };
    let published = match incoming.offset {
        Some(offset) => burst.publish_at(event, offset),
        None => burst.publish(event),
    };
    match published {
        Ok(_) => counters.accepted(),
        Err(PublishError::Stale { .. } | PublishError::Duplicate { .. }) => counters.duplicate(),
        Err(PublishError::ShuttingDown) => return None,
        Err(error) => {
            // An offset that does not fit (`run_source` checked the kinds
            // at start; a source giving some messages without one): say it
            // loudly once per message.
            counters.error();
            tracing::error!(source, "cannot publish: {error}");
            return Some((incoming.acker, false));
        }
    }
    Some((incoming.acker, true))
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
