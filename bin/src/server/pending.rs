//! [`PendingConnections`]: the accepted connections that have not yet sent
//! a whole request head, bounded by evicting the oldest.
//!
//! A client trickling its headers holds a socket and a file descriptor
//! until the header deadline. Refusing new connections at a cap would let a
//! few hundred such clients lock everyone else out (health checks
//! included); closing the oldest waiting one instead means an attacker must
//! keep opening connections faster than real clients finish their request
//! heads, which take milliseconds.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, PoisonError};

use tokio::sync::oneshot;

/// The waiting connections, oldest first.
#[derive(Debug)]
pub(crate) struct PendingConnections {
    max: usize,
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    next_id: u64,
    /// Id (increasing with age) -> the sender whose drop evicts it.
    waiting: BTreeMap<u64, oneshot::Sender<()>>,
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

    /// Queues a new connection, evicting the oldest when full. The receiver
    /// completes when this connection is evicted in turn.
    pub(crate) fn admit(self: &Arc<Self>) -> (Place, oneshot::Receiver<()>) {
        let (evict, evicted) = oneshot::channel();
        let mut state = self.state();
        if state.waiting.len() >= self.max {
            // Dropping the sender wakes the oldest connection's receiver.
            state.waiting.pop_first();
        }
        let id = state.next_id;
        state.next_id += 1;
        state.waiting.insert(id, evict);
        let place = Place {
            id,
            queue: self.clone(),
        };
        (place, evicted)
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
        let (first, mut first_evicted) = queue.admit();
        let (_second, mut second_evicted) = queue.admit();
        assert!(first_evicted
            .try_recv()
            .is_err_and(|e| e == oneshot::error::TryRecvError::Empty));
        let (_third, _) = queue.admit();
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
    fn a_place_leaves_the_queue_when_dropped() {
        let queue = PendingConnections::new(3);
        let (place, _) = queue.admit();
        assert_eq!(queue.len(), 1);
        drop(place);
        assert_eq!(queue.len(), 0);
    }
}
