//! The read path: topics, a partition's offsets, and its batches, from the
//! region while the arena still holds them, else from this gateway's
//! segments; `__cxlkafka_order` is answered by [`super::order_topic`].

use std::collections::HashMap;

use bytes::Bytes;
use cxlkafka_log::layout::{OrderEntry, MAX_STREAMS};
use cxlkafka_log::memory::MemoryBackend;
use cxlkafka_log::ring::read_payload_append;
use cxlkafka_sequencer::catalog::Topic;

use super::index::BatchLocation;
use super::order_topic::{self, ORDER_STREAM, ORDER_TOPIC};
use super::{lock_read, Cluster, FetchRead};
use crate::records::set_base_offset;

impl<B: MemoryBackend> Cluster<B> {
    /// Live topics and the order topic, by name.
    pub(super) fn all_topics(&self) -> Vec<Topic> {
        let mut topics: Vec<Topic> = lock_read(&self.index).topics.values().cloned().collect();
        topics.push(order_topic::order_topic());
        topics.sort_by(|a, b| a.name.cmp(&b.name));
        topics
    }

    /// One live topic, or the order topic.
    pub(super) fn find_topic(&self, name: &str) -> Option<Topic> {
        if name == ORDER_TOPIC {
            return Some(order_topic::order_topic());
        }
        lock_read(&self.index).topics.get(name).cloned()
    }

    /// (log start, high watermark) of a partition.
    pub(super) fn partition_offsets(&self, stream: u32) -> (i64, i64) {
        if stream == ORDER_STREAM {
            return order_topic::offsets(&self.region, self.applied());
        }
        if let Some(partition) = lock_read(&self.index).partitions.get(&stream) {
            return (
                partition.log_start.max(self.deleted_before(stream)),
                partition.high_watermark,
            );
        }
        // Nothing of this partition in the retained order log: its high
        // watermark is the sequencer's, and nothing older is readable.
        if stream >= MAX_STREAMS {
            return (0, 0);
        }
        let layout = self.region.layout();
        let next = self
            .region
            .load_word_fresh(layout.stream_next_offset(stream)) as i64;
        (next, next)
    }

    /// Whole batches from `offset` on (see [`super::ClusterLog::read`]).
    pub(super) fn read_partition(&self, stream: u32, offset: i64, max_bytes: usize) -> FetchRead {
        if stream == ORDER_STREAM {
            return self.read_order_topic(offset, max_bytes);
        }
        let index = lock_read(&self.index);
        let next_sequence = index.next_sequence;
        let Some(partition) = index.partitions.get(&stream) else {
            drop(index);
            return self.read_unindexed(stream, offset, next_sequence);
        };
        let (log_start, high_watermark) = (
            partition.log_start.max(self.deleted_before(stream)),
            partition.high_watermark,
        );
        if offset > high_watermark && self.tailer_behind(next_sequence) {
            // Ordered already, perhaps, but not applied here yet: nothing
            // to return so far, which is not out of range.
            return FetchRead::Batches {
                batches: Vec::new(),
                high_watermark,
                log_start,
            };
        }
        if offset < log_start || offset > high_watermark {
            return FetchRead::OutOfRange {
                high_watermark,
                log_start,
            };
        }
        let locations: Vec<_> = partition
            .batches
            .range(partition.position(offset)..)
            .scan(0usize, |taken, location| {
                // At least one batch, then up to max_bytes.
                if *taken > 0 && *taken + location.length as usize > max_bytes {
                    return None;
                }
                *taken += location.length as usize;
                Some(*location)
            })
            .collect();
        drop(index);
        let batches = self.copy_batches(&locations);
        if batches.is_empty() && offset < high_watermark {
            // Everything from `offset` was recycled under us.
            let (log_start, high_watermark) = self.partition_offsets(stream);
            if offset < log_start {
                return FetchRead::OutOfRange {
                    high_watermark,
                    log_start,
                };
            }
        }
        FetchRead::Batches {
            batches,
            high_watermark,
            log_start,
        }
    }

    fn read_order_topic(&self, offset: i64, max_bytes: usize) -> FetchRead {
        let names: HashMap<u32, String> = lock_read(&self.index)
            .topics
            .values()
            .map(|topic| (topic.slot, topic.name.clone()))
            .collect();
        order_topic::read(&self.region, self.applied(), offset, max_bytes, |slot| {
            names.get(&slot).cloned()
        })
    }

    /// A partition with nothing in this gateway's index.
    fn read_unindexed(&self, stream: u32, offset: i64, next_sequence: u64) -> FetchRead {
        let (log_start, high_watermark) = self.partition_offsets(stream);
        if offset == high_watermark || self.tailer_behind(next_sequence) {
            FetchRead::Batches {
                batches: Vec::new(),
                high_watermark,
                log_start,
            }
        } else {
            FetchRead::OutOfRange {
                high_watermark,
                log_start,
            }
        }
    }

    /// Copies the batches at `locations` into one buffer, filled without
    /// zeroing it first, their base offsets rewritten; the batches are
    /// slices of it. Stops at the first batch neither the region nor this
    /// gateway's disk holds: what it returns is still a prefix.
    fn copy_batches(&self, locations: &[BatchLocation]) -> Vec<Bytes> {
        let total = locations
            .iter()
            .map(|location| location.length as usize)
            .sum();
        let mut buffer = Vec::with_capacity(total);
        let mut ranges = Vec::with_capacity(locations.len());
        let mut next = 0;
        'batches: while next < locations.len() {
            let appended = self.append_batches(&locations[next..], &mut buffer);
            if appended == 0 {
                break;
            }
            let mut start = buffer.len()
                - locations[next..next + appended]
                    .iter()
                    .map(|location| location.length as usize)
                    .sum::<usize>();
            for location in &locations[next..next + appended] {
                let end = start + location.length as usize;
                if set_base_offset(&mut buffer[start..end], location.base_offset).is_err() {
                    buffer.truncate(start);
                    break 'batches;
                }
                ranges.push(start..end);
                start = end;
            }
            next += appended;
        }
        let buffer = Bytes::from(buffer);
        ranges
            .into_iter()
            .map(|range| buffer.slice(range))
            .collect()
    }

    /// First offset whose batch has a timestamp >= `timestamp`.
    pub(super) fn find_offset_for_timestamp(
        &self,
        stream: u32,
        timestamp: i64,
    ) -> Option<(i64, i64)> {
        if stream == ORDER_STREAM {
            return order_topic::offset_for_timestamp(&self.region, self.applied(), timestamp);
        }
        let log_start = self.deleted_before(stream);
        let index = lock_read(&self.index);
        let partition = index.partitions.get(&stream)?;
        partition
            .batches
            .iter()
            .filter(|batch| batch.end_offset() > log_start)
            .find(|batch| batch.max_timestamp >= timestamp)
            .map(|batch| (batch.base_offset.max(log_start), batch.max_timestamp))
    }

    /// The first batch with the partition's largest timestamp, as Kafka answers.
    pub(super) fn find_max_timestamp(&self, stream: u32) -> Option<(i64, i64)> {
        let index = lock_read(&self.index);
        let partition = index.partitions.get(&stream)?;
        partition
            .batches
            .iter()
            .fold(None, |best: Option<(i64, i64)>, batch| match best {
                Some((_, max)) if max >= batch.max_timestamp => best,
                _ => Some((batch.base_offset, batch.max_timestamp)),
            })
    }

    /// Whether the order log holds an entry past what this gateway's index
    /// applied (`next_sequence`, read under the same lock as the partition
    /// looked at). A client can only know of an offset once its order entry
    /// is committed, so while none is pending, an offset beyond the index
    /// is really beyond the log; while one is, it may just be in flight.
    fn tailer_behind(&self, next_sequence: u64) -> bool {
        self.region
            .read_committed::<OrderEntry>(
                self.region.layout().order_entry(next_sequence),
                next_sequence,
            )
            .is_some()
    }

    /// The log start DeleteRecords set for `stream` (0 when never moved).
    /// Bytes of `stream`'s indexed batches that hold offsets `from..to`.
    pub(super) fn partition_bytes_between(&self, stream: u32, from: i64, to: i64) -> u64 {
        let index = lock_read(&self.index);
        let Some(partition) = index.partitions.get(&stream) else {
            return 0;
        };
        let (first, end) = (partition.position(from), partition.position(to));
        if first >= end {
            return 0;
        }
        partition
            .batches
            .range(first..end)
            .map(|batch| u64::from(batch.length))
            .sum()
    }

    pub(super) fn deleted_before(&self, stream: u32) -> i64 {
        if stream >= MAX_STREAMS {
            return 0;
        }
        let layout = self.region.layout();
        self.region
            .load_word_fresh(layout.stream_log_start_offset(stream)) as i64
    }

    /// Appends a batch to `buffer` from the region while its arena still
    /// holds it, else from this gateway's segments; false (and `buffer` as
    /// it was) when neither has it.
    /// Appends the first batch of `locations` to `buffer`: from the region
    /// while the arena still holds it, else from disk together with the
    /// batches after it that lie back to back with it in one data file
    /// (one read, not one per batch). Returns how many batches it
    /// appended; 0 when the first could not be read.
    fn append_batches(&self, locations: &[BatchLocation], buffer: &mut Vec<u8>) -> usize {
        let first = &locations[0];
        if let Some((gateway, position)) = first.region {
            let length = u64::from(first.length);
            if read_payload_append(&self.region, gateway, position, length, buffer).is_ok() {
                return 1;
            }
        }
        let Some(disk) = first.disk else {
            return 0;
        };
        let mut run = 1;
        let mut run_bytes = u64::from(first.length);
        while let Some(following) = locations.get(run).and_then(|location| location.disk) {
            if !disk.follows(run_bytes, &following) {
                break;
            }
            run_bytes += u64::from(locations[run].length);
            run += 1;
        }
        match self
            .disk
            .files()
            .read_payload_append(disk, run_bytes as usize, buffer)
        {
            Ok(()) => run,
            Err(_) => 0,
        }
    }
}
