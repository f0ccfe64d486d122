//! The subscription index: from an event to the connections whose
//! subscriptions match it.
//!
//! [`SubscriptionIndex`] is the trait the router uses; [`InvertedIndex`] is
//! the production implementation and [`BruteForceIndex`] the obviously
//! correct one that tests compare it with.

mod brute_force;
mod compiled;
mod interner;
mod inverted;
mod postings;
mod versions;

pub use brute_force::BruteForceIndex;
pub use inverted::InvertedIndex;

use std::sync::OnceLock;

use bytes::Bytes;
use smallvec::SmallVec;

use crate::model::{ConnId, Event, SubId, Subscription};
use crate::protocol::subs_field;

/// One connection an event goes to, with the ids of all its subscriptions
/// that match (sorted), so the event is delivered once per connection.
#[derive(Debug, Clone)]
pub struct Recipient {
    /// The connection.
    pub conn: ConnId,
    /// Matching subscription ids, sorted; empty for `broadcast_all`.
    subs: SmallVec<[SubId; 2]>,
    /// The ids as frames carry them ([`subs_field`]), encoded at the first
    /// event: a cached route reuses them for every event after.
    encoded: OnceLock<Bytes>,
}

impl Recipient {
    /// `conn` with its matching subscriptions `subs` (sorted).
    pub fn new(conn: ConnId, subs: SmallVec<[SubId; 2]>) -> Self {
        Self {
            conn,
            subs,
            encoded: OnceLock::new(),
        }
    }

    /// `conn` with `subs` already encoded as `encoded` (by [`subs_field`]).
    pub(crate) fn encoded(conn: ConnId, subs: SmallVec<[SubId; 2]>, encoded: Bytes) -> Self {
        Self {
            conn,
            subs,
            encoded: OnceLock::from(encoded),
        }
    }

    /// Matching subscription ids, sorted; empty for `broadcast_all`.
    pub fn subs(&self) -> &[SubId] {
        &self.subs
    }

    /// Adds `id`, keeping the ids sorted (while an index groups matches,
    /// before anything was encoded).
    pub(crate) fn add_sub(&mut self, id: SubId) {
        let at = self.subs.partition_point(|s| *s < id);
        self.subs.insert(at, id);
        // What was encoded was the list before.
        self.encoded = OnceLock::new();
    }

    /// The `subs` field of this recipient's frames, encoded once.
    pub fn subs_field(&self) -> &Bytes {
        self.encoded.get_or_init(|| subs_field(&self.subs))
    }
}

impl PartialEq for Recipient {
    fn eq(&self, other: &Self) -> bool {
        self.conn == other.conn && self.subs == other.subs
    }
}

impl Eq for Recipient {}

/// The recipients of one event, sorted by connection.
pub type Recipients = Vec<Recipient>;

/// Stores subscriptions and finds the ones an event matches.
///
/// Implementations must agree with [`Subscription::accepts`] exactly: a
/// subscription is in the answer iff it accepts the event.
pub trait SubscriptionIndex: Send + Sync {
    /// Adds a subscription, replacing (and returning) the connection's
    /// subscription with the same id, if any.
    fn insert(&mut self, sub: Subscription) -> Option<Subscription>;

    /// Removes one subscription of a connection.
    fn remove(&mut self, conn: ConnId, id: &str) -> Option<Subscription>;

    /// Removes every subscription of a connection; returns how many.
    fn remove_connection(&mut self, conn: ConnId) -> usize;

    /// The connections with a subscription that accepts `event`.
    fn match_event(&self, event: &Event) -> Recipients;

    /// Every connection holding at least one subscription (only `user`'s
    /// connections when `user` is set), each with empty `subs`: the
    /// audience of `broadcast_all`.
    fn subscribed_connections(&self, user: Option<&str>) -> Recipients;

    /// The subscriptions of one connection (for history replay).
    fn connection_subscriptions(&self, conn: ConnId) -> Vec<Subscription>;

    /// A number that changes whenever the answer of
    /// [`match_event`](Self::match_event) for `event` may change. Caches
    /// keep it with an answer and drop the answer when it differs. It must
    /// never return a value it returned before a relevant change.
    fn version(&self, event: &Event) -> u64;

    /// Like [`version`](Self::version), for every answer (including
    /// [`subscribed_connections`](Self::subscribed_connections)).
    fn version_all(&self) -> u64;

    /// Number of subscriptions.
    fn len(&self) -> usize;

    /// True when there is no subscription.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_recipient_encodes_its_subs_once_and_again_after_a_change() {
        let mut r = Recipient::new(ConnId(1), SmallVec::from_elem("b".into(), 1));
        let first = r.subs_field().as_ptr();
        assert_eq!(r.subs_field(), &br#","subs":["b"]"#[..]);
        assert_eq!(r.subs_field().as_ptr(), first, "encoded once");
        r.add_sub("a".into());
        r.add_sub("c".into());
        assert_eq!(r.subs(), [SubId::from("a"), "b".into(), "c".into()]);
        assert_eq!(r.subs_field(), &br#","subs":["a","b","c"]"#[..]);
        assert_eq!(
            r,
            Recipient::new(ConnId(1), r.subs().iter().cloned().collect())
        );
    }
}
