//! The distinct `min_confidence` thresholds in use, so the route cache can
//! key on a confidence's rank instead of its exact value.

use std::collections::BTreeMap;

/// Multiset of thresholds with a sorted list of the distinct values.
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
