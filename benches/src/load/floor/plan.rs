//! [`FloorPlan`]: for each event of a floor run, its recipients grouped by
//! the subscriptions they match, worked out with the same filters and the
//! same matching as the ledger of expected deliveries. A group is one
//! frame (tickcast's frame carries the recipient's matching `subs`), so the
//! floor writes the frames tickcast would write, size for size.

use rustc_hash::FxHashMap;
use tickcast_core::model::{Event, SubId};

use crate::load::filters::Filters;

/// Recipients of one frame: the connections whose matching subscriptions
/// are `subs` (bit `k` for `s{k}`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Group {
    /// Matching subscriptions.
    pub subs: u64,
    /// Connection numbers.
    pub conns: Vec<u32>,
}

/// The groups of every event, by `load_seq`.
#[derive(Debug, Clone, Default)]
pub struct FloorPlan {
    events: Vec<Vec<Group>>,
    deliveries: u64,
}

impl FloorPlan {
    /// An empty plan.
    pub fn new() -> Self {
        Self::default()
    }

    /// Records the next event: `recipients` (each once, from
    /// [`Audience::recipients`](crate::load::expect::Audience::recipients))
    /// grouped by which of their `active` subscriptions `event` matches.
    pub fn record(&mut self, filters: &Filters, active: &[u64], event: &Event, recipients: &[u32]) {
        let mut groups: Vec<Group> = Vec::new();
        let mut by_subs: FxHashMap<u64, usize> = FxHashMap::default();
        for &conn in recipients {
            let mask = active.get(conn as usize).copied().unwrap_or(0);
            let subs = filters
                .criteria_of(conn as usize)
                .iter()
                .enumerate()
                .filter(|(k, criteria)| mask & (1 << k) != 0 && criteria.matches(event))
                .fold(0u64, |subs, (k, _)| subs | 1 << k);
            let at = *by_subs.entry(subs).or_insert_with(|| {
                groups.push(Group {
                    subs,
                    conns: Vec::new(),
                });
                groups.len() - 1
            });
            groups[at].conns.push(conn);
        }
        self.deliveries += recipients.len() as u64;
        self.events.push(groups);
    }

    /// The groups of event `seq` (none for an event not recorded).
    pub fn groups(&self, seq: u32) -> &[Group] {
        self.events.get(seq as usize).map_or(&[], Vec::as_slice)
    }

    /// Events recorded.
    pub fn len(&self) -> usize {
        self.events.len()
    }

    /// Whether none was.
    pub fn is_empty(&self) -> bool {
        self.events.is_empty()
    }

    /// Deliveries of all recorded events.
    pub fn deliveries(&self) -> u64 {
        self.deliveries
    }
}

/// The ids of the subscriptions of `mask`, `s0` first: the `subs` list of
/// the frame.
pub fn sub_ids(mask: u64) -> Vec<SubId> {
    (0..64)
        .filter(|k| mask & (1 << k) != 0)
        .map(|k| SubId::from(format!("s{k}")))
        .collect()
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::events::DetectionStream;
    use crate::load::expect::Audience;
    use crate::load::scenario::Scenario;
    use crate::universe::SymbolUniverse;

    #[test]
    fn groups_hold_each_recipient_once_with_its_matching_subscriptions() {
        let mut scenario = Scenario::default();
        scenario.connections.count = 200;
        scenario.connections.subscriptions = [1, 4];
        scenario.filters.symbols = 20;
        let filters = Arc::new(Filters::generate(&scenario));
        // Connection 3 had its second subscription refused.
        let mut active = vec![u64::MAX; 200];
        active[3] = !0b10;
        let mut audience = Audience::new(filters.clone(), &active);
        let mut plan = FloorPlan::new();
        let mut recipients = Vec::new();
        let stream = DetectionStream::new(SymbolUniverse::new(20, 1.0), 7);
        let events: Vec<Event> = stream.take(300).map(|d| d.to_event()).collect();
        let mut expected = 0;
        for event in &events {
            audience.recipients(event, &mut recipients);
            plan.record(&filters, &active, event, &recipients);
            expected += recipients.len() as u64;
        }
        assert_eq!(plan.len(), 300);
        assert_eq!(plan.deliveries(), expected);
        assert!(expected > 0);
        for (seq, event) in events.iter().enumerate() {
            let mut seen = Vec::new();
            for group in plan.groups(seq as u32) {
                assert_ne!(group.subs, 0);
                for &conn in &group.conns {
                    for (k, filter) in filters.criteria_of(conn as usize).iter().enumerate() {
                        let listed = group.subs & (1 << k) != 0;
                        let active = active[conn as usize] & (1 << k) != 0;
                        assert_eq!(listed, active && filter.matches(event), "{seq} {conn} s{k}");
                    }
                    seen.push(conn);
                }
            }
            let n = seen.len();
            seen.sort_unstable();
            seen.dedup();
            assert_eq!(seen.len(), n, "each recipient once");
        }
        assert!(plan.groups(300).is_empty());
    }

    #[test]
    fn sub_ids_list_the_mask() {
        let ids: Vec<String> = sub_ids(0b1010_0001).iter().map(|s| s.to_string()).collect();
        assert_eq!(ids, ["s0", "s5", "s7"]);
        assert_eq!(sub_ids(1 << 63).len(), 1);
        assert!(sub_ids(0).is_empty());
    }
}
