//! [`SourceOffsets`]: which offsets a source gives, checked against the
//! hub's [`OffsetMode`] before it runs.

use crate::model::OffsetMode;

/// Which offsets the messages of an [`IngestSource`](super::IngestSource)
/// carry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SourceOffsets {
    /// None: the hub numbers the events ([`OffsetMode::Node`]).
    Hub,
    /// Each message carries its broker's offset, such as a Redis Streams
    /// id ([`OffsetMode::External`]).
    Broker,
}

impl SourceOffsets {
    /// The hub offset mode these offsets need.
    pub fn mode(self) -> OffsetMode {
        match self {
            Self::Hub => OffsetMode::Node,
            Self::Broker => OffsetMode::External,
        }
    }
}

/// A source whose offsets do not fit the hub's offset mode: the hub would
/// refuse every message it gives (and a broker with a dead-letter queue
/// would collect them all), so [`run_source`](super::run_source) does not
/// start it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "ingest source `{source_name}` {}, but the hub {}: it would refuse every message",
    gives(*.offsets),
    takes(*.hub)
)]
pub struct OffsetMismatch {
    /// The source's name.
    pub source_name: String,
    /// The offsets it gives.
    pub offsets: SourceOffsets,
    /// The hub's offset mode.
    pub hub: OffsetMode,
}

fn gives(offsets: SourceOffsets) -> &'static str {
    match offsets {
        SourceOffsets::Hub => "gives no offsets (the hub is to number its events)",
        SourceOffsets::Broker => "gives its broker's offsets (Redis Streams ids)",
    }
}

fn takes(mode: OffsetMode) -> &'static str {
    match mode {
        OffsetMode::Node => "numbers events itself (OffsetMode::Node)",
        OffsetMode::External => "takes every offset from its ingest (OffsetMode::External)",
    }
}

/// `Err` when a source giving `offsets` cannot feed a hub in `mode`.
pub(super) fn check(
    source_name: &str,
    offsets: SourceOffsets,
    hub: OffsetMode,
) -> Result<(), OffsetMismatch> {
    if offsets.mode() == hub {
        return Ok(());
    }
    Err(OffsetMismatch {
        source_name: source_name.to_owned(),
        offsets,
        hub,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_kind_of_offsets_fits_one_mode() {
        assert!(check("x", SourceOffsets::Hub, OffsetMode::Node).is_ok());
        assert!(check("x", SourceOffsets::Broker, OffsetMode::External).is_ok());
        let error = check("amqp", SourceOffsets::Hub, OffsetMode::External).unwrap_err();
        assert_eq!(
            error.to_string(),
            "ingest source `amqp` gives no offsets (the hub is to number its events), but the \
             hub takes every offset from its ingest (OffsetMode::External): it would refuse \
             every message"
        );
        assert!(check("redis", SourceOffsets::Broker, OffsetMode::Node).is_err());
    }
}
