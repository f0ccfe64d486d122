//! [`ConnectionQueue`]: one connection's outbound queue, and
//! [`FrameReceiver`], the end its transport reads.
//!
//! Publishers push from any thread without waiting on the socket; the
//! connection's writer pulls with [`FrameReceiver::recv`] (the session:
//! `poll_recv`), which decides what goes out next: protocol messages, then
//! history replay (offset order), then an urgent event with every batched
//! event older than it, then a `dropped` notice, then one batch of the rest
//! once its window ends. Events leave in offset order, each frame with the
//! connection's safe resume offset ([`EventFrame::resume`]). Batching,
//! conflation and the slow-consumer policy all live here, behind one lock
//! per connection, so one connection never waits on another.
//!
//! Every part is bounded in items and bytes ([`QueueSettings`]): events
//! past their bounds go by the slow-consumer policy (drop low, then
//! medium; close 4008 rather than drop high or critical), and a client
//! whose protocol messages or replay pass theirs is closed 4008 at once,
//! all it held freed: those grow only with what the client itself sends.

use std::future::poll_fn;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::time::Instant;

use parking_lot::Mutex;

use super::counters::DeliveryCounters;
use super::frame::{EventFrame, PreparedEvent};
use super::rate::RateLimiter;
use super::settings::QueueSettings;
#[cfg(test)]
use super::state::Held;
use super::state::State;
use super::wakeup::Wakeup;
use crate::model::{Priority, SubId};
use crate::protocol::json_len;
use crate::protocol::{CloseCode, ErrorCode, ServerMessage};

/// Longest an event is held for rate-limit quota (latest wins per key);
/// beyond it, the event is dropped with a `dropped` notice.
const MAX_CONFLATION_WAIT: Duration = Duration::from_secs(1);

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

/// One connection's outbound queue.
pub struct ConnectionQueue {
    state: Mutex<State>,
    wakeup: Wakeup,
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
            wakeup: Wakeup::default(),
            settings,
            limiter,
            counters,
        });
        let receiver = FrameReceiver {
            queue: queue.clone(),
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
        self.wakeup.wake();
    }

    /// Queues one event frame without waking the writer: a burst of events
    /// then goes out in one write, after one [`wake`](Self::wake).
    pub fn push_quiet(&self, frame: EventFrame, urgency: Urgency) -> PushOutcome {
        let mut state = self.state.lock();
        if state.close.is_some() || state.finished {
            return PushOutcome::Closed;
        }
        if urgency == Urgency::Normal && frame.priority() != Priority::Critical {
            self.push_normal(&mut state, frame)
        } else {
            match self.admit(&mut state, &frame) {
                Ok(()) => {
                    state.push_urgent(frame);
                    PushOutcome::Queued
                }
                Err(refused) => refused,
            }
        }
    }

    fn push_normal(&self, state: &mut State, frame: EventFrame) -> PushOutcome {
        let event = &frame.prepared.event;
        let conflates = event.conflates();
        if let Some(wait) = self.limiter.as_ref().and_then(|l| l.check().err()) {
            DeliveryCounters::add(&self.counters.rate_limited, 1);
            // Held events wait for quota; one that would wait long (an
            // hourly quota used up) is dropped instead of going out stale.
            let held = (conflates && wait <= MAX_CONFLATION_WAIT)
                .then(|| event.conflation_key())
                .flatten();
            let Some(key) = held else {
                DeliveryCounters::add(&self.counters.dropped_rate_limit, 1);
                state.note_drop(frame.offset());
                return PushOutcome::Dropped;
            };
            // The newer event takes the older one's place, and is admitted
            // like any other: the older one may have been smaller.
            if state.supersede(&key) {
                DeliveryCounters::add(&self.counters.conflated, 1);
            }
            if let Err(refused) = self.admit(state, &frame) {
                return refused;
            }
            state.hold(key, frame);
            return PushOutcome::Conflated;
        }
        // A newer event supersedes one still held for the same key.
        if conflates && state.has_held() {
            if let Some(key) = event.conflation_key() {
                if state.supersede(&key) {
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
        match self.make_room(state, frame.priority(), frame.encoded_len()) {
            Some(()) => Ok(()),
            None if state.close.is_some() => Err(PushOutcome::SlowConsumer),
            None => {
                self.count_drop(frame.priority());
                state.note_drop(frame.offset());
                Err(PushOutcome::Dropped)
            }
        }
    }

    /// Frees room for an event of `incoming` priority and `size` bytes when
    /// the queue is full (in events or in bytes): drops the oldest low
    /// events, then the oldest medium ones, as many as it takes. When even
    /// dropping every less important event would not make room, a low or
    /// medium incoming event is refused (`None`) and nothing is dropped for
    /// it, and a high or critical one closes the connection as a slow
    /// consumer.
    fn make_room(&self, state: &mut State, incoming: Priority, size: usize) -> Option<()> {
        let settings = &self.settings;
        if state.event_fits(size, settings) {
            return Some(());
        }
        let victims = [Priority::Low, Priority::Medium]
            .into_iter()
            .filter(|lane| *lane < incoming);
        let freeable = victims.clone().fold((0, 0), |(n, b), lane| {
            let (len, bytes) = state.lane_weight(lane.index());
            (n + len, b + bytes)
        });
        if !state.event_fits_without(freeable, size, settings) {
            if incoming >= Priority::High {
                self.close_slow_consumer(state);
            }
            return None;
        }
        for lane in victims {
            while !state.event_fits(size, settings) {
                let Some(victim) = state.pop_lane_front(lane.index()) else {
                    break;
                };
                self.count_drop(lane);
                state.note_drop(victim.offset());
            }
        }
        Some(())
    }

    fn count_drop(&self, priority: Priority) {
        let counter = match priority {
            Priority::Low => &self.counters.dropped_low,
            _ => &self.counters.dropped_medium,
        };
        DeliveryCounters::add(counter, 1);
    }

    /// Closes with 4008: everything held is freed now, and the client's
    /// last message is the `slow_consumer` error.
    fn close_slow_consumer(&self, state: &mut State) {
        DeliveryCounters::add(&self.counters.slow_consumer_closes, 1);
        state.release(CloseCode::SlowConsumer);
        state.push_final_message(ServerMessage::error(
            ErrorCode::SlowConsumer,
            "the connection does not read fast enough",
            None,
        ));
    }

    /// Queues a protocol message; it goes out before any event. A client
    /// that lets messages pile up past the bounds
    /// ([`QueueSettings::message_capacity`] and
    /// [`message_capacity_bytes`](QueueSettings::message_capacity_bytes))
    /// is closed as a slow consumer (4008).
    pub fn push_message(&self, message: ServerMessage) {
        // Measured outside the lock: a `pong` may echo a large `ts`.
        let size = json_len(&message);
        {
            let mut state = self.state.lock();
            if state.close.is_some() || state.finished {
                return;
            }
            if state.message_fits(size, &self.settings) {
                state.push_message(message, size);
            } else {
                self.close_slow_consumer(&mut state);
            }
        }
        self.wakeup.wake();
    }

    /// Queues history events to replay for subscription `sub`, in offset
    /// order, ahead of live events, in place of any replay still pending
    /// for `sub` (a subscription replaced has no use for its old replay).
    /// When the pending replays of all subscriptions would pass the bounds
    /// ([`QueueSettings::replay_capacity`] and
    /// [`replay_capacity_bytes`](QueueSettings::replay_capacity_bytes)), the
    /// connection is closed as a slow consumer (4008).
    pub fn push_replay(&self, events: impl IntoIterator<Item = Arc<PreparedEvent>>, sub: &SubId) {
        {
            let mut state = self.state.lock();
            if state.close.is_some() || state.finished {
                return;
            }
            state.drop_replay(sub);
            let events: Vec<_> = events.into_iter().collect();
            if !events.is_empty() && !state.push_replay(events, sub, &self.settings) {
                self.close_slow_consumer(&mut state);
            }
        }
        self.wakeup.wake();
    }

    /// Drops the replay still pending for subscription `sub` (it was
    /// unsubscribed or replaced without `since`); other subscriptions'
    /// replays are kept in order.
    pub fn drop_replay(&self, sub: &str) {
        let mut state = self.state.lock();
        if state.close.is_none() && !state.finished {
            state.drop_replay(sub);
        }
    }

    /// Closes at once: pending events are discarded, `message` (if any) is
    /// the last thing sent, then `Close(code)`.
    pub fn close(&self, code: CloseCode, message: Option<ServerMessage>) {
        {
            let mut state = self.state.lock();
            if state.close.is_some() || state.finished {
                return;
            }
            state.release(code);
            if let Some(message) = message {
                state.push_final_message(message);
            }
        }
        self.wakeup.wake();
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
        self.wakeup.wake();
    }

    /// True once closing has started or the receiver is gone.
    pub fn is_closed(&self) -> bool {
        let state = self.state.lock();
        state.close.is_some() || state.finished
    }

    /// Everything held right now, in items and bytes.
    #[cfg(test)]
    pub(crate) fn held(&self) -> Held {
        self.state.lock().held()
    }
}

/// What [`FrameReceiver::poll_recv`] found.
#[derive(Debug)]
pub(crate) enum Polled {
    /// The next item (`None` once `Close` was returned).
    Ready(Option<Outbound>),
    /// Nothing yet; poll again on a wake-up, or at `until` at the latest.
    Pending {
        /// When a batch window or the rate limit ends.
        until: Option<Instant>,
    },
}

/// What the receiver should do after looking at the queue.
enum Step {
    Emit(Outbound),
    Finished,
    /// Nothing to send yet; wait for a push or until the instant.
    Wait(Option<Instant>),
}

/// The receiving end of one connection's outbound queue, owned by the
/// connection's writer.
pub struct FrameReceiver {
    queue: Arc<ConnectionQueue>,
}

impl FrameReceiver {
    /// The next thing to write, waiting for it if needed; `None` after
    /// `Close` was returned.
    pub async fn recv(&mut self) -> Option<Outbound> {
        loop {
            let until = poll_fn(|cx| match self.poll_recv(cx) {
                Polled::Ready(out) => Poll::Ready(Ok(out)),
                Polled::Pending { until: Some(at) } => Poll::Ready(Err(at)),
                Polled::Pending { until: None } => Poll::Pending,
            })
            .await;
            match until {
                Ok(out) => return out,
                Err(at) => {
                    let sleep = tokio::time::sleep_until(at);
                    tokio::select! {
                        () = self.queue.wakeup.woken() => {}
                        () = sleep => {}
                    }
                }
            }
        }
    }

    /// The next thing to write if there is one now; otherwise registers
    /// `cx` for the next push and says until when the queue may wait (a
    /// batch window or the rate limit) before it must be polled again.
    /// The session polls this beside its own timer, so a connection holds
    /// one timer, not two.
    pub(crate) fn poll_recv(&mut self, cx: &mut Context<'_>) -> Polled {
        loop {
            match self.step() {
                Step::Emit(out) => return Polled::Ready(Some(out)),
                Step::Finished => return Polled::Ready(None),
                Step::Wait(until) => {
                    // Woken since the last look: look again.
                    if self.queue.wakeup.poll_woken(cx).is_pending() {
                        return Polled::Pending { until };
                    }
                }
            }
        }
    }

    /// Whatever can be sent right now, without waiting (also used by
    /// transports that flush in a loop).
    pub fn try_recv(&mut self) -> Option<Outbound> {
        match self.step() {
            Step::Emit(out) => Some(out),
            Step::Finished | Step::Wait(_) => None,
        }
    }

    fn step(&mut self) -> Step {
        let q = &*self.queue;
        let mut state = q.state.lock();
        if state.finished {
            return Step::Finished;
        }
        if let Some(message) = state.pop_message() {
            return Step::Emit(Outbound::Message(message));
        }
        if let Some(replay) = self.replay_batch(&mut state) {
            return Step::Emit(replay);
        }
        let limit_wait = self.release_conflated(&mut state);
        if let Some(urgent) = self.take_urgent(&mut state) {
            return Step::Emit(urgent);
        }
        if let Some((count, since)) = state.dropped.take() {
            return Step::Emit(Outbound::Message(ServerMessage::Dropped { count, since }));
        }
        let draining = state.close.is_some();
        if state.batched_len() > 0 {
            let due = state.oldest_batched.map(|t| t + q.settings.batch_window);
            let full = state.batched_len() >= q.settings.max_batch
                || state.batched_bytes() >= q.settings.max_batch_bytes;
            if draining || full || due.is_none_or(|d| d <= Instant::now()) {
                return Step::Emit(self.take_batch(&mut state));
            }
            return Step::Wait(earliest(due, limit_wait));
        }
        if let Some((code, _)) = state.close.filter(|(_, drain)| !drain || !state.has_held()) {
            state.finished = true;
            return Step::Emit(Outbound::Close(code));
        }
        Step::Wait(limit_wait)
    }

    fn replay_batch(&self, state: &mut State) -> Option<Outbound> {
        if !state.has_replay() {
            return None;
        }
        let n = self.queue.settings.max_batch.max(1);
        let frames: Vec<EventFrame> = std::iter::from_fn(|| state.pop_replay())
            .take(n)
            .map(|(prepared, sub)| EventFrame::new(prepared, std::slice::from_ref(&sub)))
            .collect();
        DeliveryCounters::add(&self.queue.counters.replayed, frames.len() as u64);
        Some(self.package(frames, state))
    }

    /// An urgent event goes out at once, after the batched events older
    /// than it: a connection receives its events in offset order, so the
    /// offset of the last one it got is always a safe point to resume
    /// from (priority decides when events are sent, not their order).
    fn take_urgent(&self, state: &mut State) -> Option<Outbound> {
        let urgent = state.urgent_front()?;
        let room = self.queue.settings.max_batch.max(1);
        let mut frames = Vec::new();
        while let Some(lane) = state.oldest_lane(Some(urgent)) {
            if frames.len() >= room {
                break;
            }
            frames.extend(state.pop_lane_front(lane));
        }
        // Older batched events beyond one batch go first, on their own.
        if frames.len() < room {
            frames.extend(state.pop_urgent());
        }
        state.batch_taken();
        self.delivered(&frames);
        Some(self.package(frames, state))
    }

    /// Moves held events whose turn the rate limit now allows into the
    /// lanes; returns when to look again if some must still wait.
    fn release_conflated(&self, state: &mut State) -> Option<Instant> {
        let limiter = self.queue.limiter.as_ref()?;
        while state.has_held() {
            if let Err(wait) = limiter.check() {
                return Some(Instant::now() + wait);
            }
            if let Some(frame) = state.take_oldest_held() {
                state.push_lane(frame);
            }
        }
        None
    }

    /// Takes one batch in offset order, up to `max_batch` events and
    /// `max_batch_bytes` (at least one event).
    fn take_batch(&self, state: &mut State) -> Outbound {
        let settings = self.queue.settings;
        let mut frames = Vec::new();
        let mut bytes = 0;
        while let Some(lane) = state.oldest_lane(None) {
            let size = state.lane_front(lane).map_or(0, EventFrame::encoded_len);
            let over = frames.len() >= settings.max_batch
                || (!frames.is_empty() && bytes + size > settings.max_batch_bytes);
            if over {
                break;
            }
            bytes += size;
            frames.extend(state.pop_lane_front(lane));
        }
        // What remains has waited its window already: it goes next time.
        state.batch_taken();
        self.delivered(&frames);
        self.package(frames, state)
    }

    /// One event goes out as an `event` frame (its shared bytes, no copy);
    /// several as a batch. Each frame gets its resume offset: the
    /// connection's safe one once the frames up to it are delivered.
    fn package(&self, mut frames: Vec<EventFrame>, state: &State) -> Outbound {
        // Nothing pending and nothing seen cannot be: these frames were.
        let mut resume = state.safe_resume();
        for frame in frames.iter_mut().rev() {
            frame.resume = resume.unwrap_or(frame.offset());
            // The frames before this one are safe only up to just before it.
            let before = frame.offset().predecessor();
            resume = Some(resume.map_or(before, |r| r.min(before)));
        }
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
        f.debug_struct("FrameReceiver").finish_non_exhaustive()
    }
}

impl Drop for FrameReceiver {
    fn drop(&mut self) {
        let mut state = self.queue.state.lock();
        state.finished = true;
        state.release(CloseCode::GoingAway);
    }
}
