//! This gateway's view of the global order: it tails the order log into a
//! per-partition index of batch locations, reloads the topic catalog when a
//! control record passes, and wakes fetches waiting for new data.

use std::collections::{HashMap, VecDeque};

use cxlkafka_log::layout::{kind, GatewayIndex, OrderEntry, MAX_PARTITIONS_PER_TOPIC};
use cxlkafka_log::segment::SegmentFiles;
use cxlkafka_log::segment::{DiskLocation, StoredEntry};
use cxlkafka_sequencer::catalog::Topic;
use cxlkafka_sequencer::control::{tag as control_tag, CommittedOffset, ControlRecord};

/// The sequence of a batch's last record (sequences wrap at i32::MAX, as in
/// Kafka); -1 for a marker, which has none.
fn last_sequence(base_sequence: i32, record_count: u32) -> i32 {
    if base_sequence < 0 {
        return -1;
    }
    ((i64::from(base_sequence) + i64::from(record_count) - 1) % (i64::from(i32::MAX) + 1)) as i32
}

/// Whether an order entry's control record is one the index keeps in
/// order with the data: offset commits and transaction records.
pub fn is_ordered_state_tag(tag: u16) -> bool {
    [
        control_tag::COMMIT_OFFSETS,
        control_tag::TRANSACTION,
        control_tag::TXN_OFFSET_COMMIT,
    ]
    .iter()
    .any(|&known| tag == u16::from(known))
}

/// Where one ordered batch lives.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BatchLocation {
    /// Offset of the batch's first record.
    pub base_offset: i64,
    /// Records in the batch.
    pub record_count: u32,
    /// Gateway whose arena held the bytes and their absolute position, for
    /// as long as the arena has not recycled them (checked on every read).
    pub region: Option<(GatewayIndex, u64)>,
    /// Where this gateway's disk tier holds the bytes, once copied.
    pub disk: Option<DiskLocation>,
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

/// Producers a partition keeps state for at most; past twice this many,
/// the least recently appended are forgotten (Kafka expires them after
/// `producer.id.expiration.ms`).
const MAX_PRODUCERS_PER_PARTITION: usize = 1024;

/// An idempotent or transactional producer's last batch in a partition, as
/// DescribeProducers (KIP-664) shows it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ProducerState {
    /// Epoch of its last batch.
    pub epoch: i16,
    /// Sequence of its last record (-1 when only a marker was written).
    pub last_sequence: i32,
    /// Largest timestamp of its last batch.
    pub last_timestamp: i64,
    /// When the sequencer ordered its last batch.
    pub appended_ms: i64,
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
    /// Producers that wrote here, by producer id.
    pub producers: HashMap<i64, ProducerState>,
}

impl PartitionIndex {
    /// Records a producer's latest batch here; a marker (no sequence)
    /// keeps the last sequence its records had.
    fn note_producer(&mut self, producer_id: i64, mut state: ProducerState) {
        let producers = &mut self.producers;
        if state.last_sequence < 0 {
            state.last_sequence = producers
                .get(&producer_id)
                .map_or(-1, |known| known.last_sequence);
        }
        producers.insert(producer_id, state);
        if producers.len() > 2 * MAX_PRODUCERS_PER_PARTITION {
            let mut appended: Vec<i64> = producers.values().map(|p| p.appended_ms).collect();
            let cut = appended.len() - MAX_PRODUCERS_PER_PARTITION;
            let (_, &mut oldest_kept, _) = appended.select_nth_unstable(cut);
            producers.retain(|_, p| p.appended_ms >= oldest_kept);
        }
    }

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
    /// The order sequence of the commit (or deletion) each group's offset
    /// of a stream last came from: a commit applied late (see
    /// `commits_awaiting_payload`) never undoes a newer one.
    pub commit_sequences: HashMap<String, HashMap<u32, u64>>,
    /// Offset commits and transaction records the tailer reached after
    /// their payload had left the region (this gateway was paused):
    /// applied once the disk tier copies them from a holder, counted lost
    /// if it cannot.
    pub commits_awaiting_payload: std::collections::BTreeSet<u64>,
    /// Transaction states (applied by [`OrderIndex::apply_ordered`]).
    pub transactions: std::sync::Arc<crate::transactions::TransactionStore>,
    /// Users and ACLs (applied by [`crate::security`]).
    pub security: std::sync::Arc<crate::security::SecurityStore>,
    /// Dynamic broker configs (applied by [`crate::broker_config`]).
    pub broker_configs: std::sync::Arc<crate::broker_config::BrokerConfigStore>,
}

impl OrderIndex {
    /// Adds an ordered data batch read from the region's order log.
    pub fn apply_data(&mut self, entry: &OrderEntry) {
        let producer = (entry.producer_id >= 0).then(|| {
            (
                entry.producer_id,
                ProducerState {
                    epoch: entry.producer_epoch,
                    last_sequence: last_sequence(entry.base_sequence, entry.record_count),
                    last_timestamp: entry.max_timestamp,
                    appended_ms: entry.log_append_unix_ms,
                },
            )
        });
        self.push(
            entry.stream,
            BatchLocation {
                base_offset: entry.base_offset,
                record_count: entry.record_count,
                region: Some((entry.gateway, entry.arena_position)),
                disk: None,
                length: entry.length,
                max_timestamp: entry.max_timestamp,
                log_append_ms: entry.log_append_unix_ms,
                sequence: entry.commit,
            },
            producer,
        );
    }

    /// Adds a batch read back from this gateway's segments at start.
    pub fn apply_stored(&mut self, stored: &StoredEntry) {
        let header = &stored.header;
        debug_assert_eq!(header.kind, kind::DATA);
        let producer = (header.producer_id >= 0).then(|| {
            (
                header.producer_id,
                ProducerState {
                    epoch: header.producer_epoch,
                    last_sequence: last_sequence(header.base_sequence, header.record_count),
                    last_timestamp: header.max_timestamp,
                    appended_ms: header.log_append_ms,
                },
            )
        });
        self.push(
            header.stream,
            BatchLocation {
                base_offset: header.base_offset,
                record_count: header.record_count,
                region: None,
                disk: Some(stored.location),
                length: header.length,
                max_timestamp: header.max_timestamp,
                log_append_ms: header.log_append_ms,
                sequence: header.sequence,
            },
            producer,
        );
    }

    /// Records where the disk tier put a batch already in the index.
    pub fn set_disk_location(&mut self, stream: u32, base_offset: i64, disk: DiskLocation) {
        let Some(partition) = self.partitions.get_mut(&stream) else {
            return;
        };
        let at = partition.position(base_offset);
        if let Some(batch) = partition.batches.get_mut(at) {
            if batch.base_offset == base_offset {
                batch.disk = Some(disk);
            }
        }
    }

    /// A topic was created in catalog slot `slot`: batches left from an
    /// earlier topic in that slot are not its.
    pub fn forget_slot(&mut self, slot: u32) {
        self.partitions
            .retain(|stream, _| stream / MAX_PARTITIONS_PER_TOPIC != slot);
    }

    /// Appends a batch to its partition, and records its producer there
    /// (one lookup of the partition per batch: the tailer's hot path).
    fn push(
        &mut self,
        stream: u32,
        location: BatchLocation,
        producer: Option<(i64, ProducerState)>,
    ) {
        let partition = self
            .partitions
            .entry(stream)
            .or_insert_with(|| PartitionIndex {
                high_watermark: location.base_offset,
                log_start: location.base_offset,
                ..PartitionIndex::default()
            });
        debug_assert!(
            location.base_offset >= partition.high_watermark,
            "offsets move forward"
        );
        if partition.batches.is_empty() {
            partition.log_start = location.base_offset;
        }
        partition.high_watermark = location.end_offset();
        partition.batches.push_back(location);
        if let Some((producer_id, state)) = producer {
            partition.note_producer(producer_id, state);
        }
    }

    /// Rebuilds the index from the entries this gateway's segments hold:
    /// data batches (served from disk), topic re-creations, offset
    /// commits, users and ACLs, and dynamic broker configs. The topic view itself comes from the region's catalog.
    pub fn load_stored(&mut self, stored: &[StoredEntry], files: &SegmentFiles) {
        for entry in stored {
            let header = &entry.header;
            if header.kind == kind::DATA {
                self.apply_stored(entry);
            } else if header.control_tag == u16::from(control_tag::CREATE_TOPIC) {
                self.forget_slot(header.base_offset as u32);
            } else if is_ordered_state_tag(header.control_tag) {
                match super::control_in_segments(files, entry) {
                    Some(record) => self.apply_ordered(record, header.sequence),
                    None => tracing::warn!(
                        sequence = header.sequence,
                        "offset commit or transaction record in the segments is unreadable"
                    ),
                }
            } else if crate::security::is_security_tag(header.control_tag) {
                self.security.apply_stored(files, entry);
            } else if crate::broker_config::is_broker_config_tag(header.control_tag) {
                self.broker_configs.apply_stored(files, entry);
            }
        }
    }

    /// Applies an offset commit or a transaction record ordered at
    /// `sequence`: a transaction that commits hands its groups' offsets
    /// over as a commit ordered at the same sequence.
    pub fn apply_ordered(&mut self, record: ControlRecord, sequence: u64) {
        match record {
            record @ ControlRecord::CommitOffsets { .. } => self.apply_commit(record, sequence),
            record @ (ControlRecord::Transaction(_) | ControlRecord::TxnOffsetCommit { .. }) => {
                for (group, offsets) in self.transactions.apply(&record, sequence) {
                    self.apply_commit(ControlRecord::CommitOffsets { group, offsets }, sequence);
                }
            }
            _ => {}
        }
    }

    /// Applies a consumer group's offset commit, ordered at `sequence`.
    pub fn apply_commit(&mut self, record: ControlRecord, sequence: u64) {
        let ControlRecord::CommitOffsets { group, offsets } = record else {
            return;
        };
        let committed = self.group_offsets.entry(group.clone()).or_default();
        let sequences = self.commit_sequences.entry(group.clone()).or_default();
        for offset in offsets {
            let newest = sequences.entry(offset.stream).or_default();
            if *newest > sequence {
                continue;
            }
            *newest = sequence;
            // A negative offset is a deletion (OffsetDelete, DeleteGroups):
            // Kafka never returns one as committed.
            if offset.offset < 0 {
                committed.remove(&offset.stream);
            } else {
                committed.insert(offset.stream, offset);
            }
        }
        if committed.is_empty() {
            self.group_offsets.remove(&group);
        }
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
    /// arena floor) and that no segment of this gateway holds (it was not
    /// running when they were ordered, or missed them); the log start moves
    /// past them. A batch from `copying_from` (the replicator's next
    /// sequence) on stays: the replicator may still copy it from a holder.
    pub fn drop_recycled(&mut self, floor_of: impl Fn(GatewayIndex) -> u64, copying_from: u64) {
        for partition in self.partitions.values_mut() {
            while let Some(front) = partition.batches.front() {
                let in_region = front
                    .region
                    .is_some_and(|(gateway, position)| position >= floor_of(gateway));
                if in_region || front.disk.is_some() || front.sequence >= copying_from {
                    break;
                }
                partition.log_start = front.end_offset();
                partition.batches.pop_front();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn commit(offset: i64) -> ControlRecord {
        ControlRecord::CommitOffsets {
            group: "readers".into(),
            offsets: vec![CommittedOffset {
                stream: 7,
                offset,
                leader_epoch: -1,
                metadata: String::new(),
            }],
        }
    }

    fn committed(index: &OrderIndex) -> Option<i64> {
        index
            .group_offsets
            .get("readers")
            .and_then(|offsets| offsets.get(&7))
            .map(|committed| committed.offset)
    }

    #[test]
    fn a_commit_applied_late_never_undoes_a_newer_one() {
        let mut index = OrderIndex::default();
        index.apply_commit(commit(50), 20);
        // Ordered at 10, applied only now (copied from a holder).
        index.apply_commit(commit(30), 10);
        assert_eq!(committed(&index), Some(50));
        index.apply_commit(commit(60), 30);
        assert_eq!(committed(&index), Some(60));
        // A deletion ordered later stays deleted whatever arrives late.
        index.apply_commit(commit(-1), 40);
        index.apply_commit(commit(35), 35);
        assert_eq!(committed(&index), None);
    }
}
