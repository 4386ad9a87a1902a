//! Kafka-style retention by time and size.
//!
//! Every `--log-retention-check-interval-ms` (Kafka's
//! `log.retention.check.interval.ms`, 5 minutes by default) each gateway
//! runs one pass:
//!
//! 1. the lowest live gateway asks, per partition of every topic with
//!    `retention.ms` or `retention.bytes` set (not -1; a topic without its
//!    own takes the dynamic broker config `log.retention.ms` /
//!    `log.retention.bytes` of this gateway, else Kafka's default), where retention
//!    would move the log start, and publishes a DeleteRecords control
//!    record for each move, so every gateway applies the same log start;
//! 2. every gateway forgets the aborted transactions below each
//!    partition's log start, and deletes its own segment files that nothing
//!    readable is left in.
//!
//! Time retention looks at each batch's largest timestamp, as Kafka looks
//! at each segment's.
//!
//! The log start moves only through a DeleteRecords control record, so
//! every gateway agrees on it; each gateway then deletes its own files. A
//! segment holding control entries (topic changes, offset commits,
//! producer ids) is kept: rebuilding a lost region replays them.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use cxlkafka_log::memory::MemoryBackend;
use cxlkafka_sequencer::catalog::Topic;
use cxlkafka_sequencer::control::ControlRecord;

use super::{lock_read, lock_write, Cluster, ClusterLog, ORDER_TOPIC};
use crate::api_support::topic_config::own_retention;
use crate::broker_config::BrokerConfigStore;
use crate::telemetry;

/// How long one DeleteRecords may take to be ordered.
const MOVE_TIMEOUT: Duration = Duration::from_secs(30);

/// What one pass did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RetentionReport {
    /// Partition log starts moved.
    pub log_starts_moved: u64,
    /// Segment files deleted on this gateway.
    pub segments_deleted: u64,
    /// Their bytes.
    pub bytes_deleted: u64,
}

/// Runs a pass every `interval` until the runtime stops.
pub fn spawn(log: Arc<dyn ClusterLog>, interval: Duration) -> tokio::task::JoinHandle<()> {
    // Exported from the start, so dashboards see 0 rather than nothing.
    metrics::counter!(telemetry::RETENTION_LOG_START_MOVES_TOTAL).increment(0);
    metrics::counter!(telemetry::RETENTION_DELETED_SEGMENTS_TOTAL).increment(0);
    metrics::counter!(telemetry::RETENTION_DELETED_BYTES_TOTAL).increment(0);
    tokio::spawn(async move {
        let mut ticker = tokio::time::interval(interval);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        // The first tick completes at once: start one interval in.
        ticker.tick().await;
        loop {
            ticker.tick().await;
            let report = run_once(log.as_ref()).await;
            if report != RetentionReport::default() {
                tracing::info!(?report, "retention pass");
            }
        }
    })
}

/// One retention pass.
pub async fn run_once(log: &dyn ClusterLog) -> RetentionReport {
    let mut report = RetentionReport::default();
    let now_ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_millis() as i64);
    let lowest_live = log
        .members()
        .first()
        .map(|member| i32::from(member.gateway));
    if lowest_live == Some(log.node_id()) {
        let broker = log.broker_configs();
        for topic in log.topics() {
            let (retention_ms, retention_bytes) = retention_of(&topic, &broker);
            if topic.name == ORDER_TOPIC || (retention_ms < 0 && retention_bytes < 0) {
                continue;
            }
            for stream in (0..topic.partitions).filter_map(|partition| topic.stream(partition)) {
                let Some(offset) =
                    log.retention_start(stream, retention_ms, retention_bytes, now_ms)
                else {
                    continue;
                };
                let record = ControlRecord::DeleteRecords { stream, offset };
                match log.control(&record, MOVE_TIMEOUT).await {
                    Ok(completion) if completion.error == 0 => {
                        report.log_starts_moved += 1;
                        metrics::counter!(telemetry::RETENTION_LOG_START_MOVES_TOTAL).increment(1);
                    }
                    Ok(completion) => tracing::warn!(
                        topic = %topic.name,
                        stream,
                        status = completion.error,
                        "retention could not move a log start"
                    ),
                    Err(error) => {
                        tracing::warn!(topic = %topic.name, %error, "retention move not ordered")
                    }
                }
            }
        }
    }
    forget_aborted_below_log_starts(log);
    let (segments, bytes) = log.delete_expired_segments();
    report.segments_deleted = segments;
    report.bytes_deleted = bytes;
    report
}

/// Drops, on this gateway, the aborted transactions wholly below their
/// partition's log start: no Fetch can return their records any more
/// (every gateway does it for itself, as every gateway serves Fetch).
fn forget_aborted_below_log_starts(log: &dyn ClusterLog) {
    let transactions = log.transactions();
    for topic in log.topics() {
        for stream in (0..topic.partitions).filter_map(|partition| topic.stream(partition)) {
            transactions.forget_below(stream, log.offsets(stream).0);
        }
    }
}

/// The `retention.ms` and `retention.bytes` that apply to `topic`: its
/// own, else this gateway's dynamic `log.retention.*` (Kafka's default
/// when none is set, as the catalog holds it).
fn retention_of(topic: &Topic, broker: &BrokerConfigStore) -> (i64, i64) {
    let retention_ms = if own_retention(topic, "retention.ms") {
        topic.retention_ms
    } else {
        broker.log_retention_ms().unwrap_or(topic.retention_ms)
    };
    let retention_bytes = if own_retention(topic, "retention.bytes") {
        topic.retention_bytes
    } else {
        broker
            .log_retention_bytes()
            .unwrap_or(topic.retention_bytes)
    };
    (retention_ms, retention_bytes)
}

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
    pub(super) fn delete_segments_below_log_starts(&self, topics: &[Topic]) -> (u64, u64) {
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
