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
/// A source with a [`read_ahead`](IngestSource::read_ahead) runs in a
/// reader of its own (on a multi-thread runtime an OS thread named
/// `tickcast-ingest` with a current-thread runtime, where the source's
/// connections live; else a task), up to that many items ahead, so
/// reading and decoding (one core) overlap with routing and queueing
/// (another); the hub still takes
/// the items in order, each acknowledged only once the hub has it, up to
/// 256 already read at a time as one [`Burst`] (writers woken once
/// per burst). Dropping the returned future (aborting its task) drops the
/// source: at once when it reads on a task, as soon as its reader thread
/// sees the hub's side gone when it reads on a thread.
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
    let _reader = spawn_reader(source, tx);
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

/// Sends what `source` yields into `tx` until either ends.
async fn read_into<S: IngestSource>(mut source: S, tx: mpsc::Sender<IngestItem>) {
    loop {
        let item = tokio::select! {
            biased;
            () = tx.closed() => break,
            item = source.next() => item,
        };
        let Some(item) = item else { break };
        if tx.send(item).await.is_err() {
            break;
        }
    }
}

/// Starts the read-ahead. On a multi-thread runtime it gets an OS thread
/// of its own (with a current-thread runtime): tokio runs a task on the
/// worker that woke it (its LIFO slot, which other workers do not steal),
/// so a reader and a handler that wake each other took turns on one
/// worker while the other idled, and the server never passed one core
/// (docs/benchmarks.md, "Ingest throughput at low fan-out"). Anywhere else
/// (a current-thread runtime, tests with paused time) it is a task.
fn spawn_reader<S: IngestSource + 'static>(
    source: S,
    tx: mpsc::Sender<IngestItem>,
) -> Option<AbortOnDrop> {
    let flavor = tokio::runtime::Handle::current().runtime_flavor();
    if flavor != tokio::runtime::RuntimeFlavor::MultiThread {
        return Some(AbortOnDrop(tokio::spawn(read_into(source, tx))));
    }
    let spawned = std::thread::Builder::new()
        .name("tickcast-ingest".into())
        .spawn(move || {
            match tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                Ok(runtime) => reader_thread(&runtime, source, tx),
                Err(error) => tracing::error!("cannot start the ingest reader's runtime: {error}"),
            }
        });
    if let Err(error) = spawned {
        tracing::error!("cannot start the ingest reader's thread: {error}");
    }
    None
}

/// The reader thread's life: read until the hub's side closes, then give
/// the tasks the source leaves behind (its last acknowledgements) a
/// moment to finish before the runtime drops them.
fn reader_thread<S: IngestSource>(
    runtime: &tokio::runtime::Runtime,
    source: S,
    tx: mpsc::Sender<IngestItem>,
) {
    runtime.block_on(read_into(source, tx));
    let deadline = std::time::Instant::now() + LAST_WORDS;
    while runtime.metrics().num_alive_tasks() > 0 && std::time::Instant::now() < deadline {
        // The timer is made inside the runtime: `sleep` needs its context
        // when it is created, not only when it is polled.
        runtime.block_on(async { tokio::time::sleep(std::time::Duration::from_millis(5)).await });
    }
}

/// How long a stopped reader's leftover tasks may run.
const LAST_WORDS: std::time::Duration = std::time::Duration::from_secs(2);

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
