//! [`Versions`]: change counters that tell a cache when an answer of the
//! index may have changed.
//!
//! Every posting list an event can be matched through (a symbol, a
//! pattern, a user, ...) hashes to one of a fixed number of counters, and
//! every change to that list bumps its counter. The version of an event is
//! the sum of the counters of the lists it reads. Counters only grow, so a
//! change to any list the event depends on strictly increases the sum;
//! collisions only cause extra invalidations, never stale answers. The
//! table has a fixed size, so values clients stop using cost nothing.

use std::hash::{BuildHasher, Hash};

use rustc_hash::FxBuildHasher;

use crate::model::schema::DimId;
use crate::model::{Event, Value};

const SLOTS: usize = 1 << 16;

/// One kind of posting list.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum ListKind {
    /// The lists of one dimension, by value.
    Dim(DimId),
    /// Subscriptions that constrain no anchor dimension.
    Any,
    /// A user's subscriptions (private events).
    User,
}

#[derive(Debug)]
pub(crate) struct Versions {
    counters: Box<[u64]>,
    /// Changes of any kind (the version of `subscribed_connections`).
    total: u64,
}

impl Default for Versions {
    fn default() -> Self {
        Self {
            counters: vec![0; SLOTS].into_boxed_slice(),
            total: 0,
        }
    }
}

fn slot(kind: ListKind, value: impl Hash) -> usize {
    FxBuildHasher.hash_one((kind, value)) as usize % SLOTS
}

impl Versions {
    /// Records a change to the list `(kind, value)`.
    pub(crate) fn bump(&mut self, kind: ListKind, value: impl Hash) {
        self.counters[slot(kind, value)] += 1;
        self.total += 1;
    }

    fn get(&self, kind: ListKind, value: impl Hash) -> u64 {
        self.counters[slot(kind, value)]
    }

    /// The version of the answer for `event`, which reads the lists of
    /// its values in the `anchors` dimensions.
    pub(crate) fn of(&self, event: &Event, anchors: &[DimId]) -> u64 {
        if let Some(user) = event.user_id() {
            return self.get(ListKind::User, user);
        }
        let lists: u64 = anchors
            .iter()
            .map(|&dim| match event.value(dim) {
                Some(Value::Text(t)) => self.get(ListKind::Dim(dim), &**t),
                Some(Value::Choice(c)) => self.get(ListKind::Dim(dim), u32::from(*c)),
                _ => 0,
            })
            .sum();
        lists + self.get(ListKind::Any, ())
    }

    /// The version of every answer.
    pub(crate) fn total(&self) -> u64 {
        self.total
    }
}
