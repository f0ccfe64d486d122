//! [`PopulationSpec`]: a seeded, realistic set of subscriptions.
//!
//! Each user holds one connection (`ConnId(n)`, user id `u{n}`) with
//! `subs_per_user` subscriptions `s0`, `s1`, .... Most subscriptions are
//! *watchlists*: 1 to 3 symbols drawn from the [`SymbolUniverse`], sometimes
//! narrowed by patterns, tiers, market regimes, a confidence floor or a
//! priority floor. A small share are *broad*: patterns only or tiers only,
//! always with a confidence floor of 0.7 or more (a firehose without a floor
//! is no use to a person). On top, `probe_audience` users hold one extra
//! subscription `probe` on [`PROBE_SYMBOL`], so an event on that symbol has
//! a known audience at any population size.
//!
//! Why the broad shares are small: every broad subscription is a candidate
//! for every event of its pattern or tier, so at 1M subscriptions a share of
//! even 1 % would give each event thousands of recipients; "an event with at
//! most 100 recipients" would not exist.

use std::sync::Arc;

use rand::rngs::StdRng;
use rand::seq::IndexedRandom;
use rand::{Rng, SeedableRng};
use tickcast_core::index::{InvertedIndex, SubscriptionIndex};
use tickcast_core::model::schema::tickstock::{self, TickStockFilter};
use tickcast_core::model::{
    ConnId, MarketRegime, Priority, Subscription, Tier, UserId, DEFAULT_MAX_VALUES_PER_LIST,
};

use crate::universe::{SymbolUniverse, PATTERNS, PROBE_SYMBOL};

/// The `min_confidence` values clients pick: steps of 0.05, as a slider
/// would offer. Few distinct floors keep the route cache's confidence rank
/// coarse, as it is with real clients.
pub const CONFIDENCE_FLOORS: [f64; 9] = [0.5, 0.55, 0.6, 0.65, 0.7, 0.75, 0.8, 0.85, 0.9];

/// The floors of broad subscriptions: the upper part of [`CONFIDENCE_FLOORS`].
const BROAD_CONFIDENCE_FLOORS: [f64; 5] = [0.7, 0.75, 0.8, 0.85, 0.9];

/// How a population is drawn. `Default` is the design's benchmark
/// population: 100k users x 10 subscriptions over 500 symbols.
#[derive(Debug, Clone, PartialEq)]
pub struct PopulationSpec {
    /// Users, one connection each.
    pub users: usize,
    /// Subscriptions per user.
    pub subs_per_user: usize,
    /// Size of the symbol universe.
    pub symbols: usize,
    /// Zipf exponent of symbol popularity.
    pub zipf_exponent: f64,
    /// Share of subscriptions on patterns only (no symbol).
    pub pattern_only_share: f64,
    /// Share of subscriptions on tiers only (no symbol, no pattern).
    pub tier_only_share: f64,
    /// Users holding the extra `probe` subscription on [`PROBE_SYMBOL`];
    /// at most `users`.
    pub probe_audience: usize,
    /// Seed of the generator.
    pub seed: u64,
}

impl Default for PopulationSpec {
    fn default() -> Self {
        Self {
            users: 100_000,
            subs_per_user: 10,
            symbols: 500,
            zipf_exponent: 1.0,
            pattern_only_share: 0.002,
            tier_only_share: 0.0002,
            probe_audience: 50,
            seed: 0x71C4_CA57,
        }
    }
}

impl PopulationSpec {
    /// The default spec with `users` users.
    pub fn with_users(users: usize) -> Self {
        Self {
            users,
            ..Self::default()
        }
    }

    /// Number of subscriptions the spec generates, probes included.
    pub fn subscription_count(&self) -> usize {
        self.users * self.subs_per_user + self.probe_audience
    }

    /// The symbol universe subscriptions (and events) are drawn from.
    pub fn universe(&self) -> SymbolUniverse {
        SymbolUniverse::new(self.symbols, self.zipf_exponent)
    }

    /// The subscriptions, users in order (`u0`'s first), then the probes.
    ///
    /// # Panics
    /// When `probe_audience > users`.
    pub fn subscriptions(&self) -> Subscriptions {
        assert!(
            self.probe_audience <= self.users,
            "probe_audience ({}) exceeds users ({})",
            self.probe_audience,
            self.users
        );
        Subscriptions {
            spec: self.clone(),
            universe: self.universe(),
            rng: StdRng::seed_from_u64(self.seed),
            next: 0,
            user: None,
        }
    }

    /// An [`InvertedIndex`] holding the whole population.
    pub fn build_index(&self) -> InvertedIndex {
        let mut index = InvertedIndex::new(&tickstock::schema());
        for sub in self.subscriptions() {
            index.insert(sub);
        }
        index
    }
}

/// The subscriptions of a [`PopulationSpec`], generated lazily so that a
/// million of them never sit in memory twice.
#[derive(Debug)]
pub struct Subscriptions {
    spec: PopulationSpec,
    universe: SymbolUniverse,
    rng: StdRng,
    /// Position in `0..spec.subscription_count()`.
    next: usize,
    /// The current user's id, shared by all of its subscriptions.
    user: Option<(usize, UserId)>,
}

impl Subscriptions {
    fn user_id(&mut self, n: usize) -> UserId {
        match &self.user {
            Some((m, id)) if *m == n => id.clone(),
            _ => {
                let id: UserId = Arc::from(format!("u{n}"));
                self.user = Some((n, id.clone()));
                id
            }
        }
    }

    fn subscription(&mut self, user: usize, id: String, filter: TickStockFilter) -> Subscription {
        Subscription {
            conn: ConnId(user as u64),
            user: Some(self.user_id(user)),
            id: id.into(),
            filter: tickstock::schema()
                .criteria(&filter.into(), DEFAULT_MAX_VALUES_PER_LIST)
                .expect("generated filters are valid"),
            entitled: None,
        }
    }

    fn filter(&mut self) -> TickStockFilter {
        let spec = &self.spec;
        let rng = &mut self.rng;
        let kind: f64 = rng.random();
        if kind < spec.pattern_only_share {
            pattern_only(rng)
        } else if kind < spec.pattern_only_share + spec.tier_only_share {
            tier_only(rng)
        } else {
            watchlist(rng, &self.universe)
        }
    }
}

impl Iterator for Subscriptions {
    type Item = Subscription;

    fn next(&mut self) -> Option<Subscription> {
        let n = self.next;
        let regular = self.spec.users * self.spec.subs_per_user;
        if n >= self.spec.subscription_count() {
            return None;
        }
        self.next += 1;
        if n < regular {
            let (user, k) = (n / self.spec.subs_per_user, n % self.spec.subs_per_user);
            let filter = self.filter();
            return Some(self.subscription(user, format!("s{k}"), filter));
        }
        // Probes: spread evenly over the users.
        let user = (n - regular) * self.spec.users / self.spec.probe_audience;
        let filter = TickStockFilter {
            symbols: vec![PROBE_SYMBOL.to_owned()],
            ..TickStockFilter::default()
        };
        Some(self.subscription(user, "probe".to_owned(), filter))
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let left = self.spec.subscription_count() - self.next;
        (left, Some(left))
    }
}

impl ExactSizeIterator for Subscriptions {}

/// A broad subscription on 1 to 3 patterns (no symbol), with the floors of
/// broad subscriptions: a confidence floor of 0.7 or more, and a priority
/// floor (high or critical) on a quarter of them. Public so that
/// `tickcast-load` draws the same shapes.
pub fn pattern_only<R: Rng + ?Sized>(rng: &mut R) -> TickStockFilter {
    let patterns = some_of(rng, &PATTERNS, 1..=3);
    broad(
        rng,
        TickStockFilter {
            patterns: patterns.into_iter().map(String::from).collect(),
            ..TickStockFilter::default()
        },
    )
}

/// A broad subscription on 1 or 2 tiers (no symbol, no pattern), with the
/// floors of broad subscriptions (see [`pattern_only`]).
pub fn tier_only<R: Rng + ?Sized>(rng: &mut R) -> TickStockFilter {
    let tiers = some_of(rng, &Tier::ALL, 1..=2);
    broad(
        rng,
        TickStockFilter {
            tiers,
            ..TickStockFilter::default()
        },
    )
}

/// A watchlist subscription: 1 to 3 symbols (50/30/20 %), narrowed by
/// patterns (25 %), tiers (30 %), market regimes (5 %), a confidence floor
/// (30 %) or a priority floor (3 %).
pub fn watchlist<R: Rng + ?Sized>(rng: &mut R, universe: &SymbolUniverse) -> TickStockFilter {
    let count = match rng.random_range(0..10) {
        0..5 => 1,
        5..8 => 2,
        _ => 3,
    };
    let symbols = (0..count)
        .map(|_| universe.sample(rng).to_owned())
        .collect();
    let patterns = if rng.random_bool(0.25) {
        some_of(rng, &PATTERNS, 1..=3)
            .into_iter()
            .map(String::from)
            .collect()
    } else {
        Vec::new()
    };
    let tiers = if rng.random_bool(0.3) {
        some_of(rng, &Tier::ALL, 1..=2)
    } else {
        Vec::new()
    };
    let market_regimes = if rng.random_bool(0.05) {
        some_of(rng, &MarketRegime::ALL, 1..=2)
    } else {
        Vec::new()
    };
    let min_confidence = rng
        .random_bool(0.3)
        .then(|| *CONFIDENCE_FLOORS.choose(rng).expect("non-empty"));
    let min_priority = rng
        .random_bool(0.03)
        .then(|| *Priority::ALL[1..].choose(rng).expect("non-empty"));
    TickStockFilter {
        symbols,
        patterns,
        tiers,
        market_regimes,
        min_confidence,
        min_priority,
        ..TickStockFilter::default()
    }
}

/// Adds a broad subscription's floors: always a confidence floor of 0.7 or
/// more, and a priority floor (high or critical) on a quarter of them.
fn broad<R: Rng + ?Sized>(rng: &mut R, filter: TickStockFilter) -> TickStockFilter {
    let min_confidence = Some(*BROAD_CONFIDENCE_FLOORS.choose(rng).expect("non-empty"));
    let min_priority = rng.random_bool(0.25).then(|| {
        *[Priority::High, Priority::Critical]
            .choose(rng)
            .expect("non-empty")
    });
    TickStockFilter {
        min_confidence,
        min_priority,
        ..filter
    }
}

/// Between `range.start()` and `range.end()` distinct values of `all`.
fn some_of<T: Copy, R: Rng + ?Sized>(
    rng: &mut R,
    all: &[T],
    range: std::ops::RangeInclusive<usize>,
) -> Vec<T> {
    let count = rng.random_range(range);
    all.choose_multiple(rng, count).copied().collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spec_is_deterministic_and_complete() {
        let spec = PopulationSpec {
            users: 200,
            probe_audience: 7,
            ..PopulationSpec::default()
        };
        let a: Vec<_> = spec.subscriptions().collect();
        let b: Vec<_> = spec.subscriptions().collect();
        assert_eq!(a, b);
        assert_eq!(a.len(), spec.subscription_count());
        assert_eq!(a[0].conn, ConnId(0));
        assert_eq!(&*a[0].id, "s0");
        assert_eq!(a[0].user.as_deref(), Some("u0"));
        let probes: Vec<_> = a.iter().filter(|s| &*s.id == "probe").collect();
        assert_eq!(probes.len(), 7);
        let mut conns: Vec<_> = probes.iter().map(|s| s.conn).collect();
        conns.dedup();
        assert_eq!(conns.len(), 7, "one probe per user");
        assert_eq!(spec.build_index().len(), spec.subscription_count());
    }
}
