//! [`Burst`]: publishes that wake each recipient's writer once, at the end.
//!
//! An ingest reads events in batches (a Redis Streams read brings up to
//! hundreds). Published one by one, each event wakes its recipients'
//! writers, and a writer that runs at once finds one event to send: one
//! socket write per delivery. Inside a burst the writers are listed and
//! woken when it ends, so each sends what the batch brought it in one
//! write. Each event is still accepted, recorded and queued before the
//! next, exactly as by [`Hub::publish`] and [`Hub::publish_at`]; only the
//! wakeups wait, for as long as the burst's synchronous publishes take.

use super::{Hub, PublishError};
use crate::broadcast::WakeList;
use crate::model::{Event, Offset};

/// A run of publishes into one hub; dropping it wakes every writer they
/// queued for. Keep it across synchronous publishes only: writers wait
/// for the drop.
pub struct Burst<'h> {
    hub: &'h Hub,
    wake: WakeList,
}

impl<'h> Burst<'h> {
    pub(super) fn new(hub: &'h Hub) -> Self {
        Self {
            hub,
            wake: WakeList::default(),
        }
    }

    /// [`Hub::publish`] inside the burst.
    pub fn publish(&mut self, event: Event) -> Result<Offset, PublishError> {
        self.hub.publish_with(event, Some(&mut self.wake))
    }

    /// [`Hub::publish_at`] inside the burst.
    pub fn publish_at(&mut self, event: Event, offset: Offset) -> Result<Offset, PublishError> {
        self.hub
            .publish_at_with(event, offset, Some(&mut self.wake))
    }
}

impl Drop for Burst<'_> {
    fn drop(&mut self) {
        std::mem::take(&mut self.wake).wake_all();
    }
}
