//! Router benches: the route cache's hit and miss paths, and a
//! Zipf-distributed stream of events, on 10k users x 10 subscriptions.
//!
//! Targets (design.md, Performance): a cache hit in p99 <= 5 us; a hit rate
//! >= 90 % on Zipf-distributed symbols.

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion};
use rand::rngs::StdRng;
use rand::SeedableRng;
use tickcast_benches::events::{DetectionStream, PatternDetection};
use tickcast_benches::latency::LatencySummary;
use tickcast_benches::population::PopulationSpec;
use tickcast_benches::universe::PROBE_SYMBOL;
use tickcast_core::index::InvertedIndex;
use tickcast_core::internals::IndexRouter;
use tickcast_core::model::Event;
use tickcast_core::routing::{CacheConfig, RoutingRules};

/// Events in the Zipf stream; the bench cycles through them.
const STREAM_LEN: usize = 50_000;
/// Seed of the stream (the population has its own).
const STREAM_SEED: u64 = 7;

fn router(spec: &PopulationSpec, cache: CacheConfig) -> IndexRouter<InvertedIndex> {
    let router = IndexRouter::new(
        InvertedIndex::new(&tickcast_core::model::schema::tickstock::schema()),
        RoutingRules::default(),
        cache,
    );
    for sub in spec.subscriptions() {
        router.subscribe(sub);
    }
    router
}

fn route_benches(c: &mut Criterion) {
    let spec = PopulationSpec::with_users(10_000);
    println!(
        "population: {} users, {} subscriptions",
        spec.users,
        spec.subscription_count()
    );
    let universe = spec.universe();
    let cases = [
        (
            "rare_symbol",
            PatternDetection::new(PROBE_SYMBOL, "BreakoutBO").to_event(),
        ),
        (
            "hot_symbol",
            PatternDetection::new(universe.hottest(), "BreakoutBO").to_event(),
        ),
    ];
    hit_and_miss(c, &spec, &cases);
    zipf_stream(c, &spec);
    zipf_symbols(c, &spec);
}

/// The same event again and again: answered by the cache (`cache_hit`), or
/// matched every time (`cache_miss`, cache off).
fn hit_and_miss(c: &mut Criterion, spec: &PopulationSpec, cases: &[(&str, Event)]) {
    let cached = router(spec, CacheConfig::default());
    let mut group = c.benchmark_group("route/cache_hit");
    for (name, event) in cases {
        let recipients = cached.route(event).recipients.len();
        println!("route/*/{name}: {recipients} recipients");
        group.bench_function(*name, |b| {
            b.iter(|| black_box(cached.route(black_box(event))))
        });
        let latency = LatencySummary::measure(100_000, || {
            black_box(cached.route(black_box(event)));
        });
        println!("route/cache_hit/{name} per call: {latency}");
    }
    group.finish();
    drop(cached);

    let uncached = router(spec, CacheConfig::default().with_capacity(0));
    let mut group = c.benchmark_group("route/cache_miss");
    for (name, event) in cases {
        group.bench_function(*name, |b| {
            b.iter(|| black_box(uncached.route(black_box(event))))
        });
    }
    group.finish();
}

/// Routes a stream of detections with the fixtures' mix (symbols by Zipf
/// popularity), cycling through `STREAM_LEN` of them, with the default cache.
fn zipf_stream(c: &mut Criterion, spec: &PopulationSpec) {
    let events = DetectionStream::new(spec.universe(), STREAM_SEED).events(STREAM_LEN);
    // The best any cache could do on this stream: one cold pass with an
    // unbounded cache, whose misses are the stream's distinct route keys.
    // The key does not depend on who subscribed, only on the distinct
    // confidence floors, which a small population of the same spec has
    // too; so this pass is cheap.
    let small = PopulationSpec {
        probe_audience: 0,
        ..PopulationSpec::with_users(1_000)
    };
    let unbounded = router(&small, CacheConfig::default().with_capacity(1 << 32));
    for event in &events {
        black_box(unbounded.route(event));
    }
    let bound = unbounded.cache_counts();
    println!(
        "route/zipf_stream key space: {} distinct route keys in {STREAM_LEN} events, \
         so at most {:.1} % hits on one cold pass",
        bound.misses,
        bound.hit_rate() * 100.0
    );

    route_stream(c, "route/zipf_stream", spec, &events);
}

/// Routes `events` round and round with a fresh router (so its counts are
/// those of this bench, warm-up included) and prints the cache hit rate.
fn route_stream(c: &mut Criterion, name: &str, spec: &PopulationSpec, events: &[Event]) {
    let router = router(spec, CacheConfig::default());
    let mut next = 0;
    c.bench_function(name, |b| {
        b.iter(|| {
            let event = &events[next % events.len()];
            next += 1;
            black_box(router.route(event))
        })
    });
    let run = router.cache_counts();
    println!(
        "{name}: {} routes, cache hit rate {:.1} %",
        run.hits + run.misses,
        run.hit_rate() * 100.0
    );
}

/// Routes detections that differ only by symbol (Zipf popularity), the
/// stream of the design's hit-rate target: the key space is the universe.
fn zipf_symbols(c: &mut Criterion, spec: &PopulationSpec) {
    let universe = spec.universe();
    let mut rng = StdRng::seed_from_u64(STREAM_SEED);
    let events: Vec<Event> = (0..STREAM_LEN)
        .map(|_| PatternDetection::new(universe.sample(&mut rng), "BreakoutBO").to_event())
        .collect();
    route_stream(c, "route/zipf_symbols", spec, &events);
}

criterion_group!(benches, route_benches);
criterion_main!(benches);
