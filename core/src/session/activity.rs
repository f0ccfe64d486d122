//! [`Activity`]: when the client was last heard from.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

/// When the peer was last heard from, shared by the reader and the writer
/// without a lock.
#[derive(Clone, Debug)]
pub(crate) struct Activity {
    clock: Instant,
    /// Milliseconds since `clock`.
    last_seen: Arc<AtomicU64>,
}

impl Activity {
    pub(crate) fn new() -> Self {
        Self {
            clock: Instant::now(),
            last_seen: Arc::new(AtomicU64::new(0)),
        }
    }

    /// The peer said something just now.
    pub(crate) fn touch(&self) {
        let ms = u64::try_from(self.clock.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.last_seen.store(ms, Ordering::Relaxed);
    }

    /// How long the peer has been silent.
    pub(crate) fn silent_for(&self) -> Duration {
        let seen = Duration::from_millis(self.last_seen.load(Ordering::Relaxed));
        self.clock.elapsed().saturating_sub(seen)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn silence_is_measured_from_the_last_touch() {
        let activity = Activity::new();
        tokio::time::advance(Duration::from_secs(5)).await;
        assert_eq!(activity.silent_for(), Duration::from_secs(5));
        activity.touch();
        tokio::time::advance(Duration::from_secs(2)).await;
        assert_eq!(activity.silent_for(), Duration::from_secs(2));
    }
}
