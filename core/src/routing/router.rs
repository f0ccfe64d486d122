//! [`IndexRouter`]: from an event to its deliveries, over a
//! [`SubscriptionIndex`] with a route cache.
//!
//! There is no router trait: the seam is the index (the hub's
//! [`InvertedIndex`](crate::index::InvertedIndex), the tests'
//! [`BruteForceIndex`](crate::index::BruteForceIndex)); the rules and the
//! cache around it are the same whatever the index.

use std::sync::Arc;
use std::time::Duration;

use parking_lot::RwLock;

use super::cache::{CacheCounts, RouteCache};
use super::key::RouteKey;
use super::strategy::{RoutingRules, Strategy};
use super::thresholds::Bounds;
use crate::index::{Recipients, SubscriptionIndex};
use crate::model::{ConnId, Event, Subscription};
use crate::stats::{LatencyHistogram, LatencySummary};

/// Where one event goes and how.
#[derive(Debug, Clone)]
pub struct Route {
    /// The strategy the rules chose.
    pub strategy: Strategy,
    /// Its recipients, sorted by connection (shared with the route cache).
    pub recipients: Arc<Recipients>,
}

/// Route-cache settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct CacheConfig {
    /// Capacity in entries (an entry with n recipients counts as 1 + n/64);
    /// 0 turns the cache off.
    pub capacity: usize,
    /// Longest life of an entry.
    pub ttl: Duration,
}

setters!(CacheConfig {
    with_capacity => capacity: usize,
    with_ttl => ttl: Duration,
});

impl Default for CacheConfig {
    fn default() -> Self {
        Self {
            capacity: 10_000,
            ttl: Duration::from_secs(300),
        }
    }
}

/// The subscriptions and what the cache key derives from them. A cached
/// route carries the index's version for its event plus the bounds'
/// epoch (what a number's rank means): both only grow, so the sum moves
/// whenever either does.
struct State<I> {
    index: I,
    bounds: Bounds,
}

/// Owns the subscriptions and turns events into [`Route`]s: any
/// [`SubscriptionIndex`], with rules and a route cache.
///
/// Every subscription change goes through the router so that it can keep
/// its cache exact.
pub struct IndexRouter<I> {
    state: RwLock<State<I>>,
    cache: RouteCache,
    rules: RoutingRules,
    index_latency: LatencyHistogram,
}

impl<I: SubscriptionIndex> IndexRouter<I> {
    /// A router over `index` choosing strategies by `rules`.
    pub fn new(index: I, rules: RoutingRules, cache: CacheConfig) -> Self {
        Self {
            state: RwLock::new(State {
                index,
                bounds: Bounds::default(),
            }),
            cache: RouteCache::new(cache.capacity, cache.ttl),
            rules,
            index_latency: LatencyHistogram::default(),
        }
    }

    /// Runs an index lookup, timing it.
    fn timed(&self, lookup: impl FnOnce() -> Recipients) -> Recipients {
        let started = std::time::Instant::now();
        let recipients = lookup();
        self.index_latency.record(started.elapsed());
        recipients
    }

    fn change<T>(&self, f: impl FnOnce(&mut State<I>) -> T) -> T {
        f(&mut self.state.write())
    }
}

impl<I: SubscriptionIndex> IndexRouter<I> {
    /// Where `event` goes.
    pub fn route(&self, event: &Event) -> Route {
        let strategy = self.rules.strategy_for(event);
        let state = self.state.read();
        let recipients = if strategy == Strategy::BroadcastAll {
            self.cache.get_or_compute(
                &RouteKey::broadcast(event),
                state.index.version_all(),
                || self.timed(|| state.index.subscribed_connections(event.user_id())),
            )
        } else {
            let key = RouteKey::content(event, |dim, v| state.bounds.rank(dim, v));
            let version = state.index.version(event) + state.bounds.epoch();
            self.cache.get_or_compute(&key, version, || {
                self.timed(|| state.index.match_event(event))
            })
        };
        Route {
            strategy,
            recipients,
        }
    }

    /// Adds (or replaces by id) a subscription; returns the replaced one.
    pub fn subscribe(&self, sub: Subscription) -> Option<Subscription> {
        self.change(|s| {
            s.bounds.count(&sub.filter, true);
            let old = s.index.insert(sub);
            if let Some(old) = &old {
                s.bounds.count(&old.filter, false);
            }
            old
        })
    }

    /// Removes a subscription by connection and id.
    pub fn unsubscribe(&self, conn: ConnId, id: &str) -> Option<Subscription> {
        self.change(|s| {
            let old = s.index.remove(conn, id);
            if let Some(old) = &old {
                s.bounds.count(&old.filter, false);
            }
            old
        })
    }

    /// Removes all subscriptions of a connection; returns how many.
    pub fn disconnect(&self, conn: ConnId) -> usize {
        self.change(|s| {
            for sub in s.index.connection_subscriptions(conn) {
                s.bounds.count(&sub.filter, false);
            }
            s.index.remove_connection(conn)
        })
    }

    /// Number of subscriptions.
    pub fn subscription_count(&self) -> usize {
        self.state.read().index.len()
    }

    /// Route-cache hits and misses.
    pub fn cache_counts(&self) -> CacheCounts {
        self.cache.counts()
    }

    /// Latency of index matches (cache misses).
    pub fn index_latency(&self) -> LatencySummary {
        self.index_latency.summary()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::index::{BruteForceIndex, InvertedIndex};
    use crate::model::schema::arbitrary::{arb_event, arb_filter, arb_schema, entitlement_of};
    use crate::model::schema::tickstock::{self, TickStockFilter};
    use crate::model::schema::Schema;
    use crate::model::{Filter, MarketRegime, Priority, Tier};
    use bytes::Bytes;
    use proptest::prelude::{prop_assert_eq, prop_oneof, proptest};
    use proptest::strategy::Strategy as Gen;
    use std::sync::Arc;

    fn event(symbol: &str, tier: Tier, confidence: f64, user: Option<&str>) -> Event {
        let pattern = if confidence > 0.6 { "Doji" } else { "Hammer" };
        let mut body = serde_json::json!({"symbol": symbol, "pattern": pattern,
            "tier": tier.as_str(), "confidence": confidence, "market_regime": "bull"});
        if let Some(u) = user {
            body["user_id"] = u.into();
        }
        Event::from_json(Bytes::from(body.to_string()), None, 1 << 20).unwrap()
    }

    fn sub(conn: u64, id: u8, symbols: Vec<&str>, min_confidence: Option<f64>) -> Subscription {
        Subscription {
            conn: ConnId(conn),
            user: Some(format!("u{}", conn % 3).into()),
            id: format!("s{id}").into(),
            filter: criteria(TickStockFilter {
                symbols: symbols.into_iter().map(String::from).collect(),
                min_confidence,
                market_regimes: if id.is_multiple_of(2) {
                    vec![MarketRegime::Bull]
                } else {
                    vec![]
                },
                tiers: if id == 1 { vec![Tier::Daily] } else { vec![] },
                patterns: if conn.is_multiple_of(2) {
                    vec!["Doji".into()]
                } else {
                    vec![]
                },
                ..TickStockFilter::default()
            }),
            entitled: (conn == 4).then_some(1 << Tier::Intraday as u8),
        }
    }

    fn criteria(filter: TickStockFilter) -> crate::model::schema::Criteria {
        tickstock::schema().criteria(&filter.into(), 16).unwrap()
    }

    fn index() -> InvertedIndex {
        InvertedIndex::new(&tickstock::schema())
    }

    #[derive(Debug, Clone)]
    enum AnyOp {
        Subscribe(u64, u8, Filter),
        Unsubscribe(u64, u8),
        Route(Box<Event>),
    }

    fn any_ops(schema: Arc<Schema>) -> impl Gen<Value = (Arc<Schema>, Vec<AnyOp>)> {
        let op = prop_oneof![
            3 => (0u64..5, 0u8..3, arb_filter(&schema)).prop_map(|(c, i, f)| AnyOp::Subscribe(c, i, f)),
            1 => (0u64..5, 0u8..3).prop_map(|(c, i)| AnyOp::Unsubscribe(c, i)),
            6 => arb_event(&schema).prop_map(|e| AnyOp::Route(Box::new(e))),
        ];
        (
            proptest::strategy::Just(schema),
            proptest::collection::vec(op, 1..100),
        )
    }

    #[derive(Debug, Clone)]
    enum Op {
        Subscribe(u64, u8, Vec<&'static str>, Option<f64>),
        Unsubscribe(u64, u8),
        Disconnect(u64),
        Route(&'static str, Tier, f64, Option<&'static str>),
    }

    fn arb_op() -> impl Gen<Value = Op> {
        let symbol = proptest::sample::select(&["A", "B", "C"][..]);
        let conf = proptest::sample::select(&[0.0, 0.3, 0.5, 0.7, 0.9, 1.0][..]);
        prop_oneof![
            2 => (0u64..5, 0u8..3, proptest::collection::vec(symbol.clone(), 0..2), proptest::option::of(conf.clone()))
                .prop_map(|(c, i, s, m)| Op::Subscribe(c, i, s, m)),
            1 => (0u64..5, 0u8..3).prop_map(|(c, i)| Op::Unsubscribe(c, i)),
            1 => (0u64..5).prop_map(Op::Disconnect),
            6 => (symbol, proptest::sample::select(&Tier::ALL[..]), conf,
                  proptest::option::of(proptest::sample::select(&["u0", "u1"][..])))
                .prop_map(|(s, t, c, u)| Op::Route(s, t, c, u)),
        ]
    }

    proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(512))]

        /// The cached router always answers what an uncached index answers,
        /// whatever the interleaving of subscription changes and routes.
        #[test]
        fn cached_equals_uncached(ops in proptest::collection::vec(arb_op(), 1..120)) {
            let rules = RoutingRules(vec![crate::routing::RoutingRule {
                priorities: vec![Priority::Low],
                strategy: Strategy::BroadcastAll,
                ..Default::default()
            }]);
            let cached = IndexRouter::new(index(), rules.clone(), CacheConfig::default());
            let mut reference = BruteForceIndex::new();
            for op in ops {
                match op {
                    Op::Subscribe(c, i, s, m) => {
                        let sub = sub(c, i, s, m);
                        cached.subscribe(sub.clone());
                        reference.insert(sub);
                    }
                    Op::Unsubscribe(c, i) => {
                        let id = format!("s{i}");
                        prop_assert_eq!(cached.unsubscribe(ConnId(c), &id), reference.remove(ConnId(c), &id));
                    }
                    Op::Disconnect(c) => {
                        prop_assert_eq!(cached.disconnect(ConnId(c)), reference.remove_connection(ConnId(c)));
                    }
                    Op::Route(s, t, c, u) => {
                        let e = event(s, t, c, u);
                        let route = cached.route(&e);
                        let expected = match rules.strategy_for(&e) {
                            Strategy::BroadcastAll => reference.subscribed_connections(e.user_id()),
                            _ => reference.match_event(&e),
                        };
                        prop_assert_eq!(&*route.recipients, &expected);
                    }
                }
            }
        }

        /// The same on generated schemas: the cache key, derived from the
        /// event's values, never confuses two events of different audiences.
        #[test]
        fn cached_equals_uncached_on_any_schema(
            (schema, ops) in arb_schema().prop_flat_map(any_ops)
        ) {
            let cached = IndexRouter::new(InvertedIndex::new(&schema), RoutingRules::default(), CacheConfig::default());
            let mut reference = BruteForceIndex::new();
            for op in ops {
                match op {
                    AnyOp::Subscribe(c, i, f) => {
                        let Ok(filter) = schema.criteria(&f, 16) else { continue };
                        let sub = Subscription {
                            conn: ConnId(c),
                            user: Some(format!("u{}", c % 3).into()),
                            id: format!("s{i}").into(),
                            filter,
                            entitled: entitlement_of(&schema, c),
                        };
                        cached.subscribe(sub.clone());
                        reference.insert(sub);
                    }
                    AnyOp::Unsubscribe(c, i) => {
                        let id = format!("s{i}");
                        prop_assert_eq!(cached.unsubscribe(ConnId(c), &id), reference.remove(ConnId(c), &id));
                    }
                    AnyOp::Route(e) => {
                        prop_assert_eq!(&*cached.route(&e).recipients, &reference.match_event(&e));
                    }
                }
            }
        }
    }

    #[test]
    fn repeated_routes_hit_and_changes_invalidate() {
        let router = IndexRouter::new(index(), RoutingRules::default(), CacheConfig::default());
        router.subscribe(sub(1, 1, vec!["A"], None));
        let e = event("A", Tier::Daily, 0.7, None);
        assert_eq!(router.route(&e).recipients.len(), 1);
        assert_eq!(router.route(&e).recipients.len(), 1);
        assert_eq!(router.cache_counts(), CacheCounts { hits: 1, misses: 1 });
        router.subscribe(sub(2, 1, vec!["A"], None));
        assert_eq!(router.route(&e).recipients.len(), 2);
        assert_eq!(router.cache_counts().misses, 2);
    }

    #[test]
    fn zero_capacity_disables_the_cache() {
        let config = CacheConfig {
            capacity: 0,
            ..CacheConfig::default()
        };
        let router = IndexRouter::new(index(), RoutingRules::default(), config);
        let e = event("A", Tier::Daily, 0.7, None);
        router.route(&e);
        router.route(&e);
        assert_eq!(router.cache_counts(), CacheCounts { hits: 0, misses: 2 });
    }
}
