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
//!
//! A client may come back before the server noticed it left (a network
//! cut: the client's heartbeat deadline can pass before the server's). The
//! sessions still served are registered here too, by `pid`: a CONNECT for
//! one of them (same user) ends it, waits until it is saved, and recovers
//! it.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use hashlink::LinkedHashMap;
use parking_lot::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use tickcast_core::model::{Filter, UserId};

use tokio::sync::Notify;
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

/// The signals of a served session, in one allocation (a `watch` channel
/// would cost a few hundred bytes per connection).
#[derive(Debug, Default)]
pub(crate) struct Signals {
    /// Ends the session (its client came back on another connection).
    pub kick: Notify,
    /// Set once the session ended and was saved, then `ended` notified.
    done: AtomicBool,
    ended: Notify,
}

/// A session being served.
#[derive(Debug)]
struct Live {
    user: Option<UserId>,
    signals: Arc<Signals>,
}

/// A served session's registration: [`Recovery::ended`] takes it back.
#[derive(Debug)]
pub(crate) struct Serving {
    pid: String,
    /// `kick` fires when a reconnecting client takes the session over.
    pub signals: Arc<Signals>,
}

/// The store of disconnected sessions, by `pid`.
#[derive(Debug)]
pub(crate) struct Recovery {
    window: Duration,
    capacity: usize,
    entries: Mutex<LinkedHashMap<String, Entry>>,
    /// Sessions served now, by `pid`; one per `pid`.
    live: Mutex<HashMap<String, Live>>,
}

impl Recovery {
    /// Keeps up to `capacity` sessions for `window` each; either 0 turns
    /// recovery off.
    pub(crate) fn new(window: Duration, capacity: usize) -> Self {
        Self {
            window,
            capacity,
            entries: Mutex::new(LinkedHashMap::new()),
            live: Mutex::new(HashMap::new()),
        }
    }

    /// Registers the session served under `pid` for `user`.
    pub(crate) fn serving(&self, pid: &str, user: Option<UserId>) -> Serving {
        let signals = Arc::new(Signals::default());
        self.live.lock().insert(
            pid.to_owned(),
            Live {
                user,
                signals: signals.clone(),
            },
        );
        Serving {
            pid: pid.to_owned(),
            signals,
        }
    }

    /// The session of `serving` ended (and was saved, if it is to be).
    pub(crate) fn ended(&self, serving: Serving) {
        let mut live = self.live.lock();
        if live
            .get(&serving.pid)
            .is_some_and(|l| Arc::ptr_eq(&l.signals, &serving.signals))
        {
            live.remove(&serving.pid);
        }
        drop(live);
        serving.signals.done.store(true, Ordering::Release);
        serving.signals.ended.notify_waiters();
    }

    /// When `user`'s session `pid` is still served (its client came back
    /// before the server noticed it left), ends it and waits, at most
    /// `wait`, until it is saved.
    pub(crate) async fn take_over(&self, pid: &str, user: Option<&str>, wait: Duration) {
        let signals = {
            let live = self.live.lock();
            let Some(session) = live.get(pid) else {
                return;
            };
            if session.user.as_deref() != user {
                return;
            }
            session.signals.kick.notify_one();
            session.signals.clone()
        };
        let saved = async {
            loop {
                // Made before the check: `notify_waiters` reaches it.
                let notified = signals.ended.notified();
                if signals.done.load(Ordering::Acquire) {
                    return;
                }
                notified.await;
            }
        };
        let _ = tokio::time::timeout(wait, saved).await;
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
