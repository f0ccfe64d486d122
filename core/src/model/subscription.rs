//! Who subscribed to what: [`ConnId`], [`UserId`], [`SubId`] and
//! [`Subscription`].

use std::fmt;
use std::sync::Arc;

use super::schema::Criteria;
use super::Value;

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
    /// What it matches.
    pub filter: Criteria,
    /// The values of the schema's entitlement dimension the user may
    /// receive, as choice bits (from the token's claim, e.g. `tiers`);
    /// events with other values never match. `None`: all.
    pub entitled: Option<u64>,
}

impl Subscription {
    /// Whether this subscription receives `event`: its criteria match, the
    /// user is entitled to it, and a private event is for this
    /// subscription's user.
    pub fn accepts(&self, event: &crate::model::Event) -> bool {
        let private_ok = match event.user_id() {
            None => true,
            Some(target) => self.user.as_deref() == Some(target),
        };
        private_ok && self.entitled_to(event) && self.filter.matches(event)
    }

    /// Whether the entitlement admits `event`: an event without the
    /// entitlement dimension is for everyone.
    pub fn entitled_to(&self, event: &crate::model::Event) -> bool {
        let (Some(mask), Some(ent)) = (self.entitled, event.schema().entitlement()) else {
            return true;
        };
        match event.value(ent.dim) {
            Some(Value::Choice(c)) => mask & (1 << c) != 0,
            _ => true,
        }
    }
}
