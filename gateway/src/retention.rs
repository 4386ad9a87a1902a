//! Kafka-style retention by time and size.
//!
//! Every `--log-retention-check-interval-ms` (Kafka's
//! `log.retention.check.interval.ms`, 5 minutes by default) each gateway
//! runs one pass:
//!
//! 1. the lowest live gateway asks, per partition of every topic with
//!    `retention.ms` or `retention.bytes` set (not -1), where retention
//!    would move the log start, and publishes a DeleteRecords control
//!    record for each move, so every gateway applies the same log start;
//! 2. every gateway deletes its own segment files that nothing readable is
//!    left in.
//!
//! Time retention looks at each batch's largest timestamp, as Kafka looks
//! at each segment's.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use cxlkafka_sequencer::control::ControlRecord;

use crate::cluster::ClusterLog;
use crate::cluster::ORDER_TOPIC;
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
        for topic in log.topics() {
            if topic.name == ORDER_TOPIC || (topic.retention_ms < 0 && topic.retention_bytes < 0) {
                continue;
            }
            for stream in (0..topic.partitions).filter_map(|partition| topic.stream(partition)) {
                let Some(offset) =
                    log.retention_start(stream, topic.retention_ms, topic.retention_bytes, now_ms)
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
    let (segments, bytes) = log.delete_expired_segments();
    report.segments_deleted = segments;
    report.bytes_deleted = bytes;
    report
}
