//! [`RecentKeys`]: the idempotency keys of recently published events, so
//! that a producer's retry (or a broker's second copy) of an event is not
//! delivered twice.
//!
//! A key is the event's [`idempotency_key`](crate::model::Event::idempotency_key)
//! (its `event_id`, or a key that travelled beside the body). The window is
//! bounded twice: at most `capacity` keys, none older than `max_age`; the
//! oldest key leaves first. Keys are kept as 128-bit hashes under the
//! hub's own random keys, so a key of any length costs the same few bytes
//! and producers cannot aim at collisions.
//!
//! It lives under the publish lock, so a plain insertion-ordered map
//! (hashlink's) is enough: eviction is exact, oldest first, which a
//! documented window needs (a concurrent cache would evict approximately).

use std::collections::hash_map::RandomState;
use std::hash::BuildHasher;
use std::time::{Duration, Instant};

use hashlink::LinkedHashMap;

use crate::model::Offset;

/// Bounds of the de-duplication window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct DedupConfig {
    /// Most keys remembered (0 turns de-duplication off).
    pub capacity: usize,
    /// Oldest key remembered.
    pub max_age: Duration,
}

setters!(DedupConfig {
    with_capacity => capacity: usize,
    with_max_age => max_age: Duration,
});

impl Default for DedupConfig {
    fn default() -> Self {
        Self {
            capacity: 100_000,
            max_age: Duration::from_secs(600),
        }
    }
}

/// The window of recent keys, each with the offset its event got.
#[derive(Debug)]
pub(crate) struct RecentKeys {
    keys: LinkedHashMap<u128, (Offset, Instant)>,
    hashers: (RandomState, RandomState),
    config: DedupConfig,
}

impl RecentKeys {
    pub(crate) fn new(config: DedupConfig) -> Self {
        Self {
            keys: LinkedHashMap::new(),
            hashers: (RandomState::new(), RandomState::new()),
            config,
        }
    }

    /// The hash `key` is remembered under; `None` when de-duplication is
    /// off or the key is empty.
    pub(crate) fn hash(&self, key: Option<&str>) -> Option<u128> {
        let key = key.filter(|k| !k.is_empty() && self.config.capacity > 0)?;
        let high = u128::from(self.hashers.0.hash_one(key));
        let low = u128::from(self.hashers.1.hash_one(key));
        Some((high << 64) | low)
    }

    /// The offset of the event published under `hash` within the window,
    /// if any.
    pub(crate) fn get(&mut self, hash: u128, now: Instant) -> Option<Offset> {
        self.expire(now);
        self.keys.get(&hash).map(|(offset, _)| *offset)
    }

    /// Remembers that the event under `hash` got `offset`.
    pub(crate) fn insert(&mut self, hash: u128, offset: Offset, now: Instant) {
        self.keys.insert(hash, (offset, now));
        while self.keys.len() > self.config.capacity {
            self.keys.pop_front();
        }
    }

    /// Keys remembered now.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.keys.len()
    }

    fn expire(&mut self, now: Instant) {
        while let Some((_, (_, at))) = self.keys.front() {
            if now.saturating_duration_since(*at) <= self.config.max_age {
                break;
            }
            self.keys.pop_front();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn window(capacity: usize, max_age_s: u64) -> RecentKeys {
        RecentKeys::new(DedupConfig {
            capacity,
            max_age: Duration::from_secs(max_age_s),
        })
    }

    #[test]
    fn remembers_keys_with_their_offsets_within_the_count() {
        let mut keys = window(3, 60);
        let now = Instant::now();
        for n in 1..=5u64 {
            let hash = keys.hash(Some(&format!("k{n}"))).unwrap();
            assert_eq!(keys.get(hash, now), None);
            keys.insert(hash, Offset::new(1, n), now);
        }
        assert_eq!(keys.len(), 3);
        let k5 = keys.hash(Some("k5")).unwrap();
        assert_eq!(keys.get(k5, now), Some(Offset::new(1, 5)));
        let k3 = keys.hash(Some("k3")).unwrap();
        assert_eq!(keys.get(k3, now), Some(Offset::new(1, 3)));
        // The oldest left first.
        let k2 = keys.hash(Some("k2")).unwrap();
        assert_eq!(keys.get(k2, now), None);
    }

    #[test]
    fn keys_older_than_the_window_are_forgotten() {
        let mut keys = window(100, 10);
        let start = Instant::now();
        let a = keys.hash(Some("a")).unwrap();
        keys.insert(a, Offset::new(1, 1), start);
        let b = keys.hash(Some("b")).unwrap();
        keys.insert(b, Offset::new(1, 2), start + Duration::from_secs(5));
        assert!(keys.get(a, start + Duration::from_secs(10)).is_some());
        assert_eq!(keys.get(a, start + Duration::from_secs(11)), None);
        assert!(keys.get(b, start + Duration::from_secs(11)).is_some());
        assert_eq!(keys.len(), 1);
    }

    #[test]
    fn empty_keys_and_capacity_zero_remember_nothing() {
        assert_eq!(window(10, 60).hash(Some("")), None);
        assert_eq!(window(10, 60).hash(None), None);
        assert_eq!(window(0, 60).hash(Some("a")), None);
        let keys = window(10, 60);
        assert_ne!(keys.hash(Some("a")), keys.hash(Some("b")));
        assert_eq!(keys.hash(Some("a")), keys.hash(Some("a")));
    }
}
