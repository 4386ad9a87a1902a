//! Seeded randomized workloads of several gateways over several streams on
//! the simulated non-coherent backend with fault injection. After each run:
//! offsets contiguous per stream, the global sequence gap-free, every
//! completed batch ordered exactly once, per-producer order kept, and
//! retried idempotent batches answered with their original offsets.

use std::collections::HashMap;
use std::mem::offset_of;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use cxlkafka_log::layout::{
    kind, BatchHeader, Completion, GatewayFrontiers, GatewayLines, Geometry, Heartbeat, OrderEntry,
    SEQUENCER_STATE_MIN_BYTES,
};
use cxlkafka_log::memory::{SimFaults, Simulated, SimulatedMemory};
use cxlkafka_log::open::{attach, cluster_id, format};
use cxlkafka_log::ring::RingWriter;
use cxlkafka_log::Region;
use cxlkafka_sequencer::catalog::{read_catalog, stream_of};
use cxlkafka_sequencer::control::{tag, ControlRecord};
use cxlkafka_sequencer::sequencer::unix_ns;
use cxlkafka_sequencer::wait::Backoff;
use cxlkafka_sequencer::{status, Sequencer};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

const GATEWAYS: u16 = 3;
const TOPICS: u32 = 3;
const PARTITIONS: u32 = 4;
const DEADLINE: Duration = Duration::from_secs(120);

fn geometry() -> Geometry {
    Geometry {
        max_gateways: GATEWAYS as u32 + 1,
        ring_slots: 32,
        arena_bytes: 64 << 10,
        order_log_entries: 128,
        sequencer_state_bytes: SEQUENCER_STATE_MIN_BYTES,
    }
}

struct Harness {
    memory: Arc<SimulatedMemory>,
    geometry: Geometry,
}

impl Harness {
    fn new(seed: u64) -> (Self, Region<Simulated>) {
        let geometry = geometry();
        let bytes = geometry.layout().unwrap().total_bytes;
        let memory = SimulatedMemory::new(bytes as usize);
        let region = format(
            memory.participant(SimFaults::none(seed)),
            geometry,
            bytes,
            cluster_id("seq").unwrap(),
        )
        .unwrap();
        (Self { memory, geometry }, region)
    }

    fn participant(&self, faults: SimFaults) -> Region<Simulated> {
        attach(
            self.memory.participant(faults),
            Path::new("sim"),
            Some(&self.geometry),
            None,
            Duration::ZERO,
        )
        .unwrap()
    }
}

/// Publishes one batch and waits (bounded) for its completion.
fn publish_and_wait(
    region: &Region<Simulated>,
    writer: &mut RingWriter,
    header: BatchHeader,
    payload: &[u8],
) -> (u64, Completion) {
    let started = Instant::now();
    let slot = loop {
        match writer.publish(region, header, payload) {
            Ok(slot) => break slot,
            Err(_) => {
                assert!(started.elapsed() < DEADLINE, "ring never drained");
                std::thread::yield_now();
            }
        }
    };
    let offset = region.layout().completion(writer.gateway(), slot);
    let mut backoff = Backoff::default();
    loop {
        if let Some(completion) = region.read_committed::<Completion>(offset, slot) {
            return (slot, completion);
        }
        assert!(started.elapsed() < DEADLINE, "slot {slot} never completed");
        backoff.wait();
    }
}

fn control(
    region: &Region<Simulated>,
    writer: &mut RingWriter,
    record: &ControlRecord,
) -> Completion {
    let header = BatchHeader {
        kind: kind::CONTROL,
        producer_id: -1,
        ..bytemuck::Zeroable::zeroed()
    };
    publish_and_wait(region, writer, header, &record.encode()).1
}

/// What a gateway thread saw for each of its batches.
#[derive(Clone, Debug)]
struct Sent {
    gateway: u16,
    slot: u64,
    stream: u32,
    records: u32,
    producer_id: i64,
    base_sequence: i32,
    retry_of: Option<u64>,
    completion: Completion,
}

fn gateway_thread(region: Region<Simulated>, gateway: u16, seed: u64, batches: u32) -> Vec<Sent> {
    let mut rng = SmallRng::seed_from_u64(seed);
    let mut writer = RingWriter::new(&region, gateway);
    let producer = control(&region, &mut writer, &ControlRecord::AllocateProducerId);
    assert_eq!(producer.error, status::OK);
    let producer_id = producer.base_offset;
    let mut next_sequence: HashMap<u32, i32> = HashMap::new();
    let mut sent = Vec::new();
    let mut last_idempotent: Option<(BatchHeader, u64)> = None;
    for _ in 0..batches {
        // Now and then retry the last idempotent batch, as a producer whose
        // ack was lost would.
        if let Some((header, original_slot)) = last_idempotent.filter(|_| rng.gen_bool(0.1)) {
            let (slot, completion) = publish_and_wait(&region, &mut writer, header, &[1u8; 40]);
            sent.push(Sent {
                gateway,
                slot,
                stream: header.stream,
                records: header.record_count,
                producer_id,
                base_sequence: header.base_sequence,
                retry_of: Some(original_slot),
                completion,
            });
            continue;
        }
        let stream = stream_of(rng.gen_range(0..TOPICS), rng.gen_range(0..PARTITIONS));
        let records = rng.gen_range(1..10);
        let idempotent = rng.gen_bool(0.5);
        let base_sequence = if idempotent {
            *next_sequence.get(&stream).unwrap_or(&0)
        } else {
            -1
        };
        let header = BatchHeader {
            kind: kind::DATA,
            stream,
            record_count: records,
            producer_id: if idempotent { producer_id } else { -1 },
            base_sequence,
            ..bytemuck::Zeroable::zeroed()
        };
        let payload = vec![gateway as u8; rng.gen_range(1..2048)];
        let (slot, completion) = publish_and_wait(&region, &mut writer, header, &payload);
        assert_eq!(
            completion.error,
            status::OK,
            "gateway {gateway} slot {slot}"
        );
        if idempotent {
            next_sequence.insert(stream, base_sequence + records as i32);
            last_idempotent = Some((header, slot));
        }
        sent.push(Sent {
            gateway,
            slot,
            stream,
            records,
            producer_id: header.producer_id,
            base_sequence,
            retry_of: None,
            completion,
        });
    }
    sent
}

/// Tails the order log like a gateway: heartbeat, applied frontier.
fn tail_order_log(
    region: Region<Simulated>,
    gateway: u16,
    done: Arc<AtomicBool>,
) -> Vec<OrderEntry> {
    let layout = *region.layout();
    let lines = layout.gateway_lines(gateway);
    let mut entries = Vec::new();
    let mut next = 1u64;
    let mut backoff = Backoff::default();
    let started = Instant::now();
    loop {
        let heartbeat = Heartbeat {
            incarnation: 1,
            beats: next,
            unix_ns: unix_ns(),
            alive: 1,
            _pad: [0; 96],
        };
        region.write_line(lines + offset_of!(GatewayLines, heartbeat), &heartbeat);
        let mut progressed = false;
        while let Some(entry) = region.read_committed::<OrderEntry>(layout.order_entry(next), next)
        {
            entries.push(entry);
            next += 1;
            progressed = true;
        }
        region.store_word(
            lines
                + offset_of!(GatewayLines, frontiers)
                + offset_of!(GatewayFrontiers, order_log_applied),
            next,
        );
        if progressed {
            backoff.reset();
        } else if done.load(Ordering::Acquire) {
            return entries;
        } else {
            assert!(started.elapsed() < DEADLINE, "order log stalled at {next}");
            backoff.wait();
        }
    }
}

fn run_workload(seed: u64, batches_per_gateway: u32, failover_after_passes: Option<u64>) {
    let (harness, admin_region) = Harness::new(seed);
    let stop = Arc::new(AtomicBool::new(false));
    let sequencer_region = Arc::new(harness.participant(SimFaults::hostile(seed + 1)));
    let heartbeat_timeout = Duration::from_secs(60).as_nanos() as u64;

    let sequencer_stop = Arc::clone(&stop);
    let second_region = Arc::new(harness.participant(SimFaults::hostile(seed + 2)));
    let sequencer = std::thread::spawn(move || {
        let mut sequencer = Sequencer::recover(sequencer_region, heartbeat_timeout);
        let mut backoff = Backoff::default();
        let mut passes = 0u64;
        let mut failed_over = false;
        while !sequencer_stop.load(Ordering::Acquire) {
            if failover_after_passes.is_some_and(|limit| passes == limit) && !failed_over {
                // The holder stops; a successor on another host resumes from
                // the region alone.
                sequencer = Sequencer::recover(Arc::clone(&second_region), heartbeat_timeout);
                failed_over = true;
            }
            let report = sequencer.pass();
            passes += 1;
            if report.ordered + report.answered > 0 {
                backoff.reset();
            } else {
                backoff.wait();
            }
        }
        sequencer.next_sequence()
    });

    let tail_done = Arc::new(AtomicBool::new(false));
    let tail_region = harness.participant(SimFaults::hostile(seed + 3));
    let tail_flag = Arc::clone(&tail_done);
    let tailer = std::thread::spawn(move || tail_order_log(tail_region, 0, tail_flag));

    let mut admin = RingWriter::new(&admin_region, 0);
    for topic in 0..TOPICS {
        let created = control(
            &admin_region,
            &mut admin,
            &ControlRecord::CreateTopic {
                name: format!("topic-{topic}"),
                partitions: PARTITIONS,
                topic_id: [topic as u8 + 1; 16],
                retention_ms: -1,
                retention_bytes: -1,
                configs: String::new(),
                replication_factor: 1,
            },
        );
        assert_eq!(
            (created.error, created.base_offset),
            (status::OK, i64::from(topic))
        );
    }
    let duplicate = control(
        &admin_region,
        &mut admin,
        &ControlRecord::CreateTopic {
            name: "topic-0".into(),
            partitions: 1,
            topic_id: [9; 16],
            retention_ms: -1,
            retention_bytes: -1,
            configs: String::new(),
            replication_factor: 1,
        },
    );
    assert_eq!(duplicate.error, status::TOPIC_EXISTS);
    assert_eq!(read_catalog(&admin_region).len(), TOPICS as usize);
    drop(admin);

    let gateways: Vec<_> = (0..GATEWAYS)
        .map(|gateway| {
            // Gateway 0 is the admin (and the tailer's heartbeat lines); the
            // producing gateways take slots 1..=GATEWAYS.
            let region = harness.participant(SimFaults::hostile(seed * 31 + u64::from(gateway)));
            std::thread::spawn(move || {
                gateway_thread(
                    region,
                    gateway + 1,
                    seed ^ u64::from(gateway),
                    batches_per_gateway,
                )
            })
        })
        .collect();
    let sent: Vec<Sent> = gateways
        .into_iter()
        .flat_map(|handle| handle.join().unwrap())
        .collect();
    tail_done.store(true, Ordering::Release);
    let entries = tailer.join().unwrap();
    stop.store(true, Ordering::Release);
    let next_sequence = sequencer.join().unwrap();

    // The global sequence is gap-free: the tailer read 1, 2, 3, ... with no hole.
    assert_eq!(entries.len() as u64, next_sequence - 1, "seed {seed}");
    for (index, entry) in entries.iter().enumerate() {
        assert_eq!(entry.commit, index as u64 + 1);
    }

    // Control entries say which control record they were.
    for entry in entries.iter().filter(|entry| entry.kind == kind::CONTROL) {
        assert!(
            [
                u16::from(tag::CREATE_TOPIC),
                u16::from(tag::ALLOCATE_PRODUCER_ID)
            ]
            .contains(&entry.control_tag),
            "control tag {}",
            entry.control_tag
        );
    }

    // Offsets are contiguous per stream.
    let mut next_offset: HashMap<u32, i64> = HashMap::new();
    for entry in entries.iter().filter(|entry| entry.kind == kind::DATA) {
        let expected = next_offset.entry(entry.stream).or_insert(0);
        assert_eq!(
            entry.base_offset, *expected,
            "seed {seed}: stream {} offsets",
            entry.stream
        );
        *expected += i64::from(entry.record_count);
    }

    // Every completed batch is ordered exactly once, at its answered place;
    // retries are answered with the original offsets and not ordered again.
    let by_slot: HashMap<(u16, u64), &OrderEntry> = entries
        .iter()
        .map(|entry| ((entry.gateway, entry.slot), entry))
        .collect();
    assert_eq!(by_slot.len(), entries.len(), "a slot was ordered twice");
    let originals: HashMap<(u16, u64), &Sent> = sent
        .iter()
        .map(|batch| ((batch.gateway, batch.slot), batch))
        .collect();
    for batch in &sent {
        match batch.retry_of {
            None => {
                let entry = by_slot
                    .get(&(batch.gateway, batch.slot))
                    .expect("completed batch in the order log");
                assert_eq!(entry.commit, batch.completion.global_sequence);
                assert_eq!(entry.base_offset, batch.completion.base_offset);
                assert_eq!(
                    (entry.stream, entry.record_count),
                    (batch.stream, batch.records)
                );
            }
            Some(original_slot) => {
                assert!(
                    !by_slot.contains_key(&(batch.gateway, batch.slot)),
                    "a retry was ordered again"
                );
                let original = originals[&(batch.gateway, original_slot)];
                assert_eq!(batch.completion.error, status::OK);
                assert_eq!(
                    batch.completion.base_offset,
                    original.completion.base_offset
                );
            }
        }
    }

    // Per producer and stream, sequences appear in the order log in order.
    let mut producer_next: HashMap<(i64, u32), i32> = HashMap::new();
    for entry in entries.iter().filter(|entry| entry.kind == kind::DATA) {
        let batch = originals[&(entry.gateway, entry.slot)];
        if batch.producer_id >= 0 {
            let expected = producer_next
                .entry((batch.producer_id, batch.stream))
                .or_insert(0);
            assert_eq!(batch.base_sequence, *expected, "producer order broken");
            *expected += batch.records as i32;
        }
    }
}

#[test]
fn three_gateways_over_twelve_streams_keep_one_total_order() {
    for seed in 0..3 {
        run_workload(seed, 300, None);
    }
}

#[test]
fn a_successor_sequencer_resumes_without_reusing_or_skipping_offsets() {
    for seed in 10..13 {
        run_workload(seed, 300, Some(50 + seed * 7));
    }
}
