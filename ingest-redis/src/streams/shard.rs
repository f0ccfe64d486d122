//! [`Shard`]: which of a sharded stream's keys an entry came from, and the
//! offset its id becomes.
//!
//! Two shards' masters stamp ids from their own clocks, so two shards can
//! hand out the same id (`1700000000000-0` on both in the same
//! millisecond). An offset must name one event, on every node, so shard
//! `i` of `n` maps id `<ms>-<seq>` to offset `<ms>-<seq * n + i>`: still in
//! id order within a shard, distinct across shards, computed alike by
//! every node and by the publisher. With one shard it is the id itself.

use tickcast_core::model::Offset;

/// Shard `index` of `count`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Shard {
    index: u64,
    count: u64,
}

impl Shard {
    /// The only shard of an unsharded stream: offsets are the ids.
    pub(crate) const SOLE: Self = Self { index: 0, count: 1 };

    /// Shard `index` of `count` (`count` at least 1, `index` below it).
    pub(crate) fn new(index: usize, count: usize) -> Self {
        let count = (count as u64).max(1);
        Self {
            index: (index as u64).min(count - 1),
            count,
        }
    }

    /// The offset of entry id `id` of this shard; `None` for an id that is
    /// not `<ms>-<seq>` or whose `seq` is too large to spread (beyond
    /// `u64::MAX / count`, which auto ids never reach).
    pub(crate) fn offset(self, id: &str) -> Option<Offset> {
        self.offset_of(id.parse().ok()?)
    }

    /// [`offset`](Self::offset) of a parsed id.
    pub(crate) fn offset_of(self, id: Offset) -> Option<Offset> {
        let minor = id.minor.checked_mul(self.count)?.checked_add(self.index)?;
        Some(Offset::new(id.major, minor))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_shard_keeps_the_id() {
        assert_eq!(Shard::SOLE.offset("5-3"), Some(Offset::new(5, 3)));
        assert_eq!(Shard::SOLE.offset("x"), None);
    }

    #[test]
    fn shards_never_share_an_offset_and_keep_their_order() {
        let a = Shard::new(0, 3);
        let b = Shard::new(2, 3);
        assert_eq!(a.offset("5-0"), Some(Offset::new(5, 0)));
        assert_eq!(b.offset("5-0"), Some(Offset::new(5, 2)));
        assert_eq!(b.offset("5-1"), Some(Offset::new(5, 5)));
        assert!(b.offset("5-0") < a.offset("5-1"));
        assert!(a.offset("5-9") < b.offset("6-0"));
        assert_eq!(b.offset(&format!("5-{}", u64::MAX)), None);
    }
}
