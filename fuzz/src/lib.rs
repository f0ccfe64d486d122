//! tickcast-fuzz: fuzz targets for everything tickcast parses from the
//! outside, and a stable-Rust engine that runs them for a bounded time.
//!
//! Every target is a plain `fn(&[u8])` ([`Target::run`]) that feeds the
//! bytes to one parser of untrusted input and panics when the parser
//! panics *or* breaks a property it promises (an accepted publish answers
//! 202 with one offset per item, a parsed offset prints back to itself,
//! ...). Any engine can drive them: [`engine`] (stable Rust, what CI runs
//! through the `tickcast-fuzz` binary) or libFuzzer through cargo-fuzz
//! (`fuzz/libfuzzer/`, nightly). docs/fuzzing.md says how to run both.
//!
//! # Layout
//!
//! - [`targets`]: the targets, one module each, and [`targets::ALL`].
//! - [`engine`]: runs a target on seeds, mutations of them and generated
//!   inputs until a deadline, catching panics per input.
//! - [`mutate`]: the byte-level mutator over seeds.
//! - [`gen`]: structure-aware generation helpers over
//!   [`arbitrary::Unstructured`] (JSON values, hostile numbers and strings).
//! - [`corpus`]: seed corpora: `fuzz/corpus/<target>/` files plus seeds
//!   made from the test fixtures (`tickcast_testkit::fixtures`).
#![warn(missing_docs)]

pub mod corpus;
pub mod engine;
pub mod gen;
pub mod mutate;
pub mod targets;

use arbitrary::Unstructured;

/// One fuzz target: a parser of untrusted input and how to feed it.
#[derive(Clone, Copy)]
pub struct Target {
    /// Its name on the command line and in `fuzz/corpus/<name>/`.
    pub name: &'static str,
    /// What it feeds, in a few words (shown by `tickcast-fuzz list`).
    pub about: &'static str,
    /// Feeds one input; panics on a panic of the code under test or on a
    /// broken property.
    pub run: fn(&[u8]),
    /// Builds one structure-aware input from random bytes (valid-looking
    /// frames, claims, queries with hostile values), so the run reaches
    /// past the first syntax check.
    pub generate: fn(&mut Unstructured<'_>) -> arbitrary::Result<Vec<u8>>,
    /// Seeds made in code, in addition to the corpus files: from the test
    /// fixtures, and binary encodings no one writes by hand.
    pub built_seeds: fn() -> Vec<Vec<u8>>,
    /// Tokens the mutator splices in (keywords, separators, edge numbers).
    pub dictionary: &'static [&'static str],
}

impl std::fmt::Debug for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Target")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

/// The target called `name`, if there is one.
pub fn target(name: &str) -> Option<&'static Target> {
    targets::ALL.iter().find(|t| t.name == name)
}
