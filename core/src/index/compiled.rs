//! [`CompiledFilter`]: a subscription's criteria in the form the index
//! verifies candidates with: interned ids, bit masks and bounds in one
//! small struct, so checking a candidate compares integers, never strings.

use bytes::Bytes;
use smallvec::SmallVec;

use super::interner::{Atom, Interner};
use crate::model::schema::{DimId, Test};
use crate::model::{ConnId, Event, Priority, SubId, Subscription, Value};
use crate::protocol::subs_field;

/// The interned text values of an index, one interner per dimension.
#[derive(Debug, Default)]
pub(crate) struct Vocabulary(Vec<Interner>);

impl Vocabulary {
    pub(crate) fn get(&self, dim: DimId, text: &str) -> Option<Atom> {
        self.0.get(dim.index())?.get(text)
    }

    fn acquire(&mut self, dim: DimId, text: &str) -> Atom {
        let i = dim.index();
        if self.0.len() <= i {
            self.0.resize_with(i + 1, Interner::default);
        }
        self.0[i].acquire(text)
    }

    fn release(&mut self, dim: DimId, atom: Atom) {
        if let Some(interner) = self.0.get_mut(dim.index()) {
            interner.release(atom);
        }
    }
}

/// One dimension of an event, as the index compares it.
#[derive(Debug, Clone, Copy)]
pub(crate) enum KeyValue {
    /// The event lacks the dimension.
    Absent,
    /// A text value's id; `None` when no subscription names the value (it
    /// can then only satisfy criteria that do not constrain it).
    Text(Option<Atom>),
    /// A choice's code.
    Choice(u8),
    /// A number.
    Number(f64),
}

impl KeyValue {
    /// The posting-list id this value is found under, if any.
    pub(crate) fn list_id(self) -> Option<u32> {
        match self {
            Self::Text(atom) => atom,
            Self::Choice(c) => Some(c as u32),
            Self::Absent | Self::Number(_) => None,
        }
    }
}

/// An event's dimensions as ids.
#[derive(Debug, Clone)]
pub(crate) struct EventKey {
    pub(crate) values: SmallVec<[KeyValue; 8]>,
    /// The event's choice in the entitlement dimension, if any.
    entitled_choice: Option<u8>,
    pub(crate) priority: Priority,
}

impl EventKey {
    pub(crate) fn of(event: &Event, vocab: &Vocabulary) -> Self {
        let values = event
            .values()
            .iter()
            .enumerate()
            .map(|(i, v)| match v {
                None => KeyValue::Absent,
                Some(Value::Text(t)) => KeyValue::Text(vocab.get(DimId::at(i), t)),
                Some(Value::Choice(c)) => KeyValue::Choice(*c),
                Some(Value::Number(n)) => KeyValue::Number(*n),
            })
            .collect();
        let entitled_choice = event
            .schema()
            .entitlement()
            .and_then(|e| event.value(e.dim))
            .and_then(Value::choice);
        Self {
            values,
            entitled_choice,
            priority: event.priority(),
        }
    }

    pub(crate) fn value(&self, dim: DimId) -> KeyValue {
        self.values
            .get(dim.index())
            .copied()
            .unwrap_or(KeyValue::Absent)
    }
}

/// A condition with its text values interned.
#[derive(Debug, Clone)]
enum Check {
    Atoms(SmallVec<[Atom; 4]>),
    Mask(u64),
    Range(Option<f64>, Option<f64>),
}

/// A subscription ready for verification.
#[derive(Debug, Clone)]
pub(crate) struct CompiledFilter {
    pub(crate) conn: ConnId,
    pub(crate) id: SubId,
    /// `subs` of a frame matching only this subscription, encoded once:
    /// most recipients match one subscription of theirs.
    pub(crate) alone: Bytes,
    checks: SmallVec<[(DimId, Check); 3]>,
    /// Entitlement bits; `None` = all.
    entitled: Option<u64>,
    min_priority: Priority,
}

impl CompiledFilter {
    /// Compiles `sub`, taking references on its strings in `vocab`.
    pub(crate) fn compile(sub: &Subscription, vocab: &mut Vocabulary) -> Self {
        let f = &sub.filter;
        let mut checks: SmallVec<[(DimId, Check); 3]> = f
            .conditions()
            .iter()
            .map(|c| {
                let check = match &c.test {
                    Test::Texts(list) => {
                        Check::Atoms(list.iter().map(|t| vocab.acquire(c.dim, t)).collect())
                    }
                    Test::Choices(mask) => Check::Mask(*mask),
                    Test::Range { min, max } => Check::Range(*min, *max),
                };
                (c.dim, check)
            })
            .collect();
        // Bounds and bit masks first: they reject broad subscriptions (a
        // confidence floor) with one comparison, before any list scan.
        checks.sort_by_key(|(_, check)| match check {
            Check::Range(..) => 0,
            Check::Mask(_) => 1,
            Check::Atoms(_) => 2,
        });
        Self {
            conn: sub.conn,
            id: sub.id.clone(),
            alone: subs_field(std::slice::from_ref(&sub.id)),
            checks,
            entitled: sub.entitled,
            min_priority: f.min_priority().unwrap_or(Priority::Low),
        }
    }

    /// The ids this filter is posted under in `dim`'s lists (its atoms or
    /// choices there); empty when it does not constrain `dim`.
    pub(crate) fn list_ids(&self, dim: DimId) -> SmallVec<[u32; 4]> {
        match self.checks.iter().find(|(d, _)| *d == dim) {
            Some((_, Check::Atoms(atoms))) => atoms.clone(),
            Some((_, Check::Mask(mask))) => (0..64).filter(|b| mask & (1 << b) != 0).collect(),
            _ => SmallVec::new(),
        }
    }

    /// Gives back the references taken by [`CompiledFilter::compile`].
    pub(crate) fn release(&self, vocab: &mut Vocabulary) {
        for (dim, check) in &self.checks {
            if let Check::Atoms(atoms) = check {
                atoms.iter().for_each(|&a| vocab.release(*dim, a));
            }
        }
    }

    /// Same answer as [`Subscription::accepts`] for a public event, or for
    /// a private event of this subscription's user.
    pub(crate) fn accepts(&self, e: &EventKey) -> bool {
        e.priority >= self.min_priority
            && self
                .entitled
                .is_none_or(|mask| e.entitled_choice.is_none_or(|c| mask & (1 << c) != 0))
            && self
                .checks
                .iter()
                .all(|(dim, check)| passes(check, e.value(*dim)))
    }
}

fn passes(check: &Check, value: KeyValue) -> bool {
    match (check, value) {
        (Check::Atoms(ids), KeyValue::Text(Some(v))) => ids.contains(&v),
        (Check::Mask(mask), KeyValue::Choice(c)) => mask & (1 << c) != 0,
        (Check::Range(min, max), KeyValue::Number(v)) => {
            min.is_none_or(|m| v >= m) && max.is_none_or(|m| v <= m)
        }
        _ => false,
    }
}
