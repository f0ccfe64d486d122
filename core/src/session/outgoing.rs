//! [`Outgoing`]: the items of the current write round, and the pump that
//! moves them into the transport's sink.
//!
//! The pump is a plain poll function over state kept here, so the session
//! can poll it beside its timer and stop polling at any
//! moment without losing an item: whatever the sink has not taken stays in
//! the queue.

use std::collections::VecDeque;
use std::task::{ready, Context, Poll};

use futures_util::{Sink, SinkExt};

/// Items encoded but not yet taken by the sink, and whether the sink still
/// owes a flush.
#[derive(Debug)]
pub(crate) struct Outgoing<T> {
    items: VecDeque<T>,
    unflushed: bool,
}

impl<T> Outgoing<T> {
    pub(crate) fn new() -> Self {
        Self {
            items: VecDeque::new(),
            unflushed: false,
        }
    }

    /// Nothing left to hand over or flush.
    pub(crate) fn is_idle(&self) -> bool {
        self.items.is_empty() && !self.unflushed
    }

    /// Adds items to the round.
    pub(crate) fn extend(&mut self, items: impl IntoIterator<Item = T>) {
        self.items.extend(items);
    }

    /// Adds a freshly encoded round, taking over its buffer when nothing
    /// else is pending (no copy, no allocation).
    pub(crate) fn append(&mut self, round: Vec<T>) {
        if self.items.is_empty() {
            self.items = VecDeque::from(round);
        } else {
            self.items.extend(round);
        }
    }

    /// Hands every item to `sink` and flushes it. Ready once all is
    /// written; Pending while the socket takes nothing more.
    pub(crate) fn poll_write<K>(
        &mut self,
        sink: &mut K,
        cx: &mut Context<'_>,
    ) -> Poll<Result<(), K::Error>>
    where
        K: Sink<T> + Unpin,
    {
        while !self.items.is_empty() {
            ready!(sink.poll_ready_unpin(cx))?;
            if let Some(item) = self.items.pop_front() {
                sink.start_send_unpin(item)?;
                self.unflushed = true;
            }
        }
        // Mostly idle connections keep no buffer between rounds.
        self.items = VecDeque::new();
        if self.unflushed {
            ready!(sink.poll_flush_unpin(cx))?;
            self.unflushed = false;
        }
        Poll::Ready(Ok(()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::pin::Pin;

    /// A sink that takes `room` items, then stays full until given more.
    struct Gate {
        room: usize,
        taken: Vec<u32>,
        flushes: usize,
    }

    impl Sink<u32> for Gate {
        type Error = ();
        fn poll_ready(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Result<(), ()>> {
            if self.room > 0 {
                Poll::Ready(Ok(()))
            } else {
                Poll::Pending
            }
        }
        fn start_send(mut self: Pin<&mut Self>, item: u32) -> Result<(), ()> {
            self.room -= 1;
            self.taken.push(item);
            Ok(())
        }
        fn poll_flush(mut self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Result<(), ()>> {
            self.flushes += 1;
            Poll::Ready(Ok(()))
        }
        fn poll_close(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Result<(), ()>> {
            Poll::Ready(Ok(()))
        }
    }

    #[test]
    fn a_stalled_round_keeps_its_items_and_resumes_in_order() {
        let mut out = Outgoing::new();
        out.extend([1, 2, 3]);
        let mut sink = Gate {
            room: 2,
            taken: vec![],
            flushes: 0,
        };
        let waker = futures_util::task::noop_waker();
        let mut cx = Context::from_waker(&waker);
        assert!(out.poll_write(&mut sink, &mut cx).is_pending());
        assert_eq!(sink.taken, [1, 2]);
        assert!(!out.is_idle());
        sink.room = 5;
        assert_eq!(out.poll_write(&mut sink, &mut cx), Poll::Ready(Ok(())));
        assert_eq!(sink.taken, [1, 2, 3]);
        assert_eq!(sink.flushes, 1);
        assert!(out.is_idle());
    }
}
