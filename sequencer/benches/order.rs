//! Batches ordered per second by one sequencer thread with 1, 4 and 16
//! gateways, and publish → completion latency, on the coherent backend.
//!
//! `cargo bench -p cxlkafka-sequencer --bench order`

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use cxlkafka_log::layout::{kind, BatchHeader, Completion, Geometry, SEQUENCER_STATE_MIN_BYTES};
use cxlkafka_log::memory::Coherent;
use cxlkafka_log::open::{cluster_id, open_or_create, RegionOptions};
use cxlkafka_log::ring::RingWriter;
use cxlkafka_log::Region;
use cxlkafka_sequencer::control::ControlRecord;
use cxlkafka_sequencer::wait::Backoff;
use cxlkafka_sequencer::Sequencer;

const GATEWAYS: u16 = 16;
const RING_SLOTS: u32 = 4096;

fn region(dir: &tempfile::TempDir) -> Arc<Region<Coherent>> {
    let geometry = Geometry {
        max_gateways: u32::from(GATEWAYS),
        ring_slots: RING_SLOTS,
        arena_bytes: 4 << 20,
        order_log_entries: 1 << 18,
        sequencer_state_bytes: SEQUENCER_STATE_MIN_BYTES,
    };
    let options = RegionOptions {
        path: dir.path().join("region"),
        region_bytes: geometry.layout().unwrap().total_bytes,
        geometry,
        cluster_id: cluster_id("bench").unwrap(),
        format_wait: Duration::from_secs(1),
    };
    Arc::new(
        open_or_create::<Coherent>(&options)
            .expect("bench region")
            .0,
    )
}

fn data_header(stream: u32) -> BatchHeader {
    BatchHeader {
        kind: kind::DATA,
        stream,
        record_count: 10,
        producer_id: -1,
        ..bytemuck::Zeroable::zeroed()
    }
}

/// Creates topic slot 0 with 16 partitions through the sequencer itself.
fn create_topic(
    region: &Region<Coherent>,
    writer: &mut RingWriter,
    sequencer: &mut Sequencer<Coherent>,
) {
    let record = ControlRecord::CreateTopic {
        name: "bench".into(),
        partitions: 16,
        topic_id: [1; 16],
        retention_ms: -1,
        retention_bytes: -1,
        configs: String::new(),
        replication_factor: 1,
    };
    let header = BatchHeader {
        kind: kind::CONTROL,
        producer_id: -1,
        ..bytemuck::Zeroable::zeroed()
    };
    writer.publish(region, header, &record.encode()).unwrap();
    while sequencer.pass().ordered == 0 {}
}

fn ordering_throughput(c: &mut Criterion) {
    let dir = tempfile::tempdir_in("/dev/shm")
        .or_else(|_| tempfile::tempdir())
        .unwrap();
    let region = region(&dir);
    let mut sequencer = Sequencer::recover(Arc::clone(&region), u64::MAX);
    let mut writers: Vec<RingWriter> = (0..GATEWAYS).map(|g| RingWriter::new(&region, g)).collect();
    create_topic(&region, &mut writers[0], &mut sequencer);
    let payload = [7u8; 64];
    let mut group = c.benchmark_group("order");
    group.throughput(Throughput::Elements(1));
    for gateways in [1usize, 4, 16] {
        group.bench_with_input(
            BenchmarkId::new("batches", gateways),
            &gateways,
            |b, &gateways| {
                b.iter_custom(|iters| {
                    let mut elapsed = Duration::ZERO;
                    let mut remaining = iters;
                    while remaining > 0 {
                        // Fill the rings (untimed), then time the sequencer draining them.
                        let per_gateway = (remaining as usize)
                            .div_ceil(gateways)
                            .min(RING_SLOTS as usize / 2);
                        let mut published = 0u64;
                        for (g, writer) in writers.iter_mut().take(gateways).enumerate() {
                            writer.refresh_consumed(&region);
                            for i in 0..per_gateway {
                                if published == remaining {
                                    break;
                                }
                                let stream = ((g + i) % 16) as u32;
                                writer
                                    .publish(&region, data_header(stream), &payload)
                                    .expect("ring has room");
                                published += 1;
                            }
                        }
                        let started = Instant::now();
                        let mut ordered = 0;
                        while ordered < published {
                            ordered += sequencer.pass().ordered;
                        }
                        elapsed += started.elapsed();
                        remaining -= published;
                    }
                    elapsed
                })
            },
        );
    }
    group.finish();
}

fn completion_latency(c: &mut Criterion) {
    let dir = tempfile::tempdir_in("/dev/shm")
        .or_else(|_| tempfile::tempdir())
        .unwrap();
    let region = region(&dir);
    let mut sequencer = Sequencer::recover(Arc::clone(&region), u64::MAX);
    let mut writer = RingWriter::new(&region, 0);
    create_topic(&region, &mut writer, &mut sequencer);
    let stop = Arc::new(AtomicBool::new(false));
    let sequencer_stop = Arc::clone(&stop);
    let sequencer_thread = std::thread::spawn(move || {
        let mut backoff = Backoff::default();
        while !sequencer_stop.load(Ordering::Relaxed) {
            if sequencer.pass().ordered > 0 {
                backoff.reset();
            } else {
                backoff.wait();
            }
        }
    });
    let payload = [7u8; 1024];
    let mut round_trip = || {
        let started = Instant::now();
        let slot = writer
            .publish(&region, data_header(0), &payload)
            .expect("ring has room");
        let offset = region.layout().completion(0, slot);
        while region.read_committed::<Completion>(offset, slot).is_none() {
            std::hint::spin_loop();
        }
        started.elapsed()
    };
    let mut samples: Vec<Duration> = (0..20_000).map(|_| round_trip()).collect();
    samples.sort();
    let percentile = |p: f64| samples[((samples.len() as f64 * p) as usize).min(samples.len() - 1)];
    println!(
        "publish -> completion latency over {} round trips: p50 {:?} p99 {:?} p99.9 {:?}",
        samples.len(),
        percentile(0.50),
        percentile(0.99),
        percentile(0.999)
    );
    c.bench_function("publish_to_completion/1KiB", |b| b.iter(&mut round_trip));
    stop.store(true, Ordering::Relaxed);
    sequencer_thread.join().unwrap();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .sample_size(20);
    targets = ordering_throughput, completion_latency
}
criterion_main!(benches);
