//! [`Wakeup`]: how a publisher tells a connection's writer that its queue
//! has something.
//!
//! One flag and one waker, no lock: the fan-out wakes hundreds of writers
//! per event, and a writer waits once per delivery when each user gets a
//! few events per second (tokio's `Notify` takes a mutex on both sides).

use std::future::poll_fn;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};

use futures_util::task::AtomicWaker;

/// A wake-up for one waiting task. A wake while nobody waits is kept for
/// the next wait, so one between the writer's last look at the queue and
/// its wait is never lost.
#[derive(Debug, Default)]
pub(crate) struct Wakeup {
    pending: AtomicBool,
    waker: AtomicWaker,
}

impl Wakeup {
    /// Wakes the waiting task, or the next one to wait.
    pub(crate) fn wake(&self) {
        self.pending.store(true, Ordering::Release);
        self.waker.wake();
    }

    /// Ready once woken since the last time it was ready.
    pub(crate) fn poll_woken(&self, cx: &mut Context<'_>) -> Poll<()> {
        if self.pending.swap(false, Ordering::AcqRel) {
            return Poll::Ready(());
        }
        self.waker.register(cx.waker());
        // A wake between the first check and the registration.
        if self.pending.swap(false, Ordering::AcqRel) {
            return Poll::Ready(());
        }
        Poll::Pending
    }

    /// Resolves once woken since the last time it resolved.
    pub(crate) async fn woken(&self) {
        poll_fn(|cx| self.poll_woken(cx)).await;
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    #[tokio::test]
    async fn a_wake_before_the_wait_is_kept_and_used_once() {
        let wakeup = Wakeup::default();
        wakeup.wake();
        wakeup.woken().await;
        let waker = futures_util::task::noop_waker();
        let mut cx = Context::from_waker(&waker);
        assert!(wakeup.poll_woken(&mut cx).is_pending());
    }

    #[tokio::test]
    async fn a_waiting_task_is_woken() {
        let wakeup = Arc::new(Wakeup::default());
        let waiter = tokio::spawn({
            let wakeup = wakeup.clone();
            async move { wakeup.woken().await }
        });
        tokio::task::yield_now().await;
        wakeup.wake();
        waiter.await.unwrap();
    }
}
