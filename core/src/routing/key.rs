//! [`RouteKey`]: what the route cache keys an answer on, derived from the
//! event's values.
//!
//! The key is every dimension of the event's schema, so a dimension cannot
//! be left out of it: text and choice values as they are, and each number
//! replaced by its (floor, ceiling) rank among the distinct bounds in use
//! on its dimension; plus the private user, the priority, and whether the
//! route is a broadcast. A lookup hashes the event's values in place
//! ([`RouteKeyRef`]); only a miss builds the owned [`RouteKey`]. Both hash
//! through the same `write_*` functions, so they hash alike.

use std::hash::{Hash, Hasher};

use quick_cache::Equivalent;
use smallvec::SmallVec;

use crate::model::schema::DimId;
use crate::model::{Event, Priority, Value};

/// One dimension of an owned key.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Part {
    Absent,
    Text(Box<str>),
    Choice(u8),
    /// A number's (floor rank, ceiling rank).
    Rank(u32, u32),
}

/// Owned cache key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RouteKey {
    head: u16,
    user: Option<Box<str>>,
    parts: Box<[Part]>,
}

/// Borrowed form of [`RouteKey`]: the event's values, read in place.
#[derive(Debug, Clone)]
pub(crate) struct RouteKeyRef<'a> {
    head: u16,
    user: Option<&'a str>,
    values: &'a [Option<Value>],
    /// The ranks of the event's numbers, in dimension order.
    ranks: SmallVec<[(u32, u32); 2]>,
}

/// Broadcast flag and priority in one word.
fn head(broadcast: bool, priority: Priority) -> u16 {
    u16::from(broadcast) << 8 | priority.index() as u16
}

impl<'a> RouteKeyRef<'a> {
    /// The key of a content-based route; `rank` gives a number's (floor,
    /// ceiling) ranks on its dimension.
    pub(crate) fn content(event: &'a Event, rank: impl Fn(DimId, f64) -> (u32, u32)) -> Self {
        let values = event.values();
        let ranks = values
            .iter()
            .enumerate()
            .filter_map(|(i, v)| match v {
                Some(Value::Number(n)) => Some(rank(DimId::at(i), *n)),
                _ => None,
            })
            .collect();
        Self {
            head: head(false, event.priority()),
            user: event.user_id(),
            values,
            ranks,
        }
    }

    /// The key of a broadcast: only the private user matters.
    pub(crate) fn broadcast(event: &'a Event) -> Self {
        Self {
            head: head(true, Priority::Low),
            user: event.user_id(),
            values: &[],
            ranks: SmallVec::new(),
        }
    }

    /// The values as key parts, numbers replaced by their ranks.
    fn parts(&self) -> impl Iterator<Item = PartRef<'a>> + '_ {
        let mut ranks = self.ranks.iter().copied();
        self.values.iter().map(move |v| match v {
            None => PartRef::Absent,
            Some(Value::Text(t)) => PartRef::Text(t),
            Some(Value::Choice(c)) => PartRef::Choice(*c),
            Some(Value::Number(_)) => {
                let (floor, ceiling) = ranks.next().unwrap_or_default();
                PartRef::Rank(floor, ceiling)
            }
        })
    }

    pub(crate) fn to_owned(&self) -> RouteKey {
        let parts = self.parts().map(|p| match p {
            PartRef::Absent => Part::Absent,
            PartRef::Text(t) => Part::Text(t.into()),
            PartRef::Choice(c) => Part::Choice(c),
            PartRef::Rank(f, c) => Part::Rank(f, c),
        });
        RouteKey {
            head: self.head,
            user: self.user.map(Into::into),
            parts: parts.collect(),
        }
    }
}

/// A part as read from the event.
#[derive(Clone, Copy)]
enum PartRef<'a> {
    Absent,
    Text(&'a str),
    Choice(u8),
    Rank(u32, u32),
}

impl PartRef<'_> {
    /// One word per part (two for text: its tagged length, then its
    /// bytes, which makes the encoding prefix-free).
    fn write<H: Hasher>(self, h: &mut H) {
        match self {
            Self::Absent => h.write_u64(0),
            Self::Text(t) => {
                h.write_u64(1 << 62 | t.len() as u64);
                h.write(t.as_bytes());
            }
            Self::Choice(c) => h.write_u64(2 << 62 | u64::from(c)),
            Self::Rank(f, c) => h.write_u64(3 << 62 | u64::from(f) << 31 | u64::from(c)),
        }
    }

    fn is(self, part: &Part) -> bool {
        match (self, part) {
            (Self::Absent, Part::Absent) => true,
            (Self::Text(a), Part::Text(b)) => a == &**b,
            (Self::Choice(a), Part::Choice(b)) => a == *b,
            (Self::Rank(a, b), Part::Rank(c, d)) => a == *c && b == *d,
            _ => false,
        }
    }
}

impl Part {
    fn as_ref(&self) -> PartRef<'_> {
        match self {
            Self::Absent => PartRef::Absent,
            Self::Text(t) => PartRef::Text(t),
            Self::Choice(c) => PartRef::Choice(*c),
            Self::Rank(f, c) => PartRef::Rank(*f, *c),
        }
    }
}

fn write_head<H: Hasher>(head: u16, user: Option<&str>, h: &mut H) {
    match user {
        None => h.write_u64(u64::from(head)),
        Some(user) => {
            h.write_u64(1 << 62 | (user.len() as u64) << 16 | u64::from(head));
            h.write(user.as_bytes());
        }
    }
}

impl Hash for RouteKey {
    fn hash<H: Hasher>(&self, h: &mut H) {
        write_head(self.head, self.user.as_deref(), h);
        self.parts.iter().for_each(|p| p.as_ref().write(h));
    }
}

impl Hash for RouteKeyRef<'_> {
    fn hash<H: Hasher>(&self, h: &mut H) {
        write_head(self.head, self.user, h);
        self.parts().for_each(|p| p.write(h));
    }
}

impl Equivalent<RouteKey> for RouteKeyRef<'_> {
    fn equivalent(&self, key: &RouteKey) -> bool {
        self.head == key.head
            && self.user == key.user.as_deref()
            && self.values.len() == key.parts.len()
            && self.parts().zip(key.parts.iter()).all(|(a, b)| a.is(b))
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
    fn borrowed_and_owned_keys_hash_alike() {
        let e = event(r#"{"symbol":"A","pattern":"P","confidence":0.5,"user_id":"u"}"#);
        let key = RouteKeyRef::content(&e, |_, _| (1, 2));
        let owned = key.to_owned();
        let h = rustc_hash::FxBuildHasher;
        assert_eq!(h.hash_one(&key), h.hash_one(&owned));
        assert!(key.equivalent(&owned));
        let other_rank = RouteKeyRef::content(&e, |_, _| (2, 2));
        assert!(!other_rank.equivalent(&owned));
        let broadcast = RouteKeyRef::broadcast(&e);
        assert!(!broadcast.equivalent(&owned));
        assert!(broadcast.equivalent(&broadcast.to_owned()));
    }

    #[test]
    fn values_split_differently_are_different_keys() {
        let a = event(r#"{"symbol":"AB","pattern":"C"}"#);
        let b = event(r#"{"symbol":"A","pattern":"BC"}"#);
        let (ka, kb) = (
            RouteKeyRef::content(&a, |_, _| (0, 0)),
            RouteKeyRef::content(&b, |_, _| (0, 0)),
        );
        assert!(!ka.equivalent(&kb.to_owned()));
        let h = rustc_hash::FxBuildHasher;
        assert_ne!(h.hash_one(&ka), h.hash_one(&kb));
    }
}
