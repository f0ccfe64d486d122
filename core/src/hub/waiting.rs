//! [`Waitlist`]: subscriptions whose `since` lies beyond what the hub has
//! read from its ingest yet.
//!
//! With offsets from a broker stream ([`OffsetMode::External`]
//! (super::OffsetMode::External)), a client resuming on a node gives an
//! offset of the stream, which that node may not have read yet: it is
//! catching up after a restart, or simply behind the node the client came
//! from. Everything up to `since` the client has; everything after it the
//! node will read, in order. So the subscription waits here, out of the
//! router, and joins it just before the first event past `since` is
//! routed: the client gets exactly the events after `since`, live, with no
//! replay and no `history_gone`.
//!
//! Entries are added and activated under the publish lock; a connection's
//! unsubscribe and disconnect take that lock to remove its entries only
//! when it has some (a counter on the connection says so), so the usual
//! paths stay lock-free.

use std::sync::atomic::Ordering;
use std::sync::{Arc, Weak};

use super::connection::ConnShared;
use crate::model::{ConnId, Offset, Subscription};

/// One subscription waiting for the hub to pass its `since`.
struct Waiting {
    shared: Weak<ConnShared>,
    sub: Subscription,
    since: Offset,
}

/// The waiting subscriptions of a hub (few, and usually none).
#[derive(Default)]
pub(super) struct Waitlist(Vec<Waiting>);

impl Waitlist {
    /// Adds `sub` of `shared` to wait until an event after `since`.
    pub(super) fn add(&mut self, shared: &Arc<ConnShared>, sub: Subscription, since: Offset) {
        shared.waiting.fetch_add(1, Ordering::AcqRel);
        self.0.push(Waiting {
            shared: Arc::downgrade(shared),
            sub,
            since,
        });
    }

    /// Drops what `conn` has waiting, for subscription `id` only or, with
    /// `None`, all of it.
    pub(super) fn forget(&mut self, conn: ConnId, id: Option<&str>) {
        self.0.retain(|w| {
            let mine = w.sub.conn == conn && id.is_none_or(|id| &*w.sub.id == id);
            if mine {
                if let Some(shared) = w.shared.upgrade() {
                    shared.waiting.fetch_sub(1, Ordering::AcqRel);
                }
            }
            !mine
        });
    }

    /// Takes the subscriptions to route `offset` to: those waiting for an
    /// offset below it, whose connection still holds them.
    pub(super) fn due(&mut self, offset: Offset) -> Vec<(Arc<ConnShared>, Subscription)> {
        if self.0.is_empty() {
            return Vec::new();
        }
        let mut due = Vec::new();
        self.0.retain(|w| {
            if w.since >= offset {
                return true;
            }
            if let Some(shared) = w.shared.upgrade() {
                shared.waiting.fetch_sub(1, Ordering::AcqRel);
                if shared.holds(&w.sub.id) {
                    due.push((shared, w.sub.clone()));
                }
            }
            false
        });
        due
    }

    /// How many wait.
    #[cfg(test)]
    pub(super) fn len(&self) -> usize {
        self.0.len()
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use bytes::Bytes;

    use crate::broadcast::Outbound;
    use crate::hub::{HubConfig, OffsetMode};
    use crate::model::{Event, Filter, Offset, DEFAULT_MAX_BODY_BYTES};
    use crate::protocol::ServerMessage;
    use crate::{Connection, Hub};

    fn hub() -> Hub {
        let mut config = HubConfig::immediate();
        config.offsets = OffsetMode::External;
        config.rate_limit_per_user = 0;
        Hub::new(config)
    }

    fn publish(hub: &Hub, major: u64) {
        let body = Bytes::from_static(br#"{"pattern":"Doji","symbol":"AAPL","tier":"daily"}"#);
        let event = Event::from_json(body, None, DEFAULT_MAX_BODY_BYTES).unwrap();
        hub.publish_at(event, Offset::new(major, 0)).unwrap();
    }

    /// Event offsets (majors) and protocol messages that arrive until the
    /// queue is idle.
    async fn received(conn: &mut Connection) -> (Vec<u64>, Vec<ServerMessage>) {
        let (mut events, mut messages) = (Vec::new(), Vec::new());
        while let Ok(Some(out)) =
            tokio::time::timeout(Duration::from_millis(50), conn.frames.recv()).await
        {
            match out {
                Outbound::Event(frame) => events.push(frame.prepared.offset.major),
                Outbound::Batch(frames) => {
                    events.extend(frames.iter().map(|f| f.prepared.offset.major))
                }
                Outbound::Message(message) => messages.push(message),
                Outbound::Close(_) => break,
            }
        }
        (events, messages)
    }

    fn subscribed(messages: &[ServerMessage]) -> bool {
        messages
            .iter()
            .any(|m| matches!(m, ServerMessage::Subscribed { recovered: 0, .. }))
    }

    fn has_error(messages: &[ServerMessage]) -> bool {
        messages
            .iter()
            .any(|m| matches!(m, ServerMessage::Error { .. }))
    }

    #[tokio::test]
    async fn a_since_the_hub_has_not_reached_gets_what_follows_it_live() {
        let hub = hub();
        publish(&hub, 1);
        publish(&hub, 2);
        let mut conn = hub.connect(None, hub.default_limits()).unwrap();
        let since = Offset::new(4, 0);
        conn.handle
            .subscribe("s", Filter::default(), Some(since))
            .unwrap();
        let (events, messages) = received(&mut conn).await;
        assert!(events.is_empty());
        assert!(subscribed(&messages), "{messages:?}");
        assert!(!has_error(&messages), "no history_gone: {messages:?}");
        assert_eq!(hub.inner.sequencer.lock().waiting.len(), 1);
        for major in 3..=6 {
            publish(&hub, major);
        }
        let (events, _) = received(&mut conn).await;
        assert_eq!(events, [5, 6], "exactly what follows `since`");
        assert_eq!(hub.inner.sequencer.lock().waiting.len(), 0);
    }

    #[tokio::test]
    async fn an_unsubscribed_or_replaced_waiting_subscription_never_joins() {
        let hub = hub();
        publish(&hub, 1);
        let mut conn = hub.connect(None, hub.default_limits()).unwrap();
        let far = Some(Offset::new(9, 0));
        conn.handle.subscribe("a", Filter::default(), far).unwrap();
        conn.handle.subscribe("b", Filter::default(), far).unwrap();
        conn.handle.unsubscribe("a").unwrap();
        // Replaced by a live subscription: no longer waits for 9.
        conn.handle.subscribe("b", Filter::default(), None).unwrap();
        assert_eq!(hub.inner.sequencer.lock().waiting.len(), 0);
        received(&mut conn).await;
        publish(&hub, 10);
        let (events, _) = received(&mut conn).await;
        assert_eq!(events, [10], "once, for `b` only");
    }

    #[tokio::test]
    async fn a_connection_that_leaves_takes_its_waiting_subscriptions_along() {
        let hub = hub();
        publish(&hub, 1);
        let conn = hub.connect(None, hub.default_limits()).unwrap();
        conn.handle
            .subscribe("s", Filter::default(), Some(Offset::new(9, 0)))
            .unwrap();
        assert_eq!(hub.inner.sequencer.lock().waiting.len(), 1);
        drop(conn);
        assert_eq!(hub.inner.sequencer.lock().waiting.len(), 0);
    }

    #[tokio::test]
    async fn without_a_known_history_a_since_is_still_gone() {
        // Nothing read yet: the hub cannot tell a future offset from one
        // it never had, so no waiting.
        let hub = hub();
        let mut conn = hub.connect(None, hub.default_limits()).unwrap();
        conn.handle
            .subscribe("s", Filter::default(), Some(Offset::new(4, 0)))
            .unwrap();
        let (_, messages) = received(&mut conn).await;
        assert!(has_error(&messages), "history_gone: {messages:?}");
        assert_eq!(hub.inner.sequencer.lock().waiting.len(), 0);
    }
}
