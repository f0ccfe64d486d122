//! tickcast-core: the transport- and broker-agnostic engine of tickcast.
#![warn(missing_docs)]

pub mod broadcast;
pub mod history;
pub mod hub;
pub mod index;
pub mod ingest;
pub mod model;
pub mod protocol;
pub mod routing;
pub mod stats;

pub use hub::{Connection, ConnectionHandle, Hub, HubConfig};
