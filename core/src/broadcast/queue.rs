//! [`ConnectionQueue`]: one connection's outbound queue, and
//! [`FrameReceiver`], the end its transport reads.
//!
//! Publishers push from any thread without waiting on the socket; the
//! connection's writer pulls with [`FrameReceiver::recv`], which decides
//! what goes out next: protocol messages, then history replay (offset
//! order), then urgent events one by one, then a `dropped` notice, then one
//! batch of the rest (higher priority first, then offset). Batching,
//! conflation and the slow-consumer policy all live here, behind one lock
//! per connection, so one connection never waits on another.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use parking_lot::Mutex;
use rustc_hash::FxHashMap;
use tokio::sync::Notify;

use super::counters::DeliveryCounters;
use super::frame::{EventFrame, PreparedEvent};
use super::rate::RateLimiter;
use crate::model::{Offset, Priority, SubId, Tier};
use crate::protocol::{CloseCode, ErrorCode, ServerMessage};

/// Longest an event is held for rate-limit quota (latest wins per key);
/// beyond it, the event is dropped with a `dropped` notice.
const MAX_CONFLATION_WAIT: Duration = Duration::from_secs(1);

/// Batching and capacity settings of a queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QueueSettings {
    /// Most events held (urgent, batched and conflated together).
    pub capacity: usize,
    /// How long the first batched event may wait for company; zero sends
    /// whatever is queued whenever the writer is ready.
    pub batch_window: Duration,
    /// Most events in one batch frame.
    pub max_batch: usize,
    /// Most event bytes in one batch frame (at least one event per batch).
    pub max_batch_bytes: usize,
}

impl Default for QueueSettings {
    fn default() -> Self {
        Self {
            capacity: 4096,
            batch_window: Duration::from_millis(100),
            max_batch: 50,
            max_batch_bytes: 64 * 1024,
        }
    }
}

/// What a transport writes next.
#[derive(Debug, Clone)]
pub enum Outbound {
    /// A protocol message (`subscribed`, `dropped`, `pong`, `error`, ...).
    Message(ServerMessage),
    /// One event, sent on its own.
    Event(EventFrame),
    /// Several events in one write (`batch` frame on WebSocket).
    Batch(Vec<EventFrame>),
    /// Close the connection with this code; nothing follows.
    Close(CloseCode),
}

/// How a pushed event is treated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Urgency {
    /// Batched and rate-limited.
    Normal,
    /// Sent at once, ahead of batches, exempt from rate limits (critical
    /// events and the `priority_first` strategy).
    Urgent,
}

/// What became of a pushed event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PushOutcome {
    /// Queued for delivery.
    Queued,
    /// Held under the rate limit, to be sent when it allows (latest wins).
    Conflated,
    /// Dropped (rate limit, or a full queue); the client gets `dropped`.
    Dropped,
    /// The queue overflowed with high events: the connection is closing.
    SlowConsumer,
    /// The connection is closed; nothing was queued.
    Closed,
}

type ConflationKey = (Box<str>, Box<str>, Tier);

#[derive(Default)]
struct State {
    messages: VecDeque<ServerMessage>,
    replay: VecDeque<(Arc<PreparedEvent>, SubId)>,
    urgent: VecDeque<EventFrame>,
    /// Low, medium, high; each in offset order.
    lanes: [VecDeque<EventFrame>; 3],
    lane_bytes: usize,
    /// Rate-limited events waiting for the limit, by offset, one per key.
    conflated: BTreeMap<Offset, EventFrame>,
    conflated_keys: FxHashMap<ConflationKey, Offset>,
    /// Events dropped since the last notice, and the resume point.
    dropped: Option<(u64, Offset)>,
    /// When the oldest batched event was queued (the batch window's start).
    oldest_batched: Option<Instant>,
    /// Set when closing: drain first (shutdown) or not.
    close: Option<(CloseCode, bool)>,
    /// The receiver emitted `Close` or was dropped.
    finished: bool,
}

impl State {
    fn len(&self) -> usize {
        self.urgent.len()
            + self.lanes.iter().map(VecDeque::len).sum::<usize>()
            + self.conflated.len()
    }

    fn note_drop(&mut self, offset: Offset) {
        let (count, since) = self.dropped.get_or_insert((0, offset.predecessor()));
        *count += 1;
        *since = (*since).min(offset.predecessor());
    }

    fn push_lane(&mut self, frame: EventFrame) {
        let lane = frame.priority().index().min(2);
        self.lane_bytes += frame.bytes.len();
        self.oldest_batched.get_or_insert_with(Instant::now);
        self.lanes[lane].push_back(frame);
    }

    fn pop_lane_front(&mut self, lane: usize) -> Option<EventFrame> {
        let frame = self.lanes[lane].pop_front()?;
        self.lane_bytes -= frame.bytes.len();
        Some(frame)
    }

    fn batched_len(&self) -> usize {
        self.lanes.iter().map(VecDeque::len).sum()
    }

    /// Gives back the memory of a burst: an idle connection should not keep
    /// the capacity its busiest moment needed.
    fn shrink_if_idle(&mut self) {
        const KEEP: usize = 16;
        for lane in &mut self.lanes {
            if lane.is_empty() && lane.capacity() > KEEP * 4 {
                lane.shrink_to(KEEP);
            }
        }
    }
}

/// One connection's outbound queue.
pub struct ConnectionQueue {
    state: Mutex<State>,
    notify: Notify,
    settings: QueueSettings,
    limiter: Option<Arc<RateLimiter>>,
    counters: Arc<DeliveryCounters>,
}

impl ConnectionQueue {
    /// A queue and its receiving end. `limiter` is shared by all the
    /// connections of one user; `None` disables rate limiting.
    pub fn new(
        settings: QueueSettings,
        limiter: Option<Arc<RateLimiter>>,
        counters: Arc<DeliveryCounters>,
    ) -> (Arc<Self>, FrameReceiver) {
        let queue = Arc::new(Self {
            state: Mutex::new(State::default()),
            notify: Notify::new(),
            settings,
            limiter,
            counters,
        });
        let receiver = FrameReceiver {
            queue: queue.clone(),
            ready: VecDeque::new(),
        };
        (queue, receiver)
    }

    /// Queues one event frame and wakes the writer. Never blocks on the
    /// connection's socket.
    pub fn push(&self, frame: EventFrame, urgency: Urgency) -> PushOutcome {
        let outcome = self.push_quiet(frame, urgency);
        self.wake();
        outcome
    }

    /// Wakes the connection's writer (after [`push_quiet`](Self::push_quiet)).
    pub fn wake(&self) {
        self.notify.notify_one();
    }

    /// Queues one event frame without waking the writer: a burst of events
    /// then goes out in one write, after one [`wake`](Self::wake).
    pub fn push_quiet(&self, frame: EventFrame, urgency: Urgency) -> PushOutcome {
        {
            let mut state = self.state.lock();
            if state.close.is_some() || state.finished {
                return PushOutcome::Closed;
            }
            if urgency == Urgency::Normal && frame.priority() != Priority::Critical {
                self.push_normal(&mut state, frame)
            } else {
                match self.admit(&mut state, &frame) {
                    Ok(()) => {
                        state.urgent.push_back(frame);
                        PushOutcome::Queued
                    }
                    Err(refused) => refused,
                }
            }
        }
    }

    fn push_normal(&self, state: &mut State, frame: EventFrame) -> PushOutcome {
        let key = frame.prepared.event.conflation_key();
        if let Some(wait) = self.limiter.as_ref().and_then(|l| l.check().err()) {
            DeliveryCounters::add(&self.counters.rate_limited, 1);
            // Held events wait for quota; one that would wait long (an
            // hourly quota used up) is dropped instead of going out stale.
            let held = key.filter(|_| wait <= MAX_CONFLATION_WAIT);
            let Some((symbol, pattern, tier)) = held else {
                DeliveryCounters::add(&self.counters.dropped_rate_limit, 1);
                state.note_drop(frame.offset());
                return PushOutcome::Dropped;
            };
            let key: ConflationKey = (symbol.into(), pattern.into(), tier);
            if let Some(old) = state.conflated_keys.insert(key, frame.offset()) {
                state.conflated.remove(&old);
                DeliveryCounters::add(&self.counters.conflated, 1);
            } else if let Err(refused) = self.admit(state, &frame) {
                return refused;
            }
            state.conflated.insert(frame.offset(), frame);
            return PushOutcome::Conflated;
        }
        if let Some((symbol, pattern, tier)) = key {
            // A newer event supersedes one still held for the same key.
            if !state.conflated.is_empty() {
                let key: ConflationKey = (symbol.into(), pattern.into(), tier);
                if let Some(old) = state.conflated_keys.remove(&key) {
                    state.conflated.remove(&old);
                    DeliveryCounters::add(&self.counters.conflated, 1);
                }
            }
        }
        match self.admit(state, &frame) {
            Ok(()) => {
                state.push_lane(frame);
                PushOutcome::Queued
            }
            Err(refused) => refused,
        }
    }

    /// Makes room for `frame` under the slow-consumer policy, or says why
    /// it cannot be queued.
    fn admit(&self, state: &mut State, frame: &EventFrame) -> Result<(), PushOutcome> {
        match self.make_room(state, frame.priority()) {
            Some(()) => Ok(()),
            None if state.close.is_some() => Err(PushOutcome::SlowConsumer),
            None => {
                self.count_drop(frame.priority());
                state.note_drop(frame.offset());
                Err(PushOutcome::Dropped)
            }
        }
    }

    /// Frees a slot for an event of `incoming` priority when the queue is
    /// full: drops the oldest low event, then the oldest medium one. When
    /// only more important events are queued, a low or medium incoming
    /// event is refused (`None`), and a high or critical one closes the
    /// connection as a slow consumer.
    fn make_room(&self, state: &mut State, incoming: Priority) -> Option<()> {
        if state.len() < self.settings.capacity {
            return Some(());
        }
        for lane in [Priority::Low, Priority::Medium] {
            if incoming <= lane {
                // The incoming event is no more important than what would go.
                return None;
            }
            if let Some(victim) = state.pop_lane_front(lane.index()) {
                self.count_drop(lane);
                state.note_drop(victim.offset());
                return Some(());
            }
        }
        self.close_slow_consumer(state);
        None
    }

    fn count_drop(&self, priority: Priority) {
        let counter = match priority {
            Priority::Low => &self.counters.dropped_low,
            _ => &self.counters.dropped_medium,
        };
        DeliveryCounters::add(counter, 1);
    }

    fn close_slow_consumer(&self, state: &mut State) {
        DeliveryCounters::add(&self.counters.slow_consumer_closes, 1);
        Self::close_locked(state, CloseCode::SlowConsumer);
        state.messages.push_back(ServerMessage::error(
            ErrorCode::SlowConsumer,
            "the connection does not read fast enough",
            None,
        ));
    }

    fn close_locked(state: &mut State, code: CloseCode) {
        state.urgent.clear();
        state.lanes.iter_mut().for_each(VecDeque::clear);
        state.lane_bytes = 0;
        state.replay.clear();
        state.conflated.clear();
        state.conflated_keys.clear();
        state.dropped = None;
        state.messages.clear();
        state.close = Some((code, false));
    }

    /// Queues a protocol message; it goes out before any event.
    pub fn push_message(&self, message: ServerMessage) {
        {
            let mut state = self.state.lock();
            if state.close.is_some() || state.finished {
                return;
            }
            state.messages.push_back(message);
        }
        self.notify.notify_one();
    }

    /// Queues history events to replay for subscription `sub`, in offset
    /// order, ahead of live events.
    pub fn push_replay(&self, events: impl IntoIterator<Item = Arc<PreparedEvent>>, sub: &SubId) {
        {
            let mut state = self.state.lock();
            if state.close.is_some() || state.finished {
                return;
            }
            state
                .replay
                .extend(events.into_iter().map(|e| (e, sub.clone())));
        }
        self.notify.notify_one();
    }

    /// Closes at once: pending events are discarded, `message` (if any) is
    /// the last thing sent, then `Close(code)`.
    pub fn close(&self, code: CloseCode, message: Option<ServerMessage>) {
        {
            let mut state = self.state.lock();
            if state.close.is_some() || state.finished {
                return;
            }
            Self::close_locked(&mut state, code);
            state.messages.extend(message);
        }
        self.notify.notify_one();
    }

    /// Closes after everything queued has been sent (graceful shutdown).
    pub fn close_after_flush(&self, code: CloseCode) {
        {
            let mut state = self.state.lock();
            if state.close.is_some() || state.finished {
                return;
            }
            state.close = Some((code, true));
        }
        self.notify.notify_one();
    }

    /// True once closing has started or the receiver is gone.
    pub fn is_closed(&self) -> bool {
        let state = self.state.lock();
        state.close.is_some() || state.finished
    }

    /// Events held right now.
    pub fn len(&self) -> usize {
        self.state.lock().len()
    }

    /// True when no event is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// What the receiver should do after looking at the queue.
enum Step {
    Emit,
    Finished,
    /// Nothing to send yet; wait for a push or until the instant.
    Wait(Option<Instant>),
}

/// The receiving end of a [`ConnectionQueue`], owned by the connection's
/// writer.
pub struct FrameReceiver {
    queue: Arc<ConnectionQueue>,
    /// Outbound items already taken from the queue in one step.
    ready: VecDeque<Outbound>,
}

impl FrameReceiver {
    /// The next thing to write, waiting for it if needed; `None` after
    /// `Close` was returned.
    pub async fn recv(&mut self) -> Option<Outbound> {
        loop {
            if let Some(out) = self.ready.pop_front() {
                return Some(out);
            }
            match self.step() {
                Step::Emit => continue,
                Step::Finished => return None,
                Step::Wait(None) => self.queue.notify.notified().await,
                Step::Wait(Some(at)) => {
                    let sleep = tokio::time::sleep_until(at);
                    tokio::select! {
                        () = self.queue.notify.notified() => {}
                        () = sleep => {}
                    }
                }
            }
        }
    }

    /// Whatever can be sent right now, without waiting (also used by
    /// transports that flush in a loop).
    pub fn try_recv(&mut self) -> Option<Outbound> {
        loop {
            if let Some(out) = self.ready.pop_front() {
                return Some(out);
            }
            match self.step() {
                Step::Emit => continue,
                Step::Finished | Step::Wait(_) => return None,
            }
        }
    }

    fn step(&mut self) -> Step {
        let q = &*self.queue;
        let mut state = q.state.lock();
        if state.finished {
            return Step::Finished;
        }
        if let Some(message) = state.messages.pop_front() {
            self.ready.push_back(Outbound::Message(message));
            return Step::Emit;
        }
        if let Some(ready) = self.replay_batch(&mut state) {
            self.ready.push_back(ready);
            return Step::Emit;
        }
        let limit_wait = self.release_conflated(&mut state);
        if let Some(frame) = state.urgent.pop_front() {
            self.delivered(std::slice::from_ref(&frame));
            self.ready.push_back(Outbound::Event(frame));
            return Step::Emit;
        }
        if let Some((count, since)) = state.dropped.take() {
            self.ready
                .push_back(Outbound::Message(ServerMessage::Dropped { count, since }));
            return Step::Emit;
        }
        let draining = state.close.is_some();
        if state.batched_len() > 0 {
            let due = state.oldest_batched.map(|t| t + q.settings.batch_window);
            let full = state.batched_len() >= q.settings.max_batch
                || state.lane_bytes >= q.settings.max_batch_bytes;
            if draining || full || due.is_none_or(|d| d <= Instant::now()) {
                let batch = self.take_batch(&mut state);
                self.ready.push_back(batch);
                return Step::Emit;
            }
            return Step::Wait(earliest(due, limit_wait));
        }
        if let Some((code, _)) = state
            .close
            .filter(|(_, drain)| !drain || state.conflated.is_empty())
        {
            state.finished = true;
            self.ready.push_back(Outbound::Close(code));
            return Step::Emit;
        }
        Step::Wait(limit_wait)
    }

    fn replay_batch(&self, state: &mut State) -> Option<Outbound> {
        if state.replay.is_empty() {
            return None;
        }
        let n = state.replay.len().min(self.queue.settings.max_batch.max(1));
        let frames: Vec<EventFrame> = state
            .replay
            .drain(..n)
            .map(|(prepared, sub)| EventFrame {
                bytes: prepared.frame_for(std::slice::from_ref(&sub)),
                prepared,
            })
            .collect();
        DeliveryCounters::add(&self.queue.counters.replayed, frames.len() as u64);
        Some(self.package(frames))
    }

    /// Moves held events whose turn the rate limit now allows into the
    /// lanes; returns when to look again if some must still wait.
    fn release_conflated(&self, state: &mut State) -> Option<Instant> {
        let limiter = self.queue.limiter.as_ref()?;
        while let Some(entry) = state.conflated.first_entry() {
            if let Err(wait) = limiter.check() {
                return Some(Instant::now() + wait);
            }
            let frame = entry.remove();
            if let Some((s, p, t)) = frame.prepared.event.conflation_key() {
                state
                    .conflated_keys
                    .remove(&(Box::from(s), Box::from(p), t));
            }
            state.push_lane(frame);
        }
        None
    }

    /// Takes one batch: highest priority first, each lane in offset order,
    /// up to `max_batch` events and `max_batch_bytes` (at least one event).
    fn take_batch(&self, state: &mut State) -> Outbound {
        let settings = self.queue.settings;
        let mut frames = Vec::new();
        let mut bytes = 0;
        'lanes: for lane in (0..3).rev() {
            while let Some(front) = state.lanes[lane].front() {
                let size = front.bytes.len();
                let over = frames.len() >= settings.max_batch
                    || (!frames.is_empty() && bytes + size > settings.max_batch_bytes);
                if over {
                    break 'lanes;
                }
                bytes += size;
                frames.extend(state.pop_lane_front(lane));
            }
        }
        // What remains has waited its window already: it goes next time.
        if state.batched_len() == 0 {
            state.oldest_batched = None;
            state.shrink_if_idle();
        }
        self.delivered(&frames);
        self.package(frames)
    }

    /// One event goes out as an `event` frame (its shared bytes, no copy);
    /// several as a batch.
    fn package(&self, mut frames: Vec<EventFrame>) -> Outbound {
        if frames.len() == 1 {
            if let Some(frame) = frames.pop() {
                return Outbound::Event(frame);
            }
        }
        DeliveryCounters::add(&self.queue.counters.batches, 1);
        Outbound::Batch(frames)
    }

    fn delivered(&self, frames: &[EventFrame]) {
        let counters = &self.queue.counters;
        DeliveryCounters::add(&counters.delivered, frames.len() as u64);
        let now = std::time::Instant::now();
        for f in frames {
            counters
                .queue_latency
                .record(now.saturating_duration_since(f.prepared.accepted_at));
        }
    }
}

fn earliest(a: Option<Instant>, b: Option<Instant>) -> Option<Instant> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

impl std::fmt::Debug for FrameReceiver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FrameReceiver")
            .field("ready", &self.ready.len())
            .finish_non_exhaustive()
    }
}

impl Drop for FrameReceiver {
    fn drop(&mut self) {
        let mut state = self.queue.state.lock();
        state.finished = true;
        ConnectionQueue::close_locked(&mut state, CloseCode::GoingAway);
    }
}
