//! The fuzz targets, one module each. [`ALL`] lists them in the order the
//! harness runs them.
//!
//! A target's `run` panics on two things: a panic of the code under test,
//! and a broken property (`assert!`), so an engine reports both the same
//! way. Properties are the contract users read in docs/ (an accepted
//! publish answers 202 with one offset per item, a token whose `nbf` is an
//! hour ahead is refused, ...), checked against an independent reading of
//! the input where one is cheap.

pub mod client_op;
pub mod envelope;
pub mod event_json;
pub mod offset;
pub mod publish;
pub mod sse_head;
pub mod sse_query;
pub mod token;

use crate::Target;

/// Every target.
pub static ALL: [Target; 8] = [
    client_op::TARGET,
    publish::TARGET,
    event_json::TARGET,
    envelope::TARGET,
    sse_query::TARGET,
    sse_head::TARGET,
    token::TARGET,
    offset::TARGET,
];

/// How many fixture events a target takes as seeds: enough to cover every
/// shape in the file, few enough that the seeds run in well under a second.
pub(crate) const FIXTURE_SAMPLE: usize = 400;

/// A spread-out sample of at most `n` of `items` (every k-th), so a sample
/// covers the whole fixture file rather than its beginning.
pub(crate) fn sample<T>(items: Vec<T>, n: usize) -> Vec<T> {
    let step = items.len().div_ceil(n.max(1)).max(1);
    items.into_iter().step_by(step).collect()
}
