//! The `smoke` scenario end to end: a real tickcast server in this process
//! (WebSocket + HTTP publish, no rate limit, no batch window), the load
//! generator's library entry point against it, and every delivery checked:
//! none missing, none duplicated, none unexpected. No timing assertions.

use tickcast::Config;
use tickcast_benches::load::{self, Options, Scenario};
use tokio::sync::oneshot;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn smoke_scenario_delivers_exactly_what_the_filters_ask_for() {
    let mut config = Config {
        listen: "127.0.0.1:0".to_owned(),
        node_id: "smoke".to_owned(),
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

    let (name, scenario) = Scenario::load("smoke").expect("the smoke scenario loads");
    let mut options = Options::new(&name, scenario, server.addr());
    options.server_pid = Some(std::process::id());
    let report = load::run(options).await.expect("the run completes");
    println!("{}", report.table());

    let d = &report.deliveries;
    assert_eq!(
        report.connections.established, 50,
        "{:?}",
        report.connections
    );
    assert!(report.subscriptions.active >= 50);
    assert!(report.publish.events_accepted > 0, "{:?}", report.publish);
    assert!(d.expected > 0, "the filters match some events");
    assert_eq!(
        d.missing, 0,
        "missing deliveries, e.g. {:?}",
        d.missing_examples
    );
    assert_eq!(d.duplicates, 0, "duplicate deliveries");
    assert_eq!(d.unexpected, 0, "deliveries no filter asked for");
    assert_eq!(d.received, d.expected);
    assert_eq!(d.dropped_notices, 0);
    assert!(d.received > 0 && report.latency_us.count == d.received);
    assert!(report.ok, "{:?}", report.problems);
    let json = serde_json::to_value(&report).expect("the report serializes");
    assert_eq!(json["deliveries"]["missing"], 0);

    let _ = stop.send(());
    server.wait().await.expect("server stops cleanly");
}
