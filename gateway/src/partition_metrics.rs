//! Per-partition gauges: log end offset, log start offset and size, set for
//! every live partition every [`PARTITION_INTERVAL`]. A deleted topic's
//! series are no longer set and leave the scrape after the exporter's idle
//! timeout (`telemetry::install_prometheus`).
//!
//! A partition's size is summed over its batches once, then grown by the
//! batches appended since the last look, so a busy partition with a long
//! log costs what it gained, not its whole index, every second. It is
//! summed anew when its log start moves (retention, DeleteRecords) or its
//! offsets go back (a topic deleted and created again).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use cxlkafka_sequencer::catalog::Topic;

use crate::cluster::ClusterLog;
use crate::telemetry;

/// How often the partition gauges are set; well within the gauges' idle
/// timeout (at least 15 s).
pub const PARTITION_INTERVAL: Duration = Duration::from_secs(1);

/// What the last look saw of one partition.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Seen {
    topic_id: [u8; 16],
    log_start: i64,
    log_end: i64,
    bytes: u64,
}

/// The sizes the reporter keeps between looks, by stream.
#[derive(Debug, Default)]
pub struct PartitionSizes {
    seen: HashMap<u32, Seen>,
}

impl PartitionSizes {
    /// The size the last look gave `stream`, if it is a live partition.
    pub fn bytes(&self, stream: u32) -> Option<u64> {
        self.seen.get(&stream).map(|seen| seen.bytes)
    }
}

/// Sets the partition gauges now and then every [`PARTITION_INTERVAL`]
/// until `log` is dropped.
pub fn spawn(log: &Arc<dyn ClusterLog>) {
    let log = Arc::downgrade(log);
    tokio::spawn(async move {
        let mut interval = tokio::time::interval(PARTITION_INTERVAL);
        let mut sizes = PartitionSizes::default();
        loop {
            interval.tick().await;
            let Some(log) = log.upgrade() else { return };
            record_partitions(log.as_ref(), &mut sizes);
        }
    });
}

/// Sets the three gauges of every partition of every live topic.
pub fn record_partitions(log: &dyn ClusterLog, sizes: &mut PartitionSizes) {
    let mut now = HashMap::with_capacity(sizes.seen.len());
    for topic in log.topics() {
        record_topic(log, &topic, &sizes.seen, &mut now);
    }
    sizes.seen = now;
}

fn record_topic(
    log: &dyn ClusterLog,
    topic: &Topic,
    before: &HashMap<u32, Seen>,
    now: &mut HashMap<u32, Seen>,
) {
    for partition in 0..topic.partitions {
        let Some(stream) = topic.stream(partition) else {
            continue;
        };
        let (log_start, log_end) = log.offsets(stream);
        let bytes = match before.get(&stream) {
            Some(seen)
                if seen.topic_id == topic.topic_id
                    && seen.log_start == log_start
                    && seen.log_end <= log_end =>
            {
                seen.bytes + log.partition_bytes(stream, seen.log_end, log_end)
            }
            _ => log.partition_bytes(stream, log_start, log_end),
        };
        now.insert(
            stream,
            Seen {
                topic_id: topic.topic_id,
                log_start,
                log_end,
                bytes,
            },
        );
        let labels = [
            ("topic", topic.name.clone()),
            ("partition", partition.to_string()),
        ];
        metrics::gauge!(telemetry::PARTITION_LOG_END_OFFSET, &labels).set(log_end as f64);
        metrics::gauge!(telemetry::PARTITION_LOG_START_OFFSET, &labels).set(log_start as f64);
        metrics::gauge!(telemetry::PARTITION_SIZE_BYTES, &labels).set(bytes as f64);
    }
}
