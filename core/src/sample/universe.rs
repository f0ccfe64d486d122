//! [`SymbolUniverse`] and the vocabularies events and filters are drawn from.

use rand::Rng;
use rand_distr::{Distribution, Zipf};

/// The 18 pattern names TickStockPL publishes (those of the fixtures).
pub const PATTERNS: [&str; 18] = [
    "BearishEngulfing",
    "BreakoutBO",
    "BullishEngulfing",
    "DeathCross",
    "Doji",
    "DoubleBottom",
    "DoubleTop",
    "GapDown",
    "GapUp",
    "GoldenCross",
    "Hammer",
    "HangingMan",
    "HeadShoulders",
    "MACrossover",
    "ResistanceBreak",
    "SupportBreak",
    "TrendReversal",
    "VolumeSpike",
];

/// Well-known US tickers, roughly by how much attention they get: the
/// universe of demos.
pub const TICKERS: [&str; 40] = [
    "AAPL", "NVDA", "TSLA", "MSFT", "AMZN", "META", "AMD", "GOOGL", "SPY", "QQQ", "NFLX", "PLTR",
    "COIN", "AVGO", "INTC", "BA", "JPM", "DIS", "UBER", "SHOP", "SMCI", "MU", "BAC", "XOM", "CRM",
    "ORCL", "PYPL", "SNOW", "ABNB", "F", "GM", "WMT", "KO", "PFE", "T", "NKE", "SBUX", "CVX", "V",
    "MA",
];

/// A symbol outside every [`SymbolUniverse`]: only the probe subscriptions of
/// a population ask for it (see
/// the benchmark populations' probe audience),
/// so an event on it has a known audience whatever the population size.
pub const PROBE_SYMBOL: &str = "PROBE";

/// Symbols ranked by popularity, sampled with a Zipf law: the symbol of rank
/// `r` (0-based) is drawn with probability proportional to `1 / (r + 1)^s`.
///
/// One universe serves both sides, subscriptions and events, so a symbol
/// that many users watch is also one that many events are about: the hot
/// keys of the route cache are the big audiences of the index.
#[derive(Debug, Clone)]
pub struct SymbolUniverse {
    /// Symbol names, most popular first.
    symbols: Vec<String>,
    /// Ranks 1..=len, as floats (rand_distr's Zipf samples floats).
    zipf: Zipf<f64>,
}

impl SymbolUniverse {
    /// A universe of `size` symbols (`S000`, `S001`, ..., most popular
    /// first) with Zipf exponent `exponent` (1.0 is classic Zipf; the
    /// fixtures' ~100 symbols are close to it).
    ///
    /// # Panics
    /// When `size` is 0 or `exponent` is negative.
    pub fn new(size: usize, exponent: f64) -> Self {
        assert!(size > 0, "a symbol universe needs at least one symbol");
        let zipf = Zipf::new(size as f64, exponent).expect("Zipf exponent must be >= 0");
        Self {
            symbols: (0..size).map(|rank| format!("S{rank:03}")).collect(),
            zipf,
        }
    }

    /// A universe of the given symbols, most popular first (e.g.
    /// [`TICKERS`] for a demo that looks like a real market).
    ///
    /// # Panics
    /// When `symbols` is empty or `exponent` is negative.
    pub fn of(symbols: &[&str], exponent: f64) -> Self {
        assert!(
            !symbols.is_empty(),
            "a symbol universe needs at least one symbol"
        );
        let zipf = Zipf::new(symbols.len() as f64, exponent).expect("Zipf exponent must be >= 0");
        Self {
            symbols: symbols.iter().map(|s| (*s).to_owned()).collect(),
            zipf,
        }
    }

    /// Number of symbols.
    pub fn len(&self) -> usize {
        self.symbols.len()
    }

    /// Always false: a universe has at least one symbol.
    pub fn is_empty(&self) -> bool {
        self.symbols.is_empty()
    }

    /// The symbol of popularity rank `rank` (0 is the most popular).
    pub fn symbol(&self, rank: usize) -> &str {
        &self.symbols[rank]
    }

    /// The most popular symbol: the biggest audience.
    pub fn hottest(&self) -> &str {
        &self.symbols[0]
    }

    /// The least popular symbol: the smallest audience of the universe.
    pub fn coldest(&self) -> &str {
        &self.symbols[self.symbols.len() - 1]
    }

    /// Draws a symbol by popularity.
    pub fn sample<R: Rng + ?Sized>(&self, rng: &mut R) -> &str {
        let rank = self.zipf.sample(rng) as usize - 1;
        &self.symbols[rank.min(self.symbols.len() - 1)]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::rngs::StdRng;
    use rand::SeedableRng;

    #[test]
    fn popular_ranks_are_drawn_more_often() {
        let universe = SymbolUniverse::new(500, 1.0);
        let mut rng = StdRng::seed_from_u64(1);
        let hot = (0..10_000)
            .filter(|_| universe.sample(&mut rng) == universe.hottest())
            .count();
        // 1 / H(500) is about 14.7 %.
        assert!((1_200..1_800).contains(&hot), "{hot}");
        assert_eq!(universe.symbol(499), universe.coldest());
    }
}
