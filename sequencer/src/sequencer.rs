//! The ordering loop: scan every gateway's ring (invalidating before every
//! read), give each committed batch the next global sequence and its
//! stream's next offsets, publish the order-log entry and then the slot's
//! completion, and release consumed slots back to their gateway.

use std::collections::VecDeque;
use std::time::{SystemTime, UNIX_EPOCH};

use bytemuck::Zeroable;

use cxlkafka_log::layout::{
    kind, topic_state, BatchHeader, Completion, Frontier, GatewayIndex, Heartbeat, OrderEntry,
    SequencerCheckpoint, TopicEntry, MAX_PARTITIONS_PER_TOPIC, MAX_STREAMS, MAX_TOPICS,
};
use cxlkafka_log::memory::MemoryBackend;
use cxlkafka_log::ring::{read_payload, RingReader};
use cxlkafka_log::Region;

use crate::catalog::{
    entry_name, set_topic_configs, split_stream, stream_of, NewTopic, TOPIC_CONFIGS_BYTES,
};
use crate::control::ControlRecord;
use crate::idempotence::{IdempotentBatch, ProducerTable, Verdict};
use crate::status;

/// Batches taken from one gateway's ring per pass, so one busy gateway
/// cannot starve the others.
const BATCHES_PER_GATEWAY_PASS: usize = 256;

/// The `gateway` of an order entry a rebuild wrote back from disk (see
/// `Sequencer::keep_producer_windows`): its payload is in no arena.
pub const RESTORED_GATEWAY: GatewayIndex = GatewayIndex::MAX;

/// The order entry of a restored idempotent batch, as its producer's
/// window needs it (no payload in the region).
fn restored_order_entry(entry: &RestoredEntry<'_>) -> OrderEntry {
    OrderEntry {
        commit: entry.sequence,
        base_offset: entry.base_offset,
        stream: entry.stream,
        record_count: entry.record_count,
        kind: entry.kind,
        gateway: RESTORED_GATEWAY,
        producer_id: entry.producer_id,
        base_sequence: entry.base_sequence,
        producer_epoch: entry.producer_epoch,
        ..OrderEntry::zeroed()
    }
}
const FIRST_PRODUCER_ID: u64 = 1000;

/// Whether a gateway counts as live for order-log backpressure.
pub fn heartbeat_is_fresh(heartbeat: &Heartbeat, now_unix_ns: u64, timeout_ns: u64) -> bool {
    heartbeat.alive == 1 && now_unix_ns.saturating_sub(heartbeat.unix_ns) <= timeout_ns
}

pub fn unix_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_nanos() as u64)
}

/// What one pass did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PassReport {
    /// Batches given a place in the order.
    pub ordered: u64,
    /// Slots answered without ordering (duplicates and refusals).
    pub answered: u64,
    /// True when the pass stopped because a live gateway lags on the order log.
    pub order_log_full: bool,
}

/// One entry of a disk copy of the order, for [`Sequencer::restore`].
#[derive(Clone, Copy, Debug)]
pub struct RestoredEntry<'a> {
    pub sequence: u64,
    pub kind: u16,
    pub stream: u32,
    pub base_offset: i64,
    pub record_count: u32,
    /// A control entry's record bytes.
    pub control: Option<&'a [u8]>,
    /// An idempotent batch's producer id (-1: not idempotent), epoch and
    /// first sequence.
    pub producer_id: i64,
    pub producer_epoch: i16,
    pub base_sequence: i32,
}

/// The single active sequencer of a region.
pub struct Sequencer<B: MemoryBackend> {
    region: std::sync::Arc<Region<B>>,
    readers: Vec<RingReader>,
    next_sequence: u64,
    next_producer_id: u64,
    catalog_version: u64,
    /// First sequence whose entry this region's order log holds.
    region_first_sequence: u64,
    /// Next offset (high watermark) of every stream.
    stream_next: Vec<i64>,
    topics: Vec<TopicEntry>,
    producers: ProducerTable,
    payload: Vec<u8>,
    heartbeat_timeout_ns: u64,
}

impl<B: MemoryBackend> Sequencer<B> {
    /// Takes over the region's order where the checkpoint and the order log
    /// say it stands: a fresh region starts at sequence 1.
    pub fn recover(region: std::sync::Arc<Region<B>>, heartbeat_timeout_ns: u64) -> Self {
        let layout = *region.layout();
        assert!(
            layout.has_catalog(),
            "the region has no sequencer state area"
        );
        let checkpoint: SequencerCheckpoint = region.read_fresh(layout.checkpoint());
        let mut stream_next = vec![0i64; MAX_STREAMS as usize];
        for (stream, next) in stream_next.iter_mut().enumerate() {
            *next = region.load_word_fresh(layout.stream_next_offset(stream as u32)) as i64;
        }
        let topics = (0..MAX_TOPICS)
            .map(|slot| region.read_fresh::<TopicEntry>(layout.topic_entry(slot)))
            .collect();
        let readers = (0..layout.geometry.max_gateways as GatewayIndex)
            .map(|gateway| {
                let consumed = region.load_word_fresh(layout.sequencer_view(gateway));
                RingReader::new(gateway, consumed.max(1))
            })
            .collect();
        let mut sequencer = Self {
            region,
            readers,
            next_sequence: checkpoint.next_sequence.max(1),
            next_producer_id: checkpoint.next_producer_id.max(FIRST_PRODUCER_ID),
            catalog_version: checkpoint.catalog_version,
            region_first_sequence: checkpoint.region_first_sequence,
            stream_next,
            topics,
            producers: ProducerTable::default(),
            payload: Vec::new(),
            heartbeat_timeout_ns,
        };
        sequencer.replay_after_checkpoint();
        sequencer.rebuild_producers();
        sequencer
    }

    /// Rebuilds the sequencer's state in a blank region (the region was
    /// lost and recreated) from a disk copy of the order, replaying it in
    /// sequence order: the topic catalog, every stream's next offset and log
    /// start, the producer-id counter and the global sequence. The region's
    /// order log stays empty; the checkpoint's `region_first_sequence` tells
    /// gateways that entries before it are on disk only, and holds only
    /// the idempotent batches of the last lap (see
    /// [`Sequencer::keep_producer_windows`]). Returns the next sequence.
    pub fn restore<'a>(
        region: std::sync::Arc<Region<B>>,
        entries: impl IntoIterator<Item = RestoredEntry<'a>>,
    ) -> u64 {
        let mut sequencer = Self::recover(region, u64::MAX);
        let layout = *sequencer.region.layout();
        let mut last = sequencer.next_sequence.saturating_sub(1);
        let mut idempotent = VecDeque::new();
        for entry in entries {
            assert!(entry.sequence > last, "restored entries go forward");
            sequencer.next_sequence = entry.sequence;
            if entry.kind == kind::DATA && entry.producer_id >= 0 {
                // Only the last lap's: a successor reads no further back.
                while idempotent.front().is_some_and(|front: &OrderEntry| {
                    front.commit + layout.geometry.order_log_entries <= entry.sequence + 1
                }) {
                    idempotent.pop_front();
                }
                idempotent.push_back(restored_order_entry(&entry));
            }
            if entry.kind == kind::DATA && entry.stream < MAX_STREAMS {
                let next = entry.base_offset + i64::from(entry.record_count);
                sequencer.stream_next[entry.stream as usize] = next;
                sequencer
                    .region
                    .store_word(layout.stream_next_offset(entry.stream), next as u64);
            } else if let Some(record) = entry.control.and_then(|b| ControlRecord::decode(b).ok()) {
                if let ControlRecord::DeleteRecords { stream, offset } = record {
                    // Retention may have removed every batch before this
                    // point from disk; the offsets they took stay taken.
                    if stream < MAX_STREAMS && offset > sequencer.stream_next[stream as usize] {
                        sequencer.stream_next[stream as usize] = offset;
                        sequencer
                            .region
                            .store_word(layout.stream_next_offset(stream), offset as u64);
                    }
                }
                // Replayed in the original order, each record gets the
                // answer it got then (the same catalog slot, the same id).
                let _ = sequencer.apply_decoded(record);
            }
            last = entry.sequence;
        }
        sequencer.next_sequence = last + 1;
        sequencer.region_first_sequence = last + 1;
        sequencer.keep_producer_windows(idempotent);
        sequencer.write_checkpoint();
        last + 1
    }

    /// Writes the restored idempotent batches of the last order-log lap
    /// back into their order-log slots, below `region_first_sequence`: no
    /// gateway reads a payload there (their `gateway` is
    /// [`RESTORED_GATEWAY`]), but [`Sequencer::rebuild_producers`] of every
    /// successor finds each producer's last batches, so a producer that
    /// retries across the loss of the region gets its original offsets
    /// instead of writing its batch twice.
    fn keep_producer_windows(&mut self, entries: VecDeque<OrderEntry>) {
        let layout = *self.region.layout();
        for entry in entries {
            if entry.commit + layout.geometry.order_log_entries > self.next_sequence {
                self.region
                    .publish(layout.order_entry(entry.commit), &entry);
            }
        }
    }

    /// Producer state lives in this process only; a successor rebuilds it
    /// from the order log still in the region (Kafka keeps five batches per
    /// producer, far fewer than the log holds).
    fn rebuild_producers(&mut self) {
        let layout = *self.region.layout();
        let first = self
            .next_sequence
            .saturating_sub(layout.geometry.order_log_entries - 1)
            .max(1);
        for sequence in first..self.next_sequence {
            let Some(entry) = self
                .region
                .read_committed::<OrderEntry>(layout.order_entry(sequence), sequence)
            else {
                continue;
            };
            if entry.kind == kind::DATA && entry.producer_id >= 0 {
                let batch = IdempotentBatch {
                    producer_id: entry.producer_id,
                    epoch: entry.producer_epoch,
                    stream: entry.stream,
                    base_sequence: entry.base_sequence,
                    record_count: entry.record_count,
                };
                self.producers
                    .record(batch, entry.base_offset, entry.commit);
            }
        }
    }

    /// Entries ordered after the last checkpoint (a predecessor that died
    /// mid-pass) are already in the order log: adopt them, never re-order.
    fn replay_after_checkpoint(&mut self) {
        let layout = *self.region.layout();
        let mut replayed = 0u64;
        while let Some(entry) = self.region.read_committed::<OrderEntry>(
            layout.order_entry(self.next_sequence),
            self.next_sequence,
        ) {
            if entry.kind == kind::DATA && entry.stream < MAX_STREAMS {
                let next = entry.base_offset + i64::from(entry.record_count);
                self.stream_next[entry.stream as usize] =
                    self.stream_next[entry.stream as usize].max(next);
                self.region
                    .store_word(layout.stream_next_offset(entry.stream), next as u64);
            }
            // The predecessor may have died before answering the slot.
            if entry.gateway < layout.geometry.max_gateways as GatewayIndex {
                self.complete(
                    entry.gateway,
                    entry.slot,
                    status::OK,
                    entry.base_offset,
                    entry.commit,
                    entry.log_append_unix_ms,
                );
            }
            if let Some(reader) = self.readers.get_mut(entry.gateway as usize) {
                if reader.next_slot() <= entry.slot {
                    *reader = RingReader::new(entry.gateway, entry.slot + 1);
                }
            }
            self.next_sequence += 1;
            replayed += 1;
        }
        if replayed > 0 {
            tracing::info!(
                replayed,
                next_sequence = self.next_sequence,
                "adopted entries ordered after the checkpoint"
            );
            self.write_checkpoint();
            for reader in &self.readers {
                reader.release(&self.region);
            }
        }
    }

    pub fn next_sequence(&self) -> u64 {
        self.next_sequence
    }

    pub fn region(&self) -> &Region<B> {
        &self.region
    }

    /// The lowest order-log sequence some live gateway has not applied yet.
    fn order_log_floor(&self) -> u64 {
        let layout = self.region.layout();
        let now = unix_ns();
        (0..layout.geometry.max_gateways as GatewayIndex)
            .filter_map(|gateway| {
                let heartbeat = self.region.heartbeat(gateway);
                heartbeat_is_fresh(&heartbeat, now, self.heartbeat_timeout_ns)
                    .then(|| self.region.frontier(gateway, Frontier::OrderLogApplied))
            })
            .min()
            .unwrap_or(u64::MAX)
            .max(1)
    }

    /// One scan over every gateway's ring.
    pub fn pass(&mut self) -> PassReport {
        let mut report = PassReport::default();
        let entries = self.region.layout().geometry.order_log_entries;
        let mut floor = self.order_log_floor();
        for gateway in 0..self.readers.len() {
            let mut progressed = false;
            for _ in 0..BATCHES_PER_GATEWAY_PASS {
                if self.next_sequence >= floor.saturating_add(entries) {
                    // Writing would overwrite an entry a live gateway has
                    // not applied; look again, then wait for it.
                    floor = self.order_log_floor();
                    if self.next_sequence >= floor.saturating_add(entries) {
                        report.order_log_full = true;
                        break;
                    }
                }
                let Some(header) = self.readers[gateway].poll(&self.region) else {
                    break;
                };
                progressed = true;
                if self.order_one(gateway as GatewayIndex, &header) {
                    report.ordered += 1;
                } else {
                    report.answered += 1;
                }
            }
            if progressed {
                self.readers[gateway].release(&self.region);
            }
        }
        if report.ordered > 0 || report.answered > 0 {
            self.write_checkpoint();
        }
        report
    }

    fn write_checkpoint(&self) {
        let checkpoint = SequencerCheckpoint {
            next_sequence: self.next_sequence,
            next_producer_id: self.next_producer_id,
            catalog_version: self.catalog_version,
            region_first_sequence: self.region_first_sequence,
            _pad: [0; 96],
        };
        self.region
            .write_line(self.region.layout().checkpoint(), &checkpoint);
    }

    fn complete(
        &self,
        gateway: GatewayIndex,
        slot: u64,
        error: i32,
        base_offset: i64,
        global_sequence: u64,
        now_ms: i64,
    ) {
        let completion = Completion {
            commit: slot,
            global_sequence,
            base_offset,
            log_append_unix_ms: now_ms,
            error,
            _pad: [0; 92],
        };
        self.region
            .publish(self.region.layout().completion(gateway, slot), &completion);
    }

    /// Orders or answers one batch; true when it took a global sequence.
    fn order_one(&mut self, gateway: GatewayIndex, header: &BatchHeader) -> bool {
        let now_ms = (unix_ns() / 1_000_000) as i64;
        let slot = header.commit;
        match header.kind {
            kind::DATA => self.order_data(gateway, header, now_ms),
            kind::CONTROL => {
                let (error, value, tag) = self.apply_control(gateway, header);
                if error != status::OK {
                    self.complete(gateway, slot, error, -1, 0, now_ms);
                    return false;
                }
                let sequence = self.append_entry(gateway, header, value, now_ms, tag);
                self.complete(gateway, slot, status::OK, value, sequence, now_ms);
                true
            }
            _ => {
                self.complete(gateway, slot, status::CORRUPT_BATCH, -1, 0, now_ms);
                false
            }
        }
    }

    fn stream_is_live(&self, stream: u32) -> bool {
        if stream >= MAX_STREAMS {
            return false;
        }
        let (slot, partition) = split_stream(stream);
        let entry = &self.topics[slot as usize];
        entry.state == topic_state::LIVE && partition < entry.partitions
    }

    fn order_data(&mut self, gateway: GatewayIndex, header: &BatchHeader, now_ms: i64) -> bool {
        let slot = header.commit;
        let stream = header.stream;
        if !self.stream_is_live(stream) {
            self.complete(gateway, slot, status::UNKNOWN_STREAM, -1, 0, now_ms);
            return false;
        }
        let idempotent = (header.producer_id >= 0).then_some(IdempotentBatch {
            producer_id: header.producer_id,
            epoch: header.producer_epoch,
            stream,
            base_sequence: header.base_sequence,
            record_count: header.record_count,
        });
        if let Some(batch) = idempotent {
            match self.producers.check(batch) {
                Verdict::Append => {}
                Verdict::Duplicate {
                    base_offset,
                    global_sequence,
                } => {
                    self.complete(
                        gateway,
                        slot,
                        status::OK,
                        base_offset,
                        global_sequence,
                        now_ms,
                    );
                    return false;
                }
                Verdict::Reject(error) => {
                    self.complete(gateway, slot, error, -1, 0, now_ms);
                    return false;
                }
            }
        }
        let base_offset = self.stream_next[stream as usize];
        let next = base_offset + i64::from(header.record_count);
        self.stream_next[stream as usize] = next;
        let sequence = self.append_entry(gateway, header, base_offset, now_ms, 0);
        self.region
            .store_word(self.region.layout().stream_next_offset(stream), next as u64);
        if let Some(batch) = idempotent {
            self.producers.record(batch, base_offset, sequence);
        }
        self.complete(gateway, slot, status::OK, base_offset, sequence, now_ms);
        true
    }

    /// Writes the order-log entry for `header` and returns its sequence.
    fn append_entry(
        &mut self,
        gateway: GatewayIndex,
        header: &BatchHeader,
        base_offset: i64,
        now_ms: i64,
        control_tag: u8,
    ) -> u64 {
        let sequence = self.next_sequence;
        let entry = OrderEntry {
            commit: sequence,
            base_offset,
            arena_position: header.arena_position,
            max_timestamp: header.max_timestamp,
            log_append_unix_ms: now_ms,
            stream: header.stream,
            record_count: header.record_count,
            length: header.length,
            kind: header.kind,
            gateway,
            slot: header.commit,
            producer_id: header.producer_id,
            base_sequence: header.base_sequence,
            producer_epoch: header.producer_epoch,
            control_tag: u16::from(control_tag),
            _pad1: [0; 48],
        };
        self.region
            .publish(self.region.layout().order_entry(sequence), &entry);
        self.next_sequence += 1;
        sequence
    }

    /// Applies a control record; returns (status, value for the completion:
    /// the topic's catalog slot, or the allocated producer id).
    fn apply_control(&mut self, gateway: GatewayIndex, header: &BatchHeader) -> (i32, i64, u8) {
        let length = header.length as usize;
        if length > 4 << 20 {
            return (status::INVALID_CONTROL, -1, 0);
        }
        self.payload.resize(length, 0);
        if read_payload(
            &self.region,
            gateway,
            header.arena_position,
            &mut self.payload,
        )
        .is_err()
        {
            return (status::CORRUPT_BATCH, -1, 0);
        }
        let Ok(record) = ControlRecord::decode(&self.payload) else {
            return (status::INVALID_CONTROL, -1, 0);
        };
        let tag = record.tag();
        let (error, value) = self.apply_decoded(record);
        (error, value, tag)
    }

    /// Applies a decoded control record; returns (status, value for the
    /// completion), as [`Self::apply_control`] does.
    fn apply_decoded(&mut self, record: ControlRecord) -> (i32, i64) {
        match record {
            // Ordered so every gateway applies commits in one order; the
            // sequencer keeps no state for them.
            ControlRecord::CommitOffsets { .. } => (status::OK, 0),
            // Users and ACLs: ordered so every gateway applies them in one
            // order, and kept by the gateways, like offset commits.
            ControlRecord::UpsertScramCredential { .. }
            | ControlRecord::DeleteScramCredential { .. }
            | ControlRecord::CreateAcls { .. }
            | ControlRecord::DeleteAcls { .. } => (status::OK, 0),
            // Dynamic broker configs: likewise kept by the gateways.
            ControlRecord::AlterBrokerConfigs { .. } => (status::OK, 0),
            // Transactions: the coordinators' state, kept by the gateways.
            // Markers are data batches (see `ProducerTable::check`).
            ControlRecord::Transaction(_) | ControlRecord::TxnOffsetCommit { .. } => {
                (status::OK, 0)
            }
            ControlRecord::DeleteRecords { stream, offset } => self.delete_records(stream, offset),
            ControlRecord::AllocateProducerId => self.allocate_producer_id(),
            record @ ControlRecord::CreateTopic { .. } => match NewTopic::from_record(&record) {
                Some(topic) => self.create_topic(topic),
                None => (status::INVALID_CONTROL, -1),
            },
            ControlRecord::DeleteTopic { name } => self.delete_topic(&name),
            ControlRecord::CreatePartitions { name, total } => self.create_partitions(&name, total),
            ControlRecord::AlterTopicConfigs {
                name,
                retention_ms,
                retention_bytes,
                configs,
            } => self.alter_topic_configs(&name, retention_ms, retention_bytes, &configs),
        }
    }

    /// Moves `stream`'s log start forward to `offset` (-1: the high
    /// watermark), never back; the completion carries the new log start.
    fn delete_records(&mut self, stream: u32, offset: i64) -> (i32, i64) {
        if !self.stream_is_live(stream) {
            return (status::UNKNOWN_STREAM, -1);
        }
        let high_watermark = self.stream_next[stream as usize];
        let offset = if offset == -1 { high_watermark } else { offset };
        if offset < 0 || offset > high_watermark {
            return (status::OFFSET_OUT_OF_RANGE, -1);
        }
        let layout = *self.region.layout();
        let current = self
            .region
            .load_word_fresh(layout.stream_log_start_offset(stream)) as i64;
        let log_start = current.max(offset);
        self.region
            .store_word(layout.stream_log_start_offset(stream), log_start as u64);
        (status::OK, log_start)
    }

    /// Hands out the next producer id; the completion carries it.
    fn allocate_producer_id(&mut self) -> (i32, i64) {
        let id = self.next_producer_id;
        self.next_producer_id += 1;
        (status::OK, id as i64)
    }

    /// Creates topic `name` in a free catalog slot, its partitions, id,
    /// retention and replication factor taken from `settings` (whose other
    /// fields are zero); the completion carries the slot.
    fn create_topic(&mut self, topic: NewTopic<'_>) -> (i32, i64) {
        if self.find_topic(topic.name).is_some() {
            return (status::TOPIC_EXISTS, -1);
        }
        if let Err(refusal) = topic.check() {
            return (refusal, -1);
        }
        let Some(slot) = self.free_topic_slot() else {
            return (status::CATALOG_FULL, -1);
        };
        self.reset_topic_streams(slot);
        self.write_topic(slot, topic.entry(self.next_sequence));
        (status::OK, i64::from(slot))
    }

    /// A catalog slot for a new topic. Prefers a never-used slot so a
    /// deleted topic's streams are not reused while readers may still hold
    /// their batches.
    fn free_topic_slot(&self) -> Option<u32> {
        let slot_in =
            |state| (0..MAX_TOPICS).find(|&slot| self.topics[slot as usize].state == state);
        slot_in(topic_state::EMPTY).or_else(|| slot_in(topic_state::DELETED))
    }

    /// Starts every stream of catalog slot `slot` afresh: no offsets, no
    /// log start, no producer state.
    fn reset_topic_streams(&mut self, slot: u32) {
        for partition in 0..MAX_PARTITIONS_PER_TOPIC {
            let stream = stream_of(slot, partition);
            self.stream_next[stream as usize] = 0;
            self.region
                .store_word(self.region.layout().stream_next_offset(stream), 0);
            self.region
                .store_word(self.region.layout().stream_log_start_offset(stream), 0);
            self.producers.forget_stream(stream);
        }
    }

    fn delete_topic(&mut self, name: &str) -> (i32, i64) {
        self.update_topic(name, |entry| {
            entry.state = topic_state::DELETED;
            Ok(())
        })
    }

    /// Grows topic `name` to `total` partitions; it never shrinks.
    fn create_partitions(&mut self, name: &str, total: u32) -> (i32, i64) {
        self.update_topic(name, |entry| {
            if total <= entry.partitions || total > MAX_PARTITIONS_PER_TOPIC {
                return Err(status::INVALID_PARTITIONS);
            }
            entry.partitions = total;
            Ok(())
        })
    }

    fn alter_topic_configs(
        &mut self,
        name: &str,
        retention_ms: i64,
        retention_bytes: i64,
        configs: &str,
    ) -> (i32, i64) {
        self.update_topic(name, |entry| {
            if configs.len() > TOPIC_CONFIGS_BYTES {
                return Err(status::INVALID_CONTROL);
            }
            entry.retention_ms = retention_ms;
            entry.retention_bytes = retention_bytes;
            set_topic_configs(entry, configs);
            Ok(())
        })
    }

    /// Publishes live topic `name`'s catalog entry as `change` leaves it,
    /// or nothing when `change` refuses with a status; the completion
    /// carries the topic's slot.
    fn update_topic(
        &mut self,
        name: &str,
        change: impl FnOnce(&mut TopicEntry) -> Result<(), i32>,
    ) -> (i32, i64) {
        let Some(slot) = self.find_topic(name) else {
            return (status::UNKNOWN_TOPIC, -1);
        };
        let mut entry = self.topics[slot as usize];
        if let Err(error) = change(&mut entry) {
            return (error, -1);
        }
        entry.commit = self.next_sequence;
        self.write_topic(slot, entry);
        (status::OK, i64::from(slot))
    }

    fn find_topic(&self, name: &str) -> Option<u32> {
        (0..MAX_TOPICS).find(|&slot| {
            let entry = &self.topics[slot as usize];
            entry.state == topic_state::LIVE && entry_name(entry) == name.as_bytes()
        })
    }

    fn write_topic(&mut self, slot: u32, entry: TopicEntry) {
        self.topics[slot as usize] = entry;
        self.region
            .publish(self.region.layout().topic_entry(slot), &entry);
        self.catalog_version += 1;
    }
}
