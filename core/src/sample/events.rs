//! [`PatternDetection`]: TickStockPL pattern events as they are published,
//! and [`DetectionStream`], an endless seeded stream of them.

use crate::model::{Event, MarketRegime, Tier, DEFAULT_MAX_BODY_BYTES};
use bytes::Bytes;
use rand::rngs::StdRng;
use rand::seq::IndexedRandom;
use rand::{Rng, SeedableRng};
use serde_json::json;

use super::universe::{SymbolUniverse, PATTERNS};

/// The Redis channel TickStockPL publishes pattern detections on; it gives
/// the decoded events their type, `pattern_detected`.
pub const PATTERNS_CHANNEL: &str = "tickstock.events.patterns";

/// The `metadata.timeframe` values of the fixtures.
const TIMEFRAMES: [&str; 4] = ["1min", "5min", "15min", "1D"];

/// One pattern detection before encoding: the fields the index reads, plus
/// the timestamp that makes bodies differ as they do in real traffic.
#[derive(Debug, Clone, PartialEq)]
pub struct PatternDetection {
    /// Ticker symbol.
    pub symbol: String,
    /// Pattern name, one of [`PATTERNS`].
    pub pattern: &'static str,
    /// Tier.
    pub tier: Tier,
    /// Detection confidence in 0..1; it also sets the event's priority.
    pub confidence: f64,
    /// Market regime, which most events do not carry.
    pub market_regime: Option<MarketRegime>,
    /// Publication time, seconds since the epoch.
    pub timestamp: f64,
}

impl PatternDetection {
    /// A detection of `pattern` on `symbol` with everything else fixed:
    /// daily tier, confidence 0.65 (medium priority, below the floor of
    /// every broad subscription), no market regime.
    pub fn new(symbol: &str, pattern: &'static str) -> Self {
        Self {
            symbol: symbol.to_owned(),
            pattern,
            tier: Tier::Daily,
            confidence: 0.65,
            market_regime: None,
            timestamp: 1_732_460_000.0,
        }
    }

    /// The JSON body TickStockPL would publish, shaped like the fixture
    /// lines (metadata derived from the timestamp, so it is deterministic).
    pub fn to_json(&self) -> String {
        let tick = (self.timestamp * 20.0) as u64;
        let mut body = json!({
            "source": "TickStockPL",
            "timestamp": self.timestamp,
            "pattern": self.pattern,
            "symbol": self.symbol,
            "confidence": self.confidence,
            "tier": self.tier.as_str(),
            "detection_timestamp": self.timestamp - 0.25,
            "metadata": {
                "price": 10.0 + (tick % 99_000) as f64 / 100.0,
                "volume": 100_000 + tick % 4_900_000,
                "timeframe": TIMEFRAMES[tick as usize % TIMEFRAMES.len()],
            },
        });
        if let Some(regime) = self.market_regime {
            body["market_regime"] = regime.as_str().into();
        }
        body.to_string()
    }

    /// The event tickcast decodes from [`to_json`](Self::to_json) on
    /// [`PATTERNS_CHANNEL`].
    pub fn to_event(&self) -> Event {
        Event::from_json(
            Bytes::from(self.to_json()),
            Some(PATTERNS_CHANNEL),
            DEFAULT_MAX_BODY_BYTES,
        )
        .expect("generated detections are valid events")
    }
}

/// Detections with the fixtures' mix: symbol by Zipf popularity, pattern
/// uniform over the 18, tier daily 50 % / intraday 40 % / combo 10 %,
/// confidence uniform in 0.4..1.0 (three decimals), a market regime on 30 %,
/// one every 50 ms.
#[derive(Debug)]
pub struct DetectionStream {
    universe: SymbolUniverse,
    rng: StdRng,
    timestamp: f64,
}

impl DetectionStream {
    /// A stream over `universe` (use the population's, so popular symbols
    /// have big audiences), seeded with `seed`.
    pub fn new(universe: SymbolUniverse, seed: u64) -> Self {
        Self {
            universe,
            rng: StdRng::seed_from_u64(seed),
            timestamp: 1_732_460_000.0,
        }
    }

    /// Stamps the detections from `timestamp` (seconds since the epoch)
    /// on, instead of the fixed start of benchmark streams.
    pub fn starting_at(mut self, timestamp: f64) -> Self {
        self.timestamp = timestamp;
        self
    }

    /// The next `n` detections, decoded.
    pub fn events(&mut self, n: usize) -> Vec<Event> {
        self.take(n).map(|d| d.to_event()).collect()
    }
}

impl Iterator for DetectionStream {
    type Item = PatternDetection;

    fn next(&mut self) -> Option<PatternDetection> {
        let rng = &mut self.rng;
        let symbol = self.universe.sample(rng).to_owned();
        let pattern = *PATTERNS.choose(rng).expect("non-empty");
        let tier = match rng.random_range(0..10) {
            0..5 => Tier::Daily,
            5..9 => Tier::Intraday,
            _ => Tier::Combo,
        };
        let confidence = rng.random_range(400..=1000) as f64 / 1000.0;
        let market_regime = rng
            .random_bool(0.3)
            .then(|| *MarketRegime::ALL.choose(rng).expect("non-empty"));
        self.timestamp += 0.05;
        Some(PatternDetection {
            symbol,
            pattern,
            tier,
            confidence,
            market_regime,
            timestamp: self.timestamp,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::schema::tickstock::TickStockEvent;
    use crate::model::Priority;

    #[test]
    fn detections_decode_like_fixture_events() {
        let e = PatternDetection::new("s001", "Doji").to_event();
        assert_eq!(e.event_type(), "pattern_detected");
        assert_eq!(e.symbol(), Some("S001"));
        assert_eq!(e.priority(), Priority::Medium);
        let mut stream = DetectionStream::new(SymbolUniverse::new(50, 1.0), 3);
        let events = stream.events(1_000);
        assert!(events.iter().any(|e| e.market_regime().is_some()));
        assert!(events
            .iter()
            .all(|e| e.confidence().is_some_and(|c| c >= 0.4)));
    }
}
