//! The churn scenario (`tickcast-load churn`): during the publish phase,
//! short-lived connections arrive at `[churn].rate_per_s`, each connecting,
//! subscribing, holding for `hold_s` while events flow and leaving (some
//! with a close handshake, some by dropping the socket), while a sampler
//! reads the server's RSS and open files. Resources a connection leaves
//! behind show as RSS or fds that keep growing after warm-up ([`trend`]).
//!
//! Churning connections count into their own [`Shared`]: the stable
//! population's deliveries are checked as in any run, theirs are counted
//! but not checked (what a connection that comes and goes must receive is
//! not defined).

pub mod trend;

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::Serialize;
use tokio::sync::watch;
use tokio::task::{JoinHandle, JoinSet};

use self::trend::{trends, Sample, Trend};
use super::clients::{churn_once, ClientContext, Leave};
use super::limits;
use super::procstat;
use super::scenario::ChurnSection;
use super::stats::Shared;

/// How long a loopback 4-tuple stays in TIME_WAIT (Linux: 60 s), plus
/// headroom: the ports one source address must have for the churn rate.
const PORT_REUSE_S: f64 = 90.0;

/// After the last churning connection left, the wait before the server is
/// read once more: time to close what it still holds of them.
const SETTLE: Duration = Duration::from_secs(2);

/// A churn in progress.
#[derive(Debug)]
pub struct Churn {
    section: ChurnSection,
    started: Instant,
    shared: Arc<Shared>,
    stop: watch::Sender<bool>,
    driver: JoinHandle<Cycles>,
    sampler: Option<JoinHandle<Vec<Sample>>>,
}

/// What the churning connections did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Cycles {
    /// Connections started.
    pub started: u64,
    /// Connected, subscribed, held and left.
    pub completed: u64,
    /// Of those, left with a close handshake.
    pub clean: u64,
    /// Of those, left by dropping the socket.
    pub abrupt: u64,
    /// Failed somewhere on the way.
    pub failed: u64,
    /// Failures by reason.
    pub failures: BTreeMap<String, u64>,
}

impl Cycles {
    fn add(&mut self, leave: Leave, outcome: Result<(), String>) {
        match outcome {
            Ok(()) => {
                self.completed += 1;
                match leave {
                    Leave::Clean => self.clean += 1,
                    Leave::Abrupt => self.abrupt += 1,
                }
            }
            Err(reason) => {
                self.failed += 1;
                *self.failures.entry(reason).or_default() += 1;
            }
        }
    }
}

/// The churn part of a run's report.
#[derive(Debug, Clone, Serialize)]
pub struct ChurnReport {
    /// The settings.
    pub settings: ChurnSection,
    /// Seconds the churn ran (new connections were started).
    pub duration_s: f64,
    /// Connections started per second, achieved.
    pub started_per_s: f64,
    /// What the connections did.
    pub cycles: Cycles,
    /// Text frames the churning connections read.
    pub frames: u64,
    /// Events among them.
    pub deliveries: u64,
    /// The server's readings while connections churned (empty without
    /// `--server-pid`); the first is taken as the churn starts.
    pub samples: Vec<Sample>,
    /// The server once the churn is over: every churning connection gone
    /// and `SETTLE` passed. Against the first sample: what the churn
    /// left behind.
    pub after: Option<Sample>,
    /// Its RSS after warm-up, KiB.
    pub rss_kib: Option<Trend>,
    /// Its open files after warm-up.
    pub fds: Option<Trend>,
}

impl ChurnReport {
    /// Whether RSS and fds were judged and both stayed flat.
    pub fn flat(&self) -> Option<bool> {
        Some(self.rss_kib?.flat && self.fds?.flat)
    }
}

/// The client context of the churning connections: the run's, with
/// counters of their own and source addresses of their own (127.0.1.x:
/// enough that the rate never waits for a port in TIME_WAIT).
pub fn context(run: &ClientContext, section: &ChurnSection) -> ClientContext {
    ClientContext {
        server: run.server,
        sources: sources(run.server, section),
        filters: run.filters.clone(),
        shared: Arc::new(Shared::new()),
        connect_timeout: run.connect_timeout,
        read_buffer: run.read_buffer,
        sse_share: run.sse_share,
        floor: run.floor,
    }
}

/// Source addresses for `section`'s rate; none when the server is not on
/// loopback (the kernel picks).
fn sources(server: SocketAddr, section: &ChurnSection) -> Vec<Ipv4Addr> {
    if !matches!(server.ip(), IpAddr::V4(ip) if ip.is_loopback()) {
        return Vec::new();
    }
    let ports = section.rate_per_s * (PORT_REUSE_S + section.hold_s);
    // A quarter of each address's range: the kernel's search for a free
    // port slows down as the range fills with TIME_WAIT.
    let per_address = (limits::ephemeral_ports() / 4).max(1) as f64;
    let count = (ports / per_address).ceil().clamp(1.0, 254.0) as u8;
    (1..=count).map(|n| Ipv4Addr::new(127, 0, 1, n)).collect()
}

/// Whether cycle `n` leaves abruptly: `share` of them, spread evenly.
pub fn abrupt(n: u64, share: f64) -> bool {
    let share = share.clamp(0.0, 1.0);
    ((n + 1) as f64 * share).floor() > (n as f64 * share).floor()
}

impl Churn {
    /// Starts churning with `ctx` (see [`context`]) and sampling
    /// `server_pid`.
    pub fn start(ctx: ClientContext, section: &ChurnSection, server_pid: Option<u32>) -> Self {
        let (stop, stopped) = watch::channel(false);
        let started = Instant::now();
        let shared = ctx.shared.clone();
        let driver = tokio::spawn(drive(Arc::new(ctx), section.clone(), stopped.clone()));
        let every = Duration::from_secs_f64(section.sample_every_s);
        let sampler = server_pid.map(|pid| tokio::spawn(sample(pid, every, started, stopped)));
        Self {
            section: section.clone(),
            started,
            shared,
            stop,
            driver,
            sampler,
        }
    }

    /// Stops starting connections, waits for those in flight, reads the
    /// server once they are gone, and reports.
    pub async fn finish(self, server_pid: Option<u32>) -> ChurnReport {
        let _ = self.stop.send(true);
        let duration_s = self.started.elapsed().as_secs_f64().max(1e-9);
        let samples = match self.sampler {
            Some(sampler) => sampler.await.unwrap_or_default(),
            None => Vec::new(),
        };
        let cycles = self.driver.await.unwrap_or_else(|e| Cycles {
            failures: BTreeMap::from([(format!("churn driver: {e}"), 1)]),
            failed: 1,
            ..Cycles::default()
        });
        let after = match server_pid {
            Some(pid) => {
                tokio::time::sleep(SETTLE).await;
                read_server(pid, self.started)
            }
            None => None,
        };
        let (rss_kib, fds) = trends(&samples, self.section.warmup_s);
        ChurnReport {
            started_per_s: cycles.started as f64 / duration_s,
            duration_s,
            frames: Shared::get(&self.shared.frames),
            deliveries: Shared::get(&self.shared.received),
            settings: self.section,
            cycles,
            samples,
            after,
            rss_kib,
            fds,
        }
    }
}

/// Starts a connection every `1 / rate_per_s` until stopped, then waits for
/// those in flight.
async fn drive(
    ctx: Arc<ClientContext>,
    section: ChurnSection,
    mut stop: watch::Receiver<bool>,
) -> Cycles {
    let start = Instant::now();
    let hold = Duration::from_secs_f64(section.hold_s);
    let population = ctx.filters.connections().max(1) as u64;
    let mut running = JoinSet::new();
    let mut cycles = Cycles::default();
    for n in 0u64.. {
        let at = start + Duration::from_secs_f64(n as f64 / section.rate_per_s);
        tokio::select! {
            biased;
            _ = stop.wait_for(|stop| *stop) => break,
            () = tokio::time::sleep_until(at.into()) => {}
        }
        let leave = if abrupt(n, section.abrupt_share) {
            Leave::Abrupt
        } else {
            Leave::Clean
        };
        let ctx = ctx.clone();
        // The filters (and source address) of a connection of the scenario.
        let conn = (n % population) as u32;
        running.spawn(async move { (leave, churn_once(&ctx, conn, hold, leave).await) });
        cycles.started += 1;
        while let Some(done) = running.try_join_next() {
            record(&mut cycles, done);
        }
    }
    while let Some(done) = running.join_next().await {
        record(&mut cycles, done);
    }
    cycles
}

fn record(cycles: &mut Cycles, done: Result<(Leave, Result<(), String>), tokio::task::JoinError>) {
    match done {
        Ok((leave, outcome)) => cycles.add(leave, outcome),
        Err(e) => cycles.add(Leave::Abrupt, Err(format!("task failed: {e}"))),
    }
}

/// Reads the server every `every` (the first at once) until stopped.
async fn sample(
    pid: u32,
    every: Duration,
    started: Instant,
    mut stop: watch::Receiver<bool>,
) -> Vec<Sample> {
    let mut samples = Vec::new();
    let mut tick = tokio::time::interval(every);
    loop {
        tokio::select! {
            biased;
            _ = stop.wait_for(|stop| *stop) => break,
            _ = tick.tick() => samples.extend(read_server(pid, started)),
        }
    }
    samples
}

/// The server's RSS and open files now.
fn read_server(pid: u32, started: Instant) -> Option<Sample> {
    Some(Sample {
        t_s: started.elapsed().as_secs_f64(),
        rss_kib: procstat::rss_kib(pid)?,
        fds: procstat::open_fds(pid)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn abrupt_leaves_are_spread_evenly() {
        let count = |share| (0..1000).filter(|&n| abrupt(n, share)).count();
        assert_eq!(count(0.5), 500);
        assert_eq!(count(0.0), 0);
        assert_eq!(count(1.0), 1000);
        assert_eq!(count(0.25), 250);
        assert!(abrupt(1, 0.5) && !abrupt(0, 0.5) && !abrupt(2, 0.5));
    }

    #[test]
    fn the_rate_gets_enough_source_addresses() {
        let server: SocketAddr = "127.0.0.1:8080".parse().unwrap();
        let section = ChurnSection::default();
        let addrs = sources(server, &section);
        assert!(addrs.len() as f64 * limits::ephemeral_ports() as f64 >= 1000.0 * 60.0);
        assert!(addrs.iter().all(|a| a.octets()[..3] == [127, 0, 1]));
        let remote: SocketAddr = "10.0.0.1:8080".parse().unwrap();
        assert!(sources(remote, &section).is_empty());
    }

    #[test]
    fn cycles_count_each_outcome() {
        let mut cycles = Cycles::default();
        cycles.add(Leave::Clean, Ok(()));
        cycles.add(Leave::Abrupt, Ok(()));
        cycles.add(Leave::Abrupt, Err("timeout".into()));
        cycles.add(Leave::Clean, Err("timeout".into()));
        assert_eq!(
            (cycles.completed, cycles.clean, cycles.abrupt, cycles.failed),
            (2, 1, 1, 2)
        );
        assert_eq!(cycles.failures.get("timeout"), Some(&2));
    }
}
