//! Retention on the storage side: where `retention.ms` and
//! `retention.bytes` would move a partition's log start, and deleting the
//! segment files nothing readable is left in.
//!
//! The log start itself moves only through a DeleteRecords control record
//! (see [`crate::retention`]), so every gateway agrees on it; each gateway
//! then deletes its own files. A segment holding control entries (topic
//! changes, offset commits, producer ids) is kept: rebuilding a lost region
//! replays them.

use cxlkafka_log::memory::MemoryBackend;
use cxlkafka_sequencer::catalog::Topic;

use super::runtime::{lock_read, lock_write, Cluster};
use crate::telemetry;

impl<B: MemoryBackend> Cluster<B> {
    /// The log start retention calls for, if it is past the current one.
    pub(super) fn retention_log_start(
        &self,
        stream: u32,
        retention_ms: i64,
        retention_bytes: i64,
        now_ms: i64,
    ) -> Option<i64> {
        let deleted_before = self.deleted_before(stream);
        let index = lock_read(&self.index);
        let partition = index.partitions.get(&stream)?;
        let current = partition.log_start.max(deleted_before);
        let kept = partition.batches.range(partition.position(current)..);
        let mut start = current;
        if retention_ms >= 0 {
            let horizon = now_ms.saturating_sub(retention_ms);
            for batch in kept.clone() {
                // A batch without timestamps counts from when it was ordered.
                let stamp = if batch.max_timestamp >= 0 {
                    batch.max_timestamp
                } else {
                    batch.log_append_ms
                };
                if stamp >= horizon {
                    break;
                }
                start = start.max(batch.end_offset());
            }
        }
        if retention_bytes >= 0 {
            let mut total: u64 = kept.clone().map(|batch| u64::from(batch.length)).sum();
            for batch in kept {
                if total <= retention_bytes as u64 {
                    break;
                }
                total -= u64::from(batch.length);
                start = start.max(batch.end_offset());
            }
        }
        (start > current).then_some(start)
    }

    /// Deletes sealed segments whose every batch is below its partition's
    /// log start (or of a topic that is gone) and that hold no control
    /// entry; drops the index entries below each log start. Returns
    /// (segments, bytes) deleted.
    pub(super) fn delete_expired_segments(&self, topics: &[Topic]) -> (u64, u64) {
        let live: std::collections::HashSet<u32> = topics
            .iter()
            .flat_map(|topic| (0..topic.partitions).filter_map(|p| topic.stream(p)))
            .collect();
        {
            let mut index = lock_write(&self.index);
            let starts: Vec<(u32, i64)> = index
                .partitions
                .keys()
                .map(|&stream| (stream, self.deleted_before(stream)))
                .collect();
            for (stream, start) in starts {
                if let Some(partition) = index.partitions.get_mut(&stream) {
                    while partition
                        .batches
                        .front()
                        .is_some_and(|batch| batch.end_offset() <= start)
                    {
                        partition.batches.pop_front();
                    }
                    partition.log_start = partition.log_start.max(start);
                }
            }
        }
        let (mut segments, mut bytes) = (0, 0);
        for contents in self.disk.sealed_contents() {
            let expired = !contents.has_control
                && contents.stream_ends.iter().all(|(&stream, &end)| {
                    !live.contains(&stream) || end <= self.deleted_before(stream)
                });
            if !expired {
                continue;
            }
            match self.disk.delete_segment(contents.first_sequence) {
                Ok(()) => {
                    segments += 1;
                    bytes += contents.bytes;
                    tracing::info!(
                        first = contents.first_sequence,
                        last = contents.last_sequence,
                        bytes = contents.bytes,
                        "retention deleted a segment"
                    );
                }
                Err(error) => tracing::warn!(%error, "cannot delete an expired segment"),
            }
        }
        metrics::counter!(telemetry::RETENTION_DELETED_SEGMENTS_TOTAL).increment(segments);
        metrics::counter!(telemetry::RETENTION_DELETED_BYTES_TOTAL).increment(bytes);
        (segments, bytes)
    }
}
