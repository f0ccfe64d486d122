//! The recent events, for `since` replay after a reconnect: the hub keeps
//! them in a ring bounded by count and age ([`HistoryConfig`]), and a
//! `since` it cannot serve completely is [`HistoryGone`].
//!
//! The ring remembers its *floor*: every event with an offset above the
//! floor is still held, so a replay from any offset at or above it is
//! complete, and one from below it is not (`history_gone`).

use std::time::Duration;

use crate::model::Offset;

pub(crate) mod ring;

pub(crate) use ring::History;

/// Bounds of the history.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct HistoryConfig {
    /// Most events held (0 keeps none: every `since` is `history_gone`
    /// unless nothing was missed).
    pub capacity: usize,
    /// Oldest event held.
    pub max_age: Duration,
}

setters!(HistoryConfig {
    with_capacity => capacity: usize,
    with_max_age => max_age: Duration,
});

impl Default for HistoryConfig {
    fn default() -> Self {
        Self {
            capacity: 100_000,
            max_age: Duration::from_secs(3600),
        }
    }
}

/// A `since` offset the history cannot serve completely.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("offset {since} is not in the history (it holds events after {floor:?} up to {latest:?})")]
pub struct HistoryGone {
    /// The requested offset.
    pub since: Offset,
    /// Replays are complete from here on.
    pub floor: Option<Offset>,
    /// The newest offset.
    pub latest: Option<Offset>,
}
