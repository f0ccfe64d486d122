//! tickcast-core with a transport of your own: here, in-process consumers
//! (say, the strategy engines of a trading service) reading frames from
//! the hub, and a producer feeding it through the ingest path
//! ([`ChannelSource`](tickcast_core::ingest::ChannelSource) +
//! [`run_source`]). No sockets at all.
//!
//! ```sh
//! cargo run -p tickcast-core --example in_process
//! ```

use bytes::Bytes;
use tickcast_core::broadcast::Outbound;
use tickcast_core::hub::HubConfig;
use tickcast_core::ingest::{channel_source, run_source};
use tickcast_core::model::Filter;
use tickcast_core::Hub;

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let hub = Hub::new(HubConfig::immediate());

    // Two consumers with their own filters; each reads its frames the way a
    // transport would write them.
    let consumers = [
        (
            "breakouts",
            r#"{"patterns":["BreakoutBO"],"min_confidence":0.8}"#,
        ),
        ("apple", r#"{"symbols":["AAPL"]}"#),
    ];
    let mut tasks = Vec::new();
    for (name, filter) in consumers {
        let mut conn = hub.connect(None, hub.default_limits()).expect("hub open");
        let filter: Filter = serde_json::from_str(filter).expect("a valid filter");
        conn.handle
            .subscribe(name, filter, None)
            .expect("a valid subscription");
        tasks.push(tokio::spawn(async move {
            let _handle = conn.handle; // keeps the subscription alive
            let mut received = 0;
            while let Some(out) = conn.frames.recv().await {
                match out {
                    Outbound::Event(frame) => {
                        received += 1;
                        println!("{name}: {}", String::from_utf8_lossy(&frame.to_json()));
                    }
                    Outbound::Batch(frames) => received += frames.len(),
                    Outbound::Close(_) => break,
                    Outbound::Message(_) => {}
                }
            }
            (name, received)
        }));
    }

    // The producer side: raw TickStockPL bodies on a channel, decoded,
    // validated and counted by the ingest driver.
    let (producer, source) = channel_source("in-process", 64, 1 << 20);
    let ingest = tokio::spawn(
        run_source(hub.clone(), source).expect("the hub numbers events, as a channel source needs"),
    );
    let bodies = [
        r#"{"pattern":"BreakoutBO","symbol":"AAPL","confidence":0.92,"tier":"daily"}"#,
        r#"{"pattern":"BreakoutBO","symbol":"MSFT","confidence":0.85,"tier":"intraday"}"#,
        r#"{"pattern":"Doji","symbol":"aapl","confidence":0.4,"tier":"daily"}"#,
        r#"{"pattern":"Doji","symbol":"TSLA"}"#,
        r#"{"not":"an event"}"#,
    ];
    for body in bodies {
        producer
            .send(
                Some("tickstock.events.patterns"),
                Bytes::from_static(body.as_bytes()),
            )
            .await
            .expect("source running");
    }
    drop(producer);
    ingest.await.expect("ingest ends when the producer is gone");

    let stats = hub
        .source_counters("in-process")
        .expect("run_source registered it")
        .snapshot();
    println!("accepted {}, rejected {:?}", stats.accepted, stats.rejected);
    hub.shutdown();
    for task in tasks {
        let (name, received) = task.await.expect("consumer");
        println!("{name} received {received} event(s)");
    }
}
