//! `Hub::burst`: events published in a burst are queued at once, and their
//! recipients' writers are woken once, when the burst ends.

mod common;

use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};
use std::time::Duration;

use bytes::Bytes;
use tickcast_core::model::{Event, DEFAULT_MAX_BODY_BYTES};

/// Counts its wakeups.
#[derive(Default)]
struct Counting(AtomicUsize);

impl Wake for Counting {
    fn wake(self: Arc<Self>) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

fn event(symbol: &str) -> Event {
    let body = format!(r#"{{"pattern":"Doji","symbol":"{symbol}","tier":"daily"}}"#);
    Event::from_json(Bytes::from(body), None, DEFAULT_MAX_BODY_BYTES).unwrap()
}

#[tokio::test]
async fn a_burst_wakes_each_writer_once_when_it_ends() {
    let (hub, mut conn) = common::hub_with_catch_all();
    // The welcome and `subscribed` first, then the writer waits.
    common::drain_until_idle(&mut conn.frames, Duration::from_millis(50)).await;
    let counting = Arc::new(Counting::default());
    let waker = Waker::from(counting.clone());
    let mut cx = Context::from_waker(&waker);
    {
        let mut recv = std::pin::pin!(conn.frames.recv());
        assert!(recv.as_mut().poll(&mut cx).is_pending());

        let mut burst = hub.burst();
        for symbol in ["AAPL", "MSFT", "NVDA"] {
            burst.publish(event(symbol)).unwrap();
        }
        assert_eq!(
            counting.0.load(Ordering::SeqCst),
            0,
            "nobody woken mid-burst"
        );
        drop(burst);
        assert_eq!(
            counting.0.load(Ordering::SeqCst),
            1,
            "woken once at the end"
        );
        assert!(matches!(recv.as_mut().poll(&mut cx), Poll::Ready(Some(_))));
    }
    let rest = common::drain_until_idle(&mut conn.frames, Duration::from_millis(50)).await;
    assert_eq!(
        hub.stats().delivery.enqueued,
        3,
        "all three were queued ({} more frames after the first)",
        rest.events.len()
    );
}
