//! [`ClusterLog`] for [`Cluster`]: the one door handlers use, each method
//! handing over to the role that owns the work.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use cxlkafka_log::layout::{kind, BatchHeader, Completion};
use cxlkafka_log::memory::MemoryBackend;
use cxlkafka_sequencer::catalog::Topic;
use cxlkafka_sequencer::control::{CommittedOffset, ControlRecord};
use cxlkafka_sequencer::membership;
use cxlkafka_sequencer::sequencer::unix_ns;

use super::{
    lock_read, AppendBatch, AppendError, Cluster, ClusterLog, FetchRead, Member, PendingAppend,
    RegionChange,
};

#[async_trait::async_trait]
impl<B: MemoryBackend> ClusterLog for Cluster<B> {
    fn node_id(&self) -> i32 {
        i32::from(self.gateway)
    }

    fn members(&self) -> Vec<Member> {
        membership::live_members(&self.region, self.lease_timeout_ns)
    }

    fn holders(&self) -> Vec<Member> {
        membership::holders(&self.region, self.lease_timeout_ns)
    }

    fn holds_everything(&self) -> bool {
        membership::is_holder(&self.region, self.gateway, self.lease_timeout_ns)
    }

    fn topics(&self) -> Vec<Topic> {
        self.all_topics()
    }

    fn topic(&self, name: &str) -> Option<Topic> {
        self.find_topic(name)
    }

    async fn publish(
        &self,
        batch: AppendBatch<'_>,
        timeout: Duration,
    ) -> Result<PendingAppend, AppendError> {
        let deadline = Instant::now() + timeout;
        let header = BatchHeader {
            kind: kind::DATA,
            stream: batch.stream,
            record_count: batch.record_count,
            producer_id: batch.producer_id,
            producer_epoch: batch.producer_epoch,
            base_sequence: batch.base_sequence,
            max_timestamp: batch.max_timestamp,
            publish_unix_ns: unix_ns(),
            ..bytemuck::Zeroable::zeroed()
        };
        let receiver = self.publish_header(header, batch.payload, deadline).await?;
        Ok(PendingAppend::new(receiver, deadline))
    }

    async fn control(
        &self,
        record: &ControlRecord,
        timeout: Duration,
    ) -> Result<Completion, AppendError> {
        let deadline = Instant::now() + timeout;
        let header = BatchHeader {
            kind: kind::CONTROL,
            producer_id: -1,
            publish_unix_ns: unix_ns(),
            ..bytemuck::Zeroable::zeroed()
        };
        let receiver = self
            .publish_header(header, &record.encode(), deadline)
            .await?;
        let completion = PendingAppend::new(receiver, deadline).completion().await?;
        if completion.global_sequence > 0 {
            // Answer only once this gateway's own view includes the change,
            // and once a disk holds it (Kafka commits offsets with acks=all).
            let remaining = deadline.saturating_duration_since(Instant::now());
            self.wait_applied(completion.global_sequence, remaining)
                .await;
            self.wait_copies_unless_fenced(completion.global_sequence, 1, deadline)
                .await?;
        }
        Ok(completion)
    }

    fn offsets(&self, stream: u32) -> (i64, i64) {
        self.partition_offsets(stream)
    }

    fn partition_bytes(&self, stream: u32, from: i64, to: i64) -> u64 {
        self.partition_bytes_between(stream, from, to)
    }

    fn read(&self, stream: u32, offset: i64, max_bytes: usize) -> FetchRead {
        self.read_partition(stream, offset, max_bytes)
    }

    fn offset_for_timestamp(&self, stream: u32, timestamp: i64) -> Option<(i64, i64)> {
        self.find_offset_for_timestamp(stream, timestamp)
    }

    fn max_timestamp(&self, stream: u32) -> Option<(i64, i64)> {
        self.find_max_timestamp(stream)
    }

    fn committed_offsets(&self, group: &str) -> HashMap<u32, CommittedOffset> {
        lock_read(&self.index)
            .group_offsets
            .get(group)
            .cloned()
            .unwrap_or_default()
    }

    fn producers(&self, stream: u32) -> Vec<(i64, super::ProducerState)> {
        let index = lock_read(&self.index);
        let mut producers: Vec<(i64, super::ProducerState)> = index
            .partitions
            .get(&stream)
            .map(|partition| {
                partition
                    .producers
                    .iter()
                    .map(|(&id, &state)| (id, state))
                    .collect()
            })
            .unwrap_or_default();
        producers.sort_unstable_by_key(|&(id, _)| id);
        producers
    }

    fn offset_groups(&self) -> Vec<String> {
        lock_read(&self.index)
            .group_offsets
            .keys()
            .cloned()
            .collect()
    }

    fn security(&self) -> Arc<crate::security::SecurityStore> {
        Arc::clone(&lock_read(&self.index).security)
    }

    fn transactions(&self) -> Arc<crate::transactions::TransactionStore> {
        Arc::clone(&self.transactions)
    }

    fn broker_configs(&self) -> Arc<crate::broker_config::BrokerConfigStore> {
        Arc::clone(&self.broker_configs)
    }

    async fn wait_for_order(&self, sequence: u64, timeout: Duration) -> u64 {
        self.wait_applied(sequence, timeout).await
    }

    fn applied(&self) -> u64 {
        Cluster::applied(self)
    }

    async fn wait_durable(
        &self,
        sequence: u64,
        disks: usize,
        deadline: Instant,
    ) -> Result<(), AppendError> {
        self.wait_copies_unless_fenced(sequence, disks, deadline)
            .await
    }

    fn retention_start(
        &self,
        stream: u32,
        retention_ms: i64,
        retention_bytes: i64,
        now_ms: i64,
    ) -> Option<i64> {
        self.retention_log_start(stream, retention_ms, retention_bytes, now_ms)
    }

    fn delete_expired_segments(&self) -> (u64, u64) {
        let topics = self.all_topics();
        self.delete_segments_below_log_starts(&topics)
    }

    fn shutdown(&self) {
        self.stop();
    }

    async fn region_lost(&self) -> RegionChange {
        self.fence.wait_lost().await
    }
}

impl<B: MemoryBackend> Cluster<B> {
    /// An acks=all wait that fails as soon as this gateway is fenced: copies
    /// of a region nobody else sees acknowledge nothing.
    async fn wait_copies_unless_fenced(
        &self,
        sequence: u64,
        disks: usize,
        deadline: Instant,
    ) -> Result<(), AppendError> {
        if let Some(refusal) = self.fence.refusal() {
            return Err(refusal);
        }
        tokio::select! {
            copied = self.wait_disk_copies(sequence, disks, deadline) => {
                copied?;
                self.fence.refusal().map_or(Ok(()), Err)
            }
            _change = self.fence.wait_lost() => Err(AppendError::RegionLost),
        }
    }
}
