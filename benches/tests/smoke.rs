//! The `smoke` scenario end to end: a real tickcast server in this process
//! (WebSocket + HTTP publish, no rate limit, no batch window), the load
//! generator's library entry point against it, and every delivery checked:
//! none missing, none duplicated, none unexpected. No timing assertions.

use tickcast::Config;
use tickcast_benches::load::{self, BrokerTarget, Options, Scenario, Via};
use tokio::sync::oneshot;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn smoke_scenario_delivers_exactly_what_the_filters_ask_for() {
    smoke(Config::default(), Via::Http, BrokerTarget::default(), 0.0).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn smoke_scenario_over_websocket_and_sse() {
    smoke(Config::default(), Via::Http, BrokerTarget::default(), 0.5).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn smoke_scenario_through_redis_streams() {
    let redis = tickcast_testkit::RedisServer::start();
    let mut config = Config::default();
    config.ingest.redis = Some(tickcast::config::RedisIngest {
        url: redis.url(),
        mode: tickcast::config::RedisMode::Streams,
        stream: "smoke".into(),
        ..Default::default()
    });
    let broker = BrokerTarget {
        url: Some(redis.url()),
        redis_stream: Some("smoke".into()),
        amqp_exchange: None,
    };
    smoke(config, Via::Redis, broker, 0.0).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn smoke_scenario_through_rabbitmq() {
    let Some(url) = tickcast_testkit::amqp_url() else {
        return;
    };
    let unique = format!("smoke-{}", std::process::id());
    let mut config = Config::default();
    config.ingest.amqp = Some(tickcast::config::AmqpIngest {
        url: url.clone(),
        exchange: format!("tickcast-test.{unique}"),
        queue: Some(format!("tickcast-test.{unique}.node")),
        dead_letter_exchange: format!("tickcast-test.{unique}.dlx"),
        ..Default::default()
    });
    let broker = BrokerTarget {
        url: Some(url),
        redis_stream: None,
        amqp_exchange: Some(format!("tickcast-test.{unique}")),
    };
    smoke(config, Via::Amqp, broker, 0.0).await;
}

/// Runs the smoke scenario against a server with `base`'s ingest,
/// publishing `via`, with `sse_share` of the connections over SSE, and
/// checks every delivery.
async fn smoke(base: Config, via: Via, broker: BrokerTarget, sse_share: f64) {
    let mut config = Config {
        listen: "127.0.0.1:0".to_owned(),
        node_id: "smoke".to_owned(),
        ..base
    };
    config.delivery.batch_window_ms = 0;
    config.delivery.rate_limit_per_user = 0;
    let (stop, stopped) = oneshot::channel::<()>();
    let server = tickcast::serve(config, async move {
        let _ = stopped.await;
    })
    .await
    .expect("server starts");

    wait_ready(server.addr()).await;
    let (name, mut scenario) = Scenario::load("smoke").expect("the smoke scenario loads");
    scenario.publish.via = via;
    scenario.connections.sse_share = sse_share;
    let mut options = Options::new(&name, scenario, server.addr());
    options.broker = broker;
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

/// Waits until the server's ingest sources are connected.
async fn wait_ready(addr: std::net::SocketAddr) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    for _ in 0..200 {
        if let Ok(mut stream) = tokio::net::TcpStream::connect(addr).await {
            let request =
                format!("GET /ready HTTP/1.1\r\nhost: {addr}\r\nconnection: close\r\n\r\n");
            let mut answer = Vec::new();
            if stream.write_all(request.as_bytes()).await.is_ok()
                && stream.read_to_end(&mut answer).await.is_ok()
                && answer.starts_with(b"HTTP/1.1 200")
            {
                return;
            }
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    panic!("the server's ingest never became ready");
}
