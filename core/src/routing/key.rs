//! [`RouteKey`]: what the route cache keys an answer on, derived from the
//! event's values.
//!
//! The key is every dimension of the event's schema, so a dimension cannot
//! be left out of it: text and choice values as they are, and each number
//! replaced by its (floor, ceiling) rank among the distinct bounds in use
//! on its dimension; plus the private user, the priority, and whether the
//! route is a broadcast.
//!
//! It is kept as one self-delimiting byte string, inline up to
//! [`INLINE`] bytes (a TickStock key takes about 60): a lookup compares
//! two contiguous buffers instead of chasing a pointer per text value
//! through a cache of thousands of entries, and a miss stores it without
//! allocating.

use smallvec::SmallVec;

use crate::model::schema::DimId;
use crate::model::{Event, Priority, Value};

/// Key bytes held without a heap allocation.
const INLINE: usize = 96;

/// A route-cache key: the encoding of the route's inputs.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct RouteKey(SmallVec<[u8; INLINE]>);

// Each part starts with a tag; texts carry their length: no two different
// keys encode alike.
const ABSENT: u8 = 0;
const TEXT: u8 = 1;
const CHOICE: u8 = 2;
const RANK: u8 = 3;

impl RouteKey {
    /// The key of a content-based route; `rank` gives a number's (floor,
    /// ceiling) ranks on its dimension.
    pub(crate) fn content(event: &Event, rank: impl Fn(DimId, f64) -> (u32, u32)) -> Self {
        let mut key = Self::head(false, event);
        for (i, value) in event.values().iter().enumerate() {
            match value {
                None => key.0.push(ABSENT),
                Some(Value::Text(t)) => key.text(TEXT, t),
                Some(Value::Choice(c)) => key.0.extend_from_slice(&[CHOICE, *c]),
                Some(Value::Number(n)) => {
                    let (floor, ceiling) = rank(DimId::at(i), *n);
                    key.0.push(RANK);
                    key.0.extend_from_slice(&floor.to_le_bytes());
                    key.0.extend_from_slice(&ceiling.to_le_bytes());
                }
            }
        }
        key
    }

    /// The key of a broadcast: only the private user matters.
    pub(crate) fn broadcast(event: &Event) -> Self {
        Self::head(true, event)
    }

    /// Broadcast flag, priority and private user.
    fn head(broadcast: bool, event: &Event) -> Self {
        let priority = if broadcast {
            Priority::Low
        } else {
            event.priority()
        };
        let mut key = Self(SmallVec::new());
        key.0
            .extend_from_slice(&[u8::from(broadcast), priority.index() as u8]);
        match event.user_id() {
            None => key.0.push(ABSENT),
            Some(user) => key.text(TEXT, user),
        }
        key
    }

    fn text(&mut self, tag: u8, text: &str) {
        // Texts are bounded by the publish size limit, far below 4 GiB.
        let len = u32::try_from(text.len()).unwrap_or(u32::MAX);
        self.0.push(tag);
        self.0.extend_from_slice(&len.to_le_bytes());
        self.0.extend_from_slice(text.as_bytes());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use std::hash::BuildHasher;

    fn event(json: &str) -> Event {
        Event::from_json(Bytes::copy_from_slice(json.as_bytes()), None, 1024).unwrap()
    }

    #[test]
    fn equal_inputs_make_equal_keys_and_any_difference_another() {
        let e = event(r#"{"symbol":"A","pattern":"P","confidence":0.5,"user_id":"u"}"#);
        let key = RouteKey::content(&e, |_, _| (1, 2));
        let h = rustc_hash::FxBuildHasher;
        assert_eq!(key, RouteKey::content(&e, |_, _| (1, 2)));
        assert_eq!(h.hash_one(&key), h.hash_one(key.clone()));
        assert_ne!(key, RouteKey::content(&e, |_, _| (2, 2)));
        assert_ne!(key, RouteKey::broadcast(&e));
        let anonymous = event(r#"{"symbol":"A","pattern":"P","confidence":0.5}"#);
        assert_ne!(key, RouteKey::content(&anonymous, |_, _| (1, 2)));
        assert_eq!(RouteKey::broadcast(&e), RouteKey::broadcast(&e));
    }

    #[test]
    fn values_split_differently_are_different_keys() {
        let a = event(r#"{"symbol":"AB","pattern":"C"}"#);
        let b = event(r#"{"symbol":"A","pattern":"BC"}"#);
        assert_ne!(
            RouteKey::content(&a, |_, _| (0, 0)),
            RouteKey::content(&b, |_, _| (0, 0))
        );
    }

    #[test]
    fn a_fixture_key_stays_inline() {
        for fx in typical_bodies() {
            let e = event(fx);
            let key = RouteKey::content(&e, |_, _| (3, 4));
            assert!(!key.0.spilled(), "{} bytes: {fx}", key.0.len());
        }
    }

    /// Typical TickStock bodies, one with a long pattern and a user.
    fn typical_bodies() -> [&'static str; 2] {
        [
            r#"{"event_type":"pattern_detected","symbol":"AAPL","pattern":"BreakoutBO","confidence":0.95,"tier":"intraday","market_regime":"bull","source":"TickStockPL"}"#,
            r#"{"event_type":"pattern_detected","symbol":"BRK.B","pattern":"HeadAndShoulders","confidence":0.7,"tier":"daily","user_id":"user-1234"}"#,
        ]
    }
}
