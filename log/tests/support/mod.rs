//! A deterministic batch workload shared by the ring tests: both sides derive
//! every batch's size and content from the seed, so the reader can check each
//! byte it receives against what the writer meant to publish.

#![allow(dead_code)]

use std::time::{Duration, Instant};

use cxlkafka_log::layout::{kind, BatchHeader, Geometry};
use cxlkafka_log::memory::MemoryBackend;
use cxlkafka_log::ring::{read_payload, PublishError, RingReader, RingWriter};
use cxlkafka_log::Region;
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

pub fn geometry(ring_slots: u32, arena_bytes: u64) -> Geometry {
    Geometry {
        max_gateways: 1,
        ring_slots,
        arena_bytes,
        order_log_entries: 1024,
        sequencer_state_bytes: 4096,
    }
}

/// Sizes from 1 byte to `max_len`, log-uniform so that small and large
/// batches both occur often.
pub struct Workload {
    source: Vec<u8>,
    rng: SmallRng,
    max_len: usize,
}

pub struct Batch {
    pub start: usize,
    pub len: usize,
}

impl Workload {
    pub fn new(seed: u64, max_len: usize) -> Self {
        let mut rng = SmallRng::seed_from_u64(seed);
        let mut source = vec![0u8; max_len * 2];
        rng.fill(&mut source[..]);
        Self {
            source,
            rng: SmallRng::seed_from_u64(seed ^ 0x5EED),
            max_len,
        }
    }

    pub fn next_batch(&mut self) -> Batch {
        let exponent = self.rng.gen::<f64>() * (self.max_len as f64).ln();
        let len = (exponent.exp() as usize).clamp(1, self.max_len);
        let start = self.rng.gen_range(0..self.max_len);
        Batch { start, len }
    }

    pub fn bytes(&self, batch: &Batch) -> &[u8] {
        &self.source[batch.start..batch.start + batch.len]
    }
}

/// Publishes `count` batches, retrying (bounded by `deadline`) while the
/// ring or arena waits for the reader.
pub fn publish_all<B: MemoryBackend>(
    region: &Region<B>,
    seed: u64,
    max_len: usize,
    count: u64,
    deadline: Duration,
    stop_early: impl Fn() -> bool,
) -> u64 {
    let mut workload = Workload::new(seed, max_len);
    let mut writer = RingWriter::new(region, 0);
    let started = Instant::now();
    let mut published = 0;
    while published < count {
        let batch = workload.next_batch();
        let payload = workload.bytes(&batch);
        let header = BatchHeader {
            kind: kind::DATA,
            stream: 7,
            record_count: 1,
            payload_crc: crc32c::crc32c(payload),
            ..bytemuck::Zeroable::zeroed()
        };
        loop {
            if stop_early() {
                return published;
            }
            match writer.publish(region, header, payload) {
                Ok(slot) => {
                    assert_eq!(slot, published + 1);
                    break;
                }
                Err(PublishError::RingFull) | Err(PublishError::Arena(_)) => {
                    assert!(
                        started.elapsed() < deadline,
                        "writer stuck: reader stopped releasing"
                    );
                    std::thread::yield_now();
                }
            }
        }
        published += 1;
    }
    published
}

#[derive(Debug, Default, PartialEq, Eq)]
pub struct ReadSummary {
    pub received: u64,
    pub corrupted: u64,
    pub recycled: u64,
}

/// Reads batches until `count` arrived or no new one came for `idle_limit`,
/// checking each against the workload. Returns what it saw.
pub fn read_all<B: MemoryBackend>(
    region: &Region<B>,
    seed: u64,
    max_len: usize,
    count: u64,
    idle_limit: Duration,
) -> ReadSummary {
    let mut workload = Workload::new(seed, max_len);
    let mut reader = RingReader::new(0, 1);
    let mut summary = ReadSummary::default();
    let mut buffer = vec![0u8; max_len];
    let mut last_progress = Instant::now();
    let mut released = 0;
    while summary.received < count && last_progress.elapsed() < idle_limit {
        let Some(header) = reader.poll(region) else {
            // The writer may be waiting for the space we hold.
            if released != summary.received {
                reader.release(region);
                released = summary.received;
            }
            std::thread::yield_now();
            continue;
        };
        last_progress = Instant::now();
        let expected = workload.next_batch();
        let Some(payload) = buffer.get_mut(..header.length as usize) else {
            summary.corrupted += 1;
            summary.received += 1;
            continue;
        };
        match read_payload(region, 0, header.arena_position, payload) {
            Ok(()) => {
                let buffer = &*payload;
                let intact = header.length as usize == expected.len
                    && crc32c::crc32c(buffer) == header.payload_crc
                    && buffer == workload.bytes(&expected);
                if !intact {
                    summary.corrupted += 1;
                }
            }
            Err(_) => summary.recycled += 1,
        }
        summary.received += 1;
        // Release in small steps so the writer keeps wrapping around.
        if summary.received % 8 == 0 {
            reader.release(region);
            released = summary.received;
        }
    }
    reader.release(region);
    summary
}
