//! [`State`]: what one connection's queue holds, each part with its
//! weight in items and bytes, kept exact on every push and pop so that the
//! bounds of [`QueueSettings`] are checked with a few integer comparisons.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;

use rustc_hash::FxHashMap;
use tokio::time::Instant;

use super::frame::{json_len, EventFrame, PreparedEvent};
use super::settings::QueueSettings;
use crate::model::{Offset, SubId, Tier};
use crate::protocol::{CloseCode, ServerMessage};

/// Symbol, pattern and tier: the events of one key supersede each other
/// while held for the rate limit.
pub(super) type ConflationKey = (Box<str>, Box<str>, Tier);

/// A queue's contents; every field behind the queue's one lock.
#[derive(Default)]
pub(super) struct State {
    /// Protocol messages with their encoded size.
    messages: VecDeque<(ServerMessage, usize)>,
    message_bytes: usize,
    /// History to replay, each subscription's part in offset order.
    replay: VecDeque<(Arc<PreparedEvent>, SubId)>,
    replay_bytes: usize,
    urgent: VecDeque<EventFrame>,
    urgent_bytes: usize,
    /// Low, medium, high; each in offset order.
    lanes: [VecDeque<EventFrame>; 3],
    lane_bytes: [usize; 3],
    /// Rate-limited events waiting for the limit, by offset, one per key.
    conflated: BTreeMap<Offset, EventFrame>,
    conflated_keys: FxHashMap<ConflationKey, Offset>,
    conflated_bytes: usize,
    /// Events dropped since the last notice, and the resume point.
    pub(super) dropped: Option<(u64, Offset)>,
    /// When the oldest batched event was queued (the batch window's start).
    pub(super) oldest_batched: Option<Instant>,
    /// Set when closing: drain first (shutdown) or not.
    pub(super) close: Option<(CloseCode, bool)>,
    /// The receiver emitted `Close` or was dropped.
    pub(super) finished: bool,
}

/// What a queue holds, for tests and diagnostics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Held {
    /// Events (urgent, batched and rate-limit-held).
    pub events: usize,
    /// Their frame bytes.
    pub event_bytes: usize,
    /// Protocol messages.
    pub messages: usize,
    /// Their encoded bytes.
    pub message_bytes: usize,
    /// History events to replay.
    pub replay: usize,
    /// Their frame bytes.
    pub replay_bytes: usize,
}

/// The bytes a replay entry will weigh as a frame.
fn replay_cost(event: &PreparedEvent, sub: &SubId) -> usize {
    event.frame_len(std::slice::from_ref(sub))
}

/// Room for one more item of `size` in a part holding `len` items of
/// `bytes`: an empty part always has room, so that one item larger than
/// the byte bound still goes through.
fn has_room(len: usize, bytes: usize, size: usize, max_len: usize, max_bytes: usize) -> bool {
    len == 0 || (len < max_len && bytes.saturating_add(size) <= max_bytes)
}

impl State {
    /// Events held: urgent, batched and rate-limit-held.
    pub(super) fn event_len(&self) -> usize {
        self.urgent.len() + self.batched_len() + self.conflated.len()
    }

    /// Frame bytes of the events held.
    pub(super) fn event_bytes(&self) -> usize {
        self.urgent_bytes + self.batched_bytes() + self.conflated_bytes
    }

    /// Whether one more event of `size` bytes stays within the bounds.
    pub(super) fn event_fits(&self, size: usize, settings: &QueueSettings) -> bool {
        let len = self.event_len();
        // The item bound holds even for an empty queue (a capacity of 0
        // refuses everything), as it always has.
        len < settings.capacity
            && has_room(
                len,
                self.event_bytes(),
                size,
                usize::MAX,
                settings.capacity_bytes,
            )
    }

    /// Events and bytes of `lane`.
    pub(super) fn lane_weight(&self, lane: usize) -> (usize, usize) {
        (self.lanes[lane].len(), self.lane_bytes[lane])
    }

    /// Whether an event of `size` would fit once `freed` (items, bytes)
    /// are gone.
    pub(super) fn event_fits_without(
        &self,
        freed: (usize, usize),
        size: usize,
        settings: &QueueSettings,
    ) -> bool {
        let len = self.event_len().saturating_sub(freed.0);
        let bytes = self.event_bytes().saturating_sub(freed.1);
        len < settings.capacity && has_room(len, bytes, size, usize::MAX, settings.capacity_bytes)
    }

    pub(super) fn note_drop(&mut self, offset: Offset) {
        let (count, since) = self.dropped.get_or_insert((0, offset.predecessor()));
        *count += 1;
        *since = (*since).min(offset.predecessor());
    }

    pub(super) fn push_urgent(&mut self, frame: EventFrame) {
        self.urgent_bytes += frame.bytes.len();
        self.urgent.push_back(frame);
    }

    pub(super) fn pop_urgent(&mut self) -> Option<EventFrame> {
        let frame = self.urgent.pop_front()?;
        self.urgent_bytes -= frame.bytes.len();
        Some(frame)
    }

    pub(super) fn push_lane(&mut self, frame: EventFrame) {
        let lane = frame.priority().index().min(2);
        self.lane_bytes[lane] += frame.bytes.len();
        self.oldest_batched.get_or_insert_with(Instant::now);
        self.lanes[lane].push_back(frame);
    }

    pub(super) fn lane_front(&self, lane: usize) -> Option<&EventFrame> {
        self.lanes[lane].front()
    }

    pub(super) fn pop_lane_front(&mut self, lane: usize) -> Option<EventFrame> {
        let frame = self.lanes[lane].pop_front()?;
        self.lane_bytes[lane] -= frame.bytes.len();
        Some(frame)
    }

    pub(super) fn batched_len(&self) -> usize {
        self.lanes.iter().map(VecDeque::len).sum()
    }

    pub(super) fn batched_bytes(&self) -> usize {
        self.lane_bytes.iter().sum()
    }

    /// Holds `frame` for the rate limit under `key`.
    pub(super) fn hold(&mut self, key: ConflationKey, frame: EventFrame) {
        let offset = frame.offset();
        self.conflated_bytes += frame.bytes.len();
        if let Some(old) = self.conflated_keys.insert(key, offset) {
            // Callers release the key first; never leave its event behind.
            self.remove_held(old);
        }
        self.conflated.insert(offset, frame);
    }

    /// Drops the event held under `key`, if any; true when there was one.
    pub(super) fn supersede(&mut self, key: &ConflationKey) -> bool {
        match self.conflated_keys.remove(key) {
            Some(old) => {
                self.remove_held(old);
                true
            }
            None => false,
        }
    }

    fn remove_held(&mut self, offset: Offset) {
        if let Some(frame) = self.conflated.remove(&offset) {
            self.conflated_bytes -= frame.bytes.len();
        }
    }

    pub(super) fn has_held(&self) -> bool {
        !self.conflated.is_empty()
    }

    /// Takes the oldest held event (to release it into the lanes).
    pub(super) fn take_oldest_held(&mut self) -> Option<EventFrame> {
        let (_, frame) = self.conflated.pop_first()?;
        self.conflated_bytes -= frame.bytes.len();
        if let Some((s, p, t)) = frame.prepared.event.conflation_key() {
            self.conflated_keys.remove(&(Box::from(s), Box::from(p), t));
        }
        Some(frame)
    }

    /// Whether one more message of `size` encoded bytes stays within the
    /// bounds.
    pub(super) fn message_fits(&self, size: usize, settings: &QueueSettings) -> bool {
        has_room(
            self.messages.len(),
            self.message_bytes,
            size,
            settings.message_capacity,
            settings.message_capacity_bytes,
        )
    }

    /// Queues `message`, whose encoded size is `size`.
    pub(super) fn push_message(&mut self, message: ServerMessage, size: usize) {
        self.message_bytes += size;
        self.messages.push_back((message, size));
    }

    /// Queues `message` past the bounds: the last words of a closing
    /// connection, whose queue was just emptied.
    pub(super) fn push_final_message(&mut self, message: ServerMessage) {
        let size = json_len(&message);
        self.push_message(message, size);
    }

    pub(super) fn pop_message(&mut self) -> Option<ServerMessage> {
        let (message, size) = self.messages.pop_front()?;
        self.message_bytes -= size;
        if self.messages.is_empty() {
            shrink(&mut self.messages);
        }
        Some(message)
    }

    /// Drops the replay still pending for `sub`; the others keep their
    /// order.
    pub(super) fn drop_replay(&mut self, sub: &str) {
        if self.replay.is_empty() {
            return;
        }
        let mut freed = 0;
        self.replay.retain(|(event, id)| {
            let keep = &**id != sub;
            if !keep {
                freed += replay_cost(event, id);
            }
            keep
        });
        self.replay_bytes -= freed;
        if self.replay.is_empty() {
            shrink(&mut self.replay);
        }
    }

    /// Queues `event` to replay for `sub`, or returns false when the
    /// replay bounds leave no room for it.
    pub(super) fn push_replay(
        &mut self,
        event: Arc<PreparedEvent>,
        sub: &SubId,
        settings: &QueueSettings,
    ) -> bool {
        let size = replay_cost(&event, sub);
        let room = has_room(
            self.replay.len(),
            self.replay_bytes,
            size,
            settings.replay_capacity,
            settings.replay_capacity_bytes,
        );
        if room {
            self.replay_bytes += size;
            self.replay.push_back((event, sub.clone()));
        }
        room
    }

    pub(super) fn has_replay(&self) -> bool {
        !self.replay.is_empty()
    }

    pub(super) fn pop_replay(&mut self) -> Option<(Arc<PreparedEvent>, SubId)> {
        let (event, sub) = self.replay.pop_front()?;
        self.replay_bytes -= replay_cost(&event, &sub);
        if self.replay.is_empty() {
            // A full replay can be 100,000 entries: give that memory back.
            shrink(&mut self.replay);
        }
        Some((event, sub))
    }

    /// Empties every part and frees its memory at once (not just its
    /// items: a closing connection may linger until its socket gives up),
    /// then marks the queue closing with `code`.
    pub(super) fn release(&mut self, code: CloseCode) {
        let finished = self.finished;
        *self = Self {
            close: Some((code, false)),
            finished,
            ..Self::default()
        };
    }

    /// What is held right now.
    pub(super) fn held(&self) -> Held {
        Held {
            events: self.event_len(),
            event_bytes: self.event_bytes(),
            messages: self.messages.len(),
            message_bytes: self.message_bytes,
            replay: self.replay.len(),
            replay_bytes: self.replay_bytes,
        }
    }

    /// Gives back the memory of a burst: an idle connection should not keep
    /// the capacity its busiest moment needed.
    pub(super) fn shrink_if_idle(&mut self) {
        for lane in &mut self.lanes {
            if lane.is_empty() {
                shrink(lane);
            }
        }
    }
}

/// Shrinks an emptied queue that grew well beyond its usual size.
fn shrink<T>(queue: &mut VecDeque<T>) {
    const KEEP: usize = 16;
    if queue.capacity() > KEEP * 4 {
        queue.shrink_to(KEEP);
    }
}
