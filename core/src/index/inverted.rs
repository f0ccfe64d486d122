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

use roaring::RoaringBitmap;
use rustc_hash::FxHashMap;
use smallvec::SmallVec;

use super::compiled::{CompiledFilter, EventKey, Vocabulary};
use super::postings::{Anchor, Buckets, DensePostings, Slot};
use super::versions::{ListKind, Versions};
use super::{Recipient, Recipients, SubscriptionIndex};
use crate::model::{ConnId, Event, Priority, Subscription, UserId};

/// The production subscription index.
#[derive(Debug, Default)]
pub struct InvertedIndex {
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
    symbols: DensePostings,
    patterns: DensePostings,
    event_types: DensePostings,
    regimes: DensePostings,
    tiers: DensePostings,
    any: Buckets,
    versions: Versions,
    len: usize,
}

impl InvertedIndex {
    /// An empty index.
    pub fn new() -> Self {
        Self::default()
    }

    fn slot_of(&self, conn: ConnId, id: &str) -> Option<Slot> {
        self.by_conn.get(&conn)?.iter().copied().find(|&s| {
            self.slots[s as usize]
                .as_ref()
                .is_some_and(|sub| &*sub.id == id)
        })
    }

    /// Adds (`add`) or removes `slot` in the posting lists of its anchor and
    /// of its user, bumping the versions of the lists it changes.
    fn post(&mut self, slot: Slot, sub: &Subscription, compiled: &CompiledFilter, add: bool) {
        let f = &sub.filter;
        let floor = f.min_priority.unwrap_or(Priority::Low);
        let (postings, ids, kind): (&mut DensePostings, SmallVec<[u32; 4]>, ListKind) =
            match Anchor::of(f) {
                Anchor::Symbol => (
                    &mut self.symbols,
                    compiled.symbols.clone(),
                    ListKind::Symbol,
                ),
                Anchor::Pattern => (
                    &mut self.patterns,
                    compiled.patterns.clone(),
                    ListKind::Pattern,
                ),
                Anchor::EventType => (
                    &mut self.event_types,
                    compiled.event_types.iter().copied().collect(),
                    ListKind::EventType,
                ),
                Anchor::MarketRegime => (
                    &mut self.regimes,
                    f.market_regimes.iter().map(|r| *r as u32).collect(),
                    ListKind::Regime,
                ),
                Anchor::Tier => (
                    &mut self.tiers,
                    f.tiers.iter().map(|t| *t as u32).collect(),
                    ListKind::Tier,
                ),
                Anchor::Any => {
                    if add {
                        self.any.insert(floor, slot);
                    } else {
                        self.any.remove(floor, slot);
                    }
                    self.versions.bump(ListKind::Any, ());
                    self.post_user(slot, sub, add);
                    return;
                }
            };
        for &id in &ids {
            if add {
                postings.insert(id, floor, slot);
            } else {
                postings.remove(id, floor, slot);
            }
        }
        self.bump_anchor_versions(kind, f);
        self.post_user(slot, sub, add);
    }

    /// Bumps the versions of the lists named by the anchor field's values,
    /// keyed the way [`Versions::of`] reads them.
    fn bump_anchor_versions(&mut self, kind: ListKind, f: &crate::model::Filter) {
        let v = &mut self.versions;
        match kind {
            ListKind::Symbol => f
                .symbols
                .iter()
                .for_each(|s| v.bump(kind, Some(s.to_uppercase().as_str()))),
            ListKind::Pattern => f
                .patterns
                .iter()
                .for_each(|p| v.bump(kind, Some(p.as_str()))),
            ListKind::EventType => f.event_types.iter().for_each(|t| v.bump(kind, t.as_str())),
            ListKind::Regime => f.market_regimes.iter().for_each(|r| v.bump(kind, Some(*r))),
            ListKind::Tier => f.tiers.iter().for_each(|t| v.bump(kind, Some(*t))),
            ListKind::Any | ListKind::User => {}
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

    /// The posting lists an event can match through, one per anchor field.
    fn candidate_lists<'a>(&'a self, key: &EventKey) -> [Option<&'a Buckets>; 6] {
        [
            self.symbols.get(key.symbol),
            self.patterns.get(key.pattern),
            self.event_types.get(key.event_type),
            self.regimes.get(key.regime.map(|r| r as u32)),
            self.tiers.get(key.tier.map(|t| t as u32)),
            Some(&self.any),
        ]
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
                Some(last) if last.conn == conn => {
                    let at = last.subs.partition_point(|s| *s < c.id);
                    last.subs.insert(at, c.id.clone());
                }
                _ => out.push(Recipient {
                    conn,
                    subs: SmallVec::from_elem(c.id.clone(), 1),
                }),
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
        for list in self.candidate_lists(&key).into_iter().flatten() {
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
            .map(|conn| Recipient {
                conn,
                subs: SmallVec::new(),
            })
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
        self.versions.of(event)
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
    use crate::model::{Filter, MarketRegime, SubId, Tier};
    use bytes::Bytes;
    use proptest::prelude::*;

    const SYMBOLS: [&str; 4] = ["AAPL", "MSFT", "TSLA", "NVDA"];
    const PATTERNS: [&str; 3] = ["Doji", "BreakoutBO", "Hammer"];
    const TYPES: [&str; 3] = ["pattern_detected", "system_health", "backtest_progress"];
    const USERS: [&str; 3] = ["u0", "u1", "u2"];

    fn pick<T: Clone + std::fmt::Debug + 'static>(
        all: &'static [T],
    ) -> impl Strategy<Value = Vec<T>> {
        proptest::sample::subsequence(all, 0..=2)
    }

    fn arb_filter() -> impl Strategy<Value = Filter> {
        (
            pick(&TYPES),
            pick(&Tier::ALL),
            pick(&SYMBOLS),
            pick(&PATTERNS),
            pick(&MarketRegime::ALL),
            proptest::option::of(0.0f64..1.0),
            proptest::option::of(proptest::sample::select(&Priority::ALL[..])),
        )
            .prop_map(|(t, tiers, s, p, regimes, c, prio)| Filter {
                event_types: t.iter().map(|x| x.to_string()).collect(),
                tiers,
                symbols: s.iter().map(|x| x.to_string()).collect(),
                patterns: p.iter().map(|x| x.to_string()).collect(),
                market_regimes: regimes,
                min_confidence: c,
                min_priority: prio,
            })
    }

    fn arb_event() -> impl Strategy<Value = Event> {
        (
            proptest::sample::select(&TYPES[..]),
            proptest::option::of(proptest::sample::select(&Tier::ALL[..])),
            proptest::sample::select(&SYMBOLS[..]),
            proptest::sample::select(&PATTERNS[..]),
            proptest::option::of(proptest::sample::select(&MarketRegime::ALL[..])),
            proptest::option::of(0.0f64..1.0),
            proptest::option::of(proptest::sample::select(&USERS[..])),
        )
            .prop_map(|(t, tier, s, p, regime, c, user)| {
                let mut body = serde_json::json!({"event_type": t, "symbol": s, "pattern": p});
                if let Some(tier) = tier {
                    body["tier"] = tier.as_str().into();
                }
                if let Some(r) = regime {
                    body["market_regime"] = r.as_str().into();
                }
                if let Some(c) = c {
                    body["confidence"] = c.into();
                }
                if let Some(u) = user {
                    body["user_id"] = u.into();
                }
                Event::from_json(Bytes::from(body.to_string()), None, 1 << 20).unwrap()
            })
    }

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

    fn arb_op() -> impl Strategy<Value = Op> {
        prop_oneof![
            4 => (0u64..6, 0u8..3, proptest::option::of(0usize..3), arb_filter())
                .prop_map(|(conn, id, user, filter)| Op::Insert { conn, id, user, filter }),
            1 => (0u64..6, 0u8..3).prop_map(|(conn, id)| Op::Remove { conn, id }),
            1 => (0u64..6).prop_map(|conn| Op::Disconnect { conn }),
            4 => arb_event().prop_map(Op::Match),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        /// The inverted index answers exactly like the brute-force matcher
        /// under any interleaving of inserts, removals and matches.
        #[test]
        fn equals_brute_force(ops in proptest::collection::vec(arb_op(), 1..80)) {
            let mut fast = InvertedIndex::new();
            let mut slow = BruteForceIndex::new();
            // A connection belongs to one user for its whole life.
            let mut owner: FxHashMap<u64, Option<UserId>> = FxHashMap::default();
            for op in ops {
                match op {
                    Op::Insert { conn, id, user, filter } => {
                        let user = owner
                            .entry(conn)
                            .or_insert_with(|| user.map(|u| UserId::from(USERS[u])))
                            .clone();
                        let sub = Subscription {
                            conn: ConnId(conn),
                            user,
                            id: SubId::from(format!("s{id}")),
                            filter,
                            // Entitlements are per user: odd connections get some.
                            allowed_tiers: (conn % 2 == 1)
                                .then(|| vec![Tier::Daily, Tier::Combo].into()),
                        };
                        prop_assert_eq!(fast.insert(sub.clone()), slow.insert(sub));
                    }
                    Op::Remove { conn, id } => {
                        let id = format!("s{id}");
                        prop_assert_eq!(fast.remove(ConnId(conn), &id), slow.remove(ConnId(conn), &id));
                    }
                    Op::Disconnect { conn } => {
                        prop_assert_eq!(
                            fast.remove_connection(ConnId(conn)),
                            slow.remove_connection(ConnId(conn))
                        );
                    }
                    Op::Match(event) => {
                        prop_assert_eq!(fast.match_event(&event), slow.match_event(&event));
                        let user = event.user_id();
                        prop_assert_eq!(
                            fast.subscribed_connections(user),
                            slow.subscribed_connections(user)
                        );
                    }
                }
                prop_assert_eq!(fast.len(), slow.len());
            }
        }
    }

    #[test]
    fn freed_slots_are_reused_and_lists_emptied() {
        let mut index = InvertedIndex::new();
        for i in 0..10 {
            index.insert(Subscription {
                conn: ConnId(i),
                user: Some("u".into()),
                id: "s".into(),
                filter: Filter {
                    symbols: vec![format!("S{i}")],
                    ..Filter::default()
                },
                allowed_tiers: None,
            });
        }
        for i in 0..10 {
            assert_eq!(index.remove_connection(ConnId(i)), 1);
        }
        assert!(index.is_empty());
        assert!(index.by_conn.is_empty() && index.by_user.is_empty());
        assert_eq!(
            index.vocab.symbols.get("S3"),
            None,
            "unused values are forgotten"
        );
        index.insert(Subscription {
            conn: ConnId(99),
            user: None,
            id: "s".into(),
            filter: Filter::default(),
            allowed_tiers: None,
        });
        assert_eq!(index.slots.len(), 10);
    }
}
