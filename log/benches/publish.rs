//! Publish throughput into the region next to plain memcpy of the same sizes
//! into a buffer as large as the arena, in the same run.
//!
//! `cargo bench -p cxlkafka-log --bench publish`

use std::time::Duration;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use cxlkafka_log::layout::{kind, BatchHeader, Geometry};
use cxlkafka_log::memory::{Coherent, NonCoherent};
use cxlkafka_log::open::{cluster_id, open_or_create, MappedBackend, RegionOptions};
use cxlkafka_log::ring::{RingReader, RingWriter};
use cxlkafka_log::Region;

const ARENA_BYTES: u64 = 256 << 20;
const SIZES: [usize; 3] = [16 << 10, 256 << 10, 2 << 20];

fn region<B: MappedBackend>(dir: &tempfile::TempDir, name: &str) -> Region<B> {
    let geometry = Geometry {
        max_gateways: 1,
        ring_slots: 4096,
        arena_bytes: ARENA_BYTES,
        order_log_entries: 1024,
        sequencer_state_bytes: 4096,
    };
    let options = RegionOptions {
        path: dir.path().join(name),
        region_bytes: geometry.layout().unwrap().total_bytes,
        geometry,
        cluster_id: cluster_id("bench").unwrap(),
        format_wait: Duration::from_secs(1),
    };
    open_or_create::<B>(&options).expect("bench region").0
}

fn bench_publish<B: MappedBackend>(c: &mut Criterion, dir: &tempfile::TempDir, name: &str) {
    let region = region::<B>(dir, name);
    let mut writer = RingWriter::new(&region, 0);
    let mut reader = RingReader::new(0, 1);
    let header = BatchHeader {
        kind: kind::DATA,
        record_count: 1,
        ..bytemuck::Zeroable::zeroed()
    };
    let mut group = c.benchmark_group(format!("publish/{}", region.backend().name()));
    for size in SIZES {
        let payload = vec![0xA5u8; size];
        group.throughput(Throughput::Bytes(size as u64));
        group.bench_with_input(BenchmarkId::from_parameter(size), &payload, |b, payload| {
            b.iter(|| {
                writer
                    .publish(&region, header, payload)
                    .expect("the reader keeps up");
                // The consumer side of the ring, so the arena keeps wrapping.
                reader.poll(&region).expect("just published");
                reader.release(&region);
            })
        });
    }
    group.finish();
}

fn bench_memcpy(c: &mut Criterion) {
    let mut destination = vec![0u8; ARENA_BYTES as usize];
    let mut group = c.benchmark_group("publish/memcpy");
    for size in SIZES {
        let payload = vec![0xA5u8; size];
        let mut position = 0usize;
        group.throughput(Throughput::Bytes(size as u64));
        group.bench_with_input(BenchmarkId::from_parameter(size), &payload, |b, payload| {
            b.iter(|| {
                if position + payload.len() > destination.len() {
                    position = 0;
                }
                destination[position..position + payload.len()].copy_from_slice(payload);
                position += payload.len();
            })
        });
    }
    group.finish();
}

fn publish(c: &mut Criterion) {
    let dir = tempfile::Builder::new()
        .prefix("cxlkafka-bench")
        .tempdir_in("/dev/shm")
        .or_else(|_| tempfile::tempdir())
        .expect("a temporary directory");
    bench_memcpy(c);
    bench_publish::<Coherent>(c, &dir, "coherent");
    bench_publish::<NonCoherent>(c, &dir, "non-coherent");
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .sample_size(20);
    targets = publish
}
criterion_main!(benches);
