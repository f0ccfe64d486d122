//! Delivery benches: encoding an event's frame once, fanning it out to many
//! connection queues, and publishing through the whole hub.
//!
//! Each iteration hands one event to N queues; the queues are drained
//! outside the timed region (except in `drain`, which times the writer's
//! side: taking a batch out of a queue).

use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, BatchSize, BenchmarkId, Criterion, Throughput};
use tickcast_benches::events::PatternDetection;
use tickcast_core::broadcast::{
    encode_batch, EventFrame, FrameReceiver, Outbound, PreparedEvent, QueueSettings,
};
use tickcast_core::index::Recipient;
use tickcast_core::internals::{
    ConnectionQueue, DeliveryCounters, Route, ShardedBroadcaster, Urgency,
};
use tickcast_core::model::{ConnId, Filter, Offset, SubId};
use tickcast_core::protocol::subs_field;
use tickcast_core::routing::Strategy;
use tickcast_core::{Hub, HubConfig};

const AUDIENCES: [usize; 3] = [1, 100, 10_000];

fn event() -> tickcast_core::model::Event {
    PatternDetection::new("AAPL", "BreakoutBO").to_event()
}

fn settings() -> QueueSettings {
    QueueSettings::default()
        .with_capacity(1 << 20)
        .with_batch_window(Duration::ZERO)
}

fn encode(c: &mut Criterion) {
    let event = event();
    let mut seq = 0;
    // The event is moved in: its copy is made outside the measurement.
    c.bench_function("broadcast/prepare_event", |b| {
        b.iter_batched(
            || event.clone(),
            |event| {
                seq += 1;
                PreparedEvent::new(event, Offset::new(1, seq))
            },
            BatchSize::SmallInput,
        )
    });
    let subs: Vec<SubId> = vec!["s1".into()];
    c.bench_function("broadcast/subs_field", |b| {
        b.iter(|| black_box(subs_field(black_box(&subs))))
    });
}

struct Audience {
    broadcaster: ShardedBroadcaster,
    receivers: Vec<FrameReceiver>,
    route: Route,
}

fn audience(n: usize) -> Audience {
    let counters = Arc::new(DeliveryCounters::default());
    let broadcaster = ShardedBroadcaster::new(2, counters.clone());
    let mut receivers = Vec::with_capacity(n);
    let mut recipients = Vec::with_capacity(n);
    for i in 0..n {
        let (queue, rx) = ConnectionQueue::new(settings(), None, counters.clone());
        broadcaster.register(ConnId(i as u64), queue);
        receivers.push(rx);
        // Clients tend to reuse ids: most recipients share a subs list.
        let id: SubId = format!("s{}", i % 4).into();
        recipients.push(Recipient::new(
            ConnId(i as u64),
            std::iter::once(id).collect(),
        ));
    }
    let route = Route {
        strategy: Strategy::ContentBased,
        recipients: Arc::new(recipients),
    };
    Audience {
        broadcaster,
        receivers,
        route,
    }
}

fn drain(receivers: &mut [FrameReceiver]) -> usize {
    receivers
        .iter_mut()
        .map(|rx| std::iter::from_fn(|| rx.try_recv()).count())
        .sum()
}

fn fan_out(c: &mut Criterion) {
    let mut group = c.benchmark_group("broadcast/fan_out");
    for n in AUDIENCES {
        let mut a = audience(n);
        let event = event();
        group.throughput(Throughput::Elements(n as u64));
        let mut seq = 0;
        group.bench_with_input(BenchmarkId::from_parameter(n), &n, |b, _| {
            b.iter_custom(|iters| {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    seq += 1;
                    let prepared = Arc::new(PreparedEvent::new(event.clone(), Offset::new(1, seq)));
                    let start = Instant::now();
                    a.broadcaster.deliver(&prepared, &a.route);
                    total += start.elapsed();
                    drain(&mut a.receivers);
                }
                total
            })
        });
    }
    group.finish();
}

/// The writer's side: take what one publish queued, as `event` frames
/// (shared bytes) for single events or one `batch` frame for 10 events.
fn take(c: &mut Criterion) {
    let mut group = c.benchmark_group("broadcast/take");
    for per_queue in [1usize, 10] {
        let mut a = audience(1_000);
        let event = event();
        group.throughput(Throughput::Elements((1_000 * per_queue) as u64));
        let mut seq = 0;
        group.bench_with_input(
            BenchmarkId::from_parameter(per_queue),
            &per_queue,
            |b, &k| {
                b.iter_custom(|iters| {
                    let mut total = Duration::ZERO;
                    for _ in 0..iters {
                        for _ in 0..k {
                            seq += 1;
                            let p =
                                Arc::new(PreparedEvent::new(event.clone(), Offset::new(1, seq)));
                            a.broadcaster.deliver(&p, &a.route);
                        }
                        let start = Instant::now();
                        for rx in &mut a.receivers {
                            while let Some(out) = rx.try_recv() {
                                if let Outbound::Batch(frames) = out {
                                    black_box(encode_batch(&frames));
                                }
                            }
                        }
                        total += start.elapsed();
                    }
                    total
                })
            },
        );
    }
    group.finish();
}

/// What a critical event pays for taking the events batched before it
/// along (a connection's events leave in offset order): from its push to
/// its frame taken and encoded, with K normal events waiting in the
/// window ahead of it.
fn urgent_after_batched(c: &mut Criterion) {
    let mut group = c.benchmark_group("broadcast/urgent_after_batched");
    for ahead in [0usize, 10, 100] {
        let settings = settings()
            .with_batch_window(Duration::from_secs(3600))
            .with_max_batch(1_000);
        let counters = Arc::new(DeliveryCounters::default());
        let (queue, mut rx) = ConnectionQueue::new(settings, None, counters);
        let event = event();
        let mut seq = 0;
        let frame = |seq| {
            let p = Arc::new(PreparedEvent::new(event.clone(), Offset::new(1, seq)));
            EventFrame::new(p, &[])
        };
        group.bench_with_input(BenchmarkId::from_parameter(ahead), &ahead, |b, &k| {
            b.iter_custom(|iters| {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    for _ in 0..k {
                        seq += 1;
                        queue.push_quiet(frame(seq), Urgency::Normal);
                    }
                    seq += 1;
                    let urgent = frame(seq);
                    let start = Instant::now();
                    queue.push_quiet(urgent, Urgency::Urgent);
                    match rx.try_recv() {
                        Some(Outbound::Batch(frames)) => {
                            black_box(encode_batch(&frames));
                        }
                        other => {
                            black_box(other);
                        }
                    }
                    total += start.elapsed();
                }
                total
            })
        });
    }
    group.finish();
}

/// One publish through the hub (route-cache hit) to N subscribed
/// connections.
fn hub_publish(c: &mut Criterion) {
    let mut group = c.benchmark_group("hub/publish");
    for n in AUDIENCES {
        let mut config = HubConfig::immediate();
        config.rate_limit_per_user = 0;
        config.queue.capacity = 1 << 20;
        let hub = Hub::new(config);
        let filter: Filter = serde_json::from_str(r#"{"symbols":["AAPL"]}"#).unwrap_or_default();
        let mut conns: Vec<_> = (0..n)
            .map(|_| {
                let conn = hub.connect(None, hub.default_limits()).expect("connect");
                conn.handle
                    .subscribe("s1", filter.clone(), None)
                    .expect("subscribe");
                conn
            })
            .collect();
        let event = PatternDetection::new("AAPL", "BreakoutBO").to_event();
        group.throughput(Throughput::Elements(n as u64));
        group.bench_with_input(BenchmarkId::from_parameter(n), &n, |b, _| {
            b.iter_custom(|iters| {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    let e = event.clone();
                    let start = Instant::now();
                    black_box(hub.publish(e).ok());
                    total += start.elapsed();
                    for conn in &mut conns {
                        while conn.frames.try_recv().is_some() {}
                    }
                }
                total
            })
        });
        let stats = hub.stats();
        println!(
            "hub/publish/{n}: route cache hit rate {:.3}, publish p99 {:.1} us",
            stats.route_cache.hit_rate, stats.latency.publish.p99_us
        );
    }
    group.finish();
}

criterion_group!(
    benches,
    encode,
    fan_out,
    take,
    urgent_after_batched,
    hub_publish
);
criterion_main!(benches);
