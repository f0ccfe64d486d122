//! [`Filters`]: the subscriptions of every connection of a run, drawn from
//! the scenario's mix, and the `subscribe` frames that carry them.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use tickcast_core::model::schema::tickstock::{self, TickStockFilter, PATTERN_DETECTED};
use tickcast_core::model::schema::Criteria;
use tickcast_core::model::{Filter, DEFAULT_MAX_VALUES_PER_LIST};

use super::scenario::Scenario;
use crate::population::{pattern_only, tier_only, watchlist};
use crate::universe::SymbolUniverse;

/// The subscriptions of all connections, flat: connection `c` holds
/// `all[starts[c]..starts[c + 1]]`, its subscription `k` with id `s{k}`.
#[derive(Debug, Clone, PartialEq)]
pub struct Filters {
    all: Vec<Filter>,
    /// `all` resolved with TickStock's schema: the oracle's semantics.
    criteria: Vec<Criteria>,
    starts: Vec<u32>,
}

impl Filters {
    /// Draws the subscriptions of `scenario` (deterministic for its seed).
    pub fn generate(scenario: &Scenario) -> Self {
        let f = &scenario.filters;
        let universe = SymbolUniverse::new(f.symbols, f.zipf_exponent);
        let mut rng = StdRng::seed_from_u64(scenario.run.seed ^ 0xF117_E125);
        let weights = [f.watchlist, f.pattern_only, f.tier_only, f.firehose];
        let total: f64 = weights.iter().sum();
        // Where rounding leaves the walk past the end: the last kind in use.
        let last_kind = weights.iter().rposition(|&w| w > 0.0).unwrap_or(0);
        let [min, max] = scenario.connections.subscriptions;
        let count = scenario.connections.count;
        let mut all = Vec::with_capacity(count * (min + max) / 2);
        let mut starts = Vec::with_capacity(count + 1);
        let schema = tickstock::schema();
        for _ in 0..count {
            starts.push(all.len() as u32);
            let subs = rng.random_range(min..=max);
            for k in 0..subs {
                if k == 0 && f.firehose_first {
                    all.push(Filter::from(firehose()));
                    continue;
                }
                let mut pick = rng.random::<f64>() * total;
                let kind = weights
                    .iter()
                    .position(|&w| {
                        let here = pick < w;
                        pick -= w;
                        here
                    })
                    .unwrap_or(last_kind);
                let filter = match kind {
                    0 => watchlist(&mut rng, &universe),
                    1 => pattern_only(&mut rng),
                    2 => tier_only(&mut rng),
                    _ => firehose(),
                };
                all.push(Filter::from(filter));
            }
        }
        starts.push(all.len() as u32);
        let criteria = all
            .iter()
            .map(|f| {
                schema
                    .criteria(f, DEFAULT_MAX_VALUES_PER_LIST)
                    .expect("generated filters are valid")
            })
            .collect();
        Self {
            all,
            criteria,
            starts,
        }
    }

    /// Number of connections.
    pub fn connections(&self) -> usize {
        self.starts.len() - 1
    }

    /// Number of subscriptions over all connections.
    pub fn len(&self) -> usize {
        self.all.len()
    }

    /// Whether there are no subscriptions at all.
    pub fn is_empty(&self) -> bool {
        self.all.is_empty()
    }

    /// The subscriptions of connection `conn`, `s0` first.
    pub fn of(&self, conn: usize) -> &[Filter] {
        &self.all[self.starts[conn] as usize..self.starts[conn + 1] as usize]
    }

    /// Index in the flat list of connection `conn`'s first subscription.
    pub fn first_of(&self, conn: usize) -> usize {
        self.starts[conn] as usize
    }

    /// The criteria of connection `conn`'s subscriptions, `s0` first.
    pub fn criteria_of(&self, conn: usize) -> &[Criteria] {
        &self.criteria[self.starts[conn] as usize..self.starts[conn + 1] as usize]
    }

    /// A subscription's criteria by its index in the flat list.
    pub fn get(&self, index: usize) -> &Criteria {
        &self.criteria[index]
    }

    /// The `subscribe` frame of subscription `k` of connection `conn`.
    pub fn subscribe_op(&self, conn: usize, k: usize) -> String {
        let filter = serde_json::to_string(&self.of(conn)[k]).expect("filters serialize");
        format!(r#"{{"op":"subscribe","id":"s{k}","filter":{filter}}}"#)
    }
}

/// Every pattern detection.
fn firehose() -> TickStockFilter {
    TickStockFilter {
        event_types: vec![PATTERN_DETECTED.to_owned()],
        ..TickStockFilter::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generation_is_deterministic_and_follows_the_mix() {
        let mut scenario = Scenario::default();
        scenario.connections.count = 300;
        scenario.connections.subscriptions = [2, 4];
        scenario.filters.watchlist = 0.0;
        scenario.filters.pattern_only = 0.0;
        scenario.filters.tier_only = 1.0;
        let a = Filters::generate(&scenario);
        assert_eq!(a, Filters::generate(&scenario));
        assert_eq!(a.connections(), 300);
        assert!((600..=1200).contains(&a.len()));
        assert!((0..300).all(|c| (2..=4).contains(&a.of(c).len())));
        assert!(a
            .of(0)
            .iter()
            .all(|f| !f.list("tiers").is_empty() && f.list("symbols").is_empty()));
        let op: serde_json::Value = serde_json::from_str(&a.subscribe_op(7, 1)).unwrap();
        assert_eq!(op["op"], "subscribe");
        assert_eq!(op["id"], "s1");
        let back: Filter = serde_json::from_value(op["filter"].clone()).unwrap();
        assert_eq!(back, a.of(7)[1]);
    }
}
