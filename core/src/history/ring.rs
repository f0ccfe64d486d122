//! [`History`]: the ring of recent events and its floor.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Instant;

use super::{HistoryConfig, HistoryGone};
use crate::broadcast::PreparedEvent;
use crate::model::Offset;

/// The ring of recent events.
#[derive(Debug)]
pub struct History {
    ring: VecDeque<Arc<PreparedEvent>>,
    /// Events after this offset are all in the ring; `None` until known
    /// (external offsets before the first event).
    floor: Option<Offset>,
    config: HistoryConfig,
}

impl History {
    /// An empty history whose completeness starts after `floor` (the node's
    /// `<epoch>-0`; `None` when offsets come from a broker stream).
    pub fn new(config: HistoryConfig, floor: Option<Offset>) -> Self {
        Self {
            ring: VecDeque::new(),
            floor,
            config,
        }
    }

    /// Appends an event (offsets must increase) and evicts what no longer
    /// fits.
    pub fn push(&mut self, event: Arc<PreparedEvent>) {
        self.floor.get_or_insert(event.offset.predecessor());
        let accepted_at = event.accepted_at;
        self.ring.push_back(event);
        while self.ring.len() > self.config.capacity {
            self.evict_front();
        }
        // The newest event was accepted just now: no clock read needed.
        self.expire(accepted_at);
    }

    /// Evicts events older than `max_age` at `now`.
    pub fn expire(&mut self, now: Instant) {
        while let Some(front) = self.ring.front() {
            if now.saturating_duration_since(front.accepted_at) <= self.config.max_age {
                break;
            }
            self.evict_front();
        }
    }

    fn evict_front(&mut self) {
        if let Some(e) = self.ring.pop_front() {
            self.floor = Some(e.offset);
        }
    }

    /// The newest offset accepted (or the floor when the ring is empty).
    pub fn latest(&self) -> Option<Offset> {
        self.ring.back().map(|e| e.offset).or(self.floor)
    }

    /// Whether `since` lies beyond every offset this history has reached
    /// while the history is known to be complete up to there: an offset
    /// the ingest has not read yet, rather than one it has lost.
    pub fn is_behind(&self, since: Offset) -> bool {
        self.floor.is_some() && self.latest().is_some_and(|latest| since > latest)
    }

    /// Events held right now.
    pub(crate) fn len(&self) -> usize {
        self.ring.len()
    }

    /// Every held event after `since`, oldest first, or [`HistoryGone`]
    /// when events after `since` may have been evicted or `since` is not an
    /// offset this history has reached.
    pub fn since(
        &self,
        since: Offset,
    ) -> Result<impl Iterator<Item = &Arc<PreparedEvent>> + '_, HistoryGone> {
        let complete =
            self.floor.is_some_and(|f| since >= f) && self.latest().is_some_and(|l| since <= l);
        if !complete {
            return Err(HistoryGone {
                since,
                floor: self.floor,
                latest: self.latest(),
            });
        }
        let start = self.ring.partition_point(|e| e.offset <= since);
        Ok(self.ring.range(start..))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Event;
    use bytes::Bytes;
    use std::time::Duration;

    fn event(seq: u64) -> Arc<PreparedEvent> {
        let e = Event::from_json(Bytes::from_static(br#"{"event_type":"x"}"#), None, 1024).unwrap();
        Arc::new(PreparedEvent::new(e, Offset::new(7, seq)))
    }

    fn offsets(h: &History, since: Offset) -> Result<Vec<u64>, HistoryGone> {
        Ok(h.since(since)?.map(|e| e.offset.minor).collect())
    }

    fn config(capacity: usize) -> HistoryConfig {
        HistoryConfig {
            capacity,
            max_age: Duration::from_secs(3600),
        }
    }

    #[test]
    fn replays_exactly_the_events_after_the_offset() {
        let mut h = History::new(config(10), Some(Offset::new(7, 0)));
        assert_eq!(offsets(&h, Offset::new(7, 0)).unwrap(), Vec::<u64>::new());
        for i in 1..=5 {
            h.push(event(i));
        }
        assert_eq!(offsets(&h, Offset::new(7, 0)).unwrap(), vec![1, 2, 3, 4, 5]);
        assert_eq!(offsets(&h, Offset::new(7, 3)).unwrap(), vec![4, 5]);
        assert_eq!(offsets(&h, Offset::new(7, 5)).unwrap(), Vec::<u64>::new());
        assert_eq!(h.latest(), Some(Offset::new(7, 5)));
    }

    #[test]
    fn evicted_stale_and_future_offsets_are_gone() {
        let mut h = History::new(config(3), Some(Offset::new(7, 0)));
        for i in 1..=5 {
            h.push(event(i));
        }
        assert_eq!(h.len(), 3);
        // Events 1 and 2 were evicted: a replay from 1 would miss 2.
        assert!(offsets(&h, Offset::new(7, 1)).is_err());
        assert_eq!(offsets(&h, Offset::new(7, 2)).unwrap(), vec![3, 4, 5]);
        // Another epoch (a previous run of the node) or a future offset.
        assert!(offsets(&h, Offset::new(6, 99)).is_err());
        assert!(offsets(&h, Offset::new(7, 6)).is_err());
    }

    #[test]
    fn age_bounds_the_history_and_external_offsets_start_unknown() {
        let mut h = History::new(
            HistoryConfig {
                capacity: 10,
                max_age: Duration::from_secs(1),
            },
            None,
        );
        assert!(offsets(&h, Offset::new(7, 0)).is_err());
        h.push(event(1));
        h.push(event(2));
        assert_eq!(offsets(&h, Offset::new(7, 0)).unwrap(), vec![1, 2]);
        h.expire(Instant::now() + Duration::from_secs(5));
        assert_eq!(h.len(), 0);
        assert!(offsets(&h, Offset::new(7, 1)).is_err());
        assert_eq!(offsets(&h, Offset::new(7, 2)).unwrap(), Vec::<u64>::new());
    }
}
