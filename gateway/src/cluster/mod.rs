//! The gateway's storage side: its slot in the shared region, the batches
//! it publishes, the sequencer it may run, its index of the global order,
//! and its copy of that order on disk.
//!
//! One file per role, each owning its state; [`Cluster`] (here) composes
//! them and [`ClusterLog`] (here) is all that handlers see of it:
//!
//! | file | role | thread |
//! |---|---|---|
//! | `startup.rs` | joins the region, opens the disk tier, resumes, starts the threads; a clean stop | |
//! | `heartbeat.rs` | bumps this gateway's heartbeat every `lease_timeout / 8`, region gauges | `heartbeat` |
//! | `fence.rs` | checks every beat that the mapped region is still the one at its path; stops serving when not | (`heartbeat`) |
//! | `lease.rs` | holds or waits for the sequencer lease; while holding it, orders every ring | `sequencer` |
//! | `publisher.rs` | the ring writer, published batches awaiting their completion | `completions` |
//! | `tailer.rs` | applies the order log to the index and wakes fetches | `tailer` |
//! | `reader.rs` | the read path: partitions from the region or the segments | |
//! | `order_topic.rs` | `__cxlkafka_order`, the total order as a topic | |
//! | `replica.rs` | copies ordered entries into this gateway's segments, group commit, acks=all copies, arena recycling | `replicator`, `syncer` |
//! | `restore.rs` | fills gaps from sibling segments, rebuilds a lost region | |
//! | `peer_copy/` | serves copies of this gateway's segments to peers; copies what its own lack from a holder at startup | `peer-copy` |
//! | `data_dir.rs` | what the data dir records beside the segments: the cluster that wrote it, the highest sequencer epoch | |
//! | `retention.rs` | where retention moves log starts; deleting expired segments | (a tokio task) |
//! | `index.rs` | the per-partition index of ordered batches | |
//! | `sink.rs` | the store-nothing [`ClusterLog`] of `serve --sink` and `bench sink` | |
//!
//! The threads are plain OS threads: they poll region memory, which async
//! tasks must not block on. Membership (slots, heartbeats) and the lease
//! word live in the sequencer crate ([`cxlkafka_sequencer::membership`],
//! [`cxlkafka_sequencer::lease`]); every region address comes from log/'s
//! typed accessors.

mod cluster_log;
mod control_payload;
mod data_dir;
mod fence;
mod heartbeat;
mod index;
mod lease;
mod open;
pub mod order_topic;
mod peer_copy;
mod publisher;
mod reader;
mod replica;
mod restore;
pub mod retention;
mod sink;
mod startup;
mod tailer;

use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex, RwLock};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

pub use control_payload::{control_in_region, control_in_segments};
pub use cxlkafka_log::RegionChange;
pub use cxlkafka_sequencer::membership::Member;
pub use fence::EXIT_REGION_LOST;
pub use index::{BatchLocation, OrderIndex, PartitionIndex, ProducerState};
pub use open::{open_cluster, slot_for_node_id, RegionSettings};
pub use order_topic::{ORDER_STREAM, ORDER_TOPIC};
pub use peer_copy::decode_exchange as decode_peer_copy_exchange;
pub use sink::{SinkFetches, SinkLog};
pub use startup::{start, ClusterOptions};

use bytes::Bytes;
use cxlkafka_log::layout::{Completion, GatewayIndex};
use cxlkafka_log::memory::MemoryBackend;
use cxlkafka_log::Region;
use cxlkafka_sequencer::catalog::Topic;
use cxlkafka_sequencer::control::{CommittedOffset, ControlRecord};
use cxlkafka_sequencer::wait::Bell;
use tokio::sync::oneshot;

/// One batch to publish.
#[derive(Clone, Copy, Debug)]
pub struct AppendBatch<'a> {
    /// The partition's stream.
    pub stream: u32,
    /// The record batch bytes exactly as the producer sent them.
    pub payload: &'a [u8],
    /// Records in the batch.
    pub record_count: u32,
    /// Idempotent producer id, or -1.
    pub producer_id: i64,
    /// Producer epoch.
    pub producer_epoch: i16,
    /// First sequence number.
    pub base_sequence: i32,
    /// Largest record timestamp.
    pub max_timestamp: i64,
}

/// Why a batch could not be published.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AppendError {
    /// Larger than this gateway's arena can ever hold.
    #[error("batch of {0} bytes exceeds the region arena")]
    TooLarge(usize),
    /// No ring or arena space freed up within the request's timeout.
    #[error("region full: no space within the timeout")]
    Full,
    /// The gateway is shutting down.
    #[error("gateway shutting down")]
    ShuttingDown,
    /// Ordered, but not on enough disks within the timeout (acks=all).
    #[error("not held by enough replicas within the timeout")]
    ReplicaTimeout,
    /// This gateway's disk tier cannot write (its data dir is full or
    /// failing), and the batch needs it: for the copy acks=all waits for,
    /// or for the arena space that only its copy would free. Answered at
    /// once rather than at the timeout (Kafka's KAFKA_STORAGE_ERROR).
    #[error("the disk tier cannot write: {0}")]
    Storage(String),
    /// The region this gateway mapped was unlinked, replaced or formatted
    /// again (see `cluster/fence.rs`): nothing it orders counts any more.
    #[error("this gateway's region is no longer the cluster's region")]
    RegionLost,
}

/// A published batch whose place in the order is not known yet: the second
/// half of [`ClusterLog::append`], split off so that a handler can publish
/// in request order and wait for the answer later (see
/// [`ClusterLog::publish`]).
#[derive(Debug)]
pub struct PendingAppend {
    receiver: oneshot::Receiver<Completion>,
    deadline: Instant,
}

impl PendingAppend {
    /// A batch whose completion arrives on `receiver`, awaited at most
    /// until `deadline`.
    pub fn new(receiver: oneshot::Receiver<Completion>, deadline: Instant) -> Self {
        Self { receiver, deadline }
    }

    /// Waits (until the deadline given at publishing) for the sequencer's
    /// answer. Past the deadline the batch may still be ordered later; the
    /// caller reports a timeout, as Kafka does for an acks=all produce whose
    /// replicas are late.
    pub async fn completion(self) -> Result<Completion, AppendError> {
        match tokio::time::timeout_at(self.deadline.into(), self.receiver).await {
            Ok(Ok(completion)) => Ok(completion),
            Ok(Err(_)) => Err(AppendError::ShuttingDown),
            Err(_) => Err(AppendError::Full),
        }
    }
}

/// Result of reading a partition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FetchRead {
    /// Whole batches starting with the one holding the offset (base offsets
    /// rewritten), plus the partition's high watermark and log start.
    Batches {
        /// Batch bytes.
        batches: Vec<Bytes>,
        /// High watermark.
        high_watermark: i64,
        /// Log start offset.
        log_start: i64,
    },
    /// The offset is below the log start or above the high watermark.
    OutOfRange {
        /// High watermark.
        high_watermark: i64,
        /// Log start offset.
        log_start: i64,
    },
}

/// What handlers may ask of the storage side.
#[async_trait::async_trait]
pub trait ClusterLog: Send + Sync + 'static {
    /// This gateway's slot (= Kafka node id).
    fn node_id(&self) -> i32;
    /// Live gateways, lowest slot first.
    fn members(&self) -> Vec<Member>;
    /// Live gateways whose disks hold every entry the most complete live
    /// gateway holds, lowest slot first: only these lead partitions and
    /// coordinate groups, so no client is sent where its data is missing.
    fn holders(&self) -> Vec<Member> {
        self.members()
    }
    /// Whether this gateway is one of [`ClusterLog::holders`]: one that is
    /// not answers reads with NOT_LEADER_OR_FOLLOWER.
    fn holds_everything(&self) -> bool {
        let me = self.node_id();
        self.holders()
            .iter()
            .any(|member| i32::from(member.gateway) == me)
    }
    /// Live topics.
    fn topics(&self) -> Vec<Topic>;
    /// One live topic.
    fn topic(&self, name: &str) -> Option<Topic>;
    /// Publishes a batch to this gateway's ring (waiting, bounded by
    /// `timeout`, while the region is full) and returns without waiting for
    /// the sequencer. Batches published by one caller in turn are ordered in
    /// that order; the completion is awaited within the same `timeout`.
    async fn publish(
        &self,
        batch: AppendBatch<'_>,
        timeout: Duration,
    ) -> Result<PendingAppend, AppendError>;
    /// Publishes a batch and waits (bounded) for the sequencer's answer.
    async fn append(
        &self,
        batch: AppendBatch<'_>,
        timeout: Duration,
    ) -> Result<Completion, AppendError> {
        self.publish(batch, timeout).await?.completion().await
    }
    /// Publishes a control record and waits until this gateway applied it.
    async fn control(
        &self,
        record: &ControlRecord,
        timeout: Duration,
    ) -> Result<Completion, AppendError>;
    /// (log start, high watermark) of a partition.
    fn offsets(&self, stream: u32) -> (i64, i64);
    /// Bytes of the partition's batches that hold offsets `from..to` (from
    /// the log start to the high watermark: Kafka's
    /// `kafka.log:type=Log,name=Size`).
    fn partition_bytes(&self, stream: u32, from: i64, to: i64) -> u64;
    /// Copies whole batches from `offset` on, up to about `max_bytes` (at
    /// least one batch when any exists). An offset past this gateway's
    /// index while the index is still applying the order log reads as no
    /// batches rather than out of range (it may be ordered already).
    fn read(&self, stream: u32, offset: i64, max_bytes: usize) -> FetchRead;
    /// First offset whose batch has a timestamp >= `timestamp`, with that
    /// batch's max timestamp.
    fn offset_for_timestamp(&self, stream: u32, timestamp: i64) -> Option<(i64, i64)>;
    /// The first batch holding the partition's largest timestamp: its base
    /// offset and that timestamp (ListOffsets `MAX_TIMESTAMP`).
    fn max_timestamp(&self, stream: u32) -> Option<(i64, i64)>;
    /// A consumer group's committed offsets by stream, as this gateway
    /// applied them from the order log (a negative offset deletes one).
    fn committed_offsets(&self, group: &str) -> std::collections::HashMap<u32, CommittedOffset>;
    /// Consumer groups with committed offsets.
    fn offset_groups(&self) -> Vec<String>;
    /// The idempotent and transactional producers that wrote to a
    /// partition, with their last batch there (DescribeProducers).
    fn producers(&self, stream: u32) -> Vec<(i64, ProducerState)>;
    /// Users and ACLs as this gateway applied them from the order log.
    fn security(&self) -> std::sync::Arc<crate::security::SecurityStore>;
    /// Dynamic broker configs as this gateway applied them from the order
    /// log.
    fn broker_configs(&self) -> std::sync::Arc<crate::broker_config::BrokerConfigStore>;
    /// Transaction states as this gateway applied them from the order log.
    fn transactions(&self) -> std::sync::Arc<crate::transactions::TransactionStore>;
    /// Waits until the order log moves past `sequence` or `timeout` passes;
    /// returns the next sequence to apply.
    async fn wait_for_order(&self, sequence: u64, timeout: Duration) -> u64;
    /// Next order-log sequence this gateway will apply.
    fn applied(&self) -> u64;
    /// Waits until the entry with global `sequence` is on the disks of
    /// `disks` live gateways (acks=all), at most until `deadline`.
    async fn wait_durable(
        &self,
        sequence: u64,
        disks: usize,
        deadline: Instant,
    ) -> Result<(), AppendError>;
    /// Where `retention.ms` (by batches' max timestamps, as of `now_ms`)
    /// and `retention.bytes` would move the partition's log start; `None`
    /// when nothing expired. A negative limit is off.
    fn retention_start(
        &self,
        stream: u32,
        retention_ms: i64,
        retention_bytes: i64,
        now_ms: i64,
    ) -> Option<i64>;
    /// Deletes this gateway's segment files that nothing readable is left
    /// in; returns (segments, bytes) deleted.
    fn delete_expired_segments(&self) -> (u64, u64);
    /// Stops the background threads and leaves the region cleanly.
    fn shutdown(&self);
    /// Completes once this gateway found that the region it mapped is no
    /// longer the one at its path (see `cluster/fence.rs`); never for a
    /// store without a region.
    async fn region_lost(&self) -> RegionChange {
        std::future::pending().await
    }
}

/// The storage side of one gateway over a region mapped with backend `B`.
/// Its fields are private to `cluster/`: each role's file reaches the
/// others' state through their own types (`publisher::Publisher`,
/// `tailer::Applied`, `replica::DiskTier`).
pub struct Cluster<B: MemoryBackend> {
    region: Arc<Region<B>>,
    gateway: GatewayIndex,
    incarnation: u64,
    lease_timeout_ns: u64,
    publisher: publisher::Publisher,
    /// What the tailer applied (written by the tailer, read by all).
    index: RwLock<OrderIndex>,
    /// The index's dynamic broker configs, reachable without its lock:
    /// every produce reads them, and the tailer holds the lock while it
    /// applies a pass.
    broker_configs: Arc<crate::broker_config::BrokerConfigStore>,
    /// The index's transaction table, likewise: every Fetch and every
    /// transactional batch reads it.
    transactions: Arc<crate::transactions::TransactionStore>,
    applied: tailer::Applied,
    /// Shared with the peer-copy thread, which runs from before the join.
    disk: Arc<replica::DiskTier>,
    /// Whether the region is still the one at its path.
    fence: fence::RegionFence,
    /// The highest sequencer epoch this data dir knows of (`data_dir.rs`).
    epochs: data_dir::EpochRecord,
    /// The gateways live when this one last looked (`data_dir.rs`).
    members: data_dir::MembersRecord,
    bells: Bells,
    /// The peer-copy thread (`None` when this gateway serves no copies).
    peer_server: Mutex<Option<peer_copy::serve::PeerServer>>,
    stop: AtomicBool,
    /// Set by fault tests (`Cluster::pause_as_if_stopped`).
    paused: AtomicBool,
    threads: Mutex<Vec<JoinHandle<()>>>,
}

/// How the threads of one gateway wake each other (see
/// [`cxlkafka_sequencer::wait`]); work made by another process is seen
/// within the idle sleep instead.
#[derive(Default)]
struct Bells {
    /// Rung when this gateway gave its sequencer work: a batch published,
    /// order-log space released by applying or copying entries.
    sequencer: Bell,
    /// Rung when this gateway's sequencer ordered or answered batches
    /// (wakes the tailer and the completion thread).
    order: Bell,
    /// Rung when the tailer applied entries (wakes the replicator).
    apply: Bell,
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn lock_read<T>(lock: &RwLock<T>) -> std::sync::RwLockReadGuard<'_, T> {
    lock.read().unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn lock_write<T>(lock: &RwLock<T>) -> std::sync::RwLockWriteGuard<'_, T> {
    lock.write()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}
