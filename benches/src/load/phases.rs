//! The phases of a run (see the [module docs](super)), one function each:
//! [`ramp`], [`prepare`], [`publish`], [`grace`], [`count`]. Each takes
//! what the phases before it produced and returns what the ones after it
//! need; [`run`](super::run) strings them together and
//! [`verdict`](super::verdict) turns the results into a report.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use roaring::RoaringBitmap;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

use super::broker::Broker;
use super::churn::{self, Churn, ChurnReport};
use super::clients::{self, ClientContext, Outcome};
use super::filters::Filters;
use super::floor::{FloorPlan, FloorSend, FloorTarget};
use super::procstat::{self, Sample};
use super::publisher::{self, Prepared, Published, Target};
use super::report::Progress;
use super::scenario::Scenario;
use super::stats::{self, Phase, Shared};
use super::{prepare_with_plan, Options};

/// Prints the progress line every second until aborted.
pub(super) fn ticker(shared: &Arc<Shared>, count: usize) -> JoinHandle<()> {
    let shared = shared.clone();
    tokio::spawn(async move {
        let mut progress = Progress::default();
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        tick.tick().await;
        loop {
            tick.tick().await;
            let interval = shared.merge_latencies();
            eprintln!("{}", progress.line(&shared, &interval, count));
        }
    })
}

/// What the ramp left: the connections and what each holds.
pub(super) struct Ramp {
    /// What every connection task shares.
    pub ctx: Arc<ClientContext>,
    /// One task per connection.
    pub handles: Vec<JoinHandle<Outcome>>,
    /// Per connection, its acknowledged subscriptions (a bit each).
    pub active: Vec<u64>,
    /// Per connection, whether it got as far as its subscriptions.
    pub established: Vec<bool>,
    /// Connections that failed, by reason.
    pub failures: BTreeMap<String, u64>,
    /// How long the ramp took.
    pub ramp_s: f64,
    /// Tells the connections the run is over.
    pub stop: watch::Sender<bool>,
}

impl Ramp {
    /// Connections that got as far as their subscriptions.
    pub fn established_count(&self) -> u64 {
        self.established.iter().filter(|e| **e).count() as u64
    }
}

/// 1. Connects `scenario.connections.count` clients at the ramp's pace and
///    waits until each has subscribed or failed.
pub(super) async fn ramp(
    options: &Options,
    filters: &Arc<Filters>,
    sources: &[Ipv4Addr],
    shared: &Arc<Shared>,
) -> Ramp {
    let scenario = &options.scenario;
    let count = scenario.connections.count;
    let ctx = Arc::new(ClientContext {
        server: options.server,
        sources: sources.to_vec(),
        filters: filters.clone(),
        shared: shared.clone(),
        connect_timeout: Duration::from_secs_f64(scenario.connections.connect_timeout_s),
        // Resident per connection (100,000 of them in c100k): small; a
        // busy connection grows its own.
        read_buffer: 4 * 1024,
        sse_share: scenario.connections.sse_share,
        floor: options.floor.is_some(),
    });
    let (ready_tx, mut ready_rx) = mpsc::unbounded_channel();
    let (stop, stop_rx) = watch::channel(false);
    let ramp_start = Instant::now();
    let mut handles = Vec::with_capacity(count);
    for conn in 0..count {
        let at =
            ramp_start + Duration::from_secs_f64(conn as f64 / scenario.connections.ramp_per_s);
        if at > Instant::now() {
            tokio::time::sleep_until(at.into()).await;
        }
        handles.push(tokio::spawn(clients::run(
            ctx.clone(),
            conn as u32,
            ready_tx.clone(),
            stop_rx.clone(),
        )));
    }
    drop(ready_tx);
    let mut active = vec![0u64; count];
    let mut established = vec![false; count];
    let mut failures: BTreeMap<String, u64> = BTreeMap::new();
    while let Some(ready) = ready_rx.recv().await {
        match ready.result {
            Ok(mask) => {
                active[ready.conn as usize] = mask;
                established[ready.conn as usize] = true;
            }
            Err(reason) => *failures.entry(reason).or_default() += 1,
        }
    }
    Ramp {
        ctx,
        handles,
        active,
        established,
        failures,
        ramp_s: ramp_start.elapsed().as_secs_f64(),
        stop,
    }
}

/// 2. Draws the events and works out their recipients (and, against a
///    floor server, its plan), off the runtime's threads.
pub(super) async fn prepare(
    scenario: &Scenario,
    filters: &Arc<Filters>,
    active: &[u64],
    with_plan: bool,
) -> (Prepared, Option<FloorPlan>) {
    let (filters, active) = (filters.clone(), active.to_vec());
    let scenario = scenario.clone();
    tokio::task::spawn_blocking(move || prepare_with_plan(&scenario, filters, &active, with_plan))
        .await
        .expect("preparing events does not panic")
}

/// What the publish phase did, and the CPU it cost both sides.
pub(super) struct Publishing {
    /// The publisher's tally.
    pub published: Published,
    /// The server's /proc sample when publishing started and ended.
    pub server_cpu: (Option<Sample>, Option<Sample>),
    /// The generator's own.
    pub own_cpu: (Option<Sample>, Option<Sample>),
    /// The churn scenario's report.
    pub churn: Option<ChurnReport>,
}

/// 3. Publishes `prepared` at the scenario's pace (and runs its churn
///    beside it), sampling both processes' CPU around it.
pub(super) async fn publish(
    options: &Options,
    ramp: &Ramp,
    prepared: Prepared,
    plan: Option<FloorPlan>,
    broker: Option<Broker>,
    shared: &Arc<Shared>,
) -> Publishing {
    let scenario = &options.scenario;
    let target = Target {
        server: options.server,
        api_key: options.api_key.clone(),
        broker,
        floor: floor_send(options.floor.clone(), plan, scenario),
    };
    shared.set_phase(Phase::Publish);
    let server_pid = options.server_pid;
    let me = std::process::id();
    let (server_start, own_start) = (server_pid.and_then(procstat::sample), procstat::sample(me));
    let churning = scenario
        .churn
        .as_ref()
        .map(|section| Churn::start(churn::context(&ramp.ctx, section), section, server_pid));
    let published = publisher::run(&scenario.publish, &target, prepared, shared.clone()).await;
    let (server_end, own_end) = (server_pid.and_then(procstat::sample), procstat::sample(me));
    let churn = match churning {
        Some(churning) => Some(churning.finish(server_pid).await),
        None => None,
    };
    Publishing {
        published,
        server_cpu: (server_start, server_end),
        own_cpu: (own_start, own_end),
        churn,
    }
}

/// The floor server's side of the publish target, when the run is
/// against one.
fn floor_send(
    floor: Option<FloorTarget>,
    plan: Option<FloorPlan>,
    scenario: &Scenario,
) -> Option<FloorSend> {
    floor.zip(plan).map(|(floor, plan)| FloorSend {
        link: floor.link,
        frames: floor.frames,
        plan: Arc::new(plan),
        channel: scenario.publish.channel.clone(),
        // As wide as tickcast's node epoch: start ms and a 6-digit nonce.
        epoch: tickcast_core::hub::epoch::compose(stats::epoch_ns() / 1_000_000, 0),
    })
}

/// 4. Waits until `expected` deliveries arrived (then a little longer, for
///    duplicates) or `grace_s` ran out.
pub(super) async fn grace(shared: &Shared, expected: u64, grace_s: f64) {
    shared.set_phase(Phase::Grace);
    let grace_end = Instant::now() + Duration::from_secs_f64(grace_s);
    loop {
        if Shared::get(&shared.received) >= expected {
            // Everything is in: a short wait still catches duplicates.
            let left = grace_end.saturating_duration_since(Instant::now());
            tokio::time::sleep(Duration::from_millis(100).min(left)).await;
            return;
        }
        if Instant::now() >= grace_end {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// What the connections received, gathered when they stopped.
pub(super) struct Counted {
    /// Per established connection, the event numbers it received.
    pub received: Vec<Option<RoaringBitmap>>,
    /// Connections that ended before the run stopped them, by reason.
    pub early_closes: BTreeMap<String, u64>,
}

/// 5. Stops every connection and collects what each received.
pub(super) async fn count(ramp: &mut Ramp, shared: &Shared) -> Counted {
    shared.set_phase(Phase::Done);
    let _ = ramp.stop.send(true);
    let mut received: Vec<Option<RoaringBitmap>> = vec![None; ramp.established.len()];
    let mut early_closes: BTreeMap<String, u64> = BTreeMap::new();
    for handle in std::mem::take(&mut ramp.handles) {
        match tokio::time::timeout(Duration::from_secs(30), handle).await {
            Ok(Ok(outcome)) => {
                let conn = outcome.conn as usize;
                if ramp.established.get(conn).copied().unwrap_or(false) {
                    if let Some(reason) = outcome.ended_early {
                        *early_closes.entry(reason).or_default() += 1;
                    }
                    received[conn] = Some(outcome.received);
                }
            }
            Ok(Err(e)) => *early_closes.entry(format!("task failed: {e}")).or_default() += 1,
            Err(_) => {
                *early_closes
                    .entry("did not stop in 30 s".to_owned())
                    .or_default() += 1
            }
        }
    }
    Counted {
        received,
        early_closes,
    }
}
