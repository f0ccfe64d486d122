//! `tickcast demo`: the server with a built-in generator of TickStock
//! pattern detections (the fixtures' mix, real-looking tickers), so a
//! newcomer sees events stream on the demo page without any producer.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use tickcast_core::model::{Event, DEFAULT_MAX_BODY_BYTES};
use tickcast_core::sample::{DetectionStream, SymbolUniverse, TICKERS};
use tickcast_core::Hub;

/// How often the generator wakes; events due in between go out together.
const TICK: Duration = Duration::from_millis(10);
/// How often a `system_health` heartbeat is published.
const HEALTH_EVERY: Duration = Duration::from_secs(15);

/// Publishes `rate` pattern detections per second into `hub` (and a health
/// heartbeat every 15 s) until the hub shuts down.
pub async fn generate(hub: Hub, rate: f64, seed: u64) {
    let mut stream = DetectionStream::new(SymbolUniverse::of(&TICKERS, 1.0), seed);
    let mut tick = tokio::time::interval(TICK);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut due = 0.0_f64;
    let mut since_health = Duration::ZERO;
    loop {
        tick.tick().await;
        due += rate * TICK.as_secs_f64();
        let now = epoch_s();
        let batch: Vec<Event> = (0..due.floor() as usize)
            .filter_map(|_| stream.next())
            .map(|mut detection| {
                detection.timestamp = now;
                detection.to_event()
            })
            .collect();
        due -= batch.len() as f64;
        since_health += TICK;
        let mut events = batch;
        if since_health >= HEALTH_EVERY {
            since_health = Duration::ZERO;
            events.extend(heartbeat(now));
        }
        if events.is_empty() {
            continue;
        }
        let results = hub.publish_all(events);
        if results.iter().any(Result::is_err) {
            // The only refusal of a node-offset hub is shutdown.
            return;
        }
    }
}

/// A `system_health` event saying the generator runs.
fn heartbeat(now: f64) -> Option<Event> {
    let body = serde_json::json!({
        "source": "tickcast-demo",
        "event_type": "system_health",
        "timestamp": now,
        "component": "demo_generator",
        "status": "ok",
        "priority": "low",
    });
    Event::from_json(Bytes::from(body.to_string()), None, DEFAULT_MAX_BODY_BYTES).ok()
}

fn epoch_s() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| (d.as_millis() as f64) / 1000.0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use tickcast_core::hub::HubConfig;
    use tickcast_core::model::Filter;

    #[tokio::test(flavor = "multi_thread", worker_threads = 1)]
    async fn the_generator_publishes_at_about_its_rate_until_shutdown() {
        let hub = Hub::new(HubConfig::immediate());
        let mut conn = hub.connect(None, hub.default_limits()).unwrap();
        conn.handle
            .subscribe("all", Filter::default(), None)
            .unwrap();
        let task = tokio::spawn(generate(hub.clone(), 500.0, 7));
        let mut events = 0;
        while events < 20 {
            match conn.frames.recv().await {
                Some(tickcast_core::broadcast::Outbound::Event(_)) => events += 1,
                Some(tickcast_core::broadcast::Outbound::Batch(b)) => events += b.len(),
                Some(_) => {}
                None => break,
            }
        }
        assert!(events >= 20);
        hub.shutdown();
        // Ends on its own once the hub refuses events.
        tokio::time::timeout(Duration::from_secs(10), task)
            .await
            .expect("generator stops after shutdown")
            .unwrap();
    }
}
