//! [`ShardedBroadcaster`]: owns the connection queues and hands events to
//! them, inline or across worker shards.
//!
//! There is one broadcaster and no trait over it: the hub is its only
//! user, and the queues it fills are the hub's own (see
//! docs/architecture.md, "Traits").

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc};

use parking_lot::RwLock;
use rustc_hash::FxHashMap;

use super::counters::DeliveryCounters;
use super::frame::{EventFrame, PreparedEvent};
use super::queue::{ConnectionQueue, Urgency};
use crate::index::Recipients;
use crate::model::ConnId;
use crate::routing::{Route, Strategy};

type Registry = RwLock<FxHashMap<ConnId, Arc<ConnectionQueue>>>;

/// Writers to wake once a burst of events has been queued.
#[derive(Default)]
pub(crate) struct WakeList(Vec<Arc<ConnectionQueue>>);

impl WakeList {
    /// Wakes each listed writer once.
    pub fn wake_all(mut self) {
        self.0.sort_unstable_by_key(|q| Arc::as_ptr(q) as usize);
        self.0.dedup_by(|a, b| Arc::ptr_eq(a, b));
        for queue in &self.0 {
            queue.wake();
        }
    }
}

struct Job {
    event: Arc<PreparedEvent>,
    recipients: Arc<Recipients>,
    urgency: Urgency,
}

/// Owns the connection queues and fans events out to them: inline in the
/// publisher for most events, and across worker threads (one per shard,
/// connections assigned by id) for `load_balanced` events.
///
/// Order is kept per connection: while any shard job is in flight, every
/// event goes through the shards too, behind it in the same FIFO.
pub struct ShardedBroadcaster {
    registry: Arc<Registry>,
    /// `None` where the worker thread could not be started: that shard's
    /// part is then done inline.
    shards: Vec<Option<mpsc::Sender<Job>>>,
    in_flight: Arc<AtomicUsize>,
    counters: Arc<DeliveryCounters>,
}

impl ShardedBroadcaster {
    /// A broadcaster with `shards` worker threads (at least one).
    pub fn new(shards: usize, counters: Arc<DeliveryCounters>) -> Self {
        let registry = Arc::new(Registry::default());
        let in_flight = Arc::new(AtomicUsize::new(0));
        let count = shards.max(1);
        let shards = (0..count)
            .map(|index| {
                let (tx, rx) = mpsc::channel::<Job>();
                let worker = ShardWorker {
                    registry: registry.clone(),
                    in_flight: in_flight.clone(),
                    counters: counters.clone(),
                    shard: Some((index, count)),
                };
                let spawned = std::thread::Builder::new()
                    .name(format!("tickcast-shard-{index}"))
                    .spawn(move || worker.run(rx));
                match spawned {
                    Ok(_) => Some(tx),
                    Err(e) => {
                        tracing::error!(
                            "broadcast shard {index} not started ({e}); its part runs inline"
                        );
                        None
                    }
                }
            })
            .collect();
        Self {
            registry,
            shards,
            in_flight,
            counters,
        }
    }

    fn dispatch(&self, job: &Job) {
        let count = self.shards.len();
        for (index, shard) in self.shards.iter().enumerate() {
            let part = Job {
                event: job.event.clone(),
                recipients: job.recipients.clone(),
                urgency: job.urgency,
            };
            self.in_flight.fetch_add(1, Ordering::AcqRel);
            let sent = shard.as_ref().map(|tx| tx.send(part));
            if !matches!(sent, Some(Ok(()))) {
                self.in_flight.fetch_sub(1, Ordering::AcqRel);
                fan_out(
                    &self.registry,
                    &self.counters,
                    job,
                    Some((index, count)),
                    None,
                );
            }
        }
    }
}

impl ShardedBroadcaster {
    /// Registers a connection's queue.
    pub fn register(&self, conn: ConnId, queue: Arc<ConnectionQueue>) {
        self.registry.write().insert(conn, queue);
    }

    /// Forgets a connection; returns its queue.
    pub fn unregister(&self, conn: ConnId) -> Option<Arc<ConnectionQueue>> {
        self.registry.write().remove(&conn)
    }

    /// Pushes `event` to the queues of its route's recipients. Must be
    /// called in offset order; each connection then receives events of one
    /// priority in offset order.
    pub fn deliver(&self, event: &Arc<PreparedEvent>, route: &Route) {
        self.deliver_with(event, route, None);
    }

    /// Like [`deliver`](Self::deliver), but the writers it would wake are
    /// added to `wake` instead, to be woken once for a whole burst.
    pub(crate) fn deliver_deferred(
        &self,
        event: &Arc<PreparedEvent>,
        route: &Route,
        wake: &mut WakeList,
    ) {
        self.deliver_with(event, route, Some(wake));
    }

    /// Every registered queue (for shutdown).
    pub fn queues(&self) -> Vec<Arc<ConnectionQueue>> {
        self.registry.read().values().cloned().collect()
    }

    /// Number of registered connections.
    pub fn connection_count(&self) -> usize {
        self.registry.read().len()
    }

    fn deliver_with(&self, event: &Arc<PreparedEvent>, route: &Route, wake: Option<&mut WakeList>) {
        let job = Job {
            event: event.clone(),
            recipients: route.recipients.clone(),
            urgency: match route.strategy {
                Strategy::PriorityFirst => Urgency::Urgent,
                _ => Urgency::Normal,
            },
        };
        let sharded =
            route.strategy == Strategy::LoadBalanced || self.in_flight.load(Ordering::Acquire) > 0;
        if sharded {
            self.dispatch(&job);
        } else {
            fan_out(&self.registry, &self.counters, &job, None, wake);
        }
    }
}

/// One shard's thread: fans out its share of each job, in job order.
struct ShardWorker {
    registry: Arc<Registry>,
    in_flight: Arc<AtomicUsize>,
    counters: Arc<DeliveryCounters>,
    shard: Option<(usize, usize)>,
}

impl ShardWorker {
    fn run(self, jobs: mpsc::Receiver<Job>) {
        // Ends when the broadcaster (the only sender) is dropped.
        while let Ok(job) = jobs.recv() {
            fan_out(&self.registry, &self.counters, &job, self.shard, None);
            self.in_flight.fetch_sub(1, Ordering::AcqRel);
        }
    }
}

/// Pushes one event to its recipients (only those of `shard` = (index,
/// count) when given); each recipient's subs list is encoded once per
/// route, not per event. With `wake`,
/// the writers are listed there instead of woken.
fn fan_out(
    registry: &Registry,
    counters: &DeliveryCounters,
    job: &Job,
    shard: Option<(usize, usize)>,
    mut wake: Option<&mut WakeList>,
) {
    let queues = registry.read();
    let mut pushed = 0;
    for recipient in job.recipients.iter() {
        if let Some((index, count)) = shard {
            if recipient.conn.0 as usize % count != index {
                continue;
            }
        }
        if let Some(queue) = queues.get(&recipient.conn) {
            let subs = recipient.subs_field().clone();
            let frame = EventFrame::with_subs_field(job.event.clone(), subs);
            match wake.as_deref_mut() {
                Some(list) => {
                    queue.push_quiet(frame, job.urgency);
                    list.0.push(queue.clone());
                }
                None => {
                    queue.push(frame, job.urgency);
                }
            }
            pushed += 1;
        }
    }
    DeliveryCounters::add(&counters.enqueued, pushed);
}
