//! [`RouteCache`]: recipient sets by event dimensions, LRU with a TTL.
//!
//! The key is derived from the event's values, every dimension of its
//! schema, so a dimension cannot be left out of it: text and choice values
//! as they are, and each number replaced by its rank among the distinct
//! floors and ceilings in use on its dimension. Two events with equal keys
//! have equal recipients. Entries carry the version of the subscriptions
//! they were computed from (see
//! [`SubscriptionIndex::version`](crate::index::SubscriptionIndex::version));
//! a subscription change that could alter an answer changes its version, so
//! a cached answer is never stale, while changes elsewhere leave it valid.

use std::hash::Hash;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use quick_cache::{sync::Cache, Equivalent, Weighter};
use smallvec::SmallVec;

use crate::index::Recipients;
use crate::model::schema::DimId;
use crate::model::{Event, Priority, Value};

/// An entry of `n` recipients weighs `1 + n / RECIPIENTS_PER_UNIT` units of
/// the capacity, which bounds the cache's memory as well as its entries.
const RECIPIENTS_PER_UNIT: u64 = 64;

/// One dimension of a borrowed key. Hashes like [`Part`] (same variants
/// in the same order; `&str` and `Box<str>` hash alike).
#[derive(Debug, Clone, Copy, PartialEq, Hash)]
enum PartRef<'a> {
    Absent,
    Text(&'a str),
    Choice(u8),
    /// A number's (floor rank, ceiling rank).
    Rank(u32, u32),
}

/// One dimension of an owned key.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Part {
    Absent,
    Text(Box<str>),
    Choice(u8),
    Rank(u32, u32),
}

/// Owned cache key.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct RouteKey {
    broadcast: bool,
    user: Option<Box<str>>,
    priority: Priority,
    parts: Box<[Part]>,
}

/// Borrowed form of [`RouteKey`], hashed identically, so a lookup does not
/// allocate.
#[derive(Debug, Clone, PartialEq, Hash)]
pub(crate) struct RouteKeyRef<'a> {
    broadcast: bool,
    user: Option<&'a str>,
    priority: Priority,
    parts: SmallVec<[PartRef<'a>; 8]>,
}

impl<'a> RouteKeyRef<'a> {
    /// The key of a content-based route; `rank` gives a number's (floor,
    /// ceiling) ranks on its dimension.
    pub(crate) fn content(event: &'a Event, rank: impl Fn(DimId, f64) -> (u32, u32)) -> Self {
        let parts = event
            .values()
            .iter()
            .enumerate()
            .map(|(i, v)| match v {
                None => PartRef::Absent,
                Some(Value::Text(t)) => PartRef::Text(t),
                Some(Value::Choice(c)) => PartRef::Choice(*c),
                Some(Value::Number(n)) => {
                    let (floor, ceiling) = rank(DimId::at(i), *n);
                    PartRef::Rank(floor, ceiling)
                }
            })
            .collect();
        Self {
            broadcast: false,
            user: event.user_id(),
            priority: event.priority(),
            parts,
        }
    }

    /// The key of a broadcast: only the private user matters.
    pub(crate) fn broadcast(event: &'a Event) -> Self {
        Self {
            broadcast: true,
            user: event.user_id(),
            priority: Priority::Low,
            parts: SmallVec::new(),
        }
    }

    fn to_owned(&self) -> RouteKey {
        let parts = self.parts.iter().map(|p| match *p {
            PartRef::Absent => Part::Absent,
            PartRef::Text(t) => Part::Text(t.into()),
            PartRef::Choice(c) => Part::Choice(c),
            PartRef::Rank(f, c) => Part::Rank(f, c),
        });
        RouteKey {
            broadcast: self.broadcast,
            user: self.user.map(Into::into),
            priority: self.priority,
            parts: parts.collect(),
        }
    }
}

impl Equivalent<RouteKey> for RouteKeyRef<'_> {
    fn equivalent(&self, key: &RouteKey) -> bool {
        self.broadcast == key.broadcast
            && self.user == key.user.as_deref()
            && self.priority == key.priority
            && self.parts.len() == key.parts.len()
            && self
                .parts
                .iter()
                .zip(key.parts.iter())
                .all(|(a, b)| match (a, b) {
                    (PartRef::Absent, Part::Absent) => true,
                    (PartRef::Text(a), Part::Text(b)) => *a == &**b,
                    (PartRef::Choice(a), Part::Choice(b)) => a == b,
                    (PartRef::Rank(a, b), Part::Rank(c, d)) => a == c && b == d,
                    _ => false,
                })
    }
}

#[derive(Clone)]
struct Entry {
    version: u64,
    expires: Instant,
    recipients: Arc<Recipients>,
}

#[derive(Clone)]
struct RecipientWeighter;

impl Weighter<RouteKey, Entry> for RecipientWeighter {
    fn weight(&self, _key: &RouteKey, entry: &Entry) -> u64 {
        1 + entry.recipients.len() as u64 / RECIPIENTS_PER_UNIT
    }
}

/// Hit and miss counts of the route cache.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CacheCounts {
    /// Lookups answered from the cache.
    pub hits: u64,
    /// Lookups that had to ask the index.
    pub misses: u64,
}

impl CacheCounts {
    /// Hits over lookups, 0 when there was none.
    pub fn hit_rate(&self) -> f64 {
        let total = self.hits + self.misses;
        if total == 0 {
            0.0
        } else {
            self.hits as f64 / total as f64
        }
    }
}

/// LRU + TTL cache of recipient sets.
pub(crate) struct RouteCache {
    cache: Option<Cache<RouteKey, Entry, RecipientWeighter>>,
    ttl: Duration,
    hits: AtomicU64,
    misses: AtomicU64,
}

impl RouteCache {
    /// A cache of `capacity` units (0 disables caching) whose entries live
    /// at most `ttl`.
    pub(crate) fn new(capacity: usize, ttl: Duration) -> Self {
        let cache = (capacity > 0)
            .then(|| Cache::with_weighter(capacity, capacity as u64, RecipientWeighter));
        Self {
            cache,
            ttl,
            hits: AtomicU64::new(0),
            misses: AtomicU64::new(0),
        }
    }

    /// The cached recipients of `key` at `version`, or `compute()`'s
    /// answer, which is then cached.
    pub(crate) fn get_or_compute(
        &self,
        key: &RouteKeyRef<'_>,
        version: u64,
        compute: impl FnOnce() -> Recipients,
    ) -> Arc<Recipients> {
        let Some(cache) = &self.cache else {
            self.misses.fetch_add(1, Ordering::Relaxed);
            return Arc::new(compute());
        };
        let now = Instant::now();
        if let Some(entry) = cache.get(key) {
            if entry.version == version && entry.expires > now {
                self.hits.fetch_add(1, Ordering::Relaxed);
                return entry.recipients;
            }
        }
        self.misses.fetch_add(1, Ordering::Relaxed);
        let recipients = Arc::new(compute());
        let entry = Entry {
            version,
            expires: now + self.ttl,
            recipients: recipients.clone(),
        };
        cache.insert(key.to_owned(), entry);
        recipients
    }

    /// Hits and misses so far.
    pub(crate) fn counts(&self) -> CacheCounts {
        CacheCounts {
            hits: self.hits.load(Ordering::Relaxed),
            misses: self.misses.load(Ordering::Relaxed),
        }
    }

    /// Entries currently held (stale ones included until evicted).
    #[cfg(test)]
    fn len(&self) -> usize {
        self.cache.as_ref().map_or(0, Cache::len)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    fn event() -> Event {
        Event::from_json(
            Bytes::from_static(br#"{"symbol":"A","pattern":"P","confidence":0.5}"#),
            None,
            1024,
        )
        .unwrap()
    }

    #[test]
    fn entries_expire_and_versions_invalidate() {
        let e = event();
        let fresh = RouteCache::new(100, Duration::from_secs(60));
        let rank = |r: u32| move |_: DimId, _: f64| (r, 0);
        let key = |r| RouteKeyRef::content(&e, rank(r));
        fresh.get_or_compute(&key(0), 1, Vec::new);
        fresh.get_or_compute(&key(0), 1, Vec::new);
        fresh.get_or_compute(&key(0), 2, Vec::new);
        fresh.get_or_compute(&key(1), 2, Vec::new);
        assert_eq!(fresh.counts(), CacheCounts { hits: 1, misses: 3 });

        let expired = RouteCache::new(100, Duration::ZERO);
        expired.get_or_compute(&key(0), 1, Vec::new);
        expired.get_or_compute(&key(0), 1, Vec::new);
        assert_eq!(expired.counts(), CacheCounts { hits: 0, misses: 2 });
        assert_eq!(expired.len(), 1);
    }

    #[test]
    fn borrowed_and_owned_keys_hash_alike() {
        use std::hash::BuildHasher;
        let e = event();
        let key = RouteKeyRef::content(&e, |_, _| (1, 2));
        let owned = key.to_owned();
        let h = rustc_hash::FxBuildHasher;
        assert_eq!(h.hash_one(&key), h.hash_one(&owned));
        assert!(key.equivalent(&owned));
        let other = RouteKeyRef::content(&e, |_, _| (2, 2));
        assert!(!other.equivalent(&owned));
    }
}
