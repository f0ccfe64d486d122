//! tickcast-core: the transport- and broker-agnostic engine of tickcast.
#![warn(missing_docs)]

pub mod broadcast;
pub mod history;
pub mod index;
pub mod model;
pub mod protocol;
pub mod routing;
pub mod stats;
