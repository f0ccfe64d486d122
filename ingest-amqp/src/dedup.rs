//! [`RecentIds`]: the message ids of recently accepted events.
//!
//! RabbitMQ delivers at least once: a message the hub accepted whose ack
//! was lost with the connection comes back (flagged `redelivered`), and a
//! publisher that retries after a lost confirm sends it again. Remembering
//! the `message_id` of each accepted message lets the source drop such
//! copies. Messages without a `message_id` cannot be recognised and may
//! then be delivered twice after a fault.

use std::sync::Arc;
use std::time::{Duration, Instant};

use quick_cache::sync::{Cache, DefaultLifecycle};
use quick_cache::{DefaultHashBuilder, OptionsBuilder, UnitWeighter};

/// A bounded set (oldest out first, approximately) shared by the source,
/// which checks it, and its ackers, which fill it. Ids older than
/// `max_age` count as absent (the same window as the hub's).
#[derive(Clone)]
pub(crate) struct RecentIds {
    /// `None` when the check is turned off (capacity 0).
    ids: Option<Arc<Cache<String, Instant>>>,
    max_age: Duration,
}

impl RecentIds {
    /// Remembers up to about `capacity` ids for `max_age`; capacity 0
    /// remembers none.
    pub(crate) fn new(capacity: usize, max_age: Duration) -> Self {
        let ids = (capacity > 0).then(|| Arc::new(fifo(capacity)));
        Self { ids, max_age }
    }

    /// The event with this id was accepted by the hub.
    pub(crate) fn remember(&self, id: &str) {
        if let Some(ids) = &self.ids {
            ids.insert(id.to_owned(), Instant::now());
        }
    }

    /// Whether an event with this id was accepted recently.
    pub(crate) fn contains(&self, id: &str) -> bool {
        self.ids
            .as_ref()
            .and_then(|ids| ids.get(id))
            .is_some_and(|at| at.elapsed() <= self.max_age)
    }
}

/// A cache without a hot section. quick_cache keeps 97 % of its room for
/// keys read more than once by default; ids are written once and read at
/// most once, so with the default only ~3 % of the capacity would hold them.
fn fifo(capacity: usize) -> Cache<String, Instant> {
    let options = OptionsBuilder::new()
        .estimated_items_capacity(capacity)
        .weight_capacity(capacity as u64)
        .hot_allocation(0.0)
        .build();
    match options {
        Ok(options) => Cache::with_options(
            options,
            UnitWeighter,
            DefaultHashBuilder::default(),
            DefaultLifecycle::default(),
        ),
        // Only missing capacities fail the build, and both are set.
        Err(_) => Cache::new(capacity),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remembers_a_bounded_number_of_ids() {
        let recent = RecentIds::new(100, Duration::from_secs(600));
        recent.remember("a");
        assert!(recent.contains("a"));
        assert!(!recent.contains("b"));
        for i in 0..10_000 {
            recent.remember(&i.to_string());
        }
        let kept = (0..10_000)
            .filter(|i| recent.contains(&i.to_string()))
            .count();
        // Bounded, yet most of the room holds the newest ids.
        assert!((80..=200).contains(&kept), "kept {kept}");
        assert!(recent.contains("9999"));
    }

    #[test]
    fn capacity_zero_turns_it_off() {
        let recent = RecentIds::new(0, Duration::from_secs(600));
        recent.remember("a");
        assert!(!recent.contains("a"));
    }

    #[test]
    fn ids_older_than_the_window_are_absent() {
        let recent = RecentIds::new(100, Duration::ZERO);
        recent.remember("a");
        std::thread::sleep(Duration::from_millis(2));
        assert!(!recent.contains("a"));
    }
}
