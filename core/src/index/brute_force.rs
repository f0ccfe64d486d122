//! [`BruteForceIndex`]: checks every subscription. The reference the
//! optimized index is tested against; fine for a few hundred subscriptions.

use std::collections::BTreeMap;

use super::{group_matches, Recipient, Recipients, SubscriptionIndex};
use crate::model::{ConnId, Event, SubId, Subscription};

/// A flat map of subscriptions, matched one by one.
#[derive(Debug, Default)]
pub struct BruteForceIndex {
    subs: BTreeMap<(ConnId, SubId), Subscription>,
}

impl BruteForceIndex {
    /// An empty index.
    pub fn new() -> Self {
        Self::default()
    }
}

impl SubscriptionIndex for BruteForceIndex {
    fn insert(&mut self, sub: Subscription) -> Option<Subscription> {
        self.subs.insert((sub.conn, sub.id.clone()), sub)
    }

    fn remove(&mut self, conn: ConnId, id: &str) -> Option<Subscription> {
        self.subs.remove(&(conn, SubId::from(id)))
    }

    fn remove_connection(&mut self, conn: ConnId) -> usize {
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
                out.push(Recipient {
                    conn: sub.conn,
                    subs: Default::default(),
                });
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

    fn len(&self) -> usize {
        self.subs.len()
    }
}
