//! The event model: the [`schema`] that declares what events carry, what
//! is published ([`Event`], [`Envelope`]) and what is wanted ([`Filter`],
//! resolved into [`schema::Criteria`], held by a [`Subscription`]).

mod envelope;
mod error;
mod event;
mod filter;
mod offset;
pub mod schema;
mod subscription;
mod values;

pub use envelope::{Envelope, BINCODE_MARKER};
pub use error::DecodeError;
pub(crate) use event::ConflationKey;
pub use event::{Event, DEFAULT_MAX_BODY_BYTES, MAX_DEPTH, MAX_NAME_CHARS};
pub use filter::{Filter, FilterError, FilterValue, DEFAULT_MAX_VALUES_PER_LIST};
pub use offset::{InvalidOffset, Offset, OffsetMode};
pub use schema::tickstock::{MarketRegime, Tier};
pub use subscription::{ConnId, SubId, Subscription, UserId};
pub use values::{Priority, UnknownValue, Value};
