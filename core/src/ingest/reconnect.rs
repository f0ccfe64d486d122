//! [`Reconnecting`]: the reconnect state machine every broker source
//! shares, over a [`Link`] the broker implements.

use std::time::Duration;

use async_trait::async_trait;
use tokio::time::Instant;

use super::{Backoff, IngestItem};

/// One broker's sessions, as [`Reconnecting`] drives them: open one, read
/// from it until it fails, close it. A link knows nothing of retries.
#[async_trait]
pub trait Link: Send {
    /// Why a session could not be opened or ended (its `Display` is the
    /// text of [`IngestItem::Disconnected`]).
    type Error: std::fmt::Display + Send;

    /// Opens a session.
    async fn connect(&mut self) -> Result<(), Self::Error>;

    /// The next item of the open session (a message, or a
    /// [`Connected`](IngestItem::Connected) the link reports itself, see
    /// [`reports_connected_later`](Self::reports_connected_later)); an
    /// error ends the session.
    async fn next_item(&mut self) -> Result<IngestItem, Self::Error>;

    /// Closes what is left of the session (after a failed `connect` too),
    /// so the broker redelivers what it had not acknowledged.
    async fn disconnect(&mut self);

    /// Whether the session just opened yields
    /// [`Connected`](IngestItem::Connected) itself, once the history it
    /// reloads at start is handed out, rather than at once (the default).
    fn reports_connected_later(&self) -> bool {
        false
    }
}

/// Where the driver stands with its broker.
#[derive(Debug, Clone, Copy)]
enum State {
    /// Never tried: the first attempt goes at once.
    Fresh,
    /// Connected since then.
    Up(Instant),
    /// Disconnected and already reported so: the next attempt waits this
    /// long.
    Down(Duration),
}

/// Drives a [`Link`] for as long as it runs, as one never-ending sequence
/// of items.
///
/// The first [`next`](Self::next) connects and yields
/// [`IngestItem::Connected`]. When connecting fails, or an open session
/// fails, it closes the session and yields
/// [`IngestItem::Disconnected`] once, then retries with exponential
/// backoff ([`Backoff`]: `min` doubling up to `max`), only logging the
/// further failures of the same outage, and yields `Connected` again when
/// back. The backoff starts over only after a session that lasted `max`:
/// a broker that accepts the connection and fails every read at once is
/// retried ever more slowly, never in a tight loop.
pub struct Reconnecting<L> {
    link: L,
    source: String,
    state: State,
    backoff: Backoff,
    stable_after: Duration,
}

impl<L: Link> Reconnecting<L> {
    /// Drives `link` for the source named `source` (in logs), retrying
    /// after `min` doubling to `max`.
    pub fn new(link: L, source: &str, min: Duration, max: Duration) -> Self {
        let backoff = Backoff::new(min, max);
        Self {
            link,
            source: source.to_owned(),
            state: State::Fresh,
            backoff,
            stable_after: max,
        }
    }

    /// The link.
    pub fn link(&self) -> &L {
        &self.link
    }

    /// The link, to change its settings.
    pub fn link_mut(&mut self) -> &mut L {
        &mut self.link
    }

    /// The next item; there is always one.
    pub async fn next(&mut self) -> IngestItem {
        loop {
            let item = match self.state {
                State::Up(since) => match self.link.next_item().await {
                    Ok(item) => Some(item),
                    Err(error) => Some(self.lose(since, &error).await),
                },
                State::Fresh => self.attempt(Duration::ZERO).await,
                State::Down(delay) => self.attempt(delay).await,
            };
            if let Some(item) = item {
                return item;
            }
        }
    }

    /// Ends the session after `error`: the caller reports it.
    async fn lose(&mut self, since: Instant, error: &L::Error) -> IngestItem {
        self.link.disconnect().await;
        if since.elapsed() >= self.stable_after {
            self.backoff.reset();
        }
        self.state = State::Down(self.backoff.next_delay());
        tracing::info!(source = %self.source, "session lost: {error}; reconnecting");
        IngestItem::Disconnected(error.to_string())
    }

    /// One connection attempt after `delay`. `None`: failed again while
    /// already reported down, or connected with `Connected` left to the
    /// link.
    async fn attempt(&mut self, delay: Duration) -> Option<IngestItem> {
        if !delay.is_zero() {
            tokio::time::sleep(delay).await;
        }
        match self.link.connect().await {
            Ok(()) => {
                self.state = State::Up(Instant::now());
                tracing::info!(source = %self.source, "connected");
                (!self.link.reports_connected_later()).then_some(IngestItem::Connected)
            }
            Err(error) => {
                self.link.disconnect().await;
                let first = matches!(self.state, State::Fresh);
                let delay = self.backoff.next_delay();
                self.state = State::Down(delay);
                if first {
                    tracing::info!(source = %self.source, "cannot connect: {error}; retrying");
                    return Some(IngestItem::Disconnected(error.to_string()));
                }
                tracing::debug!(
                    source = %self.source,
                    "still unreachable ({error}); next try in {delay:?}"
                );
                None
            }
        }
    }
}

impl<L> std::fmt::Debug for Reconnecting<L> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Reconnecting")
            .field("source", &self.source)
            .field("state", &self.state)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use std::collections::VecDeque;

    use super::*;

    /// A scripted broker: each `connect` takes the next outcome, each
    /// open session yields `items` messages and then fails.
    struct Scripted {
        connects: VecDeque<bool>,
        items: usize,
        left: usize,
        later: bool,
        disconnects: usize,
    }

    #[async_trait]
    impl Link for Scripted {
        type Error = &'static str;

        async fn connect(&mut self) -> Result<(), Self::Error> {
            if self.connects.pop_front().unwrap_or(true) {
                self.left = self.items;
                Ok(())
            } else {
                Err("refused")
            }
        }

        async fn next_item(&mut self) -> Result<IngestItem, Self::Error> {
            if self.left == 0 {
                return Err("reset");
            }
            self.left -= 1;
            Ok(IngestItem::Disconnected("a message".into()))
        }

        async fn disconnect(&mut self) {
            self.disconnects += 1;
        }

        fn reports_connected_later(&self) -> bool {
            self.later
        }
    }

    fn scripted(connects: &[bool], items: usize) -> Scripted {
        Scripted {
            connects: connects.iter().copied().collect(),
            items,
            left: 0,
            later: false,
            disconnects: 0,
        }
    }

    fn kind(item: &IngestItem) -> &str {
        match item {
            IngestItem::Connected => "connected",
            IngestItem::Disconnected(why) => why,
            IngestItem::Message(_) | IngestItem::Backfill(_) => "message",
        }
    }

    async fn take(driver: &mut Reconnecting<Scripted>, n: usize) -> Vec<String> {
        let mut items = Vec::new();
        for _ in 0..n {
            items.push(kind(&driver.next().await).to_owned());
        }
        items
    }

    #[tokio::test(start_paused = true)]
    async fn an_outage_is_reported_once_and_ends_with_connected() {
        let link = scripted(&[false, false, false, true], 1);
        let min = Duration::from_millis(100);
        let mut driver = Reconnecting::new(link, "test", min, Duration::from_secs(1));
        let started = Instant::now();
        let items = take(&mut driver, 4).await;
        assert_eq!(items, ["refused", "connected", "a message", "reset"]);
        // Three failed attempts backed off 100 + 200 + 400 ms.
        assert_eq!(started.elapsed(), Duration::from_millis(700));
        assert_eq!(driver.link().disconnects, 4);
    }

    #[tokio::test(start_paused = true)]
    async fn the_backoff_starts_over_only_after_a_stable_session() {
        let min = Duration::from_millis(100);
        let max = Duration::from_secs(1);
        let mut driver = Reconnecting::new(scripted(&[], 0), "test", min, max);
        // Sessions that fail at once: 100, 200, 400 ms between them.
        let items = take(&mut driver, 4).await;
        assert_eq!(items, ["connected", "reset", "connected", "reset"]);
        let before = Instant::now();
        let _ = take(&mut driver, 2).await;
        assert_eq!(before.elapsed(), Duration::from_millis(200));
        // A session that lasted `max` earns the shortest delay again.
        assert_eq!(take(&mut driver, 1).await, ["connected"]);
        tokio::time::sleep(max).await;
        assert_eq!(take(&mut driver, 1).await, ["reset"]);
        let before = Instant::now();
        assert_eq!(kind(&driver.next().await), "connected");
        assert_eq!(before.elapsed(), min);
    }

    #[tokio::test(start_paused = true)]
    async fn a_link_that_reports_connected_itself_is_not_doubled() {
        let mut link = scripted(&[], 1);
        link.later = true;
        let mut driver = Reconnecting::new(link, "test", Duration::ZERO, Duration::ZERO);
        assert_eq!(kind(&driver.next().await), "a message");
    }
}
