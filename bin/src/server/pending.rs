//! [`PendingConnections`]: the accepted connections that have not yet sent
//! a whole request head, bounded by evicting the oldest.
//!
//! A client trickling its headers holds a socket and a file descriptor
//! until the header deadline. Refusing new connections at a cap would let a
//! few hundred such clients lock everyone else out (health checks
//! included); closing the oldest waiting one instead means an attacker must
//! keep opening connections faster than real clients finish their request
//! heads, which take milliseconds.
//!
//! But a connection can also wait because the server is busy: in a
//! reconnect storm thousands of clients send their heads at once and wait
//! for a worker to read them. Those are young; a trickling attacker's are
//! old. So the oldest is evicted only once it has waited
//! [`EVICTABLE_AFTER`]; while the queue is full of younger ones the accept
//! loop stops accepting ([`PendingConnections::crowded`]) and new clients
//! wait in the kernel's backlog, to be accepted as the queue drains.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio::sync::oneshot;
use tokio::time::Instant;

/// How long a connection must have waited for its request head before a
/// newer one may evict it: far longer than a real client under load takes,
/// far shorter than a trickling one holds on.
pub(crate) const EVICTABLE_AFTER: Duration = Duration::from_secs(1);

/// The waiting connections, oldest first.
#[derive(Debug)]
pub(crate) struct PendingConnections {
    max: usize,
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    next_id: u64,
    /// Id (increasing with age) -> when it was accepted, and the sender
    /// whose drop evicts it.
    waiting: BTreeMap<u64, (Instant, oneshot::Sender<()>)>,
}

/// One connection's place in the queue; leaves it when dropped.
#[derive(Debug)]
pub(crate) struct Place {
    id: u64,
    queue: Arc<PendingConnections>,
}

impl PendingConnections {
    /// At most `max` (>= 1) waiting connections.
    pub(crate) fn new(max: usize) -> Arc<Self> {
        Arc::new(Self {
            max: max.max(1),
            state: Mutex::default(),
        })
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// How long to hold off accepting at `now`: `Some` while the queue is
    /// full and its oldest connection is too young to evict (a storm the
    /// server is slow to read, not clients holding on).
    pub(crate) fn crowded(&self, now: Instant) -> Option<Duration> {
        let state = self.state();
        if state.waiting.len() < self.max {
            return None;
        }
        let (since, _) = state.waiting.first_key_value()?.1;
        EVICTABLE_AFTER
            .checked_sub(now.saturating_duration_since(*since))
            .filter(|d| !d.is_zero())
    }

    /// Queues a new connection accepted at `now`, evicting the oldest when
    /// full (see the module docs). The receiver completes when this
    /// connection is evicted in turn.
    pub(crate) fn admit(self: &Arc<Self>, now: Instant) -> (Place, oneshot::Receiver<()>) {
        let (evict, evicted) = oneshot::channel();
        let mut state = self.state();
        if self.must_evict(&state, now) {
            // Dropping the sender wakes the oldest connection's receiver.
            state.waiting.pop_first();
        }
        let id = state.next_id;
        state.next_id += 1;
        state.waiting.insert(id, (now, evict));
        let place = Place {
            id,
            queue: self.clone(),
        };
        (place, evicted)
    }

    fn must_evict(&self, state: &State, now: Instant) -> bool {
        let len = state.waiting.len();
        if len < self.max {
            return false;
        }
        let oldest_is_stale = state
            .waiting
            .first_key_value()
            .is_some_and(|(_, (since, _))| {
                now.saturating_duration_since(*since) >= EVICTABLE_AFTER
            });
        oldest_is_stale || len >= self.max.saturating_mul(2)
    }

    /// Connections waiting now.
    #[cfg(test)]
    fn len(&self) -> usize {
        self.state().waiting.len()
    }
}

impl Drop for Place {
    fn drop(&mut self) {
        self.queue.state().waiting.remove(&self.id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn evicts_the_oldest_waiting_connection_when_full() {
        let queue = PendingConnections::new(2);
        let start = Instant::now();
        let (first, mut first_evicted) = queue.admit(start);
        let (_second, mut second_evicted) = queue.admit(start);
        assert!(first_evicted
            .try_recv()
            .is_err_and(|e| e == oneshot::error::TryRecvError::Empty));
        let (_third, _) = queue.admit(start + EVICTABLE_AFTER);
        assert_eq!(
            first_evicted.try_recv(),
            Err(oneshot::error::TryRecvError::Closed)
        );
        assert_eq!(
            second_evicted.try_recv(),
            Err(oneshot::error::TryRecvError::Empty)
        );
        assert_eq!(queue.len(), 2);
        drop(first);
        assert_eq!(queue.len(), 2);
    }

    #[test]
    fn young_connections_go_past_the_bound_up_to_twice_it() {
        let queue = PendingConnections::new(2);
        let start = Instant::now();
        let mut places = Vec::new();
        let mut evicted = Vec::new();
        for _ in 0..4 {
            let (place, gone) = queue.admit(start);
            places.push(place);
            evicted.push(gone);
        }
        // A storm of fresh connections: nobody evicted, the queue at twice
        // its bound.
        assert_eq!(queue.len(), 4);
        assert!(evicted.iter_mut().all(|e| e
            .try_recv()
            .is_err_and(|e| e == oneshot::error::TryRecvError::Empty)));
        // At twice the bound the oldest goes whatever its age.
        let (_fifth, _) = queue.admit(start);
        assert_eq!(queue.len(), 4);
        assert_eq!(
            evicted[0].try_recv(),
            Err(oneshot::error::TryRecvError::Closed)
        );
    }

    #[test]
    fn a_queue_full_of_young_connections_holds_accepts_off() {
        let queue = PendingConnections::new(2);
        let start = Instant::now();
        assert_eq!(queue.crowded(start), None);
        let (first, _) = queue.admit(start);
        let (_second, _) = queue.admit(start + Duration::from_millis(100));
        let wait = queue.crowded(start + Duration::from_millis(400));
        assert_eq!(wait, Some(EVICTABLE_AFTER - Duration::from_millis(400)));
        // Once the oldest may be evicted, accepting goes on.
        assert_eq!(queue.crowded(start + EVICTABLE_AFTER), None);
        // Or once one of them has sent its request.
        drop(first);
        assert_eq!(queue.crowded(start + Duration::from_millis(400)), None);
    }

    #[test]
    fn a_place_leaves_the_queue_when_dropped() {
        let queue = PendingConnections::new(3);
        let (place, _) = queue.admit(Instant::now());
        assert_eq!(queue.len(), 1);
        drop(place);
        assert_eq!(queue.len(), 0);
    }
}
