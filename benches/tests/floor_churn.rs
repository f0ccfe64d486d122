//! `tickcast-load floor` and `tickcast-load churn` end to end, against a
//! real tickcast server in this process and real `tickcast-floor` child
//! processes: every delivery checked, the floor servers' frames the same
//! JSON (same bytes) as tickcast's for the same deliveries, churning
//! connections coming and going while the stable ones receive exactly
//! what they should. No timing assertions: figures are printed, not
//! judged.

use std::net::SocketAddr;
use std::path::PathBuf;

use tickcast::Config;
use tickcast_benches::load::floor::{self, FloorSettings, Frames, RunKind};
use tickcast_benches::load::scenario::ChurnSection;
use tickcast_benches::load::{self, Options, Scenario};
use tokio::sync::oneshot;

/// A tickcast server for exact counts (no rate limit, no batch window),
/// stopped when the returned sender is dropped or fired.
async fn start_server() -> (SocketAddr, oneshot::Sender<()>, tokio::task::JoinHandle<()>) {
    let mut config = Config {
        listen: "127.0.0.1:0".to_owned(),
        node_id: "floor-churn".to_owned(),
        ..Config::default()
    };
    config.delivery.batch_window_ms = 0;
    config.delivery.rate_limit_per_user = 0;
    let (stop, stopped) = oneshot::channel::<()>();
    let server = tickcast::serve(config, async move {
        let _ = stopped.await;
    })
    .await
    .expect("server starts");
    let addr = server.addr();
    let waiting = tokio::spawn(async move {
        server.wait().await.expect("server stops cleanly");
    });
    (addr, stop, waiting)
}

fn floor_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_tickcast-floor"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_floor_writes_tickcasts_frames_and_every_delivery_arrives() {
    let (addr, stop, waiting) = start_server().await;
    let (name, mut scenario) = Scenario::load("smoke").expect("smoke loads");
    // One event per request: tickcast then sends one `event` frame per
    // delivery, as the floor does, so the bytes must agree exactly.
    scenario.publish.batch = 1;
    scenario.publish.rate = 100.0;
    let mut options = Options::new(&name, scenario, addr);
    options.server_pid = Some(std::process::id());
    let settings = FloorSettings {
        bin: floor_bin(),
        runs: vec![RunKind::Tickcast, RunKind::Plain, RunKind::Tasks],
        threads: Some(2),
        frames: Frames::Event,
    };
    let report = floor::compare(options, &settings)
        .await
        .expect("the runs complete");
    println!("{}", report.table());
    assert!(report.ok, "{}", report.table());
    assert_eq!(report.runs.len(), 3);
    let tickcast = &report.runs[0].report.deliveries;
    assert!(tickcast.expected > 0);
    for run in &report.runs[1..] {
        let d = &run.report.deliveries;
        assert_eq!(
            d.expected, tickcast.expected,
            "{:?}: same deliveries",
            run.server
        );
        assert_eq!(d.received, d.expected);
        assert_eq!((d.missing, d.duplicates, d.unexpected), (0, 0, 0));
        let tally = run.tally.expect("the floor server's tally");
        assert_eq!(tally.writes, d.received, "one write per delivery");
        assert_eq!((tally.errors, tally.skipped), (0, 0));
        assert_eq!(d.event_frames, d.received);
        // Unless tickcast's writer found two events queued at once (and
        // sent a batch frame), it sent one `event` frame per delivery: the
        // same frames, byte for byte in total.
        if tickcast.event_frames == tickcast.received {
            assert_eq!(
                d.event_frame_bytes, tickcast.event_frame_bytes,
                "{:?}: the same frames as tickcast's",
                run.server
            );
        }
        let process = run.report.server_process.as_ref().expect("its process");
        assert_ne!(process.pid, std::process::id(), "a process of its own");
        assert!(process.cpu_us_per_delivery.is_some());
    }
    let c = &report.comparison;
    assert!(c.floor_us.is_some() && c.tickcast_us.is_some() && c.tasks_us.is_some());
    assert!(report.table().contains("ratio"));

    // Per request: one frame per connection and request, still every
    // delivery; fewer or as many writes as deliveries.
    let (name, mut scenario) = Scenario::load("smoke").expect("smoke loads");
    scenario.publish.duration_s = 1.0;
    let options = Options::new(&name, scenario, addr);
    let settings = FloorSettings {
        runs: vec![RunKind::Plain],
        frames: Frames::Request,
        ..settings
    };
    let report = floor::compare(options, &settings)
        .await
        .expect("the run completes");
    assert!(report.ok, "{}", report.table());
    let run = &report.runs[0];
    let tally = run.tally.expect("tally");
    assert!(tally.writes <= run.report.deliveries.received);
    assert_eq!(tally.writes, run.report.deliveries.event_frames);

    let _ = stop.send(());
    waiting.await.expect("server task");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn churn_comes_and_goes_while_the_stable_connections_get_everything() {
    let (addr, stop, waiting) = start_server().await;
    let (name, mut scenario) = Scenario::load("smoke").expect("smoke loads");
    scenario.publish.duration_s = 3.0;
    scenario.churn = Some(ChurnSection {
        rate_per_s: 40.0,
        hold_s: 0.2,
        abrupt_share: 0.5,
        sample_every_s: 0.5,
        warmup_s: 0.0,
    });
    let mut options = Options::new(&name, scenario, addr);
    options.server_pid = Some(std::process::id());
    let report = load::run(options).await.expect("the run completes");
    println!("{}", report.table());
    assert!(report.ok, "{:?}", report.problems);
    let d = &report.deliveries;
    assert_eq!((d.missing, d.duplicates, d.unexpected), (0, 0, 0));
    assert_eq!(d.received, d.expected);
    let churn = report.churn.as_ref().expect("a churn report");
    let c = &churn.cycles;
    assert!(c.started > 0);
    assert_eq!(c.failed, 0, "{:?}", c.failures);
    assert_eq!(c.completed, c.started);
    assert_eq!(c.clean + c.abrupt, c.completed);
    assert!(c.clean > 0 && c.abrupt > 0);
    assert!(!churn.samples.is_empty());
    assert!(churn.samples.iter().all(|s| s.rss_kib > 0 && s.fds > 0));
    assert!(churn.rss_kib.is_some() && churn.fds.is_some());
    let after = churn.after.expect("a reading once the churn is over");
    assert!(after.t_s >= churn.duration_s);
    let json = serde_json::to_value(&report).expect("serializes");
    assert!(json["churn"]["samples"].is_array());

    let _ = stop.send(());
    waiting.await.expect("server task");
}
