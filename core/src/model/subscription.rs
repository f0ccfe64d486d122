//! Who subscribed to what: [`ConnId`], [`UserId`], [`SubId`] and
//! [`Subscription`].

use std::fmt;
use std::sync::Arc;

use super::filter::Filter;
use super::values::Tier;

/// A connection's id, unique for the life of a hub (never reused).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ConnId(pub u64);

impl fmt::Display for ConnId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "c-{}", self.0)
    }
}

/// An authenticated user's id (the JWT `sub`). Anonymous connections have
/// none and never receive private events.
pub type UserId = Arc<str>;

/// A subscription's id, chosen by the client, unique within its connection.
pub type SubId = Arc<str>;

/// One subscription of one connection.
#[derive(Debug, Clone, PartialEq)]
pub struct Subscription {
    /// The connection holding it.
    pub conn: ConnId,
    /// The connection's user; `None` for anonymous connections.
    pub user: Option<UserId>,
    /// The client-chosen id, listed in `subs` of the events it matches.
    pub id: SubId,
    /// What it matches (normalized).
    pub filter: Filter,
    /// The tiers the user is entitled to (the token's `tiers` claim); events
    /// of other tiers never match. `None`: all tiers.
    pub allowed_tiers: Option<Arc<[Tier]>>,
}

impl Subscription {
    /// Whether this subscription receives `event`: its filter matches, and a
    /// private event is for this subscription's user.
    pub fn accepts(&self, event: &crate::model::Event) -> bool {
        let private_ok = match event.user_id() {
            None => true,
            Some(target) => self.user.as_deref() == Some(target),
        };
        let entitled = match (&self.allowed_tiers, event.tier()) {
            (Some(allowed), Some(tier)) => allowed.contains(&tier),
            _ => true,
        };
        private_ok && entitled && self.filter.matches(event)
    }
}
