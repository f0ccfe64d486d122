//! [`RouteCache`]: recipient sets by [`RouteKey`], LRU with a TTL.
//!
//! Two events with equal keys have equal recipients. Entries carry the version of the subscriptions
//! they were computed from (see
//! [`SubscriptionIndex::version`](crate::index::SubscriptionIndex::version));
//! a subscription change that could alter an answer changes its version, so
//! a cached answer is never stale, while changes elsewhere leave it valid.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use coarsetime::Instant;
use quick_cache::{sync::Cache, Weighter};

use super::key::RouteKey;
use crate::index::Recipients;

/// An entry of `n` recipients weighs `1 + n / RECIPIENTS_PER_UNIT` units of
/// the capacity, which bounds the cache's memory as well as its entries.
const RECIPIENTS_PER_UNIT: u64 = 64;

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

/// Keys hold publishers' text, so the hasher is seeded per process;
/// foldhash is that at a fraction of the default (ahash without AES) cost.
type Hasher = foldhash::fast::RandomState;

/// LRU + TTL cache of recipient sets.
pub(crate) struct RouteCache {
    cache: Option<Cache<RouteKey, Entry, RecipientWeighter, Hasher>>,
    /// Lifetimes are read on the coarse clock (a tick of a few ms): a hit
    /// reads it, and the precise one would cost a sixth of a hit.
    ttl: coarsetime::Duration,
    hits: AtomicU64,
    misses: AtomicU64,
}

impl RouteCache {
    /// A cache of `capacity` units (0 disables caching) whose entries live
    /// at most `ttl`.
    pub(crate) fn new(capacity: usize, ttl: Duration) -> Self {
        let cache = (capacity > 0).then(|| {
            Cache::with(
                capacity,
                capacity as u64,
                RecipientWeighter,
                Hasher::default(),
                Default::default(),
            )
        });
        Self {
            cache,
            ttl: ttl.into(),
            hits: AtomicU64::new(0),
            misses: AtomicU64::new(0),
        }
    }

    /// The cached recipients of `key` at `version`, or `compute()`'s
    /// answer, which is then cached.
    pub(crate) fn get_or_compute(
        &self,
        key: &RouteKey,
        version: u64,
        compute: impl FnOnce() -> Recipients,
    ) -> Arc<Recipients> {
        let Some(cache) = &self.cache else {
            self.misses.fetch_add(1, Ordering::Relaxed);
            return Arc::new(compute());
        };
        let now = Instant::now_without_cache_update();
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
        cache.insert(key.clone(), entry);
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
    use crate::model::schema::DimId;
    use crate::model::Event;
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
        let key = |r| RouteKey::content(&e, rank(r));
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
}
