//! Per-user state of a hub: connection counts and the shared rate limiter.

use std::num::NonZeroU32;
use std::sync::Arc;

use governor::Quota;
use parking_lot::Mutex;
use rustc_hash::FxHashMap;

use crate::broadcast::RateLimiter;
use crate::model::UserId;

struct UserEntry {
    connections: usize,
    limiter: Option<Arc<RateLimiter>>,
}

/// Connections per user and one rate limiter per user, shared by all the
/// user's connections. Anonymous connections each get their own limiter.
pub(crate) struct Users {
    by_id: Mutex<FxHashMap<UserId, UserEntry>>,
    quota: Option<Quota>,
    max_connections: usize,
}

/// A user already holds the most connections allowed.
#[derive(Debug)]
pub(crate) struct TooManyConnections;

impl Users {
    pub(crate) fn new(rate_per_second: u32, max_connections: usize) -> Self {
        Self {
            by_id: Mutex::default(),
            quota: NonZeroU32::new(rate_per_second).map(Quota::per_second),
            max_connections,
        }
    }

    /// Counts a new connection of `user`; returns the limiter it shares.
    pub(crate) fn join(
        &self,
        user: Option<&UserId>,
    ) -> Result<Option<Arc<RateLimiter>>, TooManyConnections> {
        let new_limiter = || self.quota.map(|q| Arc::new(RateLimiter::direct(q)));
        let Some(user) = user else {
            return Ok(new_limiter());
        };
        let mut users = self.by_id.lock();
        let entry = users.entry(user.clone()).or_insert_with(|| UserEntry {
            connections: 0,
            limiter: new_limiter(),
        });
        if entry.connections >= self.max_connections {
            return Err(TooManyConnections);
        }
        entry.connections += 1;
        Ok(entry.limiter.clone())
    }

    /// Forgets one connection of `user`.
    pub(crate) fn leave(&self, user: Option<&UserId>) {
        let Some(user) = user else { return };
        let mut users = self.by_id.lock();
        if let Some(entry) = users.get_mut(user) {
            entry.connections = entry.connections.saturating_sub(1);
            if entry.connections == 0 {
                users.remove(user);
            }
        }
    }

    /// Users with at least one connection.
    pub(crate) fn count(&self) -> usize {
        self.by_id.lock().len()
    }
}
