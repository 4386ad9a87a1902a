//! The global order as a read-only partition: `__cxlkafka_order`, whose
//! offset `n` is the order-log entry with global sequence `n + 1` (see
//! [`crate::order_topic`] for the record format). Served from the order log
//! still in the region, up to what this gateway has applied.

use bytes::Bytes;
use cxlkafka_log::layout::{OrderEntry, MAX_STREAMS, MAX_TOPICS};
use cxlkafka_log::memory::MemoryBackend;
use cxlkafka_log::Region;
use cxlkafka_sequencer::catalog::Topic;

use super::FetchRead;
use crate::order_topic::{encode_batch, ORDER_TOPIC};

/// The stream id the order topic's one partition answers to: just past the
/// real streams, so the sequencer refuses any batch addressed to it.
pub const ORDER_STREAM: u32 = MAX_STREAMS;

/// Entries per fetched batch at most, whatever the byte budget.
const MAX_ENTRIES_PER_READ: u64 = 4096;
/// Rough size of one encoded entry, to turn a byte budget into a count.
const ENTRY_BYTES: u64 = 128;

/// The topic as Metadata lists it.
pub fn order_topic() -> Topic {
    Topic {
        slot: MAX_TOPICS,
        name: ORDER_TOPIC.to_string(),
        topic_id: *b"cxlkafka-order\x00\x01",
        partitions: 1,
        retention_ms: -1,
        retention_bytes: -1,
        configs: String::new(),
        replication_factor: 1,
        changed_at: 0,
    }
}

fn entry<B: MemoryBackend>(region: &Region<B>, sequence: u64) -> Option<OrderEntry> {
    region.read_committed(region.layout().order_entry(sequence), sequence)
}

/// (log start, high watermark) given the next sequence this gateway applies.
pub fn offsets<B: MemoryBackend>(region: &Region<B>, applied: u64) -> (i64, i64) {
    let entries = region.layout().geometry.order_log_entries;
    let high_watermark = applied.saturating_sub(1) as i64;
    // The sequencer may run up to one order-log lap ahead of this gateway,
    // so only the newer half of the lap is sure to be intact.
    let mut first = applied.saturating_sub(entries / 2).max(1);
    while first < applied && entry(region, first).is_none() {
        first += 1;
    }
    (first as i64 - 1, high_watermark)
}

/// Encodes the entries from `offset` on, within about `max_bytes`.
pub fn read<B: MemoryBackend>(
    region: &Region<B>,
    applied: u64,
    offset: i64,
    max_bytes: usize,
    name_of_slot: impl Fn(u32) -> Option<String>,
) -> FetchRead {
    let (log_start, high_watermark) = offsets(region, applied);
    if offset < log_start || offset > high_watermark {
        return FetchRead::OutOfRange {
            high_watermark,
            log_start,
        };
    }
    let count = (max_bytes as u64 / ENTRY_BYTES).clamp(1, MAX_ENTRIES_PER_READ);
    let first = offset as u64 + 1;
    let entries: Vec<OrderEntry> = (first..applied.min(first + count))
        .map_while(|sequence| entry(region, sequence))
        .collect();
    let batches: Vec<Bytes> = encode_batch(&entries, name_of_slot).into_iter().collect();
    FetchRead::Batches {
        batches,
        high_watermark,
        log_start,
    }
}

/// First offset whose entry was ordered at or after `timestamp`.
pub fn offset_for_timestamp<B: MemoryBackend>(
    region: &Region<B>,
    applied: u64,
    timestamp: i64,
) -> Option<(i64, i64)> {
    let (log_start, _) = offsets(region, applied);
    (log_start as u64 + 1..applied)
        .filter_map(|sequence| entry(region, sequence))
        .find(|entry| entry.log_append_unix_ms >= timestamp)
        .map(|entry| (entry.commit as i64 - 1, entry.log_append_unix_ms))
}
