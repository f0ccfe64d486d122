//! [`ConnectionHandle`]: one client's side of the hub.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use parking_lot::Mutex;
use rustc_hash::FxHashSet;

use super::config::ConnectionLimits;
use super::Hub;
use crate::broadcast::{ConnectionQueue, FrameReceiver};
use crate::model::schema::{Criteria, Schema, Test};
use crate::model::MAX_NAME_CHARS;
use crate::model::{ConnId, Filter, FilterError, Offset, SubId, Subscription, UserId};
use crate::protocol::{CloseCode, ErrorCode, ServerMessage};

/// A registered connection: the handle to act with and the receiver its
/// writer reads.
#[derive(Debug)]
pub struct Connection {
    /// Subscribe, unsubscribe, send messages; dropping it disconnects.
    pub handle: ConnectionHandle,
    /// The frames to write, in order.
    pub frames: FrameReceiver,
}

/// Why a subscribe or unsubscribe was refused. The connection stays open.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum SubscribeError {
    /// The filter breaks a rule.
    #[error("bad filter: {0}")]
    BadFilter(#[from] FilterError),
    /// The subscription id is empty or too long.
    #[error("subscription id must be 1 to {MAX_NAME_CHARS} characters")]
    BadId,
    /// The filter asks for values of the entitlement dimension (tiers)
    /// the user is not entitled to.
    #[error("{0:?} are not granted to this user")]
    Forbidden(Vec<String>),
    /// The connection holds the most subscriptions allowed.
    #[error("at most {0} subscriptions per connection")]
    LimitExceeded(usize),
    /// Unsubscribe of an id the connection does not hold.
    #[error("no subscription with this id")]
    UnknownSubscription,
}

impl SubscribeError {
    /// The protocol error code.
    pub fn code(&self) -> ErrorCode {
        match self {
            Self::BadFilter(_) | Self::BadId => ErrorCode::BadRequest,
            Self::Forbidden(_) => ErrorCode::Forbidden,
            Self::LimitExceeded(_) => ErrorCode::LimitExceeded,
            Self::UnknownSubscription => ErrorCode::UnknownSubscription,
        }
    }

    /// The `error` message for subscription `id`.
    pub fn to_message(&self, id: &str) -> ServerMessage {
        ServerMessage::error(self.code(), self.to_string(), Some(id.to_owned()))
    }
}

/// One client connection's handle on the hub. Dropping it removes the
/// connection's subscriptions and closes its queue.
pub struct ConnectionHandle {
    hub: Hub,
    shared: Arc<ConnShared>,
}

/// A connection's state, shared with the hub's user registry so that
/// server-side subscriptions ([`Hub::subscribe_user`]) reach it.
pub(crate) struct ConnShared {
    id: ConnId,
    user: Option<UserId>,
    limits: ConnectionLimits,
    queue: Arc<ConnectionQueue>,
    subs: Mutex<FxHashSet<SubId>>,
    /// Its subscriptions in the hub's waitlist (see `waiting`): only a
    /// connection with some takes the publish lock to leave.
    pub(super) waiting: AtomicUsize,
}

impl std::fmt::Debug for ConnectionHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConnectionHandle")
            .field("id", &self.shared.id)
            .field("user", &self.shared.user)
            .finish_non_exhaustive()
    }
}

impl ConnectionHandle {
    pub(super) fn new(
        hub: Hub,
        id: ConnId,
        user: Option<UserId>,
        limits: ConnectionLimits,
        queue: Arc<ConnectionQueue>,
    ) -> Self {
        let shared = Arc::new(ConnShared {
            id,
            user,
            limits,
            queue,
            subs: Mutex::default(),
            waiting: AtomicUsize::new(0),
        });
        Self { hub, shared }
    }

    pub(super) fn shared(&self) -> &Arc<ConnShared> {
        &self.shared
    }

    /// This connection's id.
    pub fn id(&self) -> ConnId {
        self.shared.id
    }

    /// This connection's user (`None`: anonymous).
    pub fn user(&self) -> Option<&UserId> {
        self.shared.user.as_ref()
    }

    /// What this connection may do, fixed at connect time.
    pub fn limits(&self) -> &ConnectionLimits {
        &self.shared.limits
    }

    /// The hub this connection belongs to.
    pub fn hub(&self) -> &Hub {
        &self.hub
    }

    /// Adds or replaces subscription `id`. Queues `subscribed` and, with
    /// `since`, the matching history after that offset (or a
    /// `history_gone` error, the subscription continuing live); a replay
    /// still pending for `id` is dropped either way. Returns how many
    /// events are replayed.
    pub fn subscribe(
        &self,
        id: &str,
        filter: Filter,
        since: Option<Offset>,
    ) -> Result<usize, SubscribeError> {
        self.shared.subscribe(&self.hub, id, filter, since)
    }

    /// Removes subscription `id`, drops its pending replay and queues
    /// `unsubscribed`.
    pub fn unsubscribe(&self, id: &str) -> Result<(), SubscribeError> {
        self.shared.unsubscribe(&self.hub, id)
    }

    /// Ids of this connection's subscriptions.
    pub fn subscription_ids(&self) -> Vec<SubId> {
        self.shared.subs.lock().iter().cloned().collect()
    }

    /// Queues a protocol message (`pong`, `error`); it goes out before
    /// pending events.
    pub fn send(&self, message: ServerMessage) {
        self.shared.queue.push_message(message);
    }

    /// Closes the connection now: pending events are discarded, `message`
    /// is sent last, then `Close(code)` (e.g. 4002 at token expiry).
    pub fn close(&self, code: CloseCode, message: Option<ServerMessage>) {
        self.shared.queue.close(code, message);
    }

    /// True once the connection is closing.
    pub fn is_closed(&self) -> bool {
        self.shared.queue.is_closed()
    }
}

impl Drop for ConnectionHandle {
    fn drop(&mut self) {
        self.shared.stop_waiting(&self.hub, None);
        self.hub
            .disconnect(self.shared.id, self.shared.user.as_ref());
    }
}

impl ConnShared {
    /// [`ConnectionHandle::subscribe`].
    pub(crate) fn subscribe(
        self: &Arc<Self>,
        hub: &Hub,
        id: &str,
        filter: Filter,
        since: Option<Offset>,
    ) -> Result<usize, SubscribeError> {
        let sub = self.validate(hub, id, filter)?;
        let id = sub.id.clone();
        let inner = &*hub.inner;
        // Under the publish lock no event can fall between the replay and
        // the live subscription.
        let mut seq = inner.sequencer.lock();
        if self.waiting.load(Ordering::Acquire) > 0 {
            // Replaced: it no longer waits for the old `since`.
            seq.waiting.forget(self.id, Some(&id));
        }
        let ahead = since.filter(|&since| seq.epoch.is_none() && seq.history.is_behind(since));
        if let Some(since) = ahead {
            // The ingest has not read as far as the client has had yet:
            // the events after `since` will come live (see `waiting`).
            inner.router.unsubscribe(self.id, &id);
            seq.waiting.add(self, sub.clone(), since);
        } else {
            inner.router.subscribe(sub.clone());
        }
        let Some(since) = since.filter(|_| ahead.is_none()) else {
            // The subscription is replaced: so is any replay still pending
            // for its id.
            self.queue.drop_replay(&id);
            self.queue.push_message(ServerMessage::Subscribed {
                id: id.to_string(),
                recovered: 0,
            });
            return Ok(0);
        };
        seq.history.expire(std::time::Instant::now());
        let replay: Result<Vec<_>, _> = seq
            .history
            .since(since)
            .map(|events| events.filter(|e| sub.accepts(&e.event)).cloned().collect());
        match replay {
            Ok(replay) => {
                let recovered = replay.len();
                self.queue.push_message(ServerMessage::Subscribed {
                    id: id.to_string(),
                    recovered,
                });
                // In place of a replay still pending for this id: a
                // client re-subscribing in a loop holds one replay, not one
                // per subscribe.
                self.queue.push_replay(replay, &id);
                Ok(recovered)
            }
            Err(gone) => {
                self.queue.drop_replay(&id);
                self.queue.push_message(ServerMessage::Subscribed {
                    id: id.to_string(),
                    recovered: 0,
                });
                self.queue.push_message(ServerMessage::error(
                    ErrorCode::HistoryGone,
                    gone.to_string(),
                    Some(id.to_string()),
                ));
                Ok(0)
            }
        }
    }

    fn validate(
        &self,
        hub: &Hub,
        id: &str,
        filter: Filter,
    ) -> Result<Subscription, SubscribeError> {
        validate_id(id)?;
        let schema = &hub.inner.config.schema;
        let filter = schema.criteria(&filter, self.limits.max_values_per_list)?;
        let denied = not_entitled(schema, &filter, self.limits.entitled);
        if !denied.is_empty() {
            return Err(SubscribeError::Forbidden(denied));
        }
        let id = SubId::from(id);
        let mut subs = self.subs.lock();
        if !subs.contains(&id) && subs.len() >= self.limits.max_subscriptions {
            return Err(SubscribeError::LimitExceeded(self.limits.max_subscriptions));
        }
        subs.insert(id.clone());
        Ok(Subscription {
            conn: self.id,
            user: self.user.clone(),
            id,
            filter,
            entitled: self.limits.entitled,
        })
    }

    /// [`ConnectionHandle::unsubscribe`].
    pub(crate) fn unsubscribe(&self, hub: &Hub, id: &str) -> Result<(), SubscribeError> {
        if !self.subs.lock().remove(id) {
            return Err(SubscribeError::UnknownSubscription);
        }
        self.stop_waiting(hub, Some(id));
        hub.inner.router.unsubscribe(self.id, id);
        self.queue.drop_replay(id);
        self.queue
            .push_message(ServerMessage::Unsubscribed { id: id.to_owned() });
        Ok(())
    }

    /// Queues a protocol message.
    pub(crate) fn send(&self, message: ServerMessage) {
        self.queue.push_message(message);
    }

    /// Whether subscription `id` is still this connection's.
    pub(super) fn holds(&self, id: &str) -> bool {
        self.subs.lock().contains(id)
    }

    /// Takes subscription `id` (or, with `None`, every one) off the hub's
    /// waitlist; under the publish lock, so none of them joins the router
    /// after this returns.
    fn stop_waiting(&self, hub: &Hub, id: Option<&str>) {
        if self.waiting.load(Ordering::Acquire) > 0 {
            hub.inner.sequencer.lock().waiting.forget(self.id, id);
        }
    }
}

/// A subscription id is 1 to [`MAX_NAME_CHARS`] characters.
/// The values `criteria` ask for in the schema's entitlement dimension that
/// `entitled` does not grant, by name.
fn not_entitled(schema: &Schema, criteria: &Criteria, entitled: Option<u64>) -> Vec<String> {
    let (Some(mask), Some(ent)) = (entitled, schema.entitlement()) else {
        return Vec::new();
    };
    let Some(Test::Choices(asked)) = criteria.condition(ent.dim) else {
        return Vec::new();
    };
    let dim = schema.dimension(ent.dim);
    (0..64u8)
        .filter(|b| asked & !mask & (1 << b) != 0)
        .filter_map(|b| dim.choice_name(b).map(str::to_owned))
        .collect()
}

pub(crate) fn validate_id(id: &str) -> Result<(), SubscribeError> {
    if id.is_empty() || id.chars().count() > MAX_NAME_CHARS {
        return Err(SubscribeError::BadId);
    }
    Ok(())
}
