//! Behaviour of [`ConnectionQueue`] and [`FrameReceiver`].

use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;

use super::queue::{ConnectionQueue, PushOutcome, Urgency};
use super::state::Held;
use super::*;
use crate::model::{Event, Offset, SubId};
use crate::protocol::{CloseCode, ErrorCode, ServerMessage};

fn frame(seq: u64, json: &str) -> EventFrame {
    let event = Event::from_json(Bytes::copy_from_slice(json.as_bytes()), None, 1 << 20).unwrap();
    let prepared = Arc::new(PreparedEvent::new(event, Offset::new(1, seq)));
    EventFrame::new(prepared, &[])
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

fn resumes(out: &Outbound) -> Vec<u64> {
    match out {
        Outbound::Event(f) => vec![f.resume.minor],
        Outbound::Batch(fs) => fs.iter().map(|f| f.resume.minor).collect(),
        other => panic!("expected events, got {other:?}"),
    }
}

#[tokio::test]
async fn a_flush_goes_in_offset_order_whatever_the_priority() {
    let (q, mut rx, counters) = queue(no_window(), None);
    q.push(pattern(1, "A", "low"), Urgency::Normal);
    q.push(pattern(2, "B", "high"), Urgency::Normal);
    q.push(pattern(3, "C", "medium"), Urgency::Normal);
    q.push(pattern(4, "D", "high"), Urgency::Normal);
    let out = rx.recv().await.unwrap();
    assert!(matches!(out, Outbound::Batch(_)));
    assert_eq!(offsets(&out), vec![1, 2, 3, 4]);
    // Each event's resume point covers it and everything before it.
    assert_eq!(resumes(&out), vec![1, 2, 3, 4]);
    assert_eq!(counters.snapshot().batches, 1);
    assert_eq!(counters.snapshot().delivered, 4);
}

#[tokio::test]
async fn a_lone_event_goes_out_as_an_event_frame_sharing_its_bytes() {
    let (q, mut rx, _) = queue(no_window(), None);
    let f = pattern(1, "A", "low");
    let ptr = f.prepared.object().as_ptr();
    q.push(f, Urgency::Normal);
    match rx.recv().await.unwrap() {
        Outbound::Event(out) => assert_eq!(out.prepared.object().as_ptr(), ptr),
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
    // The batched event older than the critical one goes out with it, in
    // offset order: the last offset received is a safe resume point.
    q.push(pattern(2, "B", "critical"), Urgency::Normal);
    let out = rx.try_recv().unwrap();
    assert_eq!((offsets(&out), resumes(&out)), (vec![1, 2], vec![1, 2]));
    q.push(pattern(3, "C", "low"), Urgency::Urgent);
    assert_eq!(offsets(&rx.try_recv().unwrap()), vec![3]);
    // A low event waits for its window.
    q.push(pattern(4, "D", "low"), Urgency::Normal);
    assert!(rx.try_recv().is_none());
    let start = tokio::time::Instant::now();
    assert_eq!(offsets(&rx.recv().await.unwrap()), vec![4]);
    assert!(start.elapsed() >= Duration::from_millis(100));
}

#[tokio::test]
async fn older_batched_events_beyond_one_batch_go_before_the_urgent_one() {
    let settings = QueueSettings {
        max_batch: 3,
        batch_window: Duration::from_secs(60),
        ..QueueSettings::default()
    };
    let (q, mut rx, _) = queue(settings, None);
    for seq in 1..=4 {
        q.push(pattern(seq, "A", "low"), Urgency::Normal);
    }
    q.push(pattern(5, "B", "critical"), Urgency::Normal);
    let first = rx.try_recv().unwrap();
    // Event 4 is still queued: the safe point stays below it.
    assert_eq!(
        (offsets(&first), resumes(&first)),
        (vec![1, 2, 3], vec![1, 2, 3])
    );
    let second = rx.try_recv().unwrap();
    assert_eq!(
        (offsets(&second), resumes(&second)),
        (vec![4, 5], vec![4, 5])
    );
    assert!(rx.try_recv().is_none());
}

#[tokio::test]
async fn replays_of_several_subscriptions_go_out_merged_in_offset_order() {
    let settings = QueueSettings {
        max_batch: 100,
        ..no_window()
    };
    let (q, mut rx, _) = queue(settings, None);
    let prepared = |seq| pattern(seq, "A", "low").prepared;
    q.push_replay([1, 3, 5].map(prepared), &SubId::from("a"));
    q.push_replay([2, 3, 6].map(prepared), &SubId::from("b"));
    let out = rx.try_recv().unwrap();
    assert_eq!(offsets(&out), vec![1, 2, 3, 3, 5, 6]);
    assert_eq!(resumes(&out), vec![1, 2, 2, 4, 5, 6]);
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

    let one = pattern(0, "A", "low").encoded_len();
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
    // The critical event takes the older batched ones with it; the event
    // held for the rate limit keeps the resume point below it.
    let urgent = rx.recv().await.unwrap();
    assert_eq!(
        (offsets(&urgent), resumes(&urgent)),
        (vec![1, 2, 6], vec![1, 3, 3])
    );
    match rx.recv().await.unwrap() {
        Outbound::Message(ServerMessage::Dropped { count, since }) => {
            assert_eq!(count, 1);
            assert_eq!(since, Offset::new(1, 4));
        }
        other => panic!("{other:?}"),
    }
    // The held event for key A is the latest one, released when the limit allows.
    let released = tokio::time::timeout(Duration::from_secs(5), rx.recv())
        .await
        .unwrap()
        .unwrap();
    assert_eq!((offsets(&released), resumes(&released)), (vec![4], vec![6]));
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
        let v: serde_json::Value = serde_json::from_slice(&frames[0].to_json()).unwrap();
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
    assert_eq!(q.held().events, 0);
}

// Bounds: every part of the queue is bounded in items and bytes.

/// An event of exactly `total` frame bytes (health events have no
/// conflation key).
fn sized(seq: u64, priority: &str, total: usize) -> EventFrame {
    let padded = |pad: usize| {
        frame(
            seq,
            &format!(
                r#"{{"event_type":"system_health","priority":"{priority}","pad":"{}"}}"#,
                "x".repeat(pad)
            ),
        )
    };
    let base = padded(0).encoded_len();
    assert!(total >= base, "{total} < {base}");
    let f = padded(total - base);
    assert_eq!(f.encoded_len(), total);
    f
}

fn pong(ts_chars: usize) -> ServerMessage {
    ServerMessage::Pong {
        ts: Some(serde_json::Value::String("t".repeat(ts_chars))),
    }
}

/// Reads everything available; fails on a batch window wait.
fn drain(rx: &mut FrameReceiver) -> Vec<Outbound> {
    std::iter::from_fn(|| rx.try_recv()).collect()
}

/// The last two items are the `slow_consumer` error and close 4008.
fn assert_closed_slow(out: &[Outbound]) {
    match out {
        [.., Outbound::Message(ServerMessage::Error { code, .. }), Outbound::Close(close)] => {
            assert_eq!(*code, ErrorCode::SlowConsumer);
            assert_eq!(*close, CloseCode::SlowConsumer);
        }
        other => panic!("not closed as a slow consumer: {other:?}"),
    }
}

/// Nothing held but the final `slow_consumer` error.
fn assert_freed(q: &ConnectionQueue) {
    let held = q.held();
    assert_eq!(
        (
            held.events,
            held.event_bytes,
            held.replay,
            held.replay_bytes
        ),
        (0, 0, 0, 0),
        "{held:?}"
    );
    assert_eq!(held.messages, 1, "{held:?}");
}

#[tokio::test]
async fn messages_past_the_item_bound_close_4008_and_free_everything() {
    let settings = QueueSettings {
        message_capacity: 3,
        ..no_window()
    };
    let (q, mut rx, counters) = queue(settings, None);
    q.push(pattern(1, "A", "low"), Urgency::Normal);
    q.push_replay([pattern(2, "A", "low").prepared], &"s1".into());
    for _ in 0..3 {
        q.push_message(pong(1));
    }
    assert!(!q.is_closed());
    assert_eq!(q.held().messages, 3);
    q.push_message(pong(1));
    assert!(q.is_closed());
    assert_eq!(counters.snapshot().slow_consumer_closes, 1);
    assert_freed(&q);
    // Nothing more is taken once closed.
    q.push_message(pong(1));
    q.push_replay([pattern(3, "A", "low").prepared], &"s1".into());
    assert_freed(&q);
    let out = drain(&mut rx);
    assert_eq!(out.len(), 2, "{out:?}");
    assert_closed_slow(&out);
    assert!(rx.recv().await.is_none());
}

#[test]
fn messages_past_the_byte_bound_close_4008() {
    let one = pong(1000).to_json().len();
    let settings = QueueSettings {
        message_capacity_bytes: 2 * one,
        ..no_window()
    };
    let (q, mut rx, counters) = queue(settings, None);
    q.push_message(pong(1000));
    q.push_message(pong(1000));
    assert_eq!(q.held().message_bytes, 2 * one, "counted as encoded");
    assert!(!q.is_closed());
    q.push_message(pong(1));
    assert!(q.is_closed());
    assert_eq!(counters.snapshot().slow_consumer_closes, 1);
    assert_freed(&q);
    assert_closed_slow(&drain(&mut rx));
}

#[test]
fn one_message_larger_than_the_byte_bound_still_goes_out() {
    let settings = QueueSettings {
        message_capacity_bytes: 100,
        ..no_window()
    };
    let (q, mut rx, _) = queue(settings, None);
    q.push_message(pong(10_000));
    assert!(!q.is_closed());
    match rx.try_recv() {
        Some(Outbound::Message(m)) => assert_eq!(m, pong(10_000)),
        other => panic!("{other:?}"),
    }
    assert_eq!(q.held(), Held::default(), "sent messages are uncounted");
    // Once it is out, the next one is alone again.
    q.push_message(pong(10_000));
    assert!(!q.is_closed());
    // But a second one behind it is too much.
    q.push_message(pong(1));
    assert!(q.is_closed());
}

#[test]
fn replay_past_the_item_bound_closes_4008_and_frees_everything() {
    let settings = QueueSettings {
        replay_capacity: 5,
        ..no_window()
    };
    let (q, mut rx, counters) = queue(settings, None);
    let events = |range: std::ops::Range<u64>| -> Vec<_> {
        range.map(|i| pattern(i, "A", "low").prepared).collect()
    };
    q.push_replay(events(10..15), &"s1".into());
    assert!(!q.is_closed());
    assert_eq!(q.held().replay, 5);
    // A second subscription's replay does not fit beside the first.
    q.push_replay(events(10..11), &"s2".into());
    assert!(q.is_closed());
    assert_eq!(counters.snapshot().slow_consumer_closes, 1);
    assert_freed(&q);
    let out = drain(&mut rx);
    assert_eq!(out.len(), 2, "no replay goes out: {out:?}");
    assert_closed_slow(&out);
    assert_eq!(counters.snapshot().replayed, 0);
}

#[test]
fn replay_past_the_byte_bound_closes_4008() {
    let events: Vec<_> = (10..13).map(|i| pattern(i, "A", "low").prepared).collect();
    let sub: SubId = "s1".into();
    let cost = events[0].frame_len(std::slice::from_ref(&sub));
    let settings = QueueSettings {
        replay_capacity_bytes: 2 * cost,
        ..no_window()
    };
    let (q, mut rx, _) = queue(settings, None);
    q.push_replay(events[..2].iter().cloned(), &sub);
    assert_eq!(q.held().replay_bytes, 2 * cost);
    assert!(!q.is_closed());
    q.push_replay(events.iter().cloned(), &"s2".into());
    assert!(q.is_closed());
    assert_freed(&q);
    assert_closed_slow(&drain(&mut rx));
}

#[test]
fn a_re_subscribe_replaces_the_pending_replay_of_its_id() {
    // Room for exactly one replay: a thousand re-subscribes must fit.
    let settings = QueueSettings {
        replay_capacity: 10,
        ..no_window()
    };
    let (q, mut rx, counters) = queue(settings, None);
    let history: Vec<_> = (10..20).map(|i| pattern(i, "A", "low").prepared).collect();
    let s1: SubId = "s1".into();
    for _ in 0..1000 {
        q.push_replay(history.iter().cloned(), &s1);
    }
    assert!(!q.is_closed());
    let one = q.held();
    assert_eq!(one.replay, 10);
    assert_eq!(
        one.replay_bytes,
        history
            .iter()
            .map(|e| e.frame_len(std::slice::from_ref(&s1)))
            .sum::<usize>()
    );
    // The last subscribe's replay, once, in offset order.
    let got: Vec<u64> = drain(&mut rx).iter().flat_map(offsets).collect();
    assert_eq!(got, (10..20).collect::<Vec<_>>());
    assert_eq!(counters.snapshot().replayed, 10);
    assert_eq!(q.held(), Held::default());
}

#[test]
fn a_replacing_replay_keeps_the_other_subscriptions_in_order() {
    let (q, mut rx, _) = queue(no_window(), None);
    let events = |range: std::ops::Range<u64>| -> Vec<_> {
        range.map(|i| pattern(i, "A", "low").prepared).collect()
    };
    q.push_replay(events(10..13), &"s1".into());
    q.push_replay(events(20..23), &"s2".into());
    q.push_replay(events(30..32), &"s1".into());
    q.push_replay(events(40..42), &"s3".into());
    q.drop_replay("s3");
    let mut seen: Vec<(u64, serde_json::Value)> = Vec::new();
    for out in drain(&mut rx) {
        let frames = match out {
            Outbound::Event(f) => vec![f],
            Outbound::Batch(fs) => fs,
            other => panic!("{other:?}"),
        };
        for f in frames {
            let v: serde_json::Value = serde_json::from_slice(&f.to_json()).unwrap();
            seen.push((f.offset().minor, v["subs"].clone()));
        }
    }
    let expected = [(20, "s2"), (21, "s2"), (22, "s2"), (30, "s1"), (31, "s1")];
    let expected: Vec<_> = expected
        .iter()
        .map(|(o, s)| (*o, serde_json::json!([s])))
        .collect();
    assert_eq!(seen, expected);
    assert_eq!(q.held(), Held::default());
}

#[test]
fn urgent_events_are_bounded_in_items() {
    let settings = QueueSettings {
        capacity: 2,
        ..no_window()
    };
    let (q, mut rx, counters) = queue(settings, None);
    // priority_first events of low priority are urgent but droppable.
    assert_eq!(
        q.push(pattern(1, "A", "low"), Urgency::Urgent),
        PushOutcome::Queued
    );
    assert_eq!(
        q.push(pattern(2, "A", "high"), Urgency::Urgent),
        PushOutcome::Queued
    );
    assert_eq!(
        q.push(pattern(3, "A", "low"), Urgency::Urgent),
        PushOutcome::Dropped
    );
    assert_eq!(q.held().events, 2);
    // Nothing batched to drop for a critical one: the connection goes.
    assert_eq!(
        q.push(pattern(4, "A", "critical"), Urgency::Normal),
        PushOutcome::SlowConsumer
    );
    assert_eq!(counters.snapshot().slow_consumer_closes, 1);
    assert_freed(&q);
    let out = drain(&mut rx);
    assert_eq!(out.len(), 2, "{out:?}");
    assert_closed_slow(&out);
}

#[test]
fn urgent_events_are_bounded_in_bytes() {
    let settings = QueueSettings {
        capacity_bytes: 2000,
        ..no_window()
    };
    let (q, mut rx, _) = queue(settings, None);
    assert_eq!(
        q.push(sized(11, "critical", 900), Urgency::Normal),
        PushOutcome::Queued
    );
    assert_eq!(
        q.push(sized(12, "critical", 900), Urgency::Normal),
        PushOutcome::Queued
    );
    assert_eq!(q.held().event_bytes, 1800);
    assert_eq!(
        q.push(sized(13, "low", 300), Urgency::Urgent),
        PushOutcome::Dropped,
        "over the byte bound"
    );
    assert_eq!(
        q.push(sized(14, "low", 200), Urgency::Urgent),
        PushOutcome::Queued
    );
    assert_eq!(
        q.push(sized(15, "critical", 300), Urgency::Normal),
        PushOutcome::SlowConsumer
    );
    assert_freed(&q);
    assert_closed_slow(&drain(&mut rx));
}

#[test]
fn batched_events_past_the_byte_bound_drop_low_as_many_as_it_takes() {
    let settings = QueueSettings {
        capacity_bytes: 3000,
        ..no_window()
    };
    let (q, mut rx, counters) = queue(settings, None);
    for seq in 11..14 {
        assert_eq!(
            q.push_quiet(sized(seq, "low", 1000), Urgency::Normal),
            PushOutcome::Queued
        );
    }
    // 1,500 bytes of high: two low events make room.
    assert_eq!(
        q.push_quiet(sized(14, "high", 1500), Urgency::Normal),
        PushOutcome::Queued
    );
    let held = q.held();
    assert_eq!((held.events, held.event_bytes), (2, 2500));
    assert_eq!(counters.snapshot().dropped_low, 2);
    // A medium event that would not fit even with the last low event gone
    // is refused, and the low event stays.
    assert_eq!(
        q.push_quiet(sized(15, "medium", 1600), Urgency::Normal),
        PushOutcome::Dropped
    );
    let c = counters.snapshot();
    assert_eq!((c.dropped_low, c.dropped_medium), (2, 1));
    assert_eq!(q.held().events, 2);
    let out = drain(&mut rx);
    match &out[0] {
        Outbound::Message(ServerMessage::Dropped { count, since }) => {
            assert_eq!((*count, *since), (3, Offset::new(1, 10)));
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(offsets(&out[1]), vec![13, 14]);
    assert_eq!(q.held(), Held::default());
}

#[test]
fn a_high_event_that_no_drop_makes_room_for_closes_4008() {
    let settings = QueueSettings {
        capacity_bytes: 3000,
        ..no_window()
    };
    let (q, mut rx, counters) = queue(settings, None);
    q.push_quiet(sized(11, "low", 1000), Urgency::Normal);
    q.push_quiet(sized(12, "high", 1500), Urgency::Normal);
    // Dropping the low event would leave 1,500 + 1,600 > 3,000: the
    // connection is closed rather than the low event dropped in vain.
    assert_eq!(
        q.push_quiet(sized(13, "high", 1600), Urgency::Normal),
        PushOutcome::SlowConsumer
    );
    assert_eq!(counters.snapshot().dropped_low, 0);
    assert_eq!(counters.snapshot().slow_consumer_closes, 1);
    assert_freed(&q);
    assert_closed_slow(&drain(&mut rx));
}

#[test]
fn one_event_larger_than_the_byte_bound_still_goes_out() {
    let settings = QueueSettings {
        capacity_bytes: 500,
        ..no_window()
    };
    let (q, mut rx, _) = queue(settings, None);
    assert_eq!(
        q.push(sized(11, "high", 2000), Urgency::Normal),
        PushOutcome::Queued
    );
    assert_eq!(offsets(&rx.try_recv().unwrap()), vec![11]);
    assert_eq!(q.held(), Held::default());
}

#[tokio::test]
async fn events_held_for_the_rate_limit_stay_one_per_key_and_are_counted() {
    let (q, mut rx, _) = queue(no_window(), Some(1));
    assert_eq!(
        q.push(pattern(1, "A", "low"), Urgency::Normal),
        PushOutcome::Queued
    );
    let mut last = 0;
    for seq in 2..200 {
        assert_eq!(
            q.push(pattern(seq, "A", "low"), Urgency::Normal),
            PushOutcome::Conflated
        );
        last = seq;
    }
    let held = q.held();
    // The first one queued, and the latest of the key held.
    let expected = pattern(1, "A", "low").encoded_len() + pattern(last, "A", "low").encoded_len();
    assert_eq!((held.events, held.event_bytes), (2, expected));
    assert_eq!(offsets(&rx.recv().await.unwrap()), vec![1]);
}

/// One thing a client or a publisher can do to a queue.
#[derive(Debug, Clone)]
enum Op {
    Event {
        priority: u8,
        urgent: bool,
        pad: usize,
    },
    Message {
        ts: usize,
    },
    Replay {
        sub: u8,
        events: usize,
    },
    DropReplay {
        sub: u8,
    },
    Read {
        items: usize,
    },
}

fn op() -> impl proptest::strategy::Strategy<Value = Op> {
    use proptest::prelude::*;
    prop_oneof![
        4 => (0u8..4, any::<bool>(), 0usize..600)
            .prop_map(|(priority, urgent, pad)| Op::Event { priority, urgent, pad }),
        2 => (0usize..400).prop_map(|ts| Op::Message { ts }),
        2 => (0u8..3, 0usize..12).prop_map(|(sub, events)| Op::Replay { sub, events }),
        1 => (0u8..3).prop_map(|sub| Op::DropReplay { sub }),
        2 => (0usize..6).prop_map(|items| Op::Read { items }),
    ]
}

/// Event and replay frame bytes, and protocol-message bytes (as encoded),
/// of what came out; `dropped` notices are made at reading time, never
/// held, so they are left out.
fn weigh(out: &[Outbound]) -> (usize, usize) {
    let mut frames = 0;
    let mut messages = 0;
    for item in out {
        match item {
            Outbound::Event(f) => frames += f.encoded_len(),
            Outbound::Batch(fs) => frames += fs.iter().map(|f| f.encoded_len()).sum::<usize>(),
            Outbound::Message(ServerMessage::Dropped { .. }) | Outbound::Close(_) => {}
            Outbound::Message(m) => messages += m.to_json().len(),
        }
    }
    (frames, messages)
}

proptest::proptest! {
    /// Whatever happens, each part stays within its bounds (an empty part
    /// takes one item of any size), and what a queue counts is exactly
    /// what comes out of it.
    #[test]
    fn bounds_hold_and_the_count_is_exact(ops in proptest::collection::vec(op(), 1..120)) {
        let settings = QueueSettings {
            capacity: 6,
            capacity_bytes: 2_000,
            message_capacity: 5,
            message_capacity_bytes: 1_200,
            replay_capacity: 15,
            replay_capacity_bytes: 4_000,
            ..no_window()
        };
        let (q, mut rx, _) = queue(settings, None);
        let history: Vec<_> = (10..22).map(|i| pattern(i, "A", "low").prepared).collect();
        let priorities = ["low", "medium", "high", "critical"];
        let mut seq = 100;
        for op in ops {
            match op {
                Op::Event { priority, urgent, pad } => {
                    seq += 1;
                    let p = priorities[usize::from(priority)];
                    let f = frame(seq, &format!(
                        r#"{{"event_type":"system_health","priority":"{p}","pad":"{}"}}"#,
                        "x".repeat(pad)
                    ));
                    let urgency = if urgent { Urgency::Urgent } else { Urgency::Normal };
                    q.push(f, urgency);
                }
                Op::Message { ts } => q.push_message(pong(ts)),
                Op::Replay { sub, events } => {
                    q.push_replay(history[..events].iter().cloned(), &format!("s{sub}").into());
                }
                Op::DropReplay { sub } => q.drop_replay(&format!("s{sub}")),
                Op::Read { items } => {
                    for _ in 0..items {
                        rx.try_recv();
                    }
                }
            }
            let h = q.held();
            proptest::prop_assert!(h.events <= settings.capacity, "{h:?}");
            proptest::prop_assert!(h.events <= 1 || h.event_bytes <= settings.capacity_bytes, "{h:?}");
            proptest::prop_assert!(h.messages <= settings.message_capacity, "{h:?}");
            proptest::prop_assert!(
                h.messages <= 1 || h.message_bytes <= settings.message_capacity_bytes, "{h:?}"
            );
            proptest::prop_assert!(h.replay <= settings.replay_capacity, "{h:?}");
            proptest::prop_assert!(
                h.replay <= 1 || h.replay_bytes <= settings.replay_capacity_bytes, "{h:?}"
            );
            if q.is_closed() {
                break;
            }
        }
        let before = q.held();
        let out = drain(&mut rx);
        let (frames, messages) = weigh(&out);
        proptest::prop_assert_eq!(frames, before.event_bytes + before.replay_bytes);
        proptest::prop_assert_eq!(messages, before.message_bytes);
        proptest::prop_assert_eq!(q.held(), Held::default());
    }
}

// Resume points: whatever the priorities, drops and batching, no event at
// or below a frame's resume offset is delivered after that frame.

mod resume_properties {
    use proptest::prelude::{any, prop_assert, prop_oneof, proptest, Just, Strategy};

    use super::*;

    #[derive(Debug, Clone)]
    enum Op {
        Push { priority: usize, urgent: bool },
        Recv,
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            3 => (0..4usize, any::<bool>()).prop_map(|(priority, urgent)| Op::Push { priority, urgent }),
            1 => Just(Op::Recv),
        ]
    }

    const PRIORITIES: [&str; 4] = ["low", "medium", "high", "critical"];

    /// Every event frame taken from `rx` now, flattened in delivery order,
    /// as (offset, resume).
    fn take_all(rx: &mut FrameReceiver, out: &mut Vec<(Offset, Offset)>) {
        while let Some(next) = rx.try_recv() {
            match next {
                Outbound::Event(f) => out.push((f.offset(), f.resume)),
                Outbound::Batch(fs) => out.extend(fs.iter().map(|f| (f.offset(), f.resume))),
                Outbound::Message(_) | Outbound::Close(_) => {}
            }
        }
    }

    proptest! {
        #[test]
        fn no_event_at_or_below_a_resume_point_comes_after_it(
            ops in proptest::collection::vec(op(), 1..120),
        ) {
            let settings = QueueSettings {
                capacity: 6,
                max_batch: 3,
                batch_window: Duration::from_secs(3600),
                ..QueueSettings::default()
            };
            let (q, mut rx, _) = queue(settings, None);
            let mut delivered = Vec::new();
            for (seq, op) in (1..).zip(ops) {
                match op {
                    Op::Push { priority, urgent } => {
                        let urgency = if urgent { Urgency::Urgent } else { Urgency::Normal };
                        // Distinct symbols: no conflation in this property.
                        q.push(pattern(seq, &format!("S{seq}"), PRIORITIES[priority]), urgency);
                    }
                    Op::Recv => take_all(&mut rx, &mut delivered),
                }
            }
            q.close_after_flush(CloseCode::GoingAway);
            take_all(&mut rx, &mut delivered);
            let mut newest = None;
            for (i, (offset, resume)) in delivered.iter().enumerate() {
                newest = newest.max(Some(*offset));
                // Resuming from here would not miss a later delivery...
                for (later, _) in &delivered[i + 1..] {
                    prop_assert!(later > resume, "{later} delivered after resume {resume}");
                }
                // ...nor re-send what was delivered up to here.
                prop_assert!(Some(*resume) >= newest, "resume {resume} below {newest:?}");
            }
        }
    }
}
