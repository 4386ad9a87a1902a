//! This gateway as a replica: it copies every ordered entry from the region
//! into its own segment files, makes them durable by group commit, and
//! publishes its durable frontier; from the frontiers of all live gateways
//! it decides which of its own ring slots the arena may recycle, and when
//! an acks=all batch is held by enough copies.
//!
//! Threads (started by [`super::startup`]):
//!
//! | thread | does |
//! |---|---|
//! | `replicator` | copies entries the tailer applied from the region into the segments: data batches as aligned runs written by the device (`O_DIRECT`) straight from the arena, the rest through a buffer |
//! | `syncer` | fsyncs what was copied (one fsync covers everything written before it: group commit), then publishes the durable frontier |

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use cxlkafka_log::layout::{kind, Completion, Frontier, GatewayIndex, OrderEntry};
use cxlkafka_log::memory::MemoryBackend;
use cxlkafka_log::ring::{read_payload, ArenaPayloads, PayloadWriteError};
use cxlkafka_log::segment::{
    AppendFromError, DirectIo, DiskLocation, EntryHeader, RunEntry, RunWriteError, SegmentFiles,
    SegmentLog, StoredEntry,
};
use cxlkafka_sequencer::control::ControlRecord;
use cxlkafka_sequencer::membership;
use cxlkafka_sequencer::wait::Backoff;
use tokio::sync::watch;

use super::peer_copy::fetch::Copying;
use super::{lock, lock_write, AppendError, Cluster, OrderIndex};
use crate::limits::LogGate;
use crate::{records, telemetry};

/// Entries copied per lock of the segment writer.
const ENTRIES_PER_CHUNK: usize = 512;
/// Largest run of batches written by one `O_DIRECT` write.
const MAX_RUN_BYTES: u64 = 16 << 20;

/// The disk tier of one gateway.
pub(super) struct DiskTier {
    writer: Mutex<ReplicaWriter>,
    /// Wakes the syncer when the replicator appended.
    work_signal: Condvar,
    files: Arc<SegmentFiles>,
    /// Next sequence not yet copied (appended or found gone).
    replicated: AtomicU64,
    /// Next sequence not yet durable here.
    durable: AtomicU64,
    durable_tx: watch::Sender<u64>,
    /// An fsync failed: nothing written since can be called durable.
    failed: AtomicBool,
    /// Why writes to the segments fail right now (a full or broken data
    /// dir); `None` while they succeed. The replicator keeps retrying and
    /// clears it with the first write that works.
    write_fault: Mutex<Option<String>>,
    /// Whether `write_fault` holds one: read on every acks=all wait and
    /// every chunk the replicator copies, so neither takes the lock while
    /// the disk is healthy.
    write_failing: AtomicBool,
    /// Lowest sequence from which the segments have held every entry (see
    /// `GatewayFrontiers::holds_from`); 0 until `start_at` decides it.
    holds_from: AtomicU64,
    /// The `holds_from` last written to `dir`.
    holds_from_recorded: AtomicU64,
    /// The segment directory, where `holds_from` is kept across restarts.
    dir: PathBuf,
}

/// The file in a segment directory that keeps `holds_from` across restarts
/// (a gap this gateway once had is not forgotten by restarting).
const HOLDS_FROM_FILE: &str = "holds-from";

/// First and longest pause of the replicator between attempts at a write
/// that failed: a full disk is retried a few times a second, not in a spin.
const FIRST_WRITE_RETRY: Duration = Duration::from_millis(1);
const MAX_WRITE_RETRY: Duration = Duration::from_millis(100);

/// One log line per interval for a disk tier that keeps failing to write,
/// and for entries it missed (each also counted by a metric).
static WRITE_ERROR_LOG: LogGate = LogGate::new();
static MISSED_ENTRY_LOG: LogGate = LogGate::new();

struct ReplicaWriter {
    segments: SegmentLog,
    /// Next sequence to copy.
    next: u64,
}

impl DiskTier {
    /// Opens (recovering) the segments in `dir`; returns the tier, ready to
    /// copy from `start`, and every entry already stored.
    pub(super) fn open(dir: &Path, segment_bytes: u64) -> Result<(Self, Vec<StoredEntry>), String> {
        let (segments, stored) = SegmentLog::open(dir, segment_bytes)
            .map_err(|error| format!("cannot open the disk tier: {error}"))?;
        let files = segments.files();
        let next = segments.last_sequence() + 1;
        let (durable_tx, _) = watch::channel(next);
        let recorded = read_holds_from(dir)?;
        let holds_from = match recorded {
            // No record, yet entries: a chain written before the record
            // existed, which had no way to know of a gap (`start_at`
            // records it).
            0 if next > 1 => 1,
            recorded => recorded,
        };
        Ok((
            Self {
                writer: Mutex::new(ReplicaWriter { segments, next }),
                work_signal: Condvar::new(),
                files,
                replicated: AtomicU64::new(next),
                durable: AtomicU64::new(next),
                durable_tx,
                failed: AtomicBool::new(false),
                write_fault: Mutex::new(None),
                write_failing: AtomicBool::new(false),
                holds_from: AtomicU64::new(holds_from),
                holds_from_recorded: AtomicU64::new(recorded),
                dir: dir.to_path_buf(),
            },
            stored,
        ))
    }

    /// Highest sequence the segments hold (0 when empty).
    pub(super) fn last_stored(&self) -> u64 {
        lock(&self.writer).segments.last_sequence()
    }

    /// Copying starts at `start`: entries between the segments' end and it
    /// are no longer in the region (this gateway was away while they were
    /// ordered and recycled).
    pub(super) fn start_at(&self, start: u64) {
        let mut writer = lock(&self.writer);
        if start > writer.next {
            tracing::warn!(
                missing_from = writer.next,
                missing_to = start - 1,
                "entries ordered while this gateway was away are not in its segments"
            );
            metrics::counter!(telemetry::REPLICA_MISSED_ENTRIES_TOTAL)
                .increment(start - writer.next);
        }
        let holds_from = match self.holds_from.load(Ordering::Acquire) {
            _ if start > writer.next => start,
            // No record: a new chain, or one written before the record
            // existed, which had no way to know of a gap.
            0 => 1,
            known => known,
        };
        self.set_holds_from(holds_from);
        writer.next = writer.next.max(start);
        self.replicated.store(writer.next, Ordering::Release);
        self.durable.store(writer.next, Ordering::Release);
        self.durable_tx.send_replace(writer.next);
    }

    /// Lowest sequence from which the segments hold every entry.
    pub(super) fn holds_from(&self) -> u64 {
        self.holds_from.load(Ordering::Acquire)
    }

    /// Records a new `holds_from`, on disk too.
    fn set_holds_from(&self, holds_from: u64) {
        self.raise_holds_from(holds_from);
        self.record_holds_from();
    }

    /// Takes a new `holds_from` in memory only (see `record_holds_from`).
    fn raise_holds_from(&self, holds_from: u64) {
        if self.holds_from.swap(holds_from, Ordering::AcqRel) != holds_from {
            metrics::gauge!(telemetry::REPLICA_HOLDS_FROM_SEQUENCE).set(holds_from as f64);
        }
    }

    /// Writes `holds_from` to disk if it changed since it was last written:
    /// once per chunk of copied entries, not once per entry missed (a
    /// paused gateway can miss thousands at a time). A failure is logged:
    /// the value in the region still tells the peers.
    fn record_holds_from(&self) {
        let holds_from = self.holds_from();
        if self.holds_from_recorded.swap(holds_from, Ordering::AcqRel) == holds_from {
            return;
        }
        if let Err(error) = write_holds_from(&self.dir, holds_from) {
            tracing::warn!(%error, holds_from, "cannot record where this gateway's copy starts");
        }
    }

    pub(super) fn files(&self) -> &SegmentFiles {
        &self.files
    }

    /// The header of the last entry stored (`None` when empty).
    pub(super) fn last_header(&self) -> Option<EntryHeader> {
        lock(&self.writer).segments.last_header()
    }

    /// The segment directory.
    pub(super) fn dir(&self) -> &Path {
        &self.dir
    }

    /// Takes `holds_from` from a peer whose segments this chain, empty
    /// before, now copies (entries retention deleted there count as held
    /// here too). Before the threads start.
    pub(super) fn adopt_peer_holds_from(&self, peer_holds_from: u64) {
        self.set_holds_from(peer_holds_from);
    }

    /// Next sequence not yet copied.
    pub(super) fn replicated(&self) -> u64 {
        self.replicated.load(Ordering::Acquire)
    }

    /// Next sequence not yet durable here.
    pub(super) fn durable(&self) -> u64 {
        self.durable.load(Ordering::Acquire)
    }

    /// Bytes of the segments.
    pub(super) fn stored_bytes(&self) -> u64 {
        lock(&self.writer).segments.total_bytes()
    }

    pub(super) fn wake(&self) {
        self.work_signal.notify_all();
    }

    /// Why this disk tier cannot make new copies durable now, if it cannot.
    pub(super) fn fault(&self) -> Option<String> {
        if self.failed.load(Ordering::Acquire) {
            return Some("an fsync failed, so this gateway's disk tier stopped".into());
        }
        if !self.write_failing.load(Ordering::Acquire) {
            return None;
        }
        lock(&self.write_fault).clone()
    }

    /// Records whether the last write worked; logs the change.
    fn set_write_fault(&self, fault: Option<String>) {
        if fault.is_none() && !self.write_failing.load(Ordering::Acquire) {
            return;
        }
        let mut current = lock(&self.write_fault);
        if current.is_some() && fault.is_none() {
            tracing::info!("the disk tier writes again");
        }
        self.write_failing.store(fault.is_some(), Ordering::Release);
        *current = fault;
    }

    /// Appends an entry copied from another gateway's segments (before this
    /// gateway's threads run).
    pub(super) fn append_copied(
        &self,
        header: &EntryHeader,
        payload: &[u8],
    ) -> Result<StoredEntry, String> {
        let mut writer = lock(&self.writer);
        let location = writer
            .segments
            .append(header, payload)
            .map_err(|error| format!("cannot copy into the disk tier: {error}"))?;
        writer.next = header.sequence + 1;
        Ok(StoredEntry {
            header: *header,
            location,
        })
    }

    /// What every sealed segment holds, oldest first.
    pub(super) fn sealed_contents(&self) -> Vec<cxlkafka_log::segment::SegmentContents> {
        lock(&self.writer).segments.sealed_contents()
    }

    /// Deletes a sealed segment (retention).
    pub(super) fn delete_segment(&self, first_sequence: u64) -> Result<(), String> {
        lock(&self.writer)
            .segments
            .delete_segment(first_sequence)
            .map_err(|error| error.to_string())
    }

    /// Makes everything appended so far durable, now.
    pub(super) fn sync_now(&self) -> Result<(), String> {
        let work = lock(&self.writer).segments.sync_work();
        if let Some(work) = work {
            work.run()
                .map_err(|error| format!("cannot fsync the disk tier: {error}"))?;
        }
        Ok(())
    }
}

impl<B: MemoryBackend> Cluster<B> {
    /// Copies every entry the tailer applied into the segments, in order.
    pub(super) fn replicate_loop(&self) {
        let mut backoff = Backoff::default();
        let mut copier = Copier {
            payload: Vec::new(),
            run: None,
            located: Vec::new(),
            late_commits: Vec::new(),
            copied_bytes: metrics::counter!(telemetry::REPLICA_COPIED_BYTES_TOTAL),
        };
        // Exported from the start, so a dashboard sees 0 rather than nothing.
        metrics::counter!(telemetry::REPLICA_MISSED_ENTRIES_TOTAL).increment(0);
        metrics::counter!(telemetry::REPLICA_WRITE_ERRORS_TOTAL).increment(0);
        super::peer_copy::serve::export_counters();
        let mut direct_io = None;
        let mut retry = FIRST_WRITE_RETRY;
        while !self.stopping() {
            if self.paused() {
                std::thread::sleep(Duration::from_millis(10));
                continue;
            }
            let rings = self.bells.apply.rings();
            let applied = self.applied();
            let mut writer = lock(&self.disk.writer);
            let first = writer.next;
            let (mut next, stop) =
                self.copy_chunk(&mut writer.segments, &mut copier, first, applied);
            let write_error = match stop {
                None => None,
                Some(ChunkStop::Write(error)) => Some(error),
                Some(ChunkStop::Gone(why)) => {
                    next = self.fill_gap(&mut writer.segments, &mut copier, next, applied, why);
                    None
                }
            };
            self.disk.record_holds_from();
            let progressed = next > writer.next;
            writer.next = next;
            if !copier.located.is_empty() || !copier.late_commits.is_empty() {
                // Under the writer lock: the syncer cannot call these bytes
                // durable (and let the arena recycle them) before a fetch
                // can find them on disk.
                let mut index = lock_write(&self.index);
                for (stream, base_offset, location) in copier.located.drain(..) {
                    index.set_disk_location(stream, base_offset, location);
                }
                apply_late_commits(&mut index, copier.late_commits.drain(..), next);
            }
            report_direct_io(writer.segments.direct_io(), &mut direct_io);
            drop(writer);
            if let Some(error) = write_error {
                metrics::counter!(telemetry::REPLICA_WRITE_ERRORS_TOTAL).increment(1);
                if let Some(held_back) = WRITE_ERROR_LOG.admit() {
                    tracing::error!(%error, sequence = next, held_back, "cannot write to the disk tier; retrying");
                }
                self.disk.set_write_fault(Some(error));
                // Whatever was copied before the failure still counts.
                if progressed {
                    self.disk.replicated.store(next, Ordering::Release);
                    self.publish_applied();
                    self.disk.work_signal.notify_one();
                }
                std::thread::sleep(retry);
                retry = (retry * 2).min(MAX_WRITE_RETRY);
                continue;
            }
            if progressed {
                retry = FIRST_WRITE_RETRY;
                self.disk.set_write_fault(None);
                self.disk.replicated.store(next, Ordering::Release);
                self.publish_applied();
                self.disk.work_signal.notify_one();
                backoff.reset();
            } else {
                backoff.wait_on(&self.bells.apply, rings);
            }
        }
        self.disk.work_signal.notify_all();
    }

    /// Copies entries from `next` up to `applied` (at most a chunk); returns
    /// the next sequence not copied and why copying stopped early: the
    /// disk refused a write (the entries from the returned sequence on are
    /// copied again later), or that entry left the region.
    fn copy_chunk(
        &self,
        segments: &mut SegmentLog,
        copier: &mut Copier,
        mut next: u64,
        applied: u64,
    ) -> (u64, Option<ChunkStop>) {
        let layout = *self.region.layout();
        let mut copied = 0usize;
        while next < applied && copied < ENTRIES_PER_CHUNK {
            copied += 1;
            let sequence = next;
            next += 1;
            // The tailer applied it, and the sequencer does not overwrite
            // what this gateway has not copied (see `publish_applied`), so
            // it is there unless this gateway lagged a whole lap while the
            // sequencer thought it dead.
            let Some(entry) = self
                .region
                .read_committed::<OrderEntry>(layout.order_entry(sequence), sequence)
            else {
                if let Err((at, stop)) = self.write_run(segments, copier) {
                    return (at, Some(stop));
                }
                return (sequence, Some(ChunkStop::Gone("order entry overwritten")));
            };
            if let Some(run_entry) = self.run_entry(&entry) {
                if copier.extends_run(&entry) {
                    copier.add_to_run(&entry, run_entry);
                    continue;
                }
                if let Err((at, stop)) = self.write_run(segments, copier) {
                    return (at, Some(stop));
                }
                copier.add_to_run(&entry, run_entry);
                continue;
            }
            if let Err((at, stop)) = self.write_run(segments, copier) {
                return (at, Some(stop));
            }
            let header = entry_header(&entry);
            match self.copy_entry(segments, &entry, &mut copier.payload) {
                Ok(location) => copier.copied(&header, location),
                Err(CopyError::Gone) => {
                    return (sequence, Some(ChunkStop::Gone("payload recycled")))
                }
                Err(CopyError::Write(error)) => return (sequence, Some(ChunkStop::Write(error))),
            }
        }
        if let Err((at, stop)) = self.write_run(segments, copier) {
            return (at, Some(stop));
        }
        (next, None)
    }

    /// A data batch as a run entry: its segment header and its payload's
    /// CRC32C, derived from the batch's own CRC (checked on produce), so the
    /// payload is never read by the CPU. `None` for anything else.
    fn run_entry(&self, entry: &OrderEntry) -> Option<RunEntry> {
        let length = entry.length as usize;
        let mut prefix = [0u8; records::BATCH_PREFIX_BEFORE_CRC_COVERAGE];
        if entry.kind != kind::DATA || length < prefix.len() {
            return None;
        }
        read_payload(
            &self.region,
            entry.gateway,
            entry.arena_position,
            &mut prefix,
        )
        .ok()?;
        let payload_crc = records::stored_batch_crc32c(&prefix, length)?;
        Some(RunEntry {
            header: entry_header(entry),
            payload_crc,
            position: entry.arena_position,
        })
    }

    /// Writes the pending run, if any, into the segments by the device,
    /// then appends its entries. A run the arena recycled part of is copied
    /// entry by entry instead, up to the first batch that is gone. When it
    /// stops early returns the first sequence not copied and why.
    fn write_run(
        &self,
        segments: &mut SegmentLog,
        copier: &mut Copier,
    ) -> Result<(), (u64, ChunkStop)> {
        let Some(run) = copier.run.take() else {
            return Ok(());
        };
        let first_sequence = run.entries[0].1.header.sequence;
        let mut payloads = ArenaPayloads::new(&self.region, run.source);
        let placed = match segments.write_run(
            u32::from(run.source),
            first_sequence,
            run.position,
            run.len,
            &mut payloads,
        ) {
            Ok(placed) => placed,
            Err(AppendFromError::Payload(RunWriteError::Source(
                PayloadWriteError::Unavailable(_),
            ))) => None,
            Err(AppendFromError::Payload(RunWriteError::Source(PayloadWriteError::Io(error))))
            | Err(AppendFromError::Payload(RunWriteError::Io(error))) => {
                return Err((first_sequence, ChunkStop::Write(error.to_string())))
            }
            Err(AppendFromError::Segment(error)) => {
                return Err((first_sequence, ChunkStop::Write(error.to_string())))
            }
        };
        for (entry, run_entry) in &run.entries {
            let sequence = run_entry.header.sequence;
            let copied = match &placed {
                Some(placed) => segments
                    .append_placed(placed, run_entry)
                    .map_err(|error| CopyError::Write(error.to_string())),
                None => self.copy_entry(segments, entry, &mut copier.payload),
            };
            match copied {
                Ok(location) => copier.copied(&run_entry.header, location),
                Err(CopyError::Gone) => {
                    return Err((sequence, ChunkStop::Gone("payload recycled")))
                }
                Err(CopyError::Write(error)) => return Err((sequence, ChunkStop::Write(error))),
            }
        }
        Ok(())
    }

    /// Appends one ordered entry to the segments with its payload inline,
    /// read through `buffer`: control entries, and data batches that could
    /// not go by a run.
    fn copy_entry(
        &self,
        segments: &mut SegmentLog,
        entry: &OrderEntry,
        buffer: &mut Vec<u8>,
    ) -> Result<DiskLocation, CopyError> {
        buffer.resize(entry.length as usize, 0);
        read_payload(&self.region, entry.gateway, entry.arena_position, buffer)
            .map_err(|_| CopyError::Gone)?;
        segments
            .append(&entry_header(entry), buffer)
            .map_err(|error| CopyError::Write(error.to_string()))
    }

    /// Entry `sequence` left the region before this gateway copied it: it
    /// and what follows are copied from a live holder's segments (below
    /// `applied`), or, when no holder has it, it is missed. Returns the
    /// next sequence to copy from the region.
    fn fill_gap(
        &self,
        segments: &mut SegmentLog,
        copier: &mut Copier,
        sequence: u64,
        applied: u64,
        why: &str,
    ) -> u64 {
        let copying = Copying {
            region: &self.region,
            gateway: self.gateway,
            lease_timeout_ns: self.lease_timeout_ns,
        };
        let filled = copying.fill_gap(segments, sequence, applied, |header, payload, location| {
            copier.copied(header, location);
            if header.kind != kind::DATA && super::index::is_ordered_state_tag(header.control_tag) {
                copier
                    .late_commits
                    .push((header.sequence, payload.to_vec()));
            }
        });
        filled.unwrap_or_else(|| {
            self.missed(sequence, why);
            sequence + 1
        })
    }

    /// An entry this gateway's disk will never hold: from now on it holds
    /// only what follows, and peers stop sending clients here for older
    /// data (see `Cluster::holders`).
    fn missed(&self, sequence: u64, why: &str) {
        if sequence >= self.disk.holds_from() {
            self.disk.raise_holds_from(sequence + 1);
            self.region
                .set_frontier(self.gateway, Frontier::HoldsFrom, sequence + 1);
        }
        if let Some(held_back) = MISSED_ENTRY_LOG.admit() {
            tracing::warn!(
                sequence,
                why,
                held_back,
                "entry not copied to the disk tier"
            );
        }
        metrics::counter!(telemetry::REPLICA_MISSED_ENTRIES_TOTAL).increment(1);
    }

    /// Group commit: one fsync covers every entry copied before it began;
    /// the durable frontier moves only after it succeeded.
    pub(super) fn sync_loop(&self) {
        let fsyncs = metrics::counter!(telemetry::REPLICA_FSYNCS_TOTAL);
        let fsync_seconds = metrics::histogram!(telemetry::REPLICA_FSYNC_SECONDS);
        self.region.set_frontier(
            self.gateway,
            Frontier::Durable,
            self.disk.durable.load(Ordering::Acquire),
        );
        while !self.stopping() {
            let (work, through) = {
                let mut writer = lock(&self.disk.writer);
                while writer.next == self.disk.durable() && !self.stopping() {
                    writer = self
                        .disk
                        .work_signal
                        .wait_timeout(writer, Duration::from_millis(50))
                        .unwrap_or_else(|poisoned| poisoned.into_inner())
                        .0;
                }
                (writer.segments.sync_work(), writer.next)
            };
            if self.disk.failed.load(Ordering::Acquire) {
                break;
            }
            if let Some(work) = work {
                let began = Instant::now();
                if let Err(error) = work.run() {
                    // After a failed fsync the kernel may have dropped the
                    // dirty pages: retrying could "succeed" without them.
                    // Stop calling anything durable; acks=all times out and
                    // the arena stops recycling, which is backpressure.
                    tracing::error!(%error, "fsync failed: this gateway's disk tier stops");
                    metrics::counter!(telemetry::REPLICA_WRITE_ERRORS_TOTAL).increment(1);
                    self.disk.failed.store(true, Ordering::Release);
                    break;
                }
                fsyncs.increment(1);
                fsync_seconds.record(began.elapsed().as_secs_f64());
            }
            self.disk.durable.store(through, Ordering::Release);
            self.region
                .set_frontier(self.gateway, Frontier::Durable, through);
            self.disk.durable_tx.send_replace(through);
            metrics::gauge!(telemetry::REPLICA_DURABLE_SEQUENCE)
                .set(through.saturating_sub(1) as f64);
            self.advance_recycle_limit();
        }
    }

    /// The durable frontier gateway `gateway` published.
    fn durable_of(&self, gateway: GatewayIndex) -> u64 {
        if gateway == self.gateway {
            return self.disk.durable();
        }
        self.region.frontier(gateway, Frontier::Durable)
    }

    /// Lowest durable frontier over the live gateways.
    fn min_live_durable(&self) -> u64 {
        membership::live_members(&self.region, self.lease_timeout_ns)
            .iter()
            .map(|member| self.durable_of(member.gateway))
            .chain(std::iter::once(self.disk.durable()))
            .min()
            .unwrap_or(0)
    }

    /// Lets the arena reuse this gateway's ring slots whose entries every
    /// live gateway holds on disk (or that were refused and never ordered).
    pub(super) fn advance_recycle_limit(&self) {
        let layout = *self.region.layout();
        let min_durable = self.min_live_durable();
        let consumed = self.region.consumed(self.gateway);
        let start = self.publisher.recycle_next();
        let mut limit = start;
        while limit < consumed {
            let Some(completion) = self
                .region
                .read_committed::<Completion>(layout.completion(self.gateway, limit), limit)
            else {
                break;
            };
            if completion.global_sequence != 0 && completion.global_sequence >= min_durable {
                break;
            }
            limit += 1;
        }
        if limit > start {
            self.publisher
                .release_below(&self.region, self.gateway, limit);
        }
    }

    /// Live gateways whose disk holds `sequence`.
    fn disk_copies(&self, sequence: u64) -> usize {
        membership::live_members(&self.region, self.lease_timeout_ns)
            .iter()
            .filter(|member| self.durable_of(member.gateway) > sequence)
            .count()
    }

    /// Why `sequence` cannot reach `disks` copies, when this gateway's disk
    /// tier cannot write it and too few other gateways are live to make
    /// the copies without it: waiting would only end at the timeout.
    fn copy_needs_failing_disk(&self, sequence: u64, disks: usize) -> Option<String> {
        if self.disk.durable() > sequence {
            return None;
        }
        let fault = self.disk.fault()?;
        let others = membership::live_members(&self.region, self.lease_timeout_ns)
            .iter()
            .filter(|member| member.gateway != self.gateway)
            .count();
        (others < disks).then_some(fault)
    }

    /// Waits until `disks` live gateways hold `sequence` on disk, or the
    /// deadline passes; fails at once when this gateway's disk is needed
    /// and cannot write.
    pub(super) async fn wait_disk_copies(
        &self,
        sequence: u64,
        disks: usize,
        deadline: Instant,
    ) -> Result<(), AppendError> {
        let mut own = self.disk.durable_tx.subscribe();
        loop {
            if self.disk_copies(sequence) >= disks {
                return Ok(());
            }
            if let Some(fault) = self.copy_needs_failing_disk(sequence, disks) {
                return Err(AppendError::Storage(fault));
            }
            let now = Instant::now();
            if now >= deadline {
                return Err(AppendError::ReplicaTimeout);
            }
            if self.stopping() {
                return Err(AppendError::ShuttingDown);
            }
            // This gateway's own frontier wakes the wait at once; the
            // others' are only visible in the region, so look again soon.
            let step = (deadline - now).min(Duration::from_millis(1));
            let _ = tokio::time::timeout(step, own.changed()).await;
        }
    }
}

/// The replicator's working state between chunks.
struct Copier {
    /// Buffer of entries copied inline.
    payload: Vec<u8>,
    /// Data batches back to back in one arena, not written yet.
    run: Option<PendingRun>,
    /// Data batches copied, for the index: (stream, base offset, location).
    located: Vec<(u32, i64, DiskLocation)>,
    /// Offset commits copied from a holder: (sequence, payload).
    late_commits: Vec<(u64, Vec<u8>)>,
    copied_bytes: metrics::Counter,
}

/// Data batches that lie back to back in one gateway's arena.
struct PendingRun {
    source: GatewayIndex,
    /// Arena position of the first batch, and bytes up to the end of the last.
    position: u64,
    len: u64,
    entries: Vec<(OrderEntry, RunEntry)>,
}

impl Copier {
    /// Whether `entry` continues the pending run.
    fn extends_run(&self, entry: &OrderEntry) -> bool {
        self.run.as_ref().is_some_and(|run| {
            run.source == entry.gateway
                && run.position + run.len == entry.arena_position
                && run.len + u64::from(entry.length) <= MAX_RUN_BYTES
        })
    }

    /// Adds `entry` to the pending run (starting one when there is none).
    fn add_to_run(&mut self, entry: &OrderEntry, run_entry: RunEntry) {
        let run = self.run.get_or_insert_with(|| PendingRun {
            source: entry.gateway,
            position: entry.arena_position,
            len: 0,
            entries: Vec::new(),
        });
        run.len += u64::from(entry.length);
        run.entries.push((*entry, run_entry));
    }

    fn copied(&mut self, header: &EntryHeader, location: DiskLocation) {
        self.copied_bytes.increment(u64::from(header.length));
        if header.kind == kind::DATA {
            self.located
                .push((header.stream, header.base_offset, location));
        }
    }
}

/// Logs once, and exports, whether the data files are written with
/// `O_DIRECT` whenever that changes.
fn report_direct_io(now: &DirectIo, reported: &mut Option<bool>) {
    let direct = *now == DirectIo::On;
    // Set on every pass, logged on a change: a gauge not set again leaves
    // the scrape (`telemetry::install_prometheus`).
    metrics::gauge!(telemetry::REPLICA_DIRECT_IO).set(if direct { 1.0 } else { 0.0 });
    if *reported == Some(direct) {
        return;
    }
    if let DirectIo::Refused(why) = now {
        tracing::warn!(%why, "the disk tier writes data files through the page cache, not O_DIRECT");
    }
    *reported = Some(direct);
}

/// `holds_from` as recorded in `dir` (0 when never recorded).
pub(super) fn read_holds_from(dir: &Path) -> Result<u64, String> {
    match std::fs::read_to_string(dir.join(HOLDS_FROM_FILE)) {
        Ok(text) => text.trim().parse().map_err(|error| {
            format!(
                "{}: not a sequence: {error}",
                dir.join(HOLDS_FROM_FILE).display()
            )
        }),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(0),
        Err(error) => Err(format!("{}: {error}", dir.join(HOLDS_FROM_FILE).display())),
    }
}

/// Replaces the record of `holds_from` in `dir` atomically and durably.
fn write_holds_from(dir: &Path, holds_from: u64) -> std::io::Result<()> {
    use std::io::Write;
    let temporary = dir.join(format!("{HOLDS_FROM_FILE}.tmp"));
    let mut file = std::fs::File::create(&temporary)?;
    writeln!(file, "{holds_from}")?;
    file.sync_all()?;
    std::fs::rename(&temporary, dir.join(HOLDS_FROM_FILE))?;
    std::fs::File::open(dir)?.sync_all()
}

/// Applies the offset commits the tailer found gone from the region
/// (`OrderIndex::commits_awaiting_payload`) once the disk tier copied them
/// from a holder; those it passed (below `copied_before`) without copying
/// are lost on this gateway until it restarts from its segments.
fn apply_late_commits(
    index: &mut OrderIndex,
    copied: impl Iterator<Item = (u64, Vec<u8>)>,
    copied_before: u64,
) {
    for (sequence, payload) in copied {
        if !index.commits_awaiting_payload.remove(&sequence) {
            continue;
        }
        match ControlRecord::decode(&payload) {
            Ok(record) => index.apply_ordered(record, sequence),
            Err(error) => {
                tracing::warn!(sequence, %error, "a copied offset commit does not decode")
            }
        }
    }
    let awaiting = &mut index.commits_awaiting_payload;
    if awaiting.first().is_some_and(|&first| first < copied_before) {
        let still_awaiting = awaiting.split_off(&copied_before);
        let lost = std::mem::replace(awaiting, still_awaiting);
        metrics::counter!(telemetry::OFFSET_COMMITS_LOST_TOTAL).increment(lost.len() as u64);
        tracing::warn!(
            commits = lost.len(),
            first_sequence = lost.first(),
            "offset commits left the region before this gateway applied them, and no holder gave them"
        );
    }
}

/// Why a chunk stopped before its end.
enum ChunkStop {
    /// The disk refused a write: copying retries from that entry.
    Write(String),
    /// That entry left the region before this gateway copied it.
    Gone(&'static str),
}

/// Why an entry was not copied.
enum CopyError {
    /// Its payload was recycled before this gateway copied it.
    Gone,
    /// The disk refused it: copying stops and retries.
    Write(String),
}

/// The segment header of an order entry.
fn entry_header(entry: &OrderEntry) -> EntryHeader {
    EntryHeader {
        sequence: entry.commit,
        base_offset: entry.base_offset,
        max_timestamp: entry.max_timestamp,
        log_append_ms: entry.log_append_unix_ms,
        producer_id: entry.producer_id,
        stream: entry.stream,
        record_count: entry.record_count,
        length: entry.length,
        base_sequence: entry.base_sequence,
        kind: entry.kind,
        control_tag: entry.control_tag,
        producer_epoch: entry.producer_epoch,
    }
}
