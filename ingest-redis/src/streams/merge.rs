//! [`Merge`]: the entries of several stream shards in one order, by
//! offset, each released only once no shard can still produce a smaller
//! one.
//!
//! A shard's entries arrive in offset order (one consumer group reads a
//! stream in id order), so a shard whose queue here is not empty bounds
//! its own future entries by its queue's head. A shard whose queue is
//! empty bounds them by its *floor*: the reader's promise that every entry
//! of that shard not pushed yet has an offset at or above it. The floor
//! comes from the reads (see `shards`): above the last entry read, and
//! after a read that found the shard caught up, at or above the master's
//! clock when it read.

use std::collections::VecDeque;

use tickcast_core::model::Offset;

/// One shard's entries not yet released, and its floor.
#[derive(Debug)]
struct Queue<T> {
    items: VecDeque<(Offset, T)>,
    /// Every entry of the shard not pushed yet is at or above it; `None`:
    /// nothing is known (no read since the session began).
    floor: Option<Offset>,
}

impl<T> Default for Queue<T> {
    fn default() -> Self {
        Self {
            items: VecDeque::new(),
            floor: None,
        }
    }
}

/// Entries of `n` shards, released in offset order.
#[derive(Debug)]
pub(crate) struct Merge<T> {
    queues: Vec<Queue<T>>,
}

impl<T> Merge<T> {
    /// A merge of `shards` shards, nothing known about any.
    pub(crate) fn new(shards: usize) -> Self {
        Self {
            queues: (0..shards).map(|_| Queue::default()).collect(),
        }
    }

    /// Adds one read of `shard`: its entries (in the shard's order) and,
    /// if the read tells, a floor for what the shard holds beyond them.
    /// The floor only ever rises: the one just above the last entry read
    /// holds too.
    pub(crate) fn push(&mut self, shard: usize, items: Vec<(Offset, T)>, floor: Option<Offset>) {
        let Some(queue) = self.queues.get_mut(shard) else {
            return;
        };
        let after_last = items.last().map(|(offset, _)| successor(*offset));
        queue.items.extend(items);
        queue.floor = queue.floor.max(floor).max(after_last);
    }

    /// The next entry in offset order (and its shard), if it may go: every
    /// shard with nothing queued has a floor above it. Ties (which distinct
    /// shards' offsets never are) go to the lower shard.
    pub(crate) fn pop(&mut self) -> Option<(usize, T)> {
        let (shard, head) = self
            .queues
            .iter()
            .enumerate()
            .filter_map(|(i, q)| q.items.front().map(|(offset, _)| (i, *offset)))
            .min_by_key(|(i, offset)| (*offset, *i))?;
        let blocked = (0..self.queues.len()).any(|i| self.holds_back(i, head));
        if blocked {
            return None;
        }
        let (_, item) = self.queues[shard].items.pop_front()?;
        Some((shard, item))
    }

    /// The smallest offset queued, if any.
    pub(crate) fn head(&self) -> Option<Offset> {
        self.queues
            .iter()
            .filter_map(|q| q.items.front().map(|(offset, _)| *offset))
            .min()
    }

    /// True when shard `shard` has nothing queued and no floor above
    /// `head`: it is what keeps `head` from going.
    pub(crate) fn holds_back(&self, shard: usize, head: Offset) -> bool {
        self.queues
            .get(shard)
            .is_some_and(|q| q.items.is_empty() && q.floor.is_none_or(|floor| head >= floor))
    }

    /// Shards with nothing queued: the ones a read must hear from before
    /// anything (more) can go.
    pub(crate) fn starving(&self) -> impl Iterator<Item = usize> + '_ {
        self.queues
            .iter()
            .enumerate()
            .filter(|(_, q)| q.items.is_empty())
            .map(|(i, _)| i)
    }

    /// Forgets every entry and floor: the session ended, its unreleased
    /// entries are read again (each shard's group goes back to its
    /// cursor).
    pub(crate) fn clear(&mut self) {
        for queue in &mut self.queues {
            *queue = Queue::default();
        }
    }

    /// Entries waiting.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.queues.iter().map(|q| q.items.len()).sum()
    }
}

/// The smallest offset above `offset`.
pub(crate) fn successor(offset: Offset) -> Offset {
    match offset.minor.checked_add(1) {
        Some(minor) => Offset::new(offset.major, minor),
        None => Offset::new(offset.major.saturating_add(1), 0),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn o(major: u64, minor: u64) -> Offset {
        Offset::new(major, minor)
    }

    #[test]
    fn an_empty_shard_without_floor_holds_everything_back() {
        let mut merge = Merge::new(2);
        merge.push(0, vec![(o(5, 0), "a")], None);
        assert_eq!(merge.pop(), None, "shard 1 said nothing yet");
        assert_eq!(merge.starving().collect::<Vec<_>>(), [1]);
        assert_eq!(merge.head(), Some(o(5, 0)));
        assert!(merge.holds_back(1, o(5, 0)));
        assert!(!merge.holds_back(0, o(5, 0)), "shard 0 has it queued");
        merge.push(1, vec![], Some(o(5, 0)));
        assert_eq!(merge.pop(), None, "shard 1 may still add 5-0");
        merge.push(1, vec![], Some(o(5, 1)));
        assert_eq!(merge.pop(), Some((0, "a")));
        assert_eq!(merge.len(), 0);
    }

    #[test]
    fn queued_shards_interleave_by_offset() {
        let mut merge = Merge::new(3);
        merge.push(0, vec![(o(1, 0), 10), (o(4, 0), 40)], None);
        merge.push(1, vec![(o(2, 1), 21), (o(3, 1), 31)], None);
        merge.push(2, vec![(o(2, 2), 22)], Some(o(9, 0)));
        let mut out = Vec::new();
        while let Some((_, v)) = merge.pop() {
            out.push(v);
        }
        // Shard 1 runs dry after 3-1: 4-0 waits for its floor.
        assert_eq!(out, [10, 21, 22, 31]);
        merge.push(1, vec![], Some(o(4, 1)));
        assert_eq!(merge.pop(), Some((0, 40)));
    }

    #[test]
    fn clearing_forgets_floors() {
        let mut merge = Merge::new(2);
        merge.push(0, vec![(o(1, 0), 1)], None);
        merge.push(1, vec![], Some(o(9, 0)));
        merge.clear();
        merge.push(0, vec![(o(1, 0), 1)], None);
        assert_eq!(merge.pop(), None);
    }

    #[test]
    fn successor_carries_into_the_major() {
        assert_eq!(successor(o(1, 2)), o(1, 3));
        assert_eq!(successor(o(1, u64::MAX)), o(2, 0));
    }

    /// A shard's entries, increasing, and how its reads split them.
    fn shard() -> impl Strategy<Value = (Vec<Offset>, Vec<usize>)> {
        (
            prop::collection::btree_set((0u64..50, 0u64..4), 0..25),
            prop::collection::vec(0usize..5, 0..30),
        )
            .prop_map(|(set, cuts)| (set.into_iter().map(|(a, b)| o(a, b)).collect(), cuts))
    }

    proptest! {
        /// Whatever the reads and their floors (each one true: at or below
        /// the shard's next unread entry), the output is the sorted input,
        /// and nothing left while an empty shard's floor was not above it.
        #[test]
        fn output_is_sorted_input_released_only_below_every_floor(
            shards in prop::collection::vec(shard(), 1..5),
            order in prop::collection::vec(0usize..5, 0..200),
            slack in prop::collection::vec(0u64..3, 200),
            silent in prop::collection::vec(any::<bool>(), 200),
        ) {
            let n = shards.len();
            let mut merge = Merge::new(n);
            let mut next = vec![0usize; n];
            let mut cut = vec![0usize; n];
            let mut out: Vec<(Offset, usize)> = Vec::new();
            // The random reads first, then each shard in turn until all is
            // out (those always tell a floor).
            let random = order.len();
            let mut reads = order.into_iter().map(|s| s % n).chain((0..n).cycle().take(200 * n));
            let mut step = 0;
            while out.len() < shards.iter().map(|(e, _)| e.len()).sum::<usize>() {
                let s = reads.next().expect("enough reads to drain every shard");
                let (entries, cuts) = &shards[s];
                let take = cuts.get(cut[s]).copied().unwrap_or(usize::MAX).max(1);
                cut[s] += 1;
                let end = next[s].saturating_add(take).min(entries.len());
                let batch: Vec<(Offset, Offset)> =
                    entries[next[s]..end].iter().map(|e| (*e, *e)).collect();
                next[s] = end;
                // A true floor: at or below the next unread entry (or any
                // height once the shard is exhausted).
                let bound = entries.get(next[s]).copied().unwrap_or(o(100, 0));
                let lower = o(bound.major.saturating_sub(slack[step % slack.len()]), 0);
                step += 1;
                let floor = (step > random || !silent[step % silent.len()])
                    .then_some(lower.min(bound));
                merge.push(s, batch, floor);
                while let Some((shard, offset)) = merge.pop() {
                    for (k, (entries, _)) in shards.iter().enumerate() {
                        if k != shard {
                            // Nothing unreleased of shard k is below.
                            let unreleased_below = out.iter().filter(|(_, s)| *s == k).count()
                                < entries.iter().filter(|e| **e < offset).count();
                            prop_assert!(!unreleased_below, "{offset} left before shard {k}'s smaller entries");
                        }
                    }
                    out.push((offset, shard));
                }
            }
            let mut all: Vec<(Offset, usize)> = shards
                .iter()
                .enumerate()
                .flat_map(|(s, (e, _))| e.iter().map(move |o| (*o, s)))
                .collect();
            all.sort();
            prop_assert_eq!(out, all);
        }
    }
}
