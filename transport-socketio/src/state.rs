//! [`Shared`]: what the client-reading side and the codec of one
//! connection share.
//!
//! Socket.IO answers an event through its acknowledgement id; core answers
//! an operation with a message naming the subscription id. The reader
//! records, per subscription id, the requests core has yet to answer (and
//! the ack each waits on); the codec matches core's answers to them in
//! order. The same bookkeeping keeps the connection's subscriptions and
//! their filters, which a disconnected session leaves for recovery.
//! Replies the reader makes itself (to a packet core never sees) wait here
//! for the writer.

use parking_lot::Mutex;
use tickcast_core::model::Filter;

use crate::packet::Packet;

/// Most requests waiting for core's answer, over all ids: a client that
/// sends without reading is refused past it (core's own bounds close it
/// soon after).
pub(crate) const MAX_PENDING: usize = 256;
/// Most replies the reader queues for the writer.
pub(crate) const MAX_DIRECT: usize = 64;

/// A request core has yet to answer.
#[derive(Debug, Clone)]
struct Pending {
    ack: Option<u64>,
    /// The filter of a subscribe (kept once core confirms it); `None` for
    /// an unsubscribe.
    filter: Option<Filter>,
}

/// Plain vectors, searched linearly: both are short (the subscription
/// limit, [`MAX_PENDING`]), and an idle connection keeps no spare capacity.
#[derive(Debug, Default)]
struct State {
    /// Requests in the order they were sent.
    pending: Vec<(String, Pending)>,
    /// The connection's subscriptions, as core confirmed them.
    active: Vec<(String, Filter)>,
    direct: Vec<Packet>,
    /// The client left on purpose (Socket.IO DISCONNECT, Engine.IO close):
    /// nothing to recover.
    goodbye: bool,
}

impl State {
    fn activate(&mut self, id: &str, filter: Filter) {
        match self.active.iter_mut().find(|(held, _)| held == id) {
            Some(entry) => entry.1 = filter,
            None => {
                // Exactly as long as it needs to be: it is kept as long as
                // the connection.
                self.active.reserve_exact(1);
                self.active.push((id.to_owned(), filter));
            }
        }
    }

    fn deactivate(&mut self, id: &str) {
        self.active.retain(|(held, _)| held != id);
    }
}

/// One connection's shared bookkeeping.
#[derive(Debug, Default)]
pub(crate) struct Shared {
    state: Mutex<State>,
}

/// How core's answer for a subscription id is to be sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Answer {
    /// As the acknowledgement of this id.
    Ack(u64),
    /// As an event: nobody waits on it.
    Event,
}

impl Shared {
    /// A subscribe or unsubscribe (`filter` `None`) of `id` is on its way
    /// to core; false when too many are (the request is refused).
    pub(crate) fn expect(&self, id: &str, ack: Option<u64>, filter: Option<Filter>) -> bool {
        let mut state = self.state.lock();
        if state.pending.len() >= MAX_PENDING {
            return false;
        }
        state.pending.push((id.to_owned(), Pending { ack, filter }));
        true
    }

    /// Core answered the oldest request for `id`: `ok` (`subscribed`,
    /// `unsubscribed`) or not (`error`). Returns how to send the answer.
    pub(crate) fn answered(&self, id: &str, ok: bool) -> Answer {
        let mut state = self.state.lock();
        let Some(at) = state.pending.iter().position(|(asked, _)| asked == id) else {
            return Answer::Event;
        };
        let (_, pending) = state.pending.remove(at);
        if state.pending.is_empty() {
            state.pending = Vec::new();
        }
        if ok {
            match pending.filter {
                Some(filter) => state.activate(id, filter),
                None => state.deactivate(id),
            }
        }
        pending.ack.map_or(Answer::Event, Answer::Ack)
    }

    /// A subscription the client did not ask for here: restored at
    /// recovery.
    pub(crate) fn restored(&self, id: &str, filter: Filter) {
        self.state.lock().activate(id, filter);
    }

    /// Core removed `id` without a request (a server-side unsubscribe).
    pub(crate) fn removed(&self, id: &str) {
        self.state.lock().deactivate(id);
    }

    /// The connection's subscriptions and their filters.
    pub(crate) fn subscriptions(&self) -> Vec<(String, Filter)> {
        self.state.lock().active.clone()
    }

    /// Queues a reply for the writer; false when too many wait (a client
    /// sending without reading).
    pub(crate) fn reply(&self, packet: Packet) -> bool {
        let mut state = self.state.lock();
        if state.direct.len() >= MAX_DIRECT {
            return false;
        }
        state.direct.push(packet);
        true
    }

    /// The replies queued for the writer.
    pub(crate) fn take_replies(&self) -> Vec<Packet> {
        std::mem::take(&mut self.state.lock().direct)
    }

    /// The client said goodbye.
    pub(crate) fn goodbye(&self) {
        self.state.lock().goodbye = true;
    }

    /// True once the client said goodbye.
    pub(crate) fn said_goodbye(&self) -> bool {
        self.state.lock().goodbye
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_match_requests_in_order_and_track_subscriptions() {
        let shared = Shared::default();
        assert!(shared.expect("s1", Some(1), Some(Filter::default())));
        assert!(shared.expect("s1", None, Some(Filter::default())));
        assert!(shared.expect("s1", Some(3), None));
        assert_eq!(shared.answered("s1", true), Answer::Ack(1));
        assert_eq!(shared.subscriptions().len(), 1);
        assert_eq!(shared.answered("s1", false), Answer::Event);
        assert_eq!(shared.answered("s1", true), Answer::Ack(3));
        assert!(shared.subscriptions().is_empty());
        assert_eq!(shared.answered("s1", true), Answer::Event);
    }

    #[test]
    fn pending_requests_and_replies_are_bounded() {
        let shared = Shared::default();
        for i in 0..MAX_PENDING {
            assert!(shared.expect(&format!("s{i}"), None, None));
        }
        assert!(!shared.expect("one more", None, None));
        for _ in 0..MAX_DIRECT {
            assert!(shared.reply(Packet::fixed("6")));
        }
        assert!(!shared.reply(Packet::fixed("6")));
        assert_eq!(shared.take_replies().len(), MAX_DIRECT);
        assert!(shared.reply(Packet::fixed("6")));
    }
}
