//! Offsets: the position of an event in a node's history.
//!
//! On the wire an offset is an opaque string. Both forms tickcast produces
//! have the shape `<major>-<minor>` with two decimal `u64`s: a node's own
//! `<epoch>-<seq>` and a Redis Streams entry id `<ms>-<seq>`. Parsing them into
//! a pair makes comparison a tuple comparison and keeps the hot path free of
//! string handling.

use std::fmt;
use std::str::FromStr;

/// Where event offsets come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum OffsetMode {
    /// The hub numbers events `<epoch>-<seq>`, a new epoch each start,
    /// unique to the run (see [`hub::epoch`](crate::hub::epoch)).
    #[default]
    Node,
    /// The ingest supplies them (Redis Streams ids); see
    /// [`Hub::publish_at`](crate::Hub::publish_at).
    External,
}

/// Position of an event in the history; totally ordered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Offset {
    /// Epoch of the node run (start ms and a nonce, see
    /// [`hub::epoch`](crate::hub::epoch)) or stream milliseconds.
    pub major: u64,
    /// Sequence within `major`.
    pub minor: u64,
}

impl Offset {
    /// The offset `major-minor`.
    pub const fn new(major: u64, minor: u64) -> Self {
        Self { major, minor }
    }

    /// The largest offset smaller than this one: resuming "after" it includes
    /// this offset. Used for the `since` of a `dropped` notice. `0-0` has no
    /// predecessor and is its own (offsets come from brokers, so it must not
    /// wrap around to a larger one).
    pub fn predecessor(self) -> Self {
        match (self.major.checked_sub(1), self.minor.checked_sub(1)) {
            (_, Some(minor)) => Self::new(self.major, minor),
            (Some(major), None) => Self::new(major, u64::MAX),
            (None, None) => self,
        }
    }

    /// Writes the wire form into `out` (a `Vec`, a `SmallVec`, a stack
    /// buffer) without allocating a `String` first.
    pub fn write_to(self, out: &mut impl Extend<u8>) {
        let mut buf = itoa_buf();
        out.extend(buf.format(self.major).bytes());
        out.extend([b'-']);
        out.extend(buf.format(self.minor).bytes());
    }
}

fn itoa_buf() -> itoa::Buffer {
    itoa::Buffer::new()
}

impl fmt::Display for Offset {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", self.major, self.minor)
    }
}

/// An offset string that is not `<u64>-<u64>`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid offset {0:?}: expected <number>-<number>")]
pub struct InvalidOffset(pub String);

impl FromStr for Offset {
    type Err = InvalidOffset;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || InvalidOffset(s.chars().take(64).collect());
        let (major, minor) = s.split_once('-').ok_or_else(bad)?;
        let digits = |p: &str| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit());
        if !digits(major) || !digits(minor) {
            return Err(bad());
        }
        Ok(Self::new(
            major.parse().map_err(|_| bad())?,
            minor.parse().map_err(|_| bad())?,
        ))
    }
}

impl serde::Serialize for Offset {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for Offset {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_prints_both_forms() {
        let node: Offset = "1732460000123-42".parse().unwrap();
        assert_eq!(node, Offset::new(1732460000123, 42));
        assert_eq!(node.to_string(), "1732460000123-42");
        let mut out = Vec::new();
        node.write_to(&mut out);
        assert_eq!(out, b"1732460000123-42");
    }

    #[test]
    fn rejects_garbage() {
        for bad in [
            "",
            "-",
            "1-",
            "-1",
            "a-b",
            "1-2-3",
            "+1-2",
            "1 -2",
            "99999999999999999999-1",
            "1-18446744073709551616",
            "18446744073709551616-0",
            "１-2",
            "1-٢",
        ] {
            assert!(bad.parse::<Offset>().is_err(), "{bad}");
        }
    }

    #[test]
    fn extremes_parse_without_overflow_and_predecessor_never_wraps() {
        let max: Offset = "18446744073709551615-18446744073709551615".parse().unwrap();
        assert_eq!(max, Offset::new(u64::MAX, u64::MAX));
        assert_eq!(max.predecessor(), Offset::new(u64::MAX, u64::MAX - 1));
        let padded: Offset = "000000000000000000000000000001-0".parse().unwrap();
        assert_eq!(padded, Offset::new(1, 0));
        assert_eq!(Offset::new(1, 0).predecessor(), Offset::new(0, u64::MAX));
        assert_eq!(Offset::new(0, 1).predecessor(), Offset::new(0, 0));
        let zero = Offset::new(0, 0);
        assert_eq!(zero.predecessor(), zero);
        assert!(zero.predecessor() <= zero);
    }

    #[test]
    fn orders_like_stream_ids() {
        let a: Offset = "5-9".parse().unwrap();
        let b: Offset = "6-0".parse().unwrap();
        assert!(a < b);
        assert_eq!(b.predecessor(), Offset::new(5, u64::MAX));
        assert!(a < b.predecessor());
        assert_eq!(Offset::new(5, 3).predecessor(), Offset::new(5, 2));
    }
}
