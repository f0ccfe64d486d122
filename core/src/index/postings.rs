//! Posting lists of the inverted index.
//!
//! A subscription is posted under one *anchor*: the values of its most
//! selective constrained field. Each posting list is split by the
//! subscription's `min_priority`, so an event never visits subscriptions
//! whose priority floor it is below.

use roaring::RoaringBitmap;
use rustc_hash::FxHashMap;

use crate::model::{Filter, Priority};

/// Slot of a subscription in the index's slab.
pub(crate) type Slot = u32;

/// One posting list per `min_priority` (none counts as low).
#[derive(Debug, Default, Clone)]
pub(crate) struct Buckets([RoaringBitmap; 4]);

impl Buckets {
    pub(crate) fn insert(&mut self, floor: Priority, slot: Slot) {
        self.0[floor.index()].insert(slot);
    }

    pub(crate) fn remove(&mut self, floor: Priority, slot: Slot) {
        self.0[floor.index()].remove(slot);
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.0.iter().all(RoaringBitmap::is_empty)
    }

    /// Slots whose floor is at most `priority`.
    pub(crate) fn up_to(&self, priority: Priority) -> impl Iterator<Item = Slot> + '_ {
        self.0[..=priority.index()].iter().flat_map(|b| b.iter())
    }
}

/// Which field a subscription is posted under, most selective first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Anchor {
    Symbol,
    Pattern,
    MarketRegime,
    Tier,
    EventType,
    /// No list is constrained: a candidate for every event.
    Any,
}

impl Anchor {
    pub(crate) fn of(filter: &Filter) -> Self {
        if !filter.symbols.is_empty() {
            Self::Symbol
        } else if !filter.patterns.is_empty() {
            Self::Pattern
        } else if !filter.market_regimes.is_empty() {
            Self::MarketRegime
        } else if !filter.tiers.is_empty() {
            Self::Tier
        } else if !filter.event_types.is_empty() {
            Self::EventType
        } else {
            Self::Any
        }
    }
}

/// Posting lists keyed by a string value; empty lists are dropped so that
/// values clients stop using do not accumulate.
#[derive(Debug, Default)]
pub(crate) struct StringPostings(FxHashMap<Box<str>, Buckets>);

impl StringPostings {
    pub(crate) fn insert(&mut self, values: &[String], floor: Priority, slot: Slot) {
        for v in values {
            self.0
                .entry(v.as_str().into())
                .or_default()
                .insert(floor, slot);
        }
    }

    pub(crate) fn remove(&mut self, values: &[String], floor: Priority, slot: Slot) {
        for v in values {
            if let Some(b) = self.0.get_mut(v.as_str()) {
                b.remove(floor, slot);
                if b.is_empty() {
                    self.0.remove(v.as_str());
                }
            }
        }
    }

    pub(crate) fn get(&self, value: Option<&str>) -> Option<&Buckets> {
        self.0.get(value?)
    }
}

/// Posting lists keyed by a small enum (tier, market regime).
#[derive(Debug)]
pub(crate) struct EnumPostings<const N: usize>([Buckets; N]);

impl<const N: usize> Default for EnumPostings<N> {
    fn default() -> Self {
        Self(std::array::from_fn(|_| Buckets::default()))
    }
}

impl<const N: usize> EnumPostings<N> {
    pub(crate) fn insert(
        &mut self,
        values: impl Iterator<Item = usize>,
        floor: Priority,
        slot: Slot,
    ) {
        values.for_each(|v| self.0[v].insert(floor, slot));
    }

    pub(crate) fn remove(
        &mut self,
        values: impl Iterator<Item = usize>,
        floor: Priority,
        slot: Slot,
    ) {
        values.for_each(|v| self.0[v].remove(floor, slot));
    }

    pub(crate) fn get(&self, value: Option<usize>) -> Option<&Buckets> {
        self.0.get(value?)
    }
}
