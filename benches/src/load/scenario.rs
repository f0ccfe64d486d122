//! [`Scenario`]: what one `tickcast-load` run does, as a TOML file under
//! `benches/scenarios/`.
//!
//! Every key has a default, so a scenario file only says what differs.
//! Unknown keys are errors (a typo must not silently change a benchmark).
//! The built-in scenarios are compiled into the binary, so
//! `--scenario seed` works from any directory; `--scenario FILE.toml` loads
//! a file instead.

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};
use tickcast_core::model::schema::tickstock::{self, PATTERN_DETECTED};

use super::LoadError;

/// The scenarios shipped in `benches/scenarios/`, by name.
pub const BUILT_IN: [(&str, &str); 7] = [
    ("smoke", include_str!("../../scenarios/smoke.toml")),
    ("seed", include_str!("../../scenarios/seed.toml")),
    (
        "fanout-10k",
        include_str!("../../scenarios/fanout-10k.toml"),
    ),
    ("c100k", include_str!("../../scenarios/c100k.toml")),
    (
        "max-throughput",
        include_str!("../../scenarios/max-throughput.toml"),
    ),
    ("fanout-5k", include_str!("../../scenarios/fanout-5k.toml")),
    ("churn", include_str!("../../scenarios/churn.toml")),
];

/// Most subscriptions one connection may hold here: the server's default
/// `limits.max_subscriptions_per_connection`, and the width of the mask a
/// connection reports its refused subscriptions in.
pub const MAX_SUBSCRIPTIONS: usize = 64;

/// One run of the load generator.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Scenario {
    /// What the scenario is for, shown at the start of a run.
    pub description: String,
    /// The server settings the scenario expects.
    pub server: ServerSection,
    /// Who connects, how fast, with how many subscriptions.
    pub connections: ConnectionsSection,
    /// What the subscriptions ask for.
    pub filters: FiltersSection,
    /// What is published, how fast, for how long.
    pub publish: PublishSection,
    /// Seed and end of the run.
    pub run: RunSection,
    /// Short-lived connections coming and going during the publish phase
    /// (`tickcast-load churn`); none when absent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub churn: Option<ChurnSection>,
}

/// `[server]`: documentation of the server the scenario is meant for.
/// tickcast-load cannot set these (the server is another process); it
/// prints them at the start so a run against a misconfigured server is
/// easy to spot (its deliveries go missing and `dropped` notices arrive).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServerSection {
    /// Environment of `tickcast` (`TICKCAST_*` variables) the scenario
    /// expects, e.g. `TICKCAST_DELIVERY__RATE_LIMIT_PER_USER = "0"`.
    pub env: BTreeMap<String, String>,
    /// Open-file limit the server needs (`ulimit -n` in its shell).
    pub nofile: Option<u64>,
}

/// `[connections]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ConnectionsSection {
    /// WebSocket connections to open.
    pub count: usize,
    /// Connections opened per second during the ramp.
    pub ramp_per_s: f64,
    /// Subscriptions per connection: `[min, max]`, uniform.
    pub subscriptions: [usize; 2],
    /// Longest time one connection may take to connect, get its welcome
    /// and all its `subscribed` answers, in seconds.
    pub connect_timeout_s: f64,
    /// Loopback source addresses (127.0.0.1, 127.0.0.2, ...) the client
    /// sockets are spread over; 0 = as many as the ephemeral port range
    /// needs for `count` connections. Used only when the server address is
    /// a loopback one.
    pub source_ips: usize,
    /// Share of the connections (0..=1, spread evenly) that use SSE
    /// (`GET /sse`, their first filter only: SSE carries one filter per
    /// connection) instead of WebSocket.
    pub sse_share: f64,
}

impl Default for ConnectionsSection {
    fn default() -> Self {
        Self {
            count: 50,
            ramp_per_s: 1000.0,
            subscriptions: [1, 3],
            connect_timeout_s: 10.0,
            source_ips: 0,
            sse_share: 0.0,
        }
    }
}

/// `[filters]`: the mix of subscription kinds (weights, normalized to
/// their sum) and the symbol universe they and the events are drawn from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct FiltersSection {
    /// Symbols in the universe (`S000` most popular, ...).
    pub symbols: usize,
    /// Zipf exponent of symbol popularity (subscriptions and events alike).
    pub zipf_exponent: f64,
    /// Weight of watchlists: 1-3 Zipf symbols, sometimes narrowed by
    /// patterns, tiers, regimes, a confidence or priority floor (the
    /// benchmark population's watchlists).
    pub watchlist: f64,
    /// Weight of pattern-only subscriptions: 1-3 patterns, a confidence
    /// floor of 0.7 or more, sometimes a priority floor.
    pub pattern_only: f64,
    /// Weight of tier-only subscriptions: 1-2 tiers, a confidence floor of
    /// 0.7 or more, sometimes a priority floor.
    pub tier_only: f64,
    /// Weight of firehose subscriptions: `{"event_types":["pattern_detected"]}`,
    /// every published event.
    pub firehose: f64,
    /// Every connection's first subscription (`s0`) is a firehose, the
    /// others follow the weights: each event then reaches every connection.
    pub firehose_first: bool,
}

impl Default for FiltersSection {
    fn default() -> Self {
        Self {
            symbols: 500,
            zipf_exponent: 1.0,
            watchlist: 0.95,
            pattern_only: 0.03,
            tier_only: 0.02,
            firehose: 0.0,
            firehose_first: false,
        }
    }
}

/// Which ingest the events go through.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Via {
    /// `POST /api/publish`, arrays of events.
    #[default]
    Http,
    /// Redis PUBLISH (or XADD with `--redis-stream`).
    Redis,
    /// RabbitMQ, to the topic exchange.
    Amqp,
}

impl Via {
    /// The name of the flag value (`http`, `redis`, `amqp`).
    pub fn name(self) -> &'static str {
        match self {
            Self::Http => "http",
            Self::Redis => "redis",
            Self::Amqp => "amqp",
        }
    }
}

/// `[publish]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PublishSection {
    /// Ingest path.
    pub via: Via,
    /// `?channel=` of the publishes; gives the events their type.
    pub channel: String,
    /// Events per second at the start of the publish phase.
    pub rate: f64,
    /// Events per second at its end; the rate changes linearly in
    /// between. Unset: constant `rate`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rate_end: Option<f64>,
    /// Length of the publish phase, in seconds.
    pub duration_s: f64,
    /// Events per request (a JSON array; 1 sends single objects).
    pub batch: usize,
    /// Concurrent HTTP connections publishing.
    pub publishers: usize,
    /// Closed loop: publishing pauses while more than this many expected
    /// deliveries are outstanding (published but not yet received); 0 =
    /// open loop, the rate alone decides.
    pub max_outstanding: u64,
}

impl Default for PublishSection {
    fn default() -> Self {
        Self {
            via: Via::Http,
            channel: "tickstock.events.patterns".to_owned(),
            rate: 100.0,
            rate_end: None,
            duration_s: 10.0,
            batch: 10,
            publishers: 1,
            max_outstanding: 0,
        }
    }
}

impl PublishSection {
    /// Events due `t` seconds into the publish phase (the integral of the
    /// rate), capped at the phase's end.
    pub fn due_at(&self, t: f64) -> f64 {
        let t = t.clamp(0.0, self.duration_s);
        let start = self.rate;
        let end = self.rate_end.unwrap_or(start);
        if self.duration_s <= 0.0 {
            return 0.0;
        }
        start * t + (end - start) * t * t / (2.0 * self.duration_s)
    }

    /// Events the whole phase publishes at the nominal rate.
    pub fn total_events(&self) -> u64 {
        self.due_at(self.duration_s).floor() as u64
    }
}

/// `[run]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RunSection {
    /// Seed of the filters and the events.
    pub seed: u64,
    /// After the last publish, how long to wait for in-flight deliveries
    /// before counting what is missing, in seconds (the wait ends early
    /// once everything expected has arrived).
    pub grace_s: f64,
}

impl Default for RunSection {
    fn default() -> Self {
        Self {
            seed: 1,
            grace_s: 5.0,
        }
    }
}

/// `[churn]`: while the publish phase runs, new connections arrive at
/// `rate_per_s`, each connecting, subscribing (the filters of a connection
/// of the scenario), holding for `hold_s` and leaving; the server's RSS and
/// open files are sampled every `sample_every_s` to see whether they stay
/// flat after `warmup_s`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ChurnSection {
    /// New connections per second.
    pub rate_per_s: f64,
    /// How long each stays once its subscriptions are answered, seconds.
    pub hold_s: f64,
    /// Share (0..=1, spread evenly) that leave by dropping the socket
    /// without a close handshake; the others close cleanly.
    pub abrupt_share: f64,
    /// Seconds between samples of the server's RSS and open files.
    pub sample_every_s: f64,
    /// Samples taken before this (seconds after the churn starts) are
    /// warm-up: shown, not judged.
    pub warmup_s: f64,
}

impl Default for ChurnSection {
    fn default() -> Self {
        Self {
            rate_per_s: 1000.0,
            hold_s: 1.0,
            abrupt_share: 0.5,
            sample_every_s: 5.0,
            warmup_s: 60.0,
        }
    }
}

impl ChurnSection {
    /// Checks the values.
    pub fn validate(&self) -> Result<(), String> {
        if !positive(self.rate_per_s) || !positive(self.sample_every_s) {
            return Err("churn.rate_per_s and churn.sample_every_s must be > 0".into());
        }
        if !non_negative(self.hold_s) || !non_negative(self.warmup_s) {
            return Err("churn.hold_s and churn.warmup_s must be >= 0".into());
        }
        if !(0.0..=1.0).contains(&self.abrupt_share) {
            return Err("churn.abrupt_share must be in 0..=1".into());
        }
        Ok(())
    }
}

impl Scenario {
    /// A built-in scenario by name, or a TOML file by path (anything with a
    /// `/` or ending in `.toml`).
    pub fn load(name_or_path: &str) -> Result<(String, Self), LoadError> {
        if let Some((name, text)) = BUILT_IN.iter().find(|(n, _)| *n == name_or_path) {
            return Self::parse(text)
                .map(|s| ((*name).to_owned(), s))
                .map_err(|e| LoadError::Scenario(format!("built-in scenario {name}: {e}")));
        }
        let path = Path::new(name_or_path);
        if name_or_path.contains('/') || name_or_path.ends_with(".toml") || path.exists() {
            let text = std::fs::read_to_string(path)
                .map_err(|e| LoadError::Scenario(format!("{}: {e}", path.display())))?;
            let name = path.file_stem().map_or_else(
                || name_or_path.to_owned(),
                |s| s.to_string_lossy().into_owned(),
            );
            return Self::parse(&text)
                .map(|s| (name, s))
                .map_err(|e| LoadError::Scenario(format!("{}: {e}", path.display())));
        }
        let names: Vec<_> = BUILT_IN.iter().map(|(n, _)| *n).collect();
        Err(LoadError::Scenario(format!(
            "no scenario {name_or_path:?}: built-in ones are {}, or give a path to a .toml file",
            names.join(", ")
        )))
    }

    /// Parses and validates a scenario.
    pub fn parse(text: &str) -> Result<Self, String> {
        let scenario: Self = toml::from_str(text).map_err(|e| e.to_string())?;
        scenario.validate()?;
        Ok(scenario)
    }

    /// Checks the values (after flags have overridden them).
    pub fn validate(&self) -> Result<(), String> {
        let c = &self.connections;
        let [min, max] = c.subscriptions;
        if min == 0 || min > max || max > MAX_SUBSCRIPTIONS {
            return Err(format!(
                "connections.subscriptions must be [min, max] with 1 <= min <= max <= {MAX_SUBSCRIPTIONS}"
            ));
        }
        if !positive(c.ramp_per_s) {
            return Err("connections.ramp_per_s must be > 0".into());
        }
        if !positive(c.connect_timeout_s) {
            return Err("connections.connect_timeout_s must be > 0".into());
        }
        if !(0.0..=1.0).contains(&c.sse_share) {
            return Err("connections.sse_share must be in 0..=1".into());
        }
        if c.source_ips > 254 {
            return Err("connections.source_ips must be at most 254".into());
        }
        let f = &self.filters;
        if f.symbols == 0 || f.zipf_exponent < 0.0 {
            return Err("filters.symbols must be > 0 and filters.zipf_exponent >= 0".into());
        }
        let weights = [f.watchlist, f.pattern_only, f.tier_only, f.firehose];
        if !weights.iter().all(|w| non_negative(*w)) || !positive(weights.iter().sum()) {
            return Err("filters weights must be >= 0 and not all 0".into());
        }
        let p = &self.publish;
        if !non_negative(p.rate) || !p.rate_end.is_none_or(non_negative) {
            return Err("publish.rate and publish.rate_end must be >= 0".into());
        }
        if !non_negative(p.duration_s) || !non_negative(self.run.grace_s) {
            return Err("publish.duration_s and run.grace_s must be >= 0".into());
        }
        if p.batch == 0 || p.publishers == 0 {
            return Err("publish.batch and publish.publishers must be >= 1".into());
        }
        if p.channel.is_empty() {
            return Err("publish.channel must not be empty".into());
        }
        if tickstock::schema()
            .event_type_for_channel(&p.channel)
            .is_some_and(|t| t != PATTERN_DETECTED)
        {
            return Err(format!(
                "publish.channel {:?} gives events another type than pattern_detected; \
                 tickcast-load publishes pattern detections",
                p.channel
            ));
        }
        if let Some(churn) = &self.churn {
            churn.validate()?;
        }
        Ok(())
    }

    /// The scenario as TOML (what `--show-scenario` prints).
    pub fn to_toml(&self) -> String {
        toml::to_string_pretty(self).unwrap_or_default()
    }
}

/// A finite number above 0 (not NaN).
fn positive(x: f64) -> bool {
    x.is_finite() && x > 0.0
}

/// A finite number of at least 0 (not NaN).
fn non_negative(x: f64) -> bool {
    x.is_finite() && x >= 0.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn built_in_scenarios_parse() {
        for (name, _) in BUILT_IN {
            let (loaded, scenario) = Scenario::load(name).unwrap();
            assert_eq!(loaded, name);
            assert!(!scenario.description.is_empty(), "{name}");
            let again = Scenario::parse(&scenario.to_toml()).unwrap();
            assert_eq!(again, scenario, "{name} round-trips through TOML");
        }
    }

    #[test]
    fn unknown_keys_and_bad_values_are_refused() {
        assert!(Scenario::parse("[publish]\nrat = 3").is_err());
        assert!(Scenario::parse("[connections]\nsubscriptions = [3, 1]").is_err());
        assert!(Scenario::parse("[publish]\nchannel = \"tickstock.health.status\"").is_err());
        assert!(Scenario::load("no-such-scenario").is_err());
        assert!(Scenario::parse("[churn]\nrate_per_s = 0").is_err());
        assert!(Scenario::parse("[churn]\nabrupt_share = 2").is_err());
        assert!(Scenario::parse("[churn]\nhold = 1").is_err());
    }

    #[test]
    fn the_regime_and_churn_scenarios_say_what_they_measure() {
        let (_, regime) = Scenario::load("fanout-5k").unwrap();
        assert_eq!(regime.connections.count, 5000);
        assert_eq!(regime.connections.subscriptions, [1, 1]);
        assert!(regime.churn.is_none());
        assert_eq!(
            regime.server.env.get("TICKCAST_DELIVERY__BATCH_WINDOW_MS"),
            Some(&"0".to_owned())
        );
        let (_, churn) = Scenario::load("churn").unwrap();
        let section = churn.churn.expect("a [churn] section");
        assert_eq!(section.rate_per_s, 1000.0);
        assert_eq!(churn.publish.duration_s, 600.0);
        assert!(section.warmup_s < churn.publish.duration_s);
        // A file that only names the section gets the defaults.
        let bare = Scenario::parse("[churn]").unwrap();
        assert_eq!(bare.churn, Some(ChurnSection::default()));
        assert!(Scenario::parse("").unwrap().churn.is_none());
    }

    #[test]
    fn due_follows_a_linear_rate() {
        let p = PublishSection {
            rate: 10.0,
            rate_end: Some(30.0),
            duration_s: 10.0,
            ..PublishSection::default()
        };
        assert_eq!(p.due_at(0.0), 0.0);
        assert_eq!(p.total_events(), 200);
        assert!((p.due_at(5.0) - 75.0).abs() < 1e-9);
        assert_eq!(p.due_at(99.0), 200.0);
    }
}
