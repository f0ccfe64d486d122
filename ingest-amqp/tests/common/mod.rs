//! Helpers of the integration tests: a hub with one client that takes
//! everything, names of their own per test, and raw AMQP access to publish
//! and to look at queues. The fixtures come from `tickcast_testkit`.
#![allow(dead_code)]

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use lapin::options::{
    BasicPublishOptions, ConfirmSelectOptions, ExchangeDeleteOptions, QueueDeclareOptions,
    QueueDeleteOptions,
};
use lapin::types::FieldTable;
use lapin::{BasicProperties, Channel, Connection, ConnectionProperties};
use parking_lot::Mutex;
use serde_json::Value;
use tickcast_core::broadcast::{encode_batch, Outbound};
use tickcast_core::hub::HubConfig;
use tickcast_core::model::Filter;
use tickcast_core::{ConnectionHandle, Hub};
use tickcast_ingest_amqp::AmqpConfig;

/// Longest any wait in these tests may take before it gives up.
pub const GIVE_UP: Duration = Duration::from_secs(90);

/// A hub that delivers at once, without rate limits, into deep queues.
pub fn hub() -> Hub {
    let mut config = HubConfig::immediate();
    config.rate_limit_per_user = 0;
    config.queue.capacity = 100_000;
    Hub::new(config)
}

/// An anonymous connection subscribed to everything, whose frames are read
/// as they come (as a socket writer would) into `events`.
pub struct Client {
    pub events: Arc<Mutex<Vec<Value>>>,
    _handle: ConnectionHandle,
}

impl Client {
    pub fn subscribe_all(hub: &Hub) -> Self {
        let conn = hub.connect(None, hub.default_limits()).unwrap();
        conn.handle
            .subscribe("all", Filter::default(), None)
            .unwrap();
        let events = Arc::new(Mutex::new(Vec::new()));
        let sink = events.clone();
        let mut frames = conn.frames;
        tokio::spawn(async move {
            while let Some(out) = frames.recv().await {
                match out {
                    Outbound::Event(f) => sink
                        .lock()
                        .push(serde_json::from_slice(&f.to_json()).unwrap()),
                    Outbound::Batch(fs) => {
                        let batch: Value = serde_json::from_slice(&encode_batch(&fs)).unwrap();
                        sink.lock()
                            .extend(batch["events"].as_array().unwrap().iter().cloned());
                    }
                    Outbound::Message(_) => {}
                    // The hub shuts down as the test ends.
                    Outbound::Close(_) => break,
                }
            }
        });
        Self {
            events,
            _handle: conn.handle,
        }
    }

    /// The `data` of every event so far.
    pub fn data(&self) -> Vec<Value> {
        self.events
            .lock()
            .iter()
            .map(|e| e["data"].clone())
            .collect()
    }

    /// Waits until `done` holds for the data received (or gives up), and
    /// returns it.
    pub async fn wait_for(&self, done: impl Fn(&[Value]) -> bool) -> Vec<Value> {
        wait_until(|| done(&self.data())).await;
        self.data()
    }
}

/// Polls `done` until it holds or [`GIVE_UP`] passes.
pub async fn wait_until(mut done: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + GIVE_UP;
    while Instant::now() < deadline {
        if done() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    done()
}

/// Names nobody else uses: tests share one broker and run in parallel.
pub fn unique(test: &str) -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!("tc-test.{test}.{}.{nanos}", std::process::id())
}

/// A config with an exchange, queue and dead-letter exchange of its own.
pub fn config(url: &str, test: &str) -> AmqpConfig {
    let name = unique(test);
    AmqpConfig {
        url: url.to_owned(),
        exchange: format!("{name}.events"),
        queue: format!("{name}.q"),
        dead_letter_exchange: format!("{name}.dlx"),
        reconnect_max: Duration::from_secs(1),
        ..AmqpConfig::default()
    }
}

/// A plain connection of the test's own, to publish and inspect.
pub struct Raw {
    pub connection: Connection,
    pub channel: Channel,
}

impl Raw {
    pub async fn connect(url: &str) -> Self {
        let connection = Connection::connect(url, ConnectionProperties::default())
            .await
            .unwrap();
        let channel = connection.create_channel().await.unwrap();
        channel
            .confirm_select(ConfirmSelectOptions::default())
            .await
            .unwrap();
        Self {
            connection,
            channel,
        }
    }

    /// Publishes and waits for the broker's confirm; panics unless acked.
    pub async fn publish(
        &self,
        exchange: &str,
        routing_key: &str,
        body: &[u8],
        properties: BasicProperties,
    ) {
        let confirm = self
            .channel
            .basic_publish(
                exchange.into(),
                routing_key.into(),
                BasicPublishOptions::default(),
                body,
                properties,
            )
            .await
            .unwrap()
            .await
            .unwrap();
        assert!(confirm.is_ack(), "broker nacked a test publish");
    }

    /// (messages ready, consumers) of `queue`, or `None` if it does not
    /// exist. A failed passive declare closes the channel, hence a fresh one.
    pub async fn queue_state(&self, queue: &str) -> Option<(u32, u32)> {
        let channel = self.connection.create_channel().await.ok()?;
        let passive = QueueDeclareOptions {
            passive: true,
            ..QueueDeclareOptions::default()
        };
        let queue = channel
            .queue_declare(queue.into(), passive, FieldTable::default())
            .await
            .ok()?;
        let _ = channel.close(200, "OK".into()).await;
        Some((queue.message_count(), queue.consumer_count()))
    }

    /// Waits until a source consumes `queue` (its bindings are in place
    /// before it consumes, so publishing is safe from then on).
    pub async fn wait_for_consumer(&self, queue: &str) {
        let deadline = Instant::now() + GIVE_UP;
        while Instant::now() < deadline {
            if matches!(self.queue_state(queue).await, Some((_, consumers)) if consumers > 0) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("nobody consumes {queue}");
    }

    /// Removes what a test declared on the shared broker (best effort).
    pub async fn remove(&self, config: &AmqpConfig) {
        for queue in [config.queue.clone(), config.dead_letter_queue()] {
            let _ = self
                .channel
                .queue_delete(queue.as_str().into(), QueueDeleteOptions::default())
                .await;
        }
        for exchange in [&config.exchange, &config.dead_letter_exchange] {
            let _ = self
                .channel
                .exchange_delete(exchange.as_str().into(), ExchangeDeleteOptions::default())
                .await;
        }
    }
}

/// JSON properties as TickStockPL's producers set them.
pub fn json_properties() -> BasicProperties {
    BasicProperties::default()
        .with_content_type("application/json".into())
        .with_delivery_mode(2)
}

/// `events` in a canonical order: the hub may deliver a critical event
/// ahead of batched ones, so tests that check "each once, as published"
/// compare sorted lists.
pub fn sorted(mut events: Vec<Value>) -> Vec<Value> {
    events.sort_by_key(|v| v.to_string());
    events
}
