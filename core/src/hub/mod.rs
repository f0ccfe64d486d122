//! [`Hub`]: index + router + broadcaster + history, assembled.
//!
//! Transports call [`Hub::connect`] for each client and read frames from
//! the returned receiver; ingest sources call [`Hub::publish`]. Publishing
//! is serialized: an event gets its offset, enters the history and is
//! routed and queued before the next one, and a subscription with `since`
//! is added in the same critical section, so replay and live delivery meet
//! with no gap and no duplicate.

mod burst;
mod config;
mod connection;
mod dedup;
pub mod epoch;
mod stats;
mod users;
mod waiting;

pub use crate::model::OffsetMode;
pub use burst::Burst;
pub use config::{ConnectionLimits, HubConfig, Limits};
pub use connection::{Connection, ConnectionHandle, SubscribeError};
pub use dedup::DedupConfig;
pub use stats::{HubStats, LayerLatency, RouteCacheStats};

use std::num::NonZeroU32;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Instant, SystemTime};

use parking_lot::Mutex;

use crate::broadcast::{
    ConnectionQueue, DeliveryCounters, PreparedEvent, ShardedBroadcaster, WakeList,
};
use crate::history::History;
use crate::index::InvertedIndex;
use crate::ingest::{SourceCounters, SourceStats};
use crate::model::{ConnId, Event, Filter, Offset, SubId, UserId};
use crate::protocol::{CloseCode, ServerMessage, SERVER_NAME};
use crate::routing::IndexRouter;
use crate::stats::LatencyHistogram;
use connection::ConnShared;
use dedup::RecentKeys;
use users::Users;
use waiting::Waitlist;

/// Why an event was not published.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PublishError {
    /// The hub is shutting down.
    #[error("the hub is shutting down")]
    ShuttingDown,
    /// [`OffsetMode::External`]: use [`Hub::publish_at`].
    #[error("this hub takes offsets from its ingest: use publish_at")]
    OffsetRequired,
    /// [`OffsetMode::Node`]: the hub assigns offsets itself.
    #[error("this hub assigns offsets itself: use publish")]
    OffsetNotAccepted,
    /// The offset is not after the latest one (a redelivered entry).
    #[error("offset {offset} is not after the latest offset {latest}")]
    Stale {
        /// The offset given.
        offset: Offset,
        /// The latest accepted offset.
        latest: Offset,
    },
    /// An event with the same idempotency key was published within the
    /// de-duplication window (a producer's retry, a broker's second copy):
    /// this one is dropped, not delivered again.
    #[error("an event with this idempotency key was already published, at offset {offset}")]
    Duplicate {
        /// The offset the first one got.
        offset: Offset,
    },
}

/// Why a connection was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConnectError {
    /// The user holds `max_connections_per_user` connections (close 4009).
    #[error("too many connections for this user")]
    TooManyConnections,
    /// The hub is shutting down (close 1001).
    #[error("the server is shutting down")]
    ShuttingDown,
    /// The node is still loading its history from its ingest
    /// ([`HubConfig::await_history`]); close 1013, try again shortly.
    #[error("the server is loading its history; try again shortly")]
    Starting,
}

impl ConnectError {
    /// The close code a transport should use.
    pub fn close_code(&self) -> CloseCode {
        match self {
            Self::TooManyConnections => CloseCode::LimitExceeded,
            Self::ShuttingDown => CloseCode::GoingAway,
            Self::Starting => CloseCode::TryAgainLater,
        }
    }
}

/// Offset assignment and history, guarded together by the publish lock.
struct Sequencer {
    /// `Some(epoch)` when the hub numbers events itself.
    epoch: Option<u64>,
    seq: u64,
    history: History,
    recent: RecentKeys,
    /// Subscriptions whose `since` the ingest has not reached yet.
    waiting: Waitlist,
}

impl Sequencer {
    /// The next node offset `<epoch>-<seq>`; only for [`OffsetMode::Node`].
    fn next_offset(&mut self) -> Result<Offset, PublishError> {
        let epoch = self.epoch.ok_or(PublishError::OffsetRequired)?;
        self.seq += 1;
        Ok(Offset::new(epoch, self.seq))
    }

    /// Refuses an event whose idempotency key is in the window as
    /// [`PublishError::Duplicate`]; else the key's hash, to
    /// [`remember`](Self::remember) once the event has its offset.
    fn admit(&mut self, event: &Event) -> Result<Option<(u128, Instant)>, PublishError> {
        let Some(hash) = self.recent.hash(event.idempotency_key()) else {
            return Ok(None);
        };
        let now = Instant::now();
        match self.recent.get(hash, now) {
            Some(offset) => Err(PublishError::Duplicate { offset }),
            None => Ok(Some((hash, now))),
        }
    }

    /// Puts an admitted key into the window.
    fn remember(&mut self, key: Option<(u128, Instant)>, offset: Offset) {
        if let Some((hash, at)) = key {
            self.recent.insert(hash, offset, at);
        }
    }

    /// Whether an ingest offset may come next: only for
    /// [`OffsetMode::External`], and only after the latest one.
    fn check_external(&self, offset: Offset) -> Result<(), PublishError> {
        if self.epoch.is_some() {
            return Err(PublishError::OffsetNotAccepted);
        }
        match self.history.latest().filter(|l| offset <= *l) {
            Some(latest) => Err(PublishError::Stale { offset, latest }),
            None => Ok(()),
        }
    }
}

struct Inner {
    config: HubConfig,
    router: IndexRouter<InvertedIndex>,
    broadcaster: ShardedBroadcaster,
    counters: Arc<DeliveryCounters>,
    users: Users,
    sequencer: Mutex<Sequencer>,
    next_conn: AtomicU64,
    published: AtomicU64,
    closed: AtomicBool,
    /// Clients are admitted (see [`HubConfig::await_history`]).
    history_ready: AtomicBool,
    route_latency: LatencyHistogram,
    fanout_latency: LatencyHistogram,
    publish_latency: LatencyHistogram,
    sources: Mutex<Vec<Arc<SourceCounters>>>,
}

/// The engine: cheap to clone, shared by transports and ingest sources.
#[derive(Clone)]
pub struct Hub {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Hub {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Hub").finish_non_exhaustive()
    }
}

impl Hub {
    /// A hub with the inverted index, the cached router and the sharded
    /// broadcaster. Must be called inside a Tokio runtime only if frames
    /// are awaited with timers (batch windows), as usual.
    pub fn new(config: HubConfig) -> Self {
        let counters = Arc::new(DeliveryCounters::default());
        let router = IndexRouter::new(
            InvertedIndex::new(&config.schema),
            config.rules.clone(),
            config.cache,
        );
        let broadcaster = ShardedBroadcaster::new(config.shards, counters.clone());
        let epoch = match config.offsets {
            OffsetMode::Node => Some(epoch::new_epoch(
                config.started_at.unwrap_or_else(SystemTime::now),
            )),
            OffsetMode::External => None,
        };
        let history = History::new(config.history, epoch.map(|e| Offset::new(e, 0)));
        let users = Users::new(
            config.rate_limit_per_user,
            config.limits.max_connections_per_user,
        );
        Self {
            inner: Arc::new(Inner {
                router,
                broadcaster,
                counters,
                users,
                sequencer: Mutex::new(Sequencer {
                    epoch,
                    seq: 0,
                    history,
                    recent: RecentKeys::new(config.dedup),
                    waiting: Waitlist::default(),
                }),
                next_conn: AtomicU64::new(1),
                published: AtomicU64::new(0),
                closed: AtomicBool::new(false),
                history_ready: AtomicBool::new(!config.await_history),
                route_latency: LatencyHistogram::default(),
                fanout_latency: LatencyHistogram::default(),
                publish_latency: LatencyHistogram::default(),
                sources: Mutex::default(),
                config,
            }),
        }
    }

    /// The configuration the hub runs with.
    pub fn config(&self) -> &HubConfig {
        &self.inner.config
    }

    /// Publishes an event under a node offset (`<epoch>-<seq>`).
    /// An event whose idempotency key was published within the window is
    /// refused as [`PublishError::Duplicate`] (so on every publish path).
    pub fn publish(&self, event: Event) -> Result<Offset, PublishError> {
        self.publish_with(event, None)
    }

    /// [`publish`](Self::publish), waking writers now or listing them in
    /// `wake`.
    fn publish_with(
        &self,
        event: Event,
        wake: Option<&mut WakeList>,
    ) -> Result<Offset, PublishError> {
        self.check_open()?;
        let mut seq = self.inner.sequencer.lock();
        let key = seq.admit(&event)?;
        let offset = seq.next_offset()?;
        self.accept_with(&mut seq, event, offset, wake);
        seq.remember(key, offset);
        Ok(offset)
    }

    /// Publishes a burst of events (an `/api/publish` array): each is
    /// accepted in order exactly as by [`publish`](Self::publish), and each
    /// recipient's writer is woken once for the whole burst, so a client
    /// gets the burst in as few writes as its batching allows.
    pub fn publish_all(&self, events: Vec<Event>) -> Vec<Result<Offset, PublishError>> {
        let mut wake = WakeList::default();
        let results = {
            let mut seq = self.inner.sequencer.lock();
            events
                .into_iter()
                .map(|event| {
                    self.check_open()?;
                    let key = seq.admit(&event)?;
                    let offset = seq.next_offset()?;
                    self.accept_with(&mut seq, event, offset, Some(&mut wake));
                    seq.remember(key, offset);
                    Ok(offset)
                })
                .collect()
        };
        wake.wake_all();
        results
    }

    /// Publishes an event under an offset from the ingest (a Redis Streams
    /// id); offsets must increase, and a repeated one is refused as
    /// [`PublishError::Stale`] so a redelivery is never delivered twice; a
    /// repeated idempotency key as [`PublishError::Duplicate`].
    pub fn publish_at(&self, event: Event, offset: Offset) -> Result<Offset, PublishError> {
        self.publish_at_with(event, offset, None)
    }

    /// [`publish_at`](Self::publish_at), waking writers now or listing
    /// them in `wake`.
    fn publish_at_with(
        &self,
        event: Event,
        offset: Offset,
        wake: Option<&mut WakeList>,
    ) -> Result<Offset, PublishError> {
        self.check_open()?;
        let mut seq = self.inner.sequencer.lock();
        seq.check_external(offset)?;
        let key = seq.admit(&event)?;
        self.accept_with(&mut seq, event, offset, wake);
        seq.remember(key, offset);
        Ok(offset)
    }

    /// Starts a [`Burst`]: publishes whose recipients' writers are woken
    /// once, when the burst is dropped.
    pub fn burst(&self) -> Burst<'_> {
        Burst::new(self)
    }

    /// Records an event from before this hub started (a Redis Streams
    /// entry this node's group had already consumed) in the history only,
    /// so clients can resume from it; nobody receives it live. Offsets must
    /// increase as for [`publish_at`](Self::publish_at).
    pub fn remember_at(&self, event: Event, offset: Offset) -> Result<Offset, PublishError> {
        self.check_open()?;
        let mut seq = self.inner.sequencer.lock();
        seq.check_external(offset)?;
        // A copy the previous run dropped stays out of the history too.
        let key = seq.admit(&event)?;
        let prepared = Arc::new(PreparedEvent::new(event, offset));
        seq.history.push(prepared);
        seq.remember(key, offset);
        Ok(offset)
    }

    fn check_open(&self) -> Result<(), PublishError> {
        if self.inner.closed.load(Ordering::Acquire) {
            return Err(PublishError::ShuttingDown);
        }
        Ok(())
    }

    /// Records, routes and queues one event, waking writers now or listing
    /// them in `wake`; the caller holds the publish lock (`seq`).
    fn accept_with(
        &self,
        seq: &mut Sequencer,
        event: Event,
        offset: Offset,
        wake: Option<&mut WakeList>,
    ) {
        let inner = &*self.inner;
        for (_, sub) in seq.waiting.due(offset) {
            inner.router.subscribe(sub);
        }
        let prepared = Arc::new(PreparedEvent::new(event, offset));
        // One clock read per step: the event's acceptance starts routing.
        let started = prepared.accepted_at;
        let route = inner.router.route(&prepared.event);
        let routed = Instant::now();
        seq.history.push(prepared.clone());
        match wake {
            Some(wake) => inner.broadcaster.deliver_deferred(&prepared, &route, wake),
            None => inner.broadcaster.deliver(&prepared, &route),
        }
        let done = Instant::now();
        inner.route_latency.record(routed - started);
        inner.fanout_latency.record(done - routed);
        inner.publish_latency.record(done - prepared.accepted_at);
        inner.published.fetch_add(1, Ordering::Relaxed);
    }

    /// Registers a client connection of `user` (`None`: anonymous). The
    /// returned receiver yields its frames, starting with `welcome`.
    pub fn connect(
        &self,
        user: Option<UserId>,
        limits: ConnectionLimits,
    ) -> Result<Connection, ConnectError> {
        let inner = &*self.inner;
        if inner.closed.load(Ordering::Acquire) {
            return Err(ConnectError::ShuttingDown);
        }
        if !inner.history_ready.load(Ordering::Acquire) {
            return Err(ConnectError::Starting);
        }
        let limiter = inner
            .users
            .join(user.as_ref())
            .map_err(|_| ConnectError::TooManyConnections)?;
        let id = ConnId(inner.next_conn.fetch_add(1, Ordering::Relaxed));
        let (queue, frames) =
            ConnectionQueue::new(inner.config.queue, limiter, inner.counters.clone());
        inner.broadcaster.register(id, queue.clone());
        queue.push_message(ServerMessage::Welcome {
            conn: id.to_string(),
            user: user.as_deref().map(str::to_owned),
            offset: self.latest_offset(),
            server: SERVER_NAME,
        });
        let handle = ConnectionHandle::new(self.clone(), id, user.clone(), limits, queue);
        if let Some(user) = &user {
            let shared = handle.shared();
            for (sub, filter) in inner.users.attach(user, id, Arc::downgrade(shared)) {
                self.apply_user_subscription(shared, &sub, filter);
            }
        }
        Ok(Connection { handle, frames })
    }

    /// Adds or replaces a server-side subscription of `user`: every
    /// connection of that user, open now or later, holds subscription `id`
    /// with `filter` (as if it had subscribed itself; it is told with a
    /// `subscribed` frame). A connection that cannot take it (tiers it is
    /// not entitled to, its subscription limit) gets an `error` frame.
    /// Returns how many open connections took it.
    pub fn subscribe_user(
        &self,
        user: &UserId,
        id: &str,
        filter: Filter,
    ) -> Result<usize, SubscribeError> {
        connection::validate_id(id)?;
        // Checked here so a bad filter is the caller's error; each
        // connection resolves it again under its own entitlement.
        let limits = &self.inner.config.limits;
        self.inner
            .config
            .schema
            .criteria(&filter, limits.max_values_per_list)?;
        let connections = self
            .inner
            .users
            .subscribe(user, SubId::from(id), filter.clone());
        Ok(connections
            .iter()
            .filter(|conn| self.apply_user_subscription(conn, id, filter.clone()))
            .count())
    }

    /// Removes server-side subscription `id` of `user` from the user and
    /// from its open connections; false when the user had none by that id.
    pub fn unsubscribe_user(&self, user: &UserId, id: &str) -> bool {
        let Some(connections) = self.inner.users.unsubscribe(user, id) else {
            return false;
        };
        for conn in connections {
            // A connection may have dropped it itself already.
            let _ = conn.unsubscribe(self, id);
        }
        true
    }

    /// The server-side subscriptions of `user`, as `(id, filter)`.
    pub fn user_subscriptions(&self, user: &UserId) -> Vec<(SubId, Filter)> {
        self.inner.users.subscriptions(user)
    }

    /// Caps what the connections of `user` receive per hour, over all of
    /// them together (on top of `rate_limit_per_user` per second); `None`
    /// removes the cap. An event over the cap is dropped, with a `dropped`
    /// notice: the queue holds a rate-limited event for its conflation key
    /// only when quota returns within a second, which an hourly cap used
    /// up does not. Critical events are exempt. Kept for the user's later
    /// connections too.
    pub fn set_user_hourly_limit(&self, user: &UserId, per_hour: Option<NonZeroU32>) {
        self.inner.users.set_per_hour(user, per_hour);
    }

    fn apply_user_subscription(&self, conn: &Arc<ConnShared>, id: &str, filter: Filter) -> bool {
        match conn.subscribe(self, id, filter, None) {
            Ok(_) => true,
            Err(error) => {
                conn.send(error.to_message(id));
                false
            }
        }
    }

    /// The limits of a connection under this hub's configuration.
    pub fn default_limits(&self) -> ConnectionLimits {
        ConnectionLimits::from(&self.inner.config.limits)
    }

    /// The newest offset (what a client passes as `since` to get only
    /// later events).
    pub fn latest_offset(&self) -> Option<Offset> {
        self.inner.sequencer.lock().history.latest()
    }

    /// True when a subscribe with `since` would replay the history after
    /// it completely now (no `history_gone`): what a transport checks
    /// before telling a reconnecting client its session was recovered.
    pub fn can_replay(&self, since: Offset) -> bool {
        let mut seq = self.inner.sequencer.lock();
        seq.history.expire(Instant::now());
        let complete = seq.history.since(since).is_ok();
        complete
    }

    /// Stops accepting connections and events and closes every connection
    /// after its queued frames are sent (close 1001).
    pub fn shutdown(&self) {
        self.inner.closed.store(true, Ordering::Release);
        for queue in self.inner.broadcaster.queues() {
            queue.close_after_flush(CloseCode::GoingAway);
        }
    }

    /// The ingest has loaded the history it reloads at start (and handed
    /// out what it re-delivers live): clients are admitted from now on
    /// ([`HubConfig::await_history`]). [`run_source`](crate::ingest::run_source)
    /// calls it when its source reports
    /// [`Connected`](crate::ingest::IngestItem::Connected).
    pub fn history_loaded(&self) {
        self.inner.history_ready.store(true, Ordering::Release);
    }

    /// Whether clients are admitted: false only while
    /// [`HubConfig::await_history`] waits for [`Hub::history_loaded`].
    pub fn is_history_loaded(&self) -> bool {
        self.inner.history_ready.load(Ordering::Acquire)
    }

    /// Open connections (cheap: no stats snapshot).
    pub fn connection_count(&self) -> usize {
        self.inner.broadcaster.connection_count()
    }

    /// Counts a connection dropped at the write deadline (by its session).
    pub(crate) fn count_write_timeout(&self) {
        DeliveryCounters::add(&self.inner.counters.write_timeouts, 1);
    }

    /// True after [`Hub::shutdown`].
    pub fn is_shut_down(&self) -> bool {
        self.inner.closed.load(Ordering::Acquire)
    }

    /// Registers the ingest source `name`: from now on it shows in stats,
    /// and `/ready` waits for it while it is disconnected. Returns its
    /// counters, the same ones for every registration of the name.
    /// [`run_source`](crate::ingest::run_source) registers the source it
    /// runs; a transport that publishes directly (HTTP) registers itself.
    pub fn register_source(&self, name: &str) -> Arc<SourceCounters> {
        let mut sources = self.inner.sources.lock();
        if let Some(found) = sources.iter().find(|s| s.name() == name) {
            return found.clone();
        }
        let counters = Arc::new(SourceCounters::new(name));
        sources.push(counters.clone());
        counters
    }

    /// The counters of the registered source `name`, if there is one.
    pub fn source_counters(&self, name: &str) -> Option<Arc<SourceCounters>> {
        let sources = self.inner.sources.lock();
        sources.iter().find(|s| s.name() == name).cloned()
    }

    /// Per-source ingest counts.
    pub fn source_stats(&self) -> Vec<SourceStats> {
        self.inner
            .sources
            .lock()
            .iter()
            .map(|s| s.snapshot())
            .collect()
    }

    /// True when every registered ingest source is connected.
    pub fn sources_ready(&self) -> bool {
        self.inner.sources.lock().iter().all(|s| s.is_connected())
    }

    fn disconnect(&self, conn: ConnId, user: Option<&UserId>) {
        let inner = &*self.inner;
        inner.router.disconnect(conn);
        if let Some(queue) = inner.broadcaster.unregister(conn) {
            queue.close(CloseCode::GoingAway, None);
        }
        inner.users.leave(user, conn);
    }
}
