//! Per-user state of a hub: the user's live connections, the rate limiter
//! they share, and the server-side subscriptions every one of them gets.

use std::num::NonZeroU32;
use std::sync::{Arc, Weak};

use parking_lot::Mutex;
use rustc_hash::FxHashMap;

use super::connection::ConnShared;
use crate::broadcast::RateLimiter;
use crate::model::{ConnId, Filter, SubId, UserId};

/// A server-side subscription: applied to each of the user's connections.
pub(crate) type UserSubscription = (SubId, Filter);

#[derive(Default)]
struct UserEntry {
    /// Slots taken by [`Users::join`]; attached connections among them.
    reserved: usize,
    connections: Vec<(ConnId, Weak<ConnShared>)>,
    limiter: Option<Arc<RateLimiter>>,
    per_hour: Option<NonZeroU32>,
    subscriptions: Vec<UserSubscription>,
}

impl UserEntry {
    /// Kept while it holds anything a later connection would need.
    fn is_idle(&self) -> bool {
        self.reserved == 0 && self.subscriptions.is_empty() && self.per_hour.is_none()
    }
}

/// Connections per user and one rate limiter per user, shared by all the
/// user's connections. Anonymous connections each get their own limiter.
pub(crate) struct Users {
    by_id: Mutex<FxHashMap<UserId, UserEntry>>,
    per_second: Option<NonZeroU32>,
    max_connections: usize,
}

/// A user already holds the most connections allowed.
#[derive(Debug)]
pub(crate) struct TooManyConnections;

impl Users {
    pub(crate) fn new(rate_per_second: u32, max_connections: usize) -> Self {
        Self {
            by_id: Mutex::default(),
            per_second: NonZeroU32::new(rate_per_second),
            max_connections,
        }
    }

    /// Takes a connection slot of `user`; returns the limiter it shares.
    /// Named users always get one, so an hourly quota can be set later.
    pub(crate) fn join(
        &self,
        user: Option<&UserId>,
    ) -> Result<Option<Arc<RateLimiter>>, TooManyConnections> {
        let Some(user) = user else {
            return Ok(self
                .per_second
                .map(|n| Arc::new(RateLimiter::new(Some(n), None))));
        };
        let mut users = self.by_id.lock();
        let entry = users.entry(user.clone()).or_default();
        if entry.reserved >= self.max_connections {
            return Err(TooManyConnections);
        }
        entry.reserved += 1;
        let per_second = self.per_second;
        let per_hour = entry.per_hour;
        let limiter = entry
            .limiter
            .get_or_insert_with(|| Arc::new(RateLimiter::new(per_second, per_hour)));
        Ok(Some(limiter.clone()))
    }

    /// Records the connection that took a slot, and returns the
    /// server-side subscriptions it must get. One lock with
    /// [`subscribe`](Self::subscribe), so a subscription added meanwhile
    /// reaches it one way or the other.
    pub(crate) fn attach(
        &self,
        user: &UserId,
        conn: ConnId,
        shared: Weak<ConnShared>,
    ) -> Vec<UserSubscription> {
        let mut users = self.by_id.lock();
        let entry = users.entry(user.clone()).or_default();
        entry.connections.push((conn, shared));
        entry.subscriptions.clone()
    }

    /// Gives back the slot of connection `conn` of `user`.
    pub(crate) fn leave(&self, user: Option<&UserId>, conn: ConnId) {
        let Some(user) = user else { return };
        let mut users = self.by_id.lock();
        if let Some(entry) = users.get_mut(user) {
            entry.reserved = entry.reserved.saturating_sub(1);
            entry.connections.retain(|(id, _)| *id != conn);
            if entry.is_idle() {
                users.remove(user);
            }
        }
    }

    /// Adds or replaces server-side subscription `id` of `user`; returns
    /// the user's live connections, which must get it now.
    pub(crate) fn subscribe(
        &self,
        user: &UserId,
        id: SubId,
        filter: Filter,
    ) -> Vec<Arc<ConnShared>> {
        let mut users = self.by_id.lock();
        let entry = users.entry(user.clone()).or_default();
        entry.subscriptions.retain(|(old, _)| *old != id);
        entry.subscriptions.push((id, filter));
        live(entry)
    }

    /// Removes server-side subscription `id`; `None` when the user had no
    /// such subscription, else the live connections to drop it from.
    pub(crate) fn unsubscribe(&self, user: &UserId, id: &str) -> Option<Vec<Arc<ConnShared>>> {
        let mut users = self.by_id.lock();
        let entry = users.get_mut(user)?;
        let before = entry.subscriptions.len();
        entry.subscriptions.retain(|(old, _)| &**old != id);
        if entry.subscriptions.len() == before {
            return None;
        }
        let connections = live(entry);
        if entry.is_idle() {
            users.remove(user);
        }
        Some(connections)
    }

    /// The server-side subscriptions of `user`.
    pub(crate) fn subscriptions(&self, user: &UserId) -> Vec<UserSubscription> {
        self.by_id
            .lock()
            .get(user)
            .map(|e| e.subscriptions.clone())
            .unwrap_or_default()
    }

    /// Sets the hourly delivery quota of `user` (`None`: none), for its
    /// connections now and later.
    pub(crate) fn set_per_hour(&self, user: &UserId, per_hour: Option<NonZeroU32>) {
        let mut users = self.by_id.lock();
        let entry = users.entry(user.clone()).or_default();
        entry.per_hour = per_hour;
        if let Some(limiter) = &entry.limiter {
            limiter.set_per_hour(per_hour);
        }
        if entry.is_idle() {
            users.remove(user);
        }
    }

    /// Users with at least one connection.
    pub(crate) fn count(&self) -> usize {
        self.by_id
            .lock()
            .values()
            .filter(|e| e.reserved > 0)
            .count()
    }
}

fn live(entry: &UserEntry) -> Vec<Arc<ConnShared>> {
    entry
        .connections
        .iter()
        .filter_map(|(_, weak)| weak.upgrade())
        .collect()
}
