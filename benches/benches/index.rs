//! Subscription index benches: matching one event against 100k users x 10
//! subscriptions, by audience size; insert + remove; and how the cost of a
//! fixed audience changes with the number of subscriptions.
//!
//! Target (design.md, Performance): p99 <= 20 us for an event with <= 100
//! recipients, and time linear in the recipients, not in the subscriptions.
//! `index/match` reports throughput in recipients per second.

use std::hint::black_box;
use std::time::Instant;

use criterion::measurement::WallTime;
use criterion::{
    criterion_group, criterion_main, BenchmarkGroup, BenchmarkId, Criterion, Throughput,
};
use tickcast_benches::events::PatternDetection;
use tickcast_benches::latency::LatencySummary;
use tickcast_benches::population::PopulationSpec;
use tickcast_benches::universe::PROBE_SYMBOL;
use tickcast_core::index::{InvertedIndex, SubscriptionIndex};
use tickcast_core::model::schema::tickstock;
use tickcast_core::model::{Event, Filter, Subscription};

/// The pattern of every benched event.
const PATTERN: &str = "BreakoutBO";

fn build(spec: &PopulationSpec) -> InvertedIndex {
    let start = Instant::now();
    let index = spec.build_index();
    println!(
        "population: {} users, {} subscriptions, built in {:.2?}",
        spec.users,
        index.len(),
        start.elapsed()
    );
    index
}

fn index_benches(c: &mut Criterion) {
    let spec = PopulationSpec::default();
    let mut index = build(&spec);
    match_by_audience(c, &spec, &index);
    insert_remove(c, &spec, &mut index);
    scaling(c, index);
}

/// One event, same shape, on three symbols: the probe (fixed small
/// audience), the least and the most popular symbol of the universe.
fn match_by_audience(c: &mut Criterion, spec: &PopulationSpec, index: &InvertedIndex) {
    let universe = spec.universe();
    let cases = [
        ("rare_symbol", PROBE_SYMBOL),
        ("tail_symbol", universe.coldest()),
        ("hot_symbol", universe.hottest()),
    ];
    let mut group = c.benchmark_group("index/match");
    for (name, symbol) in cases {
        let event = PatternDetection::new(symbol, PATTERN).to_event();
        let recipients = index.match_event(&event).len();
        println!("index/match/{name}: {symbol}, {recipients} recipients");
        group.throughput(Throughput::Elements(recipients as u64));
        // A hot match takes milliseconds: fewer, longer samples.
        group.sample_size(if recipients > 10_000 { 10 } else { 100 });
        group.bench_function(name, |b| {
            b.iter(|| black_box(index.match_event(black_box(&event))))
        });
        if name == "rare_symbol" {
            let latency = LatencySummary::measure(100_000, || {
                black_box(index.match_event(black_box(&event)));
            });
            println!("index/match/{name} per call: {latency}");
        }
    }
    group.finish();
}

/// The probe event (same 50 recipients) in populations of 10k, 100k and 1M
/// subscriptions. `rare_symbol` uses the default mix, whose broad
/// subscriptions (patterns or tiers only) are candidates of the event too and
/// grow with the population; `rare_symbol_watchlists_only` has none, so only
/// the size of the index changes.
fn scaling(c: &mut Criterion, full: InvertedIndex) {
    let event = PatternDetection::new(PROBE_SYMBOL, PATTERN).to_event();
    let mut group = c.benchmark_group("index/scaling");
    for users in [1_000, 10_000] {
        let index = build(&PopulationSpec::with_users(users));
        scaling_case(&mut group, "rare_symbol", &index, &event);
    }
    scaling_case(&mut group, "rare_symbol", &full, &event);
    drop(full);
    for users in [1_000, 10_000, 100_000] {
        let spec = PopulationSpec {
            pattern_only_share: 0.0,
            tier_only_share: 0.0,
            ..PopulationSpec::with_users(users)
        };
        let index = build(&spec);
        scaling_case(&mut group, "rare_symbol_watchlists_only", &index, &event);
    }
    group.finish();
}

fn scaling_case(
    group: &mut BenchmarkGroup<'_, WallTime>,
    name: &str,
    index: &InvertedIndex,
    event: &Event,
) {
    let recipients = index.match_event(event).len();
    println!(
        "index/scaling/{name}: {} subscriptions, {recipients} recipients",
        index.len()
    );
    group.throughput(Throughput::Elements(recipients as u64));
    group.bench_with_input(BenchmarkId::new(name, index.len()), index, |b, index| {
        b.iter(|| black_box(index.match_event(black_box(event))))
    });
}

/// A client adds an 11th subscription (two symbols, one of them the
/// hottest) and drops it again, on the full index.
fn insert_remove(c: &mut Criterion, spec: &PopulationSpec, index: &mut InvertedIndex) {
    let universe = spec.universe();
    let template = spec.subscriptions().next().expect("a population");
    let mut sub = Some(Subscription {
        id: "s-bench".into(),
        filter: tickstock::schema()
            .criteria(
                &Filter::new().values("symbols", [universe.hottest(), universe.symbol(42)]),
                16,
            )
            .expect("a valid filter"),
        ..template
    });
    c.bench_function("index/insert_remove", |b| {
        b.iter(|| {
            let new = sub.take().expect("the subscription is back");
            let (conn, id) = (new.conn, new.id.clone());
            black_box(index.insert(new));
            sub = index.remove(conn, &id);
        })
    });
}

criterion_group!(benches, index_benches);
criterion_main!(benches);
