//! Posting lists of the inverted index.
//!
//! A subscription is posted under one *anchor*: the values of its most
//! selective constrained dimension (the schema's
//! [`anchors`](crate::model::schema::Schema::anchors) order). Each posting list is split by the
//! subscription's `min_priority`, so an event never visits subscriptions
//! whose priority floor it is below.

use roaring::RoaringBitmap;

use super::interner::Atom;
use crate::model::Priority;

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

    /// Slots whose floor is at most `priority`.
    pub(crate) fn up_to(&self, priority: Priority) -> impl Iterator<Item = Slot> + '_ {
        self.0[..=priority.index()].iter().flat_map(|b| b.iter())
    }
}

/// Posting lists indexed by a dense id (an interned string or an enum).
#[derive(Debug, Default)]
pub(crate) struct DensePostings(Vec<Buckets>);

impl DensePostings {
    pub(crate) fn insert(&mut self, id: Atom, floor: Priority, slot: Slot) {
        let i = id as usize;
        if self.0.len() <= i {
            self.0.resize_with(i + 1, Buckets::default);
        }
        self.0[i].insert(floor, slot);
    }

    pub(crate) fn remove(&mut self, id: Atom, floor: Priority, slot: Slot) {
        if let Some(b) = self.0.get_mut(id as usize) {
            b.remove(floor, slot);
        }
    }

    pub(crate) fn get(&self, id: Option<Atom>) -> Option<&Buckets> {
        self.0.get(id? as usize)
    }
}
