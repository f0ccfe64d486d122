//! Behaviour of [`ConnectionQueue`] and [`FrameReceiver`].

use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;

use super::*;
use crate::model::{Event, Offset};
use crate::protocol::{CloseCode, ErrorCode, ServerMessage};

fn frame(seq: u64, json: &str) -> EventFrame {
    let event = Event::from_json(Bytes::copy_from_slice(json.as_bytes()), None, 1 << 20).unwrap();
    let prepared = Arc::new(PreparedEvent::new(Arc::new(event), Offset::new(1, seq)));
    EventFrame {
        bytes: prepared.frame_for(&[]),
        prepared,
    }
}

fn pattern(seq: u64, symbol: &str, priority: &str) -> EventFrame {
    frame(
        seq,
        &format!(
            r#"{{"symbol":"{symbol}","pattern":"Doji","tier":"daily","priority":"{priority}"}}"#
        ),
    )
}

fn queue(
    settings: QueueSettings,
    rate: Option<u32>,
) -> (Arc<ConnectionQueue>, FrameReceiver, Arc<DeliveryCounters>) {
    let counters = Arc::new(DeliveryCounters::default());
    let limiter = rate.map(|r| Arc::new(RateLimiter::new(NonZeroU32::new(r), None)));
    let (q, rx) = ConnectionQueue::new(settings, limiter, counters.clone());
    (q, rx, counters)
}

fn no_window() -> QueueSettings {
    QueueSettings {
        batch_window: Duration::ZERO,
        ..QueueSettings::default()
    }
}

fn offsets(out: &Outbound) -> Vec<u64> {
    match out {
        Outbound::Event(f) => vec![f.offset().minor],
        Outbound::Batch(fs) => fs.iter().map(|f| f.offset().minor).collect(),
        other => panic!("expected events, got {other:?}"),
    }
}

#[tokio::test]
async fn a_flush_orders_by_priority_then_offset() {
    let (q, mut rx, counters) = queue(no_window(), None);
    q.push(pattern(1, "A", "low"), Urgency::Normal);
    q.push(pattern(2, "B", "high"), Urgency::Normal);
    q.push(pattern(3, "C", "medium"), Urgency::Normal);
    q.push(pattern(4, "D", "high"), Urgency::Normal);
    let out = rx.recv().await.unwrap();
    assert!(matches!(out, Outbound::Batch(_)));
    assert_eq!(offsets(&out), vec![2, 4, 3, 1]);
    assert_eq!(counters.snapshot().batches, 1);
    assert_eq!(counters.snapshot().delivered, 4);
}

#[tokio::test]
async fn a_lone_event_goes_out_as_an_event_frame_sharing_its_bytes() {
    let (q, mut rx, _) = queue(no_window(), None);
    let f = pattern(1, "A", "low");
    let ptr = f.bytes.as_ptr();
    q.push(f, Urgency::Normal);
    match rx.recv().await.unwrap() {
        Outbound::Event(out) => assert_eq!(out.bytes.as_ptr(), ptr),
        other => panic!("{other:?}"),
    }
}

#[tokio::test(start_paused = true)]
async fn critical_bypasses_the_batch_window() {
    let settings = QueueSettings {
        batch_window: Duration::from_millis(100),
        ..QueueSettings::default()
    };
    let (q, mut rx, _) = queue(settings, None);
    q.push(pattern(1, "A", "low"), Urgency::Normal);
    q.push(pattern(2, "B", "critical"), Urgency::Normal);
    q.push(pattern(3, "C", "low"), Urgency::Urgent);
    assert_eq!(offsets(&rx.try_recv().unwrap()), vec![2]);
    assert_eq!(offsets(&rx.try_recv().unwrap()), vec![3]);
    // The low event waits for its window.
    assert!(rx.try_recv().is_none());
    let start = tokio::time::Instant::now();
    assert_eq!(offsets(&rx.recv().await.unwrap()), vec![1]);
    assert!(start.elapsed() >= Duration::from_millis(100));
}

#[tokio::test]
async fn batches_respect_max_events_and_bytes() {
    let settings = QueueSettings {
        max_batch: 50,
        ..no_window()
    };
    let (q, mut rx, _) = queue(settings, None);
    for i in 0..120 {
        q.push(pattern(i, "A", "low"), Urgency::Normal);
    }
    let sizes: Vec<usize> = (0..3)
        .map(|_| offsets(&rx.try_recv().unwrap()).len())
        .collect();
    assert_eq!(sizes, vec![50, 50, 20]);

    let one = pattern(0, "A", "low").bytes.len();
    let settings = QueueSettings {
        max_batch_bytes: one * 2 + 1,
        ..no_window()
    };
    let (q, mut rx, _) = queue(settings, None);
    for i in 0..5 {
        q.push(pattern(i, "A", "low"), Urgency::Normal);
    }
    assert_eq!(offsets(&rx.try_recv().unwrap()), vec![0, 1]);
}

#[tokio::test]
async fn over_the_rate_limit_latest_wins_per_key_and_others_drop() {
    let (q, mut rx, counters) = queue(no_window(), Some(2));
    assert_eq!(
        q.push(pattern(1, "A", "low"), Urgency::Normal),
        PushOutcome::Queued
    );
    assert_eq!(
        q.push(pattern(2, "B", "low"), Urgency::Normal),
        PushOutcome::Queued
    );
    assert_eq!(
        q.push(pattern(3, "A", "low"), Urgency::Normal),
        PushOutcome::Conflated
    );
    assert_eq!(
        q.push(pattern(4, "A", "low"), Urgency::Normal),
        PushOutcome::Conflated
    );
    let health = frame(5, r#"{"event_type":"system_health","priority":"low"}"#);
    assert_eq!(q.push(health, Urgency::Normal), PushOutcome::Dropped);
    // Critical events are exempt.
    assert_eq!(
        q.push(pattern(6, "C", "critical"), Urgency::Normal),
        PushOutcome::Queued
    );

    let c = counters.snapshot();
    assert_eq!(
        (c.rate_limited, c.conflated, c.dropped_rate_limit),
        (3, 1, 1)
    );
    assert_eq!(offsets(&rx.recv().await.unwrap()), vec![6]);
    match rx.recv().await.unwrap() {
        Outbound::Message(ServerMessage::Dropped { count, since }) => {
            assert_eq!(count, 1);
            assert_eq!(since, Offset::new(1, 4));
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(offsets(&rx.recv().await.unwrap()), vec![1, 2]);
    // The held event for key A is the latest one, released when the limit allows.
    let released = tokio::time::timeout(Duration::from_secs(5), rx.recv())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(offsets(&released), vec![4]);
}

#[tokio::test]
async fn a_full_queue_drops_low_then_medium_then_closes() {
    let settings = QueueSettings {
        capacity: 3,
        ..no_window()
    };
    let (q, mut rx, counters) = queue(settings, None);
    assert_eq!(
        q.push(pattern(1, "A", "low"), Urgency::Normal),
        PushOutcome::Queued
    );
    assert_eq!(
        q.push(pattern(2, "A", "medium"), Urgency::Normal),
        PushOutcome::Queued
    );
    assert_eq!(
        q.push(pattern(3, "A", "high"), Urgency::Normal),
        PushOutcome::Queued
    );
    // Full: a low event is refused, a high one evicts the low, then the medium.
    assert_eq!(
        q.push(pattern(4, "A", "low"), Urgency::Normal),
        PushOutcome::Dropped
    );
    assert_eq!(
        q.push(pattern(5, "A", "high"), Urgency::Normal),
        PushOutcome::Queued
    );
    assert_eq!(
        q.push(pattern(6, "A", "medium"), Urgency::Normal),
        PushOutcome::Dropped
    );
    assert_eq!(
        q.push(pattern(7, "A", "high"), Urgency::Normal),
        PushOutcome::Queued
    );
    let c = counters.snapshot();
    assert_eq!((c.dropped_low, c.dropped_medium), (2, 2));
    // Only high events are left: one more high closes the connection.
    assert_eq!(
        q.push(pattern(8, "A", "high"), Urgency::Normal),
        PushOutcome::SlowConsumer
    );
    assert_eq!(counters.snapshot().slow_consumer_closes, 1);
    assert_eq!(
        q.push(pattern(9, "A", "critical"), Urgency::Normal),
        PushOutcome::Closed
    );
    match rx.recv().await.unwrap() {
        Outbound::Message(ServerMessage::Error { code, .. }) => {
            assert_eq!(code, ErrorCode::SlowConsumer)
        }
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        rx.recv().await,
        Some(Outbound::Close(CloseCode::SlowConsumer))
    ));
    assert!(rx.recv().await.is_none());
}

#[tokio::test]
async fn dropped_notice_resumes_before_the_first_drop() {
    let settings = QueueSettings {
        capacity: 1,
        ..no_window()
    };
    let (q, mut rx, _) = queue(settings, None);
    q.push(pattern(10, "A", "low"), Urgency::Normal);
    q.push(pattern(11, "A", "medium"), Urgency::Normal);
    match rx.recv().await.unwrap() {
        Outbound::Message(ServerMessage::Dropped { count, since }) => {
            assert_eq!((count, since), (1, Offset::new(1, 9)));
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(offsets(&rx.recv().await.unwrap()), vec![11]);
}

#[tokio::test]
async fn messages_then_replay_then_live() {
    let (q, mut rx, _) = queue(no_window(), None);
    q.push(pattern(9, "A", "critical"), Urgency::Normal);
    let replay: Vec<_> = (3..6).map(|i| pattern(i, "A", "low").prepared).collect();
    q.push_replay(replay, &"s1".into());
    q.push_message(ServerMessage::Subscribed {
        id: "s1".into(),
        recovered: 3,
    });
    assert!(matches!(
        rx.recv().await,
        Some(Outbound::Message(ServerMessage::Subscribed { .. }))
    ));
    let out = rx.recv().await.unwrap();
    assert_eq!(offsets(&out), vec![3, 4, 5]);
    if let Outbound::Batch(frames) = &out {
        let v: serde_json::Value = serde_json::from_slice(&frames[0].bytes).unwrap();
        assert_eq!(v["subs"], serde_json::json!(["s1"]));
    }
    assert_eq!(offsets(&rx.recv().await.unwrap()), vec![9]);
}

#[tokio::test(start_paused = true)]
async fn close_after_flush_sends_everything_first() {
    let (q, mut rx, _) = queue(QueueSettings::default(), None);
    q.push(pattern(1, "A", "low"), Urgency::Normal);
    q.push(pattern(2, "A", "low"), Urgency::Normal);
    q.close_after_flush(CloseCode::GoingAway);
    assert_eq!(
        q.push(pattern(3, "A", "low"), Urgency::Normal),
        PushOutcome::Closed
    );
    assert_eq!(offsets(&rx.recv().await.unwrap()), vec![1, 2]);
    assert!(matches!(
        rx.recv().await,
        Some(Outbound::Close(CloseCode::GoingAway))
    ));
    assert!(rx.recv().await.is_none());
}

#[tokio::test]
async fn a_dropped_receiver_closes_the_queue() {
    let (q, rx, _) = queue(no_window(), None);
    drop(rx);
    assert!(q.is_closed());
    assert_eq!(
        q.push(pattern(1, "A", "low"), Urgency::Normal),
        PushOutcome::Closed
    );
    assert!(q.is_empty());
}
