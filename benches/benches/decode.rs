//! Decode bench: TickStockPL's sample bodies (`testdata/fixtures/
//! tickstockpl_events.jsonl`) into events of the default schema, the first
//! thing every ingest path does with each event.

use std::hint::black_box;

use bytes::Bytes;
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use tickcast_core::schema::tickstock;

const FIXTURE: &str = include_str!("../../testdata/fixtures/tickstockpl_events.jsonl");
const MAX_BYTES: usize = 64 * 1024;

/// Each fixture line's body and channel, as a broker would hand them over.
fn bodies() -> Vec<(Bytes, String)> {
    FIXTURE
        .lines()
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .filter_map(|v| {
            let body = serde_json::to_vec(v.get("body")?).ok()?;
            Some((Bytes::from(body), v.get("channel")?.as_str()?.to_owned()))
        })
        .collect()
}

fn decode_benches(c: &mut Criterion) {
    let schema = tickstock::schema();
    let bodies = bodies();
    let mut group = c.benchmark_group("decode");
    group.throughput(Throughput::Elements(bodies.len() as u64));
    group.bench_function("fixture_bodies", |b| {
        b.iter(|| {
            for (body, channel) in &bodies {
                let _ = black_box(schema.decode(body.clone(), Some(channel), MAX_BYTES));
            }
        })
    });
    group.finish();
}

criterion_group!(benches, decode_benches);
criterion_main!(benches);
