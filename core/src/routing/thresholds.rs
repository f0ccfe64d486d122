//! The distinct floors and ceilings in use on each number dimension
//! ([`Bounds`]), so the route cache can key on a number's rank among them
//! instead of its exact value.

use std::collections::BTreeMap;

use crate::model::schema::{Bound, Criteria, DimId};

/// The thresholds of every (dimension, floor or ceiling) in use.
#[derive(Debug, Default)]
pub(crate) struct Bounds {
    lists: Vec<((DimId, Bound), Thresholds)>,
    epoch: u64,
}

impl Bounds {
    /// Counts the bounds of `criteria` in (`add`) or out.
    pub(crate) fn count(&mut self, criteria: &Criteria, add: bool) {
        for (dim, bound, value) in criteria.bounds() {
            let at = match self.lists.iter().position(|(k, _)| *k == (dim, bound)) {
                Some(at) => at,
                None => {
                    self.lists.push(((dim, bound), Thresholds::default()));
                    self.lists.len() - 1
                }
            };
            let t = &mut self.lists[at].1;
            let before = t.epoch();
            if add {
                t.add(Some(value));
            } else {
                t.remove(Some(value));
            }
            self.epoch += t.epoch() - before;
        }
    }

    /// Counts changes of any set of distinct thresholds.
    pub(crate) fn epoch(&self) -> u64 {
        self.epoch
    }

    /// `value`'s (floor, ceiling) ranks on `dim`: events of equal ranks
    /// pass exactly the same bounds.
    pub(crate) fn rank(&self, dim: DimId, value: f64) -> (u32, u32) {
        let mut out = (0, 0);
        for ((d, bound), t) in &self.lists {
            if *d == dim {
                match bound {
                    Bound::Floor => out.0 = t.rank(Some(value)) as u32,
                    Bound::Ceiling => out.1 = t.rank_below(value) as u32,
                }
            }
        }
        out
    }
}

/// Multiset of thresholds of one (dimension, bound), with a sorted list of
/// the distinct values.
#[derive(Debug, Default)]
pub(crate) struct Thresholds {
    counts: BTreeMap<u64, usize>,
    sorted: Vec<f64>,
    epoch: u64,
}

/// `-0.0` and `0.0` are one threshold.
fn key(t: f64) -> u64 {
    (t + 0.0).to_bits()
}

impl Thresholds {
    pub(crate) fn add(&mut self, t: Option<f64>) {
        let Some(t) = t else { return };
        let count = self.counts.entry(key(t)).or_insert(0);
        *count += 1;
        if *count == 1 {
            let at = self.sorted.partition_point(|x| *x < t);
            self.sorted.insert(at, t + 0.0);
            self.epoch += 1;
        }
    }

    pub(crate) fn remove(&mut self, t: Option<f64>) {
        let Some(t) = t else { return };
        let Some(count) = self.counts.get_mut(&key(t)) else {
            return;
        };
        *count -= 1;
        if *count == 0 {
            self.counts.remove(&key(t));
            let at = self.sorted.partition_point(|x| *x < t);
            self.sorted.remove(at);
            self.epoch += 1;
        }
    }

    /// Counts changes of the set of distinct thresholds, each of which
    /// changes what a rank means.
    pub(crate) fn epoch(&self) -> u64 {
        self.epoch
    }

    /// How many distinct thresholds `confidence` reaches. Events of equal
    /// rank pass exactly the same `min_confidence` conditions; no confidence
    /// passes none, like rank 0.
    pub(crate) fn rank(&self, confidence: Option<f64>) -> usize {
        confidence.map_or(0, |c| self.sorted.partition_point(|t| *t <= c))
    }

    /// How many distinct thresholds lie strictly below `value`: events of
    /// equal rank pass exactly the same ceilings.
    pub(crate) fn rank_below(&self, value: f64) -> usize {
        self.sorted.partition_point(|t| *t < value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranks_follow_distinct_thresholds() {
        let mut t = Thresholds::default();
        for v in [0.5, 0.8, 0.5, 0.0] {
            t.add(Some(v));
        }
        t.add(None);
        assert_eq!(t.rank(None), 0);
        assert_eq!(t.rank(Some(-0.0)), 1);
        assert_eq!(t.rank(Some(0.49)), 1);
        assert_eq!(t.rank(Some(0.5)), 2);
        assert_eq!(t.rank(Some(0.9)), 3);
        t.remove(Some(0.5));
        assert_eq!(t.rank(Some(0.5)), 2);
        t.remove(Some(0.5));
        assert_eq!(t.rank(Some(0.5)), 1);
    }
}
