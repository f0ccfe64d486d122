//! [`State`]: what one connection's queue holds, each part with its
//! weight in items and bytes, kept exact on every push and pop so that the
//! bounds of [`QueueSettings`] are checked with a few integer comparisons.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;

use rustc_hash::FxHashMap;
use tokio::time::Instant;

use super::frame::{EventFrame, PreparedEvent};
use super::settings::QueueSettings;
use crate::model::{ConflationKey, Offset, SubId};
use crate::protocol::json_len;
use crate::protocol::{CloseCode, ServerMessage};

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
    /// The newest offset this queue has seen (queued, held, dropped or
    /// replayed): the safe resume offset when nothing is pending.
    high: Option<Offset>,
    /// When the oldest batched event was queued (the batch window's start).
    pub(super) oldest_batched: Option<Instant>,
    /// Set when closing: drain first (shutdown) or not.
    pub(super) close: Option<(CloseCode, bool)>,
    /// The receiver emitted `Close` or was dropped.
    pub(super) finished: bool,
}

/// What a queue holds, for tests.
#[cfg(test)]
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

    /// Notes that the queue has seen `offset`.
    fn saw(&mut self, offset: Offset) {
        self.high = Some(self.high.map_or(offset, |high| high.max(offset)));
    }

    /// The oldest event still to be sent (queued, held for the rate limit,
    /// or to replay). Every part is kept in offset order, so this is a few
    /// comparisons.
    fn oldest_pending(&self) -> Option<Offset> {
        let fronts = [
            self.urgent.front().map(EventFrame::offset),
            self.replay.front().map(|(event, _)| event.offset),
            self.conflated.first_key_value().map(|(offset, _)| *offset),
        ];
        let lanes = self.lanes.iter().map(|l| l.front().map(EventFrame::offset));
        fronts.into_iter().chain(lanes).flatten().min()
    }

    /// The connection's safe resume offset with what is pending now: just
    /// before the oldest event still to be sent, or the newest offset seen
    /// when nothing is.
    pub(super) fn safe_resume(&self) -> Option<Offset> {
        self.oldest_pending().map(Offset::predecessor).or(self.high)
    }

    pub(super) fn note_drop(&mut self, offset: Offset) {
        self.saw(offset);
        let (count, since) = self.dropped.get_or_insert((0, offset.predecessor()));
        *count += 1;
        *since = (*since).min(offset.predecessor());
    }

    pub(super) fn push_urgent(&mut self, frame: EventFrame) {
        self.saw(frame.offset());
        self.urgent_bytes += frame.encoded_len();
        self.urgent.push_back(frame);
    }

    pub(super) fn urgent_front(&self) -> Option<Offset> {
        self.urgent.front().map(EventFrame::offset)
    }

    pub(super) fn pop_urgent(&mut self) -> Option<EventFrame> {
        let frame = self.urgent.pop_front()?;
        self.urgent_bytes -= frame.encoded_len();
        Some(frame)
    }

    /// Queues `frame` in its priority's lane, in offset order (live
    /// events arrive in order; one released by the rate limit may be
    /// older than those queued after it was held).
    pub(super) fn push_lane(&mut self, frame: EventFrame) {
        self.saw(frame.offset());
        let lane = frame.priority().index().min(2);
        self.lane_bytes[lane] += frame.encoded_len();
        self.oldest_batched.get_or_insert_with(Instant::now);
        let queue = &mut self.lanes[lane];
        if queue
            .back()
            .is_none_or(|last| last.offset() < frame.offset())
        {
            queue.push_back(frame);
        } else {
            let at = queue.partition_point(|f| f.offset() < frame.offset());
            queue.insert(at, frame);
        }
    }

    /// The lane whose front event is the oldest of all lanes' fronts, if
    /// that event is older than `before`.
    pub(super) fn oldest_lane(&self, before: Option<Offset>) -> Option<usize> {
        (0..self.lanes.len())
            .filter_map(|lane| Some((self.lanes[lane].front()?.offset(), lane)))
            .filter(|(offset, _)| before.is_none_or(|b| *offset < b))
            .min()
            .map(|(_, lane)| lane)
    }

    pub(super) fn lane_front(&self, lane: usize) -> Option<&EventFrame> {
        self.lanes[lane].front()
    }

    pub(super) fn pop_lane_front(&mut self, lane: usize) -> Option<EventFrame> {
        let frame = self.lanes[lane].pop_front()?;
        self.lane_bytes[lane] -= frame.encoded_len();
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
        self.saw(offset);
        self.conflated_bytes += frame.encoded_len();
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
            self.conflated_bytes -= frame.encoded_len();
        }
    }

    pub(super) fn has_held(&self) -> bool {
        !self.conflated.is_empty()
    }

    /// Takes the oldest held event (to release it into the lanes).
    pub(super) fn take_oldest_held(&mut self) -> Option<EventFrame> {
        let (_, frame) = self.conflated.pop_first()?;
        self.conflated_bytes -= frame.encoded_len();
        if let Some(key) = frame.prepared.event.conflation_key() {
            self.conflated_keys.remove(&key);
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

    /// Queues `events` (in offset order) to replay for `sub`, merged with
    /// the other subscriptions' replays so that the whole replay goes out
    /// in offset order; returns false, queuing nothing, when the replay
    /// bounds leave no room for all of them.
    pub(super) fn push_replay(
        &mut self,
        events: Vec<Arc<PreparedEvent>>,
        sub: &SubId,
        settings: &QueueSettings,
    ) -> bool {
        let size = events
            .iter()
            .fold(0usize, |sum, e| sum.saturating_add(replay_cost(e, sub)));
        let len = self.replay.len().saturating_add(events.len());
        let bytes = self.replay_bytes.saturating_add(size);
        let within =
            len <= settings.replay_capacity.max(1) && bytes <= settings.replay_capacity_bytes;
        // One event larger than the byte bound still goes through alone.
        let alone = self.replay.is_empty() && events.len() == 1;
        if !(within || alone) {
            return false;
        }
        if let Some(last) = events.last() {
            self.saw(last.offset);
        }
        self.replay_bytes = bytes;
        let older = std::mem::take(&mut self.replay);
        self.replay = merge_by_offset(older, events.into_iter().map(|e| (e, sub.clone())));
        true
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
    #[cfg(test)]
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

    /// Batched events were taken: once the lanes are empty, the batch
    /// window starts again with the next event, and a burst's memory is
    /// given back.
    pub(super) fn batch_taken(&mut self) {
        if self.batched_len() == 0 {
            self.oldest_batched = None;
            self.shrink_if_idle();
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

/// Merges two replays, each in offset order, into one in offset order.
fn merge_by_offset(
    older: VecDeque<(Arc<PreparedEvent>, SubId)>,
    newer: impl Iterator<Item = (Arc<PreparedEvent>, SubId)>,
) -> VecDeque<(Arc<PreparedEvent>, SubId)> {
    let mut newer = newer.peekable();
    if older.is_empty() {
        return newer.collect();
    }
    let mut older = older.into_iter().peekable();
    let mut merged = VecDeque::new();
    loop {
        let take_older = match (older.peek(), newer.peek()) {
            (Some(a), Some(b)) => a.0.offset <= b.0.offset,
            (Some(_), None) => true,
            (None, Some(_)) => false,
            (None, None) => return merged,
        };
        let next = if take_older {
            older.next()
        } else {
            newer.next()
        };
        merged.extend(next);
    }
}

/// Shrinks an emptied queue that grew well beyond its usual size.
fn shrink<T>(queue: &mut VecDeque<T>) {
    const KEEP: usize = 16;
    if queue.capacity() > KEEP * 4 {
        queue.shrink_to(KEEP);
    }
}
