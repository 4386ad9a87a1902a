//! The sink: a [`ClusterLog`] that acknowledges every batch at once and
//! stores nothing, for measuring clients and the protocol layer against a
//! broker with no storage cost. Every bandwidth figure of this project is
//! given as a ratio to the same client against the sink on the same
//! machine in the same run.
//!
//! It answers like a one-gateway broker: topics live in memory, offsets
//! advance per partition. What a fetch returns is its [`SinkFetches`]:
//!
//! - `cxlkafka serve --sink` ([`SinkFetches::Nothing`]): no records at the
//!   high watermark, out of range below it; nothing it acknowledges can be
//!   read back;
//! - `cxlkafka bench sink` ([`SinkFetches::Templates`]): the first batch
//!   produced to each partition is kept as a template, and a fetch below
//!   the high watermark gets copies of it tiled over the offsets (batch k
//!   covers offsets k*n..(k+1)*n for a template of n records), each with
//!   its base offset rewritten: one copy per batch served and no storage
//!   behind it, so `bench consume` against it measures what a fetch costs
//!   without storage.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::{Bytes, BytesMut};
use cxlkafka_log::layout::{Completion, MAX_PARTITIONS_PER_TOPIC, MAX_TOPICS};
use cxlkafka_sequencer::catalog::{NewTopic, Topic};
use cxlkafka_sequencer::control::{CommittedOffset, ControlRecord};
use cxlkafka_sequencer::status;
use tokio::sync::oneshot;

use super::{AppendBatch, AppendError, ClusterLog, FetchRead, Member, PendingAppend};
use crate::records::set_base_offset;

/// What the sink's fetches return (see the module documentation).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SinkFetches {
    /// Nothing: `serve --sink`.
    Nothing,
    /// Copies of each partition's first batch: `bench sink`.
    Templates,
}

#[derive(Default)]
struct SinkState {
    topics: HashMap<String, Topic>,
    next_offsets: HashMap<u32, i64>,
    groups: HashMap<String, HashMap<u32, CommittedOffset>>,
    next_slot: u32,
    templates: HashMap<u32, Template>,
}

/// A partition's template batch.
#[derive(Clone)]
struct Template {
    batch: Bytes,
    records: i64,
}

/// A storage side that stores nothing.
pub struct SinkLog {
    member: Member,
    fetches: SinkFetches,
    state: Mutex<SinkState>,
    sequence: AtomicU64,
    next_producer_id: AtomicU64,
    security: std::sync::Arc<crate::security::SecurityStore>,
    broker_configs: std::sync::Arc<crate::broker_config::BrokerConfigStore>,
    transactions: std::sync::Arc<crate::transactions::TransactionStore>,
}

impl SinkLog {
    /// A sink answering as node 0 at the advertised address, whose fetches
    /// return nothing (`serve --sink`).
    pub fn new(host: String, port: u16) -> Self {
        Self::with_fetches(host, port, SinkFetches::Nothing)
    }

    /// A sink answering as node 0 at the advertised address, whose fetches
    /// return what `fetches` says.
    pub fn with_fetches(host: String, port: u16, fetches: SinkFetches) -> Self {
        Self {
            member: Member {
                gateway: 0,
                host,
                port,
            },
            fetches,
            state: Mutex::new(SinkState::default()),
            sequence: AtomicU64::new(1),
            next_producer_id: AtomicU64::new(1000),
            security: Default::default(),
            broker_configs: Default::default(),
            transactions: Default::default(),
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, SinkState> {
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn completion(&self, error: i32, base_offset: i64) -> Completion {
        let global_sequence = if error == status::OK {
            self.sequence.fetch_add(1, Ordering::Relaxed)
        } else {
            0
        };
        Completion {
            commit: 0,
            global_sequence,
            base_offset,
            log_append_unix_ms: SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |elapsed| elapsed.as_millis() as i64),
            error,
            _pad: [0; 92],
        }
    }

    fn apply(&self, record: &ControlRecord) -> (i32, i64) {
        let mut state = self.state();
        match record {
            ControlRecord::CreateTopic { .. } => {
                let Some(topic) = NewTopic::from_record(record) else {
                    return (status::INVALID_CONTROL, -1);
                };
                if state.topics.contains_key(topic.name) {
                    return (status::TOPIC_EXISTS, -1);
                }
                if let Err(refusal) = topic.check() {
                    return (refusal, -1);
                }
                if state.next_slot >= MAX_TOPICS {
                    return (status::CATALOG_FULL, -1);
                }
                let slot = state.next_slot;
                state.next_slot += 1;
                state
                    .topics
                    .insert(topic.name.to_string(), topic.topic(slot, 0));
                (status::OK, i64::from(slot))
            }
            ControlRecord::DeleteTopic { name } => match state.topics.remove(name) {
                Some(topic) => (status::OK, i64::from(topic.slot)),
                None => (status::UNKNOWN_TOPIC, -1),
            },
            ControlRecord::CreatePartitions { name, total } => match state.topics.get_mut(name) {
                Some(topic) if *total > topic.partitions && *total <= MAX_PARTITIONS_PER_TOPIC => {
                    topic.partitions = *total;
                    (status::OK, i64::from(topic.slot))
                }
                Some(_) => (status::INVALID_PARTITIONS, -1),
                None => (status::UNKNOWN_TOPIC, -1),
            },
            ControlRecord::AlterTopicConfigs {
                name,
                retention_ms,
                retention_bytes,
                configs,
            } => match state.topics.get_mut(name) {
                Some(topic) => {
                    topic.retention_ms = *retention_ms;
                    topic.retention_bytes = *retention_bytes;
                    topic.configs = configs.clone();
                    (status::OK, i64::from(topic.slot))
                }
                None => (status::UNKNOWN_TOPIC, -1),
            },
            ControlRecord::AllocateProducerId => (
                status::OK,
                self.next_producer_id.fetch_add(1, Ordering::Relaxed) as i64,
            ),
            ControlRecord::CommitOffsets { group, offsets } => {
                let committed = state.groups.entry(group.clone()).or_default();
                for offset in offsets {
                    if offset.offset < 0 {
                        committed.remove(&offset.stream);
                    } else {
                        committed.insert(offset.stream, offset.clone());
                    }
                }
                (status::OK, 0)
            }
            ControlRecord::DeleteRecords { stream, offset } => {
                let high_watermark = state.next_offsets.get(stream).copied().unwrap_or(0);
                if *offset > high_watermark || *offset < -1 {
                    (status::OFFSET_OUT_OF_RANGE, -1)
                } else {
                    (
                        status::OK,
                        if *offset == -1 {
                            high_watermark
                        } else {
                            *offset
                        },
                    )
                }
            }
            // Users and ACLs live in memory, like the sink's topics.
            security @ (ControlRecord::UpsertScramCredential { .. }
            | ControlRecord::DeleteScramCredential { .. }
            | ControlRecord::CreateAcls { .. }
            | ControlRecord::DeleteAcls { .. }) => {
                self.security.apply(security);
                (status::OK, 0)
            }
            // Broker configs too; the sink is node 0.
            configs @ ControlRecord::AlterBrokerConfigs { .. } => {
                self.broker_configs.apply(configs);
                (status::OK, 0)
            }
            // Ordered by `control`, which needs their sequence first.
            ControlRecord::Transaction(_) | ControlRecord::TxnOffsetCommit { .. } => {
                (status::OK, 0)
            }
        }
    }
}

#[async_trait::async_trait]
impl ClusterLog for SinkLog {
    fn node_id(&self) -> i32 {
        0
    }

    fn members(&self) -> Vec<Member> {
        vec![self.member.clone()]
    }

    fn topics(&self) -> Vec<Topic> {
        let mut topics: Vec<Topic> = self.state().topics.values().cloned().collect();
        topics.sort_by(|a, b| a.name.cmp(&b.name));
        topics
    }

    fn topic(&self, name: &str) -> Option<Topic> {
        self.state().topics.get(name).cloned()
    }

    async fn publish(
        &self,
        batch: AppendBatch<'_>,
        timeout: Duration,
    ) -> Result<PendingAppend, AppendError> {
        let base_offset = {
            let mut state = self.state();
            if self.fetches == SinkFetches::Templates && batch.record_count > 0 {
                state
                    .templates
                    .entry(batch.stream)
                    .or_insert_with(|| Template {
                        batch: Bytes::copy_from_slice(batch.payload),
                        records: i64::from(batch.record_count),
                    });
            }
            let next = state.next_offsets.entry(batch.stream).or_insert(0);
            let base_offset = *next;
            *next += i64::from(batch.record_count);
            base_offset
        };
        let (sender, receiver) = oneshot::channel();
        // The receiver is still held by the PendingAppend below.
        let _ = sender.send(self.completion(status::OK, base_offset));
        Ok(PendingAppend::new(receiver, Instant::now() + timeout))
    }

    async fn control(
        &self,
        record: &ControlRecord,
        _timeout: Duration,
    ) -> Result<Completion, AppendError> {
        if record.transactional_id().is_some() {
            // Transactions live in memory too; the store needs the record's
            // sequence, as a gateway applies it from the order log.
            let completion = self.completion(status::OK, 0);
            let commits = self.transactions.apply(record, completion.global_sequence);
            for (group, offsets) in commits {
                self.apply(&ControlRecord::CommitOffsets { group, offsets });
            }
            return Ok(completion);
        }
        let (error, value) = self.apply(record);
        Ok(self.completion(error, value))
    }

    fn offsets(&self, stream: u32) -> (i64, i64) {
        let high_watermark = self.state().next_offsets.get(&stream).copied().unwrap_or(0);
        match self.fetches {
            SinkFetches::Nothing => (high_watermark, high_watermark),
            SinkFetches::Templates => (0, high_watermark),
        }
    }

    fn partition_bytes(&self, _stream: u32, _from: i64, _to: i64) -> u64 {
        // The sink keeps no batch.
        0
    }

    fn read(&self, stream: u32, offset: i64, max_bytes: usize) -> FetchRead {
        let (log_start, high_watermark) = self.offsets(stream);
        if offset < log_start || offset > high_watermark {
            return FetchRead::OutOfRange {
                high_watermark,
                log_start,
            };
        }
        let template = self.state().templates.get(&stream).cloned();
        let batches = template.map_or_else(Vec::new, |template| {
            template.tile(offset, high_watermark, max_bytes)
        });
        FetchRead::Batches {
            batches,
            high_watermark,
            log_start,
        }
    }

    fn offset_for_timestamp(&self, _stream: u32, _timestamp: i64) -> Option<(i64, i64)> {
        None
    }

    fn max_timestamp(&self, _stream: u32) -> Option<(i64, i64)> {
        None
    }

    fn committed_offsets(&self, group: &str) -> HashMap<u32, CommittedOffset> {
        self.state().groups.get(group).cloned().unwrap_or_default()
    }

    fn offset_groups(&self) -> Vec<String> {
        self.state().groups.keys().cloned().collect()
    }

    fn security(&self) -> std::sync::Arc<crate::security::SecurityStore> {
        std::sync::Arc::clone(&self.security)
    }

    fn producers(&self, _stream: u32) -> Vec<(i64, super::ProducerState)> {
        // The sink keeps no batch, so no producer state.
        Vec::new()
    }

    fn transactions(&self) -> std::sync::Arc<crate::transactions::TransactionStore> {
        std::sync::Arc::clone(&self.transactions)
    }

    fn broker_configs(&self) -> std::sync::Arc<crate::broker_config::BrokerConfigStore> {
        std::sync::Arc::clone(&self.broker_configs)
    }

    async fn wait_for_order(&self, sequence: u64, timeout: Duration) -> u64 {
        // Every acknowledged batch is "applied" at once; past that, nothing
        // new ever becomes readable, so a long poll waits its time out.
        if self.applied() <= sequence {
            tokio::time::sleep(timeout).await;
        }
        self.applied()
    }

    fn applied(&self) -> u64 {
        self.sequence.load(Ordering::Relaxed)
    }

    async fn wait_durable(
        &self,
        _sequence: u64,
        _disks: usize,
        _deadline: std::time::Instant,
    ) -> Result<(), AppendError> {
        // The sink keeps nothing, so there is nothing to wait for: acks=all
        // costs the client what acks=1 does, the baseline to compare with.
        Ok(())
    }

    fn retention_start(&self, _: u32, _: i64, _: i64, _: i64) -> Option<i64> {
        None
    }

    fn delete_expired_segments(&self) -> (u64, u64) {
        (0, 0)
    }

    fn shutdown(&self) {}
}

impl Template {
    /// Copies of the template from the one holding `offset` up to the high
    /// watermark, within `max_bytes` (at least one).
    fn tile(&self, offset: i64, high_watermark: i64, max_bytes: usize) -> Vec<Bytes> {
        let mut batches = Vec::new();
        let mut base = offset - offset % self.records;
        let mut taken = 0usize;
        while base < high_watermark && (taken == 0 || taken + self.batch.len() <= max_bytes) {
            let mut copy = BytesMut::from(&self.batch[..]);
            if set_base_offset(&mut copy, base).is_err() {
                break;
            }
            taken += copy.len();
            batches.push(copy.freeze());
            base += self.records;
        }
        batches
    }
}
