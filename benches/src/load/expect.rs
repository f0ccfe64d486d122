//! Who must receive what: [`Audience`] works out each event's recipients
//! from the filters the generator itself subscribed with (a straight
//! [`Criteria::matches`](tickcast_core::model::schema::Criteria::matches), independent
//! of the server's index), and [`Ledger`]
//! keeps, per connection, the set of event numbers it must receive.
//!
//! Deliveries are once per connection: an event that matches several
//! subscriptions of a connection is one delivery.

use std::sync::Arc;

use roaring::RoaringBitmap;
use rustc_hash::FxHashMap;
use tickcast_core::model::schema::tickstock::TickStockEvent;
use tickcast_core::model::Event;

use super::filters::Filters;

/// The active subscriptions, bucketed by symbol so that an event is only
/// checked against the filters that could match it: those naming its
/// symbol, and those naming no symbol at all. Every candidate is then
/// checked with `Criteria::matches`, the reference semantics.
#[derive(Debug)]
pub struct Audience {
    filters: Arc<Filters>,
    /// Candidates (connection, index in `filters`) of events on a symbol.
    by_symbol: FxHashMap<Box<str>, Vec<(u32, u32)>>,
    /// Filters without symbols: candidates of every event.
    any_symbol: Vec<(u32, u32)>,
    /// Per connection: the last event (numbered from 1) it was found for,
    /// so that a connection is listed once per event.
    seen: Vec<u32>,
    events: u32,
    subscriptions: usize,
}

impl Audience {
    /// The audience of the subscriptions of `filters` that are active:
    /// `active[c]` has bit `k` set when connection `c`'s subscription `s{k}`
    /// was acknowledged (0 for a connection that failed).
    pub fn new(filters: Arc<Filters>, active: &[u64]) -> Self {
        let mut by_symbol: FxHashMap<Box<str>, Vec<(u32, u32)>> = FxHashMap::default();
        let mut any_symbol = Vec::new();
        let mut subscriptions = 0;
        for (conn, &mask) in active.iter().enumerate() {
            let first = filters.first_of(conn);
            for (k, filter) in filters.of(conn).iter().enumerate() {
                if mask & (1 << k) == 0 {
                    continue;
                }
                subscriptions += 1;
                let entry = (conn as u32, (first + k) as u32);
                let symbols = filter.list("symbols");
                if symbols.is_empty() {
                    any_symbol.push(entry);
                }
                for symbol in symbols {
                    by_symbol
                        .entry(symbol.to_uppercase().into_boxed_str())
                        .or_default()
                        .push(entry);
                }
            }
        }
        Self {
            filters,
            by_symbol,
            any_symbol,
            seen: vec![0; active.len()],
            events: 0,
            subscriptions,
        }
    }

    /// Number of active subscriptions.
    pub fn subscriptions(&self) -> usize {
        self.subscriptions
    }

    /// Replaces `out` with the connections `event` must reach, each once.
    pub fn recipients(&mut self, event: &Event, out: &mut Vec<u32>) {
        out.clear();
        self.events += 1;
        let stamp = self.events;
        let on_symbol = event
            .symbol()
            .and_then(|s| self.by_symbol.get(s))
            .map_or(&[][..], Vec::as_slice);
        for &(conn, index) in on_symbol.iter().chain(&self.any_symbol) {
            let seen = &mut self.seen[conn as usize];
            if *seen != stamp && self.filters.get(index as usize).matches(event) {
                *seen = stamp;
                out.push(conn);
            }
        }
    }
}

/// Per event (`load_seq`), the connections it must reach, as a Roaring
/// bitmap of connection numbers. Kept per event rather than per connection
/// so that recording costs one sorted bitmap build per event during the
/// publish phase; the transposition to connections happens in
/// [`compare`](Self::compare), after the run.
#[derive(Debug, Clone, Default)]
pub struct Ledger {
    events: Vec<RoaringBitmap>,
    total: u64,
}

/// The comparison of what was expected with what arrived.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Tally {
    /// Deliveries expected.
    pub expected: u64,
    /// Expected deliveries that arrived (duplicates counted once).
    pub matched: u64,
    /// Expected deliveries that never arrived.
    pub missing: u64,
    /// Deliveries of this run's events that no filter asked for.
    pub unexpected: u64,
    /// Connections missing at least one delivery.
    pub connections_missing: u64,
    /// A few missing deliveries, as (connection, load_seq), to start
    /// looking from.
    pub missing_examples: Vec<(u32, u32)>,
}

impl Ledger {
    /// An empty ledger.
    pub fn new() -> Self {
        Self::default()
    }

    /// Records that event `seq` (the next one: events are recorded in
    /// order) must reach `recipients` (sorted here).
    pub fn expect(&mut self, seq: u32, recipients: &mut [u32]) {
        assert_eq!(
            seq as usize,
            self.events.len(),
            "events are recorded in order"
        );
        recipients.sort_unstable();
        let mut bitmap = RoaringBitmap::from_sorted_iter(recipients.iter().copied())
            .expect("sorted, distinct recipients");
        bitmap.optimize();
        self.total += bitmap.len();
        self.events.push(bitmap);
    }

    /// Events recorded.
    pub fn events(&self) -> usize {
        self.events.len()
    }

    /// Deliveries expected of event `seq`.
    pub fn deliveries_of(&self, seq: u32) -> u64 {
        self.events.get(seq as usize).map_or(0, RoaringBitmap::len)
    }

    /// Forgets the events from `n` on (prepared, never sent).
    pub fn truncate(&mut self, n: usize) {
        for recipients in self.events.drain(n.min(self.events.len())..) {
            self.total -= recipients.len();
        }
    }

    /// Forgets events that were never published (their request failed).
    pub fn retract(&mut self, seqs: &RoaringBitmap) {
        for seq in seqs {
            if let Some(recipients) = self.events.get_mut(seq as usize) {
                self.total -= recipients.len();
                recipients.clear();
            }
        }
    }

    /// Deliveries expected so far.
    pub fn total(&self) -> u64 {
        self.total
    }

    /// Compares with what each connection received (`received[c]`: the
    /// event numbers connection `c` received; `None` for a connection that
    /// never was established or whose outcome is unknown, so that all of
    /// its expected deliveries count as missing).
    pub fn compare(&self, received: &[Option<RoaringBitmap>]) -> Tally {
        let mut tally = Tally {
            expected: self.total,
            ..Tally::default()
        };
        let mut missing_by_conn = vec![false; received.len()];
        for (seq, recipients) in self.events.iter().enumerate() {
            for conn in recipients {
                let got = received
                    .get(conn as usize)
                    .and_then(Option::as_ref)
                    .is_some_and(|r| r.contains(seq as u32));
                if got {
                    tally.matched += 1;
                } else {
                    tally.missing += 1;
                    if let Some(flag) = missing_by_conn.get_mut(conn as usize) {
                        *flag = true;
                    }
                    if tally.missing_examples.len() < 10 {
                        tally.missing_examples.push((conn, seq as u32));
                    }
                }
            }
        }
        let received_total: u64 = received.iter().flatten().map(RoaringBitmap::len).sum();
        tally.unexpected = received_total - tally.matched;
        tally.connections_missing = missing_by_conn.iter().filter(|m| **m).count() as u64;
        tally
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::events::PatternDetection;
    use crate::load::scenario::Scenario;
    use tickcast_core::model::Tier;

    #[test]
    fn recipients_are_the_connections_with_a_matching_filter_once() {
        let mut scenario = Scenario::default();
        scenario.connections.count = 400;
        scenario.connections.subscriptions = [1, 5];
        scenario.filters.symbols = 20;
        scenario.filters.pattern_only = 0.2;
        scenario.filters.firehose = 0.01;
        let filters = Arc::new(Filters::generate(&scenario));
        // Connection 3 refused everything; the others hold all theirs.
        let mut active = vec![u64::MAX; 400];
        active[3] = 0;
        let mut audience = Audience::new(filters.clone(), &active);
        let mut out = Vec::new();
        let mut stream =
            crate::events::DetectionStream::new(crate::universe::SymbolUniverse::new(20, 1.0), 9);
        for detection in stream.by_ref().take(200) {
            let event = detection.to_event();
            audience.recipients(&event, &mut out);
            let brute: Vec<u32> = (0..400u32)
                .filter(|&c| {
                    c != 3
                        && filters
                            .criteria_of(c as usize)
                            .iter()
                            .any(|f| f.matches(&event))
                })
                .collect();
            let mut sorted = out.clone();
            sorted.sort_unstable();
            assert_eq!(sorted, brute);
        }
        let mut rare = PatternDetection::new("NOBODY", "Doji");
        rare.tier = Tier::Combo;
        audience.recipients(&rare.to_event(), &mut out);
        assert!(out.iter().all(|&c| filters
            .of(c as usize)
            .iter()
            .any(|f| f.list("symbols").is_empty())));
    }

    #[test]
    fn the_ledger_counts_missing_unexpected_and_retracted() {
        let mut ledger = Ledger::new();
        ledger.expect(0, &mut [1, 0]);
        ledger.expect(1, &mut [2, 1]);
        ledger.expect(2, &mut [0]);
        assert_eq!(ledger.total(), 5);
        ledger.retract(&RoaringBitmap::from_iter([2u32]));
        assert_eq!(ledger.total(), 4);
        let received = vec![
            Some(RoaringBitmap::from_iter([0u32, 7])),
            Some(RoaringBitmap::from_iter([0u32, 1])),
            None,
        ];
        let tally = ledger.compare(&received);
        assert_eq!(tally.expected, 4);
        assert_eq!(tally.matched, 3);
        assert_eq!(tally.missing, 1);
        assert_eq!(tally.unexpected, 1);
        assert_eq!(tally.connections_missing, 1);
        assert_eq!(tally.missing_examples, vec![(2, 1)]);
    }
}
