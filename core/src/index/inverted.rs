//! [`InvertedIndex`]: posting lists per field value, so that matching an
//! event visits only the subscriptions anchored on one of its values.
//!
//! Every subscription is posted under exactly one anchor field (its most
//! selective constrained one, see [`Anchor`]) and, within it, under the
//! bucket of its `min_priority`. An event looks up its own value in each
//! anchor table, visits the buckets at or below its priority, and verifies
//! each candidate against its [`CompiledFilter`] (integers and bit masks).
//! The candidates are the subscriptions that agree with the event on their
//! anchor field, so the work grows with the audience of the event, not with
//! the number of subscriptions. Private events are matched from the user's
//! own subscriptions only.

use std::sync::Arc;

use roaring::RoaringBitmap;
use rustc_hash::FxHashMap;
use smallvec::SmallVec;

use super::compiled::{CompiledFilter, EventKey, Vocabulary};
use super::postings::{Buckets, DensePostings, Slot};
use super::versions::{ListKind, Versions};
use super::{Recipient, Recipients, SubscriptionIndex};
use crate::model::schema::{DimId, Schema, Test};
use crate::model::{ConnId, Event, Priority, Subscription, UserId};

/// The production subscription index.
#[derive(Debug)]
pub struct InvertedIndex {
    /// Dimensions a subscription may be posted under, most selective first.
    anchors: Vec<DimId>,
    /// Subscriptions by slot; `None` marks a free slot.
    slots: Vec<Option<Subscription>>,
    /// The same subscriptions, compiled for matching (stale where free).
    compiled: Vec<Option<CompiledFilter>>,
    free: Vec<Slot>,
    vocab: Vocabulary,
    /// Each connection's slots, for unsubscribe by id and disconnect.
    by_conn: FxHashMap<ConnId, SmallVec<[Slot; 4]>>,
    /// Each user's slots: the candidates of that user's private events.
    by_user: FxHashMap<UserId, RoaringBitmap>,
    /// Posting lists by dimension (only anchors are filled), by value id.
    lists: Vec<DensePostings>,
    any: Buckets,
    versions: Versions,
    len: usize,
}

impl InvertedIndex {
    /// An empty index over `schema`'s dimensions.
    pub fn new(schema: &Arc<Schema>) -> Self {
        Self {
            anchors: schema.anchors().to_vec(),
            slots: Vec::new(),
            compiled: Vec::new(),
            free: Vec::new(),
            vocab: Vocabulary::default(),
            by_conn: FxHashMap::default(),
            by_user: FxHashMap::default(),
            lists: (0..schema.dimensions().len())
                .map(|_| DensePostings::default())
                .collect(),
            any: Buckets::default(),
            versions: Versions::default(),
            len: 0,
        }
    }

    fn slot_of(&self, conn: ConnId, id: &str) -> Option<Slot> {
        self.by_conn.get(&conn)?.iter().copied().find(|&s| {
            self.slots[s as usize]
                .as_ref()
                .is_some_and(|sub| &*sub.id == id)
        })
    }

    /// The first anchor dimension `sub` constrains, if any.
    fn anchor_of(&self, sub: &Subscription) -> Option<DimId> {
        self.anchors
            .iter()
            .copied()
            .find(|&dim| sub.filter.condition(dim).is_some())
    }

    /// Adds (`add`) or removes `slot` in the posting lists of its anchor and
    /// of its user, bumping the versions of the lists it changes.
    fn post(&mut self, slot: Slot, sub: &Subscription, compiled: &CompiledFilter, add: bool) {
        let floor = sub.filter.min_priority().unwrap_or(Priority::Low);
        match self.anchor_of(sub) {
            Some(dim) => {
                let postings = &mut self.lists[dim.index()];
                for id in compiled.list_ids(dim) {
                    if add {
                        postings.insert(id, floor, slot);
                    } else {
                        postings.remove(id, floor, slot);
                    }
                }
                self.bump_anchor_versions(dim, sub);
            }
            None => {
                if add {
                    self.any.insert(floor, slot);
                } else {
                    self.any.remove(floor, slot);
                }
                self.versions.bump(ListKind::Any, ());
            }
        }
        self.post_user(slot, sub, add);
    }

    /// Bumps the versions of the lists named by the anchor's values, keyed
    /// the way [`Versions::of`] reads them.
    fn bump_anchor_versions(&mut self, dim: DimId, sub: &Subscription) {
        let kind = ListKind::Dim(dim);
        match sub.filter.condition(dim) {
            Some(Test::Texts(list)) => list.iter().for_each(|t| self.versions.bump(kind, &**t)),
            Some(Test::Choices(mask)) => (0..64u32)
                .filter(|b| mask & (1 << b) != 0)
                .for_each(|b| self.versions.bump(kind, b)),
            _ => {}
        }
    }

    fn post_user(&mut self, slot: Slot, sub: &Subscription, add: bool) {
        let Some(user) = &sub.user else { return };
        self.versions.bump(ListKind::User, &**user);
        if add {
            self.by_user.entry(user.clone()).or_default().insert(slot);
        } else if let Some(set) = self.by_user.get_mut(user) {
            set.remove(slot);
            if set.is_empty() {
                self.by_user.remove(user);
            }
        }
    }

    fn take_slot(&mut self, slot: Slot) -> Option<Subscription> {
        let sub = self.slots[slot as usize].take()?;
        let compiled = self.compiled[slot as usize].take()?;
        self.post(slot, &sub, &compiled, false);
        compiled.release(&mut self.vocab);
        self.free.push(slot);
        self.len -= 1;
        Some(sub)
    }

    fn remove_slot_of_conn(&mut self, conn: ConnId, slot: Slot) -> Option<Subscription> {
        if let Some(slots) = self.by_conn.get_mut(&conn) {
            slots.retain(|s| *s != slot);
            if slots.is_empty() {
                self.by_conn.remove(&conn);
            }
        }
        self.take_slot(slot)
    }

    /// The posting lists an event can match through: its value's list in
    /// each anchor dimension, and the unanchored subscriptions.
    fn candidate_lists<'a>(&'a self, key: &'a EventKey) -> impl Iterator<Item = &'a Buckets> {
        self.anchors
            .iter()
            .filter_map(|&dim| self.lists[dim.index()].get(key.value(dim).list_id()))
            .chain(std::iter::once(&self.any))
    }

    fn verify(&self, slot: Slot, key: &EventKey, out: &mut Vec<(ConnId, Slot)>) {
        if let Some(Some(c)) = self.compiled.get(slot as usize) {
            if c.accepts(key) {
                out.push((c.conn, slot));
            }
        }
    }

    /// Groups `(conn, slot)` matches by connection, ids sorted.
    fn group(&self, mut matches: Vec<(ConnId, Slot)>) -> Recipients {
        matches.sort_unstable();
        let mut out: Recipients = Vec::with_capacity(matches.len());
        for (conn, slot) in matches {
            let Some(Some(c)) = self.compiled.get(slot as usize) else {
                continue;
            };
            match out.last_mut() {
                Some(last) if last.conn == conn => last.add_sub(c.id.clone()),
                _ => out.push(Recipient::encoded(
                    conn,
                    SmallVec::from_elem(c.id.clone(), 1),
                    c.alone.clone(),
                )),
            }
        }
        out
    }
}

impl SubscriptionIndex for InvertedIndex {
    fn insert(&mut self, sub: Subscription) -> Option<Subscription> {
        let replaced = self
            .slot_of(sub.conn, &sub.id)
            .and_then(|slot| self.remove_slot_of_conn(sub.conn, slot));
        let slot = match self.free.pop() {
            Some(s) => s,
            None => {
                self.slots.push(None);
                self.compiled.push(None);
                (self.slots.len() - 1) as Slot
            }
        };
        let compiled = CompiledFilter::compile(&sub, &mut self.vocab);
        self.post(slot, &sub, &compiled, true);
        self.by_conn.entry(sub.conn).or_default().push(slot);
        self.slots[slot as usize] = Some(sub);
        self.compiled[slot as usize] = Some(compiled);
        self.len += 1;
        replaced
    }

    fn remove(&mut self, conn: ConnId, id: &str) -> Option<Subscription> {
        let slot = self.slot_of(conn, id)?;
        self.remove_slot_of_conn(conn, slot)
    }

    fn remove_connection(&mut self, conn: ConnId) -> usize {
        let Some(slots) = self.by_conn.remove(&conn) else {
            return 0;
        };
        slots.iter().filter_map(|&s| self.take_slot(s)).count()
    }

    fn match_event(&self, event: &Event) -> Recipients {
        let key = EventKey::of(event, &self.vocab);
        let mut matches = Vec::new();
        if let Some(user) = event.user_id() {
            for slot in self.by_user.get(user).into_iter().flat_map(|s| s.iter()) {
                self.verify(slot, &key, &mut matches);
            }
            return self.group(matches);
        }
        for list in self.candidate_lists(&key) {
            for slot in list.up_to(key.priority) {
                self.verify(slot, &key, &mut matches);
            }
        }
        self.group(matches)
    }

    fn subscribed_connections(&self, user: Option<&str>) -> Recipients {
        let mut conns: Vec<ConnId> = match user {
            None => self.by_conn.keys().copied().collect(),
            Some(user) => self
                .by_user
                .get(user)
                .into_iter()
                .flat_map(|slots| slots.iter())
                .filter_map(|s| self.slots[s as usize].as_ref().map(|sub| sub.conn))
                .collect(),
        };
        conns.sort_unstable();
        conns.dedup();
        conns
            .into_iter()
            .map(|conn| Recipient::new(conn, SmallVec::new()))
            .collect()
    }

    fn connection_subscriptions(&self, conn: ConnId) -> Vec<Subscription> {
        self.by_conn
            .get(&conn)
            .into_iter()
            .flatten()
            .filter_map(|&s| self.slots[s as usize].clone())
            .collect()
    }

    fn version(&self, event: &Event) -> u64 {
        self.versions.of(event, &self.anchors)
    }

    fn version_all(&self) -> u64 {
        self.versions.total()
    }

    fn len(&self) -> usize {
        self.len
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::index::BruteForceIndex;
    use crate::model::schema::arbitrary::{
        arb_event, arb_filter, arb_schema, entitlement_of, USERS,
    };
    use crate::model::schema::tickstock;
    use crate::model::{Filter, SubId};
    use crate::protocol::subs_field;
    use proptest::prelude::*;

    #[derive(Debug, Clone)]
    enum Op {
        Insert {
            conn: u64,
            id: u8,
            user: Option<usize>,
            filter: Filter,
        },
        Remove {
            conn: u64,
            id: u8,
        },
        Disconnect {
            conn: u64,
        },
        Match(Event),
    }

    fn arb_op(schema: &Arc<Schema>) -> impl Strategy<Value = Op> {
        prop_oneof![
            4 => (0u64..6, 0u8..3, proptest::option::of(0usize..3), arb_filter(schema))
                .prop_map(|(conn, id, user, filter)| Op::Insert { conn, id, user, filter }),
            1 => (0u64..6, 0u8..3).prop_map(|(conn, id)| Op::Remove { conn, id }),
            1 => (0u64..6).prop_map(|conn| Op::Disconnect { conn }),
            4 => arb_event(schema).prop_map(Op::Match),
        ]
    }

    fn ops(schema: Arc<Schema>) -> impl Strategy<Value = (Arc<Schema>, Vec<Op>)> {
        let ops = proptest::collection::vec(arb_op(&schema), 1..80);
        (Just(schema), ops)
    }

    /// Runs `ops` on both indexes, checking every answer is the same.
    fn same_answers(schema: &Arc<Schema>, ops: Vec<Op>) -> Result<(), TestCaseError> {
        let mut fast = InvertedIndex::new(schema);
        let mut slow = BruteForceIndex::new();
        // A connection belongs to one user for its whole life.
        let mut owner: FxHashMap<u64, Option<UserId>> = FxHashMap::default();
        for op in ops {
            match op {
                Op::Insert {
                    conn,
                    id,
                    user,
                    filter,
                } => {
                    let user = owner
                        .entry(conn)
                        .or_insert_with(|| user.map(|u| UserId::from(USERS[u])))
                        .clone();
                    let Ok(filter) = schema.criteria(&filter, 16) else {
                        continue;
                    };
                    let sub = Subscription {
                        conn: ConnId(conn),
                        user,
                        id: SubId::from(format!("s{id}")),
                        filter,
                        // Entitlements are per user: odd connections get some.
                        entitled: entitlement_of(schema, conn),
                    };
                    prop_assert_eq!(fast.insert(sub.clone()), slow.insert(sub));
                }
                Op::Remove { conn, id } => {
                    let id = format!("s{id}");
                    prop_assert_eq!(
                        fast.remove(ConnId(conn), &id),
                        slow.remove(ConnId(conn), &id)
                    );
                }
                Op::Disconnect { conn } => {
                    prop_assert_eq!(
                        fast.remove_connection(ConnId(conn)),
                        slow.remove_connection(ConnId(conn))
                    );
                }
                Op::Match(event) => {
                    let answer = fast.match_event(&event);
                    // Subs encoded ahead (one match) or at first use
                    // (several) are the list's encoding.
                    for r in &answer {
                        prop_assert_eq!(r.subs_field(), &subs_field(r.subs()));
                    }
                    prop_assert_eq!(answer, slow.match_event(&event));
                    let user = event.user_id();
                    prop_assert_eq!(
                        fast.subscribed_connections(user),
                        slow.subscribed_connections(user)
                    );
                }
            }
            prop_assert_eq!(fast.len(), slow.len());
        }
        Ok(())
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        /// With TickStock's schema, the inverted index answers exactly like
        /// the brute-force matcher under any interleaving of inserts,
        /// removals and matches.
        #[test]
        fn equals_brute_force((schema, ops) in ops(tickstock::schema())) {
            same_answers(&schema, ops)?;
        }

        /// The same on generated schemas.
        #[test]
        fn equals_brute_force_on_any_schema((schema, ops) in arb_schema().prop_flat_map(ops)) {
            same_answers(&schema, ops)?;
        }
    }

    #[test]
    fn freed_slots_are_reused_and_lists_emptied() {
        let schema = tickstock::schema();
        let symbol = schema.dim("symbol").unwrap();
        let mut index = InvertedIndex::new(&schema);
        for i in 0..10 {
            let filter = Filter::new().values("symbols", [format!("S{i}")]);
            index.insert(Subscription {
                conn: ConnId(i),
                user: Some("u".into()),
                id: "s".into(),
                filter: schema.criteria(&filter, 16).unwrap(),
                entitled: None,
            });
        }
        for i in 0..10 {
            assert_eq!(index.remove_connection(ConnId(i)), 1);
        }
        assert!(index.is_empty());
        assert!(index.by_conn.is_empty() && index.by_user.is_empty());
        assert_eq!(
            index.vocab.get(symbol, "S3"),
            None,
            "unused values are forgotten"
        );
        index.insert(Subscription {
            conn: ConnId(99),
            user: None,
            id: "s".into(),
            filter: Default::default(),
            entitled: None,
        });
        assert_eq!(index.slots.len(), 10);
    }
}
