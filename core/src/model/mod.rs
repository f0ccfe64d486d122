//! The event model: what is published ([`Event`], [`Envelope`]), what is
//! wanted ([`Filter`], [`Subscription`]) and the vocabularies both share.

mod channel;
mod envelope;
mod error;
mod event;
mod filter;
mod offset;
mod subscription;
mod values;

pub use channel::{
    channel_for_event_type, event_type_for_channel, KNOWN_CHANNELS, PATTERN_DETECTED,
};
pub use envelope::{Envelope, BINCODE_MARKER};
pub use error::DecodeError;
pub use event::{Event, DEFAULT_MAX_BODY_BYTES, MAX_DEPTH, MAX_NAME_CHARS, MAX_SYMBOL_CHARS};
pub use filter::{Filter, FilterError, DEFAULT_MAX_VALUES_PER_LIST};
pub use offset::{InvalidOffset, Offset};
pub use subscription::{ConnId, SubId, Subscription, UserId};
pub use values::{MarketRegime, Priority, Tier, UnknownValue};
