//! Per-source ingest counters.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use parking_lot::Mutex;
use serde::Serialize;

/// Counts of one ingest source, updated by [`run_source`](super::run_source)
/// (or by a transport that publishes directly, such as HTTP).
#[derive(Debug)]
pub struct SourceCounters {
    name: String,
    accepted: AtomicU64,
    duplicates: AtomicU64,
    errors: AtomicU64,
    lag: AtomicU64,
    connected: AtomicBool,
    rejected: Mutex<BTreeMap<Box<str>, u64>>,
}

impl SourceCounters {
    /// Counters for source `name`, initially connected.
    pub fn new(name: &str) -> Self {
        Self {
            name: name.to_owned(),
            accepted: AtomicU64::new(0),
            duplicates: AtomicU64::new(0),
            errors: AtomicU64::new(0),
            lag: AtomicU64::new(0),
            connected: AtomicBool::new(true),
            rejected: Mutex::default(),
        }
    }

    /// The source's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// One event accepted by the hub.
    pub fn accepted(&self) {
        self.accepted.fetch_add(1, Ordering::Relaxed);
    }

    /// One redelivered event the hub already had.
    pub fn duplicate(&self) {
        self.duplicates.fetch_add(1, Ordering::Relaxed);
    }

    /// One malformed message, by [`DecodeError::reason`](crate::model::DecodeError::reason).
    pub fn rejected(&self, reason: &str) {
        let mut rejected = self.rejected.lock();
        match rejected.get_mut(reason) {
            Some(n) => *n += 1,
            None => _ = rejected.insert(reason.into(), 1),
        }
    }

    /// One broker error (connection lost, command failed).
    pub fn error(&self) {
        self.errors.fetch_add(1, Ordering::Relaxed);
    }

    /// Whether the source is connected to its broker (`/ready`).
    pub fn set_connected(&self, connected: bool) {
        self.connected.store(connected, Ordering::Relaxed);
    }

    /// True while connected.
    pub fn is_connected(&self) -> bool {
        self.connected.load(Ordering::Relaxed)
    }

    /// Messages waiting at the broker for this node, as the source knows it.
    pub fn set_lag(&self, messages: u64) {
        self.lag.store(messages, Ordering::Relaxed);
    }

    /// A point-in-time copy.
    pub fn snapshot(&self) -> SourceStats {
        let rejected = self.rejected.lock().clone();
        SourceStats {
            name: self.name.clone(),
            connected: self.is_connected(),
            accepted: self.accepted.load(Ordering::Relaxed),
            duplicates: self.duplicates.load(Ordering::Relaxed),
            rejected_total: rejected.values().sum(),
            rejected,
            errors: self.errors.load(Ordering::Relaxed),
            lag: self.lag.load(Ordering::Relaxed),
        }
    }
}

/// A copy of [`SourceCounters`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SourceStats {
    /// Source name.
    pub name: String,
    /// Connected to its broker.
    pub connected: bool,
    /// Events accepted.
    pub accepted: u64,
    /// Redeliveries of events already accepted.
    pub duplicates: u64,
    /// Malformed messages in all.
    pub rejected_total: u64,
    /// Malformed messages by reason.
    pub rejected: BTreeMap<Box<str>, u64>,
    /// Broker errors.
    pub errors: u64,
    /// Messages waiting at the broker.
    pub lag: u64,
}
