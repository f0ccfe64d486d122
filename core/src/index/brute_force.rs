//! [`BruteForceIndex`]: checks every subscription. The reference the
//! optimized index is tested against; fine for a few hundred subscriptions.

use std::collections::BTreeMap;

use smallvec::SmallVec;

use super::{Recipient, Recipients, SubscriptionIndex};
use crate::model::{ConnId, Event, SubId, Subscription};

/// A flat map of subscriptions, matched one by one.
#[derive(Debug, Default)]
pub struct BruteForceIndex {
    subs: BTreeMap<(ConnId, SubId), Subscription>,
    /// Counts changes: every answer's version.
    changes: u64,
}

impl BruteForceIndex {
    /// An empty index.
    pub fn new() -> Self {
        Self::default()
    }
}

impl SubscriptionIndex for BruteForceIndex {
    fn insert(&mut self, sub: Subscription) -> Option<Subscription> {
        self.changes += 1;
        self.subs.insert((sub.conn, sub.id.clone()), sub)
    }

    fn remove(&mut self, conn: ConnId, id: &str) -> Option<Subscription> {
        self.changes += 1;
        self.subs.remove(&(conn, SubId::from(id)))
    }

    fn remove_connection(&mut self, conn: ConnId) -> usize {
        self.changes += 1;
        let before = self.subs.len();
        self.subs.retain(|(c, _), _| *c != conn);
        before - self.subs.len()
    }

    fn match_event(&self, event: &Event) -> Recipients {
        let matches = self
            .subs
            .values()
            .filter(|s| s.accepts(event))
            .map(|s| (s.conn, s.id.clone()))
            .collect();
        group_matches(matches)
    }

    fn subscribed_connections(&self, user: Option<&str>) -> Recipients {
        let mut out: Recipients = Vec::new();
        for sub in self.subs.values() {
            if user.is_some() && sub.user.as_deref() != user {
                continue;
            }
            if out.last().map(|r| r.conn) != Some(sub.conn) {
                out.push(Recipient::new(sub.conn, SmallVec::new()));
            }
        }
        out
    }

    fn connection_subscriptions(&self, conn: ConnId) -> Vec<Subscription> {
        self.subs
            .range((conn, SubId::from(""))..)
            .take_while(|((c, _), _)| *c == conn)
            .map(|(_, s)| s.clone())
            .collect()
    }

    fn version(&self, _event: &Event) -> u64 {
        self.changes
    }

    fn version_all(&self) -> u64 {
        self.changes
    }

    fn len(&self) -> usize {
        self.subs.len()
    }
}

/// Groups `(conn, sub id)` matches into [`Recipients`]: sorted by
/// connection, each connection once with its ids sorted.
fn group_matches(mut matches: Vec<(ConnId, SubId)>) -> Recipients {
    matches.sort_unstable_by(|a, b| a.0.cmp(&b.0).then_with(|| a.1.cmp(&b.1)));
    let mut out: Recipients = Vec::new();
    for (conn, id) in matches {
        match out.last_mut() {
            Some(last) if last.conn == conn => last.add_sub(id),
            _ => out.push(Recipient::new(conn, SmallVec::from_elem(id, 1))),
        }
    }
    out
}
