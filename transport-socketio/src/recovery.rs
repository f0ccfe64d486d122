//! [`Recovery`]: the sessions of disconnected clients, kept for a while so
//! that socket.io-client's connection state recovery can resume them.
//!
//! A session that ends without the client saying goodbye leaves its
//! private id (`pid`), its user and its subscriptions here, for the
//! recovery window. A client reconnecting with that `pid` and the last
//! offset it received gets its subscriptions back, each replaying the
//! history after that offset (core's `since`): the offset is the
//! connection's safe resume offset, so nothing is missing and nothing comes
//! twice. The store is bounded: past its capacity the oldest entry goes.

use std::time::Duration;

use hashlink::LinkedHashMap;
use parking_lot::Mutex;
use tickcast_core::model::{Filter, UserId};
use tokio::time::Instant;

/// A disconnected session.
#[derive(Debug, Clone)]
pub(crate) struct Saved {
    /// Whose it was: only the same user (or anonymous for anonymous) gets
    /// it back.
    pub user: Option<UserId>,
    /// Its subscriptions.
    pub subscriptions: Vec<(String, Filter)>,
}

#[derive(Debug)]
struct Entry {
    saved: Saved,
    until: Instant,
}

/// The store of disconnected sessions, by `pid`.
#[derive(Debug)]
pub(crate) struct Recovery {
    window: Duration,
    capacity: usize,
    entries: Mutex<LinkedHashMap<String, Entry>>,
}

impl Recovery {
    /// Keeps up to `capacity` sessions for `window` each; either 0 turns
    /// recovery off.
    pub(crate) fn new(window: Duration, capacity: usize) -> Self {
        Self {
            window,
            capacity,
            entries: Mutex::new(LinkedHashMap::new()),
        }
    }

    /// Whether sessions are kept at all (and clients get a `pid`).
    pub(crate) fn enabled(&self) -> bool {
        !self.window.is_zero() && self.capacity > 0
    }

    /// Keeps `saved` under `pid` for the window.
    pub(crate) fn save(&self, pid: String, saved: Saved) {
        if !self.enabled() {
            return;
        }
        let now = Instant::now();
        let mut entries = self.entries.lock();
        expire(&mut entries, now);
        while entries.len() >= self.capacity {
            entries.pop_front();
        }
        entries.insert(
            pid,
            Entry {
                saved,
                until: now + self.window,
            },
        );
    }

    /// Takes the session saved under `pid`, if it is still there and
    /// `user`'s (anonymous for anonymous): another user's try leaves it
    /// for its owner.
    pub(crate) fn take(&self, pid: &str, user: Option<&str>) -> Option<Saved> {
        let mut entries = self.entries.lock();
        expire(&mut entries, Instant::now());
        let owner = entries.get(pid)?.saved.user.as_deref() == user;
        if !owner {
            return None;
        }
        entries.remove(pid).map(|e| e.saved)
    }

    /// Sessions held now.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.entries.lock().len()
    }
}

/// Drops the entries whose window has passed: they are in insertion
/// order, and every entry gets the same window, so the oldest go first.
fn expire(entries: &mut LinkedHashMap<String, Entry>, now: Instant) {
    while entries.front().is_some_and(|(_, e)| e.until <= now) {
        entries.pop_front();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn saved() -> Saved {
        Saved {
            user: None,
            subscriptions: vec![("s1".into(), Filter::default())],
        }
    }

    #[tokio::test(start_paused = true)]
    async fn sessions_are_taken_once_within_the_window() {
        let store = Recovery::new(Duration::from_secs(120), 10);
        store.save("a".into(), saved());
        store.save("b".into(), saved());
        assert!(store.take("a", Some("intruder")).is_none());
        assert!(store.take("a", None).is_some());
        assert!(store.take("a", None).is_none());
        tokio::time::advance(Duration::from_secs(121)).await;
        assert!(store.take("b", None).is_none());
        assert_eq!(store.len(), 0);
    }

    #[test]
    fn the_store_is_bounded_and_can_be_off() {
        let store = Recovery::new(Duration::from_secs(120), 2);
        for pid in ["a", "b", "c"] {
            store.save(pid.into(), saved());
        }
        assert_eq!(store.len(), 2);
        assert!(store.take("a", None).is_none());
        assert!(store.take("c", None).is_some());
        let off = Recovery::new(Duration::ZERO, 2);
        assert!(!off.enabled());
        off.save("a".into(), saved());
        assert_eq!(off.len(), 0);
    }
}
