//! This gateway's view of the global order: it tails the order log into a
//! per-partition index of batch locations, reloads the topic catalog when a
//! control record passes, and wakes fetches waiting for new data.

use std::collections::{HashMap, VecDeque};

use cxlkafka_log::layout::{GatewayIndex, OrderEntry};
use cxlkafka_sequencer::catalog::Topic;
use cxlkafka_sequencer::control::CommittedOffset;

/// Where one ordered batch lives.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BatchLocation {
    /// Offset of the batch's first record.
    pub base_offset: i64,
    /// Records in the batch.
    pub record_count: u32,
    /// Gateway whose arena holds the bytes.
    pub gateway: GatewayIndex,
    /// Absolute arena position.
    pub arena_position: u64,
    /// Bytes.
    pub length: u32,
    /// Largest record timestamp (ListOffsets by time).
    pub max_timestamp: i64,
    /// When the sequencer ordered it.
    pub log_append_ms: i64,
    /// Global sequence.
    pub sequence: u64,
}

impl BatchLocation {
    /// Offset after the batch's last record.
    pub fn end_offset(&self) -> i64 {
        self.base_offset + i64::from(self.record_count)
    }
}

/// The batches of one partition still readable from the region.
#[derive(Debug, Default)]
pub struct PartitionIndex {
    /// Ordered by offset.
    pub batches: VecDeque<BatchLocation>,
    /// Next offset to be assigned (the high watermark).
    pub high_watermark: i64,
    /// First offset still readable.
    pub log_start: i64,
}

impl PartitionIndex {
    /// Index of the batch holding `offset`, or of the first batch after it.
    pub fn position(&self, offset: i64) -> usize {
        self.batches
            .partition_point(|batch| batch.end_offset() <= offset)
    }
}

/// Everything the tailer has applied.
#[derive(Debug, Default)]
pub struct OrderIndex {
    /// Per stream.
    pub partitions: HashMap<u32, PartitionIndex>,
    /// Live topics by name.
    pub topics: HashMap<String, Topic>,
    /// Next order-log sequence to apply.
    pub next_sequence: u64,
    /// Committed offsets per consumer group and stream.
    pub group_offsets: HashMap<String, HashMap<u32, CommittedOffset>>,
}

impl OrderIndex {
    /// Adds an ordered data batch.
    pub fn apply_data(&mut self, entry: &OrderEntry) {
        let partition = self
            .partitions
            .entry(entry.stream)
            .or_insert_with(|| PartitionIndex {
                batches: VecDeque::new(),
                high_watermark: entry.base_offset,
                log_start: entry.base_offset,
            });
        let location = BatchLocation {
            base_offset: entry.base_offset,
            record_count: entry.record_count,
            gateway: entry.gateway,
            arena_position: entry.arena_position,
            length: entry.length,
            max_timestamp: entry.max_timestamp,
            log_append_ms: entry.log_append_unix_ms,
            sequence: entry.commit,
        };
        debug_assert!(
            location.base_offset >= partition.high_watermark,
            "offsets move forward"
        );
        if partition.batches.is_empty() {
            partition.log_start = location.base_offset;
        }
        partition.high_watermark = location.end_offset();
        partition.batches.push_back(location);
    }

    /// Replaces the topic view and forgets partitions of topics that left.
    pub fn set_topics(&mut self, topics: Vec<Topic>) {
        let live: std::collections::HashSet<u32> = topics
            .iter()
            .flat_map(|topic| (0..topic.partitions).filter_map(|p| topic.stream(p)))
            .collect();
        self.partitions.retain(|stream, _| live.contains(stream));
        self.topics = topics
            .into_iter()
            .map(|topic| (topic.name.clone(), topic))
            .collect();
    }

    /// Drops batches whose arena bytes were recycled (below each gateway's
    /// arena floor); the partition's log start moves past them.
    pub fn drop_recycled(&mut self, floor_of: impl Fn(GatewayIndex) -> u64) {
        for partition in self.partitions.values_mut() {
            while let Some(front) = partition.batches.front() {
                if front.arena_position >= floor_of(front.gateway) {
                    break;
                }
                partition.log_start = front.end_offset();
                partition.batches.pop_front();
            }
        }
    }
}
