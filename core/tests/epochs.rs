//! Offsets are unique per node run: two hubs started in the same
//! millisecond never take each other's offsets for their own.

mod common;

use std::time::{Duration, UNIX_EPOCH};

use bytes::Bytes;
use serde_json::json;
use tickcast_core::hub::{epoch, HubConfig};
use tickcast_core::model::{Event, Filter, Offset, DEFAULT_MAX_BODY_BYTES};
use tickcast_core::protocol::{ErrorCode, ServerMessage};
use tickcast_core::{Connection, Hub};

use common::drain;

fn hub_started_at(ms: u64) -> Hub {
    let mut config = HubConfig::immediate();
    config.rate_limit_per_user = 0;
    config.started_at = Some(UNIX_EPOCH + Duration::from_millis(ms));
    Hub::new(config)
}

fn event(n: u32) -> Event {
    let body = json!({"symbol": "AAPL", "pattern": "Doji", "event_id": n.to_string()});
    Event::from_json(Bytes::from(body.to_string()), None, DEFAULT_MAX_BODY_BYTES).unwrap()
}

/// Subscribes on `hub` from `since`: how many events were replayed, and
/// whether the hub answered `history_gone`.
fn resume(hub: &Hub, since: Offset) -> (usize, bool) {
    let Connection { handle, mut frames } = hub.connect(None, hub.default_limits()).unwrap();
    let recovered = handle
        .subscribe("s", Filter::default(), Some(since))
        .unwrap();
    let gone = drain(&mut frames).messages.iter().any(|m| {
        matches!(
            m,
            ServerMessage::Error {
                code: ErrorCode::HistoryGone,
                ..
            }
        )
    });
    (recovered, gone)
}

#[test]
fn hubs_started_in_the_same_millisecond_never_accept_each_others_offsets() {
    const START: u64 = 1_732_460_000_123;
    let a = hub_started_at(START);
    let b = hub_started_at(START);
    let a_offsets: Vec<Offset> = (0..50).map(|n| a.publish(event(n)).unwrap()).collect();
    let b_offsets: Vec<Offset> = (0..50).map(|n| b.publish(event(n)).unwrap()).collect();

    assert_ne!(a_offsets[0].major, b_offsets[0].major);
    // Both still read as the start time.
    assert_eq!(epoch::start_ms(a_offsets[0].major), START);
    assert_eq!(epoch::start_ms(b_offsets[0].major), START);

    // Every offset of one, and each run's `<epoch>-0` (what a welcome
    // frame gives before any event), is foreign to the other: replaying
    // from it answers history_gone, never a partial replay.
    let welcome_a = Offset::new(a_offsets[0].major, 0);
    let welcome_b = Offset::new(b_offsets[0].major, 0);
    for since in a_offsets.iter().step_by(7).chain([&welcome_a]) {
        assert_eq!(resume(&b, *since), (0, true), "b took a's {since}");
    }
    for since in b_offsets.iter().step_by(7).chain([&welcome_b]) {
        assert_eq!(resume(&a, *since), (0, true), "a took b's {since}");
    }
    // Their own offsets replay as before.
    assert_eq!(resume(&a, a_offsets[9]), (40, false));
    assert_eq!(resume(&b, welcome_b), (50, false));
}
