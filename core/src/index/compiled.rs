//! [`CompiledFilter`]: a subscription's filter in the form the index
//! verifies candidates with: interned ids and bit masks in one small
//! struct, so checking a candidate touches one or two cache lines and
//! compares integers, never strings.

use smallvec::SmallVec;

use super::interner::{Atom, Interner};
use crate::model::{ConnId, Event, MarketRegime, Priority, SubId, Subscription, Tier};

/// The interned vocabularies of an index.
#[derive(Debug, Default)]
pub(crate) struct Vocabulary {
    pub(crate) symbols: Interner,
    pub(crate) patterns: Interner,
    pub(crate) event_types: Interner,
}

/// An event's dimensions as ids; `None` for a value no subscription names
/// (it can then only satisfy filters that do not constrain it).
#[derive(Debug, Clone, Copy)]
pub(crate) struct EventKey {
    pub(crate) event_type: Option<Atom>,
    pub(crate) symbol: Option<Atom>,
    pub(crate) pattern: Option<Atom>,
    pub(crate) tier: Option<Tier>,
    pub(crate) regime: Option<MarketRegime>,
    pub(crate) confidence: Option<f64>,
    pub(crate) priority: Priority,
}

impl EventKey {
    pub(crate) fn of(event: &Event, vocab: &Vocabulary) -> Self {
        Self {
            event_type: vocab.event_types.get(event.event_type()),
            symbol: event.symbol().and_then(|s| vocab.symbols.get(s)),
            pattern: event.pattern().and_then(|p| vocab.patterns.get(p)),
            tier: event.tier(),
            regime: event.market_regime(),
            confidence: event.confidence(),
            priority: event.priority(),
        }
    }
}

/// Bit set of enum values; empty means "any".
fn mask<T: Copy>(values: &[T], bit: impl Fn(T) -> u8) -> u8 {
    values.iter().fold(0, |m, v| m | (1 << bit(*v)))
}

fn mask_allows(mask: u8, bit: Option<u8>) -> bool {
    mask == 0 || bit.is_some_and(|b| mask & (1 << b) != 0)
}

fn ids_allow(ids: &[Atom], value: Option<Atom>) -> bool {
    ids.is_empty() || value.is_some_and(|v| ids.contains(&v))
}

/// A subscription ready for verification.
#[derive(Debug, Clone)]
pub(crate) struct CompiledFilter {
    pub(crate) conn: ConnId,
    pub(crate) id: SubId,
    pub(crate) event_types: SmallVec<[Atom; 2]>,
    pub(crate) symbols: SmallVec<[Atom; 4]>,
    pub(crate) patterns: SmallVec<[Atom; 4]>,
    tiers: u8,
    regimes: u8,
    /// Tiers the user is entitled to; 0 = all.
    entitled: u8,
    min_priority: Priority,
    min_confidence: Option<f64>,
}

impl CompiledFilter {
    /// Compiles `sub`, taking references on its strings in `vocab`.
    pub(crate) fn compile(sub: &Subscription, vocab: &mut Vocabulary) -> Self {
        let f = &sub.filter;
        Self {
            conn: sub.conn,
            id: sub.id.clone(),
            event_types: f
                .event_types
                .iter()
                .map(|t| vocab.event_types.acquire(t))
                .collect(),
            symbols: f
                .symbols
                .iter()
                .map(|s| vocab.symbols.acquire(&s.to_uppercase()))
                .collect(),
            patterns: f
                .patterns
                .iter()
                .map(|p| vocab.patterns.acquire(p))
                .collect(),
            tiers: mask(&f.tiers, |t| t as u8),
            regimes: mask(&f.market_regimes, |r| r as u8),
            entitled: sub
                .allowed_tiers
                .as_deref()
                .map_or(0, |t| mask(t, |t| t as u8) | 0x80),
            min_priority: f.min_priority.unwrap_or(Priority::Low),
            min_confidence: f.min_confidence,
        }
    }

    /// Gives back the references taken by [`CompiledFilter::compile`].
    pub(crate) fn release(&self, vocab: &mut Vocabulary) {
        self.event_types
            .iter()
            .for_each(|&a| _ = vocab.event_types.release(a));
        self.symbols
            .iter()
            .for_each(|&a| _ = vocab.symbols.release(a));
        self.patterns
            .iter()
            .for_each(|&a| _ = vocab.patterns.release(a));
    }

    /// Same answer as [`Subscription::accepts`] for a public event, or for
    /// a private event of this subscription's user.
    pub(crate) fn accepts(&self, e: &EventKey) -> bool {
        e.priority >= self.min_priority
            && self
                .min_confidence
                .is_none_or(|min| e.confidence.is_some_and(|c| c >= min))
            && mask_allows(self.tiers, e.tier.map(|t| t as u8))
            && mask_allows(self.regimes, e.regime.map(|r| r as u8))
            && (self.entitled == 0 || e.tier.is_none_or(|t| self.entitled & (1 << t as u8) != 0))
            && ids_allow(&self.symbols, e.symbol)
            && ids_allow(&self.patterns, e.pattern)
            && ids_allow(&self.event_types, e.event_type)
    }
}
