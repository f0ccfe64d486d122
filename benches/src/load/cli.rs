//! The command line of `tickcast-load`: a scenario, and flags that
//! override its values.

use std::net::{SocketAddr, ToSocketAddrs};
use std::path::PathBuf;

use clap::Parser;

use super::floor::{FloorSettings, Frames, RunKind};
use super::scenario::{ChurnSection, Scenario, Via};
use super::{LoadError, Options};

/// What `tickcast-load` does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum Mode {
    /// Run the scenario against the server (default scenario: smoke).
    #[default]
    Run,
    /// Run the scenario against tickcast, then against the floor server
    /// (a plain write loop) and the tokio reference (a writer task per
    /// connection), and report tickcast's server CPU per delivery as a
    /// multiple of the floor's (default scenario: fanout-5k).
    Floor,
    /// Run the scenario with connections coming and going at
    /// `[churn].rate_per_s` and report whether the server's RSS and open
    /// files stay flat (default scenario: churn).
    Churn,
}

impl Mode {
    /// The scenario of the mode when none is given.
    pub fn default_scenario(self) -> &'static str {
        match self {
            Self::Run => "smoke",
            Self::Floor => "fanout-5k",
            Self::Churn => "churn",
        }
    }
}

/// tickcast-load: end-to-end load generator for tickcast.
///
/// Opens WebSocket (and, with --sse-share, SSE) connections to a running tickcast server, subscribes each
/// with filters drawn from a scenario, publishes events through
/// `POST /api/publish`, and checks every delivery against the filters: a
/// delivery missing, duplicated or unexpected is an error (exit status 1).
/// Reports connections, deliveries, delivered events/s, end-to-end latency
/// percentiles, and the server's RSS and CPU (with --server-pid), as a
/// table on stdout and as JSON (--json). A progress line goes to stderr
/// each second.
///
/// Scenarios are TOML files; the built-in ones (benches/scenarios/) are
/// smoke, seed, fanout-10k, fanout-5k, c100k, max-throughput and churn.
/// Each names the server settings it expects (print them with
/// --show-scenario). Flags override the scenario's values.
///
/// `tickcast-load floor` runs the scenario against tickcast and then
/// against `tickcast-floor` (the same frames to the same sockets, written
/// by the simplest loop) and reports server CPU per delivery against that
/// floor. `tickcast-load churn` has connections come and go during the
/// publish phase and reports the server's RSS and open files over time.
#[derive(Debug, Clone, Parser)]
#[command(name = "tickcast-load", version)]
pub struct Args {
    /// What to do: run (the scenario), floor (the scenario against tickcast
    /// and the floor, compared), churn (the scenario with connections
    /// coming and going).
    #[arg(value_enum, default_value = "run")]
    pub mode: Mode,

    /// Scenario: a built-in name (smoke, seed, fanout-10k, fanout-5k,
    /// c100k, max-throughput, churn) or the path of a TOML file [default:
    /// smoke; floor: fanout-5k; churn: churn].
    #[arg(long, short = 's')]
    pub scenario: Option<String>,

    /// Address (host:port) of the server serving /ws and /api/publish.
    #[arg(long, default_value = "127.0.0.1:8080")]
    pub server: String,

    /// Pid of the server process: its RSS (VmRSS) before and after the
    /// ramp and at the end, its CPU during the ramp and the publish phase
    /// and per delivery, and under churn its open files, from /proc/PID.
    #[arg(long, value_name = "PID")]
    pub server_pid: Option<u32>,

    /// Connections to open [connections.count].
    #[arg(long, short = 'c', value_name = "N")]
    pub connections: Option<usize>,

    /// Connections opened per second [connections.ramp_per_s].
    #[arg(long, value_name = "PER_S")]
    pub ramp: Option<f64>,

    /// Subscriptions per connection, "N" or "MIN-MAX" (uniform), at most
    /// 64 [connections.subscriptions].
    #[arg(long, value_name = "N|MIN-MAX", value_parser = parse_range)]
    pub subscriptions: Option<SubsRange>,

    /// Seconds one connection may take to connect, be welcomed and have
    /// its subscriptions answered [connections.connect_timeout_s].
    #[arg(long, value_name = "SECS")]
    pub connect_timeout: Option<f64>,

    /// Share of the connections, 0..1, that use SSE instead of WebSocket
    /// (each with its first filter only) [connections.sse_share].
    #[arg(long, value_name = "SHARE")]
    pub sse_share: Option<f64>,

    /// Loopback source addresses (127.0.0.1..N) to spread client sockets
    /// over; 0 = as many as the ephemeral port range needs
    /// [connections.source_ips].
    #[arg(long, value_name = "N")]
    pub source_ips: Option<usize>,

    /// Symbols in the universe filters and events are drawn from
    /// [filters.symbols].
    #[arg(long, value_name = "N")]
    pub symbols: Option<usize>,

    /// Events published per second; a constant rate (unless --rate-end is
    /// given too) [publish.rate].
    #[arg(long, short = 'r', value_name = "PER_S")]
    pub rate: Option<f64>,

    /// Events per second at the end of the publish phase; the rate
    /// changes linearly from --rate [publish.rate_end].
    #[arg(long, value_name = "PER_S")]
    pub rate_end: Option<f64>,

    /// Seconds of publishing [publish.duration_s].
    #[arg(long, short = 'd', value_name = "SECS")]
    pub duration: Option<f64>,

    /// Events per publish request (1 sends single objects, more a JSON
    /// array) [publish.batch].
    #[arg(long, short = 'b', value_name = "N")]
    pub batch: Option<usize>,

    /// Concurrent HTTP connections publishing [publish.publishers].
    #[arg(long, value_name = "N")]
    pub publishers: Option<usize>,

    /// Pause publishing while more expected deliveries than this are
    /// outstanding (closed loop); 0 = open loop [publish.max_outstanding].
    #[arg(long, value_name = "N")]
    pub max_outstanding: Option<u64>,

    /// Ingest path: http (POST /api/publish), redis (PUBLISH, or XADD with
    /// --redis-stream) or amqp (to the topic exchange); the server must
    /// consume that broker ([ingest.redis] / [ingest.amqp]) [publish.via].
    #[arg(long, value_enum, value_name = "PATH")]
    pub via: Option<Via>,

    /// Channel of the publishes (?channel=) [publish.channel].
    #[arg(long, value_name = "CHANNEL")]
    pub channel: Option<String>,

    /// Broker URL for --via redis|amqp (default: redis://127.0.0.1:6379,
    /// amqp://guest:guest@127.0.0.1:5672/%2f).
    #[arg(long, value_name = "URL")]
    pub broker_url: Option<String>,

    /// --via redis: XADD to this stream (the server in Streams mode)
    /// instead of PUBLISH to the channel: the server publisher's command
    /// (MAXLEN ~ 1000000), written by the generator's own pipelines, one
    /// connection per publisher.
    #[arg(long, value_name = "KEY")]
    pub redis_stream: Option<String>,

    /// --via amqp: the topic exchange (default tickstock.events).
    #[arg(long, value_name = "NAME")]
    pub amqp_exchange: Option<String>,

    /// Bearer token of POST /api/publish, when the server sets api.key.
    #[arg(long, value_name = "KEY")]
    pub api_key: Option<String>,

    /// Seconds to wait after the last publish for in-flight deliveries
    /// (ends early once all expected ones arrived) [run.grace_s].
    #[arg(long, short = 'g', value_name = "SECS")]
    pub grace: Option<f64>,

    /// Seed of the filters and events [run.seed].
    #[arg(long, value_name = "N")]
    pub seed: Option<u64>,

    /// floor: the servers to run, in order, comma-separated (tickcast,
    /// plain, tasks).
    #[arg(
        long,
        value_enum,
        value_delimiter = ',',
        value_name = "LIST",
        default_value = "tickcast,plain,tasks"
    )]
    pub floor_runs: Vec<RunKind>,

    /// floor: the tickcast-floor executable (default: next to this one).
    #[arg(long, value_name = "PATH")]
    pub floor_bin: Option<PathBuf>,

    /// floor: writer loops of the plain variant, worker threads of the
    /// tasks variant (default: one per core).
    #[arg(long, value_name = "N")]
    pub floor_threads: Option<usize>,

    /// floor: the floor servers write one frame per delivery (event), or
    /// one per connection and publish request, a batch frame when it gets
    /// several of the request's events (request: the fewest writes).
    #[arg(long, value_enum, value_name = "HOW", default_value = "event")]
    pub floor_frames: Frames,

    /// churn: connections started per second [churn.rate_per_s].
    #[arg(long, value_name = "PER_S")]
    pub churn_rate: Option<f64>,

    /// churn: seconds each stays once subscribed [churn.hold_s].
    #[arg(long, value_name = "SECS")]
    pub churn_hold: Option<f64>,

    /// churn: seconds of warm-up before RSS and fds are judged
    /// [churn.warmup_s].
    #[arg(long, value_name = "SECS")]
    pub churn_warmup: Option<f64>,

    /// churn: seconds between samples of the server [churn.sample_every_s].
    #[arg(long, value_name = "SECS")]
    pub churn_sample_every: Option<f64>,

    /// Also write the report as JSON to FILE.
    #[arg(long, value_name = "FILE")]
    pub json: Option<PathBuf>,

    /// No progress line.
    #[arg(long, short = 'q')]
    pub quiet: bool,

    /// Worker threads of the generator's runtime (default: one per core).
    #[arg(long, value_name = "N")]
    pub threads: Option<usize>,

    /// Compute the expected deliveries of the scenario (per event and per
    /// second) without connecting: for sizing scenarios.
    #[arg(long)]
    pub dry_run: bool,

    /// Print the effective scenario (flags applied) as TOML and exit.
    #[arg(long)]
    pub show_scenario: bool,

    /// List the built-in scenarios and exit.
    #[arg(long)]
    pub list_scenarios: bool,
}

/// Subscriptions per connection, `[min, max]`.
pub type SubsRange = [usize; 2];

fn parse_range(text: &str) -> Result<SubsRange, String> {
    let number = |s: &str| {
        s.trim()
            .parse::<usize>()
            .map_err(|_| format!("{s:?} is not a number"))
    };
    match text.split_once('-') {
        Some((min, max)) => Ok([number(min)?, number(max)?]),
        None => {
            let n = number(text)?;
            Ok([n, n])
        }
    }
}

impl Args {
    /// The scenario with the flags applied, and its name.
    pub fn scenario(&self) -> Result<(String, Scenario), LoadError> {
        let name = self
            .scenario
            .as_deref()
            .unwrap_or(self.mode.default_scenario());
        let (name, mut s) = Scenario::load(name)?;
        let c = &mut s.connections;
        set(&mut c.count, self.connections);
        set(&mut c.ramp_per_s, self.ramp);
        set(&mut c.subscriptions, self.subscriptions);
        set(&mut c.connect_timeout_s, self.connect_timeout);
        set(&mut c.source_ips, self.source_ips);
        set(&mut c.sse_share, self.sse_share);
        set(&mut s.filters.symbols, self.symbols);
        let p = &mut s.publish;
        if let Some(rate) = self.rate {
            p.rate = rate;
            p.rate_end = None;
        }
        if self.rate_end.is_some() {
            p.rate_end = self.rate_end;
        }
        set(&mut p.duration_s, self.duration);
        set(&mut p.batch, self.batch);
        set(&mut p.publishers, self.publishers);
        set(&mut p.max_outstanding, self.max_outstanding);
        set(&mut p.via, self.via);
        set(&mut p.channel, self.channel.clone());
        set(&mut s.run.grace_s, self.grace);
        set(&mut s.run.seed, self.seed);
        let churn_flags = [
            self.churn_rate,
            self.churn_hold,
            self.churn_warmup,
            self.churn_sample_every,
        ];
        if self.mode == Mode::Churn || churn_flags.iter().any(Option::is_some) {
            let churn = s.churn.get_or_insert_with(ChurnSection::default);
            set(&mut churn.rate_per_s, self.churn_rate);
            set(&mut churn.hold_s, self.churn_hold);
            set(&mut churn.warmup_s, self.churn_warmup);
            set(&mut churn.sample_every_s, self.churn_sample_every);
        }
        s.validate().map_err(LoadError::Scenario)?;
        Ok((name, s))
    }

    /// Everything [`run`](super::run) needs.
    pub fn options(&self) -> Result<Options, LoadError> {
        let (name, scenario) = self.scenario()?;
        let server = resolve(&self.server)?;
        Ok(Options {
            server_pid: self.server_pid,
            api_key: self.api_key.clone(),
            broker: super::BrokerTarget {
                url: self.broker_url.clone(),
                redis_stream: self.redis_stream.clone(),
                amqp_exchange: self.amqp_exchange.clone(),
            },
            progress: !self.quiet,
            dry_run: self.dry_run,
            threads: 0,
            ..Options::new(&name, scenario, server)
        })
    }
}

impl Args {
    /// What `tickcast-load floor` runs.
    pub fn floor_settings(&self) -> FloorSettings {
        let defaults = FloorSettings::default();
        FloorSettings {
            bin: self.floor_bin.clone().unwrap_or(defaults.bin),
            runs: self.floor_runs.clone(),
            threads: self.floor_threads,
            frames: self.floor_frames,
        }
    }
}

fn set<T>(field: &mut T, flag: Option<T>) {
    if let Some(value) = flag {
        *field = value;
    }
}

/// `host:port` to an address, IPv4 first.
fn resolve(server: &str) -> Result<SocketAddr, LoadError> {
    let unreachable = |reason: String| LoadError::Unreachable {
        addr: SocketAddr::from(([0, 0, 0, 0], 0)),
        reason: format!("{server}: {reason}"),
    };
    let addrs: Vec<SocketAddr> = server
        .to_socket_addrs()
        .map_err(|e| unreachable(e.to_string()))?
        .collect();
    addrs
        .iter()
        .find(|a| a.is_ipv4())
        .or(addrs.first())
        .copied()
        .ok_or_else(|| unreachable("no address".to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn flags_override_the_scenario() {
        Args::command().debug_assert();
        let args = Args::parse_from([
            "tickcast-load",
            "--scenario",
            "seed",
            "--connections",
            "7",
            "--rate",
            "12.5",
            "--subscriptions",
            "2-4",
            "--duration",
            "3",
            "--server",
            "localhost:9",
        ]);
        let options = args.options().unwrap();
        assert_eq!(options.scenario_name, "seed");
        let s = &options.scenario;
        assert_eq!(s.connections.count, 7);
        assert_eq!(s.publish.rate, 12.5);
        assert_eq!(s.publish.rate_end, None);
        assert_eq!(s.connections.subscriptions, [2, 4]);
        assert_eq!(s.publish.duration_s, 3.0);
        assert_eq!(options.server.port(), 9);
        assert!(options.server.is_ipv4());
        let bad = Args::parse_from(["tickcast-load", "--subscriptions", "0"]);
        assert!(bad.options().is_err());
    }

    #[test]
    fn modes_pick_their_scenario_and_settings() {
        let run = Args::parse_from(["tickcast-load"]);
        assert_eq!(run.mode, Mode::Run);
        assert_eq!(run.options().unwrap().scenario_name, "smoke");
        assert!(run.options().unwrap().scenario.churn.is_none());

        let floor = Args::parse_from(["tickcast-load", "floor", "--floor-runs", "plain,tickcast"]);
        assert_eq!(floor.options().unwrap().scenario_name, "fanout-5k");
        let settings = floor.floor_settings();
        assert_eq!(settings.runs, vec![RunKind::Plain, RunKind::Tickcast]);
        assert!(settings.bin.ends_with("tickcast-floor"));
        assert_eq!(settings.frames, Frames::Event);
        let all = Args::parse_from(["tickcast-load", "floor"]).floor_settings();
        assert_eq!(
            all.runs,
            vec![RunKind::Tickcast, RunKind::Plain, RunKind::Tasks]
        );

        let churn = Args::parse_from([
            "tickcast-load",
            "churn",
            "--duration",
            "120",
            "--churn-warmup",
            "30",
        ]);
        let options = churn.options().unwrap();
        assert_eq!(options.scenario_name, "churn");
        assert_eq!(options.scenario.publish.duration_s, 120.0);
        let section = options.scenario.churn.unwrap();
        assert_eq!((section.rate_per_s, section.warmup_s), (1000.0, 30.0));

        // Any scenario churns in churn mode, with the defaults.
        let smoke = Args::parse_from([
            "tickcast-load",
            "churn",
            "-s",
            "smoke",
            "--churn-rate",
            "50",
        ]);
        let section = smoke.options().unwrap().scenario.churn.unwrap();
        assert_eq!(section.rate_per_s, 50.0);
        assert_eq!(section.hold_s, ChurnSection::default().hold_s);
        let bad = Args::parse_from(["tickcast-load", "churn", "--churn-rate", "0"]);
        assert!(bad.options().is_err());
    }
}
