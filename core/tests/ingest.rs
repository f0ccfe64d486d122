//! Ingest through an in-process source: bad bodies between good ones are
//! counted by reason and never stop the good events.

mod common;

use std::time::Duration;

use bytes::Bytes;
use tickcast_core::hub::HubConfig;
use tickcast_core::ingest::{channel_source, run_source};
use tickcast_core::model::{Envelope, Filter, DEFAULT_MAX_BODY_BYTES};
use tickcast_core::Hub;

#[tokio::test]
async fn bad_events_are_counted_and_good_ones_delivered() {
    let mut config = HubConfig::immediate();
    config.rate_limit_per_user = 0;
    config.queue.capacity = 10_000;
    let hub = Hub::new(config);
    let mut conn = hub.connect(None, hub.default_limits()).unwrap();
    conn.handle
        .subscribe("all", Filter::default(), None)
        .unwrap();

    let (publisher, source) = channel_source("test", 64, DEFAULT_MAX_BODY_BYTES);
    let driver = tokio::spawn(run_source(hub.clone(), source).unwrap());
    let good = tickcast_testkit::good_events();
    let bad = tickcast_testkit::bad_events();
    let mut sent_good = 0;
    for (i, fixture) in good.iter().take(300).enumerate() {
        publisher
            .send(Some(&fixture.channel), Bytes::from(fixture.raw.clone()))
            .await
            .unwrap();
        sent_good += 1;
        if let Some(bad) = bad.get(i) {
            publisher
                .send(Some(&bad.channel), Bytes::from(bad.raw.clone()))
                .await
                .unwrap();
        }
    }
    // A Rust producer's bincode envelope, after the 0x00 marker.
    let envelope = Envelope {
        symbol: Some("aapl".into()),
        pattern: Some("Doji".into()),
        ..Envelope::default()
    };
    let mut body = vec![0u8];
    body.extend(envelope.to_bincode());
    publisher.send(None, body.into()).await.unwrap();
    drop(publisher);
    tokio::time::timeout(Duration::from_secs(30), driver)
        .await
        .unwrap()
        .unwrap();

    let seen = common::drain_until_idle(&mut conn.frames, Duration::from_millis(200)).await;
    let private = good.iter().take(300).filter(|f| f.is_private()).count();
    assert_eq!(seen.events.len(), sent_good - private + 1);
    let from_bincode = seen
        .events
        .iter()
        .filter(|e| e["data"]["symbol"] == "aapl")
        .count();
    assert_eq!(from_bincode, 1);
    let stats = hub.stats();
    let source = stats.ingest.iter().find(|s| s.name == "test").unwrap();
    assert_eq!(source.accepted, sent_good as u64 + 1);
    assert_eq!(source.rejected_total, bad.len() as u64);
    assert!(source.rejected.contains_key("not_json"));
    assert!(source.rejected.contains_key("too_deep"));
}

/// A source that reloads history at start: backfill, then (once the test
/// opens the gate) `Connected`.
struct Reloading {
    backfill: Vec<(&'static str, &'static str)>,
    gate: Option<tokio::sync::oneshot::Receiver<()>>,
    connected: bool,
}

#[async_trait::async_trait]
impl tickcast_core::ingest::IngestSource for Reloading {
    fn name(&self) -> &str {
        "reloading"
    }

    fn offsets(&self) -> tickcast_core::ingest::SourceOffsets {
        tickcast_core::ingest::SourceOffsets::Broker
    }

    async fn next(&mut self) -> Option<tickcast_core::ingest::IngestItem> {
        use tickcast_core::ingest::{BodyDecoder, Incoming, IngestItem};
        if let Some((offset, symbol)) = self.backfill.pop() {
            let body = format!(r#"{{"pattern":"Doji","symbol":"{symbol}","tier":"daily"}}"#);
            return Some(IngestItem::Backfill(Incoming {
                decoded: BodyDecoder::new(DEFAULT_MAX_BODY_BYTES).decode(Bytes::from(body), None),
                offset: Some(offset.parse().unwrap()),
                acker: None,
            }));
        }
        if let Some(gate) = self.gate.take() {
            let _ = gate.await;
        }
        if std::mem::replace(&mut self.connected, true) {
            return std::future::pending().await;
        }
        Some(IngestItem::Connected)
    }
}

/// A hub that awaits its history refuses clients (1013, `starting`) until
/// the source that reloads it reports `Connected`; then a client resumes
/// from the reloaded history.
#[tokio::test]
async fn clients_wait_for_a_reloaded_history() {
    use tickcast_core::hub::{ConnectError, OffsetMode};
    use tickcast_core::protocol::CloseCode;
    let mut config = HubConfig::immediate();
    config.offsets = OffsetMode::External;
    config.await_history = true;
    let hub = Hub::new(config);
    let refused = hub.connect(None, hub.default_limits()).unwrap_err();
    assert_eq!(refused, ConnectError::Starting);
    assert_eq!(refused.close_code(), CloseCode::TryAgainLater);

    let (open, gate) = tokio::sync::oneshot::channel();
    let source = Reloading {
        // Popped from the end: oldest first.
        backfill: vec![("5-0", "MSFT"), ("4-0", "AAPL")],
        gate: Some(gate),
        connected: false,
    };
    tokio::spawn(run_source(hub.clone(), source).unwrap());
    tokio::time::timeout(Duration::from_secs(10), async {
        while hub.latest_offset().map(|o| o.to_string()) != Some("5-0".to_owned()) {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await
    .expect("the backfill reaches the history");
    assert!(!hub.is_history_loaded());
    assert_eq!(
        hub.connect(None, hub.default_limits()).unwrap_err(),
        ConnectError::Starting
    );

    open.send(()).unwrap();
    let mut conn = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            match hub.connect(None, hub.default_limits()) {
                Ok(conn) => return conn,
                Err(_) => tokio::time::sleep(Duration::from_millis(5)).await,
            }
        }
    })
    .await
    .expect("admitted once the source is connected");
    let since = "4-0".parse().unwrap();
    conn.handle
        .subscribe("all", Filter::default(), Some(since))
        .unwrap();
    let seen = common::drain_until_idle(&mut conn.frames, Duration::from_millis(200)).await;
    let offsets: Vec<&str> = seen
        .events
        .iter()
        .filter_map(|e| e["offset"].as_str())
        .collect();
    assert_eq!(offsets, ["5-0"], "exactly what came after the resume point");
}

/// A source whose offsets do not fit the hub's mode is refused before it
/// reads anything or shows in the hub's stats: a channel source (no
/// offsets) into a hub that takes them from its ingest would otherwise have
/// every message refused.
#[tokio::test]
async fn a_source_whose_offsets_do_not_fit_is_refused_at_start() {
    use tickcast_core::hub::OffsetMode;
    use tickcast_core::ingest::{OffsetMismatch, SourceOffsets};
    let mut config = HubConfig::immediate();
    config.offsets = OffsetMode::External;
    let hub = Hub::new(config);
    let (publisher, source) = channel_source("in-process", 4, DEFAULT_MAX_BODY_BYTES);
    let Err(refused) = run_source(hub.clone(), source) else {
        panic!("a source without offsets ran on an External hub");
    };
    assert_eq!(
        refused,
        OffsetMismatch {
            source_name: "in-process".into(),
            offsets: SourceOffsets::Hub,
            hub: OffsetMode::External,
        }
    );
    assert!(hub.source_counters("in-process").is_none());
    // The source was dropped unread.
    assert!(publisher
        .send(None, Bytes::from_static(b"{}"))
        .await
        .is_err());

    let reloading = Reloading {
        backfill: Vec::new(),
        gate: None,
        connected: false,
    };
    let node = Hub::new(HubConfig::immediate());
    let refused = run_source(node, reloading).err().map(|e| e.hub);
    assert_eq!(refused, Some(OffsetMode::Node));
}

/// `run_source` registers the source (shown in stats before its first
/// item) and hands it the counters it counts in.
#[tokio::test]
async fn run_source_registers_the_source_and_attaches_its_counters() {
    use std::sync::{Arc, Mutex};
    use tickcast_core::ingest::{IngestItem, IngestSource, SourceContext};

    /// Reports what it was handed, then waits for ever.
    struct Attached {
        seen: Arc<Mutex<Option<SourceContext>>>,
    }

    #[async_trait::async_trait]
    impl IngestSource for Attached {
        fn name(&self) -> &str {
            "attached"
        }

        fn starts_connected(&self) -> bool {
            false
        }

        fn attach(&mut self, context: &SourceContext) {
            context.counters.set_lag(7);
            *self.seen.lock().unwrap() = Some(context.clone());
        }

        async fn next(&mut self) -> Option<IngestItem> {
            std::future::pending().await
        }
    }

    let hub = Hub::new(HubConfig::immediate());
    let seen = Arc::new(Mutex::new(None));
    let run = run_source(hub.clone(), Attached { seen: seen.clone() }).unwrap();
    // Registered, disconnected, and attached before the future runs.
    let registered = hub.source_counters("attached").unwrap();
    let attached = seen.lock().unwrap().clone().unwrap();
    assert!(Arc::ptr_eq(&registered, &attached.counters));
    assert!(Arc::ptr_eq(&hub.config().schema, &attached.schema));
    let stats = registered.snapshot();
    assert_eq!((stats.connected, stats.lag), (false, 7));
    assert!(!hub.sources_ready());
    drop(run);
}

/// A source decodes with the hub's schema, whatever it is: bodies of
/// another schema reach the subscribers filtering on its dimensions.
#[tokio::test]
async fn a_source_decodes_with_the_hubs_schema() {
    use tickcast_core::broadcast::Outbound;
    use tickcast_core::model::schema::{DimensionDecl, SchemaDecl};
    use tickcast_core::model::Filter;

    let mut config = HubConfig::immediate();
    config.schema = SchemaDecl::new("iot")
        .default_event_type("reading")
        .dimension(DimensionDecl::text("sensor").required_for(["reading"]))
        .dimension(DimensionDecl::number("celsius", -60.0, 200.0))
        .build()
        .unwrap();
    let hub = Hub::new(config);
    let mut conn = hub.connect(None, hub.default_limits()).unwrap();
    let filter = Filter::new()
        .values("sensors", ["t-1"])
        .number("min_celsius", 30.0);
    conn.handle.subscribe("hot", filter, None).unwrap();
    let (publisher, source) = tickcast_core::ingest::channel_source("iot", 16, 1 << 20);
    tokio::spawn(run_source(hub.clone(), source).unwrap());
    for body in [
        r#"{"sensor":"t-1","celsius":20}"#,
        r#"{"sensor":"t-2","celsius":40}"#,
        r#"{"celsius":40}"#,
        r#"{"sensor":"t-1","celsius":31}"#,
    ] {
        publisher.send(None, Bytes::from(body)).await.unwrap();
    }
    let event = tokio::time::timeout(std::time::Duration::from_secs(20), async {
        loop {
            match conn.frames.recv().await {
                Some(Outbound::Event(frame)) => return frame,
                Some(_) => continue,
                None => panic!("the connection closed"),
            }
        }
    })
    .await
    .expect("the reading in time");
    let text = String::from_utf8_lossy(&event.to_json()).into_owned();
    assert!(text.contains(r#""celsius":31"#), "{text}");
    assert!(text.contains(r#""event_type":"reading""#), "{text}");
    let stats = hub.source_counters("iot").unwrap().snapshot();
    assert_eq!(stats.rejected_total, 1, "the reading without a sensor");
}

/// On a multi-thread runtime a read-ahead source runs on a thread of its
/// own, and goes away (dropped, connections closed) once `run_source`'s
/// future does, even while it waits for a broker that never answers.
#[test]
fn a_read_ahead_source_reads_on_its_own_thread_and_stops_with_the_driver() {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::{Arc, Mutex};
    use tickcast_core::ingest::{Incoming, IngestItem, IngestSource};
    use tickcast_core::model::Event;

    /// Yields `left` events, then waits for ever; says where it ran and
    /// when it was dropped.
    struct Ahead {
        left: usize,
        threads: Arc<Mutex<Vec<Option<String>>>>,
        dropped: Arc<AtomicBool>,
    }

    impl Drop for Ahead {
        fn drop(&mut self) {
            self.dropped.store(true, Ordering::SeqCst);
        }
    }

    #[async_trait::async_trait]
    impl IngestSource for Ahead {
        fn name(&self) -> &str {
            "ahead"
        }

        fn read_ahead(&self) -> usize {
            16
        }

        async fn next(&mut self) -> Option<IngestItem> {
            let thread = std::thread::current().name().map(str::to_owned);
            self.threads.lock().unwrap().push(thread);
            if self.left == 0 {
                return std::future::pending().await;
            }
            self.left -= 1;
            let body = Bytes::from_static(br#"{"symbol":"AAPL","pattern":"Doji"}"#);
            Some(IngestItem::Message(Incoming {
                decoded: Event::from_json(body, None, DEFAULT_MAX_BODY_BYTES),
                offset: None,
                acker: None,
            }))
        }
    }

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let (threads, dropped) = (Arc::default(), Arc::new(AtomicBool::new(false)));
    runtime.block_on(async {
        let (hub, mut conn) = common::hub_with_catch_all();
        let source = Ahead {
            left: 5,
            threads: Arc::clone(&threads),
            dropped: Arc::clone(&dropped),
        };
        let driver = tokio::spawn(run_source(hub.clone(), source).unwrap());
        let seen = common::drain_until_idle(&mut conn.frames, Duration::from_millis(300)).await;
        assert_eq!(seen.events.len(), 5);
        assert!(!dropped.load(Ordering::SeqCst));
        driver.abort();
        for _ in 0..200 {
            if dropped.load(Ordering::SeqCst) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    });
    assert!(
        dropped.load(Ordering::SeqCst),
        "the source outlived its driver"
    );
    let threads = threads.lock().unwrap();
    assert!(threads.len() >= 6);
    assert!(
        threads
            .iter()
            .all(|t| t.as_deref() == Some("tickcast-ingest")),
        "{threads:?}"
    );
}

/// A stopped reader thread gives the tasks its source left behind (a last
/// acknowledgement) time to finish before its runtime goes away.
#[test]
fn a_stopped_reader_lets_its_sources_last_tasks_finish() {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;
    use tickcast_core::ingest::{IngestItem, IngestSource};

    /// Starts a slow task (its "last XACK") at its first read, then waits
    /// for ever.
    struct Leaves {
        done: Arc<AtomicBool>,
    }

    #[async_trait::async_trait]
    impl IngestSource for Leaves {
        fn name(&self) -> &str {
            "leaves"
        }

        fn read_ahead(&self) -> usize {
            16
        }

        async fn next(&mut self) -> Option<IngestItem> {
            let done = Arc::clone(&self.done);
            tokio::spawn(async move {
                tokio::time::sleep(Duration::from_millis(200)).await;
                done.store(true, Ordering::SeqCst);
            });
            std::future::pending().await
        }
    }

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let done = Arc::new(AtomicBool::new(false));
    runtime.block_on(async {
        let (hub, _conn) = common::hub_with_catch_all();
        let source = Leaves {
            done: Arc::clone(&done),
        };
        let driver = tokio::spawn(run_source(hub.clone(), source).unwrap());
        tokio::time::sleep(Duration::from_millis(50)).await;
        driver.abort();
        for _ in 0..300 {
            if done.load(Ordering::SeqCst) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    });
    assert!(
        done.load(Ordering::SeqCst),
        "the source's last task was dropped with the reader"
    );
}
