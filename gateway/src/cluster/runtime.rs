//! [`Cluster`]: the running storage side of one gateway, and its threads.

use std::collections::{BTreeMap, HashMap};
use std::mem::offset_of;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, RwLock};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use bytes::Bytes;
use cxlkafka_log::layout::{
    kind, BatchHeader, Completion, GatewayFrontiers, GatewayIndex, GatewayLines, Lease, OrderEntry,
    SequencerCheckpoint,
};
use cxlkafka_log::memory::MemoryBackend;
use cxlkafka_log::ring::{read_payload, read_payload_append, PublishError, RingWriter};
use cxlkafka_log::Region;
use cxlkafka_sequencer::catalog::{read_catalog, Topic};
use cxlkafka_sequencer::control::{tag as control_tag, CommittedOffset, ControlRecord};
use cxlkafka_sequencer::sequencer::{heartbeat_is_fresh, unix_ns};
use cxlkafka_sequencer::wait::{Backoff, Bell};
use cxlkafka_sequencer::Sequencer;
use tokio::sync::{oneshot, watch};

use super::index::{BatchLocation, OrderIndex};
use super::membership::{self, Member};
use super::order_view::{self, ORDER_STREAM};
use super::replica::DiskTier;
use super::restore;
use super::{AppendBatch, AppendError, ClusterLog, FetchRead, PendingAppend};
use crate::order_topic::ORDER_TOPIC;
use crate::records::set_base_offset;
use crate::telemetry;

/// How long a clean stop waits for the disk tier to catch up.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(10);

/// How a gateway joins its region.
#[derive(Clone, Debug)]
pub struct ClusterOptions {
    /// Requested slot (node id), or the lowest free one.
    pub node_id: Option<GatewayIndex>,
    /// Advertised host for Metadata.
    pub advertised_host: String,
    /// Advertised port for Metadata.
    pub advertised_port: u16,
    /// A gateway whose heartbeat is older than this is dead; its sequencer
    /// lease passes to the lowest live gateway.
    pub lease_timeout: Duration,
    /// Where this gateway's segments live (`<data dir>/gateway-<slot>`).
    pub data_dir: PathBuf,
    /// A segment file is rolled once it would pass this many bytes.
    pub segment_bytes: u64,
}

/// The storage side of one gateway over a region mapped with backend `B`.
pub struct Cluster<B: MemoryBackend> {
    pub(super) region: Arc<Region<B>>,
    pub(super) gateway: GatewayIndex,
    incarnation: u64,
    pub(super) lease_timeout_ns: u64,
    pub(super) writer: Mutex<RingWriter>,
    /// Waiters by ring slot, with the batch's `publish_unix_ns`.
    pending: Mutex<BTreeMap<u64, (oneshot::Sender<Completion>, u64)>>,
    pending_signal: Condvar,
    pub(super) index: RwLock<OrderIndex>,
    applied_tx: watch::Sender<u64>,
    applied: AtomicU64,
    stop: AtomicBool,
    threads: Mutex<Vec<JoinHandle<()>>>,
    pub(super) disk: DiskTier,
    /// First ring slot of this gateway not yet released to the arena.
    pub(super) recycle_next: AtomicU64,
    /// Rung when this gateway gave its sequencer work: a batch published,
    /// order-log space released by applying or copying entries.
    sequencer_bell: Bell,
    /// Rung when this gateway's sequencer ordered or answered batches
    /// (wakes the tailer and the completion thread).
    order_bell: Bell,
    /// Rung when the tailer applied entries (wakes the replicator).
    pub(super) apply_bell: Bell,
}

/// Joins the region, starts the background threads, and waits until the
/// index has caught up with the order log.
pub fn start<B: MemoryBackend>(
    region: Region<B>,
    options: ClusterOptions,
) -> Result<Arc<Cluster<B>>, String> {
    let region = Arc::new(region);
    let lease_timeout_ns = options.lease_timeout.as_nanos() as u64;
    // A gateway restarted right after a crash finds its slot's heartbeat
    // still fresh: wait for it to go stale rather than refuse at once.
    let slot_deadline = Instant::now() + options.lease_timeout * 3;
    let gateway = loop {
        match membership::choose_slot(&region, options.node_id, lease_timeout_ns) {
            Ok(gateway) => break gateway,
            Err(error) if options.node_id.is_some() && Instant::now() < slot_deadline => {
                tracing::debug!(%error, "waiting for the slot's previous holder to go stale");
                std::thread::sleep(options.lease_timeout / 10);
            }
            Err(error) => return Err(error),
        }
    };
    let mut writer = RingWriter::resume(&region, gateway);
    let incarnation = membership::join(
        &region,
        gateway,
        &options.advertised_host,
        options.advertised_port,
    );
    let layout = *region.layout();
    let segment_dir = options.data_dir.join(format!("gateway-{gateway}"));
    let (disk, mut stored) = DiskTier::open(&segment_dir, options.segment_bytes)?;
    if restore::region_is_blank(&region) {
        // A new region, or a lost one: what any gateway's segments hold
        // is the order so far.
        stored.extend(restore::backfill(
            &disk,
            &options.data_dir,
            &segment_dir,
            None,
        )?);
        if !stored.is_empty() {
            restore::restore_region(
                &region,
                gateway,
                incarnation,
                lease_timeout_ns,
                &disk,
                &stored,
            )?;
        }
    }
    let checkpoint: SequencerCheckpoint = region.read_fresh(layout.checkpoint());
    let next_sequence = checkpoint.next_sequence.max(1);
    // Entries older than one order-log lap may be overwritten, and a region
    // rebuilt from segments holds none before its first sequence.
    let first_in_region = next_sequence
        .saturating_sub(layout.geometry.order_log_entries - 1)
        .max(checkpoint.region_first_sequence)
        .max(1);
    // What was ordered and recycled while this gateway was away.
    stored.extend(restore::backfill(
        &disk,
        &options.data_dir,
        &segment_dir,
        Some(first_in_region - 1),
    )?);
    if disk.last_stored() >= next_sequence {
        return Err(format!(
            "the segments in {} hold sequences up to {} but the region's order is only at {}: \
             the region was recreated without them; move that directory away or start the \
             gateway that rebuilds the region from it first",
            segment_dir.display(),
            disk.last_stored(),
            next_sequence
        ));
    }
    let first = first_in_region.max(disk.last_stored() + 1);
    let mut index = OrderIndex::default();
    index.set_topics(read_catalog(&region));
    index.load_stored(&stored, disk.files());
    index.next_sequence = first;
    index.set_topics(read_catalog(&region));
    disk.start_at(first);
    region.store_word(
        layout.gateway_lines(gateway)
            + offset_of!(GatewayLines, frontiers)
            + offset_of!(GatewayFrontiers, durable),
        first,
    );
    // Slots the predecessor left held (consumed but maybe not on every
    // disk yet) stay held until the disk tier releases them.
    let recycle_from = writer.next_slot().min({
        let consumed = region.load_word_fresh(
            layout.sequencer_view(gateway)
                + offset_of!(cxlkafka_log::layout::SequencerView, consumed),
        );
        let recycled = region.load_word_fresh(
            layout.gateway_lines(gateway)
                + offset_of!(GatewayLines, frontiers)
                + offset_of!(GatewayFrontiers, recycled_slot),
        );
        if recycled > 0 {
            consumed.min(recycled)
        } else {
            consumed
        }
        .max(1)
    });
    writer.set_recycle_limit(recycle_from);
    tracing::info!(
        gateway,
        dir = %segment_dir.display(),
        stored_entries = stored.len(),
        resume_at = first,
        "opened the disk tier"
    );
    drop(stored);
    let (applied_tx, _) = watch::channel(first);
    let cluster = Arc::new(Cluster {
        region,
        gateway,
        incarnation,
        lease_timeout_ns,
        writer: Mutex::new(writer),
        pending: Mutex::new(BTreeMap::new()),
        pending_signal: Condvar::new(),
        index: RwLock::new(index),
        applied_tx,
        applied: AtomicU64::new(first),
        stop: AtomicBool::new(false),
        threads: Mutex::new(Vec::new()),
        disk,
        recycle_next: AtomicU64::new(recycle_from),
        sequencer_bell: Bell::default(),
        order_bell: Bell::default(),
        apply_bell: Bell::default(),
    });
    cluster.store_applied(first);
    let spawn = |name: &str, body: fn(&Cluster<B>)| {
        let cluster = Arc::clone(&cluster);
        std::thread::Builder::new()
            .name(format!("cxlkafka-{name}"))
            .spawn(move || body(&cluster))
            .map_err(|error| format!("cannot start the {name} thread: {error}"))
    };
    let threads = vec![
        spawn("heartbeat", Cluster::heartbeat_loop)?,
        spawn("tailer", Cluster::tail_loop)?,
        spawn("completions", Cluster::completion_loop)?,
        spawn("sequencer", Cluster::sequencer_loop)?,
        spawn("replicator", Cluster::replicate_loop)?,
        spawn("syncer", Cluster::sync_loop)?,
    ];
    *cluster.threads.lock().unwrap_or_else(|e| e.into_inner()) = threads;
    tracing::info!(
        gateway,
        incarnation,
        backend = cluster.region.backend().name(),
        "joined the region"
    );
    Ok(cluster)
}

pub(super) fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl<B: MemoryBackend> Cluster<B> {
    /// Stops the threads and marks this gateway as cleanly gone.
    pub fn stop(&self) {
        if self.stop.load(Ordering::Acquire) {
            return;
        }
        // A clean stop leaves everything this gateway applied on its disk.
        let drain_until = Instant::now() + DRAIN_TIMEOUT;
        while self.disk.durable() < self.applied() && Instant::now() < drain_until {
            self.disk.wake();
            std::thread::sleep(Duration::from_millis(1));
        }
        if self.stop.swap(true, Ordering::AcqRel) {
            return;
        }
        self.pending_signal.notify_all();
        self.disk.wake();
        let threads = std::mem::take(&mut *lock(&self.threads));
        for thread in threads {
            let _ = thread.join();
        }
        membership::beat(
            &self.region,
            self.gateway,
            self.incarnation,
            u64::MAX,
            false,
        );
        tracing::info!(gateway = self.gateway, "left the region");
    }

    pub(super) fn stopping(&self) -> bool {
        self.stop.load(Ordering::Acquire)
    }

    fn frontiers_offset(&self) -> usize {
        self.region.layout().gateway_lines(self.gateway) + offset_of!(GatewayLines, frontiers)
    }

    /// Reports how far this gateway has taken the order log: the lower of
    /// what the index applied and what the disk tier copied, so the
    /// sequencer never overwrites an entry either still needs.
    pub(super) fn publish_applied(&self) {
        let next = self.applied().min(self.disk.replicated());
        self.store_applied(next);
        self.sequencer_bell.ring();
    }

    fn store_applied(&self, next: u64) {
        self.region.store_word(
            self.frontiers_offset() + offset_of!(GatewayFrontiers, order_log_applied),
            next,
        );
    }

    fn heartbeat_loop(&self) {
        let period = Duration::from_nanos(self.lease_timeout_ns / 8).max(Duration::from_millis(10));
        let mut beats = 1u64;
        while !self.stopping() {
            beats += 1;
            membership::beat(&self.region, self.gateway, self.incarnation, beats, true);
            self.record_region_gauges();
            std::thread::sleep(period);
        }
    }

    /// Region, arena and order-log gauges of this gateway.
    fn record_region_gauges(&self) {
        let layout = *self.region.layout();
        let arena_used = {
            let mut writer = lock(&self.writer);
            writer.refresh_consumed(&self.region);
            writer.arena_used()
        };
        metrics::gauge!(telemetry::REGION_SIZE_BYTES).set(layout.total_bytes as f64);
        metrics::gauge!(telemetry::ARENA_SIZE_BYTES).set(layout.geometry.arena_bytes as f64);
        metrics::gauge!(telemetry::ARENA_USED_BYTES).set(arena_used as f64);
        // `applied` is the next sequence to apply, as is the checkpoint's.
        let next = self.applied();
        let checkpoint: SequencerCheckpoint = self.region.read_fresh(layout.checkpoint());
        metrics::gauge!(telemetry::ORDER_LOG_APPLIED_SEQUENCE).set(next.saturating_sub(1) as f64);
        metrics::gauge!(telemetry::ORDER_LOG_LAG_ENTRIES)
            .set(checkpoint.next_sequence.saturating_sub(next) as f64);
        metrics::gauge!(telemetry::REPLICA_DURABLE_LAG_ENTRIES)
            .set(checkpoint.next_sequence.saturating_sub(self.disk.durable()) as f64);
        metrics::gauge!(telemetry::SEGMENT_BYTES).set(self.disk.stored_bytes() as f64);
    }

    fn lease(&self) -> Lease {
        self.region
            .read_fresh(self.region.layout().sequencer_lines as usize)
    }

    /// Whether the lease holder is gone, so the lowest live gateway may take over.
    fn lease_is_free(&self, lease: &Lease) -> bool {
        if lease.holder == 0 {
            return true;
        }
        let holder = (lease.holder - 1) as GatewayIndex;
        let heartbeat = membership::read_heartbeat(&self.region, holder);
        heartbeat.incarnation != lease.holder_incarnation
            || !heartbeat_is_fresh(&heartbeat, unix_ns(), self.lease_timeout_ns)
    }

    /// Holds the sequencer lease when the holder is gone and this is the
    /// lowest live gateway, and orders every ring while holding it.
    fn sequencer_loop(&self) {
        let held = metrics::gauge!(telemetry::SEQUENCER_LEASE_HELD);
        held.set(0.0);
        while !self.stopping() {
            let lease = self.lease();
            let mine = lease.holder == u64::from(self.gateway) + 1
                && lease.holder_incarnation == self.incarnation;
            let lowest_live = membership::live_members(&self.region, self.lease_timeout_ns)
                .first()
                .map(|member| member.gateway);
            let may_take_over = self.lease_is_free(&lease) && lowest_live == Some(self.gateway);
            if !(mine || may_take_over) {
                std::thread::sleep(Duration::from_millis(20));
                continue;
            }
            let epoch = if mine { lease.epoch } else { lease.epoch + 1 };
            let taken = Lease {
                epoch,
                holder: u64::from(self.gateway) + 1,
                holder_incarnation: self.incarnation,
                next_sequence: 0,
                _pad: [0; 96],
            };
            self.region
                .write_line(self.region.layout().sequencer_lines as usize, &taken);
            tracing::info!(gateway = self.gateway, epoch, "holding the sequencer lease");
            held.set(1.0);
            self.run_sequencer(epoch);
            held.set(0.0);
        }
    }

    fn run_sequencer(&self, epoch: u64) {
        let mut sequencer = Sequencer::recover(Arc::clone(&self.region), self.lease_timeout_ns);
        let mut backoff = Backoff::default();
        let mut last_lease_check = Instant::now();
        let ordered = metrics::counter!(telemetry::SEQUENCER_BATCHES_ORDERED_TOTAL);
        let answered = metrics::counter!(telemetry::SEQUENCER_BATCHES_ANSWERED_TOTAL);
        let passes = metrics::counter!(telemetry::SEQUENCER_SCAN_PASSES_TOTAL);
        let order_log_full = metrics::counter!(telemetry::SEQUENCER_ORDER_LOG_FULL_TOTAL);
        while !self.stopping() {
            if last_lease_check.elapsed() > Duration::from_millis(10) {
                last_lease_check = Instant::now();
                let lease = self.lease();
                if lease.epoch != epoch || lease.holder != u64::from(self.gateway) + 1 {
                    tracing::warn!(gateway = self.gateway, epoch, "lost the sequencer lease");
                    return;
                }
            }
            let rings = self.sequencer_bell.rings();
            let report = sequencer.pass();
            passes.increment(1);
            if report.order_log_full {
                order_log_full.increment(1);
            }
            if report.ordered + report.answered > 0 {
                ordered.increment(report.ordered);
                answered.increment(report.answered);
                self.order_bell.ring();
                backoff.reset();
            } else {
                backoff.wait_on(&self.sequencer_bell, rings);
            }
        }
    }

    fn completion_loop(&self) {
        let mut backoff = Backoff::default();
        let ordering_lag = metrics::histogram!(telemetry::ORDERING_LAG_SECONDS);
        while !self.stopping() {
            let next = {
                let pending = lock(&self.pending);
                if pending.is_empty() {
                    // Nothing outstanding: sleep until a publish signals.
                    let _unused = self
                        .pending_signal
                        .wait_timeout(pending, Duration::from_millis(50))
                        .unwrap_or_else(|e| e.into_inner());
                    continue;
                }
                pending.keys().next().copied()
            };
            let Some(slot) = next else { continue };
            let rings = self.order_bell.rings();
            let offset = self.region.layout().completion(self.gateway, slot);
            match self.region.read_committed::<Completion>(offset, slot) {
                Some(completion) => {
                    if let Some((waiter, published_ns)) = lock(&self.pending).remove(&slot) {
                        let lag_ns = unix_ns().saturating_sub(published_ns);
                        ordering_lag.record(lag_ns as f64 / 1e9);
                        let _ = waiter.send(completion);
                    }
                    backoff.reset();
                }
                None => backoff.wait_on(&self.order_bell, rings),
            }
        }
        // Wake every waiter with a closed channel.
        lock(&self.pending).clear();
    }

    fn tail_loop(&self) {
        let layout = *self.region.layout();
        let mut backoff = Backoff::default();
        let mut since_prune = 0u64;
        while !self.stopping() {
            let rings = self.order_bell.rings();
            let mut next = lock_read(&self.index).next_sequence;
            let mut applied_any = false;
            let mut catalog_changed = false;
            {
                let mut index = lock_write(&self.index);
                for _ in 0..4096 {
                    let Some(entry) = self
                        .region
                        .read_committed::<OrderEntry>(layout.order_entry(next), next)
                    else {
                        break;
                    };
                    match entry.kind {
                        kind::DATA => index.apply_data(&entry),
                        _ if entry.control_tag == u16::from(control_tag::CREATE_TOPIC) => {
                            index.forget_slot(entry.base_offset as u32);
                            catalog_changed = true
                        }
                        _ if ControlRecord::changes_catalog(entry.control_tag) => {
                            catalog_changed = true
                        }
                        _ if entry.control_tag == u16::from(control_tag::COMMIT_OFFSETS) => {
                            self.apply_offset_commit(&mut index, &entry)
                        }
                        _ if crate::security::is_security_tag(entry.control_tag) => {
                            index.security.apply_order_entry(&self.region, &entry)
                        }
                        _ => {}
                    }
                    next += 1;
                    applied_any = true;
                }
                index.next_sequence = next;
                if catalog_changed {
                    index.set_topics(read_catalog(&self.region));
                }
                since_prune += u64::from(applied_any);
                if since_prune >= 64 {
                    since_prune = 0;
                    let floors: Vec<u64> = (0..layout.geometry.max_gateways as GatewayIndex)
                        .map(|gateway| self.arena_floor(gateway))
                        .collect();
                    index.drop_recycled(|gateway| {
                        floors.get(gateway as usize).copied().unwrap_or(u64::MAX)
                    });
                }
            }
            if applied_any {
                self.applied.store(next, Ordering::Release);
                self.publish_applied();
                // `send` would keep the old value while nobody waits, and
                // the next waiter would then sleep through entries already
                // applied; `send_replace` always stores it.
                self.applied_tx.send_replace(next);
                self.apply_bell.ring();
                backoff.reset();
            } else {
                backoff.wait_on(&self.order_bell, rings);
            }
        }
    }

    /// Applies a consumer group's offset commit read from the order log.
    fn apply_offset_commit(&self, index: &mut OrderIndex, entry: &OrderEntry) {
        let mut payload = vec![0u8; entry.length as usize];
        let decoded = read_payload(
            &self.region,
            entry.gateway,
            entry.arena_position,
            &mut payload,
        )
        .ok()
        .and_then(|()| ControlRecord::decode(&payload).ok());
        match decoded {
            Some(record) => index.apply_commit(record),
            None => {
                // The bytes were recycled before this gateway read them (it
                // lagged a whole arena behind): the commit is lost here.
                metrics::counter!(telemetry::OFFSET_COMMITS_LOST_TOTAL).increment(1);
                tracing::warn!(
                    sequence = entry.commit,
                    "offset commit no longer readable from the region"
                );
            }
        }
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
    pub(super) fn deleted_before(&self, stream: u32) -> i64 {
        if stream >= cxlkafka_log::layout::MAX_STREAMS {
            return 0;
        }
        let layout = self.region.layout();
        self.region
            .load_word_fresh(layout.stream_log_start_offset(stream)) as i64
    }

    /// Appends a batch to `buffer` from the region while its arena still
    /// holds it, else from this gateway's segments; false (and `buffer` as
    /// it was) when neither has it.
    fn append_batch(&self, location: &BatchLocation, buffer: &mut Vec<u8>) -> bool {
        let length = u64::from(location.length);
        if let Some((gateway, position)) = location.region {
            if read_payload_append(&self.region, gateway, position, length, buffer).is_ok() {
                return true;
            }
        }
        let Some(disk) = location.disk else {
            return false;
        };
        let start = buffer.len();
        buffer.resize(start + length as usize, 0);
        let read = self.disk.files().read_payload(disk, &mut buffer[start..]);
        if read.is_err() {
            buffer.truncate(start);
        }
        read.is_ok()
    }

    fn arena_floor(&self, gateway: GatewayIndex) -> u64 {
        let layout = self.region.layout();
        self.region.load_word_fresh(
            layout.gateway_lines(gateway)
                + offset_of!(GatewayLines, frontiers)
                + offset_of!(GatewayFrontiers, arena_floor),
        )
    }

    /// Publishes one batch, retrying while the region is full, and returns
    /// the channel its completion arrives on.
    async fn publish_header(
        &self,
        header: BatchHeader,
        payload: &[u8],
        deadline: Instant,
    ) -> Result<oneshot::Receiver<Completion>, AppendError> {
        let mut wait = Duration::from_micros(50);
        loop {
            if self.stopping() {
                return Err(AppendError::ShuttingDown);
            }
            let attempt = {
                let mut writer = lock(&self.writer);
                writer.publish(&self.region, header, payload).map(|slot| {
                    // Register before releasing the writer so the completion
                    // thread cannot miss the slot.
                    let (tx, rx) = oneshot::channel();
                    lock(&self.pending).insert(slot, (tx, header.publish_unix_ns));
                    rx
                })
            };
            match attempt {
                Ok(receiver) => {
                    self.pending_signal.notify_one();
                    self.sequencer_bell.ring();
                    return Ok(receiver);
                }
                Err(PublishError::Arena(cxlkafka_log::arena::ArenaError::TooLarge {
                    length,
                    ..
                })) => {
                    return Err(AppendError::TooLarge(length as usize));
                }
                Err(_) if Instant::now() >= deadline => {
                    metrics::counter!(telemetry::REGION_FULL_TOTAL).increment(1);
                    return Err(AppendError::Full);
                }
                Err(_) => {
                    // Space comes back as the disk tier catches up.
                    self.advance_recycle_limit();
                    // Backpressure: the sequencer (or a lagging replica)
                    // has not released space yet.
                    tokio::time::sleep(wait).await;
                    wait = (wait * 2).min(Duration::from_millis(5));
                }
            }
        }
    }
}

pub(super) fn lock_read<T>(lock: &RwLock<T>) -> std::sync::RwLockReadGuard<'_, T> {
    lock.read().unwrap_or_else(|poisoned| poisoned.into_inner())
}

pub(super) fn lock_write<T>(lock: &RwLock<T>) -> std::sync::RwLockWriteGuard<'_, T> {
    lock.write()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

#[async_trait::async_trait]
impl<B: MemoryBackend> ClusterLog for Cluster<B> {
    fn node_id(&self) -> i32 {
        i32::from(self.gateway)
    }

    fn members(&self) -> Vec<Member> {
        membership::live_members(&self.region, self.lease_timeout_ns)
    }

    fn topics(&self) -> Vec<Topic> {
        let mut topics: Vec<Topic> = lock_read(&self.index).topics.values().cloned().collect();
        topics.push(order_view::order_topic());
        topics.sort_by(|a, b| a.name.cmp(&b.name));
        topics
    }

    fn topic(&self, name: &str) -> Option<Topic> {
        if name == ORDER_TOPIC {
            return Some(order_view::order_topic());
        }
        lock_read(&self.index).topics.get(name).cloned()
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
            self.wait_for_order(completion.global_sequence, remaining)
                .await;
            self.wait_disk_copies(completion.global_sequence, 1, deadline)
                .await?;
        }
        Ok(completion)
    }

    fn security(&self) -> Arc<crate::security::SecurityStore> {
        Arc::clone(&lock_read(&self.index).security)
    }

    fn offsets(&self, stream: u32) -> (i64, i64) {
        if stream == ORDER_STREAM {
            return order_view::offsets(&self.region, self.applied());
        }
        if let Some(partition) = lock_read(&self.index).partitions.get(&stream) {
            return (
                partition.log_start.max(self.deleted_before(stream)),
                partition.high_watermark,
            );
        }
        // Nothing of this partition in the retained order log: its high
        // watermark is the sequencer's, and nothing older is readable.
        let layout = self.region.layout();
        if stream >= cxlkafka_log::layout::MAX_STREAMS {
            return (0, 0);
        }
        let next = self
            .region
            .load_word_fresh(layout.stream_next_offset(stream)) as i64;
        (next, next)
    }

    fn read(&self, stream: u32, offset: i64, max_bytes: usize) -> FetchRead {
        if stream == ORDER_STREAM {
            let names: std::collections::HashMap<u32, String> = lock_read(&self.index)
                .topics
                .values()
                .map(|topic| (topic.slot, topic.name.clone()))
                .collect();
            return order_view::read(&self.region, self.applied(), offset, max_bytes, |slot| {
                names.get(&slot).cloned()
            });
        }
        let index = lock_read(&self.index);
        let next_sequence = index.next_sequence;
        let Some(partition) = index.partitions.get(&stream) else {
            drop(index);
            let (log_start, high_watermark) = self.offsets(stream);
            return if offset == high_watermark || self.tailer_behind(next_sequence) {
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
            };
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
        // One buffer for every batch, filled without zeroing it first; the
        // batches are slices of it.
        let total = locations
            .iter()
            .map(|location| location.length as usize)
            .sum();
        let mut buffer = Vec::with_capacity(total);
        let mut ranges = Vec::with_capacity(locations.len());
        for location in locations {
            let start = buffer.len();
            if !self.append_batch(&location, &mut buffer) {
                // Neither in the region nor on this gateway's disk: what we
                // have is still a prefix.
                break;
            }
            if set_base_offset(&mut buffer[start..], location.base_offset).is_err() {
                buffer.truncate(start);
                break;
            }
            ranges.push(start..buffer.len());
        }
        let buffer = Bytes::from(buffer);
        let batches: Vec<Bytes> = ranges
            .into_iter()
            .map(|range| buffer.slice(range))
            .collect();
        if batches.is_empty() && offset < high_watermark {
            // Everything from `offset` was recycled under us.
            let (log_start, high_watermark) = self.offsets(stream);
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

    fn offset_for_timestamp(&self, stream: u32, timestamp: i64) -> Option<(i64, i64)> {
        if stream == ORDER_STREAM {
            return order_view::offset_for_timestamp(&self.region, self.applied(), timestamp);
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

    fn max_timestamp(&self, stream: u32) -> Option<(i64, i64)> {
        let index = lock_read(&self.index);
        let partition = index.partitions.get(&stream)?;
        // The first batch with the largest timestamp, as Kafka answers.
        partition
            .batches
            .iter()
            .fold(None, |best: Option<(i64, i64)>, batch| match best {
                Some((_, max)) if max >= batch.max_timestamp => best,
                _ => Some((batch.base_offset, batch.max_timestamp)),
            })
    }

    fn committed_offsets(&self, group: &str) -> HashMap<u32, CommittedOffset> {
        lock_read(&self.index)
            .group_offsets
            .get(group)
            .cloned()
            .unwrap_or_default()
    }

    fn offset_groups(&self) -> Vec<String> {
        lock_read(&self.index)
            .group_offsets
            .keys()
            .cloned()
            .collect()
    }

    async fn wait_for_order(&self, sequence: u64, timeout: Duration) -> u64 {
        let mut receiver = self.applied_tx.subscribe();
        let reached = tokio::time::timeout(timeout, async {
            receiver
                .wait_for(|&next| next > sequence)
                .await
                .map(|next| *next)
        })
        .await;
        match reached {
            Ok(Ok(next)) => next,
            _ => self.applied(),
        }
    }

    fn applied(&self) -> u64 {
        self.applied.load(Ordering::Acquire)
    }

    async fn wait_durable(
        &self,
        sequence: u64,
        disks: usize,
        deadline: Instant,
    ) -> Result<(), AppendError> {
        self.wait_disk_copies(sequence, disks, deadline).await
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
        let topics = self.topics();
        Cluster::delete_expired_segments(self, &topics)
    }

    fn shutdown(&self) {
        self.stop();
    }
}

impl<B: MemoryBackend> Drop for Cluster<B> {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Release);
    }
}
