//! Sample TickStock traffic (feature `sample`): pattern detections with
//! the mix of `testdata/fixtures/tickstockpl_events.jsonl` (Zipf-popular
//! symbols, 18 patterns, tiers 50/40/10 %, confidence 0.4..1), seeded and
//! endless. Used by the benches, the load generator and `tickcast demo`.

pub mod events;
pub mod universe;

pub use events::{DetectionStream, PatternDetection, PATTERNS_CHANNEL};
pub use universe::{SymbolUniverse, PATTERNS, PROBE_SYMBOL, TICKERS};
