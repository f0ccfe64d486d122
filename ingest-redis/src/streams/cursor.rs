//! The node's place in a stream: [`Cursor`] holds the newest entry id its
//! hub has accepted, [`StreamAcker`] moves it, and the consumer writes it
//! to Redis under [`cursor_key`].
//!
//! Live reads are `XREADGROUP ... NOACK`: Redis keeps no pending entry per
//! read, which cost it more than the read itself (2.5 us an entry with the
//! pending list against 0.7 us without, plus 0.55 us for its XACK). What
//! the pending list gave, a restart that goes on from the last entry the
//! hub took rather than the last one read, the cursor gives: each read's
//! pipeline first writes the accepted id (`SET`), and every session
//! starts by moving the group back to it (`start::place`). Until the hub
//! accepts an entry, the cursor is the place the run started from, also
//! written before the first read. An id accepted
//! but not yet written when the node crashes is read and delivered again
//! after the restart, with the same offset: at most one read's worth of
//! redelivery, never a loss.

use std::cmp::Ordering;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use async_trait::async_trait;
use redis::aio::MultiplexedConnection;
use tickcast_core::ingest::Acknowledger;
use tickcast_core::model::Offset;

use crate::config::has_hash_tag;

/// The key holding `group`'s cursor in `stream`: `{<stream>}:cursor:<group>`,
/// or `<stream>:cursor:<group>` when the stream key already has a hash
/// tag. Either way it lives in the stream's cluster slot, so the read's
/// pipeline on the stream's master can write it. (A stream key with a
/// brace but no hash tag cannot be wrapped; its cursor is
/// `<stream>:cursor:<group>`, which a cluster would put elsewhere, so
/// [`RedisConfig::check`](crate::RedisConfig::check) refuses such a name
/// in a cluster.)
pub fn cursor_key(stream: &str, group: &str) -> String {
    match has_hash_tag(stream) || stream.contains(['{', '}']) {
        true => format!("{stream}:cursor:{group}"),
        false => format!("{{{stream}}}:cursor:{group}"),
    }
}

/// The newest accepted entry id, and how many were accepted since it was
/// last written.
#[derive(Debug, Default)]
pub(crate) struct Cursor {
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    accepted: Option<String>,
    unwritten: usize,
}

impl Cursor {
    fn state(&self) -> MutexGuard<'_, State> {
        // Nothing panics while the lock is held.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Records that the hub took (or refused for good) entry `id`. The
    /// cursor never moves back: an entry re-read after a reconnect and
    /// settled again changes nothing.
    pub(crate) fn advance(&self, id: String) {
        let mut state = self.state();
        let newer = match &state.accepted {
            Some(current) => compare_ids(&id, current) == Ordering::Greater,
            None => true,
        };
        if newer {
            state.accepted = Some(id);
            state.unwritten += 1;
        }
    }

    /// The newest accepted id of this run, if any.
    pub(crate) fn accepted(&self) -> Option<String> {
        self.state().accepted.clone()
    }

    /// Accepted ids not written to Redis yet.
    pub(crate) fn unwritten(&self) -> usize {
        self.state().unwritten
    }

    /// The id to write, if it moved since the last write; the caller
    /// writes it (in a pipeline) and on failure calls
    /// [`unwritten_again`](Self::unwritten_again).
    pub(crate) fn take(&self) -> Option<String> {
        let mut state = self.state();
        match std::mem::take(&mut state.unwritten) {
            0 => None,
            _ => state.accepted.clone(),
        }
    }

    /// A write of [`take`](Self::take)'s id failed: write again next time.
    pub(crate) fn unwritten_again(&self) {
        let mut state = self.state();
        state.unwritten = state.unwritten.max(1);
    }

    /// Writes the cursor under `key` if it moved. On failure it stays
    /// unwritten, to be written on the next connection.
    pub(crate) async fn flush(
        &self,
        conn: &mut MultiplexedConnection,
        key: &str,
    ) -> redis::RedisResult<()> {
        let Some(id) = self.take() else {
            return Ok(());
        };
        let written: redis::RedisResult<()> =
            redis::cmd("SET").arg(key).arg(&id).query_async(conn).await;
        if written.is_err() {
            self.unwritten_again();
        }
        written
    }

    /// Best effort when the consumer goes away: writes the cursor on a
    /// task of its own (if a runtime is still there), so a clean stop
    /// redelivers nothing.
    pub(crate) fn flush_detached(self: &Arc<Self>, conn: MultiplexedConnection, key: String) {
        if self.unwritten() == 0 {
            return;
        }
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let cursor = self.clone();
        runtime.spawn(async move {
            let mut conn = conn;
            if let Err(error) = cursor.flush(&mut conn, &key).await {
                tracing::debug!("final cursor write failed (entries will be redelivered): {error}");
            }
        });
    }
}

/// Stream ids in stream order; ids that are not `<ms>-<seq>` (Redis never
/// makes one) by their text.
fn compare_ids(a: &str, b: &str) -> Ordering {
    match (a.parse::<Offset>(), b.parse::<Offset>()) {
        (Ok(a), Ok(b)) => a.cmp(&b),
        _ => a.cmp(b),
    }
}

/// Settles one stream entry. Both outcomes move the cursor past it: a
/// malformed entry read again forever would only be refused forever.
pub(crate) struct StreamAcker {
    id: String,
    cursor: Arc<Cursor>,
}

impl StreamAcker {
    /// The acker of entry `id`.
    pub(crate) fn new(id: String, cursor: Arc<Cursor>) -> Self {
        Self { id, cursor }
    }
}

#[async_trait]
impl Acknowledger for StreamAcker {
    async fn ack(self: Box<Self>) {
        self.cursor.advance(self.id);
    }

    async fn reject(self: Box<Self>) {
        // run_source has logged the reason; the id finds the entry in the
        // stream, where it stays.
        tracing::debug!(entry = %self.id, "moving past rejected stream entry");
        self.cursor.advance(self.id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cursor_key_shares_the_streams_slot() {
        assert_eq!(
            cursor_key("tickstock:events", "tickcast-a"),
            "{tickstock:events}:cursor:tickcast-a"
        );
        assert_eq!(
            cursor_key("tickstock:events:{3}", "tickcast-a"),
            "tickstock:events:{3}:cursor:tickcast-a"
        );
        // `{}` is no hash tag, and wrapping would make one of `a{`.
        assert_eq!(cursor_key("a{}b", "g"), "a{}b:cursor:g");
        assert!(!has_hash_tag("a{}b") && !has_hash_tag("a}b{c") && has_hash_tag("x{y}"));
    }

    #[test]
    fn the_cursor_only_moves_forward_and_counts_what_is_unwritten() {
        let cursor = Cursor::default();
        assert_eq!(cursor.take(), None);
        cursor.advance("5-1".into());
        cursor.advance("10-0".into());
        cursor.advance("9-7".into());
        assert_eq!(cursor.unwritten(), 2);
        assert_eq!(cursor.take().as_deref(), Some("10-0"));
        assert_eq!(cursor.take(), None, "written once");
        cursor.unwritten_again();
        assert_eq!(
            cursor.take().as_deref(),
            Some("10-0"),
            "a failed write is retried"
        );
        assert_eq!(cursor.accepted().as_deref(), Some("10-0"));
    }

    #[test]
    fn ids_compare_as_numbers() {
        assert_eq!(compare_ids("10-0", "9-0"), Ordering::Greater);
        assert_eq!(compare_ids("5-10", "5-9"), Ordering::Greater);
        assert_eq!(compare_ids("5-1", "5-1"), Ordering::Equal);
    }
}
