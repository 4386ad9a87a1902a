//! Per-partition gauges: log end offset, log start offset and size, set for
//! every live partition every [`PARTITION_INTERVAL`]. A deleted topic's
//! series are no longer set and leave the scrape after the exporter's idle
//! timeout (`telemetry::install_prometheus`).

use std::sync::Arc;
use std::time::Duration;

use cxlkafka_sequencer::catalog::Topic;

use crate::cluster::ClusterLog;
use crate::telemetry;

/// How often the partition gauges are set; well within the gauges' idle
/// timeout (at least 15 s).
pub const PARTITION_INTERVAL: Duration = Duration::from_secs(10);

/// Sets the partition gauges now and then every [`PARTITION_INTERVAL`]
/// until `log` is dropped.
pub fn spawn(log: &Arc<dyn ClusterLog>) {
    let log = Arc::downgrade(log);
    tokio::spawn(async move {
        let mut interval = tokio::time::interval(PARTITION_INTERVAL);
        loop {
            interval.tick().await;
            let Some(log) = log.upgrade() else { return };
            record_partitions(log.as_ref());
        }
    });
}

/// Sets the three gauges of every partition of every live topic.
pub fn record_partitions(log: &dyn ClusterLog) {
    for topic in log.topics() {
        record_topic(log, &topic);
    }
}

fn record_topic(log: &dyn ClusterLog, topic: &Topic) {
    for partition in 0..topic.partitions {
        let Some(stream) = topic.stream(partition) else {
            continue;
        };
        let (log_start, log_end) = log.offsets(stream);
        let labels = [
            ("topic", topic.name.clone()),
            ("partition", partition.to_string()),
        ];
        metrics::gauge!(telemetry::PARTITION_LOG_END_OFFSET, &labels).set(log_end as f64);
        metrics::gauge!(telemetry::PARTITION_LOG_START_OFFSET, &labels).set(log_start as f64);
        metrics::gauge!(telemetry::PARTITION_SIZE_BYTES, &labels)
            .set(log.partition_bytes(stream) as f64);
    }
}
